"""Whisper recognition and Piper synthesis in a worker process, so neither competes with
the server's event loop for the GIL or, at a lower scheduling priority, for the CPU.

Why a process: measured with 20 concurrent streams on 2 cores, the loop's lateness came
from CPU contention and the Python glue around the models (VAD chunking, features), not
only from the models themselves, which release the GIL. In a separate process at
``nice`` :data:`NICENESS` the loop's thread wins the CPU whenever it has work, and no
Python code of the recognisers runs in the server's interpreter. The same held for Piper
on threads of the server (phonemizer, resampling and the Python around ONNX Runtime):
4 concurrent ``/speak`` requests stalled the loop by ~30 ms, so synthesis runs here too.

Wire format on the child's stdin/stdout: frames of a 4-byte big-endian length and a
pickled tuple (both ends are this module, started by the engine itself; nothing else
writes to these pipes).

* parent -> child: ``("open", sid, STTParams)``, ``("feed", sid, seq, bytes)``,
  ``("finish", sid, seq)``, ``("close", sid)``; ``("speak", tid, text, speaking_rate,
  sample_rate, audio_format)``, ``("stop", tid)``;
* child -> parent: ``("ready", {part: reason})`` (the parts that could not be imported)
  or ``("failed", kind, message)`` once, then ``("done", sid, seq, [Transcript, ...],
  error)`` per processed job, in order per stream (``seq`` is the highest sequence number
  the job consumed); per synthesis ``("audio", tid, [chunk, ...])`` for each sentence
  (resampled, encoded, 20 ms chunks) and one ``("spoken", tid, error)`` at its end.

The child has a thread pool (CTranslate2 and ONNX Runtime release the GIL, so two
streams decode in parallel on two cores); each stream's frames are processed in order by
one job at a time, frames that queued meanwhile in one batch (a stream that falls behind
gets fewer interims, never a backlog of them). Syntheses run on a second pool of two
threads, so recognition never queues behind them. The child exits when its stdin closes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any, Callable, Optional

from .base import STTParams, STTStream, Transcript, TTSRequest, wav_header
from .local_tts import apply_pronunciations

__all__ = ["NICENESS", "PARTS", "ProcessSTTStream", "ProcessSynthesizer", "SpeechWorker"]

#: What a worker can run: ``"stt"`` (Whisper + Silero VAD) and ``"tts"`` (Piper).
PARTS = ("stt", "tts")
#: Synthesis threads in the child (as many as the server used before).
TTS_THREADS = 2

logger = logging.getLogger(__name__)

#: How much lower the worker's scheduling priority is than the server's (Unix ``nice``).
NICENESS = 10
_HEADER = struct.Struct(">I")


def _frame(message: tuple[Any, ...]) -> bytes:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def _write(stream: IO[bytes], lock: threading.Lock, message: tuple[Any, ...]) -> None:
    data = _frame(message)
    with lock:
        stream.write(data)
        stream.flush()


def _widen(pipe: IO[bytes]) -> None:
    """Give a pipe 1 MiB of buffer where Linux allows it (default 64 KiB)."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, ValueError):
        pass


def _read(stream: IO[bytes]) -> Optional[tuple[Any, ...]]:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    message: tuple[Any, ...] = pickle.loads(body)
    return message


class SpeechWorker:
    """The parent's handle on one worker process (shared by all of an engine's streams).

    :meth:`start` (blocking; call it in a worker thread) launches the process and waits
    until it has loaded and verified the models. A reader thread then routes the child's
    replies to the streams and syntheses, and a writer thread sends the frames, so the
    event loop never blocks on a full pipe (it only queues).

    Args:
        workers: the child's decoding threads.
        parts: what the child loads, from :data:`PARTS`.

    Raises:
        ValueError: an unknown part.
    """

    def __init__(self, workers: int, parts: Sequence[str] = ("stt",)) -> None:
        unknown = sorted(set(parts) - set(PARTS))
        if unknown or not parts:
            raise ValueError(f"speech worker parts must be among {PARTS}, got {list(parts)}")
        self._workers = workers
        self._parts = tuple(parts)
        #: Parts the child could not import (part -> reason); filled by :meth:`start`.
        self.unavailable: dict[str, str] = {}
        self._speakers: dict[int, Callable[[tuple[str, Any]], None]] = {}
        self._next_tid = 0
        self._proc: Optional[subprocess.Popen[bytes]] = None
        self._writer: Optional[threading.Thread] = None
        self._outgoing: queue.SimpleQueue[Optional[bytes]] = queue.SimpleQueue()
        self._streams: dict[int, ProcessSTTStream] = {}
        self._next_sid = 0
        self._lock = threading.Lock()
        self._dead: Optional[str] = None

    def start(self) -> None:
        """Launch the child and wait for its models.

        Raises:
            ModelIntegrityError: a model file is missing or was modified.
            ImportError: the child could not import the recogniser (a missing package).
            RuntimeError: the child exited before it was ready.
        """
        from .local_assets import ModelIntegrityError

        package_root = str(Path(__file__).resolve().parents[3])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self._proc = subprocess.Popen(
            [sys.executable, "-m", __name__, str(self._workers), ",".join(self._parts)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        assert self._proc.stdout is not None
        assert self._proc.stdin is not None
        _widen(self._proc.stdin)
        first = _read(self._proc.stdout)
        if first is None or first[0] != "ready":
            self.close()
            if first is None:
                raise RuntimeError("the speech worker process exited while loading")
            kind, message = first[1], first[2]
            if kind == "ModelIntegrityError":
                raise ModelIntegrityError(message)
            if kind == "ImportError":
                raise ImportError(message)
            raise RuntimeError(f"the speech worker process failed to load: {message}")
        self.unavailable = dict(first[1] or {})
        threading.Thread(target=self._read_replies, name="sayna-stt-replies", daemon=True).start()
        self._writer = threading.Thread(
            target=self._write_frames, args=(self._proc.stdin,), name="sayna-stt-out", daemon=True
        )
        self._writer.start()

    def runs(self, part: str) -> bool:
        """True when the started worker loaded ``part`` (``"stt"`` or ``"tts"``)."""
        return part in self._parts and part not in self.unavailable

    @property
    def pid(self) -> Optional[int]:
        """The worker process's id (``None`` before :meth:`start` and after :meth:`close`)."""
        return None if self._proc is None else self._proc.pid

    def open(self, params: STTParams) -> ProcessSTTStream:
        """A new recognition stream in the worker.

        Raises:
            RuntimeError: the worker has exited.
        """
        with self._lock:
            if self._dead is not None:
                raise RuntimeError(self._dead)
            sid = self._next_sid
            self._next_sid += 1
            stream = ProcessSTTStream(self, sid)
            self._streams[sid] = stream
        self.send(("open", sid, params))
        return stream

    def speak(
        self,
        text: str,
        speaking_rate: float,
        sample_rate: int,
        audio_format: str,
        deliver: Callable[[tuple[str, Any]], None],
    ) -> int:
        """Start synthesizing ``text`` in the worker; never blocks.

        ``deliver`` is called on the reader thread with ``("audio", [chunk, ...])`` per
        sentence and then once with ``("end", error)`` (``error`` is ``None`` on
        success, a message when synthesis failed or the worker exited). Returns the id
        to pass to :meth:`stop_speaking`.

        Raises:
            RuntimeError: the worker has exited or was closed.
        """
        with self._lock:
            if self._dead is not None:
                raise RuntimeError(self._dead)
            tid = self._next_tid
            self._next_tid += 1
            self._speakers[tid] = deliver
        try:
            self.send(("speak", tid, text, speaking_rate, sample_rate, audio_format))
        except RuntimeError:
            with self._lock:
                self._speakers.pop(tid, None)
            raise
        return tid

    def stop_speaking(self, tid: int) -> None:
        """Forget synthesis ``tid``; if it is still running, the worker stops it at its
        next sentence. Never raises."""
        with self._lock:
            running = self._speakers.pop(tid, None) is not None
        if running:
            try:
                self.send(("stop", tid))
            except RuntimeError:
                pass  # the worker is gone: nothing to stop

    def send(self, message: tuple[Any, ...]) -> None:
        """Queue one message for the child; never blocks.

        Raises:
            RuntimeError: the worker has exited or was closed.
        """
        if self._dead is not None or self._proc is None:
            raise RuntimeError(self._dead or "the speech worker is not running")
        self._outgoing.put(_frame(message))

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

    def forget(self, sid: int) -> None:
        """Drop a closed stream's routing entry."""
        with self._lock:
            self._streams.pop(sid, None)

    def _read_replies(self) -> None:
        proc = self._proc
        assert proc is not None
        assert proc.stdout is not None
        while True:
            try:
                message = _read(proc.stdout)
            except (OSError, ValueError, pickle.UnpicklingError):
                message = None
            if message is None:
                break
            try:
                self._route(message)
            except Exception:  # keep routing the other streams' replies
                logger.exception("speech worker: cannot route a reply")
        with self._lock:
            self._dead = "the speech worker process exited"
            streams = list(self._streams.values())
            speakers = list(self._speakers.values())
            self._speakers.clear()
        for stream in streams:
            stream._deliver(None, [], self._dead)
        for deliver in speakers:
            deliver(("end", self._dead))

    def _route(self, message: tuple[Any, ...]) -> None:
        kind = message[0]
        if kind == "done":
            _, sid, seq, results, error = message
            with self._lock:
                stream = self._streams.get(sid)
            if stream is not None:
                stream._deliver(seq, results, error)
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

    def close(self) -> None:
        """Stop the child (closing its stdin ends it; killed after 5 s)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if self._dead is None:
            self._dead = "the speech worker was closed"
        if self._writer is not None:
            self._outgoing.put(None)  # the writer closes the child's stdin: it exits
        elif proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


class ProcessSTTStream(STTStream):
    """One session's recogniser in the :class:`SpeechWorker`.

    Same contract as :class:`~.threaded.ThreadedSTTStream`: ``feed`` returns once the
    worker has processed the frame (frames queued meanwhile are processed together);
    the session feeds it from a background task (:attr:`feed_may_wait`), so it keeps
    reading its socket while the worker decodes. Call ``feed``/``finish`` from one task
    at a time. Empty frames are ignored.
    """

    feed_may_wait = True

    def __init__(self, worker: SpeechWorker, sid: int) -> None:
        self._worker = worker
        self._sid = sid
        self._lock = threading.Lock()
        self._seq = 0
        self._done = 0
        self._outbox: list[Transcript] = []
        self._error: Optional[str] = None
        self._waiters: list[tuple[int, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []
        self._closed = False

    async def feed(self, audio: bytes) -> list[Transcript]:
        """Send one client frame, wait until the worker has decoded it, return the new
        results. A cancelled ``feed`` leaves the frame queued; its results come with the
        next call.

        Raises:
            RuntimeError: the recogniser failed, or the worker process exited.
        """
        if self._closed:
            return []
        self._raise_error()
        if audio:
            with self._lock:
                self._seq += 1
                seq = self._seq
            self._worker.send(("feed", self._sid, seq, bytes(audio)))
            await self._wait_for(seq)
        return self._take()

    async def finish(self) -> list[Transcript]:
        """Wait until every sent frame is decoded and the open utterance is flushed.

        Raises:
            RuntimeError: the recogniser failed, or the worker process exited.
        """
        if self._closed:
            return []
        with self._lock:
            self._seq += 1
            seq = self._seq
        self._worker.send(("finish", self._sid, seq))
        await self._wait_for(seq)
        return self._take()

    def close(self) -> None:
        """Stop recognising; the worker frees the stream. Later calls return no results."""
        if self._closed:
            return
        self._closed = True
        self._worker.forget(self._sid)
        try:
            self._worker.send(("close", self._sid))
        except RuntimeError:
            pass  # the worker is gone: nothing to free
        self._deliver(None, [], None)

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise RuntimeError(error)

    def _take(self) -> list[Transcript]:
        self._raise_error()
        with self._lock:
            results, self._outbox = self._outbox, []
        return results

    async def _wait_for(self, seq: int) -> None:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if self._done >= seq or self._error is not None or self._closed:
                return
            self._waiters.append((seq, loop, future))
        await future

    def _deliver(self, seq: Optional[int], results: list[Transcript], error: Optional[str]) -> None:
        """Reader thread: a job's results (``seq None``: the worker is gone or closed)."""
        with self._lock:
            self._outbox.extend(results)
            if error is not None and self._error is None:
                self._error = error
            if seq is None:
                self._done = self._seq
            else:
                self._done = max(self._done, seq)
            ready = [w for w in self._waiters if w[0] <= self._done or seq is None or error]
            self._waiters = [w for w in self._waiters if w not in ready]
        for _, loop, future in ready:
            try:
                loop.call_soon_threadsafe(_resolve, future)
            except RuntimeError:
                pass  # that loop is closed: nobody is waiting any more


class ProcessSynthesizer:
    """The Piper voice in the :class:`SpeechWorker` (started with the ``"tts"`` part).

    Same contract as :class:`~.piper_tts.PiperSynthesizer`; the worker resamples and
    encodes, so the server's process only relays finished 20 ms chunks.

    Args:
        worker: a started worker that :meth:`~SpeechWorker.runs` ``"tts"``.
    """

    def __init__(self, worker: SpeechWorker) -> None:
        self._worker = worker

    async def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield ``request`` as audio, sentence by sentence, in 20 ms chunks (the first
        sentence's audio arrives before the rest is synthesized).

        Pronunciations are applied first; blank text yields nothing. Formats: raw pcm16
        for ``linear16`` and unknown formats, G.711 for ``mulaw``, one buffered clip with
        a header for ``wav``. Closing the generator early (``aclose()`` or
        cancellation) stops the worker's synthesis at its next sentence.

        Raises:
            ValueError: ``sample_rate`` is not a positive rate up to 384 kHz.
            RuntimeError: synthesis failed in the worker, or the worker process exited
                (before or during synthesis).
        """
        if not 0 < request.sample_rate <= 384_000:
            raise ValueError(f"unsupported sample_rate {request.sample_rate}")
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

        tid = self._worker.speak(
            text, request.speaking_rate, request.sample_rate, audio_format, deliver
        )
        buffered: list[bytes] = []
        try:
            while True:
                kind, payload = await replies.get()
                if kind == "end":
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
            self._worker.stop_speaking(tid)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# --- the child process -------------------------------------------------------------------


class _ChildStream:
    """One stream in the child: its recogniser and the frames not yet processed."""

    def __init__(self, recognizer: Any) -> None:
        self.recognizer = recognizer
        self.inbox: list[tuple[int, bytes, bool]] = []  # (seq, frame, finish)
        self.scheduled = False
        self.closed = False


def _child_main(workers: int, parts: Sequence[str]) -> None:
    """Load the models of ``parts``, then serve the parent until stdin closes."""
    out = sys.stdout.buffer
    source = sys.stdin.buffer
    write_lock = threading.Lock()
    try:
        os.nice(NICENESS)
    except (AttributeError, OSError):
        pass  # no nice on this platform: same priority
    unavailable: dict[str, str] = {}
    models: Any = None
    piper: Any = None
    tts_pool = concurrent.futures.ThreadPoolExecutor(max_workers=TTS_THREADS)
    try:
        if "stt" in parts:
            try:
                from .whisper_stt import SpeechModels, WhisperRecognizer

                models = SpeechModels(workers)
            except ImportError as exc:  # the parent falls back for this part
                unavailable["stt"] = str(exc)
        if "tts" in parts:
            try:
                from .piper_tts import PiperSynthesizer

                piper = PiperSynthesizer(tts_pool)
            except ImportError as exc:
                unavailable["tts"] = str(exc)
    except BaseException as exc:  # reported to the parent, which raises it
        _write(out, write_lock, ("failed", type(exc).__name__, str(exc)))
        return
    _write(out, write_lock, ("ready", unavailable))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers)
    speaking: set[int] = set()  # syntheses running (guarded by ``guard``)
    stopped: set[int] = set()
    streams: dict[int, _ChildStream] = {}
    guard = threading.Lock()

    def run(sid: int, stream: _ChildStream) -> None:
        while True:
            with guard:
                batch, stream.inbox = stream.inbox, []
                if not batch or stream.closed:
                    stream.scheduled = False
                    return
            results: list[Transcript] = []
            error: Optional[str] = None
            data = b"".join(frame for _, frame, _ in batch)
            try:
                if data:
                    stream.recognizer.process(data, results)
                if any(finish for _, _, finish in batch):
                    stream.recognizer.finish(results)
            except Exception as exc:  # reported to the session as a failed frame
                error = f"{type(exc).__name__}: {exc}"
            _write(out, write_lock, ("done", sid, batch[-1][0], results, error))

    def speak(tid: int, text: str, rate: float, sample_rate: int, audio_format: str) -> None:
        from .local_tts import _Chunker

        def running() -> bool:
            with guard:
                return tid not in stopped

        error: Optional[str] = None
        try:
            chunker = _Chunker(piper.sample_rate, sample_rate, audio_format)

            def sink(samples: Any) -> bool:
                if not running():
                    return False
                chunks = chunker.push(samples)
                if chunks:
                    _write(out, write_lock, ("audio", tid, chunks))
                return True

            piper.renderer(text, rate)(sink)
            if running():
                import numpy as np

                tail = chunker.push(np.zeros(0, dtype=np.int16), last=True)
                if tail:
                    _write(out, write_lock, ("audio", tid, tail))
        except Exception as exc:  # reported to the request as a failed synthesis
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with guard:
                speaking.discard(tid)
                stopped.discard(tid)
        _write(out, write_lock, ("spoken", tid, error))

    def enqueue(sid: int, item: tuple[int, bytes, bool]) -> None:
        with guard:
            stream = streams.get(sid)
            if stream is None:
                return
            stream.inbox.append(item)
            if stream.scheduled:
                return
            stream.scheduled = True
        pool.submit(run, sid, stream)

    while True:
        message = _read(source)
        if message is None:
            break
        kind, sid = message[0], message[1]
        if kind == "open":
            if models is None:
                _write(out, write_lock, ("done", sid, 0, [], "this worker does not run Whisper"))
                continue
            try:
                recognizer: Any = WhisperRecognizer(message[2], models)
            except Exception as exc:
                _write(out, write_lock, ("done", sid, 0, [], f"{type(exc).__name__}: {exc}"))
                continue
            with guard:
                streams[sid] = _ChildStream(recognizer)
        elif kind == "feed":
            enqueue(sid, (message[2], message[3], False))
        elif kind == "finish":
            enqueue(sid, (message[2], b"", True))
        elif kind == "close":
            with guard:
                stream = streams.pop(sid, None)
                if stream is not None:
                    stream.closed = True
        elif kind == "speak":
            if piper is None:
                _write(out, write_lock, ("spoken", sid, "this worker does not run Piper"))
                continue
            with guard:
                speaking.add(sid)
            tts_pool.submit(speak, sid, *message[2:])
        elif kind == "stop":
            with guard:
                if sid in speaking:
                    stopped.add(sid)
    pool.shutdown(wait=False, cancel_futures=True)
    tts_pool.shutdown(wait=False, cancel_futures=True)


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    _child_main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 2,
        sys.argv[2].split(",") if len(sys.argv) > 2 else ["stt"],
    )
