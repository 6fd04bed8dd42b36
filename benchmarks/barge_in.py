"""The SDK's own share of a barge-in: the user's first interim result -> `clear` on the wire.

A small Sayna stand-in (aiohttp on loopback) plays the server: after `ready` it answers each
`speak` with a few TTS audio frames, then sends an interim `stt_result` and notes the time;
the client runs `client.barge_in()` and the stand-in notes when `clear` arrives. The
difference is the SDK's decision time (reader -> dispatcher -> policy -> speech queue ->
socket) plus two loopback hops (tens of microseconds). Both ends share one event loop, as
the server's own work is small; run with `--sessions N` to measure N concurrent sessions.

Run by hand: ``python benchmarks/barge_in.py [--rounds 200] [--sessions 1] [--out FILE]``.
It is not part of the test suite; figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time

from aiohttp import WSMsgType, web

from sayna_client import SaynaClient, STTConfig, TTSConfig
from sayna_client.agents import percentile

INTERIM = json.dumps(
    {"type": "stt_result", "transcript": "wait", "is_final": False, "is_speech_final": False,
     "confidence": 0.9}
)  # fmt: skip
FINAL = json.dumps(
    {"type": "stt_result", "transcript": "wait", "is_final": True, "is_speech_final": True,
     "confidence": 0.99}
)  # fmt: skip


async def stand_in(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    samples: list[float] = request.app["samples"]
    sent_at = 0.0
    async for msg in ws:
        if msg.type != WSMsgType.TEXT:
            continue
        kind = json.loads(msg.data)["type"]
        if kind == "config":
            await ws.send_str(json.dumps({"type": "ready", "stream_id": "bench"}))
        elif kind == "speak":
            for _ in range(3):
                await ws.send_bytes(bytes(640))
            sent_at = time.perf_counter()
            await ws.send_str(INTERIM)
        elif kind == "clear":
            samples.append(time.perf_counter() - sent_at)
            await ws.send_str(FINAL)  # the user's turn ends
    return ws


async def session(url: str, rounds: int) -> None:
    client = SaynaClient(url, STTConfig(provider="deepgram"), TTSConfig(provider="deepgram"))
    async with client.session():
        client.barge_in()
        for _ in range(rounds):
            handle = await client.speak("a long answer the user will cut short")
            await handle.wait(10)
            assert handle.interrupted


async def main(args: argparse.Namespace) -> dict[str, object]:
    app = web.Application()
    app["samples"] = samples = []
    app.router.add_get("/ws", stand_in)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        await asyncio.gather(*(session(url, args.rounds) for _ in range(args.sessions)))
    finally:
        await runner.cleanup()
    ms = [s * 1000 for s in samples]
    return {
        "what": "first interim result sent -> clear received, on loopback (ms)",
        "sessions": args.sessions,
        "barge_ins": len(ms),
        "p50_ms": round(percentile(ms, 0.5) or 0, 3),
        "p99_ms": round(percentile(ms, 0.99) or 0, 3),
        "mean_ms": round(statistics.fmean(ms), 3),
        "max_ms": round(max(ms), 3),
        "python": sys.version.split()[0],
        "machine": platform.machine(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="barge-ins per session")
    parser.add_argument("--sessions", type=int, default=1, help="concurrent sessions")
    parser.add_argument("--out", default=None, help="append the JSON result to this file")
    arguments = parser.parse_args()
    result = asyncio.run(main(arguments))
    print(json.dumps(result, indent=2))
    if arguments.out:
        with open(arguments.out, "a", encoding="utf-8") as out:
            out.write(json.dumps(result) + "\n")
