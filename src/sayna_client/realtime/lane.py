"""What ``on_audio_input`` needs for each frame, looked up once per session.

A live call sends 50 frames a second per stream, each through the same steps: is the
session ready, what writes its frames, where the counts go. :class:`AudioInput` keeps
the answers on itself (its ``lane``: the connection's frame writer); the session drops
the lane whenever one of them can change (``ready`` set or cleared, the connection
closed) and a new one is looked up at the next frame, so the per-frame work is one
check. At a thousand sessions every object a frame touches is a likely cache miss
(issue #19), so a frame touches as few as it can: this part, the writer, its transport.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Awaitable
from typing import TYPE_CHECKING, NoReturn, Optional, Union

from .._checks import MAX_AUDIO_FRAME, as_frame, reject_frame
from ..errors import SaynaValidationError
from ..protocol.encodings import lookup
from ..types import STTConfig
from .connection import WebSocketConnection
from .conversation import SessionMetrics, count_audio_sent, stop_counting_audio
from .sender import BinarySender
from .wire import FrameWriter

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .core import SessionCore
    from .hold import AudioHold

__all__ = ["AudioInput", "frame_writer_of", "silence_frame"]


_thread_id = threading.get_ident


def silence_frame(stt: Optional[STTConfig], frame_ms: int) -> bytes:
    """``frame_ms`` of silence in the format of ``stt`` (its encoding, rate, channels).

    Raises:
        SaynaValidationError: no ``stt`` (a session without audio), or an encoding
            without a fixed sample size (``opus``...), whose silence needs an encoder.
    """
    if stt is None:
        raise SaynaValidationError(
            "finish_audio() needs an stt_config: a session without audio has no stream"
        )
    found = lookup(stt.encoding)  # bytes per sample and the byte of a silent sample
    if found is None or found.bytes_per_sample is None or found.silence is None:
        raise SaynaValidationError(
            f"finish_audio() cannot make silence in the {stt.encoding!r} encoding (it needs "
            "an encoder): send your own encoded silence with on_audio_input(), then drain()"
        )
    width, silent = found.bytes_per_sample, found.silence
    samples = max(1, stt.sample_rate * frame_ms // 1000) * stt.channels
    return bytes((silent,)) * (samples * width)


class _SendBytes:
    """The writer of a connection that sends through aiohttp's ``send_bytes`` (no
    :class:`~.wire.FrameWriter`): :attr:`write` returns the send, for the caller to
    await."""

    __slots__ = ("write",)

    def __init__(self, send: BinarySender) -> None:
        self.write = send


def frame_writer_of(conn: WebSocketConnection) -> Union[FrameWriter, _SendBytes]:
    """What writes ``conn``'s binary frames: its :class:`FrameWriter` when it writes
    frames itself, else its aiohttp sender. Either way ``.write(frame)`` returns None
    or an awaitable that the caller awaits before the frame counts as sent; errors go
    through :meth:`WebSocketConnection.send_failed`."""
    send: BinarySender = conn.binary_sender()
    writer = getattr(send, "__self__", None)
    return writer if isinstance(writer, FrameWriter) else _SendBytes(send)


def _raise_send_error(conn: Optional[WebSocketConnection], exc: Exception) -> NoReturn:
    """Raise what ``on_audio_input`` raises for ``exc``, raised by a frame's write on
    ``conn``: the connection's error for a closed socket, else ``exc`` itself."""
    error = conn.send_failed(exc) if conn is not None else exc
    if error is exc:
        raise exc
    raise error from exc


class AudioInput:
    """``on_audio_input``: a part of :class:`~.session.VoiceSession`, which drops its
    lane (:meth:`drop_lane`) whenever the session or its readiness changes.

    It counts the frames and bytes it sent (:attr:`frames_sent`, :attr:`bytes_sent`)
    for the session's :class:`~.conversation.SessionMetrics`, which reads them while the
    session runs (see :func:`~.conversation.count_audio_sent`): a frame then updates
    this object, which it reads anyway, rather than the metrics' (issue #19: at a
    thousand sessions every object a frame touches costs a cache miss).
    """

    __slots__ = (
        "_bytes",
        "_conn",
        "_mark",
        "_metrics",
        "_session",
        "_size",
        "_thread",
        "frames_sent",
        "lane",
    )

    def __init__(self, session: SessionCore) -> None:
        self._session = session
        #: What writes the frames of the ready session (None: look again, see
        #: :func:`frame_writer_of`), and its connection.
        self.lane: Optional[Union[FrameWriter, _SendBytes]] = None
        self._conn: Optional[WebSocketConnection] = None
        #: The metrics these counts are for (the current session's, once it sent audio),
        #: held weakly: they hold this input (they read its counts), no cycle.
        self._metrics: Optional[weakref.ReferenceType[SessionMetrics]] = None
        self.frames_sent = 0
        # The size of the previous frame sent on the lane (-1: no lane). A frame of
        # that size needs no check but its type, and counts as one frame: the frames
        # counted since the size last changed (``_mark``) are all of it, so the bytes
        # they carry are derived (see bytes_sent; ``_bytes`` holds those before).
        self._size = -1
        self._mark = 0
        self._bytes = 0
        #: The thread the lane was looked up in (the session's loop's): a frame from
        #: another thread is checked again (another loop's gets SaynaEventLoopError).
        self._thread = 0

    @property
    def bytes_sent(self) -> int:
        """The bytes of the frames counted in :attr:`frames_sent`."""
        return self._bytes + (self.frames_sent - self._mark) * self._size

    async def on_audio_input(self, audio_data: Buffer) -> None:
        """Send one frame of microphone/phone audio for transcription.

        ``audio_data`` is any bytes-like object: ``bytes``, ``bytearray``, a
        ``memoryview``, or any C-contiguous buffer such as an ``array.array`` or a numpy
        array. It goes out as one binary frame carrying exactly its bytes (a 16-bit
        array's frame holds two bytes per item), whatever its length: the server and
        its providers take a byte stream, so the audio must be in the ``stt_config``
        format (sample rate, channels, encoding), but a frame need not end on a sample.
        Frames sent back to back, faster than live audio (an upload, a replay), share
        system calls: each is handed to the socket by the time the event loop next
        waits, and always before a later text message or the close. The buffer is
        copied before this returns, so it may be reused at once. While an automatic
        reconnection runs, frames are held (``ReconnectPolicy.buffer_bytes``) and
        replayed in order once the session is ready again, before any frame passed
        after them.

        Cancellation: cancelling it while the frame waits for the socket to take it
        (the peer reads slower than the audio comes) does not take the frame back: it
        was handed to the socket and goes out, and it counts in :attr:`frames_sent`.

        Raises:
            SaynaValidationError: not bytes-like (the message names ``.tobytes()`` when
                the object has one), a buffer that is not C-contiguous, of
                floating-point samples (a float32 numpy array: convert it to int16),
                empty, or over 16 MiB; nothing is sent.
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the socket closed while sending.
        """
        # Hot path (50 calls a second per stream): ``bytes`` of the previous frame's
        # size go straight to the lane (a size is checked once, a lane looked up once
        # per session, messages built only on failure); anything else is admitted first.
        frame: Union[bytes, bytearray, memoryview]
        if (
            type(audio_data) is bytes
            and len(audio_data) == self._size
            and _thread_id() == self._thread
        ):
            frame = audio_data
        else:
            admitted = self._admit(audio_data)
            if admitted is None:
                return  # held for the reconnect
            frame = admitted
        try:
            # (_admit set the lane along with the size: it is not None here.)
            waiting = self.lane.write(frame)  # type: ignore[union-attr]
        except Exception as exc:
            _raise_send_error(self._conn, exc)
        if waiting is None:
            self.frames_sent += 1  # a frame of _size bytes (see bytes_sent)
        else:
            await self._wait_for_socket(waiting, len(frame))

    async def _wait_for_socket(self, waiting: Awaitable[None], size: int) -> None:
        """Await a frame's write that has to wait (the socket is full, or aiohttp's send),
        then count the frame's ``size`` bytes (other frames may have changed the size
        counted per frame meanwhile). The connection is held here while it waits: the
        session may end meanwhile and let it go (:meth:`drop_lane`), and the write's
        error is still told in its terms."""
        conn = self._conn
        try:
            await waiting
        except Exception as exc:
            _raise_send_error(conn, exc)
        except asyncio.CancelledError:
            # The frame was handed to the socket before the wait: it goes out, so it
            # counts (only the caller's wait for the peer to read ends).
            self._count_one(size)
            raise
        self._count_one(size)

    def _count_one(self, size: int) -> None:
        """Count a frame of ``size`` bytes, whatever size the frames are counted at."""
        self._bytes += size
        self._mark += 1
        self.frames_sent += 1

    async def replay(self, hold: AudioHold) -> tuple[int, int]:
        """Send the frames of ``hold``, held while an automatic reconnection ran, oldest
        first, until it is empty, on the session's ready connection, counted as this
        session's frames (the reconnection's replay); returns the frames and bytes sent.
        The lane stays unset: frames passed to :meth:`on_audio_input` meanwhile are held
        behind these, and sent in turn.

        Raises:
            SaynaNotConnectedError / SaynaNotReadyError: the session is not ready.
            SaynaConnectionError: the socket closed while sending (the frames not
                written yet stay in ``hold``).
        """
        conn = self._count_for(self._session.ready_connection())
        write = frame_writer_of(conn).write
        sent = size = 0
        while len(hold):
            frame = hold.pop()
            try:
                waiting = write(frame)
                if waiting is not None:
                    await waiting
            except Exception as exc:
                _raise_send_error(conn, exc)
            except asyncio.CancelledError:
                # (A connect() took the reconnection over: it replays the rest.) The
                # frame was handed to the socket before the wait: it goes out, it counts.
                self._count_one(len(frame))
                raise
            self._count_one(len(frame))
            sent += 1
            size += len(frame)
        return sent, size

    def drop_lane(self) -> None:
        """Forget the lane and its connection (the session or its readiness changed): the
        next frame looks again. Dropping the connection too leaves no cycle through it
        (the connection reaches the session, which holds this input), so a client that
        sent audio is freed by reference counting once dropped."""
        self._count_as(-1)
        self.lane = None
        self._conn = None

    def _count_as(self, size: int) -> None:
        """Count the frames from now on as frames of ``size`` bytes (-1: none until
        the next size is set)."""
        self._bytes = self.bytes_sent
        self._mark = self.frames_sent
        self._size = size

    def _admit(self, audio_data: Buffer) -> Optional[Union[bytes, bytearray, memoryview]]:
        """``on_audio_input``'s frame off its hot path (not ``bytes``, not the previous
        frame's size, or no lane yet): check it and return it as a frame for
        :attr:`lane` (looked up if need be), counted at its size from now on; or None
        when it was held for a reconnect (as an exact copy of its bytes). Raises what
        ``on_audio_input`` documents."""
        frame: Union[bytes, bytearray, memoryview]
        if type(audio_data) is bytes:
            frame, size = audio_data, len(audio_data)
        else:
            frame, size = as_frame(audio_data)
        if not 0 < size <= MAX_AUDIO_FRAME:
            reject_frame(size)
        if self.lane is None:
            if not self._new_audio_lane(frame):
                return None
        elif self._thread != _thread_id():
            # Not the thread of the session's loop: another loop's call raises
            # SaynaEventLoopError here; the session's loop, now run by this thread, goes on.
            self._session.ready_connection()
            self._thread = _thread_id()
        if size != self._size:
            self._count_as(size)
        return frame

    def _new_audio_lane(self, audio_data: Union[bytes, bytearray, memoryview]) -> bool:
        """Look up the lane of the session's first frame (checked): True once it is
        set, False when the frame was held for a reconnect (as an exact copy of its
        bytes). Raises what ``on_audio_input`` documents."""
        session = self._session
        hold = session.held_audio()
        if hold is not None:
            hold.add(bytes(audio_data))
            return False
        # (ready_connection raises: not connected, or not ready yet.)
        conn = self._conn = self._count_for(session.ready_connection())
        self.lane = frame_writer_of(conn)
        self._thread = _thread_id()
        return True

    def _count_for(self, conn: WebSocketConnection) -> WebSocketConnection:
        """Count the frames sent from now on in the current session's metrics (the
        session of ``conn``, its ready connection, which this returns)."""
        tracker = self._session.tracker
        tracker.audio_started(self)
        metrics = tracker.metrics
        counted = self._metrics() if self._metrics is not None else None
        if metrics is not counted:
            # A new session's metrics: the previous session's keep what they counted.
            if counted is not None:
                stop_counting_audio(counted)
            self.frames_sent = self._mark = self._bytes = 0
            count_audio_sent(metrics, self)
            self._metrics = weakref.ref(metrics)
        return conn
