"""The idle watchdog on a real session: re-prompt after quiet, end after max_duration."""

from __future__ import annotations

import asyncio

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient, SaynaValidationError
from sayna_client.agents import IdleEvent, IdleWatchdog
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WAIT, Peer, make_client


async def test_idle_reprompts_and_counts(agent: SaynaClient, server: LocalServer) -> None:
    events: list[IdleEvent] = []
    agent.on("idle", events.append)

    async def reprompt(event: IdleEvent) -> None:
        if len(watchdog.history) == 1:  # the first time only
            await (await agent.speak("are you still there"))

    watchdog = agent.idle_watchdog(0.3, on_idle=reprompt)
    assert watchdog.running
    # Quiet: idle once, the re-prompt speaks (activity), then quiet again: the count goes
    # on (the user has not spoken), so the docs' "count == 1: re-prompt, else hang up" works.
    await server.records.wait_for(lambda: len(watchdog.history) >= 2, 15)
    first, second = watchdog.history[:2]
    assert first.reason == "idle"
    assert first.idle_for >= 0.3
    assert first.count == 1
    assert second.count == 2
    assert second.idle_for >= 0.3  # put off by the re-prompt's audio
    speaks = [m for m in server.records.last_session.messages if m["type"] == "speak"]
    assert [m["text"] for m in speaks] == ["are you still there"]
    await server.records.wait_for(lambda: len(events) >= 2, 5)
    assert events[:2] == [first, second]
    watchdog.stop()
    watchdog.stop()
    assert not watchdog.running


async def test_the_count_starts_again_once_the_user_speaks(
    agent: SaynaClient, server: LocalServer
) -> None:
    # The callbacks see results and idle events in one order.
    seen: list[object] = []
    agent.on("stt_result", lambda result: seen.append(result.transcript))
    agent.on("idle", lambda event: seen.append(event.count))
    watchdog = agent.idle_watchdog(0.3)
    await server.records.wait_for(lambda: seen[:2] == [1, 2], 15)
    server.script_speech("hello")
    pcm = render_words(["x"], RATE) + bytes(RATE)
    for start in range(0, len(pcm), 640):
        await agent.on_audio_input(pcm[start : start + 640])
    await server.records.wait_for(lambda: "hello" in seen and type(seen[-1]) is int, 15)
    after = seen[seen.index("hello") :]
    assert next(item for item in after if type(item) is int) == 1
    watchdog.stop()


async def test_max_duration_ends_the_session(server: LocalServer) -> None:
    client = make_client(server)
    async with client:
        await client.connect()
        watchdog = client.idle_watchdog(30, max_duration=0.3)
        await server.records.wait_for(lambda: not client.connected, 10)
        assert [e.reason for e in watchdog.history] == ["max_duration"]
        assert watchdog.history[0].session_seconds >= 0.3
        assert not watchdog.running


def test_arguments(agent: SaynaClient) -> None:
    with pytest.raises(SaynaValidationError, match="idle_after"):
        IdleWatchdog(agent, idle_after=0)
    with pytest.raises(SaynaValidationError, match="max_duration"):
        IdleWatchdog(agent, idle_after=1, max_duration=-1)


async def test_the_watchdog_goes_on_after_an_automatic_reconnection(
    reconnecting_peer: tuple[Peer, SaynaClient],
) -> None:
    peer, client = reconnecting_peer
    back = asyncio.Event()
    client.on("reconnected", lambda _event: back.set())
    watchdog = client.idle_watchdog(0.2)
    await peer.drop()  # a server error: the client reconnects
    await asyncio.wait_for(back.wait(), WAIT)
    assert peer.sessions == 2
    seen = len(watchdog.history)
    await eventually(lambda: len(watchdog.history) > seen, what="an idle event after it")
    assert watchdog.running
    assert watchdog.history[-1].reason == "idle"
    watchdog.stop()


async def test_max_duration_counts_across_an_automatic_reconnection(
    reconnecting_peer: tuple[Peer, SaynaClient],
) -> None:
    peer, client = reconnecting_peer
    ended = asyncio.Event()
    watchdog = client.idle_watchdog(30, max_duration=0.5, on_max_duration=lambda _e: ended.set())
    await peer.drop()  # the call goes on in a new session: so does its time limit
    await asyncio.wait_for(ended.wait(), WAIT)
    assert [event.reason for event in watchdog.history] == ["max_duration"]
    assert watchdog.history[0].session_seconds >= 0.5
    assert not watchdog.running


async def test_the_watchdog_ends_with_the_session(agent: SaynaClient) -> None:
    watchdog = agent.idle_watchdog(30)
    await agent.disconnect()
    await eventually(lambda: not watchdog.running)
