"""The speech worker process: Whisper recognition and Piper synthesis, serving the
server over its stdin/stdout (:mod:`.speech_ipc`).

Started by :class:`~.speech_worker.SpeechWorker` as ``python -m`` this module, with the
decoding threads and the parts to load as arguments. It lowers its own scheduling
priority (``nice`` :data:`NICENESS`), loads and verifies the models, answers
``("ready", unavailable)`` or ``("failed", kind, message)``, then serves until its stdin
closes. It ignores SIGINT: Ctrl-C in a terminal reaches the whole process group, and it
is the server's to handle (it closes the worker's stdin).

The child has a thread pool for recognition (CTranslate2 and ONNX Runtime release the
GIL, so two streams decode in parallel on two cores); each stream's frames are processed
in order by one job at a time, frames that queued meanwhile in one batch (a stream that
falls behind gets fewer interims, never a backlog of them). Syntheses run on a second
pool of :data:`TTS_THREADS` threads, so recognition never queues behind them.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import Any, Optional, Union

from .base import Transcript, TTSBudget, TTSTooLong
from .speech_ipc import read_message, write_message

if __name__ == "__main__":
    # Ctrl-C in a terminal sends SIGINT to the whole foreground process group, this
    # worker included: it printed a KeyboardInterrupt traceback over the server's
    # goodbye. The server handles Ctrl-C and ends the worker by closing its stdin, so
    # the worker ignores it from here on (before the models' imports, the long part).
    signal.signal(signal.SIGINT, signal.SIG_IGN)

__all__ = ["NICENESS", "TTS_THREADS", "main"]

#: How much lower the worker's scheduling priority is than the server's (Unix ``nice``).
NICENESS = 10
#: Synthesis threads in the child (as many as the server used before).
TTS_THREADS = 2


class _ChildStream:
    """One stream in the child: its recogniser and the frames not yet processed."""

    def __init__(self, recognizer: Any) -> None:
        self.recognizer = recognizer
        self.inbox: list[tuple[int, bytes, bool]] = []  # (seq, frame, finish)
        self.scheduled = False
        self.closed = False


def main(workers: int, parts: Sequence[str]) -> None:
    """Load the models of ``parts``, then serve the parent until stdin closes.

    Args:
        workers: recognition threads (Whisper decodes in parallel).
        parts: what to load, among ``"stt"`` (Whisper + Silero VAD) and ``"tts"`` (Piper).
            A part whose packages cannot be imported is reported as unavailable in the
            ``ready`` message; any other load failure (a model file that fails its
            digest check) is reported as ``failed`` and the process exits.
    """
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
        write_message(out, write_lock, ("failed", type(exc).__name__, str(exc)))
        return
    write_message(out, write_lock, ("ready", unavailable))
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
            speaking = bool(getattr(stream.recognizer, "in_speech", False))
            message = ("done", sid, batch[-1][0], results, error, speaking)
            write_message(out, write_lock, message)

    def speak(tid: int, text: str, rate: float, sample_rate: int, audio_format: str) -> None:
        from .local_tts import _Chunker

        def running() -> bool:
            with guard:
                return tid not in stopped

        error: Optional[Union[str, TTSTooLong]] = None
        try:
            chunker = _Chunker(piper.sample_rate, sample_rate, audio_format)
            budget = TTSBudget(sample_rate)

            def sink(samples: Any) -> bool:
                if not running():
                    return False
                budget.spend(len(samples) / piper.sample_rate)  # raises past the cap
                chunks = chunker.push(samples)
                if chunks:
                    write_message(out, write_lock, ("audio", tid, chunks))
                return True

            piper.renderer(text, rate)(sink)
            if running():
                import numpy as np

                tail = chunker.push(np.zeros(0, dtype=np.int16), last=True)
                if tail:
                    write_message(out, write_lock, ("audio", tid, tail))
        except TTSTooLong as exc:  # sent as it is: its text is the client's
            error = exc
        except Exception as exc:  # reported to the request as a failed synthesis
            error = f"{type(exc).__name__}: {exc}"
        finally:
            with guard:
                speaking.discard(tid)
                stopped.discard(tid)
        write_message(out, write_lock, ("spoken", tid, error))

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
        message = read_message(source)
        if message is None:
            break
        kind, sid = message[0], message[1]
        if kind == "open":
            if models is None:
                write_message(
                    out, write_lock, ("done", sid, 0, [], "this worker does not run Whisper", False)
                )
                continue
            try:
                recognizer: Any = WhisperRecognizer(message[2], models)
            except Exception as exc:
                write_message(
                    out, write_lock, ("done", sid, 0, [], f"{type(exc).__name__}: {exc}", False)
                )
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
                write_message(out, write_lock, ("spoken", sid, "this worker does not run Piper"))
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
    main(
        int(sys.argv[1]) if len(sys.argv) > 1 else 2,
        sys.argv[2].split(",") if len(sys.argv) > 2 else ["stt"],
    )
