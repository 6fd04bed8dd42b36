"""Checks of a finished ``sayna`` command, shared by the CLI tests."""

from __future__ import annotations

import subprocess

__all__ = ["one_line_error"]


def one_line_error(done: subprocess.CompletedProcess[str], status: int, *parts: str) -> str:
    """Exit ``status``, no traceback, one stderr line holding every part; returns it."""
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == status, (done.returncode, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]
