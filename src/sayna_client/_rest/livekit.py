"""The LiveKit endpoints: tokens, rooms, participants (``/livekit/*``)."""

from __future__ import annotations

from .._defaults import CLIENT_DEFAULT, Seconds
from .._http import path_segment
from ..errors import SaynaValidationError
from ..types import (
    LiveKitRoomDetails,
    LiveKitRoomsResponse,
    LiveKitTokenRequest,
    LiveKitTokenResponse,
    MuteLiveKitParticipantRequest,
    MuteLiveKitParticipantResponse,
    RemoveLiveKitParticipantRequest,
    RemoveLiveKitParticipantResponse,
)
from .base import RestBase, require_text

__all__ = ["LiveKitEndpoints"]


class LiveKitEndpoints(RestBase):
    """``/livekit/*`` over :meth:`RestBase._request` (part of ``RestClient``)."""

    async def get_livekit_token(
        self,
        room_name: str,
        participant_name: str,
        participant_identity: str,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> LiveKitTokenResponse:
        """``POST /livekit/token``: a LiveKit access token for a participant.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: an empty argument.
            SaynaPermissionDeniedError: the room belongs to another tenant (403).
        """
        body = LiveKitTokenRequest(
            room_name=require_text("room_name", room_name, "my-room"),
            participant_name=require_text("participant_name", participant_name, "Jane"),
            participant_identity=require_text(
                "participant_identity", participant_identity, "user-123"
            ),
        )
        return await self._request(
            "POST",
            "/livekit/token",
            body=body,
            cast_to=LiveKitTokenResponse,
            timeout=timeout,
            idempotent=True,
        )

    async def get_livekit_rooms(self, *, timeout: Seconds = CLIENT_DEFAULT) -> LiveKitRoomsResponse:
        """``GET /livekit/rooms``: the rooms this API key may see.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.
        """
        return await self._request(
            "GET", "/livekit/rooms", cast_to=LiveKitRoomsResponse, timeout=timeout, idempotent=True
        )

    async def get_livekit_room(
        self, room_name: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> LiveKitRoomDetails:
        """``GET /livekit/rooms/{room_name}``: one room with its participants.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaNotFoundError: no such room, or it belongs to another tenant.
        """
        require_text("room_name", room_name, "my-room")
        return await self._request(
            "GET",
            f"/livekit/rooms/{path_segment(room_name)}",
            cast_to=LiveKitRoomDetails,
            timeout=timeout,
            idempotent=True,
        )

    async def remove_livekit_participant(
        self, room_name: str, participant_identity: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> RemoveLiveKitParticipantResponse:
        """``DELETE /livekit/participant``: disconnect a participant (its token stays
        valid). Sent once, never retried.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaNotFoundError: room or participant not found or not accessible.
        """
        body = RemoveLiveKitParticipantRequest(
            room_name=require_text("room_name", room_name, "my-room"),
            participant_identity=require_text(
                "participant_identity", participant_identity, "user-123"
            ),
        )
        return await self._request(
            "DELETE",
            "/livekit/participant",
            body=body,
            cast_to=RemoveLiveKitParticipantResponse,
            timeout=timeout,
            check=f"e.g. whether get_livekit_room({room_name!r}) still lists "
            f"{participant_identity!r}",
        )

    async def mute_livekit_participant_track(
        self,
        room_name: str,
        participant_identity: str,
        track_sid: str,
        muted: bool,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> MuteLiveKitParticipantResponse:
        """``POST /livekit/participant/mute``: mute or unmute one published track.

        Args:
            timeout: seconds; ``None``: no limit; default: the client's.

        Raises:
            SaynaValidationError: an empty name or ``muted`` not a bool.
        """
        if not isinstance(muted, bool):
            raise SaynaValidationError(f"muted must be True or False, got {muted!r}")
        body = MuteLiveKitParticipantRequest(
            room_name=require_text("room_name", room_name, "my-room"),
            participant_identity=require_text(
                "participant_identity", participant_identity, "user-123"
            ),
            track_sid=require_text("track_sid", track_sid, "TR_abc123"),
            muted=muted,
        )
        return await self._request(
            "POST",
            "/livekit/participant/mute",
            body=body,
            cast_to=MuteLiveKitParticipantResponse,
            timeout=timeout,
            idempotent=True,
        )
