"""Speech handles and speak_stream on SaynaSyncClient: blocking handles from any thread,
and a blocking token iterator read off the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from helpers.waiting import eventually_sync
from sayna_client import SaynaSyncClient, SaynaValidationError, STTConfig, Timeouts, TTSConfig
from sayna_client.agents import SyncSpeechHandle
from sayna_client.server import LocalServer

from .conftest import RATE, WAIT, WORD_BYTES

LONG = "this is a long answer that goes on and on for quite a few words indeed"


def make_sync(server: LocalServer) -> SaynaSyncClient:
    return SaynaSyncClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
        TTSConfig(provider="deepgram", sample_rate=RATE),
        timeouts=Timeouts(connect=5, ready=10, request=10, close=2),
    )


def speaks(server: LocalServer) -> list[str]:
    session = server.records.last_session
    return [str(m["text"]) for m in session.messages if m["type"] == "speak"]


async def test_speak_returns_a_handle_to_wait_on(server: LocalServer) -> None:
    def scenario() -> None:
        with make_sync(server) as client:
            client.connect()
            handle = client.speak("one two three")
            assert isinstance(handle, SyncSpeechHandle)
            handle.wait(10)
            assert handle.done
            assert not handle.interrupted
            assert handle.bytes_delivered == 3 * WORD_BYTES
            assert handle.seconds_heard == pytest.approx(0.54)
            assert handle.text_heard == "one two three"
            assert handle.chunks == ["one two three"]

            long = client.speak(LONG)
            eventually_sync(lambda: long.bytes_delivered >= 2 * WORD_BYTES)
            long.interrupt()
            long.wait(5)
            assert long.interrupted
            assert not long.lost  # (the connection is still there)
            assert 2 <= len(long.text_heard.split()) < len(LONG.split())

    await asyncio.to_thread(scenario)


async def test_speak_stream_reads_a_blocking_iterator_off_the_loop(server: LocalServer) -> None:
    gate = threading.Event()

    def llm() -> Iterator[str]:
        """A synchronous LLM client's token stream: it blocks between tokens."""
        yield from ["Sure", ".", " Dr", ". Who", " is 3", ".5 km", " away", ". "]
        gate.wait(30)  # blocks its thread, never the session's loop
        yield from [" Then", " we", " are", " done", " here", " ok."]

    def scenario() -> None:
        with make_sync(server) as client:
            client.connect()
            handle = client.speak_stream(llm())
            # The first sentences left while the iterator is still blocked ...
            eventually_sync(lambda: len(speaks(server)) == 2)
            assert speaks(server) == ["Sure.", "Dr. Who is 3.5 km away."]
            assert not handle.done
            assert client.health().status == "OK"  # ... and the loop serves other calls
            gate.set()
            handle.wait(15)
            assert speaks(server)[2:] == ["Then we are done here ok."]
            assert handle.text == "Sure. Dr. Who is 3.5 km away. Then we are done here ok."
            assert not handle.interrupted
            with pytest.raises(SaynaValidationError, match="speak\\(\\) for one text"):
                client.speak_stream("a whole string")  # type: ignore[arg-type]

    await asyncio.to_thread(scenario)


async def test_a_failing_iterator_surfaces_in_wait(server: LocalServer) -> None:
    def broken() -> Iterator[str]:
        yield "Hello there. "
        raise RuntimeError("the LLM connection dropped")

    def scenario() -> None:
        with make_sync(server) as client:
            client.connect()
            handle = client.speak_stream(broken())
            with pytest.raises(RuntimeError, match="LLM connection dropped"):
                handle.wait(10)
            assert handle.done

    await asyncio.to_thread(scenario)


async def test_a_finished_handle_answers_after_close_without_a_new_loop(
    server: LocalServer,
) -> None:
    def loop_threads() -> list[str]:
        return [t.name for t in threading.enumerate() if t.name.startswith("sayna-sync-loop")]

    def broken() -> Iterator[str]:
        raise RuntimeError("the LLM connection dropped")
        yield  # (a generator)

    def scenario() -> None:
        client = make_sync(server)
        client.connect()
        handle = client.speak("one two three four five")
        failed = client.speak_stream(broken())
        with pytest.raises(RuntimeError, match="LLM connection dropped"):
            failed.wait(10)
        client.close()  # lets the speech play out, then ends the loop thread
        threads = set(loop_threads())
        handle.wait(1)
        assert handle.done
        assert not handle.interrupted
        with pytest.raises(RuntimeError, match="LLM connection dropped"):
            failed.wait(1)  # raises what it raised, as before the close
        assert set(loop_threads()) <= threads  # no loop was started again for them
        assert not client.connected

    await asyncio.to_thread(scenario)


async def test_close_does_not_wait_for_an_iterator_stuck_in_next(server: LocalServer) -> None:
    reader = threading.current_thread()  # (the thread reading the iterator, below)
    stuck = threading.Event()
    released = threading.Event()
    closed = threading.Event()

    def llm() -> Iterator[str]:
        yield "Sure. "
        yield "Let me check that for you"
        nonlocal reader
        reader = threading.current_thread()
        stuck.set()
        released.wait(60)  # the LLM's HTTP call hangs (no timeout set)
        yield " and more."

    def scenario() -> None:
        client = make_sync(server)
        client.connect()
        handle = client.speak_stream(llm())
        assert stuck.wait(WAIT)
        handle.interrupt()
        handle.wait(5)
        assert handle.interrupted
        closing = threading.Thread(target=lambda: (client.close(), closed.set()), daemon=True)
        closing.start()
        try:
            # close() ends the loop thread without waiting for the blocked next(), which
            # finishes on its own thread later (its piece dropped).
            assert closed.wait(WAIT), "close() waited for the blocked iterator"
        finally:
            released.set()
            closing.join(WAIT)
        # Its next() returned: the reader thread ended (the piece went nowhere).
        eventually_sync(lambda: reader.name not in [t.name for t in threading.enumerate()])

    await asyncio.to_thread(scenario)


async def test_leaving_with_on_an_error_does_not_wait_for_a_stuck_iterator(
    server: LocalServer,
) -> None:
    stuck = threading.Event()
    released = threading.Event()
    left = threading.Event()

    def llm() -> Iterator[str]:
        yield "Sure. "
        stuck.set()
        released.wait(60)
        yield "never"

    def fail_inside_with() -> None:
        with make_sync(server) as client:
            client.connect()
            client.speak_stream(llm())
            assert stuck.wait(WAIT)
            raise KeyError("the application failed")  # the with-block aborts the client

    def leave_on_error() -> None:
        with pytest.raises(KeyError):
            fail_inside_with()
        left.set()

    def scenario() -> None:
        leaving = threading.Thread(target=leave_on_error, daemon=True)
        leaving.start()
        try:
            assert left.wait(WAIT), "abort() waited for the blocked iterator"
        finally:
            released.set()
            leaving.join(WAIT)

    await asyncio.to_thread(scenario)
