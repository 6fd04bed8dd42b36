"""Files the command line writes: nothing is touched until the new content is whole, so
a failure (no server, a wrong key, a full disk) leaves the old file as it was, and the
error names the file."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import wave
from pathlib import Path

import pytest

from helpers.cli import one_line_error
from sayna_client import audio
from sayna_client.cli import main
from sayna_client.server.engines.fake import render_words

from .conftest import (
    TIMEOUT,
    ThreadedServer,
    environment,
    leftovers,
    run_cli,
)

OLD = b"yesterday's conversation, kept"


def caller_wav(path: Path, *utterances: int, rate: int = 16000) -> Path:
    """Bursts the fake STT hears as utterances (``n`` words each), a second apart."""
    pcm = b"".join(render_words(["x"] * n, rate) + bytes(2 * rate) for n in utterances)
    audio.write_wav(path, pcm, rate)
    return path


def test_talk_leaves_the_output_alone_when_it_cannot_connect(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], refusing_port: int
) -> None:
    """`sayna talk --output FILE` emptied FILE before connecting: no server, a typo in
    --url or a wrong key left a 44-byte WAV where the user's file was."""
    caller = caller_wav(tmp_path / "caller.wav", 1)
    kept = tmp_path / "yesterday.wav"
    kept.write_bytes(OLD)
    base = ["talk", "--input", str(caller), "--output", str(kept), "--speed", "0"]
    with ThreadedServer(api_key="right-key") as server:
        assert main([*base, "--url", server.url, "--api-key", "wrong"]) == 1
        assert "refused the API key" in capsys.readouterr().err
        assert kept.read_bytes() == OLD
    assert main([*base, "--url", f"http://127.0.0.1:{refusing_port}"]) == 1
    assert "connection refused" in capsys.readouterr().err
    assert kept.read_bytes() == OLD
    assert leftovers(tmp_path) == []


def test_talk_output_is_replaced_once_the_conversation_ends(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threaded.script("hello there")
    caller = caller_wav(tmp_path / "caller.wav", 2)
    out = tmp_path / "agent.wav"
    out.write_bytes(OLD)
    out.chmod(0o640)
    args = ["talk", "--url", threaded.url, "--input", str(caller), "--output", str(out)]
    assert main([*args, "--speed", "0", "--sample-rate", "16000"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "agent: You said: hello there."
    assert audio.read_wav(out).nbytes > 0
    assert stat.S_IMODE(out.stat().st_mode) == 0o640  # the old file's permissions
    assert leftovers(tmp_path) == []


def test_talk_output_holds_what_was_said_before_ctrl_c(
    threaded: ThreadedServer, tmp_path: Path
) -> None:
    """Ctrl-C after the agent has spoken: the WAV is finalised (a valid header over what
    was played) and put in place; exit status 130, no traceback."""
    threaded.script("first question", "second question", "third question")
    caller = caller_wav(tmp_path / "caller.wav", 2, 2, 2)
    out = tmp_path / "agent.wav"
    out.write_bytes(OLD)
    # SIGINT's default action, as under a terminal (the test run may ignore it).
    command = [
        sys.executable,
        "-c",
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from sayna_client.cli import main; sys.exit(main())",
    ]
    args = ["talk", "--url", threaded.url, "--input", str(caller), "--output", str(out)]
    process = subprocess.Popen(
        [*command, *args, "--sample-rate", "16000"],
        cwd=tmp_path,
        env=environment(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        line = process.stdout.readline()
        while line and not line.startswith("agent: "):  # the first answer was played
            line = process.stdout.readline()
        assert line == "agent: You said: first question.\n", process.stderr.read()
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=TIMEOUT)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert "Traceback" not in err, err
    assert process.returncode == 130, (rest, err)
    with wave.open(str(out)) as wav:  # a whole WAV: its header counts what it holds
        frames = wav.getnframes()
        assert frames > 0
        assert len(wav.readframes(frames)) == 2 * frames
    assert leftovers(tmp_path) == []


def _with_file_size_limit(limit: int) -> list[str]:
    """``python -c ...`` running ``sayna`` with files limited to ``limit`` bytes (as
    ``ulimit -f`` does: a write beyond it fails with EFBIG, a full disk stand-in)."""
    code = (
        "import resource, sys; "
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "from sayna_client.cli import main; sys.exit(main())"
    )
    return [sys.executable, "-c", code]


@pytest.mark.skipif(sys.platform == "win32", reason="RLIMIT_FSIZE is POSIX")
def test_a_write_that_fails_partway_keeps_the_old_file_and_names_it(
    threaded: ThreadedServer, tmp_path: Path
) -> None:
    """A write failing partway (disk full, quota, ulimit -f) left a truncated file in
    place of the old one, and said only `error: File too large`."""
    previous = tmp_path / "prev.wav"
    previous.write_bytes(OLD)
    text = " ".join(["word"] * 40)  # about 300 KB of audio at 24 kHz
    done = run_cli(
        "speak",
        text,
        "-o",
        "prev.wav",
        "--url",
        threaded.url,
        "--provider",
        "fake",
        cwd=tmp_path,
        command=_with_file_size_limit(20 * 1024),
    )
    one_line_error(done, 1, "error: cannot write prev.wav: File too large")
    assert previous.read_bytes() == OLD
    assert leftovers(tmp_path) == []
    assert done.stdout == ""


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_full_device_is_named(threaded: ThreadedServer, tmp_path: Path) -> None:
    """A path that is not a regular file (a device, a FIFO) is written in place, never
    replaced: /dev/full stays a device, and its error names it."""
    done = run_cli(
        "speak", "hi", "-o", "/dev/full", "--url", threaded.url, "--provider", "fake", cwd=tmp_path
    )
    one_line_error(done, 1, "error: cannot write /dev/full: No space left on device")
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)


def test_demo_writes_through_the_same_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "demo"
    out.mkdir()
    old = out / "sayna-demo-speak.wav"
    old.write_bytes(OLD)
    assert main(["demo", "--engine", "fake", "--speed", "0", "--output-dir", str(out)]) == 0
    capsys.readouterr()
    assert audio.read_wav(old).sample_rate == 16000
    assert leftovers(out) == []
