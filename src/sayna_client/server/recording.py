"""Room recordings served by ``GET /recording/{stream_id}``.

A session whose config has ``livekit.enable_recording: true`` records its room, as
Sayna's audio-only room-composite egress does (protocol 3.9, 6.3; room_handler.rs
``setup_room_recording``): the audio every participant publishes into the room (a
test's :meth:`~.app.LocalServer.inject_audio`) and the TTS of every Sayna agent there,
never the audio a client sends over its WebSocket. It records with ``audio: false`` too.

The local room has no mixer, so this is the model: the recording is 16-bit mono PCM at
the session's track rate (``tts_config.sample_rate``, 24000 when absent; 8000 to 48000),
each source's audio is laid down from the moment it arrives (the time since the
recording started), or right after that source's previous audio while that is still
playing; overlapping sources are summed with clipping, and audio at another rate is
resampled (nearest sample). It ends with its last audio. The file is OGG/Vorbis when
:mod:`soundfile` is importable (the ``local`` extra), as the real server stores; otherwise
a WAV file served as ``audio/wav`` with a ``.wav`` file name.
"""

from __future__ import annotations

import asyncio
import importlib
import io
import sys
import time
from array import array
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from .engines.base import g711_decoder, wav_header
from .engines.output import content_type_for

__all__ = [
    "MAX_RECORDINGS",
    "MAX_RECORDING_BYTES",
    "Recording",
    "RecordingStore",
    "encode_recording",
    "track_pcm",
    "track_rate",
]

MAX_RECORDING_BYTES = 64 * 1024 * 1024
#: Recordings kept for download (the newest; a local-server bound on memory).
MAX_RECORDINGS = 16
#: The rates a recording may have (LiveKit's audio tracks); others are clamped.
MIN_RATE, MAX_RATE = 8000, 48000
_SWAP = sys.byteorder != "little"


def track_rate(tts_config: Optional[dict[str, Any]]) -> int:
    """The rate of a session's ``tts-audio`` track (6.9): ``tts_config.sample_rate``,
    24000 by default, clamped to what a recording may have."""
    rate = (tts_config or {}).get("sample_rate")
    rate = 24000 if rate is None else int(rate)
    return min(MAX_RATE, max(MIN_RATE, rate))


def track_pcm(audio_format: Optional[str]) -> Optional[Callable[[bytes], bytes]]:
    """How a TTS chunk in ``audio_format`` becomes 16-bit PCM for a recording: G.711
    decoded, a WAV header dropped; ``None`` for the compressed formats (not recorded)."""
    name = "linear16" if audio_format is None else audio_format
    if content_type_for(name) in ("audio/mpeg", "audio/ogg"):
        return None
    decode = g711_decoder(name)
    if decode is not None:
        return decode
    if name == "wav":
        return _drop_wav_header
    return bytes


def _drop_wav_header(chunk: bytes) -> bytes:
    return chunk[44:] if chunk[:4] == b"RIFF" and chunk[8:12] == b"WAVE" else chunk


def _samples(pcm: bytes) -> array[int]:
    values = array("h", pcm[: len(pcm) - len(pcm) % 2])
    if _SWAP:
        values.byteswap()
    return values


def _bytes(values: array[int]) -> bytes:
    if _SWAP:
        values.byteswap()
    return values.tobytes()


def _resample(pcm: bytes, rate: int, target: int) -> bytes:
    """Nearest-sample resampling of 16-bit mono PCM from ``rate`` to ``target``."""
    source = _samples(pcm)
    count = len(source) * target // rate
    return _bytes(array("h", [source[index * rate // target] for index in range(count)]))


@dataclass
class Recording:
    """The mix of one recorded room (grows while the session runs).

    Args:
        sample_rate: the recording's rate.
        channels: always 1 for room mixes (a file written from ``pcm`` as it is).
        pcm: the mix so far, 16-bit little-endian.
        clock: seconds, monotonic (tests pass their own).
    """

    sample_rate: int
    channels: int = 1
    pcm: bytearray = field(default_factory=bytearray)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)
    started: float = field(init=False)
    _cursors: dict[str, int] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.started = self.clock()

    def add(self, source: str, pcm16: bytes, rate: Optional[int] = None) -> None:
        """Mix 16-bit mono audio from ``source`` in, from now (or after ``source``'s
        previous audio); ``rate`` is its sample rate (default: the recording's)."""
        if rate is not None and rate > 0 and rate != self.sample_rate:
            pcm16 = _resample(pcm16, rate, self.sample_rate)
        count = len(pcm16) // 2
        if not count:
            return
        now = round((self.clock() - self.started) * self.sample_rate)
        start = max(self._cursors.get(source, 0), now)
        self._cursors[source] = start + count
        self._mix(start * 2, pcm16[: count * 2])

    def _mix(self, offset: int, pcm16: bytes) -> None:
        room = MAX_RECORDING_BYTES - offset
        if room <= 0:
            return
        pcm16 = pcm16[:room]
        if offset > len(self.pcm):
            self.pcm += bytes(offset - len(self.pcm))  # silence until this audio starts
        overlap = min(len(pcm16), len(self.pcm) - offset)
        if overlap > 0:
            mixed = array(
                "h",
                [
                    -32768 if total < -32768 else 32767 if total > 32767 else total
                    for total in (
                        a + b
                        for a, b in zip(
                            _samples(bytes(self.pcm[offset : offset + overlap])),
                            _samples(pcm16[:overlap]),
                        )
                    )
                ],
            )
            self.pcm[offset : offset + overlap] = _bytes(mixed)
        self.pcm += pcm16[max(0, overlap) :]


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

    def start(self, stream_id: str, sample_rate: int) -> Recording:
        """A new, empty recording for ``stream_id`` (replacing an older one)."""
        recording = Recording(sample_rate)
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
        snapshot = Recording(recording.sample_rate, recording.channels, recording.pcm[:])
        return await asyncio.get_running_loop().run_in_executor(None, encode_recording, snapshot)

    def clear(self) -> None:
        self._recordings.clear()
