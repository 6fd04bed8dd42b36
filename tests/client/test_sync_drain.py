"""``SaynaSyncClient.events()``/``turns()`` at the client's close: what their queues held
then still arrives, in order, as from ``SaynaClient.events()``, then the iteration ends.

The server runs on the test's event loop; the sync client's calls run in a worker
thread (``asyncio.to_thread``) while that loop keeps serving.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.waiting import eventually_sync
from sayna_client import (
    ReconnectPolicy,
    SaynaSyncClient,
    Timeouts,
    TTSAudio,
    TTSPlaybackCompleteMessage,
)
from sayna_client.server import Faults, LocalServer

from .conftest import stt, tts

FRAME = bytes(640)  # 20 ms of 16 kHz mono PCM


def loop_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("sayna-sync-loop")]


@pytest.fixture(autouse=True)
def _no_leftover_loop_threads() -> Iterator[None]:
    yield
    eventually_sync(lambda: not loop_threads(), what="the loop threads ended")


def make_sync(server: LocalServer, **kwargs: Any) -> SaynaSyncClient:
    kwargs.setdefault("timeouts", Timeouts(connect=5, ready=10, request=10, close=2))
    return SaynaSyncClient(server.url, stt(), tts(sample_rate=16000), **kwargs)


def _in_an_outage_with_held_audio(server: LocalServer) -> SaynaSyncClient:
    """A client whose session the server dropped (at its first TTS chunk), reconnecting
    to a server that never answers ``ready``, holding one frame of audio."""
    server.faults = Faults(drop_connection_after_frames=2)  # ready, then one audio chunk
    c = make_sync(server, reconnect=ReconnectPolicy(initial_backoff=0.05, jitter=0))
    c.connect()
    server.faults = Faults(never_send_ready=True)
    return c


def _hold_audio(server: LocalServer, c: SaynaSyncClient) -> None:
    eventually_sync(
        lambda: len(server.records.sessions) == 2 and server.records.last_session.config,
        what="the reconnection sent its config",
    )
    c.on_audio_input(FRAME)  # held for a session that will never be ready


def kinds(events: list[Any]) -> list[str]:
    return [e.type for e in events if not isinstance(e, TTSAudio)]


async def test_a_reader_blocked_in_next_gets_the_close_of_a_disconnect_in_an_outage(
    server: LocalServer,
) -> None:
    """The reader took ``AudioDropped`` while ``disconnect()`` ran and asked for the next
    event when the loop was stopping: it still gets the client's ``ConnectionClosed``."""

    def scenario() -> list[Any]:
        c = _in_an_outage_with_held_audio(server)
        seen: list[Any] = []
        reconnecting = threading.Event()
        events = c.events()

        def read() -> None:
            for event in events:
                seen.append(event)
                if event.type == "reconnecting":
                    reconnecting.set()

        reader = threading.Thread(target=read)
        reader.start()
        c.speak("hello there")
        assert reconnecting.wait(10)
        _hold_audio(server, c)
        c.disconnect()
        reader.join(10)
        assert not reader.is_alive()
        return seen

    seen = await asyncio.to_thread(scenario)
    assert kinds(seen) == ["closed", "reconnecting", "audio_dropped", "closed"]
    assert (seen[-1].initiated_by_client, seen[-1].will_reconnect) == (True, False)


async def test_events_read_after_disconnect_are_those_queued_then(server: LocalServer) -> None:
    """As ``SaynaClient.events()`` after ``disconnect()``: the queued events, the client's
    close last, then the end; and the iterator starts no new loop thread."""

    def scenario() -> tuple[list[Any], list[threading.Thread]]:
        c = _in_an_outage_with_held_audio(server)
        events = c.events()
        c.speak("hello there")
        eventually_sync(lambda: c.reconnecting, what="the client is reconnecting")
        _hold_audio(server, c)
        c.disconnect()
        seen = list(events)
        assert next(events, None) is None  # ended for good
        return seen, loop_threads()

    seen, threads = await asyncio.to_thread(scenario)
    assert kinds(seen) == ["closed", "reconnecting", "audio_dropped", "closed"]
    first = next(e for e in seen if e.type == "closed")
    assert (first.initiated_by_client, first.will_reconnect) == (False, True)
    assert (seen[-1].initiated_by_client, seen[-1].will_reconnect) == (True, False)
    assert threads == []


async def test_an_unread_timed_next_then_the_queue_arrive_in_order_after_close(
    server: LocalServer,
) -> None:
    """A ``next()`` that timed out stays pending on the loop and takes the first event;
    the ones after it were kept at the close: all arrive, in the server's order."""

    def scenario() -> list[Any]:
        with make_sync(server) as c:
            c.connect()
            timed = c.events(timeout=0.05)
            whole = c.events()
            with pytest.raises(Exception, match="received nothing"):
                next(timed)
            c.speak("one two three", wait=True, timeout=10)
        return [list(timed), list(whole)]

    timed, whole = await asyncio.to_thread(scenario)
    assert [e.type for e in timed] == [e.type for e in whole]
    assert [e.type for e in whole if not isinstance(e, TTSAudio)][-1] == "closed"
    assert any(isinstance(e, TTSPlaybackCompleteMessage) for e in whole)
    assert sum(isinstance(e, TTSAudio) for e in whole) > 0


async def test_a_turn_queued_at_close_is_still_yielded(server: LocalServer) -> None:
    def scenario() -> list[str]:
        c = make_sync(server)
        c.connect()
        audio = bytearray()
        with c.events(timeout=10) as events:
            c.speak("one two")
            for event in events:
                if isinstance(event, TTSAudio):
                    audio += event.data
                elif isinstance(event, TTSPlaybackCompleteMessage):
                    break
        turns = c.turns()
        turned = threading.Event()
        c.on("turn", lambda _: turned.set())
        pcm = bytes(audio) + bytes(16000 * 2)  # a second of silence ends the turn
        pcm += bytes(-len(pcm) % len(FRAME))
        for i in range(0, len(pcm), len(FRAME)):
            c.on_audio_input(pcm[i : i + len(FRAME)])
        assert turned.wait(10)
        c.close()
        return [turn.text for turn in turns]

    assert await asyncio.to_thread(scenario) == ["word word"]
