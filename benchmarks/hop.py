"""Where an event's latency goes on the client: socket bytes in -> callback entry.

    python benchmarks/hop.py [--base REF]... [--runs 7] [--events 2000] [--output FILE]

Starts ``sayna serve --engine fake --fast-tts`` (pinned to CPU 0), then runs, in a fresh
process per run (pinned to CPU 1, the order rotating): this work tree's ``src/`` and, for
each ``--base``, ``src/`` of the git revision REF. Each run opens one session with a single
``register_on_stt_result`` callback (plain, then ``async def``) and asks the server for
``stt_result`` events 1 ms apart (``/_local/bench``), like ``run.py``'s ``latency`` measure.

Per event it splits the latency of ``run.py`` in two:

* **wire**: the server queueing the frame (``sent_ns``) -> the client's protocol receiving
  its bytes (aiohttp's ``ResponseHandler.data_received``, timed by a wrapper): the server's
  writer, the kernel and the client's wake-up; the same code for every client;
* **client**: ``data_received`` -> the callback's entry: aiohttp's parser, the SDK's
  reader, decode, fan-out, mailbox, dispatcher.

Two more passes per run count, per event, with events 20 ms apart (each one received
and handled on its own): on the client's event loop, loop iterations (``_run_once``),
``call_soon`` calls, futures and tasks created; then the Python bytecode instructions
executed, per function (``sys.settrace`` with opcode events). Their timing is not used.
Figures are medians over the runs of each run's p50 / p99.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

from reportfile import publish

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from pacing import percentile  # noqa: E402

# --- one run (child process) ------------------------------------------------------------------


def _instrument_rx(stamps: list[int]) -> None:
    """Record ``monotonic_ns()`` at every ``data_received`` of aiohttp's client protocol."""
    from aiohttp import client_proto

    original = client_proto.ResponseHandler.data_received
    clock = time.monotonic_ns

    def data_received(self: Any, data: bytes) -> None:
        stamps.append(clock())
        original(self, data)

    client_proto.ResponseHandler.data_received = data_received  # type: ignore[method-assign]


class LoopCounts:
    """Counts loop iterations, ``call_soon`` calls, futures and tasks made on one loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, install: bool = True) -> None:
        self.counts: Counter[str] = Counter()
        self.active = False
        counts = self.counts
        if not install:
            return

        def wrap(name: str) -> None:
            original = getattr(loop, name)

            def counted(*args: Any, **kwargs: Any) -> Any:
                if self.active:
                    counts[name] += 1
                return original(*args, **kwargs)

            setattr(loop, name, counted)

        for name in ("_run_once", "call_soon", "create_future", "create_task"):
            wrap(name)


class Opcodes:
    """Bytecode instructions executed while active, per function (``sys.settrace``)."""

    def __init__(self) -> None:
        self.by_function: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        code = frame.f_code
        key = f"{Path(code.co_filename).name}:{code.co_name}"
        if event == "call":
            frame.f_trace_opcodes = True
            self.calls[key] += 1
        elif event == "opcode":
            self.by_function[key] += 1
        return self._trace

    def start(self) -> None:
        sys.settrace(self._trace)

    def stop(self) -> None:
        sys.settrace(None)


async def _session(url: str, use_async: bool, events: int, warmup: int) -> Any:
    from driver import Control, SdkSession

    control = Control(url)
    session = SdkSession(url, f"hop-{uuid.uuid4().hex[:12]}")
    latencies: list[tuple[int, int]] = []  # (sent_ns, callback ns)
    expected = [warmup]
    done = asyncio.Event()
    clock = time.monotonic_ns

    def on_stt(event: Any) -> None:
        latencies.append((int(event.transcript), clock()))
        if len(latencies) == expected[0]:
            done.set()

    if use_async:

        async def on_stt_async(event: Any) -> None:
            on_stt(event)

        session.on_stt = on_stt_async
    else:
        session.on_stt = on_stt
    await session.open()
    await control.burst(session.stream_id, "stt", warmup, 1.0)
    await asyncio.wait_for(done.wait(), 60)
    latencies.clear()
    done.clear()
    expected[0] = events
    await control.burst(session.stream_id, "stt", events, 1.0)
    await asyncio.wait_for(done.wait(), 60 + events / 1000 * 3)
    await session.close()
    await control.close()
    return latencies


async def _counted_session(
    url: str, use_async: bool, events: int, counts: LoopCounts, opcodes: Opcodes, tracing: bool
) -> None:
    """Count from the 100th event to the ``100 + events``-th (inclusive of what runs
    between their callbacks)."""
    from driver import Control, SdkSession

    control = Control(url)
    session = SdkSession(url, f"hop-{uuid.uuid4().hex[:12]}")
    seen = [0]
    done = asyncio.Event()

    def on_stt(event: Any) -> None:
        seen[0] += 1
        if seen[0] == 100:
            if tracing:
                opcodes.start()
            else:
                counts.active = True
        elif seen[0] == 100 + events:
            opcodes.stop()
            counts.active = False
            done.set()

    if use_async:

        async def on_stt_async(event: Any) -> None:
            on_stt(event)

        session.on_stt = on_stt_async
    else:
        session.on_stt = on_stt
    await session.open()
    # 20 ms apart: each event is received, and handled, on its own (as at 1 ms on an
    # idle client; a traced event takes longer than 1 ms).
    await control.burst(session.stream_id, "stt", 100 + events + 5, 20.0)
    await asyncio.wait_for(done.wait(), 120)
    await session.close()
    await control.close()


def child(args: argparse.Namespace) -> dict[str, Any]:
    stamps: list[int] = []
    _instrument_rx(stamps)
    result: dict[str, Any] = {}
    for use_async in (False, True):
        label = "async" if use_async else "plain"
        # Timing pass: nothing patched but the data_received stamp.
        stamps.clear()
        loop = asyncio.new_event_loop()
        try:
            pairs = loop.run_until_complete(_session(args.url, use_async, args.events, args.warmup))
        finally:
            loop.close()
        wire: list[float] = []
        client: list[float] = []
        total: list[float] = []
        ordered = sorted(stamps)
        import bisect

        for sent, entered in pairs:
            # The last data_received before the callback ran carried the event.
            index = bisect.bisect_right(ordered, entered) - 1
            rx = ordered[index] if index >= 0 else sent
            wire.append((rx - sent) / 1e3)
            client.append((entered - rx) / 1e3)
            total.append((entered - sent) / 1e3)
        result[label] = {
            "total_p50_us": percentile(total, 0.5),
            "total_p99_us": percentile(total, 0.99),
            "wire_p50_us": percentile(wire, 0.5),
            "wire_p99_us": percentile(wire, 0.99),
            "client_p50_us": percentile(client, 0.5),
            "client_p99_us": percentile(client, 0.99),
        }
        # Counting passes (their timing is not used): loop counters, then bytecode.
        per_event: dict[str, float] = {}
        for tracing in (False, True):
            loop = asyncio.new_event_loop()
            counts = LoopCounts(loop, install=not tracing)  # no wrappers in the trace
            opcodes = Opcodes()
            try:
                loop.run_until_complete(
                    _counted_session(
                        args.url, use_async, args.count_events, counts, opcodes, tracing
                    )
                )
            finally:
                loop.close()
            if tracing:
                per_event["bytecode"] = sum(opcodes.by_function.values()) / args.count_events
                result[label]["bytecode_by_function"] = {
                    k: round(v / args.count_events, 1)
                    for k, v in opcodes.by_function.most_common(40)
                }
            else:
                per_event.update(
                    {name: value / args.count_events for name, value in counts.counts.items()}
                )
        result[label].update({f"{k}_per_event": v for k, v in per_event.items()})
    return result


# --- the A/B (parent process) ------------------------------------------------------------------


def _run_child(src: str, url: str, args: argparse.Namespace, cpu: Optional[int]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--url", url]
    command += ["--events", str(args.events), "--warmup", str(args.warmup)]
    command += ["--count-events", str(args.count_events)]
    env = dict(os.environ, PYTHONPATH=src)
    preexec: Optional[Callable[[], None]] = None
    if cpu is not None:
        preexec = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=HERE, timeout=600, preexec_fn=preexec
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _report(runs: dict[str, list[dict[str, Any]]], args: argparse.Namespace, loads: str) -> str:
    names = list(runs)
    keys = [
        ("total_p50_us", "sent -> callback p50", "µs"),
        ("total_p99_us", "sent -> callback p99", "µs"),
        ("wire_p50_us", "sent -> data_received p50", "µs"),
        ("client_p50_us", "data_received -> callback p50", "µs"),
        ("client_p99_us", "data_received -> callback p99", "µs"),
        ("_run_once_per_event", "loop iterations per event", ""),
        ("call_soon_per_event", "call_soon per event", ""),
        ("create_future_per_event", "futures made per event", ""),
        ("create_task_per_event", "tasks made per event", ""),
        ("bytecode_per_event", "bytecode instructions per event", ""),
    ]
    lines = [
        f"`python benchmarks/hop.py {' '.join(sys.argv[1:])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; {args.runs} runs "
        f"per client, {args.events} events 1 ms apart per run; load average (1 min) {loads}. "
        "Medians over the runs (min-max under them).",
        "",
    ]
    for label in ("plain", "async"):
        lines += [f"### {label} callback", "", "| figure | " + " | ".join(names) + " |"]
        lines.append("| --- |" + " ---: |" * len(names))
        for key, text, unit in keys:
            cells = []
            for name in names:
                values = [run[label].get(key, 0.0) for run in runs[name]]
                digits = 0 if unit else 2
                cells.append(
                    f"{statistics.median(values):,.{digits}f}<br><sub>{min(values):,.{digits}f}"
                    f"–{max(values):,.{digits}f}</sub>"
                )
            lines.append(
                f"| {text}{' (' + unit + ')' if unit else ''} | " + " | ".join(cells) + " |"
            )
        lines.append("")
        lines += [f"Bytecode per event by function ({label}, the first run of each):", ""]
        for name in names:
            top = runs[name][0][label]["bytecode_by_function"]
            shown = ", ".join(f"{k} {v:g}" for k, v in list(top.items())[:25])
            lines.append(f"- {name}: {shown}")
        lines.append("")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", action="append", default=[], help="git revision to compare with (repeatable)"
    )
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--count-events", type=int, default=100)
    parser.add_argument("--output", help="append the report to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)), flush=True)
        return 0

    from run import cpus, free_port, start_server, stop_server

    server_cpu, client_cpu = cpus()
    sources = {"this": str(HERE.parent / "src")}
    trees = []
    for base in args.base:
        tree = tempfile.TemporaryDirectory(prefix="hop-base-")
        trees.append(tree)
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", base, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tree.name], input=archive.stdout, check=True)
        sources[base] = str(Path(tree.name) / "src")
    port = free_port()
    server = start_server(port, server_cpu)
    url = f"http://127.0.0.1:{port}"
    load_start = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
    try:
        for index in range(args.runs):
            order = list(sources)
            shift = index % len(order)  # rotate the order from run to run
            order = order[shift:] + order[:shift]
            for name in order:
                runs[name].append(_run_child(sources[name], url, args, client_cpu))
                print(
                    f"run {index + 1} {name}: "
                    + json.dumps(
                        {
                            k: round(v, 1)
                            for k, v in runs[name][-1]["plain"].items()
                            if not isinstance(v, dict)
                        }
                    ),
                    flush=True,
                )
    finally:
        stop_server(server)
        for tree in trees:
            tree.cleanup()
    report = _report(runs, args, f"{load_start:.2f} -> {os.getloadavg()[0]:.2f}")
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
