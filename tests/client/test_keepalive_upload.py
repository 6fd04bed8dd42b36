"""The keepalive during an upload over a slow link: a Ping queued behind our own audio
does not make a slow peer look dead, and a silent peer is still found dead.

The slow link is a real TCP proxy on loopback that forwards the client's bytes at
128 KB/s (small receive buffer, paced reads) to the local server; the silent peer is
a raw aiohttp WebSocket server that answers the config and then reads nothing.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Optional

import pytest_asyncio
from aiohttp import WSMsgType, web

from helpers.waiting import eventually
from sayna_client import ConnectionClosed, SaynaClient, Timeouts
from sayna_client.server import LocalServer

from .conftest import start_app, stt, tts

FRAME = b"\x01\x00" * 320  # 20 ms of 16 kHz mono PCM
#: The slow link: this many bytes every _TICK seconds (128 KB/s).
_CHUNK = 4096
_TICK = _CHUNK / (128 * 1024)


class SlowLink:
    """A TCP proxy to ``target``: the server's bytes pass freely, the client's are
    read ``_CHUNK`` at a time every ``_TICK`` s through a small receive buffer."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.forwarded = 0
        self._server: Optional[asyncio.base_events.Server] = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)  # inherited on accept
        sock.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=_CHUNK)
        return int(sock.getsockname()[1])

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        server_r, server_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        tasks = [
            asyncio.ensure_future(self._pump(client_r, server_w, paced=True)),
            asyncio.ensure_future(self._pump(server_r, client_w, paced=False)),
        ]
        self._tasks.update(tasks)
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_w, server_w):
            writer.close()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, paced: bool
    ) -> None:
        while True:
            data = await reader.read(_CHUNK)
            if not data:
                return
            writer.write(data)
            await writer.drain()
            if paced:
                self.forwarded += len(data)
                await asyncio.sleep(_TICK)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


@pytest_asyncio.fixture
async def slow_link(server: LocalServer) -> AsyncIterator[tuple[SlowLink, str]]:
    link = SlowLink(int(server.url.rsplit(":", 1)[1]))
    port = await link.start()
    try:
        yield link, f"http://127.0.0.1:{port}"
    finally:
        await link.stop()


async def test_a_slow_peer_survives_an_upload_that_fills_the_send_buffer(
    server: LocalServer, slow_link: tuple[SlowLink, str]
) -> None:
    # 640 KB through 128 KB/s: about 5 s during which our Pings queue behind up to a
    # few hundred KB of audio (seconds at this rate) while the Pong is due 1 s after
    # each Ping. The peer keeps reading, so it is alive.
    link, url = slow_link
    total = 1000 * len(FRAME)
    timeouts = Timeouts(connect=10, ready=10, close=2)
    async with SaynaClient(url, stt(), tts(), heartbeat=3, timeouts=timeouts) as client:
        closes: list[ConnectionClosed] = []
        client.register_on_close(closes.append)
        await client.connect()
        for _ in range(1000):
            await client.on_audio_input(FRAME)
        record = server.records.last_session
        await eventually(lambda: record.audio_bytes >= total or bool(closes), timeout=60)
        assert closes == []
        assert client.ready
        await client.speak("still here", wait=True, timeout=30)
        assert closes == []
    assert link.forwarded >= total


async def test_a_silent_peer_is_found_dead_during_an_upload() -> None:
    # The peer answers `ready`, then reads nothing: the client's buffers fill, nothing
    # drains, and no Pong comes. The keepalive must still declare it dead.
    release = asyncio.Event()

    async def silent(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        msg = await ws.receive()
        assert msg.type is WSMsgType.TEXT
        await ws.send_str(json.dumps({"type": "ready", "stream_id": "silent"}))
        await release.wait()  # never reads again
        return ws

    app = web.Application()
    app.router.add_get("/ws", silent)
    runner, url = await start_app(app)
    timeouts = Timeouts(connect=10, ready=10, close=1)
    try:
        async with SaynaClient(url, stt(), tts(), heartbeat=1.5, timeouts=timeouts) as client:
            closes: list[ConnectionClosed] = []
            client.register_on_close(closes.append)
            await client.connect()

            async def upload() -> None:
                while not closes:
                    await client.on_audio_input(FRAME)

            uploading = asyncio.ensure_future(upload())
            await eventually(lambda: bool(closes))
            uploading.cancel()
            await asyncio.gather(uploading, return_exceptions=True)
            assert closes[0].code == 1006
            assert "pong" in closes[0].reason
    finally:
        release.set()
        await runner.cleanup()
