"""One speech worker process, seen from the server: its launch and handshake, the
writer thread that sends it frames, and the reader thread that routes its replies to the
recognition streams and syntheses (:mod:`.speech_proxy`) and reports its death to the
:class:`~.speech_worker.SpeechWorker` that restarts it. The child's side is
:mod:`.speech_child`; the codec :mod:`.speech_ipc`.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Callable, Optional

from .speech_ipc import encode, read_message, widen

if TYPE_CHECKING:
    from .speech_proxy import ProcessSTTStream

__all__ = [
    "NO_TELEMETRY",
    "SAME_ON_EVERY_CPU",
    "Deliver",
    "WorkerProcess",
    "keep_onnxruntime_offline",
]

logger = logging.getLogger(__name__)

#: What the worker's environment gets where the server's leaves it unset or empty:
#: CTranslate2's int8 products on oneDNN's AVX2 kernels. Which kernels compute them (Intel
#: MKL, oneDNN's AVX2 or AVX-512 ones, with or without VNNI) changes what Whisper tiny.en's
#: int8 weights hear on some clips: on an Intel Xeon with AVX-512 VNNI the defaults heard
#: "an old-sposed young man" where oneDNN's AVX2 kernels hear "an ill-disposed young man"
#: (tests/data/speech/librivox-0880.wav). Pinned, a clip is heard the same on every x86-64
#: CPU with AVX2. On that Xeon each decode takes 1.6-2.1x as long pinned (0.26-0.35 s
#: against about 0.16 s); CPUs whose default these kernels already are (AMD EPYC without
#: AVX-512) are unaffected, and other CPUs (ARM) ignore both variables.
SAME_ON_EVERY_CPU = {"CT2_USE_MKL": "0", "ONEDNN_MAX_CPU_ISA": "AVX2"}

#: onnxruntime (1.32) sends usage telemetry: about 10 s after its first model session it
#: looks up mobile.events.data.microsoft.com, from an engine promised to keep everything
#: on the machine. Only this variable, set before onnxruntime is imported, turns it off
#: (``onnxruntime.disable_telemetry_events()`` does not). A value the user set is kept.
NO_TELEMETRY = {"ORT_DISABLE_TELEMETRY": "1"}


def keep_onnxruntime_offline() -> None:
    """Turn off onnxruntime's telemetry in this process (see :data:`NO_TELEMETRY`);
    call it before importing onnxruntime. A user's own setting stays."""
    for name, value in NO_TELEMETRY.items():
        if not os.environ.get(name):
            os.environ[name] = value


#: ``deliver`` callback of a synthesis: ``("audio", [chunk, ...])`` or ``("end", error)``.
Deliver = Callable[[tuple[str, Any]], None]


class WorkerProcess:
    """One child process: its launch, a reader thread routing its replies to streams and
    syntheses, and a writer thread sending frames (so the event loop never blocks on a
    full pipe; it only queues).

    Created and started by :class:`SpeechWorker`; ``lock`` is the worker's, so a
    process's death and the worker's switch to a new one are one step for callers.
    """

    def __init__(
        self,
        workers: int,
        parts: Sequence[str],
        lock: threading.Lock,
        on_exit: Callable[[WorkerProcess, str], str],
    ) -> None:
        self._workers = workers
        self._parts = tuple(parts)
        self._lock = lock
        self._on_exit = on_exit
        #: Parts the child could not import (part -> reason); filled by :meth:`start`.
        self.unavailable: dict[str, str] = {}
        #: Why the process is gone (``None`` while it runs); set under the lock.
        self.dead: Optional[str] = None
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._writer: Optional[threading.Thread] = None
        self._outgoing: queue.SimpleQueue[Optional[bytes]] = queue.SimpleQueue()
        self._streams: dict[int, ProcessSTTStream] = {}
        self._speakers: dict[int, Deliver] = {}
        self._next_id = 0
        self._closing = False

    @property
    def pid(self) -> Optional[int]:
        """The child's process id (``None`` before :meth:`start`)."""
        return None if self._proc is None else self._proc.pid

    def start(self) -> None:
        """Launch the child and wait for its models (blocking: call it on a thread).

        Raises:
            ModelIntegrityError: a model file is missing or was modified.
            ImportError: the child could not import the recogniser (a missing package).
            RuntimeError: the child exited before it was ready (with its exit status).
        """
        from .local_assets import ModelIntegrityError

        package_root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        for name, value in {**SAME_ON_EVERY_CPU, **NO_TELEMETRY}.items():
            if not env.get(name):  # unset, or set empty (which both libraries ignore)
                env[name] = value
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                f"{__package__}.speech_child",
                str(self._workers),
                ",".join(self._parts),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self._proc.stdout is not None
        assert self._proc.stdin is not None
        widen(self._proc.stdin)
        first = read_message(self._proc.stdout)
        if first is None or first[0] != "ready":
            status = self._exit_status() if first is None else ""
            self.close()
            if first is None:
                raise RuntimeError(f"the speech worker process exited while loading ({status})")
            kind, message = first[1], first[2]
            if kind == "ModelIntegrityError":
                raise ModelIntegrityError(message)
            if kind == "ImportError":
                raise ImportError(message)
            raise RuntimeError(f"the speech worker process failed to load: {kind}: {message}")
        self.unavailable = dict(first[1] or {})
        threading.Thread(target=self._read_replies, name="sayna-speech-in", daemon=True).start()
        self._writer = threading.Thread(
            target=self._write_frames,
            args=(self._proc.stdin,),
            name="sayna-speech-out",
            daemon=True,
        )
        self._writer.start()

    def send(self, message: tuple[Any, ...]) -> None:
        """Queue one message for the child; never blocks, never raises. A message to a
        child that has died is dropped: the reader thread reports the death to every
        stream and synthesis of this process."""
        if self.dead is None:
            self._outgoing.put(encode(message))

    def register(self, stream: ProcessSTTStream) -> int:
        """Route replies for a new stream to ``stream``; returns its id in this process.

        Raises:
            RuntimeError: the process is gone (its reason).
        """
        with self._lock:
            if self.dead is not None:
                raise RuntimeError(self.dead)
            sid = self._next_id
            self._next_id += 1
            self._streams[sid] = stream
        return sid

    def forget(self, sid: int) -> None:
        """Drop a closed stream's routing entry. Never raises."""
        with self._lock:
            self._streams.pop(sid, None)

    def speak(
        self, text: str, speaking_rate: float, sample_rate: int, audio_format: str, deliver: Deliver
    ) -> int:
        """Start synthesizing ``text``; never blocks. ``deliver`` is called on the reader
        thread with ``("audio", [chunk, ...])`` per sentence, then once with ``("end",
        error)`` (``None`` on success, the reason when synthesis failed or the process
        died). Returns the id for :meth:`stop_speaking`.

        Raises:
            RuntimeError: the process is gone (its reason).
        """
        with self._lock:
            if self.dead is not None:
                raise RuntimeError(self.dead)
            tid = self._next_id
            self._next_id += 1
            self._speakers[tid] = deliver
        self.send(("speak", tid, text, speaking_rate, sample_rate, audio_format))
        return tid

    def stop_speaking(self, tid: int) -> None:
        """Forget synthesis ``tid``; if it is still running, the child stops it at its
        next sentence. Never raises."""
        with self._lock:
            running = self._speakers.pop(tid, None) is not None
        if running:
            self.send(("stop", tid))

    def close(self) -> None:
        """Stop the child (closing its stdin ends it; killed after 5 s). Never raises."""
        proc = self._proc
        if proc is None or self._closing:
            return
        self._closing = True
        if self._writer is not None:
            self._outgoing.put(None)  # the writer closes the child's stdin: it exits
        elif proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._writer is None and proc.stdout is not None:
            proc.stdout.close()  # no reader thread owns it

    def _write_frames(self, pipe: IO[bytes]) -> None:
        while True:
            data = self._outgoing.get()
            batch = [data]
            while data is not None and not self._outgoing.empty():
                data = self._outgoing.get()
                batch.append(data)
            try:
                pipe.write(b"".join(item for item in batch if item is not None))
                pipe.flush()
                if data is None:
                    pipe.close()
                    return
            except (OSError, ValueError):
                return  # the reader thread sees the child's end and fails the streams

    def _read_replies(self) -> None:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        while True:
            try:
                message = read_message(proc.stdout)
            except Exception:  # a torn or foreign frame: the pipe cannot be trusted
                logger.exception("speech worker: unreadable reply; stopping the process")
                proc.kill()
                message = None
            if message is None:
                break
            try:
                self._route(message)
            except Exception:  # keep routing the other streams' replies
                logger.exception("speech worker: cannot route a reply")
        proc.stdout.close()
        reason = (
            "the speech worker was closed"
            if self._closing
            else f"the speech worker process exited ({self._exit_status()})"
        )
        with self._lock:
            self.dead = reason
            streams = list(self._streams.values())
            speakers = list(self._speakers.values())
            self._streams.clear()
            self._speakers.clear()
            outcome = self._on_exit(self, reason)
        for stream in streams:
            stream._lost(self, f"{reason}; {outcome}" if outcome else reason)
        for deliver in speakers:
            deliver(("end", reason))

    def _exit_status(self) -> str:
        """How the child ended: ``killed by SIGKILL``, ``exit status 1`` (waits up to
        5 s for it, then kills it)."""
        assert self._proc is not None
        try:
            code = self._proc.wait(5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            code = self._proc.wait()
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def _route(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "done":
            _, sid, seq, results, error, speaking = message
            with self._lock:
                stream = self._streams.get(sid)
            if stream is not None:
                stream._deliver(self, seq, results, error, speaking)
        elif kind == "audio":
            with self._lock:
                deliver = self._speakers.get(message[1])
            if deliver is not None:
                deliver(("audio", message[2]))
        elif kind == "spoken":
            with self._lock:
                deliver = self._speakers.pop(message[1], None)
            if deliver is not None:
                deliver(("end", message[2]))
