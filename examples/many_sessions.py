"""Run many Sayna sessions across processes, and size a deployment from what they cost.

    sayna serve                                                      # terminal 1
    python examples/many_sessions.py --processes 2 --sessions 200    # terminal 2

Each worker process runs its own event loop with ``--sessions`` clients: one
``SaynaClient`` per session, nothing shared between sessions or processes (see
docs/scaling.md). Every session streams live 16 kHz audio in 20 ms frames (300 ms of
tone, 300 ms of silence, so a recogniser hears speech and its end), paced by one clock
per process, and answers each speech-final with ``speak()``, as a voice agent answers a
caller. Put your own handlers in ``Call.on_result`` / ``Call.on_audio``: what this prints
is then what *your* sessions cost.

Per process it prints the CPU it used while streaming (``time.process_time``: user and
system time of that process), the CPU per session in core-milliseconds per second, the
counts, and how late the clock handed frames over (p99: above a few milliseconds the
loop is saturated). Then the sizing rule of docs/scaling.md: a process is full at about
70 % of a core, so one core carries ``0.7 × 1000 / (core-ms per second per session)``
such sessions. Exits 1 if a session reported an error or a worker failed.
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
from collections.abc import Coroutine
from typing import Any, Callable, Optional

from sayna_client import SaynaClient, SaynaError, STTConfig, STTResultMessage, TTSConfig

SAMPLE_RATE = 16000
FRAME_MS = 20
#: One tick of a process's clock per this many sessions (at most 20 ticks per frame).
SESSIONS_PER_TICK = 50
#: The busy share of a core a process is sized to (docs/scaling.md, the sizing rule).
FULL = 0.7


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SAYNA_API_KEY"),
        help="API key (default: $SAYNA_API_KEY)",
    )
    parser.add_argument("--processes", type=int, default=2, help="worker processes (default 2)")
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
        self.streaming = True
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
        if not result.is_speech_final or not self.streaming:
            return
        try:
            await self.client.speak("okay")
        except SaynaError as exc:
            if self.streaming:  # (not the end of the run closing the session under it)
                self.errors.append(f"speak: {exc}")
            return
        self.replies += 1

    def on_audio(self, chunk: bytes) -> None:
        """The reply's audio: a real agent plays it to the caller."""
        self.audio_frames += 1

    def on_error(self, error: Any) -> None:
        if self.streaming:
            self.errors.append(str(getattr(error, "message", error)))


async def stream(calls: list[Call], frames: list[bytes], seconds: float) -> list[float]:
    """Send every call its frames for ``seconds`` from one clock; return how late each
    tick started, in seconds (one tick per ``SESSIONS_PER_TICK`` calls)."""
    loop = asyncio.get_running_loop()
    slots = max(1, min(20, round(len(calls) / SESSIONS_PER_TICK)))
    tick = FRAME_MS / 1000 / slots
    groups = [calls[slot::slots] for slot in range(slots)]
    lateness = []
    start = loop.time()
    # Every call gets one frame per 20 ms of ``seconds``: a tick late is late, not skipped.
    for index in range(round(seconds * 1000 / FRAME_MS) * slots):
        due = start + index * tick
        await asyncio.sleep(max(0.0, due - loop.time()))
        lateness.append(max(0.0, loop.time() - due))
        for call in groups[index % slots]:
            await call.client.on_audio_input(frames[call.position])
            call.position = (call.position + 1) % len(frames)
    return lateness


async def run_process(
    number: int, url: str, api_key: Optional[str], sessions: int, seconds: float
) -> dict[str, Any]:
    """One worker's sessions: connect them all, stream, disconnect; return the figures."""
    frames = tone_pattern()
    stt = STTConfig(provider="deepgram", sample_rate=SAMPLE_RATE)
    tts = TTSConfig(provider="elevenlabs", voice_id="en-us")
    calls = [
        Call(
            SaynaClient(url, stt, tts, api_key=api_key, stream_id=f"worker{number}-call{n}"),
            position=(n * 7) % len(frames),  # the calls' turns spread over the pattern
        )
        for n in range(sessions)
    ]
    try:
        await asyncio.gather(*(call.client.connect() for call in calls))
        cpu, wall = time.process_time(), time.perf_counter()
        lateness = await stream(calls, frames, seconds)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    finally:
        for call in calls:
            call.streaming = False
        await asyncio.gather(*(call.client.disconnect() for call in calls), return_exceptions=True)
    lateness.sort()
    return {
        "number": number,
        "sessions": sessions,
        "seconds": wall,
        "cpu": cpu,
        "frames": sum(call.client.metrics.audio_frames_sent for call in calls),
        "results": sum(call.results for call in calls),
        "replies": sum(call.replies for call in calls),
        "audio": sum(call.audio_frames for call in calls),
        "errors": [error for call in calls for error in call.errors],
        "late_p99_ms": 1000 * lateness[int(0.99 * (len(lateness) - 1))] if lateness else 0.0,
    }


def worker(
    number: int, args: argparse.Namespace, reports: multiprocessing.Queue[dict[str, Any]]
) -> None:
    """A worker process: its own event loop, its own clients."""
    run: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]] = asyncio.run
    if args.uvloop:
        import uvloop

        run = uvloop.run
    try:
        report = run(run_process(number, args.url, args.api_key, args.sessions, args.seconds))
    except Exception as exc:  # told to the parent, which prints it and exits 1
        report = {"number": number, "failure": f"{type(exc).__name__}: {exc}"}
    reports.put(report)


def describe(report: dict[str, Any]) -> tuple[str, float]:
    """A process's line, and its CPU per session in core-ms per second."""
    busy = report["cpu"] / report["seconds"]
    per_session = 1000 * busy / report["sessions"]
    line = (
        f"process {report['number']}: {report['sessions']} sessions for "
        f"{report['seconds']:.1f} s: {100 * busy:.1f} % of a core, {per_session:.2f} core-ms/s "
        f"per session; frames sent {report['frames']:,}, results {report['results']:,}, "
        f"replies {report['replies']:,}, TTS frames {report['audio']:,}, "
        f"errors {len(report['errors'])}; frames paced p99 {report['late_p99_ms']:.1f} ms"
    )
    if busy > FULL or report["late_p99_ms"] > 5.0:
        line += " (saturated: measure again with fewer sessions per process)"
    return line, per_session


def main() -> int:
    args = parse_args()
    context = multiprocessing.get_context("spawn")  # a fresh interpreter per worker
    reports: multiprocessing.Queue[dict[str, Any]] = context.Queue()
    workers = [
        context.Process(target=worker, args=(number, args, reports), name=f"worker{number}")
        for number in range(1, args.processes + 1)
    ]
    for process in workers:
        process.start()
    collected: list[dict[str, Any]] = []
    deadline = time.monotonic() + args.seconds + 120  # connects, streaming, disconnects
    while len(collected) < len(workers):
        try:
            collected.append(reports.get(timeout=max(1.0, deadline - time.monotonic())))
        except queue.Empty:  # a worker died or hung
            break
    for process in workers:
        process.join(10)
        if process.is_alive():
            process.terminate()
    failed = False
    rates = []
    for report in sorted(collected, key=lambda r: r["number"]):
        if "failure" in report:
            print(f"process {report['number']} failed: {report['failure']}")
            failed = True
            continue
        line, per_session = describe(report)
        print(line)
        rates.append(per_session)
        for error in report["errors"][:3]:
            print(f"  error: {error}")
        failed = failed or bool(report["errors"])
    if len(collected) < len(workers):
        print(f"{len(workers) - len(collected)} process(es) sent no report (see the errors above)")
        failed = True
    if rates:
        rate = max(rates)
        print(
            f"sizing: at {rate:.2f} core-ms/s per session, one core carries about "
            f"{FULL * 1000 / rate:,.0f} such sessions at {FULL * 100:.0f} % busy (docs/scaling.md)"
        )
        if args.sessions < 100:
            print(
                "  (with few sessions per process the fixed costs weigh on that figure: "
                "size with --sessions 100 or more)"
            )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
