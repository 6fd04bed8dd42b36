"""Keepalive timing: a Ping every ``interval``, and a Pong due within half of it.

Pure timers on the event loop, no I/O: the connection sends the Ping and reports
the Pong. Declaring the peer dead at most ``1.5 × interval`` after the last answer
is what lets the client detect a dead server within its ``heartbeat`` figure
(the interval is two thirds of it). A peer that still shows life when the Pong is
due is not dead, so the deadline moves on while an activity counter keeps changing.
The connection's counter changes in both directions of a slow link: while data
arrives (the Pong may wait behind seconds of queued TTS audio) and while the peer
takes the bytes we queued (our Ping waits behind an upload that fills the socket
buffers: a 128 KB/s link drains 2 MB in 16 s). A silent peer does neither.

It replaces aiohttp's own heartbeat, which resets a timer on every chunk of
incoming data (a callback per event-loop turn while audio streams in) and ties the
socket and its protocol in a reference cycle. Here the cost is two timer handles
per interval, armed only once the session is ready.
"""

from __future__ import annotations

import asyncio
from typing import Callable, Optional

__all__ = ["Heartbeat"]


class Heartbeat:
    """Calls ``ping()`` every ``interval`` seconds and ``on_dead()`` when a Pong is late.

    ``pong()`` must be called for every Pong received. After ``on_dead()`` or
    ``stop()`` nothing is called any more.
    """

    __slots__ = (
        "_activity",
        "_interval",
        "_loop",
        "_mark",
        "_on_dead",
        "_ping",
        "_pong_due",
        "_timer",
    )

    def __init__(
        self,
        interval: float,
        ping: Callable[[], None],
        on_dead: Callable[[], None],
        activity: Optional[Callable[[], int]] = None,
    ) -> None:
        """``activity()``, if given, returns a number that changes while the peer shows
        life other than a Pong (data arriving, our queued data draining)."""
        if not interval > 0:
            raise ValueError("the heartbeat interval must be positive")
        self._interval = interval
        self._ping = ping
        self._on_dead = on_dead
        self._activity = activity
        self._mark = 0
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._timer: Optional[asyncio.TimerHandle] = None
        self._pong_due: Optional[asyncio.TimerHandle] = None

    def start(self) -> None:
        """Arm the first Ping, ``interval`` from now (inside the running loop)."""
        loop = self._loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self._interval, self._tick)

    def pong(self) -> None:
        """A Pong arrived: the peer is alive."""
        due, self._pong_due = self._pong_due, None
        if due is not None:
            due.cancel()

    def stop(self) -> None:
        """Cancel both timers. Safe to call twice."""
        for handle in (self._timer, self._pong_due):
            if handle is not None:
                handle.cancel()
        self._timer = self._pong_due = None

    def _tick(self) -> None:
        loop = self._loop
        assert loop is not None
        self._timer = loop.call_later(self._interval, self._tick)
        if self._pong_due is None:
            self._pong_due = loop.call_later(self._interval / 2, self._expired)
            if self._activity is not None:
                self._mark = self._activity()
        self._ping()

    def _expired(self) -> None:
        self._pong_due = None
        if self._activity is not None:
            seen = self._activity()
            if seen != self._mark:  # data is still coming in: the Pong may be behind it
                self._mark = seen
                assert self._loop is not None
                self._pong_due = self._loop.call_later(self._interval / 2, self._expired)
                return
        self.stop()
        self._on_dead()
