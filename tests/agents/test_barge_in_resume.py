"""resume_on_noise, against a small Sayna stand-in on loopback: the fake engine always
transcribes what it hears, so noise (an interim that ends in an empty speech-final) is
played by a real aiohttp WebSocket peer instead."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp import WSMsgType, web

from sayna_client import CallbackError, SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.agents import BargeInEvent

TEXT = "one two three four five six seven eight"


def result(transcript: str, final: bool) -> str:
    return json.dumps(
        {
            "type": "stt_result",
            "transcript": transcript,
            "is_final": final,
            "is_speech_final": final,
            "confidence": 0.5,
        }
    )


@pytest_asyncio.fixture
async def stand_in() -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    received: list[dict[str, object]] = []

    async def session(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            message = json.loads(msg.data)
            received.append(message)
            if message["type"] == "config":
                await ws.send_str(json.dumps({"type": "ready", "stream_id": "s"}))
            elif message["type"] == "speak" and len(received) == 2:
                await ws.send_bytes(bytes(16000 * 2 * 3 // 10))  # 0.3 s of the answer
                await ws.send_str(result("hmm so", False))  # speech... or noise?
            elif message["type"] == "clear":
                await ws.send_str(result("", True))  # the turn ends empty: noise
            elif message["type"] == "speak":
                await ws.send_bytes(bytes(640))
                await ws.send_str(json.dumps({"type": "tts_playback_complete", "timestamp": 1}))
        return ws

    app = web.Application()
    app.router.add_get("/ws", session)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}", received
    finally:
        await runner.cleanup()


def _client(url: str) -> SaynaClient:
    return SaynaClient(
        url,
        STTConfig(provider="deepgram", sample_rate=16000),
        TTSConfig(provider="deepgram", sample_rate=16000),
        timeouts=Timeouts(connect=5, ready=5, close=2),
    )


async def test_speech_that_turns_out_to_be_noise_resumes(
    stand_in: tuple[str, list[dict[str, object]]],
) -> None:
    url, received = stand_in
    client = _client(url)
    events: list[BargeInEvent] = []
    both = asyncio.Event()

    def seen(event: BargeInEvent) -> None:
        events.append(event)
        if len(events) == 2:
            both.set()

    async with client.session():
        policy = client.barge_in(resume_on_noise=True, on_barge_in=seen)
        handle = await client.speak(TEXT)
        await handle.wait(5)
        await asyncio.wait_for(both.wait(), 5)  # the resumed speech goes out on a task
    cut, resumed = events
    assert handle.interrupted
    assert not cut.resumed
    assert cut.transcript == "hmm so"
    assert resumed.resumed
    assert policy.history == [cut, resumed]
    # 0.3 s heard at the default 0.4 s a word: one word; the rest is spoken again.
    assert cut.text_heard == "one"
    speaks = [m["text"] for m in received if m["type"] == "speak"]
    assert speaks == [TEXT, "two three four five six seven eight"]
    assert resumed.handles[0].text == "two three four five six seven eight"


async def test_an_on_barge_in_raising_on_the_resume_is_reported(
    stand_in: tuple[str, list[dict[str, object]]],
) -> None:
    # The resume's event is told on a task of the policy's own: its callback's error
    # is reported as a CallbackError too (it was lost: "exception was never retrieved").
    url, _received = stand_in
    client = _client(url)
    errors: list[CallbackError] = []
    reported = asyncio.Event()

    def on_error(error: object) -> None:
        if isinstance(error, CallbackError):
            errors.append(error)
            reported.set()

    async def on_barge_in(event: BargeInEvent) -> None:
        if event.resumed:
            raise ValueError("resume bug")

    client.register_on_error(on_error)
    async with client.session():
        client.barge_in(resume_on_noise=True, on_barge_in=on_barge_in)
        handle = await client.speak(TEXT)
        await handle.wait(5)
        await asyncio.wait_for(reported.wait(), 5)
    (error,) = errors
    assert error.event_type == "barge_in"
    assert str(error.error) == "resume bug"
    assert "on_barge_in" in error.callback
