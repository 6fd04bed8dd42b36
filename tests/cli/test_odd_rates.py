"""WAV files at a rate where 20 ms is not a whole number of samples (11025 Hz: 220.5):
``--help`` says any rate, and they were refused (``frame_ms=20 is 220.5 samples``).
They are resampled to 16 kHz on the way, through the local server's fake engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sayna_client.cli import main

from .conftest import ThreadedServer, tone_wav


@pytest.mark.parametrize("channels", [1, 2])
def test_transcribe_an_11025_hz_file(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], channels: int
) -> None:
    wav = tone_wav(tmp_path / "odd.wav", words=3, rate=11025, channels=channels)
    args = ["transcribe", str(wav), "--url", threaded.url, "--provider", "fake", "--speed", "0"]
    assert main([*args, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["transcript"] == "word word word", err
    session = threaded.server.records.last_session
    assert session.config["stt_config"]["sample_rate"] == 16000  # resampled on the way


def test_talk_with_an_11025_hz_input(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threaded.script("hello there")
    wav = tone_wav(tmp_path / "odd.wav", words=2, rate=11025)
    args = ["talk", "--url", threaded.url, "--input", str(wav), "--speed", "0"]
    assert main([*args, "--output", str(tmp_path / "agent.wav")]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "you: hello there",
        "agent: You said: hello there.",
    ]
