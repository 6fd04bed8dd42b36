"""``sayna serve --config`` and Sayna's variables: a file with bad syntax is reported
without quoting the file (its lines hold secrets), and SIP hooks Sayna refuses to start
with are refused (config/validation.rs ``validate_sip_config``: a duplicate host, ignoring
case; a hook without ``auth_id`` when authentication is required), in one line with exit
status 2, from the file and from ``SIP_HOOKS_JSON`` alike.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import pytest

from helpers.serve import serve_refusal as refused
from sayna_client.server import config_file

SECRET = "sk-live-SECRET123"
HOOK_SECRET = "hook-secret-0123456789"
#: Sayna's variables, emptied for the subprocesses (empty counts as unset).
CLEAN = {name: "" for name in config_file.SAYNA_VARIABLES}


async def serve_refusal(*args: str, env: Optional[dict[str, str]] = None) -> tuple[int, str, str]:
    """Run ``sayna serve --port 0 *args`` until it exits (failing if it listens)."""
    return await refused(*args, env={**CLEAN, **(env or {})})


def refusal(environ: dict[str, str], path: Optional[Path] = None) -> str:
    with pytest.raises(config_file.ConfigError) as info:
        config_file.load_settings(None if path is None else str(path), environ)
    message = str(info.value)
    assert "\n" not in message
    assert SECRET not in message
    assert HOOK_SECRET not in message
    return message


# --- syntax errors --------------------------------------------------------------------


BAD_YAML = f'auth:\n  required: true\n  api_secret: "{SECRET}" x\n'


def test_a_yaml_syntax_error_does_not_quote_the_file(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "sayna.yaml"
    path.write_text(BAD_YAML, encoding="utf-8")
    message = refusal({}, path)
    assert message == (
        f"config file {path} is not valid YAML: expected <block end>, but found '<scalar>' "
        "at line 3, column 35"
    )


def test_a_json_syntax_error_does_not_quote_the_file(tmp_path: Path) -> None:
    path = tmp_path / "sayna.json"
    path.write_text(f'{{"auth": {{"api_secret": "{SECRET}" x}}}}', encoding="utf-8")
    message = refusal({}, path)
    assert message == (
        f"config file {path} is not valid JSON: Expecting ',' delimiter at line 1, column 45"
    )


async def test_sayna_serve_reports_a_yaml_syntax_error_in_one_line(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    path = tmp_path / "sayna.yaml"
    path.write_text(BAD_YAML, encoding="utf-8")
    code, out, err = await serve_refusal("--config", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"sayna serve: config file {path} is not valid YAML: expected <block end>, but found "
        "'<scalar>' at line 3, column 35"
    ]


# --- SIP hooks Sayna refuses ----------------------------------------------------------


def hook(host: str, **extra: Any) -> dict[str, Any]:
    return {"host": host, "url": "http://127.0.0.1:9/hook", **extra}


def sip_file(tmp_path: Path, hooks: list[dict[str, Any]], **sections: Any) -> Path:
    path = tmp_path / "sayna.json"
    data = {"sip": {"room_prefix": "sip-", "hook_secret": HOOK_SECRET, "hooks": hooks}}
    data.update(sections)
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def sip_environ(hooks: list[dict[str, Any]], **more: str) -> dict[str, str]:
    return {
        "SIP_ROOM_PREFIX": "sip-",
        "SIP_HOOK_SECRET": HOOK_SECRET,
        "SIP_HOOKS_JSON": json.dumps(hooks),
        **more,
    }


DUPLICATES = [hook("a.example.com"), hook("b.example.com"), hook("A.Example.com")]


def test_a_duplicate_hook_host_in_the_file_is_refused(tmp_path: Path) -> None:
    message = refusal({}, sip_file(tmp_path, DUPLICATES))
    assert message == (
        "sip.hooks[2]: host 'a.example.com' is also sip.hooks[0]'s (ignoring case): Sayna "
        "refuses a duplicate SIP hook host; keep one hook per host"
    )


def _bare_file(tmp_path: Path, **sections: Any) -> Path:
    """A config file that sets no hooks (they come from SIP_HOOKS_JSON)."""
    path = tmp_path / "bare.json"
    path.write_text(json.dumps(sections), encoding="utf-8")
    return path


def test_a_duplicate_hook_host_in_sip_hooks_json_is_refused_with_a_file(tmp_path: Path) -> None:
    """Sayna validates the merged configuration only when started with a file."""
    message = refusal(sip_environ(DUPLICATES), _bare_file(tmp_path))
    assert message.startswith("SIP_HOOKS_JSON[2]: host 'a.example.com' is also SIP_HOOKS_JSON[0]'s")


def test_without_a_file_sip_hooks_json_is_not_validated_as_sayna_does_not() -> None:
    """Sayna's ``from_env`` (no file) runs no ``validate_sip_config``: it starts with a
    duplicate host (the later hook wins) and with hooks lacking auth_id."""
    settings = config_file.load_settings(None, sip_environ(DUPLICATES))
    hosts = [h.host for h in settings["sip_hooks"]]
    assert hosts == ["a.example.com", "b.example.com", "a.example.com"]
    environ = sip_environ([hook("b.example.com")], AUTH_REQUIRED="true", AUTH_API_SECRET=SECRET)
    assert [h.host for h in config_file.load_settings(None, environ)["sip_hooks"]] == [
        "b.example.com"
    ]


REQUIRED = {"required": True, "api_secret": SECRET}


def test_a_hook_without_auth_id_is_refused_when_auth_is_required(tmp_path: Path) -> None:
    hooks = [hook("a.example.com", auth_id="tenant-a"), hook("b.example.com", auth_id="  ")]
    message = refusal({}, sip_file(tmp_path, hooks, auth=REQUIRED))
    assert message == (
        "sip.hooks[1] (host 'b.example.com') has no auth_id, which Sayna requires of every hook "
        "when authentication is required: set it to the tenant id of the hook's calls"
    )
    # The same from the variables, when Sayna is started with a file.
    environ = sip_environ([hook("b.example.com")], AUTH_REQUIRED="true", AUTH_API_SECRET=SECRET)
    assert refusal(environ, _bare_file(tmp_path)).startswith(
        "SIP_HOOKS_JSON[0] (host 'b.example.com') has no auth_id"
    )
    # Authentication required by the variables, hooks in the file.
    environ = {"AUTH_REQUIRED": "true", "AUTH_API_SECRET": SECRET}
    assert refusal(environ, sip_file(tmp_path, [hook("b.example.com")])).startswith(
        "sip.hooks[0] (host 'b.example.com') has no auth_id"
    )


def test_hooks_sayna_accepts_still_load(tmp_path: Path) -> None:
    hooks = [hook("a.example.com", auth_id="t1"), hook("b.example.com", auth_id="t2")]
    settings = config_file.load_settings(str(sip_file(tmp_path, hooks, auth=REQUIRED)), {})
    assert [(h.host, h.auth_id) for h in settings["sip_hooks"]] == [
        ("a.example.com", "t1"),
        ("b.example.com", "t2"),
    ]
    # Without authentication required, a hook needs no auth_id (as on Sayna).
    settings = config_file.load_settings(None, sip_environ([hook("a.example.com")]))
    assert [h.host for h in settings["sip_hooks"]] == ["a.example.com"]


@pytest.mark.parametrize("source", ["file", "variables"])
async def test_sayna_serve_refuses_such_hooks_in_one_line(tmp_path: Path, source: str) -> None:
    if source == "file":
        code, out, err = await serve_refusal("--config", str(sip_file(tmp_path, DUPLICATES)))
        where = "sip.hooks"
    else:
        bare = str(_bare_file(tmp_path))
        code, out, err = await serve_refusal("--config", bare, env=sip_environ(DUPLICATES))
        where = "SIP_HOOKS_JSON"
    assert (code, out) == (2, "")
    (line,) = err.splitlines()
    assert line.startswith(f"sayna serve: {where}[2]: host 'a.example.com' is also {where}[0]'s")
    assert HOOK_SECRET not in err
