"""The ``sayna`` command line against a local server running in its own thread."""

from __future__ import annotations

import asyncio
import json
import threading
import wave
from collections.abc import Iterator
from pathlib import Path

import pytest

from sayna_client import audio
from sayna_client.cli import main
from sayna_client.server import LocalServer


class ThreadedServer:
    """A LocalServer on its own loop thread, so synchronous code (the CLI) can call it."""

    def __init__(self, **kwargs: object) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = LocalServer(**kwargs)  # type: ignore[arg-type]
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LocalServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self.server

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.delenv("SAYNA_API_KEY", raising=False)
    with ThreadedServer(api_key="cli-key") as server:
        monkeypatch.setenv("SAYNA_API_KEY", "cli-key")
        yield server.url


def test_health_and_voices_json(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["health", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out) == {"status": "OK"}
    assert main(["voices", "--url", url, "--json"]) == 0
    voices = json.loads(capsys.readouterr().out)
    assert voices["fake"][0]["id"]


def test_speak_to_wav_then_transcribe(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.wav"
    assert (
        main(
            [
                "speak",
                "one two three",
                "-o",
                str(out),
                "--url",
                url,
                "--provider",
                "fake",
                "--sample-rate",
                "16000",
            ]
        )
        == 0
    )
    with wave.open(str(out)) as w:
        assert w.getframerate() == 16000
        assert w.getnframes() > 0
    capsys.readouterr()
    assert (
        main(["transcribe", str(out), "--url", url, "--provider", "fake", "--speed", "0", "--json"])
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert result["transcript"] == "word word word"


def test_token_rooms_hooks(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["token", "room-x", "user-1", "--url", url]) == 0
    token = json.loads(capsys.readouterr().out)
    assert token["room_name"] == "room-x"
    assert token["token"].count(".") == 2
    assert main(["rooms", "--url", url]) == 0
    assert "rooms" in json.loads(capsys.readouterr().out)
    hook = ["hooks", "set", "sip.example.com", "http://127.0.0.1:9/h", "--auth-id", "t1"]
    assert main([*hook, "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["hooks"][0]["host"] == "sip.example.com"
    assert main(["hooks", "list", "--url", url]) == 0
    capsys.readouterr()
    assert main(["hooks", "delete", "sip.example.com", "--url", url]) == 0
    assert json.loads(capsys.readouterr().out)["hooks"] == []


def test_errors_exit_1_with_a_message(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recording", "missing", "--url", url, "-o", "/dev/null"]) == 1
    assert "404" in capsys.readouterr().err
    assert main(["voices", "--url", url, "--api-key", "wrong"]) == 1
    assert "401" in capsys.readouterr().err


def test_demo_with_the_fake_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--engine", "fake", "--speed", "0", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "heard 'word word" in out
    assert audio.read_wav(tmp_path / "sayna-demo-speak.wav").sample_rate == 16000


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2
