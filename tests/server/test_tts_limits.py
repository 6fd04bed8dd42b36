"""TTS requests cannot make the server render without bound: ``speaking_rate`` follows
each provider (protocol section 5.2: Deepgram and Cartesia ignore it, the others get it
within 0.25-4.0), one request renders at most ``MAX_TTS_SECONDS`` of audio and fails
past it in Sayna's words, a long request leaves the event loop turning, and the fake
engine's tone cache is bounded in bytes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import threading
from typing import Any

import aiohttp
import numpy as np
import pytest

from helpers.wire import STT, collect, config, configure, of_type, send
from sayna_client.server import LocalServer
from sayna_client.server.engines import fake
from sayna_client.server.engines.base import TTSRequest
from sayna_client.server.engines.fake import FakeEngine, render_words
from sayna_client.server.engines.local_tts import stream_rendered

RATE = 24000  # the default tts_config sample rate
CAP = 600  # seconds: MAX_TTS_SECONDS
WORD_SECONDS = 0.18  # one fake word at speaking_rate 1.0


async def speak_rest(
    http: aiohttp.ClientSession, server: LocalServer, text: str, **tts: Any
) -> tuple[int, bytes]:
    body = {"text": text, "tts_config": {"provider": "deepgram", "model": "", **tts}}
    async with http.post(server.url + "/speak", json=body) as response:
        return response.status, await response.read()


@pytest.mark.parametrize(
    ("provider", "rate", "rendered_at"),
    [
        ("deepgram", 2.0, 1.0),  # Sayna's Deepgram request has no rate
        ("deepgram", 0.0001, 1.0),
        ("cartesia", 0.0001, 1.0),
        ("elevenlabs", 2.0, 2.0),
        ("elevenlabs", 0.0001, 0.25),
        ("azure", 100.0, 4.0),
        ("fake", 0.5, 0.5),
        ("fake", -3.0, 0.25),
    ],
)
async def test_speaking_rate_follows_the_provider(
    server: LocalServer, http: aiohttp.ClientSession, provider: str, rate: float, rendered_at: float
) -> None:
    status, audio = await speak_rest(
        http, server, "a b c", provider=provider, voice_id="v", speaking_rate=rate
    )
    assert status == 200, audio[:200]
    assert audio == render_words(["a", "b", "c"], RATE, rendered_at)


async def test_google_clamps_the_speaking_rate_as_sayna(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    tts = {"provider": "google", "model": "", "voice_id": "en-US-Wavenet-D"}
    tts.update(audio_format="linear16", sample_rate=16000, speaking_rate=0.0001)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(stt_config=dict(STT), tts_config=tts))
        await send(ws, {"type": "speak", "text": "a b"})
        _frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert audio == render_words(["a", "b"], 16000, 0.25)


async def test_speak_past_the_cap_fails_in_sayna_words(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    status, body = await speak_rest(http, server, "a " * int(CAP / WORD_SECONDS + 1))
    assert status == 500
    error = json.loads(body)["error"]
    assert error.startswith("Failed to synthesize speech: Audio generation failed: ")
    assert f"at most {CAP} s of audio per request" in error
    assert "MAX_TTS_SECONDS" in error
    # Just under the cap is served whole.
    words = int(CAP / WORD_SECONDS)
    status, body = await speak_rest(http, server, "a " * words)
    assert status == 200
    assert len(body) == len(render_words(["a"] * words, RATE))


async def test_the_cap_counts_the_speaking_rate_and_the_sample_rate(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # 1,000 words at a quarter of the speed: 720 s.
    status, body = await speak_rest(
        http, server, "a " * 1000, provider="elevenlabs", voice_id="v", speaking_rate=0.25
    )
    assert status == 500
    assert "this text makes 720 s" in json.loads(body)["error"]
    # Above 48 kHz the cap is 28.8 million samples: 75 s at 384 kHz (500 words: 90 s).
    status, body = await speak_rest(http, server, "a " * 500, sample_rate=384000)
    assert status == 500
    assert "(MAX_TTS_SECONDS; 75 s at 384000 Hz)" in json.loads(body)["error"]


async def test_a_ws_speak_past_the_cap_is_a_tts_error_then_completes() -> None:
    async with (
        LocalServer(tts_realtime=False) as server,
        aiohttp.ClientSession() as http,
        http.ws_connect(server.ws_url) as ws,
    ):
        await configure(ws)
        await send(ws, {"type": "speak", "text": "a " * 5000})  # 900 s
        frames, audio = await collect(ws, of_type("tts_playback_complete"))
    assert audio == b""
    (error,) = frames[:-1]
    assert error["type"] == "error"
    assert error["message"].startswith("TTS error: Audio generation failed: ")
    assert f"at most {CAP} s of audio per request" in error["message"]


async def test_a_long_request_leaves_the_event_loop_turning() -> None:
    # 540 s of audio at 48 kHz (52 MB): other clients are served while it renders.
    request = TTSRequest("a " * 3000, sample_rate=48000)
    turns = 0
    done = asyncio.Event()

    async def other_client() -> None:
        nonlocal turns
        while not done.is_set():
            await asyncio.sleep(0)
            turns += 1

    ticker = asyncio.ensure_future(other_client())
    size = 0
    try:
        await asyncio.sleep(0)
        start = turns
        async for chunk in FakeEngine().synthesize(request):
            size += len(chunk)
        during = turns - start
    finally:
        done.set()
        await ticker
    assert size == 2 * 48000 * 540
    assert during >= 500  # a turn at least every second of audio


def test_the_tone_cache_is_bounded_in_bytes() -> None:
    # Tones of 0.48 s at 384 kHz (368 KB each, the largest a speaking rate allows): a
    # dozen are 4.4 MB, more than the cache keeps; the oldest is rendered again.
    samples = 184_320
    first = fake._tone(440.0, 384000, samples)
    for fewer in range(1, 12):
        fake._tone(440.0, 384000, samples - fewer)
    latest = fake._tone(440.0, 384000, samples - 11)
    assert fake._tone(440.0, 384000, samples - 11) is latest  # still a cache
    assert fake._tone(440.0, 384000, samples) is not first, "every large tone is kept"
    assert fake._tone(440.0, 384000, samples) == first


async def test_the_local_engines_stop_rendering_at_the_cap() -> None:
    # stream_rendered runs the espeak and Piper renderers (the speech worker process does
    # the same in its sink): a long text stops at the cap, not at its end.
    rendered = 0
    stopped = threading.Event()
    block = np.zeros(16000, dtype=np.int16)  # 1 s at 16 kHz

    def render(sink: Any) -> None:  # a text of 20 minutes
        nonlocal rendered
        try:
            while rendered < 2 * CAP and sink(block):
                rendered += 1
        finally:
            stopped.set()

    received = 0
    with concurrent.futures.ThreadPoolExecutor(1) as executor:
        chunks = stream_rendered(executor, render, 16000, 16000, "linear16")

        async def take_all() -> None:
            nonlocal received
            async for chunk in chunks:
                received += len(chunk)

        with pytest.raises(ValueError, match=f"at most {CAP} s of audio per request"):
            await take_all()
        await asyncio.get_running_loop().run_in_executor(None, stopped.wait)
    assert rendered == CAP
    assert received == CAP * 16000 * 2
