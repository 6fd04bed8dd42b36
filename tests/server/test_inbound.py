"""The server's inbound fast path (``server/inbound.py``): audio frames taken inside the
socket's callback, everything else read by aiohttp, the order of frames kept.

The peer here is a WebSocket client written by hand on a TCP socket, so the tests choose
every byte and where the writes split them: whole bursts, a frame cut anywhere, frames
aiohttp must refuse.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import random
import struct
from typing import Optional

import aiohttp
import pytest

from helpers.internals import inbound_frames
from helpers.waiting import eventually
from helpers.wire import config, configure, ws_frame
from sayna_client.server import Faults, LocalServer
from sayna_client.server.engines.fake import render_words
from sayna_client.server.records import SessionRecord

TIMEOUT = 10.0
TEXT, BINARY, CONTINUATION, CLOSE, PING, PONG = 1, 2, 0, 8, 9, 10


def frame(
    opcode: int,
    payload: bytes,
    *,
    fin: bool = True,
    masked: bool = True,
    rsv: int = 0,
    key: Optional[bytes] = None,
) -> bytes:
    """One client frame (masked unless told; with a random key unless given)."""
    first = (0x80 if fin else 0) | rsv | opcode
    return ws_frame(first, payload, (key or os.urandom(4)) if masked else None)


def quiet_audio(index: int, size: int) -> bytes:
    """``size`` bytes of near-silent 16-bit audio, different for each ``index`` (the fake
    engine hears nothing in it, so the session sends nothing back)."""
    low = bytes((index * 7 + offset) % 251 for offset in range(0, size, 2))
    out = bytearray(size)
    out[0::2] = low[: len(out[0::2])]
    return bytes(out)


class Peer:
    """One hand-written WebSocket connection to the local server."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, port: int, then: bytes = b"", headers: str = "") -> Peer:
        """Upgrade a fresh connection to ``/ws``; ``then`` is written in the same write
        as the upgrade request (frames pipelined behind it); ``headers`` are extra header
        lines, each ending in CRLF."""
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            "GET /ws HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{port}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{headers}\r\n"
        )
        writer.write(request.encode() + then)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def write(self, data: bytes, cuts: Optional[list[int]] = None) -> None:
        """Write ``data``, in separate writes at ``cuts`` (each write flushed and the
        loop let run, so the server reads the pieces as they come)."""
        start = 0
        for end in [*(cuts or []), len(data)]:
            self.writer.write(data[start:end])
            await self.writer.drain()
            await asyncio.sleep(0)
            start = end

    async def read(self) -> tuple[int, bytes]:
        """The next frame from the server: its opcode and payload."""
        first, payload = await self.read_raw()
        return first & 0x0F, payload

    async def read_raw(self) -> tuple[int, bytes]:
        """The next frame from the server: its first byte (FIN, RSV, opcode) and payload."""
        head = await asyncio.wait_for(self.reader.readexactly(2), TIMEOUT)
        assert not head[1] & 0x80, "the server masked a frame"
        size = head[1] & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return head[0], await asyncio.wait_for(self.reader.readexactly(size), TIMEOUT)

    async def read_json(self) -> dict[str, object]:
        opcode, payload = await self.read()
        assert opcode == TEXT, (opcode, payload[:80])
        message = json.loads(payload)
        assert isinstance(message, dict)
        return message

    async def close_code(self) -> int:
        """Frames up to the server's Close; its status code."""
        while True:
            opcode, payload = await self.read()
            if opcode == CLOSE:
                return int(struct.unpack("!H", payload[:2])[0])

    def close(self) -> None:
        self.writer.close()


async def heard(server: LocalServer, audio: list[bytes], errors: int = 0) -> SessionRecord:
    """Wait until the last session recorded ``len(audio)`` binary frames; check that they
    were ``audio``, in order, and that it sent ``errors`` error messages; its record."""
    record = server.records.last_session
    await eventually(lambda: record.audio_frames == len(audio))
    assert bytes(record.audio) == b"".join(audio)
    assert len(record.sent_of_type("error")) == errors
    return record


async def configured_peer(server: LocalServer) -> Peer:
    peer = await Peer.open(server.port)
    await peer.write(frame(TEXT, json.dumps(config()).encode()))
    assert (await peer.read_json())["type"] == "ready"
    return peer


@pytest.mark.parametrize("behind_upgrade", [False, True], ids=["burst", "behind-upgrade"])
async def test_audio_sent_right_behind_config_waits_for_it(
    server: LocalServer, behind_upgrade: bool
) -> None:
    # The config is handled with an await; the audio behind it in the same read must
    # not overtake it (it would be refused: "no voice manager").
    audio = [quiet_audio(index, 640) for index in range(40)]
    burst = frame(TEXT, json.dumps(config()).encode()) + b"".join(
        frame(BINARY, piece) for piece in audio
    )
    peer = await Peer.open(server.port, then=burst if behind_upgrade else b"")
    try:
        if not behind_upgrade:
            await peer.write(burst)
        assert (await peer.read_json())["type"] == "ready"
        await heard(server, audio)
    finally:
        peer.close()


async def test_audio_waits_while_the_read_loop_is_busy() -> None:
    # The config's handler is still running (it waits before sending ready) when the
    # speech arrives, alone in its read: the speech is heard after the config is done,
    # so no result can come before `ready`.
    speech = render_words(["hello", "there"], 16000) + bytes(32000)
    async with LocalServer(faults=Faults(ready_delay=1.0)) as server:
        peer = await Peer.open(server.port)
        try:
            await peer.write(frame(TEXT, json.dumps(config()).encode()))
            record = await server.records.wait_for(lambda: server.records.sessions)
            await eventually(lambda: record[0].config is not None)
            await peer.write(
                b"".join(frame(BINARY, speech[at : at + 640]) for at in range(0, len(speech), 640))
            )
            first = await peer.read_json()
            assert first["type"] == "ready", first
            assert (await peer.read_json())["type"] == "stt_result"
        finally:
            peer.close()


@pytest.mark.parametrize("cut", [1, 4, 6, 9, 300])
async def test_bytes_behind_the_upgrade_may_end_inside_a_frame(
    server: LocalServer, cut: int
) -> None:
    # The first `cut` bytes of the burst ride with the upgrade request (aiohttp keeps
    # them until the connection is upgraded); a masking key that looks like a binary
    # frame's header catches a fast path reading from the wrong place.
    audio = [quiet_audio(index, 640) for index in range(10)]
    burst = frame(TEXT, json.dumps(config()).encode(), key=bytes((0x82, 0x81, 0, 0)))
    burst += b"".join(frame(BINARY, piece) for piece in audio)
    peer = await Peer.open(server.port, then=burst[:cut])
    try:
        await peer.write(burst[cut:])
        assert (await peer.read_json())["type"] == "ready"
        await heard(server, audio)
    finally:
        peer.close()


async def test_a_frame_in_one_byte_reads_and_a_bytearray_read(server: LocalServer) -> None:
    peer = await configured_peer(server)
    try:
        audio = [quiet_audio(index, 3000) for index in range(3)]
        await peer.write(frame(BINARY, audio[0]), cuts=list(range(1, 3008)))
        await heard(server, audio[:1])
        # Windows' proactor loop hands the protocol a bytearray: taken as bytes.
        inbound = inbound_frames(server)
        assert inbound is not None
        assert inbound.feed_data(bytearray(frame(BINARY, audio[1]))) == (False, b"")
        await peer.write(frame(BINARY, audio[2]))
        await heard(server, audio)
    finally:
        peer.close()


async def test_live_audio_is_taken_in_the_sockets_callback(server: LocalServer) -> None:
    peer = await configured_peer(server)
    try:
        audio = [quiet_audio(index, 640) for index in range(30)]
        for piece in audio:
            await peer.write(frame(BINARY, piece))
        await heard(server, audio)
        inbound = inbound_frames(server)
        assert inbound is not None, "aiohttp's parser reads this session alone"
        assert inbound.taken == len(audio)
    finally:
        peer.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
async def test_any_split_of_the_stream_reads_the_same(server: LocalServer, seed: int) -> None:
    # Every length encoding (7, 16 and 64 bits), a frame over the fast path's limit
    # (256 KiB: aiohttp reads it), a ping, a fragmented message and a text frame among
    # the audio, written in pieces cut at random places (a header cut too).
    sizes = [0, 1, 125, 126, 640, 65535, 65536, 70000, 300_000, 2]
    audio = [quiet_audio(index, size) for index, size in enumerate(sizes)]
    parts = [quiet_audio(90 + index, 500) for index in range(3)]
    stream = b"".join(frame(BINARY, piece) for piece in audio[:5])
    stream += frame(PING, b"are you there")
    stream += frame(BINARY, parts[0], fin=False) + frame(CONTINUATION, parts[1], fin=False)
    stream += frame(PING, b"mid-message") + frame(CONTINUATION, parts[2])
    stream += frame(TEXT, b"not json")
    stream += b"".join(frame(BINARY, piece) for piece in audio[5:])
    rng = random.Random(seed)
    cuts = sorted(rng.sample(range(1, len(stream)), 40) + list(range(1, 16)))
    peer = await configured_peer(server)
    try:
        await peer.write(stream, cuts)
        replies = [await peer.read() for _ in range(3)]
        assert replies[:2] == [(PONG, b"are you there"), (PONG, b"mid-message")]
        assert replies[2][0] == TEXT
        assert json.loads(replies[2][1])["message"].startswith("Invalid message format")
        expected = [*audio[:5], b"".join(parts), *audio[5:]]
        record = await heard(server, expected, errors=1)  # "not json"
        assert record.audio_bytes == sum(map(len, expected))
    finally:
        peer.close()


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        (frame(BINARY, quiet_audio(0, 640), rsv=0x40), 1002),  # compressed, not negotiated
        (frame(TEXT, b'{"ty', fin=False) + frame(BINARY, quiet_audio(0, 640)), 1002),
        (frame(BINARY, quiet_audio(0, 2000)), 1009),  # over max_message_bytes
        (frame(BINARY, quiet_audio(0, 1000)), 1009),  # aiohttp refuses max_msg_size too
    ],
    ids=["rsv1", "binary-inside-fragmented-text", "too-big", "at-the-limit"],
)
async def test_frames_aiohttp_refuses_still_close_the_session(bad: bytes, code: int) -> None:
    async with LocalServer(max_message_bytes=1000) as server:
        peer = await configured_peer(server)
        try:
            await peer.write(frame(BINARY, quiet_audio(1, 640)) + bad)
            assert await peer.close_code() == code
            record = server.records.last_session
            assert record.audio_frames == 1  # the good frame before it, and nothing else
            await eventually(lambda: record.closed.is_set())
        finally:
            peer.close()


@pytest.mark.parametrize(
    "unmasked",
    [
        frame(BINARY, quiet_audio(2, 640), masked=False),  # what the fast path would take
        frame(TEXT, b'{"type":"clear"}', masked=False),
        frame(PING, b"hi", masked=False),
        frame(BINARY, quiet_audio(2, 2000), masked=False),  # larger than the fast path takes
    ],
    ids=["audio", "text", "ping", "large"],
)
async def test_an_unmasked_frame_closes_with_protocol_error(unmasked: bytes) -> None:
    # RFC 6455 5.1: a server must close on an unmasked client frame; tungstenite (the real
    # server) closes with 1002. Nothing behind it is read.
    async with LocalServer(max_message_bytes=4000) as server:
        peer = await configured_peer(server)
        try:
            audio = quiet_audio(1, 640)
            await peer.write(frame(BINARY, audio) + unmasked + frame(BINARY, quiet_audio(3, 640)))
            assert await peer.close_code() == 1002
            record = server.records.last_session
            await eventually(lambda: record.closed.is_set())
            assert bytes(record.audio) == audio  # the good frame before it, nothing else
            assert record.sent_of_type("error") == []
        finally:
            peer.close()


async def test_an_unmasked_frame_behind_the_upgrade_closes_with_protocol_error(
    server: LocalServer,
) -> None:
    peer = await Peer.open(
        server.port, then=frame(TEXT, json.dumps(config()).encode(), masked=False)
    )
    try:
        assert await peer.close_code() == 1002
        assert server.records.last_session.sent_of_type("ready") == []
    finally:
        peer.close()


async def test_a_client_offering_deflate_gets_an_uncompressed_connection(
    server: LocalServer,
) -> None:
    # Sayna (axum 0.8, tungstenite) negotiates no extension: the upgrade answer has no
    # Sec-WebSocket-Extensions, frames come uncompressed (no RSV1), and the connection
    # keeps the fast path and its checks (an unmasked frame still closes with 1002).
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"
        ).encode()
    )
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), TIMEOUT)
    assert head.startswith(b"HTTP/1.1 101"), head
    assert b"sec-websocket-extensions" not in head.lower(), head
    peer = Peer(reader, writer)
    try:
        await peer.write(frame(TEXT, json.dumps(config()).encode()))
        first, payload = await peer.read_raw()
        assert first == 0x81  # FIN + text, RSV1 (compressed) clear
        assert json.loads(payload)["type"] == "ready"
        audio = [quiet_audio(index, 640) for index in range(3)]
        await peer.write(b"".join(frame(BINARY, piece) for piece in audio))
        await heard(server, audio)
        assert inbound_frames(server).taken > 0
        await peer.write(frame(BINARY, quiet_audio(1, 640), masked=False))
        assert await peer.close_code() == 1002
    finally:
        peer.close()


async def test_an_aiohttp_client_asking_for_deflate_gets_none(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url, compress=15) as ws:
        assert ws.compress == 0
        assert "Sec-WebSocket-Extensions" not in ws._response.headers
        await configure(ws)
        audio = [quiet_audio(index, 640) for index in range(10)]
        for piece in audio:
            await ws.send_bytes(piece)
        await heard(server, audio)
        # An uncompressed connection: the fast path takes the audio.
        assert inbound_frames(server).taken > 0
