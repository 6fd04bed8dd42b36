"""The ``sayna`` console script's launcher (``_sayna_cli``): a Ctrl-C while the command
line is still importing ends quietly, with the command's status."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from .conftest import environment, run_cli

#: Runs the launcher as the console script does, with a real SIGINT delivered to the
#: process while ``sayna_client.cli.entry`` is being imported (an import hook sends it;
#: SIGINT's default action restored, as under a terminal).
_INTERRUPTED_IMPORT = """
import os, signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)

class InterruptImport:
    def find_spec(self, name, path=None, target=None):
        if name == "sayna_client.cli.entry":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, InterruptImport())
import _sayna_cli
sys.exit(_sayna_cli.main())
"""


@pytest.mark.skipif(sys.platform == "win32", reason="os.kill(SIGINT) is POSIX")
@pytest.mark.parametrize(("args", "status"), [(["health"], 130), (["serve"], 0)])
def test_ctrl_c_during_the_imports_ends_without_a_traceback(
    tmp_path: Path, args: list[str], status: int
) -> None:
    done = run_cli(
        *args,
        cwd=tmp_path,
        env=environment(),
        command=[sys.executable, "-c", _INTERRUPTED_IMPORT],
    )
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == status, (done.stdout, done.stderr)


def test_the_console_script_is_the_launcher() -> None:
    """The ``sayna`` script calls the launcher, which must sit outside the package."""
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8")
    assert 'sayna = "_sayna_cli:main"' in text
    assert 'py-modules = ["_sayna_cli"]' in text


def test_the_launcher_runs_the_command(tmp_path: Path) -> None:
    done = run_cli(
        "--version",
        cwd=tmp_path,
        env=environment(),
        command=[sys.executable, "-c", "import sys, _sayna_cli; sys.exit(_sayna_cli.main())"],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
