"""The public surface: sorted, documented in the README, and only what we mean to export."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import sayna_client

README = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")


def test_all_is_sorted_and_importable() -> None:
    names = sayna_client.__all__
    assert names == sorted(names)
    for name in names:
        assert hasattr(sayna_client, name), name


def test_readme_documents_every_public_name() -> None:
    missing = [
        name
        for name in sayna_client.__all__
        if not name.startswith("__") and not re.search(rf"\b{re.escape(name)}\b", README)
    ]
    assert missing == []


def test_readme_documents_every_public_client_method() -> None:
    methods = [
        name
        for name in dir(sayna_client.SaynaClient)
        if not name.startswith("_") and callable(getattr(sayna_client.SaynaClient, name))
    ]
    missing = [name for name in methods if not re.search(rf"\b{name}\b", README)]
    assert missing == []


def test_readme_opens_with_the_two_setup_commands() -> None:
    blocks = re.findall(r"```bash\n(.*?)```", README, flags=re.S)
    assert blocks[0].strip().endswith("sayna demo")
    assert blocks[1].strip().endswith("python -m pytest")
    assert README.index("sayna demo") < README.index("## Quick Start")


def test_public_surface_matches_the_snapshot() -> None:
    """Adding or removing a public name is a deliberate act: update public_api.txt with it."""
    snapshot = (Path(__file__).with_name("public_api.txt")).read_text(encoding="utf-8").split()
    assert sayna_client.__all__ == snapshot


def test_every_public_name_imports_with_docstrings_stripped() -> None:
    # python -OO (PYTHONOPTIMIZE=2, as some container images set) makes every __doc__
    # None; SaynaClient's class body once refused that ("has no documentation").
    names = ", ".join(sayna_client.__all__)
    code = (
        f"from sayna_client import {names}\n"
        "import sayna_client.server, sayna_client.agents, sayna_client.webhooks\n"
        "assert SaynaClient.ready.__doc__ is None\n"
    )
    done = subprocess.run(
        [sys.executable, "-OO", "-c", code], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
