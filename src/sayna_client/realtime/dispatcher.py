"""The callbacks of one session, called one event at a time, in server order.

Every callback of a session, plain or ``async``, runs on the session's one
:class:`Dispatcher`, never on the task reading the socket. The reader appends each
event to the dispatcher's bounded :class:`~.mailbox.Mailbox` and goes on reading; the
dispatcher takes the events in that order and, for each, calls every callback
subscribed to its type in registration order, awaiting an ``async`` one (or the
awaitable a plain one returned) before the next callback and the next event. So
callbacks see events exactly in the order the server sent them, across event types,
and a slow callback delays later callbacks only: the reader, the keepalive and the
``events()`` / ``turns()`` iterators (each with its own mailbox) go on.

Who runs the callbacks: while every callback is a plain function, a *pass*: a plain
event-loop callback (``loop.call_soon``) scheduled by the first event put while the
dispatcher is idle, which calls the callbacks of every queued event (up to 256, then
it schedules another pass for the rest, letting other tasks run). No task, future or
coroutine is involved: per event at low rates, one loop callback. Once some callback
is ``async``, the dispatcher's *task* runs them instead, one event at a time (it awaits
each), woken through a future; it ends, and passes take over again, once the queue is
empty while every callback is plain. While the task waits for events, a TTS frame whose
callbacks are all plain (the usual session: an ``async`` result callback, a plain audio
one) is delivered by a pass too, and the task sleeps on: no future, wake-up and task
step per frame; the frames after it in the same read (a speak's come several to a read)
join that pass's run, checked against the bounds once, by the pass. A pass hands over
to the task whatever must be awaited, in order: the awaitable a callback returned (that
callback counts as async from then on), a callback's error report, an overflow report,
a notice, the rest of the queue at the end of the session. The two never run at once.

Overflow: when the dispatcher falls ``max_queue`` events (or ``max_queue_bytes`` of
audio) behind, the oldest queued events are discarded and the error callbacks receive
one :class:`EventsDropped` before the next event. A callback that raises is logged and
reported as a :class:`CallbackError` to the other error callbacks (at once, before the
next event) and to the iterators; an error callback that raises while handling such a
report is only logged, so reports never loop.
"""

from __future__ import annotations

import asyncio
import collections
import inspect
import logging
import types
import weakref
from collections.abc import Coroutine, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional

from .events import CallbackError, EventsDropped
from .mailbox import Barrier, Mailbox
from .registry import Subscription, Subscriptions

if TYPE_CHECKING:
    from .hub import EventHub

__all__ = ["Dispatcher", "Notice", "callbacks_awaiting", "is_callbacks"]

logger = logging.getLogger("sayna_client")

Callback = Callable[[Any], Any]

#: The dispatcher yields to the event loop after this many events in a row.
_YIELD_EVERY = 256
#: A pass's loop: at most ``_YIELD_EVERY`` events.
_BUDGET = range(_YIELD_EVERY)
#: The SDK's reports of trouble in delivery: a callback failing on one is only logged.
_REPORTS = frozenset({"callback_error", "events_dropped"})


#: The queue of a dispatcher that has never had an event (an empty ``deque`` is 760
#: bytes, and most of a session's life is waiting): replaced by a deque on the first put.
_NOTHING: Any = ()


class Notice:
    """An SDK event for the callbacks of ``route`` rather than of its own type: an
    unexpected close (``ConnectionClosed``) for the error callbacks (``lost``)."""

    __slots__ = ("event", "route")

    def __init__(self, route: str, event: Any) -> None:
        self.route = route
        self.event = event


#: The queued items that are no event: handled on the task by ``_special``.
_SPECIAL = (Barrier, Notice)

#: What an ``async`` callback returns, awaited as it is (anything else a callback
#: returned is awaited by :func:`_await_returned`).
_COROUTINE = types.CoroutineType

#: The futures (tasks, mostly) that callbacks tasks await because a plain callback
#: returned them, each to the callbacks tasks awaiting it (several when callbacks of
#: several sessions returned the same task); see :func:`is_callbacks`.
_AWAITED: dict[asyncio.Future[Any], list[asyncio.Task[Any]]] = {}


def is_callbacks(caller: asyncio.Task[Any], task: Optional[asyncio.Task[Any]]) -> bool:
    """``caller`` is the callbacks task ``task``, or a task it awaits because a plain
    callback returned it (an agent loop started by ``lambda event:
    asyncio.create_task(agent())``): a wait or a close called from such a task is one
    called from a callback, since the callbacks cannot go on before it ends."""
    if caller is task:
        return task is not None
    return bool(_AWAITED) and task in _AWAITED.get(caller, ())


def callbacks_awaiting(caller: asyncio.Task[Any]) -> list[asyncio.Task[Any]]:
    """The callbacks tasks that await ``caller`` (see :func:`is_callbacks`)."""
    return list(_AWAITED.get(caller, ())) if _AWAITED else []


async def _await_returned(result: Any) -> None:
    """Await what a plain callback returned. A future (a task) is noted meanwhile as
    awaited by this callbacks task (see :func:`is_callbacks`)."""
    task = asyncio.current_task()
    if not isinstance(result, asyncio.Future) or task is None:
        await result
        return
    waiting = _AWAITED.setdefault(result, [])
    waiting.append(task)
    try:
        await result
    finally:
        waiting.remove(task)
        if not waiting:
            del _AWAITED[result]


class Dispatcher(Mailbox):
    """One session's callbacks and their mailbox (see the module docstring).

    The dispatcher *is* the callbacks' mailbox: the fan-out appends to it with
    :meth:`put` / :meth:`put_audio`, which also wake the consumer. Two consumers take
    turns, never both at once: a *pass* (:meth:`_pass`, a plain loop callback) while
    every callback is a plain function, and for TTS frames with plain audio callbacks
    while the task waits; else the dispatcher *task*. They are this module's only
    readers of the queue.

    ``hub`` (held weakly: the hub holds its dispatcher) is told the SDK's reports the
    dispatcher makes (``CallbackError``, ``EventsDropped``) for the ``events()``
    iterators (:meth:`~.hub.EventHub.tell_iterators`). With ``after``, the task first
    waits for that one (the previous session's dispatcher) to finish, so callbacks of
    two sessions never overlap.
    """

    __slots__ = ("_after", "_carry", "_frame", "_frames", "_hub", "_pass_handle", "_subs", "_task")

    def __init__(
        self,
        subscriptions: Subscriptions,
        *,
        limit: int,
        max_bytes: int,
        hub: EventHub,
        after: Optional[asyncio.Task[None]] = None,
    ) -> None:
        super().__init__("callbacks", limit, max_bytes)
        self._subs = subscriptions
        # The hub's own weak reference (one per hub, shared): no cycle hub <-> dispatcher.
        self._hub = weakref.ref(hub)
        self._after = after
        self._task: Optional[asyncio.Task[None]] = None
        #: The scheduled (or running) pass, if any.
        self._pass_handle: Optional[asyncio.Handle] = None
        #: What a pass left for the task to finish first (see _hand_over).
        self._carry: Optional[Coroutine[Any, Any, None]] = None
        #: The TTS frame the scheduled audio pass delivers before the queue (see
        #: put_audio): not queued, so neither counted in the bounds nor ever dropped.
        self._frame: Optional[bytes] = None
        #: The frames put after it while nothing else was queued (see put_audio): the
        #: audio pass's run, counted in the bounds by the pass (_pass_run).
        self._frames: Optional[list[bytes]] = None
        self._items = _NOTHING

    def discard(self) -> None:
        """Close and drop everything queued, releasing barriers: the session ended and
        its callbacks did not catch up within ``timeouts.close`` (their task was
        cancelled). The events dropped are logged with their count, as every drop is."""
        lost = sum(1 for item in self._items if type(item) is not Barrier)
        super().discard()
        if lost:
            logger.warning(
                "%d events still queued for callbacks when the session ended were dropped:"
                " the callbacks did not catch up within timeouts.close (raise"
                " Timeouts(close=...) or make the callbacks quicker)",
                lost,
            )

    # --- the reader's side ---------------------------------------------------------

    def put(self, item: Any) -> None:
        """Queue an event for the callbacks of its type; never blocks."""
        waiter = self._waiter
        if waiter is not None and self._pass_handle is None:
            # The task waits, so nothing is queued (see put_audio): the event goes to it
            # through the future that wakes it, not through the queue (what is put
            # before it resumes is queued behind this one: the task takes it first).
            self._waiter = None
            try:
                waiter.set_result(item)
            except asyncio.InvalidStateError:  # the task was cancelled meanwhile: the
                waiter = None  # event is queued, for whoever consumes next
            else:
                return
        items = self._items
        if items is _NOTHING:
            items = self._items = collections.deque()
        items.append(item)
        if len(items) > self._limit:
            self._shed()
        # Idle: start a consumer (else the running task, or the pass scheduled, takes it).
        if self._pass_handle is None and not self._closed and self._running() is None:
            if self._after is None and self._carry is None and self._subs.all_plain:
                self._pass_handle = asyncio.get_running_loop().call_soon(self._pass)
            else:
                self._start()

    def put_audio(self, data: bytes) -> None:
        """Queue a TTS audio frame (its bytes) for the ``tts_audio`` callbacks."""
        if self._pass_handle is None:
            waiter = self._waiter
            if waiter is not None:
                # The task waits, so nothing is queued (the first put since it began
                # waiting either woke it or scheduled a pass): no bound to check.
                if self._subs.audio_plain:
                    # Plain audio callbacks while some other callback is async (the
                    # usual session): a pass delivers the frame and the task sleeps on,
                    # rather than being woken through its future for each frame. The
                    # frame waits in a slot of its own, not in the queue (what is put
                    # meanwhile is queued behind it): per frame no queueing and no
                    # byte count.
                    self._frame = data
                    # (The loop from the task's future: asyncio.get_running_loop() costs
                    # a getpid() system call on CPython 3.9-3.11.)
                    self._pass_handle = waiter.get_loop().call_soon(self._pass_frame)
                else:
                    self._items.append(data)
                    self._bytes += len(data)
                    self._waiter = None
                    if not waiter.done():
                        waiter.set_result(None)
                return
        elif self._frame is not None and not self._items:
            # The audio pass is scheduled and nothing else was queued since: the frame
            # joins the pass's run, a list the pass checks against the bounds once
            # (_pass_run: the pass runs in the loop's next turn, before the socket is
            # read again, and a turn reads at most framing.FRAMES_PER_TURN frames). A
            # speak's frames come several to a read: each then costs about what the
            # first did (no deque, no byte count, no bound test per frame).
            run = self._frames
            if run is None:
                self._frames = [data]
            else:
                run.append(data)
            return
        items = self._items
        if items is _NOTHING:
            items = self._items = collections.deque()
        items.append(data)
        size = self._bytes = self._bytes + len(data)
        if size > self._max_bytes or len(items) > self._limit:
            self._shed()
        self._consume()

    def put_audio_run(self, run: list[bytes]) -> None:
        """:meth:`put_audio` of each frame of ``run`` (frames that came in a row in one
        read), in order, with the same effect, at once: the frames join the audio pass's
        run, or the queue (checked against the bounds once: shedding the oldest until
        they hold keeps the same frames as shedding after each)."""
        if self._pass_handle is None and (self._waiter is not None or self._running() is None):
            # The task waits, or nothing consumes (a pass ended by a BaseException, a task
            # cancelled before its first step): the first frame opens an audio pass,
            # wakes the task or starts a consumer, as put_audio does, before the rest
            # (which may shed a queued barrier: its waiters wake after that consumer).
            self.put_audio(run[0])
            run = run[1:]
            if not run:
                return
        if self._frame is not None and not self._items:
            # The audio pass is scheduled and nothing else was queued since: its run.
            frames = self._frames
            if frames is None:
                self._frames = run
            else:
                frames += run
            return
        items = self._items
        if items is _NOTHING:
            items = self._items = collections.deque()
        items.extend(run)
        self._bytes += sum(map(len, run))
        if self._bytes > self._max_bytes or len(items) > self._limit:
            self._shed()
        self._consume()

    def _consume(self) -> None:
        """Start a consumer for what was just queued if none runs or is scheduled (else
        the running task, or the scheduled pass, takes it)."""
        if self._pass_handle is None and not self._closed and self._running() is None:  # idle
            if self._after is None and self._carry is None and self._subs.all_plain:
                self._pass_handle = asyncio.get_running_loop().call_soon(self._pass)
            else:
                self._start()

    def _start(self) -> None:
        """Start the task: some callback is async, the previous session's callbacks may
        still run, or a pass hands over."""
        task = asyncio.get_running_loop().create_task(self._run(), name="sayna-callbacks")
        task.add_done_callback(self._task_done)
        self._task = task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        """The task ended. Cancelled before its first step, it ran none of ``_run``, not
        even its ``finally``: do that part here (after the session's end, nobody else
        will come to release the barriers and close a hand-over never begun)."""
        if self._task is not task:
            return  # (``_run`` let go of it itself)
        self._task = None
        if self._closed:
            carry, self._carry = self._carry, None
            if carry is not None:
                carry.close()
            self.discard()

    def _running(self) -> Optional[asyncio.Task[None]]:
        """The task, if it runs. A task cancelled before its first step (a shutdown that
        cancels every task) ends without running any of ``_run``, so it never clears
        ``_task``: it is forgotten here, and the next event starts another."""
        task = self._task
        if task is not None and task.done():
            task = self._task = None
        return task

    # --- waiting and ending ----------------------------------------------------------

    def barrier(self) -> Optional[asyncio.Future[None]]:
        """A future set once every event queued now has been handled; None when nothing
        is queued or running, or when called from a callback on the task (it cannot wait
        for itself: the events before the one it handles are handled already), or from
        one of the previous session's callbacks, which this session's task waits for
        before it handles anything."""
        task = self._running()
        if task is not None or self._after is not None:
            caller = asyncio.current_task()
            if caller is not None and (
                is_callbacks(caller, task) or is_callbacks(caller, self._after)
            ):
                return None
        if task is not None:
            if not self._items and self._waiter is not None and self._pass_handle is None:
                return None  # idle
        elif self._pass_handle is None and (
            self._closed or (not self._items and self._carry is None)
        ):
            return None  # idle (or ended)
        barrier = Barrier()
        self.put(barrier)
        return barrier.future

    def end(self) -> Optional[asyncio.Task[None]]:
        """End of the session: the task handles what is queued, then ends; returns it,
        if one runs. A scheduled (or running) pass hands what is left to a task."""
        self.close()
        handle = self._pass_handle
        if handle is not None:
            self._pass_handle = None
            handle.cancel()  # no effect on a pass under way: it stops on seeing the task
            frame, self._frame = self._frame, None
            if frame is not None:  # the audio pass never ran: the task takes its frames first
                self._queue_run()
                self._items.appendleft(frame)  # a deque: the task waited, so something was put
                self._bytes += len(frame)
        task = self._running()
        if task is None and (handle is not None or self._items or self._carry is not None):
            # (Queued with no consumer: a task cancelled before its first step left them.)
            self._start()
            task = self._task
        return task

    # --- the pass: plain callbacks, no task --------------------------------------------

    def _pass(self) -> None:
        """Deliver what is queued to plain callbacks, on the event loop itself: at most
        ``_YIELD_EVERY`` events, then another pass is scheduled for the rest.

        Whatever needs awaiting goes to the task (:meth:`_hand_over`), which carries on
        in order: a callback's awaitable (an ``async`` callback registered meanwhile,
        or a plain one that returned one), a callback's error (the report is awaited),
        an overflow report, a notice. So does the queue once a task exists (the session
        ended during the pass).
        """
        items = self._items
        subs = self._subs
        try:
            for _ in _BUDGET:
                if not items:
                    self._pass_handle = None
                    return
                if self._dropped or self._closed:  # the task takes over (see end())
                    self._hand_over(None)
                    return
                item = items.popleft()
                kind = type(item)
                if kind is bytes:
                    self._bytes -= len(item)
                    if self._plain_audio(item):
                        continue
                    return  # handed over
                if kind is Barrier:
                    item.release()
                    continue
                if kind is Notice:
                    items.appendleft(item)  # told on the task: the route's callbacks may await
                    self._hand_over(None)
                    return
                event_type = item.type
                indexes = subs.by_type.get(event_type, ())
                registered = subs.all  # taken with the indexes: they agree
                for index in indexes:
                    sub = registered[index]
                    try:
                        result = sub.callback(item)
                    except Exception as exc:  # a user callback must not end the session
                        rest = _after(registered, indexes, index)
                        self._hand_over(self._resume(item, event_type, rest, sub, None, exc))
                        return
                    if result is not None and inspect.isawaitable(result):
                        subs.returns_awaitables(sub)
                        rest = _after(registered, indexes, index)
                        self._hand_over(self._resume(item, event_type, rest, sub, result))
                        return
        except BaseException:  # not a callback's Exception: the next put starts afresh
            self._pass_handle = None
            raise
        # _YIELD_EVERY events in a row: let other tasks run before the rest (which the
        # task takes itself once the session ended).
        if items and not self._closed:
            self._pass_handle = asyncio.get_running_loop().call_soon(self._pass)
        else:
            self._pass_handle = None

    def _pass_frame(self) -> None:
        """The pass put_audio schedules for a TTS frame while the task waits: the frame
        (kept aside, see put_audio), the run of frames put behind it, then whatever was
        queued behind them."""
        # (Never None here: end() takes the frame only with cancelling this pass.)
        frame: bytes = self._frame  # type: ignore[assignment]
        self._frame = None
        # _plain_audio, inline: this is the path of nearly every TTS frame.
        targets = self._subs.audio
        for sub in targets:
            try:
                result = sub.on_audio(frame)
            except Exception as exc:  # a user callback must not end the session
                self._audio_hand_over(frame, targets, sub, None, exc)
                self._queue_run()  # the task takes the run first
                return
            if result is not None and inspect.isawaitable(result):
                self._audio_hand_over(frame, targets, sub, result)
                self._queue_run()
                return
        if self._frames is not None and not self._pass_run():
            return  # handed over
        if self._items:
            self._pass()
        else:
            self._pass_handle = None

    def _pass_run(self) -> bool:
        """Deliver the audio pass's run (see put_audio) to plain callbacks; False if it
        handed over (the task takes the rest of the run first).

        The run is checked against the bounds here, once, as if it had been queued: over
        one, it is queued and shed (the oldest frames dropped, as put_audio would have)
        and the general pass goes on with the report.
        """
        run = self._frames
        assert run is not None
        if (
            len(run) + len(self._items) > self._limit
            or sum(map(len, run)) + self._bytes > self._max_bytes
        ):
            self._queue_run()
            self._shed()
            return True
        self._frames = None
        subs = self._subs
        frames = iter(run)
        for data in frames:
            # _plain_audio, inline (a speak's frames come several to a read).
            targets = subs.audio
            for sub in targets:
                try:
                    result = sub.on_audio(data)
                except Exception as exc:  # a user callback must not end the session
                    self._audio_hand_over(data, targets, sub, None, exc)
                    break
                if result is not None and inspect.isawaitable(result):
                    self._audio_hand_over(data, targets, sub, result)
                    break
            else:
                continue
            self._frames = list(frames)  # handed over: the task takes the rest first
            self._queue_run()
            return False
        return True

    def _queue_run(self) -> None:
        """Queue what is left of the audio pass's run first, counted (handing over, or
        over a bound): it goes before what was queued behind it."""
        run, self._frames = self._frames, None
        if run:
            items = self._items  # a deque: the task waited, so something was put
            items.extendleft(reversed(run))
            self._bytes += sum(map(len, run))

    def _plain_audio(self, data: bytes) -> bool:
        """Call the audio callbacks with ``data`` on a pass; False if it handed over (a
        callback raised, or returned an awaitable: the task finishes the frame)."""
        targets = self._subs.audio
        for sub in targets:
            try:
                result = sub.on_audio(data)
            except Exception as exc:  # a user callback must not end the session
                self._audio_hand_over(data, targets, sub, None, exc)
                return False
            if result is not None and inspect.isawaitable(result):
                self._audio_hand_over(data, targets, sub, result)
                return False
        return True

    def _audio_hand_over(
        self,
        data: bytes,
        targets: tuple[Subscription, ...],
        sub: Subscription,
        result: Any,
        exc: Optional[Exception] = None,
    ) -> None:
        """End a pass at ``data``'s audio callback ``sub`` (of ``targets``, the audio
        callbacks when the frame's delivery began), which raised ``exc`` or returned the
        awaitable ``result``: the task finishes the frame (the callbacks after it)."""
        if exc is None:
            self._subs.returns_awaitables(sub)
        later = targets[targets.index(sub) + 1 :]
        self._hand_over(self._resume(data, "tts_audio", later, sub, result, exc))

    def _hand_over(self, carry: Optional[Coroutine[Any, Any, None]]) -> None:
        """End the pass: the task finishes ``carry`` (the rest of the event under way),
        then takes the queue."""
        self._pass_handle = None
        self._carry = carry
        if self._running() is None:
            self._start()
            return
        waiter = self._waiter
        if waiter is not None:  # the task waits for events: it takes over
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _resume(
        self,
        item: Any,
        event_type: str,
        later: Sequence[Subscription],
        sub: Subscription,
        result: Any,
        exc: Optional[Exception] = None,
    ) -> None:
        """The rest of one event a pass handed over: await what ``sub`` returned (or
        report what it raised), then call the callbacks after it (``later``)."""
        if exc is None:
            try:
                await _await_returned(result)
            except Exception as error:  # a user callback must not end the session
                await self._failed(sub, event_type, error)
        else:
            await self._failed(sub, event_type, exc)
        audio = type(item) is bytes
        for next_sub in later:
            try:
                result = next_sub.on_audio(item) if audio else next_sub.callback(item)
                if result is not None and (next_sub.is_async or inspect.isawaitable(result)):
                    await _await_returned(result)
            except Exception as error:  # a user callback must not end the session
                await self._failed(next_sub, event_type, error)

    # --- the task: async callbacks -----------------------------------------------------

    async def _run(self) -> None:
        # The task, one coroutine (a wake-up resumes no other frame): the previous
        # session's callbacks first, what a pass handed over, then the events, one at a
        # time. Nothing else can put while this task runs (the reader runs only while
        # it is suspended), so the overflow report is looked at, and the queue again,
        # only after a suspension.
        after = self._after
        try:
            if after is not None and not after.done():
                await asyncio.wait((after,))  # the previous session's callbacks first
            # (Let go of only now: a task cancelled while it waited leaves the wait to
            # the next one, so the two sessions' callbacks still never overlap.)
            self._after = None
            carry, self._carry = self._carry, None
            if carry is not None:
                await carry
            subs = self._subs
            isawaitable = inspect.isawaitable
            create_future = asyncio.get_running_loop().create_future
            handled = 0  # events since this task last let others run
            while True:
                if self._dropped:
                    await self._dropped_report()
                items = self._items
                if items:
                    if handled >= _YIELD_EVERY:
                        handled = 0
                        await asyncio.sleep(0)  # let other tasks run during long bursts
                        continue
                    handled += 1
                    item = items.popleft()
                else:
                    if self._closed or subs.all_plain:
                        return  # ended; or plain functions only (again): passes take over
                    handled = 0
                    # Nothing of the last event outlives its callbacks while the task
                    # waits, often across collections (its message, the finished
                    # coroutine, a pass's hand-over): young objects die young (#19).
                    item = result = sub = carry = None
                    # Mailbox.wait(), inline: once per wake-up, i.e. per event at low
                    # rates. put() hands its event over as the future's result (None:
                    # look at the queue, and at what a pass handed over).
                    waiter = self._waiter = create_future()
                    try:
                        item = await waiter  # whoever sets it also clears self._waiter
                    except BaseException:  # cancelled
                        if self._waiter is waiter:
                            self._waiter = None
                        elif waiter.done() and not waiter.cancelled():
                            self._requeue(waiter.result())
                        raise
                    if item is None:
                        carry = self._carry
                        if carry is not None:  # a pass ran meanwhile and handed this over
                            self._carry = None
                            await carry
                        continue
                kind = type(item)
                if kind is bytes:  # (queued by put_audio: put() never takes bytes)
                    self._bytes -= len(item)
                    for sub in subs.audio:
                        try:
                            result = sub.on_audio(item)
                            if result is not None and (sub.is_async or isawaitable(result)):
                                await (
                                    result
                                    if type(result) is _COROUTINE
                                    else _await_returned(result)
                                )
                        except Exception as exc:  # a user callback must not end the session
                            await self._failed(sub, "tts_audio", exc)
                    continue
                if kind in _SPECIAL:
                    await self._special(item)
                    continue
                event_type = item.type
                registered = subs.all  # taken with the indexes: they agree
                for index in subs.by_type.get(event_type, ()):
                    sub = registered[index]
                    try:
                        result = sub.callback(item)
                        if result is not None and (sub.is_async or isawaitable(result)):
                            await (
                                result if type(result) is _COROUTINE else _await_returned(result)
                            )
                    except Exception as exc:  # a user callback must not end the session
                        await self._failed(sub, event_type, exc)
        finally:
            self._task = None
            if self._closed:  # ended or cancelled while draining: nobody will come
                carry, self._carry = self._carry, None
                if carry is not None:  # the rest of a pass's event, never begun
                    carry.close()
                self.discard()
            # (Else a carry handed over just before a cancellation stays, never begun, for
            # the next task: the next event, barrier or end() starts one.)

    def _requeue(self, item: Any) -> None:
        """Put back at the front of the queue the event (None: a wake-up, no event) that
        put() handed to the task through its future just before a cancellation reached
        it: the next consumer takes it first, before what was queued behind it."""
        if item is None:
            return
        items = self._items
        if items is _NOTHING:
            items = self._items = collections.deque()
        items.appendleft(item)

    async def _special(self, item: Any) -> None:
        """A queued barrier (released) or notice (told to its route's callbacks)."""
        if type(item) is Barrier:
            item.release()
        else:
            await self._tell(item.route, item.event)

    async def _failed(self, sub: Subscription, event_type: str, exc: Exception) -> None:
        logger.error(
            "Sayna callback %s raised while handling %r", sub.name, event_type, exc_info=exc
        )
        if event_type in _REPORTS:
            return  # a failing error callback must not report to the others in a loop
        error = CallbackError(sub.name, event_type, exc)
        self._report_to_iterators(error)
        await self._tell("callback_error", error, sub)

    async def _dropped_report(self) -> None:
        count, self._dropped = self._dropped, 0
        event = EventsDropped(self.name, count)
        logger.warning("%s", event.message)
        self._report_to_iterators(event)
        await self._tell("events_dropped", event)

    def _report_to_iterators(self, problem: Any) -> None:
        hub = self._hub()
        if hub is not None:
            hub.tell_iterators(problem)

    async def _tell(self, route: str, event: Any, skip: Optional[Subscription] = None) -> None:
        """Deliver an SDK event to the callbacks of ``route`` (but ``skip``), in order."""
        for sub in self._subs.taking(route):
            if sub is skip:
                continue
            try:
                result = sub.callback(event)
                if result is not None and inspect.isawaitable(result):
                    await _await_returned(result)
            except Exception as exc:
                await self._failed(sub, route, exc)


def _after(
    registered: tuple[Subscription, ...], indexes: tuple[int, ...], index: int
) -> list[Subscription]:
    """The callbacks of an event after the one at ``index`` (handing over: not per event)."""
    return [registered[i] for i in indexes[indexes.index(index) + 1 :]]
