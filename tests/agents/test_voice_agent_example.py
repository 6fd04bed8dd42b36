"""examples/voice_agent.py on a scripted dialog: the caller cuts a long answer after two words,
the agent stops, and its LLM context keeps only the words the caller heard."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from pathlib import Path
from types import ModuleType

from sayna_client import SaynaClient
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WORD_BYTES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "voice_agent.py"
STORY = "Once upon a time there was a very long story that nobody wanted to hear at all."


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("voice_agent_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def caller_says(client: SaynaClient, words: int) -> None:
    pcm = render_words(["x"] * words, RATE) + bytes(RATE)  # then 0.5 s of silence
    for start in range(0, len(pcm), 640):
        await client.on_audio_input(pcm[start : start + 640])


async def test_caller_interrupts_the_long_answer(agent: SaynaClient, server: LocalServer) -> None:
    example = load_example()

    async def storyteller(context: list[dict[str, str]]) -> AsyncIterator[str]:
        for token in example.tokens(STORY):
            yield token

    bot = example.Agent(agent, brain=storyteller)
    run = asyncio.ensure_future(bot.run(2))
    try:
        await server.records.wait_for(lambda: bot.context, 10)  # the greeting played out
        server.script_speech("tell me a story", "stop")
        await caller_says(agent, 4)
        story = await server.records.wait_for(
            lambda: agent.speech.current if agent.speech.current is not None else None, 10
        )
        await server.records.wait_for(lambda: story.bytes_delivered >= 2 * WORD_BYTES, 10)
        await caller_says(agent, 1)
        assert await asyncio.wait_for(run, 15) == 2
    finally:
        run.cancel()
    assert story.interrupted
    assert story.bytes_delivered < 3 * WORD_BYTES  # stopped within the third word
    assert bot.barge_ins == 1
    assert bot.context == [
        {"role": "assistant", "content": example.GREETING},
        {"role": "user", "content": "tell me a story"},
        {"role": "assistant", "content": "Once upon"},
        {"role": "user", "content": "stop"},
        {"role": "assistant", "content": example.GOODBYE},
    ]
    session = server.records.last_session
    assert any(m["type"] == "clear" for m in session.messages)
