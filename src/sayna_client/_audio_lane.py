"""What ``on_audio_input`` needs for each frame, looked up once per session.

A live call sends 50 frames a second per stream, each through the same steps: is the
session ready, which connection and sender, which metrics. An :class:`AudioLane` holds
those answers; the client drops it whenever one of them can change (``ready`` set or
cleared, the connection closed) and makes a new one at the next frame, so the per-frame
work is one check.
"""

from __future__ import annotations

from .realtime.connection import BinarySender, WebSocketConnection
from .realtime.conversation import SessionMetrics

__all__ = ["AudioLane"]


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
