"""The ``local`` engine's espeak-ng voices and its stream contract, without a socket.

Skipped when the ``local`` extra is not installed. The TTS tests here select espeak-ng
voices explicitly (``en-us``); the neural parts (Whisper, Piper) have their own module,
``test_neural_engine.py``. espeak-ng output is not bit-reproducible (its wave generator
keeps state between clips), hence TTS comparisons use durations and levels, never bytes.
STT tests speak with the Piper voice and listen with Whisper (or pocketsphinx where the
neural packages are missing); STT is deterministic for identical input bytes.
"""

from __future__ import annotations

import asyncio
import io
import math
import re
import struct
import time
import wave
from collections.abc import Iterator

import pytest

for _module in ("espeakng_loader", "pocketsphinx", "soxr", "numpy"):
    pytest.importorskip(_module)

from sayna_client.server.engines.base import (  # noqa: E402
    STTParams,
    Transcript,
    TTSRequest,
    linear16_to_mulaw,
    mulaw_to_linear16,
)
from sayna_client.server.engines.local import LocalEngine  # noqa: E402
from sayna_client.server.engines.local_tts import (  # noqa: E402
    apply_pronunciations,
    get_espeak,
    speaking_rate_to_wpm,
)

#: Recognised well from the default voice at 16 and 24 kHz ("like a cup of coffee").
SENTENCE = "i would like a cup of coffee"
#: For round trips: in 75 of 75 renderings (16 kHz, 24 kHz and 8 kHz mu-law) at
#: least one word came back, usually several ("are you doing ... a cup of coffee").
TWO_SENTENCES = "How are you doing today? I would like a cup of coffee."
#: The espeak-ng voice the TTS tests use; STT tests speak with the neural voice.
ESPEAK = "en-us"
JOE = "en_US-joe-medium"


@pytest.fixture(scope="module")
def engine() -> Iterator[LocalEngine]:
    local = LocalEngine()
    yield local
    local.close()


async def synth(engine: LocalEngine, text: str = SENTENCE, **kwargs: object) -> list[bytes]:
    kwargs.setdefault("voice_id", ESPEAK)
    request = TTSRequest(text=text, **kwargs)  # type: ignore[arg-type]
    return [chunk async for chunk in engine.synthesize(request)]


async def pcm(engine: LocalEngine, text: str = SENTENCE, **kwargs: object) -> bytes:
    return b"".join(await synth(engine, text, **kwargs))


def samples(data: bytes) -> list[int]:
    return list(struct.unpack(f"<{len(data) // 2}h", data))


def rms(data: bytes) -> float:
    values = samples(data)
    return math.sqrt(sum(v * v for v in values) / max(1, len(values)))


def seconds(data: bytes, rate: int = 24000) -> float:
    return len(data) / 2 / rate


def words(text: str) -> set[str]:
    return set(re.findall(r"[a-z']+", text.lower()))


# --- voices and pure helpers -------------------------------------------------------------


def test_voices_list_espeak_voices_under_local(engine: LocalEngine) -> None:
    catalogue = engine.voices()
    assert list(catalogue) == ["local"]
    voices = {voice.id: voice for voice in catalogue["local"]}
    assert len(voices) > 50
    if engine.neural["tts"]:
        assert catalogue["local"][0].id == JOE
    assert {"en-us", "en-gb", "fr-fr", "de", "en-us+f2"} <= set(voices)
    us = voices["en-us"]
    assert (us.name, us.language, us.accent, us.gender) == (
        "English (America)",
        "English",
        "America",
        "Male",
    )
    assert voices["en-us+f2"].gender == "Female"
    assert voices["de"].accent == "Standard"
    for voice in catalogue["local"]:
        assert all(isinstance(value, str) and value for value in voice.to_wire().values() if value)


def test_speaking_rate_maps_to_espeak_words_per_minute() -> None:
    assert speaking_rate_to_wpm(1.0) == 175
    assert speaking_rate_to_wpm(2.0) == 350
    assert speaking_rate_to_wpm(0.1) == 80  # clamped to 0.25, then to espeak's minimum
    assert speaking_rate_to_wpm(9.0) == 450
    assert speaking_rate_to_wpm(float("nan")) == 175


def test_pronunciations_are_whole_word_case_sensitive_and_ordered() -> None:
    rules = (("SQL", "sequel"), ("sequel", "sequel two"), ("C++", "see plus plus"))
    assert apply_pronunciations("SQL and sql and SQLite", rules[:1]) == "sequel and sql and SQLite"
    assert apply_pronunciations("SQL", rules[:2]) == "sequel two"
    assert apply_pronunciations(r"a\1 b", (("b", r"\1"),)) == r"a\1 \1"
    assert apply_pronunciations("x", (("", "y"),)) == "x"


# --- TTS ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rate", [8000, 16000, 22050, 24000, 48000])
async def test_tts_linear16_is_speech_at_the_requested_rate(engine: LocalEngine, rate: int) -> None:
    chunks = await synth(engine, sample_rate=rate, audio_format="linear16")
    audio = b"".join(chunks)
    seconds = len(audio) / 2 / rate
    # 7 words at espeak's nominal 175 wpm ≈ 2.4 s; espeak is a little faster, plus an
    # end-of-sentence pause.
    assert 1.2 < seconds < 3.5
    assert rms(audio) > 1000
    # 20 ms chunks, whole samples, only the last one shorter.
    assert {len(chunk) for chunk in chunks[:-1]} == {rate // 50 * 2}
    assert 0 < len(chunks[-1]) <= rate // 50 * 2
    assert len(chunks[-1]) % 2 == 0


async def test_tts_duration_does_not_depend_on_the_rate(engine: LocalEngine) -> None:
    durations = [len(await pcm(engine, sample_rate=rate)) / 2 / rate for rate in (8000, 44100)]
    assert durations[0] == pytest.approx(durations[1], abs=0.005)


async def test_tts_mulaw_has_one_byte_per_sample(engine: LocalEngine) -> None:
    linear = await pcm(engine, sample_rate=8000, audio_format="linear16")
    for name in ("mulaw", "ulaw"):
        chunks = await synth(engine, sample_rate=8000, audio_format=name)
        assert {len(chunk) for chunk in chunks[:-1]} == {160}  # 20 ms at 8 kHz
        encoded = b"".join(chunks)
        assert len(encoded) == pytest.approx(len(linear) // 2, abs=40)
        decoded = mulaw_to_linear16(encoded)
        assert rms(decoded) == pytest.approx(rms(linear), rel=0.1)


async def test_tts_wav_has_one_valid_header_with_the_real_length(engine: LocalEngine) -> None:
    chunks = await synth(engine, sample_rate=16000, audio_format="wav")
    assert len(chunks[0]) == 44
    with wave.open(io.BytesIO(b"".join(chunks))) as wav:
        assert (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) == (1, 2, 16000)
        frames = wav.readframes(wav.getnframes())
    assert len(frames) == sum(map(len, chunks[1:]))
    assert 1.2 < seconds(frames, 16000) < 3.5
    assert rms(frames) > 1000


async def test_tts_unknown_formats_fall_back_to_raw_pcm(engine: LocalEngine) -> None:
    for name in ("mp3", "opus", "pcm"):
        audio = await pcm(engine, audio_format=name)
        assert seconds(audio) == pytest.approx(seconds(await pcm(engine)), abs=0.01)
        assert rms(audio) > 1000


async def test_tts_speaking_rate_changes_duration(engine: LocalEngine) -> None:
    normal = len(await pcm(engine, speaking_rate=1.0))
    fast = len(await pcm(engine, speaking_rate=2.0))
    slow = len(await pcm(engine, speaking_rate=0.6))
    assert fast < 0.7 * normal
    assert slow > 1.3 * normal


async def test_tts_pronunciations_change_the_audio(engine: LocalEngine) -> None:
    text = "Say hi to Bob"
    long_name = "Bartholomew Montgomery Robertson"
    plain = seconds(await pcm(engine, text))
    spoken = seconds(await pcm(engine, text, pronunciations=(("Bob", long_name),)))
    assert spoken > plain + 0.5
    assert spoken == pytest.approx(seconds(await pcm(engine, f"Say hi to {long_name}")), abs=0.05)
    # Case-sensitive and whole-word: neither rule matches.
    unchanged = await pcm(engine, text, pronunciations=(("bob", long_name), ("Bo", long_name)))
    assert seconds(unchanged) == pytest.approx(plain, abs=0.05)


@pytest.mark.parametrize(
    ("voice_id", "espeak_name"),
    [
        ("en-us", "gmw/en-US"),
        ("EN-US", "gmw/en-US"),
        ("en-gb", "gmw/en"),
        ("en", "gmw/en"),  # espeak's own meaning of "en"
        ("English (America)", "gmw/en-US"),
        ("fr-fr", "roa/fr"),
        ("en-us+f2", "gmw/en-US+f2"),
        ("en-GB-Wavenet-D", "gmw/en"),  # Google / Azure style: the locale prefix counts
        ("en-US-JennyNeural", "gmw/en-US"),
        ("de-DE-KatjaNeural", "gmw/de"),
        ("aura-asteria-en", "gmw/en-US"),  # Deepgram, ElevenLabs, junk: the default
        ("21m00Tcm4TlvDq8ikWAM", "gmw/en-US"),
        ("", "gmw/en-US"),
        ("my-voice", "gmw/en-US"),
        ("en-us+nosuchvariant", "gmw/en-US"),
        ("en-us+../../x", "gmw/en-US"),
    ],
)
def test_voice_ids_resolve_to_espeak_voices(voice_id: str, espeak_name: str) -> None:
    assert get_espeak().resolve_voice(voice_id) == espeak_name


async def test_tts_every_english_voice_speaks(engine: LocalEngine) -> None:
    for voice in engine.voices()["local"]:
        if voice.language == "English" or voice.id == "aura-asteria-en":
            audio = await pcm(engine, "hello there", voice_id=voice.id)
            assert 0.4 < seconds(audio) < 2.0, voice.id
            assert rms(audio) > 500, voice.id


async def test_tts_blank_text_yields_nothing(engine: LocalEngine) -> None:
    assert await synth(engine, "   ") == []
    assert await synth(engine, "x", pronunciations=(("x", " "),)) == []


async def test_tts_abandoned_stream_does_not_disturb_the_next(engine: LocalEngine) -> None:
    long_text = " ".join([SENTENCE] * 20)
    stream = engine.synthesize(TTSRequest(text=long_text, voice_id=ESPEAK))
    await stream.__anext__()
    await stream.aclose()  # type: ignore[attr-defined]
    audio = await pcm(engine)
    assert 1.2 < seconds(audio) < 3.5


async def test_tts_streams_while_rendering(engine: LocalEngine) -> None:
    # The first chunk must not wait for a long clip to be rendered completely.
    long_text = " ".join([SENTENCE] * 40)
    started = time.perf_counter()
    stream = engine.synthesize(TTSRequest(text=long_text, voice_id=ESPEAK))
    await stream.__anext__()
    first = time.perf_counter() - started
    rest = [chunk async for chunk in stream]
    total = time.perf_counter() - started
    assert len(rest) > 1000
    assert first < total / 3


async def test_tts_rejects_impossible_rates(engine: LocalEngine) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        await synth(engine, sample_rate=0)


# --- STT ---------------------------------------------------------------------------------


async def run_stt(
    engine: LocalEngine, audio: bytes, params: STTParams, frame_bytes: int
) -> list[Transcript]:
    stream = engine.open_stt(params)
    results: list[Transcript] = []
    try:
        for start in range(0, len(audio), frame_bytes):
            results += await stream.feed(audio[start : start + frame_bytes])
        results += await stream.finish()
    finally:
        stream.close()
    return results


def check_turn(results: list[Transcript]) -> str:
    """Assert the §6.8 shape of one spoken turn; return the joined final text.

    Finals carry text; the turn's last final is also speech-final (with its text, as
    real providers send it) unless an empty forced-style speech-final closes it.
    """
    finals = [r for r in results if r.is_final and r.transcript]
    assert finals, results
    assert all(0.0 <= r.confidence <= 1.0 for r in results)
    assert all(not r.is_speech_final for r in results if not r.is_final)
    assert results[-1].is_speech_final, results
    assert [r for r in results if r.is_speech_final] == [results[-1]]
    return " ".join(r.transcript for r in finals)


@pytest.mark.parametrize(
    ("rate", "encoding"), [(16000, "linear16"), (24000, "linear16"), (8000, "mulaw")]
)
async def test_stt_round_trip(engine: LocalEngine, rate: int, encoding: str) -> None:
    speech = await pcm(engine, SENTENCE, sample_rate=rate, voice_id=JOE)
    audio = speech + bytes(int(rate * 1.5) * 2)  # then 1.5 s of silence
    if encoding == "mulaw":
        audio = linear16_to_mulaw(audio)
    bytes_per_frame = rate // 50 * (1 if encoding == "mulaw" else 2)
    results = await run_stt(
        engine, audio, STTParams(sample_rate=rate, encoding=encoding), bytes_per_frame
    )
    text = check_turn(results)
    expected = words(SENTENCE)
    if engine.neural["stt"]:
        assert words(text) == expected, text
    else:
        assert words(text) & expected, text


async def test_stt_timing_is_audio_time(engine: LocalEngine) -> None:
    rate = 16000
    speech = await pcm(engine, SENTENCE, sample_rate=rate, voice_id=JOE)
    stream = engine.open_stt(STTParams(sample_rate=rate))
    try:
        results = []
        for start in range(0, len(speech), 640):  # 20 ms frames, as a client streams
            results += await stream.feed(speech[start : start + 640])
        # Interims come while the talker is voiced (the voice's trailing silence, whose
        # length varies from one synthesis to the next, starts none).
        assert results, "interims while speaking"
        results += await stream.feed(bytes(rate * 2 // 10))  # + 100 ms
        assert all(not r.is_final for r in results), "no final before the endpoint"
        results = await stream.feed(bytes(rate * 2))  # 1.1 s of silence in total
        assert [(r.is_final, r.is_speech_final) for r in results] == [(True, True)]
        assert results[0].transcript
        assert await stream.feed(bytes(rate * 2)) == []  # one speech-final per turn
        assert await stream.finish() == []
    finally:
        stream.close()


async def test_stt_odd_frames_and_stereo_give_the_same_transcript(engine: LocalEngine) -> None:
    rate = 16000
    audio = await pcm(engine, sample_rate=rate, voice_id=JOE) + bytes(rate * 2)
    reference = await run_stt(engine, audio, STTParams(sample_rate=rate), 640)
    odd = await run_stt(engine, audio, STTParams(sample_rate=rate), 333)
    assert [r for r in odd if r.is_final] == [r for r in reference if r.is_final]
    stereo = b"".join(audio[i : i + 2] * 2 for i in range(0, len(audio), 2))
    both = await run_stt(engine, stereo, STTParams(sample_rate=rate, channels=2), 1001)
    assert [r for r in both if r.is_final] == [r for r in reference if r.is_final]


async def test_stt_finish_flushes_a_pending_utterance(engine: LocalEngine) -> None:
    speech = await pcm(engine, sample_rate=16000, voice_id=JOE)
    stream = engine.open_stt(STTParams(sample_rate=16000))
    try:
        await stream.feed(speech[: len(speech) * 3 // 4])  # cut mid-sentence
        flushed = await stream.finish()
    finally:
        stream.close()
    finals = [r for r in flushed if r.is_final]
    assert [(r.is_final, r.is_speech_final) for r in finals] == [(True, True)]
    assert finals[0].transcript


async def test_pocketsphinx_says_when_the_talker_is_inside_an_utterance(
    engine: LocalEngine,
) -> None:
    # The session holds Sayna's forced speech-final while a recogniser still hears the
    # talker (STTStream.speaking); pocketsphinx's held final is sent when speech resumes.
    from concurrent.futures import ThreadPoolExecutor

    from sayna_client.server.engines.local_stt import PocketsphinxStream

    speech = await pcm(engine, sample_rate=16000, voice_id=JOE)
    with ThreadPoolExecutor(1) as pool:
        stream = PocketsphinxStream(STTParams(sample_rate=16000), pool)
        try:
            assert not stream.speaking
            await stream.feed(speech[: len(speech) // 2])
            assert stream.speaking
            results = await stream.feed(speech[len(speech) // 2 :] + bytes(16000 * 2 * 2))
            assert not stream.speaking
            assert results[-1].is_speech_final, results
        finally:
            stream.close()


async def test_stt_silence_and_empty_frames_give_nothing(engine: LocalEngine) -> None:
    stream = engine.open_stt(STTParams(sample_rate=16000))
    try:
        assert await stream.feed(b"") == []
        assert await stream.feed(bytes(16000 * 2 * 2)) == []
        assert await stream.finish() == []
    finally:
        stream.close()
    assert await stream.feed(b"\x01\x02") == []  # closed: quietly ignored


async def test_stt_decoding_leaves_the_event_loop_running(engine: LocalEngine) -> None:
    # Decoding runs in worker threads: a ticker must keep running meanwhile.
    audio = await pcm(engine, sample_rate=16000, voice_id=JOE) + bytes(16000)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    try:
        await run_stt(engine, audio, STTParams(sample_rate=16000), len(audio))
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert ticks > 5


def test_stt_rejects_impossible_params(engine: LocalEngine) -> None:
    with pytest.raises(ValueError, match="sample_rate"):
        engine.open_stt(STTParams(sample_rate=0))
    with pytest.raises(ValueError, match="channel"):
        engine.open_stt(STTParams(channels=0))
