"""OpenTelemetry for a voice session: spans for the session, each turn, each speech and
each reconnection, and the turn metrics as histograms and counters.

Optional extra ``otel`` (``pip install 'sayna-client[otel]'``: ``opentelemetry-api`` and
``opentelemetry-sdk``, pinned). Built on what the client already measures, so it adds
nothing to the audio path:

* the ``turn_metrics`` events (:class:`~sayna_client.agents.TurnRecord`) become ``sayna.turn``
  spans and the ``sayna.turn.*`` / ``sayna.tts.first_byte`` / ``sayna.stt.turn`` histograms;
* every :class:`~sayna_client.agents.SpeechHandle` becomes a ``sayna.speak`` span (from the
  ``speak`` to played out or interrupted) and adds to the ``sayna.tts.characters`` and
  ``sayna.tts.audio`` counters;
* ``ready`` / ``closed`` open and close the ``sayna.session`` span (the parent of the
  others); ``reconnecting`` / ``reconnected`` make ``sayna.reconnect`` spans;
* the audio sent with ``on_audio_input`` adds to ``sayna.stt.audio`` at every turn and at
  the end of the session.

Spans carry ``sayna.stream_id``, ``sayna.stt.provider`` / ``sayna.stt.model``,
``sayna.tts.provider`` / ``sayna.tts.model`` and ``sayna.room`` (LiveKit sessions);
metrics carry only the low-cardinality provider and model. Transcripts and spoken text
are never recorded (they are the caller's words), only their lengths.
"""

from __future__ import annotations

import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Optional

from .._version import __version__
from ..errors import SaynaError, SaynaValidationError
from ..protocol.encodings import bytes_per_sample

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, TracerProvider

    from ..client import SaynaClient
    from ..realtime.conversation import SessionMetrics
    from .handle import SpeechHandle
    from .metrics import TurnRecord

__all__ = ["Telemetry", "instrument"]

INSTALL_HINT = "pip install 'sayna-client[otel]' (Python 3.10 or newer: OpenTelemetry's pins)"

#: The histograms of :class:`~sayna_client.agents.TurnRecord` fields: (instrument name,
#: record field, description, which provider's attributes).
_HISTOGRAMS = (
    (
        "sayna.turn.end_to_first_audio",
        "end_to_first_audio",
        "User's end of speech (speech-final) to the first byte of the agent's reply",
        "tts",
    ),
    (
        "sayna.turn.end_to_speak",
        "end_to_speak",
        "User's end of speech to the reply's first speak on the wire (the application)",
        "tts",
    ),
    (
        "sayna.tts.first_byte",
        "tts_first_byte",
        "The reply's first speak to its first audio byte (the TTS provider)",
        "tts",
    ),
    (
        "sayna.stt.turn",
        "stt_turn",
        "The turn's first result with text to its speech-final (the STT provider)",
        "stt",
    ),
)


#: The ``exception.message`` of a failed speech's span (the error's own text is left out).
_SPEECH_FAILED = "the speech failed (its error text is not recorded: it may quote the speech)"


def _otel() -> tuple[Any, Any]:
    """The ``opentelemetry.trace`` and ``opentelemetry.metrics`` modules, or a clear error."""
    try:
        from opentelemetry import metrics, trace
    except ImportError as exc:
        raise SaynaError(f"OpenTelemetry needs the optional 'otel' extra: {INSTALL_HINT}") from exc
    return trace, metrics


def _epoch_ns(monotonic: float) -> int:
    """A ``time.monotonic()`` instant as OpenTelemetry's wall-clock nanoseconds."""
    return time.time_ns() - time.monotonic_ns() + int(monotonic * 1e9)


class Telemetry:
    """The OpenTelemetry instrumentation of one client (made by :func:`instrument`).

    Attributes:
        session_span: the ``sayna.session`` span while a session is open, else None.
    """

    def __init__(
        self,
        client: SaynaClient,
        *,
        tracer_provider: Optional[TracerProvider] = None,
        meter_provider: Optional[MeterProvider] = None,
    ) -> None:
        trace, metrics = _otel()
        self._trace = trace
        # Weakly: the client's hub and speech queue hold this object's methods, and a
        # dropped client must be freed at once (its HTTP session is released then).
        self._client_ref = weakref.ref(client)
        self._tracer = trace.get_tracer("sayna_client", __version__, tracer_provider)
        meter = metrics.get_meter("sayna_client", __version__, meter_provider)
        self._histograms = {
            field: (
                meter.create_histogram(name, unit="s", description=description),
                which,
            )
            for name, field, description, which in _HISTOGRAMS
        }
        self._characters = meter.create_counter(
            "sayna.tts.characters", unit="{character}", description="Characters sent to be spoken"
        )
        self._tts_audio = meter.create_counter(
            "sayna.tts.audio", unit="s", description="Seconds of synthesized audio received"
        )
        self._stt_audio = meter.create_counter(
            "sayna.stt.audio", unit="s", description="Seconds of audio sent for transcription"
        )
        # The session metrics whose audio is being counted (each session has its own,
        # counting from 0), and how much of it was counted: a new session's is counted
        # from 0 once the rest of the previous one's is.
        self._stt_metrics: SessionMetrics = client.metrics
        self._stt_bytes_counted = client.metrics.audio_bytes_sent
        self.session_span: Optional[Span] = None
        self._reconnect_span: Optional[Span] = None
        self._speeches: dict[int, Span] = {}
        self._detached = False
        self._unsubscribe: list[Callable[[], Any]] = [
            client.on("ready", self._on_ready),
            client.on("closed", self._on_closed),
            client.on("reconnecting", self._on_reconnecting),
            client.on("reconnected", self._on_reconnected),
            client.on("turn_metrics", self._on_turn),
            client.speech.on_open(self._on_speech),
        ]
        if client.ready:
            self._start_session()

    @property
    def _client(self) -> SaynaClient:
        client = self._client_ref()
        if client is None:  # only reachable from detach() after the client was freed
            raise SaynaError("the instrumented client no longer exists")
        return client

    # --- attributes ----------------------------------------------------------------------

    def _provider(self, which: str) -> dict[str, str]:
        config = self._client.stt_config if which == "stt" else self._client.tts_config
        if config is None:
            return {}
        out = {f"sayna.{which}.provider": config.provider}
        if config.model:
            out[f"sayna.{which}.model"] = config.model
        return out

    def _span_attributes(self) -> dict[str, Any]:
        client = self._client
        out: dict[str, Any] = {**self._provider("stt"), **self._provider("tts")}
        stream_id = client.received_stream_id or client.stream_id
        if stream_id:
            out["sayna.stream_id"] = stream_id
        room = client.livekit_room_name or (
            client.livekit_config.room_name if client.livekit_config is not None else None
        )
        if room:
            out["sayna.room"] = room
        return out

    def _context(self) -> Any:
        span = self.session_span
        return self._trace.set_span_in_context(span) if span is not None else None

    # --- the session and its reconnections -------------------------------------------------

    def _start_session(self) -> None:
        if self.session_span is None:
            self.session_span = self._tracer.start_span(
                "sayna.session", attributes=self._span_attributes()
            )

    def _on_ready(self, _event: Any) -> None:
        if self.session_span is None:
            self._start_session()
        elif self.session_span.is_recording():
            self.session_span.set_attributes(self._span_attributes())

    def _on_reconnecting(self, event: Any) -> None:
        if self._reconnect_span is None:
            self._reconnect_span = self._tracer.start_span(
                "sayna.reconnect",
                context=self._context(),
                attributes={
                    **self._span_attributes(),
                    "sayna.close_code": event.code if event.code is not None else -1,
                },
            )
        self._reconnect_span.set_attribute("sayna.reconnect.attempts", event.attempt)

    def _on_reconnected(self, event: Any) -> None:
        span, self._reconnect_span = self._reconnect_span, None
        if span is not None:
            span.set_attribute("sayna.reconnect.attempts", event.attempt)
            span.set_attribute("sayna.reconnect.replayed_bytes", event.replayed_bytes)
            span.end()

    def _on_closed(self, event: Any) -> None:
        self._count_stt_audio()  # (also when a reconnection follows: a new session counts anew)
        if event.will_reconnect:
            return
        status = self._trace.StatusCode
        span, self._reconnect_span = self._reconnect_span, None
        if span is not None:
            span.set_status(status.ERROR, "gave up reconnecting")
            span.end()
        span, self.session_span = self.session_span, None
        if span is not None:
            span.set_attribute("sayna.close_code", event.code if event.code is not None else -1)
            if not event.initiated_by_client:
                span.set_status(status.ERROR, f"closed by the server or network: {event.reason}")
            span.end()

    # --- turns and speech ------------------------------------------------------------------

    def _on_turn(self, record: TurnRecord) -> None:
        start = record.ended_at - (record.stt_turn or 0.0)
        end = record.ended_at + (record.end_to_first_audio or 0.0)
        attributes: dict[str, Any] = {
            **self._span_attributes(),
            "sayna.turn.transcript_chars": len(record.transcript),
            "sayna.turn.characters": record.characters,
            "sayna.turn.replied": record.end_to_first_audio is not None,
        }
        for _name, field, _description, _which in _HISTOGRAMS:
            value = getattr(record, field)
            if value is not None:
                attributes[f"sayna.turn.{field}"] = value
        span = self._tracer.start_span(
            "sayna.turn",
            context=self._context(),
            attributes=attributes,
            start_time=_epoch_ns(start),
        )
        span.end(end_time=_epoch_ns(end))
        for field, (histogram, which) in self._histograms.items():
            value = getattr(record, field)
            if value is not None:
                histogram.record(value, self._provider(which))
        self._count_stt_audio()

    def _on_speech(self, handle: SpeechHandle) -> None:
        span = self._tracer.start_span(
            "sayna.speak", context=self._context(), attributes=self._span_attributes()
        )
        self._speeches[id(handle)] = span
        handle.add_done_callback(self._on_speech_done)

    def _on_speech_done(self, handle: SpeechHandle) -> None:
        if self._detached:  # detach() ended its span: no measurements after it
            return
        span = self._speeches.pop(id(handle), None)
        characters = sum(map(len, handle.chunks))
        provider = self._provider("tts")
        if characters:
            self._characters.add(characters, provider)
        rate = self._client.speech.byte_rate()
        if rate and handle.bytes_delivered:
            self._tts_audio.add(handle.bytes_delivered / rate, provider)
        if span is None:
            return
        span.set_attributes(
            {
                "sayna.speak.chunks": len(handle.chunks),
                "sayna.speak.characters": characters,
                "sayna.speak.interrupted": handle.interrupted,
                "sayna.speak.audio_bytes": handle.bytes_delivered,
            }
        )
        heard = handle.seconds_heard
        if heard is not None:
            span.set_attribute("sayna.speak.seconds_heard", heard)
        error = handle.exception()
        if error is not None:
            # Not record_exception(): the server's text (and a traceback's) may quote the
            # spoken text, which spans never record. The exception's type says enough.
            kind = type(error)
            span.add_event(
                "exception",
                {
                    "exception.type": f"{kind.__module__}.{kind.__qualname__}",
                    "exception.message": _SPEECH_FAILED,
                },
            )
            span.set_status(self._trace.StatusCode.ERROR, kind.__name__)
        span.end()

    def _count_stt_audio(self) -> None:
        """Add the audio sent since the last count to ``sayna.stt.audio``: the rest of
        the previous session's first when a new session (a reconnection, another
        ``connect()``) has metrics of its own."""
        client = self._client_ref()
        if client is None:
            return
        metrics = client.metrics
        new = 0
        if metrics is not self._stt_metrics:
            new = self._stt_metrics.audio_bytes_sent - self._stt_bytes_counted
            self._stt_metrics, self._stt_bytes_counted = metrics, 0
        sent = metrics.audio_bytes_sent
        new += sent - self._stt_bytes_counted
        self._stt_bytes_counted = sent
        config = client.stt_config
        if config is None or new <= 0:
            return
        # Seconds from bytes by the config's encoding (mulaw: one byte a sample); a
        # compressed one (opus) has no fixed rate, so it is not counted rather than wrong.
        width = bytes_per_sample(config.encoding)
        if width is not None:
            seconds = new / (float(width) * config.sample_rate * config.channels)
            self._stt_audio.add(seconds, self._provider("stt"))

    # --- ending ----------------------------------------------------------------------------

    def detach(self) -> None:
        """Stop instrumenting: no new spans or measurements; open spans end now (a speech
        span still open is ended as it stands). Idempotent."""
        self._detached = True
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        self._unsubscribe.clear()
        self._count_stt_audio()
        spans = [*self._speeches.values(), self._reconnect_span, self.session_span]
        self._speeches.clear()
        self._reconnect_span = self.session_span = None
        for span in spans:
            if span is not None:
                span.end()


def instrument(
    client: SaynaClient,
    *,
    tracer_provider: Optional[TracerProvider] = None,
    meter_provider: Optional[MeterProvider] = None,
) -> Telemetry:
    """Record ``client``'s session, turns, speech and reconnections with OpenTelemetry.

    Call it on the event loop, before or after ``connect()``; a session already ready
    opens its span at once.

    Args:
        client: the :class:`~sayna_client.SaynaClient` to observe.
        tracer_provider: where spans go (default: OpenTelemetry's global provider).
        meter_provider: where measurements go (default: the global provider).

    Returns:
        the :class:`Telemetry`; ``detach()`` it to stop.

    Raises:
        SaynaError: OpenTelemetry is not installed (names the ``otel`` extra).
        SaynaValidationError: ``client`` is not a ``SaynaClient``.
    """
    from ..client import SaynaClient

    if not isinstance(client, SaynaClient):
        raise SaynaValidationError(f"instrument() takes a SaynaClient, got {type(client).__name__}")
    return Telemetry(client, tracer_provider=tracer_provider, meter_provider=meter_provider)
