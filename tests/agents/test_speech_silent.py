"""A speech whose text makes no sound ("...", "?!", a zero-width space): the provider
sends no audio, Sayna its completion (protocol 6.7). Its handle ends at that completion,
and the next speech keeps its own audio."""

from __future__ import annotations

from helpers.waiting import eventually
from sayna_client import SaynaClient

from .conftest import FRAME, WAIT, Peer


async def test_a_speech_with_no_sound_ends_at_its_completion(
    peer: tuple[Peer, SaynaClient],
) -> None:
    """Its handle never ended (a completion ended the oldest speech only after a frame
    had come since its speak), and the next speech's audio was credited to it."""
    server, client = peer
    silent = await client.speak("...")
    await server.got("speak")
    await server.complete()
    await silent.wait(WAIT)
    assert silent.exception() is None
    assert not silent.interrupted
    assert silent.bytes_delivered == 0
    assert client.speech.current is None

    spoken = await client.speak("Hello there.")
    await server.got("speak")
    await server.audio(3)
    await server.complete()
    await spoken.wait(WAIT)
    assert spoken.bytes_delivered == 3 * FRAME
    assert silent.bytes_delivered == 0


async def test_a_completion_due_to_earlier_speech_does_not_end_the_next(
    peer: tuple[Peer, SaynaClient],
) -> None:
    """Only a speak sent with no completion due is ended by the next completion with no
    audio of its own: behind earlier speech, that completion may be the earlier one's."""
    server, client = peer
    first = await client.speak("one two")
    await server.got("speak")
    await server.audio(2)
    await eventually(lambda: first.bytes_delivered == 2 * FRAME)
    second = await client.speak("three")  # while the first one's audio plays
    await server.got("speak")
    await server.complete()  # sent before the server had the second speak
    await first.wait(WAIT)
    assert not second.done  # its audio is still to come
    await server.audio(1)
    await server.complete()
    await second.wait(WAIT)
    assert (first.bytes_delivered, second.bytes_delivered) == (2 * FRAME, FRAME)
