"""Keepalive timing: a Ping about every ``interval``, and a verdict on a missing Pong.

Pure timers on the event loop, no I/O: the peer (the connection) sends the Ping,
reports the Pong and drops a dead socket. Declaring the peer dead at most
``1.5 × interval`` after its last answer is what lets the client detect a dead server
within its ``heartbeat`` figure (the interval is two thirds of it). A peer that still
shows life when the Pong is due is not dead, so the deadline moves on. The connection
reports two kinds of life, and they count differently:

* Data arriving from the server (results, TTS audio): the server process runs, and its
  Pong may wait behind seconds of queued audio on a slow downlink. The deadline moves on
  as long as data keeps arriving, with no ceiling, and each time it does the ceiling of
  the second kind starts again from the new due time.
* The server's side taking the bytes we queued (our Ping waits behind an upload that
  fills the socket buffers: a 128 KB/s link drains 2 MB in 16 s). This is the server's
  *kernel* acknowledging them, which a hung server's kernel does until its receive
  buffer fills (a microphone's 32 KB/s keeps a loopback peer "alive" for minutes), so
  it moves the deadline on for at most ``1.5 × interval`` (one ``heartbeat``) past the
  Pong's due time.

So a peer that answers no Ping and sends no data is declared dead within
``3 × interval`` (two ``heartbeat``) of its last answer or the last data it sent,
whichever came later, and within ``1.5 × interval`` when it shows no life at all.
:class:`PingLedger` tells which of our data the last answered Ping vouches for.

One timer per event loop (and interval) serves every connection of that loop: a
:class:`_Wheel` ticks every ``interval / 8`` while it has members and looks at each
one's deadlines. A session costs one small :class:`Heartbeat` record, not a timer
handle, its callback and context per session (issue #19: idle memory per session).
Deadlines are seen up to one tick late, so the Ping period is ``interval - 2 ticks``
(``0.75 × interval``) and the Pong window ``interval / 2``: a dead peer is still
declared within ``1.5 × interval`` of its last answer. One session's stop or failure
never touches another's record.

It replaces aiohttp's own heartbeat, which resets a timer on every chunk of
incoming data (a callback per event-loop turn while audio streams in) and ties the
socket and its protocol in a reference cycle.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import weakref
from typing import Optional, Protocol

__all__ = ["Heartbeat", "HeartbeatPeer", "PingLedger"]

logger = logging.getLogger("sayna_client")

#: Ticks of a wheel per interval.
_TICKS = 8


class HeartbeatPeer(Protocol):
    """What a :class:`Heartbeat` drives (the connection)."""

    def heartbeat_ping(self) -> None:
        """Send a Ping (never blocks, never raises)."""
        ...

    def heartbeat_dead(self) -> None:
        """No Pong in time and no other sign of life: the peer is dead."""
        ...

    def heartbeat_liveness(self) -> tuple[int, int]:
        """Two counters of life other than a Pong, ``(arrived, drained)``: the first
        changes while data arrives from the peer, the second while our queued bytes
        drain into it (constants when there is no such signal). Read per tick, never
        per frame."""
        ...


class Heartbeat:
    """Calls ``peer.heartbeat_ping()`` about every ``interval`` seconds and
    ``peer.heartbeat_dead()`` when a Pong is late (see the module docstring).

    ``pong()`` must be called for every Pong received. After ``heartbeat_dead()`` or
    ``stop()`` nothing is called any more.

    Raises:
        ValueError: ``interval`` is not positive.
    """

    __slots__ = (
        "__weakref__",
        "_arrived",
        "_drained",
        "_interval",
        "_limit",
        "_next_ping",
        "_peer",
        "_pong_due",
        "_wheel",
    )

    def __init__(self, interval: float, peer: HeartbeatPeer) -> None:
        if not interval > 0:
            raise ValueError("the heartbeat interval must be positive")
        self._interval = interval
        self._peer = peer
        self._arrived = self._drained = 0
        self._next_ping = 0.0
        self._pong_due: Optional[float] = None
        #: The latest the Pong due may be moved to by draining alone (module docstring).
        self._limit = 0.0
        self._wheel: Optional[_Wheel] = None

    def start(self) -> None:
        """Arm the first Ping, about ``interval`` from now (inside the running loop)."""
        loop = asyncio.get_running_loop()
        wheel = _wheel_for(loop, self._interval)
        self._next_ping = loop.time() + wheel.period
        self._wheel = wheel
        wheel.add(self, loop)

    def pong(self) -> None:
        """A Pong arrived: the peer is alive."""
        self._pong_due = None

    def stop(self) -> None:
        """Stop for good. Safe to call twice."""
        wheel, self._wheel = self._wheel, None
        self._pong_due = None
        if wheel is not None:
            wheel.remove(self)

    def _due(self, now: float, wheel: _Wheel) -> None:
        """One tick of the wheel: the Pong verdict, then the next Ping, as due."""
        peer = self._peer
        due = self._pong_due
        if due is not None and now >= due:
            arrived, drained = peer.heartbeat_liveness()
            if arrived != self._arrived:
                # The server sent data: it runs, and its Pong may be behind that data.
                self._arrived, self._drained = arrived, drained
                self._pong_due = now + wheel.window
                self._limit = self._pong_due + wheel.grace
            elif drained != self._drained and now < self._limit:
                # Only our bytes drain (maybe into a hung server's kernel): up to the limit.
                self._drained = drained
                self._pong_due = min(now + wheel.window, self._limit)
            else:
                self.stop()
                peer.heartbeat_dead()
                return
        if now >= self._next_ping:
            self._next_ping = now + wheel.period
            if self._pong_due is None:
                self._pong_due = now + wheel.window
                self._limit = self._pong_due + wheel.grace
                self._arrived, self._drained = peer.heartbeat_liveness()
            peer.heartbeat_ping()


class PingLedger:
    """Which of the audio sent the server has surely read: all of it up to the last
    Ping it answered (the Pong comes after the server read what preceded the Ping).

    Pings are numbered as sent, each with the audio counts at that moment (``sent``,
    e.g. ``(frames, bytes)``), and Pongs are matched to them in order (a peer answers
    every Ping, in order; one that skips some makes this vouch for less; an unsolicited
    Pong while a Ping is outstanding, which RFC 6455 allows, for more).
    Work per Ping and per Pong only, nothing per audio frame.
    """

    __slots__ = ("_marks", "_pings", "_pongs", "confirmed")

    #: Pings waiting for their Pong that are remembered (later ones vouch for nothing).
    MAX_PENDING = 16

    def __init__(self) -> None:
        self._marks: collections.deque[tuple[int, tuple[int, int]]] = collections.deque()
        self._pings = 0
        self._pongs = 0
        #: The audio counts the latest answered Ping vouches for.
        self.confirmed = (0, 0)

    def ping(self, sent: tuple[int, int]) -> None:
        """A Ping goes out after the audio counted in ``sent``."""
        self._pings += 1
        if len(self._marks) < self.MAX_PENDING:
            self._marks.append((self._pings, sent))

    def pong(self) -> None:
        """A Pong arrived: it answers the oldest Ping not answered yet (none: an
        unsolicited Pong, which answers nothing)."""
        if self._pongs >= self._pings:
            return
        self._pongs += 1
        marks = self._marks
        while marks and marks[0][0] <= self._pongs:
            self.confirmed = marks.popleft()[1]

    def unconfirmed(self, sent: tuple[int, int]) -> tuple[int, int]:
        """What of ``sent`` (the counts now) no answered Ping vouches for."""
        frames, size = self.confirmed
        return max(0, sent[0] - frames), max(0, sent[1] - size)


class _Wheel:
    """The keepalive timer of one event loop and interval: one timer handle, armed
    while the wheel has members, for all of them. The loop is held weakly: a loop
    closed with sessions still open is not kept alive by the wheels' registry."""

    __slots__ = ("_loop", "_members", "_timer", "grace", "key", "period", "tick", "window")

    def __init__(self, loop: asyncio.AbstractEventLoop, interval: float) -> None:
        self._loop = weakref.ref(loop)
        self.key = interval
        self.tick = interval / _TICKS
        self.period = interval - 2 * self.tick  # a deadline is seen up to a tick late
        self.window = interval / 2
        #: How long past its due time a late Pong may be waited for while only our
        #: bytes drain into the peer: one more ``heartbeat`` (the user's figure).
        self.grace = interval * 1.5
        self._members: dict[Heartbeat, None] = {}  # insertion-ordered
        self._timer: Optional[asyncio.TimerHandle] = None

    def add(self, beat: Heartbeat, loop: asyncio.AbstractEventLoop) -> None:
        self._members[beat] = None
        if self._timer is None:
            self._timer = loop.call_later(self.tick, self._run)

    def remove(self, beat: Heartbeat) -> None:
        members = self._members
        members.pop(beat, None)
        if members:
            return
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        loop = self._loop()
        wheels = _WHEELS.get(loop) if loop is not None else None
        if wheels is not None and wheels.get(self.key) is self:
            del wheels[self.key]

    def _run(self) -> None:
        loop = asyncio.get_running_loop()
        members = self._members
        self._timer = loop.call_later(self.tick, self._run)  # remove() of the last cancels it
        now = loop.time()
        for beat in list(members):
            if beat not in members:
                continue  # stopped during this tick (by another session's callback)
            try:
                beat._due(now, self)
            except Exception:  # one session's failure must not stop the others' keepalive
                logger.exception("Sayna keepalive failed for one session; it is stopped")
                beat.stop()


#: The wheels of each event loop, by interval.
_WHEELS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[float, _Wheel]]
_WHEELS = weakref.WeakKeyDictionary()


def _wheel_for(loop: asyncio.AbstractEventLoop, interval: float) -> _Wheel:
    wheels = _WHEELS.get(loop)
    if wheels is None:
        wheels = _WHEELS[loop] = {}
    wheel = wheels.get(interval)
    if wheel is None:
        wheel = wheels[interval] = _Wheel(loop, interval)
    return wheel
