"""The client's own WebSocket data path (``realtime.framing``, ``realtime.wire``) against
peers it meets in the field: TLS directly and through an HTTP CONNECT proxy, uvloop's
transports, and a raw-socket server that sends Pings while it reads nothing.

Real parts only: aiohttp and raw asyncio servers on loopback, real TLS, real uvloop (the
test on it is skipped where uvloop is not installed; it is in the ``dev`` extra).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import ssl
import struct
from collections.abc import Awaitable
from typing import Any, Callable

import pytest
from aiohttp import web

from helpers import internals
from helpers.waiting import eventually
from sayna_client import (
    ConnectionClosed,
    EventsDropped,
    ReconnectPolicy,
    SaynaClient,
    SaynaConnectionError,
    Timeouts,
)

from .conftest import start_app, stt, tts

# The fixtures tls_contexts, no_proxy_env and serve are those modules' (taken by name).
from .test_first_hour import ForwardProxy, TlsFront, no_proxy_env, tls_contexts  # noqa: F401
from .test_framing import (  # noqa: F401
    MESSAGE,
    RawServer,
    Script,
    _client,
    frame,
    results,
    serve,
    text,
)

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@pytest.mark.parametrize("via_proxy", [False, True], ids=["wss", "wss-through-connect"])
async def test_tls_uses_the_own_path_for_a_burst_and_the_close_handshake(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],  # noqa: F811
    tls_contexts: tuple[ssl.SSLContext, ssl.SSLContext],  # noqa: F811
    no_proxy_env: pytest.MonkeyPatch,  # noqa: F811
    via_proxy: bool,
) -> None:
    # The TLS transport pauses and resumes reading between turns (128 frames a turn),
    # and the client's Close goes through it.
    burst = results(3000)

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(burst)

    server, url = await serve(script)
    server_context, client_context = tls_contexts
    port = int(url.rsplit(":", 1)[1])
    async with TlsFront(port, server_context) as front, ForwardProxy() as proxy:
        kwargs: dict[str, Any] = {"ssl": client_context, "max_queue": 1000}
        if via_proxy:
            kwargs["proxy"] = proxy.url
        client = _client(front.url, **kwargs)
        seen: list[str] = []
        dropped: list[EventsDropped] = []
        closes: list[ConnectionClosed] = []
        client.register_on_stt_result(lambda result: seen.append(result.transcript))
        client.on("events_dropped", dropped.append)
        client.register_on_close(closes.append)
        await client.connect()
        assert internals.sender_kind(client) == "frame_writer"
        await eventually(lambda: len(seen) == 3000 or dropped or closes)
        assert (dropped, closes) == ([], [])
        assert seen == [f"w{i}" for i in range(3000)]
        await client.disconnect(drain=0)  # no turn of speech to wait for: close now
        assert (closes[0].code, closes[0].initiated_by_client) == (1000, True)
        await asyncio.wait_for(server.finished.wait(), 10)
        assert server.client_close == 1000
    assert bool(proxy.requests) is via_proxy


def test_on_uvloop_a_burst_of_audio_frames_reaches_a_keeping_up_consumer() -> None:
    # uvloop (libuv) reads a socket up to 32 times in one turn of its loop, one
    # data_received each: 3,000 TTS frames of 4 KiB already in the socket came to the
    # callbacks' queue (1,000 events) before the dispatcher had a turn, and 1,179 were
    # dropped, while asyncio's loop and aiohttp's path dropped none.
    uvloop = pytest.importorskip("uvloop")
    count, size = 3000, 4096

    async def scenario() -> None:
        burst = b"".join(frame(0x82, i.to_bytes(4, "big") * (size // 4)) for i in range(count))

        async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
            server.write(burst)

        raw = RawServer(script)
        runner, url = await start_app(raw.app)
        try:
            client = _client(url, max_queue=1000)
            heads: list[int] = []
            dropped: list[EventsDropped] = []
            client.register_on_tts_audio(
                lambda chunk: heads.append(int.from_bytes(chunk[:4], "big"))
            )
            client.on("events_dropped", dropped.append)
            await client.connect()
            assert internals.sender_kind(client) == "frame_writer"
            await eventually(lambda: len(heads) == count or dropped)
            assert dropped == []
            assert heads == list(range(count))
            await client.disconnect()
        finally:
            await runner.cleanup()

    _run_on(uvloop, scenario)


def test_on_uvloop_an_upload_that_never_waits_learns_of_a_reset_at_once() -> None:
    # The server resets the connection in the middle of an upload faster than real time
    # whose loop catches each error and goes on without waiting: the first send that
    # finds the transport closed ends the session as lost there and then (uvloop tells
    # of the loss at a later turn of its loop, which such a loop never reaches), so the
    # reconnection starts and the later frames are held and replayed, not refused.
    uvloop = pytest.importorskip("uvloop")
    total, reset_after = 20_000, 2_000
    sessions: list[list[int]] = []

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        heard: list[int] = []
        sessions.append(heard)
        async for message in ws:
            if message.type == web.WSMsgType.TEXT and json.loads(message.data)["type"] == "config":
                await ws.send_str(json.dumps({"type": "ready", "stream_id": "upload"}))
            elif message.type == web.WSMsgType.BINARY:
                heard.append(int.from_bytes(message.data[:4], "big"))
                if len(sessions) == 1 and len(heard) == reset_after:
                    assert request.transport is not None
                    request.transport.abort()
                    break
        return ws

    async def scenario() -> None:
        app = web.Application()
        app.router.add_get("/ws", handler)
        runner, url = await start_app(app)
        try:
            policy = ReconnectPolicy(initial_backoff=0.05, buffer_bytes=64 << 20)
            client = SaynaClient(url, stt(), tts(sample_rate=16000), reconnect=policy)
            await client.connect()
            assert internals.sender_kind(client) == "frame_writer"
            refused = []
            for index in range(total):
                try:
                    await client.on_audio_input(index.to_bytes(4, "big") + bytes(636))
                except SaynaConnectionError:
                    refused.append(index)
            assert len(refused) <= 1  # (at most the send that found the reset)
            await eventually(lambda: len(sessions) == 2 and sessions[1][-1:] == [total - 1])
            after = refused[-1] + 1 if refused else sessions[0][-1] + 1
            assert sessions[1][0] <= after
            await client.disconnect(drain=0)
        finally:
            await runner.cleanup()

    _run_on(uvloop, scenario)


def _run_on(uvloop: Any, scenario: Callable[[], Awaitable[None]]) -> None:
    """Run ``scenario`` on a new uvloop event loop (the test's own loop is asyncio's)."""
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(scenario())
    finally:
        loop.close()


def _server_frame(first: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One masked client frame: (first byte, unmasked payload)."""
    first, second = await reader.readexactly(2)
    size = second & 0x7F
    if size == 126:
        size = struct.unpack("!H", await reader.readexactly(2))[0]
    elif size == 127:
        size = struct.unpack("!Q", await reader.readexactly(8))[0]
    mask = await reader.readexactly(4)
    data = await reader.readexactly(size)
    return first, bytes(b ^ mask[i % 4] for i, b in enumerate(data))


class PingFlood:
    """A raw-socket WebSocket server: after ``ready`` it stops reading, writes
    ``pings`` Pings (the last carries ``b"last"``) and a chat message, then waits for
    ``resume`` and reads the client's frames, recording its Pongs."""

    def __init__(self, pings: int) -> None:
        self.pings = pings
        self.resume = asyncio.Event()
        self.pongs: list[bytes] = []
        self.url = ""
        self._server: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()

    async def __aenter__(self) -> PingFlood:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # stops taking soon
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._handle, sock=sock)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            key = next(
                line.split(b":", 1)[1].strip()
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"sec-websocket-key:")
            )
            accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            assert json.loads((await _read_frame(reader))[1])["type"] == "config"
            writer.write(
                _server_frame(0x81, json.dumps({"type": "ready", "stream_id": "p"}).encode())
            )
            writer.transport.pause_reading()
            ping = _server_frame(0x89, b"p" * 125)
            for _ in range(self.pings - 1):
                writer.write(ping)
            writer.write(_server_frame(0x89, b"last"))
            writer.write(_server_frame(0x81, json.dumps(MESSAGE).encode()))
            await self.resume.wait()
            writer.transport.resume_reading()
            while True:
                first, payload = await _read_frame(reader)
                if first == 0x8A:
                    self.pongs.append(payload)
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.transport.abort()
            self._tasks.discard(task)


async def test_pings_from_a_server_that_reads_nothing_do_not_pile_up_pongs() -> None:
    # 130,000 Pings (16 MB) while the server reads nothing: each Pong used to be written
    # to the transport's buffer regardless (13 MB there when the flood ended). Now, while
    # the transport is paused, only the latest Ping is answered once it drains.
    async with PingFlood(130_000) as server:
        client = SaynaClient(
            server.url, stt(), tts(), timeouts=Timeouts(connect=5, ready=5, request=5, close=2)
        )
        messages: list[Any] = []
        client.register_on_message(messages.append)
        await client.connect()
        assert internals.sender_kind(client) == "frame_writer"
        await eventually(lambda: messages)  # every Ping before the message was handled
        assert internals.transport(client).get_write_buffer_size() < 1024 * 1024
        server.resume.set()
        await eventually(lambda: b"last" in server.pongs)
        assert server.pongs[-1] == b"last"  # the latest Ping's, after the others'
        assert len(server.pongs) < 65_000  # the rest: what the kernel buffers held
        await client.disconnect()
