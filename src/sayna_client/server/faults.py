"""Fault injection for tests of WebSocket clients (all off by default)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Optional

__all__ = ["Faults", "fault_type_problem"]


@dataclass(frozen=True)
class Faults:
    """How new WebSocket sessions misbehave. Set ``LocalServer.faults`` to change it at runtime.

    A session takes a snapshot of the server's faults when it is accepted, so changing
    them affects only sessions opened afterwards.

    Attributes:
        never_send_ready: process ``config`` normally but never send ``ready``.
        ready_delay: seconds to wait before sending ``ready``.
        close_after_config: answer ``config`` by closing the socket with ``close_code``.
        close_code: the close code used by ``close_after_config``.
        drop_connection_after_frames: abort the TCP connection (no Close frame) once this
            many server-to-client frames (text or binary) have been sent.
        malformed_frames: before ``ready``, send frames a client must tolerate: invalid
            JSON, a non-object, an unknown ``type`` and a known type with wrong field types.
        ignore_pings: never answer client Ping frames, so clients see a dead peer.
        reject_config_error: answer ``config`` with ``{"type":"error","message": <this>}``
            and no ``ready`` (like a fatal provider error).
    """

    never_send_ready: bool = False
    ready_delay: float = 0.0
    close_after_config: bool = False
    close_code: int = 1011
    drop_connection_after_frames: Optional[int] = None
    malformed_frames: bool = False
    ignore_pings: bool = False
    reject_config_error: Optional[str] = None

    def __post_init__(self) -> None:
        problem = fault_type_problem(asdict(self))
        if problem is not None:
            raise ValueError(f"Faults: {problem}")


def fault_type_problem(values: dict[str, Any]) -> Optional[str]:
    """Why ``values`` (``Faults`` fields from JSON) cannot make a :class:`Faults`, or ``None``."""
    for name, value in values.items():
        if name in ("never_send_ready", "close_after_config", "malformed_frames", "ignore_pings"):
            if not isinstance(value, bool):
                return f"'{name}' must be true or false"
        elif name == "ready_delay":
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
                or not 0 <= value <= 3600
            ):
                return "'ready_delay' must be a number of seconds from 0 to 3600"
        elif name == "close_code":
            if isinstance(value, bool) or not isinstance(value, int) or not 1000 <= value <= 4999:
                return "'close_code' must be an integer close code from 1000 to 4999"
        elif name == "drop_connection_after_frames":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 0
            ):
                return "'drop_connection_after_frames' must be null or an integer >= 0"
        elif name == "reject_config_error" and value is not None and not isinstance(value, str):
            return "'reject_config_error' must be null or a string"
    return None


#: Frames sent by ``malformed_frames``, in order.
MALFORMED_FRAMES: tuple[str, ...] = (
    "{not json",
    "[1, 2, 3]",
    '{"type": "no_such_event", "value": 1}',
    '{"type": "stt_result", "transcript": 5, "is_final": "yes"}',
)
