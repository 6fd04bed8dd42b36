"""Turn latency and usage metrics, measured on a scripted dialog with the local server."""

from __future__ import annotations

import pytest

from sayna_client import SaynaClient
from sayna_client.agents import TurnRecord, percentile
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WORD_BYTES


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


def test_percentile() -> None:
    assert percentile([], 0.5) is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50
    assert percentile(values, 0.95) == 95
    assert percentile([3.0], 0.95) == 3.0
