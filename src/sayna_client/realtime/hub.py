"""Fan-out of events to consumers, each with its own bounded mailbox.

The reader task publishes every event once; :class:`EventHub` appends it to the
mailbox of every consumer interested in its type and returns at once, so no
consumer can stall the socket, the heartbeat, or another consumer.

Consumers are ``client.events()`` iterators and callbacks. Plain-function callbacks
run inline on the publishing (reader) task: in order, with no queue and no task
switch. Async callbacks have their own mailbox and dispatcher task: one event at a
time, in arrival order, so a slow one delays only its own later events.

Overflow policy (iterators and async callbacks): a mailbox holds at most
``max_queue`` events. When a consumer
falls that far behind, the *oldest* undelivered event of that consumer is
discarded for each new one, and the consumer receives one :class:`EventsDropped`
with the count before its next event (error callbacks are told too). Nothing is
dropped without a report.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import weakref
from typing import Any, Callable, Optional

from ..protocol.events import CallbackError, EventsDropped, TTSAudio

__all__ = ["CallbackConsumer", "EventHub", "Mailbox"]

logger = logging.getLogger("sayna_client")

DEFAULT_MAX_QUEUE = 10_000

_CLOSED = object()


class OwnDrop(EventsDropped):
    """A mailbox's report of its own overflow (as opposed to one relayed from elsewhere)."""

    __slots__ = ()


class Mailbox:
    """A bounded FIFO of events for one consumer, with a single waiting reader."""

    __slots__ = ("_closed", "_dropped", "_items", "_limit", "_waiter", "name")

    def __init__(self, name: str, limit: int = DEFAULT_MAX_QUEUE) -> None:
        self.name = name
        self._limit = limit
        self._items: collections.deque[Any] = collections.deque()
        self._waiter: Optional[asyncio.Future[None]] = None
        self._dropped = 0
        self._closed = False

    def __len__(self) -> int:
        return len(self._items)

    @property
    def closed(self) -> bool:
        return self._closed

    def put(self, event: Any) -> bool:
        """Append without blocking; returns False when an older event had to be discarded."""
        items = self._items
        kept = True
        if len(items) >= self._limit:
            old = items.popleft()
            if type(old) is Barrier:
                old.release()
            else:
                self._dropped += 1
                kept = False
        items.append(event)
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        return kept

    def close(self) -> None:
        """No more events will come; readers drain what is queued, then stop."""
        self._closed = True
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    def get_nowait(self) -> Any:
        """The next event, an :class:`EventsDropped` report first if events were dropped;
        ``_CLOSED`` when closed and empty; raises ``IndexError`` when merely empty."""
        if self._dropped:
            count, self._dropped = self._dropped, 0
            return OwnDrop(self.name, count)
        if self._items:
            return self._items.popleft()
        if self._closed:
            return _CLOSED
        raise IndexError

    async def get(self) -> Any:
        """Wait for the next event; returns ``_CLOSED`` once closed and drained."""
        while True:
            try:
                return self.get_nowait()
            except IndexError:
                pass
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None


Callback = Callable[[Any], Any]


def _callback_name(callback: Callback) -> str:
    return getattr(callback, "__qualname__", None) or repr(callback)


class Barrier:
    """A marker a dispatcher releases when it reaches it: every event queued before it
    has been handled. Released early if the consumer ends or overflow discards it."""

    __slots__ = ("future",)

    def __init__(self) -> None:
        self.future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def release(self) -> None:
        if not self.future.done():
            self.future.set_result(None)


class _Pending:
    """An awaitable returned by a plain callback: its dispatcher awaits it in order."""

    __slots__ = ("awaitable", "event_type")

    def __init__(self, awaitable: Any, event_type: str) -> None:
        self.awaitable = awaitable
        self.event_type = event_type


def _is_async_callable(callback: Callback) -> bool:
    return inspect.iscoroutinefunction(callback) or inspect.iscoroutinefunction(
        getattr(callback, "__call__", None)  # noqa: B004 - callable objects with async __call__
    )


class CallbackConsumer:
    """One registered callback: its event types, its mailbox, its dispatcher task.

    Plain functions run inline, on the task that publishes (the reader): no queue and
    no task switch, so they must be quick (as any code on an event loop). Coroutine
    functions, and plain functions once they return an awaitable, run on the
    consumer's own dispatcher task through its bounded mailbox, one event at a time.

    With ``audio_bytes`` the callback takes a ``tts_audio`` event's bytes rather than
    the event (``register_on_tts_audio``).
    """

    def __init__(
        self,
        callback: Callback,
        types: frozenset[str],
        limit: int,
        report: Callable[[Any, CallbackConsumer], None],
        audio_bytes: bool = False,
    ) -> None:
        self.callback = callback
        self.types = types
        self.name = _callback_name(callback)
        self.mailbox = Mailbox(self.name, limit)
        self._report = report
        self.audio_bytes = audio_bytes
        self._task: Optional[asyncio.Task[None]] = None
        self.inline = not _is_async_callable(callback)

    def deliver(self, event: Any) -> None:
        if self.inline:
            self._call(event, event.type)
        else:
            self._enqueue(event)

    def deliver_audio(self, data: bytes) -> None:
        """:meth:`deliver` of ``TTSAudio(data)`` to an ``audio_bytes`` consumer; the event
        object is made only if it has to be queued."""
        if self.inline:
            self._call(data, "tts_audio")
        else:
            self._enqueue(TTSAudio(data))

    def _call(self, payload: Any, event_type: str) -> None:
        try:
            result = self.callback(payload)
        except Exception as exc:  # a user callback must not end the session
            self._failed(event_type, exc)
            return
        if result is not None and inspect.isawaitable(result):
            # It returned a coroutine: from now on run it on a dispatcher task so its
            # events stay in order behind this one.
            self.inline = False
            self._enqueue(_Pending(result, event_type))

    def _enqueue(self, item: Any) -> None:
        self.mailbox.put(item)
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(self.mailbox), name=f"sayna-callback:{self.name}"
            )

    def _failed(self, event_type: str, exc: Exception) -> None:
        logger.error(
            "Sayna callback %s raised while handling %r", self.name, event_type, exc_info=exc
        )
        self._report(CallbackError(self.name, event_type, exc), self)

    async def _run(self, mailbox: Mailbox) -> None:
        callback = self.callback
        audio_bytes = self.audio_bytes
        burst = 0
        try:
            while True:
                try:
                    event = mailbox.get_nowait()
                    burst += 1
                    if burst >= 256:  # let other tasks run during long bursts
                        burst = 0
                        await asyncio.sleep(0)
                except IndexError:
                    burst = 0
                    event = await mailbox.get()
                if event is _CLOSED:
                    return
                if type(event) is Barrier:
                    event.release()
                    continue
                if type(event) is OwnDrop:
                    logger.warning("%s", event.message)
                    self._report(event, self)
                    continue
                try:
                    if type(event) is _Pending:
                        event_type = event.event_type
                        await event.awaitable
                        continue
                    event_type = event.type
                    result = callback(event.data if audio_bytes else event)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:  # a user callback must not end the session
                    self._failed(event_type, exc)
        finally:
            self._task = None
            if mailbox.closed:  # cancelled while draining: nobody will reach these
                for item in mailbox._items:
                    if type(item) is Barrier:
                        item.release()
            if len(self.mailbox) and not self.mailbox.closed:
                # Events of a new session arrived while this one drained.
                self._task = asyncio.get_running_loop().create_task(
                    self._run(self.mailbox), name=f"sayna-callback:{self.name}"
                )

    def end(self) -> Optional[asyncio.Task[None]]:
        """End of a session: the dispatcher drains what is queued, then stops; events of
        a later session go to a fresh mailbox. Returns the draining task, if any."""
        old = self.mailbox
        self.mailbox = Mailbox(self.name, old._limit)
        old.close()
        return self._task

    async def drain(self, timeout: Optional[float]) -> None:
        """Like :meth:`end`, then wait (bounded) for the dispatcher; cancel it if too slow."""
        task = self.end()
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


class EventHub:
    """Routes each published event to the consumers of its type."""

    __slots__ = (
        "__weakref__",
        "_all",
        "_audio_bytes",
        "_audio_events",
        "_audio_observers",
        "_by_type",
        "_callbacks",
        "_iterator_types",
        "_iterators",
        "_observers",
        "max_queue",
    )

    def __init__(self, max_queue: int = DEFAULT_MAX_QUEUE) -> None:
        self.max_queue = max_queue
        self._by_type: dict[str, list[Any]] = {}
        self._all: list[Any] = []
        self._callbacks: list[CallbackConsumer] = []
        self._iterators: list[Mailbox] = []
        self._iterator_types: dict[int, Optional[frozenset[str]]] = {}
        self._observers: list[tuple[str, Callable[[Any], None]]] = []
        self._audio_observers: list[Callable[[bytes], None]] = []
        #: What :meth:`publish_audio` calls with the bytes, then with a ``TTSAudio``.
        self._audio_bytes: list[Callable[[bytes], None]] = []
        self._audio_events: list[Any] = []

    # --- consumers -------------------------------------------------------------------

    def add_callback(
        self,
        callback: Callback,
        types: frozenset[str],
        audio_bytes: bool = False,
    ) -> CallbackConsumer:
        """Register ``callback`` for ``types`` (see :class:`CallbackConsumer`)."""
        consumer = CallbackConsumer(
            callback, types, self.max_queue, self._weak_report(), audio_bytes
        )
        self._callbacks.append(consumer)
        self._rebuild()
        return consumer

    def remove_callback(self, consumer: CallbackConsumer) -> bool:
        if consumer not in self._callbacks:
            return False
        self._callbacks.remove(consumer)
        consumer.mailbox.close()
        self._rebuild()
        return True

    def find_callbacks(self, callback: Callback) -> list[CallbackConsumer]:
        return [c for c in self._callbacks if c.callback == callback]

    def add_iterator(self, name: str, types: Optional[frozenset[str]] = None) -> Mailbox:
        """A mailbox for a pull consumer: every event, or only ``types``."""
        mailbox = Mailbox(name, self.max_queue)
        self._iterators.append(mailbox)
        self._iterator_types[id(mailbox)] = types
        self._rebuild()
        return mailbox

    def observe(self, event_type: str, observer: Callable[[Any], None]) -> None:
        """Call ``observer(event)`` inline, after the consumers, for every event of a type.

        Only for the SDK's own cheap bookkeeping: it runs on the reader task and must
        neither block nor raise.
        """
        self._observers.append((event_type, observer))
        self._rebuild()

    def _weak_report(self) -> Callable[[Any, CallbackConsumer], None]:
        """:meth:`_report` without a strong reference to the hub (see :meth:`derive`)."""
        hub = weakref.ref(self)

        def report(problem: Any, source: CallbackConsumer) -> None:
            target = hub()
            if target is not None:
                target._report(problem, source)

        return report

    def derive(self, event_type: str, derive: Callable[[Any], Any]) -> None:
        """Like :meth:`observe`, and a non-None result of ``derive(event)`` is published.

        The hub is held weakly, so a hub and its owner never form a reference cycle
        (they are freed as soon as the owner is dropped, without the cyclic GC).
        """
        hub = weakref.ref(self)

        def observer(event: Any) -> None:
            derived = derive(event)
            if derived is not None:
                target = hub()
                if target is not None:
                    target.publish(derived)

        self.observe(event_type, observer)

    def observe_audio(self, observer: Callable[[bytes], None]) -> None:
        """:meth:`observe` for ``tts_audio``, called with the frame's bytes."""
        self._audio_observers.append(observer)
        self._rebuild()

    def remove_iterator(self, mailbox: Mailbox) -> None:
        if mailbox in self._iterators:
            self._iterators.remove(mailbox)
            self._iterator_types.pop(id(mailbox), None)
            mailbox.close()
            self._rebuild()

    def _rebuild(self) -> None:
        """Precompute the flat lists of delivery functions: per event type for
        :meth:`publish`, and for ``tts_audio``, which only :meth:`publish_audio` delivers,
        what takes the bytes (``audio_bytes`` callbacks, audio observers), then what
        needs the ``TTSAudio`` event."""
        specific: dict[str, list[Any]] = {}
        audio_bytes: list[Callable[[bytes], None]] = []
        audio_events: list[Any] = []
        for consumer in self._callbacks:
            for event_type in consumer.types:
                if event_type != "tts_audio":
                    specific.setdefault(event_type, []).append(consumer.deliver)
                elif consumer.audio_bytes:
                    audio_bytes.append(consumer.deliver_audio)
                else:
                    audio_events.append(consumer.deliver)
        wildcard: list[Any] = []
        for mailbox in self._iterators:
            types = self._iterator_types.get(id(mailbox))
            if types is None:
                wildcard.append(mailbox.put)
            else:
                for event_type in types - {"tts_audio"}:
                    specific.setdefault(event_type, []).append(mailbox.put)
            if types is None or "tts_audio" in types:
                audio_events.append(mailbox.put)
        observers: dict[str, list[Any]] = {}
        for event_type, observer in self._observers:
            observers.setdefault(event_type, []).append(observer)
        self._by_type = {
            event_type: specific.get(event_type, []) + wildcard + observers.get(event_type, [])
            for event_type in set(specific) | set(observers)
        }
        self._all = wildcard
        self._audio_bytes = audio_bytes + self._audio_observers
        self._audio_events = audio_events + observers.get("tts_audio", [])

    # --- publishing ------------------------------------------------------------------

    def publish(self, event: Any) -> None:
        """Deliver to every interested consumer; never blocks, never raises. TTS audio
        goes through :meth:`publish_audio` instead."""
        for deliver in self._by_type.get(event.type, self._all):
            deliver(event)

    def publish_audio(self, data: bytes) -> None:
        """``publish(TTSAudio(data))`` for the hottest path; the event object is made only
        when a consumer needs it. Never blocks, never raises."""
        for deliver in self._audio_bytes:
            deliver(data)
        events = self._audio_events
        if events:
            event = TTSAudio(data)
            for deliver in events:
                deliver(event)

    async def caught_up(self, types: Optional[frozenset[str]] = None) -> None:
        """Wait until every queued (async) callback, of ``types`` or all, has handled
        the events it had when this was called. Inline callbacks are always caught up."""
        barriers: list[asyncio.Future[None]] = []
        for consumer in self._callbacks:
            if types is not None and not consumer.types & types:
                continue
            if consumer._task is None and not len(consumer.mailbox):
                continue  # idle
            barrier = Barrier()
            consumer._enqueue(barrier)
            barriers.append(barrier.future)
        if barriers:
            await asyncio.gather(*barriers)

    def notify_callbacks(self, route: str, event: Any) -> None:
        """Deliver ``event`` to the callbacks subscribed to ``route`` only (not iterators)."""
        for consumer in self._callbacks:
            if route in consumer.types:
                consumer.deliver(event)

    def report_overflow(self, event: EventsDropped) -> None:
        """An ``events()`` iterator lost events: log it and tell the error callbacks."""
        logger.warning("%s", event.message)
        self.notify_callbacks(event.type, EventsDropped(event.consumer, event.count))

    def _report(self, problem: Any, source: CallbackConsumer) -> None:
        """A callback raised or overflowed: tell the other error callbacks and the
        iterators. Never the source itself: a failing error callback would loop."""
        if isinstance(problem, OwnDrop):
            problem = EventsDropped(problem.consumer, problem.count)
        for consumer in self._callbacks:
            if consumer is not source and problem.type in consumer.types:
                consumer.deliver(problem)
        for mailbox in self._iterators:
            if self._iterator_types.get(id(mailbox)) is None:
                mailbox.put(problem)

    async def close_session(self, timeout: Optional[float]) -> None:
        """End of a session: flush callbacks (bounded by ``timeout``), keep registrations."""
        if self._callbacks:
            await asyncio.gather(*(c.drain(timeout) for c in list(self._callbacks)))

    def end_session(self) -> None:
        """End of a session without waiting: callbacks drain on their own tasks."""
        for consumer in self._callbacks:
            consumer.end()

    def close_iterators(self) -> None:
        """End every ``events()`` iterator after it drains its queue."""
        if not self._iterators:
            return
        for mailbox in self._iterators:
            mailbox.close()
        self._iterators = []
        self._iterator_types = {}
        self._rebuild()
