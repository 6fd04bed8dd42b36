"""Clients given no ``http_session`` share one aiohttp session per event loop (memory per
idle session, issue #19), and stay isolated: one client's close never closes another's
socket, nor the session the others still use; the last one to leave closes it."""

from __future__ import annotations

import asyncio
import gc
import warnings

from helpers import internals
from sayna_client import Timeouts
from sayna_client.server import LocalServer

from .conftest import make_client


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
