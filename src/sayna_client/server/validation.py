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
from dataclasses import dataclass
from typing import Any, Optional

from ..protocol import encodings
from .serde import SerdeError, describe
from .serde_json import parse_checked

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
    name = provider.lower()
    return "azure" if name == "microsoft-azure" else name


#: Fields of google-cloud-auth 1.3.0's credential structs, in declaration order:
#: (name, required). ``ServiceAccountKey`` (service_account.rs) reads inline JSON and
#: ``service_account`` files, ``AuthorizedUser`` (user_account.rs) ``authorized_user``
#: files; each is read with ``serde_json::from_value``.
_SERVICE_ACCOUNT = (
    ("client_email", True),
    ("private_key_id", True),
    ("private_key", True),
    ("project_id", True),
    ("universe_domain", False),
)
_AUTHORIZED_USER = (
    ("type", True),
    ("client_id", True),
    ("client_secret", True),
    ("refresh_token", True),
    ("token_uri", False),
    ("quota_project_id", False),
)


@dataclass(frozen=True)
class _GoogleError:
    """A ``GoogleError`` of providers/google/auth.rs: ``configuration`` (else an
    authentication failure) and its text."""

    configuration: bool
    text: str


def _credentials_text(auth: Any) -> Optional[str]:
    """``auth.credentials`` as Sayna passes it to Google's provider (an object becomes
    its JSON text); ``None``: the server's credentials (no ``auth``, or ``{}``)."""
    if not isinstance(auth, dict) or not auth:
        return None
    value = auth.get("credentials")
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)
    return str(value)


def _parse(text: str) -> Any:
    """``text`` as serde_json reads it; raises :class:`SerdeError`."""
    return parse_checked(text, lambda value, ends: None)


def _read_file(path: str) -> tuple[Optional[str], Optional[str]]:
    """``std::fs::read_to_string``: (the text, or ``None`` and io::Error's display)."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return None, f"{exc.strerror} (os error {exc.errno})"
    except ValueError:  # a NUL in the path (Rust cannot open it either)
        return None, "file name contained an unexpected NUL byte"
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        return None, "stream did not contain valid UTF-8"


def _struct_problem(value: Any, name: str, fields: tuple[tuple[str, bool], ...]) -> Optional[str]:
    """serde's error for ``serde_json::from_value`` of ``value`` into a struct of string
    fields (``Option<String>`` when not required): wrong types in key order (serde_json's
    maps are sorted), then the first missing field; no position (a ``Value`` has none)."""
    if not isinstance(value, dict):
        return f"invalid type: {describe(value)}, expected struct {name}"
    required = dict(fields)
    for key in sorted(value):
        if key not in required:
            continue
        item = value[key]
        if not isinstance(item, str) and not (item is None and not required[key]):
            return f"invalid type: {describe(item)}, expected a string"
    for field_name, needed in fields:
        if needed and field_name not in value:
            return f"missing field `{field_name}`"
    return None


def _google_auth_error(text: str) -> Optional[_GoogleError]:
    """What ``GoogleAuthClient::new`` says of the credentials ``text`` (auth.rs:98-351),
    ``None`` when it builds credentials from them."""
    if text.lstrip().startswith("{"):
        if not text.rstrip().endswith("}"):
            return _GoogleError(True, "Invalid JSON content: must be a JSON object")
        try:
            value = _parse(text)
        except SerdeError as exc:
            return _GoogleError(True, f"Invalid JSON content: {exc.located(text)}")
        problem = _struct_problem(value, "ServiceAccountKey", _SERVICE_ACCOUNT)
        if problem is not None:
            return _GoogleError(
                False,
                "Failed to initialize credentials from JSON content: cannot parse the "
                f"credentials file {problem}",
            )
        return None
    if ".." in text:
        return _GoogleError(True, "Invalid credential file path: path traversal not allowed")
    try:
        exists = os.path.exists(text)
    except ValueError:  # a NUL in the path: Rust's exists() is false too
        exists = False
    if not exists:
        return _GoogleError(True, f"Credential file not found: {text}")
    content, io_error = _read_file(text)
    if content is None:
        return _GoogleError(True, f"Failed to read credentials file '{text}': {io_error}")
    try:
        value = _parse(content)
    except SerdeError as exc:
        return _GoogleError(
            True, f"Failed to parse credentials file '{text}': {exc.located(content)}"
        )
    kind = value.get("type") if isinstance(value, dict) else None
    kind = kind if isinstance(kind, str) else "unknown"
    if kind == "service_account":
        problem = _struct_problem(value, "ServiceAccountKey", _SERVICE_ACCOUNT)
        account = "service account"
    elif kind == "authorized_user":
        problem = _struct_problem(value, "AuthorizedUser", _AUTHORIZED_USER)
        account = "user account"
    else:
        return _GoogleError(
            True,
            f"Unsupported credential type '{kind}' in file '{text}'. Expected "
            "'service_account' or 'authorized_user'",
        )
    if problem is None:
        return None
    return _GoogleError(
        False,
        f"Failed to load {account} credentials from '{text}': cannot parse the credentials "
        f"file {problem}",
    )


def _project_id(text: Optional[str]) -> Optional[str]:
    """``CredentialSource::extract_project_id``: the ``project_id`` string of the
    credentials JSON (inline or in the file), else ``None``; the server's own
    credentials have one."""
    if text is None:
        return "local-project"
    if not text.lstrip().startswith("{"):
        text, _ = _read_file(text)
        if text is None:
            return None
    try:
        value = _parse(text)
    except SerdeError:
        return None
    project = value.get("project_id") if isinstance(value, dict) else None
    return project if isinstance(project, str) else None


def tts_build_error(config: dict[str, Any]) -> Optional[str]:
    """Why the real server cannot build this ``tts_config``'s provider (the ``<detail>``
    of ``TTS error: <detail>``, e.g. ``Invalid configuration: ...``), or ``None``.

    Google TTS (tts/google/provider.rs:68-131, 529-544): the credentials are checked
    and built first, then a ``project_id`` must be in them (``model`` cannot give one).
    """
    if _normalized(config["provider"]) != "google":
        return None
    text = _credentials_text(config.get("auth"))
    problem = _google_auth_error(text) if text is not None else None
    if problem is not None:
        if problem.configuration:
            return f"Invalid configuration: {problem.text}"
        return f"Connection failed: Google Cloud authentication failed: {problem.text}"
    if _project_id(text) is None:
        return f"Invalid configuration: {_NO_TTS_PROJECT}"
    return None


def _create_stt(provider: str, config: dict[str, Any]) -> None:
    """Google STT (stt/google/provider.rs:416-437): a project id from the ``model``'s
    part before its first ``:`` when it has one, else from the credentials; then the
    credentials are checked and built."""
    if provider != "google":
        return
    prefix = "Failed to create voice manager: STT error: "
    text = _credentials_text(config.get("auth"))
    project, sep, _model = config["model"].partition(":")
    if not sep:
        project = _project_id(text) or ""
    if not project:
        raise ConfigRejected(f"{prefix}Configuration error: {GOOGLE_PROJECT_REQUIRED}")
    problem = _google_auth_error(text) if text is not None else None
    if problem is not None:
        kind = "Configuration error" if problem.configuration else "Authentication failed"
        raise ConfigRejected(f"{prefix}{kind}: {problem.text}")


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
