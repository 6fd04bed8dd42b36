"""Where a load run's CPU goes: every event-loop callback timed, grouped by what it ran.

    python benchmarks/loopcpu.py [--top 25] [--output FILE] -- LOAD.PY ARGUMENTS...
    python benchmarks/loopcpu.py -- --cpu 1 --speak --seconds 20 --sessions 1000 --server lean
    python benchmarks/loopcpu.py -- --cpu 1 --speak --seconds 20 --sessions 1000 --server lean \\
        --client raw-asyncio-seed

Runs ``load.py`` with the arguments after ``--``, in this process, and times with
``time.thread_time()`` (user and kernel CPU of the loop's thread) each callback the asyncio
loop runs (``asyncio.Handle._run``) and each wait in the selector. The callbacks are
grouped by what they ran: a task's step by its coroutine (``task: Dispatcher._run``), any
other callback by its function (``_SelectorSocketTransport._read_ready``: a read, and
what it parsed and published), the selector as ``<select>``. The table is printed after
load.py's own report; run it for the SDK and for a floor (``--client raw-asyncio-seed``)
in the same minutes and compare line by line (benchmarks/LOAD-1000.md, sessions 17 and 18).

The timing has a cost of its own (two clock reads per callback, the same for every
client): compare runs of this tool with each other, never with plain ``load.py`` runs.
asyncio's own loop only: uvloop runs its callbacks in C, where this cannot reach them.
"""

from __future__ import annotations

import argparse
import asyncio
import selectors
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))

from reportfile import publish

#: Per group: [CPU seconds, calls].
Tally = dict[str, list[float]]


def group_of(handle: asyncio.Handle) -> str:
    """What a loop callback runs: ``task: <coroutine>`` for a task's step, else the
    callback's qualified name."""
    callback: Callable[..., Any] = handle._callback  # type: ignore[attr-defined]
    owner = getattr(callback, "__self__", None)
    if isinstance(owner, asyncio.Task):
        coro = owner.get_coro()
        return "task: " + getattr(coro, "__qualname__", type(coro).__name__)
    name = getattr(callback, "__qualname__", None)
    if name is None:  # a functools.partial and the like
        inner = getattr(callback, "func", None)
        name = getattr(inner, "__qualname__", type(callback).__name__)
    return str(name)


@contextmanager
def timed_loop(tally: Tally) -> Iterator[None]:
    """While open, add each asyncio loop callback's and each selector wait's CPU time
    (``time.thread_time()``) to ``tally``, by :func:`group_of`. Restores both on exit."""
    clock = time.thread_time
    run = asyncio.Handle._run
    select = selectors.DefaultSelector.select

    def timed_run(handle: asyncio.Handle) -> None:
        key = group_of(handle)  # before the run: a callback may cancel its own handle
        start = clock()
        run(handle)
        spent = clock() - start
        entry = tally.get(key)
        if entry is None:
            tally[key] = [spent, 1.0]
        else:
            entry[0] += spent
            entry[1] += 1

    def timed_select(self: selectors.BaseSelector, timeout: Optional[float] = None) -> Any:
        start = clock()
        ready = select(self, timeout)
        entry = tally.setdefault("<select>", [0.0, 0.0])
        entry[0] += clock() - start
        entry[1] += 1
        return ready

    asyncio.Handle._run = timed_run  # type: ignore[method-assign]
    selectors.DefaultSelector.select = timed_select  # type: ignore[method-assign]
    try:
        yield
    finally:
        asyncio.Handle._run = run  # type: ignore[method-assign]
        selectors.DefaultSelector.select = select  # type: ignore[method-assign]


def table(tally: Tally, top: int) -> str:
    """The ``top`` groups by CPU, then the total, as a markdown table."""
    rows = sorted(tally.items(), key=lambda item: -item[1][0])
    lines = [
        "| what the loop ran | CPU (s) | calls | µs per call |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, (spent, calls) in rows[:top]:
        lines.append(f"| `{key}` | {spent:.2f} | {int(calls):,} | {1e6 * spent / calls:.1f} |")
    rest = rows[top:]
    if rest:
        spent = sum(entry[0] for _, entry in rest)
        calls = sum(entry[1] for _, entry in rest)
        lines.append(f"| {len(rest)} more | {spent:.2f} | {int(calls):,} | |")
    total = sum(entry[0] for entry in tally.values())
    lines.append(f"| in all | {total:.2f} | {int(sum(e[1] for e in tally.values())):,} | |")
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    """Run load.py with the arguments after ``--`` under :func:`timed_loop`; print (and
    with ``--output`` append) the table. Returns load.py's exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--" in argv:
        split = argv.index("--")
        own, load_args = argv[:split], argv[split + 1 :]
    else:
        own, load_args = argv, []
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=_positive, default=25, help="groups to list (default 25)")
    parser.add_argument(
        "--output", default=None, help="also append the table to this file (default: print)"
    )
    args = parser.parse_args(own)
    if "--uvloop" in load_args:
        parser.error("uvloop runs its callbacks in C, out of this tool's reach: drop --uvloop")
    import load  # (after the path is set, and only when run)

    tally: Tally = {}
    own_name, sys.argv[0] = sys.argv[0], "load.py (under loopcpu.py)"  # load's messages
    try:
        with timed_loop(tally):
            status = load.main(load_args)
    finally:
        sys.argv[0] = own_name
    if not tally:  # e.g. an abbreviation of --uvloop got past the check above
        print(
            "loopcpu.py: no event-loop callback was timed: load.py ran on a loop other than "
            "asyncio's own (uvloop?); run it without --uvloop",
            file=sys.stderr,
        )
        return 2
    heading = (
        f"CPU by what the loop ran, the whole run (connects, streaming, closes; load.py's CPU "
        f"figure above is streaming's alone), under the timing's own cost "
        f"(`loopcpu.py -- {' '.join(load_args)}`):"
    )
    publish(heading + "\n\n" + table(tally, args.top), args.output)
    return status


def _positive(text: str) -> int:
    """argparse type: an integer of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


if __name__ == "__main__":
    sys.exit(main())
