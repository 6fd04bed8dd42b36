"""Typed events of the wire: what the server sends, and what a frame or a close means.

Server messages are pydantic models with a ``type`` literal, decoded through one
discriminated union (see :mod:`.decode`). They tolerate fields a newer server may
add. What the wire carries besides JSON (a TTS audio frame, a frame that could not
be decoded, an unknown type, the close) are small slotted classes: TTS audio arrives
tens of times a second and must not pay for validation. The SDK's own reports
(dropped events, failing callbacks, reconnection) live in
:mod:`sayna_client.realtime.events`.

Every event has a ``type`` string; every event delivered to error callbacks has a
``message`` string, so ``lambda e: print(e.message)`` works for all of them.
"""

from typing import Any, ClassVar, Dict, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field

from .attribution import error_source

__all__ = [
    "ConnectionClosed",
    "ErrorMessage",
    "LocalEvent",
    "MalformedMessage",
    "MessageMessage",
    "Participant",
    "ParticipantConnectedMessage",
    "ParticipantDisconnectedMessage",
    "ReadyMessage",
    "STTResultMessage",
    "SaynaMessage",
    "ServerEvent",
    "SipTransferErrorMessage",
    "TTSAudio",
    "TTSPlaybackCompleteMessage",
    "Track",
    "TrackSubscribedMessage",
    "UnknownEvent",
    "VADEventMessage",
]


class _ServerMessage(BaseModel):
    model_config = ConfigDict(extra="allow")


class ReadyMessage(_ServerMessage):
    """The session is configured. ``stream_id`` keys ``GET /recording/{stream_id}``."""

    type: Literal["ready"] = "ready"
    stream_id: Optional[str] = None
    livekit_room_name: Optional[str] = None
    livekit_url: Optional[str] = None
    sayna_participant_identity: Optional[str] = None
    sayna_participant_name: Optional[str] = None


class STTResultMessage(_ServerMessage):
    """A transcription result.

    ``is_final`` results are stable text; ``is_speech_final`` marks the end of the
    speaker's turn. A speech-final forced by the server carries an empty transcript:
    build the utterance from the preceding ``is_final`` results.
    """

    type: Literal["stt_result"] = "stt_result"
    transcript: str
    is_final: bool
    is_speech_final: bool
    confidence: float


class SaynaMessage(_ServerMessage):
    """A LiveKit data packet. Exactly one of ``message`` (UTF-8) or ``data`` (base64) is set;
    ``room`` is always ``"livekit"`` and ``topic`` defaults to ``"default"``."""

    message: Optional[str] = None
    data: Optional[str] = None
    identity: str
    topic: str
    room: str
    timestamp: int = Field(..., description="Unix milliseconds")


class MessageMessage(_ServerMessage):
    """``message``: a LiveKit data packet from a participant (``message`` holds it)."""

    type: Literal["message"] = "message"
    message: SaynaMessage


class Participant(_ServerMessage):
    """A LiveKit participant, as carried by ``participant_connected``/``_disconnected``."""

    identity: str
    name: Optional[str] = None
    room: str
    timestamp: int = Field(..., description="Unix milliseconds")


class ParticipantConnectedMessage(_ServerMessage):
    """``participant_connected``: a remote participant joined the session's room."""

    type: Literal["participant_connected"] = "participant_connected"
    participant: Participant


class ParticipantDisconnectedMessage(_ServerMessage):
    """A remote participant left; the server closes the session about 100 ms later."""

    type: Literal["participant_disconnected"] = "participant_disconnected"
    participant: Participant


class Track(_ServerMessage):
    """A remote participant's published track, as carried by ``track_subscribed``."""

    identity: str
    name: Optional[str] = None
    track_kind: str = Field(..., description="'audio' or 'video'")
    track_sid: str
    room: str
    timestamp: int = Field(..., description="Unix milliseconds")


class TrackSubscribedMessage(_ServerMessage):
    """``track_subscribed``: the server subscribed to a remote track (audio LiveKit sessions)."""

    type: Literal["track_subscribed"] = "track_subscribed"
    track: Track


class TTSPlaybackCompleteMessage(_ServerMessage):
    """Synthesis of the queued text finished (generation, not the listener's playback)."""

    type: Literal["tts_playback_complete"] = "tts_playback_complete"
    #: Unix milliseconds. Required by the protocol: a frame without the field or with
    #: one that is not an integer is a :class:`MalformedMessage`, and yet a completion,
    #: with ``timestamp`` None (see :func:`~sayna_client.protocol.decode.completion_in`);
    #: a JSON ``null`` is taken as that completion directly (no validator runs on
    #: every completion to tell the two apart).
    timestamp: Optional[int] = Field(..., description="Unix milliseconds")


class VADEventMessage(_ServerMessage):
    """Voice-activity event. Defined by the protocol; the current server never sends it."""

    type: Literal["vad_event"] = "vad_event"
    event: str
    timestamp_ms: int
    silence_duration_ms: Optional[int] = None


class ErrorMessage(_ServerMessage):
    """An error reported by the server. It never closes the session by itself.

    The protocol gives an error no request id; :attr:`source` names the client message
    it answers, as far as its text tells.
    """

    type: Literal["error"] = "error"
    message: str

    @property
    def source(self) -> Optional[str]:
        """The client message this error answers, from its text: ``"config"``,
        ``"speak"`` (also the "not configured" errors of ``clear`` and audio frames),
        ``"clear"``, ``"send_message"``, ``"update_config"``, ``"loading_start"``,
        ``"audio"``, ``"session"`` (a provider failing mid-session), ``"message"``
        (a message the server could not parse), or None for an unknown text."""
        return error_source(self.message)


class SipTransferErrorMessage(_ServerMessage):
    """A WebSocket ``sip_transfer`` failed."""

    type: Literal["sip_transfer_error"] = "sip_transfer_error"
    message: str


ServerEvent = Union[
    ReadyMessage,
    STTResultMessage,
    MessageMessage,
    ParticipantConnectedMessage,
    ParticipantDisconnectedMessage,
    TrackSubscribedMessage,
    TTSPlaybackCompleteMessage,
    VADEventMessage,
    ErrorMessage,
    SipTransferErrorMessage,
]


class LocalEvent:
    """Base of events made without pydantic: slotted, equal by value, readable repr."""

    __slots__ = ()
    type: ClassVar[str]

    def _fields(self) -> Dict[str, Any]:
        names: tuple[str, ...] = self.__slots__
        return {name: getattr(self, name) for name in names}

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, LocalEvent)
            and type(other) is type(self)
            and (self._fields() == other._fields())
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, *map(repr, self._fields().values())))

    def __repr__(self) -> str:
        body = ", ".join(f"{k}={v!r}" for k, v in self._fields().items())
        return f"{type(self).__name__}({body})"


class TTSAudio(LocalEvent):
    """One binary frame of synthesized audio, in the session's ``tts_config`` format."""

    __slots__ = ("data",)
    type: ClassVar[Literal["tts_audio"]] = "tts_audio"

    def __init__(self, data: bytes) -> None:
        self.data = data

    def __repr__(self) -> str:  # never dump audio into logs
        return f"TTSAudio(<{len(self.data)} bytes>)"


class UnknownEvent(LocalEvent):
    """A server message whose ``type`` this SDK version does not know. ``data`` is the JSON."""

    __slots__ = ("data", "event_type")
    type: ClassVar[Literal["unknown"]] = "unknown"

    def __init__(self, event_type: str, data: Dict[str, Any]) -> None:
        self.event_type = event_type
        self.data = data


class MalformedMessage(LocalEvent):
    """A server frame that could not be decoded (invalid JSON, not an object, a known type
    with missing or mistyped fields, or over the size limit). The session keeps running."""

    __slots__ = ("raw", "reason")
    type: ClassVar[Literal["malformed_message"]] = "malformed_message"

    def __init__(self, raw: str, reason: str) -> None:
        self.raw = raw
        self.reason = reason

    @property
    def message(self) -> str:
        return f"Malformed message from server: {self.reason}"


class ConnectionClosed(LocalEvent):
    """The WebSocket closed. ``initiated_by_client`` is True after ``disconnect()``;
    ``will_reconnect`` is True when automatic reconnection is about to start.

    ``code`` is the close code (1005: the peer sent none, 1006: the transport dropped
    or the heartbeat timed out). ``refused_by_client`` is True when the client itself
    closed with ``code`` because the server broke the WebSocket protocol (1002, 1007, or
    1009: a message larger than the client takes); the reason then says what the server
    sent.
    """

    __slots__ = ("code", "initiated_by_client", "reason", "refused_by_client", "will_reconnect")
    type: ClassVar[Literal["closed"]] = "closed"

    def __init__(
        self,
        code: Optional[int],
        reason: str,
        initiated_by_client: bool,
        will_reconnect: bool = False,
        *,
        refused_by_client: bool = False,
    ) -> None:
        self.code = code
        self.reason = reason
        self.initiated_by_client = initiated_by_client
        self.will_reconnect = will_reconnect
        self.refused_by_client = refused_by_client

    @property
    def message(self) -> str:
        why = f": {self.reason}" if self.reason else ""
        if self.code == 1009 and not (self.initiated_by_client or self.refused_by_client):
            # The server refused our message: the client's fix to make.
            why += (
                " (a message was larger than the server takes: Sayna 16 MiB a frame, 64 MiB "
                "a message, the local server 4 MiB unless --max-message-bytes; send audio "
                "in 20 ms frames and long text in several speak() calls)"
            )
        return f"Connection closed (code {self.code}){why}"
