"""Protocol 6.8: an utterance ends in a final, speech-final result that carries its text.

Real providers mark the utterance's last final as speech-final with its transcript; an
empty ``("", is_final, is_speech_final)`` is only Sayna's own forced speech-final, which
the session (not the engine) makes when a segment final is not followed in time.
Agents that wait for ``is_final and is_speech_final and transcript`` get their turn.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from helpers.wire import TTS, collect, config, configure, of_type, send
from sayna_client.server import LocalServer, voice
from sayna_client.server.engines.base import STTParams, STTStream, Transcript, TTSRequest
from sayna_client.server.engines.fake import render_words
from sayna_client.server.voice import SpeechFinalGate

from .conftest import run_upstream

SILENCE_1S = bytes(16000 * 2)


def _turn_end(message: dict[str, Any]) -> bool:
    return bool(
        message.get("type") == "stt_result"
        and message["is_final"]
        and message["is_speech_final"]
        and message["transcript"]
    )


async def test_fake_engine_ends_an_utterance_with_a_speech_final_that_has_the_text(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # Section 6.8: "a turn normally ends in a result such as {"transcript":"hello
    # there","is_final":true,"is_speech_final":true}".
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await ws.send_bytes(render_words(["a", "b", "c"], 16000) + SILENCE_1S)
        frames, _ = await collect(ws, _turn_end)
    finals = [f for f in frames if f["type"] == "stt_result" and f["is_final"]]
    assert finals == [
        {
            "type": "stt_result",
            "transcript": "word word word",
            "is_final": True,
            "is_speech_final": True,
            "confidence": 0.99,
        }
    ]
    sent = server.records.last_session.sent_of_type("stt_result")
    assert not [r for r in sent if r["is_speech_final"] and not r["transcript"]]


class _DeepgramLike(STTStream):
    """Results chosen by the test, fed through the real gate (no socket needed)."""

    def __init__(self, results: list[Transcript]) -> None:
        self.results = results

    async def feed(self, audio: bytes) -> list[Transcript]:
        results, self.results = self.results, []
        return results

    async def finish(self) -> list[Transcript]:
        return []


class _Sent:
    """The gate's ``emit``: keeps what it sends, and sets ``speech_final`` on one."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.speech_final = asyncio.Event()

    def __call__(self, message: dict[str, Any]) -> None:
        self.messages.append(message)
        if message["is_speech_final"]:
            self.speech_final.set()


async def test_the_session_forces_an_empty_speech_final_only_after_a_segment_final() -> None:
    # Section 6.8: the forced speech-final is armed only by a delivered is_final that
    # is not speech-final, and fires 1.8 s after it without a provider speech-final.
    emit = _Sent()
    sent, forced = emit.messages, emit.speech_final

    gate = SpeechFinalGate(_DeepgramLike([Transcript.segment_final("hello", 0.9)]), emit)
    await gate.feed(b"")
    await asyncio.wait_for(forced.wait(), 10)
    gate.close()
    assert [(m["transcript"], m["is_final"], m["is_speech_final"]) for m in sent] == [
        ("hello", True, False),
        ("", True, True),
    ]
    assert sent[-1]["confidence"] == 1.0


async def test_a_provider_speech_final_disarms_the_forced_one() -> None:
    sent: list[dict[str, Any]] = []
    stream = _DeepgramLike(
        [Transcript.segment_final("hello", 0.9), Transcript.speech_final("there", 0.9)]
    )
    gate = SpeechFinalGate(stream, sent.append)
    await gate.feed(b"")
    assert gate._timer is None  # nothing left to force
    gate.close()
    assert [(m["transcript"], m["is_speech_final"]) for m in sent] == [
        ("hello", False),
        ("there", True),
    ]


class _Talking(_DeepgramLike):
    """A recogniser that says whether the talker is still inside the utterance."""

    def __init__(self, results: list[Transcript]) -> None:
        super().__init__(results)
        self.talking = True
        self.asked_while_talking = asyncio.Event()

    @property
    def speaking(self) -> bool:
        if self.talking:
            self.asked_while_talking.set()
        return self.talking


async def test_no_speech_final_is_forced_while_the_engine_hears_the_talker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A local engine sends a piece of a long utterance as a segment final while the
    # talker goes on; Sayna's forced speech-final (6.8) must not split that turn. It
    # comes once the engine no longer hears speech, if the engine sent none itself.
    monkeypatch.setattr(voice, "FORCE_AFTER_FINAL", 0.0)  # due at once
    emit = _Sent()
    sent, forced = emit.messages, emit.speech_final

    stream = _Talking([Transcript.segment_final("first piece", 0.9)])
    gate = SpeechFinalGate(stream, emit)
    await gate.feed(b"")
    first = asyncio.ensure_future(stream.asked_while_talking.wait())
    second = asyncio.ensure_future(forced.wait())
    await asyncio.wait([first, second], timeout=10, return_when=asyncio.FIRST_COMPLETED)
    first.cancel()
    second.cancel()
    assert [(m["transcript"], m["is_speech_final"]) for m in sent] == [("first piece", False)]
    stream.talking = False  # the next frame ends the speech, without a speech-final
    await gate.feed(b"")
    gate.close()
    assert [(m["transcript"], m["is_speech_final"]) for m in sent] == [
        ("first piece", False),
        ("", True),
    ]


async def test_the_engines_speech_final_after_a_piece_ends_the_turn_with_its_text(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(voice, "FORCE_AFTER_FINAL", 0.0)
    sent: list[dict[str, Any]] = []
    stream = _Talking([Transcript.segment_final("first piece", 0.9)])
    gate = SpeechFinalGate(stream, sent.append)
    await gate.feed(b"")
    await asyncio.wait_for(stream.asked_while_talking.wait(), 10)
    stream.results = [Transcript.speech_final("and the rest", 0.9)]
    stream.talking = False
    await gate.feed(b"")
    gate.close()
    assert [(m["transcript"], m["is_speech_final"]) for m in sent] == [
        ("first piece", False),
        ("and the rest", True),
    ]


async def test_blank_finals_that_are_not_speech_final_are_dropped() -> None:
    sent: list[dict[str, Any]] = []
    stream = _DeepgramLike(
        [
            Transcript.segment_final("  ", 0.9),
            Transcript.interim("he", 0.5),
            Transcript.speech_final("hey", 0.9),
        ]
    )
    gate = SpeechFinalGate(stream, sent.append)
    await gate.feed(b"")
    gate.close()
    assert [m["transcript"] for m in sent] == ["he", "hey"]


async def test_results_are_dropped_while_non_interruptible_speech_plays(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # Section 6.8: "Dropped, not queued: every provider result ... while
    # non-interruptible speech is active".
    server.script_speech("heard while the agent spoke", "heard afterwards")
    long_text = " ".join(["word"] * 10)  # 1.8 s of paced speech
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "speak", "text": long_text, "allow_interruption": False})
        await ws.send_bytes(render_words(["a", "b"], 16000) + SILENCE_1S)
        await collect(ws, of_type("tts_playback_complete"))
        session = server.records.last_session
        await server.records.wait_for(lambda: not server.scripted_speech[1:])
        assert session.sent_of_type("stt_result") == []
        # After completion and the estimated playback end, results flow again.
        await send(ws, {"type": "speak", "text": "", "allow_interruption": True})
        await ws.send_bytes(render_words(["a", "b"], 16000) + SILENCE_1S)
        frames, _ = await collect(ws, _turn_end)
    assert frames[-1]["transcript"] == "heard afterwards"


async def test_local_engine_speech_final_carries_the_text() -> None:
    pytest.importorskip("pocketsphinx")
    pytest.importorskip("espeakng_loader")
    from sayna_client.server.engines import get_engine

    engine = get_engine("local")
    audio = b"".join(
        [c async for c in engine.synthesize(TTSRequest("hello world", sample_rate=16000))]
    )
    stream = engine.open_stt(STTParams(sample_rate=16000))
    try:
        results = await stream.feed(audio + SILENCE_1S * 2)
        results += await stream.finish()
    finally:
        stream.close()
    ends = [r for r in results if r.is_speech_final]
    if any(not r.transcript for r in ends):
        pytest.xfail(
            "#16: the local engine still ends utterances with an empty speech-final; it "
            "should return Transcript.speech_final(text, ...) (engines/base.py)"
        )
    assert ends
    assert all(r.is_final and r.transcript for r in ends)


_UPSTREAM_AGENT = """
import asyncio, json, sys
from sayna_client import SaynaClient, STTConfig, TTSConfig

async def main():
    url, path = sys.argv[1], sys.argv[2]
    client = SaynaClient(
        url,
        STTConfig(provider="deepgram", language="en-US", sample_rate=16000, channels=1,
                  punctuation=True, encoding="linear16", model="nova-3"),
        TTSConfig(provider="deepgram", model="aura-asteria-en", audio_format="linear16",
                  sample_rate=16000),
    )
    ready = asyncio.Event()
    turn = asyncio.get_running_loop().create_future()
    client.register_on_ready(lambda message: ready.set())

    def on_result(result):
        # The test Sayna's example agents make before answering.
        if result.is_final and result.is_speech_final and result.transcript:
            if not turn.done():
                turn.set_result(result.transcript)

    client.register_on_stt_result(on_result)
    await client.connect()
    await asyncio.wait_for(ready.wait(), 20)
    audio = open(path, "rb").read()
    for start in range(0, len(audio), 640):
        await client.on_audio_input(audio[start:start + 640])
    text = await asyncio.wait_for(turn, 20)
    await client.disconnect()
    print(json.dumps({"turn": text}))

asyncio.run(main())
"""


async def test_upstream_sdk_agent_gets_its_turn(
    server: LocalServer, upstream_python: Path, tmp_path: Path
) -> None:
    server.script_speech("I would like to book a table")
    audio = tmp_path / "caller.pcm"
    audio.write_bytes(render_words(["x"] * 6, 16000) + SILENCE_1S)
    result = await run_upstream(upstream_python, _UPSTREAM_AGENT, server.url, str(audio))
    assert result == {"turn": "I would like to book a table"}


def test_helpers_keep_the_tts_config_of_the_server_tests() -> None:
    # The raw-socket helpers configure 16 kHz TTS, which the tests above rely on.
    assert TTS["sample_rate"] == 16000
    assert config()["stt_config"]["sample_rate"] == 16000
