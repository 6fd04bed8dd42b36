"""How speech the attached output still holds ends when the connection or the output goes:
a close the client reconnects from keeps it (its audio has all arrived: barge-in can still
stop it), and an output that stopped playing (a speaker closed) ends it with only what it
played heard, at once, instead of a graceful close waiting out its drain time for it."""

from __future__ import annotations

import asyncio
from typing import Optional

from helpers.waiting import eventually
from integrations.helpers import CuttableProxy
from sayna_client import ReconnectPolicy, SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.agents import PacedSpeaker
from sayna_client.server import LocalServer

from .conftest import RATE, WAIT, WORD_BYTES, make_client
from .test_barge_in import say
from .test_playout import LONG, ManualSpeaker, speak_arrived


class ClosableSpeaker(ManualSpeaker):
    """A :class:`ManualSpeaker` that can be closed: then it says it stopped
    (``buffered_bytes`` None); ``seen`` is every value the client read."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.seen: list[Optional[int]] = []

    @property  # type: ignore[override]
    def buffered_bytes(self) -> Optional[int]:
        value = None if self.closed else self._held
        self.seen.append(value)
        return value

    @buffered_bytes.setter
    def buffered_bytes(self, value: int) -> None:
        self._held = value


async def test_speech_the_output_holds_outlives_a_reconnection() -> None:
    async with (
        LocalServer(port=0, tts_realtime=False) as server,
        CuttableProxy(server.port) as proxy,
    ):
        client = SaynaClient(
            proxy.url,
            STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
            TTSConfig(provider="deepgram", voice_id="aura-asteria-en", sample_rate=RATE),
            timeouts=Timeouts(connect=5, ready=10, request=10, close=2),
            reconnect=ReconnectPolicy(initial_backoff=0.1, jitter=0),
        )
        async with client:
            await client.connect()
            speaker = ManualSpeaker()
            client.audio_output = speaker
            policy = client.barge_in()
            back = asyncio.Event()
            client.on("reconnected", lambda _e: back.set())
            handle = await speak_arrived(client, LONG)
            speaker.play(3 * WORD_BYTES)
            proxy.cut()  # the connection drops while the speaker still plays the reply
            await asyncio.wait_for(back.wait(), WAIT)
            # Its audio had all arrived: still held, still the speech being heard.
            assert not handle.done
            assert client.speech.speaking
            assert client.speech.current is handle
            # The caller talks over what they still hear: barge-in stops it.
            server.script_speech("stop please")
            await say(client, 2)
            await handle.wait(WAIT)
            assert handle.interrupted
            assert not handle.lost
            assert speaker.buffered_bytes == 0  # flushed
            assert handle.text_heard == "word word word"
            assert len(policy.history) == 1
            assert not client.speech.speaking


async def test_a_close_without_reconnection_still_ends_held_speech_as_lost(
    fast_agent: SaynaClient,
) -> None:
    speaker = ManualSpeaker()
    fast_agent.audio_output = speaker
    handle = await speak_arrived(fast_agent, "one two three")
    await fast_agent.disconnect(drain=0)
    assert handle.done
    assert handle.interrupted
    assert handle.lost


async def test_an_output_that_stopped_ends_the_speech_it_held_with_what_it_played(
    fast_agent: SaynaClient,
) -> None:
    speaker = ClosableSpeaker()
    fast_agent.audio_output = speaker
    first = await speak_arrived(fast_agent, "one two")
    second = await speak_arrived(fast_agent, LONG)
    assert not first.done
    speaker.play(first.bytes_delivered + 3 * WORD_BYTES)
    # The client has seen that play position (the output says no more once closed).
    seen = len(speaker.seen)
    left = speaker.buffered_bytes
    await eventually(lambda: left in speaker.seen[seen + 1 :])
    at_close: list[bool] = []
    fast_agent.on("closed", lambda _e: at_close.append(second.done))
    speaker.closed = True
    await fast_agent.disconnect()  # graceful: nothing left to wait for
    assert at_close == [True]
    await first.wait(WAIT)
    assert not first.interrupted
    assert first.text_heard == "one two"
    assert second.done
    assert second.interrupted
    assert not second.lost
    assert second.text_heard == "word word word"
    assert not fast_agent.speech.speaking


async def test_a_speaker_closed_before_the_session_ends_does_not_hold_the_close(
    fast_server: LocalServer,
) -> None:
    """The documented nesting: the speaker's block ends first, then the session's."""
    client = make_client(fast_server)
    async with client.session(), PacedSpeaker(RATE) as speaker:
        client.audio_output = speaker
        handle = await speak_arrived(client, LONG)
        # (Speech held: its 7.2 s of audio are in the speaker, which plays in real time.)
        assert not handle.done
    # Ended when the speaker closed, not as lost when the drain time ran out.
    assert handle.interrupted
    assert not handle.lost
    assert speaker.buffered_bytes is None  # closed: it says it plays no more
    assert handle.seconds_heard <= speaker.played_bytes / (2 * RATE)
    assert handle.seconds_heard < handle.bytes_delivered / (2 * RATE)
    # What was reported unheard is dropped: started again, the speaker does not play it
    # (before the next speech) after all.
    speaker.start()
    try:
        assert speaker.buffered_bytes == 0
    finally:
        await speaker.aclose()
