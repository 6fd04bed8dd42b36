"""Does ``sayna demo`` hear what it said on a loaded machine? Misses out of N runs, A/B.

    python benchmarks/demo_load.py [--runs 10] [--hogs 2] [--speed 0] [--base REF]
                                   [--output FILE]

Each run is a fresh ``python -m sayna_client.cli demo`` process (the local engine: Piper
speaks the demo's sentence, Whisper hears it back) while ``--hogs`` processes spin
``while 1: pass`` (at nice 0, like other test suites; the engine's worker runs at nice 10).
A run is a miss when it printed ``(nothing heard)``, lost the key word "coffee", or a word
error rate above 10 % (the bar of ``tests/client/test_demo.py``). With ``--base REF``,
runs alternate between ``src/`` of that git revision and this work tree's (A B A B ...,
the same load for both), so the A/B is of one run. Counts, not timings, are the result;
the seconds are printed for the record (the machine is shared).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Optional

from reportfile import publish

HERE = Path(__file__).resolve().parent
TREE = HERE.parent / "src"
#: Generous: a loaded 2-core machine took up to ~3 minutes a run.
RUN_TIMEOUT_S = 900


def base_tree(ref: str, into: Path) -> Path:
    """``src/`` of git revision ``ref``, extracted under ``into`` (git archive | tar)."""
    archive = subprocess.run(
        ["git", "-C", str(HERE.parent), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


def one_run(src: Path, speed: str, out_dir: Path) -> dict[str, object]:
    """One ``sayna demo`` with ``src`` first on the path: what it heard, and whether that
    is a miss."""
    env = dict(os.environ, PYTHONPATH=str(src))
    started = datetime.datetime.now()
    command = [sys.executable, "-m", "sayna_client.cli", "demo", "--speed", speed]
    proc = subprocess.run(
        [*command, "--output-dir", str(out_dir)],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
    )
    seconds = (datetime.datetime.now() - started).total_seconds()
    heard = re.search(r"heard '([^']*)'", proc.stdout)
    rate = re.search(r"word error rate: (\d+)%", proc.stdout)
    text = heard.group(1) if heard else None
    miss = (
        proc.returncode != 0
        or text is None
        or "coffee" not in text.lower()
        or rate is None
        or int(rate.group(1)) > 10
    )
    return {"seconds": seconds, "heard": text, "miss": miss, "status": proc.returncode}


def main(argv: Optional[list[str]] = None) -> int:
    """Run the A/B and publish the table; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per tree (default 10)")
    parser.add_argument("--hogs", type=int, default=2, help="busy processes (default 2)")
    parser.add_argument("--speed", default="0", help="the demo's --speed (default 0)")
    parser.add_argument("--base", default=None, help="git revision to compare with")
    parser.add_argument("--output", default=None, help="append the report to this file")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="demo-load-") as scratch:
        trees = {"this tree": TREE}
        if args.base:
            trees = {f"base {args.base}": base_tree(args.base, Path(scratch)), **trees}
        hogs = [subprocess.Popen([sys.executable, "-c", "while 1: pass"]) for _ in range(args.hogs)]
        results: dict[str, list[dict[str, object]]] = {name: [] for name in trees}
        try:
            for _ in range(args.runs):
                for name, src in trees.items():
                    row = one_run(src, args.speed, Path(scratch) / "out")
                    results[name].append(row)
                    print(f"{name}: {row}", file=sys.stderr, flush=True)
        finally:
            for hog in hogs:
                hog.kill()
                hog.wait()
    lines = [
        f"## sayna demo --speed {args.speed}, {args.hogs} busy processes on "
        f"{os.cpu_count()} CPUs, {datetime.date.today()} (shared machine)",
        "",
        "| tree | misses | runs | seconds per run, median (min-max) | heard (misses) |",
        "|---|---|---|---|---|",
    ]
    for name, rows in results.items():
        seconds = [float(str(row["seconds"])) for row in rows]
        missed = sorted({str(row["heard"] or "(nothing heard)") for row in rows if row["miss"]})
        lines.append(
            f"| {name} | {sum(bool(row['miss']) for row in rows)} | {len(rows)} | "
            f"{statistics.median(seconds):.0f} ({min(seconds):.0f}-{max(seconds):.0f}) | "
            f"{', '.join(missed) or '-'} |"
        )
    publish("\n".join(lines), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
