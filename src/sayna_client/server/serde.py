"""A small imitation of serde/serde_json error reporting for request validation.

The real server deserializes every JSON body and WebSocket frame with serde, so
clients see serde's wording (``missing field `x` at line 1 column 7``). This
module validates already-parsed JSON against a declarative :class:`Struct` and
produces the same texts, with positions computed from the original text:

* missing field -> end of the object that lacks it;
* wrong type / out-of-range integer -> end of the offending value;
* internally tagged enums (the WebSocket messages) buffer the whole frame
  first, so every error points at the end of the top-level value
  (``whole_value_position=True``).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Union

scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

__all__ = [
    "ANY",
    "BOOL",
    "F32",
    "STR",
    "U16",
    "U32",
    "U64",
    "Field",
    "ListOf",
    "SerdeError",
    "Struct",
    "describe",
    "parse_json",
    "position",
    "validate",
]


@dataclass(frozen=True)
class Scalar:
    """A primitive serde type; ``expected`` is serde's wording for it."""

    kind: str
    expected: str
    max_value: Optional[int] = None


STR = Scalar("str", "a string")
BOOL = Scalar("bool", "a boolean")
U16 = Scalar("uint", "u16", 0xFFFF)
U32 = Scalar("uint", "u32", 0xFFFFFFFF)
U64 = Scalar("uint", "u64", 0xFFFFFFFFFFFFFFFF)
F32 = Scalar("float", "f32")
ANY = Scalar("any", "any valid JSON value")


@dataclass(frozen=True)
class ListOf:
    """``Vec<T>``."""

    item: FieldType


@dataclass(frozen=True)
class Field:
    """One struct field. ``required`` fields have no serde default; ``nullable`` = ``Option<T>``."""

    name: str
    type: FieldType
    required: bool = True
    nullable: bool = False


@dataclass(frozen=True)
class Struct:
    """A serde struct: fields in declaration order; unknown keys are ignored."""

    name: str
    fields: tuple[Field, ...] = field(default_factory=tuple)

    def get(self, key: str) -> Optional[Field]:
        for candidate in self.fields:
            if candidate.name == key:
                return candidate
        return None


FieldType = Union[Scalar, ListOf, Struct]

Path = tuple[Union[str, int], ...]


class SerdeError(Exception):
    """A deserialization failure: serde's message, the path of the value, the text offset."""

    def __init__(self, message: str, path: Path, offset: int, syntax: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.offset = offset
        self.syntax = syntax

    def located(self, text: str) -> str:
        """``"<message> at line L column C"`` for ``text``."""
        return f"{self.message} at {position(text, self.offset)}"

    def path_display(self) -> str:
        """``serde_path_to_error`` display: ``a.b[0].c`` or ``.`` for the root."""
        if not self.path:
            return "."
        out = ""
        for segment in self.path:
            if isinstance(segment, int):
                out += f"[{segment}]"
            else:
                out += ("." if out else "") + segment
        return out


def position(text: str, offset: int) -> str:
    """serde_json's ``line L column C`` for a character offset (column of the last char read)."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return f"line {line} column {column}"


# --- parsing with end offsets ---------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _skip(text: str, index: int) -> int:
    match = _WS.match(text, index)
    return match.end() if match else index


def _scan(text: str, index: int, path: Path, ends: dict[Path, int]) -> tuple[Any, int]:
    """Parse one value starting at ``index`` (no leading whitespace); record end offsets."""
    char = text[index : index + 1]
    value: Any
    if char == "{":
        value = {}
        index = _skip(text, index + 1)
        if text[index : index + 1] == "}":
            index += 1
        else:
            while True:
                if text[index : index + 1] != '"':
                    raise _syntax("key must be a string", index)
                key, index = scanstring(text, index + 1)
                index = _skip(text, index)
                if text[index : index + 1] != ":":
                    raise _syntax("expected `:`", index)
                index = _skip(text, index + 1)
                value[key], index = _scan(text, index, (*path, key), ends)
                index = _skip(text, index)
                if text[index : index + 1] == ",":
                    index = _skip(text, index + 1)
                    continue
                if text[index : index + 1] == "}":
                    index += 1
                    break
                raise _syntax("expected `,` or `}`", index)
    elif char == "[":
        value = []
        index = _skip(text, index + 1)
        if text[index : index + 1] == "]":
            index += 1
        else:
            while True:
                item, index = _scan(text, index, (*path, len(value)), ends)
                value.append(item)
                index = _skip(text, index)
                if text[index : index + 1] == ",":
                    index = _skip(text, index + 1)
                    continue
                if text[index : index + 1] == "]":
                    index += 1
                    break
                raise _syntax("expected `,` or `]`", index)
    elif char == '"':
        try:
            value, index = scanstring(text, index + 1)
        except json.JSONDecodeError as exc:
            raise _syntax("EOF while parsing a string", len(text)) from exc
    elif text.startswith("true", index):
        value, index = True, index + 4
    elif text.startswith("false", index):
        value, index = False, index + 5
    elif text.startswith("null", index):
        value, index = None, index + 4
    else:
        match = _NUMBER.match(text, index)
        if not match:
            if index >= len(text):
                raise _syntax("EOF while parsing a value", index)
            raise _syntax("expected value", index + 1)
        literal = match.group()
        value = float(literal) if any(c in literal for c in ".eE") else int(literal)
        index = match.end()
    ends[path] = index
    return value, index


def _syntax(message: str, offset: int) -> SerdeError:
    return SerdeError(message, (), offset, syntax=True)


def parse_json(text: str) -> tuple[Any, dict[Path, int]]:
    """Parse ``text`` like ``serde_json::from_str``; return the value and end offset per path.

    Raises:
        SerdeError: with ``syntax=True`` for malformed JSON or trailing characters.
    """
    ends: dict[Path, int] = {}
    start = _skip(text, 0)
    if start >= len(text):
        raise _syntax("EOF while parsing a value", len(text))
    value, end = _scan(text, start, (), ends)
    tail = _skip(text, end)
    if tail < len(text):
        raise _syntax("trailing characters", tail + 1)
    return value, ends


# --- validation -----------------------------------------------------------------------


def describe(value: Any) -> str:
    """serde's ``Unexpected`` wording for a JSON value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean `{'true' if value else 'false'}`"
    if isinstance(value, int):
        return f"integer `{value}`"
    if isinstance(value, float):
        return f"floating point `{_rust_float(value)}`"
    if isinstance(value, str):
        return f"string {json.dumps(value, ensure_ascii=False)}"
    if isinstance(value, list):
        return "sequence"
    return "map"


def _rust_float(value: float) -> str:
    text = repr(value)
    return text[:-2] if text.endswith(".0") else text


def _expected(kind: FieldType) -> str:
    if isinstance(kind, Scalar):
        return kind.expected
    if isinstance(kind, ListOf):
        return "a sequence"
    return f"struct {kind.name}"


def validate(
    value: Any,
    kind: FieldType,
    ends: dict[Path, int],
    path: Path = (),
    whole_value_position: bool = False,
) -> None:
    """Check ``value`` against ``kind`` the way serde would deserialize it.

    Raises:
        SerdeError: the first error serde would report (wrong types in input order,
            then missing fields in declaration order).
    """
    top_end = ends.get((), 0)

    def where(at: Path) -> int:
        return top_end if whole_value_position else ends.get(at, top_end)

    def wrong(at: Path, found: Any, expected: FieldType) -> SerdeError:
        return SerdeError(
            f"invalid type: {describe(found)}, expected {_expected(expected)}", at, where(at)
        )

    if isinstance(kind, Scalar):
        if kind.kind == "any":
            return
        if kind.kind == "str" and isinstance(value, str):
            return
        if kind.kind == "bool" and isinstance(value, bool):
            return
        if kind.kind == "float" and isinstance(value, (int, float)) and not isinstance(value, bool):
            return
        if kind.kind == "uint" and isinstance(value, int) and not isinstance(value, bool):
            if value < 0 or (kind.max_value is not None and value > kind.max_value):
                raise SerdeError(
                    f"invalid value: integer `{value}`, expected {kind.expected}", path, where(path)
                )
            return
        raise wrong(path, value, kind)
    if isinstance(kind, ListOf):
        if not isinstance(value, list):
            raise wrong(path, value, kind)
        for index, item in enumerate(value):
            validate(item, kind.item, ends, (*path, index), whole_value_position)
        return
    if not isinstance(value, dict):
        raise wrong(path, value, kind)
    for key, item in value.items():
        spec = kind.get(key)
        if spec is None or (item is None and spec.nullable):
            continue
        validate(item, spec.type, ends, (*path, key), whole_value_position)
    for spec in kind.fields:
        if spec.required and spec.name not in value:
            raise SerdeError(f"missing field `{spec.name}`", path, where(path))
