"""The WebSocket session against the local server: connect/ready, sends, events, close."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from helpers.waiting import eventually
from sayna_client import (
    CallbackError,
    ConnectionClosed,
    ErrorMessage,
    LiveKitConfig,
    MalformedMessage,
    MessageMessage,
    ParticipantConnectedMessage,
    ParticipantDisconnectedMessage,
    ReadyMessage,
    SaynaAuthenticationError,
    SaynaClient,
    SaynaConfigRejectedError,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaNotConnectedError,
    SaynaTimeoutError,
    SaynaValidationError,
    STTConfig,
    STTResultMessage,
    Timeouts,
    TrackSubscribedMessage,
    TTSAudio,
    TTSConfig,
    TTSPlaybackCompleteMessage,
    UnknownEvent,
)
from sayna_client.server import Faults, LocalServer

from .conftest import make_client, stt, tts


async def _collect_until(events: Any, predicate: Any, limit: float = 10.0) -> list[Any]:
    seen: list[Any] = []

    async def run() -> None:
        async for event in events:
            seen.append(event)
            if predicate(event):
                return

    await asyncio.wait_for(run(), limit)
    return seen


async def test_connect_returns_after_ready_and_sends_full_config(server: LocalServer) -> None:
    async with make_client(server, stream_id="call-42") as c:
        assert not c.connected
        assert not c.ready
        await c.connect()
        assert c.connected
        assert c.ready
        assert c.received_stream_id == "call-42"
        assert c.livekit_url == "ws://127.0.0.1:7880"
        assert c.livekit_room_name is None
        record = server.records.last_session
        assert record.config is not None
        assert record.config["stream_id"] == "call-42"
        assert record.config["stt_config"] == {
            "provider": "deepgram",
            "language": "en-US",
            "sample_rate": 16000,
            "channels": 1,
            "punctuation": True,
            "encoding": "linear16",
            "model": "nova-2",
        }
        assert record.config["tts_config"]["voice_id"] == "v1"
        await c.connect()  # already ready: no second session
        assert len(server.records.sessions) == 1
    assert not c.connected
    await server.records.wait_for(lambda: record.closed.is_set())


async def test_seed_quick_start_runs_unchanged(server: LocalServer) -> None:
    from sayna_client import STTConfig as SeedSTT
    from sayna_client import TTSConfig as SeedTTS

    received: list[int] = []
    client = SaynaClient(
        url=server.url,
        stt_config=SeedSTT(provider="deepgram", model="nova-2"),
        tts_config=SeedTTS(provider="cartesia", voice_id="example-voice"),
        api_key="your-api-key",
    )
    client.register_on_stt_result(lambda result: print(f"Transcription: {result.transcript}"))
    client.register_on_tts_audio(lambda audio: received.append(len(audio)))
    await client.connect()
    await client.speak("Hello, world!")
    await server.records.wait_for(lambda: server.records.last_session.sent_audio_frames > 0)
    await client.disconnect()
    assert server.records.last_session.messages[-1]["text"] == "Hello, world!"
    assert server.records.last_session.headers["Authorization"] == "Bearer your-api-key"


async def test_speak_delivers_audio_then_completion_in_order(
    connected: SaynaClient, server: LocalServer
) -> None:
    events = connected.events()
    chunks: list[bytes] = []
    completions: list[TTSPlaybackCompleteMessage] = []
    connected.register_on_tts_audio(chunks.append)

    async def on_complete(message: TTSPlaybackCompleteMessage) -> None:
        await asyncio.sleep(0)
        completions.append(message)

    connected.register_on_tts_playback_complete(on_complete)
    await connected.speak("one two three", flush=False, allow_interruption=False)
    seen = await _collect_until(events, lambda e: isinstance(e, TTSPlaybackCompleteMessage))
    audio_events = [e for e in seen if isinstance(e, TTSAudio)]
    assert audio_events
    assert isinstance(seen[-1], TTSPlaybackCompleteMessage)
    record = server.records.last_session
    assert record.messages[-1] == {
        "type": "speak",
        "text": "one two three",
        "flush": False,
        "allow_interruption": False,
    }
    await server.records.wait_for(lambda: len(completions) == 1)
    assert b"".join(chunks) == b"".join(e.data for e in audio_events)
    assert len(b"".join(chunks)) == record.sent_audio_bytes


async def test_audio_input_reaches_server_and_results_come_back(
    connected: SaynaClient, server: LocalServer
) -> None:
    results: list[STTResultMessage] = []
    connected.register_on_stt_result(results.append)
    audio = bytearray()
    done = asyncio.Event()
    connected.register_on_tts_audio(audio.extend)
    connected.register_on_tts_playback_complete(lambda _: done.set())
    await connected.speak("alpha beta gamma")
    await asyncio.wait_for(done.wait(), 10)
    frame = 640  # 20 ms of 16 kHz mono PCM
    pcm = bytes(audio) + b"\x00" * (16000 * 2)  # one second of silence closes the turn
    pcm += b"\x00" * (-len(pcm) % frame)
    for i in range(0, len(pcm), frame):
        await connected.on_audio_input(pcm[i : i + frame])
    record = server.records.last_session
    await server.records.wait_for(lambda: record.audio_bytes == len(pcm))
    assert bytes(record.audio[: len(pcm)]) == pcm
    assert record.audio_frames == len(pcm) // frame
    await server.records.wait_for(lambda: any(r.is_speech_final for r in results))
    finals = [r.transcript for r in results if r.is_final and r.transcript]
    assert finals == ["word word word"]
    # Protocol 6.8: the last final is speech-final and carries the text.
    assert (results[-1].is_speech_final, results[-1].transcript) == (True, "word word word")


async def test_clear_flush_message_and_commands_reach_the_wire(server: LocalServer) -> None:
    async with make_client(server, livekit_config=LiveKitConfig(room_name="cmd-room")) as c:
        await c.connect()
        await c.clear()
        await c.tts_flush(allow_interruption=False)
        await c.send_message("hi", "assistant", topic="chat", debug={"k": 1})
        await c.send_message("default topic", "user")
        await c.update_config(turn_detect_threshold=0.3, vad_silence_duration_ms=200)
        await c.loading_stop()
        await c.sip_transfer("+15550001111")
        record = server.records.last_session
        await server.records.wait_for(lambda: len(record.messages) >= 8)
        assert record.messages[1:] == [
            {"type": "clear"},
            {"type": "speak", "text": "", "flush": True, "allow_interruption": False},
            {
                "type": "send_message",
                "message": "hi",
                "role": "assistant",
                "topic": "chat",
                "debug": {"k": 1},
            },
            {
                "type": "send_message",
                "message": "default topic",
                "role": "user",
                "topic": "messages",
            },
            {
                "type": "update_config",
                "vad": {"silence_duration_ms": 200},
                "turn_detect": {"threshold": 0.3},
            },
            {"type": "loading_stop"},
            {"type": "sip_transfer", "transfer_to": "+15550001111"},
        ]
        packet = await server.records.wait_for(lambda: server.records.data_packets)
        assert json.loads(packet[0].payload) == {
            "message": "hi",
            "role": "assistant",
            "debug": {"k": 1},
        }
        assert server.turn_detect_threshold == pytest.approx(0.3)


async def test_loading_start_error_arrives_on_error_callback(connected: SaynaClient) -> None:
    errors: list[Any] = []
    connected.register_on_error(errors.append)
    await connected.loading_start()
    await eventually(lambda: errors)
    assert isinstance(errors[0], ErrorMessage)
    assert "LiveKit room" in errors[0].message


async def test_livekit_events_and_properties(server: LocalServer) -> None:
    lk = LiveKitConfig(
        room_name="lk-room", sayna_participant_identity="agent", sayna_participant_name="Agent"
    )
    async with make_client(server, livekit_config=lk) as c:
        joined: list[ParticipantConnectedMessage] = []
        left: list[ParticipantDisconnectedMessage] = []
        messages: list[MessageMessage] = []
        tracks: list[TrackSubscribedMessage] = []
        closed: list[ConnectionClosed] = []
        errors: list[Any] = []
        c.register_on_error(errors.append)
        c.register_on_participant_connected(joined.append)
        c.register_on_participant_disconnected(left.append)
        c.register_on_message(messages.append)
        c.register_on_track_subscribed(tracks.append)
        c.register_on_close(closed.append)
        events = c.events()
        await c.connect()
        assert c.livekit_room_name == "lk-room"
        assert c.sayna_participant_identity == "agent"
        assert c.sayna_participant_name == "Agent"
        await server.inject_participant("lk-room", "user-1", name="User")
        await server.inject_data("lk-room", "hello agent", identity="user-1", topic="chat")
        await server.inject_data("lk-room", b"\xff\xfe", identity="user-1")
        await server.inject_participant_left("lk-room", "user-1")
        seen = await _collect_until(events, lambda e: isinstance(e, ConnectionClosed))
        kinds = [e.type for e in seen]
        assert kinds.index("participant_connected") < kinds.index("participant_disconnected")
        assert kinds[-1] == "closed"
        assert seen[-1].code == 1005
        assert not seen[-1].initiated_by_client
        assert not c.connected
        assert not c.ready
        await server.records.wait_for(lambda: closed and left and len(messages) == 2)
        assert joined[0].participant.identity == "user-1"
        assert tracks[0].track.track_kind == "audio"
        text, binary = messages
        assert text.message.message == "hello agent"
        assert text.message.topic == "chat"
        assert text.message.room == "livekit"
        assert binary.message.data == "//4="
        assert binary.message.topic == "default"
        assert errors == []  # the normal end of a LiveKit session is not an error
        with pytest.raises(SaynaNotConnectedError):
            await c.speak("too late")


async def test_ready_timeout_closes_everything(server: LocalServer) -> None:
    server.faults = Faults(never_send_ready=True)
    async with make_client(server, timeouts=Timeouts(ready=0.3)) as c:
        errors: list[Any] = []
        closes: list[ConnectionClosed] = []
        c.register_on_error(errors.append)
        c.register_on_close(closes.append)
        with pytest.raises(SaynaTimeoutError) as info:
            await c.connect()
        assert info.value.operation == "ready"
        assert "Timeouts.ready" in str(info.value)
        assert not c.connected
        await server.records.wait_for(lambda: server.records.last_session.closed.is_set())
        # Giving up is the client's decision: not reported as a lost connection.
        assert errors == []
        assert [close.initiated_by_client for close in closes] == [True]


async def test_config_rejection_then_reconfigure(server: LocalServer) -> None:
    async with make_client(server) as c:
        c.stt_config = STTConfig(provider="nope")
        with pytest.raises(SaynaConfigRejectedError) as info:
            await c.connect()
        assert info.value.server_message == "Unsupported provider: nope"
        assert c.connected
        assert not c.ready
        await c.reconfigure(stt_config=stt())
        assert c.ready
        assert len(server.records.sessions) == 1
        configs = [m for m in server.records.last_session.messages if m["type"] == "config"]
        assert [cfg["stt_config"]["provider"] for cfg in configs] == ["nope", "deepgram"]


async def test_fault_reject_config_and_close_after_config(server: LocalServer) -> None:
    server.faults = Faults(reject_config_error="Timeout waiting for voice providers to be ready")
    async with make_client(server) as c:
        with pytest.raises(SaynaConfigRejectedError, match="Timeout waiting"):
            await c.connect()
    server.faults = Faults(close_after_config=True, close_code=1011)
    async with make_client(server) as c:
        with pytest.raises(SaynaConnectionClosedError) as info:
            await c.connect()
        assert info.value.code == 1011
        assert not c.connected


async def test_websocket_upgrade_401(auth_server: LocalServer) -> None:
    async with make_client(auth_server) as c:
        with pytest.raises(SaynaAuthenticationError) as info:
            await c.connect()
        assert info.value.status_code == 401
        assert not c.connected
    async with make_client(auth_server, api_key="test-key") as c:
        await c.connect()
        assert c.ready


async def test_connect_to_nothing_is_a_connection_error() -> None:
    async with LocalServer() as srv:
        url = srv.url
    async with SaynaClient(url, stt(), tts()) as c:
        with pytest.raises(SaynaConnectionError):
            await c.connect()
        assert not c.connected


async def test_hostile_frames_become_events_and_session_continues(server: LocalServer) -> None:
    server.faults = Faults(malformed_frames=True)
    async with make_client(server) as c:
        errors: list[Any] = []
        c.register_on_error(errors.append)
        unknown: list[UnknownEvent] = []
        c.on("unknown", unknown.append)
        events = c.events()
        await c.connect()
        seen = await _collect_until(events, lambda e: isinstance(e, ReadyMessage))
        malformed = [e for e in seen if isinstance(e, MalformedMessage)]
        assert len(malformed) == 3
        assert [e.event_type for e in seen if isinstance(e, UnknownEvent)] == ["no_such_event"]
        await server.records.wait_for(lambda: len(errors) == 3 and unknown)
        await c.speak("still alive")
        await _collect_until(events, lambda e: isinstance(e, TTSPlaybackCompleteMessage))


async def test_raising_callback_is_reported_and_session_continues(connected: SaynaClient) -> None:
    reports: list[Any] = []
    connected.register_on_error(reports.append)
    calls: list[int] = []

    def broken(_: Any) -> None:
        calls.append(1)
        raise RuntimeError("boom")

    connected.register_on_tts_playback_complete(broken)
    events = connected.events()
    await connected.speak("a")
    await _collect_until(events, lambda e: isinstance(e, TTSPlaybackCompleteMessage))
    await connected.speak("b")
    await _collect_until(events, lambda e: isinstance(e, TTSPlaybackCompleteMessage))
    await eventually(lambda: len(reports) == 2)
    assert len(calls) == 2
    assert all(isinstance(r, CallbackError) for r in reports)
    assert "boom" in reports[0].message
    assert connected.ready


async def test_unsubscribe_and_off(connected: SaynaClient) -> None:
    first: list[Any] = []
    second: list[Any] = []
    remove_first = connected.register_on_tts_playback_complete(first.append)
    connected.register_on_tts_playback_complete(second.append)
    connected.register_on_tts_playback_complete(second.append)
    assert remove_first() is True
    assert remove_first() is False
    events = connected.events()
    await connected.speak("x")
    await _collect_until(events, lambda e: isinstance(e, TTSPlaybackCompleteMessage))
    await eventually(lambda: len(second) == 2)
    assert first == []
    assert len(second) == 2
    assert connected.off(second.append) == 2


async def test_local_validation_happens_before_sending(
    connected: SaynaClient, server: LocalServer
) -> None:
    record = server.records.last_session
    before = len(record.messages)
    with pytest.raises(SaynaValidationError, match="empty"):
        await connected.on_audio_input(b"")
    with pytest.raises(SaynaValidationError, match="empty"):
        await connected.on_audio_input(memoryview(bytearray()))
    with pytest.raises(SaynaValidationError, match="must be a bytes-like object.*got str"):
        await connected.on_audio_input("text")  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="got list; send raw audio"):
        await connected.on_audio_input([1, 2])  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="16777216 bytes"):
        await connected.on_audio_input(bytes(16 * 1024 * 1024 + 1))
    with pytest.raises(SaynaValidationError, match="empty"):
        await connected.speak("  ")
    with pytest.raises(SaynaValidationError, match="limit"):
        await connected.speak("x" * 100_001)
    with pytest.raises(SaynaValidationError, match="role"):
        await connected.send_message("m", "")
    with pytest.raises(SaynaValidationError, match="transfer_to"):
        await connected.sip_transfer(" ")
    with pytest.raises(SaynaValidationError, match="threshold"):
        await connected.update_config(turn_detect_threshold=2)
    assert len(record.messages) == before
    assert record.audio_frames == 0


async def test_a_speak_refused_for_its_flags_leaves_no_trace(
    connected: SaynaClient, server: LocalServer
) -> None:
    # Checked before anything else: no handle, no pending playback for drain() or
    # speak(wait=True) to wait for, no characters counted as synthesized.
    record = server.records.last_session
    before = len(record.messages)
    with pytest.raises(SaynaValidationError, match="flush and allow_interruption"):
        await connected.speak("hello", flush="yes")  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="flush and allow_interruption"):
        await connected.speak("hello", allow_interruption=None)  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="flush and allow_interruption"):
        await connected.speak_stream(["Hello there."], flush=1)  # type: ignore[arg-type]
    assert len(record.messages) == before
    assert connected.speech.current is None
    await connected.drain(timeout=5, settle=0.05)  # nothing outstanding
    usage = connected.turn_metrics.summary()["usage"]
    assert all(u["characters"] == 0 for u in usage.values())


async def test_calls_in_the_wrong_state(server: LocalServer) -> None:
    async with make_client(server) as c:
        with pytest.raises(SaynaNotConnectedError, match="connect"):
            await c.speak("hi")
        with pytest.raises(SaynaNotConnectedError):
            await c.on_audio_input(b"\x00\x00")
        await c.disconnect()  # disconnect when never connected is fine
        await c.disconnect()


def test_constructor_validation() -> None:
    with pytest.raises(SaynaValidationError, match="stt_config and tts_config"):
        SaynaClient("http://127.0.0.1:1", None, None)
    with pytest.raises(SaynaValidationError, match="stt_config must be a STTConfig"):
        SaynaClient("http://127.0.0.1:1", {"provider": "x"}, tts())  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="url"):
        SaynaClient("localhost:3001", stt(), tts())
    with pytest.raises(SaynaValidationError, match="stream_id"):
        SaynaClient("http://127.0.0.1:1", stt(), tts(), stream_id="a/b")
    SaynaClient("http://127.0.0.1:1", without_audio=True)


def test_plaintext_key_to_remote_host_warns() -> None:
    with pytest.warns(UserWarning, match="unencrypted"):
        SaynaClient("http://api.example.com", stt(), tts(), api_key="k")


async def test_without_audio_session(server: LocalServer) -> None:
    async with SaynaClient(
        server.url, without_audio=True, livekit_config=LiveKitConfig(room_name="ctl")
    ) as c:
        await c.connect()
        record = server.records.last_session
        assert record.config == {"type": "config", "audio": False, "livekit": {"room_name": "ctl"}}
        await c.send_message("hello", "user")
        await server.records.wait_for(lambda: server.records.data_packets)


async def test_audio_lane_follows_the_session(server: LocalServer) -> None:
    # on_audio_input looks its per-frame state up once per session; every change must be
    # seen: a reconfigure, a closed session, the next session.
    async with make_client(server) as c:
        await c.connect()
        await c.on_audio_input(b"\x00" * 640)
        await c.reconfigure(stt_config=STTConfig(provider="deepgram", encoding="mulaw"))
        await c.on_audio_input(b"\xff" * 3)
        with pytest.raises(SaynaValidationError, match="empty"):
            await c.on_audio_input(b"")
        await server.records.wait_for(lambda: server.records.last_session.audio_frames == 2)
        assert c.metrics.audio_frames_sent == 2
        assert c.metrics.audio_bytes_sent == 643
        first = c.metrics
        await c.disconnect()
        with pytest.raises(SaynaNotConnectedError):
            await c.on_audio_input(b"\x00" * 640)
        await c.connect()
        await c.on_audio_input(b"\x00" * 320)
        await server.records.wait_for(lambda: server.records.last_session.audio_frames == 1)
        assert (c.metrics.audio_frames_sent, c.metrics.audio_bytes_sent) == (1, 320)
        # The first session's metrics keep its counts (the audio input counts the frames,
        # the metrics read them: a new session's must not show in the old one's).
        assert first is not c.metrics
        assert (first.audio_frames_sent, first.audio_bytes_sent) == (2, 643)
        assert first.as_dict()["audio_bytes_sent"] == 643


async def test_tts_config_variants_reach_server(server: LocalServer) -> None:
    config = TTSConfig(
        provider="deepgram",
        voice_id="aura-asteria-en",
        pronunciations=[{"word": "SQL", "pronunciation": "sequel"}],
    )  # type: ignore[list-item]
    async with SaynaClient(server.url, stt(), config) as c:
        await c.connect()
    sent = server.records.last_session.config
    assert sent is not None
    assert sent["tts_config"]["pronunciations"] == [{"word": "SQL", "pronunciation": "sequel"}]


async def test_ready_and_sip_transfer_error_callbacks(server: LocalServer) -> None:
    from sayna_client import SipTransferErrorMessage

    async with make_client(server) as c:
        readies: list[ReadyMessage] = []
        transfer_errors: list[SipTransferErrorMessage] = []
        c.register_on_ready(readies.append)
        c.register_on_sip_transfer_error(transfer_errors.append)
        c.register_on_vad_event(lambda _: None)
        await c.connect()
        await c.sip_transfer("+15550001111")
        await c.sip_transfer("12ab")
        await server.records.wait_for(lambda: len(transfer_errors) == 2 and readies)
        assert readies[0].stream_id == c.received_stream_id
        assert (
            transfer_errors[0].message == "Room name not available. Ensure LiveKit is configured."
        )
        assert transfer_errors[1].message.startswith("Invalid phone number")


async def test_018_aliases_still_work(server: LocalServer) -> None:
    async with make_client(server) as c:
        assert (await c.health_check()).status == "OK"
        frames: list[bytes] = []
        with pytest.warns(DeprecationWarning, match="register_on_tts_audio"):
            c.register_on_audio(frames.append)
        await c.connect()
        with pytest.warns(DeprecationWarning, match="speak"):
            await c.send_speak("hello")
        with pytest.warns(DeprecationWarning, match="on_audio_input"):
            await c.send_audio(b"\x00\x00" * 160)
        with pytest.warns(DeprecationWarning, match="clear"):
            await c.send_clear()
        record = server.records.last_session
        await server.records.wait_for(
            lambda: record.audio_frames == 1 and len(record.messages) >= 3
        )
        assert [m["type"] for m in record.messages[1:3]] == ["speak", "clear"]
    await c.aclose()


async def test_plain_callback_returning_a_coroutine_keeps_order(connected: SaynaClient) -> None:
    order: list[int] = []
    delays = iter([0.05, 0.0, 0.02, 0.0, 0.01] + [0.0] * 1000)

    async def handle(chunk: bytes) -> None:
        await asyncio.sleep(next(delays))
        order.append(len(order))

    connected.register_on_tts_audio(lambda chunk: handle(chunk))
    done = asyncio.Event()
    connected.register_on_tts_playback_complete(lambda _: done.set())
    await connected.speak("one two three")
    await asyncio.wait_for(done.wait(), 10)
    record_frames = connected.metrics.tts_audio_frames
    await eventually(lambda: len(order) == record_frames)
    assert order == list(range(record_frames))


async def test_google_credentials_file_is_read_on_the_client(
    server: LocalServer, tmp_path: Any
) -> None:
    from sayna_client import (
        GoogleAuth,
        SaynaConfigRejectedError,
        resolve_config_auth,
        resolve_google_credentials,
    )

    service_account = {"type": "service_account", "project_id": "p1"}
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(service_account))
    assert resolve_google_credentials(str(path)) == service_account
    assert resolve_google_credentials('{"a": 1}') == {"a": 1}
    with pytest.raises(SaynaValidationError, match="readable local file"):
        resolve_google_credentials("/no/such/file.json")
    config = STTConfig(provider="google", auth=GoogleAuth(credentials=str(path)))
    assert resolve_config_auth(config).auth.credentials == service_account  # type: ignore[union-attr]
    server_side = TTSConfig(
        provider="google",
        voice_id="en-US-Wavenet-D",
        auth=GoogleAuth(credentials="/srv/only/on/server.json"),
    )
    async with SaynaClient(server.url, config, server_side) as c:
        # The path goes to the server untouched, which looks for it there (protocol 6.11).
        with pytest.raises(SaynaConfigRejectedError, match="Credential file not found: /srv/only"):
            await c.connect()
    sent = server.records.last_session.config
    assert sent is not None
    assert sent["stt_config"]["auth"] == {"credentials": service_account}
    assert sent["tts_config"]["auth"] == {"credentials": "/srv/only/on/server.json"}


async def test_every_kind_of_audio_consumer_gets_every_frame_in_order(
    connected: SaynaClient, server: LocalServer
) -> None:
    # TTS audio takes a path of its own (EventHub.publish_audio): bytes callbacks get the
    # bytes, everything else a TTSAudio event; all of them every frame, in order.
    plain: list[bytes] = []
    queued: list[bytes] = []
    returned: list[bytes] = []
    as_events: list[TTSAudio] = []
    reports: list[Any] = []
    broken_calls: list[int] = []

    async def slow(chunk: bytes) -> None:
        await asyncio.sleep(0)
        queued.append(chunk)

    async def record(chunk: bytes) -> None:
        returned.append(chunk)

    def broken(chunk: bytes) -> None:
        broken_calls.append(len(chunk))
        raise ValueError("bad audio callback")

    connected.register_on_tts_audio(plain.append)
    connected.register_on_tts_audio(slow)
    connected.register_on_tts_audio(lambda chunk: record(chunk))
    connected.register_on_tts_audio(broken)
    connected.on("tts_audio", as_events.append)
    connected.register_on_error(reports.append)
    events = connected.events()
    await connected.speak("one two", wait=True)
    seen = await _collect_until(events, lambda e: isinstance(e, TTSPlaybackCompleteMessage))
    from_iterator = [e.data for e in seen if isinstance(e, TTSAudio)]
    sent = server.records.last_session.sent_audio_frames
    assert sent > 2
    assert len(plain) == sent
    assert queued == plain
    assert returned == plain
    assert [e.data for e in as_events] == plain
    assert from_iterator == plain
    assert connected.metrics.tts_audio_frames == sent
    assert connected.metrics.tts_audio_bytes == len(b"".join(plain))
    assert broken_calls == [len(chunk) for chunk in plain]
    errors = [r for r in reports if isinstance(r, CallbackError)]
    assert len(errors) == sent
    assert all(r.event_type == "tts_audio" and "bad audio callback" in r.message for r in errors)


async def test_audio_observers_come_and_go_without_touching_the_other_routes(
    connected: SaynaClient, server: LocalServer
) -> None:
    # The speech queue observes TTS audio around every speak (issue #19: that cost two
    # rebuilds of every route per speak). Observing audio replaces the audio routes
    # only; an observer added or removed while a frame is published changes what the
    # next frames reach, not that one; the callbacks' queue is never an observer.
    from helpers.internals import event_hub

    hub = event_hub(connected)
    by_callback: list[bytes] = []
    connected.register_on_tts_audio(by_callback.append)
    connected.speech  # noqa: B018  (the speech queue and its event observers exist)
    plan, targets = hub._plan, hub._targets
    a: list[bytes] = []
    b: list[bytes] = []
    c: list[bytes] = []
    d: list[bytes] = []

    def observe_a(data: bytes) -> None:
        if not a:  # the first frame: c stops and d starts, from the next frame on
            hub.unobserve_audio(c.append)
            hub.observe_audio(d.append)
        a.append(data)

    hub.observe_audio(observe_a)
    hub.observe_audio(b.append)
    hub.observe_audio(c.append)
    hub.unobserve_audio(hub._dispatcher.put_audio)  # not an observer: no effect
    hub.unobserve_audio(print)  # not observing: no effect
    await connected.speak("one two", wait=True)
    sent = server.records.last_session.sent_audio_frames
    assert sent > 2
    assert len(by_callback) == sent
    assert a == b == by_callback
    assert c == by_callback[:1]
    assert d == by_callback[1:]
    assert hub._plan is plan
    assert hub._targets is targets  # the event routes were left alone
    # A change of the other routes (a callback more) keeps the observers, in order.
    before = hub._audio
    hub.unobserve_audio(observe_a)
    assert hub._audio == tuple(route for route in before if route != observe_a)
    connected.register_on_stt_result(lambda _: None)
    assert hub._plan is not plan
    assert hub._audio_callbacks is hub._dispatcher  # the callbacks' queue, first
    assert hub._audio[-2:] == (b.append, d.append)
    assert hub._audio == tuple(route for route in before if route != observe_a)


async def test_the_ready_fields_stay_readable_after_the_session(server: LocalServer) -> None:
    # docs/sessions.md: download the recording with get_recording(client.received_stream_id)
    # after the session; the field was None by then (the ready info was cleared).
    async with make_client(server) as c:
        await c.connect()
        stream_id = c.received_stream_id
        assert stream_id is not None
        await c.disconnect()
        assert not c.ready
        assert c.received_stream_id == stream_id
        assert c.livekit_url == "ws://127.0.0.1:7880"
        await c.connect()  # a new session: the server's new id replaces it
        assert c.received_stream_id not in (None, stream_id)
