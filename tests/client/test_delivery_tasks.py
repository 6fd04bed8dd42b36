"""The callbacks' task across event loops and cancellation.

A session's ``async`` callbacks run on its dispatcher's task. These tests pin what must
hold whoever runs them: a client used again in a later ``asyncio.run()`` (after a refused
connect whose error reached a callback on the first loop), and, when that task is
cancelled (a shutdown cancelling every task) before it first ran, while it waits for the
previous session's callbacks, or just after an event or the rest of one was handed to it:
no event lost or reordered, no overlap of two sessions' callbacks, no wait left hanging.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from helpers.internals import event_hub
from helpers.waiting import eventually
from sayna_client import SaynaConfigRejectedError, STTResultMessage, Timeouts
from sayna_client.server import Faults, LocalServer

from .conftest import ThreadedServer, make_client


async def _push(url: str, stream_id: str, count: int, kind: str = "stt") -> None:
    """Make the server push ``count`` results (or TTS frames: ``kind="audio"``) to the
    session ``stream_id``."""
    body = {"kind": kind, "count": count, "size": 64, "interval_ms": 0}
    endpoint = f"{url}/_local/bench/{stream_id}/burst"
    async with aiohttp.ClientSession() as http, http.post(endpoint, json=body) as response:
        assert response.status == 202


def test_a_client_refused_on_one_loop_delivers_on_the_next() -> None:
    # The refused connect's error reached an async callback on the first loop (a task of
    # that loop ran it). Used in a second asyncio.run(), the client must deliver on the
    # new loop: nothing a consumer started on the first one may be kept for the next.
    errors: list[str] = []
    results: list[str] = []

    async def on_error(error: Any) -> None:
        errors.append(error.message)

    async def on_result(result: STTResultMessage) -> None:
        await asyncio.sleep(0)
        results.append(result.transcript)

    with ThreadedServer() as server:
        client = make_client(server, stream_id="two-loops")
        client.register_on_error(on_error)
        client.register_on_stt_result(on_result)

        async def refused() -> None:
            with pytest.raises(SaynaConfigRejectedError, match="provider down"):
                await client.connect()
            await eventually(lambda: errors == ["provider down"], what="the error callback")

        server.faults = Faults(reject_config_error="provider down")
        asyncio.run(refused())
        server.faults = Faults()

        async def served() -> None:
            async with client:
                await client.connect()
                await _push(server.url, "two-loops", 3)
                await eventually(lambda: len(results) == 3, what="the result callbacks")
                await client.disconnect(drain=0)

        asyncio.run(served())
    assert errors == ["provider down"]


async def test_a_callbacks_task_cancelled_before_it_ran_does_not_stop_the_callbacks(
    server: LocalServer,
) -> None:
    # A shutdown that cancels every task but its own can catch the callbacks' task
    # before its first step: the task then ends without running any of its code. The
    # session's later events must still reach the callbacks, in order, with none lost.
    seen: list[str] = []

    async def on_result(result: STTResultMessage) -> None:
        seen.append(result.transcript)

    async with make_client(server, stream_id="cancelled-early") as client:
        client.register_on_stt_result(on_result)
        await client.connect()
        hub = event_hub(client)
        hub.publish(_result("one"))  # starts the callbacks' task...
        await asyncio.wait(_cancel_callbacks_tasks())  # ...cancelled before it ran
        hub.publish(_result("two"))
        await eventually(lambda: seen == ["one", "two"], what="both results delivered")
        await client.disconnect(drain=0)


async def test_disconnect_delivers_what_a_task_cancelled_before_it_ran_left(
    server: LocalServer,
) -> None:
    # The same early cancellation, then disconnect() at once: the event left queued is
    # still delivered (disconnect lets the callbacks finish what is queued).
    seen: list[str] = []

    async def on_result(result: STTResultMessage) -> None:
        seen.append(result.transcript)

    async with make_client(server, stream_id="cancelled-then-closed") as client:
        client.register_on_stt_result(on_result)
        await client.connect()
        event_hub(client).publish(_result("left"))
        await asyncio.wait(_cancel_callbacks_tasks())
        await client.disconnect(drain=0)
        assert seen == ["left"]


async def test_an_event_handed_to_the_task_survives_its_cancellation(
    server: LocalServer,
) -> None:
    # The task waits; the next event is handed to it through its future, and the task is
    # cancelled before it resumes. That event must not vanish with the task: it goes to
    # the next consumer, before the events after it.
    seen: list[str] = []

    async def on_result(result: STTResultMessage) -> None:
        seen.append(result.transcript)

    async with make_client(server, stream_id="handed-then-cancelled") as client:
        client.register_on_stt_result(on_result)
        await client.connect()
        hub = event_hub(client)
        hub.publish(_result("zero"))
        await eventually(lambda: seen == ["zero"], what="the first result")
        await eventually(lambda: hub._dispatcher.waiting, what="the task waiting")
        hub.publish(_result("one"))  # handed to the waiting task
        await asyncio.wait(_cancel_callbacks_tasks())
        hub.publish(_result("two"))
        await eventually(lambda: seen == ["zero", "one", "two"], what="every result, in order")
        await client.disconnect(drain=0)


async def test_a_hand_over_cancelled_before_it_began_keeps_the_order(
    server: LocalServer,
) -> None:
    # Plain callbacks only: the first raises on "one", so the pass hands the rest of that
    # event (the error report, the second callback) to a task, cancelled before its first
    # step. The next event must wait for that rest: no pass may deliver it first.
    log: list[str] = []

    def first(result: STTResultMessage) -> None:
        log.append(f"first {result.transcript}")
        if result.transcript == "one":
            raise RuntimeError("boom")

    async with make_client(server, stream_id="hand-over-cancelled") as client:
        client.register_on_stt_result(first)
        client.register_on_stt_result(lambda result: log.append(f"second {result.transcript}"))
        client.on("callback_error", lambda error: log.append(f"error {error.event_type}"))
        await client.connect()
        hub = event_hub(client)
        hub.publish(_result("one"))  # schedules the pass, before this task resumes...
        await asyncio.sleep(0)  # ...so one turn of the loop runs it, and starts the task
        assert log == ["first one"]
        await asyncio.wait(_cancel_callbacks_tasks())
        hub.publish(_result("two"))
        expected = ["first one", "error stt_result", "second one", "first two", "second two"]
        await eventually(lambda: log == expected, what="both results, in order")
        await client.disconnect(drain=0)


async def test_a_task_cancelled_while_it_waits_for_the_last_session_keeps_waiting(
    server: LocalServer,
) -> None:
    # Session 1 ends under an async callback still running; session 2's callbacks must
    # wait for it. Session 2's task is cancelled while it waits: the next one must wait
    # too, so the two sessions' callbacks never overlap.
    log: list[str] = []
    release = asyncio.Event()
    session = [1]

    async def on_result(result: STTResultMessage) -> None:
        number = session[0]
        log.append(f"start {number}")
        if number == 1:
            await release.wait()
        log.append(f"end {number}")

    async with make_client(server, stream_id="after-cancelled") as client:
        client.register_on_stt_result(on_result)
        client.register_on_error(lambda error: None)  # the lost connection is expected
        server.faults = Faults(drop_connection_after_frames=2)  # ready, then one result
        await client.connect()
        await _push(server.url, "after-cancelled", 1)
        await eventually(lambda: not client.connected and log == ["start 1"], what="lost")
        server.faults = Faults()
        session[0] = 2
        events = client.events()
        await client.connect()
        hub = event_hub(client)
        await _push(server.url, "after-cancelled", 1)
        await eventually(lambda: hub._dispatcher._task is not None, what="session 2's task")
        hub._dispatcher._task.cancel()  # while it waits for session 1's
        await _push(server.url, "after-cancelled", 1)
        seen = 0
        async for event in events:  # the reader has put both results for the callbacks
            seen += event.type == "stt_result"
            if seen == 2:
                break
        assert log == ["start 1"]  # session 1's callback still runs: nothing of session 2
        release.set()
        # Both of session 2's results, the one its cancelled task left too, after session 1.
        expected = ["start 1", "end 1"] + ["start 2", "end 2"] * 2
        await eventually(lambda: log == expected, what="session 1's callback, then 2's")
        await client.disconnect(drain=0)


async def test_a_session_ended_under_a_task_cancelled_before_it_ran_releases_its_waits(
    server: LocalServer,
) -> None:
    # The session ends (as when the server closes it) with an event queued and a wait
    # for the callbacks pending, and in the same turn of the loop a shutdown cancels the
    # callbacks' task before it ran: the wait must end (what was queued is dropped with
    # the session, as when disconnect()'s drain runs out), not hang for ever.
    async def on_result(result: STTResultMessage) -> None:
        return None

    async with make_client(server, stream_id="ended-cancelled") as client:
        client.register_on_stt_result(on_result)
        await client.connect()
        hub = event_hub(client)
        hub.publish(_result("left"))  # starts the callbacks' task
        barrier = hub._dispatcher.barrier()
        assert barrier is not None
        hub.end_session()
        await asyncio.wait(_cancel_callbacks_tasks())
        await asyncio.wait_for(barrier, 10)
        await client.disconnect(drain=0)


def _cancel_callbacks_tasks() -> list[asyncio.Task[Any]]:
    """Cancel every callbacks' task (as a shutdown cancelling every task would): those
    cancelled, exactly one."""
    mine = asyncio.current_task()
    cancelled = [
        task
        for task in asyncio.all_tasks()
        if task is not mine and task.get_name() == "sayna-callbacks" and task.cancel()
    ]
    assert len(cancelled) == 1
    return cancelled


def _result(transcript: str) -> STTResultMessage:
    return STTResultMessage(
        transcript=transcript, is_final=True, is_speech_final=False, confidence=1.0
    )


async def test_events_left_for_late_callbacks_at_disconnect_are_reported(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    # A callback still busy when disconnect()'s timeouts.close runs out is cancelled;
    # the events queued behind it are dropped, and the log says how many.
    blocked = asyncio.Event()
    seen: list[str] = []

    async def stuck(result: STTResultMessage) -> None:
        seen.append(result.transcript)
        await blocked.wait()

    timeouts = Timeouts(connect=5, ready=10, request=10, close=0.2)
    try:
        async with make_client(server, stream_id="late", timeouts=timeouts) as client:
            client.register_on_stt_result(stuck)
            await client.connect()
            async with aiohttp.ClientSession() as http:
                body = {"kind": "turn", "count": 50}
                url = f"{server.url}/_local/bench/late/burst"
                async with http.post(url, json=body) as response:
                    assert response.status == 202
            await eventually(lambda: client.metrics.turns == 50, what="every result read")
            await client.disconnect()
    finally:
        blocked.set()
    assert len(seen) == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(m.startswith("49 events still queued for callbacks") for m in warnings), warnings
