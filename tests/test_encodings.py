"""One table of audio encodings (``protocol.encodings``), and every reader of an
encoding name agrees with it: the SDK's audio arithmetic, ``finish_audio()``'s
silence, the agents' playback clock, the local server's engines and its mirror of
Deepgram's refusal."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sayna_client import STTConfig, audio
from sayna_client._alaw import linear16_to_alaw
from sayna_client.agents.speech import bytes_per_second
from sayna_client.errors import SaynaValidationError
from sayna_client.protocol import encodings
from sayna_client.protocol.encodings import ENCODINGS, lookup
from sayna_client.realtime.lane import silence_frame
from sayna_client.server.engines.base import encode_output
from sayna_client.server.validation import DEEPGRAM_ENCODINGS, ConfigRejected, _start_stt

ALL_NAMES = sorted({n for e in ENCODINGS for n in (e.name, *e.aliases)})
FIXED = [(n, lookup(n)) for n in ALL_NAMES if encodings.bytes_per_sample(n) is not None]
COMPRESSED = [n for n in ALL_NAMES if encodings.bytes_per_sample(n) is None]
PCM = bytes(range(0, 200, 2)) * 4  # 200 pcm16 samples, not silent


def test_names_are_lower_case_and_each_means_one_encoding() -> None:
    seen: list[str] = []
    for encoding in ENCODINGS:
        for name in (encoding.name, *encoding.aliases):
            assert name == name.strip().lower()
            seen.append(name)
            assert lookup(name) is encoding
            assert lookup(f"  {name.upper()} ") is encoding
    assert len(seen) == len(set(seen))
    assert lookup("mp3") is None
    assert encodings.canonical("ULAW") == "mulaw"


@pytest.mark.parametrize("name", ALL_NAMES)
def test_audio_arithmetic_uses_the_tables_sample_size(name: str) -> None:
    width = encodings.bytes_per_sample(name)
    if width is None:
        with pytest.raises(SaynaValidationError, match="no fixed bytes per sample"):
            audio.frame_bytes(20, 16000, encoding=name)
        return
    assert audio.frame_bytes(20, 16000, 2, encoding=name) == 320 * 2 * width
    assert audio.duration_ms(16000 * width, 16000, encoding=name) == 1000


@pytest.mark.parametrize("name", ALL_NAMES)
def test_finish_audio_silence_follows_the_table(name: str) -> None:
    found = lookup(name)
    assert found is not None
    stt = STTConfig(provider="deepgram", encoding=name, sample_rate=8000, channels=1)
    if found.bytes_per_sample is None:
        with pytest.raises(SaynaValidationError, match="encoder"):
            silence_frame(stt, 20)
        return
    frame = silence_frame(stt, 20)
    assert len(frame) == 160 * found.bytes_per_sample
    assert set(frame) == {found.silence}


def test_the_silent_bytes_are_silent() -> None:
    mulaw = lookup("mulaw")
    assert mulaw is not None
    assert mulaw.silence is not None
    assert audio.mulaw_to_linear16(bytes([mulaw.silence]) * 4) == bytes(8)


@pytest.mark.parametrize("name", ALL_NAMES)
def test_the_agents_playback_clock_uses_the_tables_sample_size(name: str) -> None:
    width = encodings.bytes_per_sample(name)
    if width is not None:
        assert bytes_per_second(name, 8000) == 8000.0 * width


@pytest.mark.parametrize("name", ALL_NAMES)
def test_local_engines_produce_g711_for_every_mulaw_and_alaw_name(name: str) -> None:
    produced = encode_output(PCM, name)
    if encodings.canonical(name) == "mulaw":
        assert produced == audio.linear16_to_mulaw(PCM)
    elif encodings.canonical(name) == "alaw":
        assert produced == linear16_to_alaw(PCM)
    else:  # linear16, and the compressed names (server/engines/output.py), stay pcm16
        assert produced == PCM


def test_the_local_server_mirrors_deepgram_with_the_tables_list() -> None:
    assert tuple(e.name for e in ENCODINGS if e.deepgram) == DEEPGRAM_ENCODINGS
    config = {"encoding": "", "sample_rate": 16000, "language": "en-US"}
    for name in DEEPGRAM_ENCODINGS:
        _start_stt("deepgram", {**config, "encoding": name})  # accepted
    for alias in ("ulaw", "pcm", "mp3"):  # Deepgram takes canonical names only
        with pytest.raises(ConfigRejected):
            _start_stt("deepgram", {**config, "encoding": alias})


#: Tables of other things that share a name with an encoding: the real server's
#: Content-Type per TTS ``audio_format`` (its exact names, mirrored by the local server).
OTHER_TABLES = {"server/engines/output.py"}


def test_no_module_keeps_a_table_of_its_own() -> None:
    """No set, tuple, list or dict outside protocol/encodings.py lists two or more
    encoding names: every reader asks the table."""
    names = set(ALL_NAMES)
    src = Path(encodings.__file__).resolve().parents[1]
    found = []
    for path in sorted(src.rglob("*.py")):
        where = path.relative_to(src).as_posix()
        if where == "protocol/encodings.py" or where in OTHER_TABLES:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if not isinstance(node, (ast.Set, ast.Tuple, ast.List, ast.Dict)) or not items:
                continue
            listed = [i.value for i in items if isinstance(i, ast.Constant) and i.value in names]
            if len(listed) >= 2:
                found.append(f"{where}:{node.lineno} {listed}")
    assert found == []


@pytest.mark.parametrize("name", ALL_NAMES)
def test_wav_frames_produces_what_the_table_says(name: str, tmp_path: Path) -> None:
    found = lookup(name)
    assert found is not None
    path = tmp_path / "a.wav"
    audio.write_wav(path, PCM, 8000, 1)
    stt = {"encoding": name, "sample_rate": 8000, "channels": 1}
    if not found.sdk_encodes:
        with pytest.raises(SaynaValidationError, match="cannot produce"):
            list(audio.wav_frames(path, stt_config=stt, frame_ms=20))
        return
    frames = b"".join(audio.wav_frames(path, stt_config=stt, frame_ms=20))
    want = audio.linear16_to_mulaw(PCM) if found.name == "mulaw" else PCM
    assert frames[: len(want)] == want
