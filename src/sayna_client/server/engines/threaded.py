"""An :class:`STTStream` that runs a synchronous recogniser on worker threads.

The local engines' recognisers (pocketsphinx, Whisper) are CPU-heavy and blocking; this
wrapper keeps them off the event loop while preserving frame order.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Protocol

from .base import STTStream, Transcript

__all__ = ["SyncRecognizer", "ThreadedSTTStream"]


class SyncRecognizer(Protocol):
    """The synchronous state of one recognition stream (called from one thread at a time)."""

    def process(self, data: bytes, out: list[Transcript]) -> None:
        """Consume client bytes of any length; append the results they produced."""

    def finish(self, out: list[Transcript]) -> None:
        """End of input: flush the open utterance into ``out``; then start over."""

    def release(self) -> None:
        """Drop heavy state (decoders); later calls may reload it."""

    @property
    def in_speech(self) -> bool:
        """Inside an utterance (see :attr:`.base.STTStream.speaking`)."""


class ThreadedSTTStream(STTStream):
    """Runs a :class:`SyncRecognizer` on ``executor``.

    ``feed`` queues the frame and processes the queue in the executor, so the event
    loop never decodes. Frames are consumed strictly in arrival order even when a
    ``feed`` is cancelled: cancelled work stays queued (or keeps running) and its
    results are returned by the next ``feed``/``finish``. Call ``feed``/``finish``
    from one task at a time. Empty frames are ignored.
    """

    feed_may_wait = True

    def __init__(self, recognizer: SyncRecognizer, executor: concurrent.futures.Executor) -> None:
        self._executor = executor
        self._recognizer = recognizer
        self._io_lock = threading.Lock()  # guards _inbox/_outbox; held only briefly
        self._work_lock = threading.Lock()  # one worker in the recogniser at a time
        self._inbox: list[bytes] = []
        self._outbox: list[Transcript] = []
        self._closed = False

    async def feed(self, audio: bytes) -> list[Transcript]:
        """Queue one client frame, decode everything queued, return the new results.

        Raises:
            RuntimeError: the recogniser failed (e.g. its model could not be loaded),
                or the engine was closed.
        """
        if self._closed:
            return []
        if audio:
            with self._io_lock:
                self._inbox.append(bytes(audio))
            await asyncio.wrap_future(self._executor.submit(self._work, False))
        return self._take_results()

    async def finish(self) -> list[Transcript]:
        """Decode what is queued and flush the pending utterance as a final."""
        if self._closed:
            return []
        await asyncio.wrap_future(self._executor.submit(self._work, True))
        return self._take_results()

    def close(self) -> None:
        """Stop recognising and free the recogniser; later calls return no results."""
        self._closed = True
        # A running worker frees the recogniser itself when it sees _closed.
        if self._work_lock.acquire(blocking=False):
            try:
                self._recognizer.release()
            finally:
                self._work_lock.release()

    @property
    def speaking(self) -> bool:
        """The recogniser's :attr:`SyncRecognizer.in_speech` after its last job."""
        return self._recognizer.in_speech

    def _take_results(self) -> list[Transcript]:
        with self._io_lock:
            results, self._outbox = self._outbox, []
        return results

    def _work(self, finish: bool) -> None:
        with self._work_lock:
            if self._closed:
                self._recognizer.release()
                return
            with self._io_lock:
                data = b"".join(self._inbox)
                self._inbox.clear()
            if not data and not finish:
                return  # an earlier job already took this frame
            out: list[Transcript] = []
            try:
                if data:
                    self._recognizer.process(data, out)
                if finish:
                    self._recognizer.finish(out)
            finally:
                with self._io_lock:
                    self._outbox.extend(out)
                if self._closed:
                    self._recognizer.release()
