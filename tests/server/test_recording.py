"""Session recordings served by GET /recording/{stream_id}."""

from __future__ import annotations

import io

import aiohttp
import numpy as np
import soundfile

from helpers.wire import config, configure
from sayna_client._alaw import linear16_to_alaw
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words
from sayna_client.server.recording import Recording, encode_recording


async def test_recording_download_after_session(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    audio = render_words(["a", "b"], 16000)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(
            ws, config(stream_id="rec-1", livekit={"room_name": "r", "enable_recording": True})
        )
        assert server.rooms["r"].recording
        await ws.send_bytes(audio)
        await server.records.wait_for(lambda: server.records.last_session.audio_bytes)
        async with http.get(server.url + "/livekit/rooms/r") as response:
            assert (await response.json())["active_recording"] is True
    async with http.get(server.url + "/recording/rec-1") as response:
        assert response.status == 200
        body = await response.read()
        assert response.headers["Content-Type"] == "audio/ogg"
        assert response.headers["Content-Disposition"] == 'attachment; filename="rec-1.ogg"'
        assert int(response.headers["Content-Length"]) == len(body)
    assert body[:4] == b"OggS"
    data, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    assert rate == 16000
    assert abs(len(data) - len(audio) // 2) < 1600


async def test_an_alaw_session_is_recorded_decoded(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    audio = render_words(["a", "b"], 8000)
    stt = {**config()["stt_config"], "encoding": "alaw", "sample_rate": 8000, "channels": 1}
    livekit = {"room_name": "r2", "enable_recording": True}
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stream_id="rec-alaw", stt_config=stt, livekit=livekit))
        await ws.send_bytes(linear16_to_alaw(audio))
        await server.records.wait_for(lambda: server.records.last_session.audio_bytes)
    async with http.get(server.url + "/recording/rec-alaw") as response:
        body = await response.read()
    data, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    assert rate == 8000
    assert len(data) == len(audio) // 2  # one sample per A-law byte, decoded
    loudest = int(np.abs(data.astype(np.int32)).max())
    assert abs(loudest - int(np.abs(np.frombuffer(audio, "<i2").astype(np.int32)).max())) < 1000


async def test_sessions_without_recording_have_none(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stream_id="plain"))
        await ws.send_bytes(bytes(3200))
    async with http.get(server.url + "/recording/plain") as response:
        assert response.status == 404


def test_wav_fallback_is_a_valid_wav() -> None:
    recording = Recording(8000, 1, pcm=bytearray(b"\x01\x00" * 800))
    body, content_type, extension = encode_recording(recording)
    assert content_type in ("audio/ogg", "audio/wav")
    assert extension in ("ogg", "wav")
    if content_type == "audio/wav":
        assert body[:4] == b"RIFF"
