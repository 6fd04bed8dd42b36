"""The session's speech queue and turn metrics: the agents toolkit's classes, hooked to
the session through their own methods.

:class:`~sayna_client.agents.SpeechQueue` and :class:`~sayna_client.agents.TurnMetrics`
take their hooks (the sends, the TTS format, the counts, where records go) as callables.
A session's queue and metrics are :class:`SessionSpeechQueue` and
:class:`SessionTurnMetrics`, whose hooks are methods of their own reading the session:
no bound method per hook per session for every full collection to walk (issue #19: the
hooks were 12 bound methods, a link object, a hook object and a weak reference per
session that spoke or heard a result). Both refer to the session through its weak proxy
and hold the tracker's TTS counts (which refer to the tracker weakly): nothing here
keeps the session alive, and no cycle is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .._checks import check_utf8
from ..agents.metrics import TurnMetrics
from ..agents.speech import SpeechQueue, bytes_per_second
from ..errors import SaynaNotConnectedError, SaynaValidationError
from ..protocol.commands import ClearMessage, encode, encode_speak
from ..protocol.encodings import bytes_per_sample
from .events import CallbackError

if TYPE_CHECKING:
    from .conversation import TTSCounts
    from .core import SessionCore

__all__ = [
    "SessionSpeechQueue",
    "SessionTurnMetrics",
    "alive",
    "check_flags",
    "or_none",
    "send_clear",
]

#: The TTS format of a session that was freed.
_DEFAULT_FORMAT = ("linear16", 24000)
#: Provider names (``provider/model``) by (provider, model): the TTS one is read on every
#: speak (usage per provider); shared by every session, bounded.
_NAMES: dict[tuple[Optional[str], Optional[str]], str] = {}
_MAX_NAMES = 64
#: The metrics' hooks that :class:`SessionTurnMetrics` answers with methods.
_METRICS_HOOKS = ("emit", "providers", "synthesized", "transcribed", "tts_rate", "watch_audio")


def _name(config: Any, default: str) -> str:
    """``provider/model`` of an STT or TTS config (``default`` for None)."""
    if config is None:
        return default
    key = (config.provider, config.model)
    name = _NAMES.get(key)
    if name is None:
        name = "/".join(filter(None, key))
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[key] = name
    return name


def alive(session: SessionCore) -> SessionCore:
    """``session`` (a weak proxy), or ``SaynaNotConnectedError`` once it was freed."""
    try:
        session.hub  # noqa: B018 (raises ReferenceError for a freed session)
    except ReferenceError:
        raise SaynaNotConnectedError() from None
    return session


def or_none(session: SessionCore) -> Optional[SessionCore]:
    """``session`` (a weak proxy), or None once it was freed."""
    try:
        session.hub  # noqa: B018
    except ReferenceError:
        return None
    return session


def check_flags(flush: object, allow_interruption: object) -> None:
    """Raise ``SaynaValidationError`` unless both flags are True or False."""
    if not isinstance(flush, bool) or not isinstance(allow_interruption, bool):
        raise SaynaValidationError("flush and allow_interruption must be True or False")


async def send_clear(session: SessionCore) -> None:
    """Send ``clear`` and end the tracker's waits for the cancelled speech."""
    await session.ready_connection().send_text(encode(ClearMessage()))
    session.tracker.cleared()


def _tts_format(session: SessionCore) -> tuple[str, int]:
    """The session's TTS audio format and sample rate (the defaults once it is freed)."""
    try:
        tts = session.tts_config
    except ReferenceError:  # the session was freed
        return _DEFAULT_FORMAT
    return (tts.audio_format, tts.sample_rate) if tts is not None else _DEFAULT_FORMAT


class SessionSpeechQueue(SpeechQueue):
    """The speech queue of a session (see the module docstring): its sends, TTS format,
    frame counts, ``listen``, ``refused`` and ``report`` are methods reading the session."""

    def __init__(self, session: SessionCore, counts: TTSCounts) -> None:
        self._session = session
        #: The tracker's TTS counts (every session of the client so far).
        self._counts = counts
        self._start(None, SessionTurnMetrics(session, counts))

    def _received(self) -> tuple[int, int]:
        counts = self._counts
        return counts.frames, counts.bytes

    async def _send_speak(self, text: str, flush: bool, allow_interruption: bool) -> None:
        """The queue's ``speak`` of one chunk (``speak_stream``)."""
        if not text.isascii():  # (a lone surrogate: UTF-8 cannot carry it)
            check_utf8("a speak_stream piece", text)
        check_flags(flush, allow_interruption)  # before it counts as sent
        session = alive(self._session)
        conn = session.ready_connection()
        session.tracker.speak_sent()
        await conn.send_text(encode_speak(text, flush, allow_interruption))

    async def _send_clear(self) -> None:
        """The queue's ``clear`` (an interruption)."""
        await send_clear(alive(self._session))

    def _tts_format(self) -> tuple[str, int]:
        return _tts_format(self._session)

    def listen(self, on: bool) -> None:
        """TTS frames to the queue only while an output takes them."""
        session = or_none(self._session)
        if session is not None:
            hub = session.hub
            (hub.observe_audio if on else hub.unobserve_audio)(self.on_tts_audio)

    def watch_results(self, on: bool) -> None:
        """Each ``stt_result`` to :meth:`on_stt_result` as it arrives, while a barge-in
        asks (see :meth:`~sayna_client.agents.SpeechQueue.stamp_results`)."""
        session = or_none(self._session)
        if session is not None:
            hub = session.hub
            (hub.observe if on else hub.unobserve)("stt_result", self.on_stt_result)

    def refused(self) -> None:
        """A refused ``speak`` left no speech outstanding: end the tracker's waits for a
        completion that will not come."""
        session = or_none(self._session)
        if session is not None:
            session.tracker.refused()

    def report(self, callback: str, event_type: str, error: Exception) -> None:
        """The application's code called by the toolkit raised (the attached output, a
        barge-in callback; logged already): a :class:`CallbackError` to the session's
        error callbacks and iterators, as a callback's error."""
        session = or_none(self._session)
        if session is not None:
            session.hub.publish(CallbackError(callback, event_type, error))

    def on_turn(self, text: str, words_at: float, ended_at: float) -> None:
        """A user turn ended (told by the tracker, see
        :class:`~.conversation.SpeechListener`): the metrics measure it."""
        self.metrics.on_turn(text, words_at, ended_at)

    def on_session_closed(self) -> None:
        """The session closed (told by the tracker before its ``ConnectionClosed``): the
        metrics close the turn still open (its record goes out, before the close)."""
        self.metrics.on_session_closed()


class SessionTurnMetrics(TurnMetrics):
    """The turn metrics of a session (see the module docstring): the hooks ``emit``,
    ``providers``, ``synthesized``, ``transcribed``, ``tts_rate`` and ``watch_audio``
    are methods reading the session. Assigning one replaces it, as on
    :class:`~sayna_client.agents.TurnMetrics`."""

    def __init__(self, session: SessionCore, counts: TTSCounts) -> None:
        super().__init__()
        # The instance's hook fields would hide the methods below: the class answers.
        for name in _METRICS_HOOKS:
            delattr(self, name)
        self._session = session
        self._counts = counts

    def emit(self, event: Any) -> None:
        """The metrics' records, to the session's callbacks and iterators."""
        session = or_none(self._session)
        if session is not None:
            session.hub.publish(event)

    def providers(self) -> tuple[str, str]:
        """The names of the STT and TTS providers in use (``provider/model``); the
        configs are read each time (they may be replaced or changed)."""
        try:
            stt, tts = self._session.stt_config, self._session.tts_config
        except ReferenceError:  # the session was freed
            stt = tts = None
        return _name(stt, "stt"), _name(tts, "tts")

    def _tts_name(self) -> str:
        """``providers()[1]`` (every ``speak``) without reading the STT config."""
        if "providers" in self.__dict__ or type(self).providers is not _PROVIDERS:
            return super()._tts_name()  # a hook assigned (or a subclass's) answers
        try:
            tts = self._session.tts_config
        except ReferenceError:  # the session was freed
            tts = None
        return _name(tts, "tts")

    def synthesized(self) -> int:
        """TTS audio bytes the client received so far (the tracker's count)."""
        return self._counts.bytes

    def transcribed(self) -> float:
        """Seconds of audio sent for transcription in every session of the client (the
        tracker's count, added to at each new session: nothing per frame), at the
        current STT format (its encoding's sample size, its channels; 0 for a
        compressed encoding, whose bytes say no duration)."""
        session = or_none(self._session)
        if session is None or session.stt_config is None:
            return 0.0
        config = session.stt_config
        width = bytes_per_sample(config.encoding)
        if width is None:
            return 0.0
        sent = session.tracker.audio_bytes_total()
        return sent / (float(width) * config.sample_rate * config.channels)

    def tts_rate(self) -> Optional[float]:
        """Bytes per second of the session's TTS audio (None: compressed)."""
        return bytes_per_second(*_tts_format(self._session))

    def watch_audio(self) -> None:
        """A reply's first byte is awaited: the tracker, which times every first frame,
        calls :meth:`on_first_audio` at the next one."""
        session = or_none(self._session)
        if session is not None:
            session.tracker.on_next_audio(self)


#: The method :meth:`SessionTurnMetrics._tts_name` stands in for.
_PROVIDERS = SessionTurnMetrics.providers
