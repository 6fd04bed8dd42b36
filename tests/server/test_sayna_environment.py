"""``sayna serve`` reads the real Sayna server's environment variables and merges them
with ``--config FILE`` as Sayna does (config/merge.rs: the file over the variables, the
variables over the defaults), command-line options over both; it refuses, in one line
and with exit status 2, what Sayna refuses to start with.

Before, only ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET`` were read (and they overrode
the file), plus ``SIP_OUTBOUND_ADDRESS`` and the ``RECORDING_*`` names under
``--config``: a Sayna app's ``.env`` (``AUTH_REQUIRED``, ``AUTH_API_SECRET``,
``SIP_HOOKS_JSON``...) ran with no authentication and no hooks.

The merging is tested by calling ``load_settings`` / ``serve_options`` with explicit
environments; a few tests start ``sayna serve`` itself.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

import aiohttp
import pytest

from helpers.serve import sayna_serve, serve_refusal
from sayna_client.server import cli, config_file

#: Sayna's variables ``sayna serve`` reads (the docs list them).
VARIABLES = (
    "LIVEKIT_URL",
    "LIVEKIT_PUBLIC_URL",
    "LIVEKIT_API_KEY",
    "LIVEKIT_API_SECRET",
    "AUTH_REQUIRED",
    "AUTH_API_SECRETS_JSON",
    "AUTH_API_SECRET",
    "AUTH_API_SECRET_ID",
    "SIP_ROOM_PREFIX",
    "SIP_ALLOWED_ADDRESSES",
    "SIP_HOOKS_JSON",
    "SIP_HOOK_SECRET",
    "SIP_OUTBOUND_ADDRESS",
    "SIP_OUTBOUND_AUTH_USERNAME",
    "SIP_OUTBOUND_AUTH_PASSWORD",
    "RECORDING_BACKEND",
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
#: A secret no error message may show.
SECRET = "sentinel-Secret-0123456789"
S3 = {
    "RECORDING_S3_BUCKET": "b",
    "RECORDING_S3_REGION": "eu-west-1",
    "RECORDING_S3_ACCESS_KEY": "ak",
    "RECORDING_S3_SECRET_KEY": SECRET,
}
HOOK = {"host": "Sip.Example.com:5063", "url": "http://127.0.0.1:9/hook", "secret": SECRET}


def settings(
    environ: dict[str, str], data: Optional[dict[str, Any]] = None, tmp_path: Optional[Path] = None
) -> dict[str, Any]:
    """``load_settings`` of a JSON file holding ``data`` (none when ``None``)."""
    config = None
    if data is not None:
        assert tmp_path is not None
        file = tmp_path / "sayna.json"
        file.write_text(json.dumps(data), encoding="utf-8")
        config = str(file)
    result: dict[str, Any] = config_file.load_settings(config, environ)
    return result


def refused(environ: dict[str, str], data: Optional[dict[str, Any]] = None, **kw: Any) -> str:
    """The message of the ``ConfigError`` ``load_settings`` raises; it never shows SECRET."""
    with pytest.raises(config_file.ConfigError) as info:
        settings(environ, data, **kw)
    message = str(info.value)
    assert SECRET not in message
    assert "\n" not in message
    return message


def options(argv: list[str], environ: dict[str, str]) -> dict[str, Any]:
    result: dict[str, Any] = cli.serve_options(cli.build_parser().parse_args(argv), environ)
    return result


# --- what is read, and bare `sayna serve` ----------------------------------------------


def test_the_documented_variables_are_the_ones_read() -> None:
    assert config_file.SAYNA_VARIABLES == VARIABLES


def test_without_a_file_or_a_variable_the_local_defaults_stay() -> None:
    # No outbound trunk or recording setting: LocalServer keeps 127.0.0.1:5060 and its
    # in-memory recordings, as a bare `sayna serve` always had.
    assert settings({}) == {}
    assert options([], {}) == {"host": "127.0.0.1", "port": 3001}


def test_host_and_port_variables_are_not_read() -> None:
    environ = {"HOST": "0.0.0.0", "PORT": "8080"}
    assert options([], environ) == {"host": "127.0.0.1", "port": 3001}


def test_empty_variables_count_as_unset() -> None:
    assert settings(dict.fromkeys(VARIABLES, "")) == {}


# --- LiveKit --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("livekit", "environ", "url"),
    [
        ({}, {"LIVEKIT_URL": "ws://lk-env:7880"}, "ws://lk-env:7880"),
        ({}, {"LIVEKIT_URL": "ws://a", "LIVEKIT_PUBLIC_URL": "wss://public"}, "wss://public"),
        ({"public_url": "wss://file"}, {"LIVEKIT_PUBLIC_URL": "wss://env"}, "wss://file"),
        # What Sayna reports is the public URL: the variable beats the file's url.
        ({"url": "ws://file"}, {"LIVEKIT_PUBLIC_URL": "wss://env"}, "wss://env"),
        ({"url": "ws://file"}, {"LIVEKIT_URL": "ws://env"}, "ws://file"),
    ],
)
def test_the_reported_livekit_url(
    tmp_path: Path, livekit: dict[str, str], environ: dict[str, str], url: str
) -> None:
    assert settings(environ, {"livekit": livekit}, tmp_path)["livekit_url"] == url


def test_livekit_credentials_file_first_then_variables(tmp_path: Path) -> None:
    environ = {"LIVEKIT_API_KEY": "APIenv", "LIVEKIT_API_SECRET": "env-secret"}
    got = settings(environ)
    assert (got["livekit_api_key"], got["livekit_api_secret"]) == ("APIenv", "env-secret")
    got = settings(environ, {"livekit": {"api_key": "APIfile"}}, tmp_path)
    assert (got["livekit_api_key"], got["livekit_api_secret"]) == ("APIfile", "env-secret")


def test_command_line_options_win_over_file_and_variables(tmp_path: Path) -> None:
    path = tmp_path / "sayna.json"
    data = {"livekit": {"api_key": "APIfile"}, "sip": {"hook_secret": "file-hook-secret"}}
    path.write_text(json.dumps(data))
    environ = {"LIVEKIT_API_KEY": "APIenv", "LIVEKIT_URL": "ws://env", "SAYNA_API_KEY": "k"}
    argv = ["--config", str(path), "--livekit-api-key", "APIflag", "--hook-secret", "flag"]
    got = options([*argv, "--livekit-url", "ws://flag", "--port", "0"], environ)
    assert got["livekit_api_key"] == "APIflag"
    assert (got["livekit_url"], got["hook_secret"], got["port"]) == ("ws://flag", "flag", 0)
    assert got["api_key"] == "k"  # SAYNA_API_KEY, this package's own, is still read
    # Without the flag, the file's key wins over LIVEKIT_API_KEY (it was the other way).
    assert options(["--config", str(path)], environ)["livekit_api_key"] == "APIfile"


# --- authentication -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "required"),
    [("true", True), ("1", True), ("YES", True), ("false", False), ("0", False), ("on", False)],
)
def test_auth_required_reads_like_sayna(value: str, required: bool) -> None:
    got = settings({"AUTH_REQUIRED": value, "AUTH_API_SECRET": "s"})
    assert got.get("api_keys") == ({"s": "default"} if required else None)


def test_auth_secret_id_and_precedence(tmp_path: Path) -> None:
    on = {"AUTH_REQUIRED": "true"}
    legacy = {**on, "AUTH_API_SECRET": "env-secret", "AUTH_API_SECRET_ID": "acme"}
    assert settings(legacy)["api_keys"] == {"env-secret": "acme"}
    # auth.api_secret beats AUTH_API_SECRET; its id is still AUTH_API_SECRET_ID.
    assert settings(legacy, {"auth": {"api_secret": "file-secret"}}, tmp_path)["api_keys"] == {
        "file-secret": "acme"
    }
    listed = [{"id": "a", "secret": "sa"}, {"id": "b", "secret": "sb"}]
    many = {**legacy, "AUTH_API_SECRETS_JSON": json.dumps(listed)}
    assert settings(many)["api_keys"] == {"sa": "a", "sb": "b"}  # over AUTH_API_SECRET
    file = {"auth": {"api_secret": "file-secret"}}
    assert settings(many, file, tmp_path)["api_keys"] == {"sa": "a", "sb": "b"}
    # auth.api_secrets (not empty) beats AUTH_API_SECRETS_JSON, which is then not read.
    bad = {**many, "AUTH_API_SECRETS_JSON": "not json"}
    file = {"auth": {"api_secrets": [{"id": "f", "secret": "sf"}]}}
    assert settings(bad, file, tmp_path)["api_keys"] == {"sf": "f"}
    assert settings(many, {"auth": {"api_secrets": []}}, tmp_path)["api_keys"] == {
        "sa": "a",
        "sb": "b",
    }


def test_the_file_decides_whether_auth_is_required(tmp_path: Path) -> None:
    environ = {"AUTH_REQUIRED": "true", "AUTH_API_SECRET": "s"}
    assert "api_keys" not in settings(environ, {"auth": {"required": False}}, tmp_path)
    assert settings(environ, {"auth": {}}, tmp_path)["api_keys"] == {"s": "default"}
    off = {"AUTH_REQUIRED": "false"}
    file = {"auth": {"required": True, "api_secret": "f"}}
    assert settings(off, file, tmp_path)["api_keys"] == {"f": "default"}
    # The variables supply the secret the file's `required: true` asks for.
    got = settings({"AUTH_API_SECRET": "s"}, {"auth": {"required": True}}, tmp_path)
    assert got["api_keys"] == {"s": "default"}


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"AUTH_API_SECRETS_JSON": '[{"id": "a", "secret": "' + SECRET + '"'},
            "AUTH_API_SECRETS_JSON is not valid JSON (Expecting ',' delimiter: line 1 column ",
        ),
        ({"AUTH_API_SECRETS_JSON": json.dumps({"a": SECRET})}, "must be a JSON list"),
        (
            {"AUTH_API_SECRETS_JSON": json.dumps([{"id": "a", "token": SECRET}])},
            "AUTH_API_SECRETS_JSON[0] needs a string 'id' without surrounding whitespace",
        ),
        (
            {"AUTH_API_SECRETS_JSON": json.dumps([{"id": " a", "secret": SECRET}])},
            "AUTH_API_SECRETS_JSON[0] needs a string 'id' without surrounding whitespace",
        ),
        (
            {"AUTH_API_SECRETS_JSON": json.dumps([{"id": "a", "secret": "  "}])},
            "and a non-blank string 'secret'",
        ),
        (
            {
                "AUTH_API_SECRETS_JSON": json.dumps(
                    [{"id": "Acme", "secret": SECRET}, {"id": "ACME", "secret": "x"}]
                )
            },
            "AUTH_API_SECRETS_JSON[1]: id 'ACME' is used twice (ignoring case)",
        ),
        (
            {
                "AUTH_API_SECRETS_JSON": json.dumps(
                    [{"id": "a", "secret": SECRET}, {"id": "b", "secret": SECRET}]
                )
            },
            "AUTH_API_SECRETS_JSON[1]: id 'b' has the same secret as id 'a'",
        ),
        (
            {"AUTH_API_SECRET": SECRET, "AUTH_API_SECRET_ID": "acme "},
            "AUTH_API_SECRET_ID must not be blank nor start or end with whitespace",
        ),
        (
            {"AUTH_REQUIRED": "true"},
            "AUTH_REQUIRED is true but neither AUTH_API_SECRETS_JSON nor AUTH_API_SECRET is "
            "set: set one, or AUTH_REQUIRED=false",
        ),
    ],
)
def test_bad_auth_variables_are_refused(environ: dict[str, str], problem: str) -> None:
    # Checked as Sayna checks them, whether authentication is required or not.
    assert problem in refused(environ)


def test_auth_required_by_the_file_without_any_secret(tmp_path: Path) -> None:
    message = refused({}, {"auth": {"required": True}}, tmp_path=tmp_path)
    assert "auth.required is true but no auth.api_secrets or auth.api_secret is set" in message


# --- SIP ------------------------------------------------------------------------------


def test_sip_from_the_variables() -> None:
    environ = {
        "SIP_ROOM_PREFIX": "call-",
        "SIP_HOOKS_JSON": json.dumps([HOOK, {"host": "b.example.com", "url": "http://x/"}]),
        "SIP_HOOK_SECRET": "global-secret",
        "SIP_OUTBOUND_ADDRESS": "pbx.example.com:5060",
    }
    got = settings(environ)
    hooks = got.pop("sip_hooks")
    assert got == {
        "sip_room_prefix": "call-",
        "hook_secret": "global-secret",
        "sip_outbound_address": "pbx.example.com:5060",
    }
    assert [(h.host, h.url, h.auth_id, h.secret) for h in hooks] == [
        ("sip.example.com:5063", "http://127.0.0.1:9/hook", "", SECRET),
        ("b.example.com", "http://x/", "", None),
    ]


def test_sip_file_first_then_variables(tmp_path: Path) -> None:
    environ = {
        "SIP_ROOM_PREFIX": "env-",
        "SIP_HOOKS_JSON": json.dumps([{"host": "env.example.com", "url": "http://env/"}]),
        "SIP_HOOK_SECRET": "env-secret",
        "SIP_OUTBOUND_ADDRESS": "env-pbx:5060",
    }
    sip = {
        "room_prefix": "file-",
        "hooks": [{"host": "file.example.com", "url": "http://file/"}],
        "hook_secret": "file-secret",
        "outbound_address": "file-pbx:5060",
    }
    got = settings(environ, {"sip": sip}, tmp_path)
    assert (got["sip_room_prefix"], got["hook_secret"], got["sip_outbound_address"]) == (
        "file-",
        "file-secret",
        "file-pbx:5060",
    )
    assert [h.host for h in got["sip_hooks"]] == ["file.example.com"]
    # What the file leaves out comes from the variables (an empty hooks list too).
    got = settings(environ, {"sip": {"hooks": []}}, tmp_path)
    assert (got["sip_room_prefix"], got["hook_secret"], got["sip_outbound_address"]) == (
        "env-",
        "env-secret",
        "env-pbx:5060",
    )
    assert [h.host for h in got["sip_hooks"]] == ["env.example.com"]


def test_outbound_address_without_a_file_keeps_the_local_trunk_unless_set(
    tmp_path: Path,
) -> None:
    assert "sip_outbound_address" not in settings({"SIP_ROOM_PREFIX": "sip-"})
    # With a file, Sayna started with that file has none.
    assert settings({}, {}, tmp_path)["sip_outbound_address"] is None


@pytest.mark.parametrize(
    "variable",
    [
        "SIP_ALLOWED_ADDRESSES",
        "SIP_HOOKS_JSON",
        "SIP_HOOK_SECRET",
        "SIP_OUTBOUND_ADDRESS",
        "SIP_OUTBOUND_AUTH_USERNAME",
        "SIP_OUTBOUND_AUTH_PASSWORD",
    ],
)
def test_sip_variables_need_a_room_prefix(tmp_path: Path, variable: str) -> None:
    value = "[]" if variable == "SIP_HOOKS_JSON" else SECRET
    assert refused({variable: value}) == (
        f"{variable} is set but no SIP room prefix, which Sayna requires whenever SIP is "
        "configured: set SIP_ROOM_PREFIX (e.g. SIP_ROOM_PREFIX=sip-) or sip.room_prefix"
    )
    assert refused({variable: value}, {"sip": {}}, tmp_path=tmp_path).startswith(variable)
    assert settings({variable: value}, {"sip": {"room_prefix": "p-"}}, tmp_path)[
        "sip_room_prefix"
    ] == ("p-")


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ('[{"host": "h", "secret": "' + SECRET, "SIP_HOOKS_JSON is not valid JSON ("),
        (json.dumps(HOOK), "SIP_HOOKS_JSON must be a JSON list such as [{"),
        (json.dumps(["h"]), "SIP_HOOKS_JSON[0] must be a mapping with 'host' and 'url'"),
        (json.dumps([{"host": "h", "secret": SECRET}]), "SIP_HOOKS_JSON[0] needs a non-empty"),
        (json.dumps([{"host": "h", "url": ""}]), "SIP_HOOKS_JSON[0] needs a non-empty 'host'"),
        (json.dumps([{"host": 1, "url": "u"}]), "SIP_HOOKS_JSON[0].host must be a string"),
        (json.dumps([{**HOOK, "auth_id": 7}]), "SIP_HOOKS_JSON[0].auth_id must be a string"),
    ],
)
def test_bad_sip_hooks_json_is_refused(value: str, problem: str) -> None:
    assert problem in refused({"SIP_ROOM_PREFIX": "sip-", "SIP_HOOKS_JSON": value})


# --- recording ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "environ",
    [
        S3,
        {**S3, "RECORDING_BACKEND": "S3"},
        {"RECORDING_GCS_BUCKET": "b", "RECORDING_GCS_CREDENTIALS_JSON": SECRET},
        {
            "RECORDING_BACKEND": "google",
            "RECORDING_GCS_BUCKET": "b",
            "RECORDING_GCS_CREDENTIALS_JSON": SECRET,
        },
    ],
)
def test_a_complete_recording_backend_from_the_variables(environ: dict[str, str]) -> None:
    assert settings(environ) == {"recording_storage": True}


def test_recording_fields_merge_file_first(tmp_path: Path) -> None:
    backend = {"type": "s3", "bucket": "file-bucket", "region": "r"}
    environ = {"RECORDING_S3_ACCESS_KEY": "ak", "RECORDING_S3_SECRET_KEY": SECRET}
    got = settings(environ, {"recording": {"backend": backend}}, tmp_path)
    assert got["recording_storage"] is True
    # With a file and no backend anywhere, no storage (a prefix alone selects none).
    got = settings({"RECORDING_PREFIX": "p"}, {"recording": {"prefix": "p/"}}, tmp_path)
    assert got["recording_storage"] is False
    # Without a file: the local in-memory recordings stay.
    assert "recording_storage" not in settings({"RECORDING_PREFIX": "p"})


def test_a_gcs_credentials_file_must_be_readable(tmp_path: Path) -> None:
    credentials = tmp_path / "sa.json"
    environ = {"RECORDING_GCS_BUCKET": "b", "RECORDING_GCS_CREDENTIALS_PATH": str(credentials)}
    assert f"cannot read the GCS service account file {credentials}" in refused(environ)
    credentials.write_text("{}")
    assert settings(environ) == {"recording_storage": True}


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"RECORDING_BACKEND": "Azure"},
            "RECORDING_BACKEND 'azure' is not a recording backend: set it to s3 or gcs",
        ),
        (
            {"RECORDING_S3_BUCKET": "b"},
            "recording.s3 backend is missing required field 'region': set "
            "recording.backend.region or RECORDING_S3_REGION",
        ),
        (
            {**S3, "RECORDING_S3_SECRET_KEY": ""},
            "recording.s3 backend is missing required field 'secret_key'",
        ),
        ({"RECORDING_BACKEND": "s3"}, "recording.s3 backend is missing required field 'bucket'"),
        (
            {"RECORDING_GCS_CREDENTIALS_JSON": SECRET},
            "recording.gcs backend is missing required field 'bucket': set "
            "recording.backend.bucket or RECORDING_GCS_BUCKET",
        ),
        (
            {"RECORDING_GCS_BUCKET": "b"},
            "recording.gcs backend requires credentials_path (RECORDING_GCS_CREDENTIALS_PATH) "
            "or credentials_json (RECORDING_GCS_CREDENTIALS_JSON)",
        ),
        (
            {
                "RECORDING_GCS_BUCKET": "b",
                "RECORDING_GCS_CREDENTIALS_JSON": SECRET,
                "RECORDING_GCS_CREDENTIALS_PATH": "/sa.json",
            },
            "recording.gcs backend accepts at most one of credentials_path",
        ),
        (
            {"RECORDING_S3_BUCKET": "b", "RECORDING_GCS_BUCKET": "b"},
            "the recording backend is ambiguous: set RECORDING_BACKEND to s3 or gcs",
        ),
        (
            {**S3, "RECORDING_BACKEND": "gcs"},
            "recording.gcs backend is missing required field 'bucket'",
        ),
    ],
)
def test_an_incomplete_recording_backend_is_refused(environ: dict[str, str], problem: str) -> None:
    assert problem in refused(environ)


def test_the_file_and_the_variables_must_pick_the_same_backend(tmp_path: Path) -> None:
    data = {"recording": {"backend": {"type": "s3", "bucket": "b"}}}
    message = refused({"RECORDING_BACKEND": "gcp"}, data, tmp_path=tmp_path)
    assert message == (
        "recording.backend.type is 's3' but the RECORDING_* variables select 'gcs': make "
        "them agree (or unset the variables)"
    )
    message = refused({}, {"recording": {"backend": {"type": "azure"}}}, tmp_path=tmp_path)
    assert message == "recording.backend must be a mapping whose 'type' is 's3' or 'gcs'"
    message = refused({}, data, tmp_path=tmp_path)
    assert message.startswith("recording.s3 backend is missing required field 'region'")


# --- `sayna serve` itself -------------------------------------------------------------

#: Every Sayna variable emptied (empty = unset), and SAYNA_API_KEY, so the caller's shell
#: does not leak in.
CLEAN = dict.fromkeys((*VARIABLES, "SAYNA_API_KEY"), "")


async def test_sayna_serve_asks_for_the_key_the_variables_set(
    http: aiohttp.ClientSession,
) -> None:
    env = {
        **CLEAN,
        "AUTH_REQUIRED": "true",
        "AUTH_API_SECRET": SECRET,
        "AUTH_API_SECRET_ID": "acme",
    }
    async with sayna_serve(env=env) as served:
        assert SECRET not in served.banner
        async with http.get(served.url + "/voices") as response:
            assert response.status == 401
        wrong = {"Authorization": "Bearer not-it"}
        async with http.get(served.url + "/voices", headers=wrong) as response:
            assert response.status == 401
        headers = {"Authorization": f"Bearer {SECRET}"}
        async with http.get(served.url + "/voices", headers=headers) as response:
            assert response.status == 200
        body = {"room_name": "env-room", "participant_name": "A", "participant_identity": "a"}
        async with http.post(served.url + "/livekit/token", json=body, headers=headers) as r:
            assert r.status == 200
        # The room is the tenant's: AUTH_API_SECRET_ID.
        details = served.url + "/livekit/rooms/env-room"
        async with http.get(details, headers=headers) as response:
            room = await response.json()
        assert json.loads(room["metadata"]) == {"auth_id": "acme"}


async def test_sayna_serve_takes_hooks_and_the_livekit_url_from_the_variables(
    http: aiohttp.ClientSession,
) -> None:
    env = {
        **CLEAN,
        "SIP_ROOM_PREFIX": "call-",
        "SIP_HOOKS_JSON": json.dumps([HOOK]),
        "LIVEKIT_PUBLIC_URL": "wss://livekit.example.com",
    }
    async with sayna_serve(env=env) as served:
        async with http.get(served.url + "/sip/hooks") as response:
            assert (await response.json())["hooks"] == [
                {"host": "sip.example.com:5063", "url": HOOK["url"], "auth_id": ""}
            ]
        body = {"room_name": "r", "participant_name": "A", "participant_identity": "a"}
        async with http.post(served.url + "/livekit/token", json=body) as response:
            assert (await response.json())["livekit_url"] == "wss://livekit.example.com"


async def test_sayna_serve_puts_the_file_over_the_variables(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    path = tmp_path / "sayna.json"
    path.write_text(json.dumps({"livekit": {"api_key": "APIfile", "api_secret": "file-s"}}))
    env = {
        **CLEAN,
        "LIVEKIT_API_KEY": "APIenv",
        "LIVEKIT_API_SECRET": "env-s",
        "AUTH_REQUIRED": "1",
        "AUTH_API_SECRET": SECRET,
    }
    async with sayna_serve("--config", str(path), env=env) as served:
        assert "LiveKit API key: APIfile" in served.banner
        # The file has no auth section: the variables' authentication applies under it.
        async with http.get(served.url + "/voices") as response:
            assert response.status == 401


async def _refusal(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    """Run ``sayna serve --port 0`` until it exits, or fail as soon as it listens."""
    return await serve_refusal(*args, env={**CLEAN, **env})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"AUTH_API_SECRETS_JSON": f'[{{"id": "a", "secret": "{SECRET}"}}, '},
            "sayna serve: AUTH_API_SECRETS_JSON is not valid JSON (Expecting value: line 1 "
            "column 55 (char 54)): set it to a list such as "
            '[{"id": "tenant-a", "secret": "..."}]',
        ),
        (
            {"AUTH_REQUIRED": "true"},
            "sayna serve: AUTH_REQUIRED is true but neither AUTH_API_SECRETS_JSON nor "
            "AUTH_API_SECRET is set: set one, or AUTH_REQUIRED=false (the local server has "
            "no external auth service, AUTH_SERVICE_URL is not used)",
        ),
        (
            {"SIP_HOOK_SECRET": SECRET},
            "sayna serve: SIP_HOOK_SECRET is set but no SIP room prefix, which Sayna requires "
            "whenever SIP is configured: set SIP_ROOM_PREFIX (e.g. SIP_ROOM_PREFIX=sip-) or "
            "sip.room_prefix",
        ),
        (
            {"RECORDING_S3_BUCKET": "b", "RECORDING_S3_SECRET_KEY": SECRET},
            "sayna serve: recording.s3 backend is missing required field 'region': set "
            "recording.backend.region or RECORDING_S3_REGION",
        ),
    ],
    ids=["secrets-json", "auth-without-secret", "sip-without-prefix", "recording"],
)
async def test_sayna_serve_refuses_a_bad_variable_in_one_line(
    env: dict[str, str], message: str
) -> None:
    code, out, err = await _refusal(env)
    assert (code, out, err.splitlines()) == (2, "", [message])
    assert SECRET not in err


@pytest.mark.parametrize("how", ["flag", "SAYNA_API_KEY"])
def test_auth_required_without_a_secret_takes_the_command_lines_key(how: str) -> None:
    """A Sayna `.env` with AUTH_REQUIRED=true and JWT auth (no secret the local server can
    use), exported: `sayna serve --api-key k` (or SAYNA_API_KEY) starts with that key."""
    environ = {"AUTH_REQUIRED": "true", "AUTH_SERVICE_URL": "https://auth.example.com"}
    argv = ["--api-key", "k-local-1"] if how == "flag" else []
    if how == "SAYNA_API_KEY":
        environ["SAYNA_API_KEY"] = "k-local-1"
    assert options(argv, environ)["api_key"] == "k-local-1"
    with pytest.raises(config_file.ConfigError, match="AUTH_REQUIRED is true"):
        options([], {k: v for k, v in environ.items() if k != "SAYNA_API_KEY"})
