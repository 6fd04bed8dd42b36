"""The callbacks of one session, called one event at a time, in server order.

Every callback of a session, plain or ``async``, runs on the session's one
:class:`Dispatcher` task, never on the task reading the socket. The reader appends each
event to the dispatcher's bounded :class:`~.mailbox.Mailbox` and goes on reading; the
dispatcher takes the events in that order and, for each, calls every callback
subscribed to its type in registration order, awaiting an ``async`` one (or the
awaitable a plain one returned) before the next callback and the next event. So
callbacks see events exactly in the order the server sent them, across event types,
and a slow callback delays later callbacks only: the reader, the keepalive and the
``events()`` / ``turns()`` iterators (each with its own mailbox) go on.

Overflow: when the dispatcher falls ``max_queue`` events (or ``max_queue_bytes`` of
audio) behind, the oldest queued events are discarded and the error callbacks receive
one :class:`EventsDropped` before the next event. A callback that raises is logged and
reported as a :class:`CallbackError` to the other error callbacks (at once, before the
next event) and to the iterators; an error callback that raises while handling such a
report is only logged, so reports never loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any, Callable, Optional

from ..protocol.events import CallbackError, EventsDropped, TTSAudio
from .mailbox import Barrier, Mailbox

__all__ = ["Dispatcher", "Notice", "Subscription", "Subscriptions"]

logger = logging.getLogger("sayna_client")

Callback = Callable[[Any], Any]

#: The dispatcher yields to the event loop after this many events in a row.
_YIELD_EVERY = 256
#: The SDK's reports of trouble in delivery: a callback failing on one is only logged.
_REPORTS = frozenset({"callback_error", "events_dropped"})


def _is_async_callable(callback: Callback) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


class Subscription:
    """One registered callback: the event types it receives and how it is called.

    The dispatcher's queue holds TTS audio as the frame's bytes: ``on_audio`` is what
    it calls with them, the callback itself (``register_on_tts_audio``) or, for one
    that takes events (``on("tts_audio", cb)``), an adapter making the ``TTSAudio``.
    """

    __slots__ = ("callback", "is_async", "name", "on_audio", "types")

    def __init__(self, callback: Callback, types: frozenset[str], audio_bytes: bool) -> None:
        self.callback = callback
        self.types = types
        self.name: str = getattr(callback, "__qualname__", None) or repr(callback)
        self.is_async = _is_async_callable(callback)
        self.on_audio: Callback = callback
        if not audio_bytes:

            def on_audio(data: bytes) -> Any:
                return callback(TTSAudio(data))

            self.on_audio = on_audio


class Subscriptions:
    """The registered callbacks in registration order, and per event type the ones to call.

    ``by_type`` is rebuilt on every change (registrations are rare, events are not); a
    dispatch already under way keeps the tuple it started with.
    """

    __slots__ = ("_all", "audio", "by_type")

    def __init__(self) -> None:
        self._all: list[Subscription] = []
        self.by_type: dict[str, tuple[Subscription, ...]] = {}
        #: ``by_type["tts_audio"]`` (or empty), for the hottest path.
        self.audio: tuple[Subscription, ...] = ()

    def __iter__(self) -> Any:
        return iter(self._all)

    def add(self, subscription: Subscription) -> None:
        self._all.append(subscription)
        self._rebuild()

    def remove(self, subscription: Subscription) -> bool:
        """Remove one registration; False if it was not registered."""
        if subscription not in self._all:
            return False
        self._all.remove(subscription)
        self._rebuild()
        return True

    def find(self, callback: Callback) -> list[Subscription]:
        return [s for s in self._all if s.callback == callback]

    def _rebuild(self) -> None:
        by_type: dict[str, list[Subscription]] = {}
        for subscription in self._all:
            for event_type in subscription.types:
                by_type.setdefault(event_type, []).append(subscription)
        self.by_type = {event_type: tuple(subs) for event_type, subs in by_type.items()}
        self.audio = self.by_type.get("tts_audio", ())


class Notice:
    """An SDK event for the callbacks of ``route`` rather than of its own type: an
    unexpected close (``ConnectionClosed``) for the error callbacks (``lost``)."""

    __slots__ = ("event", "route")

    def __init__(self, route: str, event: Any) -> None:
        self.route = route
        self.event = event


class Dispatcher(Mailbox):
    """One session's callback task and its mailbox (see the module docstring).

    The dispatcher *is* the callbacks' mailbox: the fan-out appends to it with
    :meth:`put` / :meth:`put_audio`, which also start the task on the first event. The
    task is this module's only reader of the queue.

    ``report`` receives the SDK's reports the dispatcher makes (``CallbackError``,
    ``EventsDropped``) for the ``events()`` iterators. With ``after``, the task first
    waits for that one (the previous session's dispatcher) to finish, so callbacks of
    two sessions never overlap.
    """

    __slots__ = ("_after", "_report", "_subs", "_task")

    def __init__(
        self,
        subscriptions: Subscriptions,
        *,
        limit: int,
        max_bytes: int,
        report: Callable[[Any], None],
        after: Optional[asyncio.Task[None]] = None,
    ) -> None:
        super().__init__("callbacks", limit, max_bytes)
        self._subs = subscriptions
        self._report = report
        self._after = after
        self._task: Optional[asyncio.Task[None]] = None

    # --- the reader's side ---------------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue an event for the callbacks of its type; never blocks."""
        items = self._items
        items.append(item)
        if len(items) > self._limit:
            self._shed()
        if self._waiter is not None:
            self._wake()
        elif self._task is None:
            self._start()

    def put_audio(self, data: bytes) -> None:
        """Queue a TTS audio frame (its bytes) for the ``tts_audio`` callbacks."""
        items = self._items
        items.append(data)
        size = self._bytes = self._bytes + len(data)
        if size > self._max_bytes or len(items) > self._limit:
            self._shed()
        if self._waiter is not None:
            self._wake()
        elif self._task is None:
            self._start()

    def _start(self) -> None:
        if not self._closed:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="sayna-callbacks")

    # --- waiting and ending ----------------------------------------------------------

    def barrier(self) -> Optional[asyncio.Future[None]]:
        """A future set once every event queued now has been handled; None when nothing
        is queued or running, or when called from a callback (it cannot wait for
        itself: the events before the one it handles are handled already)."""
        task = self._task
        if task is None or task is asyncio.current_task():
            return None
        if not self._items and self._waiter is not None:
            return None  # idle
        barrier = Barrier()
        self.put(barrier)
        return barrier.future

    def end(self) -> Optional[asyncio.Task[None]]:
        """End of the session: the task handles what is queued, then ends; returns it,
        if one runs."""
        self.close()
        return self._task

    # --- the dispatcher task ---------------------------------------------------------

    async def _run(self) -> None:
        after, self._after = self._after, None
        try:
            if after is not None and not after.done():
                await asyncio.wait((after,))  # the previous session's callbacks first
            await self._loop()
        finally:
            self._task = None
            if self._closed:  # ended or cancelled while draining: nobody will come
                self.discard()

    async def _loop(self) -> None:
        # The per-event path, run for every frame of every session: the queue is read in
        # place, up to _YIELD_EVERY events per loop turn. Nothing else can put while
        # this task runs (the reader runs only while it is suspended), so the overflow
        # report is looked at, and the audio bytes taken are subtracted, only around a
        # suspension: after one, the run ends and the queue is looked at again.
        items = self._items
        popleft = items.popleft
        subs = self._subs
        isawaitable = inspect.isawaitable
        while True:
            if self._dropped:
                await self._dropped_report()
            if not items:
                if self._closed:
                    return
                await self.wait()
                continue
            taken = 0  # audio bytes popped and not yet subtracted from self._bytes
            handled = 0
            suspended = False
            while items:
                item = popleft()
                handled += 1
                if type(item) is bytes:
                    taken += len(item)
                    for sub in subs.audio:
                        try:
                            result = sub.on_audio(item)
                            if result is not None and (sub.is_async or isawaitable(result)):
                                self._bytes -= taken
                                taken = 0
                                suspended = True
                                await result
                        except Exception as exc:  # a user callback must not end the session
                            self._bytes -= taken
                            taken = 0
                            suspended = True
                            await self._failed(sub, "tts_audio", exc)
                else:
                    kind = type(item)
                    if kind is Barrier:
                        item.release()
                        continue
                    self._bytes -= taken
                    taken = 0
                    suspended = True  # the rest may suspend: simpler to look again after
                    if kind is Notice:
                        await self._tell(item.route, item.event)
                        break
                    event_type = item.type
                    for sub in subs.by_type.get(event_type, ()):
                        try:
                            result = sub.callback(item)
                            if result is not None and (sub.is_async or isawaitable(result)):
                                await result
                        except Exception as exc:  # a user callback must not end the session
                            await self._failed(sub, event_type, exc)
                if suspended:
                    break
                if handled >= _YIELD_EVERY:
                    self._bytes -= taken
                    taken = 0
                    await asyncio.sleep(0)  # let other tasks run during long bursts
                    break
            self._bytes -= taken

    async def _failed(self, sub: Subscription, event_type: str, exc: Exception) -> None:
        logger.error(
            "Sayna callback %s raised while handling %r", sub.name, event_type, exc_info=exc
        )
        if event_type in _REPORTS:
            return  # a failing error callback must not report to the others in a loop
        error = CallbackError(sub.name, event_type, exc)
        self._report(error)
        await self._tell("callback_error", error, sub)

    async def _dropped_report(self) -> None:
        count, self._dropped = self._dropped, 0
        event = EventsDropped(self.name, count)
        logger.warning("%s", event.message)
        self._report(event)
        await self._tell("events_dropped", event)

    async def _tell(self, route: str, event: Any, skip: Optional[Subscription] = None) -> None:
        """Deliver an SDK event to the callbacks of ``route`` (but ``skip``), in order."""
        for sub in self._subs.by_type.get(route, ()):
            if sub is skip:
                continue
            try:
                result = sub.callback(event)
                if result is not None and inspect.isawaitable(result):
                    await result
            except Exception as exc:
                await self._failed(sub, route, exc)
