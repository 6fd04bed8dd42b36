"""OpenTelemetry: spans and metrics of a scripted dialog, read back from the real SDK's
in-memory span exporter and metric reader."""

from __future__ import annotations

import sys
import weakref
from collections.abc import Iterator
from typing import Any

import pytest

from sayna_client import (
    LiveKitConfig,
    ReconnectPolicy,
    SaynaClient,
    SaynaError,
    SaynaTTSError,
    STTConfig,
    TTSConfig,
)
from sayna_client.agents import TurnRecord
from sayna_client.agents.otel import Telemetry, instrument
from sayna_client.server import Faults, LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WORD_BYTES, make_client

pytest.importorskip("opentelemetry.sdk")

from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import (
    InMemorySpanExporter,
)
from opentelemetry.trace import StatusCode


class Otel:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def instrument(self, client: SaynaClient) -> Telemetry:
        return instrument(
            client, tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def spans(self, name: str) -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name == name]

    def points(self) -> dict[str, list[Any]]:
        """Every data point by instrument name."""
        data = self.reader.get_metrics_data()
        out: dict[str, list[Any]] = {}
        if data is None:
            return out
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    out.setdefault(metric.name, []).extend(metric.data.data_points)
        return out


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    yield o
    o.tracer_provider.shutdown()
    o.meter_provider.shutdown()


async def test_a_turn_and_its_reply_become_spans_and_metrics(
    server: LocalServer, otel: Otel
) -> None:
    async with make_client(server) as agent:
        telemetry = otel.instrument(agent)  # before connect: ready opens the session span
        await agent.connect()
        await server.records.wait_for(lambda: telemetry.session_span, 10)  # the dispatcher's
        records: list[TurnRecord] = []
        agent.on("turn_metrics", records.append)

        async def answer(result: Any) -> None:
            if result.is_speech_final:
                await agent.speak("fine thanks")

        agent.register_on_stt_result(answer)
        server.script_speech("how are you")
        pcm = render_words(["x"] * 3, RATE) + bytes(RATE)
        for start in range(0, len(pcm), 640):
            await agent.on_audio_input(pcm[start : start + 640])
        await server.records.wait_for(lambda: records and otel.spans("sayna.turn"), 10)
        await server.records.wait_for(lambda: otel.spans("sayna.speak"), 10)
        stream_id = agent.received_stream_id
    (record,) = records
    (turn,) = otel.spans("sayna.turn")
    (speak,) = otel.spans("sayna.speak")
    (session,) = otel.spans("sayna.session")
    # One trace: the session is the parent of the turn and the speech.
    assert turn.parent is not None
    assert turn.parent.span_id == session.context.span_id
    assert speak.parent is not None
    assert speak.parent.span_id == session.context.span_id
    assert session.status.status_code is StatusCode.UNSET  # the client closed it
    for span in (turn, speak, session):
        assert span.attributes is not None
        assert span.attributes["sayna.stream_id"] == stream_id
        assert span.attributes["sayna.stt.provider"] == "deepgram"
        assert span.attributes["sayna.stt.model"] == "nova-2"
        assert span.attributes["sayna.tts.provider"] == "deepgram"
    assert turn.attributes is not None
    assert turn.attributes["sayna.turn.end_to_first_audio"] == record.end_to_first_audio
    assert turn.attributes["sayna.turn.characters"] == len("fine thanks")
    assert turn.attributes["sayna.turn.transcript_chars"] == len("how are you")
    assert "how are you" not in str(dict(turn.attributes))  # the caller's words stay out
    # The turn span runs from the user's first result to the first audio of the reply.
    assert record.stt_turn is not None
    assert record.end_to_first_audio is not None
    assert turn.start_time is not None
    assert turn.end_time is not None
    expected = record.stt_turn + record.end_to_first_audio
    assert (turn.end_time - turn.start_time) / 1e9 == pytest.approx(expected, abs=1e-3)
    assert speak.attributes is not None
    assert speak.attributes["sayna.speak.interrupted"] is False
    assert speak.attributes["sayna.speak.audio_bytes"] == 2 * WORD_BYTES
    assert speak.attributes["sayna.speak.seconds_heard"] == pytest.approx(0.36)

    points = otel.points()
    (latency,) = points["sayna.turn.end_to_first_audio"]
    assert latency.count == 1
    assert latency.sum == pytest.approx(record.end_to_first_audio)
    assert dict(latency.attributes) == {"sayna.tts.provider": "deepgram"}
    (stt_turn,) = points["sayna.stt.turn"]
    assert dict(stt_turn.attributes) == {
        "sayna.stt.provider": "deepgram",
        "sayna.stt.model": "nova-2",
    }
    assert [p.count for p in points["sayna.tts.first_byte"]] == [1]
    assert [p.count for p in points["sayna.turn.end_to_speak"]] == [1]
    assert [p.value for p in points["sayna.tts.characters"]] == [len("fine thanks")]
    (tts_audio,) = points["sayna.tts.audio"]
    assert tts_audio.value == pytest.approx(0.36)
    (stt_audio,) = points["sayna.stt.audio"]
    assert stt_audio.value == pytest.approx(len(pcm) / (2 * RATE))


async def test_an_interrupted_speech_span_says_what_was_heard(
    server: LocalServer, otel: Otel
) -> None:
    async with make_client(server) as agent:
        await agent.connect()
        telemetry = otel.instrument(agent)  # after connect: the session span opens at once
        assert telemetry.session_span is not None
        handle = await agent.speak("one two three four five six seven eight nine ten")
        await server.records.wait_for(lambda: handle.bytes_delivered >= WORD_BYTES, 10)
        handle.interrupt()
        await server.records.wait_for(lambda: otel.spans("sayna.speak"), 10)
        telemetry.detach()
        telemetry.detach()  # idempotent
        assert len(otel.spans("sayna.session")) == 1  # detach ended it
        await agent.speak("not recorded")
    (speak,) = otel.spans("sayna.speak")
    assert speak.attributes is not None
    assert speak.attributes["sayna.speak.interrupted"] is True
    assert speak.attributes["sayna.speak.chunks"] == 1
    assert speak.attributes["sayna.speak.seconds_heard"] == handle.seconds_heard
    assert len(otel.exporter.get_finished_spans()) == 2


async def test_a_failed_speech_span_records_no_spoken_text(server: LocalServer, otel: Otel) -> None:
    secret = "the vault code is zebra"
    async with make_client(server) as agent:
        await agent.connect()
        otel.instrument(agent)
        # Providers' error texts may quote what they were asked to say.
        server.fail_tts(f"provider rejected text: {secret}", after_chunks=1)
        handle = await agent.speak(secret)
        with pytest.raises(SaynaTTSError):
            await handle
        await server.records.wait_for(lambda: otel.spans("sayna.speak"), 10)
    (speak,) = otel.spans("sayna.speak")
    assert speak.status.status_code is StatusCode.ERROR
    (event,) = speak.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "sayna_client.errors.SaynaTTSError"
    recorded = str([dict(speak.attributes or {}), speak.status.description, speak.events])
    recorded += str([dict(e.attributes or {}) for e in speak.events])
    assert "zebra" not in recorded


async def test_a_reconnection_is_a_span_of_the_session(server: LocalServer, otel: Otel) -> None:
    server.faults = Faults(drop_connection_after_frames=3)
    policy = ReconnectPolicy(initial_backoff=0.05, max_backoff=0.2)
    client = SaynaClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
        TTSConfig(provider="deepgram", sample_rate=RATE),
        livekit_config=LiveKitConfig(room_name="otel-room"),
        reconnect=policy,
    )
    async with client:
        otel.instrument(client)
        await client.connect()
        server.faults = Faults()  # only the first session breaks
        # Two more server frames (participant_connected, track_subscribed) trip the fault.
        await server.inject_participant("otel-room", "caller")
        await server.records.wait_for(lambda: otel.spans("sayna.reconnect"), 10)
        assert client.ready
        assert not otel.spans("sayna.session")  # the session goes on
    (reconnect,) = otel.spans("sayna.reconnect")
    (session,) = otel.spans("sayna.session")
    assert reconnect.parent is not None
    assert reconnect.parent.span_id == session.context.span_id
    assert reconnect.attributes is not None
    assert reconnect.attributes["sayna.room"] == "otel-room"
    assert reconnect.attributes["sayna.reconnect.attempts"] >= 1
    assert reconnect.status.status_code is StatusCode.UNSET


async def test_stt_audio_counts_the_audio_of_every_session(server: LocalServer, otel: Otel) -> None:
    """sayna.stt.audio adds up the audio sent in every session of the client: the one
    lost (before reconnecting), the one it reconnected to, and a later connect()."""
    server.faults = Faults(drop_connection_after_frames=2)  # ready, then a TTS chunk
    client = SaynaClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
        TTSConfig(provider="deepgram", sample_rate=RATE),
        reconnect=ReconnectPolicy(initial_backoff=0.05, max_backoff=0.2),
    )
    speech = render_words(["x"] * 3, RATE) + bytes(RATE)
    sent = 0

    async def send(pcm: bytes) -> None:
        nonlocal sent
        for start in range(0, len(pcm), 640):
            await client.on_audio_input(pcm[start : start + 640])
        sent += len(pcm)

    async with client:
        telemetry = otel.instrument(client)
        turns = client.turns()
        await client.connect()
        server.faults = Faults()  # only the first session breaks
        await send(bytes(4 * RATE))  # 2 s of silence: no result, no frame from the server
        await client.speak("break the line")
        await server.records.wait_for(lambda: len(server.records.sessions) == 2 and client.ready)
        await send(speech)  # a shorter session than the first
        await server.records.wait_for(
            lambda: server.records.last_session.audio_bytes == len(speech)
        )
        await turns.__anext__()
        await client.disconnect()
        await client.connect()  # a new session on the same client
        await send(speech)
        await server.records.wait_for(
            lambda: server.records.last_session.audio_bytes == len(speech)
        )
    telemetry.detach()  # counts what the closing callbacks may not have counted yet
    (stt_audio,) = otel.points()["sayna.stt.audio"]
    assert stt_audio.value == pytest.approx(sent / (2 * RATE))


async def test_a_session_lost_for_good_ends_its_span_with_an_error(
    server: LocalServer, otel: Otel
) -> None:
    server.faults = Faults(drop_connection_after_frames=3)
    async with make_client(server) as agent:
        otel.instrument(agent)
        await agent.connect()
        server.faults = Faults()
        await agent.speak("break the line")
        await server.records.wait_for(lambda: otel.spans("sayna.session"), 10)
    (session,) = otel.spans("sayna.session")
    assert session.status.status_code is StatusCode.ERROR


async def test_without_the_extra_the_error_names_it(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if not installed
    async with make_client(server) as agent:
        with pytest.raises(SaynaError, match=r"sayna-client\[otel\]") as caught:
            instrument(agent)
    # The extra installs nothing on Python 3.9: the message names the Python it needs.
    assert "Python 3.10 or newer" in str(caught.value)


async def test_an_instrumented_client_is_freed_when_dropped(
    server: LocalServer, otel: Otel
) -> None:
    client = make_client(server)
    telemetry = otel.instrument(client)
    client.speech  # noqa: B018  (the speech queue exists and holds the listener)
    freed = weakref.ref(client)
    del client
    assert freed() is None  # no reference cycle through the instrumentation
    telemetry.detach()  # harmless afterwards


def test_instrument_takes_an_async_client() -> None:
    with pytest.raises(SaynaError, match="takes a SaynaClient"):
        instrument("not a client")  # type: ignore[arg-type]


async def test_stt_audio_is_counted_by_the_encoding_s_sample_size(
    server: LocalServer, otel: Otel
) -> None:
    """sayna.stt.audio took 2 bytes a sample for every encoding: one second of 8 kHz
    mu-law counted as half a second."""
    client = SaynaClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-2", sample_rate=8000, encoding="mulaw"),
        TTSConfig(provider="deepgram", sample_rate=8000),
    )
    async with client:
        telemetry = otel.instrument(client)
        await client.connect()
        for _ in range(50):  # 1 s in 20 ms frames of 160 one-byte samples
            await client.on_audio_input(b"\xff" * 160)
        await server.records.wait_for(lambda: server.records.last_session.audio_bytes == 8000)
    telemetry.detach()
    (stt_audio,) = otel.points()["sayna.stt.audio"]
    assert stt_audio.value == pytest.approx(1.0)


async def test_nothing_is_measured_after_detach(server: LocalServer, otel: Otel) -> None:
    """A speech under way at detach() still added its characters and audio to the
    counters when it ended ("no new spans or measurements" after detach)."""
    async with make_client(server) as client:
        telemetry = otel.instrument(client)
        await client.connect()
        handle = await client.speak("said after the detach")
        telemetry.detach()
        await handle
    points = otel.points()
    assert "sayna.tts.characters" not in points, points
    assert "sayna.tts.audio" not in points, points
    (span,) = otel.spans("sayna.speak")  # ended at detach, as it stood
    assert "sayna.speak.characters" not in (span.attributes or {})
