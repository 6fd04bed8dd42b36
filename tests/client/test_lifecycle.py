"""Every state releases every session, socket and task (run with ResourceWarning as error)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import warnings
import weakref
from collections.abc import Iterator

import pytest

from helpers import internals
from helpers.waiting import eventually
from sayna_client import (
    ReconnectPolicy,
    SaynaClient,
    SaynaConnectionError,
    SaynaTimeoutError,
    Timeouts,
)
from sayna_client.protocol.events import STTResultMessage
from sayna_client.server import Faults, LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import make_client, stt, tts


def _other_tasks() -> set[asyncio.Task[object]]:
    current = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not current and not t.done()}


def _sayna_tasks_since(baseline: set[asyncio.Task[object]]) -> set[asyncio.Task[object]]:
    return {t for t in _other_tasks() - baseline if t.get_name().startswith("sayna")}


async def _assert_released(client: SaynaClient, baseline: set[asyncio.Task[object]]) -> None:
    assert not client.connected
    assert not internals.holds_http_session(client)
    await eventually(lambda: not _sayna_tasks_since(baseline), what="the SDK's tasks ended")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ResourceWarning)
        gc.collect()


async def test_rest_only_use_is_released(server: LocalServer) -> None:
    baseline = _other_tasks()
    client = make_client(server)
    await client.health()
    await client.disconnect()
    await _assert_released(client, baseline)


async def test_async_with_after_session(server: LocalServer) -> None:
    baseline = _other_tasks()
    async with make_client(server) as client:
        client.register_on_tts_audio(lambda _: None)
        await client.connect()
        await client.speak("hello world")
        await server.records.wait_for(lambda: server.records.last_session.sent_audio_frames)
    await _assert_released(client, baseline)


async def test_after_server_closed_the_socket(server: LocalServer) -> None:
    baseline = _other_tasks()
    client = make_client(server)
    closed = asyncio.Event()
    client.register_on_close(lambda _: closed.set())
    await client.connect()
    await server.stop()
    await asyncio.wait_for(closed.wait(), 5)
    assert not client.connected
    await client.disconnect()
    await _assert_released(client, baseline)


async def test_after_failed_connect(server: LocalServer) -> None:
    baseline = _other_tasks()
    server.faults = Faults(never_send_ready=True)
    client = make_client(server, timeouts=Timeouts(ready=0.2))
    with pytest.raises(SaynaTimeoutError):
        await client.connect()
    await client.disconnect()
    await _assert_released(client, baseline)


async def test_connect_to_closed_port() -> None:
    async with LocalServer() as srv:
        url = srv.url
    baseline = _other_tasks()
    client = SaynaClient(url, stt(), tts())
    with pytest.raises(SaynaConnectionError):
        await client.connect()
    await client.disconnect()
    await _assert_released(client, baseline)


class _SilentListener:
    """A loopback TCP server that accepts and never answers (a hung upgrade)."""

    def __init__(self) -> None:
        self._held: list[asyncio.StreamWriter] = []
        self._server: asyncio.AbstractServer | None = None

    async def __aenter__(self) -> str:
        async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            self._held.append(writer)

        self._server = await asyncio.start_server(hold, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for writer in self._held:
            writer.close()
        await self._server.wait_closed()


@pytest.mark.parametrize("changed_after_rest_call", [False, True])
async def test_hung_handshake_times_out(changed_after_rest_call: bool) -> None:
    async with _SilentListener() as url:
        baseline = _other_tasks()
        client = SaynaClient(url, stt(), tts(), timeouts=Timeouts(connect=0.2, request=0.2))
        if changed_after_rest_call:
            # The HTTP session exists before the connect timeout changes.
            with pytest.raises(SaynaTimeoutError):
                await client.health()
            client.timeouts = Timeouts(connect=0.3, request=0.2)
        with pytest.raises(SaynaTimeoutError) as info:
            await client.connect()
        assert info.value.operation == "connect"
        assert info.value.timeout == client.timeouts.connect
        assert "Timeouts.connect" in str(info.value)
        await client.disconnect()
        await _assert_released(client, baseline)


async def test_closed_socket_is_freed_at_disconnect(server: LocalServer) -> None:
    # aiohttp re-arms the heartbeat when the server's Close frame arrives during
    # close(); the timer would keep the closed socket alive for one heartbeat interval.
    client = make_client(server, heartbeat=30.0)
    await client.connect()
    socket_ref = weakref.ref(internals.socket_record(client))
    await client.disconnect()
    # Well within the heartbeat's 30 s: the timer must not be what frees it.
    await eventually(lambda: gc.collect() >= 0 and socket_ref() is None, timeout=5)


async def test_a_dropped_client_is_freed_without_the_cycle_collector(server: LocalServer) -> None:
    # No reference cycles through the SDK's own objects: memory comes back as soon as
    # the application drops the client, and the cyclic GC has less to do per session.
    async def on_audio(_: object) -> None:
        return None

    client = make_client(server)
    client.register_on_stt_result(lambda _: None)
    client.register_on_tts_audio(on_audio)
    events = client.events()
    await client.connect()
    await client.speak("hello")
    await client.disconnect()
    async for _ in events:  # ends after the session
        pass
    await events.aclose()
    refs = [weakref.ref(client), weakref.ref(internals.event_hub(client))]
    gc.collect()
    gc.disable()
    try:
        del client, events
        assert [ref() for ref in refs] == [None, None]
    finally:
        gc.enable()


def _left_for_the_collector_name(name: str) -> bool:
    """A type of the SDK's client side, or aiohttp's trace config of a shared session."""
    client_side = name.startswith("sayna_client.") and not name.startswith("sayna_client.server")
    return client_side or name.endswith(".TraceConfig")


@contextlib.contextmanager
def _nothing_left_for_the_collector() -> Iterator[None]:
    """Within the block the cycle collector is off and keeps what it finds; at its end
    none of it may be of the SDK's client side (nor aiohttp's trace config)."""
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield
        gc.collect()
        left = {f"{type(o).__module__}.{type(o).__qualname__}" for o in gc.garbage}
        assert sorted(name for name in left if _left_for_the_collector_name(name)) == []
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


async def test_a_client_used_for_speech_leaves_nothing_for_the_cycle_collector(
    server: LocalServer,
) -> None:
    # Speech handles, turn metrics and a callback in use, then the session ends and the
    # application drops the client (its shared aiohttp session closes with it): none of
    # the SDK's objects (and no TraceConfig of aiohttp's) waits for the cyclic GC.
    client = make_client(server)
    played = asyncio.Event()
    client.register_on_tts_playback_complete(lambda _: played.set())
    await client.connect()
    await client.speak("hello world")
    await asyncio.wait_for(played.wait(), 30)
    with _nothing_left_for_the_collector():
        await client.disconnect()
        del client


async def test_a_client_that_sent_audio_leaves_nothing_for_the_cycle_collector(
    server: LocalServer,
) -> None:
    # The audio input keeps the connection its frames go to (a send's error is told in
    # its terms), and the connection reaches the session, which holds the input: the
    # session's end lets it go, so a client that streamed is freed by reference counting.
    client = make_client(server)
    await client.connect()
    for _ in range(5):
        await client.on_audio_input(bytes(640))
    with _nothing_left_for_the_collector():
        await client.disconnect()
        del client
    await eventually(lambda: server.records.last_session.audio_bytes == 5 * 640)


async def test_a_session_in_use_leaves_nothing_for_the_cycle_collector(
    server: LocalServer,
) -> None:
    # While events flow (audio up, results, an async callback answering with speak, TTS
    # audio and completions, turn metrics), the SDK's objects die by reference counting:
    # the cyclic GC, whose full passes pause every session of a process (issue #19), has
    # none of them to find.
    client = make_client(server)
    answered: list[object] = []
    played = asyncio.Event()

    async def answer(result: STTResultMessage) -> None:
        if result.is_speech_final:
            answered.append(await client.speak("fine thanks"))

    client.register_on_stt_result(answer)
    client.register_on_tts_audio(lambda _: None)
    client.register_on_tts_playback_complete(lambda _: played.set())
    await client.connect()
    speech = render_words(["x"] * 3, 16000) + bytes(2 * 16000 * 4 // 10)
    try:
        with _nothing_left_for_the_collector():
            for turn in (1, 2):
                played.clear()
                for start in range(0, len(speech), 640):
                    await client.on_audio_input(speech[start : start + 640])
                await eventually(lambda: len(answered) == turn, timeout=10, what="the reply")  # noqa: B023
                await asyncio.wait_for(played.wait(), 10)
            assert len(client.turn_metrics.turns) == 2
    finally:
        await client.disconnect()


def _collect(held: list[SaynaClient]) -> None:
    """Let go of the only reference to the client, and collect."""
    held.clear()
    gc.collect()


async def test_a_client_dropped_while_reconnecting_stops_quietly(server: LocalServer) -> None:
    # The application drops the client while the server is down and the reconnection is
    # waiting: the next attempt finds no client and the reconnection ends, with no
    # "Task exception was never retrieved" from the loop.
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    try:
        baseline = _other_tasks()
        client = make_client(
            server, reconnect=ReconnectPolicy(max_attempts=50, initial_backoff=0.05)
        )
        lost = asyncio.Event()
        client.on("reconnecting", lambda _: lost.set())
        await client.connect()
        await server.stop()
        await asyncio.wait_for(lost.wait(), 5)
        held = [client]
        del client
        # Unclosed (a reconnection is a session still open): reported, as aiohttp does.
        with pytest.warns(ResourceWarning, match=r"client\.disconnect\(\)"):
            _collect(held)
        await eventually(lambda: not _sayna_tasks_since(baseline), what="the reconnection ended")
        gc.collect()
        assert reported == []
    finally:
        loop.set_exception_handler(previous)


async def test_cancelling_connect_leaves_nothing_open(server: LocalServer) -> None:
    baseline = _other_tasks()
    server.faults = Faults(never_send_ready=True)
    client = make_client(server)
    task = asyncio.ensure_future(client.connect())
    await server.records.wait_for(
        lambda: server.records.sessions and server.records.last_session.config
    )
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not client.connected
    await server.records.wait_for(lambda: server.records.last_session.closed.is_set())
    await client.disconnect()
    await _assert_released(client, baseline)


async def test_cancelling_the_owning_task(server: LocalServer) -> None:
    baseline = _other_tasks()
    started = asyncio.Event()

    async def owner() -> None:
        async with make_client(server) as client:
            client.register_on_stt_result(lambda _: None)
            await client.connect()
            started.set()
            while True:
                await client.on_audio_input(b"\x00\x00" * 320)
                await asyncio.sleep(0.01)

    task = asyncio.ensure_future(owner())
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await server.records.wait_for(lambda: server.records.last_session.closed.is_set())
    await eventually(lambda: not _sayna_tasks_since(baseline), what="the SDK's tasks ended")


async def test_events_iterator_ends_on_disconnect(connected: SaynaClient) -> None:
    events = connected.events()
    await connected.speak("a b")

    iterating = asyncio.Event()

    async def consume() -> list[str]:
        kinds = []
        async for event in events:
            kinds.append(event.type)
            iterating.set()
        return kinds

    consumer = asyncio.ensure_future(consume())
    await asyncio.wait_for(iterating.wait(), 10)
    await connected.disconnect()
    kinds = await asyncio.wait_for(consumer, 5)
    assert kinds[-1] == "closed"
