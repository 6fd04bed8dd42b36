"""``SaynaSyncClient`` against the local server: blocking calls, threads, callbacks, lifetime.

The server runs on the test's event loop, so blocking calls run in a worker thread
(``asyncio.to_thread``) while that loop keeps serving; the "inside a running loop" test
instead runs its server in a thread of its own and blocks the test's loop on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
import pytest_asyncio

from helpers.waiting import eventually_sync
from sayna_client import (
    ConnectionClosed,
    RetryPolicy,
    SaynaAuthenticationError,
    SaynaClient,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaNotConnectedError,
    SaynaNotFoundError,
    SaynaSyncClient,
    SaynaTimeoutError,
    SaynaValidationError,
    Timeouts,
    TTSAudio,
    TTSPlaybackCompleteMessage,
)
from sayna_client.realtime.hub import EventHub
from sayna_client.server import LocalServer

from .conftest import stt, tts

THREAD_PREFIX = "sayna-sync-loop"
FRAME = 640  # 20 ms of 16 kHz mono PCM


def make_sync(server: LocalServer, **kwargs: Any) -> SaynaSyncClient:
    kwargs.setdefault("timeouts", Timeouts(connect=5, ready=10, request=10, close=2))
    return SaynaSyncClient(server.url, stt(), tts(sample_rate=16000), **kwargs)


#: For tests that close a session whose turn stays open (audio without a final): close()
#: lets the conversation finish for ``drain`` seconds first, 5 by default, all waited.
SHORT_DRAIN = Timeouts(connect=5, ready=10, request=10, close=2, drain=0.5)


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


@pytest.fixture(autouse=True)
def _no_leftover_loop_threads() -> Iterator[None]:
    yield
    eventually_sync(lambda: not loop_threads(), what="the loop threads ended")


async def test_rest_calls_reach_the_server(server: LocalServer) -> None:
    def scenario() -> None:
        with make_sync(server, api_key="k") as c:
            assert c.health().status == "OK"
            voices = c.get_voices()
            assert voices
            audio, headers = c.speak_rest("hello world", tts())
            assert len(audio) == int(headers["Content-Length"]) > 0
            token = c.get_livekit_token("room-1", "Jane", "jane")
            assert token.room_name == "room-1"

    await asyncio.to_thread(scenario)
    speak = server.records.requests_to("/speak", "POST")[0]
    assert speak.json["text"] == "hello world"
    assert speak.headers["Authorization"] == "Bearer k"
    assert server.records.requests_to("/livekit/token", "POST")[0].json == {
        "room_name": "room-1",
        "participant_name": "Jane",
        "participant_identity": "jane",
    }


async def test_a_subclass_override_stays_in_force_after_calling_super(
    server: LocalServer,
) -> None:
    # A blocking method stores its call on the instance at the first use; reached through
    # super() from a subclass's override, it must not shadow that override.
    calls: list[str] = []

    class Logging(SaynaSyncClient):
        def health(self) -> Any:
            calls.append("health")
            return super().health()

        def on_audio_input(self, audio_data: bytes) -> None:  # type: ignore[override]
            calls.append("audio")
            super().on_audio_input(audio_data)

        def close(self) -> None:
            calls.append("close")
            super().close()

        def abort(self) -> None:
            calls.append("abort")
            super().abort()

    def scenario() -> None:
        with Logging(server.url, stt(), tts(sample_rate=16000)) as c:
            for _ in range(2):
                assert c.health().status == "OK"
            c.connect()
            for _ in range(3):
                c.on_audio_input(bytes(FRAME))
            assert "health" not in vars(c)
            assert "on_audio_input" not in vars(c)
        with pytest.raises(KeyError), Logging(server.url, stt(), tts()).session():
            raise KeyError("leaving with an error aborts")

    await asyncio.to_thread(scenario)
    assert calls == ["health"] * 2 + ["audio"] * 3 + ["close", "abort"]
    await server.records.wait_for(lambda: server.records.sessions[0].audio_frames == 3)


async def test_iterators_dropped_in_the_users_thread_let_go_on_the_loop_thread(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A blocking iterator dropped unused lets go of its queue; the hub it leaves is
    # changed on the loop thread only (the user's thread drops it), so the iterators kept
    # meanwhile stay subscribed.
    removed_in: list[int] = []
    remove = EventHub.remove_iterator

    def recorded(hub: EventHub, mailbox: Any) -> None:
        removed_in.append(threading.get_ident())
        remove(hub, mailbox)

    monkeypatch.setattr(EventHub, "remove_iterator", recorded)

    def scenario() -> int:
        with make_sync(server) as c:
            kept = [c.events(timeout=10) for _ in range(20)]
            c.connect()  # (the loop thread runs from here on)
            removed_in.append(-threading.get_ident())  # (the user's thread, marked)
            for _ in range(200):
                c.events()  # dropped at once, in this thread
            firsts = {next(iterator).type for iterator in kept}
            assert firsts == {"ready"}
            hub = c.async_client._voice.hub
            eventually_sync(lambda: len(hub._iterators) == len(kept), what="unsubscribed")
            removed_in.append(0)  # (the end of what is looked at)
            return len(hub._iterators)

    assert await asyncio.to_thread(scenario) == 20
    (mark,) = [index for index, ident in enumerate(removed_in) if ident < 0]
    dropped = removed_in[mark + 1 : removed_in.index(0)]
    assert len(dropped) == 200
    assert -removed_in[mark] not in dropped


async def test_connect_speak_wait_and_events(server: LocalServer) -> None:
    def scenario() -> list[Any]:
        with make_sync(server, stream_id="sync-1") as c:
            events = c.events(timeout=10)  # subscribe before acting
            c.connect()
            assert c.ready
            assert c.connected
            assert c.received_stream_id == "sync-1"
            c.speak("one two three", wait=True, timeout=10)
            seen = []
            for event in events:
                seen.append(event)
                if isinstance(event, TTSPlaybackCompleteMessage):
                    break
            assert c.metrics.speak_to_playback_complete_last is not None
            return seen

    seen = await asyncio.to_thread(scenario)
    assert seen[0].type == "ready"
    audio = [e for e in seen if isinstance(e, TTSAudio)]
    record = server.records.last_session
    assert record.messages[-1]["text"] == "one two three"
    assert sum(len(e.data) for e in audio) == record.sent_audio_bytes
    await server.records.wait_for(lambda: record.closed.is_set())


@pytest.mark.parametrize("timeout", ["5", -1, 0, float("nan"), float("inf"), True])
async def test_a_bad_events_or_turns_timeout_is_refused_when_called(
    server: LocalServer, timeout: Any
) -> None:
    """Not a TypeError at the first ``next()``, nor a timeout "within -1 s"."""

    def scenario() -> list[str]:
        messages = []
        with make_sync(server) as c:
            c.connect()
            for pull in (c.events, c.turns):
                with pytest.raises(SaynaValidationError) as info:
                    pull(timeout=timeout)
                messages.append(str(info.value))
        return messages

    for message in await asyncio.to_thread(scenario):
        assert message == (
            f"timeout must be a positive number of seconds or None (no limit), got {timeout!r}"
        )


async def test_events_timeout_keeps_the_iterator_and_it_ends_with_the_session(
    server: LocalServer,
) -> None:
    def scenario() -> list[str]:
        c = make_sync(server)
        c.connect()
        events = c.events(timeout=0.2)
        with pytest.raises(SaynaTimeoutError) as info:
            next(events)
        assert info.value.operation == "events()"
        untimed = c.events()
        c.speak("a b")
        assert next(events).type == "tts_audio"  # still subscribed after the timeout
        events.close()
        kinds: list[str] = []
        completed = threading.Event()

        def read() -> None:
            for event in untimed:
                kinds.append(event.type)
                if event.type == "tts_playback_complete":
                    completed.set()

        reader = threading.Thread(target=read)
        reader.start()
        assert completed.wait(10)  # the paced speech has played
        c.close()  # from another thread: the blocked iteration ends
        reader.join(5)
        assert not reader.is_alive()
        return kinds

    kinds = await asyncio.to_thread(scenario)
    assert kinds[-1] == "closed"
    assert "tts_playback_complete" in kinds


async def test_close_in_another_thread_ends_a_blocked_call(server: LocalServer) -> None:
    def scenario() -> BaseException:
        c = make_sync(server, timeouts=SHORT_DRAIN)
        c.connect()
        audio = _speak_and_collect(c, "x y z")
        audio += b"\x00" * (-len(audio) % FRAME)  # no trailing silence: the turn stays open
        for i in range(0, len(audio), FRAME):
            c.on_audio_input(audio[i : i + FRAME])
        failures: list[BaseException] = []

        def drain() -> None:
            try:
                c.drain()
            except BaseException as exc:
                failures.append(exc)

        waiter = threading.Thread(target=drain)
        waiter.start()
        time.sleep(0.3)
        assert waiter.is_alive()  # waiting for the end of the user's turn
        c.close()
        waiter.join(5)
        assert not waiter.is_alive()
        return failures[0]

    failure = await asyncio.to_thread(scenario)
    assert isinstance(failure, SaynaConnectionClosedError)


def _speak_and_collect(c: SaynaSyncClient, text: str) -> bytes:
    audio = bytearray()
    with c.events(timeout=10) as events:
        c.speak(text)
        for event in events:
            if isinstance(event, TTSAudio):
                audio += event.data
            elif isinstance(event, TTSPlaybackCompleteMessage):
                break
    return bytes(audio)


async def test_turns_from_audio_fed_by_the_sync_client(server: LocalServer) -> None:
    def scenario() -> str:
        with make_sync(server) as c:
            c.connect()
            audio = _speak_and_collect(c, "one two")
            turns = c.turns(timeout=10)
            pcm = audio + b"\x00" * (16000 * 2)  # a second of silence ends the turn
            pcm += b"\x00" * (-len(pcm) % FRAME)
            for i in range(0, len(pcm), FRAME):
                c.on_audio_input(pcm[i : i + FRAME])
            return next(turns).text

    assert await asyncio.to_thread(scenario) == "word word"


async def test_audio_from_four_threads_at_once(server: LocalServer) -> None:
    threads, frames = 4, 50

    def scenario() -> None:
        with make_sync(server, timeouts=SHORT_DRAIN) as c:
            c.connect()
            start = threading.Barrier(threads)
            errors: list[BaseException] = []

            def microphone(tid: int) -> None:
                start.wait()
                try:
                    for seq in range(frames):
                        c.on_audio_input(bytes([tid, seq]) * (FRAME // 2))
                except BaseException as exc:
                    errors.append(exc)

            workers = [threading.Thread(target=microphone, args=(i,)) for i in range(threads)]
            for worker in workers:
                worker.start()
            c.speak("meanwhile")  # the main thread keeps using the client
            for worker in workers:
                worker.join(10)
            assert errors == []
            assert c.metrics.audio_frames_sent == threads * frames

    await asyncio.to_thread(scenario)
    record = server.records.last_session
    await server.records.wait_for(lambda: record.closed.is_set())
    assert record.audio_frames == threads * frames
    assert record.audio_bytes == threads * frames * FRAME
    order: dict[int, list[int]] = {}
    for i in range(0, record.audio_bytes, FRAME):
        chunk = record.audio[i : i + FRAME]
        assert chunk == bytes(chunk[:2]) * (FRAME // 2)  # frames arrive whole
        order.setdefault(chunk[0], []).append(chunk[1])
    assert order == {tid: list(range(frames)) for tid in range(threads)}  # per-thread order


async def test_callbacks_run_on_the_loop_thread(server: LocalServer) -> None:
    def scenario() -> dict[str, str]:
        names: dict[str, str] = {}
        with make_sync(server) as c:
            c.register_on_tts_audio(lambda _: names.setdefault("sync", _thread_name()))

            async def on_complete(_: Any) -> None:
                names["async"] = _thread_name()

            remove = c.register_on_tts_playback_complete(on_complete)
            c.on("ready", lambda _: names.setdefault("on", _thread_name()))
            c.connect()
            c.speak("x y", wait=True, timeout=10)
            eventually_sync(lambda: len(names) == 3)
            assert remove() is True  # the handle works from this (foreign) thread
            assert remove() is False
            assert c.off(print) == 0
        return names

    names = await asyncio.to_thread(scenario)
    assert {n.startswith(THREAD_PREFIX) for n in names.values()} == {True}
    assert len(set(names.values())) == 1


def _thread_name() -> str:
    return threading.current_thread().name


async def test_errors_propagate_with_their_types(auth_server: LocalServer) -> None:
    def scenario() -> None:
        with make_sync(auth_server) as anonymous:
            with pytest.raises(SaynaAuthenticationError) as info:
                anonymous.get_livekit_rooms()
            assert info.value.status_code == 401
            with pytest.raises(SaynaAuthenticationError):
                anonymous.connect()
        with make_sync(auth_server, api_key="test-key") as c:
            with pytest.raises(SaynaNotFoundError) as missing:
                c.get_livekit_room("no-such-room")
            assert missing.value.endpoint is not None
            with pytest.raises(SaynaValidationError, match="empty"):
                c.speak("   ")
            with pytest.raises(SaynaNotConnectedError) as early:
                c.speak("not yet")
            assert "call client.connect() first" in str(early.value)  # advice fits both clients
            with pytest.raises(SaynaValidationError, match="empty"):
                c.on_audio_input(b"")

    await asyncio.to_thread(scenario)
    with pytest.raises(SaynaValidationError, match="stt_config and tts_config"):
        SaynaSyncClient("http://127.0.0.1:1")  # validated at once, no thread started


async def test_close_ends_the_thread_and_the_client_can_be_used_again(
    server: LocalServer,
) -> None:
    def scenario() -> int:
        c = make_sync(server)
        closes: list[ConnectionClosed] = []
        c.register_on_close(closes.append)  # no thread needed to register
        assert loop_threads() == []
        c.connect()
        first = loop_threads()
        assert len(first) == 1
        assert first[0].daemon
        c.close()
        assert not first[0].is_alive()
        assert loop_threads() == []
        assert not c.connected
        c.close()  # twice is fine
        c.connect()  # a new thread and loop; callbacks are still registered
        assert c.ready
        assert loop_threads()[0] is not first[0]
        c.disconnect()
        assert loop_threads() == []
        return len(closes)

    assert await asyncio.to_thread(scenario) == 2
    assert len(server.records.sessions) == 2
    await server.records.wait_for(lambda: all(s.closed.is_set() for s in server.records.sessions))


async def test_context_manager_closes_session_and_thread(server: LocalServer) -> None:
    c = make_sync(server)

    def body() -> None:
        with c:
            c.connect()
            assert loop_threads()
            raise RuntimeError("boom")

    def scenario() -> None:
        with pytest.raises(RuntimeError, match="boom"):
            body()
        assert loop_threads() == []
        assert not c.connected

    await asyncio.to_thread(scenario)
    record = server.records.last_session
    await server.records.wait_for(lambda: record.closed.is_set())


async def test_blocking_call_in_a_callback_raises_instead_of_deadlocking(
    server: LocalServer,
) -> None:
    def scenario() -> list[BaseException]:
        problems: list[BaseException] = []
        with make_sync(server) as c:

            def on_ready(_: Any) -> None:
                c.register_on_error(lambda _: None)  # non-blocking methods work here
                assert c.ready or c.connected
                for call in (lambda: c.speak("from callback"), c.health, c.close):
                    try:
                        call()
                    except RuntimeError as exc:
                        problems.append(exc)

            async def on_complete(_: Any) -> None:  # the documented alternative
                await c.async_client.send_message("done", "assistant")

            c.register_on_ready(on_ready)
            c.register_on_tts_playback_complete(on_complete)
            c.connect()
            eventually_sync(lambda: len(problems) == 3)
            c.speak("hello", wait=True, timeout=10)
            eventually_sync(
                lambda: any(
                    m["type"] == "send_message" for m in server.records.last_session.messages
                )
            )
        return problems

    problems = await asyncio.to_thread(scenario)
    assert [type(p) for p in problems] == [RuntimeError] * 3
    assert "deadlock" in str(problems[0])
    assert "speak()" in str(problems[0])
    assert "async_client" in str(problems[0])
    sent = [m["type"] for m in server.records.last_session.messages]
    assert "speak" in sent
    assert sent.count("speak") == 1  # the callback's speak() was refused before sending


@contextlib.contextmanager
def _server_in_its_own_thread() -> Iterator[LocalServer]:
    started = threading.Event()
    box: dict[str, Any] = {}

    def serve() -> None:
        async def main() -> None:
            async with LocalServer() as srv:
                box["server"], box["stop"] = srv, asyncio.Event()
                box["loop"] = asyncio.get_running_loop()
                started.set()
                await box["stop"].wait()

        asyncio.run(main())

    thread = threading.Thread(target=serve, name="test-server")
    thread.start()
    assert started.wait(10)
    try:
        yield box["server"]
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


async def test_blocking_calls_from_inside_a_running_event_loop() -> None:
    asyncio.get_running_loop()  # like a Jupyter cell: a loop runs on this thread
    with _server_in_its_own_thread() as srv:
        c = make_sync(srv)
        try:
            assert c.health().status == "OK"
            c.connect()
            c.speak("inside a loop", wait=True, timeout=10)
            record = srv.records.last_session
            assert record.messages[-1]["text"] == "inside a loop"
        finally:
            c.close()
        eventually_sync(lambda: record.closed.is_set())


async def test_unclosed_client_warns_when_collected(server: LocalServer) -> None:
    def scenario() -> None:
        clients = [make_sync(server)]
        clients[0].connect()
        thread = loop_threads()[0]
        with pytest.warns(ResourceWarning, match="unclosed"):
            clients.clear()  # the last reference: collected at once, no cycle keeps it
        thread.join(10)
        assert not thread.is_alive()

    await asyncio.to_thread(scenario)
    record = server.records.last_session
    await server.records.wait_for(lambda: record.closed.is_set())


_EXIT_SCRIPT = """
import sys, time
from sayna_client import SaynaSyncClient, STTConfig, TTSConfig, Timeouts
client = SaynaSyncClient(sys.argv[1], STTConfig(provider="deepgram"),
                         TTSConfig(provider="elevenlabs", voice_id="v"),
                         timeouts=Timeouts(close=0.5))
client.connect()
if sys.argv[2] == "stuck":  # a callback that blocks the loop thread for good
    client.on("tts_audio", lambda _: time.sleep(120))
client.speak("never closed")
time.sleep(0.2)
print("end of script", flush=True)
"""


_STUCK_EXECUTOR_SCRIPT = """
import asyncio, sys, threading, time
from sayna_client import SaynaSyncClient, Timeouts, _portal
_portal._EXECUTOR_SECONDS = 0.2
client = SaynaSyncClient(sys.argv[1], without_audio=True, timeouts=Timeouts(drain=0.2))
started = threading.Event()
async def on_ready(_):
    started.set()
    await asyncio.get_running_loop().run_in_executor(None, time.sleep, 1000)
client.on("ready", on_ready)
client.connect()
assert started.wait(10)
client.close()
print("closed", flush=True)
"""


async def test_a_stuck_executor_call_does_not_hold_the_process_after_close(
    server: LocalServer,
) -> None:
    """A callback's ``run_in_executor(None, ...)`` that never returns: ``close()`` returns
    with a WARNING, and the process then exits (the default executor's threads were
    joined at interpreter exit, so it waited for the call)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _STUCK_EXECUTOR_SCRIPT,
        server.url,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), 30)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.returncode == 0, err.decode()
    assert b"closed" in out
    assert b"default executor" in err


@pytest.mark.parametrize("mode", ["idle", "stuck"])
async def test_unclosed_client_does_not_hang_interpreter_exit(
    server: LocalServer, mode: str
) -> None:
    started = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-W",
        "always::ResourceWarning",
        "-c",
        _EXIT_SCRIPT,
        server.url,
        mode,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0, err.decode()
    assert b"end of script" in out
    assert b"ResourceWarning: unclosed" in err
    assert time.monotonic() - started < 15
    record = server.records.last_session
    if mode == "idle":  # closed at exit: a clean close handshake
        await server.records.wait_for(lambda: record.closed.is_set())
        assert record.close_code == 1000


def test_same_methods_and_signatures_as_the_async_client() -> None:
    deprecated = {"aclose", "health_check", "register_on_audio", "send_audio", "send_clear"}
    deprecated |= {"send_speak"}
    # The voice-agent helpers (docs/agents.md) that hand out loop-bound objects (the speech
    # queue, watchdogs, policies whose callbacks run on the loop) are async client only;
    # speak() and speak_stream() are mirrored, returning a SyncSpeechHandle.
    agents = {"audio_output", "barge_in", "idle_watchdog", "speech"}
    agents |= {"turn_metrics"}
    public = {n for n in dir(SaynaClient) if not n.startswith("_")} - deprecated - agents
    missing = sorted(n for n in public if not hasattr(SaynaSyncClient, n))
    assert missing == []
    for name in sorted(public):
        ours, theirs = getattr(SaynaSyncClient, name), getattr(SaynaClient, name)
        if isinstance(theirs, property):
            assert isinstance(ours, property), name
            continue
        if not callable(theirs):
            continue
        expected = _params(theirs)
        if name in ("events", "turns"):
            expected.append(("timeout", "POSITIONAL_OR_KEYWORD", None))
        assert _params(ours) == expected, name
        assert not inspect.iscoroutinefunction(ours), name
        assert ours.__doc__, name


def test_the_async_clients_instance_attributes_are_there_too_read_only() -> None:
    """README: "the same methods and properties as SaynaClient". ``client.url`` is an
    instance attribute, which the check of the class above cannot see: the sync client
    had none."""
    url = "http://user:pa55word@127.0.0.1:9"
    client = SaynaClient(url, without_audio=True)
    sync = SaynaSyncClient(url, without_audio=True)
    try:
        # (Not the methods the client stores on itself: the sync client has its own.)
        public = sorted(
            n for n in vars(client) if not n.startswith("_") and not callable(vars(client)[n])
        )
        assert "url" in public
        for name in public:
            assert getattr(sync, name) == getattr(client, name), name
        assert sync.url == url  # as passed, like SaynaClient.url
        with pytest.raises(AttributeError, match="url is read-only"):
            sync.url = "http://elsewhere"  # type: ignore[misc]
        assert "pa55word" not in repr(sync)
    finally:
        sync.close()


def _params(fn: Any) -> list[tuple[str, str, Any]]:
    return [
        (p.name, p.kind.name, p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.name != "self"
    ]


@pytest_asyncio.fixture
async def sync_client(server: LocalServer) -> AsyncIterator[SaynaSyncClient]:
    c = make_sync(server, api_key="s3cret-key")
    yield c
    await asyncio.to_thread(c.close)


async def test_repr_shows_state_but_no_secret(sync_client: SaynaSyncClient) -> None:
    assert "loop thread stopped" in repr(sync_client)
    await asyncio.to_thread(sync_client.health)
    assert "loop thread running" in repr(sync_client)
    assert "s3cret" not in repr(sync_client)


async def test_a_blocking_call_on_the_thread_running_the_local_server_is_refused(
    server: LocalServer,
) -> None:
    """An async test using the local server (``sayna_server``) that called a blocking
    method waited 183 s for a server its own wait kept from answering, then blamed the
    server ("GET / timed out after 60.0 s"). Now it is refused at once, naming the fix;
    from a worker thread the same call works, and close() may run here."""
    localhost = server.url.replace("127.0.0.1", "localhost")
    for url in (server.url, localhost):
        client = SaynaSyncClient(url, without_audio=True)
        try:
            with pytest.raises(RuntimeError) as info:
                client.health()
            assert str(info.value) == (
                "SaynaSyncClient.health() was called on the event-loop thread that runs the "
                f"local Sayna server at {url}: the server cannot answer while this thread "
                "waits. From async code, run the call in a worker thread (`await "
                "asyncio.to_thread(client.health, ...)`) or use SaynaClient."
            )
            with pytest.raises(RuntimeError, match=r"SaynaSyncClient\.connect\(\) was called"):
                client.connect()
            assert (await asyncio.to_thread(client.health)).status == "OK"
        finally:
            client.close()
    assert server.records.requests_to("/", "GET")  # the worker thread's calls arrived
    # Another server's address is not refused (the call goes out and fails on its own).
    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        other = SaynaSyncClient(
            f"http://127.0.0.1:{refusing.getsockname()[1]}",
            without_audio=True,
            retry=RetryPolicy(max_retries=0),
        )
        with pytest.raises(SaynaConnectionError):
            other.health()
        other.close()


async def test_on_the_local_server_s_thread_a_done_handle_answers_and_close_is_prompt(
    server: LocalServer,
) -> None:
    """On the loop thread that runs the local server: a finished speech's
    ``handle.wait()`` was refused (the refusal came before the finished-handle answer) and
    named ``client.wait``, which does not exist; ``close()`` of a speaking session waited
    the whole drain time for a server that cannot answer while the thread waits."""
    client = make_sync(server, timeouts=Timeouts(connect=5, ready=10, close=2, drain=60))
    await asyncio.to_thread(client.connect)
    done = await asyncio.to_thread(lambda: client.speak("one two", wait=True, timeout=10))
    done.wait()  # finished: answered here, nothing refused
    speaking = await asyncio.to_thread(client.speak, "word " * 60)  # about 11 s of audio
    with pytest.raises(RuntimeError) as info:
        speaking.wait(1)
    assert str(info.value).startswith("SyncSpeechHandle.wait() was called on the event-loop")
    assert "asyncio.to_thread(handle.wait, ...)" in str(info.value)
    started = time.monotonic()
    client.close()  # at once, as abort(): not the 60 s drain
    assert time.monotonic() - started < 30


async def test_close_does_not_wait_without_limit_for_a_callbacks_executor_call(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that hands blocking work to the loop's default executor: ``close()``
    waits for it a bounded time (``_EXECUTOR_SECONDS``), then says so and returns; the
    work's thread finishes on its own."""
    from sayna_client import _portal

    monkeypatch.setattr(_portal, "_EXECUTOR_SECONDS", 0.2)
    release = threading.Event()
    started = threading.Event()

    def scenario() -> None:
        c = make_sync(server)

        async def on_ready(_: Any) -> None:
            started.set()
            await asyncio.get_running_loop().run_in_executor(None, release.wait)

        c.on("ready", on_ready)
        c.connect()
        assert started.wait(10)
        c.close()

    try:
        await asyncio.wait_for(asyncio.to_thread(scenario), 30)
    finally:
        release.set()
    assert "default executor" in caplog.text
