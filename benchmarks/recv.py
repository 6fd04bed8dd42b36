"""CPU per received event, this work tree against a git revision: an interleaved timing A/B.

    python benchmarks/recv.py --base REF [--pairs 6] [--sessions 20] [--count 1000]
                              [--interval-ms 2] [--cycles 20] [--calls] [--output FILE]

Starts ``sayna serve --engine fake --fast-tts`` in its own process (pinned to CPU 0 when the
machine has two), then runs A (this work tree's ``src/``) and B (``src/`` of ``REF``)
alternately, each run a fresh client process pinned to CPU 1, ``--pairs`` times (the
order of each pair alternates: A B, B A, A B, ...). A run connects ``--sessions``
sessions shaped like ``load.py --speak`` (an ``async`` result callback, a plain audio
callback), then, per kind, makes the server push ``--count`` events to every session
(``/_local/bench/{stream_id}/burst``) ``--interval-ms`` apart, so that at these rates
almost every event arrives in a read of its own, as in the load test, and measures the
client process's user and system CPU from the requests until every callback has seen
every event:

* **stt_result**: interim results (the callback returns without speaking);
* **TTS frame**: 640-byte audio frames to the plain audio callback (the ``async`` result
  callback stays registered, as in the load test);
* **speak cycle** (``--cycles`` per session, all sessions at once): ``handle = await
  client.speak("okay"); await handle``, as the load test's result callback does. The
  server's TTS is faster than real time, as in the load test, so a speak's frames (9)
  come several to a read; the figure includes sending the speak and the speech handle.

Reported per kind: the median and the spread (min-max) of the user CPU per event over
the runs of A and of B, the median of the per-pair ratios A/B and how many pairs had A
below B. The requests' own cost (one HTTP POST per session and kind) is included in both.
Timings on a shared machine are noisy: read the ratio and the sign count, not a single run.

With ``--calls`` the runs count instead of timing (the counting slows them): per event,
the loop callbacks scheduled (``loop.call_soon``, a handle each, futures' wake-ups
included), the futures made (``loop.create_future``) and the change in the collector's
young-generation count with the collector disabled (the tracked objects still alive
after the burst: what makes young collections come sooner), of the client process,
the requests' own included. These hardly depend on the machine's load.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

from reportfile import publish

HERE = Path(__file__).resolve().parent
KINDS = (("stt", "stt_result"), ("audio", "TTS frame"))
SPEAK = "speak cycle"


# --- one run (child process) ------------------------------------------------------------------


def _cpu() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime, usage.ru_stime


class _Calls:
    """Counts the loop's ``call_soon`` and ``create_future`` calls (``--calls``)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.calls = self.futures = 0
        call_soon, create_future = loop.call_soon, loop.create_future

        def counted_call_soon(*args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return call_soon(*args, **kwargs)

        def counted_create_future() -> Any:
            self.futures += 1
            return create_future()

        # Instance attributes: asyncio's C futures look the method up on the loop too.
        loop.call_soon = counted_call_soon  # type: ignore[method-assign,assignment]
        loop.create_future = counted_create_future  # type: ignore[method-assign]

    def start(self) -> None:
        self.calls = self.futures = 0
        gc.collect()
        gc.disable()
        self.tracked = gc.get_count()[0]

    def stop(self, events: int) -> dict[str, float]:
        tracked = gc.get_count()[0] - self.tracked
        gc.enable()
        return {
            "calls": self.calls / events,
            "futures": self.futures / events,
            "tracked": tracked / events,
        }


async def _run(
    url: str,
    sessions: int,
    count: int,
    interval_ms: float,
    cycles: int,
    count_calls: bool = False,
) -> dict[str, Any]:
    import aiohttp

    from sayna_client import SaynaClient, STTConfig, TTSConfig

    run_id = f"{os.getpid()}-{time.monotonic_ns() % 1_000_000}"
    seen = {"stt": 0, "audio": 0}
    wanted = {"stt": 0, "audio": 0}
    done = asyncio.Event()

    def check(kind: str) -> None:
        seen[kind] += 1
        if seen[kind] == wanted[kind]:
            done.set()

    async def on_stt_result(_result: Any) -> None:
        check("stt")

    def on_tts_audio(_data: bytes) -> None:
        check("audio")

    clients = []
    for index in range(sessions):
        client = SaynaClient(
            url,
            STTConfig(provider="deepgram", sample_rate=16000),
            TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
            stream_id=f"recv-{run_id}-{index}",
        )
        client.register_on_stt_result(on_stt_result)
        client.register_on_tts_audio(on_tts_audio)
        await client.connect()
        clients.append(client)
    out: dict[str, Any] = {}
    async with aiohttp.ClientSession() as http:

        async def burst(kind: str, per_session: int) -> None:
            done.clear()
            wanted[kind] = seen[kind] + per_session * sessions
            body = {"kind": kind, "count": per_session, "size": 640, "interval_ms": interval_ms}

            async def post(index: int) -> None:
                address = f"{url}/_local/bench/recv-{run_id}-{index}/burst"
                async with http.post(address, json=body) as response:
                    assert response.status == 202, await response.text()

            await asyncio.gather(*(post(i) for i in range(sessions)))
            await asyncio.wait_for(done.wait(), 120)

        calls = _Calls(asyncio.get_running_loop()) if count_calls else None
        for kind, name in KINDS:
            await burst(kind, 50)  # warm up: caches, plans, the tasks' first events
            events = count * sessions
            if calls is not None:
                calls.start()
                await burst(kind, count)
                out[name] = calls.stop(events)
                continue
            user0, sys0 = _cpu()
            await burst(kind, count)
            user1, sys1 = _cpu()
            out[name] = {
                "user_us": (user1 - user0) / events * 1e6,
                "sys_us": (sys1 - sys0) / events * 1e6,
            }

    async def speak(client: SaynaClient, times: int) -> None:
        for _ in range(times):
            await (await client.speak("okay"))

    if cycles:
        await asyncio.gather(*(speak(client, 3) for client in clients))  # warm up
        events = cycles * sessions
        if calls is not None:
            calls.start()
            await asyncio.gather(*(speak(client, cycles) for client in clients))
            out[SPEAK] = calls.stop(events)
        else:
            user0, sys0 = _cpu()
            await asyncio.gather(*(speak(client, cycles) for client in clients))
            user1, sys1 = _cpu()
            out[SPEAK] = {
                "user_us": (user1 - user0) / events * 1e6,
                "sys_us": (sys1 - sys0) / events * 1e6,
            }
    for client in clients:  # no drain: the burst's audio was never spoken (no completion)
        await client.disconnect(graceful=False)
    return out


# --- the A/B (parent process) ------------------------------------------------------------------


def _pin(cpu: Optional[int]) -> Optional[Callable[[], None]]:
    if cpu is None:
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def _child(src: str, args: argparse.Namespace, url: str, cpu: Optional[int]) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", "--url", url]
    command += ["--sessions", str(args.sessions), "--count", str(args.count)]
    command += ["--interval-ms", str(args.interval_ms), "--cycles", str(args.cycles)]
    if args.calls:
        command.append("--calls")
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env=dict(os.environ, PYTHONPATH=src),
        cwd=HERE,
        timeout=900,
        preexec_fn=_pin(cpu),
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _report(args: argparse.Namespace, runs: dict[str, list[dict[str, Any]]], load: str) -> str:
    lines = [
        f"`python benchmarks/recv.py {' '.join(sys.argv[1:])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC "
        f"(load average before: {load}): client CPU per received event, µs, "
        f"{args.sessions} sessions x {args.count} events {args.interval_ms:g} ms apart "
        f"(and {args.cycles} speak cycles: per cycle), "
        f"{args.pairs} pairs A/B in fresh processes (see the script's docstring).",
        "",
        "| per event | A: this, user (min-max) | B: base, user (min-max) "
        "| A/B user, median of pairs | pairs A < B | A sys | B sys |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    if args.calls:
        return _calls_report(lines[0], runs, _names(args))
    for name in _names(args):
        a = [run[name]["user_us"] for run in runs["A"]]
        b = [run[name]["user_us"] for run in runs["B"]]
        a_sys = statistics.median(run[name]["sys_us"] for run in runs["A"])
        b_sys = statistics.median(run[name]["sys_us"] for run in runs["B"])
        ratios = [x / y for x, y in zip(a, b)]
        lines.append(
            f"| {name} | {statistics.median(a):.2f} ({min(a):.2f}-{max(a):.2f}) "
            f"| {statistics.median(b):.2f} ({min(b):.2f}-{max(b):.2f}) "
            f"| {statistics.median(ratios):.2f} | {sum(r < 1 for r in ratios)}/{len(ratios)} "
            f"| {a_sys:.2f} | {b_sys:.2f} |"
        )
    return "\n".join(lines)


def _names(args: argparse.Namespace) -> list[str]:
    return [name for _, name in KINDS] + ([SPEAK] if args.cycles else [])


def _calls_report(title: str, runs: dict[str, list[dict[str, Any]]], names: list[str]) -> str:
    lines = [
        title.replace("client CPU per received event, µs", "counts per received event"),
        "",
        "| per event | A: loop callbacks | B | A: futures | B | A: tracked left | B |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in names:
        row = [name]
        for field in ("calls", "futures", "tracked"):
            for side in ("A", "B"):
                row.append(f"{statistics.median(run[name][field] for run in runs[side]):.2f}")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="git revision to compare with (B)")
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--count", type=int, default=150, help="events per session and kind")
    parser.add_argument("--interval-ms", type=float, default=20.0)
    parser.add_argument("--cycles", type=int, default=20, help="speak cycles per session")
    parser.add_argument("--calls", action="store_true", help="count, not time (see above)")
    parser.add_argument("--output", help="append the report to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        result = asyncio.run(
            _run(args.url, args.sessions, args.count, args.interval_ms, args.cycles, args.calls)
        )
        print(json.dumps(result), flush=True)
        return 0
    if not args.base:
        parser.error("--base REF is required")
    two = hasattr(os, "sched_getaffinity") and len(os.sched_getaffinity(0)) >= 2
    server_cpu, client_cpu = (0, 1) if two else (None, None)
    load = "/".join(f"{x:.1f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(prefix="recv-base-") as tree:
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", args.base, "src"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", tree], input=archive.stdout, check=True)
        sources = {"A": str(HERE.parent / "src"), "B": str(Path(tree) / "src")}
        sys.path.insert(0, str(HERE))
        from load import free_port, start_server

        port = free_port()
        server = start_server(port, server_cpu)
        runs: dict[str, list[dict[str, Any]]] = {"A": [], "B": []}
        try:
            for pair in range(args.pairs):
                order = ("A", "B") if pair % 2 == 0 else ("B", "A")
                for name in order:
                    url = f"http://127.0.0.1:{port}"
                    runs[name].append(_child(sources[name], args, url, client_cpu))
                    print(f"pair {pair + 1} {name}: {runs[name][-1]}", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(10)
    report = _report(args, runs, load)
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
