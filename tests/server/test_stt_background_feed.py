"""A recogniser that decodes slowly (``feed_may_wait``) is fed from a background task:
the session keeps reading its socket while it decodes, frames that arrive meanwhile are
fed together, in order, and a failure reaches the client as an ``error``."""

from __future__ import annotations

import asyncio
from typing import Any, Optional

from sayna_client.server.engines.base import STTStream, Transcript
from sayna_client.server.voice import SpeechFinalGate


class _SlowStream(STTStream):
    """Each ``feed`` waits until the test releases it; it records what it was given."""

    feed_may_wait = True

    def __init__(self) -> None:
        self.fed: list[bytes] = []
        self.started = asyncio.Event()
        self.changed = asyncio.Event()  # set on every call
        self.release = asyncio.Event()
        self.fail_with: Optional[Exception] = None

    async def feed(self, audio: bytes) -> list[Transcript]:
        self.fed.append(audio)
        self.started.set()
        self.changed.set()
        await self.release.wait()
        self.release.clear()
        if self.fail_with is not None:
            raise self.fail_with
        return [Transcript.speech_final(audio.decode(), 0.9)]

    async def finish(self) -> list[Transcript]:
        return []


class _Sent(list):  # type: ignore[type-arg]
    """The gate's ``emit``: records messages and signals each one."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    def __call__(self, message: dict[str, Any]) -> None:
        self.append(message)
        self.changed.set()


async def _until(predicate: Any, changed: asyncio.Event) -> None:
    """Wait (at most 5 s per step) until ``predicate()`` holds; ``changed`` is set by
    every change that could make it hold."""
    while not predicate():
        changed.clear()
        await asyncio.wait_for(changed.wait(), 5)


async def test_feed_returns_while_the_recogniser_decodes_and_joins_waiting_frames() -> None:
    sent = _Sent()
    stream = _SlowStream()
    gate = SpeechFinalGate(stream, sent)
    try:
        await asyncio.wait_for(gate.feed(b"a"), 5)  # returns before the decode
        await asyncio.wait_for(stream.started.wait(), 5)
        for frame in (b"b", b"c"):
            await asyncio.wait_for(gate.feed(frame), 5)  # the recogniser is still busy
        assert stream.fed == [b"a"]
        assert sent == []
        stream.release.set()
        await _until(lambda: len(stream.fed) >= 2, stream.changed)
        assert stream.fed == [b"a", b"bc"]  # in order, the waiting frames as one
        stream.release.set()
        await _until(lambda: len(sent) >= 2, sent.changed)
        assert [m["transcript"] for m in sent] == ["a", "bc"]
    finally:
        gate.close()


async def test_a_failed_background_feed_is_an_error_message_and_feeding_goes_on() -> None:
    sent = _Sent()
    stream = _SlowStream()
    stream.fail_with = RuntimeError("decoder crashed")
    gate = SpeechFinalGate(stream, sent)
    try:
        await gate.feed(b"a")
        await asyncio.wait_for(stream.started.wait(), 5)
        stream.release.set()
        await _until(lambda: bool(sent), sent.changed)
        assert sent == [{"type": "error", "message": "Failed to process audio: decoder crashed"}]
        stream.fail_with = None
        await gate.feed(b"z")
        await _until(lambda: len(stream.fed) >= 2, stream.changed)
        stream.release.set()
        await _until(lambda: len(sent) >= 2, sent.changed)
        assert sent[1]["transcript"] == "z"
    finally:
        gate.close()


async def test_close_stops_feeding_and_drops_queued_frames() -> None:
    sent = _Sent()
    stream = _SlowStream()
    gate = SpeechFinalGate(stream, sent)
    await gate.feed(b"a")
    await asyncio.wait_for(stream.started.wait(), 5)
    await gate.feed(b"b")
    gate.close()
    stream.release.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert stream.fed == [b"a"]
    assert sent == []


async def test_the_gate_counts_audio_only_once_the_recogniser_has_finished_with_it() -> None:
    sent = _Sent()
    stream = _SlowStream()
    woken: list[int] = []
    gate = SpeechFinalGate(stream, sent, on_decoded=lambda: woken.append(gate.decoded_bytes))
    try:
        await asyncio.wait_for(gate.feed(b"ab"), 5)
        await asyncio.wait_for(stream.started.wait(), 5)
        await asyncio.wait_for(gate.feed(b"c"), 5)
        assert (gate.decoded_bytes, gate.results_sent) == (0, 0)  # still decoding
        stream.release.set()
        await _until(lambda: len(stream.fed) >= 2, stream.changed)
        assert (gate.decoded_bytes, gate.results_sent) == (2, 1)  # "ab" done, "c" decoding
        stream.fail_with = RuntimeError("engine broke")
        stream.release.set()
        await _until(lambda: len(sent) >= 2, sent.changed)
        # A failed decode is finished with too (its error was sent), with no result.
        assert (gate.decoded_bytes, gate.results_sent) == (3, 1)
        assert sent[1] == {"type": "error", "message": "Failed to process audio: engine broke"}
        assert woken == [2, 3]
    finally:
        gate.close()
