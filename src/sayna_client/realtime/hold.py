"""Audio held during an outage: :class:`AudioHold`, a FIFO of frames bounded in bytes.

``on_audio_input`` adds to it while an automatic reconnection runs; the reconnection
replays it once the session is ready again, or reports it as dropped.
"""

from __future__ import annotations

import collections
from typing import Optional

from .events import AudioDropped

__all__ = ["AudioHold"]


class AudioHold:
    """A FIFO of audio frames bounded in bytes; overflow discards the oldest and counts it."""

    def __init__(self, limit_bytes: int) -> None:
        self.limit = limit_bytes
        self._frames: collections.deque[bytes] = collections.deque()
        self._bytes = 0
        self.dropped_frames = 0
        self.dropped_bytes = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def held_bytes(self) -> int:
        return self._bytes

    def add(self, frame: bytes) -> None:
        self._frames.append(frame)
        self._bytes += len(frame)
        while self._bytes > self.limit and self._frames:
            old = self._frames.popleft()
            self._bytes -= len(old)
            self.dropped_frames += 1
            self.dropped_bytes += len(old)

    def pop(self) -> bytes:
        """The oldest frame held (there is one), no longer held."""
        frame = self._frames.popleft()
        self._bytes -= len(frame)
        return frame

    def take(self) -> list[bytes]:
        """Everything held, oldest first; the hold is empty afterwards."""
        frames = list(self._frames)
        self._frames.clear()
        self._bytes = 0
        return frames

    def take_dropped(self) -> Optional[AudioDropped]:
        """An :class:`AudioDropped` report of what overflowed since the last call, if any."""
        if not self.dropped_frames:
            return None
        report = AudioDropped(self.dropped_frames, self.dropped_bytes)
        self.dropped_frames = self.dropped_bytes = 0
        return report

    def discard(self) -> Optional[AudioDropped]:
        """Drop everything (the session will not come back) and report it with the overflow."""
        for frame in self.take():
            self.dropped_frames += 1
            self.dropped_bytes += len(frame)
        return self.take_dropped()
