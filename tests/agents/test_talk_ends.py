"""How ``talk()`` ends an answer under way: ``max_seconds`` and cancellation report what
was heard of it; a reply that stalls after a file microphone ended does not hang."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Optional

import pytest

from sayna_client import SaynaClient, STTConfig, Timeouts, TTSConfig, audio
from sayna_client.agents import WavMicrophone
from sayna_client.agents.talk import Line, talk
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WAIT, make_client


def caller(tmp_path: Path) -> WavMicrophone:
    audio.write_wav(tmp_path / "caller.wav", render_words(["x"] * 2, RATE) + bytes(RATE), RATE)
    return WavMicrophone(tmp_path / "caller.wav", sample_rate=RATE, speed=0)


def client_of(server: LocalServer, request: Optional[float] = None) -> SaynaClient:
    return SaynaClient(
        server.url,
        STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
        TTSConfig(provider="deepgram", voice_id="aura-asteria-en", sample_rate=RATE),
        timeouts=Timeouts(connect=5, ready=10, request=request, close=2),
    )


def stalling(answering: asyncio.Event) -> object:
    async def reply(text: str) -> AsyncIterator[str]:
        yield "Let me check. "
        answering.set()
        await asyncio.Event().wait()  # the rest of the answer never comes
        yield "never said"

    return reply


async def test_max_seconds_reports_the_answer_under_way(
    server: LocalServer, tmp_path: Path
) -> None:
    # It used to return only the user's line: the agent's words the user heard were lost.
    server.script_speech("hello there")
    answering = asyncio.Event()
    lines: list[Line] = []
    async with client_of(server) as client:  # only max_seconds ends it
        await client.connect()
        heard = asyncio.Event()
        client.register_on_tts_audio(lambda _audio: heard.set())
        # A generous max_seconds: the answer's audio has come by then (the scenario is
        # how the conversation ends, not when).
        got = await asyncio.wait_for(
            talk(
                client,
                caller(tmp_path),
                stalling(answering),
                max_seconds=WAIT,
                on_line=lines.append,
            ),
            3 * WAIT,
        )
    assert heard.is_set()
    assert got == lines
    assert [line.speaker for line in got] == ["you", "agent"]
    assert got[0].text == "hello there"
    answer = got[1]
    assert answer.interrupted
    assert str(answer).endswith(" [interrupted]")
    assert answer.text  # some of "Let me check." was heard
    assert "Let me check.".startswith(answer.text)


async def test_cancelling_talk_reports_the_answer_under_way(
    server: LocalServer, tmp_path: Path
) -> None:
    server.script_speech("hello there")
    answering = asyncio.Event()
    lines: list[Line] = []
    async with make_client(server) as client:
        await client.connect()
        conversation = asyncio.ensure_future(
            talk(client, caller(tmp_path), stalling(answering), on_line=lines.append)
        )
        await asyncio.wait_for(answering.wait(), WAIT)
        conversation.cancel()
        with pytest.raises(asyncio.CancelledError):
            await conversation
    assert [line.speaker for line in lines] == ["you", "agent"]
    assert lines[1].interrupted


async def test_a_reply_that_stalls_after_a_file_ended_ends_the_conversation(
    server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # A file microphone, no max_seconds: a reply that never finishes used to hang talk()
    # for ever. Timeouts.request bounds the reply's silence once the file ended.
    server.script_speech("hello there")
    answering = asyncio.Event()
    client = client_of(server, request=0.5)
    caplog.set_level(logging.WARNING, logger="sayna_client")
    async with client:
        await client.connect()
        lines = await asyncio.wait_for(
            talk(client, caller(tmp_path), stalling(answering)), 6 * WAIT
        )
        assert not client.speech.speaking  # the answer was stopped
    assert answering.is_set()
    assert [line.speaker for line in lines] == ["you", "agent"]
    assert lines[1].interrupted
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        "the reply to the user's turn of 2 words gave no text" in w and "Timeouts.request" in w
        for w in warnings
    )
    # The user's words are personal data: they reach no warning.
    assert not any("hello" in w for w in warnings)


async def test_a_slow_reply_within_the_bound_is_answered(
    server: LocalServer, tmp_path: Path
) -> None:
    # The bound is on the reply's silence, not on the whole answer: pieces that keep
    # coming (each within it) are all spoken.
    server.script_speech("hello there")

    async def slow(text: str) -> AsyncIterator[str]:
        for word in ["One. ", "Two. ", "Three."]:
            await asyncio.sleep(0.05)  # the scenario: an LLM's pace
            yield word

    async with make_client(server) as client:
        await client.connect()
        lines = await asyncio.wait_for(talk(client, caller(tmp_path), slow), 3 * WAIT)
    assert [str(line) for line in lines] == ["you: hello there", "agent: One. Two. Three."]
