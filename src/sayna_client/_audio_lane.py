"""What ``on_audio_input`` needs for each frame, looked up once per session.

A live call sends 50 frames a second per stream, each through the same steps: is the
session ready, which connection and sender, which metrics. An :class:`AudioLane` holds
those answers; the client drops it whenever one of them can change (``ready`` set or
cleared, the connection closed) and makes a new one at the next frame, so the per-frame
work is one check.
"""

from __future__ import annotations

from typing import Optional

from .errors import SaynaValidationError
from .protocol.encodings import lookup
from .realtime.connection import BinarySender, WebSocketConnection
from .realtime.conversation import SessionMetrics
from .types import STTConfig

__all__ = ["AudioLane", "silence_frame"]


def silence_frame(stt: Optional[STTConfig], frame_ms: int) -> bytes:
    """``frame_ms`` of silence in the format of ``stt`` (its encoding, rate, channels).

    Raises:
        SaynaValidationError: no ``stt`` (a session without audio), or an encoding
            without a fixed sample size (``opus``...), whose silence needs an encoder.
    """
    if stt is None:
        raise SaynaValidationError(
            "finish_audio() needs an stt_config: a session without audio has no stream"
        )
    found = lookup(stt.encoding)  # bytes per sample and the byte of a silent sample
    if found is None or found.bytes_per_sample is None or found.silence is None:
        raise SaynaValidationError(
            f"finish_audio() cannot make silence in the {stt.encoding!r} encoding (it needs "
            "an encoder): send your own encoded silence with on_audio_input(), then drain()"
        )
    width, silent = found.bytes_per_sample, found.silence
    samples = max(1, stt.sample_rate * frame_ms // 1000) * stt.channels
    return bytes((silent,)) * (samples * width)


class AudioLane:
    """The per-frame state of one ready session.

    The client keeps it only while the session stays ready on ``conn``; ``send`` is the
    connection's binary sender (errors go through :meth:`WebSocketConnection.send_failed`).
    """

    __slots__ = ("conn", "metrics", "send")

    def __init__(self, conn: WebSocketConnection, metrics: SessionMetrics) -> None:
        self.conn = conn
        self.metrics = metrics
        self.send: BinarySender = conn.binary_sender()
