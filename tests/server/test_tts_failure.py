"""Scripted TTS failures (``LocalServer.fail_tts``): the messages Sayna sends when its TTS
provider fails a request (protocol section 6.7), over a real socket."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from helpers.wire import collect, config, configure, of_type, send
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

CHUNK = 640  # 20 ms at 16 kHz


def _types(frames: list[Any]) -> list[str]:
    return ["<audio>" if isinstance(f, bytes) else f["type"] for f in frames]


async def test_a_failed_request_sends_the_error_then_the_completion(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.fail_tts("Provider error: API error (401 Unauthorized): bad key")
    refused = "TTS error: Provider error: API error (401 Unauthorized): bad key"
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "one two"})
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert audio == b""
    assert frames == [
        {"type": "error", "message": refused},
        {"type": "tts_playback_complete", "timestamp": frames[1]["timestamp"]},
    ]
    assert server.tts_failures == []  # used up


async def test_a_failure_after_some_audio_and_the_request_queued_behind_it(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.fail_tts(after_chunks=3)
    expected = render_words(["one", "two"], 16000)[: 3 * CHUNK] + render_words(["three"], 16000)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "one two"})
        await send(ws, {"type": "speak", "text": "three"})
        frames: list[Any] = []
        audio = b""
        while len(audio) < len(expected) or _types(frames)[-1] != "tts_playback_complete":
            more, _ = await collect(ws, of_type("tts_playback_complete"), with_audio_frames=True)
            frames += more
            audio += b"".join(f for f in more if isinstance(f, bytes))
    assert audio == expected
    types = _types(frames)
    # Three chunks, the error, then the next request's audio and its completion; a
    # completion right after the error too if "three" reached the server only after
    # the failure (the queue was empty then).
    assert types[:4] == ["<audio>"] * 3 + ["error"]
    assert frames[3]["message"].startswith("TTS error: Provider error: API error (500")
    rest = [t for t in types[4:] if t != "tts_playback_complete"]
    assert set(rest) == {"<audio>"}
    assert types[-1] == "tts_playback_complete"
    assert types.count("tts_playback_complete") in (1, 2)
    if types.count("tts_playback_complete") == 2:
        assert types[4] == "tts_playback_complete"


async def test_a_speech_shorter_than_after_chunks_fails_after_its_last_chunk(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.fail_tts("quota exceeded", after_chunks=10_000)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "one"})
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert audio == render_words(["one"], 16000)
    assert _types(frames) == ["error", "tts_playback_complete"]
    assert frames[0]["message"] == "TTS error: quota exceeded"


async def test_failures_go_to_the_session_they_name_and_are_used_in_order(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.fail_tts("first", stream_id="other")
    pending = server.fail_tts("second", times=2)
    assert [(f.message, f.stream_id) for f in pending] == [
        ("first", "other"),
        ("second", None),
        ("second", None),
    ]
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stream_id="mine"))
        await send(ws, {"type": "speak", "text": "one"})
        frames, _ = await collect(ws, of_type("tts_playback_complete"))
    assert frames[0] == {"type": "error", "message": "TTS error: second"}
    assert [f.message for f in server.tts_failures] == ["first", "second"]
    server.clear_tts_failures()
    assert server.tts_failures == []


async def test_a_refused_speak_gets_its_error_and_nothing_else(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # As Sayna with Google TTS (synthesis inline) or a provider not connected: the
    # speak itself fails, with no audio and no completion; the next one is spoken.
    server.fail_tts("Provider error: quota exceeded", refuse=True)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "one two"})
        await send(ws, {"type": "speak", "text": "three"})
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert frames[0] == {
        "type": "error",
        "message": "Failed to synthesize speech: TTS error: Provider error: quota exceeded",
    }
    assert _types(frames[1:]) == ["tts_playback_complete"]
    assert audio == render_words(["three"], 16000)


async def test_refusals_and_synthesis_failures_are_taken_by_their_own_kind(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.fail_tts("in synthesis")
    server.fail_tts("at the speak", refuse=True)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "one"})  # refused: the refusal is its
        await send(ws, {"type": "speak", "text": "two"})  # synthesized: fails then
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert audio == b""
    assert [f.get("message") for f in frames] == [
        "Failed to synthesize speech: TTS error: at the speak",
        "TTS error: in synthesis",
        None,
    ]
    assert server.tts_failures == []


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"after_chunks": -1}, "after_chunks"),
        ({"times": 0}, "times"),
        ({"times": True}, "times"),
        ({"after_chunks": 2, "refuse": True}, "refuse"),
    ],
)
def test_bad_failure_scripts_are_refused(kwargs: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        LocalServer().fail_tts(**kwargs)


async def test_failures_scripted_over_http_fail_the_next_request(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    """``/_local/tts-failures``: the same script for a test in another process."""
    url = server.url + "/_local/tts-failures"
    body = {"message": "quota exceeded", "after_chunks": 1, "times": 2, "stream_id": "s-1"}
    async with http.post(url, json=body) as response:
        assert response.status == 200
        pending = (await response.json())["pending"]
    expected = {"message": "quota exceeded", "after_chunks": 1, "stream_id": "s-1", "refuse": False}
    assert pending == [expected, expected]
    async with http.delete(url) as response:
        assert (await response.json())["pending"] == []
    async with http.post(url, json={"message": "quota exceeded"}) as response:
        assert response.status == 200
    async with http.get(url) as response:
        assert len((await response.json())["pending"]) == 1

    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": "one two"})
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert audio == b""
    assert _types(frames) == ["error", "tts_playback_complete"]
    assert frames[0]["message"] == "TTS error: quota exceeded"
    assert server.tts_failures == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"times": 0}, "times is a number of requests >= 1"),
        ({"after_chunks": "2"}, "after_chunks is a number of chunks >= 0"),
        ({"refuse": "yes"}, "'refuse' must be true or false"),
        ({"stream_id": 5}, "'stream_id' must be a string"),
        ({"message": 5}, "'message' must be a string"),
        ({"refuse": True, "after_chunks": 1}, "a refused speak has no audio"),
        ({"after": 1}, "unknown field(s): after"),
    ],
)
async def test_bad_failure_scripts_over_http_are_refused(
    server: LocalServer, http: aiohttp.ClientSession, body: dict[str, Any], problem: str
) -> None:
    async with http.post(server.url + "/_local/tts-failures", json=body) as response:
        assert response.status == 400
        assert problem in (await response.json())["error"]
    assert server.tts_failures == []
