"""The numbers users feel, with many live sessions: the SDK's own share of a reply's latency.

    python benchmarks/feel.py [--sessions 200] [--seconds 30] [--url URL] [--cpu N]
                              [--uvloop] [--output benchmarks/FEEL.md]
                              [--turns spread|lockstep] [--pacing shared|per-session]
                              [--no-split]
    python benchmarks/feel.py --calibrate

Every session streams real-time 16 kHz audio (20 ms frames, 300 ms tone / 300 ms
silence) to ``sayna serve --engine fake --fast-tts`` (started in another process unless
``--url`` is given) and answers each of the user's speech-finals at once with
``await client.speak("okay")`` from an ``async`` result callback; a plain audio callback
takes the TTS frames. With ``--turns spread`` (the default) every session starts at a
random point of the tone pattern, so the users' turns end at different moments, as real
callers' do; ``--turns lockstep`` starts them all together (every speech-final of the
process within the same 20 ms, the worst case). ``--pacing`` is as in ``load.py`` (one
clock task for all sessions by default). Two intervals are measured inside the client process:

(a) **speech-final -> speak on the wire**: from the moment the socket's transport hands
    the bytes holding the speech-final to the SDK (``data_received`` of the client's own
    frame protocol, ``realtime/framing.py``) to the moment the ``speak`` frame has been
    written to the transport (``FrameWriter.write_control`` returned);
(b) **TTS byte -> audio callback**: from the transport handing over the bytes of a TTS
    frame to the audio callback being called with it, for the first frame of each reply
    and for all frames.

Each interval is reported as:

* **total**: the wall-clock time, what a user's handler sees: the SDK's time plus the
  time the event loop spends on the other sessions' work queued before this event's
  next step (the same loop runs every session) and, for (a), the user's handler;
* **own** (the SDK's own share): only the time the loop spends running this session's
  loop callbacks within the interval, less the time inside the user's callbacks and
  the garbage collector's pauses. Every loop callback (``asyncio.events.Handle._run``)
  is timed and charged to the session whose context it runs in (the socket's reader,
  the dispatcher's task and passes all run in the context of the task that connected
  the session, where a context variable names it), so own time is a per-session clock
  that stops while the loop runs another session's work or waits for the socket. It
  is read twice: in wall-clock time (``perf_counter``: stretched when the machine's
  other processes take the CPU mid-callback) and in the thread's CPU time
  (``thread_time``: not stretched by them; it still counts the kernel's work in the
  SDK's system calls, and runs slower when the CPU's caches are cold). Own wall <=
  total for every sample, by construction, and the report counts any that is not.

The own time splits into segments along the real path:

* (a) **read**: ``data_received`` of the chunk holding the speech-final, start to return
  (frame parsing, decoding, the hub's fan-out, the dispatcher's ``put`` waking its task);
  **dispatch**: the session's loop work from there to the result callback's first line
  (the dispatcher task's wake-up step: ``_loop`` takes the event and awaits the
  ``async`` callback); **speak**: from ``client.speak()`` being called to
  ``write_control`` returning (speak's checks, the speech queue, encoding, masking and
  the transport's ``write``, shown apart as **speak: socket send**);
* (b) **read**: ``data_received`` of the chunk holding the frame; **hand-off**: the
  session's loop work from there to the audio callback (the dispatcher's pass that
  ``put_audio`` scheduled: ``_pass_frame`` and, for the later frames of a read, the run).

The rest of the total: the **user's callbacks** (for (a) the handler up to ``speak()``,
for (b) the audio callbacks of the earlier frames in the same pass; here each a few
lines of the benchmark's bookkeeping), **gc** (the collector's pauses inside this
session's callbacks: the whole process's heap, not this event's work) and **waits**
(the loop running other sessions' callbacks, the clock task and the selector between
this session's steps). Shared work is charged whole to the event: a read carrying
several frames (a speak's TTS frames come several to a read) counts in full for each of
them, and so does the pass delivering the earlier frames of that read: the own figures
over-count, never under-count. The hooks' own cost is inside both figures (on the test
VM about 2.8 µs added per loop callback of a session and 2.2 µs per clock reading of the
path, see ``--calibrate``: some 10-20 µs of an event's own time, and about 5 % of a core
more for the process at 200 sessions); ``--no-split`` times the totals only, without that
cost. Under ``--uvloop`` the loop callbacks cannot be timed (its handles are not Python
classes): only the totals are reported.

``--calibrate`` prints this machine's nanoseconds per bytecode instruction of the SDK's
receive path, warm and with cold caches, to set ``opcodes.py``'s counts against the own
time, and what the split's hooks cost per loop callback and per clock reading.

The hooks wrap, at class level in this process only, four methods of the SDK's data path
(the frame protocol's ``data_received``, the connection's ``frame_text``, the hub's
``publish_audio`` and the frame writer's ``write_control``), asyncio's ``Handle._run``
and its socket transport's ``write``, and add a ``gc.callbacks`` entry; the SDK is used
through its public API and runs unchanged. (Until issue #19's own data path they wrapped
aiohttp's ``receive`` and ``send_str``: the older figures of ``FEEL.md`` start at
``receive`` returning, after aiohttp's parsing.) Prints the report (and one JSON line of
the figures on stderr); ``--output benchmarks/FEEL.md`` also writes it (never by default).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import collections
import contextvars
import datetime
import gc
import json
import os
import platform
import statistics
import sys
import time
import uuid
from asyncio import selector_events
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, Union

import aiohttp
from load import commit, cpu_model, free_port, start_server
from loadlib import (
    FRAME_MS,
    PACINGS,
    SAMPLE_RATE,
    TURNS,
    pattern_offsets,
    process_cpu_seconds,
    tone_pattern,
)
from pacing import LateStats, SharedClock, clock_slots, paced_stream, percentile

import sayna_client
from sayna_client import SaynaClient, SaynaError, STTConfig, TTSConfig
from sayna_client.realtime import connection, framing, hub, wire

HERE = Path(__file__).resolve().parent
_now = time.perf_counter
_cpu = time.thread_time


class Mark:
    """A session's clocks at one moment inside one of its loop callbacks (seconds)."""

    __slots__ = ("at", "at_cpu", "cpu", "gc", "sent", "sent_cpu", "user", "user_cpu", "wall")

    def __init__(self, probe: Probe) -> None:
        # The clocks are read here, once the object exists: a collection its allocation
        # set off is then before the moment on every clock. (Read before it, the pause
        # would be in the collector's count at the moment but not in its wall time:
        # the own clock would read low by the pause.)
        at, cpu = _now(), _cpu()
        running = _running
        collected = _gc
        #: The moment (perf_counter, thread CPU).
        self.at = at
        self.at_cpu = cpu
        #: The session's own clocks (wall and thread CPU), pauses of the collector left out.
        self.wall = probe.busy + (at - running[1]) - (collected[0] - running[3])
        self.cpu = probe.cpu + (cpu - running[2]) - (collected[1] - running[4])
        self.gc = probe.gc + (collected[0] - running[3])
        self.user = probe.user
        self.user_cpu = probe.user_cpu
        self.sent = probe.sent
        self.sent_cpu = probe.sent_cpu


def own(start: Mark, end: Mark) -> tuple[float, float]:
    """The session's own time from ``start`` to ``end`` (wall, CPU), user callbacks out."""
    return (
        end.wall - start.wall - (end.user - start.user),
        end.cpu - start.cpu - (end.user_cpu - start.user_cpu),
    )


class Chunk:
    """One chunk the transport handed to a session's frame protocol."""

    __slots__ = ("at", "end", "start")

    def __init__(self, at: float, start: Optional[Mark]) -> None:
        #: When ``data_received`` was called; the session's clocks then and when it
        #: returned (None: loop callbacks not timed).
        self.at = at
        self.start = start
        self.end: Optional[Mark] = None


class Probe:
    """One session's timestamps and clocks (perf_counter / thread CPU seconds)."""

    __slots__ = (
        "audio_rx",
        "busy",
        "called",
        "chunk",
        "cpu",
        "entry",
        "final_rx",
        "first_audio",
        "gc",
        "pending_final",
        "sent",
        "sent_cpu",
        "user",
        "user_cpu",
    )

    def __init__(self) -> None:
        self.final_rx: collections.deque[Chunk] = collections.deque()
        self.audio_rx: collections.deque[Chunk] = collections.deque()
        self.pending_final: Optional[Chunk] = None
        self.first_audio = False
        #: Time in this session's loop callbacks so far (the running one not yet added),
        #: wall and thread CPU, less the collector's pauses in them; those pauses (wall);
        #: the time in its user callbacks (the benchmark's handlers) and in the
        #: transport's ``write`` (the socket's send) within the callbacks.
        self.busy = 0.0
        self.cpu = 0.0
        self.gc = 0.0
        self.user = 0.0
        self.user_cpu = 0.0
        self.sent = 0.0
        self.sent_cpu = 0.0
        #: The last chunk handed to this session (frames parsed later from its rest, in
        #: a next turn of the loop, came with it).
        self.chunk: Optional[Chunk] = None
        #: For (a): the clocks at the handler's first line and when it called speak().
        self.entry: Optional[Mark] = None
        self.called: Optional[Mark] = None


class Measured:
    """One interval's samples: the total, the SDK's own share and its segments, each
    segment in wall time and, where it has one, thread CPU time."""

    def __init__(self, name: str, segments: tuple[str, ...]) -> None:
        self.name = name
        # Arrays of doubles: the collector does not look into them.
        self.total = array.array("d")
        self.own = array.array("d")
        self.own_cpu = array.array("d")
        self.segments = {s: array.array("d") for s in (*segments, "gc", "waits")}
        self.segments_cpu = {s: array.array("d") for s in segments}
        #: Samples whose own share could not be measured (uvloop, ``--no-split``, or a
        #: chunk read in another session's context: should not happen).
        self.unsplit = 0
        #: Samples whose own wall time exceeds the total or is negative: a fault of the
        #: accounting (it cannot happen by construction), reported.
        self.over = 0
        #: Samples whose own CPU time exceeds the wall-clock total, and by how much at
        #: most: the thread's CPU clock and perf_counter disagree a little (a VM's).
        self.cpu_over = 0
        self.cpu_excess = 0.0

    def add(self, total: float, own: Optional[tuple[float, float]], **segments: Any) -> None:
        """One sample; ``segments`` maps a name to (wall, CPU) or, for gc and waits, wall."""
        self.total.append(total)
        if own is None:
            self.unsplit += 1
            return
        self.own.append(own[0])
        self.own_cpu.append(own[1])
        if not 0 <= own[0] <= total:
            self.over += 1
        if own[1] > total:
            self.cpu_over += 1
            self.cpu_excess = max(self.cpu_excess, own[1] - total)
        for name, value in segments.items():
            if isinstance(value, tuple):
                self.segments[name].append(value[0])
                self.segments_cpu[name].append(value[1])
            else:
                self.segments[name].append(value)

    def clear(self) -> None:
        """Forget every sample."""
        for values in (self.total, self.own, self.own_cpu):
            del values[:]
        for values in (*self.segments.values(), *self.segments_cpu.values()):
            del values[:]
        self.unsplit = 0
        self.over = self.cpu_over = 0
        self.cpu_excess = 0.0


SESSION: contextvars.ContextVar[Probe] = contextvars.ContextVar("feel_session")
#: (a) speech-final received -> speak written.
SPEAK = Measured(
    "speech-final -> speak on the wire",
    ("read", "dispatch", "speak", "speak: socket send", "user's callbacks"),
)
#: (b) first TTS frame of a reply received -> audio callback; and every frame.
FIRST_AUDIO = Measured(
    "first TTS frame of a reply -> audio callback", ("read", "hand-off", "user's callbacks")
)
ALL_AUDIO = Measured("every TTS frame -> audio callback", ("read", "hand-off", "user's callbacks"))
MEASURED = (SPEAK, FIRST_AUDIO, ALL_AUDIO)
#: The session whose loop callback runs now; when that callback started (wall, thread
#: CPU); the collector's pauses in all then (wall, CPU).
_running: list[Any] = [None, 0.0, 0.0, 0.0, 0.0]
#: The collector's pauses: in all (wall, CPU), and when the running one started.
_gc = [0.0, 0.0, 0.0, 0.0]
#: Loop callbacks timed (charged to a session) and not (another context).
handles = [0, 0]


def mark(probe: Probe) -> Optional[Mark]:
    """``probe``'s clocks now, or None when the running loop callback is not the
    session's (or loop callbacks are not timed: uvloop)."""
    if _running[0] is not probe:
        return None
    return Mark(probe)


def _on_gc(phase: str, _info: dict[str, int]) -> None:
    if phase == "start":
        _gc[2], _gc[3] = _now(), _cpu()
    else:
        _gc[0] += _now() - _gc[2]
        _gc[1] += _cpu() - _gc[3]


def install_hooks(split: bool = True) -> None:
    """Wrap the SDK's own data path and, with ``split``, asyncio's loop callbacks and its
    socket transport's ``write`` (this process): see the module docstring."""
    protocol = framing.FrameProtocol
    data_received = protocol.data_received
    frame_text = connection.WebSocketConnection.frame_text
    publish_audio = hub.EventHub.publish_audio
    write_control = wire.FrameWriter.write_control
    handle_run = asyncio.events.Handle._run
    transport_write = selector_events._SelectorSocketTransport.write

    def timed_run(self: Any) -> None:
        # Charges the callback's time to the session whose context it runs in, less
        # the collector's pauses (the whole process's heap), counted apart.
        probe = self._context.get(SESSION)
        if probe is None:
            handles[1] += 1
            handle_run(self)
            return
        handles[0] += 1
        running = _running
        gc_wall = running[3] = _gc[0]
        gc_cpu = running[4] = _gc[1]
        wall = running[1] = _now()
        cpu = running[2] = _cpu()
        running[0] = probe
        try:
            handle_run(self)
        finally:
            end_cpu = _cpu()
            end_wall = _now()
            paused = _gc[0] - gc_wall
            probe.busy += end_wall - wall - paused
            probe.cpu += end_cpu - cpu - (_gc[1] - gc_cpu)
            probe.gc += paused
            running[0] = None

    def timed_write(self: Any, data: Any) -> None:
        probe = _running[0]
        if probe is None:
            transport_write(self, data)
            return
        wall, cpu = _now(), _cpu()
        transport_write(self, data)
        probe.sent_cpu += _cpu() - cpu
        probe.sent += _now() - wall

    def timed_data_received(self: Any, data: bytes) -> None:
        probe = SESSION.get(None)
        if probe is None:
            data_received(self, data)
            return
        start = mark(probe)
        chunk = probe.chunk = Chunk(_now() if start is None else start.at, start)
        data_received(self, data)
        chunk.end = mark(probe)

    def timed_frame_text(self: Any, text: str) -> None:
        probe = SESSION.get(None)
        if (
            probe is not None
            and probe.chunk is not None
            and '"is_speech_final":true' in text.replace(" ", "")
        ):
            probe.final_rx.append(probe.chunk)
        frame_text(self, text)

    def timed_publish_audio(self: Any, data: bytes) -> None:
        probe = SESSION.get(None)
        if probe is not None and probe.chunk is not None:
            probe.audio_rx.append(probe.chunk)
        publish_audio(self, data)

    def timed_write_control(self: Any, first: int, payload: bytes = b"") -> bool:
        written = write_control(self, first, payload)
        probe = SESSION.get(None)
        if probe is not None and probe.pending_final is not None and b'"speak"' in payload:
            done = mark(probe)
            chunk, probe.pending_final = probe.pending_final, None
            probe.first_audio = True
            record_speak(chunk, probe.entry, probe.called, done or _now())
        return written

    if split:
        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign]
        selector_events._SelectorSocketTransport.write = timed_write  # type: ignore[method-assign]
        gc.callbacks.append(_on_gc)
    protocol.data_received = timed_data_received  # type: ignore[method-assign]
    connection.WebSocketConnection.frame_text = timed_frame_text  # type: ignore[method-assign]
    hub.EventHub.publish_audio = timed_publish_audio  # type: ignore[method-assign]
    wire.FrameWriter.write_control = timed_write_control  # type: ignore[method-assign]


def user_time(probe: Probe, entry: Optional[Mark]) -> None:
    """Count the user's callback that began at ``entry`` as the user's time (on the
    session's own clocks: a collector pause in it stays a pause), not the SDK's."""
    if entry is None:
        return
    now = mark(probe)
    if now is not None:
        probe.user += now.wall - entry.wall
        probe.user_cpu += now.cpu - entry.cpu


def record_speak(
    chunk: Chunk, entry: Optional[Mark], called: Optional[Mark], done: Union[Mark, float]
) -> None:
    """Add a sample of (a): the speech-final came in ``chunk``; the handler began at
    ``entry``, called speak() at ``called``; speak was written at ``done``. (Only numbers
    are kept: objects kept by the thousand would slow the collector's full passes.)"""
    start, end = chunk.start, chunk.end
    if (
        not isinstance(done, Mark)
        or start is None
        or end is None
        or entry is None
        or called is None
    ):
        SPEAK.add((done if isinstance(done, float) else done.at) - chunk.at, None)
        return
    total = done.at - chunk.at
    whole = own(start, done)
    collected = done.gc - start.gc
    SPEAK.add(
        total,
        whole,
        read=own(start, end),
        dispatch=own(end, entry),
        speak=own(called, done),
        **{
            "speak: socket send": (done.sent - called.sent, done.sent_cpu - called.sent_cpu),
            "user's callbacks": (done.user - start.user, done.user_cpu - start.user_cpu),
        },
        gc=collected,
        waits=total - whole[0] - (done.user - start.user) - collected,
    )


def record_frame(chunk: Chunk, at: Union[Mark, float], first_frame: bool) -> None:
    """Add a sample of (b): a frame came in ``chunk``; its audio callback was called at
    ``at``; ``first_frame`` when it is a reply's first."""
    measured = (ALL_AUDIO, FIRST_AUDIO) if first_frame else (ALL_AUDIO,)
    start, end = chunk.start, chunk.end
    for target in measured:
        if not isinstance(at, Mark) or start is None or end is None:
            target.add((at if isinstance(at, float) else at.at) - chunk.at, None)
            continue
        total = at.at - chunk.at
        whole = own(start, at)
        collected = at.gc - start.gc
        # The earlier frames' audio callbacks in the same pass are the user's: out.
        target.add(
            total,
            whole,
            read=own(start, end),
            **{
                "hand-off": own(end, at),
                "user's callbacks": (at.user - start.user, at.user_cpu - start.user_cpu),
            },
            gc=collected,
            waits=total - whole[0] - (at.user - start.user) - collected,
        )


async def run(
    url: str, sessions: int, seconds: float, turns: str = "spread", pacing: str = "shared"
) -> dict[str, Any]:
    period = FRAME_MS / 1000
    count = round(seconds * 1000 / FRAME_MS)
    pattern = tone_pattern()
    offsets = pattern_offsets(sessions, len(pattern), turns)
    clock = (
        SharedClock(pattern, period, slots=clock_slots(sessions)) if pacing == "shared" else None
    )
    connected: list[asyncio.Future[None]] = []
    streamed = asyncio.get_running_loop().create_future()
    run_id = uuid.uuid4().hex[:8]
    stats = LateStats()
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    start_at = loop.time() + 2.0 + sessions * 0.01  # after every session connected
    finals = [0]

    async def one(index: int) -> None:
        probe = Probe()
        SESSION.set(probe)  # inherited by the reader and callback tasks made from here
        client = SaynaClient(
            url,
            STTConfig(provider="deepgram", sample_rate=SAMPLE_RATE),
            TTSConfig(provider="elevenlabs", voice_id="fake-alpha", sample_rate=24000),
            stream_id=f"feel-{run_id}-{index}",
        )

        async def on_result(result: Any) -> None:
            entry = mark(probe)  # None when loop callbacks are not timed
            if not result.is_speech_final:
                user_time(probe, entry)
                return
            finals[0] += 1
            probe.pending_final = probe.final_rx.popleft() if probe.final_rx else None
            # The handler's own time up to speak() is the user's, not the SDK's.
            called = probe.called = mark(probe)
            if entry is not None and called is not None:
                # The session's own clocks' advance (its collector pauses stay apart).
                called.user = probe.user = probe.user + called.wall - entry.wall
                called.user_cpu = probe.user_cpu = probe.user_cpu + called.cpu - entry.cpu
            probe.entry = entry
            await client.speak("okay")  # the user's handler answers at once

        def on_audio(_data: bytes) -> None:
            at = mark(probe)
            if probe.audio_rx:
                record_frame(probe.audio_rx.popleft(), at or _now(), probe.first_audio)
                probe.first_audio = False
            # The benchmark's bookkeeping is the user's, not the SDK's.
            user_time(probe, at)

        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(on_audio)
        client.register_on_error(lambda error: errors.append(str(error)[:200]))

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, SaynaError):
                raise exc
            errors.append(f"session {index}: {type(exc).__name__}: {exc}"[:200])

        ready = connected[index]
        try:
            await asyncio.sleep(index * 0.01)  # connect gradually
            await client.connect()
            if clock is not None:
                clock.add(client.on_audio_input, offset=offsets[index], on_error=failed)
                ready.set_result(None)
                await streamed  # the clock task sends every session's frames
            else:
                ready.set_result(None)
                await paced_stream(
                    client.on_audio_input,
                    pattern,
                    period,
                    start=start_at + period * index / sessions,
                    count=count,
                    stats=stats,
                    offset=offsets[index],
                )
        except SaynaError as exc:
            errors.append(f"session {index}: {type(exc).__name__}: {exc}"[:200])
        finally:
            if not ready.done():
                ready.set_result(None)
            await client.disconnect()

    async def tick() -> None:
        await asyncio.gather(*connected)
        try:
            if clock is not None:
                start = max(start_at, loop.time() + 0.05)  # if connecting took longer
                await clock.run(start=start, count=count, stats=stats)
        finally:
            streamed.set_result(None)

    connected.extend(loop.create_future() for _ in range(sessions))
    cpu0, wall0 = process_cpu_seconds(), _now()
    await asyncio.gather(tick(), *(one(index) for index in range(sessions)))
    wall = _now() - wall0
    cpu = process_cpu_seconds() - cpu0
    return {
        "finals": finals[0],
        "late": stats.summary(),
        "cpu_percent": cpu / wall * 100,
        "wall_s": wall,
        "errors": errors,
    }


def _ms(values: Sequence[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1e3:.3f}" if values else "–"


def summary() -> dict[str, Any]:
    """p50 / p99 / max in ms of each interval's total, own share and segments."""

    def figures(values: Sequence[float]) -> dict[str, Optional[float]]:
        return {
            f"p{round(q * 100)}" if q < 1 else "max": (
                round(percentile(values, q) * 1e3, 4) if values else None
            )
            for q in (0.5, 0.99, 1.0)
        }

    return {
        m.name: {
            "count": len(m.total),
            "unsplit": m.unsplit,
            "own_over_total": m.over,
            "own_cpu_over_total": m.cpu_over,
            "own_cpu_excess_ms": round(m.cpu_excess * 1e3, 4),
            "total": figures(m.total),
            "own": figures(m.own),
            "own_cpu": figures(m.own_cpu),
            **{name: figures(values) for name, values in m.segments.items()},
            **{f"{name} (cpu)": figures(values) for name, values in m.segments_cpu.items()},
        }
        for m in MEASURED
    }


def _three(values: Sequence[float]) -> str:
    return f"{_ms(values, 0.5)} / {_ms(values, 0.99)} / {_ms(values, 1.0)}"


def _verdict(values: Sequence[float]) -> str:
    if not values:
        return "–"
    return "yes" if percentile(values, 0.99) * 1e3 < TARGET_MS else "**no**"


#: Issue #19, item 3: the SDK's own share under 1 ms at the 99th percentile.
TARGET_MS = 1.0


def markdown(args: argparse.Namespace, out: dict[str, Any], load: tuple[float, float]) -> str:
    lines = [
        "# The numbers users feel (issue #19, part 3)",
        "",
        f"`python benchmarks/feel.py --sessions {args.sessions} --seconds {args.seconds:g}"
        + (" --uvloop" if args.uvloop else "")
        + (f" --cpu {args.cpu}" if args.cpu is not None else "")
        + (f" --turns {args.turns}" if args.turns != "spread" else "")
        + (f" --pacing {args.pacing}" if args.pacing != "shared" else "")
        + f"` on {datetime.date.today().isoformat()}: {args.sessions} live sessions in one "
        "process, each streaming real-time audio and answering every speech-final at once "
        "with `await client.speak(...)`; "
        + (
            "the sessions' turns spread (each starts at a random point of the tone pattern)"
            if args.turns == "spread"
            else "the sessions' turns in lockstep (every speech-final within the same 20 ms)"
        )
        + "; frames paced by "
        + (
            "one clock task for all sessions"
            if args.pacing == "shared"
            else "one task and timer per session"
        )
        + "; times from the transport handing the bytes to the SDK (`data_received`) to "
        "the SDK's part being done. **total** is the wall-clock interval (what a handler "
        "sees: the SDK's time, the loop's time on other sessions' work queued first, and "
        "for the reply the handler); **own** is the time the loop spent in this session's "
        "callbacks within it, less the user's callbacks and the collector's pauses, in "
        "wall-clock time and in the thread's CPU time (which the machine's other "
        "processes do not stretch); see the module docstring of `benchmarks/feel.py`.",
        "",
        "p50 / p99 / max in ms:",
        "",
        "| interval | count | total | own (wall) | own (CPU) | own p99 < 1 ms (wall, CPU) |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for m in MEASURED:
        lines.append(
            f"| {m.name} | {len(m.total):,} | {_three(m.total)} | {_three(m.own)} | "
            f"{_three(m.own_cpu)} | {_verdict(m.own)}, {_verdict(m.own_cpu)} |"
        )
    if any(m.own for m in MEASURED):  # segments were timed (not --no-split, not uvloop)
        lines += [
            "",
            "Segments, p50 / p99 / max in ms (the percentiles of the parts do not add up to "
            "the whole's; own = the SDK's segments; total = own + *user's callbacks* + *gc* "
            "(the collector's pauses inside this session's callbacks) + *waits* (the loop "
            "on other sessions' work)):",
            "",
            "| interval | segment | wall | CPU |",
            "| --- | --- | ---: | ---: |",
        ]
        for m in MEASURED:
            for name, values in m.segments.items():
                cpu = m.segments_cpu.get(name)
                cpu_cell = "–" if cpu is None else _three(cpu)
                lines.append(f"| {m.name} | {name} | {_three(values)} | {cpu_cell} |")
    unsplit = sum(m.unsplit for m in MEASURED)
    late = out["late"]
    lines += [
        "",
        f"Speech-finals answered: {out['finals']:,}; session errors: {len(out['errors'])}; "
        f"client process CPU while streaming: {out['cpu_percent']:.1f} % of a core "
        f"over {out['wall_s']:.1f} s; frame pacing lateness p50 {late['p50_ms']:.2f} ms, "
        f"p99 {late['p99_ms']:.2f} ms; loop callbacks timed {handles[0]:,}, others "
        f"{handles[1]:,}"
        + (f"; samples without an own share: {unsplit:,}" if unsplit else "")
        + f"; samples whose own wall time exceeds the total: {sum(m.over for m in MEASURED)}, "
        f"whose own CPU time does: {sum(m.cpu_over for m in MEASURED)} (by at most "
        f"{max(m.cpu_excess for m in MEASURED) * 1e3:.3f} ms: the two clocks disagree)" + ".",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}, sayna-client "
        f"{sayna_client.__version__} (commit {commit()}); load average (1 min) at the start "
        f"{load[0]:.2f}, at the end {load[1]:.2f}.",
        "",
    ]
    if out["errors"]:
        lines += ["## Session errors (first 20)", "", *[f"- {e}" for e in out["errors"][:20]]]
    return "\n".join(lines)


def calibrate(rounds: int = 100) -> str:
    """This machine's nanoseconds per bytecode instruction of the SDK's receive path, to
    turn ``opcodes.py``'s counts into time: each piece's instructions counted as
    ``opcodes.py`` counts them, then timed warm (in a loop, median of 7 × 2,000 calls)
    and cold (once after 64 MB were copied, evicting the CPU's caches, median of
    ``rounds``), as an event of a live session runs: its code and data are long out of
    the caches by the time its next event comes."""
    from opcodes import Tracer

    from sayna_client.protocol.decode import decode_text

    class Transport:  # what the frame protocol asks of its transport here
        def pause_reading(self) -> None: ...

        def resume_reading(self) -> None: ...

    taken: list[Any] = []

    class Sink:
        frame_text = taken.append
        frame_binary_run = taken.extend

    tts = (bytes([0x82, 126]) + (960).to_bytes(2, "big") + bytes(960)) * 9
    text = json.dumps(
        {
            "type": "stt_result",
            "transcript": "hello there",
            "is_final": True,
            "is_speech_final": True,
            "confidence": 0.9,
        }
    )
    text_frame = bytes([0x81, len(text)]) + text.encode()

    def parse(chunk: bytes) -> Any:
        def run() -> None:
            reader = framing.FrameProtocol(Sink(), 1 << 20, Transport(), binary=taken.append)
            reader.data_received(chunk)
            taken.clear()

        return run

    pieces = [
        ("parse a read of 9 TTS frames (framing.py)", parse(tts)),
        ("parse a read of one stt_result text frame", parse(text_frame)),
        ("decode_text(stt_result) (pydantic: one call counts as few)", lambda: decode_text(text)),
    ]
    big, source = bytearray(64 << 20), bytes(64 << 20)
    lines = [
        "| piece | bytecodes | warm (µs) | warm ns/bytecode | cold (µs) | cold ns/bytecode |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, piece in pieces:
        tracer = Tracer()
        tracer.start()
        piece()
        tracer.stop()
        count = sum(tracer.counts.values())
        warm = []
        for _ in range(7):
            start = _now()
            for _ in range(2000):
                piece()
            warm.append((_now() - start) / 2000)
        cold = []
        for _ in range(rounds):
            big[:] = source
            start = _now()
            piece()
            cold.append(_now() - start)
        hot_s, cold_s = statistics.median(warm), statistics.median(cold)
        lines.append(
            f"| {name} | {count} | {hot_s * 1e6:.2f} | {hot_s * 1e9 / count:.0f} | "
            f"{cold_s * 1e6:.2f} | {cold_s * 1e9 / count:.0f} |"
        )
    return "\n".join(lines)


def hook_costs() -> str:
    """What the split's hooks cost on this machine (median of 5 × 100,000 calls, warm):
    one loop callback doing nothing, plain and timed (a session's, or another context's),
    and one clock reading of the path (a mark). Installs the hooks in this process."""
    loop = asyncio.new_event_loop()
    try:
        probe = Probe()
        context = contextvars.copy_context()
        context.run(SESSION.set, probe)
        session_handle = asyncio.events.Handle(lambda: None, (), loop, context=context)
        other_handle = asyncio.events.Handle(lambda: None, (), loop)

        def per_call(call: Any) -> float:
            times = []
            for _ in range(5):
                start = _now()
                for _ in range(100_000):
                    call()
                times.append((_now() - start) / 100_000)
            return statistics.median(times) * 1e9

        def one_mark() -> None:
            _running[0] = probe
            mark(probe)

        plain = per_call(session_handle._run)
        install_hooks()
        timed, other = per_call(session_handle._run), per_call(other_handle._run)
        marked = per_call(one_mark)
        _running[0] = None
    finally:
        loop.close()
    return (
        f"Hooks: a loop callback {plain:.0f} ns plain, {timed:.0f} ns timed (a session's), "
        f"{other:.0f} ns (another context's); a mark {marked:.0f} ns."
    )


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--url", default=None, help="use this server instead of starting one")
    parser.add_argument(
        "--output", type=Path, default=None, help="write the report here (default: print it)"
    )
    parser.add_argument("--uvloop", action="store_true", help="run the clients on uvloop")
    parser.add_argument("--cpu", type=int, default=None, help="pin the clients to this CPU")
    parser.add_argument("--turns", choices=TURNS, default="spread")
    parser.add_argument("--pacing", choices=PACINGS, default="shared")
    parser.add_argument(
        "--no-split",
        action="store_true",
        help="time the totals only (no loop-callback timing: to see the hooks' cost)",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="print this machine's ns per SDK bytecode instruction (warm and cold) and the "
        "split's hooks' cost per call, and exit",
    )
    args = parser.parse_args(argv)
    if args.calibrate:
        print(calibrate())
        print()
        print(hook_costs())
        return 0
    runner: Any = asyncio.run
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            parser.error("--uvloop needs uvloop: pip install 'sayna-client[uvloop]'")
        runner = uvloop.run
    server_cpu = None
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
        others = sorted(set(range(os.cpu_count() or 1)) - {args.cpu})
        server_cpu = others[0] if others else None
    server = None
    url = args.url
    if url is None:
        port = free_port()
        server = start_server(port, server_cpu)
        url = f"http://127.0.0.1:{port}"
    install_hooks(split=not args.no_split and not args.uvloop)
    load_start = os.getloadavg()[0]
    try:
        out = runner(run(url, args.sessions, args.seconds, args.turns, args.pacing))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    load_end = os.getloadavg()[0]
    text = markdown(args, out, (load_start, load_end))
    if args.output is not None:  # FEEL.md is a figure of record: never by default
        args.output.write_text(text)
    print(text)
    figures = {
        "finals": out["finals"],
        "errors": len(out["errors"]),
        "cpu_percent": round(out["cpu_percent"], 1),
        "late_p99_ms": out["late"]["p99_ms"],
        "load": [round(value, 2) for value in (load_start, load_end)],
        "intervals": summary(),
    }
    print(json.dumps(figures), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
