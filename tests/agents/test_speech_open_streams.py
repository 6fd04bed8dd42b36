"""Speech queued around a ``speak_stream`` whose text source stays open after its chunk
went out, and around one still waiting for its first sentence, through the scripted peer
(:class:`Peer`): the test sends each frame itself, after the client's commands arrived,
so the orders of audio and completions are exact."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from helpers.waiting import eventually
from sayna_client import CallbackError, SaynaClient, SaynaValidationError
from sayna_client.agents import SpeechHandle

from .conftest import FRAME, WAIT, Peer


class Source:
    """An LLM's text: ``text`` (when given) at once, then open until :meth:`end`."""

    def __init__(self, text: str = "") -> None:
        self.text = text
        self.ended = asyncio.Event()

    def end(self) -> None:
        self.ended.set()

    async def pieces(self) -> AsyncIterator[str]:
        if self.text:
            yield self.text  # (a newline after the sentence: the chunk leaves at once)
        await self.ended.wait()


class Seen:
    """The TTS frames and completions the client's callbacks have handled (the speech
    queue saw each one before): the client has the peer's frames up to there."""

    def __init__(self, client: SaynaClient) -> None:
        self.frames = 0
        self.completions = 0
        client.register_on_tts_audio(lambda _data: self._frame())
        client.on("tts_playback_complete", lambda _event: self._completed())

    def _frame(self) -> None:
        self.frames += 1

    def _completed(self) -> None:
        self.completions += 1

    async def reach(self, frames: int, completions: int = 0) -> None:
        await eventually(
            lambda: self.frames >= frames and self.completions >= completions,
            what=f"{frames} frame(s) and {completions} completion(s)",
        )


async def test_a_stream_sent_while_the_speech_before_it_played_ends_when_its_source_ends(
    peer: tuple[Peer, SaynaClient],
) -> None:
    server, client = peer
    seen = Seen(client)
    filler = await client.speak("One moment please.")
    await server.got("speak")
    await server.audio(3)
    await seen.reach(3)
    llm = Source("Let me check that for you.\n")
    stream = await client.speak_stream(llm.pieces())
    await server.got("speak")  # while the filler plays: one completion for both
    await server.audio(4)
    await server.complete()
    await filler.wait(WAIT)
    assert not stream.done  # its source is still open
    llm.end()
    await stream.wait(WAIT)
    assert not stream.interrupted
    assert filler.bytes_delivered == 7 * FRAME  # the overlapping audio is the oldest's
    assert stream.bytes_delivered == 0
    assert not client.speech.speaking


async def _two_streams_behind_a_speech(
    server: Peer, client: SaynaClient, seen: Seen
) -> tuple[Source, SpeechHandle, Source, SpeechHandle]:
    """A speak, then two streams whose first sentence went out while it played (one
    completion for the three), their sources still open."""
    filler = await client.speak("One moment please.")
    await server.got("speak")
    await server.audio(2)
    await seen.reach(seen.frames + 2)
    first, second = Source("Checking the first.\n"), Source("Checking the second.\n")
    one = await client.speak_stream(first.pieces())
    await server.got("speak")
    two = await client.speak_stream(second.pieces())
    await server.got("speak")
    await server.audio(4)
    await server.complete()
    await filler.wait(WAIT)
    return first, one, second, two


async def test_two_streams_sent_while_a_speech_played_end_as_their_sources_end(
    peer: tuple[Peer, SaynaClient],
) -> None:
    server, client = peer
    seen = Seen(client)
    first, one, second, two = await _two_streams_behind_a_speech(server, client, seen)
    first.end()
    await one.wait(WAIT)
    assert not two.done
    second.end()
    await two.wait(WAIT)
    assert not client.speech.speaking
    # The second's source ends first: it waits for the first, which ends both.
    first, one, second, two = await _two_streams_behind_a_speech(server, client, seen)
    second.end()
    await eventually(lambda: two.sent_all)  # (its source ended)
    assert not two.done
    first.end()
    await asyncio.gather(one.wait(WAIT), two.wait(WAIT))
    assert not one.interrupted
    assert not two.interrupted
    assert not client.speech.speaking


async def test_speeches_behind_an_open_stream_end_with_their_own_audio_when_it_ends(
    peer: tuple[Peer, SaynaClient],
) -> None:
    server, client = peer
    seen = Seen(client)
    llm = Source("Let me check that.\n")
    stream = await client.speak_stream(llm.pieces())
    await server.got("speak")
    await server.audio(4)
    await server.complete()  # the stream's audio played; its source is open
    await seen.reach(4, 1)
    here = await client.speak("Here it is.")
    await server.got("speak")
    await server.audio(3)
    await server.complete()  # its own completion, while the stream is open
    await seen.reach(7, 2)
    more = await client.speak("And one more thing for you to hear now.")
    await server.got("speak")
    await server.audio(5)
    await seen.reach(12, 2)
    assert not stream.done
    assert not here.done
    llm.end()  # while the last speech's audio arrives
    await stream.wait(WAIT)
    assert here.done  # its completion came long ago
    assert stream.bytes_delivered == 4 * FRAME
    assert here.bytes_delivered == 3 * FRAME
    assert not more.done
    await server.audio(4)
    await server.complete()
    await more.wait(WAIT)
    assert more.bytes_delivered == 9 * FRAME
    assert not client.speech.speaking


async def test_interrupting_goes_by_the_newest_speech_that_sent_something(
    peer: tuple[Peer, SaynaClient],
) -> None:
    server, client = peer
    seen = Seen(client)
    # A stream still waiting for its first sentence, then a non-interruptible speak: the
    # speak is the server's latest, and the server ignores a clear.
    waiting = await client.speak_stream(Source().pieces())
    firm = await client.speak("one two three four", allow_interruption=False)
    await server.got("speak")
    await server.audio(2)
    await seen.reach(2)
    with pytest.raises(SaynaValidationError, match="allow_interruption=False"):
        firm.interrupt()
    with pytest.raises(SaynaValidationError, match="allow_interruption=False"):
        waiting.interrupt()
    await client.clear()  # ignored by the server: nothing is interrupted
    await server.got("clear")
    assert not firm.done
    assert not waiting.done
    await server.audio(2)
    await server.complete()
    await firm.wait(WAIT)
    assert not firm.interrupted
    assert firm.bytes_delivered == 4 * FRAME
    # A non-interruptible stream waiting for its first sentence, then a speak that allows
    # interruption: the speak is the latest, and the clear takes effect.
    waiting_firm = await client.speak_stream(Source().pieces(), allow_interruption=False)
    soft = await client.speak("five six seven")
    await server.got("speak")
    await server.audio(2)
    await seen.reach(6)
    soft.interrupt()
    await server.got("clear")
    assert soft.interrupted
    assert waiting_firm.interrupted
    assert waiting.interrupted
    assert not client.speech.speaking


class Unplugged:
    """An output whose write() raises while ``broken`` (a device gone)."""

    def __init__(self) -> None:
        self.broken = True
        self.calls = 0

    def write(self, data: bytes) -> None:
        self.calls += 1
        if self.broken:
            raise OSError("device unplugged")

    def flush(self) -> int:
        return 0


async def test_an_output_whose_write_keeps_raising_is_reported_once_per_run(
    peer: tuple[Peer, SaynaClient], caplog: pytest.LogCaptureFixture
) -> None:
    server, client = peer
    seen = Seen(client)
    reports: list[object] = []
    client.register_on_error(reports.append)
    output = Unplugged()
    client.audio_output = output
    caplog.set_level(logging.DEBUG, logger="sayna_client")
    handle = await client.speak("one two three")
    await server.got("speak")
    await server.audio(5)
    await server.complete()
    await handle.wait(WAIT)
    await seen.reach(5, 1)  # (the reports came before the completion)
    assert output.calls == 5
    assert [type(r) for r in reports] == [CallbackError]
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "audio_output.write" in errors[0].getMessage()
    again = [r for r in caplog.records if r.levelno == logging.DEBUG and "again" in r.message]
    assert len(again) == 4
    # A frame written, then the device fails again: reported again, once.
    output.broken = False
    after = await client.speak("four five")
    await server.got("speak")
    await server.audio(1)
    await seen.reach(6, 1)
    assert output.calls == 6
    output.broken = True
    await server.audio(3)
    await server.complete()
    await after.wait(WAIT)
    await seen.reach(9, 2)
    assert output.calls == 9
    assert len(reports) == 2
    assert after.bytes_delivered == 4 * FRAME
