"""Public models must type-check in user code that runs mypy without pydantic's plugin.

mypy (through ``dataclass_transform``) sees a field's default only when it is passed as
``Field(default=...)`` (``Field(...)`` stays: required); ``Field(16000, ...)`` makes
``STTConfig(provider="deepgram")`` an error ("Missing named argument 'sample_rate'") in
a user's ``mypy --strict`` run of the README's Quick Start.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import sayna_client

MODELS = sorted((Path(sayna_client.__file__).parent / "types").glob("*.py")) + sorted(
    (Path(sayna_client.__file__).parent / "protocol").glob("*.py")
)


@pytest.mark.parametrize("path", MODELS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_field_defaults_are_keywords(path: Path) -> None:
    positional = [
        f"{path.name}:{node.lineno}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id == "Field"
        and node.args
        and not (isinstance(node.args[0], ast.Constant) and node.args[0].value is Ellipsis)
    ]
    assert positional == [], "write Field(default=...), not Field(value, ...)"
