"""Agents tests: a client of the local server (paced TTS, fake engine) at 16 kHz."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from sayna_client import SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.server import LocalServer

RATE = 16000
WORD_BYTES = RATE * 2 * 180 // 1000  # the fake engine: 120 ms tone + 60 ms silence per word


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
