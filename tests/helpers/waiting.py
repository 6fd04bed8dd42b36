"""One way to wait: :func:`eventually` (async) and :func:`eventually_sync` (threads).

Tests wait on an event when the code under test offers one (``asyncio.Event``,
``server.records.wait_for``, a task); for anything else they poll a predicate with these,
never a fixed sleep. The timeout is generous (the suite shares a loaded 2-core machine):
it bounds a failing test, it is not a timing assertion.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from typing import Callable, Optional, TypeVar

__all__ = ["TIMEOUT", "eventually", "eventually_sync"]

T = TypeVar("T")

#: Seconds a condition may take before the test fails.
TIMEOUT = 30.0
_INTERVAL = 0.01


def _describe(predicate: Callable[[], object], what: Optional[str]) -> str:
    if what:
        return what
    try:
        return inspect.getsource(predicate).strip()
    except (OSError, TypeError):
        return repr(predicate)


def _failure(
    predicate: Callable[[], object], what: Optional[str], timeout: float, last: object
) -> AssertionError:
    return AssertionError(
        f"not true within {timeout:g} s: {_describe(predicate, what)} (last value: {last!r})"
    )


async def eventually(
    predicate: Callable[[], T],
    timeout: float = TIMEOUT,
    *,
    what: Optional[str] = None,
    interval: float = _INTERVAL,
    wake: Optional[asyncio.Event] = None,
) -> T:
    """Wait until ``predicate()`` returns something truthy and return that value.

    Args:
        predicate: called now and every ``interval`` seconds on the running loop.
        timeout: seconds before giving up.
        what: the condition in words, for the failure message (default: the
            predicate's source line).
        interval: seconds between calls.
        wake: an event the code under test sets whenever the condition may have
            changed: then the predicate is called each time it is set (cleared before
            each wait) instead of every ``interval``.

    Raises:
        AssertionError: still falsy after ``timeout`` seconds; names the condition and
            the last value seen.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = predicate()
        if result:
            return result
        remaining = deadline - loop.time()
        if remaining < 0:
            raise _failure(predicate, what, timeout, result)
        if wake is None:
            await asyncio.sleep(interval)
            continue
        wake.clear()
        try:
            await asyncio.wait_for(wake.wait(), remaining)
        except asyncio.TimeoutError:
            pass  # one last call, then the failure


def eventually_sync(
    predicate: Callable[[], T],
    timeout: float = TIMEOUT,
    *,
    what: Optional[str] = None,
    interval: float = _INTERVAL,
) -> T:
    """:func:`eventually` for code that runs outside an event loop (the sync client's
    tests, whose work happens on another thread): blocks the calling thread."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise _failure(predicate, what, timeout, result)
        time.sleep(interval)
