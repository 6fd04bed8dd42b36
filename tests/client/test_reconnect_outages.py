"""Outages at the edges of the reconnection: a loop that ends while the server's socket
closes, a server that refuses attempts with ``Retry-After``, a hung server that still
lets its kernel take our audio.

Real parts only: the local server, small aiohttp servers on loopback, real sockets,
subprocesses for a whole ``asyncio.run()``.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Optional, TypeVar

import pytest
from aiohttp import WSMsgType, web

from sayna_client import (
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    SaynaClient,
    SaynaConnectionError,
    SaynaInternalServerError,
    SaynaNotConnectedError,
    SaynaRateLimitError,
)

from .conftest import serving, stt, tts

#: A script whose ``main()`` raises with a reconnecting client connected and its server
#: in the same loop: ``asyncio.run()`` cancels the server's tasks, whose socket closes
#: while the loop ends (a recoverable loss), with the client held by a global or not.
_LOOP_END_SCRIPT = """
import asyncio, gc, sys
from sayna_client import ReconnectPolicy, SaynaClient, STTConfig, TTSConfig
from sayna_client.server import LocalServer
kept = []
async def main():
    server = LocalServer(port=0)
    await server.start()
    client = SaynaClient(server.url, STTConfig(provider="deepgram"),
                         TTSConfig(provider="elevenlabs", voice_id="v"),
                         reconnect=ReconnectPolicy(initial_backoff=0.2))
    if sys.argv[1] == "global":
        kept.append(client)
    await client.connect()
    raise RuntimeError("the application failed")
try:
    asyncio.run(main())
except RuntimeError as exc:
    print("main raised:", exc, flush=True)
kept.clear()
gc.collect()
print("end of script", flush=True)
"""


async def _run_loop_end_script(held_by: str) -> str:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-X",
        "dev",
        "-c",
        _LOOP_END_SCRIPT,
        held_by,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = err.decode()
    assert proc.returncode == 0, text
    assert b"end of script" in out, text
    return text


E = TypeVar("E", bound=Exception)


async def _refused_connect(answers: list[tuple[int, dict[str, str]]], error_type: type[E]) -> E:
    """The error ``connect()`` raises against :func:`_busy_server` answering ``answers``."""
    async with serving(_busy_server(answers)) as url:
        client = SaynaClient(url, stt(), tts())
        try:
            with pytest.raises(error_type) as caught:
                await client.connect()
        finally:
            await client.disconnect()
    return caught.value


async def test_a_loss_as_the_loop_ends_starts_no_reconnection_left_pending() -> None:
    """The close the loop's teardown causes started a reconnection after the loop had
    cancelled its tasks: "Task was destroyed but it is pending", a ReferenceError from
    the destroyed task, and no word of the client never disconnected. Now the loop-end
    hook stays while the outage is open and ends it, with the usual warning."""
    for held_by in ("global", "local"):
        text = await _run_loop_end_script(held_by)
        for noise in ("Task was destroyed", "ReferenceError", "Exception ignored", "Traceback"):
            assert noise not in text, text
        warned = [line for line in text.splitlines() if "ResourceWarning: A SaynaClient" in line]
        assert len(warned) == 1, text
        assert "was never disconnected" in warned[0]


def _busy_server(answers: list[tuple[int, dict[str, str]]]) -> web.Application:
    """A Sayna-ish peer whose upgrades get ``answers`` in turn (the last repeats):
    ``(status, headers)`` refuses the upgrade (and the body request that follows it);
    status 101 accepts it, sends ``ready`` and, while answers remain, closes with 1011
    right after (a recoverable loss)."""
    state = {"upgrades": 0, "refusal": (0, {})}

    async def handler(request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            status, headers = state["refusal"]  # type: ignore[misc]
            return web.json_response({"error": "busy"}, status=status or 400, headers=headers)
        n = state["upgrades"]
        state["upgrades"] = n + 1  # type: ignore[operator]
        status, headers = answers[min(n, len(answers) - 1)]  # type: ignore[call-overload]
        if status != 101:
            state["refusal"] = (status, headers)
            return web.json_response({"error": "busy"}, status=status, headers=headers)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and json.loads(msg.data).get("type") == "config":
                await ws.send_str('{"type":"ready","stream_id":"s1"}')
                if n + 1 < len(answers):
                    await ws.close(code=1011, message=b"restarting")
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return app


@pytest.mark.parametrize(
    ("status", "error_type", "busy"),
    [(429, SaynaRateLimitError, "rate-limited"), (503, SaynaInternalServerError, "over capacity")],
)
async def test_a_busy_servers_refusal_carries_its_retry_after(
    status: int, error_type: type, busy: str
) -> None:
    error = await _refused_connect([(status, {"Retry-After": "7"})], error_type)
    assert error.status_code == status
    assert error.retry_after == 7.0
    assert f"the server is {busy}: retry in 7 s (Retry-After)" in str(error)
    assert "check the URL" not in str(error)


async def test_a_refusal_without_retry_after_says_retry_later() -> None:
    error = await _refused_connect([(503, {})], SaynaInternalServerError)
    assert error.retry_after is None
    assert "the server is over capacity: retry later" in str(error)


async def test_reconnect_attempts_wait_as_long_as_a_refusals_retry_after() -> None:
    """Each attempt after one refused with ``Retry-After: 1`` waits that long (the
    ``Reconnecting`` event's delay), not the policy's short backoff; a hint past
    ``max_backoff`` is capped there."""
    for max_backoff, expected in ((30.0, 1.0), (0.5, 0.5)):
        app = _busy_server(
            [(101, {}), (429, {"Retry-After": "1"}), (503, {"Retry-After": "1"}), (101, {})]
        )
        async with serving(app) as url:
            policy = ReconnectPolicy(initial_backoff=0.01, max_backoff=max_backoff, jitter=0)
            client = SaynaClient(url, stt(), tts(), reconnect=policy)
            events = client.events()
            try:
                await client.connect()
                delays = []
                async for event in events:
                    if isinstance(event, Reconnecting):
                        delays.append(event.delay)
                    elif isinstance(event, Reconnected):
                        break
            finally:
                await client.disconnect()
        assert delays[0] == 0.01  # the first attempt: nothing refused yet
        assert delays[1:] == [expected, expected], delays


#: Valid HTTP dates in the past: ``-0000`` parses to a naive datetime, GMT to an aware one.
_DATES = ["Wed, 21 Oct 2015 07:28:00 -0000", "Wed, 21 Oct 2015 07:28:00 GMT"]


@pytest.mark.parametrize("date", _DATES)
async def test_a_refusal_whose_retry_after_is_a_date_raises_its_typed_error(date: str) -> None:
    """The ``-0000`` form made connect() raise a raw TypeError (a naive date minus an
    aware "now") instead of the refusal's SaynaInternalServerError."""
    error = await _refused_connect([(503, {"Retry-After": date})], SaynaInternalServerError)
    assert error.retry_after == 0.0  # a date in the past: retry now
    assert "retry in 0 s (Retry-After)" in str(error)


async def test_retry_after_is_read_only_on_a_busy_servers_refusal() -> None:
    """A 502's Retry-After means nothing (RFC 9110: 503 and 3xx): not kept, not named."""
    error = await _refused_connect([(502, {"Retry-After": "7"})], SaynaInternalServerError)
    assert error.retry_after is None
    assert "Retry-After" not in str(error)


@pytest.mark.parametrize("date", _DATES)
async def test_reconnection_survives_a_refusal_whose_retry_after_is_a_date(date: str) -> None:
    """The TypeError killed the reconnect task ("Task exception was never retrieved"):
    the session was never re-established, and no close said so."""
    app = _busy_server([(101, {}), (503, {"Retry-After": date}), (101, {})])
    async with serving(app) as url:
        policy = ReconnectPolicy(initial_backoff=0.01, max_backoff=0.05, jitter=0)
        client = SaynaClient(url, stt(), tts(), reconnect=policy)
        events = client.events()
        try:
            await client.connect()
            async for event in events:
                if isinstance(event, Reconnected):
                    break
        finally:
            await client.disconnect()
    assert event.attempt == 2  # the refused attempt counted as one, then ready again


async def test_an_unexpected_failure_of_an_attempt_is_a_failed_attempt(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """An attempt that raises something unforeseen (a bug of ours or of a dependency) is
    logged with its traceback and retried like a lost connection, never the silent
    death of the reconnect task; attempts that all fail that way end the outage with
    the usual close."""
    from sayna_client.realtime import handshake

    real = handshake.retry_after_seconds
    calls = {"n": 0}

    def broken(value: Optional[str]) -> Optional[float]:
        calls["n"] += 1
        raise TypeError("a fault in the client (it quotes sk-s3cret-key-123)")

    recovering = [(101, {}), (503, {}), (101, {})]
    for answers, recovers in ((recovering, True), (recovering[:2], False)):
        monkeypatch.setattr(handshake, "retry_after_seconds", broken)
        app = _busy_server(answers)
        async with serving(app) as url:
            policy = ReconnectPolicy(max_attempts=2, initial_backoff=0.01, jitter=0)
            client = SaynaClient(url, stt(), tts(), api_key="sk-s3cret-key-123", reconnect=policy)
            events = client.events()
            seen = []
            try:
                await client.connect()
                async for event in events:
                    seen.append(event)
                    if isinstance(event, Reconnected) or (
                        event.type == "closed" and not event.will_reconnect
                    ):
                        break
            finally:
                await client.disconnect()
                monkeypatch.setattr(handshake, "retry_after_seconds", real)
        last = seen[-1]
        if recovers:
            assert isinstance(last, Reconnected)
            assert last.attempt == 2
        else:
            assert last.type == "closed", seen
            assert last.code == 1011
            assert [e.attempt for e in seen if isinstance(e, Reconnecting)] == [1, 2]
    assert calls["n"] == 3
    assert "Reconnect attempt 1 failed unexpectedly" in caplog.text
    assert "TypeError: a fault in the client" in caplog.text
    assert "sk-s3cret-key-123" not in caplog.text  # the traceback logged is masked too


async def test_audio_sent_to_a_hung_server_is_reported_when_the_heartbeat_finds_it_dead() -> None:
    """A frozen server (it reads nothing after ``ready``) whose kernel still takes the
    microphone's audio: found dead within the heartbeat's bound, and every frame it
    never answered for is reported as ``AudioDropped(unconfirmed=True)`` before the
    close, not lost silently in its buffers."""
    release = asyncio.Event()

    async def frozen(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str('{"type":"ready","stream_id":"s1"}')
                assert request.transport is not None
                request.transport.pause_reading()  # hung: reads (and answers) nothing
                await release.wait()
                break
        return ws

    app = web.Application()
    app.router.add_get("/ws", frozen)
    async with serving(app) as url:
        client = SaynaClient(url, stt(), tts(), heartbeat=0.5)
        events = client.events()
        sent = 0

        async def microphone() -> None:
            nonlocal sent
            frame = bytes(640)
            while True:
                await client.on_audio_input(frame)
                sent += 1
                await asyncio.sleep(0.005)  # (pacing: a live stream, not a wait)

        try:
            await client.connect()
            mic = asyncio.get_running_loop().create_task(microphone())
            seen = [event async for event in events]
            with pytest.raises((SaynaConnectionError, SaynaNotConnectedError)):
                await mic  # the frame after the loss raises (no reconnect policy)
        finally:
            release.set()
            await client.disconnect()
    kinds = [event.type for event in seen]
    assert kinds[-2:] == ["audio_dropped", "closed"], kinds
    dropped, closed = seen[-2:]
    assert closed.code == 1006
    assert "no pong" in closed.reason
    assert dropped.unconfirmed
    assert dropped.frames == sent  # never answered: every frame that went out
    assert dropped.bytes == sent * 640
    assert "may not have reached it" in dropped.message
