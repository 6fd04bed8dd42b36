"""Many real-time sessions in one process, then proof that nothing was lost.

Used by ``benchmarks/load.py`` (200 sessions × 60 s against a separate server process)
and by ``tests/test_load_short.py`` (20 × 5 s against an in-process server): the same
:func:`run_load` either way.

Each session is one :class:`~sayna_client.SaynaClient` streaming 16 kHz mono linear16 in
20 ms frames (300 ms of tone, 300 ms of silence, so the fake engine answers with
``stt_result`` events). ``pacing="shared"`` (the default) sends every session's frames
from one clock task, the sessions spread over its ticks (one tick per 50 sessions per
20 ms frame period, at most 20: :class:`pacing.SharedClock`, how an application bridging
many calls paces them); ``pacing="per-session"`` gives each session its own task and timer.
``turns="spread"`` (the default) starts each session at a random point of the tone
pattern, so users end their sentences at different moments as real callers do;
``turns="lockstep"`` starts them all at its beginning (every session's speech-final
within the same 20 ms: the worst case for the event loop). Afterwards every session is disconnected
and checked against the server's own counters (``GET /_local/bench/sessions``): the
frames and bytes the server received must equal what the client sent, the server must
have seen a normal close (1000), and no task of the client may be left running.
Only counts are asserted; timings (pacing lateness, CPU) are reported, never judged.
"""

from __future__ import annotations

import asyncio
import gc
import math
import os
import random
import struct
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Optional

import aiohttp
from loadraw import (
    CLIENTS,
    RawAiohttpSession,
    RawAsyncioRfcSession,
    RawAsyncioSeedSession,
    RawAsyncioSession,
    premasked,
    wire_header_bytes,
)
from pacing import LateStats, SharedClock, clock_slots, paced_stream

from sayna_client import SaynaClient, SaynaError, STTConfig, TTSConfig

__all__ = [
    "CLIENTS",
    "PACINGS",
    "TURNS",
    "GCPauses",
    "LoadReport",
    "SessionOutcome",
    "pattern_offsets",
    "process_cpu_seconds",
    "run_load",
    "system_cpu_seconds",
    "tone_pattern",
]

FRAME_MS = 20
SAMPLE_RATE = 16_000
NORMAL_CLOSURE = 1000
#: How the frames are paced (see the module docstring).
PACINGS = ("shared", "per-session")
#: Where in the tone pattern each session starts.
TURNS = ("spread", "lockstep")


def pattern_offsets(sessions: int, cycle: int, turns: str, seed: int = 19) -> list[int]:
    """Where in a pattern of ``cycle`` frames each session starts: 0 for all
    (``lockstep``) or uniformly at random, reproducibly (``spread``)."""
    if turns not in TURNS:
        raise ValueError(f"turns must be one of {TURNS}, not {turns!r}")
    if turns == "lockstep":
        return [0] * sessions
    rng = random.Random(seed)
    return [rng.randrange(cycle) for _ in range(sessions)]


def tone_pattern(sample_rate: int = SAMPLE_RATE, frame_ms: int = FRAME_MS) -> list[bytes]:
    """300 ms of a 440 Hz tone then 300 ms of silence, as 16-bit mono frames."""
    samples = sample_rate * frame_ms // 1000
    per_half = 300 // frame_ms
    frames: list[bytes] = []
    for index in range(per_half):
        offset = index * samples
        values = (
            int(8000 * math.sin(2 * math.pi * 440 * (offset + n) / sample_rate))
            for n in range(samples)
        )
        frames.append(struct.pack(f"<{samples}h", *values))
    frames.extend(bytes(samples * 2) for _ in range(per_half))
    return frames


def system_cpu_seconds(pid: Optional[int] = None) -> float:
    """The kernel's share of :func:`process_cpu_seconds` (system time)."""
    if pid is None:
        return os.times().system
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return int(fields[12]) / os.sysconf("SC_CLK_TCK")


def process_cpu_seconds(pid: Optional[int] = None) -> float:
    """CPU time (user + system) of this process, or of ``pid`` through ``/proc``."""
    if pid is None:
        return time.process_time()
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


class GCPauses:
    """The garbage collector's pauses while installed (``gc.callbacks``): how many
    collections of each generation ran, the longest of each and their total, in ms."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.max_ms = [0.0, 0.0, 0.0]
        self.total_ms = [0.0, 0.0, 0.0]
        self._started = 0.0

    def __enter__(self) -> GCPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: Any) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        generation = info["generation"]
        pause_ms = (time.perf_counter() - self._started) * 1000
        self.count[generation] += 1
        self.total_ms[generation] += pause_ms
        if pause_ms > self.max_ms[generation]:
            self.max_ms[generation] = pause_ms

    def describe(self) -> str:
        return ", ".join(
            f"gen{g} {self.count[g]:,}"
            f" (max {self.max_ms[g]:.1f} ms, total {self.total_ms[g]:.0f} ms)"
            for g in range(3)
        )


@dataclass
class SessionOutcome:
    """One session as the client and the server saw it."""

    stream_id: str
    frames_sent: int = 0
    bytes_sent: int = 0
    stt_results: int = 0
    replies: int = 0
    tts_frames: int = 0
    error: Optional[str] = None
    server_frames: Optional[int] = None
    server_bytes: Optional[int] = None
    server_closed: bool = False
    server_close_code: Optional[int] = None

    @property
    def frames_lost(self) -> int:
        return self.frames_sent - (self.server_frames or 0)

    @property
    def matches(self) -> bool:
        return self.server_frames == self.frames_sent and self.server_bytes == self.bytes_sent

    @property
    def closed_cleanly(self) -> bool:
        return self.server_closed and self.server_close_code == NORMAL_CLOSURE


@dataclass
class LoadReport:
    """What :func:`run_load` measured; :attr:`ok` is the verdict (counts only)."""

    sessions: int
    seconds: float
    frames_per_session: int
    outcomes: list[SessionOutcome]
    late: dict[str, float]
    connect_s: float
    stream_wall_s: float
    client_cpu_percent: float
    server_cpu_percent: Optional[float]
    #: The kernel's part of each (system time), in % of a core.
    client_system_percent: float = 0.0
    server_system_percent: Optional[float] = None
    leftover_tasks: list[str] = field(default_factory=list)
    still_connected: int = 0
    speak: bool = False
    pacing: str = "shared"
    turns: str = "spread"
    client: str = "sdk"
    gc_freeze: bool = False
    gc_refreeze: Optional[float] = None
    gc_pauses: str = ""
    #: Objects the garbage collector tracks when streaming starts and ends (what a full
    #: collection scans) and how many are frozen (``gc.freeze()``, never scanned).
    gc_tracked: tuple[int, int, int] = (0, 0, 0)

    @property
    def frames_sent(self) -> int:
        return sum(o.frames_sent for o in self.outcomes)

    @property
    def bytes_sent(self) -> int:
        return sum(o.bytes_sent for o in self.outcomes)

    @property
    def frames_received(self) -> int:
        return sum(o.server_frames or 0 for o in self.outcomes)

    @property
    def frames_lost(self) -> int:
        return sum(max(0, o.frames_lost) for o in self.outcomes)

    @property
    def mismatched_sessions(self) -> int:
        return sum(not o.matches for o in self.outcomes)

    @property
    def unclean_closes(self) -> int:
        return sum(not o.closed_cleanly for o in self.outcomes)

    @property
    def errors(self) -> list[str]:
        return [f"{o.stream_id}: {o.error}" for o in self.outcomes if o.error]

    @property
    def stt_results(self) -> int:
        return sum(o.stt_results for o in self.outcomes)

    @property
    def ok(self) -> bool:
        return (
            not self.errors
            and self.frames_sent == self.sessions * self.frames_per_session
            and self.frames_lost == 0
            and self.mismatched_sessions == 0
            and self.unclean_closes == 0
            and not self.leftover_tasks
            and self.still_connected == 0
        )

    def figures(self) -> dict[str, Any]:
        """The run's figures as JSON-able numbers (``load.py --json``; ``scale.py`` reads
        them): the verdict on counts, the CPU of each process, the pacing and the work done."""
        late = self.late
        return {
            "ok": self.ok,
            "sessions": self.sessions,
            "seconds": self.seconds,
            "client": self.client,
            "client_cpu_percent": self.client_cpu_percent,
            "client_system_percent": self.client_system_percent,
            "server_cpu_percent": self.server_cpu_percent,
            "pacing_p50_ms": late["p50_ms"],
            "pacing_p99_ms": late["p99_ms"],
            "pacing_max_ms": late["max_ms"],
            "frames_sent": self.frames_sent,
            "frames_lost": self.frames_lost,
            "unclean_closes": self.unclean_closes,
            "errors": len(self.errors),
            "leftover_tasks": len(self.leftover_tasks),
            "stt_results": self.stt_results,
            "replies": sum(o.replies for o in self.outcomes),
            "tts_frames": sum(o.tts_frames for o in self.outcomes),
        }

    def summary(self) -> list[tuple[str, str]]:
        late = self.late
        server_cpu = (
            "–"
            if self.server_cpu_percent is None
            else f"{self.server_cpu_percent:.1f} %"
            + (
                f" (system {self.server_system_percent:.1f} %)"
                if self.server_system_percent is not None
                else ""
            )
        )
        return [
            ("verdict", "PASS" if self.ok else "FAIL"),
            ("sessions × seconds", f"{self.sessions} × {self.seconds:g} s"),
            ("client", self.client),
            ("pacing, turns", f"{self.pacing}, {self.turns}"),
            (
                "frames sent",
                f"{self.frames_sent:,} ({self.bytes_sent:,} bytes; expected "
                f"{self.sessions * self.frames_per_session:,})",
            ),
            ("frames counted by the server", f"{self.frames_received:,}"),
            ("frames lost", f"{self.frames_lost:,}"),
            ("sessions whose counts differ", f"{self.mismatched_sessions}"),
            ("sessions not closed cleanly (server saw no 1000)", f"{self.unclean_closes}"),
            ("client tasks left after disconnect", f"{len(self.leftover_tasks)}"),
            ("clients still connected after disconnect", f"{self.still_connected}"),
            ("session errors", f"{len(self.errors)}"),
            ("stt_result events received", f"{self.stt_results:,}"),
            *(
                [
                    (
                        "speech-finals answered with speak / TTS frames received",
                        f"{sum(o.replies for o in self.outcomes):,} / "
                        f"{sum(o.tts_frames for o in self.outcomes):,}",
                    )
                ]
                if self.speak
                else []
            ),
            (
                "pacing lateness (ms)",
                f"mean {late['mean_ms']:.2f}, p50 {late['p50_ms']:.1f}, "
                f"p99 {late['p99_ms']:.1f}, max {late['max_ms']:.1f}",
            ),
            (
                "frames later than one period (20 ms)",
                f"{int(late['late_over_period']):,} "
                f"({late['late_over_period'] / max(1, late['frames']) * 100:.3f} %)",
            ),
            ("connect, all sessions", f"{self.connect_s:.2f} s"),
            ("streaming wall time", f"{self.stream_wall_s:.2f} s"),
            (
                "client process CPU while streaming",
                f"{self.client_cpu_percent:.1f} % of a core "
                f"(system {self.client_system_percent:.1f} %)",
            ),
            (
                "client CPU per session",
                f"{self.client_cpu_percent * 10 / max(self.sessions, 1):.3f} core-ms/s",
            ),
            ("server process CPU while streaming", server_cpu),
            (
                "garbage collections while streaming"
                + (" (gc.freeze())" if self.gc_freeze else "")
                + (
                    f" (gc.freeze() again {self.gc_refreeze:g} s in)"
                    if self.gc_refreeze is not None
                    else ""
                ),
                self.gc_pauses,
            ),
            (
                "objects the collector tracks, start -> end of streaming",
                f"{self.gc_tracked[0]:,} -> {self.gc_tracked[1]:,}"
                + (f" (and {self.gc_tracked[2]:,} frozen)" if self.gc_tracked[2] else ""),
            ),
        ]


def _is_client_task(task: asyncio.Task[Any]) -> bool:
    """A task of the SDK or of aiohttp's client (not of an in-process local server)."""
    if task.get_name().startswith("sayna-"):
        return True
    code = getattr(task.get_coro(), "cr_code", None)
    filename = getattr(code, "co_filename", "").replace("\\", "/")
    if "/sayna_client/server/" in filename:
        return False
    return "/sayna_client/" in filename or "/aiohttp/client" in filename


async def _server_sessions(control: aiohttp.ClientSession, url: str) -> dict[str, dict[str, Any]]:
    async with control.get(url + "/_local/bench/sessions") as response:
        response.raise_for_status()
        sessions = (await response.json())["sessions"]
    return {s["stream_id"]: s for s in sessions if s["stream_id"] is not None}


async def _gather_bounded(coroutines: list[Any], parallel: int) -> list[Any]:
    slots = asyncio.Semaphore(parallel)

    async def one(coroutine: Any) -> Any:
        async with slots:
            return await coroutine

    return await asyncio.gather(*(one(c) for c in coroutines), return_exceptions=True)


async def run_load(
    url: str,
    sessions: int,
    seconds: float,
    *,
    api_key: Optional[str] = None,
    server_pid: Optional[int] = None,
    connect_parallel: int = 20,
    settle_timeout: float = 60.0,
    speak: bool = False,
    pacing: str = "shared",
    turns: str = "spread",
    client: str = "sdk",
    gc_freeze: bool = False,
    gc_refreeze: Optional[float] = None,
) -> LoadReport:
    """Stream ``seconds`` of real-time audio on ``sessions`` sessions, then verify.

    Args:
        url: the local server (``/_local/bench`` endpoints enabled).
        sessions: concurrent ``SaynaClient`` sessions in this process.
        seconds: audio per session (``seconds × 50`` frames of 640 bytes each).
        api_key: for a server that requires one.
        server_pid: the server's process id, to report its CPU use (Linux ``/proc``).
        connect_parallel: connects (and disconnects) in flight at once.
        settle_timeout: how long to wait for the server to record every close.
        speak: answer every speech-final at once with ``speak("okay")`` from an async
            result callback, and take the TTS audio with a plain audio callback (TTS
            down as well as results).
        pacing: ``"shared"`` (one clock task for every session) or ``"per-session"``.
        turns: ``"spread"`` (random start in the tone pattern) or ``"lockstep"``.
        client: ``"sdk"`` (a ``SaynaClient`` per session), or one of the floors of
            ``loadraw.py``: ``"raw-aiohttp"``, ``"raw-asyncio"``, ``"raw-asyncio-rfc"``,
            ``"raw-asyncio-seed"``
            (shared pacing only).
        gc_freeze: call ``gc.freeze()`` once every session is connected (the objects
            made so far are never scanned again by a full collection).
        gc_refreeze: also call ``gc.freeze()`` (without a collection: no pause) this many
            seconds into streaming, once the sessions made what they make at their first
            audio and result (their audio lanes, speech queues and turn metrics).

    Returns:
        The report; ``report.ok`` is False on any lost frame, count mismatch, session
        error, unclean close or leftover task.
    """
    if pacing not in PACINGS:
        raise ValueError(f"pacing must be one of {PACINGS}, not {pacing!r}")
    if client not in CLIENTS:
        raise ValueError(f"client must be one of {CLIENTS}, not {client!r}")
    if client != "sdk" and (pacing != "shared" or not speak or api_key):
        raise ValueError("the raw clients run with pacing='shared', speak=True, no api_key")
    period = FRAME_MS / 1000
    count = round(seconds * 1000 / FRAME_MS)
    pattern = tone_pattern()
    offsets = pattern_offsets(sessions, len(pattern), turns)
    run_id = uuid.uuid4().hex[:8]
    outcomes = [SessionOutcome(f"load-{run_id}-{index}") for index in range(sessions)]
    http: Optional[aiohttp.ClientSession] = None
    clients: list[Any]
    if client == "raw-aiohttp":
        # No connection limit (the default 100 would hold the 101st WebSocket back).
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        clients = [RawAiohttpSession(url, o.stream_id, http, o) for o in outcomes]
    elif client == "raw-asyncio":
        clients = [RawAsyncioSession(url, o.stream_id, o) for o in outcomes]
    elif client == "raw-asyncio-rfc":
        clients = [RawAsyncioRfcSession(url, o.stream_id, o) for o in outcomes]
    elif client == "raw-asyncio-seed":
        clients = [_seed_floor(url, outcome) for outcome in outcomes]
    else:
        clients = [_sdk_client(url, api_key, outcome, speak) for outcome in outcomes]
    baseline = set(asyncio.all_tasks())
    loop = asyncio.get_running_loop()
    stats = LateStats()
    started = time.perf_counter()
    connected = await _gather_bounded([c.connect() for c in clients], connect_parallel)
    connect_s = time.perf_counter() - started
    for outcome, result in zip(outcomes, connected):
        if isinstance(result, BaseException):
            outcome.error = f"connect: {type(result).__name__}: {result}"
    if gc_freeze:
        gc.collect()
        gc.freeze()

    async def stream(
        client: SaynaClient, outcome: SessionOutcome, start: float, offset: int
    ) -> None:
        async def send(frame: bytes) -> None:
            await client.on_audio_input(frame)
            outcome.frames_sent += 1
            outcome.bytes_sent += len(frame)

        try:
            await paced_stream(
                send, pattern, period, start=start, count=count, stats=stats, offset=offset
            )
        except SaynaError as exc:
            outcome.error = f"stream: {type(exc).__name__}: {exc}"

    def stream_failed(outcome: SessionOutcome) -> Any:
        def failed(exc: BaseException) -> None:
            if not isinstance(exc, SaynaError):
                raise exc
            outcome.error = f"stream: {type(exc).__name__}: {exc}"

        return failed

    live = [
        (client, outcome, offset)
        for client, outcome, offset in zip(clients, outcomes, offsets)
        if outcome.error is None
    ]
    tracked0 = len(gc.get_objects())  # before the clock's start time is taken
    base = loop.time() + 0.05
    pauses = GCPauses()
    refreeze = None if gc_refreeze is None else loop.call_at(base + gc_refreeze, gc.freeze)
    cpu0, server_cpu0 = process_cpu_seconds(), _maybe_cpu(server_pid)
    sys0, server_sys0 = system_cpu_seconds(), _maybe_cpu(server_pid, system_cpu_seconds)
    wall0 = time.perf_counter()
    if pacing == "shared":
        # The raw asyncio client writes wire frames: the clock hands it the pattern's
        # frames masked in advance (and the header bytes are not audio bytes).
        wire = client == "raw-asyncio"
        clock = SharedClock(
            premasked(pattern) if wire else pattern, period, slots=clock_slots(len(live))
        )
        counted = [
            (
                outcome,
                clock.add(client.on_audio_input, offset=offset, on_error=stream_failed(outcome)),
            )
            for client, outcome, offset in live
        ]
        with pauses:
            await clock.run(start=base, count=count, stats=stats)
        overhead = wire_header_bytes(len(pattern[0])) if wire else 0
        for outcome, sent in counted:
            outcome.frames_sent = sent.frames
            outcome.bytes_sent = sent.bytes - sent.frames * overhead
    else:
        with pauses:
            await asyncio.gather(
                *(
                    # Spread the sessions over one frame period, like independent sources.
                    stream(client, outcome, base + period * index / len(live), offset)
                    for index, (client, outcome, offset) in enumerate(live)
                )
            )
    wall = time.perf_counter() - wall0
    cpu = process_cpu_seconds() - cpu0
    tracked = (tracked0, len(gc.get_objects()), gc.get_freeze_count())
    if refreeze is not None:
        refreeze.cancel()
    server_cpu1 = _maybe_cpu(server_pid)
    system = system_cpu_seconds() - sys0
    server_sys1 = _maybe_cpu(server_pid, system_cpu_seconds)
    # Hang up as a relay ending its calls does: the Close handshake at once (``abort()``)
    # rather than waiting for the final of an utterance the stream stopped in the middle of.
    closed = await _gather_bounded([c.abort() for c in clients], connect_parallel)
    for outcome, result in zip(outcomes, closed):
        if isinstance(result, BaseException) and outcome.error is None:
            outcome.error = f"disconnect: {type(result).__name__}: {result}"
    await asyncio.sleep(0)  # let cancelled tasks finish unwinding
    leftover = [
        f"{task.get_name()}: {task.get_coro()!r}"
        for task in asyncio.all_tasks()
        if task not in baseline and not task.done() and _is_client_task(task)
    ]
    still_connected = sum(client.connected for client in clients)
    if http is not None:
        await http.close()
    if gc_freeze or gc_refreeze is not None:
        gc.unfreeze()
    await _collect_server_view(url, api_key, outcomes, settle_timeout)
    server_cpu_percent = (
        None
        if server_cpu0 is None or server_cpu1 is None
        else (server_cpu1 - server_cpu0) / wall * 100
    )
    return LoadReport(
        sessions=sessions,
        seconds=seconds,
        frames_per_session=count,
        outcomes=outcomes,
        late=stats.summary(),
        connect_s=connect_s,
        stream_wall_s=wall,
        client_cpu_percent=cpu / wall * 100,
        server_cpu_percent=server_cpu_percent,
        client_system_percent=system / wall * 100,
        server_system_percent=None
        if server_sys0 is None or server_sys1 is None
        else (server_sys1 - server_sys0) / wall * 100,
        leftover_tasks=leftover,
        still_connected=still_connected,
        speak=speak,
        pacing=pacing,
        turns=turns,
        client=client,
        gc_freeze=gc_freeze,
        gc_refreeze=gc_refreeze,
        gc_pauses=pauses.describe(),
        gc_tracked=tracked,
    )


def _sdk_client(url: str, api_key: Optional[str], outcome: SessionOutcome, speak: bool) -> Any:
    client = SaynaClient(
        url,
        STTConfig(provider="deepgram", sample_rate=SAMPLE_RATE),
        TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
        api_key=api_key,
        stream_id=outcome.stream_id,
    )
    if speak:
        client.register_on_stt_result(_replier(client, outcome))
        client.register_on_tts_audio(_audio_counter(outcome))
    else:
        client.register_on_stt_result(_counter(outcome))
    return client


def _seed_floor(url: str, outcome: SessionOutcome) -> RawAsyncioSeedSession:
    """A ``raw-asyncio-seed`` session with the SDK sessions' own callbacks registered."""
    session = RawAsyncioSeedSession(url, outcome.stream_id, outcome)
    session.register_on_stt_result(_replier(session, outcome))
    session.register_on_tts_audio(_audio_counter(outcome))
    return session


def _replier(client: Any, outcome: SessionOutcome) -> Any:
    async def on_stt_result(result: Any) -> None:
        outcome.stt_results += 1
        if not result.is_speech_final or not client.ready:
            return
        try:
            await client.speak("okay")
        except SaynaError as exc:  # the session ended under the reply
            if client.ready and outcome.error is None:
                outcome.error = f"speak: {type(exc).__name__}: {exc}"
            return
        outcome.replies += 1

    return on_stt_result


def _audio_counter(outcome: SessionOutcome) -> Any:
    def on_tts_audio(_data: bytes) -> None:
        outcome.tts_frames += 1

    return on_tts_audio


def _counter(outcome: SessionOutcome) -> Any:
    def on_stt_result(_result: Any) -> None:
        outcome.stt_results += 1

    return on_stt_result


def _maybe_cpu(pid: Optional[int], read: Any = process_cpu_seconds) -> Optional[float]:
    if pid is None:
        return None
    try:
        return float(read(pid))
    except OSError:
        return None


async def _collect_server_view(
    url: str, api_key: Optional[str], outcomes: list[SessionOutcome], timeout: float
) -> None:
    """Fill in the server's counters once it recorded every close (or ``timeout``)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else None
    async with aiohttp.ClientSession(headers=headers) as control:
        deadline = time.monotonic() + timeout
        while True:
            view = await _server_sessions(control, url)
            pending = [o for o in outcomes if not view.get(o.stream_id, {}).get("closed")]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
    for outcome in outcomes:
        seen = view.get(outcome.stream_id)
        if seen is None:
            continue
        outcome.server_frames = seen["audio_frames"]
        outcome.server_bytes = seen["audio_bytes"]
        outcome.server_closed = bool(seen["closed"])
        outcome.server_close_code = seen["close_code"]
