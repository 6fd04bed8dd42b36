"""WAV files: the decoded-audio type and the writing side of :mod:`sayna_client.audio`.

:class:`WavAudio` (16-bit PCM with its rate and channel count), and wrapping PCM
into WAV: :func:`pcm_to_wav_bytes`, :func:`write_wav`, :class:`WavWriter`. The public
names are re-exported by :mod:`sayna_client.audio`; standard library only.
"""

from __future__ import annotations

import os
import wave
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, Optional, Union

from .errors import SaynaValidationError

__all__ = [
    "SAMPLE_WIDTH",
    "StrPath",
    "WavAudio",
    "WavSource",
    "WavWriter",
    "check_positive_int",
    "pcm_to_wav_bytes",
    "write_wav",
]

StrPath = Union[str, "os.PathLike[str]"]
WavSource = Union[str, "os.PathLike[str]", IO[bytes]]

SAMPLE_WIDTH = 2  # bytes per linear16 sample
_SAMPLE_WIDTH = SAMPLE_WIDTH


def check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise SaynaValidationError(f"{name} must be a positive int, got {value!r}.")


@dataclass(frozen=True)
class WavAudio:
    """Decoded 16-bit PCM audio: little-endian samples, channels interleaved.

    Attributes:
        pcm: The sample bytes (``len(pcm)`` is a multiple of ``2 * channels``).
        sample_rate: Samples per second per channel.
        channels: Number of interleaved channels.

    Raises:
        SaynaValidationError: On construction, if the values are inconsistent.
    """

    pcm: bytes = field(repr=False)
    sample_rate: int
    channels: int

    def __post_init__(self) -> None:
        check_positive_int("sample_rate", self.sample_rate)
        check_positive_int("channels", self.channels)
        if len(self.pcm) % (_SAMPLE_WIDTH * self.channels):
            raise SaynaValidationError(
                f"WavAudio.pcm has {len(self.pcm)} bytes, not a whole number of "
                f"{self.channels}-channel 16-bit frames ({_SAMPLE_WIDTH * self.channels} bytes "
                "each): pass complete samples."
            )

    @property
    def duration_ms(self) -> float:
        """Length of the audio in milliseconds."""
        return len(self.pcm) * 1000.0 / (_SAMPLE_WIDTH * self.channels * self.sample_rate)

    @property
    def nbytes(self) -> int:
        """Size of :attr:`pcm` in bytes (shown in the repr instead of the audio)."""
        return len(self.pcm)

    def __repr__(self) -> str:
        return (
            f"WavAudio(sample_rate={self.sample_rate}, channels={self.channels}, "
            f"nbytes={len(self.pcm)}, duration_ms={self.duration_ms:.1f})"
        )


def pcm_to_wav_bytes(pcm: bytes, sample_rate: int, channels: int = 1) -> bytes:
    """Wrap 16-bit PCM in a 44-byte RIFF/WAVE header.

    Args:
        pcm: Little-endian 16-bit samples, channels interleaved.
        sample_rate: Samples per second per channel.
        channels: Number of interleaved channels.

    Returns:
        A complete WAV file.

    Raises:
        SaynaValidationError: ``sample_rate``/``channels`` are not positive ints, or
            ``pcm`` is not a whole number of frames.
    """
    audio = WavAudio(pcm=bytes(pcm), sample_rate=sample_rate, channels=channels)
    return _wav_header(audio.sample_rate, audio.channels, len(audio.pcm)) + audio.pcm


def write_wav(path: StrPath, pcm: bytes, sample_rate: int, channels: int = 1) -> None:
    """Write 16-bit PCM to a WAV file, replacing any existing file.

    Args:
        path: Destination path.
        pcm: Little-endian 16-bit samples, channels interleaved.
        sample_rate: Samples per second per channel.
        channels: Number of interleaved channels.

    Raises:
        SaynaValidationError: As for :func:`pcm_to_wav_bytes` (nothing is written).
        OSError: The file cannot be written.
    """
    data = pcm_to_wav_bytes(pcm, sample_rate, channels)
    with open(os.fspath(path), "wb") as out:
        out.write(data)


class WavWriter:
    """Stream 16-bit PCM chunks into a WAV file whose header is fixed up on close.

    Chunks may split samples anywhere (a partial frame is carried over to the next
    :meth:`write`); a partial frame still pending at :meth:`close` is padded with
    zeros. Leaving the ``with`` block closes the writer even on error, so the file is
    always playable. Writes are small synchronous file writes, cheap enough to call
    from a TTS audio callback::

        with WavWriter("reply.wav", sample_rate=24000) as wav:
            client.register_on_tts_audio(wav.write)
            await client.speak("Hello!")
            ...

    Args:
        path_or_file: Destination path, or a seekable binary file object (left open).
        sample_rate: Samples per second per channel.
        channels: Number of interleaved channels.

    Raises:
        SaynaValidationError: ``sample_rate``/``channels`` are not positive ints.
        OSError: The file cannot be opened.
    """

    def __init__(self, path_or_file: WavSource, sample_rate: int, channels: int = 1) -> None:
        check_positive_int("sample_rate", sample_rate)
        check_positive_int("channels", channels)
        self._sample_rate = sample_rate
        self._channels = channels
        self._block = _SAMPLE_WIDTH * channels
        self._pending = b""
        self._frames = 0
        self._owned: Optional[IO[bytes]] = None
        if isinstance(path_or_file, (str, os.PathLike)):
            self._owned = open(os.fspath(path_or_file), "wb")  # noqa: SIM115 - closed in close()
            target: IO[bytes] = self._owned
        else:
            target = path_or_file
        try:
            self._wave: Optional[wave.Wave_write] = wave.open(target, "wb")  # noqa: SIM115
            self._wave.setnchannels(channels)
            self._wave.setsampwidth(_SAMPLE_WIDTH)
            self._wave.setframerate(sample_rate)
        except BaseException:
            if self._owned is not None:
                self._owned.close()
            raise

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` has run."""
        return self._wave is None

    @property
    def frames_written(self) -> int:
        """Complete frames (one sample per channel) written so far."""
        return self._frames

    @property
    def duration_ms(self) -> float:
        """Duration of the complete frames written so far, in milliseconds."""
        return self._frames * 1000.0 / self._sample_rate

    def write(self, chunk: bytes) -> None:
        """Append PCM bytes (16-bit little-endian, channels interleaved).

        Raises:
            SaynaValidationError: The writer is closed.
        """
        if self._wave is None:
            raise SaynaValidationError(
                "WavWriter is closed: create a new WavWriter to write more audio."
            )
        data = self._pending + bytes(chunk) if self._pending else bytes(chunk)
        whole = len(data) - len(data) % self._block
        self._pending = data[whole:]
        if whole:
            self._wave.writeframesraw(data[:whole])
            self._frames += whole // self._block

    def close(self) -> None:
        """Flush a padded partial frame, patch the header sizes and close the file.

        Calling it again does nothing.
        """
        if self._wave is None:
            return
        try:
            if self._pending:
                padded = self._pending.ljust(self._block, b"\x00")
                self._pending = b""
                self._wave.writeframesraw(padded)
                self._frames += 1
            self._wave.close()
        finally:
            self._wave = None
            if self._owned is not None:
                self._owned.close()

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"WavWriter(sample_rate={self._sample_rate}, channels={self._channels}, "
            f"frames_written={self._frames}, closed={self.closed})"
        )


def _wav_header(sample_rate: int, channels: int, data_bytes: int) -> bytes:
    block_align = channels * _SAMPLE_WIDTH
    return b"".join(
        (
            b"RIFF",
            (36 + data_bytes).to_bytes(4, "little"),
            b"WAVE",
            b"fmt ",
            (16).to_bytes(4, "little"),
            (1).to_bytes(2, "little"),  # WAVE_FORMAT_PCM
            channels.to_bytes(2, "little"),
            sample_rate.to_bytes(4, "little"),
            (sample_rate * block_align).to_bytes(4, "little"),
            block_align.to_bytes(2, "little"),
            (8 * _SAMPLE_WIDTH).to_bytes(2, "little"),
            b"data",
            data_bytes.to_bytes(4, "little"),
        )
    )
