"""Turns, waiting for playback, drain() and latency metrics against the local server."""

from __future__ import annotations

import asyncio

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient, SaynaConnectionClosedError, STTResultMessage, Turn
from sayna_client.server import Faults, LocalServer

from .conftest import make_client

FRAME = 640  # 20 ms at 16 kHz mono


async def _speak_and_collect(client: SaynaClient, text: str) -> bytes:
    audio = bytearray()
    before = client.metrics.tts_audio_bytes
    remove = client.register_on_tts_audio(audio.extend)
    await client.speak(text, wait=True, timeout=10)
    await eventually(lambda: len(audio) == client.metrics.tts_audio_bytes - before)
    remove()
    return bytes(audio)


async def _feed(client: SaynaClient, pcm: bytes, silence_ms: int = 1000) -> None:
    pcm = pcm + b"\x00" * (16 * 2 * silence_ms)
    pcm += b"\x00" * (-len(pcm) % FRAME)
    for i in range(0, len(pcm), FRAME):
        await client.on_audio_input(pcm[i : i + FRAME])


async def test_turns_join_interim_and_final_results(connected: SaynaClient) -> None:
    turns = connected.turns()
    results: list[STTResultMessage] = []
    connected.register_on_stt_result(results.append)
    audio = await _speak_and_collect(connected, "one two three")
    await _feed(connected, audio)
    turn = await asyncio.wait_for(turns.__anext__(), 10)
    assert isinstance(turn, Turn)
    assert turn.text == "word word word"
    assert turn.segments == ("word word word",)
    assert turn.interim_count >= 1
    assert turn.confidence == pytest.approx(0.99)
    assert turn.ended_at >= turn.started_at
    assert turn.duration >= 0
    await eventually(lambda: results and results[-1].is_final)
    # Protocol 6.8: the turn ends in a final, speech-final result carrying its text.
    assert (results[-1].is_final, results[-1].is_speech_final) == (True, True)
    assert results[-1].transcript == "word word word"


async def test_two_turns_and_turn_callback(connected: SaynaClient) -> None:
    seen: list[Turn] = []
    connected.on("turn", seen.append)
    audio_a = await _speak_and_collect(connected, "a b")
    audio_b = await _speak_and_collect(connected, "c d e f")
    await _feed(connected, audio_a)
    await _feed(connected, audio_b)
    await connected.drain(timeout=10)
    await eventually(lambda: len(seen) == 2)
    assert [t.text for t in seen] == ["word word", "word word word word"]
    assert connected.metrics.turns == 2


async def test_speak_wait_returns_after_playback_complete(
    connected: SaynaClient, server: LocalServer
) -> None:
    await connected.speak("hello there friend", wait=True, timeout=10)
    record = server.records.last_session
    assert record.sent_of_type("tts_playback_complete")
    metrics = connected.metrics
    assert metrics.speak_to_first_audio_last is not None
    assert metrics.speak_to_playback_complete_last is not None
    assert metrics.speak_to_playback_complete_last >= metrics.speak_to_first_audio_last
    assert metrics.tts_audio_bytes == record.sent_audio_bytes


async def test_clear_ends_playback_waits(connected: SaynaClient) -> None:
    waiter = asyncio.ensure_future(connected.speak("a long sentence " * 20, wait=True))
    await eventually(lambda: connected.metrics.tts_audio_frames, what="speech is playing")
    await connected.clear()
    await asyncio.wait_for(waiter, 5)


async def test_drain_returns_at_once_when_idle(connected: SaynaClient) -> None:
    await asyncio.wait_for(connected.drain(settle=0.05), 5)


async def test_drain_waits_for_the_turn_to_end(connected: SaynaClient) -> None:
    audio = await _speak_and_collect(connected, "x y z")
    results: list[STTResultMessage] = []
    connected.register_on_stt_result(results.append)
    await _feed(connected, audio, silence_ms=100)  # not enough silence to end the turn
    await eventually(lambda: results, what="a result: the turn has begun")
    drained = asyncio.ensure_future(connected.drain(timeout=10))
    await asyncio.sleep(0.1)  # the scenario: no more audio for a while, the turn stays open
    assert not drained.done()
    await _feed(connected, b"", silence_ms=1000)
    await drained
    assert any(r.is_speech_final for r in results)


async def test_metrics_cover_the_session(connected: SaynaClient) -> None:
    audio = await _speak_and_collect(connected, "m n")
    await _feed(connected, audio)
    await connected.drain(timeout=10)
    m = connected.metrics
    assert m.connect_to_ready is not None
    assert m.connect_to_ready > 0
    assert m.audio_to_first_interim is not None
    assert m.audio_to_first_final is not None
    assert m.audio_to_first_final >= m.audio_to_first_interim
    assert m.audio_frames_sent == m.audio_bytes_sent // FRAME
    assert m.as_dict()["turns"] == 1


async def test_waits_fail_when_the_session_closes(server: LocalServer) -> None:
    server.faults = Faults(drop_connection_after_frames=2)
    async with make_client(server) as c:
        await c.connect()
        with pytest.raises(SaynaConnectionClosedError):
            await c.speak("one two three four", wait=True, timeout=10)


async def test_speak_wait_includes_async_audio_callbacks(
    connected: SaynaClient, server: LocalServer
) -> None:
    handled: list[int] = []

    async def slow_player(chunk: bytes) -> None:
        await asyncio.sleep(0.002)
        handled.append(len(chunk))

    connected.register_on_tts_audio(slow_player)
    await connected.speak("one two three four five", wait=True, timeout=20)
    assert sum(handled) == server.records.last_session.sent_audio_bytes


async def test_drain_includes_async_callbacks(connected: SaynaClient) -> None:
    finished: list[bool] = []

    async def slow(_: object) -> None:
        await asyncio.sleep(0.3)
        finished.append(True)

    connected.register_on_tts_playback_complete(slow)
    await connected.speak("a", wait=True, timeout=10)
    await connected.drain(timeout=10, settle=0.05)
    assert finished == [True]


def test_the_first_audio_hook_outlives_a_completion_and_fires_once() -> None:
    # The session times the first TTS frame after a speak (speak -> first audio) and,
    # for the turn metrics, the first frame after a reply was spoken: a completion that
    # arrives in between ends the speak's wait but not the hook's.
    from sayna_client.realtime.conversation import SessionTracker

    ticks = iter(range(100))
    tracker = SessionTracker(clock=lambda: float(next(ticks)))
    seen: list[float] = []

    class Listener:
        def on_first_audio(self, now: float) -> None:
            seen.append(now)

    tracker.speak_sent()  # t=0
    tracker.on_next_audio(Listener())
    tracker.on_playback_complete(None)  # t=1: the speak's wait ends
    tracker.on_tts_audio(b"ab")  # t=2
    tracker.on_tts_audio(b"cd")  # no clock read
    assert seen == [2.0]
    metrics = tracker.metrics
    assert metrics.speak_to_first_audio == []  # the completion came before any audio
    assert (metrics.tts_audio_frames, metrics.tts_audio_bytes) == (2, 4)
    assert tracker.tts_received() == (2, 4)
    assert tracker.activity == 2
    tracker.speak_sent()  # t=3
    tracker.on_tts_audio(b"e")  # t=4
    assert metrics.speak_to_first_audio == [1.0]
    assert seen == [2.0]
    tracker.connecting()  # a new session: its own counts, the client's carry on
    tracker.on_tts_audio(b"fg")
    assert (tracker.metrics.tts_audio_frames, tracker.tts_received()) == (1, (4, 7))
    assert tracker.activity == 4


def test_speak_to_first_audio_is_timed_only_from_a_speak_with_nothing_outstanding() -> None:
    # A speak sent while earlier speech still plays used to be timed to the next frame,
    # which is the earlier speech's audio: TTS frames say nothing of their speak.
    from sayna_client.realtime.conversation import SessionTracker

    ticks = iter(range(100))
    tracker = SessionTracker(clock=lambda: float(next(ticks)))
    tracker.speak_sent()  # t=0
    tracker.on_tts_audio(b"ab")  # t=1: its first audio
    tracker.speak_sent()  # queued behind the first: not timed
    tracker.on_tts_audio(b"cd")  # the first speech's audio still
    tracker.on_playback_complete(None)  # t=2
    tracker.speak_sent()  # t=3
    tracker.on_tts_audio(b"ef")  # t=4
    assert tracker.metrics.speak_to_first_audio == [1.0, 1.0]
    assert tracker.metrics.speak_to_playback_complete == [2.0]


class _Input:
    """What the session's audio input counts (``AudioCounts``)."""

    def __init__(self) -> None:
        self.frames_sent = 0
        self.bytes_sent = 0

    def send(self, size: int) -> None:
        self.frames_sent += 1
        self.bytes_sent += size


def test_audio_is_unanswered_from_a_frame_sent_to_the_next_result() -> None:
    # drain() waits for results while audio went out since the last one: the tracker
    # notes the input's own count at each result (not through the metrics' descriptor).
    from sayna_client.realtime.conversation import SessionTracker, count_audio_sent

    tracker = SessionTracker(clock=lambda: 0.0)
    source = _Input()
    assert not tracker.audio_unanswered  # nothing sent
    tracker.audio_started(source)
    count_audio_sent(tracker.metrics, source)
    assert not tracker.audio_unanswered
    source.send(640)
    assert tracker.audio_unanswered
    assert tracker.metrics.audio_frames_sent == 1
    tracker.on_stt_result(
        STTResultMessage(transcript="hi", is_final=False, is_speech_final=False, confidence=0.9)
    )
    assert not tracker.audio_unanswered
    source.send(640)
    source.send(640)
    assert tracker.audio_unanswered
    tracker.audio_answered()  # finish_audio(): the recogniser went quiet
    assert not tracker.audio_unanswered
    source.send(640)
    assert tracker.audio_unanswered
    tracker.connecting()  # a new session: nothing of it sent yet
    assert not tracker.audio_unanswered
    assert tracker.metrics.audio_frames_sent == 0


def test_tts_counts_of_the_metrics_are_the_sessions_own_and_copies_are_snapshots() -> None:
    # The tracker counts TTS frames on itself (the per-frame observer's own object);
    # the session's metrics read those counts when looked at.
    import copy
    import pickle

    from sayna_client.realtime.conversation import SessionTracker

    tracker = SessionTracker(clock=lambda: 0.0)
    first = tracker.metrics
    tracker.on_tts_audio(b"abc")
    tracker.on_tts_audio(b"de")
    snapshot = copy.copy(first)
    assert (first.tts_audio_frames, first.tts_audio_bytes) == (2, 5)
    assert first.as_dict()["tts_audio_bytes"] == 5
    tracker.on_tts_audio(b"f")
    assert (snapshot.tts_audio_frames, snapshot.tts_audio_bytes) == (2, 5)
    assert (first.tts_audio_frames, first.tts_audio_bytes) == (3, 6)
    first.tts_audio_bytes = 100  # a value assigned counts on from there
    tracker.on_tts_audio(b"gh")
    assert first.tts_audio_bytes == 102
    tracker.connecting()  # the first session's metrics keep their counts
    tracker.on_tts_audio(b"ijkl")
    assert (first.tts_audio_frames, first.tts_audio_bytes) == (4, 102)
    second = tracker.metrics
    assert (second.tts_audio_frames, second.tts_audio_bytes) == (1, 4)
    assert tracker.tts_received() == (5, 12)
    assert tracker.tts_bytes_total() == 12
    restored = pickle.loads(pickle.dumps(second))
    tracker.on_tts_audio(b"m")
    assert (restored.tts_audio_frames, restored.tts_audio_bytes) == (1, 4)
    assert (second.tts_audio_frames, second.tts_audio_bytes) == (2, 5)


def test_latencies_from_the_first_audio_and_the_clock_reads_of_results() -> None:
    # audio -> first result and audio -> first final are measured once per session;
    # interims of a turn under way read no clock once both are measured.
    from sayna_client.realtime.conversation import SessionTracker

    reads: list[float] = []

    def clock() -> float:
        reads.append(float(len(reads)))
        return reads[-1]

    def result(text: str, final: bool, speech_final: bool = False) -> STTResultMessage:
        return STTResultMessage(
            transcript=text, is_final=final, is_speech_final=speech_final, confidence=0.5
        )

    tracker = SessionTracker(clock=clock)
    tracker.audio_started(_Input())  # t=0
    tracker.on_stt_result(result("he", False))  # t=1: the turn's first result
    tracker.on_stt_result(result("hel", False))  # t=2: the first final is still to come
    tracker.on_stt_result(result("", True))  # t=3: a final without words does not count
    tracker.on_stt_result(result("hello", True))  # t=4
    metrics = tracker.metrics
    assert (metrics.audio_to_first_interim, metrics.audio_to_first_final) == (1.0, 4.0)
    tracker.on_stt_result(result("th", False))
    tracker.on_stt_result(result("there", False))
    assert len(reads) == 5  # no clock for interims of a turn under way
    tracker.audio_started(_Input())  # a new lane of the same session: nothing restarts
    assert len(reads) == 5
    turn = tracker.on_stt_result(result("", False, speech_final=True))  # t=5
    assert turn is not None
    assert (turn.text, turn.started_at, turn.ended_at, turn.interim_count) == ("hello", 1.0, 5.0, 5)
    assert (metrics.audio_to_first_interim, metrics.audio_to_first_final, metrics.turns) == (
        1.0,
        4.0,
        1,
    )
    tracker.on_stt_result(result("again", False))  # t=6: the next turn's first result
    assert len(reads) == 7
    assert metrics.audio_to_first_interim == 1.0


def test_a_speech_final_not_marked_final_still_brings_its_words() -> None:
    # A speech-final is a final (protocol 6.8); a peer that sends one with is_final
    # false still ends a turn with its text.
    from sayna_client.realtime.conversation import SessionTracker

    tracker = SessionTracker(clock=lambda: 0.0)
    tracker.on_stt_result(
        STTResultMessage(transcript="yes", is_final=False, is_speech_final=False, confidence=0.5)
    )
    turn = tracker.on_stt_result(
        STTResultMessage(
            transcript="yes please", is_final=False, is_speech_final=True, confidence=0.75
        )
    )
    assert turn is not None
    assert (turn.text, turn.segments, turn.confidence) == ("yes please", ("yes please",), 0.75)
