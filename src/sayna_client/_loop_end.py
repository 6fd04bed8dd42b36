"""What the SDK does when an event loop ends with its sessions still open.

A script whose ``asyncio.run(main())`` returns while a ``SaynaClient`` is connected (no
``disconnect()``, no ``async with``; the client kept in a global or in a reference
cycle, so it outlives the loop) left aiohttp's objects bound to a closed loop: when they
were collected later, aiohttp printed "Unclosed client session" and "Exception ignored
in ... ClientResponse.__del__ ... RuntimeError: Event loop is closed" tracebacks (seen
with aiohttp 3.13). The SDK now hears of the loop's end and releases them while the loop
still runs: :func:`at_loop_end` registers what to release; each open session warns once
(``ResourceWarning``, naming ``disconnect()`` and ``async with``) and is closed, and the
loop's shared aiohttp session is closed quietly.

How it hears of the end: one suspended async generator per loop that has something
registered. ``asyncio.run()`` (and the sync client's loop thread) finalize such
generators with ``loop.shutdown_asyncgens()`` after cancelling the tasks and before
closing the loop, which runs the generator's ``finally`` on the loop. No task is kept
(``asyncio.all_tasks()`` shows nothing), and a loop closed without that step (a bare
``loop.close()``) is no worse off than before. When the last registration is withdrawn,
the generator is closed at once, so an idle loop holds nothing.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Any, Callable, Optional

__all__ = ["at_loop_end", "forget"]


class _Watch:
    """One loop's registrations (key -> callback of that key) and its generator."""

    __slots__ = ("callbacks", "generator")

    def __init__(self) -> None:
        self.callbacks: dict[int, tuple[Any, Callable[[Any], None]]] = {}
        self.generator: Any = None


_WATCHES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Watch]
_WATCHES = weakref.WeakKeyDictionary()
#: Loops of several threads (sync clients) register and withdraw.
_LOCK = threading.Lock()


def at_loop_end(key: int, target: Any, callback: Callable[[Any], None]) -> None:
    """Call ``callback(target)`` if the running loop ends before :func:`forget` withdraws
    ``key`` (the latest registration of a key wins). Callbacks run on the loop, newest
    first; what one raises is logged and the others still run. Call it from the loop.

    Raises:
        RuntimeError: no running event loop.
    """
    loop = asyncio.get_running_loop()
    with _LOCK:
        watch = _WATCHES.get(loop)
        if watch is None:
            watch = _WATCHES[loop] = _Watch()
        watch.callbacks[key] = (target, callback)
    if watch.generator is None:
        generator = watch.generator = _watch(watch)
        try:
            # First iterated here, on the loop: the loop's asyncgen hook registers it,
            # and shutdown_asyncgens() will close it. It stops at its yield at once.
            generator.asend(None).send(None)
        except StopIteration:
            pass


def forget(key: int, loop: Any) -> None:
    """Withdraw ``key`` registered on ``loop`` (nothing if it is not). Never raises."""
    if loop is None:
        return
    with _LOCK:
        watch = _WATCHES.get(loop)
        if watch is None or watch.callbacks.pop(key, None) is None or watch.callbacks:
            return
        # Nothing left to watch: close the generator now (its finally sees no callback).
        del _WATCHES[loop]
        generator, watch.generator = watch.generator, None
    if generator is not None:
        try:
            generator.aclose().send(None)
        except (StopIteration, RuntimeError):
            pass  # closed (RuntimeError: it is being closed by shutdown_asyncgens())


async def _watch(watch: _Watch) -> AsyncGenerator[None, None]:
    """Suspended until the loop's ``shutdown_asyncgens()`` (or :func:`forget`) closes it."""
    try:
        yield
    finally:
        with _LOCK:
            callbacks = list(watch.callbacks.values())
            watch.callbacks.clear()
        failure: Optional[Exception] = None
        for target, callback in reversed(callbacks):
            try:
                callback(target)
            except Exception as exc:  # one failure must not keep the others open
                failure = failure or exc
        if failure is not None:
            # (A ResourceWarning made an error by -W error, say: asyncio reports it.)
            raise failure
