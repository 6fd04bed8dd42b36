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

from .serde import Duplicate, Ends, Path, SerdeError

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


_LITERALS = {"n": ("null", None), "t": ("true", True), "f": ("false", False)}


def _is_digit(char: str) -> bool:
    return "0" <= char <= "9"


def _digits(text: str, index: int) -> int:
    while index < len(text) and _is_digit(text[index]):
        index += 1
    return index


def _literal(text: str, index: int) -> tuple[Any, int]:
    """``null``/``true``/``false`` at ``index`` (serde's ``parse_ident``: a wrong letter
    is ``expected ident`` at that letter, the end of the text a value's EOF)."""
    word, value = _LITERALS[text[index]]
    for offset in range(1, len(word)):
        at = index + offset
        if at >= len(text):
            raise _syntax("EOF while parsing a value", len(text))
        if text[at] != word[offset]:
            raise _syntax("expected ident", at + 1)
    return value, index + len(word)


def _number_end(text: str, index: int) -> int:
    """The end of the number at ``index`` (a ``-`` or a digit), or serde's error."""
    size = len(text)
    at = index + 1 if text[index] == "-" else index
    if at >= size:
        raise _syntax("EOF while parsing a value", size)
    if text[at] == "0":
        at += 1
        if at < size and _is_digit(text[at]):
            raise _syntax("invalid number", at + 1)  # one leading zero only
    elif _is_digit(text[at]):
        at = _digits(text, at)
    else:
        raise _syntax("invalid number", at + 1)
    if at < size and text[at] == ".":
        at += 1
        if at >= size:
            raise _syntax("EOF while parsing a value", size)
        if not _is_digit(text[at]):
            raise _syntax("invalid number", at + 1)
        at = _digits(text, at)
    if at < size and text[at] in "eE":
        at += 1
        if at < size and text[at] in "+-":
            at += 1
        if at >= size:
            raise _syntax("EOF while parsing a value", size)
        if not _is_digit(text[at]):
            raise _syntax("invalid number", at + 1)
        at = _digits(text, at)
    return at


def _scalar(text: str, index: int) -> tuple[Any, int]:
    """A string, literal or number starting at ``index``."""
    char = text[index : index + 1]
    if char == '"':
        return _string(text, index + 1)
    if char in _LITERALS and char:
        return _literal(text, index)
    if char == "-" or (char and _is_digit(char)):
        end = _number_end(text, index)
        return _number(text[index:end], end), end
    if not char:
        raise _syntax("EOF while parsing a value", index)
    raise _syntax("expected value", index + 1)


def _key(text: str, index: int, after_comma: bool) -> tuple[str, int, int]:
    """An object key and its ``:`` (serde's ``next_key_seed`` and
    ``parse_object_colon``); returns the key, the offset after it and its blanks (where
    its colon is) and the index of the value after the colon."""
    char = text[index : index + 1]
    if char != '"':
        if not char:
            if after_comma:
                raise _syntax("EOF while parsing a value", len(text))
            raise _syntax("EOF while parsing an object", len(text))
        if char == "}" and after_comma:
            raise _syntax("trailing comma", index + 1)
        raise _syntax("key must be a string", index + 1)
    key, key_end = _string(text, index + 1)
    index = _skip(text, key_end)
    colon = text[index : index + 1]
    if colon != ":":
        if not colon:
            raise _syntax("EOF while parsing an object", len(text))
        raise _syntax("expected `:`", index + 1)
    return key, index, _skip(text, index + 1)


#: Values parsed between two pauses of :func:`_scan_steps`.
_STEP_VALUES = 256


def _scan_steps(text: str, ends: Ends, track: bool = True) -> Generator[None, None, Any]:
    """Parse the JSON value of ``text`` without recursion, recording end offsets per path
    (only the whole value's, under ``()``, unless ``track``: fewer objects to allocate)
    and every repeated key of an object (:attr:`Ends.duplicates`).

    Errors are serde_json's (de.rs, 1.0.145): a character that is wrong where it was
    peeked is placed at itself, one that was consumed too (an identifier, a number's
    digit) likewise, and an early end at the end of the text.

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
            if track:
                ends.starts[path] = index
            is_object = char == "{"
            index = _skip(text, index + 1)
            if index >= len(text):
                raise _syntax(
                    "EOF while parsing an object" if is_object else "EOF while parsing a list",
                    len(text),
                )
            if text[index : index + 1] == ("}" if is_object else "]"):
                index += 1
                value = {} if is_object else []
                if track:
                    ends[path] = index
            else:
                container: Any = {} if is_object else []
                stack.append((container, path, key))
                if is_object:
                    key, _after_key, index = _key(text, index, after_comma=False)
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
                    key, after_key, index = _key(text, index, after_comma=True)
                    if key in container:
                        repeat = Duplicate(len(container), key, after_key, container[key])
                        ends.duplicates.setdefault(id(container), []).append(repeat)
                    if track:
                        path = (*container_path, key)
                else:
                    if text[index : index + 1] == "]":
                        raise _syntax("trailing comma", index + 1)
                    if track:
                        path = (*container_path, len(container))
                break  # parse the next member
            if separator == ("}" if is_object else "]"):
                index += 1
                stack.pop()
                value, path, key = container, container_path, container_key
                if track:
                    ends[path] = index
                continue
            if not separator:
                raise _syntax(
                    "EOF while parsing an object" if is_object else "EOF while parsing a list",
                    len(text),
                )
            raise _syntax("expected `,` or `}`" if is_object else "expected `,` or `]`", index + 1)


def _syntax(message: str, offset: int) -> SerdeError:
    return SerdeError(message, (), offset, syntax=True)


def parse_json(text: str, track: bool = True) -> tuple[Any, Ends]:
    """Parse ``text`` like ``serde_json::from_str``; return the value and end offset per path
    (only the whole value's without ``track``).

    Raises:
        SerdeError: with ``syntax=True`` for malformed JSON or trailing characters.
    """
    ends = Ends()
    steps = _scan_steps(text, ends, track)
    while True:
        try:
            next(steps)
        except StopIteration as done:
            return done.value, ends


async def parse_json_async(text: str, track: bool = True) -> tuple[Any, Ends]:
    """:func:`parse_json` that gives the event loop a turn every :data:`PAUSE_SECONDS` of
    parsing, so one large message does not hold up other clients."""
    ends = Ends()
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


class _Repeated(ValueError):
    """An object repeats a key: the exact parser records where."""


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    value = dict(pairs)
    if len(value) != len(pairs):
        raise _Repeated
    return value


def _decode(text: str, containers: int) -> Any:
    """``json.loads`` where it reads ``text`` exactly as :func:`parse_json` would, else
    ``_NOT_PARSED`` (then the careful parser decides and words the error, or records
    repeated keys). ``containers`` counts the ``[`` and ``{`` in ``text``; lone
    surrogates are checked by the caller."""
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_int=_fast_int,
            parse_float=_fast_float,
            object_pairs_hook=_unique_pairs if containers else None,
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


#: Checks a parsed value; ``ends`` is an :class:`~.serde.Ends` from the exact parser,
#: or ``{(): end of the value}`` on the fast path (which never has repeated keys).
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
