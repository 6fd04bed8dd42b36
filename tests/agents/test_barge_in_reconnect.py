"""Barge-in across a lost connection: the user turn under way ends with it (the server
forgets it, and the next session's recogniser starts afresh), so nothing the policy knew
of that turn decides anything in the next session. A scripted peer on loopback drops its
session (1011) and the client reconnects by itself."""

from __future__ import annotations

import asyncio
from typing import Any

from sayna_client import SaynaClient

from .conftest import WAIT, Peer

ANSWER = "one two three four five six seven eight"


async def _reconnected(peer: Peer, client: SaynaClient) -> None:
    back = asyncio.Event()
    unsubscribe = client.on("reconnected", lambda _event: back.set())
    await peer.drop()
    await asyncio.wait_for(back.wait(), WAIT)
    unsubscribe()


def _results(client: SaynaClient) -> asyncio.Queue[str]:
    """The transcripts of the results, once every callback registered before has handled
    them (the callbacks run in registration order)."""
    seen: asyncio.Queue[str] = asyncio.Queue()
    client.on("stt_result", lambda result: seen.put_nowait(result.transcript))
    return seen


async def _speaks_until(peer: Peer, last: str) -> list[str]:
    """The texts of the ``speak``s the peer receives, up to one of ``last``."""
    texts: list[str] = []
    while not texts or texts[-1] != last:
        message: dict[str, Any] = await asyncio.wait_for(peer.received.get(), WAIT)
        if message["type"] == "speak":
            texts.append(message["text"])
    return texts


async def test_min_duration_counts_from_the_first_result_of_the_new_session(
    reconnecting_peer: tuple[Peer, SaynaClient],
) -> None:
    peer, client = reconnecting_peer
    # Any time at all: the reconnection takes more, a turn's first result none.
    policy = client.barge_in(min_duration=1e-6)
    seen = _results(client)
    await peer.result("so", final=False)  # the user starts a turn...
    assert await asyncio.wait_for(seen.get(), WAIT) == "so"
    await _reconnected(peer, client)  # ...which ends with the connection
    handle = await client.speak(ANSWER)
    await peer.audio(2)
    await peer.result("well", final=False)  # a new turn, 0 s old: no barge-in yet
    assert await asyncio.wait_for(seen.get(), WAIT) == "well"
    assert not handle.interrupted
    assert policy.history == []
    await peer.complete()
    await asyncio.wait_for(handle, WAIT)
    await peer.result("well", final=True, speech_final=True)  # (the drain waits for it)


async def test_a_resume_waiting_for_the_turns_end_goes_with_the_connection(
    reconnecting_peer: tuple[Peer, SaynaClient],
) -> None:
    peer, client = reconnecting_peer
    policy = client.barge_in(resume_on_noise=True)
    seen = _results(client)
    answer = await client.speak(ANSWER)
    await peer.audio(10)
    await peer.result("wait", final=False)  # a barge-in; its turn's end decides a resume
    assert await asyncio.wait_for(seen.get(), WAIT) == "wait"
    assert answer.interrupted
    await _reconnected(peer, client)
    # A cough in the new session: a turn of its own, not the end of the one cut off.
    await peer.result("hmm", final=False)
    await peer.result("", final=True, speech_final=True)
    assert [await asyncio.wait_for(seen.get(), WAIT) for _ in range(2)] == ["hmm", ""]
    after = await client.speak("next")
    assert await _speaks_until(peer, "next") == [ANSWER, "next"]  # no stale resume
    assert [event.resumed for event in policy.history] == [False]
    await peer.audio(1)
    await peer.complete()
    await asyncio.wait_for(after, WAIT)
