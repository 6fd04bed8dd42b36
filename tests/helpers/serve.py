"""``sayna serve`` in a subprocess: :func:`sayna_serve` starts it, waits until it listens
(it reads the banner the command prints, no sleeps) and always stops it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import IO, Optional

__all__ = ["STARTUP_TIMEOUT", "Served", "sayna_serve", "serve_refusal"]

#: Seconds the command may take to print its banner (or to exit once stopped): generous,
#: the suite shares a loaded 2-core machine; it bounds a failing test.
STARTUP_TIMEOUT = 60.0
#: The banner's last line (sayna_client.server.cli._serve): the server listens by then.
_LAST_BANNER_LINE = "press Ctrl-C to stop"


@dataclass
class Served:
    """A running ``sayna serve``: its process, base URL (``http://127.0.0.1:PORT``), the
    banner it printed (every line up to "press Ctrl-C to stop") and its stderr file."""

    process: asyncio.subprocess.Process
    url: str
    banner: str
    stderr: IO[bytes]

    @property
    def ws_url(self) -> str:
        """The WebSocket endpoint (``ws://127.0.0.1:PORT/ws``)."""
        return "ws" + self.url[len("http") :] + "/ws"

    def errors(self) -> str:
        """What the process (and its children) wrote on stderr so far."""
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")


@asynccontextmanager
async def sayna_serve(
    *args: str,
    env: Optional[dict[str, str]] = None,
    port: Optional[int] = 0,
    module: str = "sayna_client.server",
    new_session: bool = False,
) -> AsyncIterator[Served]:
    """Run ``python -m <module> [serve] --port PORT --log-level WARNING *args`` until the
    block ends.

    Args:
        args: more command-line options (``--no-control``, ``--config FILE``...).
        env: variables set on top of this process's environment (``""`` values too).
        port: the ``--port`` given (0: a free one); None passes none, so a ``--config``
            file's port applies.
        module: ``sayna_client.server`` (``serve_main`` itself) or ``sayna_client`` (the
            ``sayna`` command: ``serve`` is added).
        new_session: start it in a session (and process group) of its own, so that a
            test may signal the whole group as a terminal's Ctrl-C does.

    Yields:
        The :class:`Served` process once its banner is printed, i.e. it listens.

    Raises:
        AssertionError: it exited before printing its banner (with its stderr), or took
            over :data:`STARTUP_TIMEOUT` seconds.

    The process starts with SIGINT's default action (as under a terminal), so a test may
    send it Ctrl-C. On exit it sends SIGTERM unless the process already ended (a test may
    stop it itself and assert on its exit status) and waits for it; after
    :data:`STARTUP_TIMEOUT` seconds, or when the block is cancelled, it kills it. The
    process is always reaped.
    """
    command = [sys.executable, "-m", module, *(["serve"] if module == "sayna_client" else [])]
    if port is not None:
        command += ["--port", str(port)]
    command += ["--log-level", "WARNING", *args]
    # stderr to a file, not a pipe: nobody reads a pipe while it runs, and a full one
    # would block the server.
    with tempfile.TemporaryFile() as stderr:
        with _sigint_as_on_a_terminal():
            process = await asyncio.create_subprocess_exec(
                *command,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, **(env or {})},
                start_new_session=new_session,
            )
        try:
            banner = await asyncio.wait_for(_read_banner(process, stderr), STARTUP_TIMEOUT)
            url = banner.split(" listening on ", 1)[1].split()[0]
            yield Served(process, url, banner, stderr)
        finally:
            await _stop(process)


async def _read_banner(process: asyncio.subprocess.Process, stderr: IO[bytes]) -> str:
    assert process.stdout is not None
    lines: list[str] = []
    while not lines or _LAST_BANNER_LINE not in lines[-1]:
        line = (await process.stdout.readline()).decode()
        if not line:
            await process.wait()
            stderr.seek(0)
            raise AssertionError(
                f"sayna serve exited with status {process.returncode} before listening;"
                f" stdout: {''.join(lines)!r}; stderr: {stderr.read().decode()!r}"
            )
        lines.append(line)
    return "".join(lines)


@contextlib.contextmanager
def _sigint_as_on_a_terminal() -> Iterator[None]:
    """Spawn with SIGINT's default action, as a terminal's Ctrl-C finds it.

    A test run started as a background job of a non-interactive shell ignores SIGINT,
    its children inherit that, and Python then never raises KeyboardInterrupt: a test
    that sends SIGINT would wait for nothing. While the child is spawned this process
    catches SIGINT instead (a caught signal is reset to its default action on exec).
    """
    if (
        signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
        or threading.current_thread() is not threading.main_thread()
    ):
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


async def _stop(process: asyncio.subprocess.Process) -> None:
    try:
        if process.returncode is None:
            # SIGTERM: handled by `sayna serve` itself (as Ctrl-C: sessions closed, exit 0).
            with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), STARTUP_TIMEOUT)
    finally:
        if process.returncode is None:  # timed out or cancelled
            process.kill()
            await process.wait()


async def serve_refusal(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    """Run ``sayna serve --port 0 *args`` (this process's environment updated with
    ``env``) until it exits, failing as soon as it listens: its exit status, stdout and
    stderr."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sayna_client",
        "serve",
        "--port",
        "0",
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **env},
    )
    assert process.stdout is not None
    assert process.stderr is not None
    try:
        out = await asyncio.wait_for(process.stdout.readline(), STARTUP_TIMEOUT)
        assert not out, f"sayna serve started: {out!r}"
        err = await asyncio.wait_for(process.stderr.read(), STARTUP_TIMEOUT)
        code = await asyncio.wait_for(process.wait(), STARTUP_TIMEOUT)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    return code, out.decode(), err.decode()
