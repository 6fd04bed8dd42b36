"""Turn latency and usage metrics, measured on a scripted dialog with the local server."""

from __future__ import annotations

import gc
import itertools
from typing import Callable

import pytest

from helpers.internals import event_hub
from helpers.waiting import eventually
from sayna_client import SaynaClient
from sayna_client.agents import TurnHistory, TurnMetrics, TurnRecord, percentile
from sayna_client.protocol.events import STTResultMessage
from sayna_client.realtime.conversation import Turn
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WORD_BYTES, Peer


async def test_a_turn_and_its_reply_are_measured(agent: SaynaClient, server: LocalServer) -> None:
    records: list[TurnRecord] = []
    agent.on("turn_metrics", records.append)
    replies = 0

    async def answer(result: object) -> None:
        nonlocal replies
        if getattr(result, "is_speech_final", False):
            replies += 1
            await agent.speak("fine thanks")

    agent.register_on_stt_result(answer)
    server.script_speech("how are you")
    pcm = render_words(["x"] * 3, RATE) + bytes(RATE)
    for start in range(0, len(pcm), 640):
        await agent.on_audio_input(pcm[start : start + 640])
    await server.records.wait_for(lambda: records, 10)
    (record,) = records
    assert record.transcript == "how are you"
    assert record.characters == len("fine thanks")
    assert record.end_to_speak is not None
    assert record.tts_first_byte is not None
    assert record.end_to_first_audio == pytest.approx(record.end_to_speak + record.tts_first_byte)
    assert record.stt_turn is not None
    assert record.stt_turn > 0
    assert agent.turn_metrics.turns == [record]
    summary = agent.turn_metrics.summary()
    assert summary["turns"] == 1
    assert summary["end_to_first_audio"] == {
        "count": 1,
        "p50": record.end_to_first_audio,
        "p95": record.end_to_first_audio,
    }
    await server.records.wait_for(lambda: agent.metrics.tts_audio_bytes >= 2 * WORD_BYTES, 10)
    usage = summary["usage"]
    assert set(usage) == {"deepgram/nova-2", "deepgram"}
    assert usage["deepgram"]["characters"] == len("fine thanks")
    assert usage["deepgram/nova-2"]["seconds_transcribed"] == pytest.approx(len(pcm) / 32000)
    later = agent.turn_metrics.summary()["usage"]["deepgram"]["seconds_synthesized"]
    assert later == pytest.approx(2 * 0.18)


async def test_a_turn_of_several_finals_is_the_records_measured_from_its_first_words(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # Deepgram's shape (protocol 6.8): the utterance is its is_final segments and the
    # speech-final holds the last one only, or nothing when Sayna forced it. The record
    # is the turn's, as the ``turn`` event tells it: its whole text, timed from its first
    # result with text (not from an empty result before it).
    server, client = peer
    turns: list[Turn] = []
    results: list[object] = []
    client.on("turn", turns.append)
    client.on("stt_result", results.append)
    await server.result("", final=False)
    await eventually(lambda: results, what="the empty result")
    await server.result("how are", final=True)
    await server.result("you", final=True)
    await server.result("", final=True, speech_final=True)  # forced: no text of its own
    await eventually(lambda: turns, what="the turn")
    (turn,) = turns
    record = client.turn_metrics.turns[-1]
    assert record.transcript == turn.text == "how are you"
    assert record.ended_at == turn.ended_at
    assert record.stt_turn is not None
    assert 0 < record.stt_turn < turn.duration
    await server.result("fine", final=True, speech_final=True)
    await eventually(lambda: len(turns) == 2, what="the second turn")
    assert [r.transcript for r in client.turn_metrics.turns] == ["how are you", "fine"]
    assert client.turn_metrics.turns[-1].stt_turn == 0.0  # its first words ended it


async def test_words_heard_in_interims_only_are_a_turn_to_measure(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # Noise (Deepgram: "um" as an interim, then an empty speech-final): no ``turn``
    # event, but the metrics measure it, so that the reply to it is timed from its end
    # and not from the turn before.
    server, client = peer
    records: list[TurnRecord] = []
    speech_finals: list[object] = []
    client.on("turn_metrics", records.append)
    client.on("stt_result", lambda r: r.is_speech_final and speech_finals.append(r))
    await server.result("hello", final=True, speech_final=True)
    await server.result("so um", final=False)
    await server.result("", final=True, speech_final=True)
    await eventually(lambda: len(speech_finals) == 2, what="the two speech-finals")
    await eventually(lambda: records, what="the first turn's record")
    assert [r.transcript for r in records] == ["hello"]  # closed, unanswered
    assert records[0].end_to_speak is None
    noise = client.turn_metrics.turns[-1]
    await client.speak("yes?")
    await server.got("speak")
    await server.audio(1)
    await eventually(lambda: len(records) == 2, what="the noise turn's record")
    assert records[1] is noise
    assert noise.transcript == ""
    assert noise.stt_turn is not None
    assert noise.stt_turn >= 0
    assert noise.end_to_speak is not None
    assert noise.end_to_first_audio is not None
    first_end = client.turn_metrics.turns[0].ended_at
    assert noise.ended_at > first_end  # timed from its own end


async def test_the_speech_adds_no_observer_of_results_or_completions(agent: SaynaClient) -> None:
    # Issue #19: the tracker tells the speech queue and its metrics of each turn's end
    # and each completion: no observer of their own on every result and completion
    # (CPU at 1,000 sessions).
    def observed(kind: str) -> int:
        return event_hub(agent)._plan.observer_types.count(kind)

    before = (observed("stt_result"), observed("tts_playback_complete"))
    await agent.speak("one two", wait=True)  # (makes the speech queue and its metrics)
    assert (observed("stt_result"), observed("tts_playback_complete")) == before == (1, 1)


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile([3.0], 0.95) == 3.0


def _turns(metrics: TurnMetrics, count: int, first: int = 0) -> None:
    """``count`` turns, each answered (speak, then its first audio byte)."""
    for index in range(first, first + count):
        words = f"turn {index}"
        metrics.on_stt_result(STTResultMessage(**_result(words, speech_final=False)))
        metrics.on_stt_result(STTResultMessage(**_result(words, speech_final=True)))
        metrics.on_speak("ok")
        metrics.on_tts_audio(640)


def _result(transcript: str, *, speech_final: bool) -> dict[str, object]:
    return {
        "transcript": transcript,
        "is_final": speech_final,
        "is_speech_final": speech_final,
        "confidence": 0.9,
    }


def _clock() -> Callable[[], float]:
    ticks = itertools.count()
    return lambda: float(next(ticks))


def test_the_turn_history_is_left_out_of_the_cycle_collectors_work() -> None:
    # Issue #19: at 1,000 sessions every closed turn's record stayed in the heap that
    # each full collection scans (up to 1,000 per session); closed turns are kept as
    # tuples of atoms, which the collector untracks, and read back as records.
    metrics = TurnMetrics(clock=_clock())
    _turns(metrics, 50)
    metrics.on_stt_result(STTResultMessage(**_result("still open", speech_final=True)))
    gc.collect()
    tracked = [o for o in gc.get_objects() if isinstance(o, TurnRecord)]
    assert tracked == [metrics.turns[-1]]  # only the turn being measured
    # Nor do the groups of rows stay tracked: the history holds tuples of atoms only (a
    # tuple is untracked once the tuples it holds are, and a collection may look at it
    # before them: one level of rows, groups, history per collection at worst).
    gc.collect()
    gc.collect()
    held = [o for o in gc.get_referents(metrics.turns) if not isinstance(o, type)]
    assert [o for o in held if gc.is_tracked(o)] == [metrics.turns[-1]]
    assert len(metrics.turns) == 51
    first = metrics.turns[0]
    assert first == TurnRecord(
        "turn 0",
        ended_at=1.0,
        stt_turn=1.0,
        end_to_speak=1.0,
        tts_first_byte=1.0,
        end_to_first_audio=2.0,
        characters=2,
    )
    assert metrics.summary()["end_to_first_audio"] == {"count": 50, "p50": 2.0, "p95": 2.0}


def test_the_turn_history_reads_as_a_list_of_the_last_1000() -> None:
    records: list[TurnRecord] = []
    metrics = TurnMetrics(clock=_clock(), emit=records.append)
    _turns(metrics, 1005)
    turns = metrics.turns
    assert len(turns) == 1000
    assert [t.transcript for t in turns[:2]] == ["turn 5", "turn 6"]
    assert turns[-1].transcript == turns[999].transcript == "turn 1004"
    assert turns == records[5:]  # equal to the records delivered as events
    assert list(turns) == records[5:]
    assert turns[-3:] == records[-3:]
    assert repr(turns) == repr(records[5:])
    with pytest.raises(IndexError):
        turns[1000]
    assert metrics.summary()["turns"] == 1000


@pytest.mark.parametrize("limit", [1, 3, 49, 50, 51, 120])
def test_the_turn_history_keeps_the_newest_records_in_order(limit: int) -> None:
    # Rows are grouped in blocks of 50: every limit around a block boundary behaves as
    # a list trimmed to its last ``limit`` records.
    history = TurnHistory(limit)
    expected: list[TurnRecord] = []
    for index in range(260):
        record = TurnRecord(f"turn {index}", float(index), characters=index)
        history._add(record)
        expected = [*expected, record][-limit:]
        assert history[-1] is record  # open: the live record
        if index % 3:
            record.end_to_speak = 0.5  # measured while open, then sealed
            history._seal()
        assert len(history) == len(expected)
        assert history[-1] == record
        assert history == expected
    assert history[0] == expected[0]
    assert history[len(expected) // 2] == expected[len(expected) // 2]
    assert history[-limit:] == expected


async def test_a_reply_run_on_from_earlier_speech_is_not_timed_by_that_speech(
    agent: SaynaClient, server: LocalServer
) -> None:
    # The user's turn ("yeah", a backchannel) ends while the agent speaks; the reply is
    # queued behind that speech. The frames after the reply's speak are the earlier
    # speech's; the server synthesizes both in one run (one completion), so nothing
    # tells where the reply's audio begins: its first byte is not measured.
    records: list[TurnRecord] = []
    agent.on("turn_metrics", records.append)
    turns: list[Turn] = []
    agent.on("turn", turns.append)
    long = await agent.speak("one two three four five six seven eight nine ten eleven")
    await eventually(lambda: agent.metrics.tts_audio_bytes)
    server.script_speech("yeah")
    pcm = render_words(["x"], RATE) + bytes(RATE)
    for start in range(0, len(pcm), 640):
        await agent.on_audio_input(pcm[start : start + 640])
    await eventually(lambda: turns)
    assert not long.done
    reply = await agent.speak("Right.")
    await reply.wait(10)
    await eventually(lambda: records)
    (record,) = records
    assert record.transcript == "yeah"
    assert record.end_to_speak is not None
    assert record.characters == len("Right.")
    assert record.tts_first_byte is None
    assert record.end_to_first_audio is None
    assert agent.turn_metrics.summary()["tts_first_byte"]["count"] == 0


async def test_a_reply_queued_behind_speech_is_timed_from_its_own_first_frame(
    peer: tuple[Peer, SaynaClient],
) -> None:
    server, client = peer
    records: list[TurnRecord] = []
    client.on("turn_metrics", records.append)
    frames: list[bytes] = []
    client.register_on_tts_audio(frames.append)
    earlier = await client.speak("one two three")
    await server.got("speak")
    await server.audio(2)
    await eventually(lambda: len(frames) == 2, what="the earlier speech's frames")
    await server.result("yeah", final=True, speech_final=True)
    await eventually(lambda: client.turn_metrics.turns, what="the turn")
    reply = await client.speak("Right.")
    await server.got("speak")
    await server.complete()  # the earlier speech played out before the reply's speak came
    await earlier.wait(10)
    assert not reply.done
    assert not records
    await server.audio(1)  # the reply's first frame
    await eventually(lambda: records, what="the record")
    assert records[0].tts_first_byte is not None
    assert records[0].end_to_first_audio is not None
