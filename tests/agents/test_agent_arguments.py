"""Arguments of the agents helpers checked up front (a SaynaValidationError naming the
argument), and the idle watchdog's hooks and start before connect()."""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

import pytest
from aiohttp import WSMsgType, web

from helpers.waiting import eventually
from sayna_client import CallbackError, SaynaClient, SaynaValidationError
from sayna_client.agents import BargeIn, IdleEvent
from sayna_client.server import LocalServer

from .conftest import WAIT, _peer_client


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"min_duration": math.nan}, "min_duration"),
        ({"min_duration": math.inf}, "min_duration"),
        ({"min_duration": True}, "min_duration"),
        ({"min_duration": "1"}, "min_duration"),
        ({"backchannels": [1]}, "backchannels"),
        ({"backchannels": "yeah"}, "backchannels"),
        ({"fillers": [None]}, "fillers"),
        ({"fillers": 3}, "fillers"),
        ({"on_barge_in": 5}, "on_barge_in"),
        ({"resume_on_noise": "no"}, "resume_on_noise"),
    ],
)
async def test_barge_in_guards_are_checked_up_front(
    agent: SaynaClient, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(SaynaValidationError, match=named):
        agent.barge_in(**kwargs)
    with pytest.raises(SaynaValidationError, match=named):
        BargeIn(**kwargs)


async def test_good_barge_in_guards_still_pass(agent: SaynaClient) -> None:
    policy = agent.barge_in(
        min_duration=0, backchannels=(p for p in ["uh huh"]), fillers={"um"}, on_barge_in=print
    )
    assert policy.backchannels == frozenset({"uh huh"})  # a generator, read once
    assert policy.fillers == frozenset({"um"})
    policy.detach()


@pytest.mark.parametrize(
    ("kwargs", "named"),
    [
        ({"idle_after": 1.0, "on_idle": 5}, "on_idle"),
        ({"idle_after": 1.0, "on_max_duration": "hang up"}, "on_max_duration"),
        ({"idle_after": math.nan}, "idle_after"),
        ({"idle_after": True}, "idle_after"),
    ],
)
async def test_watchdog_arguments_are_checked_up_front(
    agent: SaynaClient, kwargs: dict[str, Any], named: str
) -> None:
    with pytest.raises(SaynaValidationError, match=named):
        agent.idle_watchdog(**kwargs)


@pytest.mark.parametrize("segmenter", [5, "x", object()])
async def test_a_bad_segmenter_is_refused_before_anything_is_sent(
    agent: SaynaClient, server: LocalServer, segmenter: Any
) -> None:
    # It used to return a handle whose await raised AttributeError.
    with pytest.raises(SaynaValidationError, match="segmenter must be a SentenceSegmenter"):
        await agent.speak_stream(["Hello there. How are you."], segmenter=segmenter)
    assert agent.speech.current is None
    assert not any(m["type"] == "speak" for m in server.records.last_session.messages)


async def test_a_segmenter_of_ones_own_still_works(agent: SaynaClient) -> None:
    class Lines:
        def __init__(self) -> None:
            self.text = ""

        def push(self, piece: str) -> list[str]:
            self.text += piece
            *done, self.text = self.text.split("\n")
            return [line for line in done if line]

        def finish(self) -> list[str]:
            return [self.text] if self.text else []

    handle = await agent.speak_stream(["one\ntw", "o"], segmenter=Lines())  # type: ignore[arg-type]
    await asyncio.wait_for(handle, WAIT)
    assert handle.chunks == ["one", "two"]


async def test_a_watchdog_hook_that_raises_is_reported_as_a_callback_error(
    agent: SaynaClient,
) -> None:
    errors: list[Any] = []
    agent.register_on_error(errors.append)

    def on_idle(event: IdleEvent) -> None:
        raise RuntimeError("re-prompt failed")

    watchdog = agent.idle_watchdog(0.05, on_idle=on_idle)
    # Reported as barge-in reports its callback's error, and the watchdog goes on.
    await eventually(lambda: len(watchdog.history) >= 2 and errors)
    report = errors[0]
    assert isinstance(report, CallbackError)
    assert report.event_type == "idle"
    assert "on_idle" in report.callback
    assert isinstance(report.error, RuntimeError)
    assert watchdog.running
    watchdog.stop()


async def test_a_watchdog_started_before_connect_counts_from_ready() -> None:
    """A peer that holds its ``ready``: a watchdog started before ``connect()`` used to
    count the wait for it as quiet (an idle event before the session was even ready)."""
    configured = asyncio.Event()
    release = asyncio.Event()
    loop = asyncio.get_running_loop()
    ready_sent: list[float] = []

    async def ws_handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        msg = await ws.receive()
        assert msg.type is WSMsgType.TEXT
        configured.set()
        await release.wait()
        ready_sent.append(loop.time())
        await ws.send_str(json.dumps({"type": "ready", "stream_id": "held"}))
        async for _msg in ws:
            pass
        return ws

    app = web.Application()
    app.router.add_get("/ws", ws_handler)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        async with _peer_client(url) as client:
            seen: list[tuple[IdleEvent, bool, float]] = []

            def on_idle(event: IdleEvent) -> None:
                seen.append((event, client.ready, loop.time()))

            watchdog = client.idle_watchdog(0.05, on_idle=on_idle, max_duration=60)
            connecting = asyncio.ensure_future(client.connect())
            await asyncio.wait_for(configured.wait(), WAIT)
            await asyncio.sleep(0.3)  # the scenario: the server takes its time to be ready
            release.set()
            await asyncio.wait_for(connecting, WAIT)
            await eventually(lambda: seen)
            event, was_ready, at = seen[0]
            assert was_ready  # no idle event before the session was ready
            # Counted from ready, not from idle_watchdog(): the wait for it is not quiet.
            assert event.session_seconds <= at - ready_sent[0]
            assert event.idle_for <= at - ready_sent[0]
            watchdog.stop()
    finally:
        await runner.cleanup()
