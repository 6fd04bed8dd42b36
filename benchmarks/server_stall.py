"""How long hostile input holds up the local server's event loop (issue 13, item 14).

The server runs on its own event loop thread with a ticker task that sleeps 5 ms at a time
and records how late it wakes up: the longest delay is the worst stall every other client
of the server would have seen. A client on the main thread then sends, one scenario at a
time, large or pathological input over real sockets:

- a 4 MB WebSocket text frame (just under the default `max_message_bytes`) of one long
  string (valid JSON, a `speak`), ones of 19,900 values (about the most the server parses)
  and one of 2 million (refused by the value estimate), 4 MB of unterminated JSON, and
  1,000-level deep nesting; 16 MB text and binary messages (over the limit: closed 1009),
- `POST /sip/hooks` with 1,000 hooks (the table's limit), a 1.5 MB body of 24,000 hooks
  (refused after parsing), 1.9 MB of a million values, a malformed one,
- a 4 MB binary audio frame into a configured session (the fake speech-to-text).

The client runs in a child process, so its own work (masking 16 MB) does not take the
server's GIL; a 2 s idle baseline shows how late the ticker wakes on this machine anyway.
Each scenario must be answered (an `error`, a status) before the next one starts. Run by
hand (``python benchmarks/server_stall.py [--out FILE]``); it is not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable

import aiohttp

from sayna_client.server import LocalServer

TICK = 0.005
MB = 1_000_000


CONFIG = {
    "type": "config",
    "stt_config": {
        "provider": "deepgram",
        "language": "en-US",
        "sample_rate": 16000,
        "channels": 1,
        "punctuation": True,
        "encoding": "linear16",
        "model": "nova-3",
    },
    "tts_config": {"provider": "deepgram", "model": "", "audio_format": "linear16"},
}


def ws_text_scenarios() -> list[tuple[str, str]]:
    size = 4 * MB  # just under the default max_message_bytes (4 MiB)
    long_string = json.dumps({"type": "speak", "text": "a" * size})
    item = '"' + "b" * 198 + '"'
    many_values = '{"type":"speak","text":"hi","x":[' + ",".join([item] * 19_900) + "]}"
    small_values = '{"type":"speak","text":"hi","x":[' + ",".join(["[]"] * 19_900) + "]}"
    dense = '{"type":"speak","text":"hi","x":[' + ",".join(["1"] * (size // 2)) + "]}"
    unterminated = '{"type":"speak","text":"' + "a" * size
    deep = "[" * 1000 + "]" * 1000
    return [
        ("WS text: 4 MB string (valid speak)", long_string),
        (f"WS text: {len(many_values) / MB:.1f} MB, 19,900 strings", many_values),
        (f"WS text: {len(small_values) / MB:.2f} MB, 19,900 arrays", small_values),
        (f"WS text: {len(dense) / MB:.1f} MB, 2 million values", dense),
        ("WS text: 4 MB unterminated string", unterminated),
        ("WS text: 1,000-level nesting", deep),
    ]


def rest_scenarios() -> list[tuple[str, bytes]]:
    hook = '{"host":"h%d.test","url":"http://127.0.0.1:9/x","auth_id":""}'
    full = '{"hooks":[' + ",".join(hook % i for i in range(1_000)) + "]}"
    few = '{"hooks":[' + ",".join(hook % i for i in range(24_000)) + "]}"
    dense = '{"hooks":[' + ",".join(["1"] * 950_000) + "]}"
    malformed = '{"hooks":[' + ",".join(["[]"] * 60_000) + ",}"
    return [
        ("REST: 1,000 hooks (the most the table keeps)", full.encode()),
        (f"REST: {len(few) / MB:.1f} MB, 24,000 hooks (96,000 values)", few.encode()),
        (f"REST: {len(dense) / MB:.1f} MB, 950,000 values", dense.encode()),
        (f"REST: {len(malformed) / MB:.2f} MB malformed, 60,000 values", malformed.encode()),
    ]


class Client:
    """The hostile client's side, in a child process (so its own CPU work, such as masking
    16 MB, does not hold the server's GIL). Each scenario: ``START label``, wait for
    ``GO``, act, ``END <json>``."""

    def __init__(self) -> None:
        self.stdin = sys.stdin

    async def measure(self, label: str, action: Callable[[], Awaitable[str]]) -> None:
        print(f"START {label}", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, self.stdin.readline)
        assert line.strip() == "GO", line
        start = time.perf_counter()
        outcome = await action()
        elapsed = time.perf_counter() - start
        end = {"scenario": label, "answer": outcome, "answered_in_ms": round(elapsed * 1000, 1)}
        print("END " + json.dumps(end), flush=True)


async def run_client(url: str) -> None:
    client = Client()
    ws_url = url.replace("http://", "ws://") + "/ws"
    async with aiohttp.ClientSession() as http:

        async def idle() -> str:
            await asyncio.sleep(2.0)
            return "nothing sent (the machine's own noise)"

        await client.measure("baseline: 2 s idle", idle)
        async with http.ws_connect(ws_url, max_msg_size=0) as ws:
            for label, text in ws_text_scenarios():

                async def send_text(text: str = text) -> str:
                    await ws.send_str(text)
                    reply = await ws.receive_json(timeout=600)
                    return str(reply.get("message", reply))[:80]

                await client.measure(label, send_text)
            await ws.send_str(json.dumps(CONFIG))
            ready = await ws.receive_json(timeout=60)
            assert ready["type"] == "ready", ready

            async def send_audio() -> str:
                await ws.send_bytes(bytes(4 * MB))
                # speak after the audio: its answer comes once the audio was processed
                await ws.send_str('{"type":"speak","text":"x","flush":true}')
                while True:
                    message = await ws.receive(timeout=600)
                    if message.type == aiohttp.WSMsgType.BINARY:
                        return "audio fed to STT, then TTS audio"

            await client.measure("WS binary: 4 MB audio frame", send_audio)
        for kind in ("text", "binary"):
            async with http.ws_connect(ws_url, max_msg_size=0) as ws:

                async def too_big(
                    ws: aiohttp.ClientWebSocketResponse = ws, kind: str = kind
                ) -> str:
                    try:
                        if kind == "text":
                            await ws.send_str("[" + "1," * (8 * MB) + "1]")
                        else:
                            await ws.send_bytes(bytes(16 * MB))
                        message = await ws.receive(timeout=600)
                    except (aiohttp.ClientError, ConnectionError) as exc:
                        return f"refused while sending: {type(exc).__name__}"
                    return f"{message.type.name} {ws.close_code}"

                await client.measure(f"WS {kind}: 16 MB message (over the limit)", too_big)
        for label, body in rest_scenarios():

            async def post(body: bytes = body) -> str:
                async with http.post(
                    url + "/sip/hooks", data=body, headers={"Content-Type": "application/json"}
                ) as response:
                    text = await response.text()
                    return f"{response.status} {text[:70]}"

            await client.measure(label, post)


class Ticker:
    """Sleeps ``TICK`` at a time on the server's loop; ``worst`` is the latest wake-up."""

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(TICK)
            self.worst = max(self.worst, time.perf_counter() - start - TICK)


async def run_server() -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    if os.environ.get("STALL_DEBUG"):  # asyncio names each callback slower than 20 ms
        loop = asyncio.get_running_loop()
        loop.set_debug(True)
        loop.slow_callback_duration = 0.02
    ticker = Ticker()
    async with LocalServer() as server:
        tick_task = asyncio.ensure_future(ticker.run())
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            __file__,
            "--client",
            server.url,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            while True:
                line = (await child.stdout.readline()).decode()
                if not line:
                    break
                if line.startswith("START "):
                    await asyncio.sleep(0.05)
                    ticker.worst = 0.0
                    child.stdin.write(b"GO\n")
                    await child.stdin.drain()
                elif line.startswith("END "):
                    await asyncio.sleep(0.05)
                    result = json.loads(line[4:])
                    result["worst_stall_ms"] = round(ticker.worst * 1000, 1)
                    results.append(result)
                    print(
                        f"{result['scenario']:<52} worst stall {result['worst_stall_ms']:7.1f}"
                        f" ms   answered in {result['answered_in_ms']:8.1f} ms   "
                        f"{result['answer'][:60]}",
                        flush=True,
                    )
            assert await child.wait() == 0, "the client failed"
        finally:
            tick_task.cancel()
            if child.returncode is None:
                child.kill()
                await child.wait()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of every scenario (default: %(default)s)"
    )
    parser.add_argument("--client", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        asyncio.run(run_client(args.client))
        return 0
    load_before = os.getloadavg()
    results: list[dict[str, Any]] = []
    for run in range(args.repeat):
        print(f"--- run {run + 1} of {args.repeat}", flush=True)
        results += asyncio.run(run_server())
    summary: dict[str, dict[str, float]] = {}
    for result in results:
        entry = summary.setdefault(result["scenario"], {"runs": 0, "stalls": []})  # type: ignore[dict-item]
        entry["runs"] += 1
        entry["stalls"].append(result["worst_stall_ms"])  # type: ignore[attr-defined]
    print(f"\n{'scenario':<52} {'median':>8} {'max':>8}  (worst stall, ms)")
    for scenario, entry in summary.items():
        stalls = sorted(entry.pop("stalls"))  # type: ignore[arg-type]
        entry["median_stall_ms"] = stalls[len(stalls) // 2]
        entry["max_stall_ms"] = stalls[-1]
        print(f"{scenario:<52} {entry['median_stall_ms']:8.1f} {entry['max_stall_ms']:8.1f}")
    worst = max(result["worst_stall_ms"] for result in results)
    print(f"worst stall over all runs and scenarios: {worst:.1f} ms")
    if args.out is not None:
        args.out.write_text(
            json.dumps(
                {
                    "python": sys.version.split()[0],
                    "machine": platform.platform(),
                    "load_average_before": list(load_before),
                    "load_average_after": list(os.getloadavg()),
                    "tick_ms": TICK * 1000,
                    "worst_stall_ms": worst,
                    "summary": summary,
                    "results": results,
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
