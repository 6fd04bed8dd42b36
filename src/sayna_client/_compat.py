"""Version shims. Each says which Python needs it, so it can go when that version does."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Optional, TypeVar

__all__ = ["within"]

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
