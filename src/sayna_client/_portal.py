"""The machinery behind :class:`~sayna_client.SaynaSyncClient`: a private event loop in a
daemon thread, the portal that submits coroutines to it from any thread, thread-safe
unsubscribe handles, and blocking iterators over async ones."""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import functools
import itertools
import logging
import queue
import threading
import weakref
from collections.abc import AsyncIterator, Coroutine
from typing import Any, Callable, Generic, Optional, TypeVar, cast

from typing_extensions import Concatenate, ParamSpec

from ._defaults import CLIENT_DEFAULT
from ._serving import served_by_this_thread
from .client import SaynaClient
from .errors import SaynaConnectionError, SaynaTimeoutError
from .realtime.subscriptions import Unsubscribe

__all__ = ["BlockingIterator", "blocking", "registration"]

logger = logging.getLogger("sayna_client")

T = TypeVar("T")
R = TypeVar("R")
P = ParamSpec("P")

#: After ``disconnect()``, how long calls still running on the loop (woken by the close)
#: get to finish before they are cancelled.
_SETTLE_SECONDS = 0.1
#: How long the loop thread's end waits for work still running in its loop's default
#: executor (a callback's ``run_in_executor(None, ...)``, a DNS lookup) before it leaves
#: those threads to finish on their own: ``close()`` must not hang on a user's call.
_EXECUTOR_SECONDS = 5.0
_thread_numbers = itertools.count(1)


def _named(what: str) -> tuple[str, str]:
    """``what`` (``"speak()"``, ``"handle.wait()"``) as the user wrote it: its class
    and method (``SyncSpeechHandle.wait()``), and the bound method to name in a fix
    (``handle.wait``)."""
    owner, _, method = what.rpartition(".")
    title = "SyncSpeechHandle" if owner == "handle" else "SaynaSyncClient"
    return f"{title}.{method}", f"{owner or 'client'}.{method.split('(')[0]}"


def _deadlock_error(what: str) -> RuntimeError:
    return RuntimeError(
        f"{_named(what)[0]} was called on the client's own event-loop thread (from a "
        "callback?). It would wait for that very thread and deadlock. In a callback, use an "
        "async callback that awaits the async method on `client.async_client` (e.g. `await "
        "client.async_client.speak(...)`), or make the call from another thread."
    )


def _wait(future: concurrent.futures.Future[T]) -> T:
    """The result of ``future``; an interrupted wait (Ctrl-C) cancels the call on the loop."""
    try:
        return future.result()
    except concurrent.futures.CancelledError:
        raise SaynaConnectionError(
            "The SaynaSyncClient was closed (close() or disconnect() in another thread) "
            "while this call was running"
        ) from None
    except BaseException:
        future.cancel()  # no-op when the call itself raised
        raise


async def _shutdown(
    client: SaynaClient,
    graceful: bool,
    drain: Any,
    iterators: Callable[[], list[BlockingIterator[Any]]],
) -> None:
    """Disconnect, then let calls woken by the close finish; cancel whatever still runs.
    Last, each of ``iterators()`` keeps what its source still holds (see
    :meth:`BlockingIterator._keep_rest`): the loop stops after this."""
    try:
        await client.disconnect(graceful=graceful, drain=drain)
    finally:
        current = asyncio.current_task()
        others = {task for task in asyncio.all_tasks() if task is not current}
        if others:
            # (an iterator's pending next() among them: it takes its item first)
            _, pending = await asyncio.wait(others, timeout=_SETTLE_SECONDS)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            # A cancelled REST retry may have opened a new HTTP session meanwhile.
            await client.disconnect(graceful=False)
        await _keep_rests(iterators())


async def _keep_rests(iterators: list[BlockingIterator[Any]]) -> None:
    """Move what the sources of ``iterators`` hold to the iterators. The disconnect
    ended their sessions, so each source yields what it queued and ends at once (in one
    step of this task); the bound only keeps ``close()`` bounded should one not end."""
    if not iterators:
        return
    keeping = asyncio.ensure_future(_keep_each(iterators))
    await asyncio.wait({keeping}, timeout=_SETTLE_SECONDS)
    if not keeping.done():
        keeping.cancel()  # what was moved so far stays with its iterator
        await asyncio.gather(keeping, return_exceptions=True)


async def _keep_each(iterators: list[BlockingIterator[Any]]) -> None:
    for iterator in iterators:
        await iterator._keep_rest()


_Job = tuple[concurrent.futures.Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


def _run(
    future: concurrent.futures.Future[Any],
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    if future.set_running_or_notify_cancel():
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(result)


class _DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """The sync client's loop default executor: ``ThreadPoolExecutor``'s interface (the
    loop requires one) with threads of its own that are daemons and never joined at
    interpreter exit (``concurrent.futures`` joins its workers there), so a callback's
    ``run_in_executor(None, ...)`` that never returns does not hold the process."""

    def __init__(self, thread_name_prefix: str) -> None:
        super().__init__(thread_name_prefix=thread_name_prefix)
        self._jobs: queue.SimpleQueue[Optional[_Job]] = queue.SimpleQueue()
        self._idle_workers = threading.Semaphore(0)
        self._guard = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._closed = False

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        with self._guard:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            future: concurrent.futures.Future[T] = concurrent.futures.Future()
            self._jobs.put((future, fn, args, kwargs))
            if not self._idle_workers.acquire(timeout=0) and (
                len(self._workers) < self._max_workers
            ):
                worker = threading.Thread(
                    target=self._work,
                    name=f"{self._thread_name_prefix}_{len(self._workers)}",
                    daemon=True,
                )
                worker.start()
                self._workers.append(worker)
        return future

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                self._jobs.put(None)  # (wakes the next worker to end too)
                return
            _run(*job)
            del job  # (nothing of it kept while idle)
            self._idle_workers.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._guard:
            self._closed = True
            workers = list(self._workers)
        if cancel_futures:
            while True:
                try:
                    job = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job[0].cancel()
        self._jobs.put(None)
        if wait:
            for worker in workers:
                worker.join()


def _shut_down_executor(executor: concurrent.futures.ThreadPoolExecutor) -> None:
    """Shut the loop's default executor down, waiting at most ``_EXECUTOR_SECONDS`` for
    what still runs there (``loop.shutdown_default_executor()`` waits without a limit
    before Python 3.12); past that, say so and leave those threads to finish (daemon
    threads: the process can still exit)."""
    waiter = threading.Thread(
        target=executor.shutdown, kwargs={"cancel_futures": True}, daemon=True
    )
    waiter.start()
    waiter.join(_EXECUTOR_SECONDS)
    if waiter.is_alive():
        logger.warning(
            "SaynaSyncClient closed while a call run in its event loop's default executor "
            "(run_in_executor(None, ...)) was still running after %.0f s; its thread is left "
            "to finish on its own. Bound that call, or run it in an executor of your own.",
            _EXECUTOR_SECONDS,
        )


class _LoopThread:
    """One event loop in one daemon thread. Holds no reference to the sync client, so an
    unclosed client can still be garbage-collected (and warn)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self._main, name=f"sayna-sync-loop-{next(_thread_numbers)}", daemon=True
        )
        self.stopping: Optional[concurrent.futures.Future[None]] = None
        self.thread.start()

    def _main(self) -> None:
        loop = self.loop
        executor = _DaemonExecutor(self.thread.name.replace("-loop-", "-worker-"))
        loop.set_default_executor(executor)
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())  # ends unfinished events()
            _shut_down_executor(executor)
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    def is_current(self) -> bool:
        return threading.current_thread() is self.thread

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, fn: Callable[..., T], *args: Any) -> concurrent.futures.Future[T]:
        future: concurrent.futures.Future[T] = concurrent.futures.Future()

        def run() -> None:
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args))
                except BaseException as exc:
                    future.set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise

        self.loop.call_soon_threadsafe(run)
        return future

    def shutdown(
        self,
        client: SaynaClient,
        iterators: Callable[[], list[BlockingIterator[Any]]],
        graceful: bool = False,
        drain: Any = CLIENT_DEFAULT,
    ) -> concurrent.futures.Future[None]:
        """Start the shutdown (once); the loop stops when it is done and the thread ends.
        ``iterators()``, called on the loop once the session is closed, lists the
        iterators that keep what their sources still hold."""
        if self.stopping is None:
            loop = self.loop
            self.stopping = self.submit(_shutdown(client, graceful, drain, iterators))
            self.stopping.add_done_callback(lambda _: loop.call_soon_threadsafe(loop.stop))
        return self.stopping


class _Portal:
    """Starts the loop thread lazily and carries calls into it from any other thread."""

    def __init__(self, url: str = "") -> None:
        #: The client's server: a blocking call on the thread whose loop serves it (a
        #: local server in an async test) is refused (see :meth:`check_thread`).
        self.url = url
        # Held to start or submit to the loop, and for a whole close(): a call made during
        # close() waits for it, then starts a fresh loop, never one that is stopping.
        # Code on the loop thread never takes it.
        self._lock = threading.Lock()
        self._runner: Optional[_LoopThread] = None
        #: Shutdowns so far. Each one ends every ``events()``/``turns()`` iterator, so an
        #: iterator from an earlier generation is over and must not start a new loop.
        self.generation = 0
        # The live iterators, added and listed on the loop thread (or under the lock when
        # no loop runs), so a shutdown sees every one made before it.
        self._iterators: weakref.WeakSet[BlockingIterator[Any]] = weakref.WeakSet()

    @property
    def running(self) -> bool:
        return self._runner is not None

    def on_loop_thread(self) -> bool:
        runner = self._runner
        return runner is not None and runner.is_current()

    def check_thread(self, what: str, *, serving: bool = True) -> None:
        """Raise the deadlock ``RuntimeError`` when called on the loop thread, or
        (``serving``) on the thread of the loop that runs the client's local server.
        ``close()`` may run there: its waits are bounded, and a test's teardown must end."""
        if self.on_loop_thread():
            raise _deadlock_error(what)
        served = served_by_this_thread(self.url) if serving else None
        if served is not None:
            name, method = _named(what)
            raise RuntimeError(
                f"{name} was called on the event-loop thread that runs the local Sayna "
                f"server at {served}: the server cannot answer while this thread waits. "
                "From async code, run the call in a worker thread (`await "
                f"asyncio.to_thread({method}, ...)`) or use SaynaClient."
            )

    def submit(
        self, what: str, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        self.check_thread(what)
        with self._lock:
            if self._runner is None:
                self._runner = _LoopThread()
            return self._runner.submit(fn(*args, **kwargs))

    def submit_within(
        self, generation: int, what: str, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any
    ) -> Optional[concurrent.futures.Future[T]]:
        """Like :meth:`submit`, or ``None`` once a shutdown happened after ``generation``."""
        self.check_thread(what)
        with self._lock:
            if generation != self.generation:
                return None
            if self._runner is None:
                self._runner = _LoopThread()
            return self._runner.submit(fn(*args))

    def iterate(
        self, subscribe: Callable[[], AsyncIterator[T]], timeout: Optional[float], what: str
    ) -> BlockingIterator[T]:
        """A :class:`BlockingIterator` over ``subscribe()``, made where it cannot race the
        loop (see :meth:`call`), so the next shutdown hands it what its source still
        holds then."""

        def make() -> BlockingIterator[T]:
            iterator = BlockingIterator(self, subscribe(), timeout, what)
            self._iterators.add(iterator)
            return iterator

        return self.call(make)

    def _live_iterators(self, generation: int) -> Callable[[], list[BlockingIterator[Any]]]:
        def live() -> list[BlockingIterator[Any]]:
            return [it for it in list(self._iterators) if it._generation == generation]

        return live

    def run(self, fn: Callable[..., Coroutine[Any, Any, T]], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the loop and wait for its result (see :func:`_wait`)."""
        return _wait(self.submit(f"{fn.__name__}()", fn, *args, **kwargs))

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a quick non-blocking ``fn`` where it cannot race the loop: inline on the loop
        thread, on the loop when it runs, else inline under the lock (no loop to race)."""
        if self.on_loop_thread():
            return fn(*args)
        with self._lock:
            runner = self._runner
            if runner is None:
                return fn(*args)
            future = runner.call(fn, *args)
        return _wait(future)

    def close(
        self,
        client: SaynaClient,
        timeout: Optional[float] = None,
        *,
        graceful: bool = True,
        drain: Any = CLIENT_DEFAULT,
    ) -> None:
        """Shut down (``client.disconnect(graceful=..., drain=...)``) and join the loop
        thread; at most ``timeout`` seconds when given."""
        self.check_thread("close()", serving=False)
        if served_by_this_thread(self.url):
            # The server cannot answer while this thread waits: a graceful close would
            # wait the whole drain time for nothing. At once, as abort().
            graceful = False
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            return
        try:
            runner = self._runner
            if runner is None:
                return
            stopping = runner.shutdown(
                client, self._live_iterators(self.generation), graceful, drain
            )
            runner.thread.join(timeout)
            if runner.thread.is_alive():
                return
            self._runner = None
            self.generation += 1
        finally:
            self._lock.release()
        stopping.result()

    def close_nowait(self, client: SaynaClient) -> None:
        """Start the shutdown without waiting (from ``__del__``, on any thread)."""
        runner = self._runner
        if runner is not None:
            self._runner = None  # the thread ends on its own
            live = self._live_iterators(self.generation)
            self.generation += 1
            try:
                runner.shutdown(client, live)
            except RuntimeError:  # the loop is already closed
                pass


class _ThreadSafeUnsubscribe(Unsubscribe):
    """An :class:`Unsubscribe` that removes the callback on the loop thread."""

    __slots__ = ("_inner", "_portal")

    def __init__(self, inner: Unsubscribe, portal: _Portal) -> None:  # no super(): wraps
        self._inner = inner
        self._portal = portal

    def __call__(self) -> bool:
        """Remove the callback; True if it was still registered. Safe from any thread."""
        return self._portal.call(self._inner)


async def _next_or_none(source: AsyncIterator[T]) -> Optional[T]:
    try:
        return await source.__anext__()
    except StopAsyncIteration:
        return None


class BlockingIterator(Generic[T]):
    """A blocking iterator over an async one of the client (``events()`` or ``turns()``).

    ``next()`` waits up to ``timeout`` seconds (``None``: no limit) for the next item and
    raises :class:`~sayna_client.SaynaTimeoutError` if none came; the iterator stays
    usable, and the item still arrives on a later ``next()``. Iteration ends when the
    session ends (``close()``, or a server close not followed by a reconnect), after the
    items queued for it by then, which a ``close()`` of the client keeps for it (they
    arrive after the close too, in order, as from ``SaynaClient.events()``). Leaving a
    ``for`` loop early keeps the subscription (and its queue) until :meth:`close`, the end
    of the session or garbage collection; ``with client.events() as events:`` closes it.
    One thread at a time may read an iterator; :meth:`close` works from any thread.
    """

    def __init__(
        self, portal: _Portal, source: AsyncIterator[T], timeout: Optional[float], what: str
    ) -> None:
        self._portal = portal
        self._source = source
        self._timeout = timeout
        self._what = what
        self._generation = portal.generation
        self._pending: Optional[concurrent.futures.Future[Optional[T]]] = None
        # What the source still held when the client closed, served before the end
        # (filled on the loop thread while close() holds the portal's lock).
        self._rest: collections.deque[T] = collections.deque()
        self._closing: Optional[asyncio.Future[Any]] = None
        self._finished = False

    def __iter__(self) -> BlockingIterator[T]:
        return self

    def __next__(self) -> T:
        """The next item.

        Raises:
            StopIteration: the session ended (or :meth:`close` was called).
            SaynaTimeoutError: nothing within ``timeout`` seconds.
            RuntimeError: called on the client's loop thread (it would deadlock).
        """
        if self._finished:
            raise StopIteration
        pending = self._pending
        if pending is None:
            if self._rest:
                return self._rest.popleft()
            pending = self._portal.submit_within(
                self._generation, self._what, _next_or_none, self._source
            )
            if pending is None:  # the client closed since: the session this iterated is over
                return self._kept()
            self._pending = pending
        try:
            item = pending.result(self._timeout)
        except concurrent.futures.TimeoutError:
            raise SaynaTimeoutError(
                f"{self._what} received nothing within {self._timeout} s",
                operation=self._what,
                timeout=self._timeout,
            ) from None
        except concurrent.futures.CancelledError:  # the client closed
            item = None
        self._pending = None
        if item is None:
            return self._kept()
        return item

    def _kept(self) -> T:
        """Once the source is over: what the client's close kept for this iterator, then
        the end."""
        if self._rest:
            return self._rest.popleft()
        self._finished = True
        raise StopIteration

    async def _keep_rest(self) -> None:
        """On the loop thread, at the client's close (after the disconnect, and after a
        ``next()`` still pending took its item): move what the source still yields to
        :attr:`_rest`, so the blocking side gets it after the loop has stopped."""
        if self._finished:
            return
        try:
            while True:
                item = await _next_or_none(self._source)
                if item is None:
                    return
                self._rest.append(item)
        except Exception:  # the source failed or was cancelled: nothing more to keep
            logger.debug("%s kept what it could at the close", self._what, exc_info=True)

    def close(self) -> None:
        """Unsubscribe now (safe from any thread, and twice)."""
        if self._finished:
            return
        self._finished = True
        self._rest.clear()
        pending, self._pending = self._pending, None
        if pending is not None and pending.cancel():
            return  # the cancellation runs the async iterator's cleanup
        aclose = getattr(self._source, "aclose", None)
        if aclose is None or not self._portal.running:
            return  # without a loop the iterator already ended (or never started)
        if self._portal.on_loop_thread():
            self._closing = asyncio.ensure_future(aclose())
            return
        future = self._portal.submit_within(self._generation, f"{self._what}.close()", aclose)
        if future is not None:
            _wait(future)

    def __enter__(self) -> BlockingIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __del__(self) -> None:
        pending = getattr(self, "_pending", None)
        if pending is not None and not pending.done():
            pending.cancel()


def blocking(
    function: Callable[Concatenate[Any, P], Coroutine[Any, Any, R]],
) -> Callable[Concatenate[Any, P], R]:
    """A ``SaynaSyncClient`` method that is the ``SaynaClient`` coroutine method of the
    same name, run on the loop thread: same arguments, result and errors, blocking
    (see :meth:`_Portal.run`). A plain function in the class, with the async method's
    signature, so a subclass may override it and call ``super()``, and ``mock``'s
    autospec sees a method."""
    name = function.__name__

    @functools.wraps(function)
    def method(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        return self._portal.run(getattr(self._client, name), *args, **kwargs)

    method.__doc__ = (
        f"``SaynaClient.{name}()``, blocking: it runs on the client's loop thread and "
        f"this returns its result or raises its error.\n\n{function.__doc__ or ''}"
    )
    return cast("Callable[Concatenate[Any, P], R]", method)


def registration(
    function: Callable[[Any, Callable[[T], Any]], Unsubscribe],
) -> Callable[[Any, Callable[[T], Any]], Unsubscribe]:
    """A ``SaynaSyncClient`` ``register_on_*`` method: the ``SaynaClient`` one, run where
    it cannot race the loop, returning an ``Unsubscribe`` callable from any thread."""
    name = function.__name__

    @functools.wraps(function)
    def method(self: Any, callback: Callable[[T], Any]) -> Unsubscribe:
        return _ThreadSafeUnsubscribe(
            self._portal.call(getattr(self._client, name), callback), self._portal
        )

    method.__doc__ = f"{function.__doc__}\n\nThe callback runs on the loop thread."
    return method
