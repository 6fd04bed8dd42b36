"""Turn metrics across sessions: usage counts every session of the client, and a turn's
record closes with its session (a scripted peer on loopback ends the sessions)."""

from __future__ import annotations

import asyncio

import pytest

from sayna_client import SaynaClient

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
