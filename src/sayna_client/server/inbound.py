"""The client->server side of one WebSocket: aiohttp's parser, with a fast path for audio.

A live session sends a small binary frame every 20 ms. Through aiohttp alone each one
is parsed, wrapped in a message, queued, and handed to the session's read loop by
waking its task: the wake-up costs more than everything the session then does with the
audio. :class:`InboundFrames` stands in front of aiohttp's parser on the upgraded
connection. It finds the frames' edges itself; a complete, final, masked binary frame
the session can take at once (its read loop is parked on an empty queue, its
speech-to-text stream is instant) is unmasked and handed over inside the socket's
callback. Every other byte (text and control frames, fragments, oversized or invalid
frames, every frame of a compressed connection) goes to aiohttp's parser unchanged and
whole frames at a time, so everything aiohttp checks and answers stays as it was.

One check is added to aiohttp's: a client frame without a mask closes the connection
with 1002 (protocol error), as RFC 6455 section 5.1 asks and the real server
(tungstenite) does; aiohttp's server parser accepts it. The fast path already reads
the mask bit, so masked frames cost nothing more.

Order is kept: a frame is taken at once only while nothing that arrived before it waits
in aiohttp's queue or parser, and only while the read loop would take it next.
"""

from __future__ import annotations

import struct
from typing import Any, Callable, Optional, Protocol, Union

from aiohttp import WebSocketError, WSCloseCode, web

from .._compat import aiohttp_mask

__all__ = ["AudioFastResponse", "AudioTaker", "InboundFrames"]

_LEN16 = struct.Struct("!H")
_LEN64 = struct.Struct("!Q")
#: FIN + binary opcode, nothing reserved: the only first byte the fast path takes.
_FINAL_BINARY = 0x82
_FIN = 0x80
_MASKED = 0x80
_CONTINUATION, _TEXT, _BINARY = 0, 1, 2
_unmask = aiohttp_mask()
#: The client sent a frame without a mask (RFC 6455 5.1; tungstenite's wording).
_UNMASKED = "Received an unmasked frame from client"


class AudioTaker(Protocol):
    """What :class:`InboundFrames` asks of its session."""

    def can_take_audio(self) -> bool:
        """Whether a binary frame arriving now may be handled at once (nothing before it
        is still being handled, and handling it needs no ``await``)."""

    def take_audio(self, data: bytes) -> None:
        """Handle one binary frame now, as the read loop would have."""


class InboundFrames:
    """aiohttp's WebSocket parser for one connection, with the audio fast path in front.

    Args:
        inner: aiohttp's parser (``feed_data(bytes) -> (eof, tail)``, ``feed_eof()``),
            fed every byte this does not take, whole frames at a time.
        taker: the session.
        queue: aiohttp's message queue behind ``inner`` (the fast path is open only
            while it holds nothing).
        limit: the largest payload the fast path takes (larger frames go to aiohttp,
            which enforces the session's maximum message size).
        mask: aiohttp's in-place unmasking.
    """

    __slots__ = (
        "_fragmented",
        "_inner",
        "_limit",
        "_mask",
        "_need",
        "_pending",
        "_queue",
        "_stalls",
        "_taker",
        "_through",
        "taken",
    )

    def __init__(
        self,
        inner: Any,
        taker: AudioTaker,
        queue: Any,
        limit: int,
        mask: Callable[[bytes, bytearray], None],
    ) -> None:
        self._inner = inner
        self._mask = mask
        self._taker = taker
        self._queue = queue
        # aiohttp >= 3.13 may hold unparsed frames while its queue is full (looked up
        # once: a missing attribute per frame would raise and catch an AttributeError).
        self._stalls = hasattr(queue, "_stalled_reader")
        self._limit = limit
        # The start of a frame whose header, or whole small frame, is not all here yet,
        # and how many bytes it needs before parsing goes on (reads are appended to it
        # until then: a frame arriving in many small reads is copied once).
        self._pending = bytearray()
        self._need = 0
        self._through = 0  # bytes of the current frame still to hand to aiohttp as they come
        self._fragmented = False  # a fragmented message is open in aiohttp's parser
        #: Binary frames handed to the session at once (the rest went to aiohttp).
        self.taken = 0

    def feed_eof(self) -> None:
        """The connection ended: aiohttp's parser ends its queue."""
        self._inner.feed_eof()

    def feed_data(self, data: Union[bytes, bytearray, memoryview]) -> tuple[bool, bytes]:
        """Take ``data`` off the socket (``bytes``; a ``bytearray`` from Windows' proactor
        loop is copied first, as aiohttp's parser does); ``(True, b"")`` once aiohttp's
        parser failed or saw the end (the connection is then closed by aiohttp)."""
        if type(data) is not bytes:
            data = bytes(data)
        if self._need:
            pending = self._pending
            pending += data
            if len(pending) < self._need:
                return False, b""
            data = bytes(pending)
            pending.clear()
            self._need = 0
        end = len(data)
        position = 0
        inner = self._inner
        mask = self._mask
        while position < end:
            if self._through:
                count = min(self._through, end - position)
                self._through -= count
                piece = data if count == end else data[position : position + count]
                position += count
                if inner.feed_data(piece)[0]:
                    return True, b""
                continue
            if end - position < 2:
                need = 2
                break
            first = data[position]
            second = data[position + 1]
            size = second & 0x7F
            head = 2
            if size == 126:
                if end - position < 4:
                    need = 4
                    break
                size = _LEN16.unpack_from(data, position + 2)[0]
                head = 4
            elif size == 127:
                if end - position < 10:
                    need = 10
                    break
                size = _LEN64.unpack_from(data, position + 2)[0]
                head = 10
            masked = second & _MASKED
            if masked:
                head += 4
            total = head + size
            if first == _FINAL_BINARY and masked and size <= self._limit and not self._fragmented:
                if end - position < total:
                    need = total  # a small frame: wait for the rest of it
                    break
                if self._open() and self._taker.can_take_audio():
                    payload = bytearray(data[position + head : position + total])
                    mask(data[position + head - 4 : position + head], payload)
                    position += total
                    self.taken += 1
                    self._taker.take_audio(bytes(payload))
                    continue
            else:
                if not masked:
                    return self._refuse(_UNMASKED)
                opcode = first & 0x0F
                if opcode in (_TEXT, _BINARY):
                    self._fragmented = not first & _FIN
                elif opcode == _CONTINUATION and first & _FIN:
                    self._fragmented = False
            count = min(total, end - position)
            self._through = total - count
            piece = data if count == end else data[position : position + count]
            position += count
            if inner.feed_data(piece)[0]:
                return True, b""
        else:
            return False, b""
        self._pending += data[position:]
        self._need = need
        return False, b""

    def _refuse(self, reason: str) -> tuple[bool, bytes]:
        """Fail the connection as aiohttp's parser fails it on a protocol error: the
        read loop's ``receive()`` raises it, and aiohttp closes with 1002; the bytes that
        come after are dropped."""
        self._queue.set_exception(WebSocketError(WSCloseCode.PROTOCOL_ERROR, reason))
        self._inner = _Refused()
        self._pending.clear()
        self._need = 0
        self._through = 1 << 62  # every later byte goes to the refusing parser
        return True, b""

    def _open(self) -> bool:
        """Nothing waits in aiohttp's queue (nor, on aiohttp >= 3.13, in its parser,
        stalled while the queue was full)."""
        queue = self._queue
        return (
            not queue._buffer
            and not queue.is_eof()
            and not (self._stalls and queue._stalled_reader is not None)
        )


class _Refused:
    """The parser of a connection that failed: ends every read."""

    def feed_data(self, data: bytes) -> tuple[bool, bytes]:
        return True, b""

    def feed_eof(self) -> None:
        pass


class AudioFastResponse(web.WebSocketResponse):
    """aiohttp's ``WebSocketResponse`` with :class:`InboundFrames` in front of its parser,
    put there as the upgrade completes, before aiohttp parses a byte: bytes a client sent
    right behind its upgrade request (which may end inside a frame) go through it too.

    Args:
        taker: the session.
        limit: the largest payload the fast path takes; below the message limit
            aiohttp enforces (it refuses a message of ``max_msg_size`` bytes or more).
        kwargs: ``WebSocketResponse``'s.
    """

    def __init__(self, taker: AudioTaker, limit: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._taker = taker
        self._limit = limit
        #: This connection's fast path; None where aiohttp reads it alone (a compressed
        #: connection, or an aiohttp whose internals are not the ones this knows).
        self.inbound: Optional[InboundFrames] = None

    def _post_start(self, request: Any, protocol: Any, writer: Any) -> None:
        handler = request.protocol
        tail = getattr(handler, "_message_tail", None)
        if not isinstance(tail, bytes):
            super()._post_start(request, protocol, writer)
            return
        handler._message_tail = b""  # fed below, through the fast path's edge finder
        super()._post_start(request, protocol, writer)
        self.inbound = _install(self, handler, self._taker, self._limit)
        if tail:
            # As aiohttp's set_parser() feeds it (its failure is left in the queue).
            handler._payload_parser.feed_data(tail)


def _install(
    ws: web.WebSocketResponse, handler: Any, taker: AudioTaker, limit: int
) -> Optional[InboundFrames]:
    """Put :class:`InboundFrames` in front of the parser aiohttp just gave ``handler``
    (the connection's protocol); None, with nothing changed, where aiohttp's internals
    are not the ones this was written against. On a compressed connection it only checks
    masks: every frame goes to aiohttp."""
    inner = getattr(handler, "_payload_parser", None)
    queue: Optional[Any] = getattr(ws, "_reader", None)
    if (
        inner is None
        or queue is None
        or not hasattr(queue, "_buffer")
        or not callable(getattr(inner, "feed_data", None))
        or not callable(getattr(queue, "set_exception", None))
        or _unmask is None
    ):
        return None
    frames = InboundFrames(inner, taker, queue, -1 if ws.compress else limit, _unmask)
    handler._payload_parser = frames
    return frames
