"""What every ``sayna`` command shares: the connection options, the client, the output.

Results go to stdout (JSON or text); progress shows on stderr only when it is a
terminal, so captured output holds only results.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import re
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from .._cli_util import CliError
from .._config import RetryPolicy, Timeouts
from .._http_errors import printable
from .._wav import ReplacingFile
from ..client import SaynaClient

__all__ = [
    "CLI_RETRY",
    "DEFAULT_URL",
    "PROGRESS_AFTER",
    "REST_TIMEOUT",
    "STREAM_TIMEOUT",
    "Progress",
    "add_command",
    "add_conn",
    "cannot_write",
    "client",
    "connection_lost_reported",
    "print_json",
    "stream_timeouts",
    "working",
    "write_output",
]

DEFAULT_URL = "http://127.0.0.1:3001"

#: ``--timeout`` of the REST commands: seconds for each request's answer.
REST_TIMEOUT = 10.0
#: ``--timeout`` of the streaming commands (``transcribe``, ``talk``): seconds to connect,
#: then to get ``ready`` (the server may take 30 s to open its speech providers).
STREAM_TIMEOUT = 45.0
#: The REST commands' retries: a 429, a 5xx or a refused connection is tried again
#: (twice, honouring ``Retry-After``), a timeout is not: a server that never answers
#: fails within ``--timeout`` (retried, it took three times as long, 183 s, as the
#: timeout named).
CLI_RETRY = RetryPolicy(retry_timeouts=False)

#: Seconds an operation runs before :func:`working` shows that it is still going.
PROGRESS_AFTER = 1.0


#: DEL and the C1 controls, which ``json.dumps(ensure_ascii=False)`` leaves as they are
#: (it escapes C0 only): a terminal may act on them (``\x9b`` is ESC ``[``).
_UNESCAPED_CONTROLS = re.compile(r"[\x7f-\x9f]")


def print_json(data: Any) -> None:
    """Print ``data`` as indented JSON (non-JSON values as their ``str``), every control
    character escaped (``\\u001b``, ``\\u009b``): the server's text cannot act on the
    terminal, and the output is the same JSON."""
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    print(_UNESCAPED_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


@contextlib.contextmanager
def cannot_write(path: Path) -> Iterator[None]:
    """Within the block, an ``OSError`` becomes ``cannot write PATH: REASON`` (a
    :class:`CliError`, exit 1): the block must only touch that file."""
    try:
        yield
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc.strerror or exc}") from exc


def write_output(path: Path, data: bytes) -> None:
    """Write an output file whole (blocking: run it on a thread).

    Every file a command writes goes through here (or through :class:`ReplacingFile`
    and :func:`cannot_write`, for one written as it comes): beside ``path``, then
    renamed over it, so a write that fails partway (a full disk, a quota) leaves the
    old file as it was and no half-written one.

    Raises:
        CliError: ``cannot write PATH: REASON``.
    """
    with cannot_write(path), ReplacingFile(path) as out:
        out.write(data)


def client(args: argparse.Namespace) -> SaynaClient:
    """A REST-only :class:`SaynaClient` for ``--url`` / ``--api-key`` / ``--timeout``,
    whose requests are retried per :data:`CLI_RETRY` (never after a timeout)."""
    return SaynaClient(
        args.url,
        without_audio=True,
        api_key=args.api_key,
        timeouts=Timeouts(request=args.timeout),
        retry=CLI_RETRY,
    )


def stream_timeouts(args: argparse.Namespace) -> Timeouts:
    """The deadlines of a streaming command: ``--timeout`` to connect, then to be ready."""
    return Timeouts(connect=args.timeout, ready=args.timeout)


def _seconds(text: str) -> float:
    """``--timeout``: a number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a number of seconds > 0")
    return value


#: The SDK's log line for a connection the server or the network closed.
_CONNECTION_LOST_LOG = "Sayna WebSocket closed by the server or network: %s"


class _ConnectionLostFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != _CONNECTION_LOST_LOG


@contextlib.contextmanager
def connection_lost_reported() -> Iterator[None]:
    """Within the block, the SDK does not log a lost connection: the command reports
    it itself, on its one ``error:`` line."""
    sdk_logger = logging.getLogger("sayna_client")
    quiet = _ConnectionLostFilter()
    sdk_logger.addFilter(quiet)
    try:
        yield
    finally:
        sdk_logger.removeFilter(quiet)


def add_conn(parser: argparse.ArgumentParser, *, streaming: bool = False) -> None:
    """Add ``--url``, ``--api-key`` and ``--timeout`` to a command that talks to a server
    (``streaming``: over the WebSocket, whose server may take a while to be ready)."""
    parser.add_argument(
        "--url",
        default=DEFAULT_URL,
        help="Sayna server URL, http(s):// or ws(s):// (default: %(default)s, "
        "where `sayna serve` listens)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="API key sent as `Authorization: Bearer` (default: $SAYNA_API_KEY; none when unset)",
    )
    if streaming:
        parser.add_argument(
            "--timeout",
            type=_seconds,
            default=STREAM_TIMEOUT,
            metavar="SECONDS",
            help="seconds to wait for the server to accept the connection, then for the "
            "session to be ready (its speech providers may take 30 s to start) "
            "(default: %(default)g)",
        )
    else:
        parser.add_argument(
            "--timeout",
            type=_seconds,
            default=REST_TIMEOUT,
            metavar="SECONDS",
            help="seconds to wait for each answer of the server; a request that times "
            "out is not tried again (a 429, a 5xx or a dropped connection is, twice, up to "
            "8 s apart) (default: %(default)g)",
        )


def add_command(
    sub: Any, name: str, summary: str, examples: Sequence[str], description: str = ""
) -> argparse.ArgumentParser:
    """Add command ``name`` to the subparsers ``sub``, with ``examples`` in its help."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples)
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=summary, description=description or summary, epilog=epilog
    )
    return parser


class Progress:
    """A live progress bar on stderr when it is a terminal; silent otherwise (logs, CI,
    pipes), so captured output holds only results."""

    def __init__(self, label: str, total: float, unit: str) -> None:
        self.label, self.total, self.unit = label, total, unit
        self.enabled = sys.stderr.isatty()
        self._last = 0.0
        self._shown = False

    def update(self, done: float, extra: str = "") -> None:
        """Show ``done`` of the total (at most ten times a second), with ``extra`` text."""
        if not self.enabled:
            return
        now = time.monotonic()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        self._shown = True
        width = 30
        filled = int(width * min(1.0, done / self.total)) if self.total else width
        bar = "#" * filled + "-" * (width - filled)
        sys.stderr.write(
            f"\r{self.label} [{bar}] {done:.1f}/{self.total:.1f} {self.unit} "
            f"{printable(extra[:40], lines=False):<40}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        """End the bar's line, if one was shown."""
        if self._shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


@contextlib.asynccontextmanager
async def working(label: str) -> AsyncIterator[None]:
    """Show ``label... N.N s`` on a terminal's stderr while the block runs longer than
    :data:`PROGRESS_AFTER`; the line is erased at the end. Silent when stderr is not a
    terminal."""
    if not sys.stderr.isatty():
        yield
        return
    started = time.monotonic()
    shown = [False]

    async def tick() -> None:
        await asyncio.sleep(PROGRESS_AFTER)
        while True:
            shown[0] = True
            sys.stderr.write(f"\r{label}... {time.monotonic() - started:.1f} s")
            sys.stderr.flush()
            await asyncio.sleep(0.2)

    task = asyncio.get_running_loop().create_task(tick())
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        if shown[0]:
            sys.stderr.write("\r" + " " * (len(label) + 16) + "\r")
            sys.stderr.flush()
