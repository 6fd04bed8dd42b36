"""``sayna serve``'s settings: the real server's configuration file and environment
variables, merged as Sayna merges them.

:func:`load_settings` is what ``sayna serve`` runs, with or without ``--config FILE``;
command-line options then win over what it returns. As on Sayna (config/merge.rs), a
value in the file wins over the environment variable for the same setting, and the
variable over the default. What neither sets keeps the local server's own default
without a file (a bare ``sayna serve`` is unchanged: a SIP trunk at ``127.0.0.1:5060``,
recordings kept in memory); with a file it is missing, as on Sayna started with that file.

The file has the keys of Sayna's own ``config.yaml`` (``config.example.yaml`` in the
server's repository). The local server uses the ones that mean something here and
ignores the rest, as the real server ignores keys it does not know. Each setting, with
its variable:

* ``server.host`` / ``server.port``: file only. ``HOST`` and ``PORT`` are not read (a
  deliberate difference: they usually hold a deployment's ``0.0.0.0``); the local
  server listens on ``127.0.0.1:3001`` unless the file or ``--host`` / ``--port`` says.
* the LiveKit URL reported to clients: ``livekit.public_url``, else
  ``LIVEKIT_PUBLIC_URL`` (what Sayna reports), else ``livekit.url``, else
  ``LIVEKIT_URL``; ``livekit.api_key`` / ``LIVEKIT_API_KEY`` and ``livekit.api_secret``
  / ``LIVEKIT_API_SECRET`` sign LiveKit tokens (random when unset).
* authentication (section 1.6): ``auth.required``, else ``AUTH_REQUIRED`` (``true``,
  ``1``, ``yes`` / ``false``, ``0``, ``no``, any case; anything else reads as false, as
  on Sayna); the secrets, each id a tenant: ``auth.api_secrets`` (``[{id, secret}]``,
  when not empty), else ``AUTH_API_SECRETS_JSON`` (the same list as JSON), else the one
  secret ``auth.api_secret`` or ``AUTH_API_SECRET``, whose tenant is
  ``AUTH_API_SECRET_ID`` (``default`` when unset). Without ``required`` true no
  authentication is asked for, even when secrets are set; with it, a secret is needed
  (the local server has no external auth service: ``AUTH_SERVICE_URL`` is not read).
* SIP: ``sip.room_prefix`` / ``SIP_ROOM_PREFIX``, ``sip.hook_secret`` /
  ``SIP_HOOK_SECRET``, ``sip.outbound_address`` / ``SIP_OUTBOUND_ADDRESS`` (with a file
  and neither, none: ``/sip/call`` answers 500 ``OUTBOUND_ADDRESS_NOT_CONFIGURED``
  unless the request names one), and the hooks ``sip.hooks`` (``[{host, url, auth_id?,
  secret?}]``, when not empty), else ``SIP_HOOKS_JSON`` (the same list as JSON). When
  any ``SIP_*`` variable is set (``SIP_ALLOWED_ADDRESSES`` and
  ``SIP_OUTBOUND_AUTH_USERNAME`` / ``_PASSWORD`` included, which are otherwise unused
  here), a room prefix is required, as Sayna refuses to start without one.
* recording storage (recording.rs ``resolve``): the backend is ``recording.backend``
  (``type: s3`` or ``gcs``), else ``RECORDING_BACKEND`` (``s3``, ``gcs``, ``gcp``,
  ``google``), else the one family of ``RECORDING_S3_*`` / ``RECORDING_GCS_*``
  variables that is set; each field comes from the file, else its variable
  (``RECORDING_S3_BUCKET``, ``_REGION``, ``_ACCESS_KEY``, ``_SECRET_KEY``;
  ``RECORDING_GCS_BUCKET`` and one of ``_CREDENTIALS_PATH`` / ``_CREDENTIALS_JSON``).
  Nothing is uploaded: recordings stay in memory. With a file and no backend there is
  no storage (``enable_recording`` records nothing, ``GET /recording/...`` answers 503).

An empty variable counts as unset (Sayna reads some of them as set to ""). Other
variables (provider keys, ``CACHE_*``, ``AUTH_SERVICE_URL``...) are not read.

:func:`load_settings` refuses these, which the real server refuses to start with, with a
:class:`ConfigError` naming the key or variable and the fix (never a secret's value):
secrets that are not a JSON list of ``{id, secret}`` or have blank, padded or repeated
ids or a repeated secret, authentication required without a secret, hooks that are not
a JSON list of ``{host, url}``, two hooks for one host (ignoring case), a hook without an
``auth_id`` when authentication is required, ``SIP_*`` variables without a room prefix, and a
recording backend that is unknown, ambiguous or incomplete. It does not check what the
local server has no use for, which Sayna checks when it reads a file: a ``sip`` section
of the file may leave out ``room_prefix`` when no ``SIP_*`` variable is set (``sip-``
then), and the allowed addresses, the hooks' secrets and the outbound credentials are
not checked.

JSON files are always read; YAML files need PyYAML (``pip install pyyaml``), which is
not a dependency of this package. The real server also loads a ``.env`` file from its
working directory; ``sayna serve`` does not (export its variables first).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Optional

from ..errors import SaynaValidationError
from .sip import SipHook

__all__ = ["SAYNA_VARIABLES", "ConfigError", "ConfigFileError", "load_config_file", "load_settings"]

_LOG = logging.getLogger(__name__)

#: The variables whose presence makes Sayna infer an S3 recording backend (recording.rs).
_RECORDING_S3_VARIABLES = (
    "RECORDING_S3_BUCKET",
    "RECORDING_S3_REGION",
    "RECORDING_S3_ENDPOINT",
    "RECORDING_S3_ACCESS_KEY",
    "RECORDING_S3_SECRET_KEY",
    "RECORDING_S3_FORCE_PATH_STYLE",
)
#: ... and a GCS one.
_RECORDING_GCS_VARIABLES = (
    "RECORDING_GCS_BUCKET",
    "RECORDING_GCS_CREDENTIALS_PATH",
    "RECORDING_GCS_CREDENTIALS_JSON",
)
#: The variables that make SIP configured on Sayna (merge.rs ``merge_sip_config``).
_SIP_VARIABLES = (
    "SIP_ROOM_PREFIX",
    "SIP_ALLOWED_ADDRESSES",
    "SIP_HOOKS_JSON",
    "SIP_HOOK_SECRET",
    "SIP_OUTBOUND_ADDRESS",
    "SIP_OUTBOUND_AUTH_USERNAME",
    "SIP_OUTBOUND_AUTH_PASSWORD",
)
#: Every Sayna variable :func:`load_settings` reads (HOST and PORT are not).
SAYNA_VARIABLES = (
    "LIVEKIT_URL",
    "LIVEKIT_PUBLIC_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "AUTH_REQUIRED",
    "AUTH_API_SECRETS_JSON",
    "AUTH_API_SECRET",
    "AUTH_API_SECRET_ID",
    *_SIP_VARIABLES,
    "RECORDING_BACKEND",
    *_RECORDING_S3_VARIABLES,
    *_RECORDING_GCS_VARIABLES,
)

#: A configuration file's sections (``server``, ``livekit``, ``auth``, ``sip``,
#: ``recording``), each a mapping (empty when absent).
_Sections = dict[str, dict[str, Any]]


class ConfigError(SaynaValidationError):
    """The configuration (file or environment variables) cannot be used; the message
    names the key or variable and the fix, never a secret's value."""


class ConfigFileError(ConfigError):
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
        except json.JSONDecodeError as exc:
            # Its message and position only: the exception holds the whole text (secrets
            # included), so it is not chained.
            raise ConfigFileError(
                f"config file {path} is not valid JSON: {exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}"
            ) from None
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
        raise ConfigFileError(
            f"config file {path} is not valid YAML: {_yaml_problem(exc)}"
        ) from None


def _yaml_problem(exc: Any) -> str:
    """PyYAML's problem and where it is, without the snippet of the file its message
    quotes (the line of a secret, with a caret under it)."""
    problem = getattr(exc, "problem", None)
    if not isinstance(problem, str) or not problem:
        reason, position = getattr(exc, "reason", None), getattr(exc, "position", None)
        if isinstance(reason, str) and isinstance(position, int):  # yaml.reader.ReaderError
            return f"{reason} (character {position + 1})"
        return f"{type(exc).__name__} (the file's text is not shown: it may hold secrets)"
    mark = getattr(exc, "problem_mark", None)
    line, column = getattr(mark, "line", None), getattr(mark, "column", None)
    if isinstance(line, int) and isinstance(column, int):
        return f"{problem} at line {line + 1}, column {column + 1}"
    return problem


def _read_sections(path: str) -> _Sections:
    file = Path(path)
    data = _parse(file)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {file} must hold a mapping at the top level")
    sections: _Sections = {}
    for name in ("server", "livekit", "auth", "sip", "recording"):
        value = data.get(name)
        if value is not None and not isinstance(value, dict):
            raise ConfigFileError(f"config file {file}: '{name}' must be a mapping")
        sections[name] = value or {}
    return sections


def _string(section: Mapping[str, Any], key: str, where: str) -> Optional[str]:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigFileError(f"{where}.{key} must be a string")
    return value


def _variable(env: Mapping[str, str], name: str) -> Optional[str]:
    """The variable's value; an empty one counts as unset."""
    return env.get(name) or None


def _hooks(
    entries: list[Any],
    where: str,
    error: type[ConfigError],
    auth_required: bool,
    validate: bool = True,
) -> list[SipHook]:
    """Hooks from ``sip.hooks`` or ``SIP_HOOKS_JSON``: each a mapping with a non-empty
    ``host`` and ``url``, and optionally ``auth_id`` and its own ``secret``. With
    ``validate`` (Sayna started with a file: ``from_file`` runs validation.rs
    ``validate_sip_config``; ``from_env`` does not), no host twice ignoring case, and every
    hook with a non-blank ``auth_id`` when authentication is required; without it a later
    hook for the same host replaces the earlier."""
    hooks: list[SipHook] = []
    hosts: dict[str, int] = {}
    for index, entry in enumerate(entries):
        label = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise error(f"{label} must be a mapping with 'host' and 'url'")
        fields = {}
        for key in ("host", "url", "auth_id", "secret"):
            value = entry.get(key)
            if value is not None and not isinstance(value, str):
                raise error(f"{label}.{key} must be a string")
            fields[key] = value
        if not fields["host"] or not fields["url"]:
            raise error(f"{label} needs a non-empty 'host' and 'url'")
        hook = SipHook.normalized(
            str(fields["host"]), str(fields["url"]), fields["auth_id"] or "", fields["secret"]
        )
        if validate and hook.host in hosts:
            raise error(
                f"{label}: host '{hook.host}' is also {where}[{hosts[hook.host]}]'s (ignoring "
                "case): Sayna refuses a duplicate SIP hook host; keep one hook per host"
            )
        if validate and auth_required and not hook.auth_id:
            raise error(
                f"{label} (host '{hook.host}') has no auth_id, which Sayna requires of every "
                "hook when authentication is required: set it to the tenant id of the "
                "hook's calls"
            )
        hosts[hook.host] = index
        hooks.append(hook)
    return hooks


def _json_list(env: Mapping[str, str], name: str, example: str) -> Optional[list[Any]]:
    """The variable as a JSON list (None when unset). The error never shows the value:
    Python's JSON errors give only a position."""
    raw = _variable(env, name)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(
            f"{name} is not valid JSON ({exc}): set it to a list such as {example}"
        ) from None
    if not isinstance(data, list):
        raise ConfigError(f"{name} must be a JSON list such as {example}")
    return data


def _secrets(auth: Mapping[str, Any], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """The ``(tenant id, secret)`` pairs, by Sayna's precedence (merge.rs): the file's
    ``auth.api_secrets`` when not empty, else ``AUTH_API_SECRETS_JSON``, else
    ``auth.api_secret`` or ``AUTH_API_SECRET`` with the id ``AUTH_API_SECRET_ID`` (else
    ``default``). Checked as Sayna checks them (validation.rs
    ``validate_auth_api_secrets``), whether authentication is required or not."""
    listed = auth.get("api_secrets")
    if listed is not None and not isinstance(listed, list):
        raise ConfigFileError("auth.api_secrets must be a list of {id, secret}")
    error: type[ConfigError] = ConfigFileError
    where = "auth.api_secrets"
    if not listed:
        listed = _json_list(env, "AUTH_API_SECRETS_JSON", '[{"id": "tenant-a", "secret": "..."}]')
        error, where = ConfigError, "AUTH_API_SECRETS_JSON"
    if listed is None:
        legacy = _string(auth, "api_secret", "auth") or _variable(env, "AUTH_API_SECRET")
        if legacy is None:
            return []
        tenant = _variable(env, "AUTH_API_SECRET_ID") or "default"
        if tenant != tenant.strip():
            raise ConfigError(
                "AUTH_API_SECRET_ID must not be blank nor start or end with whitespace"
            )
        name = "auth.api_secret" if auth.get("api_secret") else "AUTH_API_SECRET"
        if not legacy.strip():
            raise ConfigError(f"{name} is blank: set the API secret clients send")
        return [(tenant, legacy)]
    pairs: list[tuple[str, str]] = []
    tenants: set[str] = set()
    owners: dict[str, str] = {}
    for index, entry in enumerate(listed):
        label = f"{where}[{index}]"
        if not isinstance(entry, dict):
            raise error(f"{label} must be a mapping with 'id' and 'secret'")
        ident, secret = entry.get("id"), entry.get("secret")
        if (
            not isinstance(ident, str)
            or not isinstance(secret, str)
            or not ident.strip()
            or ident != ident.strip()
            or not secret.strip()
        ):
            raise error(
                f"{label} needs a string 'id' without surrounding whitespace and a non-blank "
                "string 'secret'"
            )
        if ident.lower() in tenants:
            raise error(f"{label}: id '{ident}' is used twice (ignoring case)")
        if secret in owners:
            raise error(
                f"{label}: id '{ident}' has the same secret as id '{owners[secret]}': "
                "give each tenant its own secret"
            )
        tenants.add(ident.lower())
        owners[secret] = ident
        pairs.append((ident, secret))
    return pairs


def _parse_bool(raw: str) -> Optional[bool]:
    """Sayna's ``parse_bool`` (config/utils.rs): any case, no surrounding spaces."""
    value = raw.lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    return None


def _api_keys(
    auth: Mapping[str, Any], env: Mapping[str, str], key_given: bool = False
) -> dict[str, Optional[str]]:
    """The API keys (secret -> tenant id) when authentication is required, else none."""
    required = auth.get("required")
    if required is not None:
        if not isinstance(required, bool):
            raise ConfigFileError("auth.required must be true or false")
        where: str = "auth.required"
    else:
        raw = _variable(env, "AUTH_REQUIRED")
        required = False if raw is None else _parse_bool(raw)
        if required is None:
            _LOG.warning(
                "AUTH_REQUIRED=%r is none of true, false, 1, 0, yes, no: read as false, as "
                "Sayna reads it (no authentication)",
                raw,
            )
            required = False
        where = "AUTH_REQUIRED"
    pairs = _secrets(auth, env)
    if not required:
        return {}
    if not pairs and key_given:
        return {}  # the command line's key (--api-key, SAYNA_API_KEY) is the secret
    if not pairs:
        if where == "auth.required":
            raise ConfigFileError(
                "auth.required is true but no auth.api_secrets or auth.api_secret is set, nor "
                "AUTH_API_SECRETS_JSON or AUTH_API_SECRET (the local server has no external "
                "auth service)"
            )
        raise ConfigError(
            "AUTH_REQUIRED is true but neither AUTH_API_SECRETS_JSON nor AUTH_API_SECRET is "
            "set: set one, or AUTH_REQUIRED=false (the local server has no external auth "
            "service, AUTH_SERVICE_URL is not used)"
        )
    return {secret: tenant for tenant, secret in pairs}


def _sip(
    sip: Mapping[str, Any],
    env: Mapping[str, str],
    kwargs: dict[str, Any],
    file: bool,
    auth_required: bool,
) -> None:
    in_env = [name for name in _SIP_VARIABLES if _variable(env, name)]
    prefix = _string(sip, "room_prefix", "sip")
    if prefix is None:
        prefix = _variable(env, "SIP_ROOM_PREFIX")
    if prefix is None and in_env:
        raise ConfigError(
            f"{in_env[0]} is set but no SIP room prefix, which Sayna requires whenever SIP "
            "is configured: set SIP_ROOM_PREFIX (e.g. SIP_ROOM_PREFIX=sip-) or sip.room_prefix"
        )
    if prefix is not None:
        kwargs["sip_room_prefix"] = prefix
    hook_secret = _string(sip, "hook_secret", "sip")
    if hook_secret is None:
        hook_secret = _variable(env, "SIP_HOOK_SECRET")
    if hook_secret is not None:
        kwargs["hook_secret"] = hook_secret
    outbound = _string(sip, "outbound_address", "sip") or _variable(env, "SIP_OUTBOUND_ADDRESS")
    if outbound or file:  # with a file and neither, none (not the local default trunk)
        kwargs["sip_outbound_address"] = outbound
    entries = sip.get("hooks")
    if entries is not None and not isinstance(entries, list):
        raise ConfigFileError("sip.hooks must be a list")
    if entries:
        hooks = _hooks(entries, "sip.hooks", ConfigFileError, auth_required)
    else:
        example = '[{"host": "sip.example.com", "url": "https://example.com/sip"}]'
        listed = _json_list(env, "SIP_HOOKS_JSON", example) or []
        hooks = _hooks(listed, "SIP_HOOKS_JSON", ConfigError, auth_required, validate=file)
    if hooks:
        kwargs["sip_hooks"] = hooks


def _settings(
    sections: Optional[_Sections], env: Mapping[str, str], key_given: bool = False
) -> dict[str, Any]:
    """Everything but the recording storage: the file's values over the variables'."""
    file = sections is not None
    get: _Sections = sections or {}
    kwargs: dict[str, Any] = {}
    server = get.get("server", {})
    host = _string(server, "host", "server")
    if host:
        kwargs["host"] = host
    port = server.get("port")
    if port is not None:
        if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
            raise ConfigFileError("server.port must be a port number (0-65535)")
        kwargs["port"] = port
    livekit = get.get("livekit", {})
    url = (
        _string(livekit, "public_url", "livekit")
        or _variable(env, "LIVEKIT_PUBLIC_URL")
        or _string(livekit, "url", "livekit")
        or _variable(env, "LIVEKIT_URL")
    )
    if url:
        kwargs["livekit_url"] = url
    for key in ("api_key", "api_secret"):
        value = _string(livekit, key, "livekit")
        if value is None:
            value = _variable(env, f"LIVEKIT_{key.upper()}")
        if value is not None:
            kwargs[f"livekit_{key}"] = value
    keys = _api_keys(get.get("auth", {}), env, key_given)  # empty unless auth is required
    if keys:
        kwargs["api_keys"] = keys
    _sip(get.get("sip", {}), env, kwargs, file, auth_required=bool(keys))
    return kwargs


def load_settings(
    config: Optional[str] = None,
    environ: Optional[Mapping[str, str]] = None,
    *,
    key_given: bool = False,
) -> dict[str, Any]:
    """The local server's settings from a Sayna configuration file and Sayna's
    environment variables, merged and checked as the real server does (see the module's
    documentation for each key and variable).

    Args:
        config: a ``.json`` file, or a YAML file when PyYAML is installed; ``None``: the
            environment alone (``sayna serve`` without ``--config``).
        environ: the environment (default ``os.environ``).
        key_given: the command line gives a key (``sayna serve --api-key`` or
            ``SAYNA_API_KEY``): authentication required with no secret is then not
            refused (that key is the secret).

    Returns:
        :class:`~.app.LocalServer` keyword arguments, only those set (``host``, ``port``,
        ``livekit_url``, ``livekit_api_key``, ``livekit_api_secret``, ``api_keys``,
        ``sip_room_prefix``, ``hook_secret``, ``sip_outbound_address``, ``sip_hooks``,
        ``recording_storage``); with a file, always ``sip_outbound_address`` (``None``
        when neither the file nor ``SIP_OUTBOUND_ADDRESS`` sets one) and
        ``recording_storage``.

    Raises:
        ConfigFileError: the file is unreadable, has bad syntax (or is YAML without
            PyYAML), or a key of the wrong type or value.
        ConfigError: a variable, or the file and the variables together, make a
            configuration the real server refuses to start with.
    """
    env = os.environ if environ is None else environ
    sections = None if config is None else _read_sections(config)
    kwargs = _settings(sections, env, key_given)
    storage = _recording_backend((sections or {}).get("recording", {}), env) is not None
    if storage or sections is not None:
        kwargs["recording_storage"] = storage
    return kwargs


def load_config_file(path: str, environ: Optional[Mapping[str, str]] = None) -> dict[str, Any]:
    """Read a Sayna configuration file alone into :class:`~.app.LocalServer` keyword
    arguments. ``sayna serve`` uses :func:`load_settings`, which also reads the other
    variables and checks the recording backend as Sayna does.

    Args:
        path: a ``.json`` file, or a YAML file when PyYAML is installed.
        environ: the environment (default ``os.environ``); only ``SIP_OUTBOUND_ADDRESS``
            and whether the ``RECORDING_*`` variables select a backend are read.

    Returns:
        The arguments the file sets (``host``, ``port``, ``livekit_url``,
        ``livekit_api_key``, ``livekit_api_secret``, ``api_keys``, ``sip_room_prefix``,
        ``hook_secret``, ``sip_hooks``), and always ``sip_outbound_address``: the file's,
        else ``SIP_OUTBOUND_ADDRESS``, else ``None`` (not the local default trunk, which
        Sayna started with this file would not have), and ``recording_storage``: whether
        the file's ``recording.backend`` or the environment selects a backend (not
        whether that backend is complete).

    Raises:
        ConfigFileError: unreadable file, bad syntax, YAML without PyYAML, or a key of
            the wrong type.
    """
    env = os.environ if environ is None else environ
    sections = _read_sections(path)
    kwargs = _settings(sections, {})
    kwargs["sip_outbound_address"] = kwargs["sip_outbound_address"] or _variable(
        env, "SIP_OUTBOUND_ADDRESS"
    )
    kwargs["recording_storage"] = _recording_selected(sections["recording"], env)
    return kwargs


def _recording_selected(recording: Mapping[str, Any], env: Mapping[str, str]) -> bool:
    """Whether the file's ``recording.backend``, else ``RECORDING_BACKEND`` (not blank),
    else any ``RECORDING_S3_*`` / ``RECORDING_GCS_*`` variable selects a backend. A
    ``recording`` section with only a ``prefix`` leaves recording off, as on Sayna."""
    if recording.get("backend") is not None:
        return True
    if env.get("RECORDING_BACKEND", "").strip():
        return True
    return any(name in env for name in (*_RECORDING_S3_VARIABLES, *_RECORDING_GCS_VARIABLES))


#: Sayna's names for the two backends (recording.rs ``BackendKind::parse``).
_BACKEND_NAMES = {"s3": "s3", "gcs": "gcs", "gcp": "gcs", "google": "gcs"}


def _recording_backend(recording: Mapping[str, Any], env: Mapping[str, str]) -> Optional[str]:
    """The recording backend Sayna would resolve (``"s3"``, ``"gcs"``) or ``None``, as
    recording.rs ``RecordingYaml::resolve`` does: the file's ``recording.backend.type``,
    else ``RECORDING_BACKEND``, else inferred from the ``RECORDING_S3_*`` /
    ``RECORDING_GCS_*`` variables; then each required field from the file, else its
    variable. A ``prefix`` alone selects no backend.

    Raises:
        ConfigError: an unknown or ambiguous backend, the file and the variables
            selecting different ones, or a required field missing.
    """
    backend = recording.get("backend")
    file_kind: Optional[str] = None
    fields: Mapping[str, Any] = {}
    if backend is not None:
        if not isinstance(backend, dict) or backend.get("type") not in ("s3", "gcs"):
            raise ConfigFileError(
                "recording.backend must be a mapping whose 'type' is 's3' or 'gcs'"
            )
        file_kind, fields = backend["type"], backend
    chosen = (_variable(env, "RECORDING_BACKEND") or "").strip()
    env_kind: Optional[str] = None
    if chosen:
        env_kind = _BACKEND_NAMES.get(chosen.lower())
        if env_kind is None:
            raise ConfigError(
                f"RECORDING_BACKEND {chosen.lower()!r} is not a recording backend: set it to "
                "s3 or gcs (or unset it)"
            )
    else:
        s3 = any(_variable(env, name) for name in _RECORDING_S3_VARIABLES)
        gcs = any(_variable(env, name) for name in _RECORDING_GCS_VARIABLES)
        if s3 and gcs:
            raise ConfigError(
                "both RECORDING_S3_* and RECORDING_GCS_* variables are set, so the recording "
                "backend is ambiguous: set RECORDING_BACKEND to s3 or gcs"
            )
        env_kind = "s3" if s3 else "gcs" if gcs else None
    if file_kind is not None and env_kind is not None and file_kind != env_kind:
        raise ConfigError(
            f"recording.backend.type is '{file_kind}' but the RECORDING_* variables select "
            f"'{env_kind}': make them agree (or unset the variables)"
        )
    kind = file_kind or env_kind
    if kind is None:
        return None
    where = f"recording.{kind}"

    def field(key: str) -> Optional[str]:
        value = fields.get(key)
        if value is None:
            return _variable(env, f"RECORDING_{kind.upper()}_{key.upper()}")
        if not isinstance(value, str):
            raise ConfigFileError(f"recording.backend.{key} must be a string")
        return value or None

    required = ("bucket", "region", "access_key", "secret_key") if kind == "s3" else ("bucket",)
    for key in required:
        if field(key) is None:
            raise ConfigError(
                f"{where} backend is missing required field '{key}': set "
                f"recording.backend.{key} or RECORDING_{kind.upper()}_{key.upper()}"
            )
    if kind == "s3":
        if not isinstance(fields.get("force_path_style", False), bool):
            raise ConfigFileError("recording.backend.force_path_style must be true or false")
        return kind
    path, inline = field("credentials_path"), field("credentials_json")
    if path is not None and inline is not None:
        raise ConfigError(
            f"{where} backend accepts at most one of credentials_path "
            "(RECORDING_GCS_CREDENTIALS_PATH) or credentials_json "
            "(RECORDING_GCS_CREDENTIALS_JSON): remove one"
        )
    if path is None and inline is None:
        raise ConfigError(
            f"{where} backend requires credentials_path (RECORDING_GCS_CREDENTIALS_PATH) or "
            "credentials_json (RECORDING_GCS_CREDENTIALS_JSON): set one"
        )
    if path is not None:
        try:
            Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the GCS service account file {path} "
                f"(RECORDING_GCS_CREDENTIALS_PATH / credentials_path): {exc.strerror or exc}"
            ) from exc
    return kind
