"""Files the command line writes: nothing is touched until the new content is whole, so
a failure (no server, a wrong key, a full disk) leaves the old file as it was, and the
error names the file."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from sayna_client import audio
from sayna_client.cli import main

from .conftest import (
    ThreadedServer,
    leftovers,
    one_line_error,
    run_cli,
)

OLD = b"yesterday's conversation, kept"


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
