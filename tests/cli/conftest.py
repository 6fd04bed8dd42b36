"""What the ``sayna`` command line tests share: a local server on its own thread (the
command runs its own event loop, in this process or in a subprocess), the command as a
subprocess, and the shape of an error."""

from __future__ import annotations

import asyncio
import math
import os
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from aiohttp import web

import sayna_client
from sayna_client import audio
from sayna_client.server import LocalServer

#: ``python -m sayna_client.cli`` with this checkout first on the path.
SAYNA = [sys.executable, "-m", "sayna_client.cli"]
#: Seconds a command may take (it bounds a failing test; the machine may be loaded).
TIMEOUT = 120


@pytest.fixture(autouse=True)
def _no_env_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAYNA_API_KEY", raising=False)


class ThreadedServer:
    """A :class:`LocalServer` (fake engine) on its own loop thread."""

    def __init__(self, **kwargs: Any) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = LocalServer(**kwargs)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(30)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(30)
        self.loop.close()

    @property
    def url(self) -> str:
        return self.server.url

    def script(self, *lines: str) -> None:
        """What the caller says next (``LocalServer.script_speech``)."""

        async def script() -> None:
            self.server.script_speech(*lines)

        asyncio.run_coroutine_threadsafe(script(), self.loop).result(30)


@pytest.fixture
def threaded() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


@pytest.fixture
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections (bound, never listening)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def environment(**extra: str) -> dict[str, str]:
    """This process's environment without ``SAYNA_*``, with the folder of the
    ``sayna_client`` it imported first on ``PYTHONPATH`` (the subprocess runs the same
    code), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAYNA_")}
    src = str(Path(sayna_client.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_cli(
    *args: str, cwd: Path, env: Optional[dict[str, str]] = None, command: Optional[list[str]] = None
) -> subprocess.CompletedProcess[str]:
    """Run ``sayna ARGS`` (or ``command ARGS``) to its end, output captured."""
    return subprocess.run(
        [*(command or SAYNA), *args],
        text=True,
        capture_output=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=env or environment(),
        stdin=subprocess.DEVNULL,
        check=False,
    )


def tone_wav(path: Path, words: int, rate: int = 16000, channels: int = 1) -> Path:
    """A WAV the fake engine hears as ``words`` words (120 ms tones, 60 ms apart)."""
    tone = [int(9000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate * 120 // 1000)]
    samples = (tone + [0] * (rate * 60 // 1000)) * words + [0] * (rate // 2)
    pcm = b"".join(s.to_bytes(2, "little", signed=True) * channels for s in samples)
    audio.write_wav(path, pcm, rate, channels)
    return path


def leftovers(folder: Path) -> list[str]:
    """Temporary files a write left beside its target (``.NAME.XXXXXXXX.part``)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


class ThreadedApp:
    """An aiohttp app on 127.0.0.1 (over TLS with ``ssl_context``) served from its own
    loop thread (the command runs its own event loop in the test's thread)."""

    def __init__(self, app: web.Application, ssl_context: Optional[ssl.SSLContext] = None) -> None:
        self.app = app
        self.ssl_context = ssl_context
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: Optional[web.AppRunner] = None
        self.url = ""

    async def _start(self) -> None:
        self.runner = web.AppRunner(self.app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", 0, ssl_context=self.ssl_context).start()
        scheme = "http" if self.ssl_context is None else "https"
        self.url = f"{scheme}://127.0.0.1:{self.runner.addresses[0][1]}"

    def __enter__(self) -> ThreadedApp:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.runner is not None
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(TIMEOUT)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(TIMEOUT)
        self.loop.close()
