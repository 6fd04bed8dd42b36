"""PCM and WAV helpers for feeding STT and saving TTS output.

Sayna forwards binary frames to the STT provider untouched, so the bytes a client
sends must already match ``stt_config`` (``sample_rate``, ``channels``,
``encoding``); TTS audio comes back as headerless chunks. This module covers both
directions with the standard library only:

* :func:`read_wav` / :func:`wav_frames` turn a 16-bit WAV file into fixed-size
  frames in the session's format, and :func:`paced` sends them at real-time pace;
* :func:`pcm_to_wav_bytes`, :func:`write_wav` and :class:`WavWriter` wrap PCM
  (for example from ``register_on_tts_audio``) into playable WAV files;
* :func:`linear16_to_mulaw` / :func:`mulaw_to_linear16` convert G.711 mu-law;
* :func:`duration_ms` / :func:`frame_bytes` do the size arithmetic.

"PCM" here always means signed 16-bit little-endian samples (``linear16``),
channels interleaved. Resampling (``wav_frames(..., resample=True)``) is the only
feature with optional dependencies: ``soxr`` and ``numpy`` from the ``local`` extra,
imported on first use.

Reading and writing files is synchronous; in async code load a file first with
``await asyncio.to_thread(read_wav, path)`` and pass the :class:`WavAudio` on.
"""

from __future__ import annotations

import asyncio
import math
import os
import sys
import wave
from array import array
from collections.abc import AsyncGenerator, AsyncIterable, Iterable, Iterator, Mapping
from typing import IO, Any, Optional, Union

from sayna_client._mulaw import linear16_to_mulaw, mulaw_to_linear16
from sayna_client._wav import (
    SAMPLE_WIDTH,
    WavAudio,
    WavSource,
    WavWriter,
    check_positive_int,
    pcm_to_wav_bytes,
    write_wav,
)
from sayna_client.errors import SaynaValidationError
from sayna_client.protocol import encodings

__all__ = [
    "WavAudio",
    "WavWriter",
    "duration_ms",
    "frame_bytes",
    "linear16_to_mulaw",
    "mulaw_to_linear16",
    "paced",
    "pcm_to_wav_bytes",
    "read_wav",
    "wav_frames",
    "write_wav",
]


_SAMPLE_WIDTH = SAMPLE_WIDTH  # bytes per sample of a 16-bit WAV file and of linear16
_INSTALL_HINT = "pip install 'sayna-client[local]'"
_FFMPEG_HINT = "ffmpeg -i input -ac {channels} -ar {rate} -c:a pcm_s16le output.wav"
_BIG_ENDIAN = sys.byteorder == "big"


def read_wav(path: WavSource) -> WavAudio:
    """Read a 16-bit PCM WAV file.

    Args:
        path: A file path, or a binary file object positioned at the RIFF header.

    Returns:
        The samples with the file's own sample rate and channel count. A truncated
        final frame is dropped.

    Raises:
        SaynaValidationError: The file is not a PCM WAV file (compressed or float
            WAV, not RIFF at all) or its samples are not 16-bit.
        OSError: The file cannot be opened or read.
    """
    # wave.open only recognises str paths as paths (not PathLike on 3.9).
    source: Union[str, IO[bytes]] = (
        os.fspath(path) if isinstance(path, (str, os.PathLike)) else path
    )
    label = repr(source) if isinstance(source, str) else "the WAV data"
    try:
        with wave.open(source, "rb") as reader:
            width = reader.getsampwidth()
            rate = reader.getframerate()
            channels = reader.getnchannels()
            if width != _SAMPLE_WIDTH:
                raise SaynaValidationError(
                    f"{label} has {8 * width}-bit samples; only 16-bit PCM is supported: "
                    "convert it with `" + _FFMPEG_HINT.format(channels=channels, rate=rate) + "`."
                )
            data = reader.readframes(reader.getnframes())
    except (wave.Error, EOFError) as exc:
        why = f" ({exc})" if str(exc) else ""
        raise SaynaValidationError(
            f"{label} is not a PCM WAV file{why}; compressed, float and non-RIFF "
            "files are not supported: convert it with `"
            + _FFMPEG_HINT.format(channels=1, rate=16000)
            + "`."
        ) from exc
    block = _SAMPLE_WIDTH * channels
    return WavAudio(pcm=data[: len(data) - len(data) % block], sample_rate=rate, channels=channels)


def wav_frames(
    source: Union[WavSource, WavAudio],
    *,
    frame_ms: int = 20,
    sample_rate: Optional[int] = None,
    channels: Optional[int] = None,
    stt_config: Optional[Any] = None,
    resample: bool = False,
) -> Iterator[bytes]:
    """Split a WAV file into equal frames in the format the STT session expects.

    The target format comes from ``stt_config`` (any object or mapping with
    ``sample_rate``, ``channels`` and ``encoding``, such as the ``stt_config`` passed
    to ``connect``) or from ``sample_rate``/``channels``; unspecified values keep the
    file's own. Every frame holds exactly ``frame_ms`` of audio: the **last frame is
    padded with silence** to full length, so the total sent can exceed the file's
    duration by up to one frame. Empty audio yields no frames.

    The file is read and checked when this function is called (not on first
    iteration), and held in memory while iterating.

    Args:
        source: A WAV path or binary file object, or an already loaded
            :class:`WavAudio`.
        frame_ms: Frame length in milliseconds; it must be a whole number of samples
            at the target rate (20 ms works for every common rate).
        sample_rate: Target rate in Hz; must agree with ``stt_config`` if both given.
        channels: Target channel count; must agree with ``stt_config`` if both given.
        stt_config: Source of the target rate, channels and encoding. An encoding of
            ``mulaw``/``ulaw`` produces G.711 mu-law frames (one byte per sample);
            ``linear16``/``pcm`` (or none) produces 16-bit PCM.
        resample: Convert audio whose rate or channel count differs from the target:
            rates with ``soxr`` (optional dependency), channels by averaging down to
            mono or duplicating mono. Without it a mismatch is an error.

    Returns:
        An iterator of frames, each ``frame_bytes(frame_ms, rate, channels, encoding)``
        bytes long.

    Raises:
        SaynaValidationError: The file is not 16-bit PCM WAV; the format differs from
            the target and ``resample`` is false; ``sample_rate``/``channels``
            contradict ``stt_config``; the encoding cannot be produced; ``frame_ms``
            is not a whole number of samples; ``soxr``/``numpy`` are missing when
            resampling is needed; or channels cannot be mixed (neither side mono).
        OSError: The file cannot be read.
    """
    audio = source if isinstance(source, WavAudio) else read_wav(source)
    rate = _target_value("sample_rate", sample_rate, stt_config, audio.sample_rate)
    n_channels = _target_value("channels", channels, stt_config, audio.channels)
    encoding = _target_encoding(stt_config)
    step = frame_bytes(frame_ms, rate, n_channels)
    if (rate, n_channels) != (audio.sample_rate, audio.channels) and not resample:
        raise SaynaValidationError(
            f"The audio is {audio.sample_rate} Hz with {audio.channels} channel(s) but the "
            f"target is {rate} Hz with {n_channels} channel(s): pass resample=True (rate "
            f"conversion needs soxr: {_INSTALL_HINT}) or convert the file first, e.g. `"
            + _FFMPEG_HINT.format(channels=n_channels, rate=rate)
            + "`."
        )
    pcm = _convert(audio, rate, n_channels)
    return _iter_frames(pcm, step, mulaw=encoding == "mulaw")


async def paced(
    frames: Union[AsyncIterable[bytes], Iterable[bytes]],
    *,
    frame_ms: int = 20,
    speed: float = 1.0,
) -> AsyncGenerator[bytes, None]:
    """Yield frames no faster than real time, like a live microphone.

    Frame ``k`` is released at ``start + k * frame_ms / speed`` on the event loop's
    monotonic clock, where ``start`` is when the first frame arrives. Deadlines are
    computed from ``start``, not from the previous frame, so sleep overshoot does not
    accumulate; if the consumer or source falls behind, the late frames are released
    immediately until the schedule is met again.

    Arguments are checked when iteration starts. Cancelling the consumer cancels the
    pending sleep; the source iterator is left as it is.

    Args:
        frames: The frames, as a sync or async iterable.
        frame_ms: Duration of each frame in milliseconds (not checked against sizes).
        speed: Playback rate: ``2.0`` sends twice as fast as real time; ``0`` or
            ``math.inf`` disables pacing.

    Yields:
        The frames, unchanged, in order.

    Raises:
        SaynaValidationError: ``frame_ms`` is not a positive int or ``speed`` is
            negative or NaN.
    """
    check_positive_int("frame_ms", frame_ms)
    if isinstance(speed, bool) or not isinstance(speed, (int, float)) or not speed >= 0:
        raise SaynaValidationError(
            f"speed must be a number >= 0, got {speed!r}: use 1.0 for real time, 2.0 for "
            "twice as fast, or 0 to send without pacing."
        )
    interval = 0.0 if speed == 0 or math.isinf(speed) else frame_ms / 1000.0 / speed
    schedule = _Schedule(interval)
    # Two loops rather than an adapter generator, so closing this generator early
    # leaves no inner async generator waiting for the loop's finaliser.
    if isinstance(frames, AsyncIterable):
        async for frame in frames:
            await schedule.wait()
            yield frame
    else:
        for frame in frames:
            await schedule.wait()
            yield frame


def duration_ms(
    nbytes: int, sample_rate: int, channels: int = 1, encoding: str = "linear16"
) -> float:
    """Duration in milliseconds of ``nbytes`` of raw audio.

    Args:
        nbytes: Size of the audio in bytes.
        sample_rate: Samples per second per channel.
        channels: Number of interleaved channels.
        encoding: ``linear16``/``pcm`` (2 bytes per sample) or
            ``mulaw``/``ulaw``/``alaw`` (1 byte per sample).

    Returns:
        The duration; a trailing partial sample counts proportionally.

    Raises:
        SaynaValidationError: A negative size, a non-positive rate or channel count,
            or an encoding without a fixed sample size (such as ``opus``).
    """
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 0:
        raise SaynaValidationError(f"nbytes must be an int >= 0, got {nbytes!r}.")
    check_positive_int("sample_rate", sample_rate)
    check_positive_int("channels", channels)
    per_second = sample_rate * channels * _bytes_per_sample(encoding)
    return nbytes * 1000.0 / per_second


def frame_bytes(
    frame_ms: int, sample_rate: int, channels: int = 1, encoding: str = "linear16"
) -> int:
    """Size in bytes of one frame of ``frame_ms`` milliseconds.

    Args:
        frame_ms: Frame duration in milliseconds.
        sample_rate: Samples per second per channel.
        channels: Number of interleaved channels.
        encoding: As for :func:`duration_ms`.

    Returns:
        ``sample_rate * frame_ms / 1000 * channels * bytes_per_sample``.

    Raises:
        SaynaValidationError: Non-positive arguments, an encoding without a fixed
            sample size, or a ``frame_ms`` that is not a whole number of samples at
            ``sample_rate`` (for example 1 ms at 22050 Hz).
    """
    check_positive_int("frame_ms", frame_ms)
    check_positive_int("sample_rate", sample_rate)
    check_positive_int("channels", channels)
    samples, remainder = divmod(sample_rate * frame_ms, 1000)
    if remainder:
        raise SaynaValidationError(
            f"frame_ms={frame_ms} is {sample_rate * frame_ms / 1000:g} samples at "
            f"{sample_rate} Hz, not a whole number: choose a frame length that is, "
            f"{_whole_frame_lengths(sample_rate)}, or resample the audio to 16000 Hz."
        )
    return samples * channels * _bytes_per_sample(encoding)


def _whole_frame_lengths(sample_rate: int) -> str:
    """The frame lengths (ms) that hold a whole number of samples at ``sample_rate``,
    for an error message: the first few up to 200 ms, or the smallest one."""
    step = 1000 // math.gcd(sample_rate, 1000)  # the shortest whole frame, in ms
    lengths = [ms for ms in range(step, 201, step)][:3]
    if not lengths:
        return f"a multiple of {step} ms"
    return "such as " + ", ".join(f"{ms} ms" for ms in lengths)


def _bytes_per_sample(encoding: str) -> int:
    width = encodings.bytes_per_sample(_normalise_encoding(encoding))
    if width is not None:
        return width
    raise SaynaValidationError(
        f"Encoding {encoding!r} has no fixed bytes per sample: use 'linear16', 'mulaw' or "
        "'alaw' for size and duration arithmetic."
    )


def _normalise_encoding(encoding: Any) -> str:
    if not isinstance(encoding, str):
        raise SaynaValidationError(
            f"encoding must be a string such as 'linear16', got {encoding!r}."
        )
    return encoding.strip().lower()


def _config_value(stt_config: Any, name: str) -> Any:
    if isinstance(stt_config, Mapping):
        return stt_config.get(name)
    return getattr(stt_config, name, None)


def _target_value(name: str, explicit: Optional[int], stt_config: Any, default: int) -> int:
    configured = None if stt_config is None else _config_value(stt_config, name)
    if explicit is not None and configured is not None and explicit != configured:
        raise SaynaValidationError(
            f"{name}={explicit!r} contradicts stt_config.{name}={configured!r}: pass one "
            "of them, not both."
        )
    value = explicit if explicit is not None else configured
    if value is None:
        return default
    check_positive_int(name, value)
    return int(value)


def _target_encoding(stt_config: Any) -> str:
    configured = None if stt_config is None else _config_value(stt_config, "encoding")
    if configured is None:
        return "linear16"
    found = encodings.lookup(_normalise_encoding(configured))
    if found is None or not found.sdk_encodes:
        raise SaynaValidationError(
            f"wav_frames cannot produce stt_config.encoding={configured!r} from WAV audio: "
            "use encoding 'linear16' (or 'mulaw'/'ulaw'), or encode the audio yourself."
        )
    return found.name


def _convert(audio: WavAudio, rate: int, channels: int) -> bytes:
    pcm = audio.pcm
    if channels < audio.channels:  # mix down first: less to resample
        pcm = _mix_channels(pcm, audio.channels, channels)
    if rate != audio.sample_rate:
        pcm = _resample(pcm, min(channels, audio.channels), audio.sample_rate, rate)
    if channels > audio.channels:
        pcm = _mix_channels(pcm, audio.channels, channels)
    return pcm


def _mix_channels(pcm: bytes, source: int, target: int) -> bytes:
    if source != 1 and target != 1:
        raise SaynaValidationError(
            f"Cannot mix {source} channels into {target}: only mixing down to mono or up "
            "from mono is supported; convert the file first."
        )
    samples = array("h")
    samples.frombytes(pcm)
    if _BIG_ENDIAN:
        samples.byteswap()
    if target == 1:  # average the channels of each frame (floor division, like >> 1)
        columns = [samples[c::source] for c in range(source)]
        mixed = array("h", (sum(frame) // source for frame in zip(*columns)))
    else:  # copy the mono sample into every channel
        mixed = array("h", (s for s in samples for _ in range(target)))
    if _BIG_ENDIAN:
        mixed.byteswap()
    return mixed.tobytes()


def _resample(pcm: bytes, channels: int, in_rate: int, out_rate: int) -> bytes:
    try:
        import numpy as np
        import soxr
    except ImportError as exc:
        raise SaynaValidationError(
            f"Resampling from {in_rate} Hz to {out_rate} Hz needs the optional soxr and "
            f"numpy packages: {_INSTALL_HINT}, or convert the file first, e.g. `"
            + _FFMPEG_HINT.format(channels=channels, rate=out_rate)
            + "`."
        ) from exc
    samples = np.frombuffer(pcm, dtype="<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels)
    # soxr keeps int16 in and out (clipping internally), in C order.
    out = soxr.resample(samples, in_rate, out_rate)
    return np.ascontiguousarray(out, dtype="<i2").tobytes()


def _iter_frames(pcm: bytes, step: int, *, mulaw: bool) -> Iterator[bytes]:
    view = memoryview(pcm)
    for offset in range(0, len(pcm), step):
        frame = bytes(view[offset : offset + step])
        if len(frame) < step:
            frame = frame.ljust(step, b"\x00")  # silence; see wav_frames docstring
        yield linear16_to_mulaw(frame) if mulaw else frame


class _Schedule:
    """Release times ``start + k * interval`` on the running loop's monotonic clock."""

    __slots__ = ("_index", "_interval", "_loop", "_start")

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._start: Optional[float] = None
        self._index = 0

    async def wait(self) -> None:
        if not self._interval:
            return
        if self._start is None:
            self._start = self._loop.time()
        else:
            delay = self._start + self._index * self._interval - self._loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
        self._index += 1
