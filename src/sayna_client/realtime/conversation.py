"""Conversation bookkeeping on top of raw events: turns, playback waits, latency metrics.

:class:`SessionTracker` watches the event stream inline (it is cheap and never
calls user code), so it sees every event exactly when the reader does:

* it joins interim and final ``stt_result`` events into one :class:`Turn` per
  user turn (the server's forced speech-final carries an empty transcript, so the
  text is the concatenation of the turn's finals);
* it knows whether synthesized speech is still outstanding (a ``speak`` sent
  since the last ``tts_playback_complete``), for ``speak(wait=True)`` and
  ``drain()``;
* it measures latencies users tune: connect → ready, speak → first audio byte,
  speak → playback complete, first audio sent → first interim / final result;
* it tells the session's speech (its :class:`SpeechListener`) of each turn's end and
  each completion, so that the speech queue and its turn metrics need no observer of
  their own on the hub: one call per turn and per completion, none per result (issue
  #19, CPU at 1,000 sessions).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from dataclasses import dataclass, fields
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Literal, Optional, Protocol

if TYPE_CHECKING:
    from .hub import EventHub

__all__ = [
    "AudioCounts",
    "FirstAudioListener",
    "SessionMetrics",
    "SessionTracker",
    "SpeechListener",
    "TTSCounts",
    "Turn",
    "count_audio_sent",
    "stop_counting_audio",
]

logger = logging.getLogger("sayna_client")


@dataclass(frozen=True)
class Turn:
    """One user turn: everything said between the first result and ``is_speech_final``.

    Attributes:
        text: the turn's final transcripts joined with spaces.
        confidence: mean confidence of the final segments (1.0 when there were none).
        segments: the ``is_final`` transcripts in order.
        started_at / ended_at: ``time.monotonic()`` of the first result and of the
            speech-final.
        interim_count: how many interim results the turn had.
    """

    type: ClassVar[Literal["turn"]] = "turn"

    text: str
    confidence: float
    segments: tuple[str, ...]
    started_at: float
    ended_at: float
    interim_count: int

    @property
    def duration(self) -> float:
        """Seconds from the first result to the end of the turn."""
        return self.ended_at - self.started_at


#: The sources :class:`SessionMetrics` counters read while linked (see :func:`_link`):
#: the key of the source in the metrics' ``__dict__``, and the counters reading it.
_AUDIO = "_audio_source"  # the session's audio input (``AudioCounts``)
_TTS = "_tts_source"  # the tracker's TTS counts (``TTSCounts``)
_LINKED = {
    _AUDIO: ("audio_frames_sent", "audio_bytes_sent"),
    _TTS: ("tts_audio_frames", "tts_audio_bytes"),
}


class _Counted:
    """A counter of :class:`SessionMetrics`: what the metrics were given (0, or a value
    assigned), plus, while linked to a source (:func:`_link`), that source's own count
    (``attr``). The audio input and the tracker count on themselves, which every frame
    reads anyway: a frame then touches one object less (issue #19); this reads the
    count when someone looks. The values are plain attributes, not read through the
    instance's ``__dict__``, which asking for would make a dict object per session for
    the cycle collector to track (the attributes live in the instance itself until
    then)."""

    __slots__ = ("_attr", "_key", "_own")

    def __init__(self, key: str, attr: str) -> None:
        self._key = key
        self._attr = attr
        self._own = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._own = "_" + name

    def __get__(self, obj: Optional[SessionMetrics], owner: Optional[type] = None) -> int:
        if obj is None:
            return 0  # the field's default (for the dataclass)
        source = getattr(obj, self._key)
        own: int = getattr(obj, self._own)
        return own if source is None else own + getattr(source, self._attr)

    def __set__(self, obj: SessionMetrics, value: int) -> None:
        source = getattr(obj, self._key)
        own = value if source is None else value - getattr(source, self._attr)
        object.__setattr__(obj, self._own, own)


class _Kept:
    """A latency history of :class:`SessionMetrics` (a list): made when first read, so
    that a session which measured nothing and was never looked at holds no list (a
    list is an object the cycle collector tracks, even empty: two per idle session,
    issue #19). Assigning replaces it; assigning None leaves it to be made again."""

    __slots__ = ("_own",)

    def __init__(self) -> None:
        self._own = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self._own = "_" + name

    def __get__(
        self, obj: Optional[SessionMetrics], owner: Optional[type] = None
    ) -> Optional[list[float]]:
        if obj is None:
            return None  # the field's default (for the dataclass): made when read
        values: Optional[list[float]] = getattr(obj, self._own)
        if values is None:
            values = []
            object.__setattr__(obj, self._own, values)
        return values

    def __set__(self, obj: SessionMetrics, value: Optional[list[float]]) -> None:
        object.__setattr__(obj, self._own, value)


@dataclass
class SessionMetrics:
    """Latency figures of the current session, in seconds (``None`` until measured).

    The ``*_last`` values are the most recent measurement; the lists keep every
    measurement of the session (bounded to the last 1,000) for percentiles. The counters
    are current whenever read (``audio_frames_sent`` and ``audio_bytes_sent`` count the
    frames ``on_audio_input`` sent in this session, ``tts_audio_frames`` and
    ``tts_audio_bytes`` the TTS audio received); a copy (``copy.copy``,
    :meth:`as_dict`) is a snapshot.
    """

    connect_to_ready: Optional[float] = None
    speak_to_first_audio_last: Optional[float] = None
    speak_to_playback_complete_last: Optional[float] = None
    audio_to_first_interim: Optional[float] = None
    audio_to_first_final: Optional[float] = None
    speak_to_first_audio: list[float] = _Kept()  # type: ignore[assignment]
    speak_to_playback_complete: list[float] = _Kept()  # type: ignore[assignment]
    turns: int = 0
    audio_frames_sent: int = _Counted(_AUDIO, "frames_sent")  # type: ignore[assignment]
    audio_bytes_sent: int = _Counted(_AUDIO, "bytes_sent")  # type: ignore[assignment]
    tts_audio_frames: int = _Counted(_TTS, "frames")  # type: ignore[assignment]
    tts_audio_bytes: int = _Counted(_TTS, "bytes")  # type: ignore[assignment]
    # The counters' sources while linked (see _link): class attributes, not fields.
    _audio_source: ClassVar[Optional[object]] = None
    _tts_source: ClassVar[Optional[object]] = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able snapshot."""
        snapshot = {}
        for item in fields(self):
            value = getattr(self, item.name)
            snapshot[item.name] = list(value) if isinstance(value, list) else value
        return snapshot

    def __getstate__(self) -> dict[str, Any]:
        # Copies and pickles hold the counts as they are now, not their sources.
        state = dict(self.__dict__)
        for key, names in _LINKED.items():
            if state.pop(key, None) is not None:
                for name in names:
                    state["_" + name] = getattr(self, name)
        return state


def _link(metrics: SessionMetrics, key: str, source: Optional[object]) -> None:
    """The counters of ``key`` (see :data:`_LINKED`) keep their values and read
    ``source`` from now on (None: let go of it, the values stay as they are now)."""
    names = _LINKED[key]
    values = [getattr(metrics, name) for name in names]
    object.__setattr__(metrics, key, source)
    for name, value in zip(names, values):
        setattr(metrics, name, value)


class AudioCounts(Protocol):
    """What counts the audio frames sent in a session (the session's audio input)."""

    frames_sent: int

    @property
    def bytes_sent(self) -> int: ...


def count_audio_sent(metrics: SessionMetrics, source: AudioCounts) -> None:
    """From now on ``metrics.audio_frames_sent`` / ``audio_bytes_sent`` add what
    ``source`` counts (its ``frames_sent`` and ``bytes_sent``) to their values."""
    _link(metrics, _AUDIO, source)


def stop_counting_audio(metrics: SessionMetrics) -> None:
    """Keep the counts ``metrics`` read from its source as they are now, and let go of
    the source (the session ended: the next one counts in metrics of its own)."""
    _link(metrics, _AUDIO, None)


class FirstAudioListener(Protocol):
    """What :meth:`SessionTracker.on_next_audio` calls at the next TTS frame (a
    session's :class:`~sayna_client.agents.TurnMetrics`)."""

    def on_first_audio(self, now: float) -> None:
        """The first TTS frame since the call, at ``now`` (a ``clock()`` reading)."""
        ...


class SpeechListener(Protocol):
    """What :meth:`SessionTracker.listen_speech` tells: the session's speech (its
    ``Speaking`` part, then its speech queue once made)."""

    def on_turn(self, text: str, words_at: float, ended_at: float) -> None:
        """A user turn ended: its :attr:`Turn.text`, when its first result with text
        arrived and when its speech-final did (the tracker's ``clock()`` readings).
        ``text`` is empty for words heard in interim results only, then an empty
        speech-final: no :class:`Turn`, but a turn to measure."""
        ...

    def on_playback_complete(self, event: Any) -> None:
        """A ``tts_playback_complete`` arrived (after the tracker ended its waits)."""
        ...

    def on_session_closed(self) -> None:
        """The session's socket closed (before its ``ConnectionClosed`` is published)."""
        ...


class TTSCounts:
    """The TTS frames and bytes a client received, in every session so far, counted by
    the session's one per-frame audio observer (:meth:`on_audio`) on this object: a frame
    touches it alone (issue #19). The session's metrics read the counts (see
    :func:`_link`); the tracker is called only for a frame it waits for. It refers to
    the tracker weakly: the metrics hold it, the tracker holds them (no cycle)."""

    __slots__ = ("bytes", "frames", "tracker", "watching")

    def __init__(self, tracker: SessionTracker) -> None:
        self.frames = 0
        self.bytes = 0
        #: The next frame is to be timed (a speak waits for its first audio, or a hook
        #: is set): the one test the per-frame path makes beyond counting.
        self.watching = False
        self.tracker = weakref.ref(tracker)

    def on_audio(self, data: bytes) -> None:
        """Count one TTS frame (the clock is read only for a frame waited for)."""
        self.frames += 1
        self.bytes += len(data)
        if self.watching:
            tracker = self.tracker()
            if tracker is not None:
                tracker.first_audio()

    def on_audio_run(self, run: list[bytes]) -> None:
        """Count frames that came in a row, none of them waited for (the hub gives a
        frame waited for to :meth:`on_audio` alone)."""
        self.frames += len(run)
        self.bytes += sum(map(len, run))


_HISTORY = 1000


def _keep(values: list[float], value: float) -> None:
    """Append ``value`` to a latency history, keeping the last :data:`_HISTORY`."""
    values.append(value)
    if len(values) > _HISTORY:
        del values[: len(values) - _HISTORY]


#: Whether the SDK logs at DEBUG (the per-speak latency lines are built only then):
#: ``logger.isEnabledFor`` without an attribute lookup per call.
_debug = partial(logger.isEnabledFor, logging.DEBUG)


class SessionTracker:
    """Inline observer of one client's events (see the module docstring)."""

    __slots__ = (
        "__weakref__",
        "_audio_before",
        "_audio_hook",
        "_audio_source",
        "_clock",
        "_confidences",
        "_first_audio_pending",
        "_first_audio_sent_at",
        "_frames_answered",
        "_hub",
        "_interims",
        "_playback_from",
        "_playback_waiters",
        "_results",
        "_segments",
        "_speech",
        "_tts",
        "_turn_started",
        "_turn_waiters",
        "_words_at",
        "metrics",
        "peer_left",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        #: TTS frames and bytes received in every session of the client so far, read by
        #: ``metrics``, whose counts are those of the current session (see :func:`_link`).
        self._tts = TTSCounts(self)
        self.metrics = self._new_metrics()
        #: Audio bytes sent in the client's sessions before the current one.
        self._audio_before = 0
        # The lists below are made when first needed (None: empty): an idle session
        # holds none of them (56 bytes each; issue #19, idle memory per session).
        #: When the first ``speak`` since the last ``tts_playback_complete`` went out
        #: (None: no speech outstanding).
        self._playback_from: Optional[float] = None
        self._first_audio_pending: Optional[float] = None
        self._playback_waiters: Optional[list[asyncio.Future[None]]] = None
        self._turn_waiters: Optional[list[asyncio.Future[Optional[Turn]]]] = None
        #: When the session's first audio went out, while a latency from it (to the first
        #: result, to the first final) is still to be measured.
        self._first_audio_sent_at: Optional[float] = None
        #: What counts the audio frames this session sent (its audio input, from its
        #: first frame to the end of the session: see :meth:`audio_started`), and the
        #: count when the last ``stt_result`` arrived: read there directly, not through
        #: the metrics' descriptor, for it is read at every result (issue #19).
        self._audio_source: Optional[AudioCounts] = None
        self._frames_answered = 0
        # The turn being assembled.
        self._segments: Optional[list[str]] = None
        self._confidences: Optional[list[float]] = None
        self._turn_started: Optional[float] = None
        #: When the turn's first result with text arrived (the turn metrics' start).
        self._words_at: Optional[float] = None
        self._interims = 0
        self._results = 0  # stt_result events seen (activity)
        #: Told the time of the next TTS frame (see :meth:`on_next_audio`).
        self._audio_hook: Optional[FirstAudioListener] = None
        #: A ``participant_disconnected`` arrived in this session.
        self.peer_left = False
        #: Where turns are published (see :meth:`watch`), held weakly: no cycle.
        self._hub: Optional[weakref.ref[EventHub]] = None
        #: Told of each turn's end and each completion (see :meth:`listen_speech`).
        self._speech: Optional[SpeechListener] = None

    def watch(self, hub: EventHub) -> None:
        """Observe ``hub``'s events inline and publish a :class:`Turn` to it at the end of
        each turn (the hub is held weakly: it holds this tracker's observers)."""
        self._hub = weakref.ref(hub)  # the hub's one weak reference, shared
        hub.count_audio(self._tts)
        hub.observe("tts_playback_complete", self.on_playback_complete)
        hub.observe("stt_result", self.on_stt_result)
        hub.observe("participant_disconnected", self.on_participant_disconnected)

    def listen_speech(self, listener: Optional[SpeechListener]) -> None:
        """Tell ``listener`` (inline, after the tracker's own work and the ``turn``
        event) of every turn's end and every ``tts_playback_complete``; replaces the
        listener given before (None: none). It is held: it must not hold the tracker."""
        self._speech = listener

    # --- session boundaries -----------------------------------------------------------

    def connecting(self) -> float:
        """Reset for a new session; returns the start time to pass to :meth:`ready`."""
        _link(self.metrics, _TTS, None)  # the last session's keep what they counted
        self._audio_before += self.metrics.audio_bytes_sent
        self.metrics = self._new_metrics()
        self.peer_left = False
        self._playback_from = None
        self._first_audio_pending = None
        self._tts.watching = self._audio_hook is not None
        self._first_audio_sent_at = None
        self._audio_source = None
        self._frames_answered = 0
        self._reset_turn()
        return self._clock()

    def _new_metrics(self) -> SessionMetrics:
        """Metrics for a new session, counting its TTS audio from 0."""
        metrics = SessionMetrics()
        _link(metrics, _TTS, self._tts)
        return metrics

    @property
    def tts_counts(self) -> TTSCounts:
        """The TTS frames and bytes received in every session of the client so far (an
        object that refers to this tracker weakly: the speech queue and its metrics
        read it)."""
        return self._tts

    def audio_bytes_total(self) -> int:
        """Audio bytes ``on_audio_input`` sent in every session of the client so far (a
        session's count is final once it closed: nothing is sent until the next one)."""
        return self._audio_before + self.metrics.audio_bytes_sent

    def tts_bytes_total(self) -> int:
        """TTS audio bytes received in every session of the client so far."""
        return self._tts.bytes

    def tts_received(self) -> tuple[int, int]:
        """TTS frames and bytes received in every session of the client so far: counts
        that only grow, which the speech queue credits to its handles by difference
        (see :mod:`sayna_client.agents.speech`)."""
        tts = self._tts
        return tts.frames, tts.bytes

    @property
    def activity(self) -> int:
        """Number of ``stt_result`` and TTS events seen; ``drain()`` and the keepalive
        watch it change."""
        return self._results + self._tts.frames

    def on_participant_disconnected(self, _event: object) -> None:
        self.peer_left = True

    def ready(self, started: float) -> None:
        self.metrics.connect_to_ready = self._clock() - started
        logger.debug("Sayna metrics: connect -> ready %.1f ms", self.metrics.connect_to_ready * 1e3)

    def closed(self, error: Callable[[], BaseException], *, lost: bool = False) -> None:
        """The session's socket closed: wake every waiter with the exception ``error()``
        makes (built only when someone is waiting: most sessions end with no waiter),
        and end the turn under way, which the server forgets with the socket (a later
        session's recognizer starts afresh: nothing would end it). When the server or
        the network ended it (``lost``), a turn that had finals ends as at a
        speech-final, with what it had: its :class:`Turn` is published (and counted),
        before the close; the speech is not told of that turn (no reply can go out
        meanwhile), only of the close, before it (:meth:`SpeechListener.on_session_closed`:
        the turn metrics close the record of the turn before)."""
        # The audio input holds the connection: let go of it (no cycle through the hub);
        # the metrics go on reading its count.
        self._audio_source = None
        waiters = [*(self._playback_waiters or ()), *(self._turn_waiters or ())]
        self._playback_waiters = self._turn_waiters = None
        if waiters:
            exc = error()
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
        self._playback_from = None
        if self._speech is not None:
            self._speech.on_session_closed()  # (the turn metrics' record of the last turn)
        if self._turn_started is None:
            return
        turn = self._turn(self._clock()) if lost and self._segments else None
        self._reset_turn()
        if turn is not None:
            self.metrics.turns += 1
            hub = self._hub() if self._hub is not None else None
            if hub is not None:
                hub.publish(turn)

    # --- outbound ---------------------------------------------------------------------

    def speak_sent(self) -> None:
        if self._playback_from is None:
            # speak -> first audio is timed only from a speak sent with nothing else
            # outstanding: TTS frames carry no speak of their own, so behind earlier
            # speech the next frame may still be that speech's.
            self._playback_from = self._first_audio_pending = self._clock()
            self._tts.watching = True

    def audio_started(self, source: AudioCounts) -> None:
        """The client is about to send audio; ``source`` (the session's audio input)
        counts the frames it sends in this session from its first frame on (and is
        linked to ``metrics`` by :func:`count_audio_sent`)."""
        self._audio_source = source
        # (Dropped again once the first final measured the latency from it.)
        if self._first_audio_sent_at is None and self.metrics.audio_to_first_final is None:
            self._first_audio_sent_at = self._clock()

    # --- inbound (called inline by the hub) ----------------------------------------------

    def on_next_audio(self, listener: FirstAudioListener) -> None:
        """Call ``listener.on_first_audio(time)`` inline at the next TTS frame, once
        (with the ``clock()`` reading of that frame); a later call replaces the
        listener, which is held until then. It outlives a reconnection: the next frame
        may come in the next session."""
        self._audio_hook = listener
        self._tts.watching = True

    def on_tts_audio(self, data: bytes) -> None:
        """One TTS frame (the session's audio observer is :class:`TTSCounts`' own)."""
        self._tts.on_audio(data)

    def first_audio(self) -> None:
        """The TTS frame just counted is the one a speak or a hook waited for."""
        self._tts.watching = False
        now = self._clock()
        pending = self._first_audio_pending
        if pending is not None:
            value = now - pending
            self._first_audio_pending = None
            metrics = self.metrics
            metrics.speak_to_first_audio_last = value
            _keep(metrics.speak_to_first_audio, value)
            if _debug():
                logger.debug("Sayna metrics: speak -> first audio %.1f ms", value * 1e3)
        hook = self._audio_hook
        if hook is not None:
            self._audio_hook = None
            hook.on_first_audio(now)

    def cleared(self) -> None:
        """``clear`` was sent: cancelled speech gets no completion, so end the waits now."""
        self._playback_ended(measure=False)

    def refused(self) -> None:
        """The server refused the last ``speak`` outstanding (``Failed to synthesize
        speech``): no completion comes for it, so end the waits now."""
        self._playback_ended(measure=False)

    def on_playback_complete(self, event: Any) -> None:
        """A ``tts_playback_complete``: measure it, end the waits, then tell the speech."""
        self._playback_ended(measure=True)
        speech = self._speech
        if speech is not None:
            speech.on_playback_complete(event)

    def _playback_ended(self, *, measure: bool) -> None:
        """No speech is outstanding any more (``measure``: a completion arrived)."""
        sent = self._playback_from
        if sent is not None and measure:
            value = self._clock() - sent
            metrics = self.metrics
            metrics.speak_to_playback_complete_last = value
            _keep(metrics.speak_to_playback_complete, value)
            if _debug():
                logger.debug("Sayna metrics: speak -> playback complete %.1f ms", value * 1e3)
        # Completions coalesce: one marks the whole queue drained.
        self._playback_from = None
        self._first_audio_pending = None
        self._tts.watching = self._audio_hook is not None
        waiters = self._playback_waiters
        if waiters is not None:
            self._playback_waiters = None
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(None)

    def on_stt_result(self, event: Any) -> Optional[Turn]:
        """Fold one result into the current turn; returns the turn when it ends, after
        publishing it to the hub it watches (:meth:`watch`)."""
        self._results += 1
        source = self._audio_source
        if source is not None:  # (None: no audio sent in this session, nothing to note)
            self._frames_answered = source.frames_sent
        # The clock is read at a turn's first result, at its first words (the turn
        # metrics' start), at its end and while a latency from the first audio is still
        # to be measured (the first final comes after the first result;
        # ``_first_audio_sent_at`` is dropped once it came), not for every interim of a
        # turn under way.
        if (
            self._turn_started is None
            or event.is_speech_final
            or self._first_audio_sent_at is not None
        ):
            now = self._clock()
            audio_at = self._first_audio_sent_at
            if audio_at is not None:
                metrics = self.metrics
                if metrics.audio_to_first_interim is None:
                    metrics.audio_to_first_interim = now - audio_at
                    logger.debug(
                        "Sayna metrics: audio -> first result %.1f ms",
                        metrics.audio_to_first_interim * 1e3,
                    )
                if event.is_final and event.transcript:
                    if metrics.audio_to_first_final is None:
                        metrics.audio_to_first_final = now - audio_at
                    self._first_audio_sent_at = None  # both measured: no more clock
            if self._turn_started is None:
                self._turn_started = now
            if self._words_at is None and event.transcript:
                self._words_at = now
        elif self._words_at is None and event.transcript:
            self._words_at = self._clock()  # (an interim after empty ones)
        if event.is_final:
            if event.transcript:
                self._add_segment(event)
        else:
            self._interims += 1
            if event.is_speech_final and event.transcript:
                self._add_segment(event)  # (a speech-final is a final, flagged or not)
        if not event.is_speech_final:
            return None
        # (``now`` was read above: a speech-final always reads the clock.)
        segments = self._segments or ()
        if not segments:  # a speech-final with nothing said in a final: no turn
            words_at = self._words_at
            self._reset_turn()
            self._turn_ended(None)
            speech = self._speech
            if words_at is not None and speech is not None:
                # Words in interims only (noise, a word withdrawn): the metrics measure
                # it, so that a reply to it is timed from its end.
                speech.on_turn("", words_at, now)
            return None
        turn = self._turn(now)
        self.metrics.turns += 1
        words_at = self._words_at
        self._reset_turn()
        self._turn_ended(turn)
        hub = self._hub() if self._hub is not None else None
        if hub is not None:
            hub.publish(turn)
        speech = self._speech
        if speech is not None:
            speech.on_turn(turn.text, now if words_at is None else words_at, now)
        return turn

    def _turn(self, now: float) -> Turn:
        """The turn under way (it has finals), ending at ``now``."""
        segments = self._segments or ()
        confidences = self._confidences
        started = self._turn_started
        return Turn(
            text=" ".join(segments),
            confidence=sum(confidences) / len(confidences) if confidences else 1.0,
            segments=tuple(segments),
            started_at=now if started is None else started,
            ended_at=now,
            interim_count=self._interims,
        )

    def _add_segment(self, event: Any) -> None:
        if self._segments is None or self._confidences is None:
            self._segments, self._confidences = [], []
        self._segments.append(event.transcript)
        self._confidences.append(event.confidence)

    def _turn_ended(self, turn: Optional[Turn]) -> None:
        waiters, self._turn_waiters = self._turn_waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(turn)

    def _reset_turn(self) -> None:
        self._segments = None
        self._confidences = None
        self._turn_started = None
        self._words_at = None
        self._interims = 0

    # --- waiting ----------------------------------------------------------------------

    @property
    def playback_pending(self) -> bool:
        """A ``speak`` was sent and its ``tts_playback_complete`` has not arrived."""
        return self._playback_from is not None

    def audio_answered(self) -> None:
        """Count the audio sent so far as answered: the recogniser had it and went quiet
        (``finish_audio()``), so it is owed no result."""
        self._frames_answered = self._frames_sent()

    @property
    def audio_unanswered(self) -> bool:
        """Audio was sent since the last ``stt_result`` (its results may be in flight)."""
        return self._frames_sent() != self._frames_answered

    def _frames_sent(self) -> int:
        """Audio frames sent in this session: the input's count while the session runs,
        the metrics' after (the same: the input counts from 0 for the metrics)."""
        source = self._audio_source
        return source.frames_sent if source is not None else self.metrics.audio_frames_sent

    @property
    def turn_pending(self) -> bool:
        """Results of an unfinished turn arrived (interim without final, or finals
        without the speech-final)."""
        return self._turn_started is not None

    def wait_playback(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.playback_pending:
            if self._playback_waiters is None:
                self._playback_waiters = []
            self._playback_waiters.append(waiter)
        else:
            waiter.set_result(None)
        return waiter

    def wait_turn_end(self) -> asyncio.Future[Optional[Turn]]:
        """Resolved when the current turn ends (at once, with None, when none is pending)."""
        waiter: asyncio.Future[Optional[Turn]] = asyncio.get_running_loop().create_future()
        if self.turn_pending:
            self._add_turn_waiter(waiter)
        else:
            waiter.set_result(None)
        return waiter

    def next_speech_final(self) -> asyncio.Future[Optional[Turn]]:
        """Resolved at the next speech-final: with its :class:`Turn`, or None when it
        ended nothing said; fails with the close error if the session ends first."""
        waiter: asyncio.Future[Optional[Turn]] = asyncio.get_running_loop().create_future()
        self._add_turn_waiter(waiter)
        return waiter

    def _add_turn_waiter(self, waiter: asyncio.Future[Optional[Turn]]) -> None:
        if self._turn_waiters is None:
            self._turn_waiters = []
        self._turn_waiters.append(waiter)
