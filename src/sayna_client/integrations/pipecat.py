"""Pipecat services backed by Sayna: ``SaynaSTTService`` and ``SaynaTTSService``.

Install with ``pip install 'sayna-client[pipecat]'`` (Pipecat needs Python 3.11+). Pass one
``SaynaClient`` to both services and they share its session::

    client = SaynaClient(url, STTConfig(provider="deepgram", model="nova-2"),
                         TTSConfig(provider="deepgram", voice_id="aura-asteria-en"))
    stt = SaynaSTTService(client=client)
    tts = SaynaTTSService(client=client)
    pipeline = Pipeline([transport.input(), stt, user_aggregator, llm, tts,
                         transport.output(), assistant_aggregator])

Audio runs at the pipeline's rates: the services set ``stt_config.sample_rate`` to the
input rate and ``tts_config.sample_rate`` to the output rate before connecting (16-bit
mono PCM both ways; a service started after the session opened at other rates has the
config sent again once the sentence in flight ended). Sayna detects the end of each user
turn itself, so the STT service proposes turns the way Pipecat's services with their own
turn detection do (Deepgram Flux, AssemblyAI): ``ProposedUserStartedSpeakingFrame`` on
the first words of a turn, ``TranscriptionFrame`` for each final segment,
``ProposedUserStoppedSpeakingFrame`` at Sayna's speech-final; the user aggregator turns
them into ``UserStartedSpeakingFrame`` / ``UserStoppedSpeakingFrame`` and the
interruption. An ``InterruptionFrame`` reaching the TTS service sends ``clear`` and drops
the audio still queued.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any, Optional

from .._config import ReconnectPolicy
from ..client import SaynaClient
from ..errors import (
    SaynaConfigRejectedError,
    SaynaConnectionError,
    SaynaError,
    SaynaNotConnectedError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from ..protocol.events import STTResultMessage
from ._shared import (
    REFUSED,
    SharedSession,
    SpeakQueue,
    Unsent,
    check_client,
    missing_extra,
    pcm_stt,
    pcm_tts,
)

try:
    from pipecat.frames.frames import (
        CancelFrame,
        EndFrame,
        ErrorFrame,
        Frame,
        InterimTranscriptionFrame,
        InterruptionFrame,
        ProposedUserStartedSpeakingFrame,
        ProposedUserStoppedSpeakingFrame,
        StartFrame,
        STTMetadataFrame,
        TranscriptionFrame,
        TTSAudioRawFrame,
        TTSStartedFrame,
        TTSStoppedFrame,
    )
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessorSetup
    from pipecat.services.ai_service import AIService
    from pipecat.services.settings import STTSettings, TTSSettings
    from pipecat.services.stt_service import STTService
    from pipecat.services.tts_service import TTSService
    from pipecat.transcriptions.language import Language
    from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
    from pipecat.utils.errors import ErrorCategory
    from pipecat.utils.time import time_now_iso8601
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise missing_extra("pipecat") from exc

__all__ = ["SaynaSTTService", "SaynaTTSService"]

logger = logging.getLogger("sayna_client.integrations.pipecat")


def _permanent(exc: SaynaError) -> bool:
    """True for a connect failure that retrying cannot change: the config or the
    request refused (a 4xx other than 408 / 429: e.g. a wrong API key)."""
    if isinstance(exc, (SaynaConfigRejectedError, SaynaValidationError)):
        return True
    status = getattr(exc, "status_code", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def _retry_delay(policy: ReconnectPolicy, attempts: int) -> float:
    """Seconds before the next connect attempt after ``attempts`` failed ones: the
    policy's capped exponential backoff, with its jitter."""
    base = min(policy.max_backoff, policy.initial_backoff * 2.0 ** min(64, attempts - 1))
    return max(0.0, base * (1.0 - policy.jitter * random.random()))


def _language(code: str) -> Optional[Language]:
    try:
        return Language(code)
    except ValueError:
        return None


class _SessionService(AIService):
    """What both services do with their client's session: join it when the pipeline
    starts (the first Sayna service connects), read its events on a task of the
    service, report its errors, and leave it when the pipeline ends (the last one
    closes it). Mixed in before Pipecat's ``STTService`` / ``TTSService``."""

    _client: SaynaClient
    _session: SharedSession
    _read: Callable[[AsyncIterator[Any]], Coroutine[Any, Any, None]]  # each service's event reader
    _label = ""  # "STT" or "TTS", for messages and the reader task's name
    _reader: Any = None
    _closing = False
    _lost = False  # the last close was one the client reconnects after
    _ended = False  # the session ended for good: nothing more is sent or reported
    _join_done: Optional[asyncio.Event] = None  # set once no join is under way

    @property
    def client(self) -> SaynaClient:
        """The ``SaynaClient`` this service uses."""
        return self._client

    async def start(self, frame: StartFrame) -> None:
        """Connect (or join the session another Sayna service opened) and start reading.

        A connection failure that may pass (the server unreachable, a timeout) is
        reported once as an ``ErrorFrame`` and retried on a task, with the backoff and
        attempts of the client's ``reconnect_policy`` (``ReconnectPolicy()`` if None);
        the service joins the session as soon as an attempt succeeds, its own or the
        other Sayna service's (a service never sends on the session before it reads its
        events: until it joined, its audio or text is dropped, or, when the other
        service already opened the session, waits for the join). Joining a session
        opened with other configs (the other service runs in a pipeline started before,
        at other rates) sends it this service's rate once the sentence in flight ended
        (sent at once, the config would cut it). A rejection that
        retrying cannot change (the server refused the config or the API key), or the
        last attempt failing, is pushed with ``force_treat_as_permanent=True``: the
        service is then unusable (Pipecat's ``ProcessorUnusablePolicy`` applies).

        A session carries one call: an STT (or TTS) service started while another one
        is running on the same client (another pipeline, another call) is refused the
        same way, with a ``SaynaValidationError`` (use one ``SaynaClient`` per call /
        pipeline); once the other's pipeline ended, the client can be used again.
        """
        await super().start(frame)
        self._closing = False
        self._ended = False
        try:
            self._session.claim(self, self._label, type(self).__name__)
        except SaynaValidationError as exc:
            # (Pipecat only logs what start() raises: the app sees this ErrorFrame)
            self._ended = True  # sends nothing, reports nothing more
            self._join_done = None
            await self.push_error(str(exc), exception=exc, force_treat_as_permanent=True)
            return
        self._claimed()
        self._join_done = done = asyncio.Event()
        try:
            events = await self._session.acquire(self)
        except SaynaError as exc:
            if await self._connect_failed(exc, 1):
                done.set()
            else:
                self._reader = self.create_task(
                    self._join(), name=f"sayna-{self._label.lower()}-connect"
                )
            return
        done.set()
        self._reader = self.create_task(
            self._read(events), name=f"sayna-{self._label.lower()}-events"
        )

    def _claimed(self) -> None:
        """This service is now the session's running one of its kind (see :meth:`start`)."""

    async def _join(self) -> None:
        """Connect again until an attempt succeeds (then read the session's events) or
        the service gives up (:meth:`_connect_failed`). The wait between attempts ends
        early when the other Sayna service opened the session: both join it at once."""
        attempts = 1
        try:
            while True:
                await self._session.opened(_retry_delay(self._policy(), attempts))
                try:
                    events = await self._session.acquire(self)
                except SaynaError as exc:
                    attempts += 1
                    if await self._connect_failed(exc, attempts):
                        return
                    continue
                break
        finally:
            if self._join_done is not None:
                self._join_done.set()
        logger.info("Sayna %s: connected after %d attempts", self._label, attempts + 1)
        await self._read(events)

    async def _joined(self) -> bool:
        """True when this service is on the session (its events are read). When the
        session is open but this service has not joined it yet (the other service
        opened it, and this one is joining now), waits for the join first."""
        if self._session.is_owner(self):
            return True
        done = self._join_done
        if done is not None and self._client.ready:
            await done.wait()
        return self._session.is_owner(self)

    def _policy(self) -> ReconnectPolicy:
        return self._client.reconnect_policy or ReconnectPolicy()

    async def _connect_failed(self, exc: SaynaError, attempts: int) -> bool:
        """Report the failure of connect attempt number ``attempts``. True when the
        service gives up (it is then unusable); False when it tries again."""
        policy = self._policy()
        if _permanent(exc):
            await self.push_error(
                f"Sayna {self._label} could not connect: {exc}",
                exception=exc,
                force_treat_as_permanent=True,
            )
            return True
        if policy.max_attempts is not None and attempts > policy.max_attempts:
            await self.push_error(
                f"Sayna {self._label} could not connect ({attempts} attempts), giving up: {exc}",
                exception=exc,
                force_treat_as_permanent=True,
            )
            return True
        if attempts == 1 and self._session.first_to_report(exc):
            # (the other service fails the same way: reported once)
            await self.push_error(
                f"Sayna {self._label} could not connect, retrying: {exc}", exception=exc
            )
        else:
            logger.warning("Sayna %s: connect attempt %d failed: %s", self._label, attempts, exc)
        return False

    async def _apply_settings(self, changed: dict[str, Any], fields: dict[str, str]) -> None:
        """Send the settings ``changed`` (Pipecat's names) to Sayna: ``fields`` maps those
        that have a config field to it; the others cannot be applied (a warning says so).
        A session that refuses them is reported as an ``ErrorFrame``."""
        updates: dict[str, Any] = {}
        for name in changed:
            field = fields.get(name)
            if field is None:
                logger.warning(
                    "Sayna %s: the %r setting has no Sayna equivalent and was not applied "
                    "(change %s instead)",
                    self._label,
                    name,
                    ", ".join(fields),
                )
                continue
            value = getattr(self._settings, name, None)
            updates[field] = "" if value is None else str(getattr(value, "value", value))
        if not updates:
            return
        try:
            if self._label == "STT":
                await self._session.reconfigure(stt=updates)
            else:
                await self._session.reconfigure(tts=updates)
        except SaynaError as exc:
            await self.push_error(
                f"Sayna {self._label}: settings {updates} not applied: {exc}", exception=exc
            )

    def _classify_error(self, exception: Exception) -> Optional[ErrorCategory]:
        """Pipecat's category for Sayna's errors: a rejected config is an invalid
        request, a transport failure or timeout a connectivity one; HTTP statuses are
        left to Pipecat."""
        if isinstance(exception, (SaynaConfigRejectedError, SaynaValidationError)):
            return ErrorCategory.INVALID_REQUEST
        if getattr(exception, "status_code", None) is None and isinstance(
            exception, (SaynaConnectionError, SaynaTimeoutError)
        ):
            return ErrorCategory.CONNECTIVITY
        return None

    async def stop(self, frame: EndFrame) -> None:
        """End of the pipeline: leave the session (the last Sayna service closes it)."""
        await super().stop(frame)
        await self._leave(graceful=True)

    async def cancel(self, frame: CancelFrame) -> None:
        """Cancelled pipeline: leave the session at once."""
        await super().cancel(frame)
        await self._leave(graceful=False)

    async def _leave(self, *, graceful: bool) -> None:
        self._closing = True
        if self._join_done is not None:
            self._join_done.set()  # (a join cancelled below: nothing waits for it)
        reader, self._reader = self._reader, None
        if reader is not None:
            await self.cancel_task(reader)
        if self._session.unclaim(self, self._label):  # (a service refused has nothing to end)
            await self._session.release(self, graceful=graceful)

    async def _report(self, event: Any) -> None:
        """Push a server ``error`` or an unexpected end of the session as an
        ``ErrorFrame`` (once per session: only the first service on it reports). A close
        the client recovers from (``will_reconnect``) is not one: only the end of its
        reconnection, if it gives up (the ``ConnectionClosed`` that ends it, or
        :meth:`_report_end`); ``reconnected`` ends it. An unexpected end makes the
        services unusable (:meth:`_end_for_good`)."""
        if event.type == "reconnected":
            self._lost = False
            return
        gave_up = False
        if event.type == "closed":
            if event.will_reconnect:
                self._lost = True  # (until reconnected, or the close that ends it)
            else:
                gave_up, self._lost = self._lost, False
        if event.type == "error":
            if self._session.is_reporter(self) and not self._ended:
                await self.push_error(f"Sayna: {event.message}")
        elif not (self._closing or event.initiated_by_client or event.will_reconnect):
            reason = "reconnecting gave up" if gave_up else event.message
            await self._end_for_good(f"Sayna session closed: {reason}")

    async def _report_end(self) -> None:
        """The session's events ended: after a close the client was recovering from,
        its reconnection gave up (see :meth:`_end_for_good`)."""
        lost, self._lost = self._lost, False
        if lost and not self._closing:
            await self._end_for_good("Sayna session closed: reconnecting gave up")

    async def _end_for_good(self, message: str) -> None:
        """The session ended unexpectedly and will not come back: ``message`` is pushed
        once per session (by the first service on it) with
        ``force_treat_as_permanent=True``, and every service on it becomes unusable, so
        Pipecat stops giving them work (its ``ProcessorUnusablePolicy`` applies). From
        then on the services send nothing and report nothing more (until the pipeline
        starts again)."""
        if self._ended:
            return
        self._ended = True
        if self._session.is_reporter(self):
            await self.push_error(message, force_treat_as_permanent=True)
        else:
            await self.set_usable(False)


class SaynaSTTService(_SessionService, STTService):
    """Speech-to-text through a Sayna session, with Sayna's turn detection.

    Input audio frames go to ``client.on_audio_input``; ``stt_result`` events come back
    as ``InterimTranscriptionFrame`` / ``TranscriptionFrame`` and turn proposals (see
    the module docstring). Server ``error`` events and an unexpected end of the session
    are pushed as ``ErrorFrame``s.

    Args:
        client: the ``SaynaClient`` to use (pass the same one to ``SaynaTTSService`` to
            share its session); its ``stt_config`` must be ``linear16``, mono.
        sample_rate: input rate; defaults to the pipeline's ``audio_in_sample_rate``.
        should_interrupt: whether the start of a user turn interrupts the bot (routed to
            the ``ExternalUserTurnStrategies`` this service recommends).
        **kwargs: passed to Pipecat's ``STTService``.

    Raises:
        SaynaValidationError: ``client`` is not a ``SaynaClient`` with audio, or its
            ``stt_config`` is not 16-bit mono PCM.
    """

    _label = "STT"

    def __init__(
        self,
        *,
        client: SaynaClient,
        sample_rate: Optional[int] = None,
        should_interrupt: bool = True,
        **kwargs: Any,
    ) -> None:
        self._client = check_client(client, "SaynaSTTService")
        config = pcm_stt(client.stt_config, None, "SaynaSTTService")
        kwargs.setdefault(
            "settings", STTSettings(model=config.model or None, language=config.language)
        )
        super().__init__(sample_rate=sample_rate, **kwargs)
        self._session = SharedSession.of(client)
        self._should_interrupt = should_interrupt
        self._send_failed = False
        self._speaking = False
        self._unfinished = ""  # the last interim text of the turn, not final yet
        self._language = _language(config.language)

    async def _update_settings(self, delta: STTSettings) -> dict[str, Any]:  # type: ignore[override]
        """Pipecat's ``STTUpdateSettingsFrame``: ``model`` and ``language`` are sent to
        Sayna (``reconfigure``, once the TTS sentence in flight on the shared session
        ended: re-sent, the config would cut it); other settings are not applied (a
        warning says so)."""
        changed: dict[str, Any] = await super()._update_settings(delta)
        await self._apply_settings(changed, {"model": "model", "language": "language"})
        if "language" in changed and self._client.stt_config is not None:
            self._language = _language(self._client.stt_config.language)
        return changed

    def can_generate_metrics(self) -> bool:
        """True: TTFB metrics are reported (see Pipecat's ``STTService``)."""
        return True

    @property
    def supports_ttfs(self) -> bool:
        """False: Sayna decides where a turn ends, so there is no separate wait to tune."""
        return False

    def service_metadata_frame(self) -> STTMetadataFrame:
        """Recommend turn strategies that follow this service's turn proposals."""
        frame = super().service_metadata_frame()
        frame.user_turn_strategies = ExternalUserTurnStrategies(
            enable_interruptions=self._should_interrupt
        )
        return frame

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Set ``stt_config.sample_rate`` to the rate this service will send."""
        await super().setup(setup)
        self._client.stt_config = pcm_stt(
            self._client.stt_config, self.sample_rate, "SaynaSTTService"
        )

    async def run_stt(self, audio: bytes) -> AsyncGenerator[Optional[Frame], None]:
        """Send one frame of input audio to Sayna; results arrive on the reader task.

        A failed send is reported once as an ``ErrorFrame`` (then again only after a
        send has succeeded), so a lost session does not flood the pipeline; a session
        that ended is reported by the service that reads its end, not here, and nothing
        is sent once it was.
        """
        if self._ended:
            yield None
            return
        if not await self._joined():
            # Not on the session yet: its transcripts would be read by no one.
            logger.debug("Sayna STT: audio not sent: not connected")
            yield None
            return
        try:
            await self._client.on_audio_input(audio)
        except SaynaNotConnectedError as exc:
            # The session ended (its end is reported when its close is read) or never
            # opened (the failure to connect is reported).
            logger.debug("Sayna STT: audio not sent: %s", exc)
        except SaynaError as exc:
            if not self._send_failed:
                self._send_failed = True
                yield ErrorFrame(error=f"Sayna STT: audio not sent: {exc}", exception=exc)
        else:
            self._send_failed = False
        yield None

    async def _read(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            kind = event.type
            if kind == "stt_result":
                await self._on_result(event)
            elif kind in ("error", "closed", "reconnected"):
                if kind == "closed" and not self._closing:
                    await self._end_open_turn()
                await self._report(event)
        await self._end_open_turn()
        await self._report_end()

    async def _end_open_turn(self) -> None:
        """The session ended (or was lost) in the middle of a user turn: its speech-final
        will never come, so the turn ends here, with its last interim text as the final
        transcript (as LiveKit's plugin ends it with ``END_OF_SPEECH``)."""
        if not self._speaking:
            return
        text, self._unfinished = self._unfinished, ""
        if text:
            await self.push_frame(
                TranscriptionFrame(
                    text, self._user_id, time_now_iso8601(), self._language, finalized=True
                )
            )
        self._speaking = False
        await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)

    async def _on_result(self, result: STTResultMessage) -> None:
        text = result.transcript
        if text:
            if not self._speaking:
                self._speaking = True
                await self.broadcast_frame(ProposedUserStartedSpeakingFrame)
            if result.is_final or result.is_speech_final:
                self._unfinished = ""
                await self.emit_stt_usage_metrics()  # type: ignore[no-untyped-call]
                await self.push_frame(
                    TranscriptionFrame(
                        text,
                        self._user_id,
                        time_now_iso8601(),
                        self._language,
                        result=result,
                        finalized=result.is_speech_final,
                    )
                )
            else:
                self._unfinished = text
                await self.push_frame(
                    InterimTranscriptionFrame(
                        text, self._user_id, time_now_iso8601(), self._language, result=result
                    )
                )
        if result.is_speech_final and self._speaking:
            self._speaking = False
            self._unfinished = ""
            await self.broadcast_frame(ProposedUserStoppedSpeakingFrame)


class _Reply:
    """What the TTS service knows of one Pipecat audio context (a reply, or a
    ``TTSSpeakFrame``) while its text is spoken."""

    __slots__ = ("first_speak_at", "flushed")

    def __init__(self) -> None:
        self.first_speak_at = time.time()
        self.flushed = False  # all its text is queued: the end of its last text ends it


class SaynaTTSService(_SessionService, TTSService):
    """Text-to-speech through a Sayna session.

    Each aggregated sentence is sent with ``client.speak``, one at a time (the next when
    the previous one ended: Sayna reported it complete, refused it, or the session was
    lost), so the audio arriving is always the sentence in flight's, and goes to its
    audio context. Audio comes back as ``TTSAudioRawFrame`` at the pipeline's output
    rate; a context ends with a ``TTSStoppedFrame`` once its last sentence ended. A
    ``TTSSpeakFrame`` arriving during a reply is its own context. Sentences of the
    oldest context go first. An interruption sends ``clear`` when the sentence in
    flight is interrupted and drops the sentences not sent yet; audio of the cleared
    speech that was already on its way is dropped until the next sentence is sent.
    With ``allow_interruption=False`` Sayna ignores ``clear``: the sentence in flight
    is let finish (its audio dropped) before the next one is sent. A session lost and
    re-established (the client's ``ReconnectPolicy``) ends the sentence in flight; the
    sentences not sent yet follow on the new session. A sentence that gets neither
    audio nor its completion for ``sentence_timeout`` seconds (a provider that hangs,
    a completion lost) is given up: an ``ErrorFrame`` says so, and its context ends if
    it was its last sentence. ``clear`` is then sent and the next sentence follows;
    with ``allow_interruption=False`` Sayna ignores ``clear`` and may still speak it (a
    slow provider, a network that held its messages), and neither its audio nor its
    completion says whose it is, so the next sentence waits for its completion (its
    audio is dropped), or until it got nothing for ``sentence_timeout`` once more (a
    warning is logged; a completion of it coming even later would end the next
    sentence early).
    Metrics: TTFB (text sent to first audio), TTFA, and per context a processing time
    from its first ``speak`` to the end of its last.

    Args:
        client: the ``SaynaClient`` to use (the same one as ``SaynaSTTService`` to share
            its session); its ``tts_config.audio_format`` must be ``linear16``.
        sample_rate: output rate; defaults to the pipeline's ``audio_out_sample_rate``.
        allow_interruption: sent with every ``speak``: False makes Sayna ignore ``clear``.
        sentence_timeout: seconds a sentence sent may go without audio or completion
            before it is given up (None: wait for ever); with
            ``allow_interruption=False`` the next sentence waits for its completion up
            to that long again.
        **kwargs: passed to Pipecat's ``TTSService``.

    Raises:
        SaynaValidationError: ``client`` is not a ``SaynaClient`` with audio, its
            ``tts_config`` does not produce raw PCM, or ``sentence_timeout`` is not
            above 0.
    """

    _label = "TTS"

    def __init__(
        self,
        *,
        client: SaynaClient,
        sample_rate: Optional[int] = None,
        allow_interruption: bool = True,
        sentence_timeout: Optional[float] = 5.0,
        **kwargs: Any,
    ) -> None:
        self._client = check_client(client, "SaynaTTSService")
        config = pcm_tts(client.tts_config, None, "SaynaTTSService")
        kwargs.setdefault(
            "settings",
            TTSSettings(model=config.model or None, voice=config.voice_id, language=None),
        )
        # Pipecat pushes the TTSStoppedFrame of a context it ends itself (nothing came
        # for stop_frame_timeout_s: a slow LLM; more text opens it again with a
        # TTSStartedFrame); this service appends the others, and Pipecat pushes no
        # second one for a context whose TTSStoppedFrame it played.
        kwargs.setdefault("push_stop_frames", True)
        kwargs.setdefault("push_start_frame", True)
        # Sayna's audio carries no request id: hold the next reply until this one ended.
        kwargs.setdefault("pause_frame_processing", True)
        kwargs.setdefault("append_trailing_space", True)
        super().__init__(sample_rate=sample_rate, **kwargs)
        self._session = SharedSession.of(client)
        self._speaks = SpeakQueue(
            client,
            allow_interruption=allow_interruption,
            timeout=sentence_timeout,
            on_stall=self._stalled,
        )
        # The audio contexts with text queued or spoken, by context id.
        self._replies: dict[str, _Reply] = {}
        self._clear_due = False  # an interruption cut the sentence in flight

    async def _update_settings(self, delta: TTSSettings) -> dict[str, Any]:  # type: ignore[override]
        """Pipecat's ``TTSUpdateSettingsFrame``: ``voice`` and ``model`` are sent to
        Sayna (``reconfigure``) once the sentence in flight ended (re-sent, the config
        would cut it): it ends in the old voice, the sentences sent after it use the
        new one; other settings are not applied (a warning says so)."""
        changed: dict[str, Any] = await super()._update_settings(delta)
        await self._apply_settings(changed, {"voice": "voice_id", "model": "model"})
        return changed

    def can_generate_metrics(self) -> bool:
        """True: TTFB, TTFA and processing metrics are reported."""
        return True

    @property
    def supports_processing_metrics(self) -> bool:
        """False for Pipecat's own timing around ``run_tts`` (it only sends the text);
        this service reports the synthesis time itself when the reply completes."""
        return False

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        """Set ``tts_config.sample_rate`` to the pipeline's output rate."""
        await super().setup(setup)
        self._client.tts_config = pcm_tts(
            self._client.tts_config, self.sample_rate, "SaynaTTSService"
        )

    async def run_tts(self, text: str, context_id: str) -> AsyncGenerator[Optional[Frame], None]:
        """Queue ``text`` of ``context_id`` for ``client.speak``; its audio arrives on
        the reader task."""
        if self._ended:  # (Pipecat gives an unusable service no text; this is a race)
            logger.debug("Sayna TTS: the session ended, text dropped: %r", text)
            yield None
            return
        if context_id not in self._replies:
            self._replies[context_id] = _Reply()
        if not await self._joined():
            # Not on the session yet: its audio would be read by no one.
            logger.warning("Sayna TTS: not connected, text dropped: %r", text)
            await self._settle(context_id)
            yield None
            return
        await self._unsent(await self._speaks.add(text, context_id))
        yield None

    async def flush_audio(self, context_id: Optional[str] = None) -> None:
        """The context's text is all queued (None: every context's): it ends when its
        last text has."""
        for reply_id in [context_id] if context_id is not None else list(self._replies):
            reply = self._replies.get(reply_id)
            if reply is not None:
                reply.flushed = True
                await self._settle(reply_id)

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        """Pipecat's handling, then, after an interruption, ``clear`` (if the sentence
        in flight was cut) and the next sentence of a context that goes on."""
        await super().process_frame(frame, direction)
        if isinstance(frame, InterruptionFrame):
            await self._after_interruption()

    async def on_audio_context_interrupted(self, context_id: str) -> None:
        """An interrupted context: its sentences not sent yet are dropped, and its
        sentence in flight is disowned (its audio dropped from now on)."""
        await self.stop_all_metrics()  # type: ignore[no-untyped-call]
        self._interrupted(context_id)
        await super().on_audio_context_interrupted(context_id)

    async def on_audio_context_completed(self, context_id: str) -> None:
        """Pipecat ended a context: one this service ended, or one that got nothing for
        ``stop_frame_timeout_s`` (a slow LLM; more text for it opens it again)."""
        if context_id in self._replies and not self._speaks.holds(context_id):
            del self._replies[context_id]
        await super().on_audio_context_completed(context_id)

    def _claimed(self) -> None:
        # A settings change (this service's or the STT's) waits for the sentence in
        # flight: re-sent, the config would cut it. (Registered by the running service
        # only: one built for a later call must not take its place.)
        self._session.speaker(self._speaks, self._unsent)

    async def _leave(self, *, graceful: bool) -> None:
        await super()._leave(graceful=graceful)
        self._speaks.reset()  # (its events are read no more: nothing in flight ends)
        self._session.unspeaker(self._speaks)

    def _interrupted(self, context_id: str) -> None:
        if self._replies.pop(context_id, None) is not None:
            self._clear_due = self._speaks.allow_interruption
        if self._speaks.discard(context_id):  # its sentence is in flight
            self._speaks.disown()

    async def _after_interruption(self) -> None:
        # A context Pipecat had ended itself (a timeout) but whose text was still queued
        # was not reported as interrupted: it is, all the same.
        for context_id in [c for c in self._replies if not self.audio_context_available(c)]:
            self._interrupted(context_id)
        clear, self._clear_due = self._clear_due, False
        if not clear or self._speaks.current is not None:
            # Nothing interrupted, Sayna ignores clear (the disowned sentence ends at its
            # completion), or the sentence in flight is of a context that goes on
            # (Pipecat's uninterruptible ones): clear would cut it.
            return
        try:
            await self._client.clear()
        except SaynaError as exc:
            logger.warning("Sayna TTS: clear failed: %s", exc)
        await self._unsent(await self._speaks.cleared())

    async def _read(self, events: AsyncIterator[Any]) -> None:
        async for event in events:
            kind = event.type
            if kind == "tts_audio":
                await self._on_audio(event.data)
            elif kind == "tts_playback_complete":
                await self._on_end()
            elif kind == "error":
                if event.message.startswith(REFUSED) and self._speaks.in_flight:
                    await self._on_end()  # a refused speak gets no completion
                await self._report(event)
            elif kind == "closed":
                if event.will_reconnect:
                    ended = self._speaks.hold()  # the sentence in flight went with it
                    if ended is not None:
                        await self._settle(ended)
                else:
                    await self._over()
                await self._report(event)
            elif kind == "reconnected":
                await self._report(event)
                await self._unsent(await self._speaks.resume())
        await self._over()  # the session ended for good (a reconnection gave up)
        await self._report_end()

    def _stalled(self, serial: int) -> None:
        """The sentence sent as number ``serial`` got nothing for ``sentence_timeout``
        (called by the speak queue's timer)."""
        self.create_task(self._give_up(serial), name="sayna-tts-give-up")

    async def _give_up(self, serial: int) -> None:
        """Give up the stalled sentence ``serial`` (if it has not ended meanwhile): report
        it and end its context. Its audio or completion must not reach the next sentence:
        where Sayna heeds ``clear``, it is cancelled and the next sentence is sent;
        otherwise (``allow_interruption=False``) Sayna may still speak it, so the next
        sentence waits for its completion (its audio dropped), until it stalls once
        more (then a warning, and the next sentence is sent)."""
        speaks = self._speaks
        if not speaks.in_flight or speaks.serial != serial:
            return
        ended = speaks.current
        message = f"Sayna TTS: no audio and no completion for {speaks.timeout} s: sentence given up"
        if not speaks.allow_interruption and speaks.linger(serial):
            await self.push_error(message)
            if ended is not None:
                await self._settle(ended)
            return
        if speaks.lingering:
            logger.warning(
                "Sayna TTS: the sentence given up got no audio and no completion for %s s "
                "more: the next sentence is sent",
                speaks.timeout,
            )
        else:
            await self.push_error(message)
        if speaks.allow_interruption:
            try:
                await self._client.clear()
            except SaynaError as exc:
                logger.warning("Sayna TTS: clear failed: %s", exc)
        unsent = await speaks.expire(serial)
        if unsent is None:
            return  # it ended meanwhile
        await self._unsent(unsent)
        if ended is not None:
            await self._settle(ended)

    async def _on_audio(self, data: bytes) -> None:
        self._speaks.progress()
        context_id = self._speaks.current
        if context_id is None:
            return  # cleared or disowned speech still on its way
        if not self.audio_context_available(context_id):
            # Pipecat ended the context (nothing came for stop_frame_timeout_s): open it
            # again, with its own TTSStartedFrame.
            await self.create_audio_context(context_id)
            await self.append_to_audio_context(context_id, TTSStartedFrame(context_id=context_id))
        await self.append_to_audio_context(
            context_id, TTSAudioRawFrame(data, self.sample_rate, 1, context_id=context_id)
        )

    async def _on_end(self) -> None:
        """The sentence in flight ended: send the next one, end its context if done."""
        ended = self._speaks.current
        await self._unsent(await self._speaks.completed())
        if ended is not None:
            await self._settle(ended)

    async def _over(self) -> None:
        """The session is over: nothing queued will be spoken; every context whose text
        is all queued ends."""
        self._speaks.reset()
        for context_id in list(self._replies):
            await self._settle(context_id)

    async def _unsent(self, unsent: list[Unsent]) -> None:
        """Report texts ``speak`` failed for, and end their contexts if done."""
        for item in unsent:
            if self._session.is_owner(self) and not (
                self._ended or isinstance(item.error, SaynaNotConnectedError)
            ):
                await self.push_error(
                    f"Sayna TTS: speak failed: {item.error}", exception=item.error
                )
            else:  # not connected, or the session ended: reported once, not once a text
                logger.warning("Sayna TTS: not connected, text dropped: %r", item.text)
        for context_id in dict.fromkeys(item.tag for item in unsent):
            await self._settle(context_id)

    async def _settle(self, context_id: str) -> None:
        """End the context if its text is all queued and none of it is left to speak."""
        reply = self._replies.get(context_id)
        if reply is not None and reply.flushed and not self._speaks.holds(context_id):
            await self._end_reply(context_id, reply)

    async def _end_reply(self, context_id: str, reply: _Reply) -> None:
        del self._replies[context_id]
        if self.audio_context_available(context_id):
            await self.append_to_audio_context(context_id, TTSStoppedFrame(context_id=context_id))
            await self.remove_audio_context(context_id)
        # Pipecat's collector measures from the context's first speak to now.
        await self.start_processing_metrics(start_time=reply.first_speak_at)
        await self.stop_processing_metrics()
