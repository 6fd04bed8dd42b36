"""A speech the server's TTS provider fails (``error`` ``TTS error: ...``, protocol 6.7)
ends with :class:`SaynaTTSError`, and the speeches around it are credited as before.

Through the local server's scripted failures where its order of frames is the one to
test, and through a small scripted peer (:class:`Peer`) for the orders it cannot produce
on demand: the test sends each frame itself, after the client's commands arrived.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient, SaynaTTSError, Timeouts
from sayna_client.agents import SpeechHandle
from sayna_client.server import LocalServer

from .conftest import FRAME, UNAUTHORIZED, WAIT, WORD_BYTES, Peer

REFUSED = "Failed to synthesize speech: TTS error: Provider error: Google API error: quota"


class Seen:
    """The client's callbacks have handled the events up to the last one the peer sent
    (callbacks run after the speech queue has seen the event)."""

    def __init__(self, client: SaynaClient) -> None:
        self.errors: list[str] = []
        self.completions = 0
        client.on("error", lambda event: self.errors.append(event.message))
        client.on("tts_playback_complete", lambda _event: self._completed())

    def _completed(self) -> None:
        self.completions += 1

    async def errors_reach(self, count: int) -> None:
        await eventually(lambda: len(self.errors) >= count, what=f"{count} error event(s)")

    async def completions_reach(self, count: int) -> None:
        await eventually(lambda: self.completions >= count, what=f"{count} completion(s)")


async def _fails(handle: SpeechHandle, message: str = UNAUTHORIZED) -> SaynaTTSError:
    """``handle`` ends with the server's failure: ``await`` and ``wait()`` raise it."""
    with pytest.raises(SaynaTTSError) as info:
        await handle.wait(WAIT)
    with pytest.raises(SaynaTTSError):
        await handle
    assert info.value.server_message == message
    assert handle.exception() is info.value
    assert handle.done
    return info.value


# --- through the scripted peer ------------------------------------------------------------------


async def test_a_speech_with_no_audio_ends_at_its_error(peer: tuple[Peer, SaynaClient]) -> None:
    server, client = peer
    seen = Seen(client)
    handle = await client.speak("one two")
    await server.got("speak")
    await server.error()
    await server.complete()
    error = await _fails(handle)
    assert UNAUTHORIZED in str(error)
    assert not handle.interrupted
    assert handle.bytes_delivered == 0
    assert handle.seconds_heard == 0
    assert handle.text_heard == ""
    assert not client.speech.speaking
    await seen.completions_reach(1)
    # The next speech is credited its own audio and plays out.
    after = await client.speak("three")
    await server.got("speak")
    await server.audio(2)
    await server.complete()
    await after.wait(WAIT)
    assert after.exception() is None
    assert after.bytes_delivered == 2 * FRAME


async def test_a_failure_after_some_audio_keeps_that_audio(peer: tuple[Peer, SaynaClient]) -> None:
    server, client = peer
    handle = await client.speak("one two three four five six")
    await server.got("speak")
    await server.audio(3)
    await server.error()
    await server.complete()
    await _fails(handle)
    assert not handle.interrupted
    assert handle.bytes_delivered == 3 * FRAME
    assert handle.seconds_heard == pytest.approx(0.06)
    assert handle.text_heard == ""  # 60 ms: not one word at 0.4 s per word
    assert not client.speech.speaking
    # A speech that failed does not count towards the measured seconds per word.
    assert client.speech.seconds_per_word == pytest.approx(0.4)


async def test_the_first_fails_and_the_second_queued_behind_it_plays_out(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # Sayna: no completion after the failure (the second was queued), the second's
    # audio, one completion.
    server, client = peer
    seen = Seen(client)
    ended: list[str] = []
    first = await client.speak("one two")
    second = await client.speak("three four")
    first.add_done_callback(lambda _: ended.append("first"))
    second.add_done_callback(lambda _: ended.append("second"))
    await server.got("speak")
    await server.got("speak")
    await server.error()
    await seen.errors_reach(1)
    assert first.done  # at its error: nothing more of it will come
    assert not second.done
    await server.audio(4)
    await server.complete()
    await _fails(first)
    await second.wait(WAIT)
    assert second.exception() is None
    assert not second.interrupted
    assert (first.bytes_delivered, second.bytes_delivered) == (0, 4 * FRAME)
    assert second.text_heard == "three four"
    await eventually(lambda: len(ended) == 2, what="both done callbacks")
    assert ended == ["first", "second"]
    assert not client.speech.speaking


async def test_the_second_of_two_back_to_back_speeches_fails(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # Both sent before any audio: the first plays out, the second fails at once, and
    # the one completion ends both.
    server, client = peer
    seen = Seen(client)
    first = await client.speak("one two")
    second = await client.speak("three")
    await server.got("speak")
    await server.got("speak")
    await server.audio(3)
    await server.error()
    await seen.errors_reach(1)
    assert not first.done  # the failure may be the first's: decided by what follows
    await server.complete()
    await first.wait(WAIT)
    assert first.exception() is None
    await _fails(second)
    assert (first.bytes_delivered, second.bytes_delivered) == (3 * FRAME, 0)
    assert not client.speech.speaking


async def test_the_first_of_two_back_to_back_speeches_fails_after_some_audio(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # Audio after the error: the failed speech was not the server's last, so it was
    # the first; the audio after the error is the second's.
    server, client = peer
    first = await client.speak("one two")
    second = await client.speak("three")
    await server.got("speak")
    await server.got("speak")
    await server.audio(2)
    await server.error()
    await server.audio(3)
    await server.complete()
    await _fails(first)
    await second.wait(WAIT)
    assert second.exception() is None
    assert (first.bytes_delivered, second.bytes_delivered) == (2 * FRAME, 3 * FRAME)


async def test_interrupting_ends_a_failed_speech_with_its_failure(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # The second speech failed while the first still plays: interrupting both ends the
    # first as interrupted and the second with its failure.
    server, client = peer
    seen = Seen(client)
    first = await client.speak("one two three four five six")
    await server.got("speak")
    await server.audio(2)
    await eventually(lambda: client.metrics.tts_audio_frames == 2, what="the first frames")
    second = await client.speak("seven")
    await server.got("speak")
    await server.error()
    await seen.errors_reach(1)
    assert not second.done  # it ends after the first (in order)
    first.interrupt()
    await server.got("clear")
    await first.wait(WAIT)
    assert first.interrupted
    assert first.exception() is None
    await _fails(second)
    assert second.interrupted
    assert not client.speech.speaking


async def test_a_barge_in_during_a_failed_stream_ends_it_with_its_failure(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # A stream's first chunk failed, its second is playing when the user talks over it:
    # the barge-in interrupts it (clear on the wire), and it raises its failure.
    server, client = peer
    seen = Seen(client)
    policy = client.barge_in(min_words=1)
    handle = await client.speak_stream(["One two. ", "Three four five six seven."])
    await server.got("speak")
    await server.got("speak")
    await eventually(lambda: handle.sent_all, what="the stream's last chunk sent")
    await server.error()
    await server.audio(2)
    await seen.errors_reach(1)
    assert not handle.done
    assert server.ws is not None
    interim = {"type": "stt_result", "transcript": "stop please", "is_final": False}
    await server.ws.send_str(json.dumps({**interim, "is_speech_final": False, "confidence": 0.9}))
    await server.got("clear")
    await _fails(handle)
    assert handle.interrupted
    assert handle.bytes_delivered == 2 * FRAME
    assert [event.handles for event in policy.history] == [(handle,)]
    assert not client.speech.speaking
    final = {"type": "stt_result", "transcript": "stop please", "is_final": True}
    await server.ws.send_str(json.dumps({**final, "is_speech_final": True, "confidence": 0.9}))


async def test_an_error_after_the_speech_was_interrupted_is_not_its(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # The failure crossed the clear: the speech ends interrupted, and the next one is
    # unaffected by that error and by the completion that follows it.
    server, client = peer
    seen = Seen(client)
    handle = await client.speak("one two")
    await server.got("speak")
    await server.audio(1)
    await eventually(lambda: client.metrics.tts_audio_frames == 1, what="the first frame")
    handle.interrupt()
    await server.got("clear")
    await server.error()
    await server.complete()
    await seen.completions_reach(1)
    assert handle.exception() is None
    assert handle.interrupted
    nxt = await client.speak("three")
    await server.got("speak")
    await server.audio(2)
    await server.complete()
    await nxt.wait(WAIT)
    assert nxt.exception() is None
    assert nxt.bytes_delivered == 2 * FRAME
    assert seen.errors == [UNAUTHORIZED]


async def test_a_stream_ends_with_its_failed_chunk_after_the_others_played(
    peer: tuple[Peer, SaynaClient],
) -> None:
    # Its first chunk fails; the second's audio is still the stream's, and the stream
    # ends at the completion after it, failed.
    server, client = peer
    seen = Seen(client)
    handle = await client.speak_stream(["One two. ", "Three four five six seven."])
    await server.got("speak")
    await server.got("speak")
    await eventually(lambda: handle.sent_all, what="the stream's last chunk sent")
    await server.error()
    await seen.errors_reach(1)
    assert not handle.done  # its other chunk is still to come
    await server.audio(3)
    await server.complete()
    await _fails(handle)
    assert handle.bytes_delivered == 3 * FRAME
    assert not client.speech.speaking


async def test_a_refused_speak_ends_at_its_error(peer: tuple[Peer, SaynaClient]) -> None:
    # Sayna with Google TTS (synthesis inline), or a provider not connected, refuses
    # the speak itself: an error, and neither audio nor a completion for it. A wait for
    # the completion ends too.
    server, client = peer
    speaking = asyncio.ensure_future(client.speak("one two", wait=True, timeout=WAIT))
    await server.got("speak")
    await server.error(REFUSED)
    handle = await speaking
    await _fails(handle, REFUSED)
    assert handle.bytes_delivered == 0
    assert not client.speech.speaking
    await client.drain(WAIT, settle=0)


async def test_other_errors_do_not_end_a_speech(peer: tuple[Peer, SaynaClient]) -> None:
    server, client = peer
    seen = Seen(client)
    handle = await client.speak("one two")
    await server.got("speak")
    await server.error("STT streaming error: Connection failed: reset")
    await server.error("Failed to process audio: boom")
    await seen.errors_reach(2)
    assert not handle.done
    await server.audio(2)
    await server.complete()
    await handle.wait(WAIT)
    assert handle.exception() is None
    assert handle.bytes_delivered == 2 * FRAME


# --- through the local server ------------------------------------------------------------------


async def test_a_failed_speech_raises_and_the_next_plays_out(
    agent: SaynaClient, server: LocalServer
) -> None:
    server.fail_tts("Provider error: API error (401 Unauthorized): invalid api key")
    handle = await agent.speak("one two")
    await _fails(handle)
    assert handle.bytes_delivered == 0
    assert not agent.speech.speaking
    nxt = await agent.speak("three")
    await nxt.wait(WAIT)
    assert nxt.exception() is None
    assert nxt.bytes_delivered == WORD_BYTES


async def test_a_speech_failing_after_some_audio(agent: SaynaClient, server: LocalServer) -> None:
    server.fail_tts("Provider error: stream reset", after_chunks=5)
    handle = await agent.speak("one two three")
    error = await _fails(handle, "TTS error: Provider error: stream reset")
    assert "stream reset" in error.message
    assert handle.bytes_delivered == 5 * FRAME
    assert not agent.speech.speaking


async def test_a_failed_speech_and_the_one_queued_behind_it(
    agent: SaynaClient, server: LocalServer
) -> None:
    # Whether "three" reached the server before or after the failure, the first fails
    # without audio and the second plays out with all of its own.
    server.fail_tts("Provider error: API error (401 Unauthorized): invalid api key")
    first = await agent.speak("one two")
    second = await agent.speak("three")
    await _fails(first)
    await second.wait(WAIT)
    assert second.exception() is None
    assert (first.bytes_delivered, second.bytes_delivered) == (0, WORD_BYTES)
    assert not agent.speech.speaking


async def test_a_stream_whose_chunk_fails_raises_at_its_end(
    agent: SaynaClient, server: LocalServer
) -> None:
    # One chunk of a speak_stream fails; the server speaks the others, and the handle
    # ends once they played out, with the failure.
    server.fail_tts("Provider error: API error (400 Bad Request): text rejected")
    handle = await agent.speak_stream(["One two. ", "Three four five six seven. ", "Eight."])
    await _fails(handle, "TTS error: Provider error: API error (400 Bad Request): text rejected")
    assert handle.chunks == ["One two.", "Three four five six seven.", "Eight."]
    assert not handle.interrupted
    assert not agent.speech.speaking


async def test_a_refused_speak_raises_and_the_next_plays_out(
    agent: SaynaClient, server: LocalServer
) -> None:
    server.fail_tts("Provider error: API error (403 Forbidden): quota", refuse=True)
    handle = await agent.speak("one two")
    refused = (
        "Failed to synthesize speech: TTS error: Provider error: API error (403 Forbidden): quota"
    )
    await _fails(handle, refused)
    assert not agent.speech.speaking
    nxt = await agent.speak("three")
    await nxt.wait(WAIT)
    assert nxt.exception() is None
    assert nxt.bytes_delivered == WORD_BYTES


async def test_speaking_in_a_session_without_audio_fails_at_once(server: LocalServer) -> None:
    """A client made with ``without_audio=True`` that called speak(): its handle never
    ended, speak(wait=True) and drain() waited for good, and disconnect() stalled for
    the whole drain time: the server refuses such a speak ("Audio processing is
    disabled", protocol 6.3) and no completion follows."""
    async with SaynaClient(
        server.url, without_audio=True, timeouts=Timeouts(drain=60, ready=10)
    ) as client:
        await client.connect()
        handle = await client.speak("hello")
        with pytest.raises(SaynaTTSError) as info:
            await asyncio.wait_for(handle, 30)
        assert str(info.value).endswith(
            "(audio is off in this session: a client made with without_audio=True cannot "
            "speak; make it with a tts_config and without_audio=False)"
        )
        assert info.value.server_message.startswith("Audio processing is disabled")
        # The wait ends at the refusal (as for a refused speak: see speak()'s ``wait``).
        again = await asyncio.wait_for(client.speak("again", wait=True), 30)
        assert isinstance(again.exception(), SaynaTTSError)
        await asyncio.wait_for(client.drain(), 30)
        await asyncio.wait_for(client.disconnect(), 30)  # was the whole drain time: 60 s
