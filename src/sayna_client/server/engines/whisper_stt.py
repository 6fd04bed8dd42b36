"""Speech-to-text for the ``local`` engine: Whisper tiny.en (CTranslate2) gated by Silero VAD.

Pipeline per stream, in a worker thread::

    client frames ─► align (carry odd bytes) ─► mu-law decode ─► downmix
      ─► soxr stream to 16 kHz ─► Silero VAD v6 (32 ms chunks, ONNX Runtime)
      ─► utterance buffer ─► log-mel features ─► Whisper tiny.en int8

Results follow Sayna's shape (protocol §6.8): interims every ~0.4 s of speech while the
text changes, and a final that is also speech-final, carrying its text, when the VAD has
heard :data:`END_SILENCE_S` of silence after speech. Utterances longer than
:data:`SOFT_CUT_S` are cut at the next short pause (or, without one, at the quietest
moment before :data:`HARD_CUT_S`), so a monologue is decoded in pieces Whisper handles
well (it reads at most 30 s). Each piece but the last becomes a final that is not
speech-final, sent as soon as the talker is heard going on: the next piece's first
words (its first interim). When the talker stops first, the piece's text opens the
speech-final instead, so a turn's last final is always speech-final with text (as
Deepgram's is, protocol section 6.8). :attr:`WhisperRecognizer.in_speech` tells the
session that the talker is still inside an utterance, so it does not force an empty
speech-final after a piece's final while the talker goes on.

Whisper invents text on noise and tones; the guards (each tested): only VAD-detected
speech is decoded; results whose no-speech probability exceeds
:data:`NO_SPEECH_THRESHOLD` are dropped; generation is capped at
:data:`TOKENS_PER_SECOND` tokens per second of audio plus :data:`TOKEN_SLACK` (a result
hitting the cap is a repetition loop: one copy of the repeated phrase is kept, and
without a repeated phrase it is dropped); punctuation-only text is dropped. All timing
is audio time, never wall-clock time.

CTranslate2 and ONNX Runtime release the GIL while they compute, so decoding in worker
threads does not stall the event loop. Importing this module imports both (~0.3 s): the
engine does that in a worker thread too.
"""

from __future__ import annotations

import collections
import io
import logging
import re
import threading
from typing import Any, Optional

import ctranslate2
import numpy as np
import numpy.typing as npt
import onnxruntime
import soxr
import tokenizers

from ...protocol.encodings import LOCAL_ENGINE_ENCODINGS, canonical
from .base import STTParams, Transcript, check_stt_rate, g711_decoder
from .local_assets import SILERO_VAD, WHISPER_TINY_EN, read_verified

__all__ = [
    "SpeechModels",
    "WhisperRecognizer",
    "collapse_repeats",
    "hint_text",
    "kept_text",
    "log_mel_spectrogram",
]

logger = logging.getLogger(__name__)

RATE = 16_000
#: Silero v6 at 16 kHz reads 512 new samples per call, after 64 of context.
VAD_CHUNK = 512
VAD_CONTEXT = 64
CHUNK_S = VAD_CHUNK / RATE
#: Probability that starts speech, and the one below which a chunk counts as silence
#: once in speech (hysteresis).
SPEECH_ON = 0.5
SPEECH_OFF = 0.35
#: Audio kept from before the VAD triggered (word onsets are soft).
PRE_ROLL_S = 0.3
#: Silence that ends an utterance (the endpoint).
END_SILENCE_S = 0.5
#: Silence kept after the speech when decoding.
TRAIL_KEEP_S = 0.1
#: Silence after which the final is decoded ahead of the endpoint (used at the endpoint
#: if no speech came back meanwhile), so the final follows the endpoint at once. Equal to
#: TRAIL_KEEP_S: from then on the audio the final reads is complete.
PREDECODE_SILENCE_S = TRAIL_KEEP_S
#: Utterances with less voiced audio than this are not decoded (clicks, coughs).
MIN_SPEECH_S = 0.25
#: Voiced audio between two interims; utterances over 4 s get one per tenth of their
#: length (each interim decodes the whole utterance so far, so this bounds the cost).
#: Interims are only decoded while the talker is voiced (not in the pause before an
#: endpoint, where the final's decode is about to start).
INTERIM_INTERVAL_S = 0.4
#: Past this length an utterance is cut at the next pause of PAUSE_CUT_S ...
SOFT_CUT_S = 15.0
PAUSE_CUT_S = 0.1
#: ... and without one, here (Whisper reads 30 s at most), at the quietest chunk after
#: SOFT_CUT_S that leaves at least HARD_CUT_KEEP_S of audio to the next piece.
HARD_CUT_S = 25.0
HARD_CUT_KEEP_S = 2.0
#: Guards against invented text.
NO_SPEECH_THRESHOLD = 0.6
TOKENS_PER_SECOND = 12
TOKEN_SLACK = 10
#: Confidence reported on results (Whisper's greedy search gives no calibrated score).
CONFIDENCE = 0.9

# Whisper's front end: 25 ms Hann windows every 10 ms, 80 mel bands. Whisper was trained
# on 30 s windows (3,000 frames); the shorter the padded window, the more often tiny.en
# fails to stop and repeats its sentence ("Where did you put the car keys? Where did you
# put the car keys? Where"). Measured on the 17 round-trip sentences and 11 human clips
# (raw output, before collapse_repeats): 5 s windows 59 % WER, 10 s 16 %, 15 s 5 %,
# 20 s 0 %, 30 s 0 %; the encoder costs ~0.1 s at 10 s, ~0.45 s at 30 s (one core).
# Finals are decoded in windows of at least FINAL_FRAMES, interims (shown, then
# superseded) in whole multiples of FRAME_BLOCK; collapse_repeats applies to text that ran
# into the token cap (a loop), on both.
N_FFT = 400
HOP = 160
N_MELS = 80
FRAME_BLOCK = 1000
FINAL_FRAMES = 2000
MAX_FRAMES = 3000

_WORDLESS = re.compile(r"[\W_]+")


def hint_text(hint: str) -> str:
    """The previous text Whisper is given for a keyword ``hint``: ``" Glossary: Sayna."``
    for ``"Sayna"``.

    Not the bare words: Whisper reads previous text as the transcript of the audio just
    before, and an utterance that opened with words ending in the hint ("Hello from
    Sayna.") was then taken as already transcribed. Tiny.en skipped them, in the final
    decode and in later interims: the demo's sentence, prompted with " Sayna", lost
    "Hello from Sayna" in 4 of 41 Piper syntheses decoded whole
    (tests/data/speech/sayna-demo-0.wav is one); as a glossary sentence, in none of them,
    the name still spelled right.
    """
    words = " ".join(hint.split())
    end = "" if words.endswith((".", "!", "?")) else "."
    return f" Glossary: {words}{end}"


Float32Array = npt.NDArray[np.float32]


def _mel_filters() -> Float32Array:
    """librosa's ``mel(sr=16000, n_fft=400, n_mels=80)`` (Slaney scale and norm), as
    Whisper uses it."""
    f_sp = 200.0 / 3
    min_log_hz = 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0

    def hz_to_mel(hz: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        mel = hz / f_sp
        log = hz >= min_log_hz
        mel[log] = min_log_mel + np.log(hz[log] / min_log_hz) / logstep
        return mel

    def mel_to_hz(mel: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        hz = f_sp * mel
        log = mel >= min_log_mel
        hz[log] = min_log_hz * np.exp(logstep * (mel[log] - min_log_mel))
        return hz

    fft_freqs = np.linspace(0, RATE / 2, N_FFT // 2 + 1)
    edges = hz_to_mel(np.array([0.0, RATE / 2]))
    points = mel_to_hz(np.linspace(edges[0], edges[1], N_MELS + 2))
    widths = np.diff(points)
    ramps = points[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(lower, upper))
    weights *= (2.0 / (points[2:] - points[:-2]))[:, None]
    return weights.astype(np.float32)


_FILTERS = _mel_filters()
# torch.hann_window(400) is periodic.
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)).astype(np.float32)


def log_mel_spectrogram(audio: Float32Array, min_frames: int = FRAME_BLOCK) -> Float32Array:
    """Whisper's log-mel features of 16 kHz mono ``audio`` in [-1, 1].

    Returns ``[80, frames]`` with ``frames`` the smallest multiple of 1,000 covering the
    audio and at least ``min_frames`` (at most 3,000; longer audio is truncated to 30 s),
    padded like Whisper pads (silence), normalised like Whisper (``max - 8`` floor, then
    ``(x + 4) / 4``).
    """
    needed = max(len(audio) // HOP + 1, min_frames)
    frames = min(MAX_FRAMES, -(-needed // FRAME_BLOCK) * FRAME_BLOCK)
    padded = np.zeros(frames * HOP, dtype=np.float32)
    used = min(len(audio), len(padded))
    padded[:used] = audio[:used]
    # center=True with reflect padding, as torch.stft; the last frame is dropped.
    signal = np.pad(padded, N_FFT // 2, mode="reflect")
    windows = np.lib.stride_tricks.sliding_window_view(signal, N_FFT)[::HOP][:frames]
    power = np.abs(np.fft.rfft(windows * _WINDOW, axis=1)) ** 2
    mel = _FILTERS @ power.T.astype(np.float32)
    log = np.log10(np.maximum(mel, 1e-10))
    log = np.maximum(log, log.max() - 8.0)
    normalised: Float32Array = ((log + 4.0) / 4.0).astype(np.float32)
    return normalised


def collapse_repeats(text: str) -> str:
    """Keep one copy of a Whisper repetition loop: a phrase of three or more words said
    again right after itself ("Where are the keys? Where are the keys") is kept once, and
    a trailing partial copy of the phrase before it ("Where are the keys? Where are") is
    dropped. Shorter repeats ("five five", "no, no") are left alone.

    People repeat phrases too ("I think that I think that is fine"): the recogniser
    applies this only to text whose generation ran into the token cap, which is what a
    loop does.
    """
    words = text.split()
    norm = [re.sub(r"[^\w']", "", word.lower()) for word in words]
    i = 0
    while i < len(words):
        for n in range((len(words) - i) // 2, 2, -1):
            if norm[i : i + n] == norm[i + n : i + 2 * n]:
                end = i + n
                while norm[i : i + n] == norm[end : end + n]:
                    end += n
                tail = norm[end:]
                if tail and tail == norm[i : i + len(tail)]:
                    end = len(words)
                del words[i + n : end], norm[i + n : end]
                break
        i += 1
    # A loop cut by the cap after its first copy: the longest tail that starts the
    # phrase of three or more words right before it.
    size = len(words)
    for count in range(size // 2, 0, -1):
        start = size - count
        for n in range(max(3, count + 1), start + 1):
            if norm[start - n : start - n + count] == norm[start:]:
                return " ".join(words[:start])
    return " ".join(words)


def kept_text(text: str, ran_into_cap: bool) -> str:
    """What the recogniser keeps of Whisper's ``text``: nothing without a word character;
    when generation ran into the token cap (Whisper looped), one copy of what it repeated
    (:func:`collapse_repeats`), or nothing when no phrase repeats (runaway text);
    otherwise the text as it is, repeats included, since the talker said them."""
    if not _WORDLESS.sub("", text):
        return ""
    if ran_into_cap:
        collapsed = collapse_repeats(text)
        return collapsed if collapsed != text else ""
    return text


class SpeechModels:
    """Whisper tiny.en and Silero VAD, loaded once per engine and shared by its streams.

    Construction reads the model files, checks them against their pinned digests and
    loads them (about 0.5 s): do it in a worker thread. Both runtimes are safe to call
    from several threads at once.

    Args:
        workers: concurrent Whisper decodes (CTranslate2 ``inter_threads``).

    Raises:
        ModelIntegrityError: a model file is missing or was modified.
    """

    def __init__(self, workers: int = 2) -> None:
        files = {
            model.relative.rsplit("/", 1)[-1]: read_verified(model) for model in WHISPER_TINY_EN
        }
        tokenizer_json = files.pop("tokenizer.json")
        folder = WHISPER_TINY_EN[0].path().parent
        self.whisper = ctranslate2.models.Whisper(
            str(folder),
            device="cpu",
            compute_type="int8",
            inter_threads=max(1, workers),
            intra_threads=1,
            files={name: io.BytesIO(data) for name, data in files.items()},
        )
        self.tokenizer = tokenizers.Tokenizer.from_str(tokenizer_json.decode("utf-8"))
        self._start = [self._token("<|startoftranscript|>"), self._token("<|notimestamps|>")]
        self._previous = self._token("<|startofprev|>")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.vad = onnxruntime.InferenceSession(
            read_verified(SILERO_VAD), sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._prompts: dict[str, list[int]] = {}
        self._prompt_lock = threading.Lock()

    def _token(self, name: str) -> int:
        token = self.tokenizer.token_to_id(name)
        if token is None:
            raise RuntimeError(f"the Whisper tokenizer has no {name} token")
        return int(token)

    def prompt(self, hint: str) -> list[int]:
        """Decoder prompt token ids; ``hint`` (e.g. ``"Sayna"``) is given as previous text,
        as a glossary sentence (:func:`hint_text`), so Whisper spells those words that way."""
        with self._prompt_lock:
            cached = self._prompts.get(hint)
            if cached is None:
                cached = list(self._start)
                if hint.strip():
                    words = self.tokenizer.encode(hint_text(hint), add_special_tokens=False)
                    cached = [self._previous, *words.ids[-100:], *cached]
                self._prompts[hint] = cached
        return cached

    def transcribe(self, audio: Float32Array, hint: str = "", final: bool = True) -> str:
        """Decode one utterance (16 kHz, at most 30 s are read); ``""`` when a guard
        rejects it (no-speech probability, runaway length, no words).

        ``final=False`` decodes in a shorter window (about 3x cheaper, for interims);
        finals read at least :data:`FINAL_FRAMES` (see the note on window lengths)."""
        seconds = len(audio) / RATE
        prompt = self.prompt(hint)
        cap = int(TOKENS_PER_SECOND * seconds) + TOKEN_SLACK
        window = FINAL_FRAMES if final else FRAME_BLOCK
        features = ctranslate2.StorageView.from_array(log_mel_spectrogram(audio, window)[None])
        result = self.whisper.generate(
            features,
            [prompt],
            beam_size=1,
            max_length=len(prompt) + cap,
            return_no_speech_prob=True,
            suppress_blank=True,
        )[0]
        if result.no_speech_prob > NO_SPEECH_THRESHOLD:
            return ""
        ids = [i for i in result.sequences_ids[0] if i < self._previous]
        text = str(self.tokenizer.decode(ids, skip_special_tokens=True)).strip()
        return kept_text(text, ran_into_cap=len(result.sequences_ids[0]) >= cap)

    def vad_probability(self, chunk: Float32Array, state: Any) -> tuple[float, Any]:
        """Speech probability of one ``[1, 576]`` chunk (64 context + 512 new samples)."""
        probability, new_state = self.vad.run(
            None, {"input": chunk, "state": state, "sr": np.array(RATE, dtype=np.int64)}
        )
        return float(probability[0][0]), new_state


class WhisperRecognizer:
    """The synchronous state of one recognition stream (see the module docstring).

    Not thread-safe: a :class:`~.threaded.ThreadedSTTStream` calls it from one worker
    at a time.

    Args:
        params: what the client sends (rate, channels, ``linear16`` or ``mulaw``) and
            the keyword ``hint``.
        models: the shared models (waited for on first use, in the worker).
    """

    def __init__(self, params: STTParams, models: Any) -> None:
        check_stt_rate(params.sample_rate)
        if params.channels <= 0:
            raise ValueError(f"unsupported channel count {params.channels}")
        encoding = canonical(params.encoding)
        decode = g711_decoder(params.encoding)
        #: A G.711 byte -> its sample as a float (None: 16-bit PCM).
        self._g711: Optional[Float32Array] = (
            None
            if decode is None
            else np.frombuffer(decode(bytes(range(256))), dtype="<i2").astype(np.float32) / 32768.0
        )
        if encoding not in LOCAL_ENGINE_ENCODINGS:
            logger.warning(
                "local STT cannot decode %r audio; reading it as linear16", params.encoding
            )
        self._rate = params.sample_rate
        self._channels = params.channels
        self._align = params.channels * (2 if self._g711 is None else 1)
        self._punctuate = params.punctuation
        self._hint = params.hint
        self._models_source = models
        self._models: Optional[SpeechModels] = None
        self._reset()

    def _reset(self) -> None:
        self._carry = b""
        self._resampler: Any = (
            soxr.ResampleStream(self._rate, RATE, 1, dtype="float32", quality="HQ")
            if self._rate != RATE
            else None
        )
        self._pending = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(VAD_CONTEXT, dtype=np.float32)
        self._state = np.zeros((2, 1, 128), dtype=np.float32)
        self._pre_roll: collections.deque[Float32Array] = collections.deque(
            maxlen=round(PRE_ROLL_S / CHUNK_S)
        )
        self._in_speech = False
        self._new_piece([], [])
        # Text of the piece cut from the current utterance, not sent yet: a segment final
        # once the piece after it has words, else the start of the speech-final.
        self._held = ""
        self._cut_sent = False  # a piece of the current utterance went out as a final

    def _new_piece(self, chunks: list[Float32Array], probabilities: list[float]) -> None:
        """Make ``chunks`` (with their VAD probabilities) the piece being heard."""
        self._chunks = chunks
        self._probabilities = probabilities
        self._voiced = sum(p >= SPEECH_OFF for p in probabilities) * CHUNK_S
        self._since_interim = self._voiced
        self._silence = 0.0
        self._last_interim = ""
        self._predecoded: Optional[str] = None  # the final's text, decoded early

    @property
    def in_speech(self) -> bool:
        """True while the VAD is inside an utterance (speech, or a pause shorter than
        :data:`END_SILENCE_S`): a final sent now is not the end of the turn."""
        return self._in_speech

    def _ready_models(self) -> SpeechModels:
        if self._models is None:
            source = self._models_source
            self._models = source() if callable(source) else source
        return self._models

    def process(self, data: bytes, out: list[Transcript]) -> None:
        """Consume client bytes of any length (a partial sample is carried over)."""
        data = self._carry + data
        usable = len(data) - len(data) % self._align
        self._carry = data[usable:]
        if usable:
            self._push(self._to_mono(data[:usable]), out)
        length = len(self._chunks) * CHUNK_S
        if (
            self._in_speech
            and self._silence == 0.0
            and self._since_interim >= max(INTERIM_INTERVAL_S, length / 10)
        ):
            # Once per call: a stream that fell behind gets fewer interims, not a backlog.
            self._since_interim = 0.0
            self._interim(out)

    def _to_mono(self, data: bytes) -> Float32Array:
        if self._g711 is not None:
            samples: Float32Array = self._g711[np.frombuffer(data, dtype=np.uint8)]
        else:
            samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
        if self._channels > 1:
            samples = samples.reshape(-1, self._channels).mean(axis=1, dtype=np.float32)
        return samples

    def _push(self, samples: Float32Array, out: list[Transcript], last: bool = False) -> None:
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        pending = np.concatenate((self._pending, samples.astype(np.float32, copy=False)))
        models = self._ready_models()
        whole = len(pending) - len(pending) % VAD_CHUNK
        for start in range(0, whole, VAD_CHUNK):
            chunk = pending[start : start + VAD_CHUNK]
            framed = np.concatenate((self._context, chunk))[None]
            probability, self._state = models.vad_probability(framed, self._state)
            self._context = chunk[-VAD_CONTEXT:]
            self._step(chunk, probability, out)
        self._pending = pending[whole:]

    def _step(self, chunk: Float32Array, probability: float, out: list[Transcript]) -> None:
        if not self._in_speech:
            self._pre_roll.append(chunk)
            if probability >= SPEECH_ON:
                self._in_speech = True
                chunks = list(self._pre_roll)
                self._pre_roll.clear()
                self._new_piece(chunks, [0.0] * (len(chunks) - 1) + [probability])
            return
        self._chunks.append(chunk)
        self._probabilities.append(probability)
        if probability >= SPEECH_OFF:
            self._voiced += CHUNK_S
            self._since_interim += CHUNK_S
            self._silence = 0.0
            self._predecoded = None
        else:
            self._silence += CHUNK_S
            if (
                self._predecoded is None
                and self._silence >= PREDECODE_SILENCE_S
                and self._voiced >= MIN_SPEECH_S
            ):
                # The audio kept for the final (TRAIL_KEEP_S of silence) is complete now.
                self._predecoded = self._ready_models().transcribe(
                    self._utterance_audio(), self._hint
                )
        length = len(self._chunks) * CHUNK_S
        if self._silence >= END_SILENCE_S:
            self._end_utterance(out)
        elif self._held:
            if length >= HARD_CUT_S:
                # The piece after the cut never showed words and is long now: the held
                # piece goes out, and this one can be cut in turn.
                self._send_held(out)
        elif length >= SOFT_CUT_S and self._silence >= PAUSE_CUT_S:
            self._cut(len(self._chunks))
        elif length >= HARD_CUT_S:
            self._cut(self._quietest())

    def _quietest(self) -> int:
        """Where a hard cut ends the piece: after its quietest chunk past SOFT_CUT_S that
        leaves HARD_CUT_KEEP_S to the next piece (which then has words to confirm the
        cut at once), or at the end when there is no such chunk."""
        first = round(SOFT_CUT_S / CHUNK_S)
        last = len(self._chunks) - round(HARD_CUT_KEEP_S / CHUNK_S)
        if last <= first:
            return len(self._chunks)
        window = self._probabilities[first:last]
        return first + min(range(len(window)), key=window.__getitem__) + 1

    def _cut(self, end: int) -> None:
        """End the piece being heard at chunk ``end`` and hold its text (see
        :attr:`_held`); the chunks after ``end`` start the next piece."""
        text = self._predecoded
        if text is None or end < len(self._chunks):
            voiced = sum(p >= SPEECH_OFF for p in self._probabilities[:end]) * CHUNK_S
            text = ""
            if voiced >= MIN_SPEECH_S:
                audio = np.concatenate(self._chunks[:end])
                text = self._ready_models().transcribe(audio, self._hint)
        silence = self._silence  # the pause goes on (a hard cut comes in speech: 0)
        self._new_piece(self._chunks[end:], self._probabilities[end:])
        self._silence = silence
        self._held = text

    def _send_held(self, out: list[Transcript]) -> None:
        out.append(Transcript.segment_final(self._format(self._held), CONFIDENCE))
        self._held = ""
        self._cut_sent = True

    def _utterance_audio(self) -> Float32Array:
        keep = len(self._chunks) - max(0, round((self._silence - TRAIL_KEEP_S) / CHUNK_S))
        return np.concatenate(self._chunks[: max(1, keep)])

    def _interim(self, out: list[Transcript]) -> None:
        text = self._ready_models().transcribe(self._utterance_audio(), self._hint, final=False)
        if text and self._held:
            # The talker went on after a cut: the piece before it is a final now.
            self._send_held(out)
        if text and text != self._last_interim:
            self._last_interim = text
            out.append(Transcript.interim(self._format(text), CONFIDENCE))

    def _end_utterance(self, out: list[Transcript]) -> None:
        text = ""
        if self._predecoded is not None:
            text = self._predecoded
        elif self._voiced >= MIN_SPEECH_S:
            text = self._ready_models().transcribe(self._utterance_audio(), self._hint)
        if not text and self._cut_sent:
            # A piece went out as a final: the turn must still end with text (a final
            # decode that rejects what an interim heard is rare, but possible).
            text = self._last_interim
        parts = [part for part in (self._held, text) if part]
        if parts:
            out.append(Transcript.speech_final(self._format(" ".join(parts)), CONFIDENCE))
        self._in_speech = False
        self._new_piece([], [])
        self._held = ""
        self._cut_sent = False

    def _format(self, text: str) -> str:
        """Whisper punctuates; without ``punctuation`` the text is lower case without
        punctuation marks, as providers return it."""
        if self._punctuate:
            return text
        return " ".join(re.sub(r"[^\w\s']", " ", text).lower().split())

    def finish(self, out: list[Transcript]) -> None:
        """Flush the resampler tail and the open utterance as a speech-final, then
        start over as if new."""
        if self._resampler is not None:
            self._push(np.zeros(0, dtype=np.float32), out, last=True)
        if self._in_speech:
            self._silence = 0.0
            self._end_utterance(out)
        self._reset()

    def release(self) -> None:
        """Forget buffered audio (the models are shared and stay loaded)."""
        self._new_piece([], [])
        self._in_speech = False
