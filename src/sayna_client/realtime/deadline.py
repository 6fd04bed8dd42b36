"""Deadlines that share one timer per event loop: the ``ready`` timeout of every
connection being configured.

A cancelled ``loop.call_later`` handle stays in the loop's heap until its time comes
(asyncio purges cancelled handles early only once they are more than half of a heap of
over 100 timers), with its callback, arguments and context: with ``Timeouts.ready`` at
45 s, every connected session kept its cancelled ``ready`` timer for 45 s (about 0.3 KiB
each; issue #19). Here a deadline is an entry of a per-loop, per-timeout
:class:`Deadlines`, removed the moment it is cancelled; one timer handle per loop and
timeout, armed for the earliest entry, serves them all. Entries of one timeout are
added in deadline order (the loop's clock only goes forward), so the dict's insertion
order is the deadline order and the earliest entry is the first one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import Hashable
from typing import Any, Callable, Optional

__all__ = ["Deadlines", "deadlines"]

logger = logging.getLogger("sayna_client")

#: asyncio runs a timer this early (its ``_clock_resolution``): an entry this close is due.
_RESOLUTION = time.get_clock_info("monotonic").resolution


class Deadlines:
    """The deadlines of one event loop and timeout, served by one timer handle.

    The loop is not held (a loop closed with deadlines pending is not kept alive by the
    registry): every method runs on it.
    """

    __slots__ = ("_entries", "_timer", "timeout")

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._entries: dict[Hashable, tuple[float, Callable[[Any], None], Any]] = {}
        self._timer: Optional[asyncio.TimerHandle] = None

    def add(self, key: Hashable, callback: Callable[[Any], None], arg: Any) -> None:
        """Call ``callback(arg)`` once ``timeout`` seconds have passed, unless
        :meth:`discard` of ``key`` comes first. ``callback`` must not raise (it is
        logged if it does)."""
        loop = asyncio.get_running_loop()
        when = loop.time() + self.timeout
        self._entries[key] = (when, callback, arg)
        if self._timer is None:
            self._timer = loop.call_at(when, self._run)

    def __len__(self) -> int:
        """Deadlines pending."""
        return len(self._entries)

    def discard(self, key: Hashable) -> None:
        """Forget the deadline of ``key`` (none: nothing happens). Its timer is not
        cancelled: when it fires it arms itself for the next entry, or stops."""
        self._entries.pop(key, None)

    def _run(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        entries = self._entries
        now = loop.time() + _RESOLUTION
        while entries:
            key = next(iter(entries))
            when, callback, arg = entries[key]
            if when > now:
                self._timer = loop.call_at(when, self._run)
                return
            del entries[key]
            try:
                callback(arg)
            except Exception:  # one connection's failure must not stop the others' deadlines
                logger.exception("Sayna deadline callback failed")
        groups = _GROUPS.get(loop)
        if groups is not None and groups.get(self.timeout) is self:
            del groups[self.timeout]


#: The deadlines of each event loop, by timeout.
_GROUPS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, Deadlines]]
_GROUPS = weakref.WeakKeyDictionary()


def deadlines(timeout: float) -> Deadlines:
    """The running loop's deadlines of ``timeout`` seconds (made when first needed)."""
    loop = asyncio.get_running_loop()
    groups = _GROUPS.get(loop)
    if groups is None:
        groups = _GROUPS[loop] = {}
    group = groups.get(timeout)
    if group is None:
        group = groups[timeout] = Deadlines(timeout)
    return group
