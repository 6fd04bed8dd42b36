"""Waiting for the conversation to finish: ``drain()``, ``finish_audio()`` and the
graceful half of ``disconnect()``, over the session tracker's view of the event stream
(:class:`~.conversation.SessionTracker`).

:class:`Drainer` is a part of the voice session; ``SaynaClient`` forwards to it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import TYPE_CHECKING, Optional

from .._checks import bounded
from .._config import check_seconds
from ..errors import (
    SaynaConnectionError,
    SaynaNotReadyError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from .conversation import SessionMetrics, Turn
from .lane import silence_frame

if TYPE_CHECKING:
    from .core import SessionCore

__all__ = ["Drainer"]

logger = logging.getLogger("sayna_client")

#: Seconds without a result or TTS audio after which the results of audio already
#: sent are taken to have arrived (drain(), graceful disconnect(), finish_audio()).
_SETTLE = 0.3
#: finish_audio(): frames of this many milliseconds, sent at real-time pace.
_SILENCE_FRAME_MS = 20


class Drainer:
    """Waits for speech and results in flight (a part of :class:`~.session.VoiceSession`)."""

    __slots__ = ("_session",)

    def __init__(self, session: SessionCore) -> None:
        self._session = session

    async def drain(self, timeout: Optional[float] = None, *, settle: float = 0.3) -> None:
        """Wait until outstanding speech is synthesized (``tts_playback_complete``; a
        ``speak_stream`` still reading its text source is outstanding until it sent its
        last chunk; with an attached ``audio_output`` that tells what it holds, until the
        output played it) and the user's current turn has ended (its
        ``is_speech_final``), e.g. before ``disconnect()``.

        Results of audio sent just before may still be in flight, so the session must
        also stay quiet (no result, no TTS audio) for ``settle`` seconds. Returns after
        about ``settle`` seconds when nothing is outstanding.

        Raises:
            SaynaValidationError: ``timeout`` is not a positive number of seconds or
                None, or ``settle`` not a number of seconds >= 0.
            SaynaTimeoutError: not drained within ``timeout`` seconds.
            SaynaConnectionClosedError: the session closed first.
            SaynaNotReadyError: called while the session is reconnecting (the turn and
                the speech under way were lost with the connection, the results of the
                audio held are still to come): call it after the ``reconnected`` event.
        """
        check_seconds("timeout", timeout)
        if (
            isinstance(settle, bool)
            or not isinstance(settle, (int, float))
            or not 0 <= settle < math.inf
        ):
            raise SaynaValidationError(
                f"settle must be a number of seconds >= 0 (0: no quiet time), got {settle!r}"
            )
        if self._session.reconnecting:
            raise SaynaNotReadyError(
                "drain() during a reconnection: the Sayna session is reconnecting; call it "
                "after the `reconnected` event"
            )
        await bounded(self._quiet(settle=settle), timeout, "drain()")

    async def _quiet(self, *, settle: float = _SETTLE, always_settle: bool = True) -> None:
        """Wait for the ``speak_stream``s still reading their text source to have sent
        everything, for playback complete and the end of the current turn, then (always,
        or only while audio sent has had no result) for ``settle`` seconds without a
        result or TTS audio, then for the callbacks to catch up.

        Raises:
            SaynaConnectionClosedError: the session closed first.
        """
        tracker = self._session.tracker
        while True:
            await self._fed()
            await asyncio.gather(tracker.wait_playback(), tracker.wait_turn_end())
            if self._feeding():
                continue  # a stream started meanwhile (a reply, from a callback)
            if always_settle or tracker.audio_unanswered:
                seen = tracker.activity
                await asyncio.sleep(settle)
                busy = tracker.turn_pending or tracker.playback_pending or self._feeding()
                if busy or tracker.activity != seen:
                    continue
            await self._session.hub.caught_up()
            return

    def _feeding(self) -> bool:
        """A ``speak_stream`` is still reading its text source: speech is outstanding
        that the tracker cannot see yet (no ``speak`` of its next chunk went out)."""
        queue = self._session.speaking.queue
        return queue is not None and queue.feeding

    async def _fed(self) -> None:
        """Wait until no ``speak_stream`` is reading its text source (see
        :meth:`~sayna_client.agents.SpeechQueue.fed`)."""
        queue = self._session.speaking.queue
        if queue is not None:
            await queue.fed()

    async def let_finish(self, timeout: Optional[float]) -> None:
        """The graceful half of ``disconnect()``, on a ready session: wait at most
        ``timeout`` seconds for what is outstanding, ``speak_stream``s still reading
        their text source included (their chunks go out and play). Raises nothing but
        ``CancelledError``."""
        tracker = self._session.tracker
        busy = tracker.playback_pending or tracker.turn_pending or tracker.audio_unanswered
        if not (busy or self._feeding()):
            return  # nothing outstanding (the close lets callbacks finish what is queued)
        try:
            await bounded(self._quiet(always_settle=False), timeout, "disconnect()")
        except SaynaTimeoutError:
            logger.info(
                "disconnect(): the conversation had not finished after %s s (drain); closing",
                timeout,
            )
        except SaynaConnectionError:
            pass  # the session ended meanwhile

    async def finish_audio(
        self, timeout: Optional[float] = 10.0, *, silence_ms: int = 1500
    ) -> Optional[Turn]:
        """End the audio stream: send trailing silence so the recogniser ends the
        utterance, and wait for its final result.

        A file or call that stops mid-utterance leaves the recogniser waiting for more
        speech: no final arrives and :meth:`drain` would wait for ever. This sends
        ``silence_ms`` of silence in the session's own format (``stt_config`` encoding,
        sample rate and channels), in 20 ms frames at real-time pace, as a microphone
        would after the speaker stopped, then waits until no turn is open (its
        speech-final has arrived) and no new result came for a moment. When nothing is
        outstanding (no result pending, no audio without a result) it returns None at
        once, sending nothing.

        Args:
            timeout: seconds for the whole call (``None``: no limit).
            silence_ms: silence to send, in milliseconds (default 1.5 s: more than the
                end-of-utterance silence of common recognisers).

        Returns:
            The last :class:`Turn` that ended meanwhile, or None when the recogniser
            heard no words.

        Raises:
            SaynaValidationError: the encoding has no silence the SDK can make (e.g.
                ``opus``): send your own encoded silence, then :meth:`drain`.
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the session closed meanwhile.
            SaynaTimeoutError: the final did not arrive within ``timeout``.
        """
        if isinstance(silence_ms, bool) or not isinstance(silence_ms, int) or silence_ms < 0:
            raise SaynaValidationError(f"silence_ms must be an int >= 0, got {silence_ms!r}")
        check_seconds("timeout", timeout)
        session = self._session
        frame = silence_frame(session.stt_config, _SILENCE_FRAME_MS)
        session.ready_connection()
        tracker = session.tracker
        if not tracker.turn_pending and not tracker.audio_unanswered:
            return None
        turns: list[Optional[Turn]] = []
        ended = [tracker.next_speech_final()]

        def take() -> None:
            """Record a speech-final that arrived and wait for the next one."""
            turns.append(ended[0].result())
            ended[0] = tracker.next_speech_final()

        async def finish() -> Optional[Turn]:
            for _ in range(silence_ms // _SILENCE_FRAME_MS):
                await session.audio_in.on_audio_input(frame)
                await asyncio.sleep(_SILENCE_FRAME_MS / 1000)
                if ended[0].done():
                    take()
            while True:
                if ended[0].done():
                    take()
                elif tracker.turn_pending:
                    await asyncio.wait(ended)  # words were heard: their final comes
                else:
                    seen = tracker.activity  # results of the last audio may still come
                    await asyncio.wait(ended, timeout=_SETTLE)
                    if not ended[0].done() and tracker.activity == seen:
                        tracker.audio_answered()
                        return next((t for t in reversed(turns) if t is not None), None)

        try:
            return await bounded(finish(), timeout, "finish_audio()")
        finally:
            waiter = ended[0]
            if not waiter.done():
                waiter.cancel()
            elif not waiter.cancelled():
                # Failed by the session's close while a send (or the timeout) raised
                # first, in its own terms: retrieved here, or asyncio logs "Future
                # exception was never retrieved" when it is collected.
                waiter.exception()

    @property
    def metrics(self) -> SessionMetrics:
        """Latency figures of the current session (also logged at DEBUG)."""
        return self._session.tracker.metrics
