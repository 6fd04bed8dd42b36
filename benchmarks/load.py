"""Load test: many real-time sessions in one process, zero frames lost, clean closes.

    python benchmarks/load.py [--sessions 200] [--seconds 60] [--url URL] [--output PATH]
                              [--json PATH]
                              [--uvloop] [--cpu N] [--speak]
                              [--pacing shared|per-session] [--turns spread|lockstep]
                              [--client sdk|raw-aiohttp|raw-asyncio|raw-asyncio-rfc
                                        |raw-asyncio-seed]
                              [--gc-freeze]
                              [--gc-refreeze SECONDS]
                              [--server-uvloop] [--server local|lean]

``--uvloop`` runs the clients on uvloop's event loop (``pip install 'sayna-client[uvloop]'``);
``--cpu N`` pins the client process to CPU ``N`` (and a server it starts to another one), so
"one core" means one core. ``--pacing`` and ``--turns`` choose how frames are paced (one
clock task for all sessions, or a task and timer per session) and whether the sessions'
turns are spread over the tone pattern or in lockstep (see ``loadlib.py``). ``--client``
runs the same workload without the SDK, the floors of ``loadraw.py``: aiohttp's public
WebSocket API (``raw-aiohttp``), a bare asyncio protocol writing frames masked in advance
(``raw-asyncio``) or the same protocol masking each frame with a fresh key inside an
``async def on_audio_input``, the least RFC 6455 and the seed API allow (``raw-asyncio-rfc``),
or that with the seed's callbacks, typed results and ``async def speak`` at their least cost
(``raw-asyncio-seed``); all need ``--speak`` and the default pacing. ``--gc-freeze`` calls
``gc.freeze()`` once every session is connected, ``--gc-refreeze S`` again S seconds into
streaming (what the sessions make at their first audio and result). The report counts the
garbage collections made while streaming and the longest pause of each generation, and the
system (kernel) part of each process's CPU. ``--server-uvloop`` runs the server it starts
on uvloop (``sayna serve --loop uvloop``). ``--json PATH`` also writes the run's figures as
JSON (``scale.py`` runs load.py many times and reads them).
``--server lean`` starts ``leanpeer.py`` instead of the local server: a peer that does the
protocol's work at its least cost, so that a run past the local server's capacity (1,000
sessions on a 2-core machine) still measures the client (a diagnostic: see its docstring).

Without ``--url`` it starts ``sayna serve --engine fake --fast-tts`` on a free port as a separate
process (stopped at the end). Every session streams 16 kHz mono linear16 audio in 20 ms
frames in real time; afterwards the server's per-session counters must equal what each
client sent, the server must have seen every session close normally, and no client task
may be left. Prints a summary and the report (``--output benchmarks/LOAD.md`` writes it:
the committed LOAD*.md are figures of record, never overwritten by default) and exits 1 on
failure.
The logic lives in ``loadlib.py`` (shared with ``tests/test_load_short.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.util
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Optional

import aiohttp
import pydantic
from loadlib import CLIENTS, PACINGS, TURNS, LoadReport, run_load

import sayna_client

HERE = Path(__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(
    port: int, cpu: Optional[int] = None, uvloop: bool = False, kind: str = "local"
) -> subprocess.Popen[bytes]:
    if kind == "lean":
        command = [sys.executable, str(HERE / "leanpeer.py"), "--port", str(port)]
    else:
        command = [sys.executable, "-m", "sayna_client", "serve", "--engine", "fake"]
        command += ["--fast-tts", "--loop", "uvloop" if uvloop else "asyncio"]
        command += ["--port", str(port), "--log-level", "WARNING"]
    pin = None if cpu is None else (lambda: os.sched_setaffinity(0, {cpu}))
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, preexec_fn=pin)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with status {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1):
                return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    raise RuntimeError("the server did not start within 30 s")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def commit() -> str:
    """The checked-out commit, marked when ``src/`` or ``benchmarks/`` (the floors, the
    load itself) has uncommitted changes."""

    def git(*command: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(HERE.parent), *command], capture_output=True, text=True
        )
        return done.stdout.strip() if done.returncode == 0 else ""

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "src", "benchmarks")
    return head + (" + uncommitted changes in src/ or benchmarks/" if changed else "")


def markdown(report: LoadReport, args: argparse.Namespace, separate_server: bool) -> str:
    lines = [
        "# Load test",
        "",
        f"`python benchmarks/load.py --sessions {args.sessions} --seconds {args.seconds:g}"
        + (" --uvloop" if args.uvloop else "")
        + (f" --cpu {args.cpu}" if args.cpu is not None else "")
        + (" --speak" if args.speak else "")
        + (f" --pacing {args.pacing}" if args.pacing != "shared" else "")
        + (f" --turns {args.turns}" if args.turns != "spread" else "")
        + (f" --client {args.client}" if args.client != "sdk" else "")
        + (" --gc-freeze" if args.gc_freeze else "")
        + (f" --gc-refreeze {args.gc_refreeze:g}" if args.gc_refreeze is not None else "")
        + (" --server-uvloop" if args.server_uvloop else "")
        + (" --server lean" if args.server == "lean" else "")
        + f"` on {datetime.date.today().isoformat()}: {args.sessions} "
        + ("`SaynaClient`" if args.client == "sdk" else f"`{args.client}` (no SDK, `loadraw.py`)")
        + " sessions "
        "in one process stream real-time 16 kHz mono linear16 audio in 20 ms frames "
        "(300 ms tone / 300 ms silence"
        + (
            ", every session starting at a random point of it"
            if args.turns == "spread"
            else ", all sessions in lockstep"
        )
        + "; paced by "
        + (
            "one clock task for all sessions (one tick per 50 sessions, at most 20 per 20 ms)"
            if args.pacing == "shared"
            else "one task and timer per session"
        )
        + ")"
        + (", answer every speech-final with `speak()`, take the TTS audio," if args.speak else "")
        + " to "
        + (
            (
                "`leanpeer.py` (the protocol's work at its least cost, not the local server)"
                if args.server == "lean"
                else "`sayna serve --engine fake --fast-tts`"
            )
            + " in a separate process"
            + (" on uvloop" if args.server_uvloop else "")
            if separate_server
            else f"the server at {args.url}"
        )
        + "; then every session is closed with `abort()` (the Close handshake at once, "
        "as a relay hangs up) and checked against the server's own "
        "per-session counters (`GET /_local/bench/sessions`).",
        "",
        "| | |",
        "| --- | --- |",
        *[f"| {name} | {value} |" for name, value in report.summary()],
        "",
        "Pass criteria (counts only): every frame the clients sent was counted by the "
        "server, frames and bytes equal per session, every session closed with 1000 as "
        "seen by the server, no session error, no SDK or aiohttp client task left and no "
        "client still connected after `disconnect()`. Lateness is how long after its "
        "20 ms slot a frame was handed to `on_audio_input` (reported, not judged; with one "
        "clock for all sessions, read at the start and end of each tick and spread over "
        "the tick's frames).",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}, pydantic "
        f"{pydantic.VERSION}, sayna-client {sayna_client.__version__} (commit {commit()}); "
        f"load average at the end {os.getloadavg()[0]:.2f}.",
        "",
    ]
    if report.errors:
        lines += ["## Session errors", "", *[f"- {e}" for e in report.errors[:50]], ""]
    if report.leftover_tasks:
        lines += ["## Leftover tasks", "", *[f"- `{t}`" for t in report.leftover_tasks[:50]]]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--url", default=None, help="use this server instead of starting one")
    parser.add_argument("--api-key", default=None)
    parser.add_argument(
        "--output", type=Path, default=None, help="write the report here (default: print it)"
    )
    parser.add_argument(
        "--json",
        type=Path,
        default=None,
        help="also write the run's figures here as JSON (what scale.py reads)",
    )
    parser.add_argument("--uvloop", action="store_true", help="run the clients on uvloop")
    parser.add_argument("--cpu", type=int, default=None, help="pin the clients to this CPU")
    parser.add_argument(
        "--speak",
        action="store_true",
        help="answer every speech-final with speak() and take the TTS audio (TTS down too)",
    )
    parser.add_argument(
        "--pacing",
        choices=PACINGS,
        default="shared",
        help="one clock task for all sessions (default) or a task and timer per session",
    )
    parser.add_argument(
        "--turns",
        choices=TURNS,
        default="spread",
        help="sessions start at random points of the tone pattern (default) or in lockstep",
    )
    parser.add_argument(
        "--client",
        choices=CLIENTS,
        default="sdk",
        help="SaynaClient sessions (default) or a floor without the SDK (loadraw.py)",
    )
    parser.add_argument(
        "--server-uvloop",
        action="store_true",
        help="run the server this starts on uvloop",
    )
    parser.add_argument(
        "--server",
        choices=("local", "lean"),
        default="local",
        help="the peer this starts: sayna serve (default) or leanpeer.py (a diagnostic)",
    )
    parser.add_argument(
        "--gc-freeze",
        action="store_true",
        help="gc.freeze() once every session is connected",
    )
    parser.add_argument(
        "--gc-refreeze",
        type=float,
        default=None,
        metavar="SECONDS",
        help="gc.freeze() again this many seconds into streaming (no collection)",
    )
    args = parser.parse_args(argv)
    if args.sessions < 1 or args.seconds <= 0:
        parser.error("--sessions and --seconds must be positive")
    if args.client != "sdk" and (not args.speak or args.pacing != "shared" or args.api_key):
        parser.error("--client raw-* needs --speak and the default --pacing, without --api-key")
    runner = asyncio.run
    if args.server == "lean" and (args.server_uvloop or args.url or not args.speak):
        parser.error("--server lean needs --speak, and neither --server-uvloop nor --url")
    if args.server_uvloop and importlib.util.find_spec("uvloop") is None:
        parser.error("--server-uvloop needs uvloop: pip install 'sayna-client[uvloop]'")
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
    server: Optional[subprocess.Popen[bytes]] = None
    url = args.url
    if url is None:
        port = free_port()
        server = start_server(port, server_cpu, uvloop=args.server_uvloop, kind=args.server)
        url = f"http://127.0.0.1:{port}"
    try:
        print(f"{args.sessions} sessions × {args.seconds:g} s against {url} ...", flush=True)
        report = runner(
            run_load(
                url,
                args.sessions,
                args.seconds,
                api_key=args.api_key,
                server_pid=server.pid if server is not None else None,
                speak=args.speak,
                pacing=args.pacing,
                turns=args.turns,
                client=args.client,
                gc_freeze=args.gc_freeze,
                gc_refreeze=args.gc_refreeze,
            )
        )
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    width = max(len(name) for name, _ in report.summary())
    for name, value in report.summary():
        print(f"{name:<{width}}  {value}")
    for error in report.errors[:10]:
        print(f"  error: {error}")
    for task in report.leftover_tasks[:10]:
        print(f"  leftover task: {task}")
    if args.json is not None:
        figures = report.figures()
        figures.update(uvloop=args.uvloop, server=args.server, server_uvloop=args.server_uvloop)
        args.json.write_text(json.dumps(figures), encoding="utf-8")
    text = markdown(report, args, server is not None)
    if args.output is None:  # the committed LOAD*.md are figures of record: never by default
        print(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
