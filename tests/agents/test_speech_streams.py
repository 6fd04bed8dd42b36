"""speak_stream handles whose text source outlives or fails after its chunks, speech queued
beside an open stream, and an audio output that raises (local server, paced TTS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from helpers.waiting import eventually
from sayna_client import CallbackError, SaynaClient, SaynaError, SaynaValidationError
from sayna_client.agents import SentenceSegmenter
from sayna_client.server import LocalServer

from .conftest import WAIT, WORD_BYTES


class LLMError(Exception):
    pass


def speaks(server: LocalServer) -> list[dict[str, Any]]:
    return [m for m in server.records.last_session.messages if m["type"] == "speak"]


def completions(agent: SaynaClient) -> list[object]:
    """The completions the client's callbacks got (the queue saw each one before)."""
    got: list[object] = []
    agent.on("tts_playback_complete", got.append)
    return got


async def test_a_stream_open_after_its_last_chunk_ends_when_it_ends(agent: SaynaClient) -> None:
    # The LLM's text ends with a newline, so the last chunk leaves at once, and the
    # stream stays open (a tool call, a late usage chunk) past the completion.
    done = completions(agent)
    release = asyncio.Event()

    async def llm() -> AsyncIterator[str]:
        for token in ["Let", " me", " check", " that", " for", " you", ".\n"]:
            yield token
        await release.wait()

    handle = await agent.speak_stream(llm())
    await eventually(lambda: done)
    assert not handle.done  # the source may still send more
    release.set()
    await handle.wait(WAIT)
    assert not handle.interrupted
    assert handle.bytes_delivered == 6 * WORD_BYTES
    assert not agent.speech.speaking
    after = await agent.speak("Here it is.")
    await after.wait(WAIT)
    assert after.bytes_delivered == 3 * WORD_BYTES


async def test_speech_after_a_stream_still_open_is_credited_its_own_audio(
    agent: SaynaClient,
) -> None:
    done = completions(agent)
    release = asyncio.Event()

    async def llm() -> AsyncIterator[str]:
        yield "Let me check that for you.\n"
        await release.wait()

    stream = await agent.speak_stream(llm())
    await eventually(lambda: done)
    after = await agent.speak("Here it is.")
    await eventually(lambda: len(done) == 2)  # its audio played while the stream was open
    release.set()
    await stream.wait(WAIT)
    await after.wait(WAIT)
    assert stream.bytes_delivered == 6 * WORD_BYTES
    assert after.bytes_delivered == 3 * WORD_BYTES
    assert agent.speech.seconds_per_word == pytest.approx(0.18)


async def test_a_speech_behind_a_stream_that_sent_nothing_plays_out(
    agent: SaynaClient,
) -> None:
    go = asyncio.Event()

    async def llm() -> AsyncIterator[str]:
        await go.wait()  # the LLM is thinking
        yield "Your order ships tomorrow."

    stream = await agent.speak_stream(llm())
    filler = await agent.speak("One moment please.")
    await filler.wait(WAIT)
    assert filler.bytes_delivered == 3 * WORD_BYTES
    assert not stream.done
    assert agent.speech.current is stream
    go.set()
    await stream.wait(WAIT)
    assert stream.bytes_delivered == 4 * WORD_BYTES
    assert stream.text_heard == "Your order ships tomorrow."


async def test_a_speech_behind_a_stream_that_fails_before_its_first_chunk_plays_out(
    agent: SaynaClient,
) -> None:
    done = completions(agent)
    fail = asyncio.Event()

    async def llm() -> AsyncIterator[str]:
        await fail.wait()
        raise LLMError("upstream 503")
        yield ""  # an async generator

    stream = await agent.speak_stream(llm())
    filler = await agent.speak("One moment please.")
    await eventually(lambda: done)
    fail.set()
    with pytest.raises(LLMError):
        await stream.wait(WAIT)
    await filler.wait(WAIT)
    assert filler.bytes_delivered == 3 * WORD_BYTES
    assert not agent.speech.speaking


async def test_a_source_failing_after_a_chunk_went_out_raises_once_it_played_out(
    agent: SaynaClient, server: LocalServer
) -> None:
    async def llm() -> AsyncIterator[str]:
        for token in ["One", " two", " three", " four", " five", ".", " Then"]:
            yield token
        await server.records.wait_for(lambda: speaks(server))
        raise LLMError("rate limited")

    handle = await agent.speak_stream(llm())
    with pytest.raises(LLMError, match="rate limited"):
        await handle.wait(WAIT)
    # The sentence on the server played out, as this speech's: not cut, not the next's.
    assert not handle.interrupted
    assert handle.bytes_delivered == 5 * WORD_BYTES
    assert handle.text_heard == "One two three four five."
    assert isinstance(handle.exception(), LLMError)
    assert not any(m["type"] == "clear" for m in server.records.last_session.messages)
    sorry = await agent.speak("Sorry.")
    await sorry.wait(WAIT)
    assert sorry.bytes_delivered == WORD_BYTES
    assert agent.speech.seconds_per_word == pytest.approx(0.18)


async def test_a_source_raising_cancelled_error_of_its_own_fails_the_speech(
    agent: SaynaClient, server: LocalServer
) -> None:
    async def llm() -> AsyncIterator[str]:
        for token in ["One", " two", " three", " four", " five", ".", " Then"]:
            yield token
        await server.records.wait_for(lambda: speaks(server))
        request = asyncio.ensure_future(asyncio.Event().wait())  # the LLM request task...
        request.cancel()  # ...cancelled by another part of the application
        await request  # raises CancelledError here, in the source

    handle = await agent.speak_stream(llm())
    # The source's failure, as any other: raised once its sentence played out; as a
    # SaynaError caused by it (raised as is, it made the awaiting task look cancelled).
    waiter = asyncio.ensure_future(handle.wait(WAIT))
    with pytest.raises(SaynaError, match="text source raised CancelledError") as info:
        await waiter
    assert not waiter.cancelled()
    assert isinstance(info.value.__cause__, asyncio.CancelledError)
    assert handle.exception() is info.value
    assert not handle.interrupted
    assert handle.bytes_delivered == 5 * WORD_BYTES
    assert handle.text_heard == "One two three four five."
    sorry = await agent.speak("Sorry.")
    await sorry.wait(WAIT)
    assert sorry.bytes_delivered == WORD_BYTES  # not the audio of the sentence before


async def test_a_none_piece_after_a_chunk_went_out_raises_and_closes_the_source(
    agent: SaynaClient, server: LocalServer
) -> None:
    closed = asyncio.Event()

    async def llm() -> AsyncIterator[Any]:
        try:
            for token in ["Sure", ",", " the", " shop", " opens", " at", " nine", ".", " It"]:
                yield token
            await server.records.wait_for(lambda: speaks(server))
            yield None  # an OpenAI stream's last delta.content
        finally:
            closed.set()

    handle = await agent.speak_stream(llm())
    with pytest.raises(SaynaValidationError, match="NoneType"):
        await handle.wait(WAIT)
    await asyncio.wait_for(closed.wait(), WAIT)
    assert handle.bytes_delivered == 6 * WORD_BYTES
    bye = await agent.speak("Bye.")
    await bye.wait(WAIT)
    assert bye.bytes_delivered == WORD_BYTES


class Unplugged:
    """An output whose device went away: flush() raises."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def flush(self) -> int:
        raise OSError("audio device unplugged")


async def test_an_output_whose_flush_raises_still_lets_the_interruption_end_speech(
    agent: SaynaClient, server: LocalServer
) -> None:
    reports: list[Any] = []
    agent.register_on_error(reports.append)
    output = Unplugged()
    agent.audio_output = output
    handle = await agent.speak("one two three four five six seven eight nine ten")
    await eventually(lambda: output.written)
    handle.interrupt()  # does not raise
    assert handle.done
    assert handle.interrupted
    assert not agent.speech.speaking
    session = server.records.last_session
    await server.records.wait_for(lambda: any(m["type"] == "clear" for m in session.messages))
    handle.interrupt()  # finished: no effect
    await eventually(lambda: reports)
    report = reports[0]
    assert isinstance(report, CallbackError)
    assert report.callback == "audio_output.flush"
    assert isinstance(report.error, OSError)
    # The session goes on.
    agent.audio_output = None
    after = await agent.speak("hello again")
    await after.wait(WAIT)
    assert after.bytes_delivered == 2 * WORD_BYTES


class Flaky:
    """An output whose write() raises once (a full buffer)."""

    def __init__(self) -> None:
        self.calls = 0
        self.written = 0

    def write(self, data: bytes) -> None:
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("buffer overflow")
        self.written += len(data)

    def flush(self) -> int:
        return 0


async def test_an_output_whose_write_raises_is_reported_and_the_session_goes_on(
    agent: SaynaClient,
) -> None:
    reports: list[Any] = []
    agent.register_on_error(reports.append)
    output = Flaky()
    agent.audio_output = output
    frames: list[int] = []
    agent.register_on_tts_audio(lambda data: frames.append(len(data)))
    handle = await agent.speak("one two three")
    await handle.wait(WAIT)
    assert not handle.interrupted
    assert handle.bytes_delivered == 3 * WORD_BYTES
    assert agent.connected
    await eventually(lambda: reports)
    assert [type(r) for r in reports] == [CallbackError]
    assert reports[0].callback == "audio_output.write"
    assert reports[0].event_type == "tts_audio"
    assert output.calls == len(frames)  # every frame went on to the output
    after = await agent.speak("four five")
    await after.wait(WAIT)
    assert after.bytes_delivered == 2 * WORD_BYTES


async def test_a_segmenter_reused_across_streams_carries_no_text_between_them(
    agent: SaynaClient, server: LocalServer
) -> None:
    segmenter = SentenceSegmenter(min_chars=20, max_chars=120)
    stalled = asyncio.Event()

    async def interrupted_answer() -> AsyncIterator[str]:
        yield "Our premium plan costs forty dollars."
        yield " The basic plan"
        stalled.set()
        await asyncio.Event().wait()  # still generating when the user barges in

    first = await agent.speak_stream(interrupted_answer(), segmenter=segmenter)
    await stalled.wait()
    first.interrupt()
    await first.wait(WAIT)

    async def next_answer() -> AsyncIterator[str]:
        yield "Sorry, go ahead."

    second = await agent.speak_stream(next_answer(), segmenter=segmenter)
    await second.wait(WAIT)
    assert second.chunks == ["Sorry, go ahead."]
    assert speaks(server)[-1]["text"] == "Sorry, go ahead."
    assert segmenter.pending == ""  # the streams cut with copies of it


async def test_streams_at_once_on_one_segmenter_do_not_mix(agent: SaynaClient) -> None:
    segmenter = SentenceSegmenter()
    turn = asyncio.Event()
    pushed = asyncio.Event()

    async def one() -> AsyncIterator[str]:
        yield "Alpha beta"
        turn.set()
        await pushed.wait()  # the other stream's piece is in while this one's is pending
        yield " gamma."

    async def two() -> AsyncIterator[str]:
        await turn.wait()
        yield "Delta epsilon."
        pushed.set()

    first = await agent.speak_stream(one(), segmenter=segmenter)
    second = await agent.speak_stream(two(), segmenter=segmenter)
    await asyncio.gather(first.wait(WAIT), second.wait(WAIT))
    assert first.chunks == ["Alpha beta gamma."]
    assert second.chunks == ["Delta epsilon."]
