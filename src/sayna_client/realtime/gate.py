"""The session gate: one lifecycle change at a time, on one event loop.

``connect()``, ``reconfigure()``, a reconnect attempt and the close of ``disconnect()``
/ ``abort()`` each change the session as a whole (open a socket, send a config and
wait for ``ready``, close and release everything). They pass through a
:class:`SessionGate` one at a time, in call order, whichever tasks make the calls:

* the gate's lock is never replaced while a task holds it (a new one is made only
  for a new event loop, once the session is closed);
* a close does not wait behind a connect that may take ``Timeouts.ready`` seconds:
  :meth:`SessionGate.interrupt` cancels the holder, whose call then raises
  :class:`~sayna_client.SaynaConnectionClosedError` (its caller's task is not left
  cancelled), and the close proceeds once the holder has cleaned up;
* a session belongs to the event loop that opened it: a call from another running
  loop raises :class:`~sayna_client.SaynaEventLoopError` instead of touching a socket
  that loop owns. When that loop has been closed (``asyncio.run()`` returned) the old
  session is dead and a new loop may take the client over.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Optional

from ..errors import SaynaConnectionClosedError, SaynaEventLoopError
from ..protocol.lifecycle import CloseCode

__all__ = ["SessionGate"]


def _uncancel(task: asyncio.Task[object]) -> bool:
    """Withdraw one cancellation request from ``task``; False when others remain (the
    caller was cancelled by someone else too, so the cancellation must go on)."""
    if sys.version_info >= (3, 11):
        return task.uncancel() == 0
    return True  # no cancellation counting before 3.11


def _wrong_loop() -> SaynaEventLoopError:
    return SaynaEventLoopError(
        "This SaynaClient's session runs on another event loop (the one that called "
        "connect()); await the client's methods on that loop. Use one client per event "
        "loop, or SaynaSyncClient to share one between threads."
    )


class SessionGate:
    """Serialises the lifecycle calls of one client (see the module docstring)."""

    __slots__ = (
        "_holder",
        "_interrupted",
        "_interruptible",
        "_lock",
        "_lock_loop",
        "_loop",
        "_thread",
        "_users",
    )

    def __init__(self) -> None:
        self._lock: Optional[asyncio.Lock] = None
        self._lock_loop: Optional[asyncio.AbstractEventLoop] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        #: The thread that called bind() (the loop's own).
        self._thread = 0
        self._holder: Optional[asyncio.Task[object]] = None
        self._interruptible = False
        self._interrupted: Optional[asyncio.Task[object]] = None
        #: Calls holding or waiting for the lock; at 0 the lock is dropped (an idle
        #: session holds none: issue #19) and the next call makes a new one.
        self._users = 0

    # --- the event loop ---------------------------------------------------------------

    @property
    def loop(self) -> Optional[asyncio.AbstractEventLoop]:
        """The loop the current session lives on (None when there is none)."""
        return self._loop

    def check_loop(self) -> bool:
        """Raise :class:`SaynaEventLoopError` when called from a loop other than the
        session's while that loop is alive. Returns True when the session's loop has
        been closed (the caller must forget that session, see :meth:`release`)."""
        loop = self._loop
        if loop is None:
            return False
        if self._thread == threading.get_ident() and loop.is_running():
            # The session's loop runs in this thread, so it is the one running this call
            # (a thread runs one loop at a time): asyncio.get_running_loop() would say
            # the same at the cost of a getpid() system call (CPython 3.9-3.11), once
            # per speak.
            return False
        if asyncio.get_running_loop() is loop:
            return False
        if loop.is_closed():
            return True
        raise _wrong_loop()

    def bind(self) -> None:
        """Tie the session to the running loop (called when a socket is opened)."""
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()

    def release(self) -> None:
        """The session is closed: the next one may live on any loop."""
        self._loop = None

    # --- serialising --------------------------------------------------------------------

    @asynccontextmanager
    async def hold(self, what: str, *, interruptible: bool = True) -> AsyncIterator[None]:
        """Hold the gate for the lifecycle call ``what`` (e.g. ``"connect()"``).

        Raises:
            SaynaConnectionClosedError: an interruptible holder was interrupted by a
                close (``disconnect()`` or ``abort()``).
        """
        running = asyncio.get_running_loop()
        lock = self._lock
        if lock is None or self._lock_loop is not running:
            # A lock belongs to one loop; a new loop gets a new one, unless a call on a
            # live loop still holds the old one.
            old = self._lock_loop
            if self._holder is not None and old is not None and not old.is_closed():
                raise _wrong_loop()
            lock = self._lock = asyncio.Lock()
            self._lock_loop = running
        self._users += 1
        try:
            async with lock:
                task = asyncio.current_task()
                assert task is not None
                self._holder = task
                self._interruptible = interruptible
                try:
                    yield
                except asyncio.CancelledError:
                    if self._interrupted is not task or not _uncancel(task):
                        raise
                    raise SaynaConnectionClosedError(
                        f"{what} was interrupted: disconnect() or abort() closed the session",
                        code=int(CloseCode.NORMAL_CLOSURE),
                        reason="closed by client",
                    ) from None
                finally:
                    self._holder = None
                    if self._interrupted is task:
                        self._interrupted = None
        finally:
            self._users -= 1
            if self._users == 0 and self._lock is lock:
                self._lock = None  # nobody holds or waits: made again when needed

    def interrupt(self) -> None:
        """Cancel the task holding the gate for an interruptible call, if any."""
        holder = self._holder
        if (
            holder is None
            or not self._interruptible
            or holder is asyncio.current_task()
            or holder.done()
            or self._interrupted is holder
        ):
            return
        self._interrupted = holder
        holder.cancel()
