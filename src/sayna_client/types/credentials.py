"""Google credentials given as a local file path, resolved on the client.

The server accepts Google ``credentials`` as JSON text, a JSON object, or a path *on
the server*. sayna-client 0.0.18 also let users pass a path on the *client*: these
helpers keep that working. :meth:`SaynaClient.connect` applies the lenient form (a
string that is neither JSON nor a readable local file is sent unchanged, as a server
path); the public functions keep 0.0.18's strict behaviour.
"""

import json
from pathlib import Path
from typing import Any, Dict, Optional, TypeVar, Union, overload

from ..errors import SaynaValidationError
from .config import GoogleAuth, STTConfig, TTSConfig

__all__ = ["load_local_google_credentials", "resolve_config_auth", "resolve_google_credentials"]

C = TypeVar("C", STTConfig, TTSConfig)


def _parse_object(text: str, source: str) -> Dict[str, Any]:
    try:
        parsed = json.loads(text)
    except ValueError as exc:
        raise SaynaValidationError(f"Google credentials {source} is not valid JSON") from exc
    if not isinstance(parsed, dict):
        raise SaynaValidationError(
            f"Google credentials {source} must be a JSON object, got {type(parsed).__name__}"
        )
    return parsed


def resolve_google_credentials(credentials: Union[str, Dict[str, Any]]) -> Dict[str, Any]:
    """Return Google service-account credentials as a dict.

    A dict is returned as is; a string is parsed as JSON, else read as a local file
    path holding JSON.

    Raises:
        SaynaValidationError: the string is neither JSON nor a readable JSON file.
    """
    if isinstance(credentials, dict):
        return credentials
    stripped = credentials.strip()
    if stripped.startswith(("{", "[")):
        return _parse_object(stripped, "text")
    try:
        content = Path(credentials).read_text(encoding="utf-8")
    except OSError as exc:
        raise SaynaValidationError(
            "Google credentials are neither JSON text nor a readable local file; pass the "
            "service-account JSON, a dict, or a path this machine can read"
        ) from exc
    return _parse_object(content, "file")


@overload
def resolve_config_auth(config: None) -> None: ...
@overload
def resolve_config_auth(config: C) -> C: ...
def resolve_config_auth(config: Optional[C]) -> Optional[C]:
    """``config`` with Google ``auth.credentials`` given as text or a path turned into a
    dict (strict: see :func:`resolve_google_credentials`); other configs unchanged."""
    if config is None or not isinstance(config.auth, GoogleAuth):
        return config
    if not isinstance(config.auth.credentials, str):
        return config
    resolved = resolve_google_credentials(config.auth.credentials)
    return config.model_copy(update={"auth": GoogleAuth(credentials=resolved)})


def load_local_google_credentials(config: Optional[C]) -> Optional[C]:
    """Lenient form used by ``connect()``: read ``auth.credentials`` when it names a local
    file; leave anything else (JSON text, a server-side path) to the server. Blocking
    file I/O: call it in a worker thread."""
    if config is None or not isinstance(config.auth, GoogleAuth):
        return config
    credentials = config.auth.credentials
    if not isinstance(credentials, str) or credentials.strip().startswith("{"):
        return config
    path = Path(credentials)
    if not path.is_file():
        return config
    parsed = _parse_object(path.read_text(encoding="utf-8"), "file")
    return config.model_copy(update={"auth": GoogleAuth(credentials=parsed)})
