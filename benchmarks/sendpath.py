"""CPU per live audio frame sent: ``await client.on_audio_input(frame)`` over many sessions.

    python benchmarks/sendpath.py [--sessions 200] [--rounds 300] [--pairs 5] [--split]
                                  [--base REF]... [--cpu N] [--output FILE]

Starts ``sayna serve --engine fake`` in a subprocess (as ``load.py`` does) and, in a fresh
process per run, connects ``--sessions`` clients to it and sends ``--rounds`` rounds of one
640-byte frame per session. Rounds are 2 ms apart (at least 1 ms, and turns of the event
loop, between two frames of a session, as in a live call): no frame joins a batch and
each is its own ``send()``. Measured, per frame:

* **sdk**: ``time.process_time()`` (user + kernel CPU of the process) around each round of
  ``await client.on_audio_input(frame)`` calls only, divided by the frames of the round;
* **floor**: the same around a round of ``transport.write(frame)`` of a frame masked in
  advance, on the same sockets (what a frame costs without the SDK: the system call and
  asyncio's ``write``), interleaved with the sdk rounds;
* **sdk - floor**: the SDK's own part.

``--split`` also times, interleaved in the same rounds on the same sockets, the pieces
between the floor and the SDK: **fresh** (``transport.write`` of a fresh ``bytearray`` of
the masked frame: the allocation and copy a frame needs), **coro** (a coroutine around
``transport.write`` of the masked frame, awaited: what an ``async def`` adds), **rfc** (an
awaited coroutine writing a fresh frame masked with a fresh key, ``loadraw.rfc_frame``: the
least RFC 6455 and the seed's ``await client.on_audio_input(frame)`` let any client do per
frame, the floor of ``load.py --client raw-asyncio-rfc``) and **lane** (the frame writer's
``write(frame)`` called directly: the SDK's framing and masking, without
``on_audio_input``), each reported as its difference from the floor, and **sdk - rfc**: the
SDK's own work per frame above that least.

``--base REF`` runs ``src/`` of that git revision in the same way (``git archive`` into a
temporary directory, ``PYTHONPATH``; or REF is a directory holding ``sayna_client``),
alternately with this work tree's (A B A B ..., which goes first alternating, a fresh
process each time, ``--pairs`` of each), and reports medians with the spread (min-max)
and the median of the per-pair ratios. The machine may be shared: the figures are CPU
time, not wall time, but caches and frequency still vary with the neighbours' load,
so compare only figures of the same run. ``--output`` appends the report to a file.
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
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, Callable, Optional

from loadraw import rfc_frame
from reportfile import publish

HERE = Path(__file__).resolve().parent
FRAME = 640  # 20 ms of 16 kHz mono linear16
GAP = 0.002  # seconds between rounds
WARMUP = 20  # rounds not measured

# --- one run (child process) ------------------------------------------------------------------


async def _write(transport: Any, data: bytes) -> None:
    transport.write(data)


async def _write_rfc(transport: Any, payload: bytes) -> None:
    transport.write(rfc_frame(payload))


async def _measure(url: str, sessions: int, rounds: int, split: bool) -> dict[str, float]:
    from sayna_client import SaynaClient, STTConfig, TTSConfig
    from sayna_client.realtime.wire import transport_of

    clients = [
        SaynaClient(
            url,
            STTConfig(provider="deepgram", sample_rate=16000),
            TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
            stream_id=f"sendpath-{os.getpid()}-{index}",
        )
        for index in range(sessions)
    ]
    slots = asyncio.Semaphore(50)

    async def connect(client: Any) -> None:
        async with slots:
            await client.connect()

    await asyncio.gather(*(connect(c) for c in clients))
    # A masked binary frame of FRAME zero bytes (key 0x01020304), for the floor.
    key = bytes((1, 2, 3, 4))
    masked = bytes(key[i % 4] for i in range(FRAME))
    prebuilt = b"\x82\xfe" + FRAME.to_bytes(2, "big") + key + masked
    # (Trees before session 11 keep aiohttp's WebSocket and have no _transport().)
    conns = [client._voice._conn for client in clients]
    transports = [
        conn._transport() if hasattr(conn, "_transport") else transport_of(conn._ws)
        for conn in conns
    ]
    sends = [client.on_audio_input for client in clients]
    frame = bytes(FRAME)

    async def sdk() -> None:
        for send in sends:
            await send(frame)

    async def floor() -> None:
        for transport in transports:
            transport.write(prebuilt)

    async def fresh() -> None:
        for transport in transports:
            transport.write(bytearray(prebuilt))

    async def coro() -> None:
        for transport in transports:
            await _write(transport, prebuilt)

    async def rfc() -> None:
        for transport in transports:
            await _write_rfc(transport, frame)

    phases: dict[str, Callable[[], Coroutine[Any, Any, None]]] = {"sdk": sdk, "floor": floor}
    if split:
        # The lanes exist once each session sent a frame: looked up after the warm-up.
        lanes: list[Any] = []

        async def lane() -> None:
            for write in lanes:
                write(frame)

        phases.update(fresh=fresh, coro=coro, rfc=rfc, lane=lane)
    clock = time.process_time
    spent = dict.fromkeys(phases, 0.0)
    for index in range(WARMUP + rounds):
        if split and index == WARMUP:
            lanes.extend(client._voice.audio_in.lane.write for client in clients)
        for name, phase in phases.items():
            started = clock()
            await phase()
            elapsed = clock() - started
            if index >= WARMUP:
                spent[name] += elapsed
            await asyncio.sleep(GAP)
    counted = [client.metrics.audio_frames_sent for client in clients]
    await asyncio.gather(*(client.disconnect() for client in clients))
    if counted != [WARMUP + rounds] * sessions:
        raise RuntimeError(f"frames counted per session: {sorted(set(counted))}")
    frames = sessions * rounds
    return {f"{name}_us": value / frames * 1e6 for name, value in spent.items()}


def child(url: str, sessions: int, rounds: int, split: bool) -> dict[str, float]:
    return asyncio.run(_measure(url, sessions, rounds, split))


# --- the A/B (parent process) ------------------------------------------------------------------


def _run_child(src: str, url: str, args: argparse.Namespace) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=src)
    command = [sys.executable, __file__, "--child", url]
    command += ["--sessions", str(args.sessions), "--rounds", str(args.rounds)]
    if args.split:
        command.append("--split")
    pin = None if args.cpu is None else (lambda: os.sched_setaffinity(0, {args.cpu}))
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, cwd=HERE, timeout=900, preexec_fn=pin
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f}-{max(values):.2f})"


def _report(runs: dict[str, list[dict[str, float]]], args: argparse.Namespace) -> str:
    names = list(runs)
    load = os.getloadavg()
    lines = [
        f"`python benchmarks/sendpath.py {' '.join(sys.argv[1:])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
        f"{args.sessions} sessions x {args.rounds} live frames per run, {args.pairs} runs "
        f"each, alternating (load average at the end {load[0]:.1f}, shared machine): "
        "CPU µs per frame, median (min-max).",
        "",
        "| per frame | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for key, label in (("sdk_us", "on_audio_input"), ("floor_us", "floor (transport.write)")):
        cells = " | ".join(_spread([r[key] for r in runs[n]]) for n in names)
        lines.append(f"| {label} | {cells} |")
    own = {n: [r["sdk_us"] - r["floor_us"] for r in runs[n]] for n in names}
    lines.append("| sdk - floor | " + " | ".join(_spread(own[n]) for n in names) + " |")
    for piece in ("fresh", "coro", "rfc", "lane"):
        if all(f"{piece}_us" in r for n in names for r in runs[n]):
            cells = " | ".join(
                _spread([r[f"{piece}_us"] - r["floor_us"] for r in runs[n]]) for n in names
            )
            lines.append(f"| {piece} - floor | {cells} |")
    if all("rfc_us" in r for n in names for r in runs[n]):
        # What the SDK adds above the least a compliant client does per frame.
        cells = " | ".join(_spread([r["sdk_us"] - r["rfc_us"] for r in runs[n]]) for n in names)
        lines.append(f"| sdk - rfc | {cells} |")
    first = names[0]
    for other in names[1:]:
        for key, label in (("sdk_us", "on_audio_input"), (None, "sdk - floor")):
            if key is None:
                ratios = [a / b for a, b in zip(own[first], own[other]) if b > 0]
            else:
                ratios = [a[key] / b[key] for a, b in zip(runs[first], runs[other])]
            lines.append(
                f"\n{label}, {first} / {other} per pair: median {statistics.median(ratios):.2f}x "
                f"({min(ratios):.2f}-{max(ratios):.2f})"
            )
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--pairs", type=int, default=5, help="runs of each tree")
    parser.add_argument("--base", action="append", default=[], help="git revision (repeatable)")
    parser.add_argument("--cpu", type=int, help="pin the client runs to this CPU")
    parser.add_argument("--output", help="append the report to this file")
    parser.add_argument("--split", action="store_true", help="also time the pieces")
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.sessions, args.rounds, args.split)), flush=True)
        return 0
    sys.path.insert(0, str(HERE))
    from load import free_port, start_server

    sources = {"this": str(HERE.parent / "src")}
    cleanup: list[Callable[[], None]] = []
    for base in args.base:
        if (Path(base) / "sayna_client").is_dir():  # a src/ directory
            sources[base] = base
            continue
        tree = tempfile.TemporaryDirectory(prefix="sendpath-base-")
        cleanup.append(tree.cleanup)
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", base, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tree.name], input=archive.stdout, check=True)
        sources[base] = str(Path(tree.name) / "src")
    port = free_port()
    server_cpu = None if args.cpu is None else 1 - args.cpu % 2
    server = start_server(port, server_cpu)
    url = f"http://127.0.0.1:{port}"
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in sources}
    try:
        for pair in range(args.pairs):
            order = list(sources.items())
            if pair % 2:
                order.reverse()  # which tree runs first alternates
            for name, src in order:
                runs[name].append(_run_child(src, url, args))
                print(f"pair {pair + 1} {name}: {runs[name][-1]}", file=sys.stderr)
    finally:
        server.terminate()
        server.wait(10)
        for clean in cleanup:
            clean()
    report = _report(runs, args)
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
