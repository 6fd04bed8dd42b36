"""Waits and closes called from inside the session's own callbacks; where a turn's
record sits for each consumer; iterators dropped unused.

A callback runs on the session's callbacks task; a wait for "every callback queued so
far" called from it cannot wait for that task (the task waits for the callback), nor can
the close of the session it runs in. These are the agent's everyday calls: a reply with
``speak(wait=True, timeout=...)`` from the turn handler, a ``disconnect()`` after a
goodbye, a new ``connect()`` from ``on_close``. Before Python 3.12, ``asyncio.wait_for``
(behind every ``timeout=``) runs what it bounds in a task of its own, so "the caller is
the callbacks task" is told by the task's context, which such a task inherits.
"""

from __future__ import annotations

import asyncio
from typing import Any

from helpers.internals import event_hub, server_state
from helpers.waiting import eventually
from sayna_client import STTResultMessage, Timeouts
from sayna_client.server import LocalServer

from .conftest import make_client
from .test_delivery_mixed import _burst


async def _turn(server: LocalServer, stream_id: str) -> None:
    """Have the server push one final result that is also the speech-final."""
    await _burst(server, stream_id, "turn", 1)


async def test_speak_wait_and_drain_with_a_timeout_return_inside_a_callback(
    server: LocalServer,
) -> None:
    outcome: list[Any] = []

    async def on_result(result: STTResultMessage) -> None:
        try:
            handle = await client.speak("okay", wait=True, timeout=5)
            outcome.append(handle.done)
            await client.drain(timeout=5)
            outcome.append("drained")
        except Exception as exc:  # reported below, with its type
            outcome.append(exc)

    async with make_client(server, stream_id="wait-in-callback") as client:
        client.register_on_stt_result(on_result)
        await client.connect()
        await _turn(server, "wait-in-callback")
        await eventually(lambda: len(outcome) == 2, timeout=20, what="the callback's waits ended")
    assert outcome == [True, "drained"]


async def test_disconnect_inside_an_async_callback_returns_and_the_close_is_delivered(
    server: LocalServer,
) -> None:
    seen: list[str] = []

    async def on_result(result: STTResultMessage) -> None:
        try:
            await client.disconnect()
        except BaseException as exc:  # (a CancelledError included)
            seen.append(f"disconnect raised {type(exc).__name__}")
            raise
        seen.append("disconnect returned")

    async with make_client(server, stream_id="close-in-callback") as client:
        client.register_on_stt_result(on_result)
        client.register_on_close(lambda event: seen.append(f"on_close {event.code}"))
        await client.connect()
        await _turn(server, "close-in-callback")
        await eventually(lambda: len(seen) == 2, timeout=20, what="the close delivered")
        assert not client.connected
    assert seen == ["disconnect returned", "on_close 1000"]


async def test_a_new_session_from_on_close_may_speak_and_wait(server: LocalServer) -> None:
    # The new session's callbacks task waits for the old one, which runs this on_close:
    # speak(wait=True) here must not wait for the new task either.
    outcome: list[Any] = []

    async def on_close(event: Any) -> None:
        if outcome:
            return  # (the final disconnect)
        outcome.append(event.code)
        try:
            await client.connect()
            handle = await client.speak("back again", wait=True, timeout=5)
            outcome.append(handle.done)
        except Exception as exc:
            outcome.append(exc)

    async with make_client(server) as client:
        client.register_on_close(on_close)
        client.register_on_tts_audio(lambda chunk: None)
        await client.connect()
        (session,) = server_state(server).sessions
        await session.ws.close(code=1011, message=b"restart")
        await eventually(lambda: len(outcome) == 2, timeout=20, what="the reply after the close")
        assert client.ready
    assert outcome == [1011, True]


async def test_a_turns_record_comes_after_the_replys_first_frame_for_every_consumer(
    server: LocalServer,
) -> None:
    # The turn metrics publish a turn's record as the reply's first TTS frame arrives:
    # the callbacks and an events() iterator see it at the same place, after that frame.
    kinds = ("turn", "tts_audio", "turn_metrics")
    called: list[str] = []
    async with make_client(server, stream_id="record-order") as client:
        for kind in kinds:
            client.on(kind, lambda event, kind=kind: called.append(kind))
        events = client.events()
        turns = client.turns()
        await client.connect()
        await _turn(server, "record-order")
        async for _turn_ended in turns:
            await client.speak("the reply", wait=True, timeout=10)
            break
        await client.disconnect()
        pulled = [event.type async for event in events if event.type in kinds]
    assert "turn_metrics" in called
    assert pulled == called
    record = called.index("turn_metrics")
    assert called[record - 1] == "tts_audio"


async def test_an_iterator_dropped_before_its_first_step_lets_go_of_its_queue(
    server: LocalServer,
) -> None:
    # events() subscribes at once; one never iterated must not keep filling a queue
    # until the session ends.
    async with make_client(server, stream_id="dropped-iterator") as client:
        hub = event_hub(client)
        kept = client.events()
        for _ in range(3):
            client.events()  # dropped at once
        dropped_turns = client.turns()
        del dropped_turns
        assert len(hub._iterators) == 1
        await client.connect()
        await _turn(server, "dropped-iterator")
        first = await kept.__anext__()
        assert first.type == "ready"
        await kept.aclose()
        assert hub._iterators == ()


async def test_a_task_a_callback_started_waits_for_the_callbacks_when_it_disconnects(
    server: LocalServer,
) -> None:
    # An agent loop started from on_ready runs on its own: its disconnect() lets the
    # callbacks handle what is queued (the reply's audio, then the close) first.
    heard: list[str] = []
    done: asyncio.Future[tuple[int, bool]] = asyncio.get_running_loop().create_future()

    async def on_audio(chunk: bytes) -> None:
        # Busy until the socket is closed: the close must wait for the callbacks.
        await eventually(lambda: not client.connected, what="the socket closed")
        heard.append("audio")

    async def agent() -> None:
        await client.speak("Hello there, this is a longer sentence to synthesize.")
        await eventually(lambda: client.metrics.tts_audio_frames > 0, what="audio arriving")
        await client.disconnect()
        done.set_result((heard.count("audio"), "close" in heard))

    async with make_client(server) as client:
        client.register_on_tts_audio(on_audio)
        client.register_on_close(lambda event: heard.append("close"))
        started: list[asyncio.Task[None]] = []
        client.register_on_ready(lambda event: started.append(asyncio.ensure_future(agent())))
        await client.connect()
        frames, closed = await asyncio.wait_for(done, 20)
    assert closed
    assert frames == client.metrics.tts_audio_frames > 0


async def test_a_task_a_plain_callback_returned_may_wait_and_disconnect(
    server: LocalServer,
) -> None:
    # ``lambda event: asyncio.create_task(agent())`` returns the task, which the
    # dispatcher awaits (what a plain callback returns is awaited): the agent's waits and
    # close are a callback's, so they return rather than wait for the callbacks, which
    # wait for the agent (before: until timeouts.close, then the agent was cancelled).
    outcome: list[Any] = []
    heard: list[str] = []
    agent_ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    async def agent() -> None:
        try:
            handle = await client.speak("A reply to wait for.", wait=True, timeout=30)
            outcome.append(handle.done)
            await client.drain(timeout=30)
            await client.disconnect()
            outcome.append("disconnected")
        except BaseException as exc:  # (a CancelledError included)
            outcome.append(type(exc).__name__)
            raise
        finally:
            if not agent_ended.done():
                agent_ended.set_result(None)

    async with make_client(server, timeouts=Timeouts(connect=5, ready=10, close=30)) as client:
        client.register_on_tts_audio(lambda chunk: heard.append("audio"))
        client.register_on_close(lambda event: heard.append("close"))
        client.register_on_ready(lambda event: asyncio.get_running_loop().create_task(agent()))
        await client.connect()
        await asyncio.wait_for(agent_ended, 20)  # (before: 30 s, then cancelled)
        assert outcome == [True, "disconnected"]
        await eventually(lambda: "close" in heard, what="on_close after the agent ended")
    assert heard.count("audio") == client.metrics.tts_audio_frames > 0
    assert heard[-1] == "close"


async def test_one_task_returned_by_two_sessions_callbacks_may_wait_on_and_close_both(
    server: LocalServer,
) -> None:
    # An agent bridging two sessions, returned by both sessions' on_ready: both sessions'
    # callbacks await it, so its waits and closes are a callback's on either session
    # (the second session's used to wait for its own callbacks, which await the agent).
    from sayna_client.realtime import dispatcher

    closed: list[str] = []
    outcome: list[Any] = []
    both_ready = asyncio.Event()

    async def agent() -> None:
        await both_ready.wait()
        for client in (first, second):
            await client.drain(timeout=30)
            await client.disconnect()
            outcome.append("closed")

    patient = Timeouts(connect=5, ready=10, close=30)
    async with (
        make_client(server, timeouts=patient) as first,
        make_client(server, timeouts=patient) as second,
    ):
        shared = asyncio.ensure_future(agent())
        for name, client in (("first", first), ("second", second)):
            client.register_on_ready(lambda event: shared)
            client.register_on_close(lambda event, name=name: closed.append(name))
            await client.connect()
        await eventually(lambda: len(dispatcher._AWAITED.get(shared, ())) == 2)
        both_ready.set()
        await asyncio.wait_for(shared, 20)  # (before: the second drain, 30 s)
        assert outcome == ["closed", "closed"]
        await eventually(lambda: sorted(closed) == ["first", "second"])
    assert shared not in dispatcher._AWAITED  # let go of once awaited
