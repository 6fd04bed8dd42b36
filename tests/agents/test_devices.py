"""File-backed devices on a real session: a paced speaker that a barge-in flushes, a WAV mic."""

from __future__ import annotations

from pathlib import Path

import pytest

from sayna_client import SaynaClient, SaynaError, audio
from sayna_client.agents import (
    AudioOutput,
    Microphone,
    PacedSpeaker,
    SoundDeviceMicrophone,
    Speaker,
    WavMicrophone,
)
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WORD_BYTES

LONG = "this is a long answer that goes on and on for quite a few words indeed"


async def test_paced_speaker_plays_in_real_time_and_barge_in_flushes_it(
    agent: SaynaClient, server: LocalServer, tmp_path: Path
) -> None:
    await (await agent.speak("calibrate the rate"))
    with audio.WavWriter(tmp_path / "agent.wav", RATE) as wav:
        async with PacedSpeaker(RATE, sink=wav.write) as speaker:
            assert isinstance(speaker, Speaker)
            assert isinstance(speaker, AudioOutput)
            agent.audio_output = speaker
            handle = await agent.speak(LONG)
            await server.records.wait_for(lambda: speaker.played_bytes >= 2 * WORD_BYTES, 10)
            handle.interrupt()
            played = speaker.played_bytes
            assert speaker.buffered_bytes == 0
            await handle.wait(5)
        agent.audio_output = None
    # Heard = played: the audio delivered but still in the jitter buffer was dropped.
    assert handle.seconds_heard == pytest.approx(played / (2 * RATE), abs=0.001)
    assert handle.bytes_delivered > played
    assert handle.text_heard == "this is"
    assert audio.read_wav(tmp_path / "agent.wav").nbytes == played


async def test_wav_microphone_feeds_a_turn(
    agent: SaynaClient, server: LocalServer, tmp_path: Path
) -> None:
    audio.write_wav(tmp_path / "caller.wav", render_words(["x"] * 3, 8000), 8000)
    mic = WavMicrophone(tmp_path / "caller.wav", sample_rate=RATE, speed=0)
    assert isinstance(mic, Microphone)
    turns = agent.turns()
    async for frame in mic.frames():
        assert len(frame) == 640
        await agent.on_audio_input(frame)
    turn = await turns.__anext__()
    assert turn.text == "word word word"


def test_sound_card_needs_portaudio_or_names_the_extra() -> None:
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):  # no package, or no PortAudio library
        with pytest.raises(SaynaError, match="devices|PortAudio"):
            SoundDeviceMicrophone()
    else:  # a machine with PortAudio: the object is usable
        assert SoundDeviceMicrophone().sample_rate == 16000
    with pytest.raises(SaynaError, match="sample_rate"):
        PacedSpeaker(0)


async def test_wav_microphone_reads_a_rate_without_whole_20_ms_frames(tmp_path: Path) -> None:
    """11025 Hz: 20 ms is 220.5 samples; the file was refused (``frame_ms=20 is 220.5
    samples``). It is read in blocks of whole samples and resampled like a sound card."""
    audio.write_wav(tmp_path / "odd.wav", render_words(["x"] * 6, 11025)[: 2 * 11025], 11025)
    mic = WavMicrophone(tmp_path / "odd.wav", sample_rate=RATE, speed=0, tail_ms=0)
    frames = [frame async for frame in mic.frames()]
    assert {len(frame) for frame in frames} == {640}
    assert len(frames) == 50  # one second: 16000 samples in 20 ms frames
