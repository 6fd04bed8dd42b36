"""``sayna serve --config FILE``: the real server's configuration file, read locally.

The file has the keys of Sayna's own ``config.yaml`` (``config.example.yaml`` in the
server's repository). The local server uses the ones that mean something here and
ignores the rest, as the real server ignores keys it does not know:

* ``server.host`` / ``server.port``
* ``livekit.public_url`` (else ``livekit.url``): the URL reported to clients;
  ``livekit.api_key`` / ``livekit.api_secret`` sign LiveKit tokens
* ``auth.required`` with ``auth.api_secrets`` (``[{id, secret}]``, each id a tenant)
  or the legacy ``auth.api_secret`` (tenant ``default``); without ``required: true``
  no authentication is asked for, even when secrets are listed (section 1.6)
* ``sip.room_prefix``, ``sip.outbound_address``, ``sip.hook_secret`` and
  ``sip.hooks`` (``[{host, url, auth_id?, secret?}]``); without ``sip.outbound_address``
  the ``SIP_OUTBOUND_ADDRESS`` environment variable, as Sayna merges them (YAML first,
  merge.rs:334-336), and without either none: ``/sip/call`` then answers 500
  ``OUTBOUND_ADDRESS_NOT_CONFIGURED`` unless the request names one
* ``recording.backend``: recording storage (none is used: recordings stay in memory).
  Without it, and without the ``RECORDING_*`` variables that pick a backend
  (``RECORDING_BACKEND``, ``RECORDING_S3_*``, ``RECORDING_GCS_*``; recording.rs
  ``resolve``), there is no storage: ``enable_recording`` records nothing and
  ``GET /recording/...`` answers 503

JSON files are always read; YAML files need PyYAML (``pip install pyyaml``), which is
not a dependency of this package.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from ..errors import SaynaValidationError
from .sip import SipHook

__all__ = ["ConfigFileError", "load_config_file"]

#: The variables whose presence makes Sayna infer a recording backend (recording.rs:428-449).
_RECORDING_BACKEND_VARIABLES = (
    "RECORDING_S3_BUCKET",
    "RECORDING_S3_REGION",
    "RECORDING_S3_ENDPOINT",
    "RECORDING_S3_ACCESS_KEY",
    "RECORDING_S3_SECRET_KEY",
    "RECORDING_S3_FORCE_PATH_STYLE",
    "RECORDING_GCS_BUCKET",
    "RECORDING_GCS_CREDENTIALS_PATH",
    "RECORDING_GCS_CREDENTIALS_JSON",
)


class ConfigFileError(SaynaValidationError):
    """The configuration file cannot be used; the message names the file and the key."""


def _read_text(path: Path) -> str:
    """The file as text: UTF-8, with or without the byte-order mark some Windows editors
    write first."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigFileError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if data.startswith((b"\xff\xfe", b"\xfe\xff")):
            found = "it is UTF-16, as some Windows editors save"
        else:
            found = f"byte 0x{data[exc.start]:02x} at offset {exc.start} is not UTF-8"
        raise ConfigFileError(
            f"config file {path} is not UTF-8 text ({found}): save it as UTF-8"
        ) from exc


def _parse(path: Path) -> Any:
    text = _read_text(path)
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise ConfigFileError(f"config file {path} is not valid JSON: {exc}") from exc
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError as exc:
        raise ConfigFileError(
            f"config file {path} looks like YAML, which needs PyYAML: pip install pyyaml "
            "(or write the same keys as JSON)"
        ) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigFileError(f"config file {path} is not valid YAML: {exc}") from exc


def _section(data: dict[str, Any], name: str, path: Path) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigFileError(f"config file {path}: '{name}' must be a mapping")
    return value


def _string(section: dict[str, Any], key: str, where: str) -> Optional[str]:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigFileError(f"{where}.{key} must be a string")
    return value


def _hooks(sip: dict[str, Any], where: str) -> list[SipHook]:
    entries = sip.get("hooks") or []
    if not isinstance(entries, list):
        raise ConfigFileError(f"{where}.hooks must be a list")
    hooks = []
    for index, entry in enumerate(entries):
        label = f"{where}.hooks[{index}]"
        if not isinstance(entry, dict):
            raise ConfigFileError(f"{label} must be a mapping with 'host' and 'url'")
        host, url = _string(entry, "host", label), _string(entry, "url", label)
        if not host or not url:
            raise ConfigFileError(f"{label} needs a non-empty 'host' and 'url'")
        hooks.append(
            SipHook.normalized(
                host, url, _string(entry, "auth_id", label) or "", _string(entry, "secret", label)
            )
        )
    return hooks


def _api_keys(auth: dict[str, Any], where: str) -> dict[str, Optional[str]]:
    required = auth.get("required", False)
    if not isinstance(required, bool):
        raise ConfigFileError(f"{where}.required must be true or false")
    if not required:
        return {}
    keys: dict[str, Optional[str]] = {}
    secrets = auth.get("api_secrets") or []
    if not isinstance(secrets, list):
        raise ConfigFileError(f"{where}.api_secrets must be a list of {{id, secret}}")
    seen: set[str] = set()
    for index, entry in enumerate(secrets):
        label = f"{where}.api_secrets[{index}]"
        if not isinstance(entry, dict):
            raise ConfigFileError(f"{label} must be a mapping with 'id' and 'secret'")
        tenant, secret = _string(entry, "id", label), _string(entry, "secret", label)
        if not tenant or tenant != tenant.strip() or not secret:
            raise ConfigFileError(
                f"{label} needs an 'id' without surrounding whitespace and a 'secret'"
            )
        if tenant.lower() in seen:
            raise ConfigFileError(f"{label}: id '{tenant}' is used twice (ignoring case)")
        seen.add(tenant.lower())
        keys[secret] = tenant
    legacy = _string(auth, "api_secret", where)
    if not keys and legacy:
        keys[legacy] = "default"
    if not keys:
        raise ConfigFileError(
            f"{where}.required is true but no auth.api_secrets or auth.api_secret is set "
            "(the local server has no external auth service)"
        )
    return keys


def load_config_file(path: str, environ: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """Read a Sayna configuration file into :class:`~.app.LocalServer` keyword arguments.

    Args:
        path: a ``.json`` file, or a YAML file when PyYAML is installed.
        environ: the environment Sayna would merge under the file (default
            ``os.environ``); only ``SIP_OUTBOUND_ADDRESS`` and the ``RECORDING_*``
            variables that select a backend are read.

    Returns:
        The arguments the file sets (``host``, ``port``, ``livekit_url``,
        ``livekit_api_key``, ``livekit_api_secret``, ``api_keys``, ``sip_room_prefix``,
        ``hook_secret``, ``sip_hooks``), and always ``sip_outbound_address``: the file's,
        else ``SIP_OUTBOUND_ADDRESS``, else ``None`` (not the local default trunk, which
        Sayna started with this file would not have), and ``recording_storage``: whether
        the file's ``recording.backend`` or the environment selects a backend.

    Raises:
        ConfigFileError: unreadable file, bad syntax, YAML without PyYAML, or a key of
            the wrong type.
    """
    file = Path(path)
    data = _parse(file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {file} must hold a mapping at the top level")
    kwargs: dict[str, Any] = {}
    server = _section(data, "server", file)
    host = _string(server, "host", "server")
    if host:
        kwargs["host"] = host
    port = server.get("port")
    if port is not None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigFileError("server.port must be a port number (0-65535)")
        kwargs["port"] = port
    livekit = _section(data, "livekit", file)
    url = _string(livekit, "public_url", "livekit") or _string(livekit, "url", "livekit")
    if url:
        kwargs["livekit_url"] = url
    for key in ("api_key", "api_secret"):
        value = _string(livekit, key, "livekit")
        if value is not None:
            kwargs[f"livekit_{key}"] = value
    keys = _api_keys(_section(data, "auth", file), "auth")
    if keys:
        kwargs["api_keys"] = keys
    sip = _section(data, "sip", file)
    for key, argument in (("room_prefix", "sip_room_prefix"), ("hook_secret", "hook_secret")):
        value = _string(sip, key, "sip")
        if value is not None:
            kwargs[argument] = value
    env = os.environ if environ is None else environ
    outbound = _string(sip, "outbound_address", "sip")
    kwargs["sip_outbound_address"] = outbound or env.get("SIP_OUTBOUND_ADDRESS") or None
    hooks = _hooks(sip, "sip")
    if hooks:
        kwargs["sip_hooks"] = hooks
    kwargs["recording_storage"] = _recording_storage(_section(data, "recording", file), env)
    return kwargs


def _recording_storage(recording: dict[str, Any], env: Mapping[str, str]) -> bool:
    """Whether Sayna would have a recording backend: the file's ``recording.backend``,
    else ``RECORDING_BACKEND`` (not blank), else any ``RECORDING_S3_*`` /
    ``RECORDING_GCS_*`` variable. A ``recording`` section with only a ``prefix`` leaves
    recording off, as on Sayna."""
    if recording.get("backend") is not None:
        return True
    if env.get("RECORDING_BACKEND", "").strip():
        return True
    return any(name in env for name in _RECORDING_BACKEND_VARIABLES)
