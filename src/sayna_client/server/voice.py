"""A session's "voice manager": the TTS queue worker and the STT result gate.

TTS (section 6.7): ``speak`` requests of the HTTP providers (Deepgram, ElevenLabs,
Azure, Cartesia) are synthesized one at a time, FIFO, in a worker task so the session
keeps reading frames meanwhile. ``tts_playback_complete`` follows a request's last chunk
only when nothing else is queued; ``clear`` cancels queued and in-flight work (no
completion) unless the latest ``speak`` forbade interruption. A request whose synthesis
fails (the engine raised, or a failure scripted with :meth:`TTSFailures.add`) ends with
``error`` ``TTS error: <text>``, and the completion still follows when nothing else is
queued, as Sayna's dispatcher does. A scripted refusal fails the ``speak`` itself, as
Sayna does when the provider is not connected: ``error`` ``Failed to synthesize speech:
TTS error: <text>``, and neither audio nor a completion for it.

Google TTS (``inline``) synthesizes each ``speak`` inside the handler, as Sayna does
(tts/google/provider.rs: one HTTP request, then every chunk, then ``on_complete``): the
session reads nothing else meanwhile, the chunks leave unpaced, and every ``speak`` gets
its own ``tts_playback_complete``. A ``clear`` read afterwards has nothing left to cut
(Google's ``clear`` is a no-op). Any failure, scripted or not, fails the ``speak`` the
way a refusal does: its audio is delivered only once the whole clip is synthesized.

STT (section 6.8): engine results pass as they are (a speech-final carries its text);
empty non-speech-final finals are suppressed, results are dropped while
non-interruptible speech plays, and a speech-final is forced (empty transcript,
confidence 1.0) 1.8 s after the last segment final, or 5 s after the first final of a
segment, when the engine has not sent one itself; not while the engine still hears the
talker inside the utterance (:attr:`~.engines.base.STTStream.speaking`: the final was a
piece of a long utterance), but at the first frame it no longer does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, Callable, Optional

from .engines.base import Engine, STTStream, Transcript, TTSRequest
from .engines.output import synthesize

__all__ = ["SpeechFinalGate", "TTSFailure", "TTSFailures", "TTSPipeline", "now_ms"]

logger = logging.getLogger("sayna_client.server")

#: Seconds from a ``speak`` being taken up to its first audio chunk (paced mode).
FIRST_AUDIO_DELAY = 0.1
FORCE_AFTER_FINAL = 1.8
FORCE_HARD_CAP = 5.0
DEDUPE_WINDOW = 0.5
#: Client audio a background-fed recogniser may have queued before the session waits
#: for it (about 30 s of 16 kHz pcm16): a client sending faster than the engine
#: decodes is slowed down instead of growing the queue without bound.
MAX_BACKLOG_BYTES = 1_000_000


#: What a scripted TTS failure says by default (after ``TTS error: ``): the text of an
#: HTTP provider refusing a request on Sayna (``TTSError::ProviderError``).
DEFAULT_TTS_FAILURE = "Provider error: API error (500 Internal Server Error): scripted failure"


def now_ms() -> int:
    """Unix time in milliseconds (Sayna event timestamps)."""
    return int(time.time() * 1000)


@dataclass(frozen=True)
class TTSFailure:
    """One scripted TTS failure: the request fails after ``after_chunks`` audio chunks
    with ``error`` ``TTS error: <message>`` (``refuse``: the ``speak`` is refused with
    ``Failed to synthesize speech: TTS error: <message>``), in the session with
    ``stream_id`` (any session when None)."""

    message: str
    after_chunks: int = 0
    stream_id: Optional[str] = None
    refuse: bool = False


class _ScriptedFailure(Exception):
    """Raised inside the worker for a scripted failure (its text is the message)."""


class TTSFailures:
    """Scripted TTS failures, shared by a server's sessions, taken in order: each one
    fails the next request a matching session takes up."""

    def __init__(self) -> None:
        self._pending: list[TTSFailure] = []

    def add(self, failure: TTSFailure, times: int = 1) -> None:
        """Fail the next ``times`` matching requests with ``failure``."""
        self._pending.extend([failure] * times)

    def pending(self) -> list[TTSFailure]:
        """The failures not used yet, in order."""
        return list(self._pending)

    def clear(self) -> None:
        """Forget the failures not used yet."""
        self._pending.clear()

    def take(self, stream_id: Optional[str], refuse: bool = False) -> Optional[TTSFailure]:
        """The first failure for the session ``stream_id`` of that kind (a refusal or a
        failed synthesis), removed; None when there is none."""
        for index, failure in enumerate(self._pending):
            if failure.refuse is refuse and failure.stream_id in (None, stream_id):
                del self._pending[index]
                return failure
        return None


class TTSPipeline:
    """FIFO synthesis for one session.

    Args:
        engine: synthesizes each request.
        emit_audio: receives every chunk in order (WS binary frame or LiveKit track).
        emit_json: receives ``error`` and ``tts_playback_complete`` messages.
        realtime: pace audio like speech: the first chunk of each request after
            :data:`FIRST_AUDIO_DELAY`, then each chunk when the audio before it has
            played, so ``clear`` during speech cuts it. ``False`` sends chunks as fast
            as the engine makes them (benchmarks).
        inline: Google TTS: :meth:`speak` synthesizes the request before it returns
            and sends its audio unpaced, then its own completion (see the module
            docstring); ``realtime`` does not apply.
        failures: scripted failures; each request taken up takes the first one for
            ``stream_id`` (see :class:`TTSFailures`).
        stream_id: the session's ``stream_id``, for ``failures``.
    """

    def __init__(
        self,
        engine: Engine,
        emit_audio: Callable[[bytes], Awaitable[None]],
        emit_json: Callable[[dict[str, Any]], None],
        realtime: bool = True,
        failures: Optional[TTSFailures] = None,
        stream_id: Optional[str] = None,
        inline: bool = False,
    ) -> None:
        self.inline = inline
        self._engine = engine
        self._failures = failures
        self._stream_id = stream_id
        self._realtime = realtime
        self._emit_audio = emit_audio
        self._emit_json = emit_json
        self._queue: deque[TTSRequest] = deque()
        self._task: Optional[asyncio.Task[None]] = None
        self._busy = False
        self._allow_interruption = True
        self._blocked_until_interruptible = False
        self._playback_end = 0.0

    async def speak(self, request: TTSRequest, allow_interruption: bool) -> None:
        """Queue one request (empty text only updates the interruption flag; a scripted
        refusal answers it with ``error`` instead); :attr:`inline`: synthesize and send
        it before returning.

        Cancellation (the session ends) of an inline request stops it where it is."""
        self._allow_interruption = allow_interruption
        if allow_interruption:
            self._blocked_until_interruptible = False
        if not request.text.strip():
            if not allow_interruption:
                self._blocked_until_interruptible = True
            return
        failures = self._failures
        refusal = failures.take(self._stream_id, refuse=True) if failures is not None else None
        if refusal is not None:
            message = f"Failed to synthesize speech: TTS error: {refusal.message}"
            self._emit_json({"type": "error", "message": message})
            return
        if self.inline:
            await self._speak_inline(request)
            return
        self._queue.append(request)
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._work())

    def interruptible(self) -> bool:
        """Whether ``clear`` takes effect now."""
        if self._allow_interruption:
            return True
        if self._blocked_until_interruptible or self._queue or self._busy:
            return False
        return asyncio.get_running_loop().time() >= self._playback_end

    async def clear(self) -> bool:
        """Drop queued and in-flight work; returns ``False`` when interruption is blocked."""
        if not self.interruptible():
            return False
        self._queue.clear()
        await self._cancel()
        return True

    async def aclose(self) -> None:
        """Stop the worker and forget queued work."""
        self._queue.clear()
        await self._cancel()

    async def _cancel(self) -> None:
        task, self._task = self._task, None
        self._busy = False
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _speak_inline(self, request: TTSRequest) -> None:
        """Google's ``speak``: the whole clip, then its chunks, then its completion; a
        failure sends no audio and no completion (``Failed to synthesize speech``)."""
        failures = self._failures
        failure = failures.take(self._stream_id) if failures is not None else None
        self._busy = True
        try:
            if failure is not None:
                raise _ScriptedFailure(failure.message)
            chunks = [chunk async for chunk, _seconds in synthesize(self._engine, request)]
        except Exception as exc:
            logger.warning("TTS engine %s failed: %s", self._engine.name, exc)
            message = f"Failed to synthesize speech: TTS error: {exc}"
            self._emit_json({"type": "error", "message": message})
            return
        finally:
            self._busy = False
        loop = asyncio.get_running_loop()
        bytes_per_second = max(1, request.sample_rate * 2)  # as in _work (6.7)
        for chunk in chunks:
            self._playback_end = (
                max(self._playback_end, loop.time()) + len(chunk) / bytes_per_second
            )
            await self._emit_audio(chunk)
        self._emit_json({"type": "tts_playback_complete", "timestamp": now_ms()})

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            request = self._queue.popleft()
            self._busy = True
            # Sayna's playback estimate assumes 16-bit PCM whatever the format (6.7).
            bytes_per_second = max(1, request.sample_rate * 2)
            start = loop.time() + FIRST_AUDIO_DELAY
            played = 0.0
            failures = self._failures
            failure = failures.take(self._stream_id) if failures is not None else None
            chunks = 0
            try:
                async for chunk, seconds in synthesize(self._engine, request):
                    if self._realtime:
                        delay = start + played - loop.time()
                        if delay > 0:
                            await asyncio.sleep(delay)
                        played += seconds
                    # A scripted failure comes when the chunk would have (after the
                    # provider's latency, as a refused request's error does).
                    if failure is not None and chunks >= failure.after_chunks:
                        raise _ScriptedFailure(failure.message)
                    chunks += 1
                    self._playback_end = (
                        max(self._playback_end, loop.time()) + len(chunk) / bytes_per_second
                    )
                    await self._emit_audio(chunk)
                if failure is not None:  # the speech had no more chunks than that
                    raise _ScriptedFailure(failure.message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                logger.warning("TTS engine %s failed: %s", self._engine.name, exc)
                self._emit_json({"type": "error", "message": f"TTS error: {exc}"})
            finally:
                self._busy = False
            if not self._queue:
                self._emit_json({"type": "tts_playback_complete", "timestamp": now_ms()})


class SpeechFinalGate:
    """Sayna's own filter between an engine and the client (section 6.8).

    * Provider results pass as they are; a speech-final keeps its text.
    * An ``is_final`` with a blank transcript that is not speech-final is dropped.
    * While ``suppressed()`` is true (non-interruptible speech playing, section 6.7)
      every engine result is dropped, not queued.
    * A delivered ``is_final`` that is not speech-final arms the forced speech-final:
      ``("", is_final, is_speech_final, 1.0)`` 1.8 s after the latest such final, or
      5 s after the first of the segment, unless the engine's speech-final came first.
      When that time comes while the engine is still :attr:`~.STTStream.speaking`, the
      forced result waits for the first feed after which it no longer is (a local
      engine's long utterance cut in pieces is one turn). The forced result bypasses
      ``suppressed()``.
    * An engine speech-final arriving less than 500 ms after a forced one, with a
      transcript equal to the segment text buffered when it fired, is dropped.

    Progress, for :meth:`~.app.LocalServer.wait_transcribed`: :attr:`decoded_bytes`
    counts the audio the recogniser has finished with (its results handled as above),
    :attr:`results_sent` the ``stt_result`` messages handed to ``emit``.

    Args:
        stream: the engine's recogniser.
        emit: receives each ``stt_result`` to send (and the ``error`` of a failed
            background feed, see :meth:`feed`).
        suppressed: whether results are dropped now (default: never).
        engine_name: named in the warning about an engine's empty speech-final.
        on_decoded: called when :attr:`decoded_bytes` grew in a feed that waited for
            the recogniser, so waiters on it wake (not after :meth:`feed_now`, which
            decodes before its caller goes on).
    """

    def __init__(
        self,
        stream: STTStream,
        emit: Callable[[dict[str, Any]], None],
        suppressed: Optional[Callable[[], bool]] = None,
        engine_name: str = "engine",
        on_decoded: Optional[Callable[[], None]] = None,
    ) -> None:
        self.stream = stream
        self._emit = emit
        self._suppressed = suppressed
        self._engine_name = engine_name
        self._lock = asyncio.Lock()
        self._timer: Optional[asyncio.TimerHandle] = None
        self._segment_started: Optional[float] = None
        self._buffered = ""  # the armed segment's final texts, concatenated
        self._forced_at: Optional[float] = None
        self._forced_text = ""
        self._force_due = False  # the forced result waits for the talker to stop
        self._warned_empty = False
        self._backlog: list[bytes] = []
        self._backlog_bytes = 0
        self._drained = asyncio.Event()
        self._pump: Optional[asyncio.Task[None]] = None
        self._on_decoded = on_decoded
        #: Bytes of audio fed to the recogniser whose results were handled (or whose
        #: failure was reported): the audio it has finished with.
        self.decoded_bytes = 0
        #: ``stt_result`` messages handed to ``emit`` (forced speech-finals included).
        self.results_sent = 0
        #: The stream has a synchronous feed: call :meth:`feed_now` instead of :meth:`feed`.
        self.instant = stream.instant and not stream.feed_may_wait

    def feed_now(self, audio: bytes) -> None:
        """:meth:`feed` for an :attr:`instant` stream, without a coroutine (nothing to
        serialize: it never waits).

        Raises:
            Exception: what the recogniser raised.
        """
        try:
            for result in self.stream.feed_now(audio):
                self.handle(result)
        finally:  # a failure is reported by the caller: that audio is finished with too
            self.decoded_bytes += len(audio)
        if self._force_due:
            self._force_if_quiet()

    async def feed(self, audio: bytes) -> None:
        """Feed one frame to the recogniser and emit what it produced (serialized).

        A stream whose ``feed`` may wait for a decode (:attr:`STTStream.feed_may_wait`)
        is fed by a background task instead: this returns at once (frames that arrive
        while it decodes are joined and fed together; the caller waits only when more
        than :data:`MAX_BACKLOG_BYTES` are queued), and a failure is sent to the client
        as ``Failed to process audio: ...``.

        Raises:
            Exception: what the recogniser raised (direct streams only).
        """
        if self.stream.feed_may_wait:
            await self._queue(audio)
            return
        lock = self._lock  # (acquire/release: async with costs two more coroutines)
        await lock.acquire()
        try:
            results = await self.stream.feed(audio)
        finally:
            lock.release()
            # A failure is reported by the caller: that audio is finished with too.
            self.decoded_bytes += len(audio)
            if self._on_decoded is not None:
                self._on_decoded()
        for result in results:
            self.handle(result)
        if self._force_due:
            self._force_if_quiet()

    async def _queue(self, audio: bytes) -> None:
        if not audio:
            return
        self._backlog.append(audio)
        self._backlog_bytes += len(audio)
        if self._pump is None:
            self._pump = asyncio.ensure_future(self._run_pump())
        if self._backlog_bytes > MAX_BACKLOG_BYTES:
            self._drained.clear()
            await self._drained.wait()

    async def _run_pump(self) -> None:
        try:
            while self._backlog:
                data = b"".join(self._backlog)
                self._backlog.clear()
                self._backlog_bytes = 0
                self._drained.set()
                try:
                    results = await self.stream.feed(data)
                except Exception as exc:
                    logger.warning("STT engine failed: %s", exc)
                    self._emit({"type": "error", "message": f"Failed to process audio: {exc}"})
                    results = []
                for result in results:
                    self.handle(result)
                if self._force_due:
                    self._force_if_quiet()
                self.decoded_bytes += len(data)
                if self._on_decoded is not None:
                    self._on_decoded()
        finally:
            self._pump = None

    def handle(self, result: Transcript) -> None:
        """Apply the rules above to one engine result."""
        if self._suppressed is not None and self._suppressed():
            return
        loop = asyncio.get_running_loop()
        if result.is_speech_final:
            if not result.transcript and self._buffered and not self._warned_empty:
                self._warned_empty = True
                logger.warning(
                    "engine %s ended an utterance with an empty speech-final; real providers "
                    "mark the last final speech-final with its text (Transcript.speech_final)",
                    self._engine_name,
                )
            forced_at, forced_text = self._forced_at, self._forced_text
            self._reset_timer()
            if (
                forced_at is not None
                and loop.time() - forced_at < DEDUPE_WINDOW
                and result.transcript == forced_text
            ):
                return
            self.results_sent += 1
            self._emit(result.to_wire())
            return
        if result.is_final:
            if not result.transcript.strip():
                return
            self._buffered += result.transcript
            if self._segment_started is None:
                self._segment_started = loop.time()
            delay = min(FORCE_AFTER_FINAL, self._segment_started + FORCE_HARD_CAP - loop.time())
            if self._timer is not None:
                self._timer.cancel()
            self._timer = loop.call_later(max(0.0, delay), self._force)
        self.results_sent += 1
        self._emit(result.to_wire())

    def _force_if_quiet(self) -> None:
        if not self.stream.speaking:
            self._force()

    def _force(self) -> None:
        self._timer = None
        if self.stream.speaking:
            self._force_due = True  # sent after the first feed that ends the speech
            return
        self._force_due = False
        self._segment_started = None
        self._forced_at = asyncio.get_running_loop().time()
        self._forced_text, self._buffered = self._buffered, ""
        forced = Transcript("", is_final=True, is_speech_final=True, confidence=1.0)
        self.results_sent += 1
        self._emit(forced.to_wire())

    def _reset_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._force_due = False
        self._segment_started = None
        self._buffered = ""
        self._forced_at = None
        self._forced_text = ""

    def close(self) -> None:
        """Cancel the forced speech-final and the background feeding, release the
        recogniser (queued frames are dropped)."""
        self._backlog.clear()
        self._drained.set()
        if self._pump is not None:
            self._pump.cancel()
            self._pump = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.stream.close()
