"""Agents tests: a client of the local server (paced TTS, fake engine) at 16 kHz, and of
a small scripted peer (:class:`Peer`) for the orders of frames the server cannot produce
on demand."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any, Optional

import pytest_asyncio
from aiohttp import WSMsgType, web

from sayna_client import ReconnectPolicy, SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.server import LocalServer

RATE = 16000
WORD_BYTES = RATE * 2 * 180 // 1000  # the fake engine: 120 ms tone + 60 ms silence per word
WAIT = 10.0  # seconds a handle may take to end (never reached when it works)
FRAME = 640  # the peer's TTS frames: 20 ms at 16 kHz
UNAUTHORIZED = "TTS error: Provider error: API error (401 Unauthorized): invalid api key"


def make_client(server: LocalServer) -> SaynaClient:
    return SaynaClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
        TTSConfig(provider="deepgram", voice_id="aura-asteria-en", sample_rate=RATE),
        timeouts=Timeouts(connect=5, ready=10, request=10, close=2),
    )


@pytest_asyncio.fixture
async def agent(server: LocalServer) -> AsyncIterator[SaynaClient]:
    async with make_client(server) as client:
        await client.connect()
        yield client


@pytest_asyncio.fixture
async def fast_server() -> AsyncIterator[LocalServer]:
    """TTS audio faster than real time, as a real Sayna with HTTP providers sends it."""
    async with LocalServer(port=0, tts_realtime=False) as srv:
        yield srv


@pytest_asyncio.fixture
async def fast_agent(fast_server: LocalServer) -> AsyncIterator[SaynaClient]:
    """A connected client of :func:`fast_server`."""
    async with make_client(fast_server) as client:
        await client.connect()
        yield client


class Peer:
    """A Sayna stand-in at /ws: answers ``config`` with ``ready``, queues what the client
    sends, and sends what the test tells it to, when it tells it. It takes a session
    after another (``ws`` is the newest); :meth:`drop` ends the current one."""

    def __init__(self) -> None:
        self.received: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.ws: Optional[web.WebSocketResponse] = None
        #: Sessions made ready so far.
        self.sessions = 0
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        self.app = app

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        assert msg.type is WSMsgType.TEXT
        assert json.loads(msg.data)["type"] == "config"
        await ws.send_str(json.dumps({"type": "ready", "stream_id": "peer"}))
        self.ws = ws
        self.sessions += 1
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                self.received.put_nowait(json.loads(msg.data))
        return ws

    async def got(self, kind: str) -> dict[str, Any]:
        """The next message the client sent, which must be a ``kind``."""
        message = await asyncio.wait_for(self.received.get(), WAIT)
        assert message["type"] == kind, message
        return message

    async def audio(self, frames: int) -> None:
        assert self.ws is not None
        for _ in range(frames):
            await self.ws.send_bytes(bytes(FRAME))

    async def error(self, message: str = UNAUTHORIZED) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"type": "error", "message": message}))

    async def result(self, transcript: str, *, final: bool, speech_final: bool = False) -> None:
        """An ``stt_result`` (confidence 0.9)."""
        assert self.ws is not None
        message = {
            "type": "stt_result",
            "transcript": transcript,
            "is_final": final,
            "is_speech_final": speech_final,
            "confidence": 0.9,
        }
        await self.ws.send_str(json.dumps(message))

    async def complete(self) -> None:
        assert self.ws is not None
        await self.ws.send_str(json.dumps({"type": "tts_playback_complete", "timestamp": 1}))

    async def drop(self, code: int = 1011) -> None:
        """Close the current session with ``code`` (1011, a server error: a
        ``ReconnectPolicy`` reconnects after it)."""
        assert self.ws is not None
        await self.ws.close(code=code, message=b"dropped by the test")


def _peer_client(url: str, reconnect: Optional[ReconnectPolicy] = None) -> SaynaClient:
    return SaynaClient(
        url,
        STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
        TTSConfig(provider="deepgram", voice_id="aura-asteria-en", sample_rate=RATE),
        timeouts=Timeouts(connect=5, ready=5, request=5, close=2),
        reconnect=reconnect,
    )


@contextlib.asynccontextmanager
async def _peer_session(
    reconnect: Optional[ReconnectPolicy] = None,
) -> AsyncIterator[tuple[Peer, SaynaClient]]:
    server = Peer()
    runner = web.AppRunner(server.app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with _peer_client(url, reconnect) as client:
            await client.connect()
            yield server, client
    finally:
        await runner.cleanup()


@pytest_asyncio.fixture
async def peer() -> AsyncIterator[tuple[Peer, SaynaClient]]:
    async with _peer_session() as pair:
        yield pair


@pytest_asyncio.fixture
async def reconnecting_peer() -> AsyncIterator[tuple[Peer, SaynaClient]]:
    """:func:`peer` whose client reconnects (at once) when :meth:`Peer.drop` ends its
    session."""
    async with _peer_session(ReconnectPolicy(initial_backoff=0.01, jitter=1.0)) as pair:
        yield pair
