"""Provider names, provider ``auth`` validation (section 5.3) and TTS request building.

Real provider names are accepted and served by the server's default engine; ``fake``
and ``local`` pick an engine explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

from .engines.base import STTParams, TTSRequest, clamp_speaking_rate
from .engines.output import content_type_for

__all__ = [
    "ENGINE_PROVIDERS",
    "ProviderError",
    "apply_pronunciations",
    "content_type_for",
    "engine_for_provider",
    "speaking_rate_for",
    "stt_params",
    "tts_request",
]

#: Provider names that select an engine directly.
ENGINE_PROVIDERS = ("fake", "local")

_REAL_PROVIDERS = {
    "deepgram": "deepgram",
    "elevenlabs": "elevenlabs",
    "google": "google",
    "microsoft-azure": "azure",
    "azure": "azure",
    "cartesia": "cartesia",
}

_AUTH_FIELDS: dict[str, tuple[str, ...]] = {
    "deepgram": ("api_key",),
    "elevenlabs": ("api_key",),
    "cartesia": ("api_key",),
    "google": ("credentials",),
    "azure": ("api_key", "region"),
}


class ProviderError(Exception):
    """A provider resolution/auth failure; ``str()`` is the exact client-facing text."""


def engine_for_provider(provider: str, default_engine: str) -> str:
    """Return the engine name serving ``provider``.

    Raises:
        ProviderError: ``Unsupported provider: <p>``.
    """
    name = provider.lower()  # Sayna only lower-cases (auth.rs normalize_provider)
    if name in ENGINE_PROVIDERS:
        return name
    if name in _REAL_PROVIDERS:
        return default_engine
    raise ProviderError(f"Unsupported provider: {name}")


def validate_auth(provider: str, auth: Optional[dict[str, Any]]) -> None:
    """Validate a provider ``auth`` object (omitted, ``null`` and ``{}`` mean server auth);
    the schema has made sure it is an object.

    Raises:
        ProviderError: ``Invalid auth input for provider <p>: <detail>``.
    """
    name = provider.lower()  # Sayna only lower-cases (auth.rs normalize_provider)
    if name in ENGINE_PROVIDERS or auth is None or auth == {}:
        return
    normalized = _REAL_PROVIDERS[name]
    prefix = f"Invalid auth input for provider {normalized}: "
    allowed = _AUTH_FIELDS[normalized]
    unknown = sorted(key for key in auth if key not in allowed)
    if unknown:
        raise ProviderError(
            f"{prefix}Unsupported auth field(s) for provider {normalized}: {', '.join(unknown)}"
        )
    for key in allowed:
        value = auth.get(key)
        if value is None:
            raise ProviderError(f"{prefix}Auth field '{key}' is required for provider {normalized}")
        if normalized == "google" and isinstance(value, dict):
            continue
        if not isinstance(value, str):
            kind = "a string or JSON object" if normalized == "google" else "a string"
            raise ProviderError(
                f"{prefix}Auth field '{key}' must be {kind} for provider {normalized}"
            )
        if not value:  # only "" is missing: blank values pass, as on Sayna
            raise ProviderError(f"{prefix}Auth field '{key}' is required for provider {normalized}")


def apply_pronunciations(
    text: str, pronunciations: Sequence[dict[str, str]], substring_first: bool = False
) -> str:
    """Apply pronunciations in order: whole-word, case-sensitive (``/speak`` also substring)."""
    for item in pronunciations:
        word, replacement = item["word"], item["pronunciation"]
        if not word:
            continue
        if substring_first:
            text = text.replace(word, replacement)
        pattern = re.compile(rf"\b{re.escape(word)}\b")
        text = pattern.sub(replacement.replace("\\", "\\\\"), text)
    return text


#: Providers whose requests carry no speaking rate on Sayna (section 5.2: Deepgram's and
#: Cartesia's only put it in the TTS cache key).
_RATE_IGNORED = ("deepgram", "cartesia")


def speaking_rate_for(provider: str, speaking_rate: Optional[float]) -> float:
    """The speaking rate the engine renders for ``provider`` (section 5.2): Deepgram and
    Cartesia ignore it (1.0); the others get it clamped to 0.25-4.0, Google's clamp on
    Sayna (ElevenLabs and Azure pass it on to the provider, which enforces its own range;
    the local engines clamp); omitted or ``null``: 1.0."""
    if speaking_rate is None or _REAL_PROVIDERS.get(provider.lower()) in _RATE_IGNORED:
        return 1.0
    return clamp_speaking_rate(float(speaking_rate))


def tts_request(config: dict[str, Any], text: str) -> TTSRequest:
    """Build an engine request from a validated ``tts_config`` (pronunciations already applied).

    Server defaults of section 5.2 apply to omitted or ``null`` keys; ``speaking_rate`` as
    :func:`speaking_rate_for`.
    """
    voice_id: Optional[str] = config.get("voice_id")
    audio_format: Optional[str] = config.get("audio_format")
    sample_rate: Optional[int] = config.get("sample_rate")
    return TTSRequest(
        text=text,
        voice_id=voice_id if voice_id is not None else "aura-asteria-en",
        model=str(config.get("model", "")),
        speaking_rate=speaking_rate_for(
            str(config.get("provider", "")), config.get("speaking_rate")
        ),
        audio_format=audio_format if audio_format is not None else "linear16",
        sample_rate=sample_rate if sample_rate is not None else 24000,
    )


def stt_params(
    config: dict[str, Any], stream_id: Optional[str] = None, hint: str = ""
) -> STTParams:
    """Build recogniser parameters from a validated ``stt_config``, the session's id and
    the server's keyword ``hint``."""
    return STTParams(
        stream_id=stream_id,
        language=config["language"],
        sample_rate=config["sample_rate"],
        channels=config["channels"],
        encoding=config["encoding"],
        model=config["model"],
        punctuation=config["punctuation"],
        hint=hint,
    )
