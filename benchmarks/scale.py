"""Issue #19's scale bars over repeated runs: which client meets them, how often, and the spread.

    python benchmarks/scale.py [--rounds 5] [--sessions 1000] [--seconds 20] [--cpu 1]
                               [--server local|lean] [--server-uvloop]
                               [--variant sdk] [--variant sdk+uvloop]
                               [--variant raw-asyncio-seed] [--floor raw-asyncio-seed]
                               [--output FILE]

Runs ``load.py --speak`` once per variant in each round, every run a fresh process with a
server of its own, the variants' order rotating from round to round so that a drift of the
machine falls on all of them. A variant is a ``--client`` of load.py (``sdk``,
``raw-asyncio-seed``, ...), with ``+uvloop`` to run it on uvloop. The defaults are item 2
of the issue: 1,000 sessions for 20 s, the clients pinned to CPU 1 and the server to
another, against the local server (``sayna serve``).

The report gives, per variant: the client process's CPU and the pacing p99 as the median
over the runs with the lowest and highest beside it (the machine's run-to-run noise), the
runs that met every bar (the counts' PASS: no frame lost, every close clean, no error, no
task left; client CPU under 70 % of a core; pacing p99 under 5 ms), and the median of the
same-round ratios of its CPU to the ``--floor`` variant's (default ``raw-asyncio-seed``
when it is among the variants): a ratio moves far less with the machine than a figure.
Then every run, one line each.

Exits 1 if a run could not be made (load.py ended without writing its figures); a run
whose counts failed is reported, not an error of this tool.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from load import commit, cpu_model
from loadlib import CLIENTS
from reportfile import publish

HERE = Path(__file__).resolve().parent

#: Item 2's bars: client CPU under this many % of a core, pacing p99 under this many ms.
CPU_BAR = 70.0
PACING_BAR_MS = 5.0
UVLOOP = "+uvloop"


class RunFailed(Exception):
    """load.py ended without writing its figures (it could not run)."""


def parse_variant(text: str) -> tuple[str, bool]:
    """``"sdk+uvloop"`` -> ``("sdk", True)``; raises ValueError naming the choices."""
    client, uvloop = (text[: -len(UVLOOP)], True) if text.endswith(UVLOOP) else (text, False)
    if client not in CLIENTS:
        raise ValueError(
            f"unknown variant {text!r}: a load.py --client ({', '.join(CLIENTS)}), "
            f"optionally followed by {UVLOOP!r}"
        )
    return client, uvloop


def load_command(variant: str, args: argparse.Namespace, figures: Path) -> list[str]:
    """The load.py command line of one run of ``variant``."""
    client, uvloop = parse_variant(variant)
    command = [sys.executable, str(HERE / "load.py"), "--speak", "--client", client]
    command += ["--sessions", str(args.sessions), "--seconds", f"{args.seconds:g}"]
    command += ["--server", args.server, "--json", str(figures)]
    if uvloop:
        command.append("--uvloop")
    if args.server_uvloop:
        command.append("--server-uvloop")
    if args.cpu is not None:
        command += ["--cpu", str(args.cpu)]
    return command


def run_once(variant: str, args: argparse.Namespace) -> dict[str, Any]:
    """Run load.py once for ``variant`` and return its figures (with ``variant``)."""
    with tempfile.TemporaryDirectory(prefix="scale-") as scratch:
        figures = Path(scratch) / "figures.json"
        done = subprocess.run(
            load_command(variant, args, figures), capture_output=True, text=True, check=False
        )
        if not figures.exists():
            tail = (done.stdout + done.stderr).strip().splitlines()[-8:]
            raise RunFailed(
                f"load.py for {variant} exited with status {done.returncode} without its "
                "figures; its last lines:\n" + "\n".join(tail)
            )
        result: dict[str, Any] = json.loads(figures.read_text(encoding="utf-8"))
    result["variant"] = variant
    return result


def meets_every_bar(run: dict[str, Any]) -> bool:
    """Item 2 for one run: the counts passed, CPU and pacing p99 under their bars."""
    return bool(
        run["ok"] and run["client_cpu_percent"] < CPU_BAR and run["pacing_p99_ms"] < PACING_BAR_MS
    )


def spread(values: Sequence[float]) -> str:
    """``median (min-max)`` with one decimal."""
    return f"{statistics.median(values):.1f} ({min(values):.1f}-{max(values):.1f})"


def summarize(
    runs: Sequence[dict[str, Any]], variants: Sequence[str], floor: Optional[str]
) -> list[dict[str, Any]]:
    """Per variant (in ``variants``' order): its runs, the medians and spreads, the runs
    that met every bar and, with ``floor``, the same-round CPU ratios to the floor.
    Each run carries its ``round`` and ``variant``."""
    floor_cpu = {r["round"]: r["client_cpu_percent"] for r in runs if r["variant"] == floor}
    rows = []
    for variant in variants:
        mine = [r for r in runs if r["variant"] == variant]
        if not mine:
            continue
        ratios = [
            r["client_cpu_percent"] / floor_cpu[r["round"]]
            for r in mine
            if floor is not None and variant != floor and floor_cpu.get(r["round"])
        ]
        rows.append(
            {
                "variant": variant,
                "runs": len(mine),
                "cpu": [r["client_cpu_percent"] for r in mine],
                "p99": [r["pacing_p99_ms"] for r in mine],
                "met": sum(meets_every_bar(r) for r in mine),
                "counts_failed": sum(not r["ok"] for r in mine),
                "ratios": ratios,
            }
        )
    return rows


def report(
    runs: Sequence[dict[str, Any]],
    variants: Sequence[str],
    floor: Optional[str],
    args: argparse.Namespace,
) -> str:
    """The markdown report of a scale run."""
    command = " ".join(
        ["python benchmarks/scale.py", f"--rounds {args.rounds}", f"--sessions {args.sessions}"]
        + [f"--seconds {args.seconds:g}", f"--server {args.server}"]
        + (["--server-uvloop"] if args.server_uvloop else [])
        + ([f"--cpu {args.cpu}"] if args.cpu is not None else [])
        + [f"--variant {v}" for v in variants]
        + ([f"--floor {floor}"] if floor is not None else [])
    )
    lines = [
        f"`{command}`, {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: "
        f"each variant {args.rounds} times, every run a fresh load.py process with a server "
        "of its own, the order rotating each round. Bars (item 2): the counts pass, client "
        f"CPU under {CPU_BAR:g} % of a core, pacing p99 under {PACING_BAR_MS:g} ms.",
        "",
        "| client | runs | client CPU, % of a core: median (min-max) "
        "| pacing p99, ms: median (min-max) | runs meeting every bar "
        + (f"| CPU / {floor}, same round: median (min-max) " if floor else "")
        + "|",
        "| --- | ---: | ---: | ---: | ---: |" + (" ---: |" if floor else ""),
    ]
    for row in summarize(runs, variants, floor):
        failed = f" ({row['counts_failed']} failed on counts)" if row["counts_failed"] else ""
        ratio = ""
        if floor:
            values = row["ratios"]
            ratio = (
                f" {statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f}) |"
                if values
                else " – |"
            )
        lines.append(
            f"| {row['variant']} | {row['runs']} | {spread(row['cpu'])} | {spread(row['p99'])} "
            f"| {row['met']} of {row['runs']}{failed} |{ratio}"
        )
    lines += [
        "",
        "| round | client | counts | client CPU (system), % | pacing p99 / max, ms "
        "| server CPU, % | every bar |",
        "| ---: | --- | --- | ---: | ---: | ---: | --- |",
    ]
    for run in runs:
        server = run["server_cpu_percent"]
        lines.append(
            f"| {run['round']} | {run['variant']} | {'PASS' if run['ok'] else 'FAIL'} "
            f"| {run['client_cpu_percent']:.1f} ({run['client_system_percent']:.1f}) "
            f"| {run['pacing_p99_ms']:.1f} / {run['pacing_max_ms']:.1f} "
            f"| {'–' if server is None else f'{server:.1f}'} "
            f"| {'yes' if meets_every_bar(run) else 'no'} |"
        )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    lines += [
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}, commit {commit()}; load average at the end {load:.2f}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--cpu", type=int, default=1, help="pin the clients to this CPU")
    parser.add_argument("--server", choices=("local", "lean"), default="local")
    parser.add_argument("--server-uvloop", action="store_true")
    parser.add_argument(
        "--variant",
        action="append",
        default=None,
        help="a load.py --client, optionally +uvloop (repeat; default: sdk, sdk+uvloop, "
        "raw-asyncio-seed)",
    )
    parser.add_argument(
        "--floor",
        default=None,
        help="the variant the others' CPU is divided by, round by round "
        "(default: raw-asyncio-seed when among the variants)",
    )
    parser.add_argument(
        "--output", default=None, help="also append the report to this file (a record)"
    )
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.sessions < 1 or args.seconds <= 0:
        parser.error("--rounds, --sessions and --seconds must be positive")
    variants: list[str] = args.variant or ["sdk", "sdk+uvloop", "raw-asyncio-seed"]
    if len(set(variants)) != len(variants):
        parser.error("each --variant once")
    for variant in variants:
        try:
            parse_variant(variant)
        except ValueError as exc:
            parser.error(str(exc))
    usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if args.cpu is not None and usable is not None and args.cpu not in usable:
        parser.error(f"--cpu {args.cpu}: this process may run on CPUs {sorted(usable)} only")
    if args.server == "lean" and args.server_uvloop:
        parser.error("--server-uvloop runs the local server on uvloop: not with --server lean")
    floor: Optional[str] = args.floor
    if floor is None and "raw-asyncio-seed" in variants:
        floor = "raw-asyncio-seed"
    if floor is not None and floor not in variants:
        parser.error(f"--floor {floor} is not one of the variants ({', '.join(variants)})")
    runs: list[dict[str, Any]] = []
    for index in range(args.rounds):
        shift = index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            try:
                run = run_once(variant, args)
            except RunFailed as exc:
                print(f"scale.py: {exc}", file=sys.stderr)
                return 1
            run["round"] = index + 1
            runs.append(run)
            print(
                f"round {index + 1}, {variant}: client CPU {run['client_cpu_percent']:.1f} %, "
                f"pacing p99 {run['pacing_p99_ms']:.1f} ms, counts "
                f"{'PASS' if run['ok'] else 'FAIL'}",
                flush=True,
            )
    text = report(runs, variants, floor, args)
    publish(text, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
