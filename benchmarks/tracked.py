"""Objects the cycle collector tracks per SDK session, and what they cost a full collection.

    python benchmarks/tracked.py [--base REF] [--sessions 200] [--collect-sessions 1000]
                                 [--collect-runs 9] [--rounds 3] [--output FILE]

Starts ``sayna serve --engine fake --fast-tts`` in another process (none of the server's
objects are counted), then, in a fresh client process per tree (this work tree's
``src/`` and, with ``--base``, that revision's):

* **census** (``--sessions`` clients, as ``load.py --speak`` makes them: an ``async``
  result callback and a plain audio callback): after one client's whole life (the
  modules imported on first use are loaded), ``gc.collect()`` and the objects it
  tracks before the clients are made, once they are all connected and idle, and once
  each has done one ``speak("okay", wait=True)``; per session, in all and by type (the
  two callbacks each session registers, and their closure, are three of them).
  Counts: a shared machine moves them only through which events share a wake-up (a
  few hundredths per session).
* **full collection** (``--collect-sessions`` clients, connected and each after one
  ``speak(wait=True)``; 0 skips it): the objects the process tracks then, and the wall
  time of ``gc.collect()``, ``--collect-runs`` times in a row (the median is the
  child's figure). The trees' children run in turn, ``--rounds`` times (A B A B ...),
  so that a change of the machine's load falls on both; the report gives each tree's
  median over all its collections, and the lowest and highest of its children's
  medians (the spread).

The time of a full collection grows with the objects it walks: at 1,000 sessions every
live frame of every session is late by that much while it runs (issue #19).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from abrun import local_server, run_child, source_trees
from reportfile import publish

HERE = Path(__file__).resolve().parent

#: Types listed in the report's census table: those with at least this many objects
#: per session in some tree and state.
SHOWN = 0.5


def _census() -> Counter[str]:
    gc.collect()
    return Counter(type(o).__qualname__ for o in gc.get_objects())


async def _clients(url: str, count: int) -> list[Any]:
    """``count`` connected clients with ``load.py --speak``'s kind of callbacks."""
    from sayna_client import SaynaClient, STTConfig, TTSConfig

    stt = STTConfig(provider="deepgram", model="nova-2")
    tts = TTSConfig(provider="cartesia", voice_id="example-voice")
    clients = []
    for _ in range(count):
        client = SaynaClient(url, stt, tts)

        async def on_stt_result(_result: Any) -> None:
            return None

        def on_tts_audio(_data: bytes) -> None:
            return None

        client.register_on_stt_result(on_stt_result)
        client.register_on_tts_audio(on_tts_audio)
        await client.connect()
        clients.append(client)
    return clients


async def _speak_all(clients: list[Any]) -> None:
    """One ``speak("okay", wait=True)`` per client, 50 at a time."""
    for start in range(0, len(clients), 50):
        batch = clients[start : start + 50]
        await asyncio.gather(*(client.speak("okay", wait=True) for client in batch))


async def _warm_up(url: str) -> None:
    """One client's whole life first: the modules imported on first use, the shared
    plans and caches are then counted in no session."""
    (client,) = await _clients(url, 1)
    await _speak_all([client])
    await client.disconnect()


async def _census_child(url: str, sessions: int) -> dict[str, Any]:
    await _warm_up(url)
    base = _census()
    clients = await _clients(url, sessions)
    idle = _census()
    idle.subtract(base)
    await _speak_all(clients)
    await asyncio.sleep(0.05)  # the last events' loop callbacks have run
    spoke = _census()
    spoke.subtract(base)
    for client in clients:
        await client.disconnect()
    return {
        "idle": {k: v / sessions for k, v in idle.items() if v},
        "spoke": {k: v / sessions for k, v in spoke.items() if v},
    }


async def _collect_child(url: str, sessions: int, runs: int) -> dict[str, Any]:
    await _warm_up(url)
    clients = await _clients(url, sessions)
    await _speak_all(clients)
    await asyncio.sleep(0.05)
    gc.collect()
    tracked = len(gc.get_objects())
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        gc.collect()
        times.append((time.perf_counter() - started) * 1000)
    for client in clients:
        await client.disconnect()
    return {"tracked": tracked, "ms": times}


def _child(kind: str, url: str, sessions: int, runs: int) -> dict[str, Any]:
    if kind == "census":
        return asyncio.run(_census_child(url, sessions))
    return asyncio.run(_collect_child(url, sessions, runs))


def _census_report(census: dict[str, dict[str, Any]]) -> list[str]:
    names = list(census)
    lines = [
        "| per session | " + " | ".join(f"{n}: idle | {n}: after a speak" for n in names) + " |",
        "| --- |" + " ---: | ---: |" * len(names),
    ]
    cells = []
    for name in names:
        cells += [sum(census[name]["idle"].values()), sum(census[name]["spoke"].values())]
    lines.append("| **all tracked objects** | " + " | ".join(f"**{c:.1f}**" for c in cells) + " |")
    kinds: set[str] = set()
    for run in census.values():
        for state in ("idle", "spoke"):
            kinds.update(k for k, v in run[state].items() if abs(v) >= SHOWN)
    states = ("idle", "spoke")
    order = sorted(
        kinds, key=lambda k: -max(census[n][s].get(k, 0.0) for n in names for s in states)
    )
    for kind in order:
        values = []
        for name in names:
            values += [census[name]["idle"].get(kind, 0.0), census[name]["spoke"].get(kind, 0.0)]
        lines.append(f"| {kind} | " + " | ".join(f"{v:.2f}" for v in values) + " |")
    return lines


def _collect_report(collect: dict[str, list[dict[str, Any]]], sessions: int) -> list[str]:
    lines = [
        f"| {sessions:,} sessions (after a speak each) | objects tracked in the process | "
        "full collection, ms: median | children's medians, lowest-highest | collections |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, children in collect.items():
        every = [ms for child in children for ms in child["ms"]]
        medians = [statistics.median(child["ms"]) for child in children]
        tracked = statistics.median(child["tracked"] for child in children)
        lines.append(
            f"| {name} | {tracked:,.0f} | {statistics.median(every):.1f} | "
            f"{min(medians):.1f}-{max(medians):.1f} | {len(every)} |"
        )
    return lines


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="git revision to compare with")
    parser.add_argument("--sessions", type=int, default=200, help="0: no census")
    parser.add_argument("--collect-sessions", type=int, default=0, help="0: no timing")
    parser.add_argument("--collect-runs", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", help="append the report to this file")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        kind, url, sessions, runs = args.child
        print(json.dumps(_child(kind, url, int(sessions), int(runs))), flush=True)
        return 0
    if args.sessions < 0 or args.collect_sessions < 0 or args.collect_runs < 1 or args.rounds < 1:
        parser.error("--sessions and --collect-sessions >= 0, --collect-runs and --rounds >= 1")
    lines = [
        f"`python benchmarks/tracked.py {' '.join(sys.argv[1:])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, Python "
        f"{sys.version.split()[0]} (objects the cycle collector tracks; machine shared):",
        "",
    ]
    with source_trees(args.base) as sources, local_server() as url:
        if args.sessions:
            census = {
                name: run_child(__file__, ("census", url, str(args.sessions), "0"), src)
                for name, src in sources.items()
            }
            lines += [*_census_report(census), ""]
        if args.collect_sessions:
            collect: dict[str, list[dict[str, Any]]] = {name: [] for name in sources}
            child = ("collect", url, str(args.collect_sessions), str(args.collect_runs))
            for _ in range(args.rounds):
                for name, src in sources.items():
                    collect[name].append(run_child(__file__, child, src, timeout=1800))
            lines += [*_collect_report(collect, args.collect_sessions), ""]
    publish("\n".join(lines), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
