"""Helpers for client tests: configs and a connected client on the local server."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web

from sayna_client import SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.server import LocalServer


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAYNA_API_KEY", raising=False)


def stt(**kwargs: object) -> STTConfig:
    return STTConfig(provider="deepgram", model="nova-2", **kwargs)  # type: ignore[arg-type]


def tts(**kwargs: object) -> TTSConfig:
    return TTSConfig(provider="elevenlabs", voice_id="v1", **kwargs)  # type: ignore[arg-type]


def make_client(server: LocalServer, **kwargs: object) -> SaynaClient:
    kwargs.setdefault("timeouts", Timeouts(connect=5, ready=10, request=10, close=2))
    return SaynaClient(server.url, stt(), tts(sample_rate=16000), **kwargs)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def client(server: LocalServer) -> AsyncIterator[SaynaClient]:
    async with make_client(server) as c:
        yield c


@pytest_asyncio.fixture
async def connected(client: SaynaClient) -> AsyncIterator[SaynaClient]:
    await client.connect()
    yield client


async def start_app(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve ``app`` on a free loopback port: the runner (to clean up) and the base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


class ThreadedServer:
    """A LocalServer on its own loop thread, so synchronous code (the CLI,
    subprocesses, blocking clients) can use it."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = LocalServer(**kwargs)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@contextlib.asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` (a small hostile peer, say) on a free loopback port for the block;
    yields the base URL and cleans the server up after."""
    runner, url = await start_app(app)
    try:
        yield url
    finally:
        await runner.cleanup()
