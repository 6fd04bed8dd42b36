"""REST request and response bodies.

Responses tolerate fields the server may add later (``extra="allow"``) and keep
them on the model (the hooks of :class:`SipHooksResponse` leave them out: ``SipHook``
is a request model too); requests reject unknown fields so typos fail early.
"""

from typing import Any, Dict, List, Optional

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ._checked import CheckedModel
from .config import TTSConfig

__all__ = [
    "DeleteSipHooksRequest",
    "HealthResponse",
    "LiveKitParticipantInfo",
    "LiveKitRoomDetails",
    "LiveKitRoomSummary",
    "LiveKitRoomsResponse",
    "LiveKitTokenRequest",
    "LiveKitTokenResponse",
    "MuteLiveKitParticipantRequest",
    "MuteLiveKitParticipantResponse",
    "RemoveLiveKitParticipantRequest",
    "RemoveLiveKitParticipantResponse",
    "SetSipHooksRequest",
    "SipCallRequest",
    "SipCallResponse",
    "SipCallSipConfig",
    "SipHook",
    "SipHooksResponse",
    "SipTransferRequest",
    "SipTransferResponse",
    "SpeakRequest",
    "VoiceDescriptor",
]


class _Response(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Request(CheckedModel):
    model_config = ConfigDict(extra="forbid")


class HealthResponse(_Response):
    """``GET /``: ``status`` is ``"OK"`` when the server is healthy."""

    status: str


class VoiceDescriptor(_Response):
    """One voice of ``GET /voices``; pass ``id`` as ``TTSConfig.voice_id``."""

    id: str
    sample: str = ""
    name: str
    accent: str = "Unknown"
    gender: str = "Unknown"
    language: str = "Unknown"


class SpeakRequest(_Request):
    """``POST /speak`` body: ``text`` to synthesize with ``tts_config``."""

    text: str
    tts_config: TTSConfig


class LiveKitTokenRequest(_Request):
    """``POST /livekit/token`` body: who joins which room."""

    room_name: str
    participant_name: str
    participant_identity: str


class LiveKitTokenResponse(_Response):
    """A LiveKit access token; join ``livekit_url`` with ``token``."""

    token: str = Field(..., repr=False)
    room_name: str
    participant_identity: str
    livekit_url: str


class LiveKitRoomSummary(_Response):
    """One room of ``GET /livekit/rooms``."""

    name: str
    num_participants: int
    creation_time: int = Field(..., description="Unix seconds")


class LiveKitRoomsResponse(_Response):
    """``GET /livekit/rooms``: the rooms this API key may see."""

    rooms: List[LiveKitRoomSummary]


class LiveKitParticipantInfo(_Response):
    """One participant of ``GET /livekit/rooms/{room_name}``."""

    sid: str
    identity: str
    name: str = ""
    state: str = Field(..., description="JOINING, JOINED, ACTIVE, DISCONNECTED or UNKNOWN")
    kind: str = Field(..., description="STANDARD, INGRESS, EGRESS, SIP, AGENT or UNKNOWN")
    joined_at: int = Field(..., description="Unix seconds")
    metadata: str = ""
    attributes: Dict[str, str] = Field(default_factory=dict)
    is_publisher: bool = False


class LiveKitRoomDetails(_Response):
    """``GET /livekit/rooms/{room_name}``: one room with its participants."""

    sid: str
    name: str
    num_participants: int
    max_participants: int = Field(..., description="0 means unlimited")
    creation_time: int = Field(..., description="Unix seconds")
    metadata: str = ""
    active_recording: bool = False
    participants: List[LiveKitParticipantInfo] = Field(default_factory=list)


class RemoveLiveKitParticipantRequest(_Request):
    """``DELETE /livekit/participant`` body: whom to disconnect from which room."""

    room_name: str
    participant_identity: str


class RemoveLiveKitParticipantResponse(_Response):
    """``DELETE /livekit/participant``: the participant was removed."""

    status: str
    room_name: str
    participant_identity: str


class MuteLiveKitParticipantRequest(_Request):
    """``POST /livekit/participant/mute`` body: which track to (un)mute."""

    room_name: str
    participant_identity: str
    track_sid: str
    muted: bool


class MuteLiveKitParticipantResponse(_Response):
    """``POST /livekit/participant/mute``: the track's new ``muted`` state."""

    room_name: str
    participant_identity: str
    track_sid: str
    muted: bool


class SipHook(CheckedModel):
    """A SIP routing entry: calls to ``host`` are announced to ``url`` (signed webhook).

    An unknown field is an error (``SipHook(..., authid="t")`` names the fields), so a
    typo cannot send a hook without its tenant. In a :class:`SipHooksResponse` the
    fields the server may add are left out.
    """

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    host: str
    url: str
    auth_id: str = ""


class SipHooksResponse(_Response):
    """``GET``/``POST``/``DELETE /sip/hooks``: the routing table (without secrets)."""

    hooks: List[SipHook]

    @field_validator("hooks", mode="before")
    @classmethod
    def _known_fields_only(cls, value: Any) -> Any:
        # SipHook rejects unknown fields (they are typos in a request); the server's
        # entries may grow new ones: a response tolerates them by leaving them out
        # (a secret a server might add never reaches a repr either).
        if not isinstance(value, list):
            return value
        return [
            {k: v for k, v in item.items() if k in SipHook.model_fields}
            if isinstance(item, dict)
            else item
            for item in value
        ]


class SetSipHooksRequest(_Request):
    """``POST /sip/hooks`` body: hooks to add or replace, one per host."""

    hooks: List[SipHook]


class DeleteSipHooksRequest(_Request):
    """``DELETE /sip/hooks`` body: hosts whose runtime hooks to remove."""

    hosts: List[str]


class SipTransferRequest(_Request):
    """``POST /sip/transfer`` body: whom to transfer, and to which number."""

    room_name: str
    participant_identity: str
    transfer_to: str


class SipTransferResponse(_Response):
    """``status`` is ``"completed"`` (confirmed) or ``"initiated"`` (LiveKit timed out)."""

    status: str
    room_name: str
    participant_identity: str
    transfer_to: str = Field(..., description="Normalised as 'tel:<number>'")


class SipCallSipConfig(_Request):
    """Per-call SIP overrides; each falls back to the server's configuration."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    outbound_address: Optional[str] = None
    auth_username: Optional[str] = None
    auth_password: Optional[str] = Field(default=None, repr=False)


class SipCallRequest(_Request):
    """``POST /sip/call`` body: the call to place, into ``room_name``."""

    room_name: str
    participant_name: str
    participant_identity: str
    from_phone_number: str
    to_phone_number: str
    sip: Optional[SipCallSipConfig] = None


class SipCallResponse(_Response):
    """``POST /sip/call``: the call was placed; ``sip_call_id`` names it."""

    status: str
    room_name: str
    participant_identity: str
    participant_id: str
    sip_call_id: str
