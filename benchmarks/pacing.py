"""Real-time pacing of audio frames, shared by the benchmark driver and the load test.

Standard library only: the driver imports it under any SDK's virtual environment.
A stream sends frame ``i`` at ``start + i × period`` on the event loop's clock. A frame
whose moment has passed is sent at once (never skipped: the load test counts every
frame), and how late it went out is recorded.

Two ways to pace many streams in one process:

- :func:`paced_stream`: one task and one timer per stream per frame (what a script
  with one coroutine per call does);
- :class:`SharedClock`: one task for all of them, waking every ``period / slots``
  and sending the frames due in that slot (what a media bridge or mixer with many
  calls does: one clock, the calls spread over its ticks; :func:`clock_slots` makes one
  tick per 50 streams, at most 20). At 1,000 streams of 20 ms frames that is 1,000 timer
  wake-ups a second instead of 50,000.
"""

from __future__ import annotations

import asyncio
import math
import types
from collections.abc import Awaitable, Coroutine, Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

__all__ = ["ClockStream", "LateStats", "SharedClock", "clock_slots", "paced_stream", "percentile"]

#: Lateness is kept in a histogram of 0.1 ms buckets up to this many ms (then one bucket).
_HISTOGRAM_MS = 1000
_BUCKETS_PER_MS = 10


def percentile(values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of ``values`` (``fraction`` in 0..1); 0.0 when empty."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class LateStats:
    """How late paced frames left, as a histogram (cheap enough for millions of frames)."""

    frames: int = 0
    late_over_period: int = 0
    max_ms: float = 0.0
    total_ms: float = 0.0
    _buckets: list[int] = field(
        default_factory=lambda: [0] * (_HISTOGRAM_MS * _BUCKETS_PER_MS + 1), repr=False
    )

    def add(self, late_s: float, period_s: float) -> None:
        late_ms = late_s * 1000.0 if late_s > 0 else 0.0
        self.frames += 1
        self.total_ms += late_ms
        if late_ms > self.max_ms:
            self.max_ms = late_ms
        if late_s > period_s:
            self.late_over_period += 1
        self._buckets[min(int(late_ms * _BUCKETS_PER_MS), len(self._buckets) - 1)] += 1

    def add_tick(self, first_s: float, span_s: float, count: int, period_s: float) -> None:
        """Record ``count`` frames sent one after another in one tick of a
        :class:`SharedClock`: the first ``first_s`` late, the tick's sends taking ``span_s``
        in all. Frame ``k`` is taken to be ``first_s + span_s × k / count`` late (each send
        of the tick takes about as long as the others): two clock reads per tick instead of
        one per frame, and no call per frame (at 1,000 streams this bookkeeping alone took
        several points of a core). A frame after a send that took most of the span (a
        collection, a blocked callback) is recorded a little early, one before it a
        little late; the mean is unchanged and the last frame's figure is within one
        send's duration of what a clock read at its send would say."""
        if count <= 0:
            return
        step = span_s / count if span_s > 0 else 0.0
        first = first_s if first_s > 0 else 0.0
        last = first + step * (count - 1)
        self.frames += count
        self.total_ms += (first + last) * 500.0 * count  # the mean of a linear run, in ms
        if last * 1000.0 > self.max_ms:
            self.max_ms = last * 1000.0
        buckets = self._buckets
        top = len(buckets) - 1
        scale = 1000.0 * _BUCKETS_PER_MS
        if first > period_s:
            self.late_over_period += count
        elif last > period_s:  # the frames after the one at (period - first) / step
            self.late_over_period += count - 1 - int((period_s - first) // step)
        low, high = int(first * scale), int(last * scale)
        if high == low:  # the usual tick: one bucket
            buckets[min(low, top)] += count
            return
        # A bucket at a time, not a frame at a time: frame k lies below bucket b's upper
        # edge when first + step × k < edge, so ceil((edge - first) / step) frames do.
        # (At 1,000 streams a tick of 50 frames spans a few buckets; a loop over its
        # frames was a point or two of the client's core, in every client's figure.)
        placed = 0
        for bucket in range(low, min(high, top)):
            below = min(count, math.ceil(((bucket + 1) / scale - first) / step))
            buckets[bucket] += below - placed
            placed = below
        buckets[min(high, top)] += count - placed

    def merge(self, other: LateStats) -> None:
        self.frames += other.frames
        self.late_over_period += other.late_over_period
        self.max_ms = max(self.max_ms, other.max_ms)
        self.total_ms += other.total_ms
        for index, count in enumerate(other._buckets):
            if count:
                self._buckets[index] += count

    def quantile_ms(self, fraction: float) -> float:
        """Upper edge of the bucket holding the ``fraction`` quantile (0.1 ms resolution)."""
        if not self.frames:
            return 0.0
        target = fraction * self.frames
        seen = 0
        for index, count in enumerate(self._buckets):
            seen += count
            if seen >= target:
                return min((index + 1) / _BUCKETS_PER_MS, self.max_ms)
        return self.max_ms

    def summary(self) -> dict[str, float]:
        return {
            "frames": self.frames,
            "mean_ms": self.total_ms / self.frames if self.frames else 0.0,
            "p50_ms": self.quantile_ms(0.50),
            "p99_ms": self.quantile_ms(0.99),
            "max_ms": self.max_ms,
            "late_over_period": self.late_over_period,
        }


async def paced_stream(
    send: Callable[[bytes], Awaitable[None]],
    pattern: Sequence[bytes],
    period: float,
    *,
    start: float,
    count: Optional[int] = None,
    stop: Optional[asyncio.Event] = None,
    stats: Optional[LateStats] = None,
    offset: int = 0,
) -> int:
    """Send the frames of ``pattern`` in a loop, one every ``period`` seconds from loop
    time ``start``, beginning with ``pattern[offset]``; return how many were sent.

    Ends after ``count`` frames, or at the first frame boundary after ``stop`` is set
    (one of them is required). An exception from ``send`` propagates; the frames sent
    before it are those the caller's ``send`` counted. Cancellation stops at once.
    """
    if count is None and stop is None:
        raise ValueError("give count= or stop=")
    loop = asyncio.get_running_loop()
    cycle = len(pattern)
    sent = 0
    while count is None or sent < count:
        due = start + sent * period
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if stop is not None and stop.is_set():
            break
        if stats is not None:
            stats.add(loop.time() - due, period)
        await send(pattern[(sent + offset) % cycle])
        sent += 1
    return sent


def clock_slots(streams: int, per_tick: int = 50, most: int = 20) -> int:
    """How many ticks per period a :class:`SharedClock` of ``streams`` streams should
    make: one per ``per_tick`` streams (each wake-up of the loop costs CPU: on the test VM
    a 1 ms tick for 100 streams used ~6 % of a core more than one tick per period),
    between 1 and ``most``."""
    return max(1, min(most, round(streams / per_tick)))


class SharedClock:
    """Paces many streams from one task: frame ``i`` of a stream in slot ``s`` is due at
    ``start + s × period / slots + i × period``.

    :meth:`add` registers a stream (its ``send``, where in ``pattern`` it begins, and
    ``on_error`` for an exception of its ``send``, after which the stream stops) and
    returns its :class:`ClockStream`, which counts the frames and bytes sent;
    :meth:`run` sends ``count`` frames on every stream and returns once every send
    finished. Lateness is how long after its slot's moment a frame's ``send`` was called:
    read from the clock at the start and the end of each tick and spread evenly over the
    tick's sends (:meth:`LateStats.add_tick`), not read per frame.

    Each ``send`` runs on the clock's task up to its first wait, as ``await`` would run
    it, and almost every send of a live stream finishes there (the socket took the
    frame). One that has to wait (its socket is full) finishes on a task of its own, so
    one slow peer does not hold up the other streams; a stream's frames are still sent
    in order (``on_audio_input`` hands each frame to the socket when called).
    """

    def __init__(self, pattern: Sequence[bytes], period: float, *, slots: int = 20) -> None:
        self._pattern = pattern
        self._period = period
        self._slots: list[list[ClockStream]] = [[] for _ in range(max(1, slots))]
        self._added = 0

    def add(
        self,
        send: Callable[[bytes], Optional[Coroutine[Any, Any, None]]],
        *,
        offset: int = 0,
        on_error: Callable[[BaseException], None],
    ) -> ClockStream:
        """Register one stream; streams are spread evenly over the slots. ``send``
        returns a coroutine (run as ``await`` would run it) or None (a plain function
        that sent the frame)."""
        stream = ClockStream(send, offset, on_error)
        self._slots[self._added % len(self._slots)].append(stream)
        self._added += 1
        return stream

    async def run(self, *, start: float, count: int, stats: Optional[LateStats] = None) -> None:
        """Send ``count`` frames on every stream from loop time ``start``."""
        loop = asyncio.get_running_loop()
        pattern, period, cycle = self._pattern, self._period, len(self._pattern)
        slots = len(self._slots)
        tick = period / slots
        waiting: set[asyncio.Future[None]] = set()
        driver = _driver()
        for index in range(count * slots):
            sent, slot = divmod(index, slots)
            due = start + index * tick
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            streams = self._slots[slot]
            ticking = tuple(streams)
            began = loop.time()
            for stream in ticking:
                frame = pattern[(sent + stream.offset) % cycle]
                try:
                    sending = stream.send(frame)
                    if sending is None:  # a plain function (load.py's raw asyncio floor)
                        stream.frames += 1
                        stream.bytes += len(frame)
                        continue
                    step = driver.send(sending)
                except Exception as exc:  # this stream stops; the others go on
                    stream.failed(streams, exc)
                    driver = _driver()  # (the exception ended the driver's generator)
                    continue
                if step is _SENT:
                    stream.frames += 1
                    stream.bytes += len(frame)
                    continue
                # The send waits (on ``step``) with the driver suspended inside it: a task
                # finishes both, and the next sends get a driver of their own.
                task = asyncio.ensure_future(_finish(stream, streams, frame, driver, step))
                waiting.add(task)
                task.add_done_callback(waiting.discard)
                driver = _driver()
            if stats is not None and ticking:
                stats.add_tick(began - due, loop.time() - began, len(ticking), period)
        if waiting:
            await asyncio.gather(*waiting)


#: What :func:`_sends` yields once the send it was given has finished.
_SENT = object()


@types.coroutine
def _sends() -> Generator[Any, Any, None]:
    """Runs each send coroutine handed to it (``driver.send(coroutine)``) as ``await``
    would, and yields :data:`_SENT` once that one has finished.

    Driving a coroutine with ``coroutine.send(None)`` ends in a ``StopIteration`` raised
    and caught per send (about 0.5 µs of CPU each here, 50,000 times a second at 1,000
    streams), which a task awaiting the send does not pay: ``yield from`` here takes the
    coroutine's return the way ``await`` does. A send that waits leaves this generator
    suspended inside it, yielding what the send waits on; the clock then hands the
    generator to a task (:func:`_finish`) and takes a new one for the next sends."""
    coroutine = yield _SENT
    while True:
        yield from coroutine
        coroutine = yield _SENT


def _driver() -> Generator[Any, Any, None]:
    """A started :func:`_sends`, ready for its first send."""
    driver = _sends()
    driver.send(None)
    return driver


async def _finish(
    stream: ClockStream,
    streams: list[ClockStream],
    frame: bytes,
    driver: Generator[Any, Any, None],
    blocked: Any,
) -> None:
    """Finish the send ``driver`` is suspended in (it yielded ``blocked``, what the send
    waits on), as this task."""
    try:
        await _Resumed(driver, blocked)
    except Exception as exc:
        stream.failed(streams, exc)
        return
    stream.frames += 1
    stream.bytes += len(frame)


class _Resumed:
    """Awaits the send a :func:`_sends` driver is suspended in, from where it stopped: a
    task awaiting this gets the value the driver yielded first, then drives it on until
    it yields :data:`_SENT` (a started generator cannot be awaited directly)."""

    def __init__(self, driver: Generator[Any, Any, None], yielded: Any) -> None:
        self._driver = driver
        self._yielded = yielded

    def __await__(self) -> Generator[Any, Any, None]:
        driver, yielded = self._driver, self._yielded
        while True:
            try:
                sent = yield yielded
            except BaseException as exc:  # thrown in by the task (a cancellation)
                yielded = driver.throw(exc)
            else:
                yielded = driver.send(sent)
            if yielded is _SENT:
                return


@dataclass
class ClockStream:
    """One stream of a :class:`SharedClock` and what it sent."""

    send: Callable[[bytes], Optional[Coroutine[Any, Any, None]]]
    offset: int
    on_error: Callable[[BaseException], None]
    frames: int = 0
    bytes: int = 0

    def failed(self, streams: list[ClockStream], exc: BaseException) -> None:
        """Stop this stream (remove it from its slot ``streams``) and report ``exc``."""
        if self in streams:
            streams.remove(self)
        self.on_error(exc)
