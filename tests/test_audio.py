"""PCM/WAV helpers: round trips, framing, format checks, resampling, mu-law, pacing."""

from __future__ import annotations

import asyncio
import io
import math
import struct
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, List

import pytest

from sayna_client.audio import (
    WavAudio,
    WavWriter,
    duration_ms,
    frame_bytes,
    linear16_to_mulaw,
    mulaw_to_linear16,
    paced,
    pcm_to_wav_bytes,
    read_wav,
    wav_frames,
    write_wav,
)
from sayna_client.errors import SaynaValidationError


def sine(rate: int, ms: int, freq: float = 440.0, amplitude: int = 12000) -> bytes:
    count = rate * ms // 1000
    return struct.pack(
        f"<{count}h",
        *(round(amplitude * math.sin(2 * math.pi * freq * i / rate)) for i in range(count)),
    )


def samples(pcm: bytes) -> List[int]:
    return list(struct.unpack(f"<{len(pcm) // 2}h", pcm))


def interleave(*channels: bytes) -> bytes:
    columns = [samples(c) for c in channels]
    flat = [s for frame in zip(*columns) for s in frame]
    return struct.pack(f"<{len(flat)}h", *flat)


# --- WAV reading and writing --------------------------------------------------------------


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    pcm = sine(16000, 250)
    path = tmp_path / "tone.wav"
    write_wav(path, pcm, 16000)
    audio = read_wav(path)  # Path objects work on every Python version
    assert audio == WavAudio(pcm=pcm, sample_rate=16000, channels=1)
    assert audio.duration_ms == 250.0
    assert read_wav(str(path)) == audio


def test_stereo_round_trip_readable_by_wave(tmp_path: Path) -> None:
    pcm = interleave(sine(8000, 100), sine(8000, 100, freq=880))
    path = tmp_path / "stereo.wav"
    write_wav(path, pcm, 8000, channels=2)
    with wave.open(str(path), "rb") as reader:
        assert (reader.getnchannels(), reader.getsampwidth(), reader.getframerate()) == (2, 2, 8000)
        assert reader.readframes(reader.getnframes()) == pcm


def test_pcm_to_wav_bytes_and_read_from_file_object() -> None:
    pcm = sine(24000, 40)
    data = pcm_to_wav_bytes(pcm, 24000)
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WAVE"
    assert len(data) == 44 + len(pcm)
    assert read_wav(io.BytesIO(data)) == WavAudio(pcm=pcm, sample_rate=24000, channels=1)


@pytest.mark.parametrize(
    ("pcm", "rate", "channels"),
    [(b"\x00", 16000, 1), (b"\x00\x00", 16000, 2), (b"", 0, 1), (b"", 16000, 0)],
)
def test_pcm_to_wav_bytes_rejects_bad_input(pcm: bytes, rate: int, channels: int) -> None:
    with pytest.raises(SaynaValidationError):
        pcm_to_wav_bytes(pcm, rate, channels)


def test_wav_audio_repr_hides_the_samples() -> None:
    audio = WavAudio(pcm=b"\x01\x02" * 8000, sample_rate=16000, channels=1)
    assert repr(audio) == (
        "WavAudio(sample_rate=16000, channels=1, nbytes=16000, duration_ms=500.0)"
    )


def test_read_wav_refuses_8_bit(tmp_path: Path) -> None:
    path = tmp_path / "u8.wav"
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(1)
        writer.setframerate(8000)
        writer.writeframes(b"\x80" * 800)
    with pytest.raises(SaynaValidationError, match="8-bit samples; only 16-bit") as info:
        read_wav(path)
    assert "ffmpeg" in str(info.value)


def test_read_wav_refuses_float_wav() -> None:
    data = bytearray(pcm_to_wav_bytes(b"\x00" * 8, 8000))
    data[20:22] = (3).to_bytes(2, "little")  # WAVE_FORMAT_IEEE_FLOAT
    data[34:36] = (32).to_bytes(2, "little")
    with pytest.raises(SaynaValidationError, match="not a PCM WAV file"):
        read_wav(io.BytesIO(bytes(data)))


def test_read_wav_refuses_non_riff(tmp_path: Path) -> None:
    path = tmp_path / "fake.wav"
    path.write_bytes(b"ID3" + b"\x00" * 100)
    with pytest.raises(SaynaValidationError, match="not a PCM WAV file"):
        read_wav(path)


def test_read_wav_missing_file_is_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_wav(tmp_path / "nope.wav")


# --- WavWriter ------------------------------------------------------------------------------


def test_wav_writer_patches_header_on_close(tmp_path: Path) -> None:
    pcm = sine(24000, 100)
    path = tmp_path / "tts.wav"
    with WavWriter(path, sample_rate=24000) as writer:
        # Chunk boundaries that split samples, as a network stream may.
        for start in range(0, len(pcm), 333):
            writer.write(pcm[start : start + 333])
        assert writer.frames_written == len(pcm) // 2
    assert writer.closed
    assert writer.duration_ms == 100.0
    raw = path.read_bytes()
    assert struct.unpack("<I", raw[4:8])[0] == len(raw) - 8
    assert struct.unpack("<I", raw[40:44])[0] == len(pcm)
    with wave.open(str(path), "rb") as reader:
        assert reader.getnframes() == len(pcm) // 2
        assert reader.getframerate() == 24000
        assert reader.readframes(reader.getnframes()) == pcm


def test_wav_writer_pads_a_trailing_partial_frame() -> None:
    buffer = io.BytesIO()
    with WavWriter(buffer, sample_rate=8000, channels=2) as writer:
        writer.write(b"\x01\x00\x02\x00\x03")  # one full stereo frame + 1 byte
    assert not buffer.closed  # a caller's file object is left open
    buffer.seek(0)
    audio = read_wav(buffer)
    assert audio.channels == 2
    assert audio.pcm == b"\x01\x00\x02\x00\x03\x00\x00\x00"


def test_wav_writer_empty_file_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    with WavWriter(path, 16000):
        pass
    assert read_wav(path) == WavAudio(pcm=b"", sample_rate=16000, channels=1)


def test_wav_writer_closes_on_error_and_rejects_late_writes(tmp_path: Path) -> None:
    path = tmp_path / "partial.wav"
    writer = WavWriter(path, 16000)

    def fail_mid_stream() -> None:
        with writer:
            writer.write(b"\x10\x00" * 160)
            raise RuntimeError("stream failed")

    with pytest.raises(RuntimeError):
        fail_mid_stream()
    assert read_wav(path).pcm == b"\x10\x00" * 160
    writer.close()  # idempotent
    with pytest.raises(SaynaValidationError, match="closed"):
        writer.write(b"\x00\x00")
    assert "closed=True" in repr(writer)


def test_wav_writer_validates_format(tmp_path: Path) -> None:
    with pytest.raises(SaynaValidationError, match="sample_rate"):
        WavWriter(tmp_path / "x.wav", sample_rate=0)
    assert not (tmp_path / "x.wav").exists()


# --- sizes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((20, 16000, 1, "linear16"), 640),
        ((20, 16000, 2, "linear16"), 1280),
        ((20, 8000, 1, "mulaw"), 160),
        ((20, 8000, 1, "ULAW"), 160),
        ((20, 22050, 1, "pcm"), 882),
        ((10, 44100, 1, "linear16"), 882),
        ((20, 24000, 1, "alaw"), 480),
    ],
)
def test_frame_bytes(args: Any, expected: int) -> None:
    assert frame_bytes(*args) == expected


def test_frame_bytes_defaults_to_mono_linear16() -> None:
    assert frame_bytes(20, 16000) == 640


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((1, 22050, 1, "linear16"), "not a whole number"),
        ((0, 16000, 1, "linear16"), "frame_ms"),
        ((20, 16000, 0, "linear16"), "channels"),
        ((20, 16000, 1, "opus"), "no fixed bytes per sample"),
    ],
)
def test_frame_bytes_errors(args: Any, message: str) -> None:
    with pytest.raises(SaynaValidationError, match=message):
        frame_bytes(*args)


def test_duration_ms() -> None:
    assert duration_ms(32000, 16000) == 1000.0
    assert duration_ms(32000, 16000, 2) == 500.0
    assert duration_ms(8000, 8000, encoding="mulaw") == 1000.0
    assert duration_ms(0, 48000) == 0.0
    with pytest.raises(SaynaValidationError):
        duration_ms(-1, 16000)
    with pytest.raises(SaynaValidationError, match="opus"):
        duration_ms(100, 16000, encoding="opus")


# --- wav_frames -----------------------------------------------------------------------------


def test_frames_have_exact_size_and_last_is_zero_padded(tmp_path: Path) -> None:
    pcm = sine(16000, 105)  # 5 full 20 ms frames + 5 ms
    path = tmp_path / "in.wav"
    write_wav(path, pcm, 16000)
    frames = list(wav_frames(path))
    assert len(frames) == 6
    assert all(len(frame) == 640 for frame in frames)
    joined = b"".join(frames)
    assert joined[: len(pcm)] == pcm
    assert joined[len(pcm) :] == b"\x00" * (6 * 640 - len(pcm))


def test_exact_multiple_has_no_padding_frame() -> None:
    audio = WavAudio(pcm=sine(8000, 60), sample_rate=8000, channels=1)
    frames = list(wav_frames(audio, frame_ms=30))
    assert [len(f) for f in frames] == [480, 480]
    assert b"".join(frames) == audio.pcm


def test_empty_audio_yields_nothing() -> None:
    assert list(wav_frames(WavAudio(pcm=b"", sample_rate=16000, channels=1))) == []


def test_target_from_stt_config_object_or_mapping() -> None:
    audio = WavAudio(pcm=sine(16000, 40), sample_rate=16000, channels=1)
    config = SimpleNamespace(sample_rate=16000, channels=1, encoding="linear16")
    assert b"".join(wav_frames(audio, stt_config=config)) == audio.pcm
    mapping = {"sample_rate": 16000, "channels": 1, "encoding": "pcm"}
    assert b"".join(wav_frames(audio, stt_config=mapping)) == audio.pcm


def test_rate_mismatch_names_both_values_and_the_fix() -> None:
    audio = WavAudio(pcm=sine(16000, 40), sample_rate=16000, channels=1)
    config = SimpleNamespace(sample_rate=8000, channels=1, encoding="linear16")
    with pytest.raises(SaynaValidationError) as info:
        wav_frames(audio, stt_config=config)  # raises on call, before iteration
    message = str(info.value)
    assert "16000 Hz" in message
    assert "8000 Hz" in message
    assert "resample=True" in message
    assert "pip install 'sayna-client[local]'" in message


def test_channel_mismatch_is_an_error_without_resample() -> None:
    audio = WavAudio(pcm=interleave(sine(8000, 20), sine(8000, 20)), sample_rate=8000, channels=2)
    with pytest.raises(SaynaValidationError, match=r"2 channel\(s\).*1 channel\(s\)"):
        wav_frames(audio, channels=1)


def test_explicit_value_contradicting_stt_config() -> None:
    audio = WavAudio(pcm=b"", sample_rate=16000, channels=1)
    config = SimpleNamespace(sample_rate=16000, channels=1, encoding="linear16")
    with pytest.raises(SaynaValidationError, match=r"contradicts stt_config\.sample_rate"):
        wav_frames(audio, sample_rate=8000, stt_config=config)
    assert list(wav_frames(audio, sample_rate=16000, stt_config=config)) == []


@pytest.mark.parametrize("encoding", ["opus", "flac", "alaw"])
def test_unproducible_encoding(encoding: str) -> None:
    audio = WavAudio(pcm=b"", sample_rate=16000, channels=1)
    config = SimpleNamespace(sample_rate=16000, channels=1, encoding=encoding)
    with pytest.raises(SaynaValidationError, match="cannot produce"):
        wav_frames(audio, stt_config=config)


def test_frame_length_must_be_whole_samples() -> None:
    audio = WavAudio(pcm=b"", sample_rate=22050, channels=1)
    with pytest.raises(SaynaValidationError, match="not a whole number"):
        wav_frames(audio, frame_ms=1)


def test_the_frame_lengths_suggested_are_whole_at_that_rate() -> None:
    """At 11025 Hz neither 10 nor 20 ms is a whole number of samples: the error names
    lengths that are (40 ms first), not the usual 10/20/40."""
    audio = WavAudio(pcm=b"", sample_rate=11025, channels=1)
    with pytest.raises(SaynaValidationError) as caught:
        wav_frames(audio, frame_ms=20)
    message = str(caught.value)
    assert "such as 40 ms, 80 ms, 120 ms" in message
    assert "10 ms" not in message


def test_mulaw_frames() -> None:
    pcm = sine(8000, 50)
    audio = WavAudio(pcm=pcm, sample_rate=8000, channels=1)
    config = SimpleNamespace(sample_rate=8000, channels=1, encoding="ulaw")
    frames = list(wav_frames(audio, stt_config=config))
    assert [len(f) for f in frames] == [160, 160, 160]
    assert frames[-1][-80:] == b"\xff" * 80  # mu-law silence pads the last frame
    decoded = samples(mulaw_to_linear16(b"".join(frames))[: len(pcm)])
    for got, want in zip(decoded, samples(pcm)):
        assert abs(got - want) <= abs(want) / 16 + 4


def test_downmix_and_upmix_without_rate_change_need_no_extras() -> None:
    left = struct.pack("<4h", 100, -100, 32767, -32768)
    right = struct.pack("<4h", 300, -301, 32767, -32768)
    stereo = WavAudio(pcm=interleave(left, right), sample_rate=8000, channels=2)
    mono = b"".join(wav_frames(stereo, channels=1, resample=True, frame_ms=1))[:8]
    assert samples(mono) == [200, -201, 32767, -32768]

    single = WavAudio(pcm=left, sample_rate=8000, channels=1)
    dup = b"".join(wav_frames(single, channels=2, resample=True, frame_ms=1))[:16]
    assert samples(dup) == [100, 100, -100, -100, 32767, 32767, -32768, -32768]


def test_mixing_between_multichannel_layouts_is_refused() -> None:
    audio = WavAudio(pcm=b"\x00" * 12, sample_rate=8000, channels=3)
    with pytest.raises(SaynaValidationError, match="mono"):
        wav_frames(audio, channels=2, resample=True)


def test_resample_with_soxr() -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("soxr")
    pcm = sine(16000, 500, freq=440.0)
    audio = WavAudio(pcm=interleave(pcm, pcm), sample_rate=16000, channels=2)
    config = SimpleNamespace(sample_rate=8000, channels=1, encoding="linear16")
    frames = list(wav_frames(audio, stt_config=config, resample=True))
    assert all(len(frame) == 320 for frame in frames)
    assert len(frames) == 25
    out = np.frombuffer(b"".join(frames), dtype="<i2").astype(np.float64)
    spectrum = np.abs(np.fft.rfft(out[500:3500]))
    peak_hz = np.argmax(spectrum) * 8000 / 3000
    assert abs(peak_hz - 440) < 5
    rms = math.sqrt(float(np.mean(out[500:3500] ** 2)))
    assert 0.8 * 12000 / math.sqrt(2) < rms < 1.2 * 12000 / math.sqrt(2)


def test_resample_up_to_stereo_with_soxr() -> None:
    pytest.importorskip("soxr")
    audio = WavAudio(pcm=sine(8000, 100), sample_rate=8000, channels=1)
    frames = list(wav_frames(audio, sample_rate=16000, channels=2, resample=True))
    assert [len(f) for f in frames] == [1280] * 5
    both = samples(b"".join(frames))
    assert both[0::2] == both[1::2]


def test_resample_without_soxr_explains_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "soxr", None)  # makes `import soxr` fail
    audio = WavAudio(pcm=sine(16000, 20), sample_rate=16000, channels=1)
    with pytest.raises(SaynaValidationError, match="pip install 'sayna-client\\[local\\]'"):
        wav_frames(audio, sample_rate=8000, resample=True)


# --- mu-law -----------------------------------------------------------------------------------


def test_mulaw_round_trip_error_bound() -> None:
    values = range(-32768, 32768)
    pcm = struct.pack(f"<{len(values)}h", *values)
    encoded = linear16_to_mulaw(pcm)
    assert len(encoded) == len(values)
    decoded = samples(mulaw_to_linear16(encoded))
    for value, back in zip(values, decoded):
        error = abs(back - value)
        if abs(value) <= 32635:  # the G.711 clip level
            assert error <= abs(value) / 16 + 4, value
        else:
            assert error <= 645, value


def test_mulaw_codes_survive_decode_encode() -> None:
    codes = bytes(range(256))
    again = linear16_to_mulaw(mulaw_to_linear16(codes))
    # 0x7F is "negative zero"; it decodes to 0, which encodes as 0xFF.
    assert again == codes.replace(b"\x7f", b"\xff")


def test_mulaw_known_values_and_odd_input() -> None:
    assert linear16_to_mulaw(b"\x00\x00") == b"\xff"
    assert mulaw_to_linear16(b"\xff") == b"\x00\x00"
    assert linear16_to_mulaw(b"\x00\x00\x01") == b"\xff"  # trailing odd byte ignored
    assert linear16_to_mulaw(b"") == b""
    assert mulaw_to_linear16(b"") == b""


def test_server_engines_share_the_implementation() -> None:
    from sayna_client.server.engines import base

    assert base.linear16_to_mulaw is linear16_to_mulaw
    assert base.mulaw_to_linear16 is mulaw_to_linear16
    assert {"linear16_to_mulaw", "mulaw_to_linear16"} <= set(base.__all__)


# --- paced ------------------------------------------------------------------------------------


async def _timed(source: Any, **kwargs: Any) -> List[float]:
    loop = asyncio.get_running_loop()
    start = loop.time()
    stamps = []
    async for _ in paced(source, **kwargs):
        stamps.append(loop.time() - start)
    return stamps


async def test_paced_keeps_real_time_and_order() -> None:
    frames = [bytes([i]) * 4 for i in range(10)]
    received = [frame async for frame in paced(frames, frame_ms=20)]
    assert received == frames
    stamps = await _timed(frames, frame_ms=20)
    assert stamps == sorted(stamps)
    for index, stamp in enumerate(stamps):
        assert stamp >= index * 0.020 * 0.8
    assert stamps[-1] >= 9 * 0.020 * 0.8


async def test_paced_speed_factor() -> None:
    stamps = await _timed([b"x"] * 11, frame_ms=20, speed=2.0)
    assert stamps[-1] >= 10 * 0.010 * 0.8


async def test_paced_accepts_async_iterables() -> None:
    async def source() -> AsyncIterator[bytes]:
        for i in range(5):
            yield bytes([i])

    received = [frame async for frame in paced(source(), frame_ms=10)]
    assert received == [bytes([i]) for i in range(5)]


async def test_paced_catches_up_after_a_slow_consumer() -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    stamps = []
    async for _ in paced([b"x"] * 6, frame_ms=20):
        stamps.append(loop.time() - start)
        if len(stamps) == 1:
            await asyncio.sleep(0.1)  # a stall: frames 1-5 are then due at once
    assert stamps[-1] >= 5 * 0.020 * 0.8
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("speed", [0, 0.0, math.inf])
async def test_paced_without_pacing(speed: float) -> None:
    frames = [b"x"] * 500  # 10 s of audio at real time
    stamps = await _timed(frames, frame_ms=20, speed=speed)
    assert len(stamps) == 500
    assert stamps[-1] < 5.0


@pytest.mark.parametrize(
    "kwargs", [{"speed": -1.0}, {"speed": math.nan}, {"frame_ms": 0}, {"frame_ms": 2.5}]
)
async def test_paced_validates_arguments(kwargs: Any) -> None:
    with pytest.raises(SaynaValidationError):
        async for _ in paced([b"x"], **kwargs):
            pass


async def test_paced_can_be_closed_early() -> None:
    stream = paced([b"x"] * 100, frame_ms=20)
    assert await stream.__anext__() == b"x"
    await stream.aclose()
