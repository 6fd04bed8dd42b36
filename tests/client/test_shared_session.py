"""Clients given no ``http_session`` share one aiohttp session per event loop (memory per
idle session, issue #19), and stay isolated: one client's close never closes another's
socket, nor the session the others still use; the last one to leave closes it."""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings

import pytest
from aiohttp import web

from helpers import internals
from helpers.waiting import eventually
from sayna_client import RetryPolicy, SaynaClient, SaynaError, Timeouts
from sayna_client import _http_sessions as http_sessions
from sayna_client.server import LocalServer

from .conftest import make_client, serving


async def test_clients_of_one_loop_share_one_session(server: LocalServer) -> None:
    first, second = make_client(server), make_client(server)
    await first.health()
    await second.health()
    assert internals.http_session(first) is internals.http_session(second)
    await first.disconnect()
    await second.disconnect()


async def test_one_clients_close_leaves_the_others_socket_open(server: LocalServer) -> None:
    first, second = make_client(server), make_client(server)
    heard: list[bytes] = []
    second.register_on_tts_audio(heard.append)
    await first.connect()
    await second.connect()
    shared = internals.http_session(second)
    await first.disconnect()
    assert not first.connected
    assert second.connected
    assert second.ready
    assert not shared.closed
    # The socket still carries both ways: audio up, TTS down, and REST still answers.
    await second.on_audio_input(b"\x00\x00" * 320)
    await second.speak("still here")
    sessions = server.records.sessions
    mine = sessions[1]  # the second connected second
    await server.records.wait_for(lambda: mine.audio_frames >= 1)
    await server.records.wait_for(lambda: heard)
    assert (await second.health()) is not None
    await second.disconnect()
    await server.records.wait_for(lambda: all(s.closed.is_set() for s in sessions))
    assert [s.close_code for s in sessions] == [1000, 1000]
    assert shared.closed  # the last client closed it


async def test_a_new_client_after_the_last_left_gets_a_fresh_session(
    server: LocalServer,
) -> None:
    first = make_client(server)
    await first.health()
    old = internals.http_session(first)
    await first.disconnect()
    assert old.closed
    second = make_client(server)
    await second.health()
    assert internals.http_session(second) is not old
    assert not internals.http_session(second).closed
    await second.disconnect()


async def test_a_dropped_client_leaves_the_session_to_the_others(server: LocalServer) -> None:
    kept = make_client(server)
    await kept.connect()
    shared = internals.http_session(kept)
    dropped = make_client(server)
    await dropped.health()
    assert internals.http_session(dropped) is shared
    del dropped
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()
    assert not shared.closed
    assert kept.ready
    await kept.speak("still here")
    await kept.disconnect()
    assert shared.closed


async def test_clients_with_other_connect_timeouts_share_one_session(server: LocalServer) -> None:
    """The shared session has no timer of its own (a timer per request, kept by aiohttp
    until it fires: issue #19); each handshake is bounded by its client's
    ``Timeouts.connect`` (tests/client/test_lifecycle.py: a hung handshake times out)."""
    short = make_client(server)
    long = make_client(server, timeouts=Timeouts(connect=30, ready=10, request=10, close=2))
    await short.connect()
    await long.connect()
    assert internals.http_session(short) is internals.http_session(long)
    assert internals.http_session(long).timeout.total is None
    await asyncio.gather(short.disconnect(), long.disconnect())


async def test_a_changed_connect_timeout_keeps_the_shared_session(server: LocalServer) -> None:
    other = make_client(server)
    await other.connect()
    client = make_client(server)
    await client.connect()
    shared = internals.http_session(client)
    await client.disconnect()
    client.timeouts = Timeouts(connect=7, ready=10, request=10, close=2)
    await client.connect()
    assert internals.http_session(client) is shared
    await client.speak("on the same session")
    await client.disconnect()
    assert not shared.closed  # the other client still holds it
    assert other.ready
    await other.disconnect()
    assert shared.closed


def _collect(held: list[SaynaClient]) -> None:
    """Let go of the only reference to the client, and collect."""
    held.clear()
    gc.collect()


@pytest.fixture(params=[True, False], ids=["aiohttp-sync-close", "public-close"])
def sync_close(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways a dropped client's connections are closed: aiohttp's synchronous close,
    and its public ``close()`` awaited on the loop (what an aiohttp without the former
    gets), through the documented internal switch."""
    monkeypatch.setattr(http_sessions, "SYNC_CLOSE", request.param)
    return bool(request.param)


async def test_the_last_client_dropped_closes_the_session_quietly(
    server: LocalServer, sync_close: bool
) -> None:
    """A REST-only script may end without disconnect(): its pooled connection and the
    shared session are closed, with no "Unclosed client session" or "Unclosed
    connector" warning."""
    client = make_client(server)
    await client.health()  # leaves a keep-alive connection in the pool
    http = internals.http_session(client)
    connector = http.connector
    assert connector is not None
    held = [client]
    del client
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        _collect(held)
        assert http.closed  # at once, either way: no later use can reach it
        await eventually(lambda: connector.closed, what="the connections closed")
        gc.collect()


async def test_a_client_collected_on_another_thread_is_released_on_its_loop(
    server: LocalServer, sync_close: bool
) -> None:
    """The collector may run on any thread: the session's connections belong to the
    loop, which closes them (asyncio's transports are not thread-safe)."""
    client = make_client(server)
    await client.health()
    http = internals.http_session(client)
    connector = http.connector
    assert connector is not None
    held = [client]
    del client
    dropper = threading.Thread(target=_collect, args=(held,))
    dropper.start()
    await asyncio.to_thread(dropper.join)
    await eventually(lambda: http.closed and connector.closed, what="closed on the loop")


async def test_a_rest_call_from_another_loop_leaves_the_session_open(server: LocalServer) -> None:
    # The socket holds its own lease of its loop's shared session: the REST calls'
    # lease moving to another loop (and back) never closes it under the socket.
    closes: list[object] = []
    async with make_client(server) as client:
        client.register_on_close(closes.append)
        await client.connect()
        health = await asyncio.to_thread(asyncio.run, client.health())
        assert health.status == "OK"
        assert (await client.health()).status == "OK"  # (the lease is back on this loop)
        handle = await client.speak("still here", wait=True, timeout=10)
        assert handle.done
        assert client.ready
        assert closes == []


async def test_a_failed_connect_leaves_a_rest_call_in_flight_alone() -> None:
    # A REST call sent once (no retry) is in flight when the same client's connect()
    # fails: the socket gives back only its own lease, so the call gets its answer.
    reached, release = asyncio.Event(), asyncio.Event()

    async def health(request: web.Request) -> web.Response:
        reached.set()
        await release.wait()
        return web.json_response({"status": "OK"})

    async def refuse_upgrade(request: web.Request) -> web.Response:
        return web.Response(status=503, text="busy")

    app = web.Application()
    app.router.add_get("/", health)
    app.router.add_get("/ws", refuse_upgrade)
    async with serving(app) as url:
        client = SaynaClient(url, without_audio=True, retry=RetryPolicy(max_retries=0))
        call = asyncio.ensure_future(client.health())
        try:
            await reached.wait()
            with pytest.raises(SaynaError):
                await client.connect()
        finally:
            release.set()
        assert (await call).status == "OK"
        await client.disconnect()
