"""The deterministic ``fake`` engine: tone bursts out, burst counting in.

TTS renders each word as a 120 ms sine burst (amplitude 0.3 FS, frequency from a fixed
table) followed by 60 ms of silence, both divided by ``speaking_rate`` (clamped to
0.25-4.0), delivered in 20 ms chunks; a request of more than ``MAX_TTS_SECONDS`` of audio
fails before any. STT detects bursts by peak energy in 10 ms frames of the client's audio
and transcribes each burst as the word ``"word"``; every decision is driven by audio
time (samples received), never the wall clock, so a TTS -> STT round trip recovers the
word count deterministically.

Utterances end as real providers end them (protocol section 6.8): 300 ms of silence
after the last burst produce one result that is final **and** speech-final and carries
the utterance's text. Interim results show the words heard so far every 200 ms of
speech.

Scripted speech: a :class:`SpeechScript` (one per engine, filled through
``LocalServer.script_speech`` or ``POST /_local/speech``) says what the caller "says":
the next utterance's whole text (``unit="utterance"``) or the next burst's word(s)
(``unit="burst"``); without a script every burst is ``"word"``.
"""

from __future__ import annotations

import asyncio
import math
import threading
from array import array
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Optional, Union

from .base import (
    Engine,
    STTParams,
    STTStream,
    Transcript,
    TTSRequest,
    Voice,
    check_tts_rate,
    clamp_speaking_rate,
    encode_output,
    g711_decoder,
    tts_seconds_cap,
    tts_too_long,
    wav_header,
)

__all__ = ["SCRIPT_UNITS", "FakeEngine", "FakeSTTStream", "ScriptedLine", "SpeechScript"]

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
#: The quiet high bytes plus those that hold both quiet and loud samples: a frame with
#: any high byte outside this set is speech without looking at its samples either (a
#: tone's or a voice's frame, the other half of a live stream).
_QUIET_OR_MIXED_HIGH_BYTES = bytes(
    high & 0xFF for high in range(-((SPEECH_PEAK + 256) // 256), SPEECH_PEAK // 256 + 1)
)
MIN_BURST_FRAMES = 4  # 40 ms of speech make a burst
MIN_GAP_FRAMES = 4  # 40 ms of silence separate bursts
INTERIM_FRAMES = 20  # an interim result every 200 ms of audio while speaking
FINAL_SILENCE_FRAMES = 30  # 300 ms of silence end the utterance (final + speech-final)
FINAL_CONFIDENCE = 0.99
INTERIM_CONFIDENCE = 0.9

#: What one scripted line stands for.
SCRIPT_UNITS = ("utterance", "burst")

_VOICES = (
    Voice("fake-alpha", "Alpha", "", "American", "Female", "English"),
    Voice("fake-bravo", "Bravo", "", "British", "Male", "English"),
    Voice("fake-charlie", "Charlie", "", "Neutral", "Neutral", "English"),
)


#: Bytes of rendered tones kept for reuse (each tone is at most 0.48 s of audio: 368 KB
#: at 384 kHz; a usual one, 120 ms at 24 kHz, is 5.8 KB).
TONE_CACHE_BYTES = 2 * 1024 * 1024
#: Chunks the fake TTS yields between turns of the event loop (1 s of audio): a long
#: request, rendered as it is sent, never holds the loop for long.
CHUNKS_PER_TURN = 1000 // CHUNK_MS

_tones: OrderedDict[tuple[float, int, int], bytes] = OrderedDict()
_tones_bytes = 0
_tones_lock = threading.Lock()


def _render_tone(frequency: float, sample_rate: int, samples: int) -> bytes:
    step = 2.0 * math.pi * frequency / sample_rate
    peak = AMPLITUDE * 32767
    return array("h", (int(peak * math.sin(step * i)) for i in range(samples))).tobytes()


def _tone(frequency: float, sample_rate: int, samples: int) -> bytes:
    """The tone's pcm16, from a cache bounded by :data:`TONE_CACHE_BYTES` (least
    recently used tones go first)."""
    global _tones_bytes
    key = (frequency, sample_rate, samples)
    with _tones_lock:
        tone = _tones.get(key)
        if tone is not None:
            _tones.move_to_end(key)
            return tone
    tone = _render_tone(frequency, sample_rate, samples)
    with _tones_lock:
        if key not in _tones and len(tone) <= TONE_CACHE_BYTES:
            _tones[key] = tone
            _tones_bytes += len(tone)
            while _tones_bytes > TONE_CACHE_BYTES:
                _, dropped = _tones.popitem(last=False)
                _tones_bytes -= len(dropped)
    return tone


def _word_samples(sample_rate: int, speaking_rate: float) -> tuple[int, int]:
    """Samples of one word's tone and of the silence after it."""
    rate = clamp_speaking_rate(speaking_rate)
    tone = max(1, int(sample_rate * TONE_MS / 1000 / rate))
    gap = max(1, int(sample_rate * GAP_MS / 1000 / rate))
    return tone, gap


def _words_pcm(words: int, sample_rate: int, speaking_rate: float) -> Iterator[bytes]:
    """Each word's pcm16 (tone, then silence), one at a time."""
    tone_samples, gap_samples = _word_samples(sample_rate, speaking_rate)
    gap = bytes(2 * gap_samples)
    for index in range(words):
        yield _tone(FREQUENCIES[index % len(FREQUENCIES)], sample_rate, tone_samples) + gap


def render_words(words: list[str], sample_rate: int, speaking_rate: float = 1.0) -> bytes:
    """The pcm16 the fake TTS produces for ``words`` (exposed for tests and benchmarks).
    ``speaking_rate`` is clamped to 0.25-4.0 (not finite: 1.0)."""
    return b"".join(_words_pcm(len(words), sample_rate, speaking_rate))


def rendered_seconds(words: int, sample_rate: int, speaking_rate: float = 1.0) -> float:
    """Seconds of audio the fake TTS makes of ``words`` words."""
    tone, gap = _word_samples(sample_rate, speaking_rate)
    return words * (tone + gap) / sample_rate


@dataclass(frozen=True)
class ScriptedLine:
    """One scripted piece of speech.

    Attributes:
        text: the transcript (``unit="utterance"``) or the burst's word(s) (``"burst"``).
        unit: ``"utterance"`` or ``"burst"``.
        stream_id: only the session with this ``stream_id`` hears it; ``None`` = any.
    """

    text: str
    unit: str = "utterance"
    stream_id: Optional[str] = None

    def to_wire(self) -> dict[str, Optional[str]]:
        return {"text": self.text, "unit": self.unit, "stream_id": self.stream_id}


class SpeechScript:
    """A FIFO of :class:`ScriptedLine` consumed by fake recognisers.

    A recogniser takes the first line meant for its session (``stream_id`` equal or
    ``None``) when an utterance starts (``unit="utterance"``: the line is the whole
    final text) or when a burst starts (``unit="burst"``: the line is that burst's
    text; the final joins them). Thread-safe: the control routes and tests may add
    lines while sessions consume them.
    """

    def __init__(self) -> None:
        self._lines: deque[ScriptedLine] = deque()
        self._lock = threading.Lock()

    def add(
        self, texts: Iterable[str], unit: str = "utterance", stream_id: Optional[str] = None
    ) -> list[ScriptedLine]:
        """Queue ``texts`` in order; returns the lines now pending.

        Raises:
            ValueError: ``unit`` is not one of :data:`SCRIPT_UNITS`, or a text is not a
                non-blank string.
        """
        if unit not in SCRIPT_UNITS:
            raise ValueError(f"unit must be one of {', '.join(SCRIPT_UNITS)}, not {unit!r}")
        lines = []
        for text in texts:
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"scripted speech must be non-blank strings, not {text!r}")
            lines.append(ScriptedLine(" ".join(text.split()), unit, stream_id))
        with self._lock:
            self._lines.extend(lines)
            return list(self._lines)

    def pending(self) -> list[ScriptedLine]:
        """The lines not yet heard, in order."""
        with self._lock:
            return list(self._lines)

    def clear(self) -> None:
        """Forget every pending line."""
        with self._lock:
            self._lines.clear()

    def take(self, unit: str, stream_id: Optional[str]) -> Optional[str]:
        """Pop the first line for ``stream_id`` if it has ``unit``; else ``None``."""
        with self._lock:
            for line in self._lines:
                if line.stream_id is None or line.stream_id == stream_id:
                    if line.unit != unit:
                        return None
                    self._lines.remove(line)
                    return line.text
        return None


class FakeEngine(Engine):
    """Deterministic, dependency-free engine.

    Args:
        voice_aliases: extra provider keys under which ``voices()`` repeats the fake
            catalogue (the server passes ``("deepgram", "elevenlabs")`` when fake is
            its default engine, so production-style code finds voices).
        script: scripted speech shared by this engine's recognisers (a new empty one
            by default); see :class:`SpeechScript`.
    """

    name = "fake"

    def __init__(
        self, voice_aliases: tuple[str, ...] = (), script: Optional[SpeechScript] = None
    ) -> None:
        self._aliases = voice_aliases
        self.script = script if script is not None else SpeechScript()

    def voices(self) -> dict[str, list[Voice]]:
        return {key: list(_VOICES) for key in ("fake", *self._aliases)}

    async def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield 20 ms chunks (a WAV header first for ``wav``); empty text yields nothing.

        The audio is rendered word by word as the chunks are taken (the same bytes as
        :func:`render_words`), with a turn of the event loop every second of audio.

        Raises:
            ValueError: an unsupported ``sample_rate``.
            TTSTooLong: the text makes more audio than the cap (before any chunk).
        """
        rate = request.sample_rate
        check_tts_rate(rate)
        words = len(request.text.split())
        if not words:
            return
        seconds = rendered_seconds(words, rate, request.speaking_rate)
        if seconds > tts_seconds_cap(rate):
            raise tts_too_long(rate, seconds)
        if request.audio_format.strip().lower() == "wav":
            tone, gap = _word_samples(rate, request.speaking_rate)
            yield wav_header(rate, data_bytes=2 * words * (tone + gap))
        chunk = max(2, rate * CHUNK_MS // 1000 * 2)
        audio_format = request.audio_format
        carry = b""  # the end of the last word that did not fill a chunk
        chunks = 0
        for pcm in _words_pcm(words, rate, request.speaking_rate):
            data = carry + pcm if carry else pcm
            whole = len(data) - len(data) % chunk
            for start in range(0, whole, chunk):
                yield encode_output(data[start : start + chunk], audio_format)
                chunks += 1
                if chunks % CHUNKS_PER_TURN == 0:
                    await asyncio.sleep(0)
            carry = data[whole:]
        if carry:
            yield encode_output(carry, audio_format)

    def open_stt(self, params: STTParams) -> STTStream:
        return FakeSTTStream(params, self.script)


def _surely_quiet(audio: Union[bytes, bytearray], start: int, end: int) -> bool:
    """True when every high byte of ``audio[start:end]`` (16-bit little-endian samples,
    ``start`` even) is a quiet one: no sample can exceed SPEECH_PEAK."""
    return not audio[start + 1 : end : 2].translate(None, _QUIET_HIGH_BYTES)


def _is_speech(audio: Union[bytes, bytearray], start: int, end: int) -> bool:
    """True when the peak of ``audio[start:end]`` (16-bit little-endian samples, ``start``
    even) exceeds SPEECH_PEAK."""
    high = audio[start + 1 : end : 2]
    if not high.translate(None, _QUIET_HIGH_BYTES):
        return False
    if high.translate(None, _QUIET_OR_MIXED_HIGH_BYTES):
        return True  # a sample whose high byte alone puts it over the peak
    samples = array("h")
    samples.frombytes(audio[start:end])
    return max(max(samples), -min(samples)) > SPEECH_PEAK


class FakeSTTStream(STTStream):
    """Energy-based burst counter; see the module docstring for the timing rules."""

    def __init__(self, params: STTParams, script: Optional[SpeechScript] = None) -> None:
        self._decode = g711_decoder(params.encoding)
        channels = max(1, params.channels)
        self._frame_bytes = max(1, params.sample_rate * FRAME_MS // 1000) * channels * 2
        self._script = script
        self._stream_id = params.stream_id
        self._pending = bytearray()
        self._speech_run = 0
        self._silence_run = 0
        self._in_burst = False
        self._words: list[str] = []  # what each burst of the current utterance said
        self._utterance: Optional[str] = None  # scripted text of the whole utterance
        self._segment_active = False
        self._frames_since_interim = 0

    instant = True

    async def feed(self, audio: bytes) -> list[Transcript]:
        return self.feed_now(audio)

    def feed_now(self, audio: bytes) -> list[Transcript]:
        if self._decode is not None:
            audio = self._decode(audio)
        results: list[Transcript] = []
        size = self._frame_bytes
        pending = self._pending
        # A live stream's frames are whole analysis frames: read them where they are.
        data: Union[bytes, bytearray] = audio
        if pending:
            pending += audio
            data = pending
        whole = len(data) - len(data) % size
        if whole and _surely_quiet(data, 0, whole):  # most of a stream: one test
            for _ in range(whole // size):
                self._step(False, results)
        else:
            for start in range(0, whole, size):
                self._step(_is_speech(data, start, start + size), results)
        if data is pending:
            del pending[:whole]
        elif whole < len(data):
            pending += data[whole:]
        return results

    async def finish(self) -> list[Transcript]:
        results: list[Transcript] = []
        if self._segment_active and self._words:
            results.append(self._final())
        return results

    def _text(self, final: bool) -> str:
        if self._utterance is None:
            return " ".join(self._words)
        if final:
            return self._utterance
        # Interims reveal the scripted utterance one word per burst heard so far.
        words = self._utterance.split()
        return " ".join(words[: min(len(self._words), len(words))])

    def _final(self) -> Transcript:
        result = Transcript.speech_final(self._text(final=True), FINAL_CONFIDENCE)
        self._segment_active = False
        self._words = []
        self._utterance = None
        return result

    def _burst_started(self) -> None:
        script = self._script
        if not self._segment_active:
            self._segment_active = True
            self._frames_since_interim = 0
            if script is not None:
                self._utterance = script.take("utterance", self._stream_id)
        word: Optional[str] = None
        if script is not None and self._utterance is None:
            word = script.take("burst", self._stream_id)
        self._words.append(word if word is not None else "word")

    def _step(self, speech: bool, results: list[Transcript]) -> None:
        if speech:
            self._silence_run = 0
            self._speech_run += 1
            if self._speech_run >= MIN_BURST_FRAMES and not self._in_burst:
                self._in_burst = True
                self._burst_started()
        else:
            self._speech_run = 0
            self._silence_run += 1
            if self._silence_run >= MIN_GAP_FRAMES:
                self._in_burst = False
        if self._segment_active:
            self._frames_since_interim += 1
            if self._frames_since_interim >= INTERIM_FRAMES and self._in_burst:
                self._frames_since_interim = 0
                results.append(Transcript.interim(self._text(final=False), INTERIM_CONFIDENCE))
            if self._silence_run >= FINAL_SILENCE_FRAMES:
                results.append(self._final())
