"""A/B runs of a benchmark in child processes: this work tree's ``src/`` against a git
revision's, with the local server they share running in a process of its own.

Used by ``speak_cycle.py`` and ``gc_speak.py``: each child runs with ``PYTHONPATH`` set to
one tree's ``src`` (it wins over the editable install) and prints its result as JSON on
its last line.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Optional

HERE = Path(__file__).resolve().parent


@contextlib.contextmanager
def source_trees(base: Optional[str]) -> Iterator[dict[str, str]]:
    """``{"this": this tree's src}``, and with ``base`` ``{base: that revision's src}``
    (``git archive`` into a temporary directory, removed on exit)."""
    sources = {"this": str(HERE.parent / "src")}
    if base is None:
        yield sources
        return
    with tempfile.TemporaryDirectory(prefix="abrun-base-") as tree:
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", base, "src"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        sources[base] = str(Path(tree) / "src")
        yield sources


@contextlib.contextmanager
def local_server() -> Iterator[str]:
    """``sayna serve --engine fake --fast-tts`` (load.py's ``start_server``) in another
    process; yields its URL and stops it on exit."""
    sys.path.insert(0, str(HERE))
    from load import free_port, start_server

    port = free_port()
    server = start_server(port)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(10)


def run_child(script: str, args: Sequence[str], src: str, timeout: float = 900) -> Any:
    """Run ``python script --child *args`` on the tree ``src``; return the JSON it printed
    last. Raises ``RuntimeError`` with the end of its stderr when it fails."""
    done = subprocess.run(
        [sys.executable, script, "--child", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=src),
        cwd=HERE,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])
