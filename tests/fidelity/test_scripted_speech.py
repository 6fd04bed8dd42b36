"""Issue #15 item 7: a test tells the fake engine what the caller says next.

Real audio frames still flow: the fake recogniser hears utterances in the bursts of
the audio and ends each after 300 ms of silence; a script only decides the words.
Scripts are set through ``LocalServer.script_speech`` or ``POST /_local/speech``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from helpers.wire import collect, config, configure
from sayna_client import SaynaClient, STTConfig, STTResultMessage, TTSConfig
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

SILENCE = bytes(16000 * 2 // 2)  # 500 ms


def _ends(message: dict[str, Any]) -> bool:
    return bool(message.get("type") == "stt_result" and message["is_speech_final"])


async def _utterance(ws: aiohttp.ClientWebSocketResponse, bursts: int) -> list[dict[str, Any]]:
    await ws.send_bytes(render_words(["x"] * bursts, 16000) + SILENCE)
    frames, _ = await collect(ws, _ends)
    return [f for f in frames if f.get("type") == "stt_result"]


async def test_a_queue_of_utterances(server: LocalServer, http: aiohttp.ClientSession) -> None:
    pending = server.script_speech("hello, I need help", "my  order is late")
    assert [line.text for line in pending] == ["hello, I need help", "my order is late"]
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        first = await _utterance(ws, 4)
        second = await _utterance(ws, 2)
        third = await _utterance(ws, 1)  # the script ran out: the engine's own words
    assert first[-1]["transcript"] == "hello, I need help"
    # Interims reveal the scripted words one burst at a time.
    interims = [r["transcript"] for r in first if not r["is_final"]]
    assert interims
    assert all("hello, I need help".startswith(text) for text in interims)
    assert [len(text) for text in interims] == sorted(len(text) for text in interims)
    assert second[-1]["transcript"] == "my order is late"
    assert third[-1]["transcript"] == "word"
    assert server.scripted_speech == []


async def test_one_line_per_burst(server: LocalServer, http: aiohttp.ClientSession) -> None:
    server.script_speech("yes", "no", "maybe", unit="burst")
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        results = await _utterance(ws, 4)
    assert results[-1]["transcript"] == "yes no maybe word"
    assert results[-1]["is_final"] is True


async def test_lines_can_target_one_session(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.script_speech("for b only", stream_id="b")
    server.script_speech("for anyone")
    async with http.ws_connect(server.ws_url) as a, http.ws_connect(server.ws_url) as b:
        await configure(a, config(stream_id="a"))
        await configure(b, config(stream_id="b"))
        heard_a = await _utterance(a, 2)
        heard_b = await _utterance(b, 2)
    assert heard_a[-1]["transcript"] == "for anyone"
    assert heard_b[-1]["transcript"] == "for b only"


def test_bad_scripts_are_refused() -> None:
    server = LocalServer()
    with pytest.raises(ValueError, match="unit must be one of utterance, burst"):
        server.script_speech("x", unit="word")
    with pytest.raises(ValueError, match="non-blank strings"):
        server.script_speech("  ")


async def test_control_routes(server: LocalServer, http: aiohttp.ClientSession) -> None:
    body = {"transcripts": ["book a table", "for two"], "unit": "utterance"}
    async with http.post(server.url + "/_local/speech", json=body) as response:
        assert response.status == 200
        pending = (await response.json())["pending"]
    assert pending == [
        {"text": "book a table", "unit": "utterance", "stream_id": None},
        {"text": "for two", "unit": "utterance", "stream_id": None},
    ]
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        assert (await _utterance(ws, 3))[-1]["transcript"] == "book a table"
    async with http.get(server.url + "/_local/speech") as response:
        assert [line["text"] for line in (await response.json())["pending"]] == ["for two"]
    async with http.delete(server.url + "/_local/speech") as response:
        assert (await response.json()) == {"pending": []}
    async with http.post(server.url + "/_local/speech", json={"transcripts": []}) as response:
        assert response.status == 400
        assert "non-empty list" in (await response.json())["error"]
    bad = {"transcripts": ["x"], "unit": "sentence"}
    async with http.post(server.url + "/_local/speech", json=bad) as response:
        assert response.status == 400


async def test_dialog_logic_with_the_seed_api(server: LocalServer) -> None:
    # An agent that answers each finished turn; the caller's lines are scripted.
    server.script_speech("what are your opening hours", "thanks, bye")
    client = SaynaClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-3", sample_rate=16000),
        TTSConfig(provider="deepgram", model="aura-asteria-en", sample_rate=16000),
    )
    heard: list[str] = []
    turn = asyncio.Event()

    async def on_result(result: STTResultMessage) -> None:
        if result.is_final and result.is_speech_final and result.transcript:
            heard.append(result.transcript)
            await client.speak("We open at nine." if "hours" in result.transcript else "Bye!")
            turn.set()

    client.register_on_stt_result(on_result)
    await client.connect()
    try:
        for _ in range(2):
            turn.clear()
            await client.on_audio_input(render_words(["x"] * 3, 16000) + SILENCE)
            await asyncio.wait_for(turn.wait(), 10)
    finally:
        await client.disconnect()
    assert heard == ["what are your opening hours", "thanks, bye"]
    spoken = [m["text"] for m in server.records.last_session.messages if m["type"] == "speak"]
    assert spoken == ["We open at nine.", "Bye!"]
