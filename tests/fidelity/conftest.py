"""Fixtures of the fidelity suite: the upstream SDK (``sayna-client==0.0.18``) in a venv.

Where the upstream Python SDK can drive a behaviour, a test runs a small script with it
in a subprocess against the in-test :class:`LocalServer`, so the behaviour is checked
with a client this package did not write. The venv is made once per machine (a cache
under the temporary directory, reused while it still imports the right version) and
once per test session at most; when PyPI cannot be reached the tests that need it are
skipped with the reason.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import venv
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

UPSTREAM_VERSION = "0.0.18"
_PROBE = "import sayna_client, sys; sys.exit(0 if sayna_client.__version__ == sys.argv[1] else 1)"


def _venv_python(root: Path) -> Path:
    return root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _upstream_env(**extra: str) -> dict[str, str]:
    """This process's environment for the upstream venv's processes, without the
    ``PYTHONPATH`` that may point at this checkout's ``src`` (the upstream Python would
    import this package instead of 0.0.18)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(extra)
    return env


def _works(python: Path) -> bool:
    if not python.exists():
        return False
    probe = subprocess.run(
        [str(python), "-c", _PROBE, UPSTREAM_VERSION],
        capture_output=True,
        timeout=60,
        env=_upstream_env(),
    )
    return probe.returncode == 0


@pytest.fixture(scope="session")
def upstream_python() -> Path:
    """A Python with ``sayna-client==0.0.18`` installed (skips when it cannot be had).

    Several test sessions may start at once on one machine: a lock file serializes the
    check-and-create, so one builds the venv and the others reuse it. The venv is built
    in a fresh folder beside the cache and renamed into place once it works, so a
    session that is using the cached venv never sees it half-built or cleared.
    """
    default = Path(tempfile.gettempdir()) / (
        f"sayna-fidelity-{UPSTREAM_VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    )
    root = Path(os.environ.get("SAYNA_UPSTREAM_VENV", default))
    python = _venv_python(root)
    if _works(python):
        return python
    root.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{root}.lock", "w") as lock:
        try:
            import fcntl

            fcntl.flock(lock, fcntl.LOCK_EX)
        except ImportError:  # pragma: no cover - Windows: no concurrent runs expected
            pass
        if not _works(python):
            _create(root)
    return python


def _create(root: Path) -> None:
    """Build the venv in a temporary folder beside ``root``, then rename it into place
    (a broken venv at ``root`` is moved aside first and removed)."""
    build = Path(tempfile.mkdtemp(prefix=f"{root.name}.build-", dir=root.parent))
    build.chmod(0o755)  # as venv would create it (mkdtemp makes it private)
    try:
        _build(build)
        if root.exists():
            stale = Path(tempfile.mkdtemp(prefix=f"{root.name}.stale-", dir=root.parent))
            root.rename(stale / "venv")
            shutil.rmtree(stale, ignore_errors=True)
        build.rename(root)
    finally:
        shutil.rmtree(build, ignore_errors=True)


def _build(root: Path) -> None:
    python = _venv_python(root)
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(root)
        install = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                f"sayna-client=={UPSTREAM_VERSION}",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=_upstream_env(),
        )
    except (OSError, subprocess.SubprocessError) as exc:
        pytest.skip(f"cannot make a venv with sayna-client=={UPSTREAM_VERSION}: {exc}")
    if install.returncode != 0 or not _works(python):
        lines = (install.stderr or install.stdout).strip().splitlines()
        # (pip's warnings about the machine's index locations would hide its error)
        tail = [line for line in lines if not line.startswith("WARNING:")][-3:] or lines[-3:]
        pytest.skip(
            f"sayna-client=={UPSTREAM_VERSION} could not be installed from PyPI: "
            + " | ".join(tail)
        )


async def run_upstream(python: Path, script: str, *args: str, timeout: float = 60) -> Any:
    """Run ``script`` with the upstream SDK's Python; return the JSON of its last line.

    Fails the test (with the script's stderr) when it exits non-zero or times out.
    """
    process = await asyncio.create_subprocess_exec(
        str(python),
        "-c",
        script,
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_upstream_env(SAYNA_API_KEY=""),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        pytest.fail(f"the upstream script did not finish in {timeout} s")
    if process.returncode != 0:
        pytest.fail(f"the upstream script failed ({process.returncode}):\n{err.decode()}")
    lines = out.decode().strip().splitlines()
    assert lines, f"the upstream script printed nothing:\n{err.decode()}"
    return json.loads(lines[-1])


@pytest_asyncio.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """One aiohttp client session per test."""
    async with aiohttp.ClientSession() as session:
        yield session
