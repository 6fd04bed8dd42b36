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

import asyncio
import json
import math
import re
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from decimal import Decimal
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
    "parse_checked",
    "parse_checked_async",
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
    """serde_json's ``line L column C`` for a character offset (column of the last char read)."""
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1)
    return f"line {line} column {column}"


# --- parsing with end offsets ---------------------------------------------------------

_WS = re.compile(r"[ \t\n\r]*")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")

#: serde_json's nesting limit: the 129th nested array or object is an error.
RECURSION_LIMIT = 128
#: Most JSON values the local server parses in one WebSocket message or request body
#: (estimated from the separators, see :func:`estimate_values`). A local-server limit
#: (docs/security.md): it bounds the CPU one message can take. The protocol's largest
#: legitimate bodies (1,000 SIP hooks) need about 4,000.
MAX_VALUES = 20_000
#: Bodies this small are recorded parsed (``RequestRecord.json``) without further ado.
INLINE_CHARS = 64 * 1024
INLINE_VALUES = 2_000
#: Up to this many values the C decoder is used (a few milliseconds at most); above,
#: the Python parser, which pauses every :data:`PAUSE_SECONDS` for other clients.
C_DECODER_VALUES = 10_000
#: Longest stretch of parsing between two turns of the event loop.
PAUSE_SECONDS = 0.002
_I64_MIN = -(2**63)
_U64_END = 2**64


def estimate_values(text: str) -> int:
    """An upper bound of the number of JSON values in ``text`` (separators in strings count)."""
    return text.count(",") + _containers(text) + 1


def _containers(text: str) -> int:
    return text.count("[") + text.count("{")


def _string(text: str, start: int) -> tuple[str, int]:
    """A JSON string whose opening quote is at ``start - 1``; serde's errors."""
    try:
        value, end = scanstring(text, start)
    except json.JSONDecodeError as exc:
        if exc.msg.startswith("Invalid control character"):
            raise _syntax(
                "control character (\\u0000-\\u001F) found while parsing a string", exc.pos + 1
            ) from None
        if "escape" in exc.msg and exc.pos < len(text) - 1:
            raise _syntax("invalid escape", exc.pos + 2) from None
        raise _syntax("EOF while parsing a string", len(text)) from None
    if text.find("\\u", start, end) != -1 and _SURROGATE.search(value):
        raise _syntax("lone leading surrogate in hex escape", end)
    return value, end


def _number(literal: str, end: int) -> Union[int, float]:
    """serde_json's reading: integers outside i64/u64 become floats; infinity is an error."""
    if len(literal) <= 20 and not any(c in literal for c in ".eE"):
        number = int(literal)
        if _I64_MIN <= number < _U64_END:
            return number
    value = float(literal)
    if math.isinf(value):
        raise _syntax("number out of range", end)
    return value


def _skip(text: str, index: int) -> int:
    match = _WS.match(text, index)
    return match.end() if match else index


def _scalar(text: str, index: int) -> tuple[Any, int]:
    """A string, literal or number starting at ``index``."""
    char = text[index : index + 1]
    if char == '"':
        return _string(text, index + 1)
    if text.startswith("true", index):
        return True, index + 4
    if text.startswith("false", index):
        return False, index + 5
    if text.startswith("null", index):
        return None, index + 4
    match = _NUMBER.match(text, index)
    if not match:
        if index >= len(text):
            raise _syntax("EOF while parsing a value", index)
        raise _syntax("expected value", index + 1)
    return _number(match.group(), match.end()), match.end()


def _key(text: str, index: int) -> tuple[str, int]:
    """An object key and its ``:``; returns the index of the value after it."""
    if text[index : index + 1] != '"':
        raise _syntax("key must be a string", index)
    key, index = _string(text, index + 1)
    index = _skip(text, index)
    if text[index : index + 1] != ":":
        raise _syntax("expected `:`", index)
    return key, _skip(text, index + 1)


#: Values parsed between two pauses of :func:`_scan_steps`.
_STEP_VALUES = 256


def _scan_steps(text: str, ends: dict[Path, int], track: bool = True) -> Generator[None, None, Any]:
    """Parse the JSON value of ``text`` without recursion, recording end offsets per path
    (only the whole value's, under ``()``, unless ``track``: fewer objects to allocate).

    A generator that yields every :data:`_STEP_VALUES` values, so a caller on the event
    loop can let other work run in between; its return value is the parsed value.

    Raises:
        SerdeError: serde_json's syntax errors (``syntax=True``).
    """
    index = _skip(text, 0)
    if index >= len(text):
        raise _syntax("EOF while parsing a value", len(text))
    # open containers: (container, its path, its key in its parent)
    stack: list[tuple[Any, Path, Any]] = []
    path: Path = ()
    key: Any = None  # the key of the value being parsed in its object
    count = 0
    while True:
        count += 1
        if count % _STEP_VALUES == 0:
            yield
        char = text[index : index + 1]
        value: Any
        if char == "{" or char == "[":
            if len(stack) >= RECURSION_LIMIT:
                raise _syntax("recursion limit exceeded", index + 1)
            is_object = char == "{"
            index = _skip(text, index + 1)
            if text[index : index + 1] == ("}" if is_object else "]"):
                index += 1
                value = {} if is_object else []
                if track:
                    ends[path] = index
            else:
                container: Any = {} if is_object else []
                stack.append((container, path, key))
                if is_object:
                    key, index = _key(text, index)
                    if track:
                        path = (*path, key)
                elif track:
                    path = (*path, 0)
                continue  # parse the first member
        else:
            value, index = _scalar(text, index)
            if track:
                ends[path] = index
        # ``value`` is complete: attach it, then close every container that ends here.
        while True:
            if not stack:
                tail = _skip(text, index)
                if tail < len(text):
                    raise _syntax("trailing characters", tail + 1)
                ends[()] = index
                return value
            container, container_path, container_key = stack[-1]
            is_object = isinstance(container, dict)
            if is_object:
                container[key] = value
            else:
                container.append(value)
            index = _skip(text, index)
            separator = text[index : index + 1]
            if separator == ",":
                index = _skip(text, index + 1)
                if is_object:
                    key, index = _key(text, index)
                    if track:
                        path = (*container_path, key)
                elif track:
                    path = (*container_path, len(container))
                break  # parse the next member
            if separator == ("}" if is_object else "]"):
                index += 1
                stack.pop()
                value, path, key = container, container_path, container_key
                if track:
                    ends[path] = index
                continue
            raise _syntax("expected `,` or `}`" if is_object else "expected `,` or `]`", index)


def _syntax(message: str, offset: int) -> SerdeError:
    return SerdeError(message, (), offset, syntax=True)


def parse_json(text: str, track: bool = True) -> tuple[Any, dict[Path, int]]:
    """Parse ``text`` like ``serde_json::from_str``; return the value and end offset per path
    (only the whole value's without ``track``).

    Raises:
        SerdeError: with ``syntax=True`` for malformed JSON or trailing characters.
    """
    ends: dict[Path, int] = {}
    steps = _scan_steps(text, ends, track)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, ends


async def parse_json_async(text: str, track: bool = True) -> tuple[Any, dict[Path, int]]:
    """:func:`parse_json` that gives the event loop a turn every :data:`PAUSE_SECONDS` of
    parsing, so one large message does not hold up other clients."""
    ends: dict[Path, int] = {}
    steps = _scan_steps(text, ends, track)
    clock = time.perf_counter
    resumed = clock()
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, ends
        if clock() - resumed > PAUSE_SECONDS:
            await asyncio.sleep(0)
            resumed = clock()


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _fast_int(literal: str) -> Union[int, float]:
    number = int(literal)
    return number if _I64_MIN <= number < _U64_END else float(literal)


def _fast_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise ValueError(literal)
    return value


_NOT_PARSED = object()


def _maybe_surrogate(text: str) -> bool:
    """Whether ``text`` may hold a lone surrogate escape (the C decoder accepts those)."""
    return "\\u" in text and _SURROGATE_ESCAPE.search(text) is not None


def _decode(text: str, containers: int) -> Any:
    """``json.loads`` where it reads ``text`` exactly as :func:`parse_json` would, else
    ``_NOT_PARSED`` (then the careful parser decides and words the error). ``containers``
    counts the ``[`` and ``{`` in ``text``; lone surrogates are checked by the caller."""
    try:
        value = json.loads(
            text, parse_constant=_reject_constant, parse_int=_fast_int, parse_float=_fast_float
        )
    except (ValueError, RecursionError):
        return _NOT_PARSED
    if containers > RECURSION_LIMIT and _too_deep(value):
        return _NOT_PARSED
    return value


def _too_deep(value: Any) -> bool:
    """Whether ``value`` nests more than :data:`RECURSION_LIMIT` arrays and objects."""
    if not isinstance(value, (dict, list)):
        return False
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        for child in children:
            if isinstance(child, (dict, list)):
                if depth >= RECURSION_LIMIT:
                    return True
                stack.append((child, depth + 1))
    return False


Check = Callable[[Any, "dict[Path, int]"], None]


#: Texts longer than this give the event loop a turn between the phases of parsing.
_LONG_TEXT = 512 * 1024


def _too_many(commas: int, containers: int) -> Optional[SerdeError]:
    if commas + containers + 1 > MAX_VALUES:
        return _syntax(
            f"more than {MAX_VALUES} JSON values in one message (a limit of the local server)", 0
        )
    return None


def _check_fast(value: Any, text: str, check: Check, whole_value_position: bool) -> Any:
    """``value`` (from the C decoder) when it passes ``check``, or the located error;
    ``_NOT_PARSED`` when the exact parser must locate the error."""
    try:
        check(value, {(): len(text.rstrip(" \t\n\r"))})
    except SerdeError as exc:
        if not whole_value_position:
            return _NOT_PARSED
        exc.value = value
        raise
    return value


def _checked(value: Any, ends: dict[Path, int], check: Check) -> Any:
    try:
        check(value, ends)
    except SerdeError as exc:
        exc.value = value
        raise
    return value


def parse_checked(text: str, check: Check, whole_value_position: bool = False) -> Any:
    """Parse ``text`` like ``serde_json`` and run ``check(value, ends)`` on the result.

    The C decoder is used when it agrees with :func:`parse_json` and ``text`` has few
    values; the exact parser runs otherwise, and to word and locate errors. ``check``
    raises :class:`SerdeError`; with ``whole_value_position`` its errors point at the
    end of the whole value (so the fast path already locates them).

    Raises:
        SerdeError: malformed JSON (``syntax``), more than :data:`MAX_VALUES` values, or
            whatever ``check`` raised; ``value`` holds the JSON value when it parsed.
    """
    containers, commas = _containers(text), text.count(",")
    problem = _too_many(commas, containers)
    if problem is not None:
        raise problem
    if commas + containers + 1 <= C_DECODER_VALUES and not _maybe_surrogate(text):
        value = _decode(text, containers)
        if value is not _NOT_PARSED:
            value = _check_fast(value, text, check, whole_value_position)
            if value is not _NOT_PARSED:
                return value
    value, ends = parse_json(text, track=not whole_value_position)
    return _checked(value, ends, check)


async def parse_checked_async(text: str, check: Check, whole_value_position: bool = False) -> Any:
    """:func:`parse_checked` on the event loop, giving other work a turn between its
    passes over a long text and every :data:`PAUSE_SECONDS` in the exact parser, so a
    large message does not hold up other clients."""
    long = len(text) > _LONG_TEXT

    async def turn() -> None:
        if long:
            await asyncio.sleep(0)

    containers = _containers(text)
    await turn()
    commas = text.count(",")
    problem = _too_many(commas, containers)
    if problem is not None:
        raise problem
    if commas + containers + 1 <= C_DECODER_VALUES:
        await turn()
        if not _maybe_surrogate(text):
            await turn()
            value = _decode(text, containers)
            if value is not _NOT_PARSED:
                await turn()
                value = _check_fast(value, text, check, whole_value_position)
                if value is not _NOT_PARSED:
                    return value
    await turn()
    value, ends = await parse_json_async(text, track=not whole_value_position)
    return _checked(value, ends, check)


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
