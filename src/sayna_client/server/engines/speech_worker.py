"""Whisper recognition and Piper synthesis in a worker process, so neither competes with
the server's event loop for the GIL or, at a lower scheduling priority, for the CPU.

Why a process: measured with 20 concurrent streams on 2 cores, the loop's lateness came
from CPU contention and the Python glue around the models (VAD chunking, features), not
only from the models themselves, which release the GIL. In a separate process at
``nice`` :data:`~.speech_child.NICENESS` the loop's thread wins the CPU whenever it has
work, and no Python code of the recognisers runs in the server's interpreter. The same
held for Piper on threads of the server (phonemizer, resampling and the Python around
ONNX Runtime): 4 concurrent ``/speak`` requests stalled the loop by ~30 ms, so synthesis
runs there too.

The parts: this module keeps one process running (restarts);
:mod:`.speech_process` is one child process seen from the server (launch, the threads
that move frames); :mod:`.speech_proxy` holds the objects the engine hands out (a
recognition stream, the Piper synthesizer); :mod:`.speech_child` is the child's main
loop, and :mod:`.speech_ipc` the codec between them.

**Restarts.** When the child dies (killed, out of memory, a crash in native code), the
recognition streams and syntheses in flight fail once each with the reason, and the
worker is started again at once; streams bind to the new process at their next frame,
so a session keeps being transcribed from its next utterance. At most
:data:`RESTART_LIMIT` restarts happen within :data:`RESTART_WINDOW_S` seconds, with a
growing delay (:data:`RESTART_DELAYS_S`); a child that keeps dying, or a restart that
fails to load the models (a model file that fails its digest check, a missing
package), stops the worker for good: every stream and synthesis then fails with that
cause, and new sessions are refused with it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from .base import STTParams
from .speech_process import WorkerProcess

if TYPE_CHECKING:
    from .speech_proxy import ProcessSTTStream

__all__ = [
    "PARTS",
    "RESTART_DELAYS_S",
    "RESTART_LIMIT",
    "RESTART_WINDOW_S",
    "SpeechWorker",
]

#: What a worker can run: ``"stt"`` (Whisper + Silero VAD) and ``"tts"`` (Piper).
PARTS = ("stt", "tts")
#: Restarts allowed within :data:`RESTART_WINDOW_S`; one more exit stops the worker.
RESTART_LIMIT = 3
#: The window, in seconds, over which exits are counted.
RESTART_WINDOW_S = 60.0
#: Delay before the first, second, ... restart within the window (a crash loop backs off).
RESTART_DELAYS_S = (0.0, 1.0, 4.0)

logger = logging.getLogger(__name__)


class SpeechWorker:
    """The parent's handle on the speech worker (shared by all of an engine's streams
    and syntheses): the running :class:`WorkerProcess`, restarted when it dies (see the
    module docstring for the limits).

    :meth:`start` (blocking; call it on a thread) launches the first process and waits
    until it has loaded and verified the models.

    Args:
        workers: the child's decoding threads.
        parts: what the child loads, from :data:`PARTS`.
        restart_limit: restarts allowed within :data:`RESTART_WINDOW_S` (0: none).

    Raises:
        ValueError: an unknown part, or a negative ``restart_limit``.
    """

    def __init__(
        self, workers: int, parts: Sequence[str] = ("stt",), restart_limit: int = RESTART_LIMIT
    ) -> None:
        unknown = sorted(set(parts) - set(PARTS))
        if unknown or not parts:
            raise ValueError(f"speech worker parts must be among {PARTS}, got {list(parts)}")
        if restart_limit < 0:
            raise ValueError(f"restart_limit must be 0 or more, got {restart_limit}")
        self._restart_limit = restart_limit
        self._workers = workers
        self._parts = tuple(parts)
        #: Parts the child could not import (part -> reason); filled by :meth:`start`.
        self.unavailable: dict[str, str] = {}
        #: How many times the process was restarted.
        self.restarts = 0
        self._lock = threading.Lock()
        self._process: Optional[WorkerProcess] = None
        self._up = _pending()
        self._failure: Optional[str] = None
        self._exits: list[float] = []
        self._closed = threading.Event()

    def start(self) -> None:
        """Launch the first process and wait for its models.

        Raises:
            ModelIntegrityError: a model file is missing or was modified.
            ImportError: the child could not import the recogniser (a missing package).
            RuntimeError: the child exited before it was ready, or the worker was closed.
        """
        try:
            process = self._launch()
        except BaseException as exc:
            with self._lock:  # the caller reports it: no log line of its own
                self._stop(f"the speech worker could not start: {exc}", log=False)
            raise
        self.unavailable = dict(process.unavailable)
        if not self._install(process):
            process.close()
            raise RuntimeError(self._failure or "the speech worker process exited at once")

    def runs(self, part: str) -> bool:
        """True when the started worker loaded ``part`` (``"stt"`` or ``"tts"``)."""
        return part in self._parts and part not in self.unavailable

    @property
    def pid(self) -> Optional[int]:
        """The running process's id (``None`` before :meth:`start`, while restarting and
        after :meth:`close`)."""
        process = self._process
        return None if process is None else process.pid

    @property
    def failure(self) -> Optional[str]:
        """Why the worker stopped for good (``None`` while it runs or restarts)."""
        return self._failure

    async def process(self) -> WorkerProcess:
        """The running process, waiting for a restart in progress. Cancelling the wait
        affects nobody else.

        Raises:
            RuntimeError: the worker stopped for good, or was closed (the reason).
        """
        while True:
            with self._lock:
                up = self._up
            process: WorkerProcess = await asyncio.wrap_future(up)
            if process.dead is None:
                return process
            with self._lock:  # died since: its exit has replaced ``_up`` (same lock)
                if self._up is up:  # pragma: no cover - the exit holds the lock
                    raise RuntimeError(process.dead)

    def open(self, params: STTParams) -> ProcessSTTStream:
        """A new recognition stream; it binds to a process at its first frame.

        Raises:
            RuntimeError: the worker stopped for good (the reason).
        """
        from .speech_proxy import ProcessSTTStream

        if self._failure is not None:
            raise RuntimeError(self._failure)
        return ProcessSTTStream(self, params)

    def close(self) -> None:
        """Stop the process and any restart; later calls fail with "the speech worker
        was closed". Never raises."""
        self._closed.set()
        with self._lock:
            process, self._process = self._process, None
            self._stop("the speech worker was closed")
        if process is not None:
            process.close()

    # --- restarts -------------------------------------------------------------------------

    def _launch(self) -> WorkerProcess:
        process = WorkerProcess(self._workers, self._parts, self._lock, self._on_exit)
        process.start()
        return process

    def _install(self, process: WorkerProcess) -> bool:
        """Make ``process`` the running one; False when it died meanwhile or the worker
        was closed."""
        with self._lock:
            if self._closed.is_set() or process.dead is not None:
                return False
            self._process = process
            up = self._up
        up.set_result(process)
        return True

    def _on_exit(self, process: WorkerProcess, reason: str) -> str:
        """A process died (its reader thread, with the lock held): restart or stop.
        Returns what happens next, for the streams' error messages."""
        if process is not self._process:
            return ""  # closed, or died before it was installed
        self._process = None
        self._up = _pending()
        delay = self._next_delay()
        if delay is None:
            self._stop(
                f"{reason}; it exited {len(self._exits)} times within {RESTART_WINDOW_S:g} s, "
                "so it is not restarted again (restart the server)"
            )
            return "it is not restarted again"
        logger.warning("%s; restarting it", reason)
        threading.Thread(
            target=self._restart, args=(delay,), name="sayna-speech-restart", daemon=True
        ).start()
        return "it is being restarted and recognition resumes with the next audio"

    def _next_delay(self) -> Optional[float]:
        """Note an exit; the delay before the restart, ``None`` past the limit."""
        now = time.monotonic()
        self._exits = [t for t in self._exits if now - t < RESTART_WINDOW_S] + [now]
        if len(self._exits) > self._restart_limit:
            return None
        return RESTART_DELAYS_S[min(len(self._exits), len(RESTART_DELAYS_S)) - 1]

    def _stop(self, failure: str, log: bool = True) -> None:
        """Stop for good (lock held): waiting and later callers get ``failure``."""
        if self._failure is None:
            self._failure = failure
            if log and not self._closed.is_set():
                logger.error("speech worker stopped: %s", failure)
        if not self._up.done():
            self._up.set_exception(RuntimeError(self._failure))

    def _restart(self, delay: float) -> None:
        from .local_assets import ModelIntegrityError

        while not self._closed.wait(delay):
            try:
                process = self._launch()
            except (ModelIntegrityError, ImportError) as exc:  # retrying cannot help
                with self._lock:
                    self._stop(f"the speech worker could not be restarted: {exc}")
                return
            except Exception as exc:  # crashed while loading: count it, back off
                with self._lock:
                    next_delay = self._next_delay()
                    if next_delay is None:
                        self._stop(f"the speech worker could not be restarted: {exc}")
                        return
                logger.warning("speech worker restart failed (%s); trying again", exc)
                delay = next_delay
                continue
            if self._install(process):
                with self._lock:
                    self.restarts += 1
                logger.warning("speech worker restarted (pid %s)", process.pid)
                return
            process.close()
            if self._closed.is_set():
                return
            with self._lock:  # died before it was installed: an exit like any other
                next_delay = self._next_delay()
                if next_delay is None:
                    self._stop(f"the speech worker could not be restarted: {process.dead}")
                    return
            delay = next_delay


def _pending() -> concurrent.futures.Future[WorkerProcess]:
    """A future nobody can cancel (it is shared by every waiter: a cancelled wait must
    not cancel it for the others)."""
    future: concurrent.futures.Future[WorkerProcess] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()
    return future
