"""What the cycle collector tracks for the speak cycle and for a live session (issue #19).

    python benchmarks/gc_speak.py [--base REF] [--cycles 40] [--sessions 20] [--seconds 60]
                                  [--promoted 300] [--output benchmarks/spk-issue19.md]

Starts ``sayna serve --engine fake --fast-tts`` in a separate process (so none of the
server's objects are counted), then, in a fresh client process per tree (this work tree's
``src/`` and, with ``--base``, that revision's), counts deterministically, with the
collector switched off while counting:

* **per speak cycle** (one client, ``--cycles`` cycles after a warm-up): ``gc.collect()``,
  ``gc.disable()``, ``handle = await client.speak("okay")``, and as it returns a young
  collection (``gc.collect(0)``) and the objects it moved to the middle generation: what a
  speech holds while its audio plays, which at 1,000 sessions (a young collection every
  ~25 ms, real-time TTS) is promoted; then ``await handle``, ``del handle`` and, once the
  loop is idle, the objects made since the full collection that are still alive (what
  the cycle leaves behind). Counted by type. Then ``--cycles`` pairs of ``speak("okay")``
  sent back to back (the server synthesizes the second right after the first and reports
  its queue drained once), each pair followed by its completion: the handles left
  unfinished (a completion that ended only the oldest left one per pair, for ever).
* **per live session** (``--sessions`` clients doing what ``load.py --speak`` does: tone
  audio paced at 50 frames/s up, each speech-final answered with ``speak("okay")``):
  the objects tracked per session at the start, at 10 s into the stream and at
  ``--seconds``, with and without a ``gc.collect()`` first (the collection untracks
  tuples of atoms and frees cycles: what is held, against what a full collection walks
  at that moment), the types made in the first 10 s (the parts a session makes at its
  first audio, result and speak) and those that grew after.
* **promoted under load** (``--promoted N``: ``load.py --speak`` itself, ``run_load`` with
  N sessions for ``--seconds``): from 10 s on, at each middle-generation collection, the
  objects it moved to the oldest generation (see :class:`Promotions`), by type (and, for
  coroutines, bound methods, loop callbacks and tasks, what they run), per session per
  collection and per session per second; and the speech handles alive and unfinished.
  These move with the load (a client behind its pace has more in flight: read the
  pacing figure next to them).

Counts, not times: a shared machine moves the first two only through which events share
a wake-up. ``--base`` runs the other tree in the same way for an A/B.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import gc
import json
import sys
import time
import types
from collections import Counter
from pathlib import Path
from typing import Any, Optional

from abrun import local_server, run_child, source_trees
from reportfile import publish

HERE = Path(__file__).resolve().parent


def _by_type(objects: list[Any]) -> Counter[str]:
    return Counter(f"{type(o).__module__}.{type(o).__qualname__}" for o in objects)


async def _speak_cycles(url: str, cycles: int) -> dict[str, Any]:
    from sayna_client import SaynaClient, STTConfig, TTSConfig

    def on_audio(_data: bytes) -> None:
        return None

    client = SaynaClient(
        url,
        STTConfig(provider="deepgram", sample_rate=16000),
        TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
        stream_id="gc-speak",
    )
    client.register_on_tts_audio(on_audio)
    await client.connect()
    for _ in range(5):  # warm up: the speech queue, its metrics, the caches
        await (await client.speak("okay"))
    playing: Counter[str] = Counter()
    left: Counter[str] = Counter()
    for _ in range(cycles):
        await asyncio.sleep(0.01)  # the previous cycle's last events are handled
        gc.collect()
        gc.disable()
        try:
            handle = await client.speak("okay")
            gc.collect(0)  # a young collection while the speech plays: what it promotes
            promoted = gc.get_objects(generation=1)
            playing += _by_type(promoted)
            del promoted
            await handle
            del handle
            await asyncio.sleep(0.01)  # the loop's own leftovers of the last events run
            made = gc.get_objects(generation=0) + gc.get_objects(generation=1)
            left += _by_type(made)
            del made
        finally:
            gc.enable()
    await client.disconnect()
    return {
        "playing": {k: v / cycles for k, v in playing.items()},
        "left": {k: v / cycles for k, v in left.items()},
    }


async def _overlaps(url: str, pairs: int) -> dict[str, Any]:
    """``pairs`` times two ``speak("okay")`` back to back (the second reaches the server
    while the first is synthesized: one completion for both), each pair followed by its
    completion: how many of the handles are still unfinished then, and tracked."""
    from sayna_client import SaynaClient, STTConfig, TTSConfig

    client = SaynaClient(
        url,
        STTConfig(provider="deepgram", sample_rate=16000),
        TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
        stream_id="gc-overlap",
    )
    completed = asyncio.Event()
    client.on("tts_playback_complete", lambda _event: completed.set())
    await client.connect()
    handles = []
    for _ in range(pairs):
        completed.clear()
        handles += [await client.speak("okay"), await client.speak("okay")]
        await asyncio.wait_for(completed.wait(), 30)
    await asyncio.sleep(0.05)  # (a late completion would have come by now)
    unfinished = sum(not handle.done for handle in handles)
    await client.disconnect()
    return {"pairs": pairs, "unfinished": unfinished}


async def _sessions(url: str, sessions: int, seconds: float) -> dict[str, Any]:
    sys.path.insert(0, str(HERE))
    from loadlib import SessionOutcome, _sdk_client, tone_pattern
    from pacing import paced_stream

    outcomes = [SessionOutcome(f"gc-live-{index}") for index in range(sessions)]
    clients = [_sdk_client(url, None, outcome, True) for outcome in outcomes]
    for client in clients:
        await client.connect()
    pattern = tone_pattern()
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.05
    stop = asyncio.Event()
    gc.collect()
    start_types = _by_type(gc.get_objects())
    tracked0 = sum(start_types.values())

    async def stream(client: Any, offset: int) -> None:
        await paced_stream(
            client.on_audio_input, pattern, 0.02, start=start, stop=stop, offset=offset
        )

    tasks = [asyncio.ensure_future(stream(c, i * 7 % len(pattern))) for i, c in enumerate(clients)]

    def snapshot() -> dict[str, Any]:
        raw = len(gc.get_objects())
        gc.collect()
        objects = gc.get_objects()
        return {"raw": raw, "held": len(objects), "types": _by_type(objects)}

    await asyncio.sleep(10)
    early = snapshot()
    await asyncio.sleep(max(0.0, seconds - 10))
    late = snapshot()
    stop.set()
    await asyncio.gather(*tasks)
    for client in clients:
        await client.disconnect()
    made = early["types"] - start_types
    grew = late["types"] - early["types"]
    return {
        "start": tracked0 / sessions,
        "early_raw": early["raw"] / sessions,
        "early_held": early["held"] / sessions,
        "late_raw": late["raw"] / sessions,
        "late_held": late["held"] / sessions,
        "made": {k: v / sessions for k, v in made.most_common(16)},
        "grew": {k: v / sessions for k, v in grew.most_common(12)},
        "turns": sum(o.replies for o in outcomes) / sessions,
    }


class Promotions:
    """What each middle-generation collection moves to the oldest generation, by type,
    while installed (``gc.callbacks``) and after ``since`` (``time.monotonic()``).

    Those objects count towards the next full collection (it runs once they exceed a
    quarter of the objects that survived the last one), so "promoted per second" is what
    sets how often a full collection walks the whole heap. A middle collection takes
    the young and middle generations together, so what it promotes is every tracked
    object alive at that moment that was made since the previous one (and survived):
    the objects a session has in flight. Found by identity: the ids in the two young
    generations as it starts, looked up in the oldest as it stops."""

    def __init__(self, since: float) -> None:
        self.since = since
        self.collections = [0, 0, 0]
        self.counted = 0  # middle collections counted (after ``since``)
        self.types: Counter[str] = Counter()
        #: Speech handles alive and not done, at each counted collection: the speech in
        #: flight (and any that a completion failed to end).
        self.unfinished: list[int] = []
        self._ids: Optional[set[int]] = None

    def __enter__(self) -> Promotions:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *_exc: Any) -> None:
        gc.callbacks.remove(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        generation = info["generation"]
        if generation != 1 or time.monotonic() < self.since:
            if phase == "stop":
                self.collections[generation] += 1
            return
        if phase == "start":
            young = gc.get_objects(generation=0) + gc.get_objects(generation=1)
            self._ids = {id(o) for o in young}
            del young
            return
        self.collections[1] += 1
        ids, self._ids = self._ids, None
        if ids is None:
            return
        self.counted += 1
        old = gc.get_objects(generation=2)
        self.types.update(_name(o) for o in old if id(o) in ids and o is not ids)
        self.unfinished.append(
            sum(1 for o in old if type(o).__name__ == "SpeechHandle" and not o.done)
        )
        del old


def _name(obj: object) -> str:
    """The type of ``obj``, with what it runs for a coroutine, a bound method, a loop
    callback and a task (which of them a session keeps in flight)."""
    kind = type(obj)
    name = f"{kind.__module__}.{kind.__qualname__}"
    what: Any = None
    if isinstance(obj, types.CoroutineType):
        what = obj.cr_code
    elif isinstance(obj, (types.MethodType, types.BuiltinMethodType)):
        what = obj
    elif isinstance(obj, asyncio.Handle):
        what = getattr(obj, "_callback", None)
    elif isinstance(obj, asyncio.Task):
        what = obj.get_coro()
        what = getattr(what, "cr_code", what)
    qualname = getattr(what, "co_qualname", None) or getattr(what, "__qualname__", None)
    return f"{name}({qualname})" if qualname else name


async def _promoted(url: str, sessions: int, seconds: float) -> dict[str, Any]:
    """``load.py --speak`` (shared pacing) with ``sessions`` sessions for ``seconds``,
    counting what the middle collections promote after the first 10 s."""
    sys.path.insert(0, str(HERE))
    from loadlib import run_load

    warm_up = 10.0
    promotions = Promotions(since=time.monotonic() + warm_up)
    with promotions:
        started = time.monotonic()
        report = await run_load(url, sessions, seconds, speak=True)
    # (connecting took part of the warm-up: the window is from ``since`` to the end)
    window = time.monotonic() - promotions.since
    total = sum(promotions.types.values())
    per = max(1, promotions.counted) * sessions
    return {
        "ok": report.ok,
        "window": window,
        "elapsed": time.monotonic() - started,
        "collections": promotions.collections,
        "middle": promotions.counted,
        "per_session_second": total / sessions / window,
        "per_session_collection": total / per,
        "types": {k: v / per for k, v in promotions.types.most_common(16)},
        "unfinished": [n / sessions for n in promotions.unfinished],
        "replies": sum(o.replies for o in report.outcomes) / sessions / seconds,
        "p99": report.late.get("p99_ms"),
    }


async def _child(
    url: str, cycles: int, sessions: int, seconds: float, promoted: int
) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if cycles:
        result["cycle"] = await _speak_cycles(url, cycles)
        result["overlap"] = await _overlaps(url, cycles)
    if sessions:
        result["live"] = await _sessions(url, sessions, seconds)
    if promoted:
        result["promoted"] = await _promoted(url, promoted, seconds)
    return result


def _top(counts: dict[str, float], limit: int = 10) -> str:
    items = sorted(counts.items(), key=lambda kv: -kv[1])[:limit]
    return ", ".join(f"{_short(name)} {value:.2g}" for name, value in items)


def _short(name: str) -> str:
    """``module.Type(what)`` without the module."""
    kind, paren, what = name.partition("(")
    return kind.rsplit(".", 1)[-1] + paren + what


def _report(runs: dict[str, dict[str, Any]], args: argparse.Namespace) -> str:
    names = list(runs)
    lines = [
        f"`python benchmarks/gc_speak.py {' '.join(sys.argv[1:])}` on "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC "
        "(objects the cycle collector tracks; counts, machine shared):",
        "",
        "| | " + " | ".join(names) + " |",
        "| --- |" + " ---: |" * len(names),
    ]

    def row(label: str, values: list[float]) -> None:
        lines.append(f"| {label} | " + " | ".join(f"{v:,.1f}" for v in values) + " |")

    if args.cycles:
        row(
            "per speak cycle: promoted by a young collection as speak() returns",
            [sum(r["cycle"]["playing"].values()) for r in runs.values()],
        )
        row(
            "per speak cycle: objects it made still alive once done",
            [sum(r["cycle"]["left"].values()) for r in runs.values()],
        )
        row(
            f"{args.cycles} pairs of overlapping speaks, each pair's completion come: "
            "handles left unfinished",
            [r["overlap"]["unfinished"] for r in runs.values()],
        )
    if args.sessions:
        row(
            "per session: made in the first 10 s and held (its parts made at first use)",
            [r["live"]["early_held"] - r["live"]["start"] for r in runs.values()],
        )
        for key, label in (
            ("start", "per session: tracked at the start of streaming"),
            ("early_raw", "per session: tracked at 10 s"),
            ("early_held", "per session: held at 10 s (after a collection)"),
            ("late_raw", f"per session: tracked at {args.seconds:g} s"),
            ("late_held", f"per session: held at {args.seconds:g} s (after a collection)"),
            ("turns", f"replies per session in {args.seconds:g} s"),
        ):
            row(label, [r["live"][key] for r in runs.values()])
    if args.promoted:
        for key, label in (
            ("per_session_collection", "load: promoted per session per middle collection"),
            ("per_session_second", "load: promoted per session per second"),
            ("middle", "load: middle collections counted"),
            ("replies", "load: replies per session per second"),
            ("p99", "load: pacing p99, ms (with the counting's own cost)"),
        ):
            row(label, [r["promoted"][key] or 0.0 for r in runs.values()])
        row("load: full collections", [r["promoted"]["collections"][2] for r in runs.values()])
        for index, label in ((0, "first"), (-1, "last")):
            row(
                f"load: unfinished speech handles per session, {label} counted collection",
                [(r["promoted"]["unfinished"] or [0.0])[index] for r in runs.values()],
            )
    lines.append("")
    for name, run in runs.items():
        if args.cycles:
            lines.append(f"- {name}, promoted while it plays: {_top(run['cycle']['playing'])}")
            lines.append(f"- {name}, left after the cycle: {_top(run['cycle']['left'])}")
        if args.promoted:
            promoted = _top(run["promoted"]["types"], 16)
            lines.append(f"- {name}, load: promoted per session per middle collection: {promoted}")
        if args.sessions:
            grew = _top(run["live"]["grew"])
            made = _top(run["live"]["made"], 16)
            lines.append(f"- {name}, held per session, made in the first 10 s: {made}")
            lines.append(f"- {name}, held per session, grown from 10 s: {grew or 'nothing'}")
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", help="git revision to compare with")
    parser.add_argument("--cycles", type=int, default=40)
    parser.add_argument("--sessions", type=int, default=20, help="0: no live sessions")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument(
        "--promoted",
        type=int,
        default=0,
        help="also run load.py --speak with this many sessions for --seconds and count "
        "what the middle collections promote",
    )
    parser.add_argument("--output", help="append the report to this file")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        url, cycles, sessions, seconds, promoted = args.child
        result = asyncio.run(_child(url, int(cycles), int(sessions), float(seconds), int(promoted)))
        print(json.dumps(result), flush=True)
        return 0
    counts = (str(args.cycles), str(args.sessions), str(args.seconds), str(args.promoted))
    with source_trees(args.base) as sources, local_server() as url:
        runs = {name: run_child(__file__, (url, *counts), src) for name, src in sources.items()}
    publish(_report(runs, args), args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
