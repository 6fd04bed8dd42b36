"""TTS output formats: what each ``audio_format`` is sent as, and the compressed ones.

The bytes always match the content type ``POST /speak`` announces for the requested
``audio_format`` (section 3.3), and ``/ws`` binary frames carry the same bytes:

* ``linear16``/``pcm`` (``audio/pcm``), ``wav`` (``audio/wav``, a RIFF header first),
  ``mulaw`` (``audio/basic``) and the names Sayna serves as
  ``application/octet-stream`` (``ulaw``, ``alaw``, unknown strings) are produced by the
  engines chunk by chunk (:func:`.base.encode_output`): G.711 mu-law or A-law for their
  names and aliases, headerless pcm16 otherwise (as ElevenLabs answers unknown names).
* ``mp3``/``mpeg`` (``audio/mpeg``) are MPEG Layer III and ``ogg``/``opus``
  (``audio/ogg``) are Ogg Opus, the container Deepgram and Google use for ``opus``.
  They are encoded here with libsndfile through ``soundfile`` (the ``local`` extra):
  the engine renders the whole clip as pcm16, at the requested rate when the codec
  supports it, else at the next rate it supports (48 kHz at most: what Azure does with
  rates; ``x-sample-rate`` still echoes the requested one, as Sayna's does), then the
  clip is encoded on a worker thread and sent in pieces of about 100 ms of audio.
  Without ``soundfile``, or with a libsndfile that lacks the codec, the request fails
  the way a provider refusing the format fails on Sayna (``Failed to synthesize
  speech: ...`` on ``/speak``, ``TTS error: ...`` on ``/ws``), naming the formats that
  work.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import Any, Optional

from ...protocol.encodings import canonical
from .base import Engine, TTSBudget, TTSRequest

__all__ = [
    "FormatUnavailable",
    "content_type_for",
    "produced_formats",
    "synthesize",
]

#: Sayna's ``audio_format`` -> ``content-type`` table (section 3.3), exact strings.
_CONTENT_TYPES = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "mpeg": "audio/mpeg",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "linear16": "audio/pcm",
    "pcm": "audio/pcm",
    "mulaw": "audio/basic",
}

#: Formats every engine produces itself, named as a client writes them.
_RAW_FORMATS = "linear16, pcm, wav, mulaw, ulaw, alaw"

#: Seconds of audio per piece of a compressed clip.
_PIECE_SECONDS = 0.1


@dataclass(frozen=True)
class _Codec:
    """A compressed output format libsndfile writes."""

    names: str  # as a client writes them, for messages
    major: str  # soundfile format
    subtype: str
    rates: tuple[int, ...]


_CODECS = {
    "audio/mpeg": _Codec(
        "mp3/mpeg",
        "MP3",
        "MPEG_LAYER_III",
        (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000),
    ),
    "audio/ogg": _Codec("ogg/opus", "OGG", "OPUS", (8000, 12000, 16000, 24000, 48000)),
}


class FormatUnavailable(RuntimeError):
    """A compressed ``audio_format`` this server cannot encode; ``str()`` is the
    client-facing text (it names the formats that work)."""


def content_type_for(audio_format: str) -> str:
    """``/speak`` content type derived from the requested ``audio_format`` string,
    verbatim as Sayna does (``"MP3"`` is ``application/octet-stream``)."""
    return _CONTENT_TYPES.get(audio_format, "application/octet-stream")


def _soundfile() -> Optional[Any]:
    # Imported on each use, so an install without the extra (and tests that hide it)
    # see the truth; a loaded module is a dictionary look-up away.
    try:
        return importlib.import_module("soundfile")
    except (ImportError, OSError):  # OSError: soundfile without a libsndfile
        return None


def _encodes(soundfile: Optional[Any], codec: _Codec) -> bool:
    if soundfile is None:
        return False
    try:
        return codec.subtype in soundfile.available_subtypes(codec.major)
    except (RuntimeError, TypeError, ValueError):
        return False


def produced_formats() -> str:
    """The ``audio_format`` names this server produces now, for messages and docs."""
    soundfile = _soundfile()
    extra = [codec.names for codec in _CODECS.values() if _encodes(soundfile, codec)]
    return ", ".join([_RAW_FORMATS, *extra])


def _unavailable(audio_format: str, codec: _Codec) -> str:
    if _soundfile() is None:
        need = "the soundfile package (pip install 'sayna-client[local]')"
    else:
        need = f"a libsndfile with {codec.major} {codec.subtype} support (1.1 or later)"
    return f"audio_format '{audio_format}' needs {need}; this server produces {produced_formats()}"


def _codec_rate(codec: _Codec, requested: int) -> int:
    return next((rate for rate in codec.rates if rate >= requested), codec.rates[-1])


def _encode(soundfile: Any, codec: _Codec, pcm: bytes, sample_rate: int) -> bytes:
    out = io.BytesIO()
    with soundfile.SoundFile(
        out,
        mode="w",
        samplerate=sample_rate,
        channels=1,
        format=codec.major,
        subtype=codec.subtype,
    ) as handle:
        handle.buffer_write(pcm, dtype="int16")
    return out.getvalue()


def _sample_width(audio_format: str) -> int:
    """Bytes per sample of what the engines send for ``audio_format``."""
    name = canonical(audio_format)
    return 1 if name == "mulaw" or name == "alaw" else 2


async def synthesize(engine: Engine, request: TTSRequest) -> AsyncIterator[tuple[bytes, float]]:
    """Yield ``request`` as ``(chunk, seconds of audio in it)`` in its output format.

    The raw formats stream from the engine as it renders; a compressed clip (see the
    module docstring) comes once the engine has finished. Blank text yields nothing.

    Raises:
        FormatUnavailable: a compressed format this installation cannot encode (raised
            before any audio).
        TTSTooLong: the request makes more audio than ``MAX_TTS_SECONDS`` (after the
            audio up to the cap, for an engine that cannot tell in advance).
        Exception: what the engine or the encoder raised.
    """
    codec = _CODECS.get(content_type_for(request.audio_format))
    # Every engine's audio counts against the cap (the fake engine refuses a long text
    # before rendering; the local ones stop rendering at the cap themselves).
    budget = TTSBudget(request.sample_rate) if request.sample_rate > 0 else None
    if codec is None:
        per_second = max(1, request.sample_rate) * _sample_width(request.audio_format)
        async for chunk in engine.synthesize(request):
            seconds = len(chunk) / per_second
            if budget is not None:
                budget.spend(seconds)
            yield chunk, seconds
        return
    soundfile = _soundfile()
    if not _encodes(soundfile, codec):
        raise FormatUnavailable(_unavailable(request.audio_format, codec))
    # A rate the engine refuses (zero, negative) goes to it unchanged, for its error.
    rate = request.sample_rate
    if rate > 0:
        rate = _codec_rate(codec, rate)
    pcm_request = replace(request, audio_format="linear16", sample_rate=rate)
    rendered: list[bytes] = []
    async for chunk in engine.synthesize(pcm_request):
        if budget is not None:
            budget.spend(len(chunk) / (2 * rate))
        rendered.append(chunk)
    pcm = b"".join(rendered)
    if not pcm:
        return
    loop = asyncio.get_running_loop()
    encoded = await loop.run_in_executor(None, _encode, soundfile, codec, pcm, rate)
    seconds = len(pcm) / (2 * rate)
    pieces = max(1, math.ceil(seconds / _PIECE_SECONDS))
    size = math.ceil(len(encoded) / pieces)
    for start in range(0, len(encoded), size):
        piece = encoded[start : start + size]
        yield piece, seconds * len(piece) / len(encoded)
