"""Speech-to-text for the ``local`` engine: pocketsphinx and its bundled en-US model.

Pipeline per stream, all in a worker thread::

    client frames ─► align (carry odd bytes) ─► mu-law decode ─► downmix
      ─► soxr stream to 16 kHz ─► Endpointer (VAD, 30 ms frames) ─► Decoder

Results follow Sayna's shape (protocol §6.8): interim hypotheses every ~400 ms of
speech when the text changed, and a final when the endpointer sees the utterance end
(~300 ms of silence), held until 700 ms of silence have passed since the end of the
speech and then sent speech-final with its text, as real providers do (when speech
resumes first, it goes out as a final that is not speech-final). All timing is audio
time, never wall-clock time, so results are reproducible however fast the frames arrive.

pocketsphinx holds the GIL while it decodes (about 8 ms of CPU per 20 ms of audio on
a 2-core test machine), so decoding in threads keeps the event loop running but not
stall-free: expect loop latencies of a few tens of ms while streams are active.
"""

from __future__ import annotations

import concurrent.futures
import logging
import re
from typing import Any, Callable, Optional

try:
    import numpy as np
    import numpy.typing as npt
    import pocketsphinx
    import soxr
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the local engine needs the optional dependencies: pip install 'sayna-client[local]'"
    ) from exc

from ...protocol.encodings import LOCAL_ENGINE_ENCODINGS, canonical
from .base import STTParams, Transcript, check_stt_rate, g711_decoder
from .threaded import ThreadedSTTStream

__all__ = ["PocketsphinxStream", "Recognizer", "new_decoder"]

logger = logging.getLogger(__name__)

#: The bundled acoustic model is 16 kHz; everything is resampled to it.
DECODER_RATE = 16_000
#: Speech audio between two interim checks.
INTERIM_INTERVAL_S = 0.4
#: Silence after the end of speech before the speech-final is emitted.
SPEECH_FINAL_SILENCE_S = 0.7
#: Longest utterance decoded in one piece: bounds end-of-utterance work (which holds
#: the GIL) and gives continuous talkers a final now and then.
MAX_UTTERANCE_S = 10.0
#: Confidence of interims and of finals without word posteriors.
DEFAULT_CONFIDENCE = 0.9


Int16Array = npt.NDArray[np.int16]


def new_decoder() -> Any:
    """Load a pocketsphinx decoder with the bundled en-US model (~0.6 s, ~90 MB).

    ``fwdflat`` is off: that second pass runs inside ``end_utt`` with the GIL held
    (about 50 ms per second of speech) and did not improve accuracy on our tests.
    """
    return pocketsphinx.Decoder(samprate=DECODER_RATE, fwdflat=False, loglevel="ERROR")


def _is_word(token: str) -> bool:
    # Fillers from the model's noisedict: <s>, </s>, <sil>, [NOISE], [SPEECH].
    return not token.startswith(("<", "["))


class Recognizer:
    """The synchronous state of one recognition stream.

    Not thread-safe and CPU heavy: a :class:`PocketsphinxStream` calls it from one
    worker thread at a time. Results are appended to the ``out`` lists passed in.

    Args:
        params: what the client sends (rate, channels, ``linear16`` or ``mulaw``).
        load_decoder: returns a fresh pocketsphinx decoder; called on first speech.
    """

    def __init__(self, params: STTParams, load_decoder: Callable[[], Any]) -> None:
        check_stt_rate(params.sample_rate)
        if params.channels <= 0:
            raise ValueError(f"unsupported channel count {params.channels}")
        encoding = canonical(params.encoding)
        decode = g711_decoder(params.encoding)
        #: A G.711 byte -> its sample (None: 16-bit PCM), from the shared decoders.
        self._g711: Optional[Int16Array] = (
            None if decode is None else np.frombuffer(decode(bytes(range(256))), dtype="<i2")
        )
        if encoding not in LOCAL_ENGINE_ENCODINGS:
            logger.warning(
                "local STT cannot decode %r audio; reading it as linear16", params.encoding
            )
        self._rate = params.sample_rate
        self._channels = params.channels
        self._align = params.channels * (2 if self._g711 is None else 1)
        self._punctuate = params.punctuation
        self._load_decoder = load_decoder
        self._decoder: Any = None
        self._reset_input()

    def _reset_input(self) -> None:
        self._carry = b""
        self._resampler: Any = (
            soxr.ResampleStream(self._rate, DECODER_RATE, 1, dtype="int16", quality="HQ")
            if self._rate != DECODER_RATE
            else None
        )
        self._endpointer = pocketsphinx.Endpointer(sample_rate=DECODER_RATE)
        self._frame_bytes: int = self._endpointer.frame_bytes
        self._frame_seconds = float(self._endpointer.frame_length)
        self._pcm = bytearray()
        self._clock = 0.0  # seconds of 16 kHz audio given to the endpointer
        self._in_utterance = False
        self._utterance_seconds = 0.0
        self._next_interim = INTERIM_INTERVAL_S
        self._last_interim = ""
        # The last final of the turn, held until the turn ends (then sent speech-final).
        self._held: Optional[Transcript] = None
        self._speech_end = 0.0

    @property
    def in_speech(self) -> bool:
        """Inside an utterance, or after one whose speech-final is not sent yet."""
        return self._in_utterance or self._held is not None

    def process(self, data: bytes, out: list[Transcript]) -> None:
        """Consume client bytes of any length (a partial sample is carried over)."""
        data = self._carry + data
        usable = len(data) - len(data) % self._align
        self._carry = data[usable:]
        if usable:
            self._push(self._to_mono(data[:usable]), out)

    def _to_mono(self, data: bytes) -> Int16Array:
        if self._g711 is not None:
            samples: Int16Array = self._g711[np.frombuffer(data, dtype=np.uint8)]
        else:
            samples = np.frombuffer(data, dtype="<i2").astype(np.int16)
        if self._channels > 1:
            frames = samples.reshape(-1, self._channels).astype(np.int32)
            samples = (frames.sum(axis=1) // self._channels).astype(np.int16)
        return samples

    def _push(self, samples: Int16Array, out: list[Transcript], last: bool = False) -> None:
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        self._pcm += samples.astype("<i2", copy=False).tobytes()
        size = self._frame_bytes
        while len(self._pcm) >= size:
            frame = bytes(self._pcm[:size])
            del self._pcm[:size]
            self._step(frame, out)

    def _step(self, frame: bytes, out: list[Transcript]) -> None:
        speech: Optional[bytes] = self._endpointer.process(frame)
        self._clock += self._frame_seconds
        if speech is not None:
            self._decode(speech, out)
            if not self._endpointer.in_speech:
                self._end_utterance(out)
                self._speech_end = float(self._endpointer.speech_end)
        if (
            self._held is not None
            and not self._in_utterance
            and self._clock - self._speech_end >= SPEECH_FINAL_SILENCE_S
        ):
            held, self._held = self._held, None
            out.append(Transcript.speech_final(held.transcript, held.confidence))

    def _decode(self, speech: bytes, out: list[Transcript], interims: bool = True) -> None:
        if self._decoder is None:
            self._decoder = self._load_decoder()
        if not self._in_utterance:
            if self._held is not None:
                # The talker went on: the held final ends a segment, not the turn.
                out.append(self._held)
                self._held = None
            self._decoder.start_utt()
            self._in_utterance = True
            self._utterance_seconds = 0.0
            self._next_interim = INTERIM_INTERVAL_S
            self._last_interim = ""
        self._decoder.process_raw(speech, False, False)
        self._utterance_seconds += len(speech) / (2 * DECODER_RATE)
        if self._utterance_seconds >= MAX_UTTERANCE_S:
            self._end_utterance(out)
        elif interims and self._utterance_seconds >= self._next_interim:
            self._next_interim += INTERIM_INTERVAL_S
            text = self._hypothesis()
            if text and text != self._last_interim:
                self._last_interim = text
                out.append(
                    Transcript(
                        self._format(text, final=False),
                        is_final=False,
                        is_speech_final=False,
                        confidence=DEFAULT_CONFIDENCE,
                    )
                )

    def _hypothesis(self) -> str:
        hyp = self._decoder.hyp()
        return str(hyp.hypstr).strip() if hyp is not None else ""

    def _end_utterance(self, out: list[Transcript]) -> None:
        self._decoder.end_utt()
        self._in_utterance = False
        text = self._hypothesis()
        if not text:
            return  # noise: Sayna never sends empty finals
        # Held until SPEECH_FINAL_SILENCE_S of silence (then speech-final, with its text,
        # as real providers send it) or until speech resumes (then a segment final).
        self._held = Transcript.segment_final(self._format(text, final=True), self._confidence())

    def _confidence(self) -> float:
        """Mean posterior of the recognised words (fillers excluded), from the lattice."""
        probabilities = [float(seg.prob) for seg in self._decoder.seg() if _is_word(seg.word)]
        if not probabilities:
            return DEFAULT_CONFIDENCE
        mean = sum(probabilities) / len(probabilities)
        return round(min(max(mean, 0.0), 1.0), 3)

    def _format(self, text: str, final: bool) -> str:
        """Approximate a cloud provider's punctuation when the session asked for it:
        sentence case, capital "I", and a full stop on finals."""
        if not self._punctuate:
            return text
        text = re.sub(r"\bi\b", "I", text)
        text = text[:1].upper() + text[1:]
        return f"{text}." if final else text

    def finish(self, out: list[Transcript]) -> None:
        """Flush everything buffered — the resampler tail, the endpointer's pending
        speech and the open utterance — into a final (when its text is not empty).

        The end of input ends the turn: its last final is sent speech-final, with its
        text. The recogniser then starts over as if new,
        keeping its decoder (and the channel normalisation it learned)."""
        if self._resampler is not None:
            self._push(np.zeros(0, dtype=np.int16), out, last=True)
        if self._endpointer.in_speech:
            # end_stream accepts at most one frame; _push left less than that.
            speech: Optional[bytes] = self._endpointer.end_stream(bytes(self._pcm))
            if speech:
                # No interim now: the final follows immediately.
                self._decode(speech, out, interims=False)
        if self._in_utterance:
            self._end_utterance(out)
        if self._held is not None:
            out.append(Transcript.speech_final(self._held.transcript, self._held.confidence))
        self._reset_input()

    def release(self) -> None:
        """Drop the decoder (its model takes ~90 MB)."""
        self._decoder = None
        self._in_utterance = False


class PocketsphinxStream(ThreadedSTTStream):
    """A :class:`ThreadedSTTStream` running a pocketsphinx :class:`Recognizer`.

    The decoder starts loading in the executor as soon as the stream is opened.
    Only the en-US model is bundled: other ``language`` values are decoded as
    English.
    """

    def __init__(self, params: STTParams, executor: concurrent.futures.Executor) -> None:
        self._decoder_job: concurrent.futures.Future[Any] = executor.submit(new_decoder)
        super().__init__(Recognizer(params, self._take_decoder), executor)

    def _take_decoder(self) -> Any:
        # Runs in a worker. If the preload has not started yet (all workers busy),
        # load here: waiting on a job queued behind this one could deadlock the pool.
        if self._decoder_job.cancel():
            return new_decoder()
        return self._decoder_job.result()

    def close(self) -> None:
        """Stop recognising and free the decoder; later calls return no results."""
        self._decoder_job.cancel()
        super().close()
