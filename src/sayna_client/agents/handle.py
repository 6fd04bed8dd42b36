"""The handle of one utterance of the agent (:class:`SpeechHandle`): what became of a
``speak`` or a ``speak_stream``, awaited for its end and asked what was heard. Its
:class:`~sayna_client.agents.speech.SpeechQueue` decides when it ends and credits it
its audio (see that module's docstring)."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..errors import SaynaTTSError, SaynaValidationError

if TYPE_CHECKING:
    from .speech import SpeechQueue

__all__ = ["SpeechHandle"]

#: ``SpeechHandle._sent_frames`` while the audio after its last chunk is not counted: no
#: chunk went out yet, or the next one is on its way (-1: that audio had come).
_UNSENT = sys.maxsize


class SpeechHandle:
    """One utterance of the agent: a ``speak`` or a ``speak_stream``.

    ``await handle`` returns when the speech has played out (its
    ``tts_playback_complete`` arrived, and a ``speak_stream``'s text source ended; with
    an attached output that offers ``buffered_bytes``, once it also played the
    speech's last byte, see :mod:`~sayna_client.agents.playout`) or
    was interrupted (also by the connection closing first: :attr:`lost`); it raises
    what the text source (``speak_stream``'s iterable: once the chunks it sent played
    out) or a ``speak`` raised, and
    :class:`~sayna_client.errors.SaynaTTSError` (with the server's text) when the
    server's TTS provider failed it: raised, not returned (as a failed ``speak`` is),
    so code awaiting a speech cannot take one the user never heard for one that played
    out. It ends at its ``error`` when it is the oldest speech and one ``speak`` (nothing
    more of it can come), else at the completion after it, in order; it raises even when
    then interrupted.
    Cancelling the await does not stop the speech (use :meth:`interrupt`).

    A handle holds no future of its own: each ``await`` (or :meth:`wait`) waits on a
    future of its own, made only when the speech is not done yet, which is all it needs
    (cancelling it leaves the handle as it is), so a ``speak`` whose handle nobody
    awaits makes none.
    """

    __slots__ = (
        "_bytes",
        "_chunks",
        "_done",
        "_error",
        "_failure",
        "_heard_bytes",
        "_queue",
        "_sent",
        "_sent_frames",
        "_seq",
        "_task",
        "_waiters",
        "allow_interruption",
        "interrupted",
        "lost",
        "sent_all",
    )

    def __init__(self, queue: SpeechQueue, allow_interruption: bool) -> None:
        self._queue = queue
        self.allow_interruption = allow_interruption
        # The chunks as a tuple of strings, which the cycle collector stops tracking:
        # a speech in flight is one tracked object, not two (issue #19).
        self._chunks: tuple[str, ...] = ()
        #: True once :meth:`interrupt` (or a barge-in) stopped this speech, or the
        #: connection closed before it played out (then :attr:`lost` is True too).
        self.interrupted = False
        #: True when the connection closed before this speech played out (the server
        #: forgets the speech with the session; a lost connection, or ``disconnect()``
        #: before its end): it ended then, ``interrupted`` too, and :attr:`text_heard`
        #: is what got through. Say the rest again once the session is back (after the
        #: ``reconnected`` event), if it still matters.
        self.lost = False
        #: Every chunk has been sent (the text source is exhausted).
        self.sent_all = False
        self._sent = 0  # chunks sent
        #: The handles its queue opened before this one (set by the queue).
        self._seq = 0
        #: The queue's frame count when the last chunk went out (see SpeechQueue).
        self._sent_frames = _UNSENT
        #: Bytes credited so far (the queue adds those of the frames since it started
        #: crediting this handle: see :attr:`bytes_delivered`).
        self._bytes = 0
        self._heard_bytes: Optional[int] = None
        self._done = False
        self._error: Optional[BaseException] = None
        #: The server's failure credited to this speech before it ended (see
        #: SpeechQueue.on_error); it ends with it.
        self._failure: Optional[SaynaTTSError] = None
        self._task: Optional[asyncio.Task[None]] = None
        #: What waits for the end: the futures of awaits, and (callback, context, loop)
        #: of :meth:`add_done_callback` (None: nothing).
        self._waiters: Optional[list[Any]] = None

    def __repr__(self) -> str:
        if self._failure is not None and self._done:
            state = "failed"
        else:
            state = "interrupted" if self.interrupted else ("done" if self._done else "speaking")
        return f"<SpeechHandle {state} chunks={len(self.chunks)} heard={self.seconds_heard}s>"

    def __await__(self) -> Generator[Any, None, None]:
        if self._done:
            return _ended(self._error)
        return self._waiter().__await__()

    async def wait(self, timeout: Optional[float] = None) -> None:
        """``await handle`` with a deadline.

        Raises:
            asyncio.TimeoutError: not done within ``timeout`` seconds (speech goes on).
            SaynaTTSError: the server's TTS provider failed this speech.
            SaynaValidationError: ``timeout`` is not a number of seconds or None.
            Exception: what the text source (``speak_stream``) or a ``speak`` raised.
        """
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout != timeout
        ):
            raise SaynaValidationError(
                f"timeout must be a number of seconds or None (no limit), got {timeout!r}"
            )
        if not self._done:
            await asyncio.wait_for(self._waiter(), timeout)
        elif self._error is not None:
            raise self._error

    def _waiter(self) -> asyncio.Future[None]:
        """A new future, resolved (or failed) when the speech is done; cancelling it (the
        await was cancelled or timed out) does nothing to the speech."""
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiters = self._waiters
        if waiters is None:
            self._waiters = [waiter]
        else:
            if len(waiters) >= 8:  # many awaits given up on one long speech: drop theirs
                waiters[:] = [w for w in waiters if type(w) is tuple or not w.done()]
            waiters.append(waiter)
        return waiter

    def add_done_callback(self, callback: Callable[[SpeechHandle], Any]) -> None:
        """Call ``callback(handle)`` on the event loop once the speech is done (played out,
        interrupted or failed); at the next loop pass if it is done already. It runs in
        a copy of the caller's context (as a future's done callback)."""
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        if self._done:
            loop.call_soon(callback, self, context=context)
            return
        if self._waiters is None:
            self._waiters = []
        self._waiters.append((callback, context, loop))

    def exception(self) -> Optional[BaseException]:
        """What the speech failed with (the text source or a ``speak`` raised, or the
        server's :class:`~sayna_client.errors.SaynaTTSError`), else None (also while it
        is not done)."""
        return self._error if self._done else None

    @property
    def done(self) -> bool:
        """Played out, interrupted or failed."""
        return self._done

    @property
    def chunks(self) -> list[str]:
        """The text chunks sent so far, one per ``speak``, in order (a new list)."""
        return list(self._chunks)

    @property
    def text(self) -> str:
        """Everything sent to be spoken so far, chunks joined with spaces."""
        return " ".join(self._chunks)

    @property
    def bytes_delivered(self) -> int:
        """TTS audio bytes of this speech that reached the client (and the output)."""
        return self._queue._delivered(self)

    @property
    def seconds_heard(self) -> Optional[float]:
        """Seconds of this speech the user heard: the audio delivered, less what an
        attached output dropped unplayed at the interruption; None when the TTS format
        is compressed (no byte rate)."""
        rate = self._queue.byte_rate()
        if rate is None:
            return None
        heard = self.bytes_delivered if self._heard_bytes is None else self._heard_bytes
        return round(heard / rate, 3)

    @property
    def text_heard(self) -> str:
        """The words the user heard: all of :attr:`text` when the speech played out, else
        (interrupted, or failed on the server) the first words that fit in
        :attr:`seconds_heard` at the session's seconds per word (all words sent when the
        format is compressed)."""
        if not self.interrupted and self._failure is None:
            return self.text
        seconds = self.seconds_heard
        words = self.text.split()
        if seconds is None:
            return " ".join(words)
        count = int(seconds / self._queue.seconds_per_word + 0.3)
        return " ".join(words[: max(0, count)])

    def interrupt(self) -> None:
        """Stop this speech now: ``clear`` is sent (it cancels every speech queued on the
        server, so every unfinished handle is interrupted), the attached output drops
        unplayed audio and late audio of the cancelled speech is ignored. No effect on a
        finished handle.

        Raises:
            SaynaValidationError: the newest unfinished speech that sent a chunk (this
                one, or one sent after it; not a ``speak_stream`` still waiting for its
                first sentence) was sent with ``allow_interruption=False``: the server
                ignores ``clear`` then (it goes by the latest ``speak``).
        """
        if self.done:
            return
        if not self._queue.interruptible:
            raise SaynaValidationError(
                "the newest speech was sent with allow_interruption=False; the server "
                "ignores clear until it has played out"
            )
        self._queue.interrupt_all()

    # --- called by the queue ------------------------------------------------------------

    def _finish(
        self, *, interrupted: bool, unplayed: int = 0, error: Any = None, lost: bool = False
    ) -> None:
        if self._done:
            return
        self._done = True
        self.lost = lost
        if interrupted:
            self.interrupted = True
            self._heard_bytes = max(0, self._bytes - unplayed)
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            task.cancel()
        if self._error is None:
            self._error = error
        else:  # the text source's, set before (SpeechQueue.source_ended): it wins
            error = self._error
        waiters = self._waiters
        if waiters is not None:
            self._waiters = None
            for waiter in waiters:  # in the order they came, as a future's callbacks
                if type(waiter) is tuple:
                    callback, context, loop = waiter
                    loop.call_soon(callback, self, context=context)
                elif waiter.done():
                    continue  # its await was cancelled or timed out
                elif error is None:
                    waiter.set_result(None)
                else:
                    waiter.set_exception(error)


def _ended(error: Optional[BaseException]) -> Generator[Any, None, None]:
    """The await of a handle that is done: returns, or raises what the speech failed
    with (a generator that never yields)."""
    if error is not None:
        raise error
    yield from ()
