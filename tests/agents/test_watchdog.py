"""The idle watchdog on a real session: re-prompt after quiet, end after max_duration."""

from __future__ import annotations

import pytest

from sayna_client import SaynaClient, SaynaValidationError
from sayna_client.agents import IdleEvent, IdleWatchdog
from sayna_client.server import LocalServer

from .conftest import make_client


async def test_idle_reprompts_and_counts(agent: SaynaClient, server: LocalServer) -> None:
    events: list[IdleEvent] = []
    agent.on("idle", events.append)

    async def reprompt(event: IdleEvent) -> None:
        if len(watchdog.history) == 1:  # the first time only
            await (await agent.speak("are you still there"))

    watchdog = agent.idle_watchdog(0.3, on_idle=reprompt)
    assert watchdog.running
    # Quiet: idle once, the re-prompt speaks (activity), then quiet again: idle from 1.
    await server.records.wait_for(lambda: len(watchdog.history) >= 2, 15)
    first, second = watchdog.history[:2]
    assert first.reason == "idle"
    assert first.idle_for >= 0.3
    assert first.count == 1
    assert second.count == 1  # the re-prompt's audio was activity in between
    speaks = [m for m in server.records.last_session.messages if m["type"] == "speak"]
    assert [m["text"] for m in speaks] == ["are you still there"]
    await server.records.wait_for(lambda: len(events) >= 2, 5)
    assert events[:2] == [first, second]
    watchdog.stop()
    watchdog.stop()
    assert not watchdog.running


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
