"""No sound card at all: the same "no audio device; plug one in" error whether the device
is queried on construction or, with ``device_rate=`` given, only when its stream opens
(which said "cannot open the audio input device (the default one): Error querying device
-1; close the program using it"). Runs on a stand-in ``sounddevice`` module for a machine
with PortAudio and no device (this machine may have no PortAudio)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest

from helpers.devices import ABSENT_SOUNDDEVICE
from sayna_client.agents.devices import (
    AudioDeviceError,
    SoundDeviceMicrophone,
    SoundDeviceSpeaker,
)

PLUG_ONE_IN = (
    "plug one in, pick another with device=..., or use a file instead "
    "(WavMicrophone / PacedSpeaker)"
)


@pytest.fixture
def no_sound_card(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``import sounddevice`` finds the stand-in while the test runs; yields it."""
    monkeypatch.syspath_prepend(str(ABSENT_SOUNDDEVICE))
    sys.modules.pop("sounddevice", None)
    try:
        import sounddevice

        yield sounddevice
    finally:
        sys.modules.pop("sounddevice", None)


async def _first_frame(microphone: SoundDeviceMicrophone) -> None:
    async for _ in microphone.frames():
        break


@pytest.mark.usefixtures("no_sound_card")
async def test_a_microphone_with_a_device_rate_and_no_device() -> None:
    with pytest.raises(AudioDeviceError) as queried:
        SoundDeviceMicrophone(16000)
    with pytest.raises(AudioDeviceError) as opened:
        await _first_frame(SoundDeviceMicrophone(16000, device_rate=48000))
    for info in (queried, opened):
        error = info.value
        assert str(error) == f"no audio input device (Error querying device -1); {PLUG_ONE_IN}"
        assert (error.kind, error.remedy) == ("input", "plug one in")


@pytest.mark.usefixtures("no_sound_card")
def test_a_speaker_with_a_device_rate_and_no_device() -> None:
    with pytest.raises(AudioDeviceError) as queried:
        SoundDeviceSpeaker(24000)
    with pytest.raises(AudioDeviceError) as opened:
        SoundDeviceSpeaker(24000, device_rate=48000).start()
    for info in (queried, opened):
        assert str(info.value) == (
            f"no audio output device (Error querying device -1); {PLUG_ONE_IN}"
        )
        assert info.value.problem == "no audio output device (Error querying device -1)"


@pytest.mark.usefixtures("no_sound_card")
async def test_a_device_named_with_a_device_rate_that_is_not_there() -> None:
    with pytest.raises(AudioDeviceError) as info:
        await _first_frame(SoundDeviceMicrophone(16000, device="USB", device_rate=48000))
    assert info.value.problem == "no audio input device (No input device matching 'USB')"
    assert info.value.remedy == "plug one in"


async def test_a_device_gone_when_its_stream_opens(no_sound_card: Any) -> None:
    """PortAudio's paInvalidDevice (-9996), as ``Pa_OpenStream`` reports a device index
    that is not there (any more), is a missing device too; a busy one is not."""

    class GoneStream:
        def __init__(self, **settings: Any) -> None:
            raise no_sound_card.PortAudioError(
                "Error opening RawInputStream: Invalid device", -9996
            )

    class BusyStream:
        def __init__(self, **settings: Any) -> None:
            raise no_sound_card.PortAudioError(
                "Error opening RawInputStream: Device unavailable", -9985
            )

    no_sound_card.RawInputStream = GoneStream
    with pytest.raises(AudioDeviceError) as gone:
        await _first_frame(SoundDeviceMicrophone(16000, device=3, device_rate=48000))
    assert gone.value.problem == "no audio input device (Invalid device [PaErrorCode -9996])"
    assert gone.value.remedy == "plug one in"
    no_sound_card.RawInputStream = BusyStream
    with pytest.raises(AudioDeviceError) as busy:
        await _first_frame(SoundDeviceMicrophone(16000, device=3, device_rate=48000))
    assert busy.value.problem == (
        "cannot open the audio input device (3): Device unavailable [PaErrorCode -9985]"
    )
    assert busy.value.remedy == "close the program using it"
