"""``LocalServer.wait_transcribed``: the server says when its recogniser has decoded the
audio a client sent, and how many results it sent for it (no clock involved)."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from helpers.wire import configure, recv
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

SILENCE = bytes(16000 * 2 // 2)  # 0.5 s: more than the fake recogniser's endpoint


async def test_it_returns_the_count_of_results_sent_for_the_audio(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    audio = render_words(["a", "b"], 16000) + SILENCE + render_words(["c"], 16000) + SILENCE
    async with http.ws_connect(server.ws_url) as ws:
        ready = await configure(ws)
        for start in range(0, len(audio), 640):
            await ws.send_bytes(audio[start : start + 640])
        count = await server.wait_transcribed(ready["stream_id"], len(audio), timeout=10)
        results = []
        while len(results) < count:
            frame = await recv(ws)
            if isinstance(frame, dict) and frame["type"] == "stt_result":
                results.append(frame)
    assert count == len(server.records.last_session.sent_of_type("stt_result"))
    finals = [r["transcript"] for r in results if r["is_speech_final"]]
    assert len(finals) == 2  # both utterances, each ended by its silence


async def test_it_refuses_an_unknown_session_and_a_negative_count(server: LocalServer) -> None:
    with pytest.raises(LookupError, match="no open session 'nope'"):
        await server.wait_transcribed("nope", 0)
    with pytest.raises(ValueError, match="audio_bytes must be 0 or more"):
        await server.wait_transcribed("nope", -1)


async def test_it_fails_when_the_session_ends_first(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        ready = await configure(ws)
        await ws.send_bytes(bytes(640))
        waiting = asyncio.ensure_future(server.wait_transcribed(ready["stream_id"], 10_000))
        await asyncio.sleep(0)  # (one turn: the wait has started)
        assert not waiting.done()
    with pytest.raises(ConnectionError, match="ended after 640 of 10000 bytes"):
        await asyncio.wait_for(waiting, 10)
