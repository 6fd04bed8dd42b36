"""The small interface every speech engine of the local server implements.

An engine turns text into audio (TTS) and audio into transcripts (STT). The
WebSocket session and ``POST /speak`` only talk to engines through this module,
so the deterministic ``fake`` engine and the real offline ``local`` engine
(espeak-ng + pocketsphinx) are interchangeable per session.

Audio inside engines is always 16-bit little-endian mono PCM ("pcm16");
:func:`encode_output` converts it to the raw wire format a ``tts_config`` asked for.
The compressed formats (mp3, ogg/opus) are encoded by :mod:`.output`, which asks the
engine for pcm16.
"""

from __future__ import annotations

import abc
import math
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Callable, Optional

from sayna_client._alaw import alaw_to_linear16, linear16_to_alaw

# One mu-law implementation for the SDK and the server; re-exported via __all__.
from sayna_client.audio import linear16_to_mulaw, mulaw_to_linear16
from sayna_client.protocol.encodings import canonical

__all__ = [
    "MAX_TTS_SECONDS",
    "Engine",
    "STTParams",
    "STTStream",
    "TTSBudget",
    "TTSRequest",
    "TTSTooLong",
    "Transcript",
    "Voice",
    "clamp_speaking_rate",
    "encode_output",
    "g711_decoder",
    "linear16_to_mulaw",
    "mulaw_to_linear16",
    "wav_header",
]


@dataclass(frozen=True)
class TTSRequest:
    """One synthesis job, already normalised from a ``tts_config`` (server defaults applied)."""

    text: str
    voice_id: str = "aura-asteria-en"
    model: str = ""
    speaking_rate: float = 1.0
    audio_format: str = "linear16"
    sample_rate: int = 24000
    pronunciations: tuple[tuple[str, str], ...] = ()


#: The highest output rate the engines render (Hz).
MAX_TTS_RATE = 384_000
#: The most audio one TTS request renders, in seconds: Azure's limit (10 minutes of audio
#: per request); the other providers limit the text (Deepgram 2,000 characters, Google
#: 5,000 bytes), which speaks for less. A request past it fails (``TTS error: ...`` on
#: ``/ws``, 500 ``Failed to synthesize speech: ...`` on ``/speak``).
MAX_TTS_SECONDS = 600
#: ... and in samples (600 s at 48 kHz), so that above 48 kHz the cap in seconds is lower
#: and no request renders more than 57.6 MB of pcm16.
MAX_TTS_SAMPLES = MAX_TTS_SECONDS * 48_000
#: Sayna's documented ``speaking_rate`` range (section 5.2), where an engine honours it.
SPEAKING_RATE_RANGE = (0.25, 4.0)


def clamp_speaking_rate(speaking_rate: float) -> float:
    """``speaking_rate`` within :data:`SPEAKING_RATE_RANGE` (Google's clamp on Sayna,
    zero and negative rates included); a rate that is not finite counts as 1.0."""
    if not math.isfinite(speaking_rate):
        return 1.0
    low, high = SPEAKING_RATE_RANGE
    return min(max(speaking_rate, low), high)


class TTSTooLong(ValueError):
    """A request would render more audio than the local server's cap
    (:data:`MAX_TTS_SECONDS`); ``str()`` is the client-facing text, in the words of
    Sayna's ``TTSError::AudioGenerationFailed``."""


def tts_seconds_cap(sample_rate: int) -> float:
    """The most seconds of audio one request renders at ``sample_rate`` (a positive
    rate): :data:`MAX_TTS_SECONDS`, less above 48 kHz (:data:`MAX_TTS_SAMPLES`)."""
    return min(float(MAX_TTS_SECONDS), MAX_TTS_SAMPLES / sample_rate)


def tts_too_long(sample_rate: int, seconds: Optional[float] = None) -> TTSTooLong:
    """The error of a request past the cap (``seconds``: how much it asked, if known)."""
    cap = tts_seconds_cap(sample_rate)
    at = f"; {cap:g} s at {sample_rate} Hz" if cap < MAX_TTS_SECONDS else ""
    asked = f"this text makes {seconds:.0f} s" if seconds is not None else "this text makes more"
    return TTSTooLong(
        f"Audio generation failed: the local server renders at most {MAX_TTS_SECONDS} s of "
        f"audio per request (MAX_TTS_SECONDS{at}); {asked}"
    )


class TTSBudget:
    """The seconds of audio one request may still render (see :func:`tts_seconds_cap`).

    Args:
        sample_rate: the request's output rate (a positive rate).
    """

    def __init__(self, sample_rate: int) -> None:
        self._rate = sample_rate
        self._left = tts_seconds_cap(sample_rate)

    def spend(self, seconds: float) -> None:
        """Count ``seconds`` more of audio.

        Raises:
            TTSTooLong: the request went past the cap.
        """
        self._left -= seconds
        if self._left < -1e-6:
            raise tts_too_long(self._rate)


def check_tts_rate(sample_rate: int) -> None:
    """Refuse an output rate the engines cannot render: not positive, or above
    :data:`MAX_TTS_RATE` (a rate of millions would render gigabytes on the server).

    Raises:
        ValueError: ``unsupported sample_rate <n>``.
    """
    if not 0 < sample_rate <= MAX_TTS_RATE:
        raise ValueError(f"unsupported sample_rate {sample_rate}")


def check_stt_rate(sample_rate: int) -> None:
    """Refuse an input rate that is not positive.

    Raises:
        ValueError: ``unsupported sample_rate <n>``.
    """
    if sample_rate <= 0:
        raise ValueError(f"unsupported sample_rate {sample_rate}")


@dataclass(frozen=True)
class STTParams:
    """The ``stt_config`` of a session: what the client promised to send."""

    language: str = "en-US"
    sample_rate: int = 16000
    channels: int = 1
    encoding: str = "linear16"
    model: str = ""
    punctuation: bool = True
    #: Words the recogniser should expect (names such as "Sayna"); engines that
    #: support hints (the local Whisper engine) use them, others ignore them.
    hint: str = ""
    #: The session's ``stream_id`` (scripted speech can target one session); ``None``
    #: when the recogniser is not tied to a session (``POST /speak`` round trips, tests).
    stream_id: Optional[str] = None


@dataclass(frozen=True)
class Transcript:
    """One ``stt_result`` the session will send.

    The shapes an engine may produce (protocol section 6.8), best built with the
    constructors below:

    * :meth:`interim` - a hypothesis that may still change (``is_final`` false);
    * :meth:`speech_final` - the end of an utterance: final **and** speech-final,
      carrying the utterance's text, as every real provider sends it. Agents wait for
      ``is_final and is_speech_final and transcript``;
    * :meth:`segment_final` - a final that does not end the utterance (Deepgram splits
      long speech this way); the utterance must still end in a :meth:`speech_final`.

    An engine never sends an empty speech-final: ``("", is_final, is_speech_final)`` is
    Sayna's own forced speech-final, which the session produces itself when a
    segment final is not followed by a speech-final in time.
    """

    transcript: str
    is_final: bool
    is_speech_final: bool
    confidence: float = 1.0

    @classmethod
    def interim(cls, text: str, confidence: float) -> Transcript:
        """A non-final hypothesis."""
        return cls(text, is_final=False, is_speech_final=False, confidence=confidence)

    @classmethod
    def speech_final(cls, text: str, confidence: float) -> Transcript:
        """The utterance's last final, marked speech-final, with its (non-empty) text."""
        return cls(text, is_final=True, is_speech_final=True, confidence=confidence)

    @classmethod
    def segment_final(cls, text: str, confidence: float) -> Transcript:
        """A final that is not the end of the utterance (a speech-final follows)."""
        return cls(text, is_final=True, is_speech_final=False, confidence=confidence)

    def to_wire(self) -> dict[str, Any]:
        return {
            "type": "stt_result",
            "transcript": self.transcript,
            "is_final": self.is_final,
            "is_speech_final": self.is_speech_final,
            "confidence": self.confidence,
        }


@dataclass(frozen=True)
class Voice:
    """One entry of ``GET /voices`` (all fields are required strings on the wire)."""

    id: str
    name: str
    sample: str = ""
    accent: str = "Unknown"
    gender: str = "Unknown"
    language: str = "Unknown"

    def to_wire(self) -> dict[str, str]:
        return {
            "id": self.id,
            "sample": self.sample,
            "name": self.name,
            "accent": self.accent,
            "gender": self.gender,
            "language": self.language,
        }


class STTStream(abc.ABC):
    """A streaming recogniser for one session.

    ``feed`` receives the client's binary frames exactly as sent (format per
    :class:`STTParams`) and returns the results that became available. It must
    never raise on odd input sizes: the real server forwards frames untouched.

    Result shapes follow :class:`Transcript`: each utterance ends in a
    :meth:`Transcript.speech_final` that carries its text. The session warns in the
    log when an engine ends an utterance with an empty speech-final instead.
    """

    #: True when ``feed`` may wait a long time (a model decoding the frame): the session
    #: then feeds the stream from a background task, joining the frames that arrive
    #: meanwhile, so it keeps reading its socket (and answering pings) while it waits.
    feed_may_wait: bool = False
    #: True when ``feed`` never waits and :meth:`feed_now` does the same work without a
    #: coroutine: the session then calls :meth:`feed_now` for every frame (the fake
    #: engine: a coroutine per frame was a fifth of the session's CPU per frame).
    instant: bool = False

    @property
    def speaking(self) -> bool:
        """True while the recogniser hears the talker inside an utterance (its VAD is in
        speech, or in a pause too short to end the turn), as of the last ``feed``.

        The session does not force an empty speech-final while it is true: a final sent
        meanwhile (a piece of a long utterance) is not the end of the turn. Default:
        False (the forced speech-final follows Sayna's timers alone).
        """
        return False

    @abc.abstractmethod
    async def feed(self, audio: bytes) -> list[Transcript]:
        """Consume one binary frame; return results produced by it (possibly none)."""

    def feed_now(self, audio: bytes) -> list[Transcript]:
        """:meth:`feed` without a coroutine, for a stream whose :attr:`instant` is True.

        Raises:
            NotImplementedError: the stream is not instant (use :meth:`feed`).
        """
        raise NotImplementedError(f"{type(self).__name__} has no synchronous feed")

    @abc.abstractmethod
    async def finish(self) -> list[Transcript]:
        """End of input: flush pending finals (used when the session ends)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release engine resources. Default: nothing to release."""


class Engine(abc.ABC):
    """A speech engine: voices, synthesis and recognition."""

    #: Short name used in logs and in ``--engine``.
    name: str = "engine"

    @abc.abstractmethod
    def voices(self) -> dict[str, list[Voice]]:
        """The ``GET /voices`` catalogue, keyed by provider name."""

    @abc.abstractmethod
    def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield audio chunks already encoded per ``request.audio_format``/``sample_rate``.

        Implementations produce pcm16 internally and finish with :func:`encode_output`
        per chunk (the ``wav`` format gets one header first). The server never asks an
        engine for a compressed format: :func:`.output.synthesize` requests pcm16 and
        encodes it.
        """

    @abc.abstractmethod
    def open_stt(self, params: STTParams) -> STTStream:
        """Start a recogniser for one session."""

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Load what the engine needs before serving, off the event loop.

        Default: nothing to load. The server awaits it once for its default engine, so
        errors (e.g. a corrupted model file) surface at start-up.
        """


# --- audio format helpers shared by engines -------------------------------------------


def g711_decoder(encoding: str) -> Optional[Callable[[bytes], bytes]]:
    """The decoder to 16-bit PCM of the G.711 ``encoding`` (mu-law or A-law, by any of
    their names), None for 16-bit PCM itself (what the engines read otherwise)."""
    name = canonical(encoding)
    if name == "mulaw":
        return mulaw_to_linear16
    if name == "alaw":
        return alaw_to_linear16
    return None


def wav_header(sample_rate: int, channels: int = 1, data_bytes: int = 0, bits: int = 16) -> bytes:
    """A 44-byte RIFF/WAVE header for PCM data of ``data_bytes`` bytes.

    Streaming writers that do not know the length yet pass ``0xFFFFFFFF - 36``-style
    values; the engines pass the real length when they know it.
    """
    block_align = channels * bits // 8
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        sample_rate * block_align,
        block_align,
        bits,
        b"data",
        data_bytes,
    )


def encode_output(pcm16: bytes, audio_format: str) -> bytes:
    """Encode one chunk of pcm16 into the raw ``audio_format``.

    ``mulaw`` and ``alaw`` and their aliases (``protocol.encodings``) → G.711 mu-law /
    A-law; ``linear16``/``pcm``/``wav`` and every other name → unchanged pcm16 (callers
    emit a WAV header first for ``wav``). Compressed formats never get here (see
    :mod:`.output`).
    """
    name = canonical(audio_format)
    if name == "mulaw":
        return linear16_to_mulaw(pcm16)
    if name == "alaw":
        return linear16_to_alaw(pcm16)
    return pcm16
