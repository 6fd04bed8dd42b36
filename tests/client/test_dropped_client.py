"""A connected client the application drops without ``disconnect()`` is reported and
closed, as aiohttp reports an unclosed session: a ``ResourceWarning`` naming
``disconnect()`` and ``async with``, then the SDK drops its connection (the server's
session ends too), and nothing says the server closed it. A connection the server ends
without a Close frame says so, not what aiohttp failed to write afterwards.

Real parts: the local server, real sockets, the garbage collector; the abrupt server is
a small aiohttp app on loopback.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import sys
import warnings
from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

from helpers.waiting import eventually
from sayna_client import ConnectionClosed, SaynaClient, Timeouts
from sayna_client.server import LocalServer

from .conftest import make_client, serving, stt, tts

#: What the SDK logs when the peer (or the network) ended the session.
BY_THE_SERVER = "closed by the server or network"


async def connected(server: LocalServer) -> tuple[SaynaClient, list[ConnectionClosed], object]:
    """A ready client, the closes it reports, and the server's record of its session."""
    client = make_client(server)
    closes: list[ConnectionClosed] = []
    client.register_on_close(closes.append)  # the callback does not hold the client
    await client.connect()
    return client, closes, server.records.last_session


def drop(held: list[SaynaClient]) -> None:
    """Let go of the only reference to the client, and collect."""
    held.clear()
    gc.collect()


async def test_a_dropped_client_is_reported_and_its_session_closed(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sayna_client")
    kept = make_client(server)
    await kept.connect()  # shares the loop's aiohttp session with the dropped one
    dropped, closes, record = await connected(server)
    held = [dropped]
    del dropped
    with pytest.warns(ResourceWarning, match=r"await client\.disconnect\(\)") as warned:
        drop(held)
    assert "async with" in str(warned[0].message)
    # The SDK drops the connection (nobody is left to wait for a Close handshake), so
    # the server's session ends too.
    await asyncio.wait_for(record.closed.wait(), 10)  # type: ignore[attr-defined]
    assert record.close_code == 1006  # type: ignore[attr-defined]
    await eventually(lambda: closes, what="the close event")
    assert closes[0].initiated_by_client
    assert "garbage-collected" in caplog.text
    # The other client is unaffected, and its departure says nothing of the server.
    assert kept.ready
    await kept.speak("still here")
    await kept.disconnect()
    assert BY_THE_SERVER not in caplog.text


async def test_the_last_client_dropped_closes_its_session_and_the_http_session(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Alone, the client's aiohttp session goes with it (its connections are closed at
    once, the WebSocket's included): still the SDK's close, not the server's."""
    caplog.set_level(logging.INFO, logger="sayna_client")
    dropped, closes, record = await connected(server)
    held = [dropped]
    del dropped
    with pytest.warns(ResourceWarning, match="garbage-collected"):
        drop(held)
    await asyncio.wait_for(record.closed.wait(), 10)  # type: ignore[attr-defined]
    await eventually(lambda: closes, what="the close event")
    assert closes[0].initiated_by_client
    assert BY_THE_SERVER not in caplog.text


async def test_a_closed_client_dropped_is_not_reported(server: LocalServer) -> None:
    client, _, _ = await connected(server)
    await client.disconnect()
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        del client
        gc.collect()


@pytest_asyncio.fixture
async def abrupt() -> AsyncIterator[tuple[str, list[str]]]:
    """A server that answers ``ready`` then ends the TCP connection without a Close
    frame: closed (FIN) or aborted (RST), as the test asks through the list."""
    how: list[str] = ["close"]

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        assert msg.type is WSMsgType.TEXT
        await ws.send_str(json.dumps({"type": "ready", "stream_id": "abrupt"}))
        transport = request.transport
        assert transport is not None
        if how[0] == "abort":
            transport.abort()
        else:
            transport.close()
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    async with serving(app) as url:
        yield url, how


@pytest.mark.parametrize("how", ["close", "abort"])
async def test_a_server_ending_the_tcp_connection_is_named_as_such(
    abrupt: tuple[str, list[str]], how: str, caplog: pytest.LogCaptureFixture
) -> None:
    url, mode = abrupt
    mode[0] = how
    caplog.set_level(logging.INFO, logger="sayna_client")
    client = SaynaClient(url, stt(), tts(), timeouts=Timeouts(connect=5, ready=5, close=2))
    closes: list[ConnectionClosed] = []
    client.register_on_close(closes.append)
    try:
        await client.connect()
        await eventually(lambda: closes, what="the close event")
    finally:
        await client.disconnect()
    info = closes[0]
    assert not info.initiated_by_client
    assert info.code == 1006
    assert "without a Close frame" in info.reason
    assert "Cannot write" not in info.reason  # aiohttp's failed reply, not the cause
    assert BY_THE_SERVER in caplog.text


async def test_an_http_session_closed_under_the_socket_is_a_local_close(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The application closes the aiohttp session it lent the client while connected:
    the connection ends by this process's doing, and says so."""
    caplog.set_level(logging.INFO, logger="sayna_client")
    http = aiohttp.ClientSession()
    client = make_client(server, http_session=http)
    closes: list[ConnectionClosed] = []
    client.register_on_close(closes.append)
    try:
        await client.connect()
        await http.close()
        await eventually(lambda: closes, what="the close event")
    finally:
        await client.disconnect()
    assert closes[0].initiated_by_client
    assert closes[0].reason == "closed by client: the aiohttp ClientSession it used was closed"
    assert BY_THE_SERVER not in caplog.text


#: A script whose event loop ends with a client still connected: kept in a global, or in
#: a reference cycle (a callback using the client), it outlives ``asyncio.run()``.
_LOOP_END_SCRIPT = """
import asyncio, sys
from sayna_client import SaynaClient, STTConfig, TTSConfig
kept = []
async def main():
    client = SaynaClient(sys.argv[1], STTConfig(provider="deepgram"),
                         TTSConfig(provider="elevenlabs", voice_id="v"), api_key=sys.argv[3])
    if sys.argv[2] == "cycle":
        client.register_on_tts_audio(lambda _: client.connected)
    else:
        kept.append(client)
    await client.health()
    await client.connect()
    await client.speak("never disconnected")
asyncio.run(main())
print("end of script", flush=True)
"""


@pytest.mark.parametrize("held_by", ["global", "cycle"])
async def test_a_loop_ending_with_a_client_connected_warns_once_without_tracebacks(
    server: LocalServer, held_by: str
) -> None:
    """aiohttp's objects must not outlive the loop (with aiohttp 3.13 their finalizers
    printed "Unclosed client session" and "Exception ignored in ... ClientResponse.__del__
    ... Event loop is closed"): one ResourceWarning naming the fix, and the session is
    closed by the client."""
    secret = "sk-live-do-not-print-0123456789"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "always::ResourceWarning",
        "-c",
        _LOOP_END_SCRIPT,
        server.url,
        held_by,
        secret,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 0, text
    assert b"end of script" in out
    warned = [line for line in text.splitlines() if "ResourceWarning:" in line]
    assert len(warned) == 1, text
    assert "A SaynaClient was never disconnected" in warned[0]
    assert "`async with SaynaClient(...) as client:`" in warned[0]
    assert "`await client.disconnect()`" in warned[0]
    for noise in ("Traceback", "Exception ignored", "Unclosed", "Event loop is closed"):
        assert noise not in text, text
    assert BY_THE_SERVER not in text
    assert secret not in text
    record = server.records.last_session
    await asyncio.wait_for(record.closed.wait(), 10)
