"""Protocol 6.11: Google's credential and project-id refusals, with Sayna's texts.

Google STT takes its project id from the ``model``'s part before ``:`` when it has one,
else from the credentials, then builds credentials (stt/google/provider.rs:416-437);
Google TTS builds credentials first, then needs a ``project_id`` in them. Credentials
are built by providers/google/auth.rs with google-cloud-auth 1.3.0: inline JSON is read
as a service account key, a file by its ``type``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from helpers.wire import STT, TTS, config, configure, recv_json, send
from sayna_client.server import LocalServer

STT_PREFIX = "Failed to create voice manager: STT error: "
TTS_PREFIX = "Failed to create voice manager: TTS error: "
PROJECT_REQUIRED = (
    "Configuration error: Google Cloud project_id is required. Provide it either:\n"
    "1. In the model field as 'project_id:model_name'\n"
    "2. In the service account credentials JSON (project_id field)"
)
SERVICE_ACCOUNT = {
    "type": "service_account",
    "client_email": "sa@p.iam.gserviceaccount.com",
    "private_key_id": "k1",
    "private_key": "-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----\n",
    "project_id": "p",
}
AUTHORIZED_USER = {
    "type": "authorized_user",
    "client_id": "id",
    "client_secret": "secret",
    "refresh_token": "token",
}
INLINE_NOT_SA = (
    "Failed to initialize credentials from JSON content: cannot parse the credentials file "
)


def _google_stt(model: str = "latest_long", **auth: Any) -> dict[str, Any]:
    stt = {**STT, "provider": "google", "model": model}
    if auth:
        stt["auth"] = auth
    return stt


def _google_tts(**auth: Any) -> dict[str, Any]:
    return {**TTS, "provider": "google", "voice_id": "en-US-Wavenet-D", "auth": auth}


async def _refusal(server: LocalServer, http: aiohttp.ClientSession, message: Any) -> str:
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, message)
        frame = await recv_json(ws)
        assert frame["type"] == "error", frame
        # No ready: the next frame answers the next message.
        await send(ws, {"type": "marker"})
        assert "unknown variant `marker`" in (await recv_json(ws))["message"]
    return str(frame["message"])


def _write(path: Path, content: Any) -> str:
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return str(path)


async def test_an_empty_project_before_the_colon_is_missing(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # The model's project wins even over credentials that name one.
    for stt in (_google_stt(":latest_long"), _google_stt(":m", credentials=SERVICE_ACCOUNT)):
        text = await _refusal(server, http, config(stt_config=stt))
        assert text == STT_PREFIX + PROJECT_REQUIRED
    # A project before the colon is enough, even without one in the credentials.
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stt_config=_google_stt("p:latest_long")))


async def test_inline_json_is_read_as_a_service_account(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    stt = _google_stt("p:m", credentials={"project_id": "p"})
    assert await _refusal(server, http, config(stt_config=stt)) == (
        STT_PREFIX + "Authentication failed: " + INLINE_NOT_SA + "missing field `client_email`"
    )
    # An object is passed on as its JSON text, so a string says the same.
    wrong = {**SERVICE_ACCOUNT, "private_key": 5}
    stt = _google_stt("p:m", credentials=json.dumps(wrong))
    assert await _refusal(server, http, config(stt_config=stt)) == (
        STT_PREFIX
        + "Authentication failed: "
        + INLINE_NOT_SA
        + "invalid type: integer `5`, expected a string"
    )
    tts = _google_tts(credentials=dict(AUTHORIZED_USER))
    assert await _refusal(server, http, config(tts_config=tts)) == (
        TTS_PREFIX
        + "Connection failed: Google Cloud authentication failed: "
        + INLINE_NOT_SA
        + "missing field `client_email`"
    )
    async with http.ws_connect(server.ws_url) as ws:
        await configure(
            ws,
            config(
                stt_config=_google_stt(credentials=SERVICE_ACCOUNT),
                tts_config=_google_tts(credentials=SERVICE_ACCOUNT),
            ),
        )


async def test_inline_json_syntax_errors_in_serde_words(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    stt = _google_stt("p:m", credentials='{"project_id": "p"}}')
    assert await _refusal(server, http, config(stt_config=stt)) == (
        STT_PREFIX + "Configuration error: Invalid JSON content: trailing characters at line 1 "
        "column 20"
    )


async def test_credential_files_by_type(
    server: LocalServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    no_type = _write(tmp_path / "no_type.json", {"project_id": "p"})
    unsupported = (
        f"Unsupported credential type 'unknown' in file '{no_type}'. Expected "
        "'service_account' or 'authorized_user'"
    )
    stt = _google_stt(credentials=no_type)
    assert await _refusal(server, http, config(stt_config=stt)) == (
        STT_PREFIX + "Configuration error: " + unsupported
    )
    tts = _google_tts(credentials=no_type)
    assert await _refusal(server, http, config(tts_config=tts)) == (
        TTS_PREFIX + "Invalid configuration: " + unsupported
    )
    other = _write(tmp_path / "other.json", {"type": "external_account", "project_id": "p"})
    stt = _google_stt(credentials=other)
    assert (await _refusal(server, http, config(stt_config=stt))).startswith(
        STT_PREFIX + "Configuration error: Unsupported credential type 'external_account'"
    )
    broken_sa = _write(tmp_path / "sa.json", {"type": "service_account", "project_id": "p"})
    stt = _google_stt(credentials=broken_sa)
    assert await _refusal(server, http, config(stt_config=stt)) == (
        STT_PREFIX + f"Authentication failed: Failed to load service account credentials from "
        f"'{broken_sa}': cannot parse the credentials file missing field `client_email`"
    )
    broken_user = _write(tmp_path / "user.json", {"type": "authorized_user", "client_id": "i"})
    tts = _google_tts(credentials=broken_user)
    assert await _refusal(server, http, config(tts_config=tts)) == (
        TTS_PREFIX + "Connection failed: Google Cloud authentication failed: Failed to load "
        f"user account credentials from '{broken_user}': cannot parse the credentials file "
        "missing field `client_secret`"
    )
    bad_json = _write(tmp_path / "bad.json", '{"project_id": "p"}}')
    stt = _google_stt("p:m", credentials=bad_json)
    assert await _refusal(server, http, config(stt_config=stt)) == (
        STT_PREFIX + f"Configuration error: Failed to parse credentials file '{bad_json}': "
        "trailing characters at line 1 column 20"
    )


async def test_an_authorized_user_file_gives_no_tts_project(
    server: LocalServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    user = _write(tmp_path / "user.json", AUTHORIZED_USER)
    tts = _google_tts(credentials=user)
    assert await _refusal(server, http, config(tts_config=tts)) == (
        TTS_PREFIX + "Invalid configuration: Failed to extract project_id from Google Cloud "
        "credentials. Ensure the credentials file contains a valid project_id field."
    )
    async with http.ws_connect(server.ws_url) as ws:  # STT: the model names the project
        await configure(ws, config(stt_config=_google_stt("p:m", credentials=user)))


@pytest.mark.skipif(sys.platform != "linux", reason="the io::Error text is Linux's")
async def test_a_directory_cannot_be_read(
    server: LocalServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    stt = _google_stt("p:m", credentials=str(tmp_path))
    assert await _refusal(server, http, config(stt_config=stt)) == (
        STT_PREFIX + f"Configuration error: Failed to read credentials file '{tmp_path}': "
        "Is a directory (os error 21)"
    )


async def test_speak_refuses_a_file_of_unknown_type(
    server: LocalServer, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    no_type = _write(tmp_path / "no_type.json", {"project_id": "p"})
    body = {"text": "hi", "tts_config": _google_tts(credentials=no_type)}
    async with http.post(server.url + "/speak", json=body) as response:
        assert response.status == 400  # request-scoped auth + a configuration error
        assert await response.json() == {
            "error": "Failed to create TTS provider: Invalid configuration: Unsupported "
            f"credential type 'unknown' in file '{no_type}'. Expected 'service_account' or "
            "'authorized_user'"
        }
