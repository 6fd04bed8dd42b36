"""Barge-in against the local server: scripted caller speech over paced agent speech."""

from __future__ import annotations

import asyncio
import time

import pytest

from helpers.waiting import eventually
from sayna_client import CallbackError, SaynaClient, SaynaValidationError
from sayna_client.agents import BargeIn, BargeInEvent
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WAIT, WORD_BYTES, Peer

LONG = "this is a long answer that goes on and on for quite a few words indeed"
SILENCE = bytes(RATE)  # 0.5 s: ends the caller's utterance


async def say(client: SaynaClient, words: int) -> None:
    """The caller speaks ``words`` bursts (their text comes from the script), then pauses."""
    pcm = render_words(["x"] * words, RATE) + SILENCE
    for start in range(0, len(pcm), 640):
        await client.on_audio_input(pcm[start : start + 640])


async def test_caller_interrupts_the_agent(agent: SaynaClient, server: LocalServer) -> None:
    seen: list[BargeInEvent] = []
    events: list[BargeInEvent] = []
    agent.on("barge_in", events.append)
    policy = agent.barge_in(min_words=2, on_barge_in=seen.append)
    handle = await agent.speak(LONG)
    await server.records.wait_for(lambda: handle.bytes_delivered >= WORD_BYTES, 10)
    server.script_speech("wait stop please")
    await say(agent, 3)
    await handle.wait(10)
    assert handle.interrupted
    (event,) = policy.history
    assert seen == [event]
    await server.records.wait_for(lambda: events, 5)
    assert events == [event]
    assert event.transcript == "wait stop"  # the interim with two words, not the final
    assert event.handles == (handle,)
    assert event.text_heard == handle.text_heard
    assert (event.text_heard + " " + event.text_unheard).split() == LONG.split()
    session = server.records.last_session
    await server.records.wait_for(lambda: any(m["type"] == "clear" for m in session.messages))
    policy.detach()
    policy.detach()


async def test_backchannels_and_fillers_do_not_interrupt(
    agent: SaynaClient, server: LocalServer
) -> None:
    policy = agent.barge_in()
    handle = await agent.speak("one two three four five six seven eight")
    await server.records.wait_for(lambda: handle.bytes_delivered >= WORD_BYTES, 10)
    server.script_speech("uh huh", "hmm")
    await say(agent, 2)
    await say(agent, 1)
    turns = await server.records.wait_for(
        lambda: server.records.last_session.sent_of_type("stt_result"), 10
    )
    await handle.wait(10)
    assert turns
    assert not handle.interrupted
    assert policy.history == []
    assert not any(m["type"] == "clear" for m in server.records.last_session.messages)


async def test_min_duration_and_no_speech(agent: SaynaClient, server: LocalServer) -> None:
    policy = BargeIn(min_duration=30).attach(agent)
    handle = await agent.speak("one two three four five six")
    await server.records.wait_for(lambda: handle.bytes_delivered >= WORD_BYTES, 10)
    server.script_speech("hello there")
    await say(agent, 2)
    await handle.wait(10)
    assert not handle.interrupted  # not heard for 30 s
    # Without agent speech, user speech interrupts nothing.
    policy.detach()
    policy.min_duration = 0.0
    policy.attach(agent)
    server.script_speech("anything")
    await say(agent, 1)
    await asyncio.sleep(0)
    assert policy.history == []


def test_policy_arguments() -> None:
    with pytest.raises(SaynaValidationError, match="min_words"):
        BargeIn(min_words=0)
    with pytest.raises(SaynaValidationError, match="min_duration"):
        BargeIn(min_duration=-1)
    with pytest.raises(SaynaValidationError, match="collections"):
        BargeIn(backchannels="yeah")
    policy = BargeIn(backchannels=["Uh-huh", "Got it!"])
    assert policy.is_backchannel("uh-huh, got it")
    assert policy.is_backchannel("um got it")
    assert not policy.is_backchannel("hmm")  # a filler alone is noise, not a backchannel
    assert not policy.is_backchannel("got it but wait")
    assert policy.is_noise("")
    assert policy.is_noise("Hmm... um")
    assert not policy.is_noise("hmm no")


async def test_min_duration_counts_from_the_turns_first_result_up_to_its_speech_final(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # The turn's first interim is too early; its speech-final, later than min_duration
    # after that interim, interrupts (it used to be measured from itself: 0 s).
    server, client = peer
    policy = client.barge_in(min_duration=0.2)
    handle = await client.speak("a long answer the user talks over")
    await server.got("speak")
    await server.audio(2)
    await eventually(lambda: handle.bytes_delivered, what="the answer playing")
    first: list[float] = []
    client.on("stt_result", lambda result: first.append(time.monotonic()))
    await server.result("stop", final=False)
    await eventually(lambda: first, what="the interim delivered")
    assert policy.history == []  # too early
    await eventually(lambda: time.monotonic() - first[0] > 0.25, what="min_duration passed")
    await server.result("stop it", final=True, speech_final=True)
    await handle.wait(WAIT)
    assert handle.interrupted
    (event,) = policy.history
    assert event.transcript == "stop it"


@pytest.mark.parametrize("kind", ["plain", "async"])
async def test_an_on_barge_in_that_raises_is_reported_as_a_callback_error(
    agent: SaynaClient, server: LocalServer, kind: str
) -> None:
    errors: list[object] = []
    agent.register_on_error(errors.append)

    def plain(event: BargeInEvent) -> None:
        raise ValueError("plain bug")

    async def coroutine(event: BargeInEvent) -> None:
        raise ValueError("async bug")

    policy = agent.barge_in(on_barge_in=plain if kind == "plain" else coroutine)
    handle = await agent.speak(LONG)
    await server.records.wait_for(lambda: handle.bytes_delivered >= WORD_BYTES, 10)
    server.script_speech("stop please")
    await say(agent, 2)
    await handle.wait(10)
    assert handle.interrupted
    await eventually(lambda: errors, what="the error reported")
    (error,) = errors
    assert isinstance(error, CallbackError)
    assert error.event_type == "stt_result"  # raised while the result was decided on
    assert str(error.error) == f"{kind} bug"
    assert len(policy.history) == 1


@pytest.mark.parametrize(("older", "newer"), [(True, False), (False, True)])
async def test_the_newest_speech_decides_whether_the_caller_may_interrupt(
    peer: tuple[Peer, SaynaClient], older: bool, newer: bool
) -> None:
    # The server takes `clear` by the latest speak's allow_interruption (protocol §6.7);
    # barge-in used to go by the oldest handle's, interrupting what the server kept
    # playing (or letting the caller talk over an interruptible answer).
    server, client = peer
    policy = client.barge_in()
    first = await client.speak("the first answer", allow_interruption=older)
    second = await client.speak("the second answer", allow_interruption=newer)
    await server.got("speak")
    await server.got("speak")
    await server.audio(2)
    await eventually(lambda: first.bytes_delivered, what="the first answer playing")
    decided: list[object] = []
    client.on("stt_result", decided.append)  # after the policy's: called once it decided
    await server.result("stop it now", final=True, speech_final=True)
    if newer:
        await first.wait(WAIT)
        await second.wait(WAIT)
        assert first.interrupted
        assert second.interrupted
        (event,) = policy.history
        assert event.handles == (first, second)
        await server.got("clear")
    else:
        await eventually(lambda: decided, what="the result delivered")
        assert policy.history == []
        assert not first.interrupted
        assert not second.interrupted
        assert server.received.empty()  # no clear
