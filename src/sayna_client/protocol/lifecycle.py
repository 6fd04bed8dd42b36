"""The rules of a session's life, without I/O: its phases, what ends the config phase,
and what a close code means.

The connection (:mod:`sayna_client.realtime.connection`) and the voice session
(:mod:`sayna_client.realtime.session`) move bytes and timers; every decision about
what a frame or a close *means* is taken here, by pure functions and one small
state table, so each rule is tested with plain values (as h11 and websockets keep
their protocol state apart from their sockets).

A session goes ``CONNECTING -> CONFIGURING -> READY``; a refused config leaves it
``REJECTED`` with the socket open (a corrected config may follow, back to
``CONFIGURING``); a new config on a ready session (``reconfigure()``) is
``CONFIGURING`` again; a close from any phase is ``CLOSED``, for good.
"""

from __future__ import annotations

import enum
from typing import Optional

from .attribution import refuses_config

__all__ = [
    "RECOVERABLE_CLOSE_CODES",
    "TRANSITIONS",
    "CloseCode",
    "Phase",
    "PhaseInput",
    "client_close_code",
    "config_answer",
    "ends_normally",
    "is_recoverable",
    "next_phase",
    "received_close_code",
]


class CloseCode(enum.IntEnum):
    """WebSocket close codes (RFC 6455 §7.4.1, and the IANA registry's 1012-1014)."""

    NORMAL_CLOSURE = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    #: The peer's Close frame carried no code.
    NO_STATUS_RECEIVED = 1005
    #: No Close frame at all: the transport dropped, or the heartbeat found the peer dead.
    ABNORMAL_CLOSURE = 1006
    INVALID_PAYLOAD = 1007
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    INTERNAL_ERROR = 1011
    SERVICE_RESTART = 1012
    TRY_AGAIN_LATER = 1013
    BAD_GATEWAY = 1014


#: Close codes after which reconnecting makes sense: the peer or the network went away
#: (going away, abnormal closure or a dead heartbeat), a server error, a restart, "try
#: again later", a bad gateway. 1005 (no status) is absent: the server sends it after
#: ``participant_disconnected``, the normal end of a LiveKit session whose room it then
#: deletes (protocol §6.6). A protocol violation (1002, 1007, 1009) no reconnect fixes.
RECOVERABLE_CLOSE_CODES = frozenset(
    {
        CloseCode.GOING_AWAY,
        CloseCode.ABNORMAL_CLOSURE,
        CloseCode.INTERNAL_ERROR,
        CloseCode.SERVICE_RESTART,
        CloseCode.TRY_AGAIN_LATER,
        CloseCode.BAD_GATEWAY,
    }
)


def received_close_code(code: Optional[int]) -> int:
    """The close code of a Close frame as received: one without a code is
    :attr:`CloseCode.NO_STATUS_RECEIVED` (aiohttp reports it as 0)."""
    return int(code) if code else int(CloseCode.NO_STATUS_RECEIVED)


def client_close_code(code: Optional[int]) -> int:
    """The code recorded for a close the client asked for: a transport drop or a
    missing code during our own close is a normal closure, not a loss."""
    if code is None or code == CloseCode.ABNORMAL_CLOSURE:
        return int(CloseCode.NORMAL_CLOSURE)
    return int(code)


def is_recoverable(code: Optional[int], *, initiated_by_client: bool) -> bool:
    """True when a close may be followed by an automatic reconnection: the client did
    not ask for it and ``code`` is in :data:`RECOVERABLE_CLOSE_CODES`."""
    return not initiated_by_client and code in RECOVERABLE_CLOSE_CODES


def ends_normally(code: Optional[int], *, initiated_by_client: bool, peer_left: bool) -> bool:
    """True when a close is the session's normal end rather than a loss: the client
    closed it, or the server closed with no status after a participant left the
    LiveKit room (it does so about 100 ms later; protocol §6.6)."""
    if initiated_by_client:
        return True
    return code == CloseCode.NO_STATUS_RECEIVED and peer_left


class Phase(enum.Enum):
    """Where a session stands (see the module docstring)."""

    CONNECTING = "connecting"
    CONFIGURING = "configuring"
    READY = "ready"
    REJECTED = "rejected"
    CLOSED = "closed"


class PhaseInput(enum.Enum):
    """What moves a session from one phase to the next."""

    CONFIG_SENT = "config_sent"
    READY_RECEIVED = "ready_received"
    CONFIG_REFUSED = "config_refused"
    CLOSED = "closed"


#: ``(phase, input) -> next phase``; a pair not listed leaves the phase as it is (a
#: late ``ready`` or error is an event like any other, never a reason to fail).
TRANSITIONS: dict[tuple[Phase, PhaseInput], Phase] = {
    (Phase.CONNECTING, PhaseInput.CONFIG_SENT): Phase.CONFIGURING,
    (Phase.READY, PhaseInput.CONFIG_SENT): Phase.CONFIGURING,
    (Phase.REJECTED, PhaseInput.CONFIG_SENT): Phase.CONFIGURING,
    (Phase.CONFIGURING, PhaseInput.CONFIG_SENT): Phase.CONFIGURING,
    (Phase.CONFIGURING, PhaseInput.READY_RECEIVED): Phase.READY,
    (Phase.CONFIGURING, PhaseInput.CONFIG_REFUSED): Phase.REJECTED,
    (Phase.CONNECTING, PhaseInput.CLOSED): Phase.CLOSED,
    (Phase.CONFIGURING, PhaseInput.CLOSED): Phase.CLOSED,
    (Phase.READY, PhaseInput.CLOSED): Phase.CLOSED,
    (Phase.REJECTED, PhaseInput.CLOSED): Phase.CLOSED,
}


def next_phase(phase: Phase, event: PhaseInput) -> Phase:
    """The phase after ``event`` (see :data:`TRANSITIONS`)."""
    return TRANSITIONS.get((phase, event), phase)


def config_answer(event_type: str, message: str = "") -> Optional[PhaseInput]:
    """What a server event means for a ``config`` waiting for its answer.

    Args:
        event_type: the event's ``type``.
        message: an ``error`` event's text.

    Returns:
        :attr:`PhaseInput.READY_RECEIVED` for ``ready``;
        :attr:`PhaseInput.CONFIG_REFUSED` for an ``error`` that refuses the config
        (see :func:`~.attribution.refuses_config`: errors of commands sent before the
        config do not); None for anything else (the config phase goes on).
    """
    if event_type == "ready":
        return PhaseInput.READY_RECEIVED
    if event_type == "error" and refuses_config(message):
        return PhaseInput.CONFIG_REFUSED
    return None
