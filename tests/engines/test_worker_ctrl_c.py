"""Ctrl-C in a terminal sends SIGINT to the whole foreground process group: ``sayna
serve --engine local`` and its speech worker process alike. The server stops; the
worker, which the server ends by closing its stdin, printed a KeyboardInterrupt
traceback over the server's goodbye."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from helpers.serve import STARTUP_TIMEOUT, sayna_serve
from helpers.waiting import eventually


def _speech_workers(parent: int) -> list[int]:
    """The children of ``parent`` running the speech worker."""
    found = []
    for children in Path(f"/proc/{parent}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                command = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:  # it ended meanwhile
                continue
            if b"speech_child" in command:
                found.append(int(pid))
    return found


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="finds the worker in /proc")
async def test_ctrl_c_to_the_process_group_prints_no_worker_traceback() -> None:
    for name in ("ctranslate2", "onnxruntime", "soxr", "tokenizers"):
        pytest.importorskip(name)  # without the local extra there is no worker process
    async with sayna_serve("--engine", "local", module="sayna_client", new_session=True) as served:
        # The banner comes once the engine has loaded: the worker runs, its models loaded.
        workers = await eventually(lambda: _speech_workers(served.process.pid))
        os.killpg(served.process.pid, signal.SIGINT)  # what the terminal does on Ctrl-C
        status = await asyncio.wait_for(served.process.wait(), STARTUP_TIMEOUT)
        await eventually(
            lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers),
            what="the speech worker exited",
        )
        errors = served.errors()
    assert status == 0, errors
    assert "Traceback" not in errors, errors
    assert "KeyboardInterrupt" not in errors, errors
