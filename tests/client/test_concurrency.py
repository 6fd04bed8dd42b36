"""Session calls from many tasks, threads and event loops end in a consistent state.

The stress test races 40 tasks through random session calls (connect, disconnect,
abort, reconfigure, speak, on_audio_input, clear...) against the local server, on a
loop in a thread of its own, while a watchdog in the test's thread fails the test if
that loop stops turning for more than a second while burning CPU (a frozen loop
cannot fail a test from inside). After each round the client must close cleanly and
then work normally.
"""

from __future__ import annotations

import asyncio
import random
import sys
import threading
import time
import traceback
from typing import Any, Callable, Optional

import pytest

from helpers import internals
from helpers.waiting import eventually
from sayna_client import (
    SaynaClient,
    SaynaConnectionError,
    SaynaError,
    SaynaEventLoopError,
    SaynaNotConnectedError,
    SaynaSyncClient,
    SaynaValidationError,
    Timeouts,
)
from sayna_client.server import Faults, LocalServer

from .conftest import make_client, stt, tts

FRAME = b"\x01\x00" * 320  # 20 ms of 16 kHz mono PCM
TASKS = 40
CALLS_PER_TASK = 12
ROUNDS = 8
STALL_SECONDS = 1.0


def _sayna_tasks() -> set[asyncio.Task[Any]]:
    return {t for t in asyncio.all_tasks() if t.get_name().startswith("sayna") and not t.done()}


# --- the stress test ---------------------------------------------------------------


#: Relative frequencies of the calls: sends and connects often, closes now and then, so
#: that rounds spend time both in ready sessions and around their ends.
_WEIGHTS = {
    "connect": 5,
    "disconnect": 1,
    "abort": 1,
    "disconnect_drain": 1,
    "reconfigure": 1,
    "speak": 4,
    "audio": 4,
    "clear": 1,
    "finish_audio": 1,
    "pause": 2,
}


async def _call(client: SaynaClient, kind: str, rng: random.Random) -> None:
    if kind == "connect":
        await client.connect()
    elif kind == "disconnect":
        await client.disconnect()
    elif kind == "abort":
        await client.abort()
    elif kind == "disconnect_drain":
        await client.disconnect(drain=rng.choice((0.05, 0.2)))
    elif kind == "reconfigure":
        await client.reconfigure(tts_config=tts(sample_rate=rng.choice((16000, 24000))))
    elif kind == "speak":
        await client.speak("hello there", wait=rng.random() < 0.3, timeout=2)
    elif kind == "audio":
        for _ in range(rng.randrange(1, 20)):
            await client.on_audio_input(FRAME)
    elif kind == "clear":
        await client.clear()
    elif kind == "finish_audio":
        await client.finish_audio(timeout=2, silence_ms=60)
    else:
        await asyncio.sleep(rng.random() * 0.01)


async def _worker(client: SaynaClient, seed: int, unexpected: list[str]) -> None:
    rng = random.Random(seed)
    kinds, weights = list(_WEIGHTS), list(_WEIGHTS.values())
    for _ in range(CALLS_PER_TASK):
        try:
            await _call(client, rng.choices(kinds, weights)[0], rng)
        except SaynaError:
            pass  # a typed refusal is a consistent answer (not connected, interrupted...)
        except Exception:
            unexpected.append(traceback.format_exc())
        if rng.random() < 0.5:
            await asyncio.sleep(0)


async def _stress(beat: list[float]) -> int:
    async def ticker() -> None:
        while True:
            beat[0], beat[1] = time.monotonic(), time.thread_time()
            await asyncio.sleep(0.02)

    ticking = asyncio.get_running_loop().create_task(ticker())
    unexpected: list[str] = []
    calls = 0
    try:
        async with LocalServer() as server:
            for round_ in range(ROUNDS):
                # Half the rounds with a server slow to answer the config: connects overlap
                # closes and other connects for longer.
                server.faults = Faults(ready_delay=0.03 if round_ % 2 else 0.0)
                client = make_client(
                    server,
                    timeouts=Timeouts(connect=2, ready=2, request=2, close=0.5, drain=0.3),
                )
                workers = [_worker(client, round_ * 1000 + i, unexpected) for i in range(TASKS)]
                await asyncio.wait_for(asyncio.gather(*workers), 60)  # no deadlock either
                calls += TASKS * CALLS_PER_TASK
                assert unexpected == [], unexpected[0]
                # Consistent: it closes cleanly, then works as a new client would.
                await client.abort()
                assert not client.connected
                assert not client.ready
                assert not internals.holds_http_session(client)
                await eventually(lambda: not _sayna_tasks())
                await client.connect()
                await client.speak("still fine", wait=True, timeout=10)
                await client.disconnect()
                await eventually(lambda: not _sayna_tasks())
                await server.records.wait_for(
                    lambda: all(r.closed.is_set() for r in server.records.sessions)
                )
    finally:
        ticking.cancel()
    return calls


def _thread_cpu(thread: threading.Thread) -> Optional[float]:
    """CPU seconds used so far by ``thread`` (None where the platform cannot tell)."""
    if not hasattr(time, "pthread_getcpuclockid") or thread.ident is None:
        return None
    try:
        return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
    except OSError:
        return None


def test_random_interleavings_of_session_calls_never_freeze_the_loop() -> None:
    beat = [time.monotonic(), 0.0]  # monotonic and loop-thread CPU time of the last tick
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["calls"] = asyncio.run(_stress(beat))
        except BaseException as exc:  # reported by the test thread
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="stress-loop", daemon=True)
    thread.start()
    deadline = time.monotonic() + 300
    while thread.is_alive():
        thread.join(0.05)
        stalled = time.monotonic() - beat[0]
        if stalled <= STALL_SECONDS:
            continue
        cpu = _thread_cpu(thread)
        # A loop that does not turn while its thread burns CPU is frozen; one that does
        # not run at all is merely waiting for a core of a loaded machine.
        if cpu is None or cpu - beat[1] > STALL_SECONDS / 2:
            frame = sys._current_frames().get(thread.ident or 0)
            stack = "".join(traceback.format_stack(frame)) if frame else "(no stack)"
            pytest.fail(f"the event loop stalled for {stalled:.1f} s while busy:\n{stack}")
        assert time.monotonic() < deadline, "the stress test did not finish"
    if "error" in outcome:
        raise outcome["error"]
    assert outcome["calls"] == ROUNDS * TASKS * CALLS_PER_TASK


# --- interruption, event loops, threads, refused reconnects --------------------------


async def test_disconnect_interrupts_a_pending_connect(server: LocalServer) -> None:
    server.faults = Faults(never_send_ready=True)
    client = make_client(server)
    connecting = asyncio.ensure_future(client.connect())
    await server.records.wait_for(
        lambda: server.records.sessions and server.records.last_session.config
    )
    started = time.monotonic()
    await client.disconnect()
    assert time.monotonic() - started < 5  # not Timeouts.ready (10 s here)
    with pytest.raises(SaynaConnectionError, match="interrupted"):
        await connecting
    assert not connecting.cancelled()
    assert not client.connected
    await server.records.wait_for(lambda: server.records.last_session.closed.is_set())
    server.faults = Faults()
    await client.connect()  # and the client still works
    assert client.ready
    await client.disconnect()


async def test_a_second_event_loop_gets_a_typed_error(server: LocalServer) -> None:
    client = make_client(server)
    await client.connect()

    def elsewhere(call: Callable[[], Any]) -> BaseException:
        try:
            asyncio.run(call())
        except BaseException as exc:
            return exc
        raise AssertionError("no error")

    for call in (
        lambda: client.on_audio_input(FRAME),
        lambda: client.speak("from another loop"),
        lambda: client.clear(),
        lambda: client.connect(),
        lambda: client.reconfigure(tts_config=tts()),
        lambda: client.disconnect(),
        lambda: client.abort(),
    ):
        error = await asyncio.to_thread(elsewhere, call)
        assert isinstance(error, SaynaEventLoopError), repr(error)
        assert "another event loop" in str(error)
    record = server.records.last_session
    assert record.audio_frames == 0
    assert [m["type"] for m in record.messages] == ["config"]
    assert client.ready  # untouched
    await client.on_audio_input(FRAME)
    await client.disconnect()

    async def whole_session() -> bool:
        await client.connect()
        ready = client.ready
        await client.disconnect()
        return ready

    # Once the session is closed, another loop may use the client.
    assert await asyncio.to_thread(asyncio.run, whole_session())


async def test_another_loop_gets_a_typed_error_after_the_sessions_own_frames(
    server: LocalServer,
) -> None:
    # Once the session's loop sent audio, a frame looks its lane up no more: a frame from
    # another thread's loop is still refused, whatever its size, and nothing of it is sent.
    async with make_client(server) as client:
        await client.connect()
        await client.on_audio_input(FRAME)
        for frame in (FRAME, FRAME[:320]):
            with pytest.raises(SaynaEventLoopError, match="another event loop"):
                await asyncio.to_thread(asyncio.run, client.on_audio_input(frame))
        await client.on_audio_input(FRAME)  # the session's own loop goes on
        await server.records.wait_for(lambda: server.records.last_session.audio_frames == 2)
        assert client.metrics.audio_frames_sent == 2
    assert server.records.last_session.audio_bytes == 2 * len(FRAME)


async def test_a_released_buffer_is_a_validation_error(server: LocalServer) -> None:
    async with make_client(server) as client:
        await client.connect()
        view = memoryview(bytearray(FRAME))
        view.release()
        with pytest.raises(SaynaValidationError, match="cannot be read"):
            await client.on_audio_input(view)


async def test_sync_client_threads_racing_connect_and_close(server: LocalServer) -> None:
    def race() -> list[str]:
        unexpected: list[str] = []
        client = SaynaSyncClient(
            server.url, stt(), tts(), timeouts=Timeouts(connect=5, ready=5, close=1, drain=0.2)
        )
        barrier = threading.Barrier(8)

        def worker(index: int) -> None:
            barrier.wait()
            for step in range(6):
                try:
                    if (index + step) % 3 == 0:
                        client.close()
                    elif (index + step) % 3 == 1:
                        client.connect()
                    else:
                        client.speak("hi")
                except SaynaError:
                    pass
                except Exception:
                    unexpected.append(traceback.format_exc())

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        client.connect()
        client.speak("done", wait=True, timeout=10)
        client.close()
        return unexpected

    unexpected = await asyncio.to_thread(race)
    assert unexpected == [], unexpected[0]


async def test_a_refused_reconnect_closes_its_socket(server: LocalServer) -> None:
    from sayna_client import ReconnectPolicy

    client = make_client(
        server, reconnect=ReconnectPolicy(max_attempts=3, initial_backoff=0.01, max_backoff=0.01)
    )
    server.faults = Faults(drop_connection_after_frames=2)  # ready, then one audio frame
    await client.connect()
    first = server.records.last_session
    server.faults = Faults(reject_config_error="Unsupported provider: nope")  # the reconnect
    await client.speak("one two three")
    await eventually(lambda: len(server.records.sessions) == 2 and not client.reconnecting)
    refused = server.records.last_session
    await server.records.wait_for(lambda: refused.closed.is_set())  # not left open
    assert first.closed.is_set()
    assert not client.connected
    with pytest.raises(SaynaNotConnectedError, match="ended"):
        await client.speak("hello")
    assert _sayna_tasks() == set()
    await client.disconnect()
