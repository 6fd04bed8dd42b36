"""Provider and session configuration models (sent in ``config`` and ``POST /speak``).

Defaults follow the protocol reference: the server itself requires every
``stt_config`` key, so the SDK fills the documented values (``en-US``, 16 kHz,
mono, punctuation on, ``linear16``) and always sends all of them. Credentials in
``auth`` objects never appear in ``repr()``, and validation errors never quote
the input (a key passed in the wrong place would otherwise be printed).
"""

from typing import Any, Dict, FrozenSet, List, Literal, Optional, Set, Union

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


class _SharedFieldsSet(Set[str]):
    """The fields-set of configs built with the same fields, shared by all of them.

    pydantic keeps a set of the names given at construction per model (``model_fields_set``,
    728 bytes for an ``STTConfig`` of seven fields: more than the rest of the model). A
    process with many sessions builds the same few configs over and over, so
    :class:`_Model` shares one such set per distinct set of names and gives a model a
    set of its own (copy on write) before anything could change it: an assignment, a
    look at ``model_fields_set``, a copy, pickling.
    """

    __slots__ = ()

    def __copy__(self) -> Set[str]:
        return set(self)

    def __deepcopy__(self, memo: Any) -> Set[str]:
        return set(self)

    def __reduce__(self) -> Any:
        return set, (list(self),)


#: One shared fields-set per distinct set of names (bounded: odd configs keep their own).
_FIELDS_SETS: Dict[FrozenSet[str], _SharedFieldsSet] = {}
_MAX_FIELDS_SETS = 256


class _Model(CheckedModel):
    # Configs are built by users: reject typos in field names instead of ignoring them,
    # and report bad values as SaynaValidationError (CheckedModel).
    # Validation errors name the field and the problem but never quote the input: a
    # provider key passed in the wrong place would be printed with the error.
    model_config = ConfigDict(extra="forbid", validate_assignment=True, hide_input_in_errors=True)

    def model_post_init(self, context: Any, /) -> None:
        """Share the fields-set with the configs built with the same fields (see
        :class:`_SharedFieldsSet`)."""
        fields = self.__pydantic_fields_set__
        key = frozenset(fields)
        shared = _FIELDS_SETS.get(key)
        if shared is None:
            if len(_FIELDS_SETS) >= _MAX_FIELDS_SETS:
                return
            shared = _FIELDS_SETS[key] = _SharedFieldsSet(fields)
        object.__setattr__(self, "__pydantic_fields_set__", shared)

    def _own_fields_set(self) -> Set[str]:
        fields = self.__pydantic_fields_set__
        if type(fields) is _SharedFieldsSet:
            fields = set(fields)
            object.__setattr__(self, "__pydantic_fields_set__", fields)
        return fields

    def __setattr__(self, name: str, value: Any) -> None:
        self._own_fields_set()  # pydantic adds the name to it
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        self._own_fields_set()
        super().__delattr__(name)

    @property
    def model_fields_set(self) -> Set[str]:
        """The names of the fields set explicitly at construction or by assignment
        (this model's own set, as with any pydantic model)."""
        return self._own_fields_set()


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
