"""What the engine hands out for work done in the speech worker process: a recognition
stream per session (:class:`ProcessSTTStream`) and the Piper synthesizer
(:class:`ProcessSynthesizer`). Both survive a restart of the worker
(:mod:`.speech_worker`): what was in flight fails once with the reason, later work runs
on the new process.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Optional

from .base import (
    STTParams,
    STTStream,
    Transcript,
    TTSRequest,
    TTSTooLong,
    check_tts_rate,
    wav_header,
)
from .local_tts import apply_pronunciations

if TYPE_CHECKING:
    from .speech_process import WorkerProcess
    from .speech_worker import SpeechWorker

__all__ = ["ProcessSTTStream", "ProcessSynthesizer"]


class ProcessSTTStream(STTStream):
    """One session's recogniser in the :class:`~.speech_worker.SpeechWorker`.

    Same contract as :class:`~.threaded.ThreadedSTTStream`: ``feed`` returns once the
    worker has processed the frame (frames queued meanwhile are processed together);
    the session feeds it from a background task (:attr:`feed_may_wait`), so it keeps
    reading its socket while the worker decodes. Call ``feed``/``finish`` from one task
    at a time. Empty frames are ignored.

    The stream binds to the worker's running process at its first frame. If that
    process dies, the call waiting for it (or the next call) raises once, naming the
    reason; the call after waits for the restarted process and recognition starts
    afresh there (the utterance in flight is lost). If the worker stopped for good,
    one call raises with its cause and later calls return no results.

    Args:
        worker: the engine's worker.
        params: the session's audio format and options.
    """

    feed_may_wait = True

    def __init__(self, worker: SpeechWorker, params: STTParams) -> None:
        self._worker = worker
        self._params = params
        self._lock = threading.Lock()
        self._process: Optional[WorkerProcess] = None  # bound process, guarded by _lock
        self._sid = 0
        self._seq = 0
        self._done = 0
        self._outbox: list[Transcript] = []
        self._error: Optional[str] = None
        self._speaking = False
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._stopped = False
        self._closed = False

    @property
    def speaking(self) -> bool:
        """The worker's recogniser was inside an utterance after its last job."""
        return self._speaking

    async def feed(self, audio: bytes) -> list[Transcript]:
        """Send one client frame, wait until the worker has decoded it, return the new
        results. A cancelled ``feed`` leaves the frame queued; its results come with the
        next call.

        Raises:
            RuntimeError: the recogniser failed, the worker process died (once per
                death), or the worker stopped for good (once).
        """
        if self._closed or self._stopped:
            return []
        self._raise_error()
        if audio:
            bound = await self._bind()
            if bound is None:
                return []
            process, sid = bound
            seq = self._next_seq()
            process.send(("feed", sid, seq, bytes(audio)))
            await self._wait_for(process, seq)
        return self._take()

    async def finish(self) -> list[Transcript]:
        """Wait until every sent frame is decoded and the open utterance is flushed.

        Raises:
            RuntimeError: as :meth:`feed`.
        """
        if self._closed or self._stopped:
            return []
        self._raise_error()
        with self._lock:
            process, sid = self._process, self._sid
        if process is not None:  # never bound (or lost): nothing to flush
            seq = self._next_seq()
            process.send(("finish", sid, seq))
            await self._wait_for(process, seq)
        return self._take()

    def close(self) -> None:
        """Stop recognising; the worker frees the stream. Later calls return no results."""
        if self._closed:
            return
        with self._lock:
            self._closed = True
            process, self._process = self._process, None
            waiters, self._waiters = self._waiters, []
        if process is not None:
            process.forget(self._sid)
            process.send(("close", self._sid))
        _wake(waiters)

    async def _bind(self) -> Optional[tuple[WorkerProcess, int]]:
        """The bound process and this stream's id there, opening the stream in the
        running process first when unbound (waiting for a restart in progress).
        ``None`` when the stream was closed meanwhile."""
        while True:
            with self._lock:
                if self._process is not None:
                    return self._process, self._sid
            try:
                process = await self._worker.process()
            except RuntimeError as exc:
                self._stopped = True
                raise RuntimeError(f"speech recognition stopped: {exc}") from None
            if self._closed:
                return None
            try:
                sid = process.register(self)
            except RuntimeError:
                continue  # it died meanwhile: wait for the next one
            with self._lock:
                self._process, self._sid = process, sid
            process.send(("open", sid, self._params))

    def _next_seq(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError(error)

    def _take(self) -> list[Transcript]:
        self._raise_error()
        with self._lock:
            results, self._outbox = self._outbox, []
        return results

    async def _wait_for(self, process: WorkerProcess, seq: int) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._process is not process or self._done >= seq or self._error is not None:
                return
            self._waiters.append((seq, loop, future))
        await future

    def _deliver(
        self,
        process: WorkerProcess,
        seq: int,
        results: list[Transcript],
        error: Optional[str],
        speaking: bool,
    ) -> None:
        """Reader thread: a job's results (or the recogniser's error) and whether the
        recogniser is inside an utterance after it."""
        with self._lock:
            if self._process is not process:
                return
            self._outbox.extend(results)
            self._speaking = speaking
            if error is not None and self._error is None:
                self._error = error
            self._done = max(self._done, seq)
            ready = [w for w in self._waiters if w[0] <= self._done or error]
            self._waiters = [w for w in self._waiters if w not in ready]
        _wake(ready)

    def _lost(self, process: WorkerProcess, reason: str) -> None:
        """Reader thread: ``process`` died; one error for whoever waits or calls next."""
        with self._lock:
            if self._process is not process:
                return
            self._process = None
            self._speaking = False  # the utterance in flight is lost
            if self._error is None:
                self._error = f"speech recognition was interrupted: {reason}"
            self._done = self._seq
            waiters, self._waiters = self._waiters, []
        _wake(waiters)


class ProcessSynthesizer:
    """The Piper voice in the :class:`~.speech_worker.SpeechWorker` (started with the
    ``"tts"`` part).

    Same contract as :class:`~.piper_tts.PiperSynthesizer`; the worker resamples and
    encodes, so the server's process only relays finished 20 ms chunks. A synthesis
    that starts while the worker restarts waits for it.

    Args:
        worker: a started worker that :meth:`~.speech_worker.SpeechWorker.runs` ``"tts"``.
    """

    def __init__(self, worker: SpeechWorker) -> None:
        self._worker = worker

    async def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield ``request`` as audio, sentence by sentence, in 20 ms chunks (the first
        sentence's audio arrives before the rest is synthesized).

        Pronunciations are applied first; blank text yields nothing. Formats: raw pcm16
        for ``linear16`` and unknown formats, G.711 for ``mulaw``/``alaw``, one buffered
        clip with a header for ``wav``. Closing the generator early (``aclose()`` or
        cancellation) stops the worker's synthesis at its next sentence.

        Raises:
            ValueError: ``sample_rate`` is not a positive rate up to 384 kHz.
            RuntimeError: synthesis failed in the worker, the worker process died during
                synthesis, or the worker stopped for good.
        """
        check_tts_rate(request.sample_rate)
        text = apply_pronunciations(request.text, request.pronunciations)
        if not text.strip():
            return
        audio_format = request.audio_format.strip().lower()
        loop = asyncio.get_running_loop()
        replies: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def deliver(reply: tuple[str, Any]) -> None:  # on the reader thread
            try:
                loop.call_soon_threadsafe(replies.put_nowait, reply)
            except RuntimeError:
                pass  # the loop is closed: nobody is listening any more

        try:
            process = await self._worker.process()
            tid = process.speak(
                text, request.speaking_rate, request.sample_rate, audio_format, deliver
            )
        except RuntimeError as exc:
            raise RuntimeError(f"speech synthesis failed: {exc}") from None
        buffered: list[bytes] = []
        try:
            while True:
                kind, payload = await replies.get()
                if kind == "end":
                    if isinstance(payload, TTSTooLong):
                        raise payload  # the child stopped at the cap on a request's audio
                    if payload is not None:
                        raise RuntimeError(f"speech synthesis failed: {payload}")
                    break
                if audio_format == "wav":
                    buffered.extend(payload)
                else:
                    for chunk in payload:
                        yield chunk
            if audio_format == "wav":
                yield wav_header(request.sample_rate, data_bytes=sum(map(len, buffered)))
                for chunk in buffered:
                    yield chunk
        finally:
            process.stop_speaking(tid)


def _wake(waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]]) -> None:
    for _, loop, future in waiters:
        try:
            loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:
            pass  # that loop is closed: nobody is waiting any more


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
