"""The load test's floors: the same sessions without the SDK (``load.py --client ...``).

Each class here is one session of :func:`loadlib.run_load`'s workload written by hand,
with the subset of ``SaynaClient`` that ``run_load`` uses (``connect()``, ``ready``,
``on_audio_input``, ``abort()``, ``connected``) and the same counters of its
:class:`loadlib.SessionOutcome`: the same ``config`` text the SDK sends, the same frames
on the same clock, every ``stt_result`` parsed, every speech-final answered at once with
the SDK's ``speak`` text, every TTS frame taken, and a Close (1000) handshake at the end.
What differs is only how much code runs per frame, so ``load.py --client`` tells how much
of a session's CPU is the SDK, how much aiohttp and how much the kernel:

- :class:`RawAiohttpSession` (``raw-aiohttp``): aiohttp's public API as a careful user
  writes it: one shared ``ClientSession``, ``ws.send_bytes`` per frame, a reader task
  ``async for msg in ws`` that answers with ``ws.send_str``.
- :class:`RawAsyncioSession` (``raw-asyncio``): the rawest asyncio client: the HTTP
  upgrade by hand on ``loop.create_connection``, a :class:`asyncio.Protocol` whose
  ``on_audio_input`` *is* ``transport.write`` of a frame masked in advance (the clock
  hands it wire frames, :func:`premasked`), and a minimal frame parser in
  ``data_received`` (server frames are unmasked; JSON parsed only for text frames).
- :class:`RawAsyncioRfcSession` (``raw-asyncio-rfc``): the same protocol doing per frame
  what RFC 6455 and the seed API ask of any client: ``on_audio_input`` is an ``async def``
  taking the audio (the caller awaits a coroutine per frame) that copies it into a fresh
  frame, masks it with a fresh random key (aiohttp's C mask, keys from ``os.urandom`` 512
  at a time, as the SDK draws them) and writes it. The least a compliant client can cost
  per frame with ``await client.on_audio_input(frame)``: SDK minus this is the SDK's
  bookkeeping, this minus ``raw-asyncio`` what the contract and the RFC cost.
- :class:`RawAsyncioSeedSession` (``raw-asyncio-seed``): that, plus the rest of the seed
  API the load uses, at the least cost: the user's callbacks (the very functions
  ``load.py`` registers on the SDK) get each ``stt_result`` as a typed object (a slotted
  class filled from the JSON, no validation) and each TTS frame as ``bytes`` (one copy),
  and the replies go out through an ``async def speak`` that encodes the command and masks
  it afresh. The least a client with the seed's API can cost for the whole workload: SDK
  minus this is everything the SDK adds (validation, reconnection, metrics, checks).

None is a usable client (no reconnect, no checks, no back-pressure beyond what
aiohttp does; ``raw-asyncio`` masks with one fixed key per pattern frame, which RFC 6455
forbids for real clients). They are floors, not alternatives.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

import aiohttp

__all__ = [
    "CLIENTS",
    "RawAiohttpSession",
    "RawAsyncioRfcSession",
    "RawAsyncioSeedSession",
    "RawAsyncioSession",
    "STTResult",
    "config_text",
    "premasked",
    "rfc_frame",
    "wire_header_bytes",
]

#: The kinds of client ``run_load`` can drive.
CLIENTS = ("sdk", "raw-aiohttp", "raw-asyncio", "raw-asyncio-rfc", "raw-asyncio-seed")
#: The SDK's ``speak("okay")`` text (``encode_speak``), byte for byte.
SPEAK_TEXT = '{"type":"speak","text":"okay","flush":true,"allow_interruption":true}'
_TEXT_FIN = 0x81
_BINARY_FIN = 0x82
_CLOSE_FIN = 0x88
_PONG_FIN = 0x8A
_MASKED = 0x80


def config_text(stream_id: str) -> str:
    """The ``config`` text the SDK sends for ``load.py``'s sessions (``encode_config``
    of ``STTConfig(provider="deepgram", sample_rate=16000)`` and
    ``TTSConfig(provider="elevenlabs", voice_id="fake-alpha")``)."""
    return (
        '{"type":"config","audio":true,"stream_id":' + json.dumps(stream_id) + ","
        '"stt_config":{"provider":"deepgram","language":"en-US","sample_rate":16000,'
        '"channels":1,"punctuation":true,"encoding":"linear16","model":""},'
        '"tts_config":{"provider":"elevenlabs","voice_id":"fake-alpha","speaking_rate":1.0,'
        '"audio_format":"linear16","sample_rate":24000,"connection_timeout":30,'
        '"request_timeout":60,"model":"","pronunciations":[]}}'
    )


def _header(first: int, size: int) -> bytes:
    """The header of a final, masked frame (``first``: FIN and opcode) of ``size``
    payload bytes (the masking key follows it on the wire)."""
    if size < 126:
        return bytes((first, _MASKED | size))
    if size < 65536:
        return struct.pack("!BBH", first, _MASKED | 126, size)
    return struct.pack("!BBQ", first, _MASKED | 127, size)


def _masked_frame(first: int, payload: bytes, key: bytes) -> bytes:
    masked = bytes(b ^ key[i & 3] for i, b in enumerate(payload))
    return _header(first, len(payload)) + key + masked


def _c_mask() -> Callable[[bytes, bytearray], None]:
    """aiohttp's in-place XOR masking, its C version where built (what the SDK uses)."""
    try:
        from aiohttp._websocket.helpers import websocket_mask  # aiohttp >= 3.11
    except ImportError:  # aiohttp 3.9, 3.10
        from aiohttp.http_websocket import _websocket_mask as websocket_mask  # type: ignore
    return websocket_mask  # type: ignore[no-any-return]


_KEYS: list[bytes] = []
_MASK = _c_mask()


_ROOMS: dict[int, tuple[bytearray, bytearray]] = {}


def rfc_frame(payload: bytes) -> bytearray:
    """``payload`` as a final binary client frame the way RFC 6455 has a client send it,
    at the least cost found: one fresh buffer (zeroed room for the header and key, then
    the payload) masked whole in place with a fresh random key, so that the room's four
    zero bytes before the payload become the key the payload was masked with (0 XOR K =
    K, rotated by the room's length), and the header written over the rest of the room.
    Header and room are made once per payload size."""
    size = len(payload)
    shape = _ROOMS.get(size)
    if shape is None:
        header = _header(_BINARY_FIN, size)
        _ROOMS[size] = shape = (bytearray(header), bytearray(len(header) + 4))
    header, room = shape
    frame = room + payload
    if not _KEYS:
        block = os.urandom(2048)
        _KEYS.extend(block[i : i + 4] for i in range(0, 2048, 4))
    _MASK(_KEYS.pop(), frame)
    frame[: len(header)] = header
    return frame


def rfc_text_frame(payload: bytes) -> bytearray:
    """``payload`` as a final text client frame: :func:`rfc_frame`'s frame with the text
    opcode in its first byte (the header is not masked)."""
    frame = rfc_frame(payload)
    frame[0] = _TEXT_FIN
    return frame


def wire_header_bytes(size: int) -> int:
    """Bytes a masked client frame of ``size`` payload bytes adds on the wire."""
    return (2 if size < 126 else 4 if size < 65536 else 10) + 4


def premasked(pattern: list[bytes]) -> list[bytes]:
    """Each frame of ``pattern`` as a complete masked binary WebSocket frame (one random
    key per frame, made once: the floor's shortcut, see the module docstring)."""
    return [_masked_frame(_BINARY_FIN, frame, os.urandom(4)) for frame in pattern]


class _Counts:
    """What :class:`loadlib.SessionOutcome` counts on the receive side."""

    stt_results: int
    replies: int
    tts_frames: int


# --- raw aiohttp ---------------------------------------------------------------------------


class RawAiohttpSession:
    """One session on aiohttp's public WebSocket API (see the module docstring)."""

    def __init__(
        self, url: str, stream_id: str, http: aiohttp.ClientSession, outcome: _Counts
    ) -> None:
        self._url = url.replace("http", "ws", 1) + "/ws"
        self._stream_id = stream_id
        self._http = http
        self._outcome = outcome
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._reader: Optional[asyncio.Task[None]] = None
        self.ready = False
        #: ``ws.send_bytes`` once connected (what the clock calls per frame).
        self.on_audio_input: Callable[[bytes], Any] = self._not_connected

    async def _not_connected(self, _frame: bytes) -> None:
        raise ConnectionError("not connected")

    @property
    def connected(self) -> bool:
        return self._ws is not None and not self._ws.closed

    async def connect(self) -> None:
        ws = self._ws = await self._http.ws_connect(self._url, autoping=True)
        await ws.send_str(config_text(self._stream_id))
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "ready":
                break
        else:
            raise ConnectionError("closed before ready")
        self.ready = True
        self.on_audio_input = ws.send_bytes
        self._reader = asyncio.get_running_loop().create_task(self._read(ws))

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        outcome = self._outcome
        binary, text = aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT
        async for msg in ws:
            kind = msg.type
            if kind is binary:
                outcome.tts_frames += 1
            elif kind is text:
                event = json.loads(msg.data)
                if event["type"] != "stt_result":
                    continue
                outcome.stt_results += 1
                if event["is_speech_final"] and self.ready:
                    try:
                        await ws.send_str(SPEAK_TEXT)
                    except ConnectionError:
                        return
                    outcome.replies += 1

    async def abort(self) -> None:
        """The Close handshake (1000) at once; returns once the reader ended."""
        self.ready = False
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader


# --- raw asyncio ---------------------------------------------------------------------------


class RawAsyncioSession(asyncio.Protocol):
    """One session on a bare :class:`asyncio.Protocol` (see the module docstring). The
    clock must hand :attr:`on_audio_input` complete wire frames (:func:`premasked`)."""

    def __init__(self, url: str, stream_id: str, outcome: _Counts) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 80
        self._stream_id = stream_id
        self._outcome = outcome
        self._transport: Optional[asyncio.Transport] = None
        self._buffer = bytearray()
        self._upgraded = False
        self._ready: Optional[asyncio.Future[None]] = None
        self._closed: Optional[asyncio.Future[None]] = None
        self._speak = _masked_frame(_TEXT_FIN, SPEAK_TEXT.encode(), os.urandom(4))
        self.ready = False
        self.paused = 0  # pause_writing calls (the socket was full: never at live rates)
        #: ``transport.write`` once connected (what the clock calls per wire frame).
        self.on_audio_input: Callable[[bytes], Any] = self._not_connected

    @staticmethod
    def _not_connected(_frame: bytes) -> None:
        raise ConnectionError("not connected")

    @property
    def connected(self) -> bool:
        return self._transport is not None and not self._transport.is_closing()

    async def connect(self) -> None:
        loop = asyncio.get_running_loop()
        self._ready = loop.create_future()
        self._closed = loop.create_future()
        transport, _ = await loop.create_connection(lambda: self, self._host, self._port)
        key = base64.b64encode(os.urandom(16)).decode()
        transport.write(
            (
                f"GET /ws HTTP/1.1\r\nHost: {self._host}:{self._port}\r\n"
                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        await self._ready
        self.ready = True
        self.on_audio_input = transport.write

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def pause_writing(self) -> None:
        self.paused += 1

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        if not self._upgraded:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            status = bytes(buffer[: buffer.find(b"\r\n")])
            del buffer[: end + 4]
            if b" 101 " not in status:
                self._fail(ConnectionError(f"upgrade refused: {status!r}"))
                return
            self._upgraded = True
            self._send(_TEXT_FIN, config_text(self._stream_id).encode())
        while len(buffer) >= 2:
            size = buffer[1] & 0x7F
            start = 2
            if size == 126:
                if len(buffer) < 4:
                    return
                size, start = (buffer[2] << 8) | buffer[3], 4
            elif size == 127:
                if len(buffer) < 10:
                    return
                size, start = int.from_bytes(buffer[2:10], "big"), 10
            end = start + size
            if len(buffer) < end:
                return
            self._frame(buffer[0] & 0x0F, buffer, start, end)
            del buffer[:end]

    def _frame(self, opcode: int, buffer: bytearray, start: int, end: int) -> None:
        """One whole server frame (unmasked), its payload ``buffer[start:end]``."""
        outcome = self._outcome
        if opcode == 2:
            outcome.tts_frames += 1
        elif opcode == 1:
            event = json.loads(buffer[start:end])
            kind = event["type"]
            if kind == "stt_result":
                outcome.stt_results += 1
                if event["is_speech_final"] and self.ready:
                    self._transport.write(self._speak)  # type: ignore[union-attr]
                    outcome.replies += 1
            elif kind == "ready" and self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        elif opcode == 8:  # the server's Close: ours was sent first, or answer it
            if self.ready:
                self._send(_CLOSE_FIN, bytes(buffer[start : start + 2]))
            self.ready = False
            self._transport.close()  # type: ignore[union-attr]
        elif opcode == 9:
            self._send(_PONG_FIN, bytes(buffer[start:end]))

    def _send(self, first: int, payload: bytes) -> None:
        self._transport.write(_masked_frame(first, payload, os.urandom(4)))  # type: ignore[union-attr]

    def _fail(self, exc: BaseException) -> None:
        for waiter in (self._ready, self._closed):
            if waiter is not None and not waiter.done():
                waiter.set_exception(exc)
                waiter.exception()  # retrieved: only the awaiting side raises it
        if self._transport is not None:
            self._transport.abort()

    def connection_lost(self, exc: Optional[Exception]) -> None:
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(ConnectionError(f"closed before ready: {exc}"))
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    async def abort(self) -> None:
        """Send Close (1000) and wait for the server's Close and the end of the socket."""
        transport = self._transport
        if transport is None or self._closed is None:
            return
        if self.ready and not transport.is_closing():
            self.ready = False
            self._send(_CLOSE_FIN, struct.pack("!H", 1000))
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), 10.0)
        except asyncio.TimeoutError:
            transport.abort()
            raise


class RawAsyncioRfcSession(RawAsyncioSession):
    """:class:`RawAsyncioSession` sending audio as RFC 6455 and the seed API have every
    client do it (see the module docstring): the clock hands it the audio itself."""

    async def connect(self) -> None:
        await super().connect()
        self.on_audio_input = self._send_audio

    async def _send_audio(self, payload: bytes) -> None:
        self._transport.write(rfc_frame(payload))  # type: ignore[union-attr]


class STTResult:
    """A ``stt_result`` as typed attributes (what the seed's callbacks read), at the least
    cost: a slotted object filled from the parsed JSON, no validation."""

    __slots__ = ("confidence", "is_final", "is_speech_final", "transcript", "type")

    def __init__(self, event: dict[str, Any]) -> None:
        self.type = "stt_result"
        self.transcript: str = event["transcript"]
        self.is_final: bool = event["is_final"]
        self.is_speech_final: bool = event["is_speech_final"]
        self.confidence: float = event["confidence"]


class RawAsyncioSeedSession(RawAsyncioRfcSession):
    """:class:`RawAsyncioRfcSession` with the rest of the seed API the load test uses
    (see the module docstring): the user's callbacks registered with
    ``register_on_stt_result`` / ``register_on_tts_audio`` and an ``async def speak``,
    driven by the same user code as the SDK's sessions (``loadlib._replier``)."""

    def __init__(self, url: str, stream_id: str, outcome: _Counts) -> None:
        super().__init__(url, stream_id, outcome)
        self._on_stt_result: Callable[[STTResult], Any] = _ignore
        self._on_tts_audio: Callable[[bytes], Any] = _ignore

    def register_on_stt_result(self, callback: Callable[[STTResult], Any]) -> None:
        self._on_stt_result = callback

    def register_on_tts_audio(self, callback: Callable[[bytes], Any]) -> None:
        self._on_tts_audio = callback

    async def speak(self, text: str) -> None:
        """Send a ``speak`` command (flushed, interruptible), encoded and masked afresh."""
        command = {"type": "speak", "text": text, "flush": True, "allow_interruption": True}
        payload = json.dumps(command, separators=(",", ":")).encode()
        self._transport.write(rfc_text_frame(payload))  # type: ignore[union-attr]

    def _frame(self, opcode: int, buffer: bytearray, start: int, end: int) -> None:
        if opcode == 2:
            with memoryview(buffer) as view:  # one copy: the callback keeps bytes
                audio = bytes(view[start:end])
            _run(self._on_tts_audio(audio))
        elif opcode == 1:
            event = json.loads(buffer[start:end])
            if event["type"] == "stt_result":
                _run(self._on_stt_result(STTResult(event)))
            elif event["type"] == "ready" and self._ready is not None and not self._ready.done():
                self._ready.set_result(None)
        else:
            super()._frame(opcode, buffer, start, end)


def _ignore(_value: Any) -> None:
    """The callback of an event nobody registered one for."""


def _run(outcome: Any) -> None:
    """Finish what a callback returned: a coroutine runs to its end now (the load's
    callbacks never wait: ``speak`` writes at once), anything else is done already."""
    if outcome is None or not asyncio.iscoroutine(outcome):
        return
    try:
        outcome.send(None)
    except StopIteration:
        return
    outcome.close()
    raise RuntimeError("a callback waited: the seed floor runs callbacks that never wait")
