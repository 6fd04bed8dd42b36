"""Audio in and out for an agent: small protocols, file-backed devices, sound cards.

A :class:`Microphone` yields frames for ``on_audio_input``; a :class:`Speaker` is an
:class:`~sayna_client.agents.AudioOutput` (``write`` / ``flush``) that plays in real time,
so a barge-in's ``flush`` drops exactly the audio not played yet and speech handles count
only played audio as heard. Plug in a phone bridge or a WebRTC track by implementing the
same two methods.

* :class:`PacedSpeaker` plays TTS audio at real-time pace through a jitter buffer into a
  sink (``WavWriter.write`` makes it a file-backed speaker);
* :class:`WavMicrophone` reads a WAV file as live 20 ms frames at the session's rate;
* :class:`SoundDeviceMicrophone` / :class:`SoundDeviceSpeaker` use the sound card through
  ``sounddevice`` (``pip install 'sayna-client[devices]'``, needs the PortAudio library);
  a sound card that cannot be used raises :class:`AudioDeviceError`.

Devices run at their own rate (``device_rate``: a sound card's native 44.1 or 48 kHz, a
file's rate); audio is converted to and from the session's rate on the way with
:class:`~sayna_client.agents.resample.Resampler` (pure Python, no numpy).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Union, runtime_checkable

from .. import audio
from ..errors import SaynaError, SaynaValidationError
from .resample import Reframer, Resampler

__all__ = [
    "AudioDeviceError",
    "Microphone",
    "PacedSpeaker",
    "SoundDeviceMicrophone",
    "SoundDeviceSpeaker",
    "Speaker",
    "WavMicrophone",
]


logger = logging.getLogger("sayna_client")

#: What a library user can do instead of a sound card that cannot be used.
_API_ALTERNATIVE = "or use a file instead (WavMicrophone / PacedSpeaker)"

#: Milliseconds of captured audio a microphone holds for a consumer that falls behind;
#: beyond, the oldest blocks are dropped (a device faster than real time, a stalled loop).
_BACKLOG_MS = 5000


class AudioDeviceError(SaynaError):
    """A sound card cannot be used: the ``devices`` extra or the PortAudio library is
    missing, there is no such device, or it cannot be opened (another program holds
    it, it does not support the rate...). The message names the problem and the fix.

    Attributes:
        problem: what is wrong, without the fix (``cannot open the audio output device
            (USB Audio): Device unavailable [PaErrorCode -9985]``).
        remedy: what to do about it on this machine (``close the program using it``),
            without the message's alternatives in code (``device=...``,
            :class:`WavMicrophone` / :class:`PacedSpeaker`): a command line built on
            these classes names its own (files given as options, say).
        kind: ``"input"`` or ``"output"`` for one device's problem; ``""`` when the sound
            card cannot be used at all (the extra, PortAudio).
    """

    def __init__(self, problem: str, remedy: str, kind: str = "") -> None:
        other = "pick another with device=..., " if kind else ""
        super().__init__(f"{problem}; {remedy}, {other}{_API_ALTERNATIVE}")
        self.problem = problem
        self.remedy = remedy
        self.kind = kind


@runtime_checkable
class Microphone(Protocol):
    """A source of microphone frames in the session's STT format."""

    def frames(self) -> AsyncIterator[bytes]:
        """Frames of ``frame_ms`` audio, as they are captured (real-time pace)."""


@runtime_checkable
class Speaker(Protocol):
    """An audio output that plays in real time (see :class:`~sayna_client.agents.AudioOutput`)."""

    def write(self, data: bytes) -> None:
        """Queue ``data`` for playing; never blocks."""

    def flush(self) -> int:
        """Drop unplayed audio; return the number of bytes dropped."""


class _JitterBuffer:
    """Bytes written on the loop, taken a frame at a time (possibly by another thread).

    Playing starts once ``prebuffer_bytes`` are buffered (and again after an underrun),
    or once the buffer held less for as many steps as the prebuffer lasts with nothing
    written meanwhile: the end of an answer shorter than the prebuffer plays too (it
    stayed unplayed for good), at most a prebuffer's time late. :meth:`release` plays
    what is buffered at once (the end of the audio: nothing more is coming).
    """

    def __init__(self, frame_bytes: int, prebuffer_bytes: int) -> None:
        self._lock = threading.Lock()
        self._data = bytearray()
        self._frame = frame_bytes
        self._prebuffer = prebuffer_bytes
        #: Steps a partial buffer waits for more audio: the prebuffer's length in frames.
        self._patience = -(-prebuffer_bytes // frame_bytes)
        #: Steps waited since the last write, while the buffer filled up.
        self._waited = 0
        self._playing = False
        #: Play what is buffered without waiting for the prebuffer, until it is empty.
        self._releasing = False
        #: Bytes handed to the device so far.
        self.played_bytes = 0

    def write(self, data: bytes) -> None:
        with self._lock:
            self._data += data
            self._waited = 0

    def flush(self) -> int:
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
            self._playing = self._releasing = False
            self._waited = 0
            return dropped

    def release(self) -> None:
        """Play what is buffered now without waiting for the prebuffer to fill."""
        with self._lock:
            if self._data:
                self._releasing = True

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._data)

    def take(self) -> bytes:
        """One frame (silence-padded), or b"" while the buffer fills or is empty."""
        with self._lock:
            if not self._data:
                return b""
            if not self._playing:
                filling = len(self._data) < self._prebuffer and not self._releasing
                if filling and self._waited < self._patience:
                    self._waited += 1
                    return b""
                self._playing = True
                self._waited = 0
            chunk = bytes(self._data[: self._frame])
            del self._data[: self._frame]
            if not self._data:
                # An underrun (or the end): fill up again before playing on.
                self._playing = self._releasing = False
            self.played_bytes += len(chunk)
        return chunk.ljust(self._frame, b"\x00")


class PacedSpeaker:
    """A speaker that plays into ``sink`` at real-time pace (a file, a socket, a device).

    Args:
        sample_rate: Hz of the TTS audio (16-bit mono), ``tts_config.sample_rate``.
        sink: called with each played frame (``WavWriter(path, device_rate).write``); None
            discards the audio (a speaker nobody records).
        frame_ms: the playing step.
        prebuffer_ms: audio held before playing starts (the jitter buffer).
        device_rate: Hz the sink plays at (default ``sample_rate``); the TTS audio is
            resampled to it as it is written.

    Use ``async with PacedSpeaker(...) as speaker: client.audio_output = speaker``.

    Raises:
        SaynaValidationError: a rate or duration that is not a positive whole number.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        sink: Optional[Callable[[bytes], Any]] = None,
        frame_ms: int = 20,
        prebuffer_ms: int = 60,
        device_rate: Optional[int] = None,
    ) -> None:
        if type(sample_rate) is not int or sample_rate <= 0:
            raise SaynaValidationError("sample_rate must be a positive whole number of Hz")
        if type(prebuffer_ms) is not int or prebuffer_ms < 0:
            raise SaynaValidationError("prebuffer_ms must be a whole number >= 0")
        rate = sample_rate if device_rate is None else device_rate
        self._resampler = Resampler(sample_rate, rate)
        frame = audio.frame_bytes(frame_ms, rate)
        self._buffer = _JitterBuffer(frame, frame * prebuffer_ms // frame_ms)
        self.sample_rate = sample_rate
        #: Hz of the audio handed to the sink (or the sound card).
        self.device_rate = rate
        self.frame_ms = frame_ms
        self._sink = sink
        self._task: Optional[asyncio.Task[None]] = None
        # Closed (aclose) and not started again: it plays nothing (buffered_bytes None).
        self._closed = False

    async def __aenter__(self) -> PacedSpeaker:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def write(self, data: bytes) -> None:
        """Queue TTS audio (at ``sample_rate``); it plays from the next step on."""
        self._buffer.write(self._resampler.process(data))

    def flush(self) -> int:
        """Drop what was not played; returns the bytes dropped, counted at ``sample_rate``
        (the bytes of the written audio they came from)."""
        dropped = self._buffer.flush()
        self._resampler.reset()
        return self._at_sample_rate(dropped)

    @property
    def played_bytes(self) -> int:
        """Bytes of the written audio played so far, counted at ``sample_rate``."""
        return self._at_sample_rate(self._buffer.played_bytes)

    @property
    def buffered_bytes(self) -> Optional[int]:
        """Bytes written and not played yet, counted at ``sample_rate``; None once the
        speaker is closed (it plays nothing more until started again: speech it holds
        ends then, see :class:`~sayna_client.agents.AudioOutput`)."""
        if self._closed:
            return None
        return self._at_sample_rate(self._buffer.buffered)

    def _at_sample_rate(self, device_bytes: int) -> int:
        if self.device_rate == self.sample_rate:
            return device_bytes
        return 2 * round(device_bytes // 2 * self.sample_rate / self.device_rate)

    async def play_out(self, timeout: Optional[float] = None) -> bool:
        """Play what is buffered without waiting for the jitter buffer to fill (the end
        of the audio: nothing more is coming), and wait until it has been played.

        Args:
            timeout: seconds to wait at most (None: no limit); a speaker not started, or
                a sound card that stalled, never plays its buffer out.

        Returns:
            True once the buffer is empty; False after ``timeout`` (what is left stays
            buffered: ``flush()`` drops it).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        self._buffer.release()
        # Polled, a frame at a time: a sound card's speaker empties its buffer on
        # PortAudio's thread.
        while self._buffer.buffered:
            if deadline is not None and loop.time() >= deadline:
                return False
            self._buffer.release()  # audio written meanwhile plays on at once too
            await asyncio.sleep(self.frame_ms / 1000)
        return True

    def start(self) -> None:
        """Start playing on a task of the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._play())
        self._closed = False

    async def aclose(self) -> None:
        """Stop playing; unplayed audio stays buffered (``flush()`` drops it), and
        ``buffered_bytes`` is None until started again."""
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _play(self) -> None:
        async for _ in audio.paced(itertools.repeat(b""), frame_ms=self.frame_ms):
            chunk = self._buffer.take()
            if chunk and self._sink is not None:
                self._sink(chunk)


class WavMicrophone:
    """A WAV file as a live microphone: 20 ms frames at the session's rate, paced.

    The file plays the part of a sound card running at the file's rate: its audio goes
    through the same streaming :class:`~sayna_client.agents.resample.Resampler` as
    :class:`SoundDeviceMicrophone`'s (no numpy needed).

    Args:
        path: the WAV file (16-bit PCM, any rate and channel count: it is converted).
        sample_rate: the session's STT rate (``stt_config.sample_rate``).
        frame_ms: frame length.
        speed: 1.0 is real time; 0 sends as fast as possible.
        tail_ms: silence after the file, so the last utterance ends (default 600 ms).

    Raises:
        SaynaValidationError / OSError: from reading the file (on construction).
    """

    def __init__(
        self,
        path: Union[str, Path],
        *,
        sample_rate: int = 16000,
        frame_ms: int = 20,
        speed: float = 1.0,
        tail_ms: int = 600,
    ) -> None:
        wav = audio.read_wav(path)
        pipeline = _Capture(wav.sample_rate, sample_rate, frame_ms)
        self._frames: list[bytes] = []
        for block in _mono_blocks(wav, frame_ms):
            self._frames += pipeline.push(block)
        self._frames += pipeline.finish()
        silence = bytes(audio.frame_bytes(frame_ms, sample_rate))
        self._frames += [silence] * (tail_ms // frame_ms)
        self.frame_ms = frame_ms
        self.speed = speed

    def frames(self) -> AsyncIterator[bytes]:
        """The file's frames, then the silent tail, at ``speed`` times real time."""
        return audio.paced(self._frames, frame_ms=self.frame_ms, speed=self.speed)


def _mono_blocks(wav: audio.WavAudio, frame_ms: int) -> list[bytes]:
    """``wav`` as mono 16-bit blocks of whole samples, about ``frame_ms`` each, as a
    sound card running at the file's rate would capture them. The blocks need not be
    exactly ``frame_ms``: at 11025 Hz, 20 ms is 220.5 samples (blocks of 220 then)."""
    pcm = wav.pcm
    if wav.channels != 1:
        # Averaged down to mono; a second is a whole number of samples at any rate (the
        # padding of the last second is cut off again).
        mixed = audio.wav_frames(
            wav, frame_ms=1000, sample_rate=wav.sample_rate, channels=1, resample=True
        )
        pcm = b"".join(mixed)[: len(pcm) // wav.channels]
    step = 2 * max(1, wav.sample_rate * frame_ms // 1000)
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


class _Capture:
    """Device-rate blocks in, session-rate frames of exactly ``frame_ms`` out."""

    def __init__(self, device_rate: int, sample_rate: int, frame_ms: int) -> None:
        self._resampler = Resampler(device_rate, sample_rate)
        self._frames = Reframer(audio.frame_bytes(frame_ms, sample_rate))

    def push(self, block: bytes) -> list[bytes]:
        return self._frames.push(self._resampler.process(block))

    def finish(self) -> list[bytes]:
        return self._frames.finish()


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError as exc:
        raise AudioDeviceError(
            "the sound card needs the optional 'devices' extra",
            "install it with pip install 'sayna-client[devices]'",
        ) from exc
    except OSError as exc:  # the module is there, the PortAudio library is not
        raise AudioDeviceError(
            f"sounddevice cannot load PortAudio ({exc})",
            "install it (e.g. apt-get install libportaudio2)",
        ) from exc
    return sounddevice


def _device_info(sd: Any, device: Optional[Any], kind: str) -> dict[str, Any]:
    """What PortAudio says of the (default) ``kind`` device, or a clear error when none."""
    try:
        return dict(sd.query_devices(device, kind))
    except (ValueError, sd.PortAudioError) as exc:
        raise AudioDeviceError(f"no audio {kind} device ({exc})", "plug one in", kind) from exc


def _device_name(device: Optional[Any], info: Optional[dict[str, Any]]) -> str:
    if info is not None and info.get("name"):
        return str(info["name"])
    return "the default one" if device is None else str(device)


def _started(sd: Any, kind: str, name: str, stream_class: Any, **settings: Any) -> Any:
    """A ``stream_class`` (sounddevice's ``RawInputStream`` or ``RawOutputStream``) made
    with ``settings`` and started; a device PortAudio cannot open or start raises
    :class:`AudioDeviceError` (the stream closed again)."""
    try:
        stream = stream_class(**settings)
    except (ValueError, sd.PortAudioError) as exc:
        raise _cannot_open(kind, name, exc) from exc
    try:
        stream.start()
    except (ValueError, sd.PortAudioError) as exc:
        stream.close()
        raise _cannot_open(kind, name, exc) from exc
    return stream


#: PortAudio's ``paInvalidDevice``: no such device (unplugged, or there is none).
_PA_INVALID_DEVICE = -9996


def _not_there(exc: BaseException) -> bool:
    """``exc`` (from opening a stream) says there is no such device, rather than that the
    device is busy: sounddevice's ``Error querying device -1`` (no default device: the
    stream's device is queried first when ``device_rate`` skipped the query on
    construction), its ``No input device matching 'USB'``, PortAudio's
    ``paInvalidDevice``."""
    args = exc.args
    if len(args) > 1 and args[1] == _PA_INVALID_DEVICE:
        return True
    text = str(args[0]) if args else ""
    return text.startswith("Error querying device") or (
        isinstance(exc, ValueError) and re.match(r"No \S+ device matching ", text) is not None
    )


def _cannot_open(kind: str, name: str, exc: BaseException) -> AudioDeviceError:
    """The error for a device whose stream PortAudio cannot open or start: busy, held by
    another program, a rate it does not take; or not there at all (the error a missing
    device gives on construction: plug one in)."""
    # sounddevice says "Error opening RawOutputStream: Device unavailable [...]": the
    # reason is what follows the stream class.
    reason = re.sub(r"^Error (?:opening|starting) \w+: ", "", str(exc)) or type(exc).__name__
    if _not_there(exc):
        return AudioDeviceError(f"no audio {kind} device ({reason})", "plug one in", kind)
    return AudioDeviceError(
        f"cannot open the audio {kind} device ({name}): {reason}",
        "close the program using it",
        kind,
    )


class SoundDeviceMicrophone:
    """The default (or a chosen) input device, 16-bit mono, in ``frame_ms`` frames at
    ``sample_rate``.

    The device is opened at ``device_rate`` (default: its native rate, e.g. 48 kHz) and
    its audio resampled to ``sample_rate``. PortAudio calls back on its own thread;
    blocks are handed to the loop with ``call_soon_threadsafe``. :meth:`frames` lets the
    loop run after each block, and holds at most 5 s of blocks the consumer has not
    taken: a device that delivers faster than real time (a null device) or a consumer
    that falls behind loses the oldest, counted in :attr:`dropped_blocks` and logged.

    Raises:
        AudioDeviceError: the ``devices`` extra or PortAudio is missing (named), or there
            is no input device; from :meth:`frames`, the device cannot be opened.
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        *,
        frame_ms: int = 20,
        device: Optional[Any] = None,
        device_rate: Optional[int] = None,
    ) -> None:
        self._sd = _sounddevice()
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.device = device
        info = None
        if device_rate is None:
            info = _device_info(self._sd, device, "input")
            device_rate = int(info["default_samplerate"])
        self._name = _device_name(device, info)
        #: Hz the device captures at.
        self.device_rate = device_rate
        #: Blocks (``frame_ms`` each) captured and dropped unused, the oldest first,
        #: because more than 5 s of them waited for the consumer.
        self.dropped_blocks = 0

    async def frames(self) -> AsyncIterator[bytes]:
        """Frames as the device captures them, until the consumer stops iterating.

        Raises:
            AudioDeviceError: the device cannot be opened (another program holds it...).
        """
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue(max(1, _BACKLOG_MS // self.frame_ms))
        pipeline = _Capture(self.device_rate, self.sample_rate, self.frame_ms)
        dropped_before = self.dropped_blocks

        def keep(block: bytes) -> None:  # on the loop
            if queue.full():
                queue.get_nowait()  # the oldest goes: the consumer is too far behind
                self.dropped_blocks += 1
                if self.dropped_blocks == dropped_before + 1:
                    logger.warning(
                        "the microphone's audio comes faster than it is used: keeping "
                        "the last %d ms, dropping the oldest",
                        _BACKLOG_MS,
                    )
            queue.put_nowait(block)

        def captured(data: Any, *_: object) -> None:  # PortAudio's thread
            loop.call_soon_threadsafe(keep, bytes(data))

        stream = _started(
            self._sd,
            "input",
            self._name,
            self._sd.RawInputStream,
            samplerate=self.device_rate,
            blocksize=self.device_rate * self.frame_ms // 1000,
            channels=1,
            dtype="int16",
            device=self.device,
            callback=captured,
        )
        try:
            while True:
                for frame in pipeline.push(await queue.get()):
                    yield frame
                # Blocks waiting in the queue are taken without suspending: let the loop
                # run (timers, the other tasks) before the next, or a device faster than
                # real time would starve it.
                await asyncio.sleep(0)
        finally:
            stream.stop()
            stream.close()
            dropped = self.dropped_blocks - dropped_before
            if dropped:
                logger.warning(
                    "the microphone dropped %d blocks (%d ms) of audio that came faster "
                    "than it was used",
                    dropped,
                    dropped * self.frame_ms,
                )


class SoundDeviceSpeaker(PacedSpeaker):
    """The default (or a chosen) output device, fed from the jitter buffer by PortAudio's
    callback (so the device's clock paces it, not the event loop).

    The device plays at ``device_rate`` (default: its native rate); TTS audio at
    ``sample_rate`` is resampled as it is written.

    Raises:
        AudioDeviceError: the ``devices`` extra or PortAudio is missing (named), or there
            is no output device; from :meth:`start` (``async with``), the device cannot
            be opened.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        frame_ms: int = 20,
        prebuffer_ms: int = 60,
        device: Optional[Any] = None,
        device_rate: Optional[int] = None,
    ) -> None:
        sd = _sounddevice()
        info = None
        if device_rate is None:
            info = _device_info(sd, device, "output")
            device_rate = int(info["default_samplerate"])
        super().__init__(
            sample_rate, frame_ms=frame_ms, prebuffer_ms=prebuffer_ms, device_rate=device_rate
        )
        self._sd = sd
        self.device = device
        self._name = _device_name(device, info)
        self._stream: Any = None

    def start(self) -> None:
        """Open the output stream (idempotent).

        Raises:
            AudioDeviceError: the device cannot be opened (another program holds it...).
        """
        if self._stream is not None:
            return

        def play(out: Any, frames: int, *_: object) -> None:  # PortAudio's thread
            chunk = self._buffer.take()
            out[:] = chunk.ljust(len(out), b"\x00")[: len(out)]

        self._stream = _started(
            self._sd,
            "output",
            self._name,
            self._sd.RawOutputStream,
            samplerate=self.device_rate,
            blocksize=audio.frame_bytes(self.frame_ms, self.device_rate) // 2,
            channels=1,
            dtype="int16",
            device=self.device,
            callback=play,
        )
        self._closed = False

    async def aclose(self) -> None:
        """Close the output stream (``buffered_bytes`` is None until started again)."""
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
