"""REST endpoints: statuses, headers, error bodies, axum-style rejections."""

from __future__ import annotations

import io
import struct
from typing import Any

import aiohttp
import pytest

from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

TTS: dict[str, Any] = {"provider": "deepgram", "model": ""}


async def test_health_is_open_and_compact(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "/") as response:
        assert response.status == 200
        assert response.headers["Content-Type"] == "application/json"
        assert await response.read() == b'{"status":"OK"}'


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/nope", 404), ("POST", "/", 405), ("GET", "/speak", 405), ("PUT", "/voices", 405)],
)
async def test_unknown_path_and_wrong_method_have_empty_bodies(
    server: LocalServer, http: aiohttp.ClientSession, method: str, path: str, status: int
) -> None:
    async with http.request(method, server.url + path) as response:
        assert response.status == status
        assert await response.read() == b""


async def test_a_wrong_method_on_a_protected_path_needs_the_key_first() -> None:
    # main.rs: the auth layer wraps each protected route, its 405 fallback included;
    # unknown paths and the public routes answer 404/405 without a key.
    async with LocalServer(api_key="k") as server, aiohttp.ClientSession() as http:
        for method, path, status in (
            ("PUT", "/speak", 401),
            ("GET", "/livekit/token", 401),
            ("POST", "/livekit/rooms", 401),
            ("POST", "/ws", 401),
            ("POST", "/", 405),
            ("GET", "/livekit/webhook", 405),
            ("GET", "/nope", 404),
        ):
            async with http.request(method, server.url + path) as response:
                assert response.status == status, (method, path)
        headers = {"Authorization": "Bearer k"}
        async with http.put(server.url + "/speak", headers=headers) as response:
            assert response.status == 405
            assert response.headers["Allow"] == "POST"
            assert await response.read() == b""


async def test_repeated_fields_in_bodies_are_422() -> None:
    headers = {"Content-Type": "application/json"}
    token = '{"room_name":"a","room_name":"b","participant_name":"p","participant_identity":"i"}'
    speak = '{"text":"hi","tts_config":{"provider":"deepgram","provider":"x","model":""}}'
    prefix = "Failed to deserialize the JSON body into the target type: "
    async with LocalServer() as server, aiohttp.ClientSession() as http:
        async with http.post(server.url + "/livekit/token", data=token, headers=headers) as r:
            assert r.status == 422
            assert await r.text() == prefix + "duplicate field `room_name` at line 1 column 28"
        async with http.post(server.url + "/speak", data=speak, headers=headers) as r:
            assert r.status == 422
            column = speak.index('"provider"', 40) + len('"provider"')
            assert await r.text() == (
                f"{prefix}tts_config: duplicate field `provider` at line 1 column {column}"
            )
        async with http.post(server.url + "/speak", data='{"text":"hi",}', headers=headers) as r:
            assert r.status == 400
            assert await r.text() == (
                "Failed to parse the request body as JSON: trailing comma at line 1 column 14"
            )


async def test_an_array_or_object_of_the_wrong_type_is_placed_before_it(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # serde_json refuses it from a peek at its bracket (peek_invalid_type).
    headers = {"Content-Type": "application/json"}
    prefix = "Failed to deserialize the JSON body into the target type: "
    for body, detail in (
        ('{"text": ["a"]}', "text: invalid type: sequence, expected a string at line 1 column 9"),
        ('{"text":{}}', "text: invalid type: map, expected a string at line 1 column 8"),
    ):
        async with http.post(server.url + "/speak", data=body, headers=headers) as response:
            assert response.status == 422
            assert await response.text() == prefix + detail


async def test_voices_lists_fake_catalogue_under_provider_keys(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/voices") as response:
        assert response.status == 200
        voices = await response.json()
    assert set(voices) == {"fake", "deepgram", "elevenlabs"}
    for entries in voices.values():
        assert entries
        for voice in entries:
            assert set(voice) == {"id", "sample", "name", "accent", "gender", "language"}
            assert all(isinstance(value, str) for value in voice.values())


async def test_speak_returns_pcm_with_format_headers(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.post(server.url + "/speak", json={"text": "one two", "tts_config": TTS}) as r:
        assert r.status == 200
        body = await r.read()
        assert r.headers["Content-Type"] == "audio/pcm"
        assert r.headers["x-audio-format"] == "linear16"
        assert r.headers["x-sample-rate"] == "24000"
        assert int(r.headers["Content-Length"]) == len(body)
    assert body == render_words(["one", "two"], 24000)
    request = server.records.requests_to("/speak")[0]
    assert request.json == {"text": "one two", "tts_config": TTS}
    assert request.status == 200


@pytest.mark.parametrize("rate", [0, 500_000_000])
async def test_speak_refuses_a_rate_the_engine_cannot_render(
    server: LocalServer, http: aiohttp.ClientSession, rate: int
) -> None:
    # 0 was a 500 quoting Python ("float division by zero"); 500 MHz rendered
    # gigabytes on the event loop, stalling every other request for seconds.
    body = {"text": "one two", "tts_config": {**TTS, "sample_rate": rate}}
    async with http.post(server.url + "/speak", json=body) as r:
        assert r.status == 500
        assert await r.json() == {
            "error": f"Failed to synthesize speech: unsupported sample_rate {rate}"
        }


@pytest.mark.parametrize(
    ("audio_format", "content_type"),
    [
        ("wav", "audio/wav"),
        ("mulaw", "audio/basic"),
        ("mp3", "audio/mpeg"),
        ("opus", "audio/ogg"),
        ("pcm", "audio/pcm"),
        ("mp3_44100_128", "application/octet-stream"),
    ],
)
async def test_speak_content_type_follows_requested_format(
    server: LocalServer, http: aiohttp.ClientSession, audio_format: str, content_type: str
) -> None:
    config = {**TTS, "audio_format": audio_format, "sample_rate": 8000}
    async with http.post(server.url + "/speak", json={"text": "hi", "tts_config": config}) as r:
        assert r.status == 200
        body = await r.read()
        assert r.headers["Content-Type"] == content_type
        assert r.headers["x-audio-format"] == audio_format
        assert r.headers["x-sample-rate"] == "8000"
    pcm_len = len(render_words(["hi"], 8000))
    if audio_format == "wav":
        assert body[:4] == b"RIFF"
        assert struct.unpack_from("<I", body, 24)[0] == 8000
        assert len(body) == 44 + pcm_len
    elif audio_format == "mulaw":
        assert len(body) == pcm_len // 2


async def test_speak_length_follows_text_and_speaking_rate(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    sizes = []
    for text, rate in (("a", 1.0), ("a b c", 1.0), ("a b c", 2.0)):
        # (ElevenLabs: Sayna's Deepgram and Cartesia requests carry no rate)
        config = {"provider": "elevenlabs", "model": "", "voice_id": "v", "speaking_rate": rate}
        async with http.post(server.url + "/speak", json={"text": text, "tts_config": config}) as r:
            sizes.append(len(await r.read()))
    assert sizes[1] == 3 * sizes[0]
    assert sizes[2] == sizes[1] // 2


async def test_speak_applies_pronunciations(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    config = {**TTS, "pronunciations": [{"word": "AI", "pronunciation": "ay eye"}]}
    async with http.post(server.url + "/speak", json={"text": "AI", "tts_config": config}) as r:
        body = await r.read()
    assert body == render_words(["ay", "eye"], 24000)


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        ({"text": "  ", "tts_config": TTS}, 400, "Text cannot be empty"),
        (
            {"text": "hi", "tts_config": {"provider": "nope", "model": ""}},
            400,
            "Unsupported provider: nope",
        ),
        (
            {"text": "hi", "tts_config": {**TTS, "auth": {"token": "x"}}},
            400,
            "Invalid auth input for provider deepgram: Unsupported auth field(s) for provider "
            "deepgram: token",
        ),
        (
            {
                "text": "hi",
                "tts_config": {"provider": "azure", "model": "", "auth": {"api_key": "k"}},
            },
            400,
            "Invalid auth input for provider azure: Auth field 'region' is required for provider "
            "azure",
        ),
        (
            {"text": "hi", "tts_config": {**TTS, "auth": {"api_key": 5}}},
            400,
            "Invalid auth input for provider deepgram: Auth field 'api_key' must be a string for "
            "provider deepgram",
        ),
        (
            {
                "text": "hi",
                "tts_config": {"provider": "google", "model": "", "auth": {"credentials": 1}},
            },
            400,
            "Invalid auth input for provider google: Auth field 'credentials' must be a string or "
            "JSON object for provider google",
        ),
    ],
)
async def test_speak_handler_errors(
    server: LocalServer, http: aiohttp.ClientSession, body: Any, status: int, message: str
) -> None:
    async with http.post(server.url + "/speak", json=body) as response:
        assert response.status == status
        assert await response.json() == {"error": message}


async def test_speak_accepts_valid_provider_auth(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    key = {  # a service account key as google-cloud-auth reads one (the key is not used)
        "client_email": "sa@p.iam.gserviceaccount.com",
        "private_key_id": "k1",
        "private_key": "-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----\n",
        "project_id": "p",
    }
    config = {"provider": "Google", "model": "", "auth": {"credentials": key}}
    async with http.post(server.url + "/speak", json={"text": "hi", "tts_config": config}) as r:
        assert r.status == 200


async def test_json_rejections_are_plain_text(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    url = server.url + "/speak"
    async with http.post(url, data=b'{"text":"hi"}') as response:
        assert response.status == 415
        assert response.content_type == "text/plain"
        assert await response.text() == "Expected request with `Content-Type: application/json`"
    headers = {"Content-Type": "application/json"}
    async with http.post(url, data=b'{"text": ', headers=headers) as response:
        assert response.status == 400
        assert (await response.text()).startswith("Failed to parse the request body as JSON: ")
    async with http.post(url, data=b'{"text":"hi"}', headers=headers) as response:
        assert response.status == 422
        assert await response.text() == (
            "Failed to deserialize the JSON body into the target type: missing field "
            "`tts_config` at line 1 column 13"
        )
    async with http.post(url, data=b'{"text":5,"tts_config":{}}', headers=headers) as response:
        assert response.status == 422
        assert await response.text() == (
            "Failed to deserialize the JSON body into the target type: text: invalid type: "
            "integer `5`, expected a string at line 1 column 9"
        )
    big = b'{"text":"' + b"a" * (2 * 1024 * 1024) + b'"}'
    async with http.post(url, data=io.BytesIO(big), headers=headers) as response:
        assert response.status == 413
        assert response.content_type == "text/plain"


async def test_recording_path_validation(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.get(server.url + "/recording/a%2Fb") as response:
        assert response.status == 400
        assert await response.json() == {"error": "Invalid stream_id format"}
    async with http.get(server.url + "/recording/a..b") as response:
        assert response.status == 400
    async with http.get(server.url + "/recording/missing") as response:
        assert response.status == 404
        assert await response.json() == {"error": "Recording not found: missing"}


async def test_get_routes_answer_head_like_axum(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.head(server.url + "/") as response:
        assert response.status == 200
        assert await response.read() == b""


async def test_plain_get_on_ws_is_rejected_before_upgrade(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.get(server.url + "/ws") as response:
        assert response.status == 400
        assert await response.text() == "Connection header did not include 'upgrade'"
    assert server.records.sessions == []
