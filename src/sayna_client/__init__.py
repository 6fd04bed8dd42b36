"""Python SDK for Sayna: real-time speech-to-text and text-to-speech over one WebSocket.

The public surface is re-exported here; everything else lives in private modules.
The names whose modules do I/O (the clients, and the conversation types beside the
session) are imported on first use, so ``import sayna_client.protocol`` (sans-I/O)
loads neither aiohttp nor asyncio.
"""

from typing import TYPE_CHECKING, Any

from ._config import ReconnectPolicy, RetryPolicy, Timeouts
from ._version import __version__
from .errors import (
    ModelValidationError,
    SaynaAuthenticationError,
    SaynaBadRequestError,
    SaynaConfigRejectedError,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaError,
    SaynaEventLoopError,
    SaynaHttpError,
    SaynaInternalServerError,
    SaynaInvalidResponseError,
    SaynaMethodNotAllowedError,
    SaynaNotConnectedError,
    SaynaNotFoundError,
    SaynaNotReadyError,
    SaynaPayloadTooLargeError,
    SaynaPermissionDeniedError,
    SaynaProtocolError,
    SaynaRateLimitError,
    SaynaServerError,
    SaynaTimeoutError,
    SaynaTTSError,
    SaynaUnprocessableEntityError,
    SaynaValidationError,
)
from .protocol.commands import (
    ClearMessage,
    ConfigMessage,
    LoadingStartMessage,
    LoadingStopMessage,
    OutgoingMessage,
    SendMessageMessage,
    SipTransferMessage,
    SpeakMessage,
    TurnDetectConfig,
    UpdateConfigMessage,
    VADConfig,
)
from .protocol.decode import decode_text
from .protocol.events import (
    ConnectionClosed,
    ErrorMessage,
    MalformedMessage,
    MessageMessage,
    Participant,
    ParticipantConnectedMessage,
    ParticipantDisconnectedMessage,
    ReadyMessage,
    SaynaMessage,
    ServerEvent,
    SipTransferErrorMessage,
    STTResultMessage,
    Track,
    TrackSubscribedMessage,
    TTSAudio,
    TTSPlaybackCompleteMessage,
    UnknownEvent,
    VADEventMessage,
)
from .realtime.events import (
    AudioDropped,
    CallbackError,
    ErrorEvent,
    Event,
    EventsDropped,
    Reconnected,
    Reconnecting,
)
from .types import (
    ApiKeyAuth,
    AzureAuth,
    DeleteSipHooksRequest,
    GoogleAuth,
    HealthResponse,
    LiveKitConfig,
    LiveKitParticipantInfo,
    LiveKitRoomDetails,
    LiveKitRoomsResponse,
    LiveKitRoomSummary,
    LiveKitTokenRequest,
    LiveKitTokenResponse,
    LoadingAudioConfig,
    MuteLiveKitParticipantRequest,
    MuteLiveKitParticipantResponse,
    Pronunciation,
    ProviderAuth,
    RemoveLiveKitParticipantRequest,
    RemoveLiveKitParticipantResponse,
    SetSipHooksRequest,
    SipCallRequest,
    SipCallResponse,
    SipCallSipConfig,
    SipHook,
    SipHooksResponse,
    SipTransferRequest,
    SipTransferResponse,
    SpeakRequest,
    STTConfig,
    TTSConfig,
    VoiceDescriptor,
)
from .types.credentials import resolve_config_auth, resolve_google_credentials
from .webhooks import (
    WebhookReceiver,
    WebhookSIPOutput,
    WebhookSIPParticipant,
    WebhookSIPRoom,
    WebhookVerificationError,
)

__all__ = [
    "ApiKeyAuth",
    "AudioDropped",
    "AzureAuth",
    "CallbackError",
    "ClearMessage",
    "ConfigMessage",
    "ConnectionClosed",
    "DeleteSipHooksRequest",
    "ErrorEvent",
    "ErrorMessage",
    "Event",
    "EventsDropped",
    "GoogleAuth",
    "HealthResponse",
    "LiveKitConfig",
    "LiveKitParticipantInfo",
    "LiveKitRoomDetails",
    "LiveKitRoomSummary",
    "LiveKitRoomsResponse",
    "LiveKitTokenRequest",
    "LiveKitTokenResponse",
    "LoadingAudioConfig",
    "LoadingStartMessage",
    "LoadingStopMessage",
    "MalformedMessage",
    "MessageMessage",
    "ModelValidationError",
    "MuteLiveKitParticipantRequest",
    "MuteLiveKitParticipantResponse",
    "OutgoingMessage",
    "Participant",
    "ParticipantConnectedMessage",
    "ParticipantDisconnectedMessage",
    "Pronunciation",
    "ProviderAuth",
    "ReadyMessage",
    "ReconnectPolicy",
    "Reconnected",
    "Reconnecting",
    "RemoveLiveKitParticipantRequest",
    "RemoveLiveKitParticipantResponse",
    "RetryPolicy",
    "STTConfig",
    "STTResultMessage",
    "SaynaAuthenticationError",
    "SaynaBadRequestError",
    "SaynaClient",
    "SaynaConfigRejectedError",
    "SaynaConnectionClosedError",
    "SaynaConnectionError",
    "SaynaError",
    "SaynaEventLoopError",
    "SaynaHttpError",
    "SaynaInternalServerError",
    "SaynaInvalidResponseError",
    "SaynaMessage",
    "SaynaMethodNotAllowedError",
    "SaynaNotConnectedError",
    "SaynaNotFoundError",
    "SaynaNotReadyError",
    "SaynaPayloadTooLargeError",
    "SaynaPermissionDeniedError",
    "SaynaProtocolError",
    "SaynaRateLimitError",
    "SaynaServerError",
    "SaynaSyncClient",
    "SaynaTTSError",
    "SaynaTimeoutError",
    "SaynaUnprocessableEntityError",
    "SaynaValidationError",
    "SendMessageMessage",
    "ServerEvent",
    "SessionMetrics",
    "SetSipHooksRequest",
    "SipCallRequest",
    "SipCallResponse",
    "SipCallSipConfig",
    "SipHook",
    "SipHooksResponse",
    "SipTransferErrorMessage",
    "SipTransferMessage",
    "SipTransferRequest",
    "SipTransferResponse",
    "SpeakMessage",
    "SpeakRequest",
    "TTSAudio",
    "TTSConfig",
    "TTSPlaybackCompleteMessage",
    "Timeouts",
    "Track",
    "TrackSubscribedMessage",
    "Turn",
    "TurnDetectConfig",
    "UnknownEvent",
    "Unsubscribe",
    "UpdateConfigMessage",
    "VADConfig",
    "VADEventMessage",
    "VoiceDescriptor",
    "WebhookReceiver",
    "WebhookSIPOutput",
    "WebhookSIPParticipant",
    "WebhookSIPRoom",
    "WebhookVerificationError",
    "__version__",
    "decode_text",
    "resolve_config_auth",
    "resolve_google_credentials",
]

if TYPE_CHECKING:
    from .client import SaynaClient
    from .realtime.conversation import SessionMetrics, Turn
    from .realtime.subscriptions import Unsubscribe
    from .sync import SaynaSyncClient

#: Public names imported on first use: their modules load aiohttp or asyncio.
_LAZY = {
    "SaynaClient": "client",
    "SaynaSyncClient": "sync",
    "SessionMetrics": "realtime.conversation",
    "Turn": "realtime.conversation",
    "Unsubscribe": "realtime.subscriptions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sayna_client' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
