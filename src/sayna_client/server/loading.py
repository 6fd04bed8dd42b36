"""Validation of ``config.loading_audio`` (the LiveKit "thinking" clip), section 6.3.

The local server never plays the clip; it only decodes it with the real server's rules
so clients see the same non-fatal errors and ``loading_start`` behaves the same.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Any, Optional

__all__ = [
    "MAX_DECODED_BYTES",
    "MAX_PAYLOAD_BYTES",
    "LoadingClip",
    "LoadingError",
    "decode_loading_audio",
]

#: The largest raw PCM a clip may decode to (48 kHz stereo for 10 s) and the largest
#: payload (that plus room for a WAV header): loading_clip.rs.
MAX_DECODED_BYTES = 1_920_000
MAX_PAYLOAD_BYTES = MAX_DECODED_BYTES + 4096
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
    """Decode and validate a ``loading_audio`` object in the real server's order
    (livekit/loading_clip.rs ``decode_loading_clip``).

    Raises:
        LoadingError: with one of the texts listed in section 6.3.
    """
    data: str = config["data"]
    if len(data) // 4 * 3 > MAX_PAYLOAD_BYTES:
        raise LoadingError(
            f"loading_audio.data decoded audio would exceed the maximum size of "
            f"{MAX_PAYLOAD_BYTES} bytes"
        )
    raw = _standard_base64(data)
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise LoadingError(
            "loading_audio.data decoded audio exceeds the maximum size of "
            f"{MAX_PAYLOAD_BYTES} bytes"
        )
    fmt = config.get("format")
    if fmt is None:
        kind = "wav" if raw[:4] == b"RIFF" and raw[8:12] == b"WAVE" else "pcm"
    else:
        kind = fmt.strip().lower()
        if kind not in ("wav", "pcm"):
            raise LoadingError('loading_audio.format must be "wav" or "pcm"')
    if kind == "wav":
        pcm, sample_rate, channels = _decode_wav(raw)
    else:
        pcm, sample_rate, channels = _decode_raw_pcm(
            raw, config.get("sample_rate"), config.get("channels")
        )
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


def _standard_base64(data: str) -> bytes:
    """The ``base64`` crate's ``STANDARD`` engine: the standard alphabet, canonical
    padding, and no set bits after the last byte (``AB==`` is refused)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise LoadingError("loading_audio.data is not valid base64") from exc
    if base64.b64encode(raw).decode("ascii") != data:
        raise LoadingError("loading_audio.data is not valid base64")
    return raw


def _decode_raw_pcm(
    raw: bytes, sample_rate: Optional[int], channels: Optional[int]
) -> tuple[bytes, int, int]:
    if sample_rate is None:
        raise LoadingError("sample_rate is required for raw PCM loading_audio")
    count = 1 if channels is None else channels
    # Frames are checked before the channel count (which the caller checks next):
    # with 0 channels only empty audio is "aligned" (Rust's is_multiple_of(0)).
    aligned = len(raw) % 2 == 0 and (len(raw) % (2 * count) == 0 if count else not raw)
    if not aligned:
        raise LoadingError("loading_audio raw PCM length is not frame-aligned")
    return raw, sample_rate, count


def _decode_wav(raw: bytes) -> tuple[bytes, int, int]:
    """loading_clip.rs ``decode_wav``: the file read by hound 3.5.1's ``WavReader``
    (its errors as ``loading_audio is not a valid WAV file: <hound's text>``)."""
    try:
        wav = _HoundReader(raw)
    except _HoundError as exc:
        raise LoadingError(f"loading_audio is not a valid WAV file: {exc}") from None
    if wav.float_samples or wav.bits != 16:
        raise LoadingError(
            "loading_audio: only 16-bit PCM is supported; please provide 16-bit PCM audio"
        )
    if wav.num_samples * 2 > MAX_DECODED_BYTES:
        raise LoadingError(
            "loading_audio.data decoded audio exceeds the maximum size of "
            f"{MAX_DECODED_BYTES} bytes"
        )
    if wav.bytes_per_sample > 2 and wav.num_samples:
        raise LoadingError(
            "loading_audio could not be read as 16-bit PCM: The sample has more bits than the "
            "destination type."
        )
    end = wav.data_start + 2 * wav.num_samples
    if end > len(raw):
        raise LoadingError(f"loading_audio could not be read as 16-bit PCM: {_SHORT}")
    # hound has checked that the samples are a whole number of frames.
    return raw[wav.data_start : end], wav.sample_rate, wav.channels


#: hound's io error when the input ends early.
_SHORT = "Failed to read enough bytes."
_FORMAT = "Ill-formed WAVE file: "
_UNSUPPORTED = "The wave format of the file is not supported."
_SUBTYPE_PCM = bytes.fromhex("0100000000001000800000aa00389b71")
_SUBTYPE_FLOAT = bytes.fromhex("0300000000001000800000aa00389b71")


class _HoundError(Exception):
    """hound's ``Error`` display."""


class _HoundReader:
    """``hound::WavReader::new`` over bytes: the header, chunks up to ``data`` and the
    fmt chunk, with hound's checks and texts (read.rs ``read_wave_header``,
    ``read_until_data``, ``read_fmt_chunk``, ``WavReader::new``)."""

    def __init__(self, raw: bytes) -> None:
        self._raw = raw
        self._at = 0
        if self._take(4) != b"RIFF":
            raise _HoundError(_FORMAT + "no RIFF tag found")
        self._u32()
        if self._take(4) != b"WAVE":
            raise _HoundError(_FORMAT + "no WAVE tag found")
        have_fmt = False
        while True:
            kind, size = self._take(4), self._u32()
            if kind == b"fmt ":
                self._fmt(size)
                have_fmt = True
            elif kind == b"fact":
                # hound reads one u32 (ignoring a failure) and skips nothing more.
                self._at = min(len(raw), self._at + 4)
            elif kind == b"data":
                if not have_fmt:
                    raise _HoundError(_FORMAT + "missing fmt chunk")
                break
            else:
                self._take(size)
        self.data_start = self._at
        self.num_samples = size // self.bytes_per_sample
        if self.num_samples * self.bytes_per_sample != size:
            raise _HoundError(_FORMAT + "data chunk length is not a multiple of sample size")
        if self.num_samples % self.channels:
            raise _HoundError(_FORMAT + "invalid data chunk length")

    def _take(self, count: int) -> bytes:
        if self._at + count > len(self._raw):
            raise _HoundError(_SHORT)
        self._at += count
        return self._raw[self._at - count : self._at]

    def _u16(self) -> int:
        value: int = struct.unpack("<H", self._take(2))[0]
        return value

    def _u32(self) -> int:
        value: int = struct.unpack("<I", self._take(4))[0]
        return value

    def _fmt(self, size: int) -> None:
        if size < 16:
            raise _HoundError(_FORMAT + "invalid fmt chunk size")
        tag, channels, rate = self._u16(), self._u16(), self._u32()
        per_second, block_align, bits = self._u32(), self._u16(), self._u16()
        if channels == 0:
            raise _HoundError(_FORMAT + "file contains zero channels")
        bytes_per_sample = block_align // channels
        if bytes_per_sample * 8 > 0xFFFF or bits > bytes_per_sample * 8:
            raise _HoundError(_FORMAT + "sample bits exceeds size of sample")
        if block_align * rate > 0xFFFFFFFF or per_second != block_align * rate:
            raise _HoundError(_FORMAT + "inconsistent fmt chunk")
        if bits % 8:
            raise _HoundError(_FORMAT + "bits per sample is not a multiple of 8")
        if bits == 0:
            raise _HoundError(_FORMAT + "bits per sample is 0")
        self.channels, self.sample_rate, self.bits = channels, rate, bits
        self.bytes_per_sample = bytes_per_sample
        self.float_samples = False
        if tag == 0x0001:
            if size not in (16, 18, 40):
                raise _HoundError(_FORMAT + "unexpected fmt chunk size")
            if size != 16:
                self._u16()
                if bits not in (8, 16, 24):
                    raise _HoundError(_FORMAT + "bits per sample is not 8 or 16")
            if size == 40:
                self._take(22)
        elif tag == 0x0003:
            if size not in (16, 18):
                raise _HoundError(_FORMAT + "unexpected fmt chunk size")
            if size == 18 and self._u16() != 0:
                raise _HoundError(_FORMAT + "unexpected WAVEFORMATEX size")
            if bits != 32:
                raise _HoundError(_FORMAT + "bits per sample is not 32")
            self.float_samples = True
        elif tag == 0xFFFE:
            if size < 40:
                raise _HoundError(_FORMAT + "unexpected fmt chunk size")
            if self._u16() != 22:
                raise _HoundError(_FORMAT + "unexpected WAVEFORMATEXTENSIBLE size")
            valid_bits = self._u16()
            self._u32()
            subformat = self._take(16)
            if subformat not in (_SUBTYPE_PCM, _SUBTYPE_FLOAT):
                raise _HoundError(_UNSUPPORTED)
            if valid_bits > 0:
                self.bits = valid_bits
            self.float_samples = subformat == _SUBTYPE_FLOAT
        else:
            raise _HoundError(_UNSUPPORTED)
