"""A bounded FIFO of events for one consumer, with a single waiting reader.

Every consumer that may fall behind the socket has one: each ``events()`` /
``turns()`` iterator, and the session's callback dispatcher. The reader task appends
and never waits; the consumer takes events in the order they were put.

Bounds: at most ``limit`` items, and at most ``max_bytes`` bytes of binary payload
(TTS audio: a ``bytes`` frame or a ``TTSAudio`` event; other events count 0 bytes).
When an append crosses either bound, the *oldest* items are discarded until both hold
again (the newest item is always kept, however large), and the consumer receives one
:class:`EventsDropped` with the count before its next item. Nothing is dropped without
a report.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Any, Optional

from ..protocol.events import TTSAudio
from .events import EventsDropped

__all__ = [
    "CLOSED",
    "DEFAULT_MAX_QUEUE",
    "DEFAULT_MAX_QUEUE_BYTES",
    "EMPTY",
    "Barrier",
    "Mailbox",
    "OwnDrop",
]

#: Items a consumer's queue holds at most (``max_queue``).
DEFAULT_MAX_QUEUE = 10_000
#: Bytes of audio a consumer's queue holds at most (``max_queue_bytes``): about three
#: minutes of 24 kHz 16-bit mono speech.
DEFAULT_MAX_QUEUE_BYTES = 16 * 1024 * 1024

#: What :meth:`Mailbox.get` returns once the mailbox is closed and drained.
CLOSED: Any = object()
#: What :meth:`Mailbox.get_nowait` returns when nothing is queued (and not closed).
EMPTY: Any = object()


class OwnDrop(EventsDropped):
    """A mailbox's report of its own overflow (as opposed to one relayed from elsewhere)."""

    __slots__ = ()


class Barrier:
    """A marker the consumer releases when it reaches it: every item queued before it
    has been handled. Released early if the mailbox discards it or the consumer ends."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def release(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class Mailbox:
    """A bounded FIFO (see the module docstring). Not thread-safe: one event loop."""

    __slots__ = (
        "_bytes",
        "_closed",
        "_dropped",
        "_items",
        "_limit",
        "_max_bytes",
        "_waiter",
        "name",
    )

    def __init__(
        self,
        name: str,
        limit: int = DEFAULT_MAX_QUEUE,
        max_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
    ) -> None:
        self.name = name
        self._limit = limit
        self._max_bytes = max_bytes
        self._items: collections.deque[Any] = collections.deque()
        self._bytes = 0
        self._waiter: Optional[asyncio.Future[None]] = None
        self._dropped = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def waiting(self) -> bool:
        """True while the consumer waits in :meth:`get` for an item."""
        return self._waiter is not None

    @property
    def queued_bytes(self) -> int:
        """Bytes of binary payload queued."""
        return self._bytes

    def put(self, item: Any) -> None:
        """Append an item without binary payload; never blocks."""
        items = self._items
        items.append(item)
        if len(items) > self._limit:
            self._shed()
        if self._waiter is not None:
            self._wake()

    def put_sized(self, item: Any, size: int) -> None:
        """Append a ``bytes`` frame or ``TTSAudio`` event of ``size`` payload bytes."""
        items = self._items
        items.append(item)
        total = self._bytes = self._bytes + size
        if total > self._max_bytes or len(items) > self._limit:
            self._shed()
        if self._waiter is not None:
            self._wake()

    def _wake(self) -> None:
        """Wake the waiting reader."""
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _shed(self) -> None:
        """Discard the oldest items until both bounds hold; keep the newest."""
        items = self._items
        while len(items) > 1 and (len(items) > self._limit or self._bytes > self._max_bytes):
            old = items.popleft()
            kind = type(old)
            if kind is Barrier:
                old.release()
                continue
            if kind is bytes:
                self._bytes -= len(old)
            elif kind is TTSAudio:
                self._bytes -= len(old.data)
            self._dropped += 1

    def get_nowait(self) -> Any:
        """The next item, an :class:`OwnDrop` report first if items were dropped;
        :data:`CLOSED` when closed and empty, :data:`EMPTY` when merely empty."""
        if self._dropped:
            count, self._dropped = self._dropped, 0
            return OwnDrop(self.name, count)
        items = self._items
        if not items:
            return CLOSED if self._closed else EMPTY
        item = items.popleft()
        kind = type(item)
        if kind is bytes:
            self._bytes -= len(item)
        elif kind is TTSAudio:
            self._bytes -= len(item.data)
        return item

    async def get(self) -> Any:
        """Wait for the next item; returns :data:`CLOSED` once closed and drained.

        Cancellation: stops waiting; nothing is lost.
        """
        while True:
            item = self.get_nowait()
            if item is not EMPTY:
                return item
            await self.wait()

    async def wait(self) -> None:
        """Wait until an item is put or the mailbox is closed (the single reader only).

        Cancellation: stops waiting.
        """
        waiter = asyncio.get_running_loop().create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def close(self) -> None:
        """No more items will come; the consumer drains what is queued, then stops."""
        self._closed = True
        self._wake()

    def discard(self) -> None:
        """Close and drop everything queued (the consumer is gone), releasing barriers."""
        self._closed = True
        items, self._items = self._items, collections.deque()
        self._bytes = 0
        for item in items:
            if type(item) is Barrier:
                item.release()
