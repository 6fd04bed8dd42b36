"""LiveKit Agents: the plugin's STT and TTS driven through the framework's own stream
interfaces (RecognizeStream, SynthesizeStream, ChunkedStream) against the local server."""

from __future__ import annotations

import asyncio
import logging
import sys
from array import array
from collections.abc import AsyncIterator
from typing import Any

import pytest

if sys.version_info < (3, 10):
    pytest.skip(
        "livekit-agents 1.8 requires Python 3.10+, so the [livekit] extra cannot be installed here",
        allow_module_level=True,
    )

from livekit import rtc
from livekit.agents import (
    APIConnectionError,
    APIConnectOptions,
    APIStatusError,
    APITimeoutError,
    stt,
    tts,
)

from helpers.internals import server_state
from helpers.waiting import eventually
from sayna_client import SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.errors import SaynaValidationError
from sayna_client.integrations import livekit as sayna
from sayna_client.server import Faults, LocalServer

from .helpers import (
    CuttableProxy,
    StallingProxy,
    SwallowingProxy,
    first_speak,
    frames_of,
    tone_bursts,
)

STT_RATE = 16000
TTS_RATE = 24000
ROOM_RATE = 48000  # what LiveKit rooms carry; the plugin's stream resamples it
WORD_BYTES = 2 * TTS_RATE * 180 // 1000  # fake engine: 120 ms tone + 60 ms gap per word
OPTIONS = APIConnectOptions(max_retry=0, timeout=10)


def configs() -> dict[str, object]:
    return {
        "stt_config": STTConfig(provider="deepgram", model="nova-2", sample_rate=STT_RATE),
        "tts_config": TTSConfig(provider="deepgram", voice_id="aura-asteria-en"),
        "timeouts": Timeouts(connect=5, ready=10, request=10, close=5),
    }


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as srv:
        yield srv


@pytest.fixture
async def sayna_tts(server: LocalServer) -> AsyncIterator[sayna.TTS]:
    plugin = sayna.TTS(url=server.url, **configs())  # type: ignore[arg-type]
    yield plugin
    await plugin.aclose()


def room_frames(words: int) -> list[rtc.AudioFrame]:
    pcm = tone_bursts(words, ROOM_RATE)
    return [
        rtc.AudioFrame(chunk, ROOM_RATE, 1, len(chunk) // 2) for chunk in frames_of(pcm, ROOM_RATE)
    ]


def read_events(
    stream: Any,
) -> tuple[list[stt.SpeechEvent], asyncio.Event, asyncio.Future[None]]:
    """Read ``stream`` on a task: the events so far, an event set at each one (for
    ``eventually(wake=...)``), and the task (it raises what the stream raised)."""
    events: list[stt.SpeechEvent] = []
    changed = asyncio.Event()

    async def read() -> None:
        async for event in stream:
            events.append(event)
            changed.set()

    return events, changed, asyncio.ensure_future(read())


async def test_stt_stream_transcribes_room_audio(server: LocalServer) -> None:
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    stream = plugin.stream(conn_options=OPTIONS)
    for frame in room_frames(3):
        stream.push_frame(frame)
    events: list[stt.SpeechEvent] = []
    async for event in stream:
        events.append(event)
        if event.type == stt.SpeechEventType.END_OF_SPEECH:
            break
    await stream.aclose()
    kinds = [e.type for e in events]
    assert kinds[0] == stt.SpeechEventType.START_OF_SPEECH
    assert stt.SpeechEventType.INTERIM_TRANSCRIPT in kinds
    assert kinds[-1] == stt.SpeechEventType.END_OF_SPEECH
    finals = [e for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert " ".join(e.alternatives[0].text for e in finals) == "word word word"
    assert finals[0].alternatives[0].language == "en-US"
    session = server.records.last_session
    assert session.config["stt_config"]["sample_rate"] == STT_RATE
    # 48 kHz room audio arrived resampled to the session's 16 kHz (the resampler keeps
    # back a few ms until more input comes).
    assert 0.95 < session.audio_bytes / len(tone_bursts(3, STT_RATE)) <= 1
    await asyncio.wait_for(session.closed.wait(), 10)


async def test_stt_end_input_drains_and_closes(server: LocalServer) -> None:
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    stream = plugin.stream(conn_options=OPTIONS)
    for frame in room_frames(2):
        stream.push_frame(frame)
    stream.end_input()
    events = [event async for event in stream]  # ends once the session is drained
    finals = [e for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert " ".join(e.alternatives[0].text for e in finals) == "word word"
    assert any(e.type == stt.SpeechEventType.RECOGNITION_USAGE for e in events)
    await asyncio.wait_for(server.records.last_session.closed.wait(), 10)


async def test_stt_session_lost_mid_turn_ends_that_turn(server: LocalServer) -> None:
    """The session drops mid-turn and LiveKit retries on a new one: the dropped turn gets
    its END_OF_SPEECH, and the next turn starts with its own START_OF_SPEECH (no turn
    mixes the two sessions' results)."""
    server.faults = Faults(drop_connection_after_frames=3)  # ready, then 2 interim results
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    stream = plugin.stream(
        conn_options=APIConnectOptions(max_retry=3, timeout=10, retry_interval=0.05)
    )
    events, changed, reader = read_events(stream)
    for chunk in frames_of(tone_bursts(4, STT_RATE, silence_after=0), STT_RATE):
        stream.push_frame(rtc.AudioFrame(chunk, STT_RATE, 1, len(chunk) // 2))
    await server.records.wait_for(lambda: server.records.sessions)
    server.faults = Faults()  # only the first session breaks
    await server.records.wait_for(lambda: len(server.records.sessions) == 2)
    for chunk in frames_of(tone_bursts(2, STT_RATE), STT_RATE):
        stream.push_frame(rtc.AudioFrame(chunk, STT_RATE, 1, len(chunk) // 2))
    second = server.records.sessions[1]
    await eventually(
        lambda: [e for e in events if e.type == stt.SpeechEventType.END_OF_SPEECH][1:],
        wake=changed,
    )
    await stream.aclose()
    await asyncio.gather(reader, return_exceptions=True)
    turns: list[set[str]] = []  # the sessions (request ids) of each turn's transcripts
    kinds = []
    for event in events:
        if event.type == stt.SpeechEventType.START_OF_SPEECH:
            turns.append(set())
        elif event.type in (
            stt.SpeechEventType.INTERIM_TRANSCRIPT,
            stt.SpeechEventType.FINAL_TRANSCRIPT,
        ):
            turns[-1].add(event.request_id)
        if event.type in (stt.SpeechEventType.START_OF_SPEECH, stt.SpeechEventType.END_OF_SPEECH):
            kinds.append(event.type)
    assert (
        kinds[:4]
        == [
            stt.SpeechEventType.START_OF_SPEECH,
            stt.SpeechEventType.END_OF_SPEECH,
        ]
        * 2
    )
    assert all(len(ids) == 1 for ids in turns)
    assert second.stream_id in turns[1]


async def test_stt_recognizer_failing_mid_stream_is_retried_on_a_new_session(
    server: LocalServer,
) -> None:
    """Sayna reports its recognizer failed (``STT streaming error``: nothing more will be
    transcribed on that session): a retryable error, so LiveKit opens a new session and
    the next words are heard (the agent went deaf: the error was only logged)."""
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    errors: list[stt.STTError] = []
    plugin.on("error", errors.append)
    stream = plugin.stream(
        conn_options=APIConnectOptions(max_retry=3, timeout=10, retry_interval=0.01)
    )
    events, changed, reader = read_events(stream)
    stream.push_frame(rtc.AudioFrame(bytes(640), STT_RATE, 1, 320))
    await server.records.wait_for(lambda: server.records.sessions)
    (session,) = server_state(server).sessions
    session.error("STT streaming error: Configuration error: invalid argument")
    await server.records.wait_for(lambda: len(server.records.sessions) == 2)
    for chunk in frames_of(tone_bursts(2, STT_RATE), STT_RATE):
        stream.push_frame(rtc.AudioFrame(chunk, STT_RATE, 1, len(chunk) // 2))
    finals = await eventually(
        lambda: [e for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT],
        wake=changed,
    )
    await stream.aclose()
    await asyncio.gather(reader, return_exceptions=True)
    assert finals[-1].alternatives[0].text == "word word"
    (error,) = errors
    assert error.recoverable
    assert "STT streaming error" in str(error.error)


async def test_stt_a_server_that_never_gets_ready_is_given_up_on(server: LocalServer) -> None:
    """Each attempt timed out at exactly ``timeout`` and then cleaned up, so it lasted
    longer than ``timeout``; LiveKit starts the retry budget over after such an attempt,
    and the stream retried for ever (a session a second). Now ``max_retry`` holds."""
    server.faults = Faults(never_send_ready=True)
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    stream = plugin.stream(
        conn_options=APIConnectOptions(max_retry=1, timeout=1, retry_interval=0.01)
    )
    stream.push_frame(rtc.AudioFrame(bytes(640), STT_RATE, 1, 320))

    async def read() -> None:
        async for _event in stream:
            pass

    with pytest.raises(APIConnectionError, match="after 1 attempts"):
        await asyncio.wait_for(read(), 30)
    await stream.aclose()
    assert len(server.records.sessions) == 2  # the first try and one retry


async def test_stt_end_input_mid_utterance_keeps_the_last_words(server: LocalServer) -> None:
    """The input stops right after speech (a call or file cut mid-utterance): end_input()
    still gets its final transcript, on the one session, without an error."""
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    errors: list[object] = []
    plugin.on("error", errors.append)
    stream = plugin.stream(conn_options=APIConnectOptions(max_retry=1, timeout=10))
    pcm = tone_bursts(3, STT_RATE, silence_after=0)
    for chunk in frames_of(pcm, STT_RATE):
        stream.push_frame(rtc.AudioFrame(chunk, STT_RATE, 1, len(chunk) // 2))
    stream.end_input()
    events = [event async for event in stream]
    finals = [e for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert [e.alternatives[0].text for e in finals] == ["word word word"]
    assert events[-2].type == stt.SpeechEventType.END_OF_SPEECH
    assert errors == []
    assert len(server.records.sessions) == 1
    await asyncio.wait_for(server.records.last_session.closed.wait(), 10)


async def test_stt_recognize_a_buffer(server: LocalServer) -> None:
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    event = await plugin.recognize(room_frames(2), conn_options=OPTIONS)
    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    assert event.alternatives[0].text == "word word"
    assert server.records.last_session.config["stt_config"]["sample_rate"] == ROOM_RATE


def stereo_frames(words: int, rate: int) -> list[rtc.AudioFrame]:
    """``tone_bursts(words, rate)`` in both channels of 20 ms stereo frames."""
    mono = array("h")
    mono.frombytes(tone_bursts(words, rate))
    both = array("h", (sample for value in mono for sample in (value, value))).tobytes()
    size = 4 * rate * 20 // 1000
    return [
        rtc.AudioFrame(both[i : i + size], rate, 2, len(both[i : i + size]) // 4)
        for i in range(0, len(both), size)
    ]


@pytest.mark.parametrize("rate", [STT_RATE, ROOM_RATE])
async def test_stt_stream_mixes_stereo_frames_down_to_mono(server: LocalServer, rate: int) -> None:
    """Stereo frames (the session's rate, or resampled by LiveKit) reach Sayna as mono:
    they used to be sent interleaved, as mono (twice the bytes, heard at half speed,
    and their usage doubled)."""
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    stream = plugin.stream(conn_options=OPTIONS)
    for frame in stereo_frames(3, rate):
        stream.push_frame(frame)
    events: list[stt.SpeechEvent] = []
    async for event in stream:
        events.append(event)
        if event.type == stt.SpeechEventType.RECOGNITION_USAGE:
            break
    await stream.aclose()
    finals = [e for e in events if e.type == stt.SpeechEventType.FINAL_TRANSCRIPT]
    assert " ".join(e.alternatives[0].text for e in finals) == "word word word"
    mono_bytes = len(tone_bursts(3, STT_RATE))
    assert 0.95 < server.records.last_session.audio_bytes / mono_bytes <= 1
    usage = events[-1].recognition_usage
    assert usage is not None
    assert 0.95 < usage.audio_duration / (mono_bytes / (2 * STT_RATE)) <= 1


async def test_stt_recognize_mixes_a_stereo_buffer_down_to_mono(server: LocalServer) -> None:
    # (It refused it with a 400, while stream() took stereo frames.)
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    event = await plugin.recognize(stereo_frames(2, STT_RATE), conn_options=OPTIONS)
    assert event.alternatives[0].text == "word word"
    session = server.records.last_session
    assert session.config["stt_config"]["channels"] == 1
    assert session.audio_bytes >= len(tone_bursts(2, STT_RATE))


async def test_stt_recognize_a_buffer_without_speech(server: LocalServer) -> None:
    """No speech (a muted microphone, a false VAD trigger): an empty final transcript,
    not a wait for ever."""
    plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
    silence = rtc.AudioFrame(bytes(2 * STT_RATE), STT_RATE, 1, STT_RATE)  # 1 s
    # (the outer bound only ends a failing test: recognize() must return by itself)
    event = await asyncio.wait_for(plugin.recognize([silence], conn_options=OPTIONS), 30)
    assert event.type == stt.SpeechEventType.FINAL_TRANSCRIPT
    assert event.alternatives[0].text == ""
    await asyncio.wait_for(server.records.last_session.closed.wait(), 10)


async def test_stt_recognize_past_its_deadline_is_a_retryable_timeout(
    server: LocalServer,
) -> None:
    """The buffer's sending outlasts ``conn_options.timeout`` (a congested uplink):
    recognize() raises LiveKit's retryable ``APITimeoutError`` (it passed a used-up
    deadline as ``finish_audio(timeout=0.0)``, refused as a non-retryable 400)."""
    timeout = 1.0
    loop = asyncio.get_running_loop()
    async with StallingProxy(server.port) as proxy:
        plugin = sayna.STT(url=proxy.url, **configs())  # type: ignore[arg-type]
        minutes = rtc.AudioFrame(bytes(2 * STT_RATE * 600), STT_RATE, 1, STT_RATE * 600)

        async def congest() -> None:
            # once the session is open, the uplink stalls until the deadline has passed
            # (the connect took at most `timeout`, and the deadline is `timeout` after it)
            await eventually(lambda: server.records.sessions, what="a session")
            proxy.stall()
            loop.call_at(started + 2 * timeout + 0.2, proxy.resume)

        started = loop.time()
        task = asyncio.ensure_future(congest())
        options = APIConnectOptions(max_retry=0, timeout=timeout)
        with pytest.raises(APITimeoutError) as caught:
            await asyncio.wait_for(plugin.recognize([minutes], conn_options=options), 30)
        await task
    assert caught.value.retryable


async def test_stt_recognize_real_speech_with_a_slow_recognizer() -> None:
    """The local engine's recognizer takes longer than a moment to end a turn: recognize()
    waits for it (it returned '' when Sayna's results came more than ~0.3 s after the
    buffer and its silence were sent)."""
    pytest.importorskip("pocketsphinx", reason="the [local] extra is not installed")
    async with LocalServer(engine="local") as server:
        plugin = sayna.STT(url=server.url, **configs())  # type: ignore[arg-type]
        voice = TTSConfig(provider="elevenlabs", voice_id="en-us+f2", sample_rate=STT_RATE)
        async with SaynaClient(server.url, without_audio=True) as rest:
            pcm, _ = await rest.speak_rest("I would like a cup of coffee, please.", voice)
        frames = [
            rtc.AudioFrame(chunk, STT_RATE, 1, len(chunk) // 2)
            for chunk in frames_of(pcm, STT_RATE)
        ]
        options = APIConnectOptions(max_retry=0, timeout=30)
        event = await plugin.recognize(frames, conn_options=options)
        finals = [
            m["transcript"]
            for m in server.records.last_session.sent_of_type("stt_result")
            if m.get("is_speech_final")
        ]
    # (pocketsphinx's words vary on a loaded machine: what it said is what came back)
    assert finals
    assert finals[0].strip()
    assert event.alternatives[0].text == " ".join(finals)


async def collect(stream: tts.SynthesizeStream | tts.ChunkedStream) -> list[rtc.AudioFrame]:
    return [audio.frame async for audio in stream]


def pcm_bytes(frames: list[rtc.AudioFrame]) -> int:
    return sum(len(f.data.tobytes()) for f in frames)


def speaks_of(session: Any) -> list[str]:
    return [m["text"].strip() for m in session.messages if m["type"] == "speak"]


def words_of(frames: list[rtc.AudioFrame]) -> float:
    """Fake-engine words in ``frames`` (LiveKit's emitter may pad the end by a few ms)."""
    size = pcm_bytes(frames)
    assert size % WORD_BYTES <= 2 * TTS_RATE * 20 // 1000
    return size // WORD_BYTES


async def test_tts_chunked(server: LocalServer, sayna_tts: sayna.TTS) -> None:
    async with sayna_tts.synthesize("one two three", conn_options=OPTIONS) as stream:
        frames = await collect(stream)
    assert {(f.sample_rate, f.num_channels) for f in frames} == {(TTS_RATE, 1)}
    assert words_of(frames) == 3
    session = server.records.last_session
    assert [m["text"] for m in session.messages if m["type"] == "speak"] == ["one two three"]


async def test_tts_stream_speaks_sentences_and_reuses_the_session(
    server: LocalServer, sayna_tts: sayna.TTS
) -> None:
    for _ in range(2):
        stream = sayna_tts.stream(conn_options=OPTIONS)
        for piece in ["Hello there", ". How are", " you doing today", "? Fine."]:
            stream.push_text(piece)
        stream.end_input()
        frames = await collect(stream)
        await stream.aclose()
        assert words_of(frames) == 8
    assert len(server.records.sessions) == 1  # pooled
    session = server.records.last_session
    speaks = [m["text"] for m in session.messages if m["type"] == "speak"]
    # Sentences (LiveKit's tokenizer joins short ones), one speak each.
    text = "Hello there. How are you doing today? Fine."
    assert " ".join(speaks) == f"{text} {text}"
    assert len(speaks) >= 4
    completions = session.sent_of_type("tts_playback_complete")
    assert len(completions) == len(speaks)  # one speak at a time: one completion each


async def test_tts_provider_failing_mid_sentence_ends_that_sentence_only(
    server: LocalServer, sayna_tts: sayna.TTS
) -> None:
    """``TTS error: ...`` during a sentence (a provider hiccup; its completion follows):
    that sentence's audio is cut, the reply goes on (it used to fail the whole reply)."""
    server.fail_tts("upstream hiccup", after_chunks=2)
    errors: list[object] = []
    sayna_tts.on("error", errors.append)
    stream = sayna_tts.stream(conn_options=OPTIONS)
    stream.push_text("One two three. Four five six. Seven eight nine. ")
    stream.end_input()
    frames = await collect(stream)
    await stream.aclose()
    speaks = speaks_of(server.records.last_session)
    assert " ".join(speaks) == "One two three. Four five six. Seven eight nine."
    assert len(speaks) >= 2  # the failed one and at least one after it
    assert len(server.records.sessions) == 1
    assert not errors
    # The sentences after the failed one are whole: at least "Seven eight nine."
    assert pcm_bytes(frames) >= 3 * WORD_BYTES
    assert pcm_bytes(frames) < 9 * WORD_BYTES


async def test_tts_refused_speak_is_retried_on_a_new_session(
    server: LocalServer, sayna_tts: sayna.TTS
) -> None:
    """``Failed to synthesize speech`` (no audio, no completion) before any audio: a
    retryable error, so LiveKit speaks the reply again on a new session."""
    server.fail_tts("provider not connected", refuse=True)
    errors: list[tts.TTSError] = []
    sayna_tts.on("error", errors.append)
    options = APIConnectOptions(max_retry=2, timeout=10, retry_interval=0.01)
    stream = sayna_tts.stream(conn_options=options)
    stream.push_text("One two three. Four five six. Seven eight nine. ")
    stream.end_input()
    frames = await collect(stream)
    await stream.aclose()
    assert words_of(frames) == 9
    assert len(server.records.sessions) == 2
    (error,) = errors
    assert error.recoverable
    assert "Failed to synthesize speech" in str(error.error)


@pytest.mark.parametrize("kind", ["chunked", "stream"])
async def test_tts_sentence_without_answer_times_out_and_is_retried(
    server: LocalServer, kind: str
) -> None:
    """A speak that gets neither audio nor its completion (a provider that hangs; here
    the server never hears it) fails after conn_options.timeout with a retryable
    APITimeoutError, as LiveKit's own TTS does: LiveKit speaks it again on a new
    session."""
    async with SwallowingProxy(server.ws_url, first_speak(["One two."])) as proxy:
        plugin = sayna.TTS(url=proxy.url, **configs())  # type: ignore[arg-type]
        errors: list[tts.TTSError] = []
        plugin.on("error", errors.append)
        options = APIConnectOptions(max_retry=1, timeout=0.5, retry_interval=0.01)
        try:
            stream: tts.ChunkedStream | tts.SynthesizeStream
            if kind == "chunked":
                stream = plugin.synthesize("One two.", conn_options=options)
            else:
                stream = plugin.stream(conn_options=options)
                stream.push_text("One two. ")
                stream.end_input()
            frames = await asyncio.wait_for(collect(stream), 30)
            await stream.aclose()
        finally:
            await plugin.aclose()
    assert len(proxy.swallowed) == 1
    assert words_of(frames) == 2
    assert len(server.records.sessions) == 2
    (error,) = errors
    assert error.recoverable
    assert isinstance(error.error, APITimeoutError)


async def test_tts_stream_interrupted_clears_and_drops_the_session(
    server: LocalServer, sayna_tts: sayna.TTS
) -> None:
    stream = sayna_tts.stream(conn_options=OPTIONS)
    stream.push_text("One two. Three four. Five six. Seven eight. Nine ten. ")
    first = await stream.__anext__()
    assert first.frame.sample_rate == TTS_RATE
    await stream.aclose()  # what AgentSession does when the user interrupts
    session = server.records.last_session
    assert any(m["type"] == "clear" for m in session.messages)
    await asyncio.wait_for(session.closed.wait(), 10)  # closed now, not at the next reply
    # The interrupted session is not reused: its in-flight audio cannot leak.
    async with sayna_tts.synthesize("okay", conn_options=OPTIONS) as chunked:
        frames = await collect(chunked)
    assert words_of(frames) == 1
    assert len(server.records.sessions) == 2


async def all_closed(server: LocalServer) -> None:
    for record in server.records.sessions:
        await asyncio.wait_for(record.closed.wait(), 10)


async def test_tts_aclose_while_a_stream_speaks_ends_it_quietly(server: LocalServer) -> None:
    plugin = sayna.TTS(url=server.url, **configs())  # type: ignore[arg-type]
    stream = plugin.stream(conn_options=APIConnectOptions(max_retry=3, timeout=10))
    stream.push_text("one two three four five six seven eight nine ten eleven twelve. ")
    stream.end_input()
    await stream.__anext__()  # it speaks
    await plugin.aclose()  # the agent shuts down mid-reply
    rest = [audio async for audio in stream]  # ends, without an error
    assert pcm_bytes([a.frame for a in rest]) < 12 * WORD_BYTES
    assert len(server.records.sessions) == 1
    await all_closed(server)


async def test_tts_aclose_while_a_stream_connects_opens_no_session(server: LocalServer) -> None:
    server.faults = Faults(ready_delay=0.5)
    plugin = sayna.TTS(url=server.url, **configs())  # type: ignore[arg-type]
    stream = plugin.stream(conn_options=APIConnectOptions(max_retry=3, timeout=10))
    stream.push_text("one two. ")
    stream.end_input()
    frames = asyncio.ensure_future(collect(stream))
    await server.records.wait_for(lambda: server.records.sessions)  # connecting
    await plugin.aclose()
    assert await asyncio.wait_for(frames, 30) == []
    assert len(server.records.sessions) == 1  # not reconnected after aclose()
    await all_closed(server)


async def test_tts_used_again_after_aclose_speaks_on_a_new_session(server: LocalServer) -> None:
    # (It produced no audio and no error: every new session was refused as "closed".)
    plugin = sayna.TTS(url=server.url, **configs())  # type: ignore[arg-type]
    options = APIConnectOptions(max_retry=0, timeout=10)
    async with plugin.synthesize("one two. ", conn_options=options) as first:
        assert pcm_bytes(await collect(first)) > 0
    await plugin.aclose()
    async with plugin.synthesize("one two. ", conn_options=options) as again:
        assert pcm_bytes(await collect(again)) > 0
    stream = plugin.stream(conn_options=options)
    stream.push_text("one two. ")
    stream.end_input()
    assert pcm_bytes(await collect(stream)) > 0
    await plugin.aclose()
    await all_closed(server)


async def test_tts_a_pooled_session_dropped_while_idle_is_replaced(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The network drops the idle pooled session between two replies: the next reply
    (synthesize() and stream()) is spoken on a new session, with no retry needed (it
    failed with "The Sayna session has ended", using up a retry: with max_retry=0 the
    reply was lost)."""
    caplog.set_level(logging.WARNING, logger="sayna_client")
    lost = "Sayna WebSocket closed by the server or network"
    async with LocalServer() as server, CuttableProxy(server.port) as proxy:
        plugin = sayna.TTS(url=proxy.url, **configs())  # type: ignore[arg-type]
        try:
            async with plugin.synthesize("one two. ", conn_options=OPTIONS) as first:
                assert words_of(await collect(first)) == 2
            proxy.cut()
            await eventually(lambda: caplog.text.count(lost) == 1)  # (the client saw it)
            async with plugin.synthesize("three four. ", conn_options=OPTIONS) as again:
                assert words_of(await collect(again)) == 2
            proxy.cut()
            await eventually(lambda: caplog.text.count(lost) == 2)
            stream = plugin.stream(conn_options=OPTIONS)
            stream.push_text("five six. ")
            stream.end_input()
            assert words_of(await collect(stream)) == 2
            await stream.aclose()
        finally:
            await plugin.aclose()
        assert [speaks_of(s) for s in server.records.sessions] == [
            ["one two."],
            ["three four."],
            ["five six."],
        ]


async def test_bad_arguments(server: LocalServer) -> None:
    with pytest.raises(SaynaValidationError, match="both required"):
        sayna.STT(
            url=server.url,
            stt_config=STTConfig(provider="deepgram"),
            tts_config=None,  # type: ignore[arg-type]
        )
    with pytest.raises(SaynaValidationError, match="audio_format"):
        sayna.TTS(
            url=server.url,
            stt_config=STTConfig(provider="deepgram"),
            tts_config=TTSConfig(provider="deepgram", audio_format="mp3"),
        )
    with pytest.raises(SaynaValidationError):
        sayna.TTS(url="ftp://nowhere", **configs())  # type: ignore[arg-type]


async def test_rejected_config_is_not_retried(server: LocalServer) -> None:
    plugin = sayna.TTS(
        url=server.url,
        stt_config=STTConfig(provider="deepgram"),
        tts_config=TTSConfig(provider="no-such-provider"),
    )
    with pytest.raises(APIStatusError) as info:
        async with plugin.synthesize("hello", conn_options=APIConnectOptions(max_retry=2)) as s:
            await collect(s)
    assert info.value.retryable is False
    assert len(server.records.sessions) == 1
    await plugin.aclose()
