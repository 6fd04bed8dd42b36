"""Session recordings served by ``GET /recording/{stream_id}``.

A session whose config has ``livekit.enable_recording: true`` keeps the STT input the
client sent (16-bit PCM per its ``stt_config``; mu-law input is decoded). The file is
OGG/Vorbis when :mod:`soundfile` is importable (the ``local`` extra), as the real server
produces; otherwise it is a WAV file served as ``audio/wav``.
"""

from __future__ import annotations

import asyncio
import importlib
import io
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .engines.base import wav_header

__all__ = [
    "MAX_RECORDINGS",
    "MAX_RECORDING_BYTES",
    "Recording",
    "RecordingStore",
    "encode_recording",
]

MAX_RECORDING_BYTES = 64 * 1024 * 1024
#: Recordings kept for download (the newest; a local-server bound on memory).
MAX_RECORDINGS = 16


@dataclass
class Recording:
    """The raw audio of one recorded session (grows while the session runs)."""

    sample_rate: int
    channels: int
    #: The G.711 decoder of the session's audio (None: 16-bit PCM already).
    decode: Optional[Callable[[bytes], bytes]] = None
    pcm: bytearray = field(default_factory=bytearray)

    def append(self, audio: bytes) -> None:
        if self.decode is not None:
            audio = self.decode(audio)
        room = MAX_RECORDING_BYTES - len(self.pcm)
        if room > 0:
            self.pcm += audio[:room]


def _soundfile() -> Optional[Any]:
    try:
        return importlib.import_module("soundfile")
    except (ImportError, OSError):
        return None


def encode_recording(recording: Recording) -> tuple[bytes, str, str]:
    """Encode a recording; returns ``(body, content_type, file_extension)``."""
    channels = max(1, recording.channels)
    frame = 2 * channels
    pcm = bytes(recording.pcm[: len(recording.pcm) - len(recording.pcm) % frame])
    if not pcm:
        pcm = bytes(frame * max(1, recording.sample_rate // 100))  # 10 ms of silence
    soundfile = _soundfile()
    if soundfile is not None:
        try:
            out = io.BytesIO()
            with soundfile.SoundFile(
                out,
                mode="w",
                samplerate=recording.sample_rate,
                channels=channels,
                format="OGG",
                subtype="VORBIS",
            ) as handle:
                handle.buffer_write(pcm, dtype="int16")
            return out.getvalue(), "audio/ogg", "ogg"
        except (RuntimeError, TypeError, ValueError):
            pass  # libsndfile without Vorbis: fall back to WAV below
    header = wav_header(recording.sample_rate, channels=channels, data_bytes=len(pcm))
    return header + pcm, "audio/wav", "wav"


class RecordingStore:
    """Recordings by stream id (the latest session using a stream id wins); the newest
    :data:`MAX_RECORDINGS` are kept."""

    def __init__(self) -> None:
        self._recordings: dict[str, Recording] = {}

    def start(
        self,
        stream_id: str,
        sample_rate: int,
        channels: int,
        decode: Optional[Callable[[bytes], bytes]] = None,
    ) -> Recording:
        recording = Recording(sample_rate, channels, decode)
        self._recordings.pop(stream_id, None)  # re-inserted as the newest
        self._recordings[stream_id] = recording
        while len(self._recordings) > MAX_RECORDINGS:
            del self._recordings[next(iter(self._recordings))]
        return recording

    def get(self, stream_id: str) -> Optional[Recording]:
        return self._recordings.get(stream_id)

    async def encode(self, stream_id: str) -> Optional[tuple[bytes, str, str]]:
        """Encode in a worker thread; ``None`` when there is no such recording."""
        recording = self._recordings.get(stream_id)
        if recording is None:
            return None
        # Snapshot on the loop thread: the session may still be appending.
        snapshot = Recording(recording.sample_rate, recording.channels, None, recording.pcm[:])
        return await asyncio.get_running_loop().run_in_executor(None, encode_recording, snapshot)

    def clear(self) -> None:
        self._recordings.clear()
