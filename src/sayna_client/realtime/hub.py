"""The event hub of one client: who consumes events, and the session's callback dispatcher.

The reader task publishes every event once; the hub appends it to each consumer's
bounded mailbox (routes planned by :mod:`.fanout`) and returns at once, so no consumer can
stall the socket, the keepalive or another consumer. Consumers:

* **callbacks** (``register_on_*``, ``on``), plain and ``async`` alike: all are called by
  the session's one :class:`~.dispatcher.Dispatcher` (loop callbacks while every callback
  is plain, its task once one is ``async``), one event at a time, in server order across
  event types; an ``async`` one is awaited before the next event;
* **iterators** (``events()``, ``turns()``): each has its own
  :class:`~.mailbox.Mailbox` and sees its events in server order;
* **observers**: the SDK's own cheap bookkeeping, called inline on the reader. An
  observer given as a bound method (``tracker.on_stt_result``) is kept as its object
  and its class's function (see :mod:`.fanout`): no bound method per observer per
  session for every full collection to walk (issue #19).

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
from types import MethodType
from typing import Any, Callable, Optional, Protocol

from ..protocol.events import TTSAudio
from .dispatcher import Dispatcher, Notice, callbacks_awaiting
from .events import EventsDropped
from .fanout import TargetFunction, plan_for
from .mailbox import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, Mailbox
from .registry import Subscription, Subscriptions

__all__ = ["DEFAULT_MAX_QUEUE", "DEFAULT_MAX_QUEUE_BYTES", "AudioCounter", "EventHub"]

logger = logging.getLogger("sayna_client")

Callback = Callable[[Any], Any]
#: An observer: called with the event, its result unused.
Route = Callable[[Any], object]
#: An observer as the hub keeps it: its event type, function and target (see _split).
_Observer = tuple[str, TargetFunction, Any]


def _call(observer: Route, event: Any) -> None:
    """The function of an observer that is no bound method: it is called as it is."""
    observer(event)


def _split(observer: Route) -> tuple[TargetFunction, Any]:
    """``observer`` as the function and target a plan calls (``function(target,
    event)``): a bound method as its class's function and its object, which the bound
    method does not outlive (see :mod:`.fanout`); anything else as :func:`_call` and
    itself."""
    if type(observer) is MethodType:
        return observer.__func__, observer.__self__
    return _call, observer


#: The plan of a hub with no consumers yet.
_NOBODY = plan_for(frozenset(), (), (), (Dispatcher.put,))


class AudioCounter(Protocol):
    """What counts a session's TTS frames (see :meth:`EventHub.count_audio`)."""

    #: The next frame is one the counter does more for than counting (it times it):
    #: :meth:`on_audio` takes that one alone, never in a run.
    watching: bool

    def on_audio(self, data: bytes) -> None:
        """One TTS frame's bytes; must neither block nor raise."""
        ...

    def on_audio_run(self, run: list[bytes]) -> None:
        """Frames that came in a row, none of them watched; must neither block nor
        raise."""
        ...


class _Uncounted:
    """The counter of a hub that was given none."""

    __slots__ = ()

    watching = False

    def on_audio(self, data: bytes) -> None:
        return None

    def on_audio_run(self, run: list[bytes]) -> None:
        return None


_UNCOUNTED = _Uncounted()


class EventHub:
    """Registrations, the fan-out over them and the current session's dispatcher.

    What an idle session holds here is kept small (issue #19): the routes are a shared
    :class:`~.fanout.Plan` over one tuple of targets (see :mod:`.fanout`), the callbacks
    one tuple and a shared plan of their own (:class:`~.registry.Subscriptions`).
    """

    __slots__ = (
        "__weakref__",
        "_audio",
        "_audio_callbacks",
        "_audio_mailboxes",
        "_counter",
        "_default",
        "_dispatcher",
        "_draining",
        "_functions",
        "_iterators",
        "_plan",
        "_subs",
        "_table",
        "_targets",
        "max_queue",
        "max_queue_bytes",
    )

    def __init__(
        self, max_queue: int = DEFAULT_MAX_QUEUE, max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES
    ) -> None:
        self.max_queue = max_queue
        self.max_queue_bytes = max_queue_bytes
        self._subs = Subscriptions()
        # Tuples, replaced on each (rare) change: smaller than lists per idle session.
        self._iterators: tuple[tuple[Mailbox, Optional[frozenset[str]]], ...] = ()
        #: Dispatchers of ended sessions still handling their queue.
        self._draining: Optional[set[asyncio.Task[None]]] = None  # made by end_session
        self._dispatcher = self._new_dispatcher(None)
        # The routes: a shared plan over this hub's targets (see .fanout); the plan's
        # table, default and functions are kept here too, for publish (one attribute
        # each).
        self._plan = plan = _NOBODY
        self._table = plan.table
        self._default = plan.default
        self._functions = plan.functions
        self._targets: tuple[Any, ...] = (self._dispatcher,)
        #: The dispatcher, while a callback takes TTS audio: each frame's bytes go to
        #: it first (its ``put_audio``), then to the audio observers.
        self._audio_callbacks: Optional[Dispatcher] = None
        #: Counts every TTS frame, after the callbacks' queue (see count_audio).
        self._counter: AudioCounter = _UNCOUNTED
        #: The audio observers, called with each TTS frame's bytes after the counter.
        self._audio: tuple[Callable[[bytes], None], ...] = ()
        #: Iterators taking TTS audio (a ``TTSAudio`` is made for them).
        self._audio_mailboxes: tuple[Mailbox, ...] = ()

    # --- publishing (the reader task) ------------------------------------------------

    def publish(self, event: Any) -> None:
        """Deliver one event to every interested consumer; never blocks, never raises.

        TTS audio goes through :meth:`publish_audio` instead.
        """
        targets = self._targets
        functions = self._functions
        for index in self._table.get(event.type, self._default):
            functions[index](targets[index], event)

    def publish_audio(self, data: bytes) -> None:
        """``publish(TTSAudio(data))`` for the hottest path: the callbacks and the audio
        observers take the bytes; the event object is made only when an iterator takes
        it. Never blocks, never raises."""
        callbacks = self._audio_callbacks
        if callbacks is not None:
            callbacks.put_audio(data)
        mailboxes = self._audio_mailboxes
        event: Optional[TTSAudio] = None
        if mailboxes:  # (before the counts: a record they publish comes after the frame)
            event = TTSAudio(data)
            for mailbox in mailboxes:
                mailbox.put_sized(event, len(data))
        self._counter.on_audio(data)
        if self._audio_mailboxes is not mailboxes:
            # An iterator opened by a hook of the counts (the turn metrics' ``emit``,
            # timing this frame) takes the frame too, as one opened before it.
            if event is None:
                event = TTSAudio(data)
            for mailbox in self._audio_mailboxes:
                if mailbox not in mailboxes:
                    mailbox.put_sized(event, len(data))
        for route in self._audio:
            route(data)

    def publish_audio_run(self, run: list[bytes]) -> None:
        """:meth:`publish_audio` of each frame of ``run`` (frames that came in a row in
        one read), in order, with the same effect, at one call per consumer for the
        whole run where nothing needs them one by one: the frames after any the counter
        watches, when no audio observer or iterator takes them (the usual session: the
        callbacks' queue and the counts only). Never blocks, never raises."""
        counter = self._counter
        start = 0
        while True:
            if self._audio or self._audio_mailboxes:
                for data in run[start:] if start else run:
                    self.publish_audio(data)
                return
            if not counter.watching:
                break
            # A frame to time: alone, in its place (timing it may call user code, e.g.
            # a turn_metrics hook, which may add a consumer: looked at again above).
            self.publish_audio(run[start])
            start += 1
            if start == len(run):
                return
        rest = run[start:] if start else run
        callbacks = self._audio_callbacks
        if callbacks is not None:
            callbacks.put_audio_run(rest)
        counter.on_audio_run(rest)

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
        """Unregister at once: it is not called for any later event, nor for the event
        being dispatched if its turn has not come yet (a callback removing another).
        False if not registered."""
        if not self._subs.remove(subscription):
            return False
        self._rebuild()
        return True

    def find_callbacks(self, callback: Callback) -> list[Subscription]:
        return self._subs.find(callback)

    def add_iterator(self, name: str, types: Optional[frozenset[str]] = None) -> Mailbox:
        """A mailbox for a pull consumer: every event, or only ``types``."""
        mailbox = Mailbox(name, self.max_queue, self.max_queue_bytes)
        self._rebuild(iterators=(*self._iterators, (mailbox, types)))
        return mailbox

    def remove_iterator(self, mailbox: Mailbox) -> None:
        iterators = self._iterators
        for index, (candidate, _) in enumerate(iterators):
            if candidate is mailbox:
                mailbox.close()
                self._rebuild(iterators=iterators[:index] + iterators[index + 1 :])
                return

    def observe(self, event_type: str, observer: Route) -> None:
        """Call ``observer(event)`` inline, after the mailboxes, for every event of a type.

        Only for the SDK's own cheap bookkeeping: it runs on the reader task and must
        neither block nor raise. A bound method is kept as its object and function
        (see :func:`_split`): it keeps its object alive, as the method would.
        """
        observers = self._observers()
        observers.append((event_type, *_split(observer)))
        self._rebuild(observers=observers)

    def unobserve(self, event_type: str, observer: Route) -> None:
        """Stop calling ``observer`` (added by :meth:`observe` for ``event_type``); no
        effect if it is not observing. Safe to call from an observer: the event being
        published still reaches the observers it was routed to."""
        function, target = _split(observer)
        observers = self._observers()
        for index, (kind, candidate_function, candidate) in enumerate(observers):
            if (
                kind == event_type
                and candidate_function is function
                # The object of a bound method is the same one (as bound methods compare).
                and (candidate is target if function is not _call else candidate == target)
            ):
                del observers[index]
                self._rebuild(observers=observers)
                return

    def count_audio(self, counter: AudioCounter) -> None:
        """Call ``counter.on_audio(data)`` inline for every TTS frame, after the
        callbacks' queue and before the audio observers: the session's one per-frame
        bookkeeping (its TTS counts), kept as the object itself rather than as an
        observer (a bound method and a tuple per session: issue #19). Replaces the
        counter given before."""
        self._counter = counter

    def observe_audio(self, observer: Callable[[bytes], None]) -> None:
        """:meth:`observe` for ``tts_audio``, called with the frame's bytes.

        Cheap (the speech queue starts and stops observing while an output is
        attached): this replaces the one tuple of the audio observers and leaves the
        plan and the other routes as they are.
        """
        self._audio = (*self._audio, observer)

    def unobserve_audio(self, observer: Callable[[bytes], None]) -> None:
        """Stop calling ``observer`` (added by :meth:`observe_audio`); no effect if it is
        not observing. Safe to call from an observer: the frame being published still
        reaches the observers it was routed to. Replaces the audio observers only (see
        :meth:`observe_audio`)."""
        audio = self._audio
        for index in range(len(audio)):
            if audio[index] == observer:  # (a bound method is made anew on each lookup)
                self._audio = audio[:index] + audio[index + 1 :]
                return

    def _observers(self) -> list[_Observer]:
        """The observers as registered: the last targets, with the plan's types and
        functions."""
        plan = self._plan
        types = plan.observer_types
        start = len(self._targets) - len(types)
        return list(zip(types, plan.functions[start:], self._targets[start:]))

    def _rebuild(
        self,
        *,
        iterators: Optional[tuple[tuple[Mailbox, Optional[frozenset[str]]], ...]] = None,
        observers: Optional[list[_Observer]] = None,
    ) -> None:
        """Recompute the routes after a change (the arguments given replace the hub's
        iterators or observers); a publish under way keeps its own."""
        if iterators is None:
            iterators = self._iterators
        if observers is None:
            observers = self._observers()
        dispatcher = self._dispatcher
        callback_types = frozenset(self._subs.by_type)
        plan = plan_for(
            callback_types,
            tuple(types for _, types in iterators),
            tuple(kind for kind, _, _ in observers),
            (
                type(dispatcher).put,
                *(type(mailbox).put for mailbox, _ in iterators),
                *(function for _, function, _ in observers),
            ),
        )
        self._iterators = iterators
        self._plan = plan
        self._table = plan.table
        self._default = plan.default
        self._functions = plan.functions
        self._targets = (
            dispatcher,
            *(mailbox for mailbox, _ in iterators),
            *(target for _, _, target in observers),
        )
        self._audio_callbacks = dispatcher if "tts_audio" in callback_types else None
        self._audio_mailboxes = tuple(
            mailbox for mailbox, types in iterators if types is None or "tts_audio" in types
        )

    # --- reports ---------------------------------------------------------------------

    def _new_dispatcher(self, after: Optional[asyncio.Task[None]]) -> Dispatcher:
        return Dispatcher(
            self._subs,
            limit=self.max_queue,
            max_bytes=self.max_queue_bytes,
            hub=self,  # held weakly: no cycle hub <-> dispatcher
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

    async def close_session(
        self, timeout: Optional[float], caller: Optional[asyncio.Task[Any]] = None
    ) -> None:
        """End of a session (``disconnect()``, called from ``caller``'s task): let the
        callbacks handle what is queued, bounded by ``timeout``, then cancel what still
        runs. Registrations stay."""
        self.end_session()
        pending = set(self._draining or ())
        # Called from a callback (a disconnect() in an async callback), or from a task
        # callbacks await (one a plain callback returned): those callbacks tasks cannot
        # end while the close waits for them; they handle what is queued, the close
        # included, once that callback returns.
        if caller is not None:
            pending.discard(caller)
            pending.difference_update(callbacks_awaiting(caller))
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
        self._rebuild(iterators=())
