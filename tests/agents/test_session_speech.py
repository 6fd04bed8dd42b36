"""A session's speech queue and turn metrics: their hooks are methods reading the session.

Issue #19: the hooks were a bound method each (12 per session that spoke, with a link
object, a hook object and a weak reference) for every full collection to walk. These
tests pin down that the hooks still do what they did: the sends, the provider names,
the records to the callbacks, a hook replaced by assignment, and no cycle through the
tracker, which holds the metrics while a reply's first byte is awaited.
"""

from __future__ import annotations

import dataclasses
import gc
import types
import weakref

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient
from sayna_client.agents import SpeechQueue, TurnMetrics, TurnRecord
from sayna_client.protocol.events import STTResultMessage
from sayna_client.server import LocalServer

from .conftest import make_client


def speech_final(text: str) -> STTResultMessage:
    return STTResultMessage(transcript=text, is_final=True, is_speech_final=True, confidence=1.0)


def hooks_held(obj: object) -> list[object]:
    """The bound methods and closures ``obj`` holds in its own attributes."""
    return [
        value
        for value in vars(obj).values()
        if isinstance(value, (types.MethodType, types.FunctionType))
    ]


async def test_the_session_queue_and_metrics_hold_no_bound_method(agent: SaynaClient) -> None:
    handle = await agent.speak("one two", wait=True)
    await handle
    queue, metrics = agent.speech, agent.turn_metrics
    assert isinstance(queue, SpeechQueue)
    assert isinstance(metrics, TurnMetrics)
    assert hooks_held(queue) == []
    assert hooks_held(metrics) == []
    # The hooks answer as before: the configs' provider names, the TTS counts.
    assert metrics.providers() == ("deepgram/nova-2", "deepgram")
    assert metrics.synthesized is not None
    assert metrics.synthesized() == agent.metrics.tts_audio_bytes > 0
    assert metrics.tts_rate() == 32000.0  # linear16 at 16 kHz
    assert metrics.summary()["usage"]["deepgram"]["characters"] == len("one two")
    # Every field of the dataclass reads (repr and == go through them).
    for item in dataclasses.fields(TurnMetrics):
        getattr(metrics, item.name)
    assert repr(metrics).startswith("SessionTurnMetrics(turns=[]")


async def test_a_hook_assigned_on_the_session_metrics_replaces_its_method(
    agent: SaynaClient,
) -> None:
    metrics = agent.turn_metrics
    events: list[TurnRecord] = []
    agent.on("turn_metrics", events.append)
    metrics.providers = lambda: ("my-stt", "my-tts")
    metrics.on_stt_result(speech_final("first"))
    metrics.on_speak("hi")
    assert metrics.usage["my-tts"].characters == len("hi")
    metrics.on_stt_result(speech_final("second"))  # closes the first: to the callbacks
    await eventually(lambda: events, what="the first record")
    assert [record.transcript for record in events] == ["first"]
    mine: list[TurnRecord] = []
    metrics.emit = mine.append
    metrics.on_stt_result(speech_final("third"))  # closes the second: to the new hook
    assert [record.transcript for record in mine] == ["second"]
    await agent.speak("a", wait=True)  # the callbacks have had all there is
    assert [record.transcript for record in events] == ["first"]


async def test_a_providers_method_of_a_subclass_names_the_usage(
    agent: SaynaClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A speak reads the TTS config's name itself, unless providers is not the session's
    # own method: assigned on the instance (above), or replaced on the class.
    metrics = agent.turn_metrics
    monkeypatch.setattr(type(metrics), "providers", lambda _self: ("my-stt", "class-tts"))
    metrics.on_speak("hello")
    assert metrics.usage["class-tts"].characters == len("hello")
    monkeypatch.undo()
    metrics.on_speak("hi")
    assert metrics.usage["deepgram"].characters == len("hi")


async def test_a_client_awaiting_a_replys_first_byte_is_freed_by_reference_counting(
    server: LocalServer,
) -> None:
    # While a reply's first byte is awaited the tracker holds the session's metrics (it
    # tells them the time of the next frame): they must not hold the tracker back.
    client = make_client(server)
    await client.connect()
    metrics = client.turn_metrics
    metrics.on_stt_result(speech_final("hello"))
    metrics.on_speak("hi there")  # the reply's first speak: its first byte is awaited
    assert metrics.awaiting_audio
    await client.disconnect()
    gone = weakref.ref(client)
    del client, metrics
    gc.disable()
    try:
        assert gone() is None
    finally:
        gc.enable()
