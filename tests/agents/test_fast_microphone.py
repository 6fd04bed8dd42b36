"""A microphone that delivers faster than real time (an ALSA null device, a backlog) must
not starve the event loop: frames already waiting are taken without suspending, and so
is a send the socket takes at once, so ``sayna talk --max-seconds 3`` ran until killed.
The microphone and ``talk()`` let the loop run after each block / frame, and the
microphone holds at most 5 s of blocks (the oldest dropped, counted and logged)."""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, Optional

import pytest

from helpers.devices import BURST_SOUNDDEVICE
from sayna_client import SaynaClient
from sayna_client.agents.devices import SoundDeviceMicrophone
from sayna_client.agents.talk import talk

FRAME = bytes(640)  # 20 ms at 16 kHz


@pytest.fixture
def burst_sound_card(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``import sounddevice`` finds the stand-in while the test runs; yields it."""
    monkeypatch.syspath_prepend(str(BURST_SOUNDDEVICE))
    sys.modules.pop("sounddevice", None)
    try:
        import sounddevice

        yield sounddevice
    finally:
        sys.modules.pop("sounddevice", None)


async def test_the_loop_runs_between_blocks_already_captured(burst_sound_card: Any) -> None:
    burst_sound_card.BLOCKS = 100  # 2 s of audio, captured at once
    microphone = SoundDeviceMicrophone(16000)
    loop = asyncio.get_running_loop()
    loop_ran = asyncio.Event()
    frames = 0
    async for _ in microphone.frames():
        frames += 1
        if frames == 1:
            loop.call_soon(loop_ran.set)  # runs when the loop next gets a turn
        if loop_ran.is_set() or frames == 50:
            break
    assert loop_ran.is_set(), "the loop did not run while 50 frames were taken"
    assert frames <= 3
    assert microphone.dropped_blocks == 0


async def test_at_most_five_seconds_wait_for_the_consumer(
    burst_sound_card: Any, caplog: pytest.LogCaptureFixture
) -> None:
    burst_sound_card.BLOCKS = 300  # 6 s captured before the consumer takes the first
    microphone = SoundDeviceMicrophone(16000)
    with caplog.at_level(logging.WARNING, logger="sayna_client"):
        frames = microphone.frames()
        async for _ in frames:
            break
        assert microphone.dropped_blocks == 50  # the oldest second
        await frames.aclose()
    assert [r.getMessage() for r in caplog.records] == [
        "the microphone's audio comes faster than it is used: keeping the last 5000 ms, "
        "dropping the oldest",
        "the microphone dropped 50 blocks (1000 ms) of audio that came faster than it was used",
    ]


class BurstMicrophone:
    """A microphone whose frames are all there already (a device faster than real time):
    its iterator never suspends. It notes after how many frames the loop got a turn."""

    def __init__(self, count: int) -> None:
        self.count = count
        #: Frames yielded before a callback scheduled at the first one had run.
        self.loop_ran_after: Optional[int] = None

    async def frames(self) -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        ran = asyncio.Event()
        for index in range(self.count):
            if index == 1:
                loop.call_soon(ran.set)
            elif ran.is_set() and self.loop_ran_after is None:
                self.loop_ran_after = index
            yield FRAME


async def test_talk_lets_the_loop_run_after_each_frame(agent: SaynaClient) -> None:
    microphone = BurstMicrophone(50)  # 1 s: far less than the socket's buffer holds
    await asyncio.wait_for(talk(agent, microphone), 60)
    assert microphone.loop_ran_after is not None, "the loop did not run while 50 frames went"
    assert microphone.loop_ran_after <= 3
