"""What a session hears from its LiveKit room, as frames for its client.

:class:`RoomEvents` is the session agent's :class:`~.livekit.RoomListener`: participants
joining and leaving (the session closes shortly after one leaves, as the real server
does), the audio tracks of those already there when it joins, and data packets, filtered
by ``listen_participants``.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Any, Optional

from .livekit import Participant, Room
from .voice import now_ms

if TYPE_CHECKING:  # the session imports this module's users: its type only
    from .session import Session

__all__ = ["RoomEvents"]


class RoomEvents:
    """The room events of one session's agent, sent to that session's client."""

    __slots__ = ("session",)

    def __init__(self, session: Session) -> None:
        self.session = session

    def participant_connected(self, room: Room, participant: Participant) -> None:
        """Send ``participant_connected`` (and ``track_subscribed`` in audio mode)."""
        self.session.send(
            {"type": "participant_connected", "participant": _participant_wire(room, participant)}
        )
        self._track_subscribed(room, participant)

    def joined(self, room: Room) -> None:
        """The session's agent has just joined ``room``: LiveKit subscribes it to the audio
        track of every participant already there, so an audio-mode session gets one
        ``track_subscribed`` each (events.rs:117-173 sends it before any audio reaches
        STT), but no ``participant_connected``: LiveKit reports those participants in the
        join response, not as ``ParticipantConnected`` events."""
        agent = self.session.agent
        for participant in list(room.participants.values()):
            if participant is not agent:
                self._track_subscribed(room, participant)

    def _track_subscribed(self, room: Room, participant: Participant) -> None:
        """Send ``track_subscribed`` for ``participant``'s audio track, in audio mode only
        (Sayna sets no track callback for ``audio: false``), whatever
        ``listen_participants`` says."""
        session = self.session
        track = participant.audio_track()
        if not session.audio or track is None:
            return
        session.send(
            {
                "type": "track_subscribed",
                "track": {
                    "identity": participant.identity,
                    "name": participant.name,
                    "track_kind": track.kind,
                    "track_sid": track.sid,
                    "room": room.name,
                    "timestamp": now_ms(),
                },
            }
        )

    def participant_disconnected(self, room: Room, participant: Participant) -> None:
        """Send ``participant_disconnected``; the session then closes shortly (1005)."""
        session = self.session
        session.send(
            {
                "type": "participant_disconnected",
                "participant": _participant_wire(room, participant),
            }
        )
        session.close_soon()

    def data_received(
        self, room: Room, identity: Optional[str], topic: Optional[str], payload: bytes
    ) -> None:
        """Send a ``message`` frame: UTF-8 text as ``message``, other bytes as base64
        ``data``; packets from participants outside ``listen_participants`` are skipped."""
        listen = self.session.listen_participants
        if identity is not None and listen and identity not in listen:
            return
        body: dict[str, Any] = {}
        try:
            body["message"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            body["data"] = base64.b64encode(payload).decode()
        body.update(
            identity=identity if identity is not None else "server",
            topic=topic if topic is not None else "default",  # unwrap_or: "" stays ""
            room="livekit",
            timestamp=now_ms(),
        )
        self.session.send({"type": "message", "message": body})


def _participant_wire(room: Room, participant: Participant) -> dict[str, Any]:
    return {
        "identity": participant.identity,
        "name": participant.name,
        "room": room.name,
        "timestamp": now_ms(),
    }
