"""Speech handles for :class:`~sayna_client.SaynaSyncClient`: the same handle, blocking.

``SaynaSyncClient.speak()`` and ``speak_stream()`` return a :class:`SyncSpeechHandle`,
usable from any thread: ``handle.wait()`` blocks until the speech played out or was
interrupted, ``handle.interrupt()`` stops it, ``handle.text_heard`` is what the user heard.
``speak_stream`` reads a plain (blocking) iterator, e.g. a synchronous LLM client's token
stream, on a worker thread, so the session's event loop never waits for it.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any, Callable, Optional, cast

from .handle import SpeechHandle

__all__ = ["SyncSpeechHandle", "iterate_in_thread"]

_END = object()
_readers = itertools.count(1)


async def iterate_in_thread(pieces: Iterable[str]) -> AsyncIterator[str]:
    """``pieces`` as an async iterator whose every ``next()`` runs on a daemon thread of
    its own, so a blocking iterator never stalls the event loop.

    Closing the async iterator (or cancelling the task reading it) stops asking for
    pieces at once; a ``next()`` already running finishes on that thread, its piece
    dropped, and the thread ends then. Nothing waits for it: not the loop's shutdown
    (it is not the loop's default executor, which ``SaynaSyncClient.close()`` joins),
    nor the interpreter's exit (a daemon thread), so an LLM call stuck on the network
    cannot hang ``close()``.
    """
    iterator = iter(pieces)
    loop = asyncio.get_running_loop()
    requests: queue.SimpleQueue[Optional[asyncio.Future[object]]] = queue.SimpleQueue()
    threading.Thread(
        target=_read,
        args=(iterator, requests, loop),
        name=f"sayna-speak-stream-{next(_readers)}",
        daemon=True,
    ).start()
    try:
        while True:
            future: asyncio.Future[object] = loop.create_future()
            requests.put(future)
            piece = await future
            if piece is _END:
                return
            yield cast(str, piece)  # checked by the segmenter, as any piece
    finally:
        requests.put(None)  # the reader ends (after the next() it may be running)


def _read(
    iterator: Iterator[str],
    requests: queue.SimpleQueue[Optional[asyncio.Future[object]]],
    loop: asyncio.AbstractEventLoop,
) -> None:
    """The reader thread of :func:`iterate_in_thread`: one ``next()`` per request, its
    result (or error) handed to the request's future on the loop, until told to stop."""
    while True:
        future = requests.get()
        if future is None:
            return
        try:
            piece: object = next(iterator, _END)
        except BaseException as exc:  # the source's: raised where it is read
            _post(loop, _fail, future, exc)
        else:
            _post(loop, _resolve, future, piece)


def _post(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # the loop is closed: nobody waits for this piece any more
        pass


def _resolve(future: asyncio.Future[object], piece: object) -> None:
    if not future.done():  # (a cancelled read: the piece is dropped)
        future.set_result(piece)


def _fail(future: asyncio.Future[object], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


class SyncSpeechHandle:
    """A :class:`~sayna_client.agents.SpeechHandle` of a ``SaynaSyncClient``, from any thread.

    Each member runs on the client's loop thread (through the client's portal), so reads
    are consistent with the audio arriving there. Calling :meth:`wait` on the loop thread
    (inside a callback) raises ``RuntimeError``: it would deadlock.
    """

    __slots__ = ("_handle", "_portal")

    def __init__(self, handle: SpeechHandle, portal: Any) -> None:
        self._handle = handle
        self._portal = portal

    def __repr__(self) -> str:
        return repr(self._handle)

    @property
    def handle(self) -> SpeechHandle:
        """The underlying async handle (use it only on the client's loop thread)."""
        return self._handle

    def wait(self, timeout: Optional[float] = None) -> None:
        """Block until the speech has played out or was interrupted. A handle already
        done answers at once, on the calling thread: after ``close()`` (which ends every
        handle) it starts no event loop again.

        Raises:
            asyncio.TimeoutError: not done within ``timeout`` seconds (speech goes on).
            SaynaTTSError: the server's TTS provider failed this speech.
            Exception: what the text source (``speak_stream``) or a ``speak`` raised.
            RuntimeError: called on the client's loop thread (it would deadlock).
        """
        self._portal.check_thread("handle.wait()", serving=False)
        handle = self._handle
        # Read where it cannot race the loop: on it while it runs, else here (no loop).
        if self._portal.call(getattr, handle, "done"):
            error = handle.exception()  # (final once done)
            if error is not None:
                raise error
            return
        self._portal.check_thread("handle.wait()")  # (a wait, not on the server's thread)
        self._portal.run(handle.wait, timeout)

    def interrupt(self) -> None:
        """Stop the speech now (``clear``, the audio output flushed); see
        :meth:`SpeechHandle.interrupt <sayna_client.agents.SpeechHandle.interrupt>`.

        Raises:
            SaynaValidationError: the newest unfinished speech that sent a chunk was
                sent with ``allow_interruption=False``.
        """
        self._portal.call(self._handle.interrupt)

    def _get(self, name: str) -> Any:
        return self._portal.call(getattr, self._handle, name)

    @property
    def done(self) -> bool:
        """Played out, interrupted or failed."""
        return bool(self._get("done"))

    @property
    def interrupted(self) -> bool:
        """True once :meth:`interrupt` stopped this speech, or the connection closed
        before it played out (then :attr:`lost` is True too)."""
        return bool(self._get("interrupted"))

    @property
    def lost(self) -> bool:
        """True when the connection closed before this speech played out (see
        :attr:`SpeechHandle.lost <sayna_client.agents.SpeechHandle.lost>`)."""
        return bool(self._get("lost"))

    @property
    def text(self) -> str:
        """Everything sent to be spoken so far."""
        return str(self._get("text"))

    @property
    def text_heard(self) -> str:
        """The words the user heard (all of :attr:`text` when it played out)."""
        return str(self._get("text_heard"))

    @property
    def seconds_heard(self) -> Optional[float]:
        """Seconds of this speech the user heard; None for compressed TTS formats."""
        value: Optional[float] = self._get("seconds_heard")
        return value

    @property
    def bytes_delivered(self) -> int:
        """TTS audio bytes of this speech that reached the client."""
        return int(self._get("bytes_delivered"))

    @property
    def chunks(self) -> list[str]:
        """The text chunks sent so far, one per ``speak`` (a copy)."""
        return list(self._get("chunks"))
