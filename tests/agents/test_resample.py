"""Live-device rates: the pure-Python streaming resampler, and the file-backed stand-ins
running at a device's native rate (44.1 / 48 kHz) against a 16 kHz session."""

from __future__ import annotations

import math
from array import array
from pathlib import Path

import pytest

from sayna_client import SaynaClient, SaynaValidationError, audio
from sayna_client.agents import PacedSpeaker, WavMicrophone
from sayna_client.agents.resample import Reframer, Resampler
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WORD_BYTES


def sine(freq: float, rate: int, seconds: float, amplitude: int = 10000) -> bytes:
    n = int(rate * seconds)
    return array(
        "h", (int(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(n))
    ).tobytes()


def samples(pcm: bytes) -> list[int]:
    return array("h", pcm).tolist()


def rms(values: list[int]) -> float:
    return math.sqrt(sum(v * v for v in values) / len(values))


def crossings(values: list[int]) -> int:
    return sum(1 for a, b in zip(values, values[1:]) if (a < 0) != (b < 0))


def stream(resampler: Resampler, pcm: bytes, sizes: list[int]) -> bytes:
    """Feed ``pcm`` in chunks of the given sizes (cycled), as a device would."""
    out = bytearray()
    at = 0
    index = 0
    while at < len(pcm):
        size = sizes[index % len(sizes)]
        out += resampler.process(pcm[at : at + size])
        at += size
        index += 1
    return bytes(out)


@pytest.mark.parametrize(
    ("in_rate", "out_rate"),
    [(48000, 16000), (44100, 16000), (16000, 48000), (24000, 44100), (22050, 24000)],
)
def test_a_tone_keeps_its_pitch_length_and_level(in_rate: int, out_rate: int) -> None:
    pcm = sine(440, in_rate, 1.0)
    out = samples(stream(Resampler(in_rate, out_rate), pcm, [in_rate // 50 * 2]))
    # One second in, one second out, less the outputs that wait for the next input sample.
    assert 0 <= out_rate - len(out) <= math.ceil(out_rate / in_rate) + 1
    assert crossings(out) == pytest.approx(880, abs=2)  # still 440 Hz
    assert rms(out) == pytest.approx(10000 / math.sqrt(2), rel=0.02)


def test_chunking_does_not_change_the_output() -> None:
    pcm = sine(300, 44100, 0.5) + sine(1200, 44100, 0.5)
    whole = Resampler(44100, 16000).process(pcm)
    uneven = stream(Resampler(44100, 16000), pcm, [2, 882 * 2, 6, 1000, 10 * 2])
    assert uneven == whole


def test_going_down_damps_what_would_fold_into_the_speech_band() -> None:
    # 12 kHz is above 16 kHz's Nyquist (8 kHz): undamped it would alias to 4 kHz.
    high = samples(Resampler(48000, 16000).process(sine(12000, 48000, 0.5)))
    assert rms(high[10:]) < 0.4 * 10000 / math.sqrt(2)


def test_equal_rates_pass_through_and_bad_input_is_refused() -> None:
    same = Resampler(16000, 16000)
    assert same.passthrough
    assert same.process(b"\x01\x02\x03\x04") == b"\x01\x02\x03\x04"
    with pytest.raises(SaynaValidationError, match="even byte count"):
        Resampler(48000, 16000).process(b"\x00\x00\x00")
    with pytest.raises(SaynaValidationError, match="bytes-like"):
        Resampler(48000, 16000).process("abcd")  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="bytes-like"):
        Resampler(16000, 16000).process(1234)  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="in_rate"):
        Resampler(0, 16000)
    with pytest.raises(SaynaValidationError, match="out_rate"):
        Resampler(16000, 44.1)  # type: ignore[arg-type]


def test_reframer_cuts_exact_frames() -> None:
    frames = Reframer(4)
    assert frames.push(b"abc") == []
    assert frames.push(b"defghij") == [b"abcd", b"efgh"]
    assert frames.finish() == [b"ij\x00\x00"]
    assert frames.finish() == []
    with pytest.raises(SaynaValidationError):
        Reframer(0)


@pytest.mark.parametrize(("file_rate", "channels"), [(48000, 1), (44100, 2)])
async def test_a_microphone_at_the_device_rate_feeds_a_16k_turn(
    agent: SaynaClient, server: LocalServer, tmp_path: Path, file_rate: int, channels: int
) -> None:
    words = render_words(["x"] * 3, file_rate)
    if channels == 2:  # the same sound on both channels
        mono = array("h", words)
        words = array("h", (s for s in mono for _ in range(2))).tobytes()
    audio.write_wav(tmp_path / "caller.wav", words, file_rate, channels)
    mic = WavMicrophone(tmp_path / "caller.wav", sample_rate=RATE, speed=0, tail_ms=600)
    turns = agent.turns()
    sent = 0
    async for frame in mic.frames():
        assert len(frame) == 640  # 20 ms at 16 kHz, whatever the file's rate
        sent += len(frame)
        await agent.on_audio_input(frame)
    seconds = len(words) / (2 * channels * file_rate)
    assert sent / (2 * RATE) == pytest.approx(seconds + 0.6, abs=0.021)
    turn = await turns.__anext__()
    assert turn.text == "word word word"


async def test_a_speaker_at_48k_plays_16k_speech_and_counts_heard_at_16k(
    agent: SaynaClient, server: LocalServer, tmp_path: Path
) -> None:
    await (await agent.speak("calibrate the rate"))
    with audio.WavWriter(tmp_path / "agent.wav", 48000) as wav:
        async with PacedSpeaker(RATE, sink=wav.write, device_rate=48000) as speaker:
            assert speaker.device_rate == 48000
            agent.audio_output = speaker
            handle = await agent.speak("one two three four five six seven eight nine ten")
            await server.records.wait_for(lambda: speaker.played_bytes >= 2 * WORD_BYTES, 10)
            handle.interrupt()
            played = speaker.played_bytes
            await handle.wait(5)
        agent.audio_output = None
    device_bytes = audio.read_wav(tmp_path / "agent.wav").nbytes
    # The sink got three 48 kHz samples for every 16 kHz one; heard is counted at 16 kHz.
    assert device_bytes == pytest.approx(3 * played, abs=6)
    assert handle.seconds_heard == pytest.approx(played / (2 * RATE), abs=0.001)
    assert handle.bytes_delivered > played
    assert handle.text_heard == "one two"
