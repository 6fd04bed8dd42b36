"""What the local engine leaves running: its threads and this process's child processes
(the speech worker), to check that a server or engine closed them all."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .waiting import eventually

__all__ = ["assert_nothing_left", "child_processes", "engine_threads"]


def engine_threads() -> set[threading.Thread]:
    """The local engine's threads alive now (their names start with ``sayna-``)."""
    return {t for t in threading.enumerate() if t.name.startswith("sayna-") and t.is_alive()}


def child_processes() -> set[int]:
    """Pids of this process's live (not zombie) children."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = dict(
                line.split(":\t", 1) for line in (entry / "status").read_text().splitlines()
            )
        except (OSError, ValueError):  # gone meanwhile, or a line without a tab
            continue
        if fields.get("PPid", "").strip() == str(os.getpid()) and not fields.get(
            "State", ""
        ).startswith("Z"):
            children.add(int(entry.name))
    return children


async def assert_nothing_left(threads: set[threading.Thread], children: set[int]) -> None:
    """Wait until no engine thread and no child process is alive but those given (the
    ones alive before the test)."""
    await eventually(lambda: not (engine_threads() - threads), what="the engine's threads ended")
    await eventually(lambda: not (child_processes() - children), what="the worker process exited")
