"""Version shims. Each says which Python needs it, so it can go when that version does."""

from __future__ import annotations

import asyncio
import importlib
import sys
from collections.abc import Awaitable
from typing import Callable, Optional, TypeVar, cast

__all__ = ["aiohttp_mask", "within"]

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
        """Await with a deadline, raising ``asyncio.TimeoutError`` when it passes."""
        return await asyncio.wait_for(awaitable, timeout)


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
