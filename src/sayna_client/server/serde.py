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

Reading the text (serde_json's syntax errors, the end offset of every value, the
bounds on one message) is :mod:`.serde_json`'s; this module holds the declarations,
:class:`SerdeError` and :func:`validate`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Optional, Union

__all__ = [
    "ANY",
    "BOOL",
    "F32",
    "STR",
    "U16",
    "U32",
    "U64",
    "Duplicate",
    "Ends",
    "Field",
    "ListOf",
    "SerdeError",
    "Struct",
    "describe",
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
        #: the parsed JSON value when the text was valid JSON (``None`` otherwise)
        self.value: Any = None

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
    """serde_json's ``line L column C`` for a character offset: the column of the last
    character read, counted in UTF-8 bytes as serde_json counts it."""
    line = text.count("\n", 0, offset) + 1
    start = text.rfind("\n", 0, offset) + 1
    segment = text[start:offset]
    column = len(segment) if segment.isascii() else len(segment.encode("utf-8", "surrogatepass"))
    return f"line {line} column {column}"


@dataclass(frozen=True)
class Duplicate:
    """A key met again in one JSON object: serde's derived structs refuse it when it
    names a field (``duplicate field `k```), right after reading it.

    Attributes:
        ordinal: how many distinct keys the object had before it.
        key: the key.
        at: where serde_json places the error: after the key and the blanks after it
            (read while it looks for the object's end).
        earlier: the value the key had until then (the one serde checked).
    """

    ordinal: int
    key: str
    at: int
    earlier: Any


class Ends(dict[Path, int]):
    """The end offset of each parsed value by path, plus the objects' repeated keys by
    ``id()`` of the object (:attr:`duplicates`) and where containers begin."""

    def __init__(self) -> None:
        super().__init__()
        self.duplicates: dict[int, list[Duplicate]] = {}
        #: Where each array and object begins (the offset of its bracket), by path.
        self.starts: dict[Path, int] = {}


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
    if "e" in text:  # Rust's Display never uses an exponent
        text = format(Decimal(text), "f")
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
        offset = where(at)
        if isinstance(found, (list, dict)) and not whole_value_position:
            # serde_json refuses an array or object it has only peeked at: the error
            # stands before its bracket.
            offset = getattr(ends, "starts", {}).get(at, offset)
        return SerdeError(
            f"invalid type: {describe(found)}, expected {_expected(expected)}", at, offset
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
    duplicates = getattr(ends, "duplicates", None)
    repeated = _repeated_fields(value, kind, duplicates) if duplicates else []
    for index, (key, item) in enumerate(value.items()):
        if repeated and repeated[0].ordinal == index:
            raise _duplicate(repeated[0], path, top_end, whole_value_position)
        spec = kind.get(key)
        if spec is None:
            continue
        first = next((dup for dup in repeated if dup.key == key), None)
        if first is not None:
            item = first.earlier  # serde met (and checked) that value before the repeat
        if item is None and spec.nullable:
            continue
        validate(item, spec.type, ends, (*path, key), whole_value_position)
    if repeated:
        raise _duplicate(repeated[0], path, top_end, whole_value_position)
    for spec in kind.fields:
        if spec.required and spec.name not in value:
            raise SerdeError(f"missing field `{spec.name}`", path, where(path))


def _repeated_fields(
    value: dict[str, Any], kind: Struct, duplicates: dict[int, list[Duplicate]]
) -> list[Duplicate]:
    """The repeats of ``value``'s keys that name a field of ``kind``, in input order
    (repeated unknown keys are ignored, as serde ignores the keys themselves)."""
    return [dup for dup in duplicates.get(id(value), ()) if kind.get(dup.key) is not None]


def _duplicate(dup: Duplicate, path: Path, top_end: int, whole_value_position: bool) -> SerdeError:
    offset = top_end if whole_value_position else dup.at
    return SerdeError(f"duplicate field `{dup.key}`", path, offset)
