"""Run many Sayna sessions across processes, and size a deployment from what they cost.

    sayna serve                                                                  # terminal 1
    python examples/many_sessions.py --processes 2 --sessions 100 --seconds 10   # terminal 2

Each worker process runs its own event loop with ``--sessions`` clients: one
``SaynaClient`` per session, and nothing your code shares between sessions or processes
(see docs/scaling.md). Every session streams live 16 kHz audio in 20 ms frames (300 ms
of tone, 300 ms of silence, so a recogniser hears speech and its end), paced by one clock
per process, and answers each speech-final with ``speak()``, as a voice agent answers a
caller. Put your own handlers in ``Call.on_result`` / ``Call.on_audio``: what this prints
is then what *your* sessions cost. A session's callbacks run one at a time, in order: a
handler that awaits for long (an LLM call) delays that session's later results and audio,
so start such work in a task of its own, as a real agent does.

Per process it prints the CPU it used while streaming (``time.process_time``: user and
system time of that process), the CPU per session in core-milliseconds per second, what
the sessions saw while streaming, and how late the clock handed frames over (p99: above
a few milliseconds the loop is saturated). Then the sizing rule of docs/scaling.md: a
process is full at about 70 % of a core, so one core carries ``0.7 × 1000 / (core-ms per
second per session)`` such sessions. Exits 1 if a session reported an error or a worker
failed, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import queue
import struct
import sys
import time
import uuid
from collections.abc import Coroutine
from typing import Any, Callable, Optional

from sayna_client import SaynaClient, SaynaError, STTConfig, STTResultMessage, TTSConfig

SAMPLE_RATE = 16000
FRAME_MS = 20
#: One tick of a process's clock per this many sessions (at most 20 ticks per frame).
SESSIONS_PER_TICK = 50
#: The busy share of a core a process is sized to (docs/scaling.md, the sizing rule).
FULL = 0.7
#: Frames handed over later than this at p99: the process's loop is saturated.
LATE_MS = 5.0
STT = STTConfig(provider="deepgram", sample_rate=SAMPLE_RATE)
TTS = TTSConfig(provider="deepgram", voice_id="aura-asteria-en")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SAYNA_API_KEY"),
        help="API key (default: $SAYNA_API_KEY)",
    )
    parser.add_argument(
        "--processes", type=int, default=2, help="worker processes (default 2; one per core)"
    )
    parser.add_argument(
        "--sessions", type=int, default=50, help="sessions per process (default 50)"
    )
    parser.add_argument(
        "--seconds", type=float, default=10.0, help="how long to stream (default 10)"
    )
    parser.add_argument(
        "--uvloop", action="store_true", help="run each process on uvloop (the [uvloop] extra)"
    )
    args = parser.parse_args()
    if not 1 <= args.processes <= 64:
        parser.error(f"--processes must be 1-64, got {args.processes}")
    if not 1 <= args.sessions <= 5000:
        parser.error(f"--sessions must be 1-5000, got {args.sessions}")
    if not 1.0 <= args.seconds <= 3600:
        parser.error(f"--seconds must be 1-3600, got {args.seconds}")
    if args.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            parser.error("--uvloop needs uvloop: pip install 'sayna-client[uvloop]'")
    return args


def tone_pattern() -> list[bytes]:
    """300 ms of a 440 Hz tone, then 300 ms of silence, as 20 ms frames of 16-bit mono."""
    samples = SAMPLE_RATE * FRAME_MS // 1000
    half = 300 // FRAME_MS
    frames = []
    for index in range(half):
        first = index * samples
        values = [
            int(8000 * math.sin(2 * math.pi * 440 * (first + n) / SAMPLE_RATE))
            for n in range(samples)
        ]
        frames.append(struct.pack(f"<{samples}h", *values))
    frames.extend(bytes(samples * 2) for _ in range(half))
    return frames


class Call:
    """One session: its client, your handlers, and what they saw."""

    def __init__(self, client: SaynaClient, position: int) -> None:
        self.client = client
        self.position = position  # where in the tone pattern its next frame is
        #: False once the run ends: no new reply starts (the session is closing).
        self.answering = True
        self.turns = 0  # speech-finals heard
        self.results = 0
        self.replies = 0
        self.audio_frames = 0
        self.errors: list[str] = []
        client.register_on_stt_result(self.on_result)
        client.register_on_tts_audio(self.on_audio)
        client.register_on_error(self.on_error)

    async def on_result(self, result: STTResultMessage) -> None:
        """Your agent's turn: here it answers every speech-final at once."""
        self.results += 1
        if not result.is_speech_final:
            return
        self.turns += 1
        if not self.answering:
            return
        try:
            await self.client.speak("okay")
        except SaynaError as exc:
            if self.answering:  # (not the end of the run closing the session under it)
                self.errors.append(f"speak: {exc}")
            return
        self.replies += 1

    def on_audio(self, chunk: bytes) -> None:
        """The reply's audio: a real agent plays it to the caller."""
        self.audio_frames += 1

    def on_error(self, error: Any) -> None:
        """A server error or a problem the SDK reports (an unexpected close, a callback
        that raised, events dropped): every one counts, until the session is closed."""
        self.errors.append(str(getattr(error, "message", error)))

    def counts(self) -> tuple[int, int, int, int]:
        """Turns, results, replies and TTS frames so far."""
        return self.turns, self.results, self.replies, self.audio_frames


async def stream(calls: list[Call], frames: list[bytes], seconds: float) -> list[float]:
    """Send every call one frame per 20 ms for ``seconds``, from one clock (one tick per
    ``SESSIONS_PER_TICK`` calls); return how late each tick started, in seconds. A late
    tick is sent late, never skipped. A call whose send fails (its session ended) is
    recorded and left out from then on."""
    loop = asyncio.get_running_loop()
    slots = max(1, min(20, round(len(calls) / SESSIONS_PER_TICK)))
    tick = FRAME_MS / 1000 / slots
    groups = [calls[slot::slots] for slot in range(slots)]
    lateness = []
    start = loop.time()
    for index in range(round(seconds * 1000 / FRAME_MS) * slots):
        due = start + index * tick
        await asyncio.sleep(max(0.0, due - loop.time()))
        lateness.append(max(0.0, loop.time() - due))
        group = groups[index % slots]
        for call in list(group):
            try:
                # Returns at once unless the socket is full: then this clock waits for
                # that peer, which shows in the lateness (docs/scaling.md hands such a
                # call to a task of its own).
                await call.client.on_audio_input(frames[call.position])
            except SaynaError as exc:
                call.errors.append(f"on_audio_input: {exc}")
                group.remove(call)
                continue
            call.position = (call.position + 1) % len(frames)
    return lateness


async def run_process(
    number: int, run_id: str, url: str, api_key: Optional[str], sessions: int, seconds: float
) -> dict[str, Any]:
    """One worker's sessions: connect them all, stream, close; return the figures."""
    frames = tone_pattern()
    calls = [
        Call(
            SaynaClient(url, STT, TTS, api_key=api_key, stream_id=f"{run_id}-w{number}-c{n}"),
            position=(n * 7) % len(frames),  # the calls' turns spread over the pattern
        )
        for n in range(sessions)
    ]
    try:
        await asyncio.gather(*(call.client.connect() for call in calls))
        cpu, wall = time.process_time(), time.perf_counter()
        lateness = await stream(calls, frames, seconds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        seen = [sum(column) for column in zip(*(call.counts() for call in calls))]
    finally:
        for call in calls:
            call.answering = False
        # The run stops mid-utterance: close at once rather than wait for turns that
        # will not end (errors reported until then still count).
        await asyncio.gather(*(call.client.abort() for call in calls), return_exceptions=True)
    lateness.sort()
    return {
        "number": number,
        "loop": type(asyncio.get_running_loop()).__module__.split(".")[0],
        "sessions": sessions,
        "seconds": wall,
        "cpu": cpu,
        "frames": sum(call.client.metrics.audio_frames_sent for call in calls),
        "turns": seen[0],
        "results": seen[1],
        "replies": seen[2],
        "audio": seen[3],
        "errors": [error for call in calls for error in call.errors],
        "late_p99_ms": 1000 * lateness[int(0.99 * (len(lateness) - 1))] if lateness else 0.0,
    }


def worker(
    number: int,
    run_id: str,
    args: argparse.Namespace,
    reports: multiprocessing.Queue[dict[str, Any]],
) -> None:
    """A worker process: its own event loop, its own clients; one report to ``reports``."""
    run: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]] = asyncio.run
    if args.uvloop:
        import uvloop

        run = uvloop.run
    try:
        work = run_process(number, run_id, args.url, args.api_key, args.sessions, args.seconds)
        report = run(work)
    except KeyboardInterrupt:  # Ctrl-C reaches every process of the group: the parent tells
        return
    except Exception as exc:  # told to the parent, which prints it and exits 1
        report = {"number": number, "failure": f"{type(exc).__name__}: {exc}"}
    reports.put(report)


def describe(report: dict[str, Any]) -> tuple[str, float, bool]:
    """A process's line, its CPU per session in core-ms per second, and whether it was
    saturated (over ``FULL`` of a core, or frames late)."""
    busy = report["cpu"] / report["seconds"]
    per_session = 1000 * busy / report["sessions"]
    line = (
        f"process {report['number']} ({report['loop']}): {report['sessions']} sessions for "
        f"{report['seconds']:.1f} s: {100 * busy:.1f} % of a core, {per_session:.2f} core-ms/s "
        f"per session; frames sent {report['frames']:,}, results {report['results']:,}, "
        f"turns {report['turns']:,}, replies {report['replies']:,}, "
        f"TTS frames {report['audio']:,}, errors {len(report['errors'])}; "
        f"frames paced p99 {report['late_p99_ms']:.1f} ms"
    )
    saturated = busy > FULL or report["late_p99_ms"] > LATE_MS
    if saturated:
        line += " (saturated: measure again with fewer sessions per process)"
    if report["replies"] < 0.9 * report["turns"]:
        line += (
            " (replies lag behind turns: handlers awaiting for long leave work outside"
            " the measured time, so the CPU figure is low; start such work in tasks)"
        )
    return line, per_session, saturated


def check_server(url: str, api_key: Optional[str]) -> Optional[str]:
    """Why the server cannot be used (None: it answers, and takes the key), said once
    here rather than by every worker."""

    async def ask() -> None:
        async with SaynaClient(url, STT, TTS, api_key=api_key) as client:
            await client.get_voices()

    try:
        asyncio.run(ask())
    except SaynaError as exc:
        return str(exc)
    return None


def collect(
    workers: list[Any], reports: multiprocessing.Queue[dict[str, Any]], timeout: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """The workers' reports, and a line for each worker that ended without one."""
    collected: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    while len(collected) < len(workers) and time.monotonic() < deadline:
        try:
            collected.append(reports.get(timeout=0.5))
        except queue.Empty:
            reported = {report["number"] for report in collected}
            if all(not p.is_alive() for n, p in enumerate(workers, 1) if n not in reported):
                break  # the rest ended without a report
    reported = {report["number"] for report in collected}
    missing = []
    for number, process in enumerate(workers, 1):
        if number not in reported:
            how = f"exited with code {process.exitcode}" if not process.is_alive() else "hung"
            missing.append(f"process {number} {how} and sent no report")
    return collected, missing


def main() -> int:
    args = parse_args()
    problem = check_server(args.url, args.api_key)
    if problem is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    run_id = uuid.uuid4().hex[:8]  # stream ids unique to this run
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker
    reports: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    workers = [
        context.Process(target=worker, args=(number, run_id, args, reports), name=f"worker{number}")
        for number in range(1, args.processes + 1)
    ]
    for process in workers:
        process.start()
    try:
        # Connects, streaming and closing: seconds, plus time for the connects.
        collected, missing = collect(workers, reports, args.seconds + 120)
    except KeyboardInterrupt:
        print("interrupted: the workers close their sessions", file=sys.stderr)
        for process in workers:
            process.join(10)
            if process.is_alive():
                process.terminate()
        return 130
    for process in workers:
        process.join(10)
        if process.is_alive():
            process.terminate()
    failed = bool(missing)
    rates = []
    for report in sorted(collected, key=lambda r: r["number"]):
        if "failure" in report:
            print(f"process {report['number']} failed: {report['failure']}")
            failed = True
            continue
        line, per_session, saturated = describe(report)
        print(line)
        rates.append((per_session, saturated))
        for error in report["errors"][:3]:
            print(f"  error: {error}")
        failed = failed or bool(report["errors"])
    for line in missing:
        print(line)
    if rates:
        rate, saturated = max(rates)
        print(
            f"sizing: at {rate:.2f} core-ms/s per session, one core carries about "
            f"{FULL * 1000 / rate:,.0f} such sessions at {FULL * 100:.0f} % busy (docs/scaling.md)"
        )
        if saturated:
            print("  (from a saturated process: the figure is low; size from a run below 70 %)")
        if args.sessions < 100:
            print(
                "  (with few sessions per process the fixed costs weigh on that figure: "
                "size with --sessions 100 or more)"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:  # before the workers started: nothing to close
        sys.exit(130)
