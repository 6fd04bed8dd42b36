"""Declarative shapes of every request body and WebSocket message (server's serde structs).

Field order follows the Rust structs, because serde reports the first missing field in
declaration order.
"""

from __future__ import annotations

from typing import Any

from .serde import (
    ANY,
    BOOL,
    F32,
    STR,
    U16,
    U32,
    U64,
    Field,
    ListOf,
    SerdeError,
    Struct,
    describe,
    validate,
)
from .serde_json import parse_checked, parse_checked_async

__all__ = [
    "CLIENT_MESSAGES",
    "DELETE_HOOKS",
    "MUTE",
    "POST_HOOKS",
    "REMOVE_PARTICIPANT",
    "SIP_CALL",
    "SIP_TRANSFER",
    "SPEAK",
    "TOKEN",
    "parse_client_message",
    "parse_client_message_async",
]


def _opt(name: str, kind: Any) -> Field:
    return Field(name, kind, required=False, nullable=True)


PRONUNCIATION = Struct("Pronunciation", (Field("word", STR), Field("pronunciation", STR)))
#: providers/auth.rs ``ProviderAuthInput``: a flattened map, so any keys; anything but an
#: object (or null: the ``Option`` around it) is serde's ``invalid type`` (section 5.3).
PROVIDER_AUTH = Struct("ProviderAuthInput")

STT_CONFIG = Struct(
    "STTWebSocketConfig",
    (
        Field("provider", STR),
        Field("language", STR),
        Field("sample_rate", U32),
        Field("channels", U16),
        Field("punctuation", BOOL),
        Field("encoding", STR),
        Field("model", STR),
        _opt("auth", PROVIDER_AUTH),
    ),
)

TTS_CONFIG = Struct(
    "TTSWebSocketConfig",
    (
        Field("provider", STR),
        Field("model", STR),
        _opt("voice_id", STR),
        _opt("speaking_rate", F32),
        _opt("audio_format", STR),
        _opt("sample_rate", U32),
        _opt("connection_timeout", U64),
        _opt("request_timeout", U64),
        Field("pronunciations", ListOf(PRONUNCIATION), required=False),
        _opt("auth", PROVIDER_AUTH),
    ),
)

LIVEKIT_CONFIG = Struct(
    "LiveKitWebSocketConfig",
    (
        Field("room_name", STR),
        Field("enable_recording", BOOL, required=False),
        _opt("sayna_participant_identity", STR),
        _opt("sayna_participant_name", STR),
        Field("listen_participants", ListOf(STR), required=False),
    ),
)

LOADING_AUDIO = Struct(
    "LoadingAudioConfig",
    (
        Field("data", STR),
        _opt("format", STR),
        _opt("sample_rate", U32),
        _opt("channels", U16),
        _opt("volume", F32),
    ),
)

CLIENT_MESSAGES: dict[str, Struct] = {
    "config": Struct(
        "config",
        (
            _opt("stream_id", STR),
            _opt("audio", BOOL),
            _opt("stt_config", STT_CONFIG),
            _opt("tts_config", TTS_CONFIG),
            _opt("livekit", LIVEKIT_CONFIG),
            _opt("loading_audio", LOADING_AUDIO),
        ),
    ),
    "speak": Struct(
        "speak", (Field("text", STR), _opt("flush", BOOL), _opt("allow_interruption", BOOL))
    ),
    "clear": Struct("clear"),
    "send_message": Struct(
        "send_message",
        (Field("message", STR), Field("role", STR), _opt("topic", STR), _opt("debug", ANY)),
    ),
    "sip_transfer": Struct("sip_transfer", (Field("transfer_to", STR),)),
    "update_config": Struct(
        "update_config",
        (
            _opt("vad", Struct("VADConfigUpdate", (_opt("silence_duration_ms", U64),))),
            _opt("turn_detect", Struct("TurnDetectConfigUpdate", (_opt("threshold", F32),))),
        ),
    ),
    "loading_start": Struct("loading_start"),
    "loading_stop": Struct("loading_stop"),
}

_VARIANTS = ", ".join(f"`{name}`" for name in CLIENT_MESSAGES)


def _check_client_message(value: Any, ends: dict[Any, int]) -> None:
    end = ends.get((), 0)
    if not isinstance(value, dict):
        raise SerdeError(
            f"invalid type: {describe(value)}, expected internally tagged enum IncomingMessage",
            (),
            end,
        )
    if "type" not in value:
        raise SerdeError("missing field `type`", (), end)
    # serde's TaggedContentVisitor takes the first "type" it meets and fails at a second
    # one, right after reading that key; the other fields are checked only once the
    # whole message is read.
    repeats = [
        dup for dup in getattr(ends, "duplicates", {}).get(id(value), ()) if dup.key == "type"
    ]
    tag = repeats[0].earlier if repeats else value["type"]
    if not isinstance(tag, str):
        raise SerdeError(f"invalid type: {describe(tag)}, expected variant identifier", (), end)
    spec = CLIENT_MESSAGES.get(tag)
    if spec is None:
        raise SerdeError(f"unknown variant `{tag}`, expected one of {_VARIANTS}", (), end)
    if repeats:
        raise SerdeError("duplicate field `type`", (), repeats[0].at)
    validate(value, spec, ends, whole_value_position=True)


def parse_client_message(text: str) -> dict[str, Any]:
    """Parse one WebSocket text frame into a validated message dict.

    Raises:
        SerdeError: whose ``located(text)`` is the serde text the server puts after
            ``Invalid message format: ``; ``value`` is the JSON value if it parsed.
    """
    value = parse_checked(text, _check_client_message, whole_value_position=True)
    assert isinstance(value, dict)
    return value


async def parse_client_message_async(text: str) -> dict[str, Any]:
    """:func:`parse_client_message`, off the event loop for large frames."""
    value = await parse_checked_async(text, _check_client_message, whole_value_position=True)
    assert isinstance(value, dict)
    return value


# --- REST bodies -------------------------------------------------------------------

SPEAK = Struct("SpeakRequest", (Field("text", STR), Field("tts_config", TTS_CONFIG)))
TOKEN = Struct(
    "TokenRequest",
    (Field("room_name", STR), Field("participant_name", STR), Field("participant_identity", STR)),
)
REMOVE_PARTICIPANT = Struct(
    "RemoveParticipantRequest", (Field("room_name", STR), Field("participant_identity", STR))
)
MUTE = Struct(
    "MuteParticipantRequest",
    (
        Field("room_name", STR),
        Field("participant_identity", STR),
        Field("track_sid", STR),
        Field("muted", BOOL),
    ),
)
SIP_CALL = Struct(
    "SIPCallRequest",
    (
        Field("room_name", STR),
        Field("participant_name", STR),
        Field("participant_identity", STR),
        Field("from_phone_number", STR),
        Field("to_phone_number", STR),
        _opt(
            "sip",
            Struct(
                "SIPCallSipConfig",
                (
                    _opt("outbound_address", STR),
                    _opt("auth_username", STR),
                    _opt("auth_password", STR),
                ),
            ),
        ),
    ),
)
SIP_TRANSFER = Struct(
    "SIPTransferRequest",
    (Field("room_name", STR), Field("participant_identity", STR), Field("transfer_to", STR)),
)
HOOK_ENTRY = Struct("SipHookEntry", (Field("host", STR), Field("url", STR), Field("auth_id", STR)))
POST_HOOKS = Struct("UpdateSipHooksRequest", (Field("hooks", ListOf(HOOK_ENTRY), required=False),))
DELETE_HOOKS = Struct("DeleteSipHooksRequest", (Field("hosts", ListOf(STR), required=False),))
