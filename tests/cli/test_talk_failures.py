"""``sayna talk`` when something other than the conversation fails: a sound card that is
listed but cannot be opened, the connection lost midway, the user's own agent failing.
Each is one line naming the culprit and a fix the command line offers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from helpers.cli import one_line_error
from helpers.devices import BUSY_SOUNDDEVICE
from sayna_client import audio
from sayna_client.server.engines.fake import render_words
from sayna_client.server.faults import Faults

from .conftest import ThreadedServer, environment, leftovers, run_cli


@pytest.fixture
def busy_sounddevice() -> Path:
    """The folder of a stand-in ``sounddevice`` module whose streams cannot be opened."""
    return BUSY_SOUNDDEVICE


def caller_wav(path: Path, *utterances: int, rate: int = 16000) -> Path:
    """Bursts the fake STT hears as utterances (``n`` words each), a second apart."""
    pcm = b"".join(render_words(["x"] * n, rate) + bytes(2 * rate) for n in utterances)
    audio.write_wav(path, pcm, rate)
    return path


def _with_sounddevice(folder: Path, **extra: str) -> dict[str, str]:
    env = environment(**extra)
    env["PYTHONPATH"] = os.pathsep.join((str(folder), env["PYTHONPATH"]))
    return env


def _talk_on_a_busy_card(
    threaded: ThreadedServer, tmp_path: Path, busy_sounddevice: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    """``sayna talk ARGS`` against ``threaded`` with a sound card listed but busy."""
    return run_cli(
        "talk",
        "--url",
        threaded.url,
        *args,
        cwd=tmp_path,
        env=_with_sounddevice(busy_sounddevice),
    )


def test_a_speaker_that_cannot_be_opened_is_one_line(
    threaded: ThreadedServer, tmp_path: Path, busy_sounddevice: Path
) -> None:
    """It was a PortAudioError traceback from SoundDeviceSpeaker.start."""
    caller = caller_wav(tmp_path / "caller.wav", 1)
    done = _talk_on_a_busy_card(threaded, tmp_path, busy_sounddevice, "--input", str(caller))
    line = one_line_error(
        done,
        1,
        "error: cannot open the audio output device (Fake USB Audio): Device unavailable "
        "[PaErrorCode -9985]; close the program using it, or write the agent's voice to a "
        "WAV file: --output agent.wav",
    )
    assert "device=" not in line
    assert "PacedSpeaker" not in line


def test_a_microphone_that_cannot_be_opened_is_not_blamed_on_the_agent(
    threaded: ThreadedServer, tmp_path: Path, busy_sounddevice: Path
) -> None:
    """It said `the agent's reply failed: PortAudioError(...)`."""
    out = tmp_path / "agent.wav"
    out.write_bytes(b"kept")
    done = _talk_on_a_busy_card(threaded, tmp_path, busy_sounddevice, "--output", str(out))
    line = one_line_error(
        done,
        1,
        "error: cannot open the audio input device (Fake USB Audio): Device unavailable",
        "close the program using it, or read the caller from a WAV file: --input caller.wav",
    )
    assert "agent's reply" not in line
    assert out.read_bytes() == b"kept"
    assert leftovers(tmp_path) == []


def test_a_connection_lost_midway_is_one_line(tmp_path: Path) -> None:
    """It was the SDK's log line, then an error advising `client.connect()`."""
    caller = caller_wav(tmp_path / "caller.wav", 2, 2, 2)
    out = tmp_path / "agent.wav"
    out.write_bytes(b"kept")
    # The server drops the TCP connection (no Close frame) after a few frames: ready,
    # then results of the caller's speech.
    with ThreadedServer(faults=Faults(drop_connection_after_frames=4)) as server:
        done = run_cli(
            "talk",
            "--url",
            server.url,
            "--input",
            str(caller),
            "--output",
            str(out),
            "--speed",
            "0",
            cwd=tmp_path,
        )
    line = one_line_error(
        done,
        1,
        "error: the connection to the server was lost during the conversation "
        "(Connection closed (code 1006)",
    )
    assert "client.connect()" not in line
    assert out.read_bytes() == b"kept"  # a failed conversation replaces nothing
    assert leftovers(tmp_path) == []


def test_a_network_error_of_the_users_agent_is_the_agents(
    threaded: ThreadedServer, tmp_path: Path, refusing_port: int
) -> None:
    """The user's reply calling its LLM on a port where nothing listens: an OSError of
    the agent's, reported as if Sayna failed (`error: Connect call failed ...`)."""
    (tmp_path / "bot.py").write_text(
        "import asyncio\n\n\n"
        "async def reply(text):\n"
        f"    await asyncio.open_connection('127.0.0.1', {refusing_port})\n"
        "    yield 'never said'\n",
        encoding="utf-8",
    )
    caller = caller_wav(tmp_path / "caller.wav", 2)
    done = run_cli(
        "talk",
        "--url",
        threaded.url,
        "--input",
        str(caller),
        "--output",
        "agent.wav",
        "--reply",
        "bot.py:reply",
        "--speed",
        "0",
        cwd=tmp_path,
    )
    one_line_error(
        done,
        1,
        "error: the agent's reply (--reply bot.py:reply) failed: ConnectionRefusedError(",
        f"'127.0.0.1', {refusing_port}",
    )
