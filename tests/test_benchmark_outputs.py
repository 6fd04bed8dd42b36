"""The benchmark scripts never overwrite the committed reports by default.

``python benchmarks/load.py`` without ``--output`` overwrote ``benchmarks/LOAD.md``, a
figure of record (feel.py, frameworks.py, engines.py and run.py alike): each now prints its
report and writes a file only when given ``--output``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
SCRIPTS = sorted(path.name for path in BENCHMARKS.glob("*.py"))


def _output_options(tree: ast.AST) -> list[ast.Call]:
    """The ``add_argument("--output" / "--out", ...)`` calls of a script."""
    found = []
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "add_argument"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and node.args[0].value in ("--output", "--out")
        ):
            found.append(node)
    return found


def test_the_scripts_that_write_reports_are_all_checked() -> None:
    with_output = [
        name for name in SCRIPTS if _output_options(ast.parse((BENCHMARKS / name).read_text()))
    ]
    # The five that wrote a committed report by default are among them.
    assert {"load.py", "feel.py", "frameworks.py", "engines.py", "run.py"} <= set(with_output)


@pytest.mark.parametrize("name", SCRIPTS)
def test_no_report_file_is_written_without_output(name: str) -> None:
    for call in _output_options(ast.parse((BENCHMARKS / name).read_text())):
        defaults = [k.value for k in call.keywords if k.arg == "default"]
        if not defaults:
            continue  # argparse's default: None
        value = defaults[0]
        assert isinstance(value, ast.Constant), f"{name}: --output defaults to a path"
        assert value.value is None, f"{name}: --output defaults to {value.value!r}"
