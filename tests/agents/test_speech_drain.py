"""A graceful ``disconnect()`` (and ``drain()``) lets a ``speak_stream`` finish: the chunks
its text source has still to give go out and play, as a ``speak()``'s audio does (local
server, paced TTS)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from typing import Callable

import pytest

from sayna_client import SaynaClient
from sayna_client.agents import SpeechHandle
from sayna_client.server import LocalServer

from .conftest import WORD_BYTES, make_client

GOODBYE = ["Thanks", " for", " calling", ".", " Have", " a", " great", " day", "!"]


async def llm(tokens: list[str], first_delay: float = 0.0) -> AsyncIterator[str]:
    """A model's token stream: ``first_delay`` seconds to its first token (the model's
    latency), then a token every 20 ms."""
    await asyncio.sleep(first_delay)
    for token in tokens:
        yield token
        await asyncio.sleep(0.02)


def speaks(server: LocalServer) -> list[str]:
    return [m["text"] for m in server.records.last_session.messages if m["type"] == "speak"]


@pytest.mark.parametrize(
    "say",
    [
        lambda client: client.speak("Thanks for calling. Have a great day!"),
        lambda client: client.speak_stream(["Thanks for calling. Have a great day!"]),
        lambda client: client.speak_stream(llm(GOODBYE)),
    ],
    ids=["speak", "stream-of-a-list", "stream-of-a-model"],
)
async def test_disconnect_right_after_speaking_lets_the_speech_play_out(
    server: LocalServer, say: Callable[[SaynaClient], Awaitable[SpeechHandle]]
) -> None:
    client = make_client(server)
    await client.connect()
    handle = await say(client)
    await client.disconnect()  # graceful: the conversation finishes first
    assert "".join(speaks(server)).replace(" ", "") == "Thanksforcalling.Haveagreatday!"
    assert handle.done
    assert not handle.interrupted
    assert not handle.lost
    assert handle.bytes_delivered == 7 * WORD_BYTES
    assert handle.text_heard == "Thanks for calling. Have a great day!"


async def test_leaving_async_with_lets_a_stream_finish(server: LocalServer) -> None:
    async with make_client(server) as client:
        await client.connect()
        handle = await client.speak_stream(llm(GOODBYE))
    assert speaks(server) == ["Thanks for calling.", "Have a great day!"]
    assert handle.done
    assert not handle.interrupted


async def test_drain_waits_for_a_stream_whose_first_sentence_is_slow(agent: SaynaClient) -> None:
    # The model takes longer to its first sentence than drain()'s settle: nothing is on
    # the wire yet, but the speech is outstanding.
    handle = await agent.speak_stream(llm(["One", " two", "."], first_delay=1.0))
    await agent.drain(30, settle=0.05)
    assert handle.done
    assert not handle.interrupted
    assert handle.bytes_delivered == 2 * WORD_BYTES


async def test_disconnect_gives_a_stream_no_more_than_the_drain_time(server: LocalServer) -> None:
    forever = asyncio.Event()

    async def stuck() -> AsyncIterator[str]:
        yield "One sentence. "
        await forever.wait()  # a model that never ends its answer
        yield "never"

    client = make_client(server)
    await client.connect()
    handle = await client.speak_stream(stuck())
    loop = asyncio.get_running_loop()
    started = loop.time()
    await client.disconnect(drain=0.5)
    assert loop.time() - started >= 0.5  # it waited for the stream, within the bound
    assert handle.done
    assert handle.lost  # the connection closed before it ended
    assert speaks(server) == ["One sentence."]
