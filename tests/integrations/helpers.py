"""Caller audio for the framework tests: what the local server's fake engine hears as words."""

from __future__ import annotations

import asyncio
import json
import math
import socket
from array import array
from typing import Any, Callable, Optional

import aiohttp
from aiohttp import web


def tone_bursts(words: int, sample_rate: int, *, silence_after: float = 1.0) -> bytes:
    """``words`` 120 ms tone bursts (60 ms apart), then ``silence_after`` seconds of silence,
    as 16-bit mono PCM. The fake STT transcribes each burst as "word" and ends the turn
    (speech-final) after 700 ms of silence."""
    tone = array(
        "h",
        (
            int(0.3 * 32767 * math.sin(2 * math.pi * 440.0 * i / sample_rate))
            for i in range(sample_rate * 120 // 1000)
        ),
    ).tobytes()
    gap = bytes(2 * (sample_rate * 60 // 1000))
    return (tone + gap) * words + bytes(2 * int(sample_rate * silence_after))


def frames_of(pcm: bytes, sample_rate: int, frame_ms: int = 20) -> list[bytes]:
    """``pcm`` cut into ``frame_ms`` frames (the last one may be shorter)."""
    size = 2 * sample_rate * frame_ms // 1000
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


async def pipe(
    source: asyncio.StreamReader,
    sink: asyncio.StreamWriter,
    gate: Optional[asyncio.Event] = None,
) -> None:
    """Copy ``source`` to ``sink`` until it ends or breaks, then close ``sink``; with a
    ``gate``, only while it is set (a stalled link), in small reads: once it is cleared,
    nothing more passes (a read already under way is held until it is set again)."""
    size = 65536 if gate is None else 4096
    try:
        while True:
            if gate is not None:
                await gate.wait()
            data = await source.read(size)
            if not data:
                break
            if gate is not None:
                await gate.wait()
            sink.write(data)
            await sink.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        sink.close()


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 (port 0) to ``target_port``: :meth:`cut` aborts the
    connections open now (as a network failure does); later ones are forwarded again.

    ``admit(n)`` (if given) decides for the ``n``-th connection (1-based): False closes
    it at once, as a server still down would; :attr:`connections` counts them."""

    def __init__(self, target_port: int, admit: Optional[Callable[[int], bool]] = None) -> None:
        self.target_port = target_port
        self.admit = admit
        self.connections = 0
        self.port = 0
        self._server: Optional[asyncio.AbstractServer] = None
        self._writers: list[asyncio.StreamWriter] = []
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> CuttableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    def cut(self) -> None:
        """Abort every connection open now (no close frame, no FIN: a reset)."""
        writers, self._writers = self._writers, []
        for writer in writers:
            writer.transport.abort()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.admit is not None and not self.admit(self.connections):
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers += [writer, up_writer]
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.ensure_future(pipe(source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)


class SwallowingProxy:
    """A WebSocket proxy on 127.0.0.1 (port 0) to a Sayna server's ``/ws``: forwards
    every message both ways except the client's text commands ``swallow(command)``
    returns True for (the server never hears them: a ``speak`` swallowed gets no audio
    and no completion, as when a provider hangs or a completion is lost)."""

    def __init__(self, target_ws_url: str, swallow: Callable[[dict[str, Any]], bool]) -> None:
        self.target_ws_url = target_ws_url
        self.swallow = swallow
        self.swallowed: list[dict[str, Any]] = []
        self.port = 0
        self._runner: Optional[web.AppRunner] = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> SwallowingProxy:
        app = web.Application()
        app.router.add_get("/ws", self._relay)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _relay(self, request: web.Request) -> web.WebSocketResponse:
        client = web.WebSocketResponse()
        await client.prepare(request)
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.target_ws_url, headers=headers) as server,
        ):

            async def up() -> None:
                async for msg in client:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        command = json.loads(msg.data)
                        if isinstance(command, dict) and self.swallow(command):
                            self.swallowed.append(command)
                        else:
                            await server.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await server.send_bytes(msg.data)
                await server.close()

            async def down() -> None:
                async for msg in server:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        await client.send_str(msg.data)
                    elif msg.type == aiohttp.WSMsgType.BINARY:
                        await client.send_bytes(msg.data)
                await client.close()

            tasks = [asyncio.ensure_future(up()), asyncio.ensure_future(down())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        return client


def first_speak(texts: list[str]) -> Callable[[dict[str, Any]], bool]:
    """A ``swallow`` for :class:`SwallowingProxy`: the first ``speak`` of each text in
    ``texts`` (whitespace stripped), once."""
    left = list(texts)

    def swallow(command: dict[str, Any]) -> bool:
        text = str(command.get("text", "")).strip()
        if command.get("type") == "speak" and text in left:
            left.remove(text)
            return True
        return False

    return swallow


class StallingProxy:
    """A TCP proxy on 127.0.0.1 (port 0) to ``target_port`` whose uplink (client to
    server) can be stalled: :meth:`stall` stops reading from the client (a congested
    network), so the client's writes soon wait for the socket; :meth:`resume` goes on.
    Its sockets have small receive buffers, so the stall shows soon. The downlink
    (server to client) can be held too: :meth:`hold_downlink` stops passing what the
    server sends (it waits in the proxy, in order), :meth:`release_downlink` lets it
    through (a network that delays the server's messages)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._down = asyncio.Event()
        self._down.set()
        self._server: Optional[asyncio.AbstractServer] = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def hold_downlink(self) -> None:
        self._down.clear()

    def release_downlink(self) -> None:
        self._down.set()

    async def __aenter__(self) -> StallingProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # (before listen)
        listener.bind(("127.0.0.1", 0))
        self._server = await asyncio.start_server(self._accept, sock=listener)
        self.port = listener.getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        for source, sink, gate in (
            (reader, up_writer, self._flowing),
            (up_reader, writer, self._down),
        ):
            task = asyncio.ensure_future(pipe(source, sink, gate))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
