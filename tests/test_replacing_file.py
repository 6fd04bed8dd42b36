"""``_wav.ReplacingFile``: how ``write_wav`` and the command line write a whole file,
beside the old one, then renamed over it."""

from __future__ import annotations

import os
import stat
import sys
import threading
from pathlib import Path

import pytest

from sayna_client import audio
from sayna_client._wav import ReplacingFile

OLD = b"the old content"
#: Seconds the FIFO's reader may take (bounds a failing test).
TIMEOUT = 60


def leftovers(folder: Path) -> list[str]:
    """Temporary files left beside a target (``.NAME.XXXXXXXX.part``)."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".part"))


def test_replacing_file_leaves_the_old_file_until_it_commits(tmp_path: Path) -> None:
    path = tmp_path / "out.bin"
    path.write_bytes(OLD)
    out = ReplacingFile(path)
    out.write(b"half of the new")
    assert path.read_bytes() == OLD  # nothing touched while writing
    with pytest.raises(RuntimeError, match="interrupted"), out:
        raise RuntimeError("interrupted")
    assert path.read_bytes() == OLD
    assert leftovers(tmp_path) == []
    with ReplacingFile(path) as out:
        out.write(b"new")
    assert path.read_bytes() == b"new"
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX links and modes")
def test_replacing_file_keeps_links_and_permissions(tmp_path: Path) -> None:
    target = tmp_path / "real.wav"
    target.write_bytes(OLD)
    target.chmod(0o600)
    link = tmp_path / "link.wav"
    link.symlink_to(target)
    audio.write_wav(link, bytes(320), 16000)
    assert link.is_symlink()  # the link stays; the file it points to is new
    assert audio.read_wav(target).nbytes == 320
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_replacing_file_writes_a_fifo_in_place(tmp_path: Path) -> None:
    """A FIFO (or /dev/null, a terminal) cannot be replaced: it is written in place."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    received = bytearray()

    def read() -> None:
        with open(fifo, "rb") as reader:
            received.extend(reader.read())

    reader = threading.Thread(target=read)
    reader.start()
    with ReplacingFile(fifo) as out:
        out.write(b"through the pipe")
    reader.join(TIMEOUT)
    assert bytes(received) == b"through the pipe"
    assert stat.S_ISFIFO(fifo.stat().st_mode)
    assert leftovers(tmp_path) == []


def test_replacing_file_errors_name_the_file_not_the_temporary_one(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "out.wav"
    with pytest.raises(FileNotFoundError) as info:
        audio.write_wav(missing, bytes(320), 16000)
    assert info.value.filename == str(missing)
