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
  ``sounddevice`` (``pip install 'sayna-client[devices]'``, needs the PortAudio library).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Callable, Optional, Protocol, Union, runtime_checkable

from .. import audio
from ..errors import SaynaError, SaynaValidationError

__all__ = [
    "Microphone",
    "PacedSpeaker",
    "SoundDeviceMicrophone",
    "SoundDeviceSpeaker",
    "Speaker",
    "WavMicrophone",
]


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
    """Bytes written on the loop, taken a frame at a time (possibly by another thread)."""

    def __init__(self, frame_bytes: int, prebuffer_bytes: int) -> None:
        self._lock = threading.Lock()
        self._data = bytearray()
        self._frame = frame_bytes
        self._prebuffer = prebuffer_bytes
        self._playing = False
        #: Bytes handed to the device so far.
        self.played_bytes = 0

    def write(self, data: bytes) -> None:
        with self._lock:
            self._data += data

    def flush(self) -> int:
        with self._lock:
            dropped = len(self._data)
            self._data.clear()
            self._playing = False
            return dropped

    @property
    def buffered(self) -> int:
        with self._lock:
            return len(self._data)

    def take(self) -> bytes:
        """One frame (silence-padded), or b"" while the buffer fills or is empty."""
        with self._lock:
            if not self._playing:
                if not self._data or len(self._data) < self._prebuffer:
                    return b""
                self._playing = True
            chunk = bytes(self._data[: self._frame])
            del self._data[: self._frame]
            if not self._data:
                self._playing = False  # an underrun: fill up again before playing on
            self.played_bytes += len(chunk)
        return chunk.ljust(self._frame, b"\x00")


class PacedSpeaker:
    """A speaker that plays into ``sink`` at real-time pace (a file, a socket, a device).

    Args:
        sample_rate: Hz of the TTS audio (16-bit mono), ``tts_config.sample_rate``.
        sink: called with each played frame (``WavWriter(path, rate).write``); None
            discards the audio (a speaker nobody records).
        frame_ms: the playing step.
        prebuffer_ms: audio held before playing starts (the jitter buffer).

    Use ``async with PacedSpeaker(...) as speaker: client.audio_output = speaker``.
    """

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        sink: Optional[Callable[[bytes], Any]] = None,
        frame_ms: int = 20,
        prebuffer_ms: int = 60,
    ) -> None:
        if type(sample_rate) is not int or sample_rate <= 0:
            raise SaynaValidationError("sample_rate must be a positive whole number of Hz")
        if type(prebuffer_ms) is not int or prebuffer_ms < 0:
            raise SaynaValidationError("prebuffer_ms must be a whole number >= 0")
        frame = audio.frame_bytes(frame_ms, sample_rate)
        self._buffer = _JitterBuffer(frame, frame * prebuffer_ms // frame_ms)
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self._sink = sink
        self._task: Optional[asyncio.Task[None]] = None

    async def __aenter__(self) -> PacedSpeaker:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def write(self, data: bytes) -> None:
        """Queue TTS audio; it plays from the next step on."""
        self._buffer.write(data)

    def flush(self) -> int:
        """Drop what was not played; returns the bytes dropped."""
        return self._buffer.flush()

    @property
    def played_bytes(self) -> int:
        """Bytes played (handed to the sink) so far."""
        return self._buffer.played_bytes

    @property
    def buffered_bytes(self) -> int:
        """Bytes written and not played yet."""
        return self._buffer.buffered

    def start(self) -> None:
        """Start playing on a task of the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._play())

    async def aclose(self) -> None:
        """Stop playing; unplayed audio stays buffered (``flush()`` drops it)."""
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

    Args:
        path: the WAV file (any rate and channel count: it is converted).
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
        self._frames = list(
            audio.wav_frames(
                path, frame_ms=frame_ms, sample_rate=sample_rate, channels=1, resample=True
            )
        )
        silence = bytes(audio.frame_bytes(frame_ms, sample_rate))
        self._frames += [silence] * (tail_ms // frame_ms)
        self.frame_ms = frame_ms
        self.speed = speed

    def frames(self) -> AsyncIterator[bytes]:
        """The file's frames, then the silent tail, at ``speed`` times real time."""
        return audio.paced(self._frames, frame_ms=self.frame_ms, speed=self.speed)


def _sounddevice() -> Any:
    try:
        import sounddevice
    except ImportError as exc:
        raise SaynaError(
            "the sound card needs the optional 'devices' extra: pip install 'sayna-client[devices]'"
        ) from exc
    except OSError as exc:  # the module is there, the PortAudio library is not
        raise SaynaError(
            f"sounddevice cannot load PortAudio ({exc}); install it (e.g. "
            "apt-get install libportaudio2) or use WavMicrophone / PacedSpeaker"
        ) from exc
    return sounddevice


class SoundDeviceMicrophone:
    """The default (or a chosen) input device, 16-bit mono, in ``frame_ms`` frames.

    PortAudio calls back on its own thread; frames are handed to the loop with
    ``call_soon_threadsafe``. Raises :class:`SaynaError` naming the ``devices`` extra
    (or PortAudio) when the sound card cannot be used.
    """

    def __init__(
        self, sample_rate: int = 16000, *, frame_ms: int = 20, device: Optional[Any] = None
    ) -> None:
        self._sd = _sounddevice()
        self.sample_rate = sample_rate
        self.frame_ms = frame_ms
        self.device = device

    async def frames(self) -> AsyncIterator[bytes]:
        """Frames as the device captures them, until the consumer stops iterating."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[bytes] = asyncio.Queue()

        def captured(data: Any, *_: object) -> None:  # PortAudio's thread
            loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

        stream = self._sd.RawInputStream(
            samplerate=self.sample_rate,
            blocksize=self.sample_rate * self.frame_ms // 1000,
            channels=1,
            dtype="int16",
            device=self.device,
            callback=captured,
        )
        with stream:
            while True:
                yield await queue.get()


class SoundDeviceSpeaker(PacedSpeaker):
    """The default (or a chosen) output device, fed from the jitter buffer by PortAudio's
    callback (so the device's clock paces it, not the event loop)."""

    def __init__(
        self,
        sample_rate: int = 24000,
        *,
        frame_ms: int = 20,
        prebuffer_ms: int = 60,
        device: Optional[Any] = None,
    ) -> None:
        super().__init__(sample_rate, frame_ms=frame_ms, prebuffer_ms=prebuffer_ms)
        self._sd = _sounddevice()
        self.device = device
        self._stream: Any = None

    def start(self) -> None:
        """Open the output stream (idempotent)."""
        if self._stream is not None:
            return

        def play(out: Any, frames: int, *_: object) -> None:  # PortAudio's thread
            chunk = self._buffer.take()
            out[:] = chunk.ljust(len(out), b"\x00")[: len(out)]

        self._stream = self._sd.RawOutputStream(
            samplerate=self.sample_rate,
            blocksize=audio.frame_bytes(self.frame_ms, self.sample_rate) // 2,
            channels=1,
            dtype="int16",
            device=self.device,
            callback=play,
        )
        self._stream.start()

    async def aclose(self) -> None:
        """Close the output stream."""
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.stop()
            stream.close()
