"""Provider checks the real server makes while a ``config`` starts (protocol section 6.11).

The local server serves every real provider name with its own engine, but an app must
see the same refusals it would get from Sayna: the error text, and no ``ready``. Each
check runs in the real server's order: provider objects are built TTS first, then STT
(``Failed to create voice manager: ...``); then they are started, STT first, then TTS
(``Failed to start voice manager: ...``). The local server holds server credentials
for every provider (with a Google ``project_id``), so only values a request carries
itself can fail here.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from ..protocol import encodings

__all__ = [
    "CARTESIA_STT_RATES",
    "DEEPGRAM_ENCODINGS",
    "GOOGLE_PROJECT_REQUIRED",
    "ConfigRejected",
    "check_voice_config",
    "tts_build_error",
]

#: Cartesia STT's accepted ``sample_rate`` values (stt/cartesia/config.rs:40).
CARTESIA_STT_RATES = (8000, 16000, 22050, 24000, 44100, 48000)
#: Encodings Deepgram's streaming API accepts (from the one table,
#: ``protocol.encodings``); any other makes Deepgram refuse the socket, which Sayna
#: reports as a generic connection failure (section 6.11).
DEEPGRAM_ENCODINGS = encodings.DEEPGRAM_ENCODINGS
GOOGLE_PROJECT_REQUIRED = (
    "Google Cloud project_id is required. Provide it either:\n"
    "1. In the model field as 'project_id:model_name'\n"
    "2. In the service account credentials JSON (project_id field)"
)
_NO_TTS_PROJECT = (
    "Failed to extract project_id from Google Cloud credentials. Ensure the credentials "
    "file contains a valid project_id field."
)


class ConfigRejected(Exception):
    """A fatal ``config`` refusal; ``str()`` is the exact ``error.message``."""


def _normalized(provider: str) -> str:
    name = provider.strip().lower()
    return "azure" if name == "microsoft-azure" else name


def _google_credentials(auth: Any) -> tuple[Optional[dict[str, Any]], Optional[str]]:
    """Read ``auth.credentials`` as Sayna does: (the JSON object or ``None``, the
    configuration error text or ``None``). No ``auth`` = the server's credentials."""
    if not isinstance(auth, dict) or not auth:
        return {"project_id": "local-project"}, None
    value = auth.get("credentials")
    if isinstance(value, dict):
        return value, None
    text = str(value).strip()
    if text.startswith("{"):
        if not text.endswith("}"):
            return None, "Invalid JSON content: must be a JSON object"
        try:
            parsed = json.loads(text)
        except ValueError as exc:
            return None, f"Invalid JSON content: {exc}"
        if not isinstance(parsed, dict):
            return None, "Invalid JSON content: must be a JSON object"
        return parsed, None
    if ".." in text:
        return None, "Invalid credential file path: path traversal not allowed"
    if not os.path.isfile(text):
        return None, f"Credential file not found: {text}"
    try:
        with open(text, encoding="utf-8") as handle:
            parsed = json.load(handle)
    except (OSError, ValueError) as exc:
        return None, f"Invalid JSON content: {exc}"
    return (parsed if isinstance(parsed, dict) else None), None


def _project_id(credentials: Optional[dict[str, Any]]) -> Optional[str]:
    value = credentials.get("project_id") if credentials is not None else None
    return value if isinstance(value, str) and value.strip() else None


def tts_build_error(config: dict[str, Any]) -> Optional[str]:
    """Why the real server cannot build this ``tts_config``'s provider (the ``<detail>``
    of ``TTS error: <detail>``, e.g. ``Invalid configuration: ...``), or ``None``."""
    if _normalized(config["provider"]) != "google":
        return None
    credentials, problem = _google_credentials(config.get("auth"))
    if problem is not None:
        return f"Invalid configuration: {problem}"
    if _project_id(credentials) is None:
        return f"Invalid configuration: {_NO_TTS_PROJECT}"
    return None


def _create_stt(provider: str, config: dict[str, Any]) -> None:
    if provider != "google":
        return
    prefix = "Failed to create voice manager: STT error: Configuration error: "
    credentials, problem = _google_credentials(config.get("auth"))
    project, sep, _model = str(config.get("model", "")).partition(":")
    if not (sep and project.strip()) and _project_id(credentials) is None:
        raise ConfigRejected(prefix + GOOGLE_PROJECT_REQUIRED)
    if problem is not None:
        raise ConfigRejected(prefix + problem)


def _start_stt(provider: str, config: dict[str, Any]) -> None:
    prefix = "Failed to start voice manager: STT error: "
    if provider == "cartesia":
        rate = config["sample_rate"]
        if rate not in CARTESIA_STT_RATES:
            rates = ", ".join(str(r) for r in CARTESIA_STT_RATES)
            raise ConfigRejected(
                f"{prefix}Configuration error: Unsupported sample rate: {rate}. "
                f"Supported rates: [{rates}]"
            )
        if config["language"] == "":
            raise ConfigRejected(f"{prefix}Configuration error: Language code is required")
    elif provider == "deepgram" and config["encoding"] not in DEEPGRAM_ENCODINGS:
        # Deepgram answers the socket upgrade with 400; Sayna only logs the reason.
        raise ConfigRejected(f"{prefix}Connection failed: Connection channel closed")


def check_voice_config(stt_config: dict[str, Any], tts_config: dict[str, Any]) -> None:
    """Run the provider build and start checks of section 6.11 for real provider names
    (``fake`` and ``local`` are not checked); provider names and ``auth`` objects are
    checked before this (:mod:`.providers`).

    Raises:
        ConfigRejected: the first failing check, with the real server's text.
    """
    stt = _normalized(stt_config["provider"])
    detail = tts_build_error(tts_config)
    if detail is not None:
        raise ConfigRejected(f"Failed to create voice manager: TTS error: {detail}")
    _create_stt(stt, stt_config)
    _start_stt(stt, stt_config)
