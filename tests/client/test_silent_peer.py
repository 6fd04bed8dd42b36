"""A server that stops reading cannot hold a send or the socket.

The peer is a small raw-socket WebSocket server on loopback: it answers the upgrade and
the config with ``ready``, then never reads again, so the client's writes fill the
socket buffers and a send waits for a peer that will never read. The end of the
session must release that send with the session's close error and free the socket:
when the keepalive declares the peer dead, and when ``disconnect()`` / ``abort()``
closes it, within the close timeout whatever the peer does.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import socket
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Callable

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient, SaynaConnectionClosedError, Timeouts
from sayna_client.realtime import connection

from .conftest import stt, tts

FRAME = b"\x01\x00" * 320
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    """One masked client frame's payload."""
    head = await reader.readexactly(2)
    size = head[1] & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", await reader.readexactly(2))
    elif size == 127:
        (size,) = struct.unpack("!Q", await reader.readexactly(8))
    mask = await reader.readexactly(4)
    payload = await reader.readexactly(size)
    return bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


class SilentPeer:
    """Accepts one WebSocket session, sends ``ready``, then stops reading it."""

    def __init__(self) -> None:
        self.url = ""
        self.silent = asyncio.Event()
        self._peer: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self._server: asyncio.AbstractServer | None = None

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fills up sooner
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        config = json.loads(await _read_frame(reader))
        assert config["type"] == "config"
        ready = json.dumps({"type": "ready", "stream_id": "silent"}).encode()
        writer.write(bytes((0x81, len(ready))) + ready)
        await writer.drain()
        writer.transport.pause_reading()  # from now on, nothing is read
        self._peer = (reader, writer)
        self.silent.set()

    async def released(self, timeout: float = 10.0) -> None:
        """Resume reading and wait for the client's end of the connection (EOF or reset):
        it proves the client let go of its socket."""
        assert self._peer is not None
        reader, writer = self._peer
        writer.transport.resume_reading()

        async def until_end() -> None:
            try:
                while await reader.read(1 << 16):
                    pass
            except ConnectionError:
                pass

        await asyncio.wait_for(until_end(), timeout)
        writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[SilentPeer]:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            if self._peer is not None:
                self._peer[1].close()
            self._server.close()
            await self._server.wait_closed()


async def _send_until_it_fails(client: SaynaClient, progress: list[float]) -> BaseException:
    while True:
        try:
            await client.on_audio_input(FRAME)
        except Exception as exc:
            return exc
        progress[0] = time.monotonic()


async def _blocked(progress: list[float], task: asyncio.Future[Any]) -> None:
    """Wait until the sender has made no progress for a while (it waits for the peer)."""
    await eventually(
        lambda: task.done() or time.monotonic() - progress[0] >= 0.3,
        what="the sender stopped making progress",
    )
    assert not task.done(), task.result()


async def test_keepalive_releases_a_send_blocked_on_a_silent_peer() -> None:
    async with SilentPeer().running() as peer:
        client = SaynaClient(peer.url, stt(), tts(), heartbeat=0.6, timeouts=Timeouts(close=1))
        await client.connect()
        progress = [time.monotonic()]
        sender = asyncio.ensure_future(_send_until_it_fails(client, progress))
        error = await asyncio.wait_for(sender, 20)
        assert isinstance(error, SaynaConnectionClosedError), repr(error)
        assert error.code == 1006
        assert "pong" in error.reason
        assert not client.connected
        await peer.released()
        await client.disconnect()


@pytest.mark.parametrize("close", [lambda c: c.abort(), lambda c: c.disconnect()])
async def test_closing_releases_a_blocked_send_and_the_socket(
    close: Callable[[SaynaClient], Any],
) -> None:
    async with SilentPeer().running() as peer:
        client = SaynaClient(
            peer.url, stt(), tts(), heartbeat=None, timeouts=Timeouts(close=0.5, drain=0.5)
        )
        await client.connect()
        progress = [time.monotonic()]
        sender = asyncio.ensure_future(_send_until_it_fails(client, progress))
        await _blocked(progress, sender)
        started = time.monotonic()
        await asyncio.wait_for(close(client), 10)
        # The close handshake cannot happen: the socket is dropped after timeouts.close.
        assert time.monotonic() - started < 0.5 + 0.5 + 2.0  # drain + close + scheduling
        error = await asyncio.wait_for(sender, 5)
        assert isinstance(error, SaynaConnectionClosedError), repr(error)
        assert not client.connected
        await peer.released()


async def test_a_close_from_a_peer_that_stopped_reading_releases_a_blocked_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server stops reading, then sends its Close: our answering Close cannot be
    written behind the unsent audio, so the connection is dropped after
    CLOSE_FLUSH_SECONDS and the blocked send fails (it waited until abort())."""
    monkeypatch.setattr(connection, "CLOSE_FLUSH_SECONDS", 0.2)
    async with SilentPeer().running() as peer:
        client = SaynaClient(
            peer.url, stt(), tts(), heartbeat=None, timeouts=Timeouts(close=0.5, drain=0.5)
        )
        await client.connect()
        progress = [time.monotonic()]
        sender = asyncio.ensure_future(_send_until_it_fails(client, progress))
        await _blocked(progress, sender)
        assert peer._peer is not None
        peer._peer[1].write(b"\x88\x02" + struct.pack("!H", 1011))  # Close, 1011
        error = await asyncio.wait_for(sender, 30)
        assert isinstance(error, SaynaConnectionClosedError), repr(error)
        assert error.code == 1011
        assert not client.connected
        await peer.released()
        await client.disconnect()
