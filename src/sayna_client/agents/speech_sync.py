"""Speech handles for :class:`~sayna_client.SaynaSyncClient`: the same handle, blocking.

``SaynaSyncClient.speak()`` and ``speak_stream()`` return a :class:`SyncSpeechHandle`,
usable from any thread: ``handle.wait()`` blocks until the speech played out or was
interrupted, ``handle.interrupt()`` stops it, ``handle.text_heard`` is what the user heard.
``speak_stream`` reads a plain (blocking) iterator, e.g. a synchronous LLM client's token
stream, on a worker thread, so the session's event loop never waits for it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from typing import Any, Optional, cast

from .handle import SpeechHandle

__all__ = ["SyncSpeechHandle", "iterate_in_thread"]

_END = object()


async def iterate_in_thread(pieces: Iterable[str]) -> AsyncIterator[str]:
    """``pieces`` as an async iterator whose every ``next()`` runs on a worker thread
    (``asyncio.to_thread``), so a blocking iterator never stalls the event loop.

    Closing the async iterator stops asking for pieces; a ``next()`` already running on
    the worker finishes there (its piece is dropped).
    """
    iterator = iter(pieces)
    while True:
        piece = await asyncio.to_thread(next, iterator, _END)
        if piece is _END:
            return
        yield cast(str, piece)  # checked by the segmenter, as any piece


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
        self._portal.check_thread("wait()")
        handle = self._handle
        # Read where it cannot race the loop: on it while it runs, else here (no loop).
        if self._portal.call(getattr, handle, "done"):
            error = handle.exception()  # (final once done)
            if error is not None:
                raise error
            return
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
