"""CPU per speak cycle (issue #19): this work tree against a base revision, A and B alternately.

    python benchmarks/speak_cycle.py [--base main] [--sessions 50] [--cycles 40] [--pairs 6]
                                     [--output benchmarks/speak-issue19.md]

Starts ``sayna serve --engine fake --fast-tts`` in a separate process, then runs, in fresh
client processes, ``--sessions`` clients that each do ``--cycles`` speak cycles
concurrently: ``handle = await client.speak("okay"); await handle`` (the handle is done
at the ``tts_playback_complete`` after its audio), with a plain ``register_on_tts_audio``
callback as in ``load.py --speak``. Each run reports the client process's CPU time
(``time.process_time``) over the measured cycles divided by their number, and, without
network and deterministic, the objects the cycle collector tracks per speech in flight:
1,000 handles opened on a speech queue and awaited by a task each, counted with
``gc.get_objects()`` (the task and its coroutine, the same in both trees, included). At
1,000 sessions such objects are what young collections find alive and promote (see
``docs/scaling.md``, garbage collection).

The two trees run in alternation (A B B A A B ...), each run in a fresh process
(``PYTHONPATH`` = the tree's ``src``), so drift of a shared machine falls on both; the
report gives the median and the range of each and the median of the per-pair ratios.
Timings on a shared machine are noisy: read the ratio with its spread, and prefer
``opcodes.py`` for a deterministic count.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Optional

from abrun import local_server, run_child, source_trees
from reportfile import publish

HERE = Path(__file__).resolve().parent


# --- one run (child process) ------------------------------------------------------------------


async def _in_flight(count: int = 1000) -> float:
    """Tracked objects per awaited speech in flight (see the module docstring)."""
    from sayna_client.agents import SpeechQueue

    async def nothing(*_args: object) -> None:
        return None

    queue = SpeechQueue(nothing, nothing, lambda: ("linear16", 16000))

    async def wait(handle: Any) -> None:
        await handle

    gc.collect()
    gc.disable()
    try:
        before = len(gc.get_objects())
        handles = []
        for _ in range(count):
            handle = queue.open(True)
            queue.add_chunk(handle, "okay")
            queue.chunk_sent(handle, last=True)
            handles.append(handle)
        tasks = [asyncio.ensure_future(wait(h)) for h in handles]
        await asyncio.sleep(0)  # every task is awaiting its handle
        await asyncio.sleep(0)
        objects = (len(gc.get_objects()) - before) / count
    finally:
        gc.enable()
    queue.on_closed(None)
    await asyncio.gather(*tasks)
    return objects


async def _run(url: str, sessions: int, cycles: int) -> dict[str, float]:
    from sayna_client import SaynaClient, STTConfig, TTSConfig

    clients = []
    frames = [0]

    def on_audio(_data: bytes) -> None:
        frames[0] += 1

    for index in range(sessions):
        client = SaynaClient(
            url,
            STTConfig(provider="deepgram", sample_rate=16000),
            TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
            stream_id=f"speak-cycle-{index}",
        )
        client.register_on_tts_audio(on_audio)
        await client.connect()
        clients.append(client)

    async def speak(client: SaynaClient, count: int) -> None:
        for _ in range(count):
            handle = await client.speak("okay")
            await handle

    await asyncio.gather(*(speak(c, 5) for c in clients))  # warm up: queues, caches
    frames[0] = 0
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(speak(c, cycles) for c in clients))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    for client in clients:
        await client.disconnect()
    done = sessions * cycles
    return {
        "cpu_us_per_cycle": cpu / done * 1e6,
        "wall_s": wall,
        "frames_per_cycle": frames[0] / done,
        "objects_in_flight": await _in_flight(),
    }


# --- the A/B (parent process) ------------------------------------------------------------------


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="main", help="git revision to compare with")
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--cycles", type=int, default=40, help="speak cycles per session")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--output", help="append the report to this file")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        url, sessions, cycles = args.child[0], int(args.child[1]), int(args.child[2])
        print(json.dumps(asyncio.run(_run(url, sessions, cycles))), flush=True)
        return 0
    runs: dict[str, list[dict[str, float]]] = {}
    counts = (str(args.sessions), str(args.cycles))
    with source_trees(args.base) as sources, local_server() as url:
        for pair in range(args.pairs):
            order = list(sources) if pair % 2 == 0 else list(reversed(sources))
            for name in order:
                result = run_child(__file__, (url, *counts), sources[name])
                runs.setdefault(name, []).append(result)
                print(f"pair {pair + 1} {name}: {result}", file=sys.stderr, flush=True)
    this, base = runs["this"], runs[args.base]
    ratios = [a["cpu_us_per_cycle"] / b["cpu_us_per_cycle"] for a, b in zip(this, base)]
    load = os.getloadavg()
    lines = [
        f"`python benchmarks/speak_cycle.py {' '.join(sys.argv[1:])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"({args.sessions} sessions x {args.cycles} speak cycles per run, {args.pairs} pairs "
        f"alternated; load average at the end {load[0]:.1f}, machine shared): median (range).",
        "",
        f"| per speak cycle | this | {args.base} |",
        "| --- | ---: | ---: |",
        "| client CPU, µs | "
        + " | ".join(_spread([r["cpu_us_per_cycle"] for r in rs]) for rs in (this, base))
        + " |",
        "| tracked objects per awaited speech in flight | "
        + " | ".join(
            f"{statistics.median(r['objects_in_flight'] for r in rs):.1f}" for rs in (this, base)
        )
        + " |",
        "| TTS frames per cycle | "
        + " | ".join(
            f"{statistics.median(r['frames_per_cycle'] for r in rs):.1f}" for rs in (this, base)
        )
        + " |",
        "",
        f"CPU ratio this/{args.base}, per pair: median {statistics.median(ratios):.3f} "
        f"(range {min(ratios):.3f}-{max(ratios):.3f}).",
    ]
    report = "\n".join(lines)
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
