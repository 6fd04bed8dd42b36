"""TTS ``audio_format``s (sections 3.3, 5.2): the bytes are what the content type says,
on ``POST /speak`` and in ``/ws`` binary frames; a format the installation cannot
encode fails like a provider refusing it, never as other bytes."""

from __future__ import annotations

import io
import sys
from typing import Any

import aiohttp
import pytest
import soundfile

from helpers.wire import TTS, collect, config, configure, of_type, send
from sayna_client._alaw import linear16_to_alaw
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

SPEAK_TTS: dict[str, Any] = {"provider": "deepgram", "model": ""}


async def _speak(
    server: LocalServer, http: aiohttp.ClientSession, audio_format: str, rate: int
) -> tuple[int, str, bytes]:
    tts = {**SPEAK_TTS, "audio_format": audio_format, "sample_rate": rate}
    async with http.post(server.url + "/speak", json={"text": "one two", "tts_config": tts}) as r:
        return r.status, r.headers["Content-Type"], await r.read()


def _decode(body: bytes) -> tuple[str, str, int, int]:
    """(container, codec, sample rate, frames) of an encoded clip, read back."""
    info = soundfile.info(io.BytesIO(body))
    data, rate = soundfile.read(io.BytesIO(body), dtype="int16")
    return info.format, info.subtype, rate, len(data)


@pytest.mark.parametrize(
    ("audio_format", "rate", "container", "codec", "encoded_rate"),
    [
        ("mp3", 24000, "MP3", "MPEG_LAYER_III", 24000),
        ("mpeg", 44100, "MP3", "MPEG_LAYER_III", 44100),
        ("mp3", 96000, "MP3", "MPEG_LAYER_III", 48000),
        ("ogg", 16000, "OGG", "OPUS", 16000),
        ("opus", 22050, "OGG", "OPUS", 24000),  # the next rate Opus has
    ],
)
async def test_speak_encodes_compressed_formats_for_real(
    server: LocalServer,
    http: aiohttp.ClientSession,
    audio_format: str,
    rate: int,
    container: str,
    codec: str,
    encoded_rate: int,
) -> None:
    status, content_type, body = await _speak(server, http, audio_format, rate)
    assert status == 200
    assert content_type == ("audio/mpeg" if container == "MP3" else "audio/ogg")
    found, subtype, decoded_rate, frames = _decode(body)
    assert (found, subtype, decoded_rate) == (container, codec, encoded_rate)
    # The whole clip is there (encoders add a little padding, never lose audio).
    assert frames >= len(render_words(["one", "two"], encoded_rate)) // 2


@pytest.mark.parametrize("audio_format", ["alaw", "pcm_alaw", "g711_alaw"])
async def test_speak_alaw_is_g711_a_law(
    server: LocalServer, http: aiohttp.ClientSession, audio_format: str
) -> None:
    status, content_type, body = await _speak(server, http, audio_format, 8000)
    assert (status, content_type) == (200, "application/octet-stream")
    assert body == linear16_to_alaw(render_words(["one", "two"], 8000))


async def test_ws_sends_compressed_and_alaw_audio_as_binary_frames(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(tts_config={**TTS, "audio_format": "mp3"}))
        await send(ws, {"type": "speak", "text": "one two"})
        _frames, mp3 = await collect(ws, of_type("tts_playback_complete"))
    assert _decode(mp3)[:3] == ("MP3", "MPEG_LAYER_III", 16000)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(tts_config={**TTS, "audio_format": "alaw"}))
        await send(ws, {"type": "speak", "text": "one two"})
        _frames, alaw = await collect(ws, of_type("tts_playback_complete"))
    assert alaw == linear16_to_alaw(render_words(["one", "two"], 16000))


WITHOUT_SOUNDFILE = (
    "audio_format '{}' needs the soundfile package (pip install 'sayna-client[local]'); "
    "this server produces linear16, pcm, wav, mulaw, ulaw, alaw"
)


@pytest.mark.parametrize("audio_format", ["mp3", "ogg", "opus"])
async def test_without_soundfile_compressed_formats_are_refused_by_name(
    server: LocalServer,
    http: aiohttp.ClientSession,
    monkeypatch: pytest.MonkeyPatch,
    audio_format: str,
) -> None:
    monkeypatch.setitem(sys.modules, "soundfile", None)  # as without the local extra
    message = WITHOUT_SOUNDFILE.format(audio_format)
    tts = {**SPEAK_TTS, "audio_format": audio_format}
    async with http.post(server.url + "/speak", json={"text": "hi", "tts_config": tts}) as r:
        assert r.status == 500
        assert await r.json() == {"error": f"Failed to synthesize speech: {message}"}
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(tts_config={**TTS, "audio_format": audio_format}))
        await send(ws, {"type": "speak", "text": "one two"})
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    # A provider error, then the completion (section 6.7); no audio at all.
    assert [f["type"] for f in frames] == ["error", "tts_playback_complete"]
    assert frames[0]["message"] == f"TTS error: {message}"
    assert audio == b""
    # The raw formats need nothing installed.
    status, content_type, body = await _speak(server, http, "alaw", 8000)
    assert (status, content_type) == (200, "application/octet-stream")
    assert body == linear16_to_alaw(render_words(["one", "two"], 8000))
