"""Delivery you can rely on (issue 12): audio sent byte for byte, events in server order.

Against the local server: it records every frame it received, so the tests assert on
the wire, not on the client's own counters.
"""

from __future__ import annotations

import array
import asyncio
from typing import Any

import numpy as np
import pytest

from sayna_client import (
    LiveKitConfig,
    Reconnected,
    ReconnectPolicy,
    SaynaSyncClient,
    SaynaValidationError,
    Timeouts,
)
from sayna_client.realtime import connection as connection_module
from sayna_client.server import Faults, LocalServer

from .conftest import make_client, stt, tts


@pytest.fixture(params=["frame_writer", "send_bytes"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Both binary send paths: the SDK's frame writer and aiohttp's ``send_bytes``."""
    if request.param == "send_bytes":
        monkeypatch.setattr(connection_module, "frame_writer", lambda ws: None)
    return str(request.param)


def _odd_frames() -> list[Any]:
    """Frames that are no whole number of 16-bit samples, and buffers of wider items."""
    samples = array.array("h", range(-300, 300))
    return [
        b"\x01",
        bytes(range(256)) * 12 + bytes(range(127)),  # 3199 bytes
        bytearray(b"\x02\x03\x04" * 213 + b"\x05\x06"),  # 641 bytes
        memoryview(samples),  # 600 items, 1200 bytes
        np.arange(-160, 160, dtype=np.int16),  # 640 bytes
        np.arange(12, dtype=np.int16).reshape(3, 4),  # C-contiguous, 2-D: 24 bytes
        memoryview(np.arange(5, dtype=np.float32)),  # any format: 20 bytes
    ]


async def test_any_bytes_like_frame_goes_out_byte_for_byte(server: LocalServer, path: str) -> None:
    frames = _odd_frames()
    expected = [bytes(memoryview(frame).cast("B")) for frame in frames]
    assert [len(e) for e in expected] == [1, 3199, 641, 1200, 640, 24, 20]
    async with make_client(server) as client:  # linear16: 2 bytes a sample
        await client.connect()
        for frame in frames:
            await client.on_audio_input(frame)
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_frames == len(frames))
        assert record.audio_bytes == sum(map(len, expected))
        assert bytes(record.audio) == b"".join(expected)
        assert client.metrics.audio_frames_sent == len(frames)
        assert client.metrics.audio_bytes_sent == sum(map(len, expected))
    # The caller's buffers are untouched.
    assert [bytes(memoryview(frame).cast("B")) for frame in frames] == expected


async def test_the_sync_client_sends_the_same_bytes(server: LocalServer) -> None:
    frames = _odd_frames()
    expected = b"".join(bytes(memoryview(frame).cast("B")) for frame in frames)

    def scenario() -> None:
        with SaynaSyncClient(
            server.url, stt(), tts(), timeouts=Timeouts(connect=5, ready=10, close=2)
        ) as client:
            client.connect()
            for frame in frames:
                client.on_audio_input(frame)
            with pytest.raises(SaynaValidationError, match="tobytes"):
                client.on_audio_input(np.arange(10, dtype=np.int16)[::2])

    await asyncio.to_thread(scenario)
    record = server.records.last_session
    assert record.audio_frames == len(frames)
    assert bytes(record.audio) == expected


async def test_clear_errors_for_what_is_not_a_frame(server: LocalServer) -> None:
    class Frame:  # not a buffer, but has tobytes()
        def tobytes(self) -> bytes:
            return b"\x00\x00"

    async with make_client(server) as client:
        await client.connect()
        strided = np.arange(10, dtype=np.int16)[::2]
        with pytest.raises(SaynaValidationError, match=r"not contiguous.*tobytes\(\)"):
            await client.on_audio_input(strided)
        with pytest.raises(SaynaValidationError, match=r"got Frame; pass audio_data.tobytes\(\)"):
            await client.on_audio_input(Frame())  # type: ignore[arg-type]
        with pytest.raises(SaynaValidationError, match="empty"):
            await client.on_audio_input(np.zeros(0, dtype=np.int16))
        with pytest.raises(SaynaValidationError, match="empty"):
            await client.on_audio_input(bytearray())
        await client.on_audio_input(strided.tobytes())  # the fix the message names
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_frames == 1)
        assert bytes(record.audio) == strided.tobytes()


async def test_audio_held_for_a_reconnect_keeps_its_exact_bytes(server: LocalServer) -> None:
    server.faults = Faults(drop_connection_after_frames=3)
    policy = ReconnectPolicy(initial_backoff=0.2, max_backoff=0.5)
    async with make_client(
        server, livekit_config=LiveKitConfig(room_name="hold"), reconnect=policy
    ) as client:
        events = client.events()
        await client.connect()
        server.faults = Faults()
        first = server.records.last_session
        await server.inject_participant("hold", "caller")  # two more frames trip the fault
        await server.records.wait_for(lambda: client.reconnecting)
        frames = _odd_frames()
        expected = [bytes(memoryview(frame).cast("B")) for frame in frames]
        for frame in frames:
            await client.on_audio_input(frame)
        reconnected = None
        async for event in events:
            if isinstance(event, Reconnected):
                reconnected = event
                break
        assert reconnected is not None
        assert reconnected.replayed_frames == len(frames)
        assert reconnected.replayed_bytes == sum(map(len, expected))
        second = server.records.last_session
        assert second is not first
        await server.records.wait_for(lambda: second.audio_frames == len(frames))
        assert bytes(second.audio) == b"".join(expected)
