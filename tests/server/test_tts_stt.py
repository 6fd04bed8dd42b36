"""TTS queue semantics (6.7) and the fake STT (6.8) over a real socket."""

from __future__ import annotations

from typing import Any, Callable

import aiohttp
import pytest

from helpers.wire import STT, TTS, collect, config, configure, of_type, recv_json, send
from sayna_client._alaw import linear16_to_alaw
from sayna_client.server import LocalServer
from sayna_client.server.engines.base import linear16_to_mulaw
from sayna_client.server.engines.fake import render_words

SILENCE_1S = bytes(16000 * 2)


def _types(frames: list[Any]) -> list[str]:
    return ["<audio>" if isinstance(f, bytes) else f["type"] for f in frames]


async def test_speak_sends_all_audio_before_completion(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "one two three"})
        frames, audio = await collect(ws, of_type("tts_playback_complete"), with_audio_frames=True)
    assert audio == render_words(["one", "two", "three"], 16000)
    assert _types(frames)[-1] == "tts_playback_complete"
    assert set(_types(frames)[:-1]) == {"<audio>"}
    assert all(len(f) == 640 for f in frames[:-2])  # 20 ms chunks at 16 kHz
    session = server.records.last_session
    assert session.sent_audio_bytes == len(audio)
    assert session.sent_of_type("tts_playback_complete")


async def test_back_to_back_speaks_are_fifo_with_one_completion(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "a b"})
        await send(ws, {"type": "speak", "text": "c"})
        await send(ws, {"type": "speak", "text": "   "})
        _frames, audio = await collect(ws, of_type("tts_playback_complete"))
        assert audio == render_words(["a", "b"], 16000) + render_words(["c"], 16000)
        # At most one completion was sent for the whole queue; nothing follows.
        await send(ws, {"type": "update_config", "turn_detect": {"threshold": 9}})
        assert (await recv_json(ws))["type"] == "error"
    completions = server.records.last_session.sent_of_type("tts_playback_complete")
    assert 1 <= len(completions) <= 2


async def test_clear_cancels_without_completion(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    long_text = " ".join(["word"] * 200)  # 36 s of audio
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(tts_config={**TTS, "sample_rate": 48000}))
        await send(ws, {"type": "speak", "text": long_text})
        await send(ws, {"type": "clear"})
        await send(ws, {"type": "update_config", "turn_detect": {"threshold": 9}})
        frames, audio = await collect(ws, of_type("error"))
    assert "tts_playback_complete" not in _types(frames)
    assert len(audio) < len(render_words(["w"] * 200, 48000))


async def test_non_interruptible_speak_ignores_clear(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "a b c d", "allow_interruption": False})
        await send(ws, {"type": "clear"})
        _frames, audio = await collect(ws, of_type("tts_playback_complete"))
        assert audio == render_words(["a"] * 4, 16000)
        # An empty non-interruptible speak keeps blocking clear.
        await send(ws, {"type": "speak", "text": "", "allow_interruption": False})
        await send(ws, {"type": "speak", "text": "x y", "allow_interruption": False})
        await send(ws, {"type": "clear"})
        _frames, audio = await collect(ws, of_type("tts_playback_complete"))
        assert audio == render_words(["x", "y"], 16000)


async def test_interruptible_speak_reenables_clear(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    long_text = " ".join(["word"] * 200)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(tts_config={**TTS, "sample_rate": 48000}))
        await send(ws, {"type": "speak", "text": "", "allow_interruption": False})
        await send(ws, {"type": "speak", "text": long_text, "allow_interruption": True})
        await send(ws, {"type": "clear"})
        await send(ws, {"type": "update_config", "turn_detect": {"threshold": 9}})
        frames, _ = await collect(ws, of_type("error"))
    assert "tts_playback_complete" not in _types(frames)


async def test_tts_round_trip_through_fake_stt(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "the quick brown fox"})
        _, audio = await collect(ws, of_type("tts_playback_complete"))
        for start in range(0, len(audio), 3200):
            await ws.send_bytes(audio[start : start + 3200])
        await ws.send_bytes(SILENCE_1S)
        frames, _ = await collect(ws, lambda m: m.get("is_speech_final") is True)
    results = [f for f in frames if isinstance(f, dict) and f["type"] == "stt_result"]
    interims = [r for r in results if not r["is_final"]]
    assert interims
    assert all(r["transcript"].split() == ["word"] * len(r["transcript"].split()) for r in interims)
    # Protocol 6.8: the utterance ends in one final that is speech-final with its text.
    assert [r for r in results if r["is_final"]] == [
        {
            "type": "stt_result",
            "transcript": "word word word word",
            "is_final": True,
            "is_speech_final": True,
            "confidence": 0.99,
        }
    ]
    session = server.records.last_session
    assert session.audio_bytes == len(audio) + len(SILENCE_1S)
    assert bytes(session.audio[: len(audio)]) == audio


@pytest.mark.parametrize(
    ("encoding", "encode"), [("mulaw", linear16_to_mulaw), ("alaw", linear16_to_alaw)]
)
async def test_g711_stereo_input_is_decoded(
    server: LocalServer,
    http: aiohttp.ClientSession,
    encoding: str,
    encode: Callable[[bytes], bytes],
) -> None:
    # (A-law was read as 16-bit PCM: noise, no words.)
    mono = render_words(["a", "b"], 8000) + bytes(8000 * 2)
    samples = [mono[i : i + 2] for i in range(0, len(mono), 2)]
    stereo = b"".join(s + s for s in samples)
    stt = {**STT, "encoding": encoding, "sample_rate": 8000, "channels": 2}
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stt_config=stt))
        await ws.send_bytes(encode(stereo))
        frames, _ = await collect(ws, lambda m: m.get("is_speech_final") is True)
    finals = [f["transcript"] for f in frames if f["is_final"]]
    assert finals == ["word word"]


async def test_odd_sized_and_empty_frames_are_accepted(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    audio = render_words(["a", "b", "c"], 16000) + SILENCE_1S
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await ws.send_bytes(b"")
        for start in range(0, len(audio), 333):
            await ws.send_bytes(audio[start : start + 333])
        frames, _ = await collect(ws, lambda m: m.get("is_speech_final") is True)
    finals = [f["transcript"] for f in frames if f["is_final"]]
    assert finals == ["word word word"]
