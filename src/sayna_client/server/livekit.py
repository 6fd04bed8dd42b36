"""An in-memory LiveKit: rooms, participants, tracks, data packets and real access tokens.

Sessions join rooms as agent participants and receive room events through the
:class:`RoomListener` protocol. Tenant ownership lives in room metadata
(``{"auth_id": "..."}``) exactly as the real server stores it.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import secrets
import string
import time
from dataclasses import dataclass, field
from typing import Any, Optional, Protocol

from .recording import Recording

__all__ = [
    "DEPARTURE_TIMEOUT",
    "EMPTY_TIMEOUT",
    "SAYNA_ROOM_MAX_PARTICIPANTS",
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
#: LiveKit's defaults: a room everyone left closes after ``departure_timeout`` (20 s), a
#: room nobody joined after ``empty_timeout`` (300 s).
DEPARTURE_TIMEOUT = 20.0
EMPTY_TIMEOUT = 300.0
#: Rooms Sayna creates itself (token requests, WS ``config``) hold at most 3 people.
SAYNA_ROOM_MAX_PARTICIPANTS = 3
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
    *,
    agent: bool = False,
    can_publish: bool = True,
) -> str:
    """A LiveKit access token (HS256 JWT) with the grants Sayna signs (section 3.14),
    byte for byte as livekit-api 0.4.9 writes it (access_token.rs ``to_jwt``): every
    claim of its ``Claims`` and ``VideoGrants`` in declaration order, none skipped when
    empty or default, under jsonwebtoken 9's ``{"typ":"JWT","alg":"HS256"}`` header.

    User tokens (``agent=False``, ``POST /livekit/token``) grant join, create, list,
    record, publish, subscribe, data and own-metadata updates in ``room``, but not
    room admin, and the default SIP grants (``{"admin": false, "call": false}``).
    Sayna's own token (``agent=True``) adds ``roomAdmin`` and the SIP ``admin`` grant;
    ``can_publish=False`` is its ``audio:false`` form. No token carries metadata,
    attributes or a participant kind (they are empty).
    """
    issued = int(time.time() if now is None else now)
    header = {"typ": "JWT", "alg": "HS256"}
    video: dict[str, Any] = {
        "roomCreate": True,
        "roomList": True,
        "roomRecord": True,
        "roomAdmin": agent,
        "roomJoin": True,
        "room": room,
        "destinationRoom": "",
        "canPublish": can_publish,
        "canSubscribe": True,
        "canPublishData": True,
        "canPublishSources": [],
        "canUpdateOwnMetadata": True,
        "ingressAdmin": False,
        "hidden": False,
        "recorder": False,
    }
    claims: dict[str, Any] = {
        "exp": issued + ttl,
        "iss": api_key,
        "nbf": issued,
        "sub": identity,
        "name": name,
        "video": video,
        "sip": {"admin": agent, "call": False},
        "sha256": "",
        "metadata": "",
        "attributes": {},
        "roomConfig": None,
    }
    signing_input = ".".join(
        _b64url(json.dumps(part, separators=(",", ":"), ensure_ascii=False).encode())
        for part in (header, claims)
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
    #: The LiveKit token the participant joined with (Sayna's agent token for sessions).
    token: str = field(default="", repr=False)

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
    max_participants: int = 0
    expiry: Optional[asyncio.TimerHandle] = field(default=None, repr=False, compare=False)
    #: The room's egress recordings (one per session that asked for one).
    recordings: list[Recording] = field(default_factory=list, repr=False, compare=False)

    @property
    def recording(self) -> bool:
        """Whether an egress records the room (``active_recording``)."""
        return bool(self.recordings)

    def record(self, identity: str, pcm16: bytes, rate: Optional[int] = None) -> None:
        """Audio ``identity`` published into the room (16-bit mono at ``rate``, default
        each recording's own) goes into the room's recordings."""
        for recording in self.recordings:
            recording.add(identity, pcm16, rate)

    @property
    def auth_id(self) -> Optional[str]:
        """The owning tenant from the metadata, or ``None``."""
        try:
            value = json.loads(self.metadata).get("auth_id") if self.metadata else None
        except (ValueError, AttributeError):
            return None
        return value if isinstance(value, str) and value else None

    def set_auth_id(self, auth_id: str) -> None:
        """Write the owner mark as Sayna does: merged into the metadata object (other keys
        kept, compact JSON, sorted keys). Metadata that is not a JSON object is replaced."""
        try:
            current = json.loads(self.metadata) if self.metadata else {}
        except ValueError:
            current = {}
        if not isinstance(current, dict):
            current = {}
        current["auth_id"] = auth_id
        self.metadata = json.dumps(current, separators=(",", ":"), sort_keys=True)

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
            "max_participants": self.max_participants,
            "creation_time": self.creation_time,
            "metadata": self.metadata,
            "active_recording": self.recording,
            "participants": [p.to_wire() for p in self.participants.values()],
        }


class AccessDenied(Exception):
    """The room exists but belongs to another tenant (or to none while one is required)."""


class LiveKitSim:
    """All rooms of one local server.

    Args:
        departure_timeout: seconds after the last participant left before the room is
            deleted (``None``: never).
        empty_timeout: seconds after creation before a room nobody joined is deleted.
    """

    def __init__(
        self,
        departure_timeout: Optional[float] = DEPARTURE_TIMEOUT,
        empty_timeout: Optional[float] = EMPTY_TIMEOUT,
    ) -> None:
        self.rooms: dict[str, Room] = {}
        self.departure_timeout = departure_timeout
        self.empty_timeout = empty_timeout

    def accessible(self, name: str, auth_id: Optional[str]) -> Optional[Room]:
        """The room if it exists and ``auth_id`` may use it: any room without a tenant; with
        one, only a room whose ``auth_id`` is equal (rooms without an owner are refused)."""
        room = self.rooms.get(name)
        if room is None or (auth_id is not None and room.auth_id != auth_id):
            return None
        return room

    def create_room(self, name: str, max_participants: int = 0) -> Room:
        """Create room ``name`` (it must not exist) and start its empty timeout."""
        room = Room(name, max_participants=max_participants)
        self.rooms[name] = room
        self._schedule_expiry(room, self.empty_timeout)
        return room

    def ensure_room(self, name: str, auth_id: Optional[str], *, sayna: bool = True) -> Room:
        """Return room ``name``, creating it when missing, and mark it for ``auth_id``.

        A room without an owner is adopted by ``auth_id`` (section 1.6). ``sayna`` rooms
        are created with Sayna's ``max_participants`` of 3.

        Raises:
            AccessDenied: the room is owned by another tenant.
        """
        room = self.rooms.get(name)
        if room is None:
            room = self.create_room(name, SAYNA_ROOM_MAX_PARTICIPANTS if sayna else 0)
        if auth_id is not None:
            owner = room.auth_id
            if owner is None:
                room.set_auth_id(auth_id)
            elif owner != auth_id:
                raise AccessDenied(name)
        return room

    def list_rooms(self, auth_id: Optional[str]) -> list[Room]:
        return [room for room in self.rooms.values() if auth_id is None or room.auth_id == auth_id]

    def join(self, room: Room, participant: Participant) -> None:
        """Add ``participant``; every other agent hears ``participant_connected``."""
        self._cancel_expiry(room)
        room.participants[participant.identity] = participant
        for listener in self._listeners(room, exclude=participant.identity):
            listener.participant_connected(room, participant)

    def leave(self, room: Room, identity: str) -> Optional[Participant]:
        """Remove a participant; every other agent hears ``participant_disconnected``.
        The last one out starts the departure timeout."""
        participant = room.participants.pop(identity, None)
        if participant is None:
            return None
        participant.state = "DISCONNECTED"
        for listener in self._listeners(room, exclude=identity):
            listener.participant_disconnected(room, participant)
        if not room.participants and self.rooms.get(room.name) is room:
            self._schedule_expiry(room, self.departure_timeout)
        return participant

    def delete_room(self, name: str) -> None:
        room = self.rooms.pop(name, None)
        if room is not None:
            self._cancel_expiry(room)
            room.participants.clear()

    def close(self) -> None:
        """Cancel every pending expiry (the server is stopping)."""
        for room in self.rooms.values():
            self._cancel_expiry(room)

    def _schedule_expiry(self, room: Room, timeout: Optional[float]) -> None:
        self._cancel_expiry(room)
        if timeout is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # created outside the server's loop: nothing to schedule
            return
        room.expiry = loop.call_later(timeout, self._expire, room)

    def _expire(self, room: Room) -> None:
        room.expiry = None
        if not room.participants and self.rooms.get(room.name) is room:
            del self.rooms[room.name]

    @staticmethod
    def _cancel_expiry(room: Room) -> None:
        if room.expiry is not None:
            room.expiry.cancel()
            room.expiry = None

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
