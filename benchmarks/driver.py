"""One benchmark measure for one client, in this process; prints one JSON line.

    python driver.py --client raw|sdk --measure NAME --url http://127.0.0.1:PORT [--params JSON]

``raw`` speaks the Sayna protocol by hand with aiohttp (the limit of this stack);
``sdk`` uses whichever ``sayna_client`` this interpreter imports: this package from the
project's virtual environment, or ``sayna-client==0.0.18`` from ``benchmarks/.venv-0018``.
Only the seed's public API is used, so one file drives both SDKs; the one difference
handled is that 0.0.18's ``connect()`` returns before ``ready`` (the driver then waits
for ``register_on_ready``).

Measures (see ``run.py`` for the defaults and what each figure means): ``connect``,
``upload``, ``tts``, ``latency``, ``burst``, ``tts_busy``, ``burst_busy``, ``tts_async``,
``burst_async``, ``latency_async``, ``rss``, ``rss_seed``, ``rest_seq``, ``rest_conc``, ``cpu``. The
``_busy`` ones are ``tts`` and ``burst`` again; ``run.py`` runs them with a busy-looping
process on the same core. The ``_async`` ones register ``async def`` callbacks (raw
awaits them in its reader).
It needs the local server's ``/_local/bench`` endpoints
(:mod:`sayna_client.server.bench`).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import itertools
import json
import os
import sys
import time
import uuid
from collections.abc import Awaitable
from typing import Any, Callable, Optional

import aiohttp
from pacing import LateStats, paced_stream, percentile

try:
    import resource
except ImportError:  # not on Windows: no user / system split there
    resource = None  # type: ignore[assignment]

FRAME = bytes(640)  # 20 ms of 16 kHz mono linear16 silence (no STT results come back)

STT = {
    "provider": "deepgram",
    "language": "en-US",
    "sample_rate": 16000,
    "channels": 1,
    "punctuation": True,
    "encoding": "linear16",
    "model": "nova-2",
}
TTS = {
    "provider": "elevenlabs",
    "voice_id": "fake-alpha",
    "speaking_rate": 1.0,
    "audio_format": "linear16",
    "sample_rate": 24000,
    "connection_timeout": 30,
    "request_timeout": 60,
    "model": "",
    "pronunciations": [],
}

Handler = Callable[[Any], Any]


def _noop(_: Any) -> None:
    return None


# --- the two kinds of client ---------------------------------------------------------------


class RawSession:
    """A session by hand: a fresh ``ClientSession`` and socket, config, wait for ``ready``
    inline, then a reader task that calls plain functions (dicts for JSON events)."""

    kind = "raw"

    def __init__(
        self, url: str, stream_id: str, shared: Optional[aiohttp.ClientSession] = None
    ) -> None:
        self.url = url
        self.stream_id = stream_id
        #: A ``ClientSession`` shared with other sessions (never closed here), else own.
        self._shared = shared
        self.on_audio: Handler = _noop
        self.on_stt: Handler = _noop
        self.on_error: Handler = _noop  # nothing is ever dropped here
        #: The handlers are ``async def``: the reader awaits each call.
        self.awaits = False
        self._session: Optional[aiohttp.ClientSession] = None
        self._ws: Optional[aiohttp.ClientWebSocketResponse] = None
        self._reader: Optional[asyncio.Task[None]] = None

    @staticmethod
    def transcript(event: Any) -> str:
        return event["transcript"]  # type: ignore[no-any-return]

    async def open(self) -> None:
        if self._shared is None:
            self._session = aiohttp.ClientSession()
        ws = self._ws = await (self._shared or self._session).ws_connect(
            self.url.replace("http", "ws", 1) + "/ws"
        )
        config = {
            "type": "config",
            "audio": True,
            "stream_id": self.stream_id,
            "stt_config": STT,
            "tts_config": TTS,
        }
        await ws.send_str(json.dumps(config, separators=(",", ":")))
        async for msg in ws:
            if msg.type is aiohttp.WSMsgType.TEXT and json.loads(msg.data)["type"] == "ready":
                break
        else:
            raise ConnectionError("closed before ready")
        self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        if self.awaits:
            async for msg in self._ws:
                if msg.type is aiohttp.WSMsgType.BINARY:
                    await self.on_audio(msg.data)
                elif msg.type is aiohttp.WSMsgType.TEXT:
                    event = json.loads(msg.data)
                    if event["type"] == "stt_result":
                        await self.on_stt(event)
            return
        async for msg in self._ws:
            if msg.type is aiohttp.WSMsgType.BINARY:
                self.on_audio(msg.data)
            elif msg.type is aiohttp.WSMsgType.TEXT:
                event = json.loads(msg.data)
                if event["type"] == "stt_result":
                    self.on_stt(event)

    async def send_audio(self, frame: bytes) -> None:
        assert self._ws is not None
        await self._ws.send_bytes(frame)

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._reader is not None:
            await self._reader
        if self._session is not None:
            await self._session.close()


class RawRest:
    def __init__(self, url: str) -> None:
        self.url = url
        self._session = aiohttp.ClientSession()

    async def health(self) -> Any:
        async with self._session.get(self.url + "/") as response:
            response.raise_for_status()
            return await response.json()

    async def close(self) -> None:
        await self._session.close()


class SdkSession:
    """The same through ``SaynaClient``'s public (seed) API."""

    kind = "sdk"

    def __init__(self, url: str, stream_id: str) -> None:
        from sayna_client import SaynaClient, STTConfig, TTSConfig

        self.stream_id = stream_id
        self._client = SaynaClient(url, STTConfig(**STT), TTSConfig(**TTS), stream_id=stream_id)
        self.awaits = False  # the SDK tells plain and async callbacks apart itself
        # 0.0.18's connect() returns before `ready`; this package's returns after it.
        self._waits_for_ready = hasattr(SaynaClient, "events")
        self._ready: Optional[asyncio.Event] = None
        if not self._waits_for_ready:
            ready = self._ready = asyncio.Event()
            self._client.register_on_ready(lambda _message: ready.set())

    @staticmethod
    def transcript(event: Any) -> str:
        return event.transcript  # type: ignore[no-any-return]

    @property
    def on_audio(self) -> Handler:
        raise AttributeError("write-only")

    @on_audio.setter
    def on_audio(self, handler: Handler) -> None:
        self._client.register_on_tts_audio(handler)

    @property
    def on_stt(self) -> Handler:
        raise AttributeError("write-only")

    @on_stt.setter
    def on_stt(self, handler: Handler) -> None:
        self._client.register_on_stt_result(handler)

    @property
    def on_error(self) -> Handler:
        raise AttributeError("write-only")

    @on_error.setter
    def on_error(self, handler: Handler) -> None:
        self._client.register_on_error(handler)

    async def open(self) -> None:
        await self._client.connect()
        if self._ready is not None:
            await self._ready.wait()

    async def send_audio(self, frame: bytes) -> None:
        await self._client.on_audio_input(frame)

    async def close(self) -> None:
        await self._client.disconnect()


class SdkRest:
    def __init__(self, url: str) -> None:
        from sayna_client import SaynaClient, STTConfig, TTSConfig

        self._client = SaynaClient(url, STTConfig(**STT), TTSConfig(**TTS))

    async def health(self) -> Any:
        return await self._client.health()

    async def close(self) -> None:
        await self._client.disconnect()
        # 0.0.18's disconnect() returns early when no WebSocket was opened and leaves its
        # REST session open; close it so the process exits without warnings.
        http = getattr(self._client, "_http_client", None)
        if http is not None:
            await http.close()


# --- helpers ---------------------------------------------------------------------------------


class Control:
    """The local server's ``/_local/bench`` endpoints (outside the measured windows)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._session = aiohttp.ClientSession()

    async def counts(self, stream_id: str) -> dict[str, Any]:
        async with self._session.get(
            self.url + "/_local/bench/sessions", params={"stream_id": stream_id}
        ) as response:
            sessions = (await response.json())["sessions"]
        return sessions[-1]  # type: ignore[no-any-return]

    async def wait_frames(self, stream_id: str, target: int, timeout: float) -> int:
        """Poll until the server counted ``target`` audio frames; returns the last count."""
        deadline = time.perf_counter() + timeout
        seen = 0
        while time.perf_counter() < deadline:
            seen = (await self.counts(stream_id))["audio_frames"]
            if seen >= target:
                break
            await asyncio.sleep(0.002)
        return seen

    async def burst(self, stream_id: str, kind: str, count: int, interval_ms: float = 0) -> None:
        async with self._session.post(
            f"{self.url}/_local/bench/{stream_id}/burst",
            json={"kind": kind, "count": count, "size": len(FRAME), "interval_ms": interval_ms},
        ) as response:
            if response.status != 202:
                raise RuntimeError(f"burst refused: {response.status} {await response.text()}")

    async def close(self) -> None:
        await self._session.close()


def rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS in /proc/self/status")


def new_session(client: str, url: str) -> Any:
    cls = RawSession if client == "raw" else SdkSession
    return cls(url, f"bench-{uuid.uuid4().hex[:12]}")


class Arrivals:
    """Counts callback entries and when the last one came.

    The rate runs from :meth:`start` (just before the burst is requested) to the last
    entry: from the first entry instead would flatter clients that queue events before
    dispatching them.
    """

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.count = 0
        self.dropped = 0
        self.started = 0.0
        self.last = 0.0
        self.done = asyncio.Event()

    def start(self) -> None:
        self.started = time.perf_counter()

    def __call__(self, _event: Any) -> None:
        self.count += 1
        self.last = time.perf_counter()
        if self.count + self.dropped >= self.expected:
            self.done.set()

    def on_error(self, event: Any) -> None:
        """This SDK reports events its bounded queues discarded (``EventsDropped``)."""
        if getattr(event, "type", None) == "events_dropped":
            self.dropped += int(event.count)
            if self.count + self.dropped >= self.expected:
                self.done.set()

    def rate(self) -> float:
        """Delivered items per second (discarded ones do not count)."""
        return self.count / (self.last - self.started)


async def _wait(event: asyncio.Event, timeout: float, what: str) -> None:
    try:
        await asyncio.wait_for(event.wait(), timeout)
    except asyncio.TimeoutError as exc:
        raise RuntimeError(f"{what} did not complete within {timeout} s") from exc


# --- measures --------------------------------------------------------------------------------


async def m_connect(client: str, url: str, control: Control, p: dict[str, Any]) -> dict[str, Any]:
    times: list[float] = []
    for index in range(p["warmup"] + p["count"]):
        session = new_session(client, url)
        started = time.perf_counter()
        await session.open()
        elapsed = time.perf_counter() - started
        await session.close()
        if index >= p["warmup"]:
            times.append(elapsed * 1e3)
    return {"p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95)}


async def m_upload(client: str, url: str, control: Control, p: dict[str, Any]) -> dict[str, Any]:
    session = new_session(client, url)
    await session.open()
    count = p["frames"]
    send = session.send_audio
    for _ in range(200):  # warm-up, not counted in the rate
        await send(FRAME)
    target = 200 + count
    await control.wait_frames(session.stream_id, 200, 30)
    usage0 = resource.getrusage(resource.RUSAGE_SELF) if resource else None
    cpu0, started = time.process_time(), time.perf_counter()
    for _ in range(count):
        await send(FRAME)
    sent_at, cpu = time.perf_counter(), time.process_time() - cpu0
    split = {}
    if usage0 is not None:
        # The kernel's share (the loopback TCP path) varies per run; see PROFILE.md.
        usage = resource.getrusage(resource.RUSAGE_SELF)
        split = {
            "user_us_per_frame": (usage.ru_utime - usage0.ru_utime) / count * 1e6,
            "system_us_per_frame": (usage.ru_stime - usage0.ru_stime) / count * 1e6,
        }
    seen = await control.wait_frames(session.stream_id, target, 120)
    confirmed = time.perf_counter()
    await session.close()
    if seen != target:
        raise RuntimeError(f"server counted {seen} frames, sent {target}")
    return {
        "frames_per_s": count / (confirmed - started),
        "send_frames_per_s": count / (sent_at - started),
        "cpu_us_per_frame": cpu / count * 1e6,
        **split,
    }


def _async_handler(handler: Callable[[Any], None]) -> Callable[[Any], Awaitable[None]]:
    """``handler`` as an ``async def`` callback (the ``_async`` measures)."""

    async def call(event: Any) -> None:
        handler(event)

    return call


def _handler(handler: Callable[[Any], None], use_async: bool) -> Any:
    return _async_handler(handler) if use_async else handler


async def m_tts(
    client: str, url: str, control: Control, p: dict[str, Any], use_async: bool = False
) -> dict[str, Any]:
    session = new_session(client, url)
    session.awaits = use_async
    warm = Arrivals(500)
    session.on_audio = _handler(warm, use_async)
    await session.open()
    await control.burst(session.stream_id, "audio", 500)
    await _wait(warm.done, 30, "warm-up")
    await session.close()
    # A fresh session so only one callback is registered (SDK callbacks cannot be
    # swapped without unsubscribing, which 0.0.18 lacks).
    session = new_session(client, url)
    session.awaits = use_async
    arrivals = Arrivals(p["frames"])
    session.on_audio = _handler(arrivals, use_async)
    session.on_error = arrivals.on_error
    await session.open()
    cpu0 = time.process_time()
    arrivals.start()
    await control.burst(session.stream_id, "audio", p["frames"])
    await _wait(arrivals.done, 300, "audio burst")
    cpu = time.process_time() - cpu0
    await session.close()
    return {
        "frames_per_s": arrivals.rate(),
        "cpu_us_per_frame": cpu / p["frames"] * 1e6,
        "dropped": arrivals.dropped,
    }


async def m_latency(
    client: str, url: str, control: Control, p: dict[str, Any], use_async: bool = False
) -> dict[str, Any]:
    session = new_session(client, url)
    session.awaits = use_async
    transcript = session.transcript
    latencies: list[float] = []
    expected = [p["warmup"]]
    done = asyncio.Event()

    def on_stt(event: Any) -> None:
        latencies.append(time.monotonic_ns() - int(transcript(event)))
        if len(latencies) == expected[0]:
            done.set()

    session.on_stt = _handler(on_stt, use_async)
    await session.open()
    await control.burst(session.stream_id, "stt", p["warmup"], p["interval_ms"])
    await _wait(done, 60, "warm-up")
    latencies.clear()
    done.clear()
    expected[0] = p["events"]
    await control.burst(session.stream_id, "stt", p["events"], p["interval_ms"])
    await _wait(done, 60 + p["events"] * p["interval_ms"] / 1000 * 3, "paced events")
    await session.close()
    micros = [value / 1e3 for value in latencies]
    return {"p50_us": percentile(micros, 0.5), "p99_us": percentile(micros, 0.99)}


async def m_burst(
    client: str, url: str, control: Control, p: dict[str, Any], use_async: bool = False
) -> dict[str, Any]:
    session = new_session(client, url)
    session.awaits = use_async
    warm_done = asyncio.Event()
    arrivals = Arrivals(p["events"])
    seen = [0]

    def on_stt(event: Any) -> None:
        if seen[0] < 500:  # the first 500 are the warm-up burst
            seen[0] += 1
            if seen[0] == 500:
                warm_done.set()
            return
        arrivals(event)

    session.on_stt = _handler(on_stt, use_async)
    session.on_error = arrivals.on_error
    await session.open()
    await control.burst(session.stream_id, "stt", 500)
    await _wait(warm_done, 30, "warm-up")
    cpu0 = time.process_time()
    arrivals.start()
    await control.burst(session.stream_id, "stt", p["events"])
    await _wait(arrivals.done, 300, "event burst")
    cpu = time.process_time() - cpu0
    await session.close()
    return {
        "events_per_s": arrivals.rate(),
        "cpu_us_per_event": cpu / p["events"] * 1e6,
        "dropped": arrivals.dropped,
    }


async def _open_many(
    client: str, url: str, count: int, parallel: int = 10, make: Optional[Callable[[], Any]] = None
) -> list[Any]:
    sessions = [make() if make else new_session(client, url) for _ in range(count)]
    for start in range(0, count, parallel):
        await asyncio.gather(*(s.open() for s in sessions[start : start + parallel]))
    return sessions


async def _close_many(sessions: list[Any], parallel: int = 20) -> None:
    for start in range(0, len(sessions), parallel):
        await asyncio.gather(*(s.close() for s in sessions[start : start + parallel]))


async def m_rss(client: str, url: str, control: Control, p: dict[str, Any]) -> dict[str, Any]:
    await _close_many(await _open_many(client, url, 5))  # import and warm lazy paths
    gc.collect()
    await asyncio.sleep(0.3)
    before = rss_kib()
    sessions = await _open_many(client, url, p["sessions"])
    await asyncio.sleep(p["idle_s"])
    gc.collect()
    after = rss_kib()
    await _close_many(sessions)
    return {"kib_per_session": (after - before) / p["sessions"]}


async def m_rss_seed(client: str, url: str, control: Control, p: dict[str, Any]) -> dict[str, Any]:
    """RSS per idle session as users write them: raw sessions share one ``ClientSession``
    (the cheapest way to hold many sockets with aiohttp); each SDK session is a
    ``SaynaClient`` of its own with three callbacks registered (audio, result, error)."""
    shared = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    def make() -> Any:
        stream_id = f"bench-{uuid.uuid4().hex[:12]}"
        if client == "raw":
            return RawSession(url, stream_id, shared)
        session = SdkSession(url, stream_id)
        session.on_audio = _noop
        session.on_stt = _noop
        session.on_error = _noop
        return session

    try:
        await _close_many(await _open_many(client, url, 5, make=make))  # warm lazy paths
        gc.collect()
        await asyncio.sleep(0.3)
        before = rss_kib()
        sessions = await _open_many(client, url, p["sessions"], make=make)
        await asyncio.sleep(p["idle_s"])
        gc.collect()
        after = rss_kib()
        await _close_many(sessions)
    finally:
        await shared.close()
    return {"kib_per_session": (after - before) / p["sessions"]}


async def _rest(client: str, url: str, total: int, parallel: int) -> float:
    rest: Any = RawRest(url) if client == "raw" else SdkRest(url)
    try:
        for _ in range(50):
            await rest.health()
        counter = itertools.count()

        async def worker() -> None:
            while next(counter) < total:
                await rest.health()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(parallel)))
        return total / (time.perf_counter() - started)
    finally:
        await rest.close()


async def m_rest_seq(client: str, url: str, control: Control, p: dict[str, Any]) -> dict[str, Any]:
    return {"req_per_s": await _rest(client, url, p["requests"], 1)}


async def m_rest_conc(client: str, url: str, control: Control, p: dict[str, Any]) -> dict[str, Any]:
    return {"req_per_s": await _rest(client, url, p["requests"], p["parallel"])}


async def m_cpu(client: str, url: str, control: Control, p: dict[str, Any]) -> dict[str, Any]:
    count, period = p["sessions"], 0.020
    sessions = await _open_many(client, url, count)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    stats = LateStats()
    base = loop.time() + 0.1
    streams = [
        loop.create_task(
            paced_stream(
                s.send_audio,
                (FRAME,),
                period,
                start=base + period * i / count,  # spread the streams over a frame period
                stop=stop,
                stats=stats,
            )
        )
        for i, s in enumerate(sessions)
    ]
    await asyncio.sleep(p["warmup_s"])
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.sleep(p["window_s"])
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    stop.set()
    sent = sum(await asyncio.gather(*streams))
    await _close_many(sessions)
    late = stats.summary()
    return {
        "core_ms_per_stream_s": cpu / (count * wall) * 1e3,
        "cpu_percent": cpu / wall * 100,
        "frames": sent,
        "late_p99_ms": late["p99_ms"],
        "late_over_period": late["late_over_period"],
    }


MEASURES: dict[str, Callable[[str, str, Control, dict[str, Any]], Awaitable[dict[str, Any]]]] = {
    "connect": m_connect,
    "upload": m_upload,
    "tts": m_tts,
    "latency": m_latency,
    "burst": m_burst,
    # The same, while run.py keeps this process's core busy with another process.
    "tts_busy": m_tts,
    "burst_busy": m_burst,
    # The same with `async def` callbacks.
    "tts_async": lambda c, u, ctl, p: m_tts(c, u, ctl, p, use_async=True),
    "burst_async": lambda c, u, ctl, p: m_burst(c, u, ctl, p, use_async=True),
    "latency_async": lambda c, u, ctl, p: m_latency(c, u, ctl, p, use_async=True),
    "rss": m_rss,
    "rss_seed": m_rss_seed,
    "rest_seq": m_rest_seq,
    "rest_conc": m_rest_conc,
    "cpu": m_cpu,
}


def sdk_version(client: str) -> str:
    if client == "raw":
        return f"aiohttp {aiohttp.__version__}"
    import sayna_client

    return f"sayna-client {getattr(sayna_client, '__version__', '?')}"


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    control = Control(args.url)
    try:
        values = await MEASURES[args.measure](
            args.client, args.url, control, json.loads(args.params)
        )
    finally:
        await control.close()
    return {
        "client": args.client,
        "version": sdk_version(args.client),
        "measure": args.measure,
        "values": values,
    }


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--client", choices=("raw", "sdk"), required=True)
    parser.add_argument("--measure", choices=sorted(MEASURES), required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--params", default="{}", help="JSON object of measure parameters")
    parser.add_argument("--cpu", type=int, default=None, help="pin this process to one CPU")
    args = parser.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    result = asyncio.run(main_async(args))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
