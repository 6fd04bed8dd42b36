"""WAV files: the decoded-audio type and the writing side of :mod:`sayna_client.audio`.

:class:`WavAudio` (16-bit PCM with its rate and channel count), and wrapping PCM
into WAV: :func:`pcm_to_wav_bytes`, :func:`write_wav`, :class:`WavWriter`. The public
names are re-exported by :mod:`sayna_client.audio`; standard library only.

:class:`ReplacingFile` is how a whole file is written (``write_wav``, the ``sayna``
command's output files): beside the old one, then renamed over it once complete, so
a write that fails partway never leaves a truncated file in its place.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import IO, Any, Optional, Union

from .errors import SaynaValidationError

__all__ = [
    "SAMPLE_WIDTH",
    "ReplacingFile",
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
        OSError: The file cannot be written (``filename`` is ``path``); an existing
            file is then left as it was (see :class:`ReplacingFile`).
    """
    data = pcm_to_wav_bytes(pcm, sample_rate, channels)
    with ReplacingFile(path) as out:
        out.write(data)


class ReplacingFile:
    """A new version of ``path``, written beside it and put in its place when complete.

    The bytes go to a hidden temporary file in the same folder (``.NAME.XXXXXXXX.part``);
    :meth:`commit` renames it over ``path`` (``os.replace``: atomic, so readers see the
    old file or the new one, never half of one) and :meth:`discard` deletes it. Until
    :meth:`commit`, ``path`` is untouched: a write that fails partway (a full disk, a
    quota, ``ulimit -f``), an error or Ctrl-C leaves the old file as it was. In a
    ``with`` block it commits when the block ends normally and discards otherwise.

    The new file keeps the old one's permission bits (new files get the usual 0666
    less the umask); through a symbolic link, the file it points to is replaced and the
    link stays. A path that exists and is not a regular file (``/dev/null``, a FIFO, a
    terminal) cannot be replaced and holds nothing to keep: it is written in place; so
    is a writable file in a folder where this user may not create one.

    Args:
        path: the file to write.

    Raises:
        OSError: from any step (creating, writing, renaming), with ``filename`` set to
            ``path`` (not the temporary file's name).
    """

    def __init__(self, path: StrPath) -> None:
        self.path = os.fspath(path)
        with self._named():
            self._target = os.path.realpath(self.path)
            try:
                mode: Optional[int] = os.stat(self._target).st_mode
            except FileNotFoundError:
                mode = None
            self._temp: Optional[str] = None
            if mode is not None and not stat.S_ISREG(mode):
                self.file: IO[bytes] = open(self._target, "wb")  # noqa: SIM115 - closed by commit/discard
                return
            try:
                self._temp, descriptor = _create_beside(self._target)
            except PermissionError:
                if mode is None:
                    raise
                # A writable file in a folder this user cannot add to: in place, as
                # nothing else can be done.
                self.file = open(self._target, "wb")  # noqa: SIM115 - closed by commit/discard
                return
            try:
                if mode is not None:
                    os.chmod(self._temp, stat.S_IMODE(mode))
                self.file = os.fdopen(descriptor, "wb")
            except BaseException:
                os.close(descriptor)
                os.unlink(self._temp)
                raise

    def write(self, data: bytes) -> None:
        """Append ``data`` to the new version.

        Raises:
            OSError: it cannot be written (``filename`` is the path).
        """
        with self._named():
            self.file.write(data)

    def commit(self) -> None:
        """Close the new version and put it in place of ``path``. On failure the new
        version is deleted and ``path`` left as it was.

        Raises:
            OSError: closing (the last buffered bytes written) or renaming failed.
        """
        with self._named():
            try:
                self.file.close()
                if self._temp is not None:
                    os.replace(self._temp, self._target)
                    self._temp = None
            except BaseException:
                self.discard()
                raise

    def discard(self) -> None:
        """Close and delete the new version; ``path`` stays as it was. Never raises
        (calling it after :meth:`commit` does nothing)."""
        try:
            self.file.close()
        except OSError:
            pass  # its last bytes could not be written: it is deleted anyway
        temp, self._temp = self._temp, None
        if temp is not None:
            try:
                os.unlink(temp)
            except OSError:
                pass

    @contextlib.contextmanager
    def _named(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            # The user's name for the file, not the temporary one beside it.
            exc.filename, exc.filename2 = self.path, None
            raise

    def __enter__(self) -> ReplacingFile:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.discard()

    def __repr__(self) -> str:
        return f"ReplacingFile({self.path!r})"


def _create_beside(target: str) -> tuple[str, int]:
    """A new, empty file in ``target``'s folder with a hidden name derived from it: its
    path and an open descriptor (0666 less the umask, as ``open()`` would make)."""
    folder, name = os.path.split(target)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    while True:
        temp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.part")
        try:
            return temp, os.open(temp, flags, 0o666)
        except FileExistsError:
            continue  # another writer's name: draw again


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
