"""What ``on_audio_input`` needs for each frame, looked up once per session.

A live call sends 50 frames a second per stream, each through the same steps: is the
session ready, which connection and sender, which metrics. An :class:`AudioLane` holds
those answers; the session drops it whenever one of them can change (``ready`` set or
cleared, the connection closed) and makes a new one at the next frame, so the per-frame
work is one check.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Callable, Optional, Union

from .._checks import MAX_AUDIO_FRAME, as_frame, reject_frame
from ..errors import SaynaValidationError
from ..protocol.encodings import lookup
from ..types import STTConfig
from .connection import WebSocketConnection
from .conversation import SessionMetrics
from .sender import BinarySender
from .wire import FrameWriter

if TYPE_CHECKING:
    from typing_extensions import Buffer

    from .core import SessionCore

__all__ = ["AudioInput", "AudioLane", "silence_frame"]


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


#: Writes one binary frame; returns None, or an awaitable the caller must await before
#: the frame counts as sent (see :meth:`.wire.FrameWriter.write`).
FrameWrite = Callable[[Union[bytes, bytearray, memoryview]], Optional[Awaitable[None]]]


class AudioLane:
    """The per-frame state of one ready session.

    The session keeps it only while the session stays ready on ``conn``; ``write`` is
    the connection's binary sender in its non-waiting form (:meth:`FrameWriter.write`
    when the connection writes frames itself; else the sender, whose coroutine the
    caller awaits). Errors go through :meth:`WebSocketConnection.send_failed`.
    """

    __slots__ = ("conn", "metrics", "write")

    def __init__(self, conn: WebSocketConnection, metrics: SessionMetrics) -> None:
        self.conn = conn
        self.metrics = metrics
        send: BinarySender = conn.binary_sender()
        writer = getattr(send, "__self__", None)
        self.write: FrameWrite = writer.write if isinstance(writer, FrameWriter) else send


class AudioInput:
    """``on_audio_input``: a part of :class:`~.session.VoiceSession`, which drops
    :attr:`lane` whenever the session or its readiness changes."""

    __slots__ = ("_session", "lane")

    def __init__(self, session: SessionCore) -> None:
        self._session = session
        self.lane: Optional[AudioLane] = None

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
        replayed in order once the session is ready again.

        Raises:
            SaynaValidationError: not bytes-like (the message names ``.tobytes()`` when
                the object has one), a buffer that is not C-contiguous, empty, or over
                16 MiB; nothing is sent.
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the socket closed while sending.
        """
        # Hot path (50 calls a second per stream): the lane holds what a frame needs,
        # looked up once per session; messages are built only on failure.
        frame: Union[bytes, bytearray, memoryview]
        if type(audio_data) is bytes:
            frame, size = audio_data, len(audio_data)
        else:
            frame, size = as_frame(audio_data)
        lane = self.lane
        # (The lane is dropped when the session or its readiness changes.)
        if lane is None:
            lane = self._new_audio_lane(frame, size)
            if lane is None:
                return  # held for the reconnect
        elif not 0 < size <= MAX_AUDIO_FRAME:
            reject_frame(size)
        try:
            waiting = lane.write(frame)  # (no coroutine per frame unless it must wait)
            if waiting is not None:
                await waiting
        except Exception as exc:
            error = lane.conn.send_failed(exc)
            if error is exc:
                raise
            raise error from exc
        metrics = lane.metrics
        metrics.audio_frames_sent += 1
        metrics.audio_bytes_sent += size

    def _new_audio_lane(
        self, audio_data: Union[bytes, bytearray, memoryview], size: int
    ) -> Optional[AudioLane]:
        """``on_audio_input``'s first frame of a session: check the frame, then return a
        new lane, or None when the frame was held for a reconnect (as an exact copy of
        its bytes). Raises what ``on_audio_input`` documents."""
        if not 0 < size <= MAX_AUDIO_FRAME:
            reject_frame(size)
        session = self._session
        hold = session.held_audio()
        if hold is not None:
            hold.add(bytes(audio_data))
            return None
        conn = session.ready_connection()  # raises: not connected, or not ready yet
        session.tracker.audio_started()
        lane = self.lane = AudioLane(conn, session.tracker.metrics)
        return lane
