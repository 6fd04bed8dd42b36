"""The client's own WebSocket data path on the connection aiohttp opened.

aiohttp dials (proxies, TLS, redirects, credentials) and performs the upgrade; after the
``101`` the connection installs :class:`FrameProtocol` as the transport's protocol
(``transport.set_protocol``, public asyncio API) and from then on reads and writes RFC
6455 frames itself. Reading through aiohttp costs, per message, its reader's queue, a
future, a wake-up of the reading task and ``receive()``'s own checks: about as much CPU
as the rest of the SDK's work on an event, and the difference between a few hundred and
a thousand live sessions per core (issue #19). Here every frame of a received chunk is
parsed in one pass and handed to the connection synchronously, in order, from the
transport's callback; nothing waits and no task is involved.

What the parser enforces (RFC 6455 §5): frames from the server are not masked; no
reserved bit is set (no extension is negotiated: the client offers none); control frames
are final and at most 125 bytes; continuation frames only continue a fragmented message;
a text message is UTF-8 (§8.1); a message is at most ``max_size`` bytes; a Close frame's
code is one a peer may send. A violation ends the session with the RFC's code (1002,
1007 or 1009) and a reason that says what the server did.

Writing: :class:`FrameProtocol` is also the transport's flow control (``pause_writing``
/ ``resume_writing``): :class:`~.wire.FrameWriter` waits on :meth:`FrameProtocol.writable`
while the peer does not read. When the connection is lost every waiting send wakes.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import struct
from typing import Any, Callable, Optional, Protocol

from ..protocol.lifecycle import CloseCode

__all__ = ["FrameProtocol", "FrameSink", "WireViolation"]

logger = logging.getLogger("sayna_client")

_TEXT = 0x81  # FIN + opcode 1
_BINARY = 0x82  # FIN + opcode 2
_FIN = 0x80
_RSV = 0x70
_OP = 0x0F
_CONTINUATION, _OP_TEXT, _OP_BINARY, _OP_CLOSE, _OP_PING, _OP_PONG = 0, 1, 2, 8, 9, 10

#: Frames handled in one turn of the event loop; the rest waits for the next turn (the
#: socket is not read meanwhile), so consumers of the events keep pace and a backlog
#: stays in TCP's flow-controlled buffers rather than in their queues. Counted across
#: chunks, not per chunk: uvloop (libuv) hands a socket's data over in up to 32 chunks
#: in one turn, and Python 3.9/3.10's TLS one chunk per TLS record.
FRAMES_PER_TURN = 128
#: Bytes read in one turn of the event loop before the socket waits for the next turn
#: (asyncio's own loop reads up to 256 KiB a turn; uvloop up to 32 times that).
BYTES_PER_TURN = 256 * 1024

_PROTOCOL_ERROR = int(CloseCode.PROTOCOL_ERROR)
_INVALID_PAYLOAD = int(CloseCode.INVALID_PAYLOAD)
_TOO_BIG = int(CloseCode.MESSAGE_TOO_BIG)
_EMPTY_BINARY = bytes((_BINARY, 0))
#: The memo while a fragmented message is gathered: ``bytes.startswith(())`` is False,
#: so no frame is taken for a whole binary message then (see FrameProtocol._memo).
_NO_MEMO: tuple[()] = ()
#: A frame's first byte, its length byte and the two bytes after them (a 16-bit
#: length when the length byte is 126): one call for the header of nearly every frame.
_HEAD = struct.Struct("!BBH").unpack_from
_NOT_UTF8 = "the server sent a text message that is not UTF-8"
_MASKED = "the server sent a masked frame"


def _sendable_close_code(code: int) -> bool:
    """Whether a peer may put ``code`` in a Close frame (RFC 6455 §7.4, the IANA
    registry's 1012-1014, and the 3000-4999 ranges for libraries and applications)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


class WireViolation(Exception):
    """The server broke the WebSocket protocol: ``code`` is the close code it earns."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class FrameSink(Protocol):
    """What a :class:`FrameProtocol` reports to (the connection), on the loop, in order."""

    def frame_text(self, text: str) -> None:
        """A whole text message arrived."""
        ...

    def frame_binary(self, data: bytes) -> None:
        """A whole binary message arrived."""
        ...

    def frame_binary_run(self, run: list[bytes]) -> None:
        """Two or more whole binary messages arrived in a row in one read (in order);
        the list is the sink's from now on."""
        ...

    def frame_ping(self, payload: bytes) -> None:
        """A Ping arrived (the sink answers it)."""
        ...

    def frame_pong(self) -> None:
        """A Pong arrived."""
        ...

    def frame_close(self, code: int, reason: str) -> None:
        """The server's Close frame arrived (``code`` 0: it carried none). Nothing is
        read after it."""
        ...

    def frame_violation(self, violation: WireViolation) -> None:
        """The server broke the protocol. Nothing is read after it."""
        ...

    def frame_failure(self, exc: Exception) -> None:
        """Handling a frame raised (an SDK bug). Nothing is read after it."""
        ...

    def wire_lost(self, exc: Optional[BaseException]) -> None:
        """The TCP connection ended (``exc``: why, None for an orderly end)."""
        ...


class PauseFlag(Protocol):
    """What keeps a copy of :attr:`FrameProtocol.paused` (the frame writer)."""

    paused: bool


class FrameProtocol(asyncio.Protocol):
    """The transport's protocol once the WebSocket is open: parses the server's frames
    for a :class:`FrameSink` and holds the transport's write flow control.

    ``max_size`` bounds a message (a frame, or a fragmented message in all); ``binary``
    takes each whole binary message instead of ``sink.frame_binary`` (the audio path;
    two or more that came in a row in one read go to ``sink.frame_binary_run`` at once);
    ``previous`` is the protocol it replaced (aiohttp's): told of the connection's end
    as it would have been, so aiohttp's own state about it stays true.
    """

    __slots__ = (
        "_binary",
        "_budget",
        "_buffer",
        "_flowing",
        "_fragments",
        "_fragments_op",
        "_holding",
        "_max_size",
        "_memo",
        "_memo_size",
        "_need",
        "_next_turn",
        "_previous",
        "_rest",
        "_rest_at",
        "_sink",
        "_taken",
        "_turn_bytes",
        "_turn_frames",
        "_waiters",
        "lost",
        "on_resume",
        "paused",
        "reading",
        "transport",
        "writer",
    )

    def __init__(
        self,
        sink: FrameSink,
        max_size: int,
        transport: Any,
        previous: Optional[Any] = None,
        binary: Optional[Callable[[bytes], None]] = None,
        frames_per_turn: int = FRAMES_PER_TURN,
        bytes_per_turn: int = BYTES_PER_TURN,
    ) -> None:
        self._sink: Optional[FrameSink] = sink
        #: The frames and bytes handled in one turn of the loop (at most
        #: :data:`FRAMES_PER_TURN` and :data:`BYTES_PER_TURN`; fewer where the consumers'
        #: queues are smaller, so that a consumer keeping up never overflows).
        self._turn_frames = frames_per_turn
        self._turn_bytes = bytes_per_turn
        #: Takes each whole binary message (the audio hot path: the sink's consumer
        #: directly, one call less per frame); ``sink.frame_binary`` when not given.
        self._binary = binary or sink.frame_binary
        #: The transport this protocol was installed on.
        self.transport = transport
        self._max_size = max_size
        self._previous = previous
        #: The bytes of an incomplete frame, and how many the frame needs in all.
        self._buffer: Optional[bytearray] = None
        self._need = 0
        #: A received chunk not handled yet (held, or waiting for the next turn), and
        #: where in it to go on.
        self._rest: Optional[bytes] = None
        self._rest_at = 0
        #: The header of the last whole binary frame parsed and the frame's size in all:
        #: a frame starting with the same bytes is as valid and as long (an empty binary
        #: frame until then, which is what those two bytes say). :data:`_NO_MEMO` while
        #: a fragmented message is gathered (a whole binary frame is a violation then).
        self._memo: bytes | tuple[()] = _EMPTY_BINARY
        self._memo_size = len(_EMPTY_BINARY)
        #: A fragmented message being gathered, and its opcode.
        self._fragments: Optional[bytearray] = None
        self._fragments_op = 0
        self._waiters: Optional[collections.deque[asyncio.Future[None]]] = None
        #: True between hold() and release(): frames wait in _rest.
        self._holding = False
        #: True while the rest of a chunk waits for the loop's next turn.
        self._next_turn = False
        #: Frames that may still be handled, and bytes read, before the loop turns (both
        #: reset by _turn).
        self._budget = self._turn_frames
        self._taken = 0
        #: False once a Close or a violation ended reading (later bytes are ignored).
        self.reading = True
        #: Frames are handled now: reading, not held, not waiting for the next turn.
        self._flowing = True
        #: True while the transport's write buffer is over its high-water mark.
        self.paused = False
        #: The transport's frame writer (set by it), whose own ``paused`` this keeps
        #: equal to :attr:`paused`: it tests it after every frame, and reading it there
        #: touches one object less per frame (issue #19). Let go with the connection.
        self.writer: Optional[PauseFlag] = None
        #: Called soon after writing resumes, once (the writer's late Pong).
        self.on_resume: Optional[Callable[[], None]] = None
        #: True once the connection ended.
        self.lost = False

    # --- reading ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        """Parse every whole frame of ``data`` (after what an earlier chunk left over)
        and hand each to the sink, at most :data:`FRAMES_PER_TURN` frames between two
        turns of the loop, and no more of the socket in this turn once about
        :data:`BYTES_PER_TURN` bytes were read; keep an incomplete last frame for the next
        chunk."""
        if self._buffer is None and self._flowing:
            taken = self._taken = self._taken + len(data)
            if data.startswith(self._memo) and len(data) == self._memo_size and self._budget:
                # The usual chunk of a TTS stream: one frame, like the last binary one
                # (see _parse), and nothing else.
                self._budget -= 1
                try:
                    self._binary(data[len(self._memo) :])
                except Exception as exc:  # a failure of the SDK's own handling
                    self._fail(exc)
            else:
                # Any other chunk starting with a frame (nothing incomplete waits). The
                # body of _handle, inline: one call less per received event.
                try:
                    self._parse(data, 0)
                except WireViolation as violation:
                    self._stop()
                    self._tell_violation(violation)
                except Exception as exc:  # a failure of the SDK's own handling: never silent
                    self._fail(exc)
            if taken >= self._turn_bytes and self._flowing:
                self._wait_turn()  # read no more in this turn
            return
        if not self._flowing:
            if self.reading:
                self._keep(data, 0)  # held, or waiting for the next turn
            return
        self._taken += len(data)
        pos = 0
        buffer = self._buffer
        while buffer is not None:
            # An incomplete frame waits: complete it with just the bytes it needs (the
            # rest of the chunk is parsed where it lies, not copied behind it).
            take = self._need - len(buffer)
            if take > len(data) - pos:
                buffer += memoryview(data)[pos:]
                return  # a large frame still arriving
            buffer += memoryview(data)[pos : pos + take]
            pos += take
            self._buffer = None
            self._handle(bytes(buffer), 0)  # the frame, or its header: then it needs more
            if not self._flowing:
                if self.reading and pos < len(data):
                    self._keep(data, pos)
                return
            buffer = self._buffer
        if pos < len(data):
            self._handle(data, pos)
        if self._taken >= self._turn_bytes and self._flowing:
            self._wait_turn()  # read no more in this turn

    def _handle(self, data: bytes, pos: int) -> None:
        """Parse ``data`` from ``pos``; a violation or a failure ends reading."""
        try:
            self._parse(data, pos)
        except WireViolation as violation:
            self._stop()
            self._tell_violation(violation)
        except Exception as exc:  # a failure of the SDK's own handling: never silent
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        self._stop()
        sink = self._sink
        if sink is not None:
            sink.frame_failure(exc)

    def _parse(self, data: bytes, pos: int) -> None:
        # The hot path of every received event (at low rates a chunk is one frame): one
        # pass over the chunk, whole text and binary frames handed over at once, the
        # rest to _frame(). Called only while frames flow, with pos < len(data).
        size = len(data)
        budget = self._budget
        memo = self._memo
        #: Binary frames of this chunk in a row, not handed over yet (see _publish).
        run: Optional[list[bytes]] = None
        while True:
            if not budget:
                if run is not None:
                    self._publish(run)
                self._wait_turn()
                self._rest, self._rest_at = data, pos  # kept as it is: no copy
                return
            if data.startswith(memo, pos):
                # The header of the last binary frame again (a TTS stream's frames are
                # alike): checked and measured then, so the frame is too. (The memo
                # starts with a whole binary frame's first byte and is 2 bytes or more:
                # no other frame, and no chunk's last byte, matches it; nor does any
                # frame while a fragmented message is gathered: see _NO_MEMO.)
                end = pos + self._memo_size
                if end > size:
                    need = self._memo_size
                    break
                budget -= 1
                if run is not None:
                    run.append(data[pos + len(memo) : end])
                elif end == size:  # the chunk's only or last frame: no run
                    self._binary(data[pos + len(memo) : end])
                else:
                    run = [data[pos + len(memo) : end]]
            else:
                if run is not None:  # the frames before this one go first
                    self._publish(run)
                    run = None
                try:
                    first, length, extended = _HEAD(data, pos)
                except struct.error:  # fewer than 4 bytes left: a tiny frame, or a part
                    if size - pos < 2:
                        need = 2
                        break
                    first = data[pos]
                    length = data[pos + 1]
                    if length >= 126:
                        if length & 0x80:
                            raise WireViolation(_PROTOCOL_ERROR, _MASKED) from None
                        need = 4 if length == 126 else 10
                        break
                    extended = 0
                if length < 126:
                    start = pos + 2
                else:
                    if length == 126:
                        length = extended
                        start = pos + 4
                    else:
                        head = _long_header(data, pos)
                        if head is None:
                            need = 10
                            break
                        length, start = head
                    if length > self._max_size:
                        raise WireViolation(
                            _TOO_BIG,
                            f"the server sent a frame of {length} bytes "
                            f"(the limit is {self._max_size})",
                        )
                end = start + length
                if end > size:
                    need = end - pos
                    break
                budget -= 1
                if first == _TEXT and self._fragments is None:
                    try:
                        text = data[start:end].decode()
                    except UnicodeDecodeError:
                        raise WireViolation(_INVALID_PAYLOAD, _NOT_UTF8) from None
                    self._sink.frame_text(text)  # type: ignore[union-attr]
                elif first == _BINARY and self._fragments is None:
                    memo = self._memo = data[pos:start]
                    self._memo_size = end - pos
                    self._binary(data[start:end])
                else:
                    self._frame(first, data[start:end])
                    memo = self._memo  # (a fragmented message began or ended)
            if end == size:  # the chunk's last frame
                self._budget = budget
                if run is not None:
                    self._publish(run)
                return
            pos = end
            if not self._flowing:  # held after a frame, or a Close ended reading
                # (Never after a frame of a run: a binary frame holds nothing.)
                self._budget = budget
                if self.reading:  # held: the rest waits
                    self._rest, self._rest_at = data, pos
                return
        # An incomplete frame: kept until the bytes it needs are here.
        self._budget = budget
        self._buffer = bytearray(memoryview(data)[pos:])
        self._need = need
        if run is not None:
            self._publish(run)

    def _publish(self, run: list[bytes]) -> None:
        """Hand over binary frames that came in a row in one chunk (a TTS stream's
        often do: several to a read), in order: two or more to the sink at once, one
        as any frame. Gathered by :meth:`_parse` only while nothing else comes between
        them, and handed over before anything after them is looked at."""
        if len(run) == 1:
            self._binary(run[0])
        else:
            self._sink.frame_binary_run(run)  # type: ignore[union-attr]

    def _keep(self, data: bytes, pos: int) -> None:
        """Add ``data`` from ``pos`` to what waits while reading is held or between
        turns (rare: the socket is paused then)."""
        rest = self._rest
        if rest is None:
            self._rest, self._rest_at = data, pos
        else:
            self._rest, self._rest_at = rest[self._rest_at :] + data[pos:], 0

    def hold(self) -> None:
        """Handle no frame after the current one until :meth:`release` (the socket is
        not read meanwhile): the task that waited for ``ready`` resumes before anything
        the server sent after it is handled, as when it read the socket itself."""
        self._holding = True
        self._flowing = False
        self.transport.pause_reading()

    def release(self) -> None:
        """Handle the held frames now and read the socket again."""
        if not self._holding:
            return
        self._holding = False
        self._go_on()

    def _wait_turn(self) -> None:
        """Leave the rest of the chunk, and the socket, for the loop's next turn."""
        self._next_turn = True
        self._flowing = False
        self.transport.pause_reading()
        asyncio.get_running_loop().call_soon(self._turn)

    def _turn(self) -> None:
        self._next_turn = False
        self._budget = self._turn_frames
        self._taken = 0
        self._go_on()

    def _go_on(self) -> None:
        """Handle what waits in the buffer and read the socket again, unless still held."""
        if self._holding or self._next_turn or not self.reading or self.lost:
            return
        self._flowing = True
        self.transport.resume_reading()
        rest = self._rest
        if rest is not None:
            self._rest = None
            self._handle(rest, self._rest_at)

    def _frame(self, first: int, payload: bytes) -> None:
        """Any frame but a whole text or binary message outside a fragmented one."""
        sink = self._sink
        assert sink is not None
        if first & _RSV:
            raise WireViolation(
                _PROTOCOL_ERROR, "the server set reserved bits of a frame (no extension is in use)"
            )
        op = first & _OP
        final = bool(first & _FIN)
        if op >= _OP_CLOSE:
            if not final or len(payload) > 125:
                raise WireViolation(
                    _PROTOCOL_ERROR, "the server sent a fragmented or oversized control frame"
                )
            if op == _OP_PING:
                sink.frame_ping(payload)
            elif op == _OP_PONG:
                sink.frame_pong()
            elif op == _OP_CLOSE:
                code, reason = _close_payload(payload)
                self._stop()
                sink.frame_close(code, reason)
            else:
                raise WireViolation(_PROTOCOL_ERROR, f"the server sent an unknown opcode {op}")
            return
        fragments = self._fragments
        if op == _CONTINUATION:
            if fragments is None:
                raise WireViolation(
                    _PROTOCOL_ERROR, "the server sent a continuation frame outside a message"
                )
            if len(fragments) + len(payload) > self._max_size:
                raise WireViolation(
                    _TOO_BIG,
                    f"the server sent a message over {self._max_size} bytes (the limit)",
                )
            fragments += payload
            if final:
                self._fragments = None
                self._memo, self._memo_size = _EMPTY_BINARY, len(_EMPTY_BINARY)
                self._deliver(self._fragments_op, bytes(fragments))
            return
        if op not in (_OP_TEXT, _OP_BINARY):
            raise WireViolation(_PROTOCOL_ERROR, f"the server sent an unknown opcode {op}")
        if fragments is not None:
            raise WireViolation(
                _PROTOCOL_ERROR, "the server started a message inside a fragmented one"
            )
        if final:
            self._deliver(op, payload)
        else:
            self._fragments = bytearray(payload)
            self._fragments_op = op
            self._memo = _NO_MEMO

    def _deliver(self, op: int, payload: bytes) -> None:
        sink = self._sink
        assert sink is not None
        if op == _OP_TEXT:
            sink.frame_text(_utf8(payload))
        else:
            sink.frame_binary(payload)

    def _stop(self) -> None:
        """Read nothing more (after a Close, a violation or a failure)."""
        self.reading = False
        self._flowing = False
        self._buffer = None
        self._rest = None
        self._fragments = None

    def _tell_violation(self, violation: WireViolation) -> None:
        sink = self._sink
        if sink is not None:
            sink.frame_violation(violation)

    def eof_received(self) -> None:
        """The server shut down its side: the transport closes (``wire_lost`` follows)."""
        return None

    def connection_lost(self, exc: Optional[BaseException]) -> None:
        """The connection ended: wake every waiting send, tell the sink, then aiohttp's
        protocol (its view of the connection), and let go of both."""
        self.lost = True
        self.on_resume = None
        self.writer = None  # (it holds this protocol: no cycle left)
        self._stop()
        self._wake()
        sink, self._sink = self._sink, None  # no cycle left through the connection
        previous, self._previous = self._previous, None
        if previous is not None:
            try:
                previous.connection_lost(exc)
            except Exception:  # aiohttp's bookkeeping must not hide the end of ours
                logger.debug("aiohttp's protocol failed on connection_lost", exc_info=True)
        if sink is not None:
            sink.wire_lost(exc)

    def detach(self) -> None:
        """Forget the sink and the writer (the connection ended without the transport
        knowing yet)."""
        self._sink = None
        self.writer = None
        self._stop()

    # --- writing (flow control) --------------------------------------------------------

    def pause_writing(self) -> None:
        """The transport's buffer is over its high-water mark: sends wait."""
        self.paused = True
        if self.writer is not None:
            self.writer.paused = True

    def resume_writing(self) -> None:
        """The transport drained below its low-water mark: waiting sends go on, and
        :attr:`on_resume` is called (once, soon: not inside the transport's own write)."""
        self.paused = False
        if self.writer is not None:
            self.writer.paused = False
        callback, self.on_resume = self.on_resume, None
        if callback is not None:
            asyncio.get_running_loop().call_soon(callback)
        self._wake()

    async def writable(self) -> None:
        """Return once the transport takes writes again (at once if it does), or once
        the connection is lost (the caller checks which)."""
        if not self.paused or self.lost:
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = collections.deque()
        self._waiters.append(waiter)
        try:
            await waiter
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)

    def _wake(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)


def _long_header(data: bytes, pos: int) -> Optional[tuple[int, int]]:
    """The payload length and start of the frame at ``pos`` whose length byte is
    over 126 (a 64-bit length, or the mask bit); None when its header is not all
    here yet."""
    if data[pos + 1] & 0x80:
        raise WireViolation(_PROTOCOL_ERROR, _MASKED)
    if len(data) - pos < 10:
        return None
    return int.from_bytes(data[pos + 2 : pos + 10], "big"), pos + 10


def _utf8(payload: bytes) -> str:
    try:
        return payload.decode()
    except UnicodeDecodeError:
        raise WireViolation(_INVALID_PAYLOAD, _NOT_UTF8) from None


def _close_payload(payload: bytes) -> tuple[int, str]:
    """The code and reason of a Close frame's payload (code 0: none given)."""
    if not payload:
        return 0, ""
    if len(payload) == 1:
        raise WireViolation(_PROTOCOL_ERROR, "the server sent a Close frame of one byte")
    code = int.from_bytes(payload[:2], "big")
    if not _sendable_close_code(code):
        raise WireViolation(_PROTOCOL_ERROR, f"the server sent the invalid close code {code}")
    try:
        reason = payload[2:].decode("utf-8")
    except UnicodeDecodeError:
        raise WireViolation(
            _INVALID_PAYLOAD, "the server sent a close reason that is not UTF-8"
        ) from None
    return code, reason
