"""Delivery with plain audio callbacks next to an ``async`` callback of another type.

The usual session (the README's, the load test's): an ``async`` result callback and a
plain audio callback. While the dispatcher's task waits for events, TTS frames are
delivered by passes (loop callbacks) and the task sleeps on; these tests pin that the
callbacks still see one order across event types, that frames wait behind an ``async``
callback under way, and that what a pass cannot finish (an error report, an awaitable a
plain callback returned, the end of the session) is handed to the waiting task in order.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from helpers.waiting import eventually
from sayna_client import CallbackError, EventsDropped, SaynaClient, STTResultMessage
from sayna_client.server import LocalServer

from .conftest import make_client


async def _burst(
    server: LocalServer, stream_id: str, kind: str, count: int, interval_ms: float = 0
) -> None:
    """Make the server push ``count`` frames of ``kind`` ("audio" or "stt") to a session."""
    body = {"kind": kind, "count": count, "size": 64, "interval_ms": interval_ms}
    url = f"{server.url}/_local/bench/{stream_id}/burst"
    async with aiohttp.ClientSession() as http, http.post(url, json=body) as response:
        assert response.status == 202


async def test_plain_audio_and_async_results_reach_the_callbacks_in_server_order(
    server: LocalServer,
) -> None:
    # Results and frames interleaved on the wire (two paced bursts at once): the async
    # result callback suspends on some results (frames arriving meanwhile queue behind
    # it), returns at once on others (the task then waits, and frames go by passes).
    # The callbacks' order across both types is the server's, as the iterator sees it.
    calls: list[str] = []

    async def on_result(result: STTResultMessage) -> None:
        if len(calls) % 3 == 0:
            await asyncio.sleep(0)
        calls.append("stt")

    async with make_client(server, stream_id="mixed-order") as client:
        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(lambda chunk: calls.append("audio"))
        events = client.events()
        await client.connect()
        await asyncio.gather(
            _burst(server, "mixed-order", "stt", 150, interval_ms=1),
            _burst(server, "mixed-order", "audio", 300, interval_ms=0.5),
        )
        seen: list[str] = []
        async for event in events:
            if event.type in ("stt_result", "tts_audio"):
                seen.append("stt" if event.type == "stt_result" else "audio")
            if len(seen) == 450:
                break
        await eventually(lambda: len(calls) == 450, what="every callback called")
        await client.disconnect(drain=0)  # the bursts' audio was never spoken: no drain
    assert seen.count("stt") == 150
    assert calls == seen


async def test_frames_wait_behind_an_async_callback_under_way(server: LocalServer) -> None:
    # The result callback is suspended when the frames arrive: no pass may deliver them
    # meanwhile (the task is busy, not waiting); they come after it returns, in order.
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[str] = []

    async def on_result(result: STTResultMessage) -> None:
        started.set()
        await release.wait()
        calls.append("stt")

    async with make_client(server, stream_id="mixed-wait") as client:
        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(lambda chunk: calls.append("audio"))
        await client.connect()
        await _burst(server, "mixed-wait", "stt", 1)
        await asyncio.wait_for(started.wait(), 10)
        await _burst(server, "mixed-wait", "audio", 20)
        await eventually(lambda: client.metrics.tts_audio_frames == 20, what="frames read")
        assert calls == []
        release.set()
        await eventually(lambda: len(calls) == 21, what="every callback called")
        await client.disconnect(drain=0)  # the burst's audio was never spoken: no drain
    assert calls == ["stt"] + ["audio"] * 20


async def test_a_plain_audio_callback_that_raises_is_reported_before_the_next_callback(
    connected: SaynaClient,
) -> None:
    # The task waits (an async result callback is registered) while a pass delivers
    # frames; the error report goes to the task, which makes it before the next callback
    # of the same frame, and delivery goes on in order.
    order: list[tuple[str, int]] = []
    frame = [0]

    async def on_result(result: STTResultMessage) -> None:
        order.append(("result", frame[0]))

    def breaks_on_three(chunk: bytes) -> None:
        frame[0] += 1
        order.append(("audio", frame[0]))
        if frame[0] == 3:
            raise RuntimeError("boom")

    def on_error(report: Any) -> None:
        assert isinstance(report, CallbackError)
        order.append(("error", frame[0]))

    connected.register_on_stt_result(on_result)
    connected.register_on_tts_audio(breaks_on_three)
    connected.register_on_tts_audio(lambda chunk: order.append(("after", frame[0])))
    connected.register_on_error(on_error)
    await connected.speak("one two three four five", wait=True)
    count = connected.metrics.tts_audio_frames
    assert count >= 4
    expected: list[tuple[str, int]] = []
    for n in range(1, count + 1):
        expected += [("audio", n)] + ([("error", n)] if n == 3 else []) + [("after", n)]
    assert order == expected


async def test_a_plain_audio_callback_returning_an_awaitable_is_awaited_in_order(
    connected: SaynaClient,
) -> None:
    # A plain audio callback that returns a coroutine from the third frame on, while an
    # async result callback keeps the task alive: the pass under way hands the rest of
    # that frame to the task, and from then on the task delivers the frames, each after
    # the awaitable of the one before.
    order: list[tuple[str, int]] = []
    frame = [0]

    async def on_result(result: STTResultMessage) -> None:
        order.append(("result", frame[0]))

    async def later(n: int) -> None:
        await asyncio.sleep(0)  # really suspends: the next callback and frame must wait
        order.append(("hybrid", n))

    def first(chunk: bytes) -> None:
        frame[0] += 1
        order.append(("first", frame[0]))

    def hybrid(chunk: bytes) -> Any:
        if frame[0] < 3:
            order.append(("hybrid", frame[0]))
            return None
        return later(frame[0])

    connected.register_on_stt_result(on_result)
    connected.register_on_tts_audio(first)
    connected.register_on_tts_audio(hybrid)
    connected.register_on_tts_audio(lambda chunk: order.append(("last", frame[0])))
    connected.register_on_tts_playback_complete(lambda _: order.append(("done", frame[0])))
    await connected.speak("one two three four five six seven", wait=True)
    count = connected.metrics.tts_audio_frames
    assert count >= 5
    expected: list[tuple[str, int]] = []
    for n in range(1, count + 1):
        expected += [("first", n), ("hybrid", n), ("last", n)]
    assert order == [*expected, ("done", count)]


async def test_disconnect_during_a_burst_delivers_every_frame_read(server: LocalServer) -> None:
    # The session ends while passes are scheduled and the task waits: the task takes
    # what is queued, in order; every frame the reader got reaches the callbacks once.
    frames: list[int] = []

    async def on_result(result: STTResultMessage) -> None:
        return None

    client = make_client(server, stream_id="mixed-end")
    client.register_on_stt_result(on_result)
    client.register_on_tts_audio(lambda chunk: frames.append(len(chunk)))
    await client.connect()
    await _burst(server, "mixed-end", "stt", 1)
    await _burst(server, "mixed-end", "audio", 3000)
    await eventually(lambda: client.metrics.tts_audio_frames >= 500, what="frames arriving")
    await client.disconnect(drain=0)
    read = client.metrics.tts_audio_frames
    assert read >= 500
    assert frames == [64] * read


async def test_consumers_that_keep_up_lose_nothing_under_a_small_count_bound(
    server: LocalServer,
) -> None:
    # A queue of 4 events and a burst of 300 frames: the reader hands on at most half a
    # queue between two turns of the loop, in which a consumer that keeps up (a plain
    # callback, an iterator doing nothing else) takes them: nothing is dropped.
    heard: list[int] = []
    reports: list[Any] = []
    async with make_client(server, stream_id="small-bound", max_queue=4) as client:
        client.register_on_tts_audio(lambda chunk: heard.append(len(chunk)))
        client.register_on_error(reports.append)
        events = client.events()
        pulled: list[str] = []

        async def pull() -> None:  # (waiting for events from the start, as keeping up is)
            async for event in events:
                pulled.append(event.type)
                if pulled.count("tts_audio") == 300:
                    return

        puller = asyncio.ensure_future(pull())
        await client.connect()
        await _burst(server, "small-bound", "audio", 300)
        await asyncio.wait_for(puller, 30)
        assert set(pulled) == {"ready", "tts_audio"}
        await eventually(lambda: len(heard) == 300, what="every frame to the callback")
        await client.disconnect(drain=0)  # (the burst's audio was never spoken)
    assert reports == []


async def test_overflow_while_the_task_waits_is_reported_before_what_was_kept(
    server: LocalServer,
) -> None:
    # A queue of 4 frames' bytes, an async result callback (the task waits) and a plain
    # audio one: a burst of 300 frames comes a whole read (up to 128) to a loop turn,
    # each turn's frames delivered by one pass. The queue's bounds hold for them as for
    # plain callbacks: the oldest are dropped, every drop is reported once, before the
    # frames kept after it, and the newest frame is always kept.
    seen: list[Any] = []
    bound = {"max_queue_bytes": 4 * 64}

    async def on_result(result: STTResultMessage) -> None:
        seen.append(result)

    async with make_client(server, stream_id="mixed-overflow", **bound) as client:
        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(lambda chunk: seen.append(len(chunk)))
        client.register_on_error(seen.append)
        await client.connect()
        await _burst(server, "mixed-overflow", "stt", 1)  # the task starts, then waits
        await eventually(lambda: len(seen) == 1, what="the result handled")
        await _burst(server, "mixed-overflow", "audio", 300)
        await eventually(lambda: client.metrics.tts_audio_frames == 300, what="frames read")

        def accounted() -> int:
            return sum(1 if isinstance(x, int) else x.count for x in seen[1:])

        await eventually(lambda: accounted() == 300, what="every frame seen or reported")
        await client.disconnect(drain=0)  # the burst's audio was never spoken: no drain
    assert isinstance(seen[0], STTResultMessage)
    reports = [x for x in seen[1:] if not isinstance(x, int)]
    assert reports
    assert all(isinstance(r, EventsDropped) for r in reports)
    assert all(r.consumer == "callbacks" for r in reports)
    assert isinstance(seen[-1], int)  # the newest frame is always kept
    assert all(  # one report per overflow: never two in a row
        not (isinstance(a, EventsDropped) and isinstance(b, EventsDropped))
        for a, b in zip(seen, seen[1:])
    )


@pytest.mark.parametrize("trouble", ["raises", "awaitable"])
async def test_trouble_in_a_run_of_frames_hands_the_rest_over_in_order(
    server: LocalServer, trouble: str
) -> None:
    # 200 frames pushed at once come many to a read: the first of a read waits for its
    # pass in the slot, the others in the pass's run. A plain audio callback raising (or
    # returning an awaitable) on the 100th (in a run, but for an unlikely split of the
    # reads) hands the rest of that frame, then the rest of the run, to the task: the
    # report (or the awaitable) comes before the next callback, and every frame reaches
    # both callbacks once, in order.
    order: list[tuple[str, int]] = []
    frame = [0]

    async def on_result(result: STTResultMessage) -> None:
        order.append(("result", frame[0]))

    async def later(n: int) -> None:
        await asyncio.sleep(0)  # really suspends: the next callback and frame must wait
        order.append(("awaited", n))

    def troubled(chunk: bytes) -> Any:
        frame[0] += 1
        order.append(("audio", frame[0]))
        if frame[0] != 100:
            return None
        if trouble == "raises":
            raise RuntimeError("boom")
        return later(100)

    def on_error(report: Any) -> None:
        assert isinstance(report, CallbackError)
        order.append(("error", frame[0]))

    async with make_client(server, stream_id=f"mixed-run-{trouble}") as client:
        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(troubled)
        client.register_on_tts_audio(lambda chunk: order.append(("after", frame[0])))
        client.register_on_error(on_error)
        await client.connect()
        await _burst(server, f"mixed-run-{trouble}", "stt", 1)  # the task starts, then waits
        await eventually(lambda: order == [("result", 0)], what="the result handled")
        await _burst(server, f"mixed-run-{trouble}", "audio", 200)
        await eventually(lambda: order.count(("after", 200)) == 1, what="every frame delivered")
        await client.disconnect(drain=0)  # the burst's audio was never spoken: no drain
    expected: list[tuple[str, int]] = [("result", 0)]
    for n in range(1, 201):
        middle = [("error" if trouble == "raises" else "awaited", n)] if n == 100 else []
        expected += [("audio", n), *middle, ("after", n)]
    assert order == expected


async def test_the_bench_turn_burst_ends_user_turns(server: LocalServer) -> None:
    # ``/_local/bench`` kind "turn" (benchmarks/opcodes.py's turn): each frame is a final
    # result that is also the speech-final, so each ends a user turn.
    results: list[STTResultMessage] = []
    async with make_client(server, stream_id="bench-turn") as client:
        client.register_on_stt_result(results.append)
        await client.connect()
        await _burst(server, "bench-turn", "turn", 3)
        await eventually(lambda: client.metrics.turns == 3, what="three turns ended")
        await client.disconnect(drain=0)
    assert [(r.transcript, r.is_final, r.is_speech_final) for r in results] == [
        ("okay", True, True)
    ] * 3
    async with aiohttp.ClientSession() as http:
        url = f"{server.url}/_local/bench/nobody/burst"
        for kind in ("speech", ["audio"], {"a": 1}, None):
            async with http.post(url, json={"kind": kind, "count": 1}) as response:
                assert response.status == 400, kind
                body = await response.json()
            assert body["error"] == '\'kind\' must be "audio", "stt" or "turn"'


async def test_turns_yields_only_turns_and_reports_its_drops_elsewhere(
    server: LocalServer,
) -> None:
    # turns() is an iterator of Turn ("print(turn.text)"): a consumer 40 turns behind a
    # queue of 4 loses the oldest, and the EventsDropped goes to the error callbacks, not
    # into the loop where it would have no .text.
    reports: list[Any] = []
    async with make_client(server, stream_id="turns-behind", max_queue=4) as client:
        client.register_on_error(reports.append)
        turns = client.turns()
        await client.connect()
        await _burst(server, "turns-behind", "turn", 40)
        await eventually(lambda: client.metrics.turns == 40, what="every turn read")
        first = await asyncio.wait_for(turns.__anext__(), 10)
        assert first.text == "okay"
        await eventually(lambda: reports, what="the drop reported to the error callbacks")
        (report,) = reports
        assert isinstance(report, EventsDropped)
        assert report.consumer.startswith("turns-")
        kept = [first]
        while len(kept) + report.count < 40:
            kept.append(await asyncio.wait_for(turns.__anext__(), 10))
        assert [turn.text for turn in kept] == ["okay"] * len(kept)
