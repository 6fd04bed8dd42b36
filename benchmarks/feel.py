"""The numbers users feel, with many live sessions: the SDK's own share of a reply's latency.

    python benchmarks/feel.py [--sessions 200] [--seconds 30] [--url URL] [--cpu N]
                              [--uvloop] [--output benchmarks/FEEL.md]
                              [--turns spread|lockstep] [--pacing shared|per-session]

Every session streams real-time 16 kHz audio (20 ms frames, 300 ms tone / 300 ms
silence) to ``sayna serve --engine fake --fast-tts`` (started in another process unless
``--url`` is given) and answers each of the user's speech-finals at once with
``await client.speak("okay")`` from an ``async`` result callback; a plain audio callback
takes the TTS frames. With ``--turns spread`` (the default) every session starts at a
random point of the tone pattern, so the users' turns end at different moments, as real
callers' do; ``--turns lockstep`` starts them all together (every speech-final of the
process within the same 20 ms, the worst case). ``--pacing`` is as in ``load.py`` (one
clock task for all sessions by default). Two intervals are measured inside the client process:

(a) **speech-final -> speak on the wire**: from the moment the socket's transport hands
    the bytes holding the speech-final to the SDK (``data_received`` of the client's own
    frame protocol, ``realtime/framing.py``) to the moment the ``speak`` frame has been
    written to the transport;
(b) **TTS byte -> audio callback**: from the transport handing over the bytes of a TTS
    frame to the audio callback being called with it, for the first frame of each reply
    and for all frames.

Both are the SDK's time plus the time the event loop spends on the other sessions'
work queued before it (the same loop runs every session): what a user's handler sees.
The hooks wrap four methods of the SDK's data path at class level in this process only
(the frame protocol's ``data_received``, the connection's ``frame_text``, the hub's
``publish_audio`` and the frame writer's ``write_control``; a context variable set per
session tells the sessions apart); the SDK is used through its public API. (Until
issue #19's own data path they wrapped aiohttp's ``receive`` and ``send_str``: the older
figures of ``FEEL.md`` start at ``receive`` returning, after aiohttp's parsing.)
Prints the report; ``--output benchmarks/FEEL.md`` also writes it (never by default).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextvars
import datetime
import json
import os
import platform
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Optional

import aiohttp
from load import commit, cpu_model, free_port, start_server
from loadlib import (
    FRAME_MS,
    PACINGS,
    SAMPLE_RATE,
    TURNS,
    pattern_offsets,
    process_cpu_seconds,
    tone_pattern,
)
from pacing import LateStats, SharedClock, clock_slots, paced_stream, percentile

import sayna_client
from sayna_client import SaynaClient, SaynaError, STTConfig, TTSConfig
from sayna_client.realtime import connection, framing, hub, wire

HERE = Path(__file__).resolve().parent
_now = time.perf_counter


class Probe:
    """One session's timestamps (perf_counter seconds)."""

    __slots__ = ("audio_rx", "final_rx", "first_audio", "pending_final")

    def __init__(self) -> None:
        self.final_rx: collections.deque[float] = collections.deque()
        self.audio_rx: collections.deque[float] = collections.deque()
        self.pending_final: Optional[float] = None
        self.first_audio = False


SESSION: contextvars.ContextVar[Probe] = contextvars.ContextVar("feel_session")
#: (a) speech-final received -> speak written, seconds.
final_to_speak: list[float] = []
#: (b) first TTS frame of a reply received -> audio callback; and every frame.
first_audio: list[float] = []
all_audio: list[float] = []
#: When the transport handed the SDK the chunk being parsed (set by data_received).
_chunk_at = [0.0]


def install_hooks() -> None:
    """Wrap the SDK's own data path (this process): see the module docstring."""
    protocol = framing.FrameProtocol
    data_received = protocol.data_received
    frame_text = connection.WebSocketConnection.frame_text
    publish_audio = hub.EventHub.publish_audio
    write_control = wire.FrameWriter.write_control

    def timed_data_received(self: Any, data: bytes) -> None:
        _chunk_at[0] = _now()
        data_received(self, data)

    def timed_frame_text(self: Any, text: str) -> None:
        probe = SESSION.get(None)
        if probe is not None and '"is_speech_final":true' in text.replace(" ", ""):
            probe.final_rx.append(_chunk_at[0])
        frame_text(self, text)

    def timed_publish_audio(self: Any, data: bytes) -> None:
        probe = SESSION.get(None)
        if probe is not None:
            probe.audio_rx.append(_chunk_at[0])
        publish_audio(self, data)

    def timed_write_control(self: Any, first: int, payload: bytes = b"") -> bool:
        written = write_control(self, first, payload)
        probe = SESSION.get(None)
        if probe is not None and probe.pending_final is not None and b'"speak"' in payload:
            final_to_speak.append(_now() - probe.pending_final)
            probe.pending_final = None
            probe.first_audio = True
        return written

    protocol.data_received = timed_data_received  # type: ignore[method-assign]
    connection.WebSocketConnection.frame_text = timed_frame_text  # type: ignore[method-assign]
    hub.EventHub.publish_audio = timed_publish_audio  # type: ignore[method-assign]
    wire.FrameWriter.write_control = timed_write_control  # type: ignore[method-assign]


async def run(
    url: str, sessions: int, seconds: float, turns: str = "spread", pacing: str = "shared"
) -> dict[str, Any]:
    period = FRAME_MS / 1000
    count = round(seconds * 1000 / FRAME_MS)
    pattern = tone_pattern()
    offsets = pattern_offsets(sessions, len(pattern), turns)
    clock = (
        SharedClock(pattern, period, slots=clock_slots(sessions)) if pacing == "shared" else None
    )
    connected: list[asyncio.Future[None]] = []
    streamed = asyncio.get_running_loop().create_future()
    run_id = uuid.uuid4().hex[:8]
    stats = LateStats()
    errors: list[str] = []
    loop = asyncio.get_running_loop()
    start_at = loop.time() + 2.0 + sessions * 0.01  # after every session connected
    finals = [0]

    async def one(index: int) -> None:
        probe = Probe()
        SESSION.set(probe)  # inherited by the reader and callback tasks made from here
        client = SaynaClient(
            url,
            STTConfig(provider="deepgram", sample_rate=SAMPLE_RATE),
            TTSConfig(provider="elevenlabs", voice_id="fake-alpha", sample_rate=24000),
            stream_id=f"feel-{run_id}-{index}",
        )

        async def on_result(result: Any) -> None:
            if not result.is_speech_final:
                return
            finals[0] += 1
            probe.pending_final = probe.final_rx.popleft() if probe.final_rx else None
            await client.speak("okay")  # the user's handler answers at once

        def on_audio(_data: bytes) -> None:
            at = _now()
            if not probe.audio_rx:
                return
            delay = at - probe.audio_rx.popleft()
            all_audio.append(delay)
            if probe.first_audio:
                probe.first_audio = False
                first_audio.append(delay)

        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(on_audio)
        client.register_on_error(lambda error: errors.append(str(error)[:200]))

        def failed(exc: BaseException) -> None:
            if not isinstance(exc, SaynaError):
                raise exc
            errors.append(f"session {index}: {type(exc).__name__}: {exc}"[:200])

        ready = connected[index]
        try:
            await asyncio.sleep(index * 0.01)  # connect gradually
            await client.connect()
            if clock is not None:
                clock.add(client.on_audio_input, offset=offsets[index], on_error=failed)
                ready.set_result(None)
                await streamed  # the clock task sends every session's frames
            else:
                ready.set_result(None)
                await paced_stream(
                    client.on_audio_input,
                    pattern,
                    period,
                    start=start_at + period * index / sessions,
                    count=count,
                    stats=stats,
                    offset=offsets[index],
                )
        except SaynaError as exc:
            errors.append(f"session {index}: {type(exc).__name__}: {exc}"[:200])
        finally:
            if not ready.done():
                ready.set_result(None)
            await client.disconnect()

    async def tick() -> None:
        await asyncio.gather(*connected)
        try:
            if clock is not None:
                start = max(start_at, loop.time() + 0.05)  # if connecting took longer
                await clock.run(start=start, count=count, stats=stats)
        finally:
            streamed.set_result(None)

    connected.extend(loop.create_future() for _ in range(sessions))
    cpu0, wall0 = process_cpu_seconds(), _now()
    await asyncio.gather(tick(), *(one(index) for index in range(sessions)))
    wall = _now() - wall0
    cpu = process_cpu_seconds() - cpu0
    return {
        "finals": finals[0],
        "late": stats.summary(),
        "cpu_percent": cpu / wall * 100,
        "wall_s": wall,
        "errors": errors,
    }


def _ms(values: list[float], fraction: float) -> str:
    return f"{percentile(values, fraction) * 1e3:.3f}" if values else "–"


def markdown(args: argparse.Namespace, out: dict[str, Any], load: tuple[float, float]) -> str:
    target = 1.0  # ms, p99
    rows = [
        ("speech-final -> speak on the wire", final_to_speak),
        ("first TTS frame of a reply -> audio callback", first_audio),
        ("every TTS frame -> audio callback", all_audio),
    ]
    lines = [
        "# The numbers users feel (issue #19, part 3)",
        "",
        f"`python benchmarks/feel.py --sessions {args.sessions} --seconds {args.seconds:g}"
        + (" --uvloop" if args.uvloop else "")
        + (f" --cpu {args.cpu}" if args.cpu is not None else "")
        + (f" --turns {args.turns}" if args.turns != "spread" else "")
        + (f" --pacing {args.pacing}" if args.pacing != "shared" else "")
        + f"` on {datetime.date.today().isoformat()}: {args.sessions} live sessions in one "
        "process, each streaming real-time audio and answering every speech-final at once "
        "with `await client.speak(...)`; "
        + (
            "the sessions' turns spread (each starts at a random point of the tone pattern)"
            if args.turns == "spread"
            else "the sessions' turns in lockstep (every speech-final within the same 20 ms)"
        )
        + "; frames paced by "
        + (
            "one clock task for all sessions"
            if args.pacing == "shared"
            else "one task and timer per session"
        )
        + "; times from aiohttp handing a frame to the SDK to "
        "the SDK's part being done (see the module docstring of `benchmarks/feel.py`).",
        "",
        "| interval | count | p50 (ms) | p99 (ms) | max (ms) | p99 < 1 ms |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, values in rows:
        verdict = (
            "–" if not values else ("yes" if percentile(values, 0.99) * 1e3 < target else "**no**")
        )
        lines.append(
            f"| {name} | {len(values):,} | {_ms(values, 0.5)} | {_ms(values, 0.99)} | "
            f"{_ms(values, 1.0)} | {verdict} |"
        )
    late = out["late"]
    lines += [
        "",
        f"Speech-finals answered: {out['finals']:,}; session errors: {len(out['errors'])}; "
        f"client process CPU while streaming: {out['cpu_percent']:.1f} % of a core "
        f"over {out['wall_s']:.1f} s; frame pacing lateness p50 {late['p50_ms']:.2f} ms, "
        f"p99 {late['p99_ms']:.2f} ms.",
        "",
        f"Machine: {cpu_model()}, {os.cpu_count()} logical cores, Python "
        f"{platform.python_version()}, aiohttp {aiohttp.__version__}, sayna-client "
        f"{sayna_client.__version__} (commit {commit()}); load average (1 min) at the start "
        f"{load[0]:.2f}, at the end {load[1]:.2f}.",
        "",
    ]
    if out["errors"]:
        lines += ["## Session errors (first 20)", "", *[f"- {e}" for e in out["errors"][:20]]]
    return "\n".join(lines)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--url", default=None, help="use this server instead of starting one")
    parser.add_argument(
        "--output", type=Path, default=None, help="write the report here (default: print it)"
    )
    parser.add_argument("--uvloop", action="store_true", help="run the clients on uvloop")
    parser.add_argument("--cpu", type=int, default=None, help="pin the clients to this CPU")
    parser.add_argument("--turns", choices=TURNS, default="spread")
    parser.add_argument("--pacing", choices=PACINGS, default="shared")
    args = parser.parse_args(argv)
    runner: Any = asyncio.run
    if args.uvloop:
        try:
            import uvloop
        except ImportError:
            parser.error("--uvloop needs uvloop: pip install uvloop")
        runner = uvloop.run
    server_cpu = None
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
        others = sorted(set(range(os.cpu_count() or 1)) - {args.cpu})
        server_cpu = others[0] if others else None
    server = None
    url = args.url
    if url is None:
        port = free_port()
        server = start_server(port, server_cpu)
        url = f"http://127.0.0.1:{port}"
    install_hooks()
    load_start = os.getloadavg()[0]
    try:
        out = runner(run(url, args.sessions, args.seconds, args.turns, args.pacing))
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)
    text = markdown(args, out, (load_start, os.getloadavg()[0]))
    if args.output is not None:  # FEEL.md is a figure of record: never by default
        args.output.write_text(text)
    print(text)
    print(json.dumps({"finals": out["finals"], "errors": len(out["errors"])}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
