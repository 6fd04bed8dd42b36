"""Speech the connection took with it: ``handle.lost`` tells it from an interruption
(``interrupted`` is True for both, as before), and ``await handle`` still returns. A
scripted peer on loopback drops its session (1011) and the client reconnects by itself."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from helpers.waiting import eventually
from sayna_client import SaynaClient

from .conftest import FRAME, WAIT, Peer

ANSWER = "one two three four five six seven eight"


async def test_speech_cut_by_a_lost_connection_is_lost_not_just_interrupted(
    reconnecting_peer: tuple[Peer, SaynaClient],
) -> None:
    peer, client = reconnecting_peer
    back = asyncio.Event()
    client.on("reconnected", lambda _event: back.set())
    reading = asyncio.Event()

    async def llm() -> AsyncIterator[str]:
        yield "First sentence. "
        reading.set()
        await asyncio.Event().wait()  # the rest of the answer is slow to come
        yield "never"

    answer = await client.speak(ANSWER)
    await peer.got("speak")
    await peer.audio(3)
    await eventually(lambda: answer.bytes_delivered == 3 * FRAME)
    stream = await client.speak_stream(llm())
    await asyncio.wait_for(reading.wait(), WAIT)
    await peer.drop()
    for handle in (answer, stream):
        await asyncio.wait_for(handle, WAIT)  # returns: nothing went wrong on our side
        assert handle.lost
        assert handle.interrupted  # as before: the speech did not play out
        assert handle.exception() is None
    assert answer.bytes_delivered == 3 * FRAME
    assert answer.text_heard != ANSWER  # what got through, to say the rest later
    await asyncio.wait_for(back.wait(), WAIT)

    # In the new session: an interruption is no loss, and a speech that plays out neither.
    stopped = await client.speak("stop me")
    stopped.interrupt()
    assert stopped.interrupted
    assert not stopped.lost
    played = await client.speak("the rest")
    await peer.audio(2)
    await peer.complete()
    await asyncio.wait_for(played, WAIT)
    assert not played.interrupted
    assert not played.lost


async def test_speech_left_unfinished_by_disconnect_is_lost(peer: tuple[Peer, SaynaClient]) -> None:
    server, client = peer
    handle = await client.speak(ANSWER)
    await server.got("speak")
    await client.disconnect(drain=0)
    assert handle.done
    assert handle.lost
    assert handle.interrupted
