"""An in-memory LiveKit: rooms, participants, tracks, data packets and real access tokens.

Sessions join rooms as agent participants and receive room events through the
:class:`RoomListener` protocol. Tenant ownership lives in room metadata
(``{"auth_id": "..."}``) exactly as the real server stores it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

__all__ = [
    "AccessDenied",
    "LiveKitSim",
    "Participant",
    "Room",
    "RoomListener",
    "Track",
    "access_token",
    "new_id",
    "verify_token",
]

TOKEN_TTL_SECONDS = 6 * 3600
_ALPHABET = string.ascii_letters + string.digits


def new_id(prefix: str) -> str:
    """A LiveKit-style id such as ``RM_xxxxxxxxxxxx``."""
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(12))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def access_token(
    api_key: str,
    api_secret: str,
    identity: str,
    name: str,
    room: str,
    now: Optional[float] = None,
    ttl: int = TOKEN_TTL_SECONDS,
) -> str:
    """A LiveKit access token (HS256 JWT) granting join/publish/subscribe/data in ``room``."""
    issued = int(time.time() if now is None else now)
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "iss": api_key,
        "sub": identity,
        "name": name,
        "nbf": issued,
        "exp": issued + ttl,
        "video": {
            "room": room,
            "roomJoin": True,
            "canPublish": True,
            "canSubscribe": True,
            "canPublishData": True,
        },
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(api_secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64url(signature)}"


def verify_token(token: str, api_key: str, api_secret: str) -> dict[str, Any]:
    """Verify an HS256 LiveKit JWT issued by ``api_key``; return its claims.

    Raises:
        ValueError: malformed, wrong issuer, bad signature, or expired.
    """
    try:
        header_b64, claims_b64, signature_b64 = token.split(".")
        signing_input = f"{header_b64}.{claims_b64}".encode()
        expected = hmac.new(api_secret.encode(), signing_input, hashlib.sha256).digest()
        signature = base64.urlsafe_b64decode(signature_b64 + "=" * (-len(signature_b64) % 4))
        claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=" * (-len(claims_b64) % 4)))
    except (ValueError, TypeError) as exc:
        raise ValueError("malformed token") from exc
    if not hmac.compare_digest(signature, expected):
        raise ValueError("bad signature")
    if not isinstance(claims, dict) or claims.get("iss") != api_key:
        raise ValueError("wrong issuer")
    if "exp" in claims and float(claims["exp"]) < time.time() - 60:
        raise ValueError("expired")
    return claims


class RoomListener(Protocol):
    """What a session joined to a room is told (all calls are synchronous and must not block)."""

    def participant_connected(self, room: Room, participant: Participant) -> None: ...

    def participant_disconnected(self, room: Room, participant: Participant) -> None: ...

    def data_received(
        self, room: Room, identity: Optional[str], topic: Optional[str], payload: bytes
    ) -> None: ...


@dataclass
class Track:
    """A published track."""

    sid: str
    kind: str = "audio"
    name: str = ""
    muted: bool = False
    published_bytes: int = 0


@dataclass
class Participant:
    """A room participant; ``listener`` is set for Sayna agents (sessions)."""

    identity: str
    name: str = ""
    kind: str = "STANDARD"
    sid: str = field(default_factory=lambda: new_id("PA_"))
    state: str = "ACTIVE"
    joined_at: int = field(default_factory=lambda: int(time.time()))
    metadata: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    tracks: list[Track] = field(default_factory=list)
    listener: Optional[RoomListener] = field(default=None, repr=False)
    audio_mode: bool = False

    def audio_track(self) -> Optional[Track]:
        return next((track for track in self.tracks if track.kind == "audio"), None)

    def to_wire(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "identity": self.identity,
            "name": self.name,
            "state": self.state,
            "kind": self.kind,
            "joined_at": self.joined_at,
            "metadata": self.metadata,
            "attributes": dict(self.attributes),
            "is_publisher": bool(self.tracks),
        }


@dataclass
class Room:
    """A simulated LiveKit room."""

    name: str
    sid: str = field(default_factory=lambda: new_id("RM_"))
    creation_time: int = field(default_factory=lambda: int(time.time()))
    metadata: str = ""
    participants: dict[str, Participant] = field(default_factory=dict)
    recording: bool = False

    @property
    def auth_id(self) -> Optional[str]:
        """The owning tenant from the metadata, or ``None``."""
        try:
            value = json.loads(self.metadata).get("auth_id") if self.metadata else None
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) and value else None

    def set_auth_id(self, auth_id: str) -> None:
        self.metadata = json.dumps({"auth_id": auth_id}, separators=(",", ":"))

    def to_info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "num_participants": len(self.participants),
            "creation_time": self.creation_time,
        }

    def to_details(self) -> dict[str, Any]:
        return {
            "sid": self.sid,
            "name": self.name,
            "num_participants": len(self.participants),
            "max_participants": 0,
            "creation_time": self.creation_time,
            "metadata": self.metadata,
            "active_recording": self.recording,
            "participants": [p.to_wire() for p in self.participants.values()],
        }


class AccessDenied(Exception):
    """The room exists but belongs to another tenant (or to none while one is required)."""


class LiveKitSim:
    """All rooms of one local server."""

    def __init__(self) -> None:
        self.rooms: dict[str, Room] = {}

    def accessible(self, name: str, auth_id: Optional[str]) -> Optional[Room]:
        """The room if it exists and ``auth_id`` may use it (any room when ``auth_id`` is None)."""
        room = self.rooms.get(name)
        if room is None or (auth_id is not None and room.auth_id != auth_id):
            return None
        return room

    def ensure_room(self, name: str, auth_id: Optional[str]) -> Room:
        """Return room ``name``, creating it (owned by ``auth_id``) when missing.

        Raises:
            AccessDenied: the room exists and is not owned by ``auth_id``.
        """
        room = self.rooms.get(name)
        if room is None:
            room = Room(name)
            if auth_id is not None:
                room.set_auth_id(auth_id)
            self.rooms[name] = room
        elif auth_id is not None and room.auth_id != auth_id:
            raise AccessDenied(name)
        return room

    def list_rooms(self, auth_id: Optional[str]) -> list[Room]:
        return [room for room in self.rooms.values() if auth_id is None or room.auth_id == auth_id]

    def join(self, room: Room, participant: Participant) -> None:
        """Add ``participant``; every other agent hears ``participant_connected``."""
        room.participants[participant.identity] = participant
        for listener in self._listeners(room, exclude=participant.identity):
            listener.participant_connected(room, participant)

    def leave(self, room: Room, identity: str) -> Optional[Participant]:
        """Remove a participant; every other agent hears ``participant_disconnected``."""
        participant = room.participants.pop(identity, None)
        if participant is None:
            return None
        participant.state = "DISCONNECTED"
        for listener in self._listeners(room, exclude=identity):
            listener.participant_disconnected(room, participant)
        return participant

    def delete_room(self, name: str) -> None:
        room = self.rooms.pop(name, None)
        if room is not None:
            room.participants.clear()

    def publish_data(
        self, room: Room, identity: Optional[str], payload: bytes, topic: Optional[str]
    ) -> None:
        """Deliver a data packet to every agent except its sender (``None`` = server API)."""
        for listener in self._listeners(room, exclude=identity):
            listener.data_received(room, identity, topic, payload)

    @staticmethod
    def _listeners(room: Room, exclude: Optional[str]) -> list[RoomListener]:
        return [
            participant.listener
            for participant in list(room.participants.values())
            if participant.listener is not None and participant.identity != exclude
        ]
