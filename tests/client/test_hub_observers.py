"""The hub's inline observers: kept as object and function, called in order, removed exactly.

An observer registered as a bound method is kept as its object and its class's function
(issue #19: no bound method per observer per session for the cycle collector to walk);
these tests pin down that this changes nothing of what observers see.
"""

from __future__ import annotations

import asyncio
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from helpers.waiting import eventually
from sayna_client.protocol.events import STTResultMessage, TTSPlaybackCompleteMessage
from sayna_client.realtime.hub import EventHub


@dataclass
class Recorder:
    """An observer object that compares equal to another with the same record (as the
    SDK's dataclass observers do): removal must go by identity, not equality."""

    seen: list[str] = field(default_factory=list)

    def on_result(self, event: Any) -> None:
        self.seen.append(f"result:{event.transcript}")

    def on_complete(self, _event: Any) -> None:
        self.seen.append("complete")


def result(text: str) -> STTResultMessage:
    return STTResultMessage(transcript=text, is_final=True, is_speech_final=False, confidence=1.0)


def test_bound_methods_are_kept_as_object_and_function_and_called_in_order() -> None:
    hub = EventHub()
    order: list[str] = []
    first, second = Recorder(order), Recorder(order)
    hub.observe("stt_result", first.on_result)
    hub.observe("tts_playback_complete", first.on_complete)
    hub.observe("stt_result", second.on_result)
    # No bound method survives the registration: the hub holds the objects.
    assert not [t for t in hub._targets if isinstance(t, types.MethodType)]
    assert [id(t) for t in hub._targets[1:]] == [id(first), id(first), id(second)]
    hub.publish(result("a"))
    hub.publish(TTSPlaybackCompleteMessage(timestamp=1))
    assert order == ["result:a", "result:a", "complete"]


def test_unobserving_removes_that_object_only_even_when_another_is_equal() -> None:
    hub = EventHub()
    first, second = Recorder(), Recorder()
    assert first == second  # equal records: the hub must tell them apart by identity
    hub.observe("stt_result", first.on_result)
    hub.observe("stt_result", second.on_result)
    hub.unobserve("stt_result", second.on_result)  # a new bound method, same object
    hub.unobserve("tts_playback_complete", first.on_result)  # another type: no effect
    hub.unobserve("stt_result", Recorder().on_result)  # never observing: no effect
    hub.publish(result("b"))
    assert first.seen == ["result:b"]
    assert second.seen == []


def test_plain_callables_observe_and_are_removed_by_equality() -> None:
    hub = EventHub()
    seen: list[Any] = []
    hub.observe("stt_result", seen.append)
    hub.publish(result("c"))
    hub.unobserve("stt_result", seen.append)  # a new builtin method, equal to the first
    hub.publish(result("d"))
    assert [event.transcript for event in seen] == ["c"]


def test_an_observer_removed_while_an_event_is_published_still_gets_that_event() -> None:
    hub = EventHub()
    later = Recorder()

    class Remover:
        def on_result(self, event: Any) -> None:
            hub.unobserve("stt_result", later.on_result)

    remover = Remover()
    hub.observe("stt_result", remover.on_result)
    hub.observe("stt_result", later.on_result)
    hub.publish(result("e"))  # routed to both before the removal
    hub.publish(result("f"))
    assert later.seen == ["result:e"]


def test_hubs_with_the_same_observer_functions_share_one_plan() -> None:
    hubs = [EventHub(), EventHub()]
    for hub in hubs:
        recorder = Recorder()
        hub.observe("stt_result", recorder.on_result)
        hub.observe("tts_playback_complete", recorder.on_complete)
    assert hubs[0]._plan is hubs[1]._plan
    assert hubs[0]._targets != hubs[1]._targets


class _Event:
    def __init__(self, type_: str) -> None:
        self.type = type_


@pytest.mark.parametrize("how", ["frame by frame", "as a run"])
async def test_a_run_put_while_nothing_consumes_wakes_a_barriers_waiter_after_its_consumer(
    how: str,
) -> None:
    # A plain callback ended its pass with a BaseException: its event and a barrier behind
    # it stay queued, with nothing consuming them ("the next put starts afresh"). Two
    # frames then overflow the queue (max 2), which sheds the barrier: the consumer the
    # first frame starts runs before the barrier's waiter, whichever way they are put.
    log: list[Any] = []
    hub = EventHub(max_queue=2)

    def on_event(event: Any) -> None:
        log.append("event")
        raise asyncio.CancelledError  # a BaseException: it ends the pass

    hub.add_callback(on_event, frozenset({"x"}))
    hub.add_callback(lambda data: log.append(data), frozenset({"tts_audio"}), audio_bytes=True)
    dispatcher = hub._dispatcher
    dispatcher.put(_Event("x"))
    caught_up = dispatcher.barrier()
    assert caught_up is not None
    caught_up.add_done_callback(lambda _: log.append("barrier"))
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, _context: None)  # (the pass's CancelledError)
    await eventually(lambda: log == ["event"], what="the pass ended by the callback")
    if how == "as a run":
        dispatcher.put_audio_run([b"f1", b"f2"])
    else:
        dispatcher.put_audio(b"f1")
        dispatcher.put_audio(b"f2")
    await eventually(lambda: len(log) == 4, what="the frames and the barrier")
    assert log == ["event", b"f1", b"f2", "barrier"]
