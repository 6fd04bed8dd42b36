"""What ``sayna`` and ``sayna serve`` share: a parser whose errors are one line, the
argument types that refuse nonsense before anything runs, and the exit statuses.

Exit statuses: 0 success, 1 a failure while running (server unreachable, refused,
a file that cannot be written), 2 a usage error (a bad option value, a missing or
unreadable input file), 130 interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import NoReturn

__all__ = [
    "EXIT_FAILURE",
    "EXIT_USAGE",
    "SAMPLE_RATES",
    "CliError",
    "Parser",
    "input_file",
    "non_negative_float",
    "output_file",
    "port",
    "sample_rate",
    "speaking_rate",
]

EXIT_FAILURE = 1
EXIT_USAGE = 2

#: Sample rates the CLI accepts: the ones speech providers produce and consume.
SAMPLE_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)

#: ``--rate`` bounds: slower or faster speech is no longer intelligible.
MIN_SPEAKING_RATE = 0.25
MAX_SPEAKING_RATE = 4.0


class CliError(Exception):
    """A problem reported as one line on stderr, with the exit status to return."""

    def __init__(self, message: str, status: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.status = status


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line naming the fix, exit 2."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    def error(self, message: str) -> NoReturn:
        """Print ``prog: error: message (see `prog --help`)`` and exit with status 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def sample_rate(text: str) -> int:
    """``--sample-rate``: one of :data:`SAMPLE_RATES` (Hz)."""
    known = ", ".join(map(str, SAMPLE_RATES))
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a sample rate; use one of {known} (Hz)"
        ) from None
    if value not in SAMPLE_RATES:
        raise argparse.ArgumentTypeError(f"{value} Hz is not supported; use one of {known}")
    return value


def speaking_rate(text: str) -> float:
    """``--rate``: a speed factor from 0.25 to 4 (1 = normal)."""
    bounds = f"between {MIN_SPEAKING_RATE} and {MAX_SPEAKING_RATE:g} (1 = normal speed)"
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; use one {bounds}") from None
    if not MIN_SPEAKING_RATE <= value <= MAX_SPEAKING_RATE:
        raise argparse.ArgumentTypeError(f"{text} is out of range; use a value {bounds}")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0 (``--speed``: 0 means as fast as possible)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number >= 0")
    return value


def non_empty(text: str) -> str:
    """A name that is not empty nor only spaces (a room, an identity)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    return text


def output_dir(text: str) -> str:
    """A folder to write into: made when missing, so only a path that exists and is
    not a folder is refused here."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty")
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError(
            f"{text} is not a directory; pass a folder (it is created when missing)"
        )
    return text


def port(text: str) -> int:
    """``--port``: 0-65535 (0 picks a free port)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(
            f"{value} is not a TCP port; use 1-65535, or 0 for any free port"
        )
    return value


def input_file(text: str) -> Path:
    """An existing, readable regular file."""
    path = Path(text)
    if not path.exists():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; pass a file")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"{text}: permission denied (cannot read it)")
    return path


def output_file(text: str) -> Path:
    """A file path whose folder exists and is writable (the file may exist)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; pass a file name")
    folder = path.parent
    if not folder.is_dir():
        raise argparse.ArgumentTypeError(
            f"cannot write {text}: the folder {folder} does not exist; create it first "
            "or write somewhere else"
        )
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: no permission to write in {folder}")
    return path


def silence_broken_pipe() -> int:
    """After ``BrokenPipeError`` on stdout (``sayna voices | head -1``): point stdout at
    /dev/null so the interpreter's final flush stays quiet, and return status 1."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass
    return EXIT_FAILURE
