"""Version shims. Each says which Python needs it, so it can go when that version does."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable
from typing import Callable, Optional, TypeVar, cast

__all__ = ["aiohttp_mask", "task_cancelled", "within"]

T = TypeVar("T")

if sys.version_info >= (3, 11):

    async def within(timeout: Optional[float], awaitable: Awaitable[T]) -> T:
        """Await with a deadline, raising ``asyncio.TimeoutError`` when it passes.

        On 3.11+ this is ``asyncio.timeout``: a timer in the current task, where
        ``asyncio.wait_for`` would wrap the awaitable in a new task. It matters on the
        connect path, which runs thousands of times in a load test.
        """
        async with asyncio.timeout(timeout):  # novm (guarded by the version check)
            return await awaitable

else:  # Python 3.9 and 3.10

    async def within(timeout: Optional[float], awaitable: Awaitable[T]) -> T:
        """Await with a deadline, raising ``asyncio.TimeoutError`` when it passes: a timer
        that cancels the current task, as ``asyncio.timeout`` does on 3.11+.
        ``asyncio.wait_for`` would run the awaitable in a new task, which a session's
        callbacks task could not tell from any other caller (a wait from a callback would
        then wait for that callback)."""
        if timeout is None:
            return await awaitable
        task = asyncio.current_task()
        if task is None:  # pragma: no cover - awaited outside a task
            return await asyncio.wait_for(awaitable, timeout)
        expired = False

        def expire() -> None:
            nonlocal expired
            expired = True
            task.cancel()

        timer = asyncio.get_running_loop().call_later(max(0.0, timeout), expire)
        try:
            return await awaitable
        except asyncio.CancelledError:
            if expired:
                raise asyncio.TimeoutError() from None
            raise
        finally:
            timer.cancel()


if sys.version_info >= (3, 11):

    def task_cancelled() -> bool:
        """The current task was cancelled (``Task.cancelling()``): a ``CancelledError``
        it sees is its own cancellation, not one a callee raised of its own accord (a
        ``speak_stream`` source awaiting a task cancelled elsewhere)."""
        task = asyncio.current_task()
        return task is not None and task.cancelling() > 0

else:  # Python 3.9 and 3.10: no Task.cancelling()

    def task_cancelled() -> bool:
        """Unknown before 3.11: False. (A ``speak_stream`` feed is cancelled by its
        handle, which is done first and so told apart without this, or by a loop
        shutting down, where the difference no longer matters.)"""
        return False


def aiohttp_mask() -> Optional[Callable[[bytes, bytearray], None]]:
    """aiohttp's in-place XOR of a WebSocket payload with its 4-byte masking key (its C
    version where aiohttp was built with it); None where this aiohttp has neither name.

    ``aiohttp._websocket.helpers.websocket_mask`` from aiohttp 3.11,
    ``aiohttp.http_websocket._websocket_mask`` in 3.9 and 3.10.
    """
    for module, name in (
        ("aiohttp._websocket.helpers", "websocket_mask"),
        ("aiohttp.http_websocket", "_websocket_mask"),
    ):
        try:
            found = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
        if callable(found):
            return cast("Callable[[bytes, bytearray], None]", found)
    return None
