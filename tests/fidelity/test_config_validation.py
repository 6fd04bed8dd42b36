"""Protocol 6.11: what the real server refuses while a ``config`` starts.

A fatal refusal is one ``error`` frame with the server's text; no ``ready`` follows and
the socket stays open. Non-fatal problems send an ``error`` and then ``ready``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from helpers.wire import STT, TTS, config, configure, recv, recv_json, send
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import run_upstream

PROJECT_REQUIRED = (
    "Failed to create voice manager: STT error: Configuration error: Google Cloud project_id "
    "is required. Provide it either:\n1. In the model field as 'project_id:model_name'\n"
    "2. In the service account credentials JSON (project_id field)"
)
NO_PROJECT_SA = {"type": "service_account", "client_email": "a@b.c"}


def _stt(**changes: Any) -> dict[str, Any]:
    return {**STT, **changes}


def _tts(**changes: Any) -> dict[str, Any]:
    return {**TTS, **changes}


FATAL = [
    pytest.param(
        config(stt_config=_stt(provider="OpenAI")), "Unsupported provider: openai", id="provider"
    ),
    pytest.param(  # names are lower-cased, never trimmed (auth.rs normalize_provider)
        config(stt_config=_stt(provider="Deepgram ")),
        "Unsupported provider: deepgram ",
        id="provider-blank",
    ),
    pytest.param(
        config(tts_config=_tts(provider=" ElevenLabs")),
        "Unsupported provider:  elevenlabs",
        id="tts-provider-blank",
    ),
    pytest.param(
        config(tts_config=_tts(provider="cartesia", auth={"api_key": "k", "region": "x"})),
        "Invalid auth input for provider cartesia: Unsupported auth field(s) for provider "
        "cartesia: region",
        id="auth-field",
    ),
    pytest.param(
        config(stt_config=_stt(provider="azure", auth={"api_key": "k"})),
        "Invalid auth input for provider azure: Auth field 'region' is required for provider azure",
        id="auth-missing-field",
    ),
    pytest.param(
        config(stt_config=_stt(provider="cartesia", sample_rate=11025)),
        "Failed to start voice manager: STT error: Configuration error: Unsupported sample "
        "rate: 11025. Supported rates: [8000, 16000, 22050, 24000, 44100, 48000]",
        id="cartesia-rate",
    ),
    pytest.param(
        config(stt_config=_stt(provider="cartesia", language="")),
        "Failed to start voice manager: STT error: Configuration error: Language code is required",
        id="cartesia-language",
    ),
    pytest.param(
        config(stt_config=_stt(provider="deepgram", encoding="pcm_s16le")),
        "Failed to start voice manager: STT error: Connection failed: Connection channel closed",
        id="deepgram-encoding",
    ),
    pytest.param(
        config(
            stt_config=_stt(
                provider="google", model="latest_long", auth={"credentials": NO_PROJECT_SA}
            )
        ),
        PROJECT_REQUIRED,
        id="google-stt-project",
    ),
    pytest.param(
        config(
            stt_config=_stt(provider="google", model="proj:latest_long", auth={"credentials": "{"})
        ),
        "Failed to create voice manager: STT error: Configuration error: Invalid JSON content: "
        "must be a JSON object",
        id="google-stt-json",
    ),
    pytest.param(
        config(
            stt_config=_stt(
                provider="google", model="p:m", auth={"credentials": "../etc/creds.json"}
            )
        ),
        "Failed to create voice manager: STT error: Configuration error: Invalid credential "
        "file path: path traversal not allowed",
        id="google-stt-traversal",
    ),
    pytest.param(
        config(
            tts_config=_tts(
                provider="google", voice_id="en-US-Wavenet-D", auth={"credentials": NO_PROJECT_SA}
            )
        ),
        # Built before the project is looked for: inline JSON must be a service account
        # key, which always names a project (test_google_credentials.py has the rest).
        "Failed to create voice manager: TTS error: Connection failed: Google Cloud "
        "authentication failed: Failed to initialize credentials from JSON content: cannot "
        "parse the credentials file missing field `private_key_id`",
        id="google-tts-not-a-key",
    ),
    pytest.param(
        # Provider objects are built TTS first: Google TTS's refusal wins over STT's.
        config(
            stt_config=_stt(provider="google", model="m", auth={"credentials": NO_PROJECT_SA}),
            tts_config=_tts(provider="google", auth={"credentials": "/nope/creds.json"}),
        ),
        "Failed to create voice manager: TTS error: Invalid configuration: Credential file "
        "not found: /nope/creds.json",
        id="tts-built-first",
    ),
]


@pytest.mark.parametrize(("message", "text"), FATAL)
async def test_fatal_refusals_send_the_servers_text_and_no_ready(
    server: LocalServer, http: aiohttp.ClientSession, message: dict[str, Any], text: str
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, message)
        assert await recv_json(ws) == {"type": "error", "message": text}
        # No ready: the next frame answers the next message; the socket stays open.
        await send(ws, {"type": "speak", "text": "hi"})
        assert await recv_json(ws) == {
            "type": "error",
            "message": "Voice manager not configured. Send config message with audio=true first.",
        }
    assert server.records.last_session.sent_of_type("ready") == []


@pytest.mark.parametrize(("message", "text"), FATAL)
async def test_a_failed_re_config_keeps_the_previous_voice_manager(
    server: LocalServer, http: aiohttp.ClientSession, message: dict[str, Any], text: str
) -> None:
    # Section 6.2: Sayna replaces the voice manager only with a new one it built and
    # started; a refused re-config (6.11) leaves the working one in place.
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, message)
        assert await recv_json(ws) == {"type": "error", "message": text}
        await send(ws, {"type": "speak", "text": "one two"})
        await ws.send_bytes(render_words(["one", "two"], 16000) + bytes(16000))
        audio = bytearray()
        completed, heard = False, None
        while not (completed and heard):
            frame = await recv(ws)
            if isinstance(frame, bytes):
                audio += frame
                continue
            assert frame["type"] in ("stt_result", "tts_playback_complete"), frame
            completed = completed or frame["type"] == "tts_playback_complete"
            if frame["type"] == "stt_result" and frame["is_speech_final"]:
                heard = frame["transcript"]
    assert bytes(audio) == render_words(["one", "two"], 16000)
    assert heard == "word word"
    assert len(server.records.last_session.sent_of_type("ready")) == 1


ACCEPTED = [
    pytest.param(_stt(provider="cartesia", language=" "), id="cartesia-blank-language"),
    pytest.param(_stt(provider="elevenlabs", sample_rate=11025), id="elevenlabs-any-rate"),
    pytest.param(_stt(provider="azure", language="xx-nope", channels=2), id="azure-unchecked"),
    pytest.param(_stt(provider="google", model="proj:latest_long"), id="google-model-project"),
    pytest.param(_stt(provider="google", model="latest_long"), id="google-server-credentials"),
    # required_string (auth.rs:67) refuses only "": a blank key is passed on to Deepgram.
    pytest.param(_stt(auth={"api_key": " "}), id="blank-api-key"),
    pytest.param(_stt(provider="AZURE", auth={"api_key": "\t", "region": " "}), id="blank-azure"),
]


@pytest.mark.parametrize("stt", ACCEPTED)
async def test_values_sayna_does_not_check_get_ready(
    server: LocalServer, http: aiohttp.ClientSession, stt: dict[str, Any]
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stt_config=stt))


async def test_non_fatal_errors_come_before_ready(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    clip = base64.b64encode(bytes(100)).decode()
    message = config(loading_audio={"data": clip, "format": "pcm", "sample_rate": 16000})
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, message)
        assert await recv_json(ws) == {
            "type": "error",
            "message": "loading_audio requires audio to be enabled and a livekit configuration",
        }
        assert (await recv_json(ws))["type"] == "ready"


async def test_a_clip_for_a_zero_rate_track_is_dropped_after_an_error(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # Section 6.11, HEAD only: the clip is converted to the track's rate (the TTS rate).
    clip = base64.b64encode(bytes(16000)).decode()  # 500 ms of 16 kHz mono silence
    message = config(
        tts_config={**TTS, "sample_rate": 0},
        livekit={"room_name": "r"},
        loading_audio={"data": clip, "format": "pcm", "sample_rate": 16000},
    )
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, message)
        assert await recv_json(ws) == {
            "type": "error",
            "message": "loading audio sample rate must be non-zero",
        }
        assert (await recv_json(ws))["type"] == "ready"
        await send(ws, {"type": "loading_start"})
        assert await recv_json(ws) == {"type": "error", "message": "no loading audio configured"}


async def test_speak_rest_reports_tts_build_errors(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    body = {
        "text": "hello",
        "tts_config": _tts(provider="google", auth={"credentials": json.dumps(NO_PROJECT_SA)}),
    }
    async with http.post(server.url + "/speak", json=body) as response:
        assert response.status == 400  # a request-scoped auth object + an auth failure
        assert await response.json() == {
            "error": "Failed to create TTS provider: Connection failed: Google Cloud "
            "authentication failed: Failed to initialize credentials from JSON content: cannot "
            "parse the credentials file missing field `private_key_id`"
        }


_UPSTREAM_REFUSED = """
import asyncio, json, sys
from sayna_client import SaynaClient, STTConfig, TTSConfig

async def main():
    client = SaynaClient(
        sys.argv[1],
        STTConfig(provider="cartesia", language="en", sample_rate=11025, channels=1,
                  punctuation=True, encoding="linear16", model=""),
        TTSConfig(provider="deepgram", model="aura-asteria-en"),
    )
    error = asyncio.get_running_loop().create_future()
    ready = []
    client.register_on_ready(lambda message: ready.append(message))
    client.register_on_error(lambda message: error.done() or error.set_result(message.message))
    await client.connect()
    text = await asyncio.wait_for(error, 20)
    await client.disconnect()
    print(json.dumps({"error": text, "ready": len(ready)}))

asyncio.run(main())
"""


async def test_upstream_sdk_sees_the_refusal(server: LocalServer, upstream_python: Path) -> None:
    result = await run_upstream(upstream_python, _UPSTREAM_REFUSED, server.url)
    assert result == {
        "error": "Failed to start voice manager: STT error: Configuration error: Unsupported "
        "sample rate: 11025. Supported rates: [8000, 16000, 22050, 24000, 44100, 48000]",
        "ready": 0,
    }


@pytest.mark.parametrize(
    ("auth", "found"),
    [("dg-key", 'string "dg-key"'), (["k"], "sequence"), (5, "integer `5`")],
)
async def test_an_auth_that_is_not_an_object_is_a_message_format_error(
    server: LocalServer, http: aiohttp.ClientSession, auth: Any, found: str
) -> None:
    # providers/auth.rs: `auth` is `Option<ProviderAuthInput>`, a struct over a map, so
    # serde refuses the whole message before anything of it is stored (6.3).
    text = json.dumps(config(stt_config=_stt(auth=auth)))
    async with http.ws_connect(server.ws_url) as ws:
        await ws.send_str(text)
        assert await recv_json(ws) == {
            "type": "error",
            "message": f"Invalid message format: invalid type: {found}, expected struct "
            f"ProviderAuthInput at line 1 column {len(text)}",
        }
        await send(ws, {"type": "speak", "text": "hi"})  # no audio flag was stored either
        assert await recv_json(ws) == {
            "type": "error",
            "message": "Audio processing is disabled. Send config message with audio=true first.",
        }


async def test_speak_rest_refuses_an_auth_that_is_not_an_object(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    body = '{"text":"hi","tts_config":{"provider":"deepgram","model":"","auth":"dg-key"}}'
    headers = {"Content-Type": "application/json"}
    async with http.post(server.url + "/speak", data=body, headers=headers) as response:
        assert response.status == 422
        assert response.headers["Content-Type"].startswith("text/plain")
        assert await response.text() == (
            "Failed to deserialize the JSON body into the target type: tts_config.auth: "
            'invalid type: string "dg-key", expected struct ProviderAuthInput at line 1 '
            f"column {body.index('dg-key') + 7}"
        )


async def test_speak_rest_does_not_trim_provider_names(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    body = {"text": "hi", "tts_config": _tts(provider="deepgram\t")}
    async with http.post(server.url + "/speak", json=body) as response:
        assert response.status == 400
        assert await response.json() == {"error": "Unsupported provider: deepgram\t"}
    body = {"text": "hi", "tts_config": _tts(auth={"api_key": " "})}
    async with http.post(server.url + "/speak", json=body) as response:
        assert response.status == 200
