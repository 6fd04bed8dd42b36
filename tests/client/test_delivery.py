"""Delivery you can rely on (issue 12): audio sent byte for byte, events in server order.

Against the local server: it records every frame it received, so the tests assert on
the wire, not on the client's own counters.
"""

from __future__ import annotations

import array
import asyncio
from typing import Any

import aiohttp
import numpy as np
import pytest

from sayna_client import (
    CallbackError,
    EventsDropped,
    LiveKitConfig,
    Reconnected,
    ReconnectPolicy,
    SaynaClient,
    SaynaSyncClient,
    SaynaValidationError,
    Timeouts,
    TTSAudio,
    TTSPlaybackCompleteMessage,
)
from sayna_client.realtime import wire
from sayna_client.server import Faults, LocalServer

from .conftest import make_client, stt, tts


@pytest.fixture(params=["frame_writer", "send_bytes"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both binary send paths: the SDK's frame writer and aiohttp's ``send_bytes``."""
    if request.param == "send_bytes":
        monkeypatch.setattr(wire, "FAST_PATH", False)  # the documented internal switch
    return str(request.param)


def _odd_frames() -> list[Any]:
    """Frames that are no whole number of 16-bit samples, and buffers of wider items."""
    samples = array.array("h", range(-300, 300))
    return [
        b"\x01",
        bytes(range(256)) * 12 + bytes(range(127)),  # 3199 bytes
        bytearray(b"\x02\x03\x04" * 213 + b"\x05\x06"),  # 641 bytes
        memoryview(samples),  # 600 items, 1200 bytes
        np.arange(-160, 160, dtype=np.int16),  # 640 bytes
        np.arange(12, dtype=np.int16).reshape(3, 4),  # C-contiguous, 2-D: 24 bytes
        memoryview(np.arange(5, dtype=np.int32)),  # any integer format: 20 bytes
    ]


async def test_any_bytes_like_frame_goes_out_byte_for_byte(server: LocalServer, path: str) -> None:
    frames = _odd_frames()
    expected = [bytes(memoryview(frame).cast("B")) for frame in frames]
    assert [len(e) for e in expected] == [1, 3199, 641, 1200, 640, 24, 20]
    async with make_client(server) as client:  # linear16: 2 bytes a sample
        await client.connect()
        for frame in frames:
            await client.on_audio_input(frame)
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_frames == len(frames))
        assert record.audio_bytes == sum(map(len, expected))
        assert bytes(record.audio) == b"".join(expected)
        assert client.metrics.audio_frames_sent == len(frames)
        assert client.metrics.audio_bytes_sent == sum(map(len, expected))
    # The caller's buffers are untouched.
    assert [bytes(memoryview(frame).cast("B")) for frame in frames] == expected


async def test_the_sync_client_sends_the_same_bytes(server: LocalServer) -> None:
    frames = _odd_frames()
    expected = b"".join(bytes(memoryview(frame).cast("B")) for frame in frames)

    def scenario() -> None:
        with SaynaSyncClient(
            server.url, stt(), tts(), timeouts=Timeouts(connect=5, ready=10, close=2)
        ) as client:
            client.connect()
            for frame in frames:
                client.on_audio_input(frame)
            with pytest.raises(SaynaValidationError, match="tobytes"):
                client.on_audio_input(np.arange(10, dtype=np.int16)[::2])

    await asyncio.to_thread(scenario)
    record = server.records.last_session
    assert record.audio_frames == len(frames)
    assert bytes(record.audio) == expected


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64", ">f4"])
async def test_floating_point_samples_are_refused_naming_the_conversion(
    server: LocalServer, dtype: str
) -> None:
    """What soundfile, sounddevice and librosa return by default: sent as bytes, the
    server would hear noise or nothing, with no error. No Sayna encoding is float."""
    async with make_client(server) as client:
        await client.connect()
        audio = np.zeros(320, dtype=dtype)
        with pytest.raises(SaynaValidationError, match=r"samples.*astype\('<i2'\)"):
            await client.on_audio_input(audio)
        with pytest.raises(SaynaValidationError, match="float"):
            await client.on_audio_input(memoryview(audio))
        await client.on_audio_input(audio.astype("<i2"))  # converted, it goes out
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_frames == 1)
        assert record.audio_bytes == 640


async def test_clear_errors_for_what_is_not_a_frame(server: LocalServer) -> None:
    class Frame:  # not a buffer, but has tobytes()
        def tobytes(self) -> bytes:
            return b"\x00\x00"

    async with make_client(server) as client:
        await client.connect()
        strided = np.arange(10, dtype=np.int16)[::2]
        with pytest.raises(SaynaValidationError, match=r"not contiguous.*tobytes\(\)"):
            await client.on_audio_input(strided)
        with pytest.raises(SaynaValidationError, match=r"got Frame; pass audio_data.tobytes\(\)"):
            await client.on_audio_input(Frame())  # type: ignore[arg-type]
        with pytest.raises(SaynaValidationError, match="empty"):
            await client.on_audio_input(np.zeros(0, dtype=np.int16))
        with pytest.raises(SaynaValidationError, match="empty"):
            await client.on_audio_input(bytearray())
        await client.on_audio_input(strided.tobytes())  # the fix the message names
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_frames == 1)
        assert bytes(record.audio) == strided.tobytes()


async def test_audio_held_for_a_reconnect_keeps_its_exact_bytes(server: LocalServer) -> None:
    server.faults = Faults(drop_connection_after_frames=3)
    policy = ReconnectPolicy(initial_backoff=0.2, max_backoff=0.5)
    async with make_client(
        server, livekit_config=LiveKitConfig(room_name="hold"), reconnect=policy
    ) as client:
        events = client.events()
        await client.connect()
        server.faults = Faults()
        first = server.records.last_session
        await server.inject_participant("hold", "caller")  # two more frames trip the fault
        await server.records.wait_for(lambda: client.reconnecting)
        frames = _odd_frames()
        expected = [bytes(memoryview(frame).cast("B")) for frame in frames]
        for frame in frames:
            await client.on_audio_input(frame)
        reconnected = None
        async for event in events:
            if isinstance(event, Reconnected):
                reconnected = event
                break
        assert reconnected is not None
        assert reconnected.replayed_frames == len(frames)
        assert reconnected.replayed_bytes == sum(map(len, expected))
        second = server.records.last_session
        assert second is not first
        await server.records.wait_for(lambda: second.audio_frames == len(frames))
        assert bytes(second.audio) == b"".join(expected)


# --- events in server order ---------------------------------------------------------


async def _post_burst(server: LocalServer, stream_id: str, count: int, size: int) -> None:
    async with aiohttp.ClientSession() as http:
        body = {"kind": "audio", "count": count, "size": size}
        async with http.post(f"{server.url}/_local/bench/{stream_id}/burst", json=body) as r:
            assert r.status == 202


@pytest.mark.parametrize(
    ("audio_kind", "done_kind"),
    [("async", "sync"), ("sync", "async"), ("async", "async"), ("sync", "sync")],
)
async def test_callbacks_see_audio_then_completion_then_the_next_sentence(
    server: LocalServer, audio_kind: str, done_kind: str
) -> None:
    calls: list[str] = []
    done_count = [0]

    def on_audio_sync(chunk: bytes) -> None:
        calls.append("audio")

    async def on_audio_async(chunk: bytes) -> None:
        await asyncio.sleep(0.001)  # lag behind the socket: the queue holds the rest
        calls.append("audio")

    def on_done_sync(_: TTSPlaybackCompleteMessage) -> None:
        calls.append("done")
        done_count[0] += 1

    async def on_done_async(_: TTSPlaybackCompleteMessage) -> None:
        await asyncio.sleep(0)
        calls.append("done")
        done_count[0] += 1

    async with make_client(server) as client:
        client.register_on_tts_audio(on_audio_async if audio_kind == "async" else on_audio_sync)
        client.register_on_tts_playback_complete(
            on_done_async if done_kind == "async" else on_done_sync
        )
        events = client.events()
        await client.connect()
        record = server.records.last_session
        await client.speak("one two three four")
        # The second sentence is sent once the server has sent the first one's
        # completion (back-to-back speaks would share one), not when callbacks ran.
        await server.records.wait_for(lambda: record.sent_of_type("tts_playback_complete"))
        first = record.sent_audio_frames
        await client.speak("five six seven")
        await server.records.wait_for(
            lambda: len(record.sent_of_type("tts_playback_complete")) == 2
        )
        second = record.sent_audio_frames - first
        assert first > 2
        assert second > 2
        seen: list[str] = []
        async for event in events:
            if event.type in ("tts_audio", "tts_playback_complete"):
                seen.append("audio" if isinstance(event, TTSAudio) else event.type)
            if seen.count("tts_playback_complete") == 2:
                break
        expected = ["audio"] * first + ["done"] + ["audio"] * second + ["done"]
        assert seen == [e.replace("done", "tts_playback_complete") for e in expected]
        await server.records.wait_for(lambda: done_count[0] == 2, timeout=20)
        assert calls == expected


async def test_a_slow_callback_delays_later_callbacks_not_the_socket(server: LocalServer) -> None:
    # The first audio callback blocks until the test releases it. Meanwhile the events()
    # iterator gets the whole sentence, and the keepalive (the server answers no Ping)
    # declares the peer dead: neither waits for the callback. The callbacks after it
    # run once it returns, in server order.
    server.faults = Faults(ignore_pings=True)
    started = asyncio.Event()
    release = asyncio.Event()
    calls: list[str] = []

    async def slow_audio(chunk: bytes) -> None:
        if not started.is_set():
            started.set()
            await asyncio.wait_for(release.wait(), 30)
        calls.append("audio")

    async with make_client(server, heartbeat=0.6) as client:
        client.register_on_tts_audio(slow_audio)
        client.register_on_tts_playback_complete(lambda _: calls.append("done"))
        client.register_on_close(lambda closed: calls.append(f"closed {closed.code}"))
        events = client.events()
        await client.connect()
        await client.speak("a slow consumer")
        seen = [event.type async for event in events]  # ends after the close
        assert started.is_set()
        assert not release.is_set()
        assert calls == []  # every later callback waits behind the slow one
        sent = server.records.last_session.sent_audio_frames
        assert seen[-2:] == ["tts_playback_complete", "closed"]
        assert seen.count("tts_audio") == sent
        assert not client.connected  # the keepalive found the peer dead meanwhile
        release.set()
        await server.records.wait_for(lambda: len(calls) == sent + 2, timeout=20)
        assert calls == ["audio"] * sent + ["done", "closed 1006"]


async def test_callbacks_mixed_sync_and_async_share_one_order(connected: SaynaClient) -> None:
    # Several callbacks per event, across event types: each event goes to its callbacks
    # in registration order, and the next event only after the last of them.
    order: list[tuple[str, int]] = []
    frames = [0]

    async def first(chunk: bytes) -> None:
        frames[0] += 1
        await asyncio.sleep(0)
        order.append(("first", frames[0]))

    def second(chunk: bytes) -> None:
        order.append(("second", frames[0]))

    async def as_event(event: TTSAudio) -> None:
        order.append(("event", frames[0]))

    connected.register_on_tts_audio(first)
    connected.register_on_tts_audio(second)
    connected.on("tts_audio", as_event)
    connected.register_on_tts_playback_complete(lambda _: order.append(("done", frames[0])))
    await connected.speak("one two", wait=True)
    count = connected.metrics.tts_audio_frames
    expected = [(name, n) for n in range(1, count + 1) for name in ("first", "second", "event")]
    assert order == [*expected, ("done", count)]  # wait=True: callbacks caught up


async def test_an_async_callback_registered_mid_stream_keeps_the_order(
    connected: SaynaClient,
) -> None:
    # Plain callbacks only (delivered without a task), then an async one registered from
    # a callback (the task takes over, awaiting it), then removed again (plain only
    # once more): every frame reaches its callbacks in registration order, frame after
    # frame, and the completion comes last. A callback registered during a frame's
    # dispatch gets the frames after it; one removed is called no more, not even for
    # the frame whose callback removed it (removal takes effect at once).
    order: list[tuple[str, int]] = []
    frame = [0]
    remove_late: list[Any] = []

    async def late(chunk: bytes) -> None:
        await asyncio.sleep(0)  # really suspends: later callbacks and frames must wait
        order.append(("late", frame[0]))

    def tail(chunk: bytes) -> None:
        order.append(("tail", frame[0]))

    def first(chunk: bytes) -> None:
        frame[0] += 1
        order.append(("first", frame[0]))
        if frame[0] == 3:
            remove_late.append(connected.register_on_tts_audio(late))
            remove_late.append(connected.register_on_tts_audio(tail))
        elif frame[0] == 6:
            assert all(remove() for remove in remove_late)

    connected.register_on_tts_audio(first)
    connected.register_on_tts_audio(lambda chunk: order.append(("second", frame[0])))
    connected.register_on_tts_playback_complete(lambda _: order.append(("done", frame[0])))
    await connected.speak("one two three four five six seven eight nine ten", wait=True)
    count = connected.metrics.tts_audio_frames
    assert count >= 8
    expected: list[tuple[str, int]] = []
    for n in range(1, count + 1):
        expected += [("first", n), ("second", n)]
        expected += [("late", n), ("tail", n)] if 4 <= n <= 5 else []
    assert order == [*expected, ("done", count)]


@pytest.mark.parametrize("kind", ["plain", "async"])
@pytest.mark.parametrize("how", ["unsubscribe", "off"])
async def test_a_callback_removed_by_an_earlier_one_misses_that_same_event(
    connected: SaynaClient, kind: str, how: str
) -> None:
    # docs/sessions.md: off() and Unsubscribe take effect at once. The first callback of
    # an event removes the second: the second is not called for that event either
    # (plain callbacks run without a task, an async one on the dispatcher's task).
    calls: list[str] = []

    def second(_: Any) -> None:
        calls.append("second")

    def remove(_: Any) -> None:
        calls.append("first")
        if how == "off":
            assert connected.off(second) == 1
        else:
            assert unsubscribe() is True

    async def remove_async(event: Any) -> None:
        await asyncio.sleep(0)
        remove(event)

    connected.register_on_tts_playback_complete(remove if kind == "plain" else remove_async)
    unsubscribe = connected.register_on_tts_playback_complete(second)
    connected.register_on_tts_playback_complete(lambda _: calls.append("third"))
    await connected.speak("one", wait=True)  # wait=True: callbacks caught up
    assert calls == ["first", "third"]
    await connected.speak("two", wait=True)
    assert calls == ["first", "third", "first", "third"]


async def test_a_plain_callback_returning_an_awaitable_mid_stream_keeps_the_order(
    connected: SaynaClient,
) -> None:
    # A plain function that starts returning a coroutine on the third frame: that frame's
    # delivery is already under way without a task, so its rest (awaiting the coroutine,
    # then the callback after it) is handed to the task, in order; removed on the sixth
    # frame by the callback before it (at once: it misses that frame), delivery goes on
    # without a task again.
    order: list[tuple[str, int]] = []
    frame = [0]
    removers: list[Any] = []

    async def later(n: int) -> None:
        await asyncio.sleep(0)  # really suspends: the next callback and frame must wait
        order.append(("hybrid", n))

    def first(chunk: bytes) -> None:
        frame[0] += 1
        order.append(("first", frame[0]))
        if frame[0] == 6:
            assert removers[0]() is True

    def hybrid(chunk: bytes) -> Any:
        if frame[0] < 3:
            order.append(("hybrid", frame[0]))
            return None
        return later(frame[0])

    connected.register_on_tts_audio(first)
    removers.append(connected.register_on_tts_audio(hybrid))
    connected.register_on_tts_audio(lambda chunk: order.append(("last", frame[0])))
    connected.register_on_tts_playback_complete(lambda _: order.append(("done", frame[0])))
    await connected.speak("one two three four five six seven eight nine ten", wait=True)
    count = connected.metrics.tts_audio_frames
    assert count >= 8
    expected: list[tuple[str, int]] = []
    for n in range(1, count + 1):
        expected += [("first", n)] + ([("hybrid", n)] if n <= 5 else []) + [("last", n)]
    assert order == [*expected, ("done", count)]


async def test_a_plain_callback_that_raises_is_reported_before_the_next_callback(
    connected: SaynaClient,
) -> None:
    # Only plain callbacks: the error report (awaited on the task) comes at once, before
    # the next callback of the same frame; then delivery goes on in order.
    order: list[tuple[str, int]] = []
    frame = [0]

    def breaks_on_two(chunk: bytes) -> None:
        frame[0] += 1
        order.append(("audio", frame[0]))
        if frame[0] == 2:
            raise RuntimeError("boom")

    def on_error(report: Any) -> None:
        assert isinstance(report, CallbackError)
        assert "boom" in report.message
        order.append(("error", frame[0]))

    connected.register_on_tts_audio(breaks_on_two)
    connected.register_on_tts_audio(lambda chunk: order.append(("after", frame[0])))
    connected.register_on_error(on_error)
    await connected.speak("one two three four", wait=True)
    count = connected.metrics.tts_audio_frames
    assert count >= 3
    expected: list[tuple[str, int]] = []
    for n in range(1, count + 1):
        expected += [("audio", n)] + ([("error", n)] if n == 2 else []) + [("after", n)]
    assert order == expected


async def test_plain_callbacks_take_a_long_burst_in_turns_losing_nothing(
    server: LocalServer,
) -> None:
    # 2,000 frames back to back to plain callbacks (delivered in passes of at most 256
    # events each): every one of them, and nothing reported dropped.
    frames: list[int] = []
    reports: list[Any] = []
    async with make_client(server, stream_id="plain-burst") as client:
        client.register_on_tts_audio(lambda chunk: frames.append(len(chunk)))
        client.register_on_error(reports.append)
        await client.connect()
        await _post_burst(server, "plain-burst", 2000, 32)
        await server.records.wait_for(lambda: len(frames) == 2000, timeout=30)
    assert frames == [32] * 2000
    assert reports == []


async def test_plain_callbacks_overflow_is_reported_before_what_was_kept(
    server: LocalServer,
) -> None:
    # A queue of 4 frames' bytes for plain callbacks and a burst of 300 frames: the reader
    # queues a whole read (up to 128 frames) per loop turn, so the oldest are dropped;
    # every drop is reported (once per overflow, before the frames kept after it) and
    # nothing is lost unreported.
    seen: list[Any] = []
    bound = {"max_queue_bytes": 4 * 64}
    async with make_client(server, stream_id="plain-overflow", **bound) as client:
        client.register_on_tts_audio(lambda chunk: seen.append(len(chunk)))
        client.register_on_error(seen.append)
        await client.connect()
        await _post_burst(server, "plain-overflow", 300, 64)
        await server.records.wait_for(lambda: client.metrics.tts_audio_frames == 300, timeout=30)

        def accounted() -> int:
            return sum(1 if isinstance(x, int) else x.count for x in seen)

        await server.records.wait_for(lambda: accounted() == 300, timeout=20)
    reports = [x for x in seen if not isinstance(x, int)]
    assert reports
    assert all(isinstance(r, EventsDropped) for r in reports)
    assert all(r.consumer == "callbacks" for r in reports)
    assert not isinstance(seen[-1], EventsDropped)  # the newest frame is always kept
    assert all(  # one report per overflow: never two in a row
        not (isinstance(a, EventsDropped) and isinstance(b, EventsDropped))
        for a, b in zip(seen, seen[1:])
    )


# --- bounded in bytes as well as counts -------------------------------------------


async def test_queues_are_bounded_in_bytes(server: LocalServer) -> None:
    # 60 frames of 512 KiB (30 MiB) into a stalled events() iterator and a stalled
    # callback, each allowed 2 MiB: the oldest are dropped, and each consumer gets one
    # EventsDropped with the count before what was kept.
    size, count, budget = 512 * 1024, 60, 2 * 1024 * 1024
    release = asyncio.Event()
    received: list[int] = []
    reports: list[Any] = []

    async def stalled(chunk: bytes) -> None:
        await asyncio.wait_for(release.wait(), 30)
        received.append(len(chunk))

    async with make_client(server, max_queue_bytes=budget, stream_id="bytes-bound") as client:
        client.register_on_tts_audio(stalled)
        client.register_on_error(reports.append)
        events = client.events()
        await client.connect()
        await _post_burst(server, "bytes-bound", count, size)
        await server.records.wait_for(lambda: client.metrics.tts_audio_frames == count, timeout=30)
        # The iterator: one report, then at most `budget` bytes of audio.
        report = await events.__anext__()
        assert isinstance(report, EventsDropped)
        kept: list[int] = []
        while len(kept) + report.count < count:
            event = await events.__anext__()
            assert isinstance(event, TTSAudio)
            kept.append(len(event.data))
        assert sum(kept) <= budget
        assert report.count >= count - budget // size
        # The callbacks' queue: the same rule, reported to the error callbacks.
        release.set()

        def ours() -> list[Any]:
            return [
                r for r in reports if isinstance(r, EventsDropped) and r.consumer == "callbacks"
            ]

        await server.records.wait_for(ours, timeout=20)
        assert len(ours()) == 1
        dropped = ours()[0].count
        await server.records.wait_for(lambda: len(received) + dropped == count, timeout=20)
        assert (len(received) - 1) * size <= budget  # the one in progress, and the queue
        assert dropped >= count - 1 - budget // size
