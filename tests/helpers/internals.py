"""White-box access to internals: the only module of the suite that reads private
attributes of ``sayna_client`` objects (the client's, and the local server's state).

A few tests must look under the public API: the audio frame writer (bytes on the wire,
batching, back-pressure), the aiohttp session the client holds, and the socket it
frees. They go through these functions, so a change of the client's internal layout is
one edit here, not one per test.
"""

from __future__ import annotations

import asyncio
from typing import Any, Callable, TypeVar

import aiohttp

from sayna_client import SaynaClient
from sayna_client.integrations._shared import SharedSession
from sayna_client.realtime import wire
from sayna_client.realtime.wire import FrameWriter
from sayna_client.server import LocalServer

__all__ = [
    "batch_open",
    "connection",
    "event_hub",
    "frame_writer",
    "holds_http_session",
    "http_session",
    "inbound_frames",
    "masking_keys",
    "open_write_turn",
    "raw_socket",
    "sender_kind",
    "server_state",
    "session_waiters",
    "socket_record",
    "speech_worker",
    "transport",
    "turn_pending",
    "wrap_frame_transport",
]

W = TypeVar("W")


def connection(client: SaynaClient) -> Any:
    """The client's live connection object (fails if it has none)."""
    conn = client._voice._conn
    assert conn is not None, "the client has no connection"
    return conn


def raw_socket(client: SaynaClient) -> aiohttp.ClientWebSocketResponse:
    """The aiohttp WebSocket under the client's connection (aiohttp's data path only: the
    client's own path lets it go once connected)."""
    ws = connection(client)._ws
    assert isinstance(ws, aiohttp.ClientWebSocketResponse), ws
    return ws


def socket_record(client: SaynaClient) -> Any:
    """What the connection keeps of aiohttp's objects for its socket: the WebSocket on
    aiohttp's data path, aiohttp's ``Connection`` (taken out of the upgrade response) on
    the client's own."""
    conn = connection(client)
    record = conn._ws if conn._ws is not None else conn._upgrade
    assert record is not None, "the connection keeps nothing of aiohttp's"
    return record


def frame_writer(client: SaynaClient) -> FrameWriter:
    """The connection's :class:`FrameWriter` (fails when it sends through ``send_bytes``)."""
    conn = connection(client)
    conn.binary_sender()  # made on first use
    writer = conn._frames
    assert isinstance(writer, FrameWriter), "the connection sends through send_bytes"
    return writer


def http_session(client: SaynaClient) -> aiohttp.ClientSession:
    """The aiohttp session the client uses (opened on first use)."""
    session = client._http.session()
    assert isinstance(session, aiohttp.ClientSession)
    return session


def holds_http_session(client: SaynaClient) -> bool:
    """Whether the client still holds an aiohttp session (a lease on the shared one)."""
    return bool(client._http.has_session)


def sender_kind(client: SaynaClient) -> str:
    """How the connection sends audio: ``"frame_writer"`` or ``"send_bytes"``."""
    owner = getattr(connection(client).binary_sender(), "__self__", None)
    return "frame_writer" if isinstance(owner, FrameWriter) else "send_bytes"


def transport(client: SaynaClient) -> Any:
    """The asyncio transport under the client's WebSocket (found as the client finds it)."""
    found = connection(client)._transport()
    assert found is not None, "the socket has no transport"
    return found


def wrap_frame_transport(client: SaynaClient, wrap: Callable[[Any], W]) -> W:
    """Put ``wrap(transport)`` between the frame writer and its transport (a spy that
    records every write); returns the wrapper."""
    writer = frame_writer(client)
    wrapper = wrap(writer._transport)
    writer._transport = wrapper
    return wrapper


def masking_keys(count: int) -> list[bytes]:
    """The next ``count`` masking keys the frame writers of this process would use
    (taken: no frame will use them)."""
    return [wire._new_key() for _ in range(count)]


def open_write_turn() -> None:
    """Mark the running loop's turn as its frame writers do at a turn's first frame."""
    wire._turns_of(asyncio.get_running_loop()).open()


def batch_open(client: SaynaClient) -> bool:
    """Whether the frame writer holds a batch of frames not yet written."""
    return frame_writer(client)._batch is not None


def event_hub(client: SaynaClient) -> Any:
    """The client's event hub (callbacks, iterators and their queues)."""
    return client._voice.hub


def session_waiters(client: SaynaClient) -> int:
    """How many adapters wait for their turn to connect (or join) the client's shared
    session (the adapters' ``SharedSession``: one connect at a time)."""
    lock = SharedSession.of(client)._lock
    waiters = getattr(lock, "_waiters", None)  # (asyncio.Lock's queue; None until used)
    return len(waiters) if waiters else 0


def turn_pending(client: SaynaClient) -> bool:
    """Whether the session tracker has a user turn open (results without a final)."""
    return bool(client._voice.tracker.turn_pending)


def server_state(server: LocalServer) -> Any:
    """The local server's state object (its live sessions, rooms and settings)."""
    return server._state


def speech_worker(server: LocalServer) -> Any:
    """The local engine's speech worker (its ``pid``, ``restarts`` and ``failure``);
    fails when the server runs no started worker."""
    job = server_state(server).engine("local")._worker
    assert job is not None, "the local engine runs no speech worker"
    assert job.done(), "the speech worker is still starting"
    return job.result()


def inbound_frames(server: LocalServer) -> Any:
    """The one live session's :class:`~sayna_client.server.inbound.InboundFrames`, or
    None when aiohttp's parser reads it alone (fails unless one session is live)."""
    (session,) = server_state(server).sessions
    return session.ws.inbound
