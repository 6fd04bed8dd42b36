"""A sound card that is listed but cannot be opened (busy, held by another program):
:class:`AudioDeviceError` naming the device and the fixes a library user has. Runs the
devices on a stand-in ``sounddevice`` module (this machine may have no PortAudio)."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from helpers.devices import BUSY_SOUNDDEVICE
from sayna_client import SaynaError
from sayna_client.agents.devices import (
    AudioDeviceError,
    SoundDeviceMicrophone,
    SoundDeviceSpeaker,
)


@pytest.fixture
def busy_sound_card(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """``import sounddevice`` finds the stand-in while the test runs."""
    monkeypatch.syspath_prepend(str(BUSY_SOUNDDEVICE))
    sys.modules.pop("sounddevice", None)
    try:
        yield
    finally:
        sys.modules.pop("sounddevice", None)


FIXES = "close the program using it, pick another with device=..., or use a file instead"


@pytest.mark.usefixtures("busy_sound_card")
def test_a_speaker_that_cannot_be_opened() -> None:
    speaker = SoundDeviceSpeaker(16000)
    with pytest.raises(AudioDeviceError) as info:
        speaker.start()
    error = info.value
    assert isinstance(error, SaynaError)
    assert str(error) == (
        "cannot open the audio output device (Fake USB Audio): Device unavailable "
        f"[PaErrorCode -9985]; {FIXES} (WavMicrophone / PacedSpeaker)"
    )
    assert (error.kind, error.remedy) == ("output", "close the program using it")
    assert error.problem == (
        "cannot open the audio output device (Fake USB Audio): Device unavailable "
        "[PaErrorCode -9985]"
    )


@pytest.mark.usefixtures("busy_sound_card")
async def test_a_microphone_that_cannot_be_opened() -> None:
    """It raised sounddevice's PortAudioError, which `sayna talk` blamed on the agent."""
    microphone = SoundDeviceMicrophone(16000)
    with pytest.raises(AudioDeviceError) as info:
        async for _ in microphone.frames():
            pass
    assert info.value.kind == "input"
    assert str(info.value).startswith(
        "cannot open the audio input device (Fake USB Audio): Device unavailable"
    )
    assert FIXES in str(info.value)
