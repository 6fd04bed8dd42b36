"""Provider and session configuration models (sent in ``config`` and ``POST /speak``).

Defaults follow the protocol reference: the server itself requires every
``stt_config`` key, so the SDK fills the documented values (``en-US``, 16 kHz,
mono, punctuation on, ``linear16``) and always sends all of them. Credentials in
``auth`` objects never appear in ``repr()``, and validation errors never quote
the input (a key passed in the wrong place would otherwise be printed).
"""

from typing import Any, Dict, List, Literal, Optional, Union

from pydantic import ConfigDict, Field, field_validator

from ._checked import CheckedModel

__all__ = [
    "ApiKeyAuth",
    "AzureAuth",
    "GoogleAuth",
    "LiveKitConfig",
    "LoadingAudioConfig",
    "Pronunciation",
    "ProviderAuth",
    "STTConfig",
    "TTSConfig",
]


class _Model(CheckedModel):
    # Configs are built by users: reject typos in field names instead of ignoring them,
    # and report bad values as SaynaValidationError (CheckedModel).
    # Validation errors name the field and the problem but never quote the input: a
    # provider key passed in the wrong place would be printed with the error.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)


class Pronunciation(_Model):
    """A whole-word, case-sensitive replacement applied before synthesis."""

    word: str = Field(..., min_length=1, description="Word to replace (matched as a whole word)")
    pronunciation: str = Field(..., description="Replacement text or phonetic spelling")


class ApiKeyAuth(_Model):
    """Session credentials for Deepgram, ElevenLabs or Cartesia."""

    api_key: str = Field(..., min_length=1, repr=False, description="Provider API key")


class GoogleAuth(_Model):
    """Session credentials for Google: service-account JSON (text or object) or a server path."""

    credentials: Union[str, Dict[str, Any]] = Field(..., repr=False)


class AzureAuth(_Model):
    """Session credentials for Azure Speech."""

    api_key: str = Field(..., min_length=1, repr=False, description="Speech subscription key")
    region: str = Field(..., min_length=1, description="Azure region, e.g. 'eastus'")


ProviderAuth = Union[ApiKeyAuth, GoogleAuth, AzureAuth, Dict[str, Any]]


class STTConfig(_Model):
    """Speech-to-text settings: what audio you will send and who transcribes it.

    Binary frames sent with ``on_audio_input`` must match ``sample_rate``,
    ``channels`` and ``encoding`` exactly; the server forwards them untouched.
    """

    provider: str = Field(..., min_length=1, description="deepgram, google, elevenlabs, ...")
    language: str = "en-US"
    sample_rate: int = Field(
        default=16000, gt=0, le=384000, description="Hz of the frames you send"
    )
    channels: int = Field(default=1, ge=1, le=8)
    punctuation: bool = True
    encoding: str = Field(
        default="linear16", min_length=1, description="linear16, mulaw, opus, ..."
    )
    model: str = ""
    auth: Optional[ProviderAuth] = Field(default=None, repr=False)


class TTSConfig(_Model):
    """Text-to-speech settings. ``voice_id`` should always be set for non-Deepgram providers:
    the server's default voice is a Deepgram one."""

    provider: str = Field(..., min_length=1, description="deepgram, elevenlabs, google, ...")
    voice_id: Optional[str] = None
    speaking_rate: float = Field(default=1.0, gt=0, le=4.0)
    audio_format: str = Field(default="linear16", min_length=1)
    sample_rate: int = Field(default=24000, gt=0, le=384000)
    connection_timeout: Optional[int] = 30
    request_timeout: Optional[int] = 60
    model: str = ""
    pronunciations: List[Pronunciation] = Field(default_factory=list)
    auth: Optional[ProviderAuth] = Field(default=None, repr=False)


class LiveKitConfig(_Model):
    """Join (or create) a LiveKit room for this session."""

    room_name: str = Field(..., min_length=1)
    enable_recording: Optional[bool] = None
    sayna_participant_identity: Optional[str] = None
    sayna_participant_name: Optional[str] = None
    listen_participants: Optional[List[str]] = None


class LoadingAudioConfig(_Model):
    """A clip the server loops into the LiveKit track between ``loading_start``/``loading_stop``.

    ``data`` is standard base64 of a WAV file or raw 16-bit PCM (then ``sample_rate``
    is required). Limits are enforced by the server (8–48 kHz, mono/stereo, 250 ms–10 s).
    """

    data: str = Field(..., min_length=1, repr=False)
    format: Optional[Literal["wav", "pcm"]] = None
    sample_rate: Optional[int] = Field(default=None, gt=0)
    channels: Optional[int] = Field(default=None, ge=1, le=2)
    volume: Optional[float] = Field(default=None, ge=0.0, le=1.0)

    @field_validator("data")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("loading_audio.data must be non-empty base64 audio")
        return value
