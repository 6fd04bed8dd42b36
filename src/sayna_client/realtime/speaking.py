"""Speech out: ``speak``, ``speak_stream``, ``clear``, ``tts_flush``, and the agents
toolkit's hooks (speech handles, the audio output, turn metrics).

:class:`Speaking` is a part of the voice session. Every ``speak`` goes through the
session's :class:`~sayna_client.agents.SpeechQueue`, which turns it into a
:class:`~sayna_client.agents.SpeechHandle`, and learns of the session's completions and
turns (for ``turn_metrics``) from the tracker. TTS frames reach one observer per
session, the tracker (:class:`~.conversation.SessionTracker`): the queue credits its
handles from the tracker's frame and byte counts, and the tracker times a reply's first
byte for the metrics; the queue itself observes frames only while an ``audio_output``
is attached.
The queue and its metrics call back into the session through methods of their own (see
:mod:`.session_speech`).

The session's tracker tells the speech of each turn's end and each completion (see
:meth:`~.conversation.SessionTracker.listen_speech`): this part until the queue is made,
the queue after. The queue is made when first needed: the first ``speak``, a look at
``speech``, ``audio_output`` or ``turn_metrics``, or the first turn to measure. An idle
session does not hold the queue, its metrics and their hooks (about 3 KiB).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, Awaitable, Iterable
from typing import TYPE_CHECKING, Any, Optional, Union

from .._checks import bounded, check_text
from .._config import check_seconds
from ..agents.handle import SpeechHandle
from ..agents.metrics import TurnMetrics
from ..agents.segmenter import SentenceSegmenter
from ..agents.speech import AudioOutput, SpeechQueue
from ..errors import SaynaValidationError
from ..protocol.commands import encode_speak
from .session_speech import SessionSpeechQueue
from .session_speech import check_flags as _check_flags
from .session_speech import send_clear as _send_clear

if TYPE_CHECKING:
    from .connection import WebSocketConnection
    from .core import SessionCore

__all__ = ["Speaking"]


class Speaking:
    """The session's speech: what ``speak`` sends and what became of it."""

    __slots__ = ("__weakref__", "_queue", "_session")

    def __init__(self, session: SessionCore) -> None:
        # ``session`` is a weak proxy: a dropped client must not be kept alive by its
        # own queue (its HTTP session is released when it is freed, see test_first_hour).
        # The tracker holding this part keeps it alive, and it refers to the session
        # weakly (no cycle).
        self._session = session
        self._queue: Optional[SpeechQueue] = None
        session.tracker.listen_speech(self)

    def on_turn(self, text: str, words_at: float, ended_at: float) -> None:
        """The first turn (the tracker's :class:`~.conversation.SpeechListener`): make
        the queue, which the tracker tells of the turns after, and measure this one."""
        self.speech.metrics.on_turn(text, words_at, ended_at)

    def on_playback_complete(self, event: Any) -> None:
        """A completion (the tracker's :class:`~.conversation.SpeechListener`): the
        queue's, if one was made (the tracker tells it directly from then on; before,
        there is no speech of ours to end)."""
        if self._queue is not None:
            self._queue.on_playback_complete(event)

    def on_session_closed(self) -> None:
        """The session closed (the tracker's :class:`~.conversation.SpeechListener`): no
        queue yet, so no turn metrics with a turn to close."""

    def _make_queue(self) -> SpeechQueue:
        """Make the speech queue and hook it to the session's events (see the module
        docstring)."""
        session = self._session
        hub = session.hub
        # The tracker's per-frame counts credit the handles (no observer of the queue's
        # own per TTS frame; see SpeechQueue), and it times a reply's first byte, as it
        # times every first frame.
        tracker = session.tracker
        queue = self._queue = SessionSpeechQueue(session, tracker.tts_counts)
        # Turns and completions come from the tracker (one call each, no observer).
        tracker.listen_speech(queue)
        hub.observe("closed", queue.on_closed)
        hub.observe("error", queue.on_error)
        return queue

    async def speak(
        self,
        text: str,
        flush: bool = True,
        allow_interruption: bool = True,
        *,
        wait: bool = False,
        timeout: Optional[float] = None,
    ) -> SpeechHandle:
        """Queue ``text`` for synthesis; audio arrives as ``tts_audio`` events.

        Args:
            text: non-empty text (use :meth:`tts_flush` to send an empty speak).
            flush: sent as given (the current server ignores it; use :meth:`clear`
                to cut speech short).
            allow_interruption: False makes :meth:`clear` a no-op until this speech ends.
            wait: return only when the server reports the queue drained
                (``tts_playback_complete``), i.e. this text is fully synthesized, and
                the callbacks have handled that audio and the completion (called from
                a callback, it cannot wait for the callbacks after it); a :meth:`clear`
                also ends the wait, as does the server refusing the last speech
                outstanding (``Failed to synthesize speech``: no completion follows).
            timeout: with ``wait``, seconds to wait at most.

        Returns:
            a :class:`~sayna_client.agents.SpeechHandle` once the ``speak`` is on the
            wire (``await client.speak(text)`` alone does not wait for the audio):
            ``await handle`` waits until it played out or was interrupted,
            ``handle.interrupt()`` stops it, ``handle.text_heard`` is what the user heard.

        Raises:
            SaynaValidationError: empty or oversized text, or ``flush`` /
                ``allow_interruption`` not True or False (nothing is sent, no handle
                is made).
            SaynaNotConnectedError / SaynaNotReadyError: call ``connect()`` first.
            SaynaConnectionError: the socket closed while sending (or while waiting).
            SaynaTimeoutError: ``wait`` took longer than ``timeout``.

        Cancellation: cancelled while its frame waits for the socket (the peer reads
        slower than we send), the ``speak`` still goes out, as it does when cancelled
        during ``wait``: the speech goes on and its handle stays in :attr:`speech`
        (``speech.current``; :meth:`clear` stops it).
        """
        check_text("text", text)
        if type(flush) is not bool or type(allow_interruption) is not bool:
            _check_flags(flush, allow_interruption)  # raises
        if timeout is not None:
            check_seconds("timeout", timeout)
        session = self._session
        conn = session.ready_connection()
        queue = self._queue
        if queue is None:
            queue = self._make_queue()
        if not queue.settled:  # (no coroutine per speak when nothing is to be waited for)
            await queue.settle()
            conn = session.ready_connection()
        handle = queue.open(allow_interruption)
        queue.add_chunk(handle, text)
        tracker = session.tracker
        tracker.speak_sent()
        done = tracker.wait_playback() if wait else None
        try:
            await conn.send_text(encode_speak(text, flush, allow_interruption))
        except asyncio.CancelledError:
            # Cancelled while the frame waited for the peer to read: it was handed to
            # the socket first, so the server will speak it; its handle stays queued.
            # Nobody awaits the playback wait now: cancelled, it cannot end in an
            # error asyncio would report as never retrieved.
            queue.chunk_sent(handle, last=True)
            if done is not None:
                done.cancel()
            raise
        except BaseException:
            queue.abandon(handle, None)
            if done is not None:
                done.cancel()
            raise
        queue.chunk_sent(handle, last=True)
        if done is not None:
            await bounded(_caught_up(session, done), timeout, "speak(wait=True)")
        return handle

    async def speak_stream(
        self,
        chunks: Union[AsyncIterable[str], Iterable[str]],
        *,
        flush: bool = True,
        allow_interruption: bool = True,
        segmenter: Optional[SentenceSegmenter] = None,
    ) -> SpeechHandle:
        """Speak text that arrives in pieces (an LLM's tokens), sentence by sentence.

        The pieces are cut at sentence and clause boundaries by ``segmenter`` (a
        :class:`~sayna_client.agents.SentenceSegmenter` with its defaults when None;
        a given one is copied, settings only, so one segmenter may serve every stream);
        each chunk goes out as one ``speak``, in order, the first as soon as the first
        sentence is complete. The first ``speak`` carries ``flush``, later ones
        ``flush=False`` (so a chunk never asks to drop the one before it). The pieces are
        read on a task of their own; this returns the handle at once.

        Returns:
            the :class:`~sayna_client.agents.SpeechHandle`: ``await handle`` waits for
            every chunk to play out and raises what the iterable (or a send) raised
            (once the chunks already sent played out);
            ``handle.interrupt()`` also stops reading the pieces.

        Raises:
            SaynaValidationError: ``chunks`` is a string or not iterable, or ``flush`` /
                ``allow_interruption`` is not True or False.
            SaynaNotConnectedError / SaynaNotReadyError: call ``connect()`` first.
        """
        _check_flags(flush, allow_interruption)
        self._session.ready_connection()
        return self.speech.speak_stream(
            chunks, flush=flush, allow_interruption=allow_interruption, segmenter=segmenter
        )

    async def tts_flush(self, allow_interruption: bool = True) -> None:
        """Send an empty ``speak`` (the server treats it as a no-op flush marker).

        Raises:
            SaynaNotConnectedError / SaynaNotReadyError: call ``connect()`` first.
            SaynaConnectionError: the socket closed while sending.
        """
        _check_flags(True, allow_interruption)
        conn = self._session.ready_connection()
        await _send_speak("", True, allow_interruption, conn)

    async def clear(self) -> None:
        """Stop queued and in-flight speech (ignored while non-interruptible speech plays).

        Raises:
            SaynaNotConnectedError / SaynaNotReadyError: call ``connect()`` first.
            SaynaConnectionError: the socket closed while sending.
        """
        await self.send_clear()
        if self._queue is not None:  # no queue: no speech of ours to mark interrupted
            self._queue.cleared()

    async def send_clear(self) -> None:
        """Send ``clear`` (the speech queue's own interruptions come this way)."""
        await _send_clear(self._session)

    @property
    def audio_output(self) -> Optional[AudioOutput]:
        """Where TTS audio is written as it arrives (a speaker, a phone bridge), or None.

        Set it to an :class:`~sayna_client.agents.AudioOutput`; interruptions flush it,
        and speech handles then count only audio it played as heard.
        """
        return self._queue.output if self._queue is not None else None

    @audio_output.setter
    def audio_output(self, output: Optional[AudioOutput]) -> None:
        if output is not None and not isinstance(output, AudioOutput):
            raise SaynaValidationError(
                "audio_output needs write(bytes) and flush() -> int (see AudioOutput)"
            )
        self.speech.output = output

    @property
    def queue(self) -> Optional[SpeechQueue]:
        """The speech queue, or None while none was made (no speech of ours yet; unlike
        :attr:`speech`, this does not make one)."""
        return self._queue

    @property
    def speech(self) -> SpeechQueue:
        """The session's speech handles, in ``speak`` order (``current``, ``speaking``,
        ``interrupt_all()``); used by :class:`~sayna_client.agents.BargeIn`."""
        queue = self._queue
        return queue if queue is not None else self._make_queue()

    @property
    def turn_metrics(self) -> TurnMetrics:
        """Latency of each user turn and the agent's reply, and usage per provider:
        ``turn_metrics.turns`` (``TurnRecord``s, also delivered as ``turn_metrics`` events)
        and ``turn_metrics.summary()`` (p50/p95). See ``docs/agents.md``."""
        return self.speech.metrics

    def emit_local(self, event: Any) -> None:
        """An event the agents helpers made: to callbacks and iterators, in order."""
        self._session.hub.publish(event)


async def _send_speak(
    text: str, flush: bool, allow_interruption: bool, conn: WebSocketConnection
) -> None:
    _check_flags(flush, allow_interruption)
    await conn.send_text(encode_speak(text, flush, allow_interruption))


async def _caught_up(session: SessionCore, waiter: Awaitable[None]) -> None:
    """``waiter``, then the callbacks have handled the events queued by then."""
    await waiter
    await session.hub.caught_up()
