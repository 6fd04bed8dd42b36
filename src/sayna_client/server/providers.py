"""Provider names, provider ``auth`` validation (section 5.3) and TTS request building.

Real provider names are accepted and served by the server's default engine; ``fake``
and ``local`` pick an engine explicitly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Optional

from .engines.base import STTParams, TTSRequest
from .engines.output import content_type_for

__all__ = [
    "ENGINE_PROVIDERS",
    "ProviderError",
    "apply_pronunciations",
    "content_type_for",
    "engine_for_provider",
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


def tts_request(config: dict[str, Any], text: str) -> TTSRequest:
    """Build an engine request from a validated ``tts_config`` (pronunciations already applied).

    Server defaults of section 5.2 apply to omitted or ``null`` keys.
    """
    voice_id: Optional[str] = config.get("voice_id")
    rate = config.get("speaking_rate")
    audio_format: Optional[str] = config.get("audio_format")
    sample_rate: Optional[int] = config.get("sample_rate")
    return TTSRequest(
        text=text,
        voice_id=voice_id if voice_id is not None else "aura-asteria-en",
        model=str(config.get("model", "")),
        speaking_rate=float(rate) if rate is not None else 1.0,
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
