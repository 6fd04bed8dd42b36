"""Text-to-speech for the ``local`` engine's espeak-ng voices, and the audio plumbing
the other synthesizers share.

The ctypes binding of libespeak-ng is :mod:`.espeak`; here, :class:`EspeakSynthesizer`
runs it on a worker thread and streams its audio, and :func:`stream_rendered` turns any
blocking renderer (espeak-ng, Piper on threads) into an async stream: espeak-ng renders
at 22050 Hz, a per-request ``soxr`` stream resamples to the requested rate, and the
output is cut into 20 ms chunks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import math
import re
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Callable, Optional

try:
    import numpy as np
    import soxr
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the local engine needs the optional dependencies: pip install 'sayna-client[local]'"
    ) from exc

from .base import TTSBudget, TTSRequest, Voice, check_tts_rate, encode_output, wav_header
from .espeak import DEFAULT_VOICE, Espeak, EspeakVoice, Int16Array, Sink, get_espeak

__all__ = [
    "DEFAULT_VOICE",
    "Espeak",
    "EspeakSynthesizer",
    "EspeakVoice",
    "Sink",
    "apply_pronunciations",
    "get_espeak",
    "speakable",
    "speaking_rate_to_wpm",
    "stream_rendered",
]

_RATE_NORMAL = 175
_RATE_MIN = 80
_RATE_MAX = 450

#: Duration of each yielded chunk, in ms.
_CHUNK_MS = 20


def speaking_rate_to_wpm(speaking_rate: float) -> int:
    """Map Sayna's ``speaking_rate`` (1.0 = normal, clamped to 0.25–4.0) to espeak words
    per minute (175 at 1.0, limited to espeak's 80–450). Non-finite rates count as 1.0."""
    rate = speaking_rate if math.isfinite(speaking_rate) else 1.0
    rate = min(max(rate, 0.25), 4.0)
    return min(max(round(_RATE_NORMAL * rate), _RATE_MIN), _RATE_MAX)


def apply_pronunciations(text: str, pronunciations: Sequence[tuple[str, str]]) -> str:
    """Replace each ``word`` by its pronunciation: in order, case-sensitive, whole words
    only (``\\b<word>\\b`` with the word regex-escaped), as the Sayna server does; then
    control characters become spaces (see :func:`speakable`)."""
    for word, spoken in pronunciations:
        if not word:
            continue
        # A function replacement keeps backslashes in ``spoken`` literal.
        text = re.sub(rf"\b{re.escape(word)}\b", _literal(spoken), text)
    return speakable(text)


#: C0 and C1 control characters but tab and newlines, which the engines read as spaces.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def speakable(text: str) -> str:
    """``text`` with control characters as spaces: a NUL failed the synthesis ("embedded
    null character" from the phonemizer); hosted voices read past such characters."""
    return _CONTROL.sub(" ", text)


def _literal(replacement: str) -> Callable[[re.Match[str]], str]:
    return lambda _match: replacement


class _Chunker:
    """Resamples espeak output and cuts it into fixed-size encoded chunks.

    Used from the synthesis thread only.
    """

    def __init__(self, source_rate: int, target_rate: int, audio_format: str) -> None:
        self._resampler = (
            soxr.ResampleStream(source_rate, target_rate, 1, dtype="int16", quality="HQ")
            if source_rate != target_rate
            else None
        )
        self._format = audio_format
        self._chunk_bytes = max(1, target_rate * _CHUNK_MS // 1000) * 2
        self._pending = bytearray()

    def push(self, samples: Int16Array, last: bool = False) -> list[bytes]:
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        self._pending += samples.astype("<i2", copy=False).tobytes()
        size = self._chunk_bytes
        chunks: list[bytes] = []
        while len(self._pending) >= size:
            chunks.append(encode_output(bytes(self._pending[:size]), self._format))
            del self._pending[:size]
        if last and self._pending:
            chunks.append(encode_output(bytes(self._pending), self._format))
            self._pending.clear()
        return chunks


class EspeakSynthesizer:
    """Turns :class:`TTSRequest` objects into encoded audio with espeak-ng.

    Args:
        executor: where blocking synthesis runs. One worker is enough: espeak is
            serialised process-wide anyway, and a dedicated thread keeps TTS from
            queueing behind other blocking work.
    """

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._espeak = get_espeak()
        self._executor = executor

    def names_voice(self, voice_id: str) -> bool:
        """See :meth:`Espeak.names_voice`."""
        return self._espeak.names_voice(voice_id)

    def voices(self) -> list[Voice]:
        """Every installed voice (about 140 languages and accents), sorted by id."""
        return [voice.to_voice() for voice in self._espeak.voices]

    async def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield ``request`` as audio, streamed in 20 ms chunks while espeak renders.

        Pronunciations are applied first; blank text yields nothing. ``voice_id`` is
        resolved by :meth:`Espeak.resolve_voice`; ``model`` is ignored. Formats:
        ``linear16``/``pcm`` and unknown strings → raw pcm16 LE, ``mulaw``/``ulaw`` →
        G.711 mu-law, ``alaw`` → G.711 A-law (compressed formats are encoded by
        :mod:`.output` from pcm16). ``wav`` is the one buffered format: it needs the data length in
        its header, so the whole clip is rendered (fast: espeak runs hundreds of times
        faster than real time), then one header chunk is yielded before the data.

        Closing the generator early (``aclose()`` or cancellation) aborts espeak at its
        next callback; the worker thread then returns on its own.

        Raises:
            ValueError: ``sample_rate`` is not a positive rate up to 384 kHz.
            RuntimeError: espeak-ng failed.
        """
        check_tts_rate(request.sample_rate)
        text = apply_pronunciations(request.text, request.pronunciations)
        if not text.strip():
            return
        audio_format = request.audio_format.strip().lower()
        voice = self._espeak.resolve_voice(request.voice_id)
        wpm = speaking_rate_to_wpm(request.speaking_rate)

        espeak = self._espeak

        def render(sink: Sink) -> None:
            espeak.synthesize(text, voice, wpm, sink)

        async for chunk in stream_rendered(
            self._executor, render, espeak.sample_rate, request.sample_rate, audio_format
        ):
            yield chunk


async def stream_rendered(
    executor: concurrent.futures.Executor,
    render: Callable[[Sink], None],
    source_rate: int,
    sample_rate: int,
    audio_format: str,
) -> AsyncIterator[bytes]:
    """Run ``render`` on ``executor`` and yield its audio as it appears.

    ``render(sink)`` passes int16 blocks at ``source_rate`` to ``sink`` (which returns
    False when the consumer has gone) and raises on failure. Blocks are resampled to
    ``sample_rate``, cut into 20 ms chunks and encoded per ``audio_format``; ``wav``
    is buffered whole so its header can carry the data length.

    Closing the generator early (``aclose()`` or cancellation) makes the next
    ``sink`` call return False; the worker then returns on its own. Rendering stops at
    the cap on a request's audio (``MAX_TTS_SECONDS``): the audio up to it is yielded,
    then :class:`~.base.TTSTooLong` is raised (the text is not rendered to the end in
    the meantime, whatever its length).

    Raises:
        TTSTooLong: the text makes more audio than the cap.
        Exception: whatever ``render`` raised.
    """
    is_wav = audio_format == "wav"
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Optional[bytes]] = asyncio.Queue()
    stop = threading.Event()

    def deliver(chunk: Optional[bytes]) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, chunk)
        except RuntimeError:  # the loop is closed: nobody is listening any more
            stop.set()

    chunker = _Chunker(source_rate, sample_rate, audio_format)
    budget = TTSBudget(sample_rate)

    def sink(samples: Int16Array) -> bool:
        if stop.is_set():
            return False
        budget.spend(len(samples) / source_rate)  # past the cap: raised, rendering stops
        for chunk in chunker.push(samples):
            deliver(chunk)
        return True

    def run() -> None:
        try:
            render(sink)
            if not stop.is_set():
                for chunk in chunker.push(np.zeros(0, dtype=np.int16), last=True):
                    deliver(chunk)
        finally:
            deliver(None)  # always wake the consumer, also on errors

    job = loop.run_in_executor(executor, run)
    buffered: list[bytes] = []
    try:
        while True:
            chunk = await queue.get()
            if chunk is None:
                break
            if is_wav:
                buffered.append(chunk)
            else:
                yield chunk
        await job  # re-raises a synthesis error
        if is_wav:
            yield wav_header(sample_rate, data_bytes=sum(map(len, buffered)))
            for chunk in buffered:
                yield chunk
    finally:
        stop.set()
        if not job.done():
            # Retrieve the outcome later so an abandoned job never logs
            # "exception was never retrieved".
            job.add_done_callback(_consume_outcome)


def _consume_outcome(future: asyncio.Future[None]) -> None:
    if not future.cancelled():
        future.exception()
