"""Faults injected through the local server: dead peers, lost connections, reconnect,
slow consumers, overflow, and secrets that must never show."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from helpers.waiting import eventually
from sayna_client import (
    ApiKeyAuth,
    AudioDropped,
    ConnectionClosed,
    EventsDropped,
    LiveKitConfig,
    Reconnected,
    Reconnecting,
    ReconnectPolicy,
    SaynaAuthenticationError,
    SaynaClient,
    SaynaConnectionError,
    SaynaNotConnectedError,
    SaynaNotReadyError,
    STTConfig,
    TTSConfig,
    TTSPlaybackCompleteMessage,
)
from sayna_client.server import Faults, LocalServer

from .conftest import make_client, start_app, stt, tts

FRAME = b"\x01\x00" * 320  # 20 ms of 16 kHz mono PCM


async def test_dead_peer_is_detected_by_heartbeat(server: LocalServer) -> None:
    server.faults = Faults(ignore_pings=True)
    async with make_client(server, heartbeat=0.5) as c:
        closes: list[ConnectionClosed] = []
        errors: list[Any] = []
        c.register_on_close(closes.append)
        c.register_on_error(errors.append)
        await c.connect()
        await eventually(lambda: closes)
        assert closes[0].code == 1006
        assert "pong" in closes[0].reason
        assert not c.connected
        assert not c.ready
        await eventually(lambda: errors)
        assert isinstance(errors[0], ConnectionClosed)
        with pytest.raises(SaynaNotConnectedError):
            await c.on_audio_input(FRAME)


async def test_a_late_pong_does_not_count_while_audio_keeps_arriving(server: LocalServer) -> None:
    # The server answers no Ping, but streams TTS audio for ~2 s (the Pong could be
    # queued behind it): the session lives while audio flows (for one more heartbeat past
    # the Pong's due time at most), then dies with 1006. The first Ping about 0.75 s in,
    # its Pong due 0.5 s later and waited for until 2.75 s while audio comes: alive at
    # 1.5 s with a wide margin for the 10 ms pacing.
    server.faults = Faults(ignore_pings=True)
    async with make_client(server, heartbeat=1.5, stream_id="late-pong") as c:
        closes: list[ConnectionClosed] = []
        frames: list[Any] = []
        c.register_on_close(closes.append)
        c.register_on_tts_audio(frames.append)
        await c.connect()
        async with aiohttp.ClientSession() as http:
            burst = {"kind": "audio", "count": 200, "size": 640, "interval_ms": 10}
            async with http.post(f"{server.url}/_local/bench/late-pong/burst", json=burst) as r:
                assert r.status == 202
        await eventually(lambda: len(frames) >= 150 or bool(closes))
        assert closes == []  # alive through 1.5 s of audio, past the first Pong's due time
        await eventually(lambda: closes)
        assert closes[0].code == 1006
        assert "pong" in closes[0].reason


async def test_heartbeat_keeps_a_healthy_idle_session(server: LocalServer) -> None:
    async with make_client(server, heartbeat=0.3) as c:
        await c.connect()
        await asyncio.sleep(1.0)  # the scenario: three heartbeat intervals pass
        assert c.ready


async def test_connection_lost_during_tts_audio(server: LocalServer) -> None:
    server.faults = Faults(drop_connection_after_frames=4)
    async with make_client(server) as c:
        events = c.events()
        errors: list[Any] = []
        c.register_on_error(errors.append)
        await c.connect()
        await c.speak("one two three four five six")
        seen = [event async for event in events]  # ends by itself after the loss
        assert [e.type for e in seen].count("tts_audio") >= 1
        closed = seen[-1]
        assert isinstance(closed, ConnectionClosed)
        assert closed.code == 1006
        assert not closed.initiated_by_client
        assert not c.connected
        await eventually(lambda: errors)
        with pytest.raises(SaynaNotConnectedError):
            await c.speak("again")


async def test_connection_lost_during_upload(server: LocalServer) -> None:
    async with make_client(server) as c:
        await c.connect()
        failures: list[BaseException] = []

        async def upload() -> None:
            for _ in range(10_000):
                try:
                    await c.on_audio_input(FRAME)
                except (SaynaConnectionError, SaynaNotConnectedError) as exc:
                    failures.append(exc)
                    return
                await asyncio.sleep(0.001)

        uploader = asyncio.ensure_future(upload())
        await server.records.wait_for(lambda: server.records.last_session.audio_frames > 10)
        await server.stop()
        await asyncio.wait_for(uploader, 10)
        assert len(failures) == 1
        assert not c.connected


async def test_overflow_is_reported_not_silent(server: LocalServer) -> None:
    async with make_client(server, max_queue=5) as c:
        errors: list[Any] = []
        c.register_on_error(errors.append)
        done = asyncio.Event()
        c.register_on_tts_playback_complete(lambda _: done.set())
        events = c.events()
        await c.connect()
        await c.speak("one two three four five six seven eight")
        await asyncio.wait_for(done.wait(), 10)
        first = await events.__anext__()
        assert isinstance(first, EventsDropped)
        assert first.count > 0
        rest = []
        while len(rest) < 5:
            rest.append(await events.__anext__())
        assert isinstance(rest[-1], TTSPlaybackCompleteMessage)
        await eventually(lambda: any(isinstance(e, EventsDropped) for e in errors))


async def _reconnecting_client(server: LocalServer, **kwargs: Any) -> SaynaClient:
    policy = kwargs.pop("reconnect", ReconnectPolicy(initial_backoff=0.2, max_backoff=0.5))
    return make_client(server, reconnect=policy, **kwargs)


async def test_reconnect_resends_config_and_replays_held_audio(server: LocalServer) -> None:
    lk = LiveKitConfig(room_name="rc-room")
    server.faults = Faults(drop_connection_after_frames=3)
    c = await _reconnecting_client(server, livekit_config=lk)
    async with c:
        events = c.events()
        await c.connect()
        server.faults = Faults()  # only the first session breaks
        first = server.records.last_session
        stream_id = c.received_stream_id
        # Two more server frames (participant_connected, track_subscribed) trip the fault.
        await server.inject_participant("rc-room", "caller")
        await eventually(lambda: c.reconnecting)
        with pytest.raises(SaynaNotReadyError, match="reconnecting"):
            await c.speak("not now")
        for _ in range(5):
            await c.on_audio_input(FRAME)
        seen: list[Any] = []
        async for event in events:
            seen.append(event)
            if isinstance(event, Reconnected):
                break
        kinds = [e.type for e in seen]
        closed = next(e for e in seen if isinstance(e, ConnectionClosed))
        assert closed.will_reconnect
        assert kinds.index("closed") < kinds.index("reconnecting") < kinds.index("reconnected")
        reconnected = seen[-1]
        assert reconnected.replayed_frames == 5
        assert reconnected.replayed_bytes == 5 * len(FRAME)
        assert c.ready
        second = server.records.last_session
        assert second is not first
        assert second.config is not None
        assert second.config["stream_id"] == stream_id
        assert second.config["livekit"]["room_name"] == "rc-room"
        await server.records.wait_for(lambda: second.audio_bytes == 5 * len(FRAME))
        await c.speak("back again")
        await server.records.wait_for(lambda: second.sent_of_type("tts_playback_complete"))


async def test_text_sends_wait_for_the_held_audio_replayed_after_a_reconnection(
    server: LocalServer,
) -> None:
    # Ready again, the session first sends the audio held during the outage: a speak()
    # meanwhile (here from the ready callback, which runs while the replay waits for the
    # socket) would reach the server before audio passed earlier, so it is refused as
    # during the outage, until the `reconnected` event.
    server.faults = Faults(drop_connection_after_frames=3)
    held = 20_000  # (13 MB: the replay waits for the socket many times)
    policy = ReconnectPolicy(initial_backoff=0.2, buffer_bytes=held * len(FRAME))
    c = await _reconnecting_client(server, reconnect=policy)
    outcome: list[Any] = []

    async def on_ready(ready: Any) -> None:
        if c.metrics.audio_frames_sent == 0 and not outcome:
            return  # (the first session's ready)
        try:
            await c.speak("too early")
            outcome.append("accepted")
        except SaynaNotReadyError as exc:
            outcome.append((c.reconnecting, str(exc)))

    async with c:
        events = c.events()
        await c.connect()
        server.faults = Faults()
        c.register_on_ready(on_ready)
        await c.speak("break the line now please")
        await eventually(lambda: c.reconnecting)
        for _ in range(held):
            await c.on_audio_input(FRAME)
        async for event in events:
            if isinstance(event, Reconnected):
                assert event.replayed_frames == held
                break
        assert outcome
        reconnecting, message = outcome[0]
        assert reconnecting
        assert "audio held while it reconnected" in message
        await c.speak("now")  # (after the `reconnected` event)
        await c.disconnect(drain=0)


async def test_held_audio_goes_out_before_frames_sent_once_ready(server: LocalServer) -> None:
    # A microphone loop that never stops: frames passed once the new session is ready
    # (and while the held ones are replayed) must not overtake the held frames, and the
    # new session's metrics count every frame it sent, the replayed ones included.
    server.faults = Faults(drop_connection_after_frames=3)
    c = await _reconnecting_client(server, reconnect=ReconnectPolicy(initial_backoff=0.05))
    async with c:
        events = c.events()
        await c.connect()
        server.faults = Faults()
        first = server.records.last_session
        stop = asyncio.Event()
        sent = 0

        async def microphone() -> None:
            nonlocal sent
            while not stop.is_set():
                await c.on_audio_input(sent.to_bytes(8, "big"))
                sent += 1
                await asyncio.sleep(0)

        mic = asyncio.ensure_future(microphone())
        await c.speak("break the line now please")
        replayed = 0
        async for event in events:
            if isinstance(event, Reconnected):
                replayed = event.replayed_frames
                break
        after = sent
        await eventually(lambda: sent >= after + 100)
        stop.set()
        await mic
        second = server.records.last_session
        assert second is not first
        last = (sent - 1).to_bytes(8, "big")
        await server.records.wait_for(lambda: bytes(second.audio[-8:]) == last)
        audio = bytes(second.audio)
        got = [int.from_bytes(audio[i : i + 8], "big") for i in range(0, len(audio), 8)]
        assert got == list(range(got[0], sent))  # frames lost with the old socket come before
        assert 0 < replayed < len(got)
        assert c.metrics.audio_frames_sent == len(got) == second.audio_frames
        assert c.metrics.audio_bytes_sent == 8 * len(got)
        await c.disconnect(drain=0)  # (the recognizer's turn never ends: no waiting for it)


async def test_a_session_lost_again_while_replaying_reconnects_and_replays_the_rest() -> None:
    # The second session reads nothing, so the replay of the held audio waits for its
    # socket, and closes (1011) meanwhile: that loss starts a reconnection of its own,
    # which must take over (not be undone by the first one ending) and replay, in
    # order, the frames the lost replay had not written.
    opened: list[int] = []
    go = asyncio.Event()
    lose_first = asyncio.Event()
    third = bytearray()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        opened.append(len(opened) + 1)
        number = len(opened)
        await ws.receive()  # config
        if number == 2:
            await go.wait()
        await ws.send_json({"type": "ready", "stream_id": "s"})
        if number == 1:
            await lose_first.wait()
            await ws.close(code=1011)
        elif number == 2:
            # The replay has begun (and waits for the socket, which reads no more).
            assert (await ws.receive()).type == aiohttp.WSMsgType.BINARY
            await ws.close(code=1011)
        else:
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    third.extend(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    runner, url = await start_app(app)
    policy = ReconnectPolicy(initial_backoff=0.05, max_backoff=0.1, buffer_bytes=64 << 20)
    c = SaynaClient(url, stt(), tts(), heartbeat=None, reconnect=policy)
    try:
        events = c.events()
        await c.connect()
        lose_first.set()
        await eventually(lambda: c.reconnecting)
        count = 400  # 64 KiB each: far more than the socket buffers take
        for index in range(count):
            await c.on_audio_input(index.to_bytes(4, "big") * (1 << 14))
        go.set()
        kinds = []
        async for event in events:
            kinds.append(event.type)
            if isinstance(event, Reconnected):
                assert event.attempt == 2  # the same outage
                break
        assert kinds.count("closed") == 2
        assert len(opened) == 3
        assert c.ready
        await c.on_audio_input(b"end")
        await eventually(lambda: third.endswith(b"end"))
        frames = [
            int.from_bytes(third[i : i + 4], "big") for i in range(0, len(third) - 3, 1 << 16)
        ]
        assert frames == list(range(frames[0], count))  # the rest, in order
        assert c.metrics.audio_frames_sent == len(frames) + 1
        await c.disconnect(drain=0)
    finally:
        go.set()
        lose_first.set()
        await c.disconnect(drain=0)
        await runner.cleanup()


async def test_reconnect_reports_overflowing_audio(server: LocalServer) -> None:
    server.faults = Faults(drop_connection_after_frames=3)
    policy = ReconnectPolicy(initial_backoff=0.3, max_backoff=0.5, buffer_bytes=3 * len(FRAME))
    c = await _reconnecting_client(server, reconnect=policy)
    async with c:
        errors: list[Any] = []
        c.register_on_error(errors.append)
        await c.connect()
        server.faults = Faults()
        await c.speak("break the line now please")
        await eventually(lambda: c.reconnecting)
        for _ in range(5):
            await c.on_audio_input(FRAME)
        await eventually(lambda: any(isinstance(e, AudioDropped) for e in errors))
        dropped = next(e for e in errors if isinstance(e, AudioDropped))
        assert dropped.frames == 2
        assert dropped.bytes == 2 * len(FRAME)
        await server.records.wait_for(lambda: server.records.last_session.audio_frames == 3)


async def test_reconnect_gives_up_and_reports_held_audio() -> None:
    srv = LocalServer()
    await srv.start()
    policy = ReconnectPolicy(max_attempts=2, initial_backoff=0.05, max_backoff=0.1)
    c = make_client(srv, reconnect=policy)
    try:
        errors: list[Any] = []
        events_seen: list[Any] = []
        c.register_on_error(errors.append)
        events = c.events()
        await c.connect()
        await srv.stop()
        await eventually(lambda: c.reconnecting)
        await c.on_audio_input(FRAME)
        async for event in events:  # ends when reconnecting gives up
            events_seen.append(event)
        kinds = [e.type for e in events_seen]
        assert kinds.count("reconnecting") == 2
        assert "reconnected" not in kinds
        assert not c.reconnecting
        await eventually(lambda: any(isinstance(e, AudioDropped) for e in errors))
        with pytest.raises(SaynaNotConnectedError):
            await c.on_audio_input(FRAME)
    finally:
        await c.disconnect()


async def test_normal_end_of_session_does_not_reconnect(server: LocalServer) -> None:
    c = await _reconnecting_client(server, livekit_config=LiveKitConfig(room_name="end"))
    async with c:
        events = c.events()
        await c.connect()
        await server.inject_participant("end", "user")
        await server.inject_participant_left("end", "user")
        seen = [e async for e in events]
        assert seen[-1].type == "closed"
        assert seen[-1].code == 1005
        assert not seen[-1].will_reconnect
        assert not any(isinstance(e, Reconnecting) for e in seen)
        assert len(server.records.sessions) == 1


async def test_disconnect_while_reconnecting_releases_everything(server: LocalServer) -> None:
    server.faults = Faults(drop_connection_after_frames=3)
    policy = ReconnectPolicy(initial_backoff=5, max_backoff=5, jitter=0)
    c = await _reconnecting_client(server, reconnect=policy)
    errors: list[Any] = []
    c.register_on_error(errors.append)
    await c.connect()
    await c.speak("break the line now please")
    await eventually(lambda: c.reconnecting)
    await c.on_audio_input(FRAME)
    await c.disconnect()
    assert not c.reconnecting
    assert not c.connected
    assert len(server.records.sessions) == 1


SECRET_KEY = "sk-live-SECRET-api-key-0001"
PROVIDER_SECRET = "dg-PROVIDER-secret-0002"


async def test_secrets_never_in_logs_reprs_or_errors(
    auth_server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    stt_cfg = STTConfig(provider="deepgram", auth=ApiKeyAuth(api_key=PROVIDER_SECRET))
    tts_cfg = TTSConfig(provider="deepgram", auth={"api_key": PROVIDER_SECRET})
    texts: list[str] = [repr(stt_cfg), str(stt_cfg), repr(tts_cfg)]
    async with SaynaClient(auth_server.url, stt_cfg, tts_cfg, api_key=SECRET_KEY) as bad:
        texts.append(repr(bad))
        with pytest.raises(SaynaAuthenticationError) as info:
            await bad.get_voices()
        texts += [str(info.value), repr(info.value), repr(info.value.body)]
        with pytest.raises(SaynaAuthenticationError) as ws_info:
            await bad.connect()
        texts += [str(ws_info.value), repr(ws_info.value)]
    good_tts = TTSConfig(
        provider="elevenlabs", voice_id="v", auth=ApiKeyAuth(api_key=PROVIDER_SECRET)
    )
    async with SaynaClient(auth_server.url, stt_cfg, good_tts, api_key="test-key") as ok:
        await ok.connect()
        await ok.speak("hello")
        texts.append(repr(ok))
    sent = auth_server.records.last_session.config
    assert sent is not None
    assert sent["stt_config"]["auth"] == {"api_key": PROVIDER_SECRET}  # it does reach the server
    texts.append(caplog.text)
    for text in texts:
        assert SECRET_KEY not in text
        assert PROVIDER_SECRET not in text


def test_tls_verification_is_on_by_default() -> None:
    c = SaynaClient("https://api.example.com", stt(), tts())
    assert c._ssl is True
