"""Turn metrics across sessions: usage counts every session of the client, and a turn's
record closes with its session (a scripted peer on loopback ends the sessions)."""

from __future__ import annotations

import asyncio

import pytest

from helpers.waiting import eventually
from sayna_client import SaynaClient, STTConfig, TTSConfig
from sayna_client.agents import TurnRecord
from sayna_client.server import LocalServer

from .conftest import WAIT, Peer

SILENCE = bytes(640)  # 20 ms of 16 kHz mono linear16


async def _send(client: SaynaClient, seconds: float) -> None:
    for _ in range(round(seconds / 0.02)):
        await client.on_audio_input(SILENCE)


def _transcribed(client: SaynaClient) -> float:
    seconds = client.turn_metrics.summary()["usage"]["deepgram/nova-2"]["seconds_transcribed"]
    assert isinstance(seconds, float)
    return seconds


async def test_seconds_transcribed_counts_every_session_across_a_reconnection(
    reconnecting_peer: tuple[Peer, SaynaClient],
) -> None:
    peer, client = reconnecting_peer
    back = asyncio.Event()
    client.on("reconnected", lambda _event: back.set())
    await _send(client, 2.0)  # (turn_metrics not looked at yet: counted all the same)
    await peer.drop()
    await asyncio.wait_for(back.wait(), WAIT)
    await _send(client, 0.5)
    assert client.metrics.audio_bytes_sent == 16000  # the new session's own count
    assert _transcribed(client) == pytest.approx(2.5)  # the client's, since it was made


async def test_seconds_transcribed_counts_every_session_of_the_application(
    peer: tuple[Peer, SaynaClient],
) -> None:
    _server, client = peer
    await _send(client, 1.0)
    await client.disconnect()
    assert _transcribed(client) == pytest.approx(1.0)
    await client.connect()
    await _send(client, 0.5)
    assert _transcribed(client) == pytest.approx(1.5)


async def test_the_last_turn_of_a_call_goes_out_when_the_call_ends(
    peer: tuple[Peer, SaynaClient],
) -> None:
    server, client = peer
    events = client.events()
    records: list[TurnRecord] = []
    client.on("turn_metrics", records.append)
    await server.result("hello", final=True, speech_final=True)
    await eventually(lambda: client.turn_metrics.turns)
    answer = await client.speak("Hi! How can I help?")
    await server.audio(3)
    await server.complete()
    await asyncio.wait_for(answer, WAIT)
    await server.result("goodbye", final=True, speech_final=True)  # the caller hangs up:
    await server.drop(1000)  # no reply to this turn
    kinds = [event.type async for event in events]
    # Its record goes out with the session, before the close (as a Turn cut by the close).
    assert kinds.index("turn_metrics", kinds.index("turn_metrics") + 1) < kinds.index("closed")
    await eventually(lambda: len(records) == 2)
    hello, goodbye = records
    assert hello.transcript == "hello"
    assert hello.end_to_first_audio is not None
    assert goodbye.transcript == "goodbye"
    assert goodbye.end_to_speak is None
    assert goodbye.end_to_first_audio is None
    assert client.turn_metrics.turns == records


async def test_a_reply_lost_with_the_connection_is_not_measured(
    reconnecting_peer: tuple[Peer, SaynaClient],
) -> None:
    peer, client = reconnecting_peer
    back = asyncio.Event()
    client.on("reconnected", lambda _event: back.set())
    records: list[TurnRecord] = []
    client.on("turn_metrics", records.append)
    await peer.result("what time is it", final=True, speech_final=True)
    await eventually(lambda: client.turn_metrics.turns)
    reply = await client.speak("It is nine o'clock.")
    await peer.got("speak")
    await peer.drop()  # lost before any audio of the reply
    await asyncio.wait_for(back.wait(), WAIT)
    assert reply.lost
    (record,) = records  # it went out with the session that took its reply
    assert record.end_to_speak is not None
    assert record.tts_first_byte is None  # the outage is no TTS latency
    assert record.end_to_first_audio is None
    assert record.characters == len("It is nine o'clock.")
    again = await client.speak("Sorry, we were cut off.")  # no user turn in between
    await peer.audio(3)
    await peer.complete()
    await asyncio.wait_for(again, WAIT)
    assert client.turn_metrics.turns == [record]  # the new speech is no reply to it
    assert record.characters == len("It is nine o'clock.")
    summary = client.turn_metrics.summary()
    assert summary["end_to_first_audio"]["count"] == 0
    assert summary["tts_first_byte"]["count"] == 0


async def test_seconds_transcribed_go_by_the_encoding_and_the_channels(server: LocalServer) -> None:
    """It took two bytes a sample on one channel whatever the STT format: a second of
    stereo 8 kHz mu-law (16,000 bytes) counted as one second only by chance, a second of
    mono mu-law as half a second."""
    for channels in (1, 2):
        stt = STTConfig(
            provider="deepgram",
            model="nova-2",
            sample_rate=8000,
            encoding="mulaw",
            channels=channels,
        )
        async with SaynaClient(server.url, stt, TTSConfig(provider="deepgram")) as client:
            await client.connect()
            for _ in range(50):  # one second in 20 ms frames
                await client.on_audio_input(b"\xff" * 160 * channels)
            assert _transcribed(client) == pytest.approx(1.0)
