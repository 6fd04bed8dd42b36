"""Client → server messages and their encoding: pure functions, no I/O.

Each command is a small pydantic model (public, for users who speak the protocol
themselves) and an ``encode_*`` function that returns the exact JSON text the
client sends. Optional keys are omitted rather than sent as ``null``.
"""

import json
from typing import Any, Callable, Dict, Literal, Optional, Union

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_json

from ..types.config import LiveKitConfig, LoadingAudioConfig, STTConfig, TTSConfig

__all__ = [
    "ClearMessage",
    "ConfigMessage",
    "LoadingStartMessage",
    "LoadingStopMessage",
    "OutgoingMessage",
    "SendMessageMessage",
    "SipTransferMessage",
    "SpeakMessage",
    "TurnDetectConfig",
    "UpdateConfigMessage",
    "VADConfig",
    "encode",
    "encode_config",
    "encode_speak",
]


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ConfigMessage(_Command):
    """First message of a session: providers, LiveKit room, loading clip."""

    type: Literal["config"] = "config"
    stream_id: Optional[str] = None
    audio: Optional[bool] = True
    stt_config: Optional[STTConfig] = None
    tts_config: Optional[TTSConfig] = None
    livekit: Optional[LiveKitConfig] = None
    loading_audio: Optional[LoadingAudioConfig] = None


class SpeakMessage(_Command):
    """``speak``: queue ``text`` for synthesis; the audio comes back as binary frames.

    ``flush`` is accepted but ignored by the server; ``allow_interruption`` sets the
    session-wide interruption flag (the last ``speak`` wins). No acknowledgement.
    """

    type: Literal["speak"] = "speak"
    text: str
    flush: Optional[bool] = None
    allow_interruption: Optional[bool] = None


class ClearMessage(_Command):
    """``clear``: cancel queued and in-flight speech (ignored while non-interruptible
    speech plays); STT and the loading clip are unaffected."""

    type: Literal["clear"] = "clear"


class SendMessageMessage(_Command):
    """``send_message``: publish ``message`` as a LiveKit data packet on ``topic``.

    Needs a LiveKit session; not echoed back, no acknowledgement.
    """

    type: Literal["send_message"] = "send_message"
    message: str
    role: str
    topic: Optional[str] = None
    debug: Optional[Dict[str, Any]] = None


class SipTransferMessage(_Command):
    """``sip_transfer``: transfer the room's SIP caller to ``transfer_to`` (a phone number).

    Success is silent; a failure arrives as ``sip_transfer_error``.
    """

    type: Literal["sip_transfer"] = "sip_transfer"
    transfer_to: str


class VADConfig(_Command):
    """Accepted by the server but not implemented there (no effect)."""

    silence_duration_ms: int = Field(..., ge=0)


class TurnDetectConfig(_Command):
    """Turn-detector threshold; changes a server-global setting (``stt-vad`` builds only)."""

    threshold: float = Field(..., ge=0.0, le=1.0)


class UpdateConfigMessage(_Command):
    """``update_config``: change turn detection while running (no ack).

    ``turn_detect`` sets the server's turn-detection threshold (server-wide on the real
    server); ``vad`` is accepted and has no effect.
    """

    type: Literal["update_config"] = "update_config"
    vad: Optional[VADConfig] = None
    turn_detect: Optional[TurnDetectConfig] = None


class LoadingStartMessage(_Command):
    """``loading_start``: loop the configured loading clip into the LiveKit room."""

    type: Literal["loading_start"] = "loading_start"


class LoadingStopMessage(_Command):
    """``loading_stop``: stop the loading clip started by ``loading_start``."""

    type: Literal["loading_stop"] = "loading_stop"


OutgoingMessage = Union[
    ConfigMessage,
    SpeakMessage,
    ClearMessage,
    SendMessageMessage,
    SipTransferMessage,
    UpdateConfigMessage,
    LoadingStartMessage,
    LoadingStopMessage,
]


def encode(command: BaseModel) -> str:
    """The JSON text for a command, with unset optional keys omitted."""
    return command.model_dump_json(exclude_none=True)


# The generic encoder, for the arguments the fast path below does not take.
_SPEAK_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
#: The JSON string literal of a str, as the encoder above writes it (the C escaper).
_quote: Callable[[str], str] = json.encoder.encode_basestring
#: What follows the text, by ``flush`` then ``allow_interruption`` (False, True).
_SPEAK_TAILS = tuple(
    tuple(
        f',"flush":{json.dumps(flush)},"allow_interruption":{json.dumps(allow)}}}'
        for allow in (False, True)
    )
    for flush in (False, True)
)


def encode_speak(text: str, flush: bool, allow_interruption: bool) -> str:
    """The ``speak`` text: ``{"type":"speak","text":...,"flush":...,"allow_interruption":...}``.

    The most frequent command after audio: for a ``str`` and two ``bool`` it is put
    together from the escaped text and fixed pieces (the same text, byte for byte, as
    the JSON encoder writes; ``test_protocol`` compares them), without the encoder's
    per-call set-up. Other values go through the encoder.
    """
    if type(text) is str and type(flush) is bool and type(allow_interruption) is bool:
        return '{"type":"speak","text":' + _quote(text) + _SPEAK_TAILS[flush][allow_interruption]
    return _SPEAK_ENCODER.encode(
        {"type": "speak", "text": text, "flush": flush, "allow_interruption": allow_interruption}
    )


def encode_config(
    *,
    stream_id: Optional[str],
    audio: bool,
    stt_config: Optional[STTConfig],
    tts_config: Optional[TTSConfig],
    livekit: Optional[LiveKitConfig],
    loading_audio: Optional[LoadingAudioConfig],
) -> str:
    """The ``config`` text. Every ``stt_config`` key is sent: the server requires them all.

    One pydantic-core call serialises the envelope and the models together (each model
    through its own serializer, unset optional keys omitted): this runs on every
    connect, and is about four times cheaper than ``model_dump`` + ``json.dumps``.
    """
    payload: Dict[str, Any] = {"type": "config", "audio": audio}
    if stream_id is not None:
        payload["stream_id"] = stream_id
    if stt_config is not None:
        payload["stt_config"] = stt_config
    if tts_config is not None:
        payload["tts_config"] = tts_config
    if livekit is not None:
        payload["livekit"] = livekit
    if loading_audio is not None:
        payload["loading_audio"] = loading_audio
    return to_json(payload, exclude_none=True).decode()
