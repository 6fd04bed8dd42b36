"""The client's frames written straight to the WebSocket's transport: the audio hot path.

Once the connection has taken the socket's data path over (:func:`own_path`, and
:mod:`.framing` for the receiving side), :class:`FrameWriter` writes every frame the
client sends: binary audio frames, text frames, Ping, Pong and Close. aiohttp's
``send_bytes`` runs two coroutines and a dozen ``WSMsgType`` enum operations for every
frame (about 1.1 µs of CPU for a 640-byte frame here, before the socket); a live call
sends 50 frames a second per stream and an upload loop sends as fast as the socket
takes them, so the writer does the same in one call: the RFC 6455 §5.2 header of a
final, masked frame, a fresh 32-bit masking key per frame (§5.3: unpredictable, from
``os.urandom``, drawn 512 keys at a time) and the masked payload. A frame is one
buffer, made by one concatenation (room for the header and key, then the payload),
masked whole and its header written in (see :meth:`FrameWriter.write`); the objects
it reads besides are shared by every writer. Back-pressure is the transport's: while
it has paused its protocol (a :class:`~.framing.FrameProtocol`), a send waits for it
to resume.

**Bursts share system calls.** A frame sent in the same turn of the event loop as the
previous one of its connection (an upload loop, a replay of held audio: sends that do
not wait; never a live stream, whose frames are 10-20 ms apart, each sent from a timer
or a read of its own) is appended to a batch instead of written at once; the batch is
written when it reaches :data:`BATCH_BYTES`, when the event loop next turns (by the
callback that ends the turn), and before any text frame or Close of the connection
(:meth:`FrameWriter.flush`). Every frame stays its own WebSocket frame; only
the ``send()`` calls are shared (one per ~100 frames instead of one each). A turn is
told from the next by a token that one callback per turn of the loop renews (made at
the turn's first frame of any connection: see :class:`_Turns`), so a live frame reads
no clock.

Ordering is unchanged: frames reach the transport in call order and before any later
text frame or Close; a cancelled send never leaves half a frame behind. No data frame
follows our Close (§5.5.1).

**A closing socket takes no frame.** An audio frame checks one flag of the writer,
:attr:`FrameWriter.closing`, which every path that ends the transport sets (see there).
asyncio tells of a connection it closed itself (a send or receive that failed) at the
loop's next turn: a live frame written in between goes to a transport that discards
it, like the bytes its buffer held; a burst learns it at its next flush.

**The end of a session wakes every waiting send.** A send waiting for a peer that stopped
reading would wait for ever (TCP keeps a silent connection open). The connection ends a
session by aborting the transport (:func:`drop_transport`), which wakes the waiting
sends; a send woken that way raises ``ConnectionResetError`` like one made after the
close, which the connection turns into the session's close error.

**The fence around aiohttp's private state.** This module holds the client's uses of
aiohttp's private WebSocket state: the writer (``ClientWebSocketResponse._writer``: its
transport, compression and closing flag), the reader queue (``_reader``: nothing may be
left in it when the client takes over), the upgrade response (``_response``:
:func:`upgrade_response`, for the redirect check of :mod:`.handshake`), aiohttp's record
of the connection in it (``ClientResponse._connection``: :func:`take_connection`, released
at the end by :func:`release_connection`) and, once the client took over, the reading
state of aiohttp's protocol, which it lets go (:func:`release_reader`). :func:`own_path`
checks every piece once per connection and returns None when anything is not as expected
(another aiohttp layout, per-message compression negotiated, a frame already received),
and when :data:`FAST_PATH` is off: the connection then reads and sends through aiohttp's
public WebSocket API. The tests run every wire test both ways, on the oldest aiohttp the
package allows and on the newest (``.ci/run``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import struct
import sys
import weakref
from collections.abc import Coroutine
from typing import Any, Callable, Optional, Union

import aiohttp

from .._compat import aiohttp_mask

__all__ = [
    "BATCH_BYTES",
    "FAST_PATH",
    "PING",
    "PONG",
    "FrameWriter",
    "SendProgress",
    "drop_transport",
    "frame_header",
    "frame_writer",
    "own_path",
    "release_connection",
    "release_reader",
    "send_progress",
    "take_connection",
    "transport_of",
    "unsent_bytes",
    "upgrade_response",
]

#: The internal switch of :func:`own_path`: ``False`` makes every connection read and
#: send through aiohttp's public WebSocket API (the fallback path, which the tests exercise
#: by turning this off).
FAST_PATH = True
#: A batch is written once it holds this many bytes.
BATCH_BYTES = 64 * 1024

_FIN_BINARY = 0x82  # FIN bit + opcode 2 (binary)
_FIN_TEXT = 0x81  # FIN bit + opcode 1 (text)
_CLOSE = 0x88  # FIN bit + opcode 8 (Close)
#: Ping and Pong (FIN bit + opcodes 9 and 10).
PING, PONG = 0x89, 0x8A
_MASKED = 0x80  # the MASK bit of the second header byte
_LEN16 = struct.Struct("!BBH")
_LEN64 = struct.Struct("!BBQ")
_CLOSE_CODE = struct.Struct("!H")
#: SO_LINGER on, 0 s: closing the socket resets the connection instead of draining it.
_RESET = struct.pack("ii", 1, 0)


def frame_header(size: int) -> bytes:
    """The header of a final, masked binary frame of ``size`` payload bytes (the
    masking key follows it on the wire)."""
    return _header_for(_FIN_BINARY, size)


def _header_for(first: int, size: int) -> bytes:
    """The header of a masked frame whose first byte is ``first`` (FIN and opcode)."""
    if size < 126:
        return bytes((first, _MASKED | size))
    if size < 65536:
        return _LEN16.pack(first, _MASKED | 126, size)
    return _LEN64.pack(first, _MASKED | 127, size)


logger = logging.getLogger("sayna_client")
_apply_mask = aiohttp_mask()

#: Masking keys not used yet, shared by every connection: drawn from the operating
#: system's random source (``os.urandom``) 512 at a time, each used for one frame. One
#: read of 2 KiB and one ``unpack`` make 512 keys, so a key costs a ``list.pop()``
#: rather than a draw from a generator and a ``struct.pack`` per frame.
_KEYS: list[bytes] = []
_KEY_BLOCK = struct.Struct("4s" * 512)
_take_key = _KEYS.pop


def _new_key() -> bytes:
    """A fresh masking key once :data:`_KEYS` ran out (refilled here)."""
    while True:
        _KEYS.extend(_KEY_BLOCK.unpack(os.urandom(_KEY_BLOCK.size)))
        try:
            return _take_key()
        except IndexError:  # pragma: no cover - another thread emptied it meanwhile
            continue


if hasattr(os, "register_at_fork"):  # not on Windows
    # A forked child draws its own keys: none may repeat its parent's.
    os.register_at_fork(after_in_child=_KEYS.clear)


#: The turn of a writer that has written no frame yet (a turn's token is never it).
_NO_TURN = object()

#: What a frame of each payload size needs, shared by every writer (a process sends a
#: few sizes: one per audio format), so a frame reads objects that stay in the CPU's
#: cache however many sessions take turns. Never changed once made.
_SHAPES: dict[int, tuple[bytearray, slice, bytearray, int]] = {}
_MAX_SHAPES = 64
#: The header's slice of a writer that has written no frame yet (shared: a slice is an
#: object the cycle collector tracks, one per idle session otherwise; issue #19).
_NO_HEAD = slice(0, 0)


def _shape(size: int) -> tuple[bytearray, slice, bytearray, int]:
    """For frames of ``size`` payload bytes: the header (a bytearray: assigned into a
    bytearray without a copy of its own), the slice of the frame it fills, the zeroed
    room for the header and the masking key, and the length of the whole frame."""
    shape = _SHAPES.get(size)
    if shape is None:
        header = frame_header(size)
        room = len(header) + 4
        shape = (bytearray(header), slice(0, len(header)), bytearray(room), room + size)
        if len(_SHAPES) < _MAX_SHAPES:
            _SHAPES[size] = shape
    return shape


class _Turns:
    """The turns of one event loop, as its frame writers tell them apart: :attr:`now`
    is a token of the current turn (None until a frame is written in it), renewed by
    a callback at the next turn, which first writes the batches opened in the turn
    (:meth:`flush_at_end`). Shared by the loop's writers: one callback per turn in
    which frames were written, whatever the number of connections."""

    __slots__ = ("_batched", "_loop", "now")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        # Weakly: this is the value of the loop's key in _LOOP_TURNS, which a strong
        # reference would keep alive for ever.
        self._loop = weakref.ref(loop)
        self.now: Optional[object] = None
        self._batched: list[FrameWriter] = []

    def open(self) -> object:
        """The token of this turn, at its first frame (the turn's end is scheduled)."""
        now = self.now = object()
        loop = self._loop()
        if loop is not None:  # (it runs: a frame is being written on it)
            loop.call_soon(self._close)
        return now

    def flush_at_end(self, writer: FrameWriter) -> None:
        """Have ``writer`` flush its batch when this turn ends (the turn is open: a
        frame was written in it)."""
        self._batched.append(writer)

    def _close(self) -> None:
        # The turn's batches are written with its end, in the same callback: a batch is
        # then open only in the turn that opened it, which FrameWriter.write relies on
        # (a writer whose previous frame went in an earlier turn has no batch).
        self.now = None
        batched = self._batched
        if batched:
            self._batched = []
            for writer in batched:
                try:
                    writer.flush()
                except Exception:  # (as the loop does for a callback: the others go on)
                    logger.exception("Sayna: writing a batch of audio frames failed")


_LOOP_TURNS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = (
    weakref.WeakKeyDictionary()
)


def _turns_of(loop: asyncio.AbstractEventLoop) -> _Turns:
    """The turns of ``loop`` (made at its first writer)."""
    turns = _LOOP_TURNS.get(loop)
    if turns is None:
        turns = _LOOP_TURNS[loop] = _Turns(loop)
    return turns


class FrameWriter:
    """Writes the client's frames on the transport of one WebSocket whose protocol is a
    :class:`~.framing.FrameProtocol` (see the module docstring): binary frames (the
    audio hot path, batched in bursts), text frames, Ping, Pong and Close.

    :meth:`send` raises what aiohttp's ``send_bytes`` would raise in the same state
    (``ConnectionResetError`` once the socket is closing or the connection is lost), so
    callers translate errors the same way for both paths.
    """

    __slots__ = (
        "_batch",
        "_flow",
        "_head",
        "_header",
        "_length",
        "_mask",
        "_pong",
        "_room",
        "_seen",
        "_size",
        "_transport",
        "_turns",
        "closing",
        "paused",
        "written",
    )

    def __init__(self, transport: Any, flow: Any, mask: Callable[[bytes, bytearray], None]) -> None:
        self._transport = transport
        #: The transport's flow control: ``paused`` and ``writable()`` (a FrameProtocol),
        #: which keeps :attr:`paused` equal to its own from now on.
        self._flow = flow
        self.paused: bool = flow.paused
        flow.writer = self
        self._mask = mask
        # Made for the payload size of the latest frame (see _resize): audio frames
        # keep their size, so these are made once per stream.
        self._size = -1
        self._header = bytearray()
        self._head = _NO_HEAD
        self._room = bytearray()
        self._length = 0
        self._turns = _turns_of(asyncio.get_running_loop())
        self._seen: object = _NO_TURN  # the turn of the previous frame
        self._batch: Optional[bytearray] = None  # frames of a burst not yet written
        #: The payload of the latest Ping not answered yet (while the transport is paused).
        self._pong: Optional[bytes] = None
        #: True once our Close is written (no data frame may follow it, RFC 6455 §5.5.1)
        #: or the transport is known to be closing: every later write fails. Audio
        #: frames check this flag rather than ``transport.is_closing()`` (a Python call
        #: per frame), so every path that ends the transport sets it: our Close, the
        #: connection closing or dropping the transport, the connection lost
        #: (``connection_lost``, also after asyncio's own fatal errors), and a flush
        #: or control frame that finds the transport closing.
        self.closing = False
        #: Bytes handed to the transport so far (see :class:`SendProgress`).
        self.written = 0

    async def send(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Write one binary frame carrying the bytes of ``data`` (or add it to the open
        batch); wait while the transport is paused."""
        if type(data) is memoryview and (data.ndim != 1 or data.itemsize != 1):
            data = data.tobytes()  # write() takes a view of bytes (its len() is the size)
        waiting = self.write(data)
        if waiting is not None:
            await waiting

    def write(
        self, data: Union[bytes, bytearray, memoryview]
    ) -> Optional[Coroutine[Any, Any, None]]:
        """:meth:`send` without a coroutine of its own: write the frame (or add it to the
        open batch) now, and return None, or, while the transport is paused, the wait
        for it to resume, which the caller must await before it returns (the hot path
        of ``on_audio_input``: a live frame almost never waits).

        ``data`` is ``bytes``, a ``bytearray`` or a one-dimensional memoryview of bytes
        (``len(data)`` is its size in bytes); it is copied, never changed.

        Raises:
            ConnectionResetError: the socket is closing (nothing was written).
        """
        if self.closing:
            raise ConnectionResetError("Cannot write to closing transport")
        if len(data) != self._size:
            self._resize(len(data))
        # One buffer per frame: room for the header and the masking key, then a copy of
        # the payload. Masked whole with a key K, the four zero bytes before the
        # payload become the key the payload is masked with (K rotated by the room's
        # length), so only the header is written over what the mask made of it.
        frame = self._room + data
        try:
            key = _take_key()
        except IndexError:
            key = _new_key()
        self._mask(key, frame)
        frame[self._head] = self._header
        now = self._turns.now
        if now is self._seen:
            # The previous frame went in this turn: a burst (and the batch, if one is
            # open, was opened in this turn: it is written when the turn ends).
            return self._batch_frame(frame)
        if now is None:
            now = self._turns.open()  # the first frame of any writer in this turn
        self._seen = now
        self._transport.write(frame)
        self.written += self._length
        return self._resumed() if self.paused else None

    def _batch_frame(self, frame: bytearray) -> Optional[Coroutine[Any, Any, None]]:
        """:meth:`write`'s frame of a burst: it opens a batch, written when the loop
        turns (or once it is full), or joins the open one."""
        batch = self._batch
        if batch is None:
            self._batch = batch = frame
            self._turns.flush_at_end(self)
        else:
            batch += frame
        if len(batch) < BATCH_BYTES:
            return None
        self.flush()
        return self._resumed() if self.paused else None

    def _resize(self, size: int) -> None:
        """Take the header and the room in front of the payload for frames of ``size``
        payload bytes."""
        self._header, self._head, self._room, self._length = _shape(size)
        self._size = size

    def write_control(self, first: int, payload: bytes = b"") -> bool:
        """Write one frame other than audio (``first``: its FIN and opcode byte, e.g.
        0x81 text, 0x89 Ping) after any open batch; returns False, writing nothing, when
        the socket is closing. Writing a Close (0x88) makes every later write fail."""
        transport = self._transport
        if self.closing or transport.is_closing():
            self.closing = True
            return False
        if self._batch is not None:
            self.flush()
        body = bytearray(payload)
        try:
            key = _take_key()
        except IndexError:
            key = _new_key()
        self._mask(key, body)
        size = len(body)
        if size < 126:  # (a speak, a Pong: _header_for's first case, inline)
            frame = bytes((first, _MASKED | size)) + key + body
        else:
            frame = _header_for(first, size) + key + body
        transport.write(frame)
        self.written += len(frame)
        if first == _CLOSE:
            self.closing = True
        return True

    def pong(self, payload: bytes) -> None:
        """Answer a Ping carrying ``payload``. While the transport is paused (the peer is
        not reading) the Pong waits, and only the latest Ping is answered once writing
        resumes (RFC 6455 §5.5.3 allows it): a server sending Pings while it reads
        nothing would otherwise fill the client's memory with Pongs. Nothing is written
        once the socket is closing."""
        if self.paused:
            if self._pong is None:
                self._flow.on_resume = self._late_pong
            self._pong = payload
            return
        self.write_control(PONG, payload)

    def _late_pong(self) -> None:
        payload, self._pong = self._pong, None
        if payload is not None:
            self.write_control(PONG, payload)

    def write_close(self, code: int, reason: bytes = b"") -> bool:
        """Write our Close frame with ``code``; False if the socket is already closing."""
        return self.write_control(_CLOSE, _CLOSE_CODE.pack(code) + reason)

    async def send_text(self, text: str) -> None:
        """Write one text frame and wait while the transport is paused.

        Raises:
            ConnectionResetError: the socket is closing (nothing was written), or it
                closed while the frame waited.
        """
        if not self.write_control(_FIN_TEXT, text.encode("utf-8")):
            raise ConnectionResetError("Cannot write to closing transport")
        if self.paused:
            await self._resumed()

    async def _resumed(self) -> None:
        """Wait until the paused transport resumes writing."""
        await self._flow.writable()
        if self._transport.is_closing():
            # Woken by the end of the session (the connection drops the transport
            # then), not by the peer reading: this frame may never arrive.
            raise ConnectionResetError("The connection closed while the frame waited")

    def flush(self) -> None:
        """Write the open batch, if any. Called when the loop turns, and before a text
        frame or our Close so those follow the audio."""
        batch = self._batch
        if batch is None:
            return
        self._batch = None
        transport = self._transport
        if self.closing or transport.is_closing():
            # The socket closed under the burst (the server's Close, a lost
            # connection): these frames share the fate of bytes in the transport's
            # buffer; the connection reports the close.
            self.closing = True
            logger.debug("Sayna WebSocket closed with %d bytes of audio unsent", len(batch))
            return
        transport.write(batch)
        self.written += len(batch)
        if transport.is_closing():
            # The write failed (asyncio closed the transport: connection_lost comes at
            # the next turn): the rest of an upload fails now rather than then.
            self.closing = True


def own_path(ws: Any) -> Optional[Any]:
    """The transport under the freshly opened aiohttp client WebSocket ``ws`` when the
    client can take its data path over (:mod:`.framing`), else None (then the connection
    reads and writes through aiohttp's public WebSocket API).

    Taken over only when everything is as expected: :data:`FAST_PATH` on, aiohttp's
    masking function found, no per-message compression negotiated, a transport that can
    change protocol, and nothing received yet in aiohttp's own queue (what it already
    parsed would be lost).
    """
    if not FAST_PATH or _apply_mask is None:
        return None
    writer: Any = getattr(ws, "_writer", None)
    if getattr(writer, "compress", True) or getattr(writer, "_closing", True):
        return None
    reader: Any = getattr(ws, "_reader", None)
    queued = getattr(reader, "_buffer", None)
    if queued is None or len(queued) or getattr(ws, "closed", True):
        return None
    try:
        if reader.is_eof() or reader.exception() is not None:
            return None
    except AttributeError:
        return None
    transport: Any = getattr(writer, "transport", None)
    usable = (
        upgrade_response(ws) is not None
        and callable(getattr(transport, "set_protocol", None))
        and callable(getattr(transport, "get_protocol", None))
        and callable(getattr(transport, "write", None))
        and callable(getattr(transport, "is_closing", None))
        and not transport.is_closing()
    )
    return transport if usable else None


def frame_writer(transport: Any, flow: Any) -> FrameWriter:
    """The :class:`FrameWriter` of a transport taken over by :func:`own_path`, whose
    protocol (``flow``) is a :class:`~.framing.FrameProtocol`."""
    assert _apply_mask is not None  # own_path() checked it
    return FrameWriter(transport, flow, _apply_mask)


def transport_of(ws: Any) -> Optional[Any]:
    """The asyncio transport under the aiohttp client WebSocket ``ws`` (its writer's, else
    its upgrade response's connection's), or None when neither is found."""
    transport = getattr(getattr(ws, "_writer", None), "transport", None)
    if transport is None:
        connection = getattr(upgrade_response(ws), "connection", None)
        transport = getattr(connection, "transport", None)
    return transport


def upgrade_response(ws: Any) -> Optional[aiohttp.ClientResponse]:
    """The HTTP response that upgraded the aiohttp client WebSocket ``ws`` (its
    ``history`` and ``url`` say where redirects took it), or None when this aiohttp
    does not keep it where this module expects (``ClientWebSocketResponse._response``;
    aiohttp has no public accessor)."""
    response = getattr(ws, "_response", None)
    return response if isinstance(response, aiohttp.ClientResponse) else None


def take_connection(ws: Any) -> Optional[Any]:
    """aiohttp's record of the connection under the client WebSocket ``ws`` (the
    ``connection`` of its upgrade response), taken out of the response, or None when
    the response does not hold it where this module expects.

    The response can then be let go: its headers, request record and traces are about
    ten objects the cycle collector would track for the session's life (issue #19).
    Taken out first, as a response freed with the connection still in it releases the
    connection to its connector, which closes an upgraded one (the socket). The caller
    ends it with the session (:func:`release_connection`)."""
    response = upgrade_response(ws)
    connection = getattr(response, "_connection", None)
    if connection is None or not callable(getattr(connection, "close", None)):
        return None
    response._connection = None  # type: ignore[union-attr]
    return connection


def release_connection(record: Any) -> None:
    """Release aiohttp's record of a client WebSocket's connection (what
    :func:`take_connection` took, or the upgrade response) as ``ClientResponse.close()``
    does: the connector forgets the connection and closes it. Idempotent; nothing once
    the record's event loop is closed (it could no longer close the transport)."""
    loop = getattr(record, "_loop", None)
    if loop is not None and loop.is_closed():
        return
    record.close()


def release_reader(protocol: Any) -> None:
    """Let go of aiohttp's reading side of a client WebSocket whose transport
    :func:`own_path` took over: ``protocol`` is aiohttp's, which the
    :class:`~.framing.FrameProtocol` replaced. It keeps the WebSocket's frame parser, its
    message queue and the HTTP parser of the upgrade, none of which can run again; with
    them gone, and the connection no longer keeping aiohttp's WebSocket object, about
    2.5 KiB per session are freed (issue #19). aiohttp sets the same attributes to None
    itself when the connection is lost; the protocol stays the connector's record of the
    connection, which is released at the end (:func:`release_connection`)."""
    for name in ("_payload", "_payload_parser", "_parser", "_data_received_cb"):
        if getattr(protocol, name, None) is not None:
            setattr(protocol, name, None)


def drop_transport(transport: Optional[Any]) -> None:
    """Abort the TCP connection of a client WebSocket's ``transport`` at once, unsent
    bytes included: the end of a session whatever the peer does. Every send waiting for
    the peer to read (ours and aiohttp's) wakes up, and the socket is released.

    A connection with bytes still unsent (or not closed yet) is reset (``SO_LINGER``
    0): closed normally, the kernel would keep trying to deliver megabytes to a peer that
    reads nothing. One that already closed after a Close handshake is left alone.
    """
    if transport is None or not callable(getattr(transport, "abort", None)):
        return
    try:
        unsent = transport.get_write_buffer_size() or not transport.is_closing()
        sock = transport.get_extra_info("socket") if unsent else None
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
    except (AttributeError, OSError, RuntimeError):
        pass  # not a TCP socket, or already closed: the abort alone will do
    try:
        transport.abort()
    except AttributeError:
        # Closed with bytes unsent, then drained: asyncio's selector transport let go of
        # its loop without counting the connection as lost, and its abort() fails.
        pass


def _kernel_unsent_linux(sock: Any) -> int:
    # SIOCOUTQ (TIOCOUTQ for TCP sockets): bytes not yet acknowledged by the peer.
    buf = fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0")
    return int(struct.unpack("i", buf)[0])


def _kernel_unsent_darwin(sock: Any) -> int:
    # SO_NWRITE: bytes in the send buffer (unsent or unacknowledged).
    return int(sock.getsockopt(socket.SOL_SOCKET, 0x1024))


_kernel_unsent: Optional[Callable[[Any], int]] = None
if sys.platform.startswith("linux"):  # pragma: no branch
    try:
        import fcntl
        import termios

        _kernel_unsent = _kernel_unsent_linux
    except ImportError:  # pragma: no cover
        pass
elif sys.platform == "darwin":  # pragma: no cover
    _kernel_unsent = _kernel_unsent_darwin


def unsent_bytes(transport: Any) -> int:
    """Bytes written to ``transport`` that the peer has not taken yet: the transport's
    own buffer plus, on Linux and macOS, the kernel's send queue (elsewhere 0 for it)."""
    queued = int(transport.get_write_buffer_size())
    sock = transport.get_extra_info("socket")
    if sock is not None and _kernel_unsent is not None:
        try:
            queued += _kernel_unsent(sock)
        except (OSError, ValueError):
            pass  # closed, or not a TCP socket
    return queued


class SendProgress:
    """How far the peer has read what this client sent: a number that grows only while
    it takes our bytes (never decreases).

    It is the bytes handed to the transport (``written()``) minus those still queued
    (:func:`unsent_bytes`). While an upload fills the socket buffers, a Ping waits
    behind them and its Pong is late however alive the peer is; the keepalive uses
    this to tell a slow peer (still reading) from a silent one (reading nothing: the
    queue stops draining). New writes do not count as progress, only draining does;
    nor do the keepalive's own Pings (:attr:`pings`, their bytes): a hung server's
    kernel still acknowledges them.
    """

    __slots__ = ("_best", "_transport", "_written", "pings")

    def __init__(self, transport: Any, written: Callable[[], int]) -> None:
        self._transport = transport
        self._written = written
        self._best: Optional[int] = None
        #: Bytes of the keepalive's Pings written so far (left out of the progress).
        self.pings = 0

    def __call__(self) -> int:
        try:
            taken = self._written() - self.pings - unsent_bytes(self._transport)
        except (AttributeError, OSError, RuntimeError):
            taken = None
        best = self._best
        if taken is not None and (best is None or taken > best):
            self._best = best = taken
        return best or 0


def send_progress(transport: Optional[Any], written: Callable[[], int]) -> Optional[SendProgress]:
    """A :class:`SendProgress` for a client WebSocket's ``transport``, or None when there
    is none or it cannot tell its buffer's size."""
    if transport is None or not callable(getattr(transport, "get_write_buffer_size", None)):
        return None
    return SendProgress(transport, written)
