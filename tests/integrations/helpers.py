"""Caller audio for the framework tests: what the local server's fake engine hears as words."""

from __future__ import annotations

import math
from array import array


def tone_bursts(words: int, sample_rate: int, *, silence_after: float = 1.0) -> bytes:
    """``words`` 120 ms tone bursts (60 ms apart), then ``silence_after`` seconds of silence,
    as 16-bit mono PCM. The fake STT transcribes each burst as "word" and ends the turn
    (speech-final) after 700 ms of silence."""
    tone = array(
        "h",
        (
            int(0.3 * 32767 * math.sin(2 * math.pi * 440.0 * i / sample_rate))
            for i in range(sample_rate * 120 // 1000)
        ),
    ).tobytes()
    gap = bytes(2 * (sample_rate * 60 // 1000))
    return (tone + gap) * words + bytes(2 * int(sample_rate * silence_after))


def frames_of(pcm: bytes, sample_rate: int, frame_ms: int = 20) -> list[bytes]:
    """``pcm`` cut into ``frame_ms`` frames (the last one may be shorter)."""
    size = 2 * sample_rate * frame_ms // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]
