"""Audio left in a speaker's jitter buffer after it ran dry is played: a last sentence
shorter than the prebuffer stayed unplayed for good, so ``talk()`` (and ``sayna talk``)
waited for it for ever at the end of the conversation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient, STTConfig, Timeouts, TTSConfig, audio
from sayna_client.agents import PacedSpeaker, WavMicrophone
from sayna_client.agents.talk import talk
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE

MS = 2 * RATE // 1000  # bytes of a millisecond at RATE


async def test_a_tail_shorter_than_the_prebuffer_plays_after_an_underrun() -> None:
    played: list[bytes] = []
    async with PacedSpeaker(RATE, sink=played.append) as speaker:  # 60 ms prebuffer
        speaker.write(bytes(100 * MS))
        await eventually(lambda: speaker.played_bytes == 100 * MS)
        assert speaker.buffered_bytes == 0  # it ran dry: the next audio is late
        speaker.write(bytes(40 * MS))  # the answer's last 40 ms
        await eventually(lambda: speaker.played_bytes == 140 * MS)
    assert speaker.buffered_bytes is None  # closed
    assert speaker.flush() == 0
    assert len(b"".join(played)) == 140 * MS


async def test_an_answer_shorter_than_the_prebuffer_plays() -> None:
    played: list[bytes] = []
    async with PacedSpeaker(RATE, sink=played.append) as speaker:
        speaker.write(bytes(40 * MS))
        await eventually(lambda: speaker.played_bytes == 40 * MS)
    assert speaker.buffered_bytes is None  # closed
    assert speaker.flush() == 0
    assert len(b"".join(played)) == 40 * MS


async def test_play_out_plays_a_partial_buffer_at_once() -> None:
    played: list[bytes] = []
    # A prebuffer of ten minutes: only play_out() can make these 40 ms play.
    async with PacedSpeaker(RATE, sink=played.append, prebuffer_ms=600_000) as speaker:
        speaker.write(bytes(40 * MS))
        assert await speaker.play_out(timeout=30)
        assert speaker.played_bytes == 40 * MS
        # It plays out once: later audio waits for the prebuffer again.
        speaker.write(bytes(40 * MS))
        assert await speaker.play_out(timeout=30)
    assert len(b"".join(played)) == 80 * MS


async def test_play_out_of_a_speaker_not_started_gives_up_after_its_timeout() -> None:
    speaker = PacedSpeaker(RATE)  # never started: nothing plays
    speaker.write(bytes(40 * MS))
    assert await speaker.play_out(timeout=0.05) is False
    assert speaker.buffered_bytes == 40 * MS
    assert speaker.flush() == 40 * MS


def _client(server: LocalServer) -> SaynaClient:
    # speaking_rate 4: the fake engine's words last 45 ms, less than the 60 ms prebuffer
    # (ElevenLabs: Deepgram ignores the rate, on Sayna as on the local server).
    return SaynaClient(
        server.url,
        STTConfig(provider="deepgram", sample_rate=RATE),
        TTSConfig(provider="elevenlabs", voice_id="v1", sample_rate=RATE, speaking_rate=4.0),
        timeouts=Timeouts(connect=5, ready=10, request=10, close=2),
    )


def _caller(tmp_path: Path) -> WavMicrophone:
    pcm = render_words(["x", "x"], RATE) + bytes(2 * RATE)
    audio.write_wav(tmp_path / "caller.wav", pcm, RATE)
    return WavMicrophone(tmp_path / "caller.wav", sample_rate=RATE)


async def test_talk_ends_when_the_last_words_are_shorter_than_the_prebuffer(
    server: LocalServer, tmp_path: Path
) -> None:
    """The documented talk() loop with a reply that pauses (an LLM thinking) before one
    short last word: the speaker runs dry, then gets 45 ms of audio."""
    first = len(render_words(["x", "x"], RATE, 4.0))
    last = len(render_words(["x"], RATE, 4.0))
    assert last < 60 * MS
    speaker = PacedSpeaker(RATE)

    async def reply(text: str) -> AsyncIterator[str]:
        yield "Hello there. "
        await eventually(lambda: speaker.played_bytes == first and not speaker.buffered_bytes)
        yield "Ok."

    async with _client(server) as client:
        await client.connect()
        async with speaker:
            lines = await asyncio.wait_for(
                talk(client, _caller(tmp_path), reply, speaker=speaker), 60
            )
    assert [str(line) for line in lines] == ["you: word word", "agent: Hello there. Ok."]
    assert speaker.flush() == 0
    assert speaker.played_bytes == first + last


async def test_talk_does_not_wait_for_ever_on_a_speaker_that_does_not_play(
    server: LocalServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    speaker = PacedSpeaker(RATE)  # not started (no `async with`): it never plays
    async with _client(server) as client:
        await client.connect()
        lines = await asyncio.wait_for(talk(client, _caller(tmp_path), speaker=speaker), 60)
    assert [line.speaker for line in lines] == ["you", "agent"]
    assert speaker.buffered_bytes > 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("the speaker did not play its last" in w for w in warnings), warnings
