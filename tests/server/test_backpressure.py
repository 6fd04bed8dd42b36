"""A client that stops reading: back-pressure on the outbound queue (protocol section 6.1),
no polling while it stays connected, and a server stop that does not wait for it.

The hostile clients are WebSocket peers written by hand on TCP sockets that never read
what the server sends. Both ends' socket buffers are made small (real socket options on
the real sockets) so that the server's buffers fill after a few hundred kilobytes, not
after the megabytes the kernel would otherwise take.
"""

from __future__ import annotations

import array
import asyncio
import base64
import fcntl
import json
import os
import socket
import struct
import termios
import time
from typing import Any

import aiohttp
import pytest

from helpers.internals import server_state
from helpers.serve import sayna_serve
from helpers.waiting import eventually
from helpers.wire import STT, TTS, configure, recv, ws_frame
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words
from sayna_client.server.session_commands import AUDIO_DISABLED

#: Sayna's outbound channel capacity (section 6.1).
CAPACITY = 1024
#: What the queue may hold beyond it: one frame's worth of answers (the read loop checks
#: before each frame).
SLACK = 16
#: Kernel socket buffers of the hostile peers (the kernel doubles it).
SMALL_BUFFER = 4096
TIMEOUT = 30.0


class DeafPeer:
    """A WebSocket client on a raw socket with a small receive buffer, that reads only
    when told to."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int) -> DeafPeer:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        reader, writer = await asyncio.open_connection(sock=sock)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def send_json(self, message: dict[str, Any]) -> None:
        self.writer.write(ws_frame(0x81, json.dumps(message).encode(), os.urandom(4)))
        await self.writer.drain()

    async def read(self) -> tuple[int, bytes]:
        """The next server frame: opcode and payload."""
        head = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        size = head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return head[0] & 0x0F, await asyncio.wait_for(self.reader.readexactly(size), TIMEOUT)

    async def read_many(self, count: int) -> list[tuple[int, bytes]]:
        """The next ``count`` server frames (small unmasked ones), read in large pieces."""
        frames: list[tuple[int, bytes]] = []
        data = b""
        while len(frames) < count:
            data += await asyncio.wait_for(self.reader.read(1 << 16), TIMEOUT)
            position = 0
            while len(frames) < count and len(data) - position >= 2:
                size, head = data[position + 1] & 0x7F, 2
                if size == 126:
                    if len(data) - position < 4:
                        break
                    (size,) = struct.unpack_from("!H", data, position + 2)
                    head = 4
                assert size < 127, "a frame too large for this reader"
                if len(data) - position < head + size:
                    break
                start = position + head
                frames.append((data[position] & 0x0F, data[start : start + size]))
                position = start + size
            data = data[position:]
        assert not data, "more frames than expected"
        return frames

    def abort(self) -> None:
        self.writer.transport.abort()


async def open_deaf_session(server: LocalServer) -> tuple[DeafPeer, Any]:
    """A deaf peer and its server session, whose socket gets a small send buffer."""
    state = server_state(server)
    before = set(state.sessions)
    peer = await DeafPeer.open(server.port)
    new = await eventually(lambda: set(state.sessions) - before)
    (session,) = new
    sock = session.request.transport.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)
    return peer, session


def queued(session: Any) -> int:
    return int(session.out._queue.qsize())


def waits_for_room(session: Any) -> bool:
    """A producer of the session waits for room in the outbound queue (False where the
    server has no such wait)."""
    return bool(getattr(session.out, "waiting_for_space", False))


@pytest.mark.parametrize(
    ("kind", "answer"),
    [
        (0x81, "Invalid message format"),  # text: invalid JSON
        (0x82, AUDIO_DISABLED),  # binary before config: the inbound fast path's frames
    ],
    ids=["text", "binary"],
)
async def test_a_flood_from_a_client_that_never_reads_stops_being_read(
    server: LocalServer, kind: int, answer: str
) -> None:
    # Each frame gets an `error` answer. Sayna's read loop waits for room in its
    # 1,024-frame channel before the next frame: the answers do not pile up in memory,
    # the client's frames wait in its socket.
    peer, session = await open_deaf_session(server)
    record = server.records.last_session
    frames = 20_000  # the server stops reading after about 5,000 here
    invalid = ws_frame(kind, b"x", b"\0\0\0\0")

    def handled() -> int:
        return record.text_frames if kind == 0x81 else record.audio_frames

    async def flood() -> None:
        for _ in range(frames // 1000):
            peer.writer.write(invalid * 1000)
            await peer.writer.drain()

    sender = asyncio.ensure_future(flood())
    try:
        await eventually(lambda: waits_for_room(session) or handled() >= frames)
        assert handled() < frames, "the server read every frame of a deaf client"
        assert queued(session) <= CAPACITY + SLACK
        # The client reads at last: every frame is answered, none was dropped.
        for opcode, payload in await peer.read_many(frames):
            assert opcode == 1, (opcode, payload[:80])
            message = json.loads(payload)
            assert message["type"] == "error"
            assert message["message"].startswith(answer), message
        await sender
        assert handled() == frames
    finally:
        sender.cancel()
        peer.abort()


async def test_tts_audio_waits_for_a_client_that_does_not_read_and_none_is_dropped() -> None:
    words = ["w"] * 400  # 72 s of audio at 16 kHz: 3,600 chunks, far more than the queue
    async with LocalServer(tts_realtime=False) as server:
        peer, session = await open_deaf_session(server)
        try:
            await peer.send_json({"type": "config", "stt_config": STT, "tts_config": TTS})
            await peer.send_json({"type": "speak", "text": " ".join(words)})
            await eventually(lambda: waits_for_room(session) or queued(session) > CAPACITY + SLACK)
            assert queued(session) <= CAPACITY + SLACK
            audio = bytearray()
            while True:
                opcode, payload = await peer.read()
                if opcode == 2:
                    audio += payload
                    continue
                message = json.loads(payload)
                if message["type"] == "tts_playback_complete":
                    break
                assert message["type"] == "ready", message
            assert bytes(audio) == render_words(words, 16000)
        finally:
            peer.abort()


@pytest.mark.parametrize("command", ["clear", "config"])
async def test_a_clear_while_tts_waits_for_room_stops_the_speech_not_the_session(
    command: str,
) -> None:
    """The TTS worker waits for room while the client is behind; a `clear` (or a second
    `config`) cancels that worker. The wait its producers share must not end the read
    loop's too: the session goes on and answers the next speak."""
    async with LocalServer(tts_realtime=False) as server:
        peer, session = await open_deaf_session(server)
        try:
            config = {"type": "config", "stt_config": STT, "tts_config": TTS}
            await peer.send_json(config)
            await peer.send_json({"type": "speak", "text": " ".join(["w"] * 400)})
            await eventually(lambda: waits_for_room(session))
            await peer.send_json(config if command == "config" else {"type": "clear"})
            await peer.send_json({"type": "speak", "text": "one two"})
            completions = 0
            while completions < 1:  # the client catches up: the session is still there
                opcode, payload = await peer.read()
                assert opcode in (1, 2), (opcode, payload[:80])
                if opcode == 1 and json.loads(payload)["type"] == "tts_playback_complete":
                    completions += 1
            assert not server.records.last_session.closed.is_set()
        finally:
            peer.abort()


def awaited_coroutines(task: asyncio.Task[Any]) -> list[str]:
    """The names of the coroutines ``task`` is suspended in, outermost first."""
    names = []
    awaited: Any = task.get_coro()
    while awaited is not None and hasattr(awaited, "cr_await"):
        names.append(awaited.__name__)
        awaited = awaited.cr_await
    return names


def writer_waits_for_client(session: Any) -> bool:
    """The session's writer is suspended inside a write: the client is behind."""
    writer = session.out._writer
    return not writer.done() and "_write_batch" in awaited_coroutines(writer)


async def test_the_writer_of_a_client_that_does_not_read_waits_without_a_timer() -> None:
    # It waits for the transport to drain (the protocol's flow control), instead of
    # waking every millisecond for as long as the client stays connected.
    async with LocalServer(tts_realtime=False) as server:
        peer, session = await open_deaf_session(server)
        try:
            await peer.send_json({"type": "config", "stt_config": STT, "tts_config": TTS})
            await peer.send_json({"type": "speak", "text": "w " * 400})
            await eventually(lambda: writer_waits_for_client(session))
            chain = awaited_coroutines(session.out._writer)
            assert "sleep" not in chain, chain
            assert session.request.transport.get_write_buffer_size() > 0
        finally:
            peer.abort()


async def stuck_sessions(server: LocalServer, count: int) -> list[DeafPeer]:
    """``count`` deaf peers, each with a long speech the server cannot deliver: their
    transports hold more than the writer's limit when this returns."""
    peers, sessions = [], []
    for _ in range(count):
        peer, session = await open_deaf_session(server)
        peers.append(peer)
        sessions.append(session)
        await peer.send_json({"type": "config", "stt_config": STT, "tts_config": TTS})
        await peer.send_json({"type": "speak", "text": "w " * 3000})
    await eventually(lambda: all(writer_waits_for_client(session) for session in sessions))
    return peers


async def test_stop_does_not_wait_on_clients_that_do_not_read() -> None:
    # Three clients stopped reading mid-speech, one healthy client. Each stuck session's
    # close handshake gets a few seconds, then its connection is aborted, and all
    # sessions close at once: the healthy client gets its 1001 at once, and stop() takes
    # about one close timeout, not one per stuck client (it took 8 s each, in turn).
    server = LocalServer(tts_realtime=False)
    await server.start()
    peers: list[DeafPeer] = []
    try:
        async with aiohttp.ClientSession() as http, http.ws_connect(server.ws_url) as healthy:
            await configure(healthy)
            peers = await stuck_sessions(server, 3)
            stuck_records = server.records.sessions[1:]
            assert len(stuck_records) == 3

            async def healthy_close() -> tuple[Any, bool]:
                message = await recv(healthy, TIMEOUT)
                return message, not any(record.closed.is_set() for record in stuck_records)

            watcher = asyncio.ensure_future(healthy_close())
            started = time.monotonic()
            await server.stop()
            took = time.monotonic() - started
            message, before_the_stuck_ones = await watcher
    finally:
        await server.stop()
        for peer in peers:
            peer.abort()
    assert message.type == aiohttp.WSMsgType.CLOSE
    assert message.data == 1001
    assert before_the_stuck_ones, "the healthy client waited for the stuck sessions"
    assert all(record.closed.is_set() for record in stuck_records)
    assert took < 12.0, f"stop() took {took:.1f} s with 3 clients that do not read"


async def test_sigterm_exits_within_dockers_grace_with_clients_that_do_not_read() -> None:
    # `docker stop` sends SIGTERM and kills the process 10 s later.
    async with sayna_serve("--fast-tts") as served:
        port = int(served.url.rsplit(":", 1)[1])
        peers = []
        try:
            for _ in range(2):
                peer = await DeafPeer.open(port)
                peers.append(peer)
                await peer.send_json({"type": "config", "stt_config": STT, "tts_config": TTS})
                await peer.send_json({"type": "speak", "text": "w " * 3000})
                # The client's small receive buffer is full: the server's backs up behind.
                await eventually(lambda: _unread(peers[-1]) >= SMALL_BUFFER)
            started = time.monotonic()
            served.process.terminate()
            status = await asyncio.wait_for(served.process.wait(), 30.0)
            took = time.monotonic() - started
        finally:
            for peer in peers:
                peer.abort()
    assert status == 0, served.errors()
    assert took < 10.0, f"sayna serve took {took:.1f} s to exit after SIGTERM"


def _unread(peer: DeafPeer) -> int:
    """Bytes waiting in the kernel's receive queue of the peer's socket (FIONREAD)."""
    count = array.array("i", [0])
    fcntl.ioctl(peer.writer.transport.get_extra_info("socket").fileno(), termios.FIONREAD, count)
    return int(count[0])


async def test_stop_sends_nothing_after_its_close_frame() -> None:
    """`stop()` while a reading client gets fast TTS: the queued audio is dropped, not
    written after the Close frame (RFC 6455 5.5.1: no data frame follows a Close)."""
    server = LocalServer(tts_realtime=False)
    await server.start()
    peer = await DeafPeer.open(server.port)
    frames: list[int] = []

    async def read() -> None:
        while True:
            try:
                opcode, payload = await peer.read()
            except (asyncio.IncompleteReadError, ConnectionError):
                return
            frames.append(opcode)
            if opcode == 8:  # answer the Close as a client does, and read on
                peer.writer.write(ws_frame(0x88, payload[:2], b"\0\0\0\0"))

    try:
        await peer.send_json({"type": "config", "stt_config": STT, "tts_config": TTS})
        await peer.send_json({"type": "speak", "text": " ".join(["w"] * 2000)})
        reader = asyncio.ensure_future(read())
        await eventually(lambda: frames.count(2) >= 200)
        await server.stop()
        await asyncio.wait_for(reader, TIMEOUT)
        assert 8 in frames
        assert frames[frames.index(8) + 1 :] == []
    finally:
        peer.abort()
        await server.stop()
