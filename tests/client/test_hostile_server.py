"""Hostile WebSocket servers on loopback: frames built to crash a decoder, sessions that
die right after ``ready`` every time, and upgrades redirected elsewhere."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Callable

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

from helpers.waiting import eventually
from sayna_client import (
    ApiKeyAuth,
    ConnectionClosed,
    MalformedMessage,
    Reconnecting,
    ReconnectPolicy,
    SaynaClient,
    SaynaHttpError,
    Timeouts,
)

from .conftest import serving, start_app, stt, tts

Script = Callable[[web.WebSocketResponse], Awaitable[None]]

NESTED_ARRAYS = "[" * 1000 + "]" * 1000  # 2 KB, 1,000 levels
NESTED_OBJECTS = '{"a":' * 1000 + "1" + "}" * 1000
HUGE_INT = '{"type": "stt_result", "transcript": "x", "n": ' + "9" * 5000 + "}"
HUGE_INT_ALONE = "9" * 5000
LONE_SURROGATE = '{"type": "mystery", "text": "\\ud800 broken"}'
NOT_OBJECTS = ["[1, 2]", "42", "null", '"text"', "true"]
STILL_HERE = {
    "message": "still here",
    "identity": "srv",
    "topic": "default",
    "room": "livekit",
    "timestamp": 1,
}
#: In the order the hostile server sends them (then a valid message).
HOSTILE = [NESTED_ARRAYS, NESTED_OBJECTS, HUGE_INT, HUGE_INT_ALONE, *NOT_OBJECTS]


async def _ready(ws: web.WebSocketResponse) -> None:
    """Read the config and answer ``ready`` as the server does."""
    msg = await ws.receive()
    assert msg.type is WSMsgType.TEXT
    assert json.loads(msg.data)["type"] == "config"
    await ws.send_str(json.dumps({"type": "ready", "stream_id": "hostile"}))


class Hostile:
    """A WebSocket endpoint at /ws running ``script`` for every connection."""

    def __init__(self) -> None:
        self.script: Script = _ready
        self.connections = 0
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        self.app = app

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        self.connections += 1
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await self.script(ws)
        # Keep the socket until the client closes it (the script may have closed it).
        async for _ in ws:
            pass
        return ws


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[tuple[Hostile, str]]:
    server = Hostile()
    async with serving(server.app) as url:
        yield server, url


def _client(url: str, **kwargs: Any) -> SaynaClient:
    kwargs.setdefault("timeouts", Timeouts(connect=5, ready=5, request=5, close=2))
    return SaynaClient(url, stt(), tts(), **kwargs)


async def test_hostile_frames_are_malformed_messages_and_the_session_lives(
    hostile: tuple[Hostile, str], caplog: pytest.LogCaptureFixture
) -> None:
    server, url = hostile

    async def script(ws: web.WebSocketResponse) -> None:
        await _ready(ws)
        for frame in HOSTILE:
            await ws.send_str(frame)
        await ws.send_str(LONE_SURROGATE)
        await ws.send_str(json.dumps({"type": "message", "message": STILL_HERE}))

    server.script = script
    caplog.set_level(logging.DEBUG)
    async with _client(url) as client:
        malformed: list[MalformedMessage] = []
        events: list[Any] = []
        closes: list[ConnectionClosed] = []
        client.on("malformed_message", malformed.append)
        client.register_on_close(closes.append)
        client.on("unknown", events.append)
        client.register_on_message(events.append)
        await client.connect()
        await eventually(lambda: any(getattr(e, "type", "") == "message" for e in events))
        assert len(malformed) == len(HOSTILE)
        reasons = [m.reason for m in malformed]
        assert "nested too deeply" in reasons[0]
        assert "nested too deeply" in reasons[1]
        assert all(len(m.raw) < 300 for m in malformed)  # a preview, never the frame
        assert closes == []
        assert client.ready
        assert "Traceback" not in caplog.text
        assert "RecursionError" not in caplog.text


async def test_invalid_utf8_in_a_text_frame_ends_the_session_with_a_typed_close(
    hostile: tuple[Hostile, str],
) -> None:
    # RFC 6455 §8.1: a text frame that is not UTF-8 fails the connection (aiohttp's reader
    # enforces it before any SDK code sees the frame). The SDK reports it as a typed close,
    # 1007, does not reconnect (the server would send it again) and raises nothing.
    server, url = hostile

    async def script(ws: web.WebSocketResponse) -> None:
        await _ready(ws)
        await ws._writer.send_frame(b'{"type": "\xff\xfe"}', WSMsgType.TEXT)  # type: ignore[union-attr]

    server.script = script
    async with _client(url, reconnect=ReconnectPolicy(initial_backoff=0.01)) as client:
        closes: list[ConnectionClosed] = []
        client.register_on_close(closes.append)
        await client.connect()
        await eventually(lambda: bool(closes))
        assert closes[0].code == 1007
        assert not closes[0].will_reconnect
    assert server.connections == 1


async def test_a_session_that_dies_after_ready_every_time_backs_off_and_gives_up(
    hostile: tuple[Hostile, str],
) -> None:
    # Every connection gets `ready` and is then closed with 1011: each reconnect
    # "succeeds", so counting attempts per reconnect would go on for ever.
    server, url = hostile

    async def script(ws: web.WebSocketResponse) -> None:
        await _ready(ws)
        await ws.close(code=1011, message=b"internal error")

    server.script = script
    policy = ReconnectPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.05, jitter=0)
    async with _client(url, reconnect=policy) as client:
        attempts: list[Reconnecting] = []
        closes: list[ConnectionClosed] = []
        client.on("reconnecting", attempts.append)
        client.register_on_close(closes.append)
        await client.connect()
        await eventually(lambda: bool(closes) and not closes[-1].will_reconnect)
        await eventually(lambda: not client.reconnecting)
        assert [a.attempt for a in attempts] == [1, 2, 3]
        assert [a.delay for a in attempts] == [0.01, 0.02, 0.04]  # the backoff carried on
        assert server.connections == 4  # the first session and three attempts
        assert not client.connected


class Target:
    """Where a redirect points: it records every request it gets."""

    def __init__(self, *routes: web.RouteDef) -> None:
        self.requests: list[str] = []
        self.configs: list[str] = []
        app = web.Application()
        app.add_routes(routes)
        app.router.add_get("/{tail:.*}", self._any)
        self.app = app

    async def _any(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(request.path_qs)
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return web.Response(text="not here")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        if msg.type is WSMsgType.TEXT:
            self.configs.append(msg.data)
        await ws.send_str(json.dumps({"type": "ready", "stream_id": "stolen"}))
        async for _ in ws:
            pass
        return ws


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_websocket_redirects_to_another_origin_are_refused(status: int, host: str) -> None:
    target = Target()
    target_runner, target_url = await start_app(target.app)
    port = target_url.rsplit(":", 1)[1]
    location = f"ws://{host}:{port}/ws?api_key=leak"

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    app = web.Application()
    app.router.add_get("/ws", redirect)
    runner, url = await start_app(app)
    secret = ApiKeyAuth(api_key="provider-secret-0003")
    try:
        async with SaynaClient(
            url, stt(auth=secret), tts(), timeouts=Timeouts(connect=5, ready=5)
        ) as client:
            with pytest.raises(SaynaHttpError) as info:
                await client.connect()
    finally:
        await runner.cleanup()
        await target_runner.cleanup()
    error = info.value
    assert error.status_code == status
    assert f"ws://{host}:{port}/ws" in str(error)  # names the target
    assert "leak" not in str(error)
    assert target.requests == []  # never followed
    assert target.configs == []


async def test_a_redirect_within_the_same_origin_is_followed() -> None:
    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": "/new/ws"})

    target = Target(web.get("/old/ws", moved))
    runner, base = await start_app(target.app)
    try:
        async with SaynaClient(
            base + "/old", stt(), tts(), timeouts=Timeouts(connect=5, ready=5)
        ) as client:
            await client.connect()
            assert client.ready
    finally:
        await runner.cleanup()
    assert target.requests == ["/new/ws"]


async def _connect_redirected_in_own_session(location: str) -> tuple[SaynaHttpError, str]:
    """Connect through a user's own session (http_session=) to a server that answers the
    upgrade with a 307 to ``location``; returns the error and the server's URL."""

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=307, headers={"Location": location})

    app = web.Application()
    app.router.add_get("/ws", redirect)
    runner, url = await start_app(app)
    try:
        async with (
            aiohttp.ClientSession() as own,
            SaynaClient(
                url, stt(), tts(), timeouts=Timeouts(connect=5, ready=5), http_session=own
            ) as client,
        ):
            with pytest.raises(SaynaHttpError) as info:
                await client.connect()
    finally:
        await runner.cleanup()
    return info.value, url


async def test_a_users_own_session_does_not_send_the_config_after_a_redirect() -> None:
    # aiohttp follows the redirect inside a session the client did not make
    # (http_session=): the client must still refuse before sending the config.
    target = Target()
    target_runner, target_url = await start_app(target.app)
    try:
        error, _ = await _connect_redirected_in_own_session(target_url + "/ws")
    finally:
        await target_runner.cleanup()
    assert error.status_code == 307
    assert target_url.split("//", 1)[1] in str(error)
    assert target.configs == []  # the socket was closed before the config


@pytest.mark.parametrize("refusal", [404, 401, 200])
async def test_a_users_session_redirected_to_a_refusing_origin_says_redirect(
    refusal: int,
) -> None:
    """With http_session=, aiohttp follows the redirect; when the other origin refuses
    the upgrade, the error was that origin's status (SaynaNotFoundError "no reason
    given") named after the original URL, the redirect nowhere said."""
    reached: list[str] = []

    async def elsewhere(request: web.Request) -> web.Response:
        reached.append(request.path)
        return web.json_response({"error": "no such page"}, status=refusal)

    target = web.Application()
    target.router.add_get("/{tail:.*}", elsewhere)
    target_runner, target_url = await start_app(target)
    try:
        error, url = await _connect_redirected_in_own_session(target_url + "/ws?token=leak")
    finally:
        await target_runner.cleanup()
    assert type(error) is SaynaHttpError
    assert error.status_code == 307
    assert error.error == "redirect"
    assert error.body == {"location": target_url + "/ws"}
    assert str(error).startswith(
        f"The WebSocket upgrade to {'ws' + url[4:]}/ws was redirected (HTTP 307) to "
        f"{target_url}/ws."
    )
    assert "leak" not in str(error)
    assert reached == ["/ws"]  # aiohttp followed it once; nothing asked it again
