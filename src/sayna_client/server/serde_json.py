"""serde_json's reading of a text: JSON to values, with the end offset of each value.

:func:`parse_json` reads like ``serde_json::from_str`` (its syntax errors, its nesting
limit, integers outside i64/u64 read as floats) and records where each value ends, so
:func:`~.serde.validate` can place its errors as serde does. :func:`parse_checked` and
:func:`parse_checked_async` take the C decoder where it reads the text the same way, and
bound what one message may cost (:data:`MAX_VALUES`, a turn of the event loop every
:data:`PAUSE_SECONDS`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Generator
from typing import Any, Callable, Optional, Union

from .serde import Path, SerdeError

scanstring: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]

__all__ = [
    "C_DECODER_VALUES",
    "INLINE_CHARS",
    "INLINE_VALUES",
    "MAX_VALUES",
    "PAUSE_SECONDS",
    "RECURSION_LIMIT",
    "Check",
    "estimate_values",
    "parse_checked",
    "parse_checked_async",
    "parse_json",
    "parse_json_async",
]


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
