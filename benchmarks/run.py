"""Side-by-side benchmark: raw aiohttp, this SDK and sayna-client 0.0.18 against one server.

    python benchmarks/run.py [--quick] [--runs N] [--measures a,b] [--clients raw,this,0.0.18]
    python benchmarks/run.py --base main --measures tts,burst --output benchmarks/X.md

With ``--base REF`` the clients are ``this`` (the work tree) and ``base`` (``src/`` of the
git revision REF, unpacked to a temporary directory), measured back to back in every
run with the order rotating, and the report compares the two line by line (same-run
ratios, sign test): an A/B check of a change on a shared, noisy machine.

Starts ``sayna serve --engine fake --fast-tts`` on a free port as a separate process, creates
``benchmarks/.venv-0018`` with ``sayna-client==0.0.18`` if it is missing, then runs every
measure of ``driver.py`` for every client, each run in a fresh process, rotating the
client order between runs. Each figure is the median over the runs. The server is
pinned to CPU 0 and the clients to CPU 1 when the machine has two or more.

Prints the report (``--output benchmarks/RESULTS.md`` updates the committed figures of
record; nothing is overwritten by default) and writes the raw numbers as JSON under
``benchmarks/.out/``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
OLD_VENV = HERE / ".venv-0018"
OLD_VERSION = "0.0.18"
CLIENTS = ("raw", "this", OLD_VERSION)
#: The client of ``--base REF``: this package at another git revision.
BASE = "base"
#: ``src/`` directories to import each client from (``base`` once unpacked).
SOURCE_PATHS: dict[str, str] = {}

#: Measure parameters: (full, quick).
PARAMS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "connect": ({"warmup": 20, "count": 50}, {"warmup": 10, "count": 30}),
    "upload": ({"frames": 20_000}, {"frames": 10_000}),
    "tts": ({"frames": 50_000}, {"frames": 20_000}),
    "latency": (
        {"warmup": 300, "events": 5_000, "interval_ms": 1.0},
        {"warmup": 200, "events": 1_500, "interval_ms": 1.0},
    ),
    "burst": ({"events": 20_000}, {"events": 10_000}),
    "tts_busy": ({"frames": 50_000}, {"frames": 20_000}),
    "burst_busy": ({"events": 20_000}, {"events": 10_000}),
    "tts_async": ({"frames": 50_000}, {"frames": 20_000}),
    "burst_async": ({"events": 20_000}, {"events": 10_000}),
    "latency_async": (
        {"warmup": 300, "events": 5_000, "interval_ms": 1.0},
        {"warmup": 200, "events": 1_500, "interval_ms": 1.0},
    ),
    "rss": ({"sessions": 200, "idle_s": 1.0}, {"sessions": 100, "idle_s": 0.5}),
    "rss_seed": ({"sessions": 200, "idle_s": 1.0}, {"sessions": 100, "idle_s": 0.5}),
    "rest_seq": ({"requests": 3_000}, {"requests": 1_000}),
    "rest_conc": ({"requests": 6_000, "parallel": 50}, {"requests": 2_000, "parallel": 50}),
    "cpu": (
        {"sessions": 200, "warmup_s": 3.0, "window_s": 10.0},
        {"sessions": 200, "warmup_s": 2.0, "window_s": 4.0},
    ),
}


#: Measures that are quick but whose per-run figure is the noisiest on a shared machine
#: (a p50 of 50 connects; sequential round trips) get this many times the runs. A fresh
#: process per run is its own draw of memory layout and hash seeds: only many processes
#: average that out (63 connect runs take about 1.5 minutes).
RUN_FACTOR = {
    "connect": 9,
    "rest_seq": 3,
    "upload": 3,
    "tts": 3,
    "burst": 3,
    "tts_async": 3,
    "burst_async": 3,
}


def runs_of(measure: str, runs: int) -> int:
    return runs * RUN_FACTOR.get(measure, 1)


@dataclass(frozen=True)
class Line:
    """One row of the results table.

    ``target`` is the SDK's goal relative to raw in the same run: ``("ratio", 0.95)`` means
    at least 0.95x raw (or at most, for lower-is-better lines); ``("plus", 20.0)`` means
    at most raw + 20 units.
    """

    measure: str
    key: str
    label: str
    unit: str
    higher_is_better: bool
    target: Optional[tuple[str, float]] = None
    digits: int = 0
    total: bool = False  # sum over the runs instead of the median (counts of losses)


LINES = (
    Line("connect", "p50_ms", "connect → ready p50", "ms", False, ("ratio", 1.05), 2),
    Line("connect", "p95_ms", "connect → ready p95", "ms", False, None, 2),
    Line("upload", "frames_per_s", "upload, server-confirmed", "frames/s", True, ("ratio", 0.95)),
    Line("tts", "frames_per_s", "TTS receive + dispatch", "frames/s", True, ("ratio", 0.90)),
    Line("burst", "events_per_s", "stt_result burst", "events/s", True, ("ratio", 0.85)),
    Line("tts_busy", "frames_per_s", "TTS, client core shared with a busy loop", "frames/s", True),
    Line(
        "burst_busy", "events_per_s", "burst, client core shared with a busy loop", "events/s", True
    ),
    Line("tts_async", "frames_per_s", "TTS receive + dispatch, async callback", "frames/s", True),
    Line("burst_async", "events_per_s", "stt_result burst, async callback", "events/s", True),
    Line("latency", "p50_us", "event latency p50 (paced 1 ms)", "µs", False, ("plus", 20.0)),
    Line("latency", "p99_us", "event latency p99 (paced 1 ms)", "µs", False, None),
    Line("latency_async", "p50_us", "event latency p50, async callback", "µs", False, None),
    Line("latency_async", "p99_us", "event latency p99, async callback", "µs", False, None),
    Line("rss", "kib_per_session", "RSS per idle session", "KiB", False, ("ratio", 1.3), 1),
    Line(
        "rss_seed",
        "kib_per_session",
        "RSS per idle session, raw sharing one ClientSession",
        "KiB",
        False,
        ("ratio", 1.3),
        1,
    ),
    Line("rest_seq", "req_per_s", "REST health() sequential", "req/s", True, ("ratio", 0.95)),
    Line("rest_conc", "req_per_s", "REST health() 50 concurrent", "req/s", True, ("ratio", 0.95)),
    Line("cpu", "core_ms_per_stream_s", "CPU per real-time stream", "core-ms/s", False, None, 2),
)

#: Client-side CPU per item (informative: no target; shows where the time goes when the
#: server, not the client, limits a throughput line).
EXTRA_LINES = (
    Line("upload", "cpu_us_per_frame", "client CPU per uploaded frame", "µs", False, None, 2),
    Line("upload", "user_us_per_frame", "… of which user space", "µs", False, None, 2),
    Line("upload", "system_us_per_frame", "… of which kernel", "µs", False, None, 2),
    Line("tts", "cpu_us_per_frame", "client CPU per TTS frame received", "µs", False, None, 2),
    Line("burst", "cpu_us_per_event", "client CPU per stt_result event", "µs", False, None, 2),
    Line("upload", "send_frames_per_s", "upload, until the last send returned", "frames/s", True),
    Line("tts", "dropped", "TTS frames discarded, all runs", "frames", False, total=True),
    Line("burst", "dropped", "stt_result events discarded, all runs", "events", False, total=True),
    Line(
        "tts_async", "dropped", "TTS frames discarded, async, all runs", "frames", False, total=True
    ),
    Line(
        "burst_async", "dropped", "events discarded, async, all runs", "events", False, total=True
    ),
    Line(
        "tts_busy",
        "dropped",
        "TTS frames discarded, busy core, all runs",
        "frames",
        False,
        total=True,
    ),
    Line(
        "burst_busy",
        "dropped",
        "events discarded, busy core, all runs",
        "events",
        False,
        total=True,
    ),
    Line("cpu", "cpu_percent", "CPU, 200 streams (one core = 100)", "%", False, None, 1),
    Line("cpu", "late_p99_ms", "pacing lateness p99, 200 streams", "ms", False, None, 1),
)


# --- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin(cpu: Optional[int]) -> Optional[Callable[[], None]]:
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return None
    return lambda: os.sched_setaffinity(0, {cpu})


def cpus() -> tuple[Optional[int], Optional[int]]:
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    return (0, 1) if count >= 2 else (None, None)


def start_server(port: int, cpu: Optional[int]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "sayna_client", "serve", "--engine", "fake", "--fast-tts"]
    command += ["--port", str(port), "--log-level", "WARNING"]
    server = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, preexec_fn=pin(cpu)
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            problem = server.stderr.read().decode() if server.stderr else ""
            raise RuntimeError(f"server exited: {problem}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("server did not start within 30 s")


def start_hog(cpu: Optional[int]) -> subprocess.Popen[bytes]:
    """A process that busy-loops on the clients' core: a client app with other work to do."""
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=pin(cpu))


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    try:
        server.wait(10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def reset_server(url: str) -> None:
    request = urllib.request.Request(url + "/_local/bench/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10):
        pass


def ensure_old_venv() -> Path:
    """``benchmarks/.venv-0018`` with ``sayna-client==0.0.18`` (created once)."""
    python = OLD_VENV / "bin" / "python"
    if python.exists():
        probe = [str(python), "-c", "import sayna_client; print(sayna_client.__version__)"]
        found = subprocess.run(probe, capture_output=True, text=True)
        if found.returncode == 0 and found.stdout.strip() == OLD_VERSION:
            return python
    print(f"creating {OLD_VENV.relative_to(HERE.parent)} with sayna-client=={OLD_VERSION}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(OLD_VENV)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, f"sayna-client=={OLD_VERSION}"], check=True)
    return python


def run_driver(
    python: str, client: str, measure: str, url: str, params: dict[str, Any], cpu: Optional[int]
) -> dict[str, Any]:
    command = [python, str(HERE / "driver.py"), "--client", "raw" if client == "raw" else "sdk"]
    command += ["--measure", measure, "--url", url, "--params", json.dumps(params)]
    if cpu is not None:
        command += ["--cpu", str(cpu)]
    env = dict(os.environ)
    if client == OLD_VERSION:
        env.pop("PYTHONPATH", None)  # never let a source checkout shadow the old package
    elif client in SOURCE_PATHS:
        env["PYTHONPATH"] = SOURCE_PATHS[client]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=HERE, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{client} {measure} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


# --- report ------------------------------------------------------------------------------------


def machine_facts(pythons: dict[str, str]) -> list[tuple[str, str]]:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass

    def probe(python: str, module: str, attribute: str = "__version__") -> str:
        code = f"import {module}; print({module}.{attribute})"
        found = subprocess.run([python, "-c", code], capture_output=True, text=True)
        return found.stdout.strip() or "?"

    version = probe

    this = pythons["this"]
    facts = [
        ("CPU", f"{model}, {os.cpu_count()} logical cores"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", platform.python_version()),
        ("aiohttp", version(this, "aiohttp")),
        ("pydantic", version(this, "pydantic")),
        ("sayna-client (this)", version(this, "sayna_client")),
        ("this imported from", probe(this, "sayna_client", "__file__")),
    ]
    if OLD_VERSION in pythons:
        old = pythons[OLD_VERSION]
        facts.append(
            (
                f"sayna-client {OLD_VERSION} venv",
                f"aiohttp {version(old, 'aiohttp')}, pydantic {version(old, 'pydantic')}",
            )
        )
    return facts


def fmt(value: Optional[float], digits: int) -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def ratio_text(value: Optional[float]) -> str:
    return "–" if value is None else f"{value:.2f}x"


class Table:
    """Per-run figures; comparisons are made within a run, then the median is taken.

    A run measures the three clients back to back, so comparing inside a run cancels
    most of the drift of a shared machine's background load.
    """

    def __init__(self, log: list[dict[str, Any]]) -> None:
        self._by: dict[tuple[str, str, str], dict[int, float]] = {}
        for result in log:
            for key, value in result["values"].items():
                slot = self._by.setdefault((result["measure"], result["sdk"], key), {})
                slot[int(result["run"])] = float(value)

    def series(self, client: str, line: Line) -> dict[int, float]:
        return self._by.get((line.measure, client, line.key), {})

    def median(self, client: str, line: Line) -> Optional[float]:
        values = list(self.series(client, line).values())
        if not values:
            return None
        return sum(values) if line.total else statistics.median(values)

    def spread(self, client: str, line: Line) -> str:
        values = list(self.series(client, line).values())
        if len(values) < 2:
            return ""
        return f"{fmt(min(values), line.digits)}–{fmt(max(values), line.digits)}"

    def paired(
        self, line: Line, client: str, base: str, op: Callable[[float, float], float]
    ) -> Optional[float]:
        mine, theirs = self.series(client, line), self.series(base, line)
        pairs = [op(mine[run], theirs[run]) for run in mine if theirs.get(run)]
        return statistics.median(pairs) if pairs else None

    def ratio(self, line: Line, client: str, base: str) -> Optional[float]:
        return self.paired(line, client, base, lambda a, b: a / b)

    def difference(self, line: Line, client: str, base: str) -> Optional[float]:
        return self.paired(line, client, base, lambda a, b: a - b)


def target_check(line: Line, table: Table) -> tuple[str, Optional[bool]]:
    """The target text and whether the median same-run comparison meets it."""
    if line.target is None:
        return "–", None
    kind, amount = line.target
    if kind == "plus":
        extra = table.difference(line, "this", "raw")
        return f"≤ raw + {amount:g} {line.unit}", None if extra is None else extra <= amount
    ratio = table.ratio(line, "this", "raw")
    sign = "≥" if line.higher_is_better else "≤"
    if ratio is None:
        return f"{sign} {amount:g}x raw", None
    return f"{sign} {amount:g}x raw", ratio >= amount if line.higher_is_better else ratio <= amount


def runs_against(line: Line, table: Table, base: str, limit: float) -> Optional[tuple[int, int]]:
    """How many same-run ratios this / ``base`` fall on the wrong side of ``limit``, of how many."""
    mine, theirs = table.series("this", line), table.series(base, line)
    ratios = [mine[run] / theirs[run] for run in mine if theirs.get(run)]
    if not ratios:
        return None
    wrong = sum(1 for r in ratios if (r < limit if line.higher_is_better else r > limit))
    return wrong, len(ratios)


def chance(wrong: int, total: int) -> float:
    """One-sided sign test: the chance of at least ``wrong`` of ``total`` runs on the wrong
    side if each run were a coin flip (a small value means the miss is not noise)."""
    return sum(math.comb(total, k) for k in range(wrong, total + 1)) / 2**total


def miss_text(counts: Optional[tuple[int, int]]) -> str:
    if counts is None:
        return ""
    wrong, total = counts
    return f" ({wrong} of {total} runs on the wrong side, sign test p = {chance(wrong, total):.2f})"


def versus_old(line: Line, table: Table) -> Optional[bool]:
    ratio = table.ratio(line, "this", OLD_VERSION)
    if ratio is None:
        return None
    return ratio >= 1.0 if line.higher_is_better else ratio <= 1.0


def verdict(ok: Optional[bool]) -> str:
    return "–" if ok is None else ("**pass**" if ok else "**FAIL**")


def write_report(
    path: Optional[Path],
    log: list[dict[str, Any]],
    args: argparse.Namespace,
    runs: int,
    facts: list[tuple[str, str]],
    elapsed: float,
) -> list[str]:
    table = Table(log)

    mode = "QUICK (smaller counts; indicative only)" if args.quick else "full"
    counts: dict[str, set[int]] = {}
    for result in log:
        counts.setdefault(result["measure"], set()).add(int(result["run"]))
    more = sorted((len(found), name) for name, found in counts.items() if len(found) > runs)
    extra = f" ({', '.join(f'{n} for `{name}`' for n, name in more)})" if more else ""
    out = [
        "# Benchmark results",
        "",
        f"Mode: **{mode}**; {runs} runs per figure{extra}, each run a fresh process per client; "
        "figures are medians over the runs, with (min–max) under them; ratios and the "
        "target checks are medians of the same-run comparisons (the clients of one run are "
        "measured back to back, which cancels most drift of a shared machine's load). "
        f"Generated by `python benchmarks/run.py{' --quick' if args.quick else ''}` on "
        f"{datetime.date.today().isoformat()} in {elapsed / 60:.1f} min.",
        "",
        "Clients: **raw** = aiohttp speaking the protocol by hand (the limit of this stack), "
        "**this** = this package, **0.0.18** = `sayna-client==0.0.18` from PyPI, all "
        "driven by the same `benchmarks/driver.py` through the seed API. Server: "
        "`sayna serve --engine fake --fast-tts` in its own process (pinned to CPU 0; "
        "clients to CPU 1).",
        "",
        "| measure | unit | raw | this | 0.0.18 | this / raw | this / 0.0.18 | target "
        "| target met | ≥ 0.0.18 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- | --- |",
    ]
    failures: list[str] = []
    for line in LINES:
        raw, this, old = (table.median(c, line) for c in CLIENTS)
        target, ok = target_check(line, table)
        vs_old = versus_old(line, table)
        if ok is False:
            assert line.target is not None
            kind, amount = line.target
            counts = runs_against(line, table, "raw", amount) if kind == "ratio" else None
            failures.append(f"{line.label}: target {target} missed{miss_text(counts)}")
        if vs_old is False:
            counts = runs_against(line, table, OLD_VERSION, 1.0)
            failures.append(f"{line.label}: worse than {OLD_VERSION}{miss_text(counts)}")
        cells = " | ".join(
            f"{fmt(value, line.digits)}<br><sub>{table.spread(client, line)}</sub>"
            for client, value in zip(CLIENTS, (raw, this, old))
        )
        extra = ""
        if line.target is not None and line.target[0] == "plus":
            difference = table.difference(line, "this", "raw")
            extra = "" if difference is None else f" ({difference:+.0f} {line.unit})"
        out.append(
            f"| {line.label} | {line.unit} | {cells} "
            f"| {ratio_text(table.ratio(line, 'this', 'raw'))}{extra} "
            f"| {ratio_text(table.ratio(line, 'this', OLD_VERSION))} | {target} | {verdict(ok)} "
            f"| {verdict(vs_old)} |"
        )
    out += [
        "",
        "Where the time goes (client process, informative, no targets):",
        "",
        "| measure | unit | raw | this | 0.0.18 | this / raw | this / 0.0.18 |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for line in EXTRA_LINES:
        raw, this, old = (table.median(c, line) for c in CLIENTS)
        out.append(
            f"| {line.label} | {line.unit} | {fmt(raw, line.digits)} | {fmt(this, line.digits)} "
            f"| {fmt(old, line.digits)} | {ratio_text(table.ratio(line, 'this', 'raw'))} "
            f"| {ratio_text(table.ratio(line, 'this', OLD_VERSION))} |"
        )
    params = {name: PARAMS[name][1 if args.quick else 0] for name in PARAMS}
    out += [
        "",
        "## Verdict",
        "",
        *(
            [
                "Each miss says in how many runs the same-run ratio fell on the wrong side, "
                "and the chance of at least that many if every run were a coin flip "
                "(one-sided sign test): a p near 0.5 means the side the median fell on is "
                "noise on this machine; a p under 0.05 means a real miss.",
                "",
            ]
            if failures
            else []
        ),
        *(
            [f"- {failure}" for failure in failures]
            if failures
            else ["- every target met, and at least as good as 0.0.18 on every line"]
        ),
        "",
        "## Machine",
        "",
        *[f"- {name}: {value}" for name, value in facts],
        "",
        "## What each line measures",
        "",
        "- **connect → ready**: wall time from `connect()` (raw: a new `ClientSession` and "
        "`ws_connect`) until the server's `ready` was seen, over "
        f"{params.get('connect', {}).get('count', '?')} sequential connects after "
        f"{params.get('connect', {}).get('warmup', '?')} unmeasured ones (a fresh process "
        "needs a few dozen connects to reach its steady state); 0.0.18's "
        "`connect()` returns before `ready`, so its figure includes waiting for "
        "`register_on_ready`.",
        "- **upload**: frames of 640 bytes through `on_audio_input` (raw: `send_bytes`) back "
        "to back; frames/s until the server's `audio_frames` counter "
        "(`GET /_local/bench/sessions`) confirmed all of them. The server's STT engine "
        "sees every frame (the fake engine tests a chunk for silence in one pass; "
        "`sayna serve` keeps no copy of the audio). The server and the kernel's loopback "
        "path set much of the pace, so single runs spread widely; the client's own cost "
        "per frame is in the second table.",
        "- **TTS receive + dispatch**: the server pushes 640-byte binary frames "
        "(`POST /_local/bench/{stream_id}/burst`) through the session's outbound FIFO as "
        "fast as the socket takes them (frames queued back to back leave in one write, so "
        "the client sets the pace); frames/s from the request to the last "
        "`register_on_tts_audio` callback entry (raw: a function called from "
        "`async for msg in ws`).",
        "- **stt_result burst**: the same with `stt_result` events (JSON text, one "
        "`json.dumps` per event on the server) delivered to `register_on_stt_result`.",
        "- **event latency**: `stt_result` events queued by the server 1 ms apart carry "
        "`sent_ns = time.monotonic_ns()`; latency is the callback's `monotonic_ns()` minus it "
        "(same machine, same clock). It includes the server's outbound queue and writer "
        "hop, identical for every client. The transcript holds the same number, because "
        "0.0.18's models drop unknown fields.",
        "- **RSS per idle session**: VmRSS growth of the client process for "
        f"{params.get('rss', {}).get('sessions', '?')} connected, ready, idle sessions (each "
        "with its own `ClientSession`, as each SDK client owns one; raw likewise), divided by "
        "their number.",
        "- **REST**: `health()` (raw: `GET /` and `response.json()`) through one client, one "
        "at a time and from 50 concurrent tasks.",
        "- **CPU per real-time stream**: 200 sessions each send 640 bytes every 20 ms "
        "(16 kHz mono linear16) on their own paced task; process CPU seconds over a "
        f"{params.get('cpu', {}).get('window_s', '?')} s wall window divided by "
        "200 × window, i.e. the share of one core one stream costs (core-ms per second of "
        "audio). The pacing itself (one timer per frame) is included for every client.",
        "",
        "## What this SDK's guarantees cost",
        "",
        "Measured by profiling and A/B runs against scratch copies of the SDK; details, "
        "causes and suggested fixes in `benchmarks/PROFILE.md`.",
        "",
        "- **Ordering and isolation of callbacks**: every callback, plain or async, is "
        "called by the session's one dispatcher, never on the reader task, in server order "
        "across event types, so a slow callback never holds the socket, the heartbeat or an "
        "`events()` iterator. The reader appends each event to the dispatcher's queue; while "
        "every callback is plain, one event-loop callback (`call_soon`) per batch of up to "
        "256 queued events calls them (no task, future or coroutine), otherwise the "
        "dispatcher's task is woken through a future. Against calling them inline (before "
        "issue #12) the hop costs one event-loop iteration per batch: at 1 ms pacing, 3 loop "
        "iterations per event instead of 2 and about 380 more bytecode instructions (1,310 "
        "against 930, `benchmarks/hop.py`), a few to ~20 µs of latency on an idle client. "
        "Iterators have their own queues.",
        "- **Bounded queues** (`max_queue` events and `max_queue_bytes` of audio, oldest "
        "dropped, `EventsDropped` reported) for the dispatcher and iterators: free while "
        "the consumer keeps up. The `busy loop` lines share the client's core with another "
        "process and count what is discarded; the reader yields every 128 frames, so the "
        "backlog stays in aiohttp's flow-controlled buffer (see `PROFILE.md`). Raw code "
        "and 0.0.18 never discard: they hold the socket instead.",
        "- **Typed events** (pydantic-core `validate_json` per text frame): about the cost of "
        "raw's `json.loads` into a dict, and cheaper than 0.0.18's `json.loads` + "
        "`Model(**dict)`.",
        "- **Argument checks and metrics on `on_audio_input`** (type, size, whole samples, "
        "frame and byte counters): what a frame needs is looked up once per session and "
        "`stt_config`, so a frame costs a few identity checks, the size check and two "
        "counters. They cost nothing net: the frame itself is written by the SDK's own "
        "frame writer (`realtime/wire.py`: the same masked frame as aiohttp's, aiohttp's C "
        "masking, one transport write, aiohttp's back-pressure) instead of aiohttp's "
        "`send_bytes` → `send_frame` (two coroutines and enum arithmetic per frame). "
        "Without I/O a frame takes 893 ns through `on_audio_input` against 1,161 ns through "
        "aiohttp's `send_bytes` alone; in the 200-stream run a frame executes 445 bytecode "
        "instructions (timers and loop included) against raw's 454 and 0.0.18's 526. "
        "Frames sent in the same turn of the event loop (this upload; never a live stream) share "
        "one socket write per 64 KiB or loop turn, written before any later text frame or "
        "Close, so the upload's kernel share nearly vanishes (see `PROFILE.md`).",
        "- **`connect()` returns only after `ready`, bounded by timeouts**: the connecting "
        "task reads the socket itself until `ready` (no hand-off between tasks, as raw "
        "code), the handshake is bounded by the HTTP session's own timer, the ready wait "
        "by one `call_later` timer; the config is encoded from the "
        "models in one pydantic-core call, `ready` is decoded into a typed message and "
        "published, a connect lock, the reader task and the session tracker are set up. "
        "The SDK runs about 5 % more Python bytecode than raw on the connect path and "
        "the same number of C calls; phase timings put it at +30–55 µs per connect "
        "(1.02–1.05x raw), mostly cache misses in the extra code between two waits; fresh "
        "processes, as here, spread from 1.0x to 1.2x between runs of the same code "
        "(see `PROFILE.md`). The SDK leaves no reference cycles, so a finished client is "
        "freed without the cyclic GC, as raw code is.",
        "- **Heartbeat** (dead peer detected within `heartbeat` seconds): two timer "
        "handles armed by the reader after `ready`, one Ping per interval; nothing per "
        "frame and nothing on the connect path (aiohttp's own heartbeat, used before, "
        "cost about 5 % of connect → ready and a callback per loop turn of incoming data).",
        "- **Per-session state** (heartbeat timer, event hub, session tracker and metrics, "
        "the kept `ready` message, timeouts and retry policy): about +5 KiB RSS per idle "
        "session over raw, of which about 2 KiB are the caller's typed `STTConfig` and "
        "`TTSConfig` objects (the benchmark builds them per session).",
        "",
        "Raw numbers: `benchmarks/.out/`.",
        "",
    ]
    _emit(path, "\n".join(out))
    return failures


def write_base_report(
    path: Optional[Path],
    log: list[dict[str, Any]],
    base: str,
    facts: list[tuple[str, str]],
    elapsed: float,
) -> list[str]:
    """The ``--base`` report: this work tree against revision ``base``, line by line."""
    table = Table(log)
    out = [
        f"# A/B: this work tree against `{base}`",
        "",
        "Both measured back to back in every run (the order rotating), each run a fresh "
        "process per client; figures are medians over the runs (min–max under them), the "
        "ratio is the median of the same-run ratios this / base, and the last column "
        "counts the runs in which this was worse than base, with the one-sided sign-test "
        "chance of at least that many if each run were a coin flip (p < 0.05: a real "
        f"difference). Generated by `python benchmarks/run.py --base {base}` on "
        f"{datetime.date.today().isoformat()} in {elapsed / 60:.1f} min.",
        "",
        f"| measure | unit | this | {base} | this / {base} | runs worse (p) |",
        "| --- | --- | ---: | ---: | ---: | --- |",
    ]
    worse: list[str] = []
    for line in (*LINES, *EXTRA_LINES):
        this, theirs = table.median("this", line), table.median(BASE, line)
        if this is None or theirs is None:
            continue
        ratio = table.ratio(line, "this", BASE)
        counts = runs_against(line, table, BASE, 1.0) if not line.total else None
        verdict_text = ""
        if counts is not None:
            wrong, total = counts
            p = chance(wrong, total)
            verdict_text = f"{wrong} of {total} (p = {p:.2f})"
            if p < 0.05:
                worse.append(f"{line.label}: this worse than {base} in {verdict_text}")
        cells = " | ".join(
            f"{fmt(value, line.digits)}<br><sub>{table.spread(client, line)}</sub>"
            for client, value in (("this", this), (BASE, theirs))
        )
        out.append(
            f"| {line.label} | {line.unit} | {cells} | {ratio_text(ratio)} | {verdict_text} |"
        )
    out += [
        "",
        "## Verdict",
        "",
        *([f"- {w}" for w in worse] or [f"- no line significantly worse than {base}"]),
        "",
        "## Machine",
        "",
        *[f"- {name}: {value}" for name, value in facts],
        "",
    ]
    _emit(path, "\n".join(out))
    return worse


def _emit(path: Optional[Path], text: str) -> None:
    """Write the report to ``path`` (``--output``), else print it: the committed
    RESULTS.md is a figure of record, never overwritten by default."""
    if path is None:
        print(text)
    else:
        path.write_text(text, encoding="utf-8")


def _git(*command: str) -> str:
    done = subprocess.run(["git", "-C", str(HERE.parent), *command], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else "?"


def _load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0


# --- main --------------------------------------------------------------------------------------


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller counts")
    parser.add_argument("--runs", type=int, default=None, help="runs per figure (min 3)")
    parser.add_argument("--measures", default=",".join(PARAMS), help="comma-separated subset")
    parser.add_argument("--clients", default=",".join(CLIENTS), help="comma-separated subset")
    parser.add_argument(
        "--output", type=Path, default=None, help="write the report here (default: print it)"
    )
    parser.add_argument(
        "--snapshot",
        action="store_true",
        help="benchmark the last commit (git archive of src/), not the work tree",
    )
    parser.add_argument(
        "--from-json", type=Path, default=None, help="rewrite the report from a saved .out file"
    )
    parser.add_argument(
        "--base",
        default=None,
        metavar="REF",
        help="A/B: compare the work tree (this) with src/ of git revision REF (base)",
    )
    args = parser.parse_args(argv)
    runs = args.runs or (3 if args.quick else 7)
    if runs < 3:
        parser.error("--runs must be at least 3 (figures are medians)")
    measures = [m for m in args.measures.split(",") if m]
    clients = [c for c in args.clients.split(",") if c]
    if args.base is not None:
        clients = ["this", BASE]
        if args.snapshot or args.from_json is not None:
            parser.error("--base compares the work tree with REF: no --snapshot, --from-json")
    for name in measures:
        if name not in PARAMS:
            parser.error(f"unknown measure {name!r}")
    for name in clients:
        if name not in (*CLIENTS, BASE):
            parser.error(f"unknown client {name!r}")
    output: Optional[Path] = args.output  # None: print the report

    pythons = {"raw": sys.executable, "this": sys.executable}
    if args.from_json is not None:
        saved = json.loads(args.from_json.read_text(encoding="utf-8"))
        if isinstance(saved, list):  # files written before the metadata was kept
            saved = {"quick": args.quick, "elapsed": 0.0, "facts": None, "log": saved}
        if OLD_VENV.exists():
            pythons[OLD_VERSION] = str(OLD_VENV / "bin" / "python")
        log = saved["log"]
        args.quick = saved["quick"]
        facts = [tuple(f) for f in saved["facts"]] if saved["facts"] else machine_facts(pythons)
        seen: dict[str, set[int]] = {}
        for result in log:
            seen.setdefault(result["measure"], set()).add(int(result["run"]))
        runs = min(len(found) for found in seen.values())
        write_report(output, log, args, runs, facts, saved["elapsed"])
        print(f"wrote {output or 'the report above'} from {args.from_json}")
        return 0
    if OLD_VERSION in clients:
        pythons[OLD_VERSION] = str(ensure_old_venv())
    snapshot: Optional[tempfile.TemporaryDirectory[str]] = None
    commit = _git("rev-parse", "--short", "HEAD")
    base_tree: Optional[tempfile.TemporaryDirectory[str]] = None
    if args.base is not None:
        base_tree = tempfile.TemporaryDirectory(prefix="sayna-bench-base-")
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", args.base, "src"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", base_tree.name], input=archive.stdout, check=True)
        SOURCE_PATHS[BASE] = str(Path(base_tree.name) / "src")
        SOURCE_PATHS["this"] = str(HERE.parent / "src")
        pythons[BASE] = sys.executable
    if args.snapshot:
        snapshot = tempfile.TemporaryDirectory(prefix="sayna-bench-")
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", "HEAD", "src"],
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", snapshot.name], input=archive.stdout, check=True)
        os.environ["PYTHONPATH"] = str(Path(snapshot.name) / "src")
    elif _git("status", "--porcelain", "src"):
        commit += " + uncommitted changes in src/"
    server_cpu, client_cpu = cpus()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    load_start = _load()
    raw_log: list[dict[str, Any]] = []
    started = time.monotonic()
    server = start_server(port, server_cpu)
    try:
        for run in range(max(runs_of(measure, runs) for measure in measures)):
            order = clients[run % len(clients) :] + clients[: run % len(clients)]
            for measure in measures:
                if run >= runs_of(measure, runs):
                    continue
                params = PARAMS[measure][1 if args.quick else 0]
                for client in order:
                    reset_server(url)
                    hog = start_hog(client_cpu) if measure.endswith("_busy") else None
                    try:
                        result = run_driver(
                            pythons[client], client, measure, url, params, client_cpu
                        )
                    finally:
                        if hog is not None:
                            hog.kill()
                            hog.wait()
                    result.update(run=run, sdk=client)
                    raw_log.append(result)
                    shown = ", ".join(f"{k}={v:,.2f}" for k, v in result["values"].items())
                    print(
                        f"run {run + 1}/{runs_of(measure, runs)} {measure:9} {client:6} {shown}",
                        flush=True,
                    )
    finally:
        stop_server(server)
    elapsed = time.monotonic() - started
    out_dir = HERE / ".out"
    out_dir.mkdir(exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    facts = machine_facts(pythons)
    facts.insert(0, ("commit", commit + (" (snapshot)" if args.snapshot else "")))
    facts.append(("load average (1 min) at start / end", f"{load_start:.2f} / {_load():.2f}"))
    saved = {"quick": args.quick, "elapsed": elapsed, "facts": facts, "log": raw_log}
    (out_dir / f"{'quick' if args.quick else 'full'}-{stamp}.json").write_text(
        json.dumps(saved, indent=1), encoding="utf-8"
    )
    if snapshot is not None:
        snapshot.cleanup()
    if base_tree is not None:
        base_tree.cleanup()
        base_commit = _git("rev-parse", "--short", args.base)
        facts.insert(1, ("base", f"{args.base} = {base_commit}"))
        worse = write_base_report(output, raw_log, args.base, facts, elapsed)
        print(f"wrote {output or 'the report above'} ({elapsed / 60:.1f} min)")
        for line in worse:
            print(f"  {line}")
        return 0
    failures = write_report(output, raw_log, args, runs, facts, elapsed)
    print(f"wrote {output or 'the report above'} ({elapsed / 60:.1f} min)")
    for failure in failures:
        print(f"  {failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
