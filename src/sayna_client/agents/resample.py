"""Streaming sample-rate conversion of 16-bit mono PCM, in pure Python (no numpy).

A sound card runs at its own rate (44.1 or 48 kHz, usually) while the session's STT and
TTS run at theirs (16 or 24 kHz): :class:`Resampler` converts a live stream frame by frame,
keeping its state between frames so that frame edges leave no clicks and no drift (output
sample ``k`` sits exactly at input time ``k * in_rate / out_rate``, in integers).

Linear interpolation, after a moving-average low-pass when the rate goes down (so the
audio above the new Nyquist frequency is damped instead of folded into the speech band).
That is speech quality, made for a microphone feeding a recogniser and a TTS voice going
to a speaker; for music, or for files, ``audio.wav_frames(..., resample=True)`` uses soxr.
"""

from __future__ import annotations

import sys
from array import array
from math import gcd

from ..errors import SaynaValidationError

__all__ = ["Reframer", "Resampler"]

_BIG_ENDIAN = sys.byteorder == "big"


def _check_rate(name: str, value: object) -> int:
    if type(value) is not int or value <= 0:
        raise SaynaValidationError(f"{name} must be a positive whole number of Hz, got {value!r}")
    return value


class Resampler:
    """Converts a stream of 16-bit little-endian mono PCM from ``in_rate`` to ``out_rate``.

    Args:
        in_rate: Hz of the audio given to :meth:`process`.
        out_rate: Hz of the audio it returns.

    Raises:
        SaynaValidationError: a rate that is not a positive whole number.

    Not thread-safe: feed it from one thread (or the event loop) at a time.
    """

    __slots__ = ("_buf", "_down", "_history", "_pos", "_up", "_width", "in_rate", "out_rate")

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = _check_rate("in_rate", in_rate)
        self.out_rate = _check_rate("out_rate", out_rate)
        common = gcd(in_rate, out_rate)
        self._up = out_rate // common
        self._down = in_rate // common
        # Going down by a factor of 1.5 or more: average that many input samples first.
        self._width = round(in_rate / out_rate) if in_rate * 2 >= out_rate * 3 else 1
        self._history: list[int] = []
        self._buf: list[int] = []
        self._pos = 0  # the next output sample sits at input index _pos / _up in _buf

    @property
    def passthrough(self) -> bool:
        """True when both rates are equal (the audio is returned unchanged)."""
        return self._up == self._down

    def process(self, pcm: bytes) -> bytes:
        """Convert the next piece of the stream; returns what is ready (possibly b"").

        Raises:
            SaynaValidationError: ``pcm`` is not bytes-like, or not whole 16-bit samples.
        """
        try:
            memoryview(pcm)
        except TypeError:
            raise SaynaValidationError(
                f"pcm must be bytes-like 16-bit PCM (bytes, bytearray, memoryview), "
                f"got {type(pcm).__name__}"
            ) from None
        if len(pcm) % 2:
            raise SaynaValidationError(
                f"PCM must be whole 16-bit samples (an even byte count), got {len(pcm)} bytes"
            )
        if self.passthrough:
            return bytes(pcm)
        samples = array("h", pcm)
        if _BIG_ENDIAN:
            samples.byteswap()
        buf = self._buf
        buf.extend(self._smooth(samples))
        up, down, pos = self._up, self._down, self._pos
        out = array("h")
        append = out.append
        last = len(buf) - 1
        while True:
            index, frac = divmod(pos, up)
            if index >= last:
                break
            a = buf[index]
            append(a + (buf[index + 1] - a) * frac // up)
            pos += down
        consumed = min(pos // up, len(buf))
        del buf[:consumed]
        self._pos = pos - consumed * up
        if _BIG_ENDIAN:
            out.byteswap()
        return out.tobytes()

    def reset(self) -> None:
        """Forget the stream so far (after a flush: the next audio starts afresh)."""
        self._history.clear()
        self._buf.clear()
        self._pos = 0

    def _smooth(self, samples: array[int]) -> list[int]:
        width = self._width
        if width == 1:
            return samples.tolist()
        history = self._history
        if not history:
            history.extend([samples[0]] * (width - 1) if samples else [])
        window = history + samples.tolist()
        total = sum(window[: width - 1])
        out = []
        for j in range(width - 1, len(window)):
            total += window[j]
            out.append(total // width)
            total -= window[j - width + 1]
        self._history = window[len(window) - (width - 1) :]
        return out


class Reframer:
    """Cuts a byte stream into frames of exactly ``frame_bytes``."""

    __slots__ = ("_pending", "frame_bytes")

    def __init__(self, frame_bytes: int) -> None:
        if type(frame_bytes) is not int or frame_bytes <= 0:
            raise SaynaValidationError("frame_bytes must be a positive whole number")
        self.frame_bytes = frame_bytes
        self._pending = bytearray()

    def push(self, data: bytes) -> list[bytes]:
        """Add ``data``; return the whole frames now complete (the rest waits)."""
        pending = self._pending
        pending += data
        size = self.frame_bytes
        count = len(pending) // size
        frames = [bytes(pending[i * size : (i + 1) * size]) for i in range(count)]
        del pending[: count * size]
        return frames

    def finish(self) -> list[bytes]:
        """The last, partial frame padded with silence (or nothing)."""
        if not self._pending:
            return []
        frame = bytes(self._pending).ljust(self.frame_bytes, b"\x00")
        self._pending.clear()
        return [frame]
