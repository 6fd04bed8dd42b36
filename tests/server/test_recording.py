"""Room recordings served by GET /recording/{stream_id} (protocol 3.9, 6.3, 6.9).

Sayna records with an audio-only room-composite egress: the room's participants and its
own ``tts-audio`` track, never the client's WebSocket frames, with ``audio: false`` too.
"""

from __future__ import annotations

import io
import sys
from typing import Any

import aiohttp
import numpy as np
import pytest
import soundfile

from helpers.wire import collect, config, configure, of_type, send
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words
from sayna_client.server.recording import Recording, encode_recording

RATE = 16000  # the TTS (track) rate of helpers.wire's config


async def _download(
    http: aiohttp.ClientSession, server: LocalServer, stream_id: str
) -> tuple[Any, int, aiohttp.ClientResponse]:
    async with http.get(f"{server.url}/recording/{stream_id}") as response:
        assert response.status == 200
        body = await response.read()
    data, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    return data, rate, response


def _loud_samples(data: Any) -> int:
    return int((np.abs(data.astype(np.int32)) > 1000).sum())


async def test_recording_holds_the_room_not_the_client_frames(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    caller = render_words(["a", "b", "c"], RATE)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(
            ws, config(stream_id="rec-1", livekit={"room_name": "r", "enable_recording": True})
        )
        assert server.rooms["r"].recording
        async with http.get(server.url + "/livekit/rooms/r") as response:
            assert (await response.json())["active_recording"] is True
        # The client's own audio goes to STT only: the room never hears it.
        await ws.send_bytes(render_words(["x"] * 5, RATE))
        await server.records.wait_for(lambda: server.records.last_session.audio_bytes)
        data, rate, response = await _download(http, server, "rec-1")
        assert rate == RATE
        assert _loud_samples(data) == 0
        await server.inject_participant("r", "caller")
        await server.inject_audio("r", "caller", caller)
    data, rate, response = await _download(http, server, "rec-1")
    assert response.headers["Content-Type"] == "audio/ogg"
    assert response.headers["Content-Disposition"] == 'attachment; filename="rec-1.ogg"'
    expected = _loud_samples(np.frombuffer(caller, "<i2"))
    assert abs(_loud_samples(data) - expected) < expected // 10
    assert len(data) >= len(caller) // 2 - 160


async def test_recording_holds_the_agent_speech(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    words = ["one", "two", "three"]
    async with http.ws_connect(server.ws_url) as ws:
        await configure(
            ws, config(stream_id="rec-tts", livekit={"room_name": "rt", "enable_recording": True})
        )
        await send(ws, {"type": "speak", "text": " ".join(words)})
        _, audio = await collect(ws, of_type("tts_playback_complete"))
    assert audio == b""  # LiveKit mode: the speech went to the room's track
    data, rate, _ = await _download(http, server, "rec-tts")
    assert rate == RATE
    expected = _loud_samples(np.frombuffer(render_words(words, RATE), "<i2"))
    assert abs(_loud_samples(data) - expected) < expected // 10


async def test_recording_runs_without_audio(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    caller = render_words(["a", "b"], 24000)  # no tts_config: the default 24 kHz
    message = {
        "type": "config",
        "stream_id": "rec-noaudio",
        "audio": False,
        "livekit": {"room_name": "rn", "enable_recording": True},
    }
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, message)
        await server.inject_participant("rn", "caller")
        await server.inject_audio("rn", "caller", caller)
    data, rate, _ = await _download(http, server, "rec-noaudio")
    assert rate == 24000
    expected = _loud_samples(np.frombuffer(caller, "<i2"))
    assert abs(_loud_samples(data) - expected) < expected // 10


async def test_sessions_without_recording_have_none(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stream_id="plain"))
        await ws.send_bytes(bytes(3200))
    async with http.get(server.url + "/recording/plain") as response:
        assert response.status == 404


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_without_recording_storage_nothing_is_recorded(
    http: aiohttp.ClientSession,
) -> None:
    # Sayna without a recording config: the egress does not start, the session carries on
    # (config_handler.rs:919-937) and downloads answer 503 (recording.rs:73-92).
    async with LocalServer(recording_storage=False) as server:
        async with http.ws_connect(server.ws_url) as ws:
            livekit = {"room_name": "r", "enable_recording": True}
            await configure(ws, config(stream_id="rec-off", livekit=livekit))
            assert not server.rooms["r"].recording
            async with http.get(server.url + "/livekit/rooms/r") as response:
                assert (await response.json())["active_recording"] is False
            await send(ws, {"type": "speak", "text": "record this please"})
            frames, _ = await collect(ws, of_type("tts_playback_complete"))
            assert [f["type"] for f in frames] == ["tts_playback_complete"]
        for stream_id, status, body in (
            ("rec-off", 503, {"error": "Recording storage not configured"}),
            ("never-recorded", 503, {"error": "Recording storage not configured"}),
            ("a..b", 400, {"error": "Invalid stream_id format"}),
        ):
            async with http.get(f"{server.url}/recording/{stream_id}") as response:
                assert response.status == status
                assert await response.json() == body


def _pcm(*samples: int) -> bytes:
    return np.array(samples, dtype="<i2").tobytes()


def test_room_audio_is_mixed_by_arrival_time() -> None:
    clock = _Clock()
    recording = Recording(1000, clock=clock)
    recording.add("caller", _pcm(1, 2, 3, 4))
    # Later audio from the same source follows its previous audio while that plays.
    recording.add("caller", _pcm(5, 6))
    clock.now += 0.002  # 2 samples later: the agent speaks over the caller
    recording.add("agent", _pcm(10, 30000, 30000, -30000, -30000, 7))
    clock.now += 0.010  # 12 samples in: silence until the caller speaks again
    recording.add("caller", _pcm(9))
    mixed = np.frombuffer(bytes(recording.pcm), "<i2").tolist()
    assert mixed == [1, 2, 13, 30004, 30005, -29994, -30000, 7, 0, 0, 0, 0, 9]


def test_loud_overlaps_are_clipped() -> None:
    recording = Recording(1000, clock=_Clock())
    recording.add("caller", _pcm(30000, -30000, 5))
    recording.add("agent", _pcm(10000, -10000))
    assert np.frombuffer(bytes(recording.pcm), "<i2").tolist() == [32767, -32768, 5]


def test_audio_at_another_rate_is_resampled() -> None:
    clock = _Clock()
    recording = Recording(1000, clock=clock)
    recording.add("agent", _pcm(1, 2, 3, 4, 5, 6), rate=2000)
    assert np.frombuffer(bytes(recording.pcm), "<i2").tolist() == [1, 3, 5]


async def test_without_soundfile_the_recording_is_wav(
    server: LocalServer, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "soundfile", None)  # as without the local extra
    async with http.ws_connect(server.ws_url) as ws:
        await configure(
            ws, config(stream_id="rec-wav", livekit={"room_name": "rw", "enable_recording": True})
        )
        await server.inject_participant("rw", "caller")
        await server.inject_audio("rw", "caller", _pcm(1000) * 800)
    async with http.get(f"{server.url}/recording/rec-wav") as response:
        body = await response.read()
        assert response.headers["Content-Type"] == "audio/wav"
        assert response.headers["Content-Disposition"] == 'attachment; filename="rec-wav.wav"'
    assert body[:4] == b"RIFF"
    assert len(body) >= 44 + 1600


def test_wav_fallback_is_a_valid_wav() -> None:
    recording = Recording(8000, 1, pcm=bytearray(b"\x01\x00" * 800))
    body, content_type, extension = encode_recording(recording)
    assert content_type in ("audio/ogg", "audio/wav")
    assert extension in ("ogg", "wav")
    if content_type == "audio/wav":
        assert body[:4] == b"RIFF"
