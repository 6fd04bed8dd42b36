"""The server->client side of one WebSocket: one FIFO, one writer task, close handshakes.

Every frame a session sends goes through :meth:`Outbound.send`, so JSON messages and
binary audio leave in exactly the order they were queued (section 6.10). Closing follows
the real server: after ``participant_disconnected`` it sends a Close frame without payload
(clients see 1005) and ends the TCP connection once the client answers.

Back-pressure (section 6.1): Sayna's outbound channel holds 1,024 frames, and its read
loop waits for room before it handles the next client frame. Here :meth:`Outbound.send`
never drops a frame (TTS audio included), but the producers that can wait do so while
:attr:`Outbound.full`: the session's read loop before it takes the next frame, the TTS
worker before it queues the next chunk (:meth:`Outbound.wait_space`). A client that
stops reading therefore stops being read, and the queue stays near its capacity
instead of growing with everything the client keeps sending.

The writer waits for a client that reads slowly on the transport's own flow control (the
protocol's drain waiter), not on a timer; stopping the server gives each session's close
handshake :data:`SHUTDOWN_CLOSE_TIMEOUT` seconds, then aborts a connection whose client
does not read (a graceful close would wait for it to take every byte still buffered).
"""

from __future__ import annotations

import asyncio
import json
import logging
import struct
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Callable, Optional, Union

from aiohttp import WSMsgType, web

from .records import SessionRecord

__all__ = ["Close", "Outbound", "Raw"]

logger = logging.getLogger("sayna_client.server")

CLOSE_REPLY_TIMEOUT = 5.0
#: Seconds the server's close handshake may take when the server stops; the connection is
#: then aborted (a client that does not read never takes the Close frame).
SHUTDOWN_CLOSE_TIMEOUT = 3.0
#: Frames the outbound queue holds before the producers that can wait do (Sayna's channel
#: capacity, section 6.1).
OUTBOUND_CAPACITY = 1024
#: Queued frames written with one transport write (see ``Outbound._write_batch``).
BATCH_FRAMES = 256
BATCH_BYTES = 256 * 1024
#: What a JSON message counts towards BATCH_BYTES before it is encoded.
_JSON_SIZE_GUESS = 256
#: Bytes the transport may hold unsent before the writer waits for the client to read
#: (the transport's high-water mark; it wakes the writer below a quarter of it).
WRITE_BUFFER_LIMIT = 256 * 1024
#: Polling interval, only where aiohttp's protocol has no drain waiter to wait on.
_WRITE_WAIT = 0.001


@dataclass(frozen=True)
class Close:
    """Queue item: close with ``code`` (``None`` = Close frame without payload)."""

    code: Optional[int]


@dataclass(frozen=True)
class Raw:
    """Queue item: a text frame sent verbatim and not recorded (fault injection)."""

    text: str


Item = Union[dict[str, Any], bytes, Close, Raw]


class Outbound:
    """Writer of one connection.

    Args:
        drop_after: abort the TCP connection after this many frames (fault injection).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        record: SessionRecord,
        drop_after: Optional[int] = None,
    ) -> None:
        self._ws = ws
        self._request = request
        self._record = record
        self._drop_after = drop_after
        # Never refuses a frame; the producers that can wait keep it near OUTBOUND_CAPACITY.
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._space: Optional[asyncio.Future[None]] = None  # wait_space() callers wait on it
        self._drain: Optional[Callable[[], Awaitable[None]]] = None
        self._writer: Optional[asyncio.Task[None]] = None
        self._abort_timer: Optional[asyncio.Task[None]] = None
        self._accepting = True
        self._server_closing = False
        self._writer_closing = False  # the writer took a Close off the queue
        self._discarding = False  # shutdown() sent a Close itself: the writer stops
        #: The close code the session ended with (1005 = no status, 1006 = abnormal).
        self.close_code: Optional[int] = None

    @property
    def accepting(self) -> bool:
        """``False`` once a Close was queued or the writer stopped."""
        return self._accepting

    @property
    def full(self) -> bool:
        """Whether the queue holds :data:`OUTBOUND_CAPACITY` frames or more (producers
        that can wait then :meth:`wait_space`)."""
        return self._queue.qsize() >= OUTBOUND_CAPACITY

    @property
    def waiting_for_space(self) -> bool:
        """Whether a producer waits in :meth:`wait_space` now."""
        return self._space is not None

    def start(self) -> None:
        transport = self._request.transport
        if transport is not None:
            # The protocol is paused above this and resumed below a quarter of it: the
            # writer waits on that (see _write_batch) instead of polling the buffer.
            transport.set_write_buffer_limits(high=WRITE_BUFFER_LIMIT)
        # aiohttp's protocol waits for "writing resumed" in _drain_helper (every aiohttp
        # 3.x; its own WebSocket writer uses it). Without it the writer polls.
        self._drain = getattr(self._request.protocol, "_drain_helper", None)
        self._writer = asyncio.ensure_future(self._write_loop())

    def send(self, item: Item) -> None:
        """Queue a frame (dropped once a Close was queued or the writer stopped); never
        refused for lack of room (see :meth:`wait_space`)."""
        if self._accepting:
            self._queue.put_nowait(item)
            if isinstance(item, Close):
                self._stop_accepting()

    async def wait_space(self) -> None:
        """Wait while the queue is :attr:`full` (the writer waits for the client to read);
        returns at once when it is not, and as soon as no more frames are accepted
        (closing, writer stopped)."""
        while self._accepting and self._queue.qsize() >= OUTBOUND_CAPACITY:
            waiter = self._space
            if waiter is None or waiter.done():
                waiter = self._space = asyncio.get_running_loop().create_future()
            # Shielded: the waiters share the future, and a producer cancelled while it
            # waits (a `clear` cancels the TTS worker) must not cancel the others' wait.
            await asyncio.shield(waiter)

    def _wake_space(self) -> None:
        waiter, self._space = self._space, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _stop_accepting(self) -> None:
        self._accepting = False
        self._wake_space()

    def close_transport(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.close()

    def _abort_transport(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    def abort(self) -> None:
        """End the TCP connection now, discarding what was not sent."""
        self._stop_accepting()
        self._abort_transport()

    async def client_closed(self, code: int) -> None:
        """The client sent Close with ``code`` (0 = no payload): answer and end the connection."""
        if self._server_closing:
            # Our payload-less Close was answered: end TCP, send nothing more.
            self.close_transport()
            return
        self.close_code = code or 1005
        if code:
            await self._ws.close(code=code)
        else:
            await send_close_frame(self._ws, self._request, b"")
            self.close_transport()

    async def wait_writer(self) -> None:
        """Wait (at most :data:`CLOSE_REPLY_TIMEOUT` s) until the writer task ends, when
        it is sending a queued Close: that close must finish before the session tears
        down. Returns at once otherwise."""
        writer = self._writer
        if not self._writer_closing or writer is None or writer.done():
            return
        await asyncio.wait({writer}, timeout=CLOSE_REPLY_TIMEOUT)

    def connection_lost(self) -> None:
        """The reader saw the connection end without a Close handshake."""
        if self.close_code is None:
            self.close_code = self._ws.close_code or 1006

    async def shutdown(self, code: int = 1001) -> None:
        """Close from the server side with ``code`` (server stopping). The handshake gets
        :data:`SHUTDOWN_CLOSE_TIMEOUT` seconds; then the connection is aborted: a client
        that stopped reading never takes the Close frame queued behind what it has not
        read, and closing the transport gracefully would wait for it forever. Frames
        still queued are discarded, and the writer writes nothing more: no frame may
        follow the Close (RFC 6455 5.5.1), and the server is going away. (The writer is
        not cancelled: it may be inside aiohttp's send or drain, which a cancellation
        would break for the Close sent here, on aiohttp 3.9.)"""
        if self._ws.closed or not self._accepting:
            self.close_transport()
            return
        self._stop_accepting()
        self._discarding = True
        queue = self._queue
        while not queue.empty():
            queue.get_nowait()
        self.close_code = code
        try:
            await asyncio.wait_for(self._ws.close(code=code), SHUTDOWN_CLOSE_TIMEOUT)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            self._abort_transport()

    async def aclose(self) -> None:
        """Stop the writer and timers; queued frames are discarded."""
        self._stop_accepting()
        for task in (self._writer, self._abort_timer):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _write_loop(self) -> None:
        frames = 0
        held: Optional[Item] = None
        try:
            while True:
                item = held if held is not None else await self._queue.get()
                held = None
                if self._discarding:
                    return
                if self._space is not None:  # a producer waits for room: there is some now
                    self._wake_space()
                if isinstance(item, Close):
                    self._writer_closing = True
                    await self._send_close(item.code)
                    return
                if isinstance(item, Raw):
                    await self._ws.send_str(item.text)
                    batch: list[Item] = []
                else:
                    batch = [item]
                    held = self._take_batch(batch)
                    if self._drop_after is not None:
                        await self._send_one(item)  # frame-exact fault injection
                    else:
                        await self._write_batch(batch)
                for sent in batch:
                    self._record.add_sent(sent)
                frames += max(1, len(batch))
                if self._drop_after is not None and frames >= self._drop_after:
                    self.close_code = 1006
                    self._abort_transport()
                    return
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("session writer stopped: %s", exc)
        finally:
            self._stop_accepting()

    async def _send_one(self, item: Item) -> None:
        if isinstance(item, bytes):
            await self._ws.send_bytes(item)
        else:
            await self._ws.send_str(json.dumps(item, separators=(",", ":")))

    def _take_batch(self, batch: list[Item]) -> Optional[Item]:
        """Move the data frames queued right behind ``batch[0]`` into ``batch``; returns
        a control item (Close, Raw) taken off the queue on the way, to handle next.
        With fault injection the batch stays one frame (sent by aiohttp). The connection
        is never compressed (the session's response refuses permessage-deflate)."""
        if self._drop_after is not None:
            return None  # frame-exact fault injection
        size = 0
        queue = self._queue
        while len(batch) < BATCH_FRAMES and size < BATCH_BYTES and not queue.empty():
            item = queue.get_nowait()
            if isinstance(item, (Close, Raw)):
                return item
            batch.append(item)
            size += len(item) if isinstance(item, bytes) else _JSON_SIZE_GUESS
        return None

    async def _write_batch(self, batch: list[Item]) -> None:
        """Write one or several data frames with one transport write (the frames are the
        ones aiohttp would write: unmasked, unfragmented, uncompressed), then wait while
        the client is behind. A burst of small frames otherwise costs one system call
        each, and the writer, not the client, sets the pace; a single frame skips
        aiohttp's two coroutines per send."""
        transport = self._request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("Cannot write to closing transport")
        parts: list[bytes] = []
        for item in batch:
            if isinstance(item, bytes):
                payload, first = item, 0x82  # FIN + binary
            else:
                payload, first = json.dumps(item, separators=(",", ":")).encode(), 0x81
            parts.append(_frame_header(first, len(payload)))
            parts.append(payload)
        transport.write(b"".join(parts))
        if transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            await self._wait_writable(transport)

    async def _wait_writable(self, transport: asyncio.Transport) -> None:
        """Wait until the client took enough of what the transport holds: the protocol was
        paused above WRITE_BUFFER_LIMIT and its drain waiter wakes when the transport
        resumes it, or when the connection is lost (no timer while a client that stopped
        reading stays connected)."""
        drain = self._drain
        if drain is not None:
            await drain()  # raises ConnectionResetError once the connection is gone
            return
        while transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT:
            if transport.is_closing():
                raise ConnectionResetError("Connection closed while writing")
            await asyncio.sleep(_WRITE_WAIT)

    async def _send_close(self, code: Optional[int]) -> None:
        if code is None:
            self._server_closing = True
            self.close_code = 1005
            await send_close_frame(self._ws, self._request, b"")
            # The reader ends the connection when the client answers; do not wait forever.
            self._abort_timer = asyncio.ensure_future(self._abort_later())
        else:
            self.close_code = code
            await self._ws.close(code=code)

    async def _abort_later(self) -> None:
        await asyncio.sleep(CLOSE_REPLY_TIMEOUT)
        self._abort_transport()


def _frame_header(first_byte: int, length: int) -> bytes:
    """The header of an unmasked WebSocket frame (RFC 6455 section 5.2)."""
    if length < 126:
        return struct.pack("!BB", first_byte, length)
    if length < 65536:
        return struct.pack("!BBH", first_byte, 126, length)
    return struct.pack("!BBQ", first_byte, 127, length)


#: The internal switch of :func:`send_close_frame` (tests turn it off to hold both paths
#: to the same wire bytes): ``False`` writes the Close frame's bytes on the transport even
#: when aiohttp has the public ``send_frame``.
USE_SEND_FRAME = True


async def send_close_frame(ws: web.WebSocketResponse, request: web.Request, payload: bytes) -> None:
    """Send a Close frame with an arbitrary payload (empty = "no status", seen as 1005).

    ``WebSocketResponse.close()`` always sends a status code, so the frame goes out through
    aiohttp's public ``send_frame`` (aiohttp >= 3.11) or, without it, as the bytes aiohttp
    would write (FIN + opcode 8, unmasked: a server's frame) on the request's transport,
    the same one :meth:`Outbound._write_batch` writes to. No private aiohttp state is used.

    Raises:
        ConnectionResetError: the transport is gone or closing.
    """
    send_frame = getattr(ws, "send_frame", None) if USE_SEND_FRAME else None
    if send_frame is not None:
        await send_frame(payload, WSMsgType.CLOSE)
        return
    transport = request.transport
    if transport is None or transport.is_closing():
        raise ConnectionResetError("Cannot write to closing transport")
    transport.write(_frame_header(0x88, len(payload)) + payload)
