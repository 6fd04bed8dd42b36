"""A Sayna peer at its least cost: what ``load.py``'s sessions need of a server, no more.

    python benchmarks/leanpeer.py --port 8080 [--cpu 0]
    python benchmarks/load.py --server lean ...   # starts it instead of ``sayna serve``

Why: at 1,000 sessions on this 2-core machine the local server (``sayna serve --engine
fake --fast-tts``) needs more than its core. It then runs event-loop turns of seconds and
falls seconds behind on ``speak`` commands, and every client is measured against a peer
that answers in lumps (benchmarks/LOAD-1000.md, 2026-12-06 02:24). This peer does the
same protocol work with one ``asyncio.Protocol`` per connection and nothing per frame but
the frame's edges, a count and one comparison, so that a load run measures the client.
It is a diagnostic beside the local server, not a replacement: ``load.py`` keeps
``sayna serve`` as its default peer.

What it speaks (RFC 6455 and ``docs/`` of the real server, the parts the load uses):

* ``GET /`` (200, for ``load.py``'s start-up poll) and ``GET /_local/bench/sessions``
  (the local server's per-session counters, same fields), each answered and closed.
* ``GET /ws`` upgrades; the first text frame must be a ``config``: ``ready`` carries its
  ``stream_id``. Binary frames are audio: counted (frames, bytes) and read by a speech
  detector made for the load's tone pattern: a frame is silence when its payload is the
  masking key repeated (zeros masked), so it is never unmasked. After a burst of tone,
  the 5th silent frame brings an interim ``stt_result``, the 10th the speech-final (the
  local server's fake engine also sends two results per 600 ms cycle of the pattern).
* ``speak``: 9 binary frames of 960 bytes (what the fake engine makes of "okay" at 24
  kHz) and ``tts_playback_complete``, in one write. Other commands are ignored.
* Ping -> Pong; Close -> the same Close back, the code recorded, the socket closed.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import struct
import time
import uuid
from typing import Any, Optional

from loadraw import _c_mask

_MASK = _c_mask()
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TTS_FRAMES = 9
_TTS_FRAME = bytes(960)
_INTERIM_AFTER = 5  # silent frames after a burst
_FINAL_AFTER = 10


def _server_frame(first: int, payload: bytes) -> bytes:
    size = len(payload)
    if size < 126:
        return bytes((first, size)) + payload
    if size < 65536:
        return struct.pack("!BBH", first, 126, size) + payload
    return struct.pack("!BBQ", first, 127, size) + payload


def _text(message: dict[str, Any]) -> bytes:
    return _server_frame(0x81, json.dumps(message, separators=(",", ":")).encode())


_INTERIM = _text(
    {
        "type": "stt_result",
        "transcript": "word",
        "is_final": False,
        "is_speech_final": False,
        "confidence": 0.9,
    }
)
_FINAL = _text(
    {
        "type": "stt_result",
        "transcript": "word",
        "is_final": True,
        "is_speech_final": True,
        "confidence": 0.99,
    }
)
_TTS = _server_frame(0x82, _TTS_FRAME) * _TTS_FRAMES


class Record:
    """One session's counters, as ``GET /_local/bench/sessions`` shows them."""

    __slots__ = (
        "audio_bytes",
        "audio_frames",
        "close_code",
        "closed",
        "open",
        "sent_audio_bytes",
        "sent_audio_frames",
        "sent_events",
        "stream_id",
    )

    def __init__(self) -> None:
        self.stream_id: Optional[str] = None
        self.open = True
        self.audio_frames = 0
        self.audio_bytes = 0
        self.sent_audio_frames = 0
        self.sent_audio_bytes = 0
        self.sent_events = 0
        self.closed = False
        self.close_code: Optional[int] = None

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__slots__}


#: One receive buffer for every connection (``BufferedProtocol``: the socket is read into
#: it and the bytes copied out at once). ``asyncio.Protocol`` would have each read
#: allocate 256 KiB, which glibc serves with mmap, mremap and munmap per read here: three
#: system calls per frame received, half of this peer's CPU at 300 sessions.
_RECEIVE = memoryview(bytearray(256 * 1024))


class Peer(asyncio.BufferedProtocol):
    """One connection: an HTTP request, or a WebSocket session after ``/ws``."""

    def __init__(self, records: list[Record]) -> None:
        self._records = records
        self._transport: Optional[asyncio.Transport] = None
        self._buffer = bytearray()
        self._record: Optional[Record] = None
        self._silent = 0  # silent frames since the last burst (-1: no burst yet)
        self._in_burst = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def get_buffer(self, sizehint: int) -> memoryview:
        return _RECEIVE

    def buffer_updated(self, nbytes: int) -> None:
        buffer = self._buffer
        buffer += _RECEIVE[:nbytes]
        if self._record is None:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            self._request(head)
            if self._record is None:
                return
        position = 0
        length = len(buffer)
        while length - position >= 2:
            first = buffer[position]
            size = buffer[position + 1] & 0x7F
            start = position + 2
            if size == 126:
                if length - position < 4:
                    break
                size = (buffer[start] << 8) | buffer[start + 1]
                start += 2
            elif size == 127:
                if length - position < 10:
                    break
                size = int.from_bytes(buffer[start : start + 8], "big")
                start += 8
            end = start + 4 + size
            if length < end:
                break
            self._frame(first & 0x0F, buffer, start, end)
            position = end
        if position:
            del buffer[:position]

    def _frame(self, opcode: int, buffer: bytearray, start: int, end: int) -> None:
        """One whole masked client frame; its key at ``buffer[start:start+4]``."""
        record: Any = self._record  # set at the upgrade, before any frame
        transport: Any = self._transport
        if opcode == 2:
            size = end - start - 4
            record.audio_frames += 1
            record.audio_bytes += size
            key = buffer[start : start + 4]
            silence = key * (size // 4) + key[: size % 4]
            if buffer[start + 4 : end] != silence:  # speech
                self._in_burst = True
                self._silent = 0
            elif self._in_burst:
                self._silent += 1
                if self._silent == _INTERIM_AFTER:
                    transport.write(_INTERIM)
                    record.sent_events += 1
                elif self._silent == _FINAL_AFTER:
                    self._in_burst = False
                    transport.write(_FINAL)
                    record.sent_events += 1
            return
        payload = bytearray(buffer[start + 4 : end])
        _MASK(bytes(buffer[start : start + 4]), payload)
        if opcode == 1:
            self._command(json.loads(payload))
        elif opcode == 8:
            code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
            record.close_code = code
            record.closed = True
            record.open = False
            transport.write(_server_frame(0x88, bytes(payload[:2])))
            transport.close()
        elif opcode == 9:
            transport.write(_server_frame(0x8A, bytes(payload)))

    def _command(self, message: dict[str, Any]) -> None:
        record: Any = self._record
        transport: Any = self._transport
        kind = message.get("type")
        if kind == "config":
            record.stream_id = message.get("stream_id") or str(uuid.uuid4())
            ready = {"type": "ready", "stream_id": record.stream_id}
            ready["livekit_url"] = "ws://127.0.0.1:7880"
            transport.write(_text(ready))
            record.sent_events += 1
        elif kind == "speak":
            done = {"type": "tts_playback_complete", "timestamp": int(time.time() * 1000)}
            transport.write(_TTS + _text(done))
            record.sent_audio_frames += _TTS_FRAMES
            record.sent_audio_bytes += _TTS_FRAMES * len(_TTS_FRAME)
            record.sent_events += 1

    def _request(self, head: str) -> None:
        transport = self._transport
        assert transport is not None
        lines = head.split("\r\n")
        method, target = lines[0].split(" ")[:2]
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        path = target.split("?")[0]
        if method == "GET" and path == "/ws" and "sec-websocket-key" in headers:
            accept = hashlib.sha1(headers["sec-websocket-key"].encode() + _GUID).digest()
            transport.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                + base64.b64encode(accept)
                + b"\r\n\r\n"
            )
            self._record = Record()
            self._records.append(self._record)
            return
        if method == "GET" and path == "/_local/bench/sessions":
            body = json.dumps({"sessions": [r.as_dict() for r in self._records]}).encode()
            status = b"200 OK"
        elif method == "GET" and path == "/":
            body, status = b'{"status":"OK"}', b"200 OK"
        else:
            body, status = b'{"error":"not here"}', b"404 Not Found"
        transport.write(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
            + body
        )
        transport.close()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        record = self._record
        if record is not None and not record.closed:
            record.closed = True
            record.open = False
            record.close_code = 1006


async def open_peer(port: int = 0) -> tuple[asyncio.AbstractServer, str]:
    """Listen on 127.0.0.1:``port`` (0: a free one); the server and its ``http://`` URL."""
    records: list[Record] = []
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Peer(records), "127.0.0.1", port, backlog=4096)
    bound = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{bound}"


async def serve(port: int) -> None:
    server, _url = await open_peer(port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--cpu", type=int, default=None, help="pin to this CPU")
    args = parser.parse_args()
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    try:
        asyncio.run(serve(args.port))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
