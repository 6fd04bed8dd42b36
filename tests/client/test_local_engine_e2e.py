"""Real offline speech through the whole stack: SaynaClient → local server → the local
engine's voice (Piper, or espeak-ng where it is missing), then the synthesized audio back
through its recogniser (Whisper, or pocketsphinx)."""

from __future__ import annotations

import re

import pytest

pytest.importorskip("pocketsphinx")
pytest.importorskip("espeakng_loader")
pytest.importorskip("soxr")

from sayna_client import SaynaClient, STTConfig, TTSConfig
from sayna_client._wer import word_error_rate
from sayna_client.server import LocalServer

SENTENCE = "Hello from Sayna. I would like a cup of coffee, please."


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


def _neural() -> bool:
    import importlib.util

    return all(
        importlib.util.find_spec(name) is not None
        for name in ("ctranslate2", "onnxruntime", "tokenizers", "piper")
    )


async def test_tts_then_stt_round_trip_hears_the_sentence() -> None:
    async with LocalServer(engine="local", stt_hint="Sayna") as server:
        stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=16000)
        tts = TTSConfig(provider="elevenlabs", sample_rate=16000)
        async with SaynaClient(server.url, stt, tts) as client:
            audio = bytearray()
            client.register_on_tts_audio(audio.extend)
            turns = client.turns()
            await client.connect()
            await client.speak(SENTENCE, wait=True, timeout=60)
            await client.drain(settle=0.1, timeout=30)
            assert len(audio) > 16000 * 2  # more than a second of speech
            pcm = bytes(audio) + bytes(16000 * 2 * 2)
            pcm += bytes(-len(pcm) % 640)
            for i in range(0, len(pcm), 640):
                await client.on_audio_input(pcm[i : i + 640])
            turn = await turns.__anext__()
        record = server.records.last_session
        assert record.tts_engine == "local"
        assert record.stt_engine == "local"
    assert turn.text
    if _neural():
        assert word_error_rate(SENTENCE, turn.text) <= 0.1, turn.text
        assert "sayna" in _words(turn.text), turn.text  # the server's keyword hint
    else:
        assert _words(turn.text) & _words(SENTENCE), turn.text


async def test_speak_rest_with_the_local_engine_is_real_speech() -> None:
    async with (
        LocalServer(engine="local") as server,
        SaynaClient(server.url, without_audio=True) as client,
    ):
        voices = await client.get_voices()
        assert "en-us" in {v.id for v in voices["local"]}
        pcm, headers = await client.speak_rest(
            "Testing one two three",
            TTSConfig(provider="deepgram", sample_rate=8000, audio_format="mulaw"),
        )
        assert headers["Content-Type"] == "audio/basic"
        assert headers["x-sample-rate"] == "8000"
        assert len(pcm) > 8000 * 0.5  # mu-law: one byte per sample
        assert len(set(pcm)) > 20  # not silence
