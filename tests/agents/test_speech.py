"""Speech handles and speak_stream against the local server (paced TTS: clear cuts speech)."""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import AsyncIterator

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient, SaynaValidationError
from sayna_client.agents import AudioOutput, SpeechHandle
from sayna_client.server import LocalServer

from .conftest import RATE, WORD_BYTES

LONG = "this is a long answer that goes on and on for quite a few words indeed"


def speaks(server: LocalServer) -> list[dict[str, object]]:
    return [m for m in server.records.last_session.messages if m["type"] == "speak"]


async def test_speak_returns_a_handle_that_plays_out(agent: SaynaClient) -> None:
    handle = await agent.speak("one two three")
    assert isinstance(handle, SpeechHandle)
    await handle.wait(10)
    assert handle.done
    assert not handle.interrupted
    assert handle.bytes_delivered == 3 * WORD_BYTES
    assert handle.seconds_heard == pytest.approx(0.54)
    assert handle.text_heard == "one two three"
    # The session measured its own seconds per word from speech that played out.
    assert agent.speech.seconds_per_word == pytest.approx(0.18)


async def test_first_speak_leaves_with_the_first_sentence(
    agent: SaynaClient, server: LocalServer
) -> None:
    gate = asyncio.Event()
    consumed: list[str] = []

    async def llm() -> AsyncIterator[str]:
        for token in ["Sure", ".", " Dr", ". Who", " is 3", ".5 km", " away", ". "]:
            consumed.append(token)
            yield token
        await gate.wait()
        for token in [" Then", " we", " are", " done", " here", " ok."]:
            yield token

    handle = await agent.speak_stream(llm())
    first = await server.records.wait_for(lambda: speaks(server))
    assert first[0]["text"] == "Sure."
    second = await server.records.wait_for(lambda: speaks(server)[1:])
    assert second[0]["text"] == "Dr. Who is 3.5 km away."
    assert not handle.done
    gate.set()
    await handle.wait(15)
    sent = speaks(server)
    assert [m["text"] for m in sent] == [
        "Sure.",
        "Dr. Who is 3.5 km away.",
        "Then we are done here ok.",
    ]
    assert [m["flush"] for m in sent] == [True, False, False]
    assert handle.text == "Sure. Dr. Who is 3.5 km away. Then we are done here ok."
    assert handle.bytes_delivered == 13 * WORD_BYTES
    assert not handle.interrupted


async def test_interrupt_stops_speech_and_keeps_the_words_heard(
    agent: SaynaClient, server: LocalServer
) -> None:
    await (await agent.speak("calibrate the rate"))  # 0.18 s a word on the fake engine
    handle = await agent.speak(LONG)

    def two_words(_: bytes) -> None:
        if handle.bytes_delivered >= 2 * WORD_BYTES and not handle.done:
            handle.interrupt()

    agent.register_on_tts_audio(two_words)
    await handle.wait(10)
    assert handle.interrupted
    assert handle.text_heard == "this is"
    assert 0.36 <= (handle.seconds_heard or 0) < 0.54
    session = server.records.last_session
    await server.records.wait_for(lambda: any(m["type"] == "clear" for m in session.messages))
    # The server stopped: far less than the whole answer was synthesized.
    assert session.sent_audio_bytes < (3 + 8) * WORD_BYTES
    handle.interrupt()  # finished: no effect


class Buffered(AudioOutput):
    """A speaker that has played nothing yet: everything written is still buffered."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.flushed = 0

    def write(self, data: bytes) -> None:
        self.buffer += data

    def flush(self) -> int:
        dropped, self.flushed = len(self.buffer), self.flushed + 1
        self.buffer.clear()
        return dropped


async def test_output_gets_audio_and_unplayed_audio_is_not_heard(
    agent: SaynaClient, server: LocalServer
) -> None:
    output = Buffered()
    agent.audio_output = output
    assert agent.audio_output is output
    handle = await agent.speak(LONG)
    await server.records.wait_for(lambda: len(output.buffer) >= WORD_BYTES, 10)
    handle.interrupt()
    assert output.flushed == 1
    assert not output.buffer
    assert handle.seconds_heard == 0
    assert handle.text_heard == ""
    # Audio of the cancelled speech still on its way is not written to the output.
    await agent.clear()
    assert not output.buffer
    follow = await agent.speak("two words")
    await follow.wait(10)
    assert (follow.interrupted, follow.bytes_delivered) == (False, 2 * WORD_BYTES)
    assert len(output.buffer) == 2 * WORD_BYTES
    with pytest.raises(SaynaValidationError, match="write"):
        agent.audio_output = object()  # type: ignore[assignment]
    agent.audio_output = None


async def test_clear_interrupts_handles(agent: SaynaClient) -> None:
    handle = await agent.speak(LONG)
    await agent.clear()
    await handle.wait(5)
    assert handle.interrupted


async def test_non_interruptible_speech_refuses_interrupt(agent: SaynaClient) -> None:
    handle = await agent.speak("please hold", allow_interruption=False)
    with pytest.raises(SaynaValidationError, match="allow_interruption=False"):
        handle.interrupt()
    await handle.wait(10)
    assert not handle.interrupted


async def test_speech_queued_behind_non_interruptible_speech_refuses_interrupt(
    agent: SaynaClient, server: LocalServer
) -> None:
    # The server honours clear by the newest speak's flag: with a non-interruptible one
    # queued, it ignores the clear, so the older handle must not end as interrupted
    # (nor its audio be dropped) while the server goes on speaking both.
    first = await agent.speak(LONG)
    second = await agent.speak("please hold", allow_interruption=False)
    with pytest.raises(SaynaValidationError, match="allow_interruption=False"):
        first.interrupt()
    await first.wait(20)
    await second.wait(20)
    assert not first.interrupted
    assert not second.interrupted
    assert first.bytes_delivered + second.bytes_delivered == (
        server.records.last_session.sent_audio_bytes
    )
    assert not any(m["type"] == "clear" for m in server.records.last_session.messages)


async def test_interrupting_a_stream_stops_reading_it(
    agent: SaynaClient, server: LocalServer
) -> None:
    closed = asyncio.Event()
    read: list[str] = []

    async def llm() -> AsyncIterator[str]:
        try:
            for n in range(1000):
                read.append(str(n))
                yield f"Sentence number {n} is here. "
                await asyncio.sleep(0)
        finally:
            closed.set()

    handle = await agent.speak_stream(llm())
    await server.records.wait_for(lambda: len(read) >= 3, 10)
    handle.interrupt()
    await handle.wait(5)
    await asyncio.wait_for(closed.wait(), 5)
    assert handle.interrupted
    assert len(read) < 1000


async def test_stream_errors_reach_the_awaiter(agent: SaynaClient) -> None:
    async def llm() -> AsyncIterator[str]:
        yield "Hello there. "
        raise ValueError("model overloaded")

    handle = await agent.speak_stream(llm())
    with pytest.raises(ValueError, match="model overloaded"):
        await handle
    empty = await agent.speak_stream([])
    await empty.wait(5)
    assert empty.text == ""
    assert not empty.interrupted
    with pytest.raises(SaynaValidationError, match="speak\\(\\)"):
        await agent.speak_stream("a plain string")
    plain = await agent.speak_stream(["Plain ", "iterables work too."])
    await plain.wait(10)
    assert plain.text == "Plain iterables work too."


async def test_closing_ends_handles(server: LocalServer) -> None:
    from .conftest import make_client

    client = make_client(server)
    await client.connect()
    handle = await client.speak(LONG)
    await client.disconnect(graceful=False)  # a graceful one lets the speech finish
    await handle.wait(5)
    assert handle.interrupted
    assert RATE == 16000


class _Sink:
    def __init__(self) -> None:
        self.data = bytearray()

    def write(self, data: bytes) -> None:
        self.data += data

    def flush(self) -> int:
        return 0


async def test_frames_reach_the_queue_only_while_it_needs_them(agent: SaynaClient) -> None:
    queue = agent.speech
    assert not queue.listening  # a session without speech pays nothing per TTS frame
    handle = await agent.speak("one two")
    assert queue.listening
    await handle.wait(10)
    assert handle.bytes_delivered == 2 * WORD_BYTES
    assert not queue.listening  # played out, no output: frames are not looked at
    sink = _Sink()
    agent.audio_output = sink
    assert queue.listening
    await (await agent.speak("three")).wait(10)
    assert len(sink.data) == WORD_BYTES
    agent.audio_output = None
    assert not queue.listening
    # Usage still counts every byte the session received.
    usage = agent.turn_metrics.summary()["usage"]["deepgram"]
    assert usage["seconds_synthesized"] == pytest.approx(3 * 0.18)


async def test_awaits_of_a_handle_are_independent_of_the_speech(agent: SaynaClient) -> None:
    # A handle holds no future: every await waits on its own, so cancelling one, or a
    # wait that times out, leaves the speech and the other awaits as they were.
    handle = await agent.speak("one two three")  # 0.54 s of paced audio
    cancelled = asyncio.ensure_future(handle.wait())
    other = asyncio.ensure_future(handle.wait())
    await asyncio.sleep(0)  # both are waiting
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    for _ in range(10):  # awaits given up on are dropped as more come
        with pytest.raises(asyncio.TimeoutError):
            await handle.wait(0.001)
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker")
    marker.set("registered")
    called: list[tuple[SpeechHandle, str]] = []
    ran = asyncio.Event()

    def on_done(done: SpeechHandle) -> None:
        called.append((done, marker.get()))
        ran.set()

    handle.add_done_callback(on_done)
    marker.set("changed later")
    await handle
    await other
    assert handle.done
    assert not handle.interrupted
    assert handle.exception() is None
    assert handle.bytes_delivered == 3 * WORD_BYTES
    await asyncio.wait_for(ran.wait(), 5)
    assert called == [(handle, "registered")]  # in the context it was registered in
    ran.clear()
    handle.add_done_callback(on_done)  # done already: at the next loop pass
    assert len(called) == 1
    await asyncio.wait_for(ran.wait(), 5)
    assert len(called) == 2
    await handle  # done: returns at once


async def test_a_wait_s_timeout_must_be_seconds(agent: SaynaClient) -> None:
    """``handle.wait("5")`` raised asyncio's own TypeError from deep inside wait_for."""
    handle = await agent.speak("one")
    for bad in ("5", True, float("nan"), [5]):
        with pytest.raises(SaynaValidationError, match=r"timeout must be a number of seconds"):
            await handle.wait(bad)  # type: ignore[arg-type]
    await handle.wait(10)


async def test_every_await_of_a_failed_stream_raises(agent: SaynaClient) -> None:
    async def llm() -> AsyncIterator[str]:
        yield "Hello there. "
        raise ValueError("model overloaded")

    handle = await agent.speak_stream(llm())
    first = asyncio.ensure_future(handle.wait())
    with pytest.raises(ValueError, match="model overloaded"):
        await handle
    with pytest.raises(ValueError, match="model overloaded"):
        await first
    assert isinstance(handle.exception(), ValueError)


async def test_handles_are_credited_across_a_reconnection(agent: SaynaClient) -> None:
    # Handles are credited from the session's TTS counts, which start again at zero in
    # each session (client.metrics); the queue's counts carry on across sessions.
    await (await agent.speak("one two")).wait(10)
    assert agent.metrics.tts_audio_bytes == 2 * WORD_BYTES
    await agent.disconnect()
    await agent.connect()
    assert agent.metrics.tts_audio_bytes == 0
    handle = await agent.speak("three")
    await handle.wait(10)
    assert not handle.interrupted
    assert handle.bytes_delivered == WORD_BYTES
    assert agent.metrics.tts_audio_frames > 0


async def test_speeches_that_overlap_end_at_their_one_completion(agent: SaynaClient) -> None:
    # The second speak reaches the server while the first is synthesized: the server
    # reports its queue drained once, after both. Both handles are done then (the audio
    # was credited to the oldest), and the next speech is credited on its own.
    completions: list[object] = []
    agent.on("tts_playback_complete", completions.append)
    first = await agent.speak("one two")
    second = await agent.speak("three")
    await asyncio.wait_for(asyncio.gather(first.wait(), second.wait()), 10)
    await eventually(lambda: completions, what="the completion's callback")
    assert len(completions) == 1
    assert not agent.speech.speaking
    assert not first.interrupted
    assert not second.interrupted
    assert (first.bytes_delivered, second.bytes_delivered) == (3 * WORD_BYTES, 0)
    assert agent.speech.seconds_per_word == pytest.approx(0.18)  # three words, their audio
    third = await agent.speak("four five")
    await third.wait(10)
    assert third.bytes_delivered == 2 * WORD_BYTES
    await eventually(lambda: len(completions) == 2, what="the second completion's callback")
