"""Issue #15 item 6: TTS paced like real speech, LiveKit room expiry, the config file.

* TTS audio (section 6.7) arrives at about real time after a short first-audio delay,
  so ``clear`` during speech cuts it; ``tts_realtime=False`` / ``--fast-tts`` sends it
  as fast as it is made (benchmarks).
* Rooms everyone left close after LiveKit's ``departure_timeout`` (20 s), rooms nobody
  joined after its ``empty_timeout`` (300 s).
* ``sayna serve --config FILE`` reads the real server's config keys (JSON always, YAML
  when PyYAML is installed).
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import pytest

from helpers import internals
from helpers.serve import sayna_serve
from helpers.wire import collect, configure, of_type, send
from sayna_client.server import LocalServer
from sayna_client.server.config_file import ConfigFileError, load_config_file
from sayna_client.server.engines.fake import render_words
from sayna_client.server.voice import FIRST_AUDIO_DELAY

from .conftest import run_upstream


async def test_speech_takes_as_long_as_it_sounds(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    words = ["one", "two", "three", "four", "five"]
    duration = len(render_words(words, 16000)) / (16000 * 2)  # 0.9 s
    loop = asyncio.get_running_loop()
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        started = loop.time()
        await send(ws, {"type": "speak", "text": " ".join(words)})
        _, audio = await collect(ws, of_type("tts_playback_complete"))
        elapsed = loop.time() - started
    assert audio == render_words(words, 16000)
    # Pacing can only be late, never early: the last 20 ms chunk leaves after the audio
    # before it has played (plus the first-audio delay).
    assert elapsed >= FIRST_AUDIO_DELAY + duration - 0.02


async def test_clear_during_speech_cuts_it(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    text = " ".join(["word"] * 50)  # 9 s of speech
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": text})
        first = await ws.receive(timeout=10)
        assert first.type == aiohttp.WSMsgType.BINARY
        await send(ws, {"type": "clear"})
        # A barge-in, then the agent's answer: synthesis is FIFO, so uncut speech would
        # all arrive before the answer's audio and its completion.
        await send(ws, {"type": "speak", "text": "ok"})
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert [f["type"] for f in frames] == ["tts_playback_complete"]  # one, the answer's
    answer = render_words(["ok"], 16000)
    assert audio.endswith(answer)
    assert len(first.data) + len(audio) < len(render_words(["w"] * 50, 16000)) // 4


_UPSTREAM_BARGE_IN = """
import asyncio, json, sys
from sayna_client import SaynaClient, STTConfig, TTSConfig

async def main():
    client = SaynaClient(
        sys.argv[1],
        STTConfig(provider="deepgram", language="en-US", sample_rate=16000, channels=1,
                  punctuation=True, encoding="linear16", model="nova-3"),
        TTSConfig(provider="deepgram", model="aura-asteria-en", audio_format="linear16",
                  sample_rate=16000),
    )
    ready, first, done = asyncio.Event(), asyncio.Event(), asyncio.Event()
    received = []
    completions = []
    client.register_on_ready(lambda message: ready.set())

    def on_complete(message):
        completions.append(message)
        done.set()


    def on_audio(chunk):
        received.append(len(chunk))
        first.set()

    client.register_on_tts_audio(on_audio)
    client.register_on_tts_playback_complete(on_complete)
    await client.connect()
    await asyncio.wait_for(ready.wait(), 20)
    await client.speak(" ".join(["word"] * 50))
    await asyncio.wait_for(first.wait(), 20)
    await client.clear()  # the caller barged in
    # The agent answers; synthesis is FIFO, so uncut speech would all arrive first.
    await client.speak("ok")
    await asyncio.wait_for(done.wait(), 30)
    await client.disconnect()
    print(json.dumps({"bytes": sum(received), "completions": len(completions)}))

asyncio.run(main())
"""


async def test_upstream_sdk_barge_in_cuts_speech(
    server: LocalServer, upstream_python: Path
) -> None:
    result = await run_upstream(upstream_python, _UPSTREAM_BARGE_IN, server.url)
    # One completion (the answer's, none for the cleared speech), and far less than the
    # 9 s of speech asked for arrived before it.
    assert result["completions"] == 1
    assert 0 < result["bytes"] < len(render_words(["w"] * 50, 16000)) // 4


async def test_fast_tts_sends_everything_without_pacing(http: aiohttp.ClientSession) -> None:
    async with LocalServer(tts_realtime=False) as server, http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": " ".join(["word"] * 300)})  # 54 s of speech
        _, audio = await collect(ws, of_type("tts_playback_complete"), timeout=30)
    assert audio == render_words(["w"] * 300, 16000)


async def test_rooms_everyone_left_expire() -> None:
    async with LocalServer(room_departure_timeout=0.05, room_empty_timeout=0.05) as server:
        await server.inject_participant("left", "a")
        await server.inject_participant("stays", "b")
        await server.inject_participant_left("left", "a")
        await server.records.wait_for(lambda: "left" not in server.rooms)
        assert "stays" in server.rooms


async def test_rooms_nobody_joined_expire(http: aiohttp.ClientSession) -> None:
    async with LocalServer(api_key="k", room_empty_timeout=0.05) as server:
        body = {"room_name": "never", "participant_name": "n", "participant_identity": "i"}
        headers = {"Authorization": "Bearer k"}
        async with http.post(server.url + "/livekit/token", json=body, headers=headers) as r:
            assert r.status == 200
        await server.records.wait_for(lambda: "never" not in server.rooms)


async def test_default_room_timeouts_are_livekits() -> None:
    server = LocalServer()
    livekit = internals.server_state(server).livekit
    assert (livekit.departure_timeout, livekit.empty_timeout) == (
        20.0,
        300.0,
    )


def _write(tmp_path: Path, name: str, data: object) -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_config_file_keys_are_the_real_servers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "sayna.json",
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "livekit": {"url": "ws://lk:7880", "public_url": "wss://lk.example.com"},
            "providers": {"deepgram_api_key": "ignored here"},
            "auth": {
                "required": True,
                "api_secrets": [{"id": "t1", "secret": "s1"}, {"id": "t2", "secret": "s2"}],
            },
            "sip": {
                "room_prefix": "call-",
                "hook_secret": "global-secret-0123456789",
                "hooks": [
                    # (with authentication required, Sayna wants an auth_id on every hook)
                    {
                        "host": "Example-SIP.sayna.ai:5063",
                        "url": "http://127.0.0.1:9/h",
                        "auth_id": "t1",
                    },
                    {
                        "host": "b.example.com",
                        "url": "http://127.0.0.1:9/b",
                        "auth_id": "t2",
                        "secret": "own-secret-0123456789",
                    },
                ],
            },
        },
    )
    options = load_config_file(str(path))
    assert options["livekit_url"] == "wss://lk.example.com"
    assert options["api_keys"] == {"s1": "t1", "s2": "t2"}
    assert options["sip_room_prefix"] == "call-"
    assert options["hook_secret"] == "global-secret-0123456789"
    hooks = options["sip_hooks"]
    assert [(h.host, h.auth_id, h.secret) for h in hooks] == [
        ("example-sip.sayna.ai:5063", "t1", None),
        ("b.example.com", "t2", "own-secret-0123456789"),
    ]


def test_auth_is_off_unless_required(tmp_path: Path) -> None:
    # Section 1.6: AUTH_REQUIRED false attaches no tenant, even with secrets configured.
    path = _write(tmp_path, "a.json", {"auth": {"api_secret": "legacy"}})
    assert "api_keys" not in load_config_file(str(path))
    path = _write(tmp_path, "b.json", {"auth": {"required": True, "api_secret": "legacy"}})
    assert load_config_file(str(path))["api_keys"] == {"legacy": "default"}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        ({"sip": {"hooks": [{"host": "h"}]}}, "needs a non-empty 'host' and 'url'"),
        ({"auth": {"required": True}}, "no auth.api_secrets or auth.api_secret"),
        ({"server": {"port": "x"}}, "server.port must be a port number"),
        ([1, 2], "must hold a mapping"),
    ],
)
def test_bad_config_files_name_the_problem(tmp_path: Path, data: object, problem: str) -> None:
    path = _write(tmp_path, "bad.json", data)
    with pytest.raises(ConfigFileError, match=problem):
        load_config_file(str(path))


def test_yaml_needs_pyyaml_or_is_read(tmp_path: Path) -> None:
    path = tmp_path / "sayna.yaml"
    path.write_text("sip:\n  hooks:\n    - host: h.example.com\n      url: http://x/\n")
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]  # noqa: F401
    except ImportError:
        with pytest.raises(ConfigFileError, match="pip install pyyaml"):
            load_config_file(str(path))
    else:
        assert [h.host for h in load_config_file(str(path))["sip_hooks"]] == ["h.example.com"]


async def test_sayna_serve_loads_hooks_from_the_config_file(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    path = _write(
        tmp_path,
        "sayna.json",
        {
            "server": {"port": 0},
            "sip": {"hooks": [{"host": "h.example.com:5063", "url": "http://127.0.0.1:9/"}]},
        },
    )
    # No --port: the file's port (0) applies.
    serve = sayna_serve("--config", str(path), port=None, module="sayna_client")
    async with serve as served, http.get(served.url + "/sip/hooks") as response:
        hooks = (await response.json())["hooks"]
    assert [hook["host"] for hook in hooks] == ["h.example.com:5063"]


def test_outbound_address_comes_from_the_file_or_the_environment(tmp_path: Path) -> None:
    # Sayna merges sip.outbound_address over SIP_OUTBOUND_ADDRESS (merge.rs:334-336); with
    # neither it has none, whatever LocalServer's own default trunk is.
    bare = _write(tmp_path, "bare.json", {"sip": {"room_prefix": "sip-"}})
    assert load_config_file(str(bare), environ={})["sip_outbound_address"] is None
    assert load_config_file(str(_write(tmp_path, "empty.json", {})), environ={}) == {
        "sip_outbound_address": None,
        "recording_storage": False,
    }
    env = {"SIP_OUTBOUND_ADDRESS": "env-pbx.example.com:5060"}
    assert load_config_file(str(bare), environ=env)["sip_outbound_address"] == (
        "env-pbx.example.com:5060"
    )
    own = _write(tmp_path, "own.json", {"sip": {"outbound_address": "pbx.example.com:5060"}})
    assert load_config_file(str(own), environ=env)["sip_outbound_address"] == (
        "pbx.example.com:5060"
    )


@pytest.mark.parametrize(
    ("recording", "environ", "storage"),
    [
        (None, {}, False),
        ({"prefix": "recordings/"}, {}, False),  # a prefix alone selects no backend
        ({"backend": {"type": "s3", "bucket": "b", "region": "r"}}, {}, True),
        (None, {"RECORDING_BACKEND": "gcs"}, True),
        (None, {"RECORDING_BACKEND": " "}, False),
        (None, {"RECORDING_S3_BUCKET": "b"}, True),
        (None, {"RECORDING_GCS_BUCKET": "b"}, True),
        (None, {"RECORDING_PREFIX": "p"}, False),
    ],
)
def test_recording_storage_comes_from_the_file_or_the_environment(
    tmp_path: Path, recording: object, environ: dict[str, str], storage: bool
) -> None:
    # recording.rs resolve: a backend from the file, RECORDING_BACKEND, or inferred from
    # RECORDING_S3_* / RECORDING_GCS_*; none of them, no storage.
    data = {} if recording is None else {"recording": recording}
    path = _write(tmp_path, "sayna.json", data)
    assert load_config_file(str(path), environ=environ)["recording_storage"] is storage


async def test_sayna_serve_config_without_outbound_address_places_no_call(
    tmp_path: Path, http: aiohttp.ClientSession
) -> None:
    # The official examples' sayna.example.yaml has no sip.outbound_address: Sayna started
    # with it answers /sip/call with 500 (handlers/sip/call.rs:366-382).
    path = _write(tmp_path, "sayna.json", {"sip": {"room_prefix": "sip-"}})
    call = {
        "room_name": "out-room",
        "participant_name": "Callee",
        "participant_identity": "callee",
        "from_phone_number": "+15551230000",
        "to_phone_number": "+15559876543",
    }
    serve = sayna_serve("--config", str(path), env={"SIP_OUTBOUND_ADDRESS": ""})
    async with serve as served:
        async with http.post(served.url + "/sip/call", json=call) as response:
            assert response.status == 500
            assert await response.json() == {
                "error": "Outbound address not configured",
                "code": "OUTBOUND_ADDRESS_NOT_CONFIGURED",
            }
        call["sip"] = {"outbound_address": "pbx.example.com:5060"}  # type: ignore[assignment]
        async with http.post(served.url + "/sip/call", json=call) as response:
            assert response.status == 200
        # Nor has it recording storage (no recording section): recording.rs:73-92.
        async with http.get(served.url + "/recording/any-stream") as response:
            assert response.status == 503
            assert await response.json() == {"error": "Recording storage not configured"}


async def test_sayna_serve_refuses_a_bad_config_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", {"auth": {"required": True}})
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sayna_client",
        "serve",
        "--config",
        str(path),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    assert b"no auth.api_secrets or auth.api_secret" in err
