"""What ``on_audio_input`` needs for each frame, looked up once per session.

A live call sends 50 frames a second per stream, each through the same checks: is
the session ready, how many bytes make one sample of the STT encoding, which
connection, which metrics. An :class:`AudioLane` holds those answers; the client
drops it whenever one of them can change (``ready`` set or cleared, ``stt_config``
assigned, the connection closed) and makes a new one at the next frame, so the
per-frame work is one check.
"""

from __future__ import annotations

from typing import Optional

from ._checks import BYTES_PER_SAMPLE
from .errors import SaynaValidationError
from .realtime.connection import BinarySender, WebSocketConnection
from .realtime.conversation import SessionMetrics
from .types import STTConfig

__all__ = ["AudioLane", "sample_unit", "silence_frame"]

#: The byte of one silent sample per 8-bit encoding (G.711 mu-law and A-law zero).
_SILENT_BYTE = {"mulaw": 0xFF, "ulaw": 0xFF, "alaw": 0xD5}


def sample_unit(stt: Optional[STTConfig]) -> int:
    """Bytes per sample × channels of the STT encoding: every PCM frame is a multiple of
    it (1 when the encoding has no fixed sample size, e.g. opus)."""
    if stt is None:
        return 1
    width = BYTES_PER_SAMPLE.get(stt.encoding.lower())
    return 1 if width is None else width * stt.channels


def silence_frame(stt: Optional[STTConfig], frame_ms: int) -> bytes:
    """``frame_ms`` of silence in the format of ``stt`` (its encoding, rate, channels).

    Raises:
        SaynaValidationError: an encoding without a fixed sample size (``opus``...),
            whose silence needs an encoder.
    """
    if stt is None:
        raise SaynaValidationError(
            "finish_audio() needs an stt_config: a session without audio has no stream"
        )
    encoding = stt.encoding.strip().lower()
    width = BYTES_PER_SAMPLE.get(encoding)
    if width is None:
        raise SaynaValidationError(
            f"finish_audio() cannot make silence in the {stt.encoding!r} encoding (it needs "
            "an encoder): send your own encoded silence with on_audio_input(), then drain()"
        )
    samples = max(1, stt.sample_rate * frame_ms // 1000) * stt.channels
    silent = _SILENT_BYTE.get(encoding)
    return bytes(samples * width) if silent is None else bytes((silent,)) * samples


class AudioLane:
    """The per-frame state of one ready session and one ``stt_config`` object.

    The client keeps it only while the session stays ready with that ``stt_config``
    on ``conn``; ``send`` is the connection's binary sender (errors go through
    :meth:`WebSocketConnection.send_failed`).
    """

    __slots__ = ("conn", "metrics", "send", "unit")

    def __init__(
        self,
        conn: WebSocketConnection,
        stt: Optional[STTConfig],
        metrics: SessionMetrics,
    ) -> None:
        self.conn = conn
        self.metrics = metrics
        self.unit = sample_unit(stt)
        self.send: BinarySender = conn.binary_sender()
