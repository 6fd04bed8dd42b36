"""Pipecat: a real pipeline (STT -> user aggregator -> scripted LLM -> TTS) against the local
server. Nothing of Pipecat is mocked: frames flow through Pipecat's PipelineWorker."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from typing import Any, Callable, Optional

import pytest

if sys.version_info < (3, 11):
    pytest.skip(
        "pipecat-ai 1.14 requires Python 3.11+, so the [pipecat] extra cannot be installed here",
        allow_module_level=True,
    )

from pipecat.frames.frames import (
    CancelFrame,
    EndFrame,
    ErrorFrame,
    Frame,
    InputAudioRawFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    MetricsFrame,
    STTUpdateSettingsFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSSpeakFrame,
    TTSStartedFrame,
    TTSStoppedFrame,
    TTSUpdateSettingsFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import ProcessingMetricsData, TTFBMetricsData
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.settings import STTSettings, TTSSettings
from pipecat.utils.errors import ErrorCategory
from pipecat.workers.runner import WorkerRunner

from helpers.internals import session_waiters
from helpers.waiting import eventually
from sayna_client import ReconnectPolicy, SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.errors import SaynaValidationError
from sayna_client.integrations.pipecat import SaynaSTTService, SaynaTTSService
from sayna_client.server import Faults, LocalServer

from .helpers import (
    CuttableProxy,
    StallingProxy,
    SwallowingProxy,
    first_speak,
    frames_of,
    tone_bursts,
)

IN_RATE = 16000
OUT_RATE = 24000
#: Bytes of fake-engine speech per word at OUT_RATE: 120 ms tone + 60 ms gap.
WORD_BYTES = 2 * OUT_RATE * 180 // 1000


def make_client(
    server: LocalServer | CuttableProxy | StallingProxy | SwallowingProxy, **options: Any
) -> SaynaClient:
    return SaynaClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-2"),
        TTSConfig(provider="deepgram", voice_id="aura-asteria-en"),
        timeouts=Timeouts(connect=5, ready=10, request=10, close=5),
        **options,
    )


class JoinHoldingClient(SaynaClient):
    """A ``SaynaClient`` whose ``connect()`` on a session already ready (what a service
    calls to join the session the other service opened; a no-op) waits for
    :attr:`release` first, so a test can act while one service is on the session and the
    other is still joining it. Everything else is the real client."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.joining = asyncio.Event()  # a join waits for release
        self.release = asyncio.Event()

    async def connect(self) -> None:
        if self.ready:
            self.joining.set()
            await self.release.wait()
        await super().connect()


class RetryHoldingClient(SaynaClient):
    """A ``SaynaClient`` whose ``connect()`` number :attr:`hold` opens its socket only
    once another adapter waits for its turn on the shared session (its own connect or
    join), so a test can have that connect fail while the other adapter waits.
    Everything else is the real client."""

    def __init__(self, *args: Any, hold: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.hold = hold
        self.calls = 0

    async def connect(self) -> None:
        self.calls += 1
        if self.calls == self.hold:
            await eventually(lambda: session_waiters(self), what="the other service waits")
        await super().connect()


class ScriptedLLM(FrameProcessor):
    """Stands in for the LLM: answers each user turn with the next reply of a script.

    A reply is a list of sentences; ``gate(i)`` (if given) is awaited before sentence
    ``i`` is sent, so a test can hold the reply mid-way. An interruption cancels the
    reply in progress, as Pipecat's LLM services do.
    """

    def __init__(
        self,
        replies: list[list[str]],
        gate: Optional[Callable[[int], Any]] = None,
    ) -> None:
        super().__init__()
        self.replies = list(replies)
        self.heard: list[str] = []
        self.gate = gate
        self._reply: Optional[asyncio.Task[None]] = None

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMContextFrame):
            messages = frame.context.get_messages()
            self.heard.append(str(messages[-1]["content"]) if messages else "")
            if self.replies:
                self._reply = self.create_task(self._say(self.replies.pop(0)))
            return
        if isinstance(frame, InterruptionFrame) and self._reply is not None:
            await self.cancel_task(self._reply)
            self._reply = None
        await self.push_frame(frame, direction)

    async def _say(self, sentences: list[str]) -> None:
        await self.push_frame(LLMFullResponseStartFrame())
        for index, sentence in enumerate(sentences):
            if self.gate is not None:
                await self.gate(index)
            await self.push_frame(LLMTextFrame(sentence + " "))
        await self.push_frame(LLMFullResponseEndFrame())


class Sink(FrameProcessor):
    """The end of the pipeline: records every downstream frame and wakes waiters."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []
        self.changed = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction == FrameDirection.DOWNSTREAM:
            self.frames.append(frame)
            self.changed.set()
        await self.push_frame(frame, direction)

    def of(self, kind: type) -> list[Any]:
        return [f for f in self.frames if isinstance(f, kind)]

    async def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
        return await eventually(predicate, timeout, wake=self.changed)


class Agent:
    """A running pipeline: transport in -> STT -> user aggregator -> LLM -> TTS -> sink."""

    def __init__(self, client: SaynaClient, llm: ScriptedLLM, **tts_options: Any) -> None:
        self.stt = SaynaSTTService(client=client)
        self.tts = SaynaTTSService(client=client, **tts_options)
        self.llm = llm
        self.heard = Sink()  # what the STT service pushed
        self.sink = Sink()
        self.context = LLMContext()
        aggregators = LLMContextAggregatorPair(self.context)
        self.pipeline = Pipeline(
            [
                self.stt,
                self.heard,
                aggregators.user(),
                llm,
                self.tts,
                self.sink,
                aggregators.assistant(),
            ]
        )
        self.worker = PipelineWorker(
            self.pipeline,
            params=PipelineParams(
                audio_in_sample_rate=IN_RATE, audio_out_sample_rate=OUT_RATE, enable_metrics=True
            ),
            cancel_on_idle_timeout=False,
        )
        self.started = asyncio.Event()
        self.worker.event_handler("on_pipeline_started")(self._on_started)
        self.errors: list[str] = []  # the ErrorFrames that reached the worker
        self.frames: list[ErrorFrame] = []
        self.worker.event_handler("on_pipeline_error")(self._on_error)
        self._run: Optional[asyncio.Task[None]] = None

    async def _on_started(self, worker: Any, frame: Frame) -> None:
        self.started.set()

    async def _on_error(self, worker: Any, frame: ErrorFrame) -> None:
        self.errors.append(frame.error)
        self.frames.append(frame)

    async def __aenter__(self) -> Agent:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._run = asyncio.create_task(runner.run())
        await asyncio.wait_for(self.started.wait(), 20)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._run is not None
        if not self._run.done():
            if exc[0] is None:
                await self.worker.queue_frame(EndFrame())
            else:
                await self.worker.cancel()
        await asyncio.wait_for(self._run, 30)

    async def say(self, words: int) -> None:
        """The caller speaks ``words`` words (then a second of silence)."""
        await self.play(tone_bursts(words, IN_RATE))

    async def play(self, pcm: bytes) -> None:
        """The caller's microphone delivers ``pcm`` (16-bit mono at IN_RATE)."""
        for chunk in frames_of(pcm, IN_RATE):
            await self.worker.queue_frame(
                InputAudioRawFrame(audio=chunk, sample_rate=IN_RATE, num_channels=1)
            )


class Solo:
    """``processors`` then a :class:`Sink`, run by a worker of their own with the rates
    given (a pipeline of an application that splits its services between workers)."""

    def __init__(self, processors: list[FrameProcessor], **params: Any) -> None:
        self.sink = Sink()
        self.worker = PipelineWorker(
            Pipeline([*processors, self.sink]),
            params=PipelineParams(**params),
            cancel_on_idle_timeout=False,
        )
        self.started = asyncio.Event()
        self.worker.event_handler("on_pipeline_started")(self._on_started)
        self.errors: list[str] = []
        self.worker.event_handler("on_pipeline_error")(self._on_error)
        self._run: Optional[asyncio.Task[None]] = None

    async def _on_started(self, worker: Any, frame: Frame) -> None:
        self.started.set()

    async def _on_error(self, worker: Any, frame: ErrorFrame) -> None:
        self.errors.append(frame.error)

    async def __aenter__(self) -> Solo:
        runner = WorkerRunner(handle_sigint=False)
        await runner.add_workers(self.worker)
        self._run = asyncio.create_task(runner.run())
        await asyncio.wait_for(self.started.wait(), 30)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._run is not None
        if not self._run.done():
            await self.worker.queue_frame(EndFrame())
        await asyncio.wait_for(self._run, 30)


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as srv:
        yield srv


def audio_bytes(frames: list[Frame]) -> int:
    return sum(len(f.audio) for f in frames if isinstance(f, TTSAudioRawFrame))


def contexts(frames: list[Frame]) -> dict[str, list[str]]:
    """The TTS frames of each audio context, in order, as "started", "audio" (one per
    run of audio frames) and "stopped"."""
    out: dict[str, list[str]] = {}
    names = {TTSStartedFrame: "started", TTSAudioRawFrame: "audio", TTSStoppedFrame: "stopped"}
    for frame in frames:
        name = names.get(type(frame))
        if name is not None:
            seen = out.setdefault(frame.context_id, [])
            if not (name == "audio" and seen[-1:] == ["audio"]):
                seen.append(name)
    return out


def context_audio(frames: list[Frame], context_id: str) -> int:
    return audio_bytes([f for f in frames if getattr(f, "context_id", None) == context_id])


def speaks_of(session: Any) -> list[str]:
    return [m["text"].strip() for m in session.messages if m["type"] == "speak"]


async def test_caller_audio_to_reply_audio(server: LocalServer) -> None:
    client = make_client(server)
    llm = ScriptedLLM([["One two three.", "Four five."]])
    async with Agent(client, llm) as agent:
        await agent.say(3)
        stopped = await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame))
        sink, heard = agent.sink, agent.heard
        # One session shared by both services, at the pipeline's rates.
        assert len(server.records.sessions) == 1
        session = server.records.last_session
        assert session.config["stt_config"]["sample_rate"] == IN_RATE
        assert session.config["tts_config"]["sample_rate"] == OUT_RATE
        assert session.audio_bytes == len(tone_bursts(3, IN_RATE))
    # Transcript in: interim and final frames, the turn proposed and resolved.
    assert heard.of(InterimTranscriptionFrame)
    finals = heard.of(TranscriptionFrame)
    assert " ".join(f.text for f in finals) == "word word word"
    assert llm.heard == ["word word word"]
    kinds = [type(f) for f in sink.frames]
    assert kinds.index(UserStartedSpeakingFrame) < kinds.index(UserStoppedSpeakingFrame)
    # Reply text out, as speak commands, then its audio at the pipeline's output rate.
    speaks = [m["text"].strip() for m in session.messages if m["type"] == "speak"]
    assert speaks == ["One two three.", "Four five."]
    audio = sink.of(TTSAudioRawFrame)
    assert {(f.sample_rate, f.num_channels) for f in audio} == {(OUT_RATE, 1)}
    assert audio_bytes(sink.frames) == 5 * WORD_BYTES == session.sent_audio_bytes
    assert kinds.index(TTSStartedFrame) < kinds.index(TTSAudioRawFrame)
    assert sink.frames.index(stopped[0]) > sink.frames.index(audio[-1])
    # Metrics frames: the TTS's TTFB and its processing time (speak -> playback complete).
    metrics = [d for f in sink.of(MetricsFrame) for d in f.data]
    assert any(isinstance(d, TTFBMetricsData) and d.processor == agent.tts.name for d in metrics)
    assert any(
        isinstance(d, ProcessingMetricsData) and d.processor == agent.tts.name and d.value > 0
        for d in metrics
    )
    await session.closed.wait()
    assert client.connected is False


async def test_interruption_mid_reply_stops_the_audio(server: LocalServer) -> None:
    client = make_client(server)
    agents: list[Agent] = []

    async def gate(index: int) -> None:
        # A slow LLM: sentence i waits until sentence i-2 is heard (Pipecat's sentence
        # aggregator sends a sentence once the next one begins). Sentence 3 never comes:
        # the caller talks over the reply once its first sentence is heard.
        agent = agents[0]
        sink = agent.sink
        await sink.wait_for(lambda: audio_bytes(sink.frames) >= (index - 1) * 2 * WORD_BYTES)
        if index == 2:
            await agent.say(2)
            await asyncio.Event().wait()  # cancelled by the interruption

    llm = ScriptedLLM(
        [["One two.", "Three four.", "Five six.", "Seven eight."], ["Okay."]], gate=gate
    )

    def barge_in(sink: Sink) -> Optional[int]:
        """Index of the interruption that came after reply audio (every user turn start
        interrupts, the first one included)."""
        audio = [i for i, f in enumerate(sink.frames) if isinstance(f, TTSAudioRawFrame)]
        cuts = [i for i, f in enumerate(sink.frames) if isinstance(f, InterruptionFrame)]
        return next((i for i in cuts if audio and i > audio[0]), None)

    async with Agent(client, llm) as agent:
        agents.append(agent)
        await agent.say(1)
        sink = agent.sink
        await sink.wait_for(lambda: barge_in(sink) is not None)
        # The second turn is answered after the interruption, to its end.
        await sink.wait_for(
            lambda: (
                [i for i, f in enumerate(sink.frames) if isinstance(f, TTSStoppedFrame)][-1:]
                > [barge_in(sink)]
            )
        )
        session = server.records.last_session
    cut = barge_in(sink)
    assert cut is not None
    messages = [(m["type"], m.get("text", "").strip()) for m in session.messages]
    speaks = [text for kind, text in messages if kind == "speak"]
    # Sentences after the interruption were never sent; clear went out before the next reply.
    assert speaks[0] == "One two."
    assert speaks[-1] == "Okay."
    assert "Five six." not in speaks
    assert "Seven eight." not in speaks
    assert messages.index(("clear", "")) < messages.index(("speak", "Okay."))
    assert llm.heard == ["word", "word word"]
    # No audio of the interrupted reply after the interruption: the next audio belongs to
    # the next reply (after its TTSStartedFrame), and it is the whole of "Okay." (1 word).
    after = sink.frames[cut:]
    first_audio = next(i for i, f in enumerate(after) if isinstance(f, TTSAudioRawFrame))
    assert any(isinstance(f, TTSStartedFrame) for f in after[:first_audio])
    assert audio_bytes(after) == WORD_BYTES
    assert audio_bytes(sink.frames[:cut]) <= 4 * WORD_BYTES


async def test_a_refused_speak_ends_its_context_and_later_text_is_spoken(
    server: LocalServer,
) -> None:
    """Sayna refuses a speak (no audio, no completion): its context still ends, the error
    is reported, and the service goes on speaking."""
    client = make_client(server)
    async with Agent(client, ScriptedLLM([])) as agent:
        sink = agent.sink
        server.fail_tts("Google TTS: quota exceeded", refuse=True)
        await agent.worker.queue_frame(TTSSpeakFrame("First sentence."))
        (refused,) = await sink.wait_for(lambda: list(contexts(sink.frames)))
        await sink.wait_for(lambda: contexts(sink.frames)[refused][-1:] == ["stopped"])
        for text in ("Second one.", "Third one."):
            await agent.worker.queue_frame(TTSSpeakFrame(text))
        await sink.wait_for(
            lambda: [
                c for c in contexts(sink.frames).values() if c == ["started", "audio", "stopped"]
            ][1:]
        )
        session = server.records.last_session
    assert speaks_of(session) == ["First sentence.", "Second one.", "Third one."]
    assert contexts(sink.frames)[refused] == ["started", "stopped"]
    assert any("Failed to synthesize speech" in e for e in agent.errors)
    assert audio_bytes(sink.frames) == 4 * WORD_BYTES


async def test_a_session_lost_mid_speech_and_reconnected_speaks_on(server: LocalServer) -> None:
    """The connection drops while a sentence is spoken and the client reconnects: that
    context ends, and the next text is spoken on the new session."""
    server.faults = Faults(drop_connection_after_frames=4)  # ready, then 3 audio chunks
    client = make_client(server, reconnect=ReconnectPolicy(initial_backoff=0.05))
    async with Agent(client, ScriptedLLM([])) as agent:
        sink = agent.sink
        server.faults = Faults()  # only the first session breaks
        await agent.worker.queue_frame(TTSSpeakFrame("One two three four five six seven."))
        (cut,) = await sink.wait_for(lambda: list(contexts(sink.frames)))
        await sink.wait_for(lambda: contexts(sink.frames)[cut][-1:] == ["stopped"])
        await server.records.wait_for(lambda: len(server.records.sessions) == 2 and client.ready)
        await agent.worker.queue_frame(TTSSpeakFrame("Okay."))
        await sink.wait_for(lambda: len(contexts(sink.frames)) == 2)
        (after,) = [c for c in contexts(sink.frames) if c != cut]
        await sink.wait_for(lambda: contexts(sink.frames)[after][-1:] == ["stopped"])
        _, second = server.records.sessions
    assert contexts(sink.frames) == {
        cut: ["started", "audio", "stopped"],
        after: ["started", "audio", "stopped"],
    }
    assert context_audio(sink.frames, after) == WORD_BYTES
    assert speaks_of(second) == ["Okay."]
    # The client recovered: no ErrorFrame says the session closed.
    assert not [e for e in agent.errors if "closed" in e]


async def test_a_turn_left_open_by_a_lost_session_ends_and_is_answered(
    server: LocalServer,
) -> None:
    """The connection drops in the middle of the caller's turn (its speech-final never
    comes) and the client reconnects: the turn ends with its last interim text, and the
    bot answers it (it waited for ever)."""
    llm = ScriptedLLM([["Sure."]])
    async with CuttableProxy(server.port) as proxy:
        client = make_client(proxy, reconnect=ReconnectPolicy(initial_backoff=0.05))
        async with Agent(client, llm) as agent:
            pcm = tone_bursts(2, IN_RATE, silence_after=0)
            await agent.play(pcm)
            (interim, *_) = await agent.heard.wait_for(
                lambda: agent.heard.of(InterimTranscriptionFrame)
            )
            first = server.records.last_session
            await server.records.wait_for(lambda: first.audio_bytes == len(pcm))
            proxy.cut()  # mid-turn: no speech-final will come
            stopped = await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame))
            assert len(server.records.sessions) == 2
            assert speaks_of(server.records.last_session) == ["Sure."]
    assert [f.text for f in agent.heard.of(TranscriptionFrame)] == [interim.text]
    assert llm.heard == [interim.text]
    kinds = [type(f) for f in agent.sink.frames]
    assert kinds.index(UserStoppedSpeakingFrame) < kinds.index(TTSStartedFrame)
    assert context_audio(agent.sink.frames, stopped[0].context_id) == WORD_BYTES


async def test_a_reconnection_that_gives_up_is_reported_once(server: LocalServer) -> None:
    server.faults = Faults(drop_connection_after_frames=2)  # ready, then 1 audio chunk
    client = make_client(server, reconnect=ReconnectPolicy(initial_backoff=0.05))
    async with Agent(client, ScriptedLLM([])) as agent:
        server.faults = Faults(reject_config_error="gone")  # the reconnection is refused
        await agent.worker.queue_frame(TTSSpeakFrame("One two three four five six seven."))
        await eventually(lambda: len(agent.errors) == 2)
        # The sentence cut by the drop ended its context.
        await agent.sink.wait_for(
            lambda: [c for c in contexts(agent.sink.frames).values() if c[-1:] == ["stopped"]]
        )
    # The refusal, then the end of the session, once (no ErrorFrame for the drop itself).
    assert agent.errors == ["Sayna: gone", "Sayna session closed: reconnecting gave up"]


async def test_a_session_lost_for_good_is_reported_once_and_nothing_more_is_sent(
    server: LocalServer,
) -> None:
    """No ReconnectPolicy and the connection is lost: one ErrorFrame, permanent, and
    both services become unusable; the caller's audio and the sentences after it are
    neither sent nor reported one by one."""
    async with CuttableProxy(server.port) as proxy:
        client = make_client(proxy)
        async with Agent(client, ScriptedLLM([])) as agent:
            await agent.say(1)
            await agent.heard.wait_for(lambda: agent.heard.of(TranscriptionFrame))
            proxy.cut()
            await eventually(lambda: agent.errors)
            await eventually(lambda: not agent.stt.is_usable and not agent.tts.is_usable)
            await agent.say(2)  # the caller goes on talking, the bot too
            for text in ("One.", "Two.", "Three."):
                await agent.worker.queue_frame(TTSSpeakFrame(text))
    (error,) = agent.errors
    assert error.startswith("Sayna session closed: ")
    assert agent.frames[0].processor.is_usable is False  # (pushed as permanent)


async def test_a_rejected_config_makes_both_services_unusable(server: LocalServer) -> None:
    server.faults = Faults(reject_config_error="no such voice")
    client = make_client(server, reconnect=ReconnectPolicy(initial_backoff=0.05))
    async with Agent(client, ScriptedLLM([])) as agent:
        await eventually(lambda: len(agent.frames) == 2)
        # Retrying cannot change a rejection: no second attempt, both services unusable.
        assert len(server.records.sessions) <= 2
        assert not agent.stt.is_usable
        assert not agent.tts.is_usable
    assert agent.errors == [
        "Sayna STT could not connect: The server rejected the session config: no such voice",
        "Sayna TTS could not connect: The server rejected the session config: no such voice",
    ]
    assert {f.category for f in agent.frames} == {ErrorCategory.INVALID_REQUEST}


async def test_a_wrong_api_key_makes_both_services_unusable() -> None:
    async with LocalServer(api_key="right") as server:
        client = make_client(server, api_key="wrong")
        async with Agent(client, ScriptedLLM([])) as agent:
            await eventually(lambda: len(agent.frames) == 2)
            assert not agent.stt.is_usable
            assert not agent.tts.is_usable
        assert {f.category for f in agent.frames} == {ErrorCategory.AUTHENTICATION}


async def test_a_server_unreachable_at_start_is_joined_when_it_comes_up() -> None:
    """The server is down when the pipeline starts (a restart, a deploy): the failure is
    reported once, the services keep trying, and join the session once it is up."""
    async with LocalServer() as probe:
        port = probe.port
    client = make_client(
        probe, reconnect=ReconnectPolicy(initial_backoff=0.05, max_backoff=0.2, max_attempts=None)
    )
    async with Agent(client, ScriptedLLM([["Hello there."]])) as agent:
        await eventually(lambda: agent.errors)
        async with LocalServer(port=port) as server:
            await server.records.wait_for(lambda: server.records.sessions and client.ready)
            await agent.say(2)
            stopped = await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame))
            assert agent.stt.is_usable
            assert agent.tts.is_usable
            assert len(server.records.sessions) == 1
            assert speaks_of(server.records.last_session) == ["Hello there."]
    assert [f.text for f in agent.heard.of(TranscriptionFrame)] == ["word word"]
    assert context_audio(agent.sink.frames, stopped[0].context_id) == 2 * WORD_BYTES
    (error,) = agent.errors  # reported once, for the session (not once a service)
    assert error.startswith("Sayna STT could not connect, retrying: ")


async def test_a_service_joins_the_session_the_other_opened_at_once() -> None:
    """The server is down at the start; one service's retry fails, the other's opens the
    session just after: the first joins it at once, not after its own backoff (2 s
    here), so the caller's first turn, at once, is transcribed and answered (the service
    not joined used to send on the session with no one reading what came back: the
    transcript, or the reply's audio)."""
    policy = ReconnectPolicy(initial_backoff=1.0, max_backoff=60, jitter=0, max_attempts=None)
    # Connections 1 and 2: the services' first attempts; 3: the first retry.
    async with (
        LocalServer() as server,
        CuttableProxy(server.port, admit=lambda n: n >= 4) as proxy,
    ):
        client = make_client(proxy, reconnect=policy)
        async with Agent(client, ScriptedLLM([["Hello there."]])) as agent:
            await server.records.wait_for(lambda: server.records.sessions and client.ready)
            await agent.say(2)
            await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame), 15)
            session = server.records.last_session
        assert proxy.connections == 4
    assert len(server.records.sessions) == 1
    assert agent.llm.heard == ["word word"]
    assert speaks_of(session) == ["Hello there."]
    assert audio_bytes(agent.sink.frames) == 2 * WORD_BYTES
    (error,) = agent.errors  # only the first failure to connect
    assert error.startswith("Sayna STT could not connect, retrying: ")


async def test_a_service_whose_retry_waited_for_the_other_s_failing_one_reads_its_session() -> None:
    """The server is down at the start; one service's retry is under way when the
    other's begins, which waits for it: that attempt fails, the waiting one opens the
    session, and reads its events (they used to be subscribed before the wait and ended
    by the other's failure: the session opened by the TTS service played none of the
    reply's audio, one opened by the STT service transcribed nothing)."""
    policy = ReconnectPolicy(initial_backoff=0.2, max_backoff=60, jitter=0, max_attempts=None)
    # Connections 1 and 2: the services' first attempts; 3: the first retry, held until
    # the other service's retry waits for it; 4: that one.
    async with (
        LocalServer() as server,
        CuttableProxy(server.port, admit=lambda n: n >= 4) as proxy,
    ):
        client = RetryHoldingClient(
            proxy.url,
            STTConfig(provider="deepgram", model="nova-2"),
            TTSConfig(provider="deepgram", voice_id="aura-asteria-en"),
            timeouts=Timeouts(connect=5, ready=10, request=10, close=5),
            reconnect=policy,
            hold=3,
        )
        async with Agent(client, ScriptedLLM([["Hello there."]])) as agent:
            await server.records.wait_for(lambda: server.records.sessions and client.ready)
            await agent.say(2)
            await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame))
            session = server.records.last_session
        assert proxy.connections == 4
    assert len(server.records.sessions) == 1
    assert agent.llm.heard == ["word word"]
    assert speaks_of(session) == ["Hello there."]
    assert list(contexts(agent.sink.frames).values()) == [["started", "audio", "stopped"]]
    assert audio_bytes(agent.sink.frames) == 2 * WORD_BYTES


async def test_a_sentence_given_while_the_tts_joins_the_session_waits_and_is_spoken() -> None:
    """The server is down when the pipeline starts; the STT service's retry opens the
    session, and a sentence reaches the TTS service while it is still joining it: the
    sentence waits for the join (not dropped as "not connected", and not sent before the
    TTS service reads the session's events, which would lose its audio), then is spoken
    in full."""
    policy = ReconnectPolicy(initial_backoff=0.2, max_backoff=60, jitter=0, max_attempts=None)
    # Connections 1 and 2: the services' first attempts; 3: the STT service's retry (the
    # TTS service's, woken by it, joins with no connection of its own).
    async with (
        LocalServer() as server,
        CuttableProxy(server.port, admit=lambda n: n >= 3) as proxy,
    ):
        client = JoinHoldingClient(
            proxy.url,
            STTConfig(provider="deepgram", model="nova-2"),
            TTSConfig(provider="deepgram", voice_id="aura-asteria-en"),
            timeouts=Timeouts(connect=5, ready=10, request=10, close=5),
            reconnect=policy,
        )
        async with Agent(client, ScriptedLLM([])) as agent:
            await asyncio.wait_for(client.joining.wait(), 30)
            sink = agent.sink
            await agent.worker.queue_frame(TTSSpeakFrame("One two three."))
            # Its context opened: the sentence is in the TTS service, held for the join.
            await sink.wait_for(lambda: sink.of(TTSStartedFrame))
            assert not speaks_of(server.records.last_session)
            client.release.set()
            await sink.wait_for(lambda: sink.of(TTSStoppedFrame))
            session = server.records.last_session
        assert proxy.connections == 3
    assert speaks_of(session) == ["One two three."]
    assert list(contexts(sink.frames).values()) == [["started", "audio", "stopped"]]
    assert audio_bytes(sink.frames) == 3 * WORD_BYTES
    (error,) = agent.errors  # only the first failure to connect
    assert error.startswith("Sayna STT could not connect, retrying: ")


async def test_a_server_that_stays_unreachable_is_given_up_on() -> None:
    async with LocalServer() as probe:
        pass
    client = make_client(probe, reconnect=ReconnectPolicy(initial_backoff=0.01, max_attempts=2))
    async with Agent(client, ScriptedLLM([])) as agent:
        await eventually(lambda: len(agent.errors) == 3)
        assert not agent.stt.is_usable
        assert not agent.tts.is_usable
    assert agent.errors[0].startswith("Sayna STT could not connect, retrying: ")
    assert sorted(e.split(":")[0] for e in agent.errors[1:]) == [
        "Sayna STT could not connect (3 attempts), giving up",
        "Sayna TTS could not connect (3 attempts), giving up",
    ]


async def test_settings_updates_reach_the_session(server: LocalServer) -> None:
    """``TTSUpdateSettingsFrame(voice=...)`` and ``STTUpdateSettingsFrame(language=...)``
    are sent to Sayna (they were ignored), and the next sentence uses them."""
    client = make_client(server)
    async with Agent(client, ScriptedLLM([])) as agent:
        await agent.worker.queue_frame(
            TTSUpdateSettingsFrame(delta=TTSSettings(voice="aura-zeus-en"))
        )
        await agent.worker.queue_frame(STTUpdateSettingsFrame(delta=STTSettings(language="fr-FR")))
        await agent.worker.queue_frame(TTSSpeakFrame("Bonjour."))
        await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame))
        session = server.records.last_session
    configs = [m for m in session.messages if m["type"] == "config"]
    assert configs[-1]["tts_config"]["voice_id"] == "aura-zeus-en"
    assert configs[-1]["stt_config"]["language"] == "fr-FR"
    kinds = [m["type"] for m in session.messages]
    assert kinds.index("speak") > len(kinds) - 1 - kinds[::-1].index("config")
    assert len(server.records.sessions) == 1
    assert not agent.errors


async def test_a_voice_change_mid_reply_lets_the_sentence_in_flight_finish(
    server: LocalServer,
) -> None:
    """A ``TTSUpdateSettingsFrame`` between two sentences of a reply, the first one
    still being spoken: it ends in the old voice (the config used to be sent at once,
    and Sayna dropped that speech with no completion: its audio was lost and the reply
    stalled until ``sentence_timeout``), the next ones use the new voice."""
    client = make_client(server)
    record = server.records

    async def gate(index: int) -> None:
        if index == 2:  # the first sentence is on its way to Sayna
            await record.wait_for(lambda: speaks_of(record.last_session))
            await llm.push_frame(TTSUpdateSettingsFrame(delta=TTSSettings(voice="aura-zeus-en")))

    llm = ScriptedLLM([["One two three four five six.", "Seven eight.", "Nine."]], gate=gate)
    async with Agent(client, llm) as agent:
        await agent.say(1)
        await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame))
        session = record.last_session
    sent = [(m["type"], m.get("text", "").strip()) for m in session.messages]
    sent = [item for item in sent if item[0] in ("config", "speak", "clear")]
    assert sent == [
        ("config", ""),
        ("speak", "One two three four five six."),
        ("config", ""),
        ("speak", "Seven eight."),
        ("speak", "Nine."),
    ]
    configs = [m for m in session.messages if m["type"] == "config"]
    assert configs[-1]["tts_config"]["voice_id"] == "aura-zeus-en"
    assert audio_bytes(agent.sink.frames) == 9 * WORD_BYTES
    assert not agent.errors


@pytest.mark.parametrize("allow_interruption", [True, False])
async def test_a_voice_change_waiting_for_the_sentence_in_flight_outlives_an_interruption(
    server: LocalServer, allow_interruption: bool
) -> None:
    """A ``TTSUpdateSettingsFrame`` mid-reply waits for the sentence in flight, and the
    caller interrupts meanwhile: the change is not lost with the interrupted reply. It is
    sent once that sentence ended: at once when the interruption cleared it, after its
    completion when Sayna ignores ``clear`` (``allow_interruption=False``: sent before, the
    config would cut it); then the next sentence is spoken in the new voice."""
    client = make_client(server)
    record = server.records
    agents: list[Agent] = []

    async def gate(index: int) -> None:
        if index == 2:  # the first sentence is on its way to Sayna
            agent = agents[0]
            await record.wait_for(lambda: speaks_of(record.last_session))
            await agent.sink.wait_for(lambda: audio_bytes(agent.sink.frames) >= WORD_BYTES)
            await llm.push_frame(TTSUpdateSettingsFrame(delta=TTSSettings(voice="aura-zeus-en")))
            await asyncio.Event().wait()  # cancelled by the interruption

    long = " ".join(["word"] * 20) + "."
    llm = ScriptedLLM([[long, "Seven eight.", "Nine."]], gate=gate)
    async with Agent(client, llm, allow_interruption=allow_interruption) as agent:
        agents.append(agent)
        sink = agent.sink
        await agent.say(1)
        # The TTS service took the change (Pipecat's settings have it) and waits to send it.
        await eventually(lambda: agent.tts.settings.voice == "aura-zeus-en")
        assert [m["type"] for m in record.last_session.messages] == ["config", "speak"]
        await agent.worker.queue_frame(InterruptionFrame())
        await agent.worker.queue_frame(TTSSpeakFrame("Okay."))
        await sink.wait_for(lambda: len(contexts(sink.frames)) == 2)
        (_, okay) = contexts(sink.frames)
        await sink.wait_for(lambda: contexts(sink.frames)[okay][-1:] == ["stopped"])
        session = record.last_session
    sent = [(m["type"], m.get("text", "").strip()) for m in session.messages]
    cut = [("clear", "")] if allow_interruption else []
    assert sent == [("config", ""), ("speak", long), *cut, ("config", ""), ("speak", "Okay.")]
    assert session.messages[-2]["tts_config"]["voice_id"] == "aura-zeus-en"
    completions = session.sent_of_type("tts_playback_complete")
    assert len(completions) == (1 if allow_interruption else 2)
    assert context_audio(sink.frames, okay) == WORD_BYTES
    assert not agent.errors


async def test_a_language_change_lets_the_sentence_in_flight_finish(server: LocalServer) -> None:
    """An ``STTUpdateSettingsFrame`` while the TTS speaks: the config goes once the
    sentence ended (sent at once, it cut the sentence, as Sayna drops speech in progress
    on a config)."""
    client = make_client(server)
    record = server.records
    async with Agent(client, ScriptedLLM([])) as agent:
        await agent.worker.queue_frame(TTSSpeakFrame("One two three four five six."))
        await record.wait_for(lambda: speaks_of(record.last_session))
        await agent.worker.queue_frame(STTUpdateSettingsFrame(delta=STTSettings(language="fr-FR")))
        await agent.worker.queue_frame(TTSSpeakFrame("Deux."))
        await agent.sink.wait_for(
            lambda: [c for c in contexts(agent.sink.frames).values() if c[-1:] == ["stopped"]][1:]
        )
        session = record.last_session
    sent = [(m["type"], m.get("text", "").strip()) for m in session.messages]
    assert [item for item in sent if item[0] in ("config", "speak", "clear")] == [
        ("config", ""),
        ("speak", "One two three four five six."),
        ("config", ""),
        ("speak", "Deux."),
    ]
    configs = [m for m in session.messages if m["type"] == "config"]
    assert configs[-1]["stt_config"]["language"] == "fr-FR"
    assert audio_bytes(agent.sink.frames) == 7 * WORD_BYTES
    assert not agent.errors


async def test_a_service_joining_at_another_rate_lets_the_sentence_in_flight_finish(
    server: LocalServer,
) -> None:
    """The services run in two pipelines sharing the client: the TTS's opens the session
    and speaks; the STT's starts mid-sentence, its input at another rate than the session
    was opened with. The new rate is sent once the sentence ended (sent at once, the config
    cut it: its audio lost, no completion, and the sentence given up after
    sentence_timeout), and the STT hears at that rate."""
    client = make_client(server)
    record = server.records
    rate = 8000  # (the session opened with STTConfig's 16000)
    async with Solo([SaynaTTSService(client=client)], audio_out_sample_rate=OUT_RATE) as speaker:
        sink = speaker.sink
        await speaker.worker.queue_frame(TTSSpeakFrame(" ".join(["word"] * 20) + "."))
        await sink.wait_for(lambda: audio_bytes(sink.frames) >= WORD_BYTES)
        async with Solo([SaynaSTTService(client=client)], audio_in_sample_rate=rate) as listener:
            await sink.wait_for(lambda: sink.of(TTSStoppedFrame))
            for chunk in frames_of(tone_bursts(1, rate), rate):
                await listener.worker.queue_frame(
                    InputAudioRawFrame(audio=chunk, sample_rate=rate, num_channels=1)
                )
            await listener.sink.wait_for(lambda: listener.sink.of(TranscriptionFrame))
        session = record.last_session
    assert audio_bytes(sink.frames) == 20 * WORD_BYTES
    assert len(session.sent_of_type("tts_playback_complete")) == 1
    assert [m["type"] for m in session.messages if m["type"] != "speak"] == ["config", "config"]
    assert session.messages[-1]["stt_config"]["sample_rate"] == rate
    assert [f.text for f in listener.sink.of(TranscriptionFrame)] == ["word"]
    assert not speaker.errors
    assert not listener.errors


async def test_a_second_call_on_a_client_in_use_is_refused_not_mixed(server: LocalServer) -> None:
    """Two calls' pipelines started on one client (e.g. a global one): a session carries
    one call, so the second call's services are refused (an ErrorFrame naming the fix,
    the services unusable) instead of sharing the session (each TTS got both calls'
    audio). The refused call ending leaves the first call's session alone, and once the
    first call ended the client serves the next one."""
    client = make_client(server)
    record = server.records
    rates = {"audio_in_sample_rate": IN_RATE, "audio_out_sample_rate": OUT_RATE}

    def services() -> list[FrameProcessor]:
        return [SaynaSTTService(client=client), SaynaTTSService(client=client)]

    async with Solo(services(), **rates) as first:
        refused = services()
        async with Solo(refused, **rates) as second:
            await first.worker.queue_frame(TTSSpeakFrame("One two three four five six."))
            await second.worker.queue_frame(TTSSpeakFrame("Seven."))
            await first.sink.wait_for(lambda: first.sink.of(TTSStoppedFrame))
            assert audio_bytes(first.sink.frames) == 6 * WORD_BYTES
            await eventually(lambda: len(second.errors) == 2)
        await first.worker.queue_frame(TTSSpeakFrame("Eight."))
        await first.sink.wait_for(lambda: first.sink.of(TTSStoppedFrame)[1:])
        first_session = record.last_session
    async with Solo(services(), **rates) as third:
        await third.worker.queue_frame(TTSSpeakFrame("Nine."))
        await third.sink.wait_for(lambda: third.sink.of(TTSStoppedFrame))
        third_session = record.last_session
    assert len(record.sessions) == 2
    assert speaks_of(first_session) == ["One two three four five six.", "Eight."]
    assert speaks_of(third_session) == ["Nine."]
    assert audio_bytes(first.sink.frames) == 7 * WORD_BYTES
    assert audio_bytes(second.sink.frames) == 0
    assert audio_bytes(third.sink.frames) == WORD_BYTES
    assert [e.split(":")[0] for e in second.errors] == ["SaynaSTTService", "SaynaTTSService"]
    assert all("Use one SaynaClient per call / pipeline" in e for e in second.errors)
    assert not any(service.is_usable for service in refused)
    assert not first.errors
    assert not third.errors


async def test_a_tts_service_built_for_the_next_call_leaves_the_running_one_alone(
    server: LocalServer,
) -> None:
    """The app builds the next call's TTS service on the same client (not started) while
    this call speaks: a settings change still waits for the sentence in flight (the
    service built used to take the running one's place, so the config went at once and
    cut the sentence: given up after sentence_timeout)."""
    client = make_client(server)
    record = server.records
    async with Agent(client, ScriptedLLM([])) as agent:
        await agent.worker.queue_frame(TTSSpeakFrame(" ".join(["word"] * 20) + "."))
        await agent.sink.wait_for(lambda: agent.sink.of(TTSAudioRawFrame))
        SaynaTTSService(client=client)  # the next call's, built ahead
        await agent.worker.queue_frame(STTUpdateSettingsFrame(delta=STTSettings(model="nova-3")))
        await agent.worker.queue_frame(TTSSpeakFrame("After."))
        await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame)[1:])
        session = record.last_session
    assert [m["type"] for m in session.messages if m["type"] in ("config", "speak")] == [
        "config",
        "speak",
        "config",
        "speak",
    ]
    assert audio_bytes(agent.sink.frames) == 21 * WORD_BYTES
    assert not agent.errors


async def test_a_speak_frame_during_a_reply_is_a_context_of_its_own(server: LocalServer) -> None:
    """A TTSSpeakFrame arrives while the LLM's reply is spoken: each audio context gets
    its own audio, in order, and ends with its own TTSStoppedFrame."""
    client = make_client(server)
    agents: list[Agent] = []

    async def gate(index: int) -> None:
        # The rest of the reply comes once "Hold on." is on its way to Sayna.
        if index == 2:
            agent = agents[0]
            await agent.worker.queue_frame(TTSSpeakFrame("Hold on."))
            record = server.records
            await record.wait_for(lambda: "Hold on." in speaks_of(record.last_session), 30)

    llm = ScriptedLLM([["One two three four five.", "Six seven.", "Eight."]], gate=gate)
    async with Agent(client, llm) as agent:
        agents.append(agent)
        sink = agent.sink
        await agent.say(1)
        await sink.wait_for(lambda: len(contexts(sink.frames)) == 2)
        await sink.wait_for(
            lambda: all(c[-1:] == ["stopped"] for c in contexts(sink.frames).values())
        )
        session = server.records.last_session
    assert speaks_of(session) == ["One two three four five.", "Hold on.", "Six seven.", "Eight."]
    reply, hold_on = contexts(sink.frames)
    assert contexts(sink.frames) == {
        reply: ["started", "audio", "stopped"],
        hold_on: ["started", "audio", "stopped"],
    }
    assert context_audio(sink.frames, reply) == 8 * WORD_BYTES
    assert context_audio(sink.frames, hold_on) == 2 * WORD_BYTES


async def test_without_interruption_the_next_text_waits_for_the_speech_sayna_keeps(
    server: LocalServer,
) -> None:
    """allow_interruption=False: Sayna ignores clear and finishes the sentence, so after
    an interruption the next text is sent once that sentence completed, and its context
    gets only its own audio."""
    client = make_client(server)
    async with Agent(client, ScriptedLLM([]), allow_interruption=False) as agent:
        sink = agent.sink
        await agent.worker.queue_frame(
            TTSSpeakFrame("one two three four five six seven eight nine ten")
        )
        await sink.wait_for(lambda: audio_bytes(sink.frames) >= 2 * WORD_BYTES)
        await agent.worker.queue_frame(InterruptionFrame())
        await agent.worker.queue_frame(TTSSpeakFrame("Okay."))
        await sink.wait_for(lambda: len(contexts(sink.frames)) == 2)
        (_, okay) = contexts(sink.frames)
        await sink.wait_for(lambda: contexts(sink.frames)[okay][-1:] == ["stopped"])
        session = server.records.last_session
    assert context_audio(sink.frames, okay) == WORD_BYTES
    assert [m["type"] for m in session.messages][1:] == ["speak", "speak"]  # no clear
    assert len(session.sent_of_type("tts_playback_complete")) == 2


async def test_without_interruption_a_speak_cancelled_while_it_waits_for_the_network(
    server: LocalServer,
) -> None:
    """allow_interruption=False, and the interruption comes while the sentence's speak
    waits for a congested uplink: the SDK still sends it, so the next text waits for
    its completion and gets only its own audio (it got the interrupted sentence's)."""
    async with StallingProxy(server.port) as proxy:
        client = make_client(proxy)
        async with Agent(client, ScriptedLLM([]), allow_interruption=False) as agent:
            loop = asyncio.get_running_loop()
            waiting_since: list[float] = []  # set while an audio frame waits

            async def caller_audio() -> None:  # the caller's audio keeps the uplink busy
                while True:
                    waiting_since[:] = [loop.time()]
                    await client.on_audio_input(bytes(640))
                    waiting_since.clear()

            proxy.stall()
            uploading = asyncio.ensure_future(caller_audio())
            try:
                # The uplink is full once an audio frame waits for it (a frame that
                # does not wait is taken in the same turn of the loop).
                await eventually(lambda: waiting_since and loop.time() - waiting_since[0] > 0.3)
                await agent.worker.queue_frame(
                    TTSSpeakFrame("one two three four five six seven eight nine ten")
                )
                speech = client.speech
                await eventually(lambda: speech.current is not None)
                assert speech.current is not None
                assert not speech.current.sent_all  # its speak waits for the uplink
                await agent.worker.queue_frame(InterruptionFrame())
                await agent.worker.queue_frame(TTSSpeakFrame("Okay."))
            finally:
                uploading.cancel()
                await asyncio.gather(uploading, return_exceptions=True)
                proxy.resume()
            sink = agent.sink

            def ended() -> list[str]:  # (the interrupted context ends with no stop)
                return [c for c, seen in contexts(sink.frames).items() if seen[-1:] == ["stopped"]]

            (okay,) = await sink.wait_for(ended, timeout=60)
            session = server.records.last_session
    assert speaks_of(session) == ["one two three four five six seven eight nine ten", "Okay."]
    assert context_audio(sink.frames, okay) == WORD_BYTES
    assert audio_bytes(sink.frames) == WORD_BYTES  # none of the interrupted sentence's


@pytest.mark.parametrize("allow_interruption", [True, False])
async def test_a_sentence_that_gets_no_answer_is_given_up_and_the_next_is_spoken(
    server: LocalServer, allow_interruption: bool, caplog: pytest.LogCaptureFixture
) -> None:
    """A speak that gets neither audio nor a completion (a provider that hangs, a
    completion lost: here the server never hears it) is given up after
    sentence_timeout: an ErrorFrame says so, its context ends, the next is spoken. With
    allow_interruption=False (no clear: Sayna might still speak it) the next waits for
    its completion, at most until it got nothing for sentence_timeout once more."""
    async with SwallowingProxy(server.ws_url, first_speak(["Hello."])) as proxy:
        client = make_client(proxy)
        options = {"allow_interruption": allow_interruption, "sentence_timeout": 0.5}
        async with Agent(client, ScriptedLLM([]), **options) as agent:
            sink = agent.sink
            await agent.worker.queue_frame(TTSSpeakFrame("Hello."))
            await agent.worker.queue_frame(TTSSpeakFrame("Second."))
            await sink.wait_for(lambda: len(contexts(sink.frames)) == 2)
            hello, second = contexts(sink.frames)
            await sink.wait_for(lambda: contexts(sink.frames)[second][-1:] == ["stopped"])
            await sink.wait_for(lambda: contexts(sink.frames)[hello][-1:] == ["stopped"])
            session = server.records.last_session
    assert [c["text"].strip() for c in proxy.swallowed] == ["Hello."]
    assert speaks_of(session) == ["Second."]
    assert [m["type"] for m in session.messages].count("clear") == int(allow_interruption)
    waited = [
        r for r in caplog.records if "for 0.5 s more: the next sentence is sent" in r.getMessage()
    ]
    assert len(waited) == int(not allow_interruption)
    assert context_audio(sink.frames, hello) == 0
    assert context_audio(sink.frames, second) == WORD_BYTES
    assert [e for e in agent.errors if "given up" in e] == [
        "Sayna TTS: no audio and no completion for 0.5 s: sentence given up"
    ]


async def test_without_interruption_a_sentence_given_up_that_completes_late_ends_only_itself() -> (
    None
):
    """allow_interruption=False, and the network holds the server's messages for longer
    than sentence_timeout: the sentence is given up, but Sayna (which ignores clear then)
    spoke it, and its audio and completion come late. The next sentence is sent once that
    completion came: sent at once, it took the late audio for its own and was ended by
    the late completion, and its own audio, coming after, was dropped."""
    async with LocalServer(tts_realtime=False) as server, StallingProxy(server.port) as proxy:
        client = make_client(proxy)
        options = {"allow_interruption": False, "sentence_timeout": 2.0}
        async with Agent(client, ScriptedLLM([]), **options) as agent:
            sink = agent.sink
            record = server.records
            proxy.hold_downlink()
            await agent.worker.queue_frame(TTSSpeakFrame("One two."))
            await agent.worker.queue_frame(TTSSpeakFrame("Three."))
            session = record.last_session
            await record.wait_for(lambda: session.sent_of_type("tts_playback_complete"))
            await eventually(lambda: [e for e in agent.errors if "given up" in e])
            proxy.release_downlink()
            await sink.wait_for(lambda: len(contexts(sink.frames)) == 2)
            one_two, three = contexts(sink.frames)
            await sink.wait_for(lambda: contexts(sink.frames)[three][-1:] == ["stopped"])
    assert speaks_of(session) == ["One two.", "Three."]
    assert len(session.sent_of_type("tts_playback_complete")) == 2
    assert contexts(sink.frames) == {
        one_two: ["started", "stopped"],  # given up: its late audio is dropped
        three: ["started", "audio", "stopped"],
    }
    assert context_audio(sink.frames, three) == WORD_BYTES
    assert [e for e in agent.errors if "given up" in e] == [
        "Sayna TTS: no audio and no completion for 2.0 s: sentence given up"
    ]


async def test_a_reply_paused_past_the_stop_timeout_has_balanced_started_and_stopped(
    server: LocalServer,
) -> None:
    """The LLM pauses mid-reply for longer than Pipecat's stop_frame_timeout_s: Pipecat
    ends the context, the rest of the reply opens it again, and every TTSStartedFrame
    has its TTSStoppedFrame (one each)."""
    client = make_client(server)
    agents: list[Agent] = []

    async def gate(index: int) -> None:
        # "One two." is spoken (sent once "Three four." began), then the LLM pauses
        # until Pipecat has ended the context for want of more.
        if index == 2:
            agent = agents[0]
            sink = agent.sink
            await sink.wait_for(lambda: audio_bytes(sink.frames) >= 2 * WORD_BYTES)
            await eventually(lambda: not agent.tts.get_audio_contexts())

    llm = ScriptedLLM([["One two.", "Three four.", "Five."]], gate=gate)
    async with Agent(client, llm, stop_frame_timeout_s=1.0) as agent:
        agents.append(agent)
        sink = agent.sink
        await agent.say(1)
        await sink.wait_for(lambda: audio_bytes(sink.frames) >= 5 * WORD_BYTES)
        await sink.wait_for(lambda: not agent.tts.get_audio_contexts())
    (reply,) = contexts(sink.frames).values()
    assert reply == ["started", "audio", "stopped", "started", "audio", "stopped"]


async def test_cancelled_pipeline_closes_the_session(server: LocalServer) -> None:
    client = make_client(server)
    agent = Agent(client, ScriptedLLM([]))
    async with agent:
        await agent.say(1)
        await agent.heard.wait_for(lambda: agent.heard.of(TranscriptionFrame))
        await agent.worker.queue_frame(CancelFrame())
        await asyncio.wait_for(agent._run, 30)  # type: ignore[arg-type]
    record = server.records.last_session
    await asyncio.wait_for(record.closed.wait(), 10)
    assert not client.connected


def test_bad_configs_are_named() -> None:
    url = "http://127.0.0.1:1"
    with pytest.raises(SaynaValidationError, match="SaynaClient"):
        SaynaSTTService(client="not a client")  # type: ignore[arg-type]
    opus = SaynaClient(
        url,
        STTConfig(provider="deepgram", encoding="opus"),
        TTSConfig(provider="deepgram"),
    )
    with pytest.raises(SaynaValidationError, match="linear16"):
        SaynaSTTService(client=opus)
    mp3 = SaynaClient(
        url, STTConfig(provider="deepgram"), TTSConfig(provider="deepgram", audio_format="mp3")
    )
    with pytest.raises(SaynaValidationError, match="audio_format"):
        SaynaTTSService(client=mp3)
    control = SaynaClient(url, without_audio=True)
    with pytest.raises(SaynaValidationError, match="without_audio"):
        SaynaTTSService(client=control)


async def test_real_speech_with_the_local_engine() -> None:
    """End to end with the local engine: a question spoken by an espeak-ng voice is
    transcribed by the engine's recognizer, and the scripted answer comes back as speech."""
    pytest.importorskip("pocketsphinx", reason="the [local] extra is not installed")
    question = "I would like a cup of coffee, please."
    async with LocalServer(engine="local") as server:
        client = make_client(server)
        pcm, _ = await client.speak_rest(
            question, TTSConfig(provider="elevenlabs", voice_id="en-us+f2", sample_rate=IN_RATE)
        )
        llm = ScriptedLLM([["Here is your coffee."]])
        caller = pcm + bytes(2 * IN_RATE * 2)
        async with Agent(client, llm) as agent:
            await agent.play(caller)
            await agent.sink.wait_for(lambda: agent.sink.of(TTSStoppedFrame), timeout=60)
            sink, heard = agent.sink, agent.heard
        record = server.records.last_session
        assert record.stt_engine == "local"
        assert bytes(record.audio) == caller  # every frame, in order
    # What the recognizer made of it reached the LLM as the user's turn. (Its words are not
    # asserted: pocketsphinx's recognition of the same bytes varied between runs on a loaded
    # machine, e.g. "I would like a cup of coffee please" or "What I got off the trees".)
    transcript = " ".join(f.text for f in heard.of(TranscriptionFrame))
    assert transcript.strip()
    assert llm.heard == [transcript]
    # "Here is your coffee." as speech: well over half a second at the output rate.
    assert audio_bytes(sink.frames) > OUT_RATE * 2 // 2
