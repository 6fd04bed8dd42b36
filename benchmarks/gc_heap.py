"""What long sessions' turn metrics add to every full garbage collection.

    python benchmarks/gc_heap.py [--sessions 1000] [--turns 600] [--runs 5] [--output FILE]

Makes ``--sessions`` :class:`~sayna_client.agents.TurnMetrics` (one per client; every
session that speaks or hears a result has one) and feeds each ``--turns`` answered turns
(a result, the speech-final, a ``speak``, the reply's first audio byte), as the client's
reader does: 600 turns is about six minutes of a call at the load test's 1.6 turns per
second. Then it reports how many objects the cycle collector tracks because of them and how
long a full collection (``gc.collect()``, the median of ``--runs``) takes with them, against
the same process before they were made. No network, no server: a few seconds of CPU.

The figures are the heap's size, deterministic, and a time that varies with the machine's
load (run it on a quiet machine; compare two trees with ``PYTHONPATH=OTHER/src``).
"""

from __future__ import annotations

import argparse
import datetime
import gc
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Optional

import sayna_client
from sayna_client.agents import TurnMetrics


def full_collection_ms(runs: int) -> float:
    """The median wall time of ``gc.collect()`` over ``runs``, in ms."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def feed(metrics: TurnMetrics, turns: int) -> None:
    """``turns`` answered turns, as the reader and the speech queue report them."""
    interim = SimpleNamespace(transcript="how are", is_speech_final=False)
    final = SimpleNamespace(transcript="how are you", is_speech_final=True)
    for _ in range(turns):
        metrics.on_stt_result(interim)
        metrics.on_stt_result(final)
        metrics.on_speak("fine thanks")
        metrics.on_tts_audio(640)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--turns", type=int, default=600)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.turns < 0 or args.runs < 1:
        parser.error("--sessions and --runs must be positive, --turns not negative")
    gc.collect()
    tracked0 = len(gc.get_objects())
    empty_ms = full_collection_ms(args.runs)
    sessions = [TurnMetrics() for _ in range(args.sessions)]
    for metrics in sessions:
        feed(metrics, args.turns)
    gc.collect()
    tracked = len(gc.get_objects()) - tracked0
    with_ms = full_collection_ms(args.runs)
    kept = sum(len(m.turns) for m in sessions)
    rows = [
        ("sessions × turns", f"{args.sessions:,} × {args.turns:,} ({kept:,} turns kept)"),
        (
            "objects the collector tracks for them",
            f"{tracked:,} ({tracked / args.sessions:.1f} per session)",
        ),
        ("full collection before they were made", f"{empty_ms:.1f} ms ({tracked0:,} objects)"),
        ("full collection with them", f"{with_ms:.1f} ms"),
    ]
    width = max(len(name) for name, _ in rows)
    text = "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
    text += (
        f"\n\nPython {platform.python_version()}, sayna-client {sayna_client.__version__} "
        f"({Path(sayna_client.__file__).parent}), {datetime.date.today().isoformat()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
