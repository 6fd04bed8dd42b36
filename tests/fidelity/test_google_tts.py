"""Protocol 6.7 and 6.2: Google TTS synthesizes each ``speak`` inline.

Sayna's Google provider makes one HTTP request per ``speak`` inside the handler, sends
every chunk, then ``on_complete`` (tts/google/provider.rs:732-845): one
``tts_playback_complete`` per ``speak``, nothing else is read meanwhile, and its
``clear`` has nothing to cut (provider.rs:847-848). The HTTP providers keep their queue
(test_pacing_rooms_config.py).

Each test ends its burst of messages with an unknown message type: its ``error`` comes
once the messages before it were handled, so the frames before it are all there is.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from helpers.wire import STT, collect, config, configure, send
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

GOOGLE_TTS = {
    "provider": "google",
    "model": "",
    "voice_id": "en-US-Wavenet-D",
    "audio_format": "linear16",
    "sample_rate": 16000,
}
MARKER = {"type": "marker"}


def _is_marker_error(frame: dict[str, Any]) -> bool:
    return frame.get("type") == "error" and "unknown variant `marker`" in frame["message"]


async def _google_session(ws: aiohttp.ClientWebSocketResponse) -> None:
    await configure(ws, config(stt_config=dict(STT), tts_config=dict(GOOGLE_TTS)))


async def test_google_completes_every_speak(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await _google_session(ws)
        await send(ws, {"type": "speak", "text": "first sentence here"})
        await send(ws, {"type": "speak", "text": "second"})
        await send(ws, MARKER)
        frames, audio = await collect(ws, _is_marker_error)
    kinds = [frame["type"] for frame in frames]
    assert kinds == ["tts_playback_complete", "tts_playback_complete", "error"]
    assert audio == render_words(["first", "sentence", "here"], 16000) + render_words(
        ["second"], 16000
    )


async def test_google_clear_cuts_nothing(server: LocalServer, http: aiohttp.ClientSession) -> None:
    words = ["one", "two", "three", "four", "five", "six", "seven", "eight"]
    async with http.ws_connect(server.ws_url) as ws:
        await _google_session(ws)
        await send(ws, {"type": "speak", "text": " ".join(words)})
        await send(ws, {"type": "clear"})  # accepted, silently
        await send(ws, MARKER)
        frames, audio = await collect(ws, _is_marker_error)
    assert [frame["type"] for frame in frames] == ["tts_playback_complete", "error"]
    assert audio == render_words(words, 16000)


async def test_google_failure_fails_the_speak(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    server.fail_tts("Provider error: Google TTS API error (403 Forbidden): denied", after_chunks=2)
    async with http.ws_connect(server.ws_url) as ws:
        await _google_session(ws)
        await send(ws, {"type": "speak", "text": "hello there"})
        await send(ws, MARKER)
        frames, audio = await collect(ws, _is_marker_error)
    assert frames[0] == {
        "type": "error",
        "message": "Failed to synthesize speech: TTS error: Provider error: Google TTS API "
        "error (403 Forbidden): denied",
    }
    assert len(frames) == 2  # no completion
    assert audio == b""  # Google delivers a clip only once it is whole
