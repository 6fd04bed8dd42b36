"""Speech ends when the attached output has played it, not when its audio arrived; and a
result never interrupts the reply an earlier callback of it started."""

from __future__ import annotations

import asyncio

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient
from sayna_client.agents import BargeInEvent, SpeechHandle
from sayna_client.server import LocalServer

from .conftest import RATE, WAIT, WORD_BYTES
from .test_barge_in import say

LONG = " ".join(["word"] * 40)  # 7.2 s of the fake engine's audio


class ManualSpeaker:
    """An audio output that plays only when the test says so (``play``), and tells what
    it still holds (``buffered_bytes``)."""

    def __init__(self) -> None:
        self.buffered_bytes = 0
        self.played_bytes = 0

    def write(self, data: bytes) -> None:
        self.buffered_bytes += len(data)

    def flush(self) -> int:
        dropped, self.buffered_bytes = self.buffered_bytes, 0
        return dropped

    def play(self, size: int) -> None:
        size = min(size, self.buffered_bytes)
        self.buffered_bytes -= size
        self.played_bytes += size


class PlainOutput:
    """An output that tells nothing of what it holds (the old behaviour applies)."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def flush(self) -> int:
        return 0


async def speak_arrived(client: SaynaClient, text: str) -> SpeechHandle:
    """``client.speak(text)``, returned once its ``tts_playback_complete`` came (the
    speech queue has handled it by then: all its audio has arrived)."""
    completed = asyncio.Event()
    stop = client.on("tts_playback_complete", lambda _e: completed.set())
    try:
        handle = await client.speak(text)
        await asyncio.wait_for(completed.wait(), WAIT)
    finally:
        stop()
    return handle


async def test_speech_is_unfinished_while_the_output_holds_it(
    fast_agent: SaynaClient, fast_server: LocalServer
) -> None:
    speaker = ManualSpeaker()
    fast_agent.audio_output = speaker
    events: list[BargeInEvent] = []
    policy = fast_agent.barge_in(on_barge_in=events.append)
    handle = await speak_arrived(fast_agent, LONG)
    # All its audio arrived; the user has heard none of it yet.
    assert speaker.buffered_bytes == handle.bytes_delivered > 0
    assert not handle.done
    assert fast_agent.speech.speaking
    assert fast_agent.speech.current is handle
    speaker.play(3 * WORD_BYTES)
    # The caller talks over what they are still hearing: barge-in stops it.
    fast_server.script_speech("stop please")
    await say(fast_agent, 2)
    await handle.wait(WAIT)
    assert handle.interrupted
    assert not handle.lost
    assert speaker.buffered_bytes == 0  # flushed
    assert handle.seconds_heard == 3 * WORD_BYTES / (2 * RATE)
    assert handle.text_heard == "word word word"
    (event,) = policy.history
    assert events == [event]
    assert event.handles == (handle,)
    assert not fast_agent.speech.speaking
    session = fast_server.records.last_session
    await fast_server.records.wait_for(
        lambda: any(m["type"] == "clear" for m in session.messages), WAIT
    )


async def test_speech_ends_once_the_output_played_it(fast_agent: SaynaClient) -> None:
    speaker = ManualSpeaker()
    fast_agent.audio_output = speaker
    first = await speak_arrived(fast_agent, "one two three")
    second = await speak_arrived(fast_agent, "four five")
    assert not first.done
    assert not second.done
    assert fast_agent.speech.current is first
    speaker.play(first.bytes_delivered)  # the first one's last byte, not the second's
    await first.wait(WAIT)
    assert not first.interrupted
    assert first.text_heard == "one two three"
    assert not second.done
    assert fast_agent.speech.current is second
    second.interrupt()  # only what was played counts as heard
    assert second.interrupted
    assert second.seconds_heard == 0.0
    assert second.text_heard == ""


async def test_an_output_without_buffered_bytes_ends_speech_at_its_completion(
    fast_agent: SaynaClient,
) -> None:
    output = PlainOutput()
    fast_agent.audio_output = output
    handle = await speak_arrived(fast_agent, "one two three")
    assert handle.done
    assert not handle.interrupted
    assert output.written == handle.bytes_delivered > 0
    assert not fast_agent.speech.speaking


async def test_replacing_the_output_ends_the_speech_it_held(fast_agent: SaynaClient) -> None:
    fast_agent.audio_output = ManualSpeaker()
    handle = await speak_arrived(fast_agent, "one two three")
    assert not handle.done
    fast_agent.audio_output = None
    assert handle.done
    assert not handle.interrupted
    await eventually(lambda: not fast_agent.speech.speaking)


@pytest.mark.parametrize("order", ["callback first", "barge_in first"])
async def test_a_reply_from_a_result_callback_is_not_cut_off(
    agent: SaynaClient, server: LocalServer, order: str
) -> None:
    replies: list[object] = []
    replied = asyncio.Event()

    async def on_result(result: object) -> None:
        if result.is_speech_final and result.transcript.strip():  # type: ignore[attr-defined]
            replies.append(await agent.speak(f"You said {result.transcript}. Let me think."))  # type: ignore[attr-defined]
            replied.set()

    if order == "callback first":
        agent.register_on_stt_result(on_result)
        policy = agent.barge_in()
    else:
        policy = agent.barge_in()
        agent.register_on_stt_result(on_result)
    server.script_speech("what time is it")
    await say(agent, 4)
    await asyncio.wait_for(replied.wait(), WAIT)
    (reply,) = replies
    await reply.wait(WAIT)  # type: ignore[attr-defined]
    assert not reply.interrupted  # type: ignore[attr-defined]
    assert reply.text_heard == reply.text  # type: ignore[attr-defined]
    assert policy.history == []


async def test_a_result_still_interrupts_speech_opened_before_it(
    agent: SaynaClient, server: LocalServer
) -> None:
    replies: list[object] = []

    async def on_result(result: object) -> None:
        if result.is_speech_final and result.transcript.strip():  # type: ignore[attr-defined]
            replies.append(await agent.speak("Okay."))

    agent.register_on_stt_result(on_result)  # registered first, as above
    policy = agent.barge_in(min_words=2)
    handle = await agent.speak(LONG)
    await server.records.wait_for(lambda: handle.bytes_delivered >= WORD_BYTES, WAIT)
    server.script_speech("wait stop please")
    await say(agent, 3)
    await handle.wait(WAIT)
    assert handle.interrupted
    assert [e.transcript for e in policy.history] == ["wait stop"]


class PlaysWhenAsked(ManualSpeaker):
    """Plays all it holds at the first look at ``buffered_bytes`` once ``asked``: the
    client's watch of the output, not the test, finds it played."""

    def __init__(self) -> None:
        super().__init__()
        self.asked = False

    @property  # type: ignore[override]
    def buffered_bytes(self) -> int:
        if self.asked:
            self.played_bytes += self._held
            self._held = 0
        return self._held

    @buffered_bytes.setter
    def buffered_bytes(self, value: int) -> None:
        self._held = value


def watchers() -> list[asyncio.Task[object]]:
    """The tasks watching an output play held speech."""
    return [t for t in asyncio.all_tasks() if "PlayOut._watch" in repr(t.get_coro())]


async def test_disconnect_lets_the_output_play_out_the_speech_it_holds(
    fast_agent: SaynaClient,
) -> None:
    speaker = PlaysWhenAsked()
    fast_agent.audio_output = speaker
    handle = await speak_arrived(fast_agent, "one two three")
    assert not handle.done
    at_close: list[bool] = []
    fast_agent.on("closed", lambda _e: at_close.append(handle.done))
    speaker.asked = True
    await fast_agent.disconnect()  # drains first: the speaker finishes the last reply
    assert at_close == [True]
    assert handle.done
    assert not handle.interrupted
    assert not handle.lost
    assert handle.text_heard == "one two three"
    assert speaker.played_bytes == handle.bytes_delivered > 0


async def test_a_close_ends_the_speech_the_output_holds_as_lost(
    fast_agent: SaynaClient,
) -> None:
    speaker = ManualSpeaker()  # never plays: a speaker not started
    fast_agent.audio_output = speaker
    handle = await speak_arrived(fast_agent, LONG)
    assert not handle.done
    assert watchers()
    await fast_agent.disconnect(drain=0)  # close at once: nothing waits for the output
    assert handle.done
    assert handle.interrupted
    assert handle.lost
    assert not fast_agent.speech.speaking
    assert fast_agent.speech.current is None
    # Its audio is all in the output, which is the application's: not flushed, and
    # counted as heard as any audio delivered before a close.
    assert speaker.buffered_bytes == handle.bytes_delivered > 0
    assert handle.seconds_heard == handle.bytes_delivered / (2 * RATE)
    await handle.wait(WAIT)  # returns (does not wait for the stall bound)
    await eventually(lambda: not watchers())


async def test_setting_the_same_output_again_keeps_the_speech_it_holds(
    fast_agent: SaynaClient,
) -> None:
    speaker = ManualSpeaker()
    fast_agent.audio_output = speaker
    handle = await speak_arrived(fast_agent, "one two three")
    fast_agent.audio_output = speaker  # unchanged: what it holds is still unplayed
    assert not handle.done
    assert fast_agent.speech.current is handle
    speaker.play(handle.bytes_delivered)
    await handle.wait(WAIT)
    assert not handle.interrupted
    assert handle.text_heard == "one two three"
