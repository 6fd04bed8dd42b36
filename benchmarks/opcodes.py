"""The SDK's own work per event on the speak, result and audio paths, in bytecode instructions.

    python benchmarks/opcodes.py [--base REF]... [--top 12] [--gap-ms 2] [--output FILE]

Counts, without timing (so a shared, noisy machine gives nearly the same figures: events
that happen to arrive together share a wake-up, about 2 % either way), the Python
bytecode instructions the SDK's client code executes (``sys.settrace`` with opcode events;
``sayna_client`` outside ``sayna_client/server``, so aiohttp, asyncio and the in-process
local server are left out) for the events of ``load.py --speak``: a session with an
``async`` result callback and a plain audio callback, against ``LocalServer`` with TTS
faster than real time:

* **speak cycle**: ``await client.speak("okay")``, then its TTS frames (9) and its
  ``tts_playback_complete``, until the handle is done;
* **stt_result**: one interim result pushed by the server (``/_local/bench`` burst, 2 ms
  apart: each handled on its own), up to the callback's return; ``--gap-ms`` sets the
  gap (traced code is slow: on a loaded machine results 2 ms apart arrive several to a
  read and share the wake-ups, which lowers the figure by up to a fifth; 20 ms keeps
  each on its own);
* **TTS frame**: one audio frame pushed the same way (no speech outstanding), up to the
  callback;
* **turn**: the end of a user turn pushed by the server (a final ``stt_result`` that is
  also the speech-final, ``/_local/bench`` kind ``turn``), answered by the result
  callback with ``await client.speak("okay")`` as ``load.py --speak`` does, up to the
  reply's ``tts_playback_complete``: the speak cycle plus the turn's own bookkeeping (the
  turn, its metrics record, the reply's first audio timed against it);
* **audio frame sent**: ``await send(frame)`` of one 20 ms frame, ``send`` being
  ``client.on_audio_input`` kept from before the client connected (as a device callback
  or ``load.py``'s clock keeps it), the frames 5 ms apart (as a live stream: each written
  on its own).

Each figure runs in a fresh process, for this work tree's ``src/`` and for each ``--base``
(``src/`` of that git revision), so the A/B is of the same run. Instructions are not time
(C calls such as pydantic's validation or a future's wake-up count as one), but a change
that removes some removes work: use this to show a change helps, ``load.py`` for CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Optional

from reportfile import publish

HERE = Path(__file__).resolve().parent

SPEAK_CYCLES = 50
#: Milliseconds between the pushed results and frames (``--gap-ms``).
GAP_MS = float(os.environ.get("OPCODES_GAP_MS", "2"))
RESULTS = 200
FRAMES = 450
SENT_FRAMES = 200
TURNS = 50
EVENTS = ("speak cycle", "turn", "stt_result", "TTS frame", "audio frame sent")

# --- one run (child process) ------------------------------------------------------------------


class Tracer:
    """Counts the bytecode instructions of the SDK's client code while active."""

    def __init__(self) -> None:
        self.counts: Counter[Any] = Counter()

    def _trace(self, frame: Any, event: str, arg: Any) -> Any:
        if event == "opcode":
            self.counts[frame.f_code] += 1
        elif event == "call":
            name = frame.f_code.co_filename
            if "/sayna_client/" not in name or "/sayna_client/server/" in name:
                return None  # not ours: not traced (its callees are looked at anew)
            caller = frame.f_back
            if caller is not None and "/sayna_client/server/" in caller.f_code.co_filename:
                return None  # shared code the server calls (protocol/ helpers)
            frame.f_trace_opcodes = True
        return self._trace

    def start(self) -> None:
        sys.settrace(self._trace)

    def stop(self) -> None:
        sys.settrace(None)

    def by_function(self, per: int) -> dict[str, float]:
        out: Counter[str] = Counter()
        for code, count in self.counts.items():
            out[f"{code.co_filename.split('/sayna_client/')[-1]}:{code.co_name}"] += count
        return {name: count / per for name, count in out.most_common()}


async def _measure() -> dict[str, dict[str, float]]:
    import aiohttp

    from sayna_client import SaynaClient, STTConfig, TTSConfig
    from sayna_client.server import LocalServer

    results: dict[str, dict[str, float]] = {}
    async with LocalServer(tts_realtime=False) as server:
        client = SaynaClient(
            server.url,
            STTConfig(provider="deepgram", sample_rate=16000),
            TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
            stream_id="opcodes",
        )
        # Kept before the first frame, as a device callback or load.py's clock keeps it.
        send = client.on_audio_input
        seen = [0, 0]  # results, TTS frames
        wanted = [0, 0]
        done = asyncio.Event()
        replies: list[Any] = []  # the speech handles of the replies to turns
        replied = asyncio.Event()

        async def on_stt_result(result: Any) -> None:
            seen[0] += 1
            if result.is_speech_final and client.ready:  # load.py's reply
                replies.append(await client.speak("okay"))
                replied.set()
            if seen[0] == wanted[0]:
                done.set()

        def on_tts_audio(_data: bytes) -> None:
            seen[1] += 1
            if seen[1] == wanted[1]:
                done.set()

        client.register_on_stt_result(on_stt_result)
        client.register_on_tts_audio(on_tts_audio)
        await client.connect()
        async with aiohttp.ClientSession() as http:

            async def burst(kind: str, count: int) -> bool:
                """Have the server push ``count`` frames of ``kind``; False when its bench
                has no such kind (a revision before ec36c7c has no "turn")."""
                body = {"kind": kind, "count": count, "size": 640, "interval_ms": GAP_MS}
                url = f"{server.url}/_local/bench/opcodes/burst"
                async with http.post(url, json=body) as response:
                    if response.status == 400 and "'kind'" in await response.text():
                        return False
                    assert response.status == 202, await response.text()
                    return True

            for _ in range(10):  # warm up: the speech queue, the plans, the caches
                await (await client.speak("okay"))
            tracer = Tracer()
            frames0 = seen[1]
            tracer.start()
            for _ in range(SPEAK_CYCLES):
                handle = await client.speak("okay")
                await handle
            tracer.stop()
            per = tracer.by_function(SPEAK_CYCLES)
            per["(TTS frames per speak)"] = (seen[1] - frames0) / SPEAK_CYCLES
            results["speak cycle"] = per

            async def turn() -> bool:
                replies.clear()
                replied.clear()
                if not await burst("turn", 1):
                    return False
                await replied.wait()  # (the reply is sent from the callback)
                await replies[0]
                return True

            results["turn"] = {}  # (stays empty where the bench cannot push a turn)
            if await turn():
                for _ in range(9):  # warm up
                    await turn()
                tracer = Tracer()
                for _ in range(TURNS):
                    tracer.start()
                    await turn()
                    tracer.stop()
                results["turn"] = tracer.by_function(TURNS)

            for kind, index, count in (("stt", 0, RESULTS), ("audio", 1, FRAMES)):
                done.clear()
                wanted[index] = seen[index] + 20
                await burst(kind, 20)  # warm up
                await asyncio.wait_for(done.wait(), 30)
                tracer = Tracer()
                done.clear()
                wanted[index] = seen[index] + count
                tracer.start()
                await burst(kind, count)
                await asyncio.wait_for(done.wait(), 60)
                tracer.stop()
                results["stt_result" if kind == "stt" else "TTS frame"] = tracer.by_function(count)

            frame = bytes(640)
            for _ in range(10):  # warm up
                await send(frame)
                await asyncio.sleep(0.005)
            tracer = Tracer()
            for _ in range(SENT_FRAMES):
                tracer.start()
                await send(frame)
                tracer.stop()
                await asyncio.sleep(0.005)
            results["audio frame sent"] = tracer.by_function(SENT_FRAMES)
        await client.disconnect()
    return results


def child() -> dict[str, dict[str, float]]:
    return asyncio.run(_measure())


# --- the A/B (parent process) ------------------------------------------------------------------


def _run_child(src: str, gap_ms: float) -> dict[str, dict[str, float]]:
    env = dict(os.environ, PYTHONPATH=src, OPCODES_GAP_MS=str(gap_ms))
    done = subprocess.run(
        [sys.executable, __file__, "--child"],
        capture_output=True,
        text=True,
        env=env,
        cwd=HERE,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _total(per: dict[str, float]) -> float:
    return sum(v for k, v in per.items() if not k.startswith("("))


def _report(runs: dict[str, dict[str, dict[str, float]]], top: int) -> str:
    names = list(runs)
    lines = [
        f"`python benchmarks/opcodes.py {' '.join(sys.argv[1:])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC: bytecode "
        "instructions of the SDK's client code per event (see the script's docstring).",
        "",
        "| per event | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]
    for event in EVENTS:
        cells = [
            f"{_total(runs[name][event]):,.0f}" if runs[name][event] else "–" for name in names
        ]
        lines.append(f"| {event} | " + " | ".join(cells) + " |")
    frames = [f"{runs[name]['speak cycle'].get('(TTS frames per speak)', 0):g}" for name in names]
    lines.append("| (TTS frames per speak cycle) | " + " | ".join(frames) + " |")
    lines.append("")
    for event in EVENTS:
        for name in names:
            shown = ", ".join(
                f"{k} {v:.1f}"
                for k, v in list(runs[name][event].items())[:top]
                if not k.startswith("(")
            )
            if not runs[name][event]:
                shown = 'not counted (this revision\'s local server has no bench kind "turn")'
            lines.append(f"- {event}, {name}: {shown}")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--base", action="append", default=[], help="git revision to compare with (repeatable)"
    )
    parser.add_argument("--top", type=int, default=12, help="functions shown per event")
    parser.add_argument(
        "--gap-ms", type=float, default=2.0, help="ms between pushed results and frames"
    )
    parser.add_argument("--output", help="append the report to this file")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child()), flush=True)
        return 0
    sources = {"this": str(HERE.parent / "src")}
    trees = []
    cleanup: list[Callable[[], None]] = []
    for base in args.base:
        tree = tempfile.TemporaryDirectory(prefix="opcodes-base-")
        trees.append(tree)
        cleanup.append(tree.cleanup)
        archive = subprocess.run(
            ["git", "-C", str(HERE.parent), "archive", base, "src"], capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", tree.name], input=archive.stdout, check=True)
        sources[base] = str(Path(tree.name) / "src")
    try:
        runs = {name: _run_child(src, args.gap_ms) for name, src in sources.items()}
    finally:
        for clean in cleanup:
            clean()
    report = _report(runs, args.top)
    publish(report, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
