"""Validation of ``config.loading_audio`` (the LiveKit "thinking" clip), section 6.3.

The local server never plays the clip; it only decodes it with the real server's rules
so clients see the same non-fatal errors and ``loading_start`` behaves the same.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Any

__all__ = ["MAX_DECODED_BYTES", "LoadingClip", "LoadingError", "decode_loading_audio"]

MAX_DECODED_BYTES = 1_920_000 + 4096
MIN_MS = 250
MAX_MS = 10_000


class LoadingError(Exception):
    """A loading-audio problem; ``str()`` is the exact client-facing message."""


@dataclass(frozen=True)
class LoadingClip:
    """A decoded clip: interleaved s16le PCM."""

    pcm: bytes
    sample_rate: int
    channels: int
    volume: float

    @property
    def duration_ms(self) -> int:
        return len(self.pcm) // (2 * self.channels) * 1000 // self.sample_rate


def decode_loading_audio(config: dict[str, Any]) -> LoadingClip:
    """Decode and validate a ``loading_audio`` object.

    Raises:
        LoadingError: with one of the texts listed in section 6.3.
    """
    data: str = config["data"]
    if len(data) // 4 * 3 > MAX_DECODED_BYTES:
        raise LoadingError(
            f"loading_audio.data decoded audio would exceed the maximum size of "
            f"{MAX_DECODED_BYTES} bytes"
        )
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LoadingError("loading_audio.data is not valid base64") from exc
    if len(raw) > MAX_DECODED_BYTES:
        raise LoadingError(
            "loading_audio.data decoded audio exceeds the maximum size of "
            f"{MAX_DECODED_BYTES} bytes"
        )
    fmt = config.get("format")
    if fmt is None:
        kind = "wav" if raw[:4] == b"RIFF" and raw[8:12] == b"WAVE" else "pcm"
    else:
        kind = fmt.strip().lower()
        if kind not in ("wav", "pcm"):
            raise LoadingError('loading_audio.format must be "wav" or "pcm"')
    if kind == "wav":
        pcm, sample_rate, channels = _parse_wav(raw)
    else:
        sample_rate_value = config.get("sample_rate")
        if sample_rate_value is None:
            raise LoadingError("sample_rate is required for raw PCM loading_audio")
        sample_rate = int(sample_rate_value)
        channels_value = config.get("channels")
        channels = 1 if channels_value is None else int(channels_value)
        if channels not in (1, 2):
            raise LoadingError("loading_audio supports mono or stereo only")
        if len(raw) % (2 * channels):
            raise LoadingError("loading_audio raw PCM length is not frame-aligned")
        pcm = raw
    if channels not in (1, 2):
        raise LoadingError("loading_audio supports mono or stereo only")
    if not 8000 <= sample_rate <= 48000:
        raise LoadingError("loading_audio sample rate must be between 8000 Hz and 48000 Hz")
    volume_value = config.get("volume")
    volume = min(1.0, max(0.0, 1.0 if volume_value is None else float(volume_value)))
    clip = LoadingClip(pcm, sample_rate, channels, volume)
    if clip.duration_ms < MIN_MS:
        raise LoadingError("loading_audio is too short; the minimum duration is 250 ms")
    if clip.duration_ms > MAX_MS:
        raise LoadingError("loading_audio is too long; the maximum duration is 10000 ms")
    return clip


def _parse_wav(raw: bytes) -> tuple[bytes, int, int]:
    if len(raw) < 12 or raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise LoadingError("loading_audio is not a valid WAV file: missing RIFF/WAVE header")
    offset = 12
    fmt_chunk = None
    data_chunk = None
    while offset + 8 <= len(raw):
        chunk_id, size = struct.unpack_from("<4sI", raw, offset)
        body = raw[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt ":
            fmt_chunk = body
        elif chunk_id == b"data":
            data_chunk = body
            break
        offset += 8 + size + (size & 1)
    if fmt_chunk is None or len(fmt_chunk) < 16:
        raise LoadingError("loading_audio is not a valid WAV file: missing fmt chunk")
    if data_chunk is None:
        raise LoadingError("loading_audio is not a valid WAV file: missing data chunk")
    tag, channels, sample_rate, _, _, bits = struct.unpack_from("<HHIIHH", fmt_chunk)
    if tag not in (1, 0xFFFE) or bits != 16:
        raise LoadingError(
            "loading_audio: only 16-bit PCM is supported; please provide 16-bit PCM audio"
        )
    if channels == 0:
        raise LoadingError("loading_audio supports mono or stereo only")
    if len(data_chunk) % (2 * channels):
        raise LoadingError("loading_audio WAV data is not a whole number of audio frames")
    return data_chunk, sample_rate, channels
