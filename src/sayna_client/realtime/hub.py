"""The event hub of one client: who consumes events, and the session's callback dispatcher.

The reader task publishes every event once; the hub's :class:`~.fanout.FanOut`
appends it to each consumer's bounded mailbox and returns at once, so no consumer can
stall the socket, the keepalive or another consumer. Consumers:

* **callbacks** (``register_on_*``, ``on``), plain and ``async`` alike: all are called by
  the session's one :class:`~.dispatcher.Dispatcher` (loop callbacks while every callback
  is plain, its task once one is ``async``), one event at a time, in server order across
  event types; an ``async`` one is awaited before the next event;
* **iterators** (``events()``, ``turns()``): each has its own
  :class:`~.mailbox.Mailbox` and sees its events in server order;
* **observers**: the SDK's own cheap bookkeeping, called inline on the reader.

Overflow (the dispatcher and every iterator alike): at most ``max_queue`` events and
``max_queue_bytes`` bytes of audio queued; past that the oldest are discarded and the
consumer gets one :class:`EventsDropped` with the count (the error callbacks are told
too). Nothing is dropped without a report.

Sessions: registrations outlive a session. When a session ends, its dispatcher handles
what is queued and stops; the next session's dispatcher starts after it, so callbacks
never overlap or reorder across sessions.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any, Callable, Optional

from .dispatcher import Dispatcher, Notice, Subscription, Subscriptions
from .events import EventsDropped
from .fanout import FanOut
from .mailbox import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, Mailbox

__all__ = ["DEFAULT_MAX_QUEUE", "DEFAULT_MAX_QUEUE_BYTES", "EventHub"]

logger = logging.getLogger("sayna_client")

Callback = Callable[[Any], Any]


class _Derive:
    """Publishes what ``derive(event)`` returns (when not None) to the hub, held weakly:
    a hub and its owner never form a reference cycle."""

    __slots__ = ("_derive", "_hub")

    def __init__(self, hub: weakref.ref[EventHub], derive: Callable[[Any], Any]) -> None:
        self._hub = hub
        self._derive = derive

    def observe(self, event: Any) -> None:
        derived = self._derive(event)
        if derived is not None:
            hub = self._hub()
            if hub is not None:
                hub.publish(derived)


class _TellIterators:
    """A dispatcher's ``report``: to the hub's iterators, the hub held weakly."""

    __slots__ = ("_hub",)

    def __init__(self, hub: weakref.ref[EventHub]) -> None:
        self._hub = hub

    def __call__(self, problem: Any) -> None:
        hub = self._hub()
        if hub is not None:
            hub.tell_iterators(problem)


class EventHub:
    """Registrations, the fan-out over them and the current session's dispatcher."""

    __slots__ = (
        "__weakref__",
        "_audio_observers",
        "_dispatcher",
        "_draining",
        "_fanout",
        "_iterators",
        "_observers",
        "_ref",
        "_report",
        "_subs",
        "max_queue",
        "max_queue_bytes",
        "publish",
        "publish_audio",
    )

    def __init__(
        self, max_queue: int = DEFAULT_MAX_QUEUE, max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    ) -> None:
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self._subs = Subscriptions()
        # Tuples, replaced on each (rare) change: smaller than lists per idle session.
        self._iterators: tuple[tuple[Mailbox, Optional[frozenset[str]]], ...] = ()
        self._observers: tuple[tuple[str, Callable[[Any], None]], ...] = ()
        self._audio_observers: tuple[Callable[[bytes], None], ...] = ()
        #: Dispatchers of ended sessions still handling their queue.
        self._draining: Optional[set[asyncio.Task[None]]] = None  # made by end_session
        self._fanout = FanOut()
        # One weak reference for the routes that publish back (see derive) and the
        # dispatchers' reports: small objects, not closures (issue #19).
        self._ref = weakref.ref(self)
        self._report = _TellIterators(self._ref)
        #: Deliver one event to every interested consumer; never blocks, never raises.
        #: TTS audio goes through :attr:`publish_audio` instead.
        self.publish: Callable[[Any], None] = self._fanout.publish
        #: ``publish(TTSAudio(data))`` for the hottest path (the event object is made
        #: only when an iterator takes it); never blocks, never raises.
        self.publish_audio: Callable[[bytes], None] = self._fanout.publish_audio
        self._dispatcher = self._new_dispatcher(None)
        self._rebuild()

    # --- consumers -------------------------------------------------------------------

    def add_callback(
        self, callback: Callback, types: frozenset[str], audio_bytes: bool = False
    ) -> Subscription:
        """Register ``callback`` for ``types``; with ``audio_bytes`` it takes a
        ``tts_audio`` frame's bytes rather than the event (``register_on_tts_audio``)."""
        subscription = Subscription(callback, types, audio_bytes)
        self._subs.add(subscription)
        self._rebuild()
        return subscription

    def remove_callback(self, subscription: Subscription) -> bool:
        """Unregister; it is not called for any later event. False if not registered."""
        if not self._subs.remove(subscription):
            return False
        self._rebuild()
        return True

    def find_callbacks(self, callback: Callback) -> list[Subscription]:
        return self._subs.find(callback)

    def add_iterator(self, name: str, types: Optional[frozenset[str]] = None) -> Mailbox:
        """A mailbox for a pull consumer: every event, or only ``types``."""
        mailbox = Mailbox(name, self.max_queue, self.max_queue_bytes)
        self._iterators = (*self._iterators, (mailbox, types))
        self._rebuild()
        return mailbox

    def remove_iterator(self, mailbox: Mailbox) -> None:
        iterators = self._iterators
        for index, (candidate, _) in enumerate(iterators):
            if candidate is mailbox:
                self._iterators = iterators[:index] + iterators[index + 1 :]
                mailbox.close()
                self._rebuild()
                return

    def observe(self, event_type: str, observer: Callable[[Any], None]) -> None:
        """Call ``observer(event)`` inline, after the mailboxes, for every event of a type.

        Only for the SDK's own cheap bookkeeping: it runs on the reader task and must
        neither block nor raise.
        """
        self._observers = (*self._observers, (event_type, observer))
        self._rebuild()

    def unobserve(self, event_type: str, observer: Callable[[Any], None]) -> None:
        """Stop calling ``observer`` (added by :meth:`observe` for ``event_type``); no
        effect if it is not observing. Safe to call from an observer: the event being
        published still reaches the observers it was routed to."""
        observers = self._observers
        for index, (kind, candidate) in enumerate(observers):
            if kind == event_type and candidate == observer:  # a bound method is made anew
                self._observers = observers[:index] + observers[index + 1 :]
                self._rebuild()
                return

    def observe_audio(self, observer: Callable[[bytes], None]) -> None:
        """:meth:`observe` for ``tts_audio``, called with the frame's bytes."""
        self._audio_observers = (*self._audio_observers, observer)
        self._rebuild()

    def unobserve_audio(self, observer: Callable[[bytes], None]) -> None:
        """Stop calling ``observer`` (added by :meth:`observe_audio`); no effect if it is
        not observing. Safe to call from an observer: the frame being published still
        reaches the observers it was routed to."""
        observers = self._audio_observers
        if observer not in observers:
            return
        index = observers.index(observer)
        self._audio_observers = observers[:index] + observers[index + 1 :]
        self._rebuild()

    def derive(self, event_type: str, derive: Callable[[Any], Any]) -> None:
        """Like :meth:`observe`, and a non-None result of ``derive(event)`` is published.

        The hub is held weakly, so a hub and its owner never form a reference cycle
        (they are freed as soon as the owner is dropped, without the cyclic GC).
        """
        # A bound method of a small object: as cheap to call as a closure (it runs for
        # every event of the type), less than half its size (no cells, and the weak
        # reference is the hub's own).
        self.observe(event_type, _Derive(self._ref, derive).observe)

    def _rebuild(self) -> None:
        dispatcher = self._dispatcher
        self._fanout.rebuild(
            callback_types=frozenset(self._subs.by_type),
            to_callbacks=dispatcher.put,
            audio_to_callbacks=dispatcher.put_audio,
            iterators=self._iterators,
            observers=self._observers,
            audio_observers=self._audio_observers,
        )

    # --- reports ---------------------------------------------------------------------

    def _new_dispatcher(self, after: Optional[asyncio.Task[None]]) -> Dispatcher:
        return Dispatcher(
            self._subs,
            limit=self.max_queue,
            max_bytes=self.max_queue_bytes,
            report=self._report,  # holds the hub weakly: no cycle hub <-> dispatcher
            after=after,
        )

    def tell_iterators(self, problem: Any) -> None:
        """An SDK report made while delivering (``CallbackError``, ``EventsDropped`` of the
        callbacks' queue): to every iterator that takes all events."""
        for mailbox, types in self._iterators:
            if types is None:
                mailbox.put(problem)

    def notify_callbacks(self, route: str, event: Any) -> None:
        """Deliver ``event`` to the callbacks subscribed to ``route`` only, in order with
        the events before it (not to iterators)."""
        if route in self._subs.by_type:
            self._dispatcher.put(Notice(route, event))

    def report_overflow(self, event: EventsDropped) -> None:
        """An ``events()`` iterator lost events: log it and tell the error callbacks."""
        logger.warning("%s", event.message)
        if event.type in self._subs.by_type:
            self._dispatcher.put(EventsDropped(event.consumer, event.count))

    # --- waiting -----------------------------------------------------------------------

    async def caught_up(self) -> None:
        """Wait until the callbacks have handled every event queued when this was called.

        Returns at once when called from a callback (the events before the one it
        handles are handled already; waiting for the rest would wait for itself).
        """
        barrier = self._dispatcher.barrier()
        if barrier is not None:
            await barrier

    # --- sessions ----------------------------------------------------------------------

    def end_session(self) -> None:
        """End of a session without waiting: its dispatcher handles what is queued on its
        own; the next session's starts after it."""
        task = self._dispatcher.end()
        if task is not None:
            draining = self._draining
            if draining is None:
                draining = self._draining = set()
            draining.add(task)
            task.add_done_callback(draining.discard)
        self._dispatcher = self._new_dispatcher(task)
        self._rebuild()

    async def close_session(self, timeout: Optional[float]) -> None:
        """End of a session (``disconnect()``): let the callbacks handle what is queued,
        bounded by ``timeout``, then cancel what still runs. Registrations stay."""
        self.end_session()
        pending = set(self._draining or ())
        if not pending:
            return
        done, late = await asyncio.wait(pending, timeout=timeout)
        for task in late:
            task.cancel()
        if late:
            await asyncio.gather(*late, return_exceptions=True)
        for task in done:
            if not task.cancelled():
                task.exception()  # retrieved (the dispatcher catches callback errors)

    def close_iterators(self) -> None:
        """End every ``events()`` iterator after it drains its queue."""
        if not self._iterators:
            return
        for mailbox, _ in self._iterators:
            mailbox.close()
        self._iterators = ()
        self._rebuild()
