"""Text-to-speech for the ``local`` engine: Piper's ``en_US-joe-medium`` voice.

``piper-tts`` phonemizes with its built-in espeak-ng and runs the voice's VITS model on
ONNX Runtime (which releases the GIL). Piper splits the text into sentences and renders
one at a time, so the first sentence's audio (60-85 ms of work) is streamed before the
rest is synthesized. Audio is 22,050 Hz; :func:`~.local_tts.stream_rendered` resamples
it to the request's rate, cuts 20 ms chunks and encodes them.

Licences: ``piper-tts`` is GPL-3.0-or-later (as is the espeak-ng it bundles); the voice
is published under MIT with a CC0 dataset, fine-tuned from the "lessac" voice whose
dataset has its own terms (see ``docs/local-engine.md``). Importing this module imports
piper and onnxruntime (~0.3 s): the engine does it in a worker thread.
"""

from __future__ import annotations

import concurrent.futures
import json
import math
from collections.abc import AsyncIterator
from typing import Callable

import onnxruntime
from piper import PiperVoice, SynthesisConfig
from piper.config import PiperConfig

from .base import TTSRequest, check_tts_rate
from .local_assets import PIPER_VOICE, read_verified
from .local_tts import Sink, apply_pronunciations, stream_rendered

__all__ = ["PiperSynthesizer"]


class PiperSynthesizer:
    """Turns :class:`TTSRequest` objects into audio with the Piper joe voice.

    Construction checks the voice files against their pinned digests and loads the
    model (about 0.3 s): do it in a worker thread.

    Args:
        executor: where synthesis runs (ONNX Runtime releases the GIL, so several
            workers synthesize in parallel).

    Raises:
        ModelIntegrityError: a voice file is missing or was modified.
    """

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        model, config = (read_verified(item) for item in PIPER_VOICE)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 2  # first audio of a sentence sooner
        options.inter_op_num_threads = 1
        self._voice = PiperVoice(
            config=PiperConfig.from_dict(json.loads(config)),
            session=onnxruntime.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            ),
        )
        self.sample_rate: int = self._voice.config.sample_rate
        self._length_scale = float(self._voice.config.length_scale or 1.0)
        self._executor = executor

    async def synthesize(self, request: TTSRequest) -> AsyncIterator[bytes]:
        """Yield ``request`` as audio, sentence by sentence, in 20 ms chunks.

        Pronunciations are applied first; blank text yields nothing. ``speaking_rate``
        scales phoneme durations (clamped to 0.25-4.0). Formats as the espeak
        synthesizer: raw pcm16 for ``linear16`` and unknown formats, G.711 for
        ``mulaw`` and ``alaw``, one buffered clip with a header for ``wav``.

        Raises:
            ValueError: ``sample_rate`` is not a positive rate up to 384 kHz.
        """
        check_tts_rate(request.sample_rate)
        text = apply_pronunciations(request.text, request.pronunciations)
        if not text.strip():
            return
        async for chunk in stream_rendered(
            self._executor,
            self.renderer(text, request.speaking_rate),
            self.sample_rate,
            request.sample_rate,
            request.audio_format.strip().lower(),
        ):
            yield chunk

    def renderer(self, text: str, speaking_rate: float) -> Callable[[Sink], None]:
        """A blocking function that renders ``text`` sentence by sentence into ``sink``
        (int16 at :attr:`sample_rate`; ``sink`` returning False stops it at the next
        sentence). ``speaking_rate`` scales phoneme durations (clamped to 0.25-4.0;
        non-finite counts as 1.0). Used by :meth:`synthesize` and by the speech worker
        process, which resamples and encodes the audio itself."""
        rate = speaking_rate if math.isfinite(speaking_rate) else 1.0
        config = SynthesisConfig(length_scale=self._length_scale / min(max(rate, 0.25), 4.0))
        voice = self._voice

        def render(sink: Sink) -> None:
            for sentence in voice.synthesize(text, config):
                if not sink(sentence.audio_int16_array):
                    return

        return render
