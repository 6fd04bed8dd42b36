"""The ``local`` engine: real offline speech with espeak-ng (TTS) and pocketsphinx (STT).

Needs the ``local`` extra (``espeakng-loader``, ``pocketsphinx``, ``soxr``, ``numpy``);
importing this module without it raises :class:`ImportError` with an install hint.
Both libraries ship their own data, so the engine works without network access or
system packages. Details live next to this module: :mod:`.local_tts` (espeak-ng via
ctypes) and :mod:`.local_stt` (pocketsphinx with its en-US model).
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import AsyncIterator

from .base import Engine, STTParams, STTStream, TTSRequest, Voice
from .local_stt import PocketsphinxStream
from .local_tts import EspeakSynthesizer

__all__ = ["LocalEngine"]


class LocalEngine(Engine):
    """Offline engine: every session and ``/speak`` call gets real synthesis and
    recognition, whatever provider name it asked for.

    * ``voices()`` → ``{"local": [...]}``: the ~140 espeak-ng voices (ids such as
      ``en-us``, ``en-gb``, ``fr-fr``) plus ``en-us+f2``/``en-gb+f2`` female variants.
    * ``synthesize()`` streams 20 ms chunks; see :meth:`EspeakSynthesizer.synthesize`
      for voice mapping, formats and rates.
    * ``open_stt()`` starts a :class:`PocketsphinxStream` (one ~90 MB decoder per
      stream, loaded in the background as the stream opens).

    Blocking work runs on two executors owned by the engine: one thread for espeak
    (the library is process-global, so more would only queue on its lock) and up to
    four for decoding. Construction initialises espeak-ng (a few ms) and raises
    :class:`RuntimeError` if the bundled library cannot be loaded.
    """

    name = "local"

    def __init__(self) -> None:
        self._tts_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="sayna-espeak"
        )
        try:
            self._tts = EspeakSynthesizer(self._tts_executor)
        except BaseException:
            self._tts_executor.shutdown(wait=False)
            raise
        self._voices = self._tts.voices()
        self._stt_executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=min(4, max(2, os.cpu_count() or 2)),
            thread_name_prefix="sayna-pocketsphinx",
        )

    def voices(self) -> dict[str, list[Voice]]:
        return {"local": list(self._voices)}

    def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        return self._tts.synthesize(request)

    def open_stt(self, params: STTParams) -> STTStream:
        """Start a recogniser for one session.

        Raises:
            ValueError: non-positive ``sample_rate`` or ``channels``.
            RuntimeError: the engine was closed.
        """
        return PocketsphinxStream(params, self._stt_executor)

    def close(self) -> None:
        """Stop the worker threads; queued work is cancelled, running work finishes.

        Optional (idle workers exit with the interpreter); afterwards ``synthesize``
        and ``open_stt`` raise :class:`RuntimeError`.
        """
        self._tts_executor.shutdown(wait=False, cancel_futures=True)
        self._stt_executor.shutdown(wait=False, cancel_futures=True)
