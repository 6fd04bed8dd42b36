"""The deterministic ``fake`` engine: tone bursts out, burst counting in.

TTS renders each word as a 120 ms sine burst (amplitude 0.3 FS, frequency from a fixed
table) followed by 60 ms of silence, both divided by ``speaking_rate``, delivered in
20 ms chunks. STT detects bursts by peak energy in 10 ms frames of the client's audio
and transcribes each burst as the word ``"word"``; every decision is driven by audio
time (samples received), never the wall clock, so a TTS -> STT round trip recovers the
word count deterministically.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import AsyncIterator
from functools import lru_cache

from .base import (
    Engine,
    STTParams,
    STTStream,
    Transcript,
    TTSRequest,
    Voice,
    encode_output,
    mulaw_to_linear16,
    wav_header,
)

__all__ = ["FakeEngine", "FakeSTTStream"]

#: Burst frequencies (Hz), cycled by word index.
FREQUENCIES = (440.0, 523.25, 587.33, 659.25, 698.46, 783.99, 880.0, 987.77)
TONE_MS = 120
GAP_MS = 60
CHUNK_MS = 20
AMPLITUDE = 0.3

FRAME_MS = 10
#: A frame is speech when its peak exceeds 0.05 FS.
SPEECH_PEAK = int(0.05 * 32767)
#: Signed high bytes of a little-endian 16-bit sample that guarantee ``|sample| <=
#: SPEECH_PEAK`` whatever the low byte: a frame whose high bytes are all in this set is
#: silence without looking at its samples one by one (most of any stream is quiet).
_QUIET_HIGH_BYTES = bytes(
    high & 0xFF for high in range(-(SPEECH_PEAK // 256), (SPEECH_PEAK - 255) // 256 + 1)
)
MIN_BURST_FRAMES = 4  # 40 ms of speech make a burst
MIN_GAP_FRAMES = 4  # 40 ms of silence separate bursts
INTERIM_FRAMES = 20  # an interim result every 200 ms of audio while speaking
FINAL_SILENCE_FRAMES = 30  # 300 ms of silence end a segment
SPEECH_FINAL_SILENCE_FRAMES = 70  # 700 ms of silence end the utterance

_VOICES = (
    Voice("fake-alpha", "Alpha", "", "American", "Female", "English"),
    Voice("fake-bravo", "Bravo", "", "British", "Male", "English"),
    Voice("fake-charlie", "Charlie", "", "Neutral", "Neutral", "English"),
)


@lru_cache(maxsize=256)
def _tone(frequency: float, sample_rate: int, samples: int) -> bytes:
    step = 2.0 * math.pi * frequency / sample_rate
    peak = AMPLITUDE * 32767
    return array("h", (int(peak * math.sin(step * i)) for i in range(samples))).tobytes()


def render_words(words: list[str], sample_rate: int, speaking_rate: float = 1.0) -> bytes:
    """The pcm16 the fake TTS produces for ``words`` (exposed for tests and benchmarks)."""
    rate = speaking_rate if speaking_rate > 0 else 1.0
    tone_samples = max(1, int(sample_rate * TONE_MS / 1000 / rate))
    gap = bytes(2 * max(1, int(sample_rate * GAP_MS / 1000 / rate)))
    out = bytearray()
    for index in range(len(words)):
        out += _tone(FREQUENCIES[index % len(FREQUENCIES)], sample_rate, tone_samples)
        out += gap
    return bytes(out)


class FakeEngine(Engine):
    """Deterministic, dependency-free engine.

    Args:
        voice_aliases: extra provider keys under which ``voices()`` repeats the fake
            catalogue (the server passes ``("deepgram", "elevenlabs")`` when fake is
            its default engine, so production-style code finds voices).
    """

    name = "fake"

    def __init__(self, voice_aliases: tuple[str, ...] = ()) -> None:
        self._aliases = voice_aliases

    def voices(self) -> dict[str, list[Voice]]:
        return {key: list(_VOICES) for key in ("fake", *self._aliases)}

    async def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield 20 ms chunks (a WAV header first for ``wav``); empty text yields nothing."""
        words = request.text.split()
        if not words:
            return
        pcm = render_words(words, request.sample_rate, request.speaking_rate)
        if request.audio_format.strip().lower() == "wav":
            yield wav_header(request.sample_rate, data_bytes=len(pcm))
        chunk = max(2, request.sample_rate * CHUNK_MS // 1000 * 2)
        for start in range(0, len(pcm), chunk):
            yield encode_output(pcm[start : start + chunk], request.audio_format)

    def open_stt(self, params: STTParams) -> STTStream:
        return FakeSTTStream(params)


def _surely_quiet(audio: bytearray, start: int, end: int) -> bool:
    """True when every high byte of ``audio[start:end]`` (16-bit little-endian samples,
    ``start`` even) is a quiet one: no sample can exceed SPEECH_PEAK."""
    return not audio[start + 1 : end : 2].translate(None, _QUIET_HIGH_BYTES)


def _is_speech(audio: bytearray, start: int, end: int) -> bool:
    """True when the peak of ``audio[start:end]`` (16-bit little-endian samples, ``start``
    even) exceeds SPEECH_PEAK."""
    if _surely_quiet(audio, start, end):
        return False
    samples = array("h")
    samples.frombytes(audio[start:end])
    return max(max(samples), -min(samples)) > SPEECH_PEAK


class FakeSTTStream(STTStream):
    """Energy-based burst counter; see the module docstring for the timing rules."""

    def __init__(self, params: STTParams) -> None:
        self._mulaw = params.encoding.strip().lower() in ("mulaw", "ulaw")
        channels = max(1, params.channels)
        self._frame_bytes = max(1, params.sample_rate * FRAME_MS // 1000) * channels * 2
        self._pending = bytearray()
        self._speech_run = 0
        self._silence_run = 0
        self._in_burst = False
        self._words = 0  # bursts in the current segment
        self._segment_active = False
        self._frames_since_interim = 0
        self._awaiting_speech_final = False

    async def feed(self, audio: bytes) -> list[Transcript]:
        if self._mulaw:
            audio = mulaw_to_linear16(audio)
        self._pending += audio
        results: list[Transcript] = []
        size = self._frame_bytes
        pending = self._pending
        whole = len(pending) - len(pending) % size
        if whole and _surely_quiet(pending, 0, whole):  # most of a stream: one test
            for _ in range(whole // size):
                self._step(False, results)
        else:
            for start in range(0, whole, size):
                self._step(_is_speech(pending, start, start + size), results)
        del pending[:whole]
        return results

    async def finish(self) -> list[Transcript]:
        results: list[Transcript] = []
        if self._segment_active and self._words:
            results.append(self._final())
        return results

    def _final(self) -> Transcript:
        transcript = " ".join(["word"] * self._words)
        self._segment_active = False
        self._words = 0
        self._awaiting_speech_final = True
        return Transcript(transcript, is_final=True, is_speech_final=False, confidence=0.99)

    def _step(self, speech: bool, results: list[Transcript]) -> None:
        if speech:
            self._silence_run = 0
            self._speech_run += 1
            if self._speech_run >= MIN_BURST_FRAMES and not self._in_burst:
                self._in_burst = True
                self._words += 1
                if not self._segment_active:
                    self._segment_active = True
                    self._frames_since_interim = 0
        else:
            self._speech_run = 0
            self._silence_run += 1
            if self._silence_run >= MIN_GAP_FRAMES:
                self._in_burst = False
        if self._segment_active:
            self._frames_since_interim += 1
            if self._frames_since_interim >= INTERIM_FRAMES and self._in_burst:
                self._frames_since_interim = 0
                results.append(
                    Transcript(
                        " ".join(["word"] * self._words),
                        is_final=False,
                        is_speech_final=False,
                        confidence=0.9,
                    )
                )
            if self._silence_run >= FINAL_SILENCE_FRAMES:
                results.append(self._final())
        if self._awaiting_speech_final and self._silence_run >= SPEECH_FINAL_SILENCE_FRAMES:
            self._awaiting_speech_final = False
            results.append(Transcript("", is_final=True, is_speech_final=True, confidence=1.0))
