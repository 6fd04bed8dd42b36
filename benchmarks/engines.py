"""Accuracy, speed and cost of the ``local`` engine: Whisper + Silero + Piper against
pocketsphinx + espeak-ng. One command writes ``benchmarks/ENGINES.md``::

    python benchmarks/engines.py            # about 10 minutes on 2 cores
    python benchmarks/engines.py --quick    # fewer clips, no install-size measurement
    python benchmarks/engines.py --tts-stall  # only the synthesis stall rows (~2 min), printed
    python benchmarks/engines.py --stt-stall --rounds 5  # only the 20-stream stall rows (~2 min)

Every STT figure comes from audio streamed through ``sayna serve --engine local`` (a
subprocess) with ``SaynaClient`` in 20 ms frames at real time. The legacy engines run
in the same server with ``SAYNA_LOCAL_NEURAL=0``. Test audio: ``tests/data/speech``
(LibriVox public-domain recordings and CMU Sphinx test recordings; see its README).

Definitions:
* WER: word errors / reference words after normalisation (``sayna_client._wer``).
* final after endpoint: wall time from the moment the endpoint's silence window has been
  streamed (end of speech + 0.5 s for Silero, + 0.7 s for pocketsphinx's) to
  the final's arrival. End of speech: the last 20 ms frame above 10 % of the clip's
  95th-percentile frame RMS.
* CPU per stream: the CPU seconds of the server and its speech worker process / wall
  seconds while one stream runs. Peak RSS: the sum of both processes' peaks.
* RTF offline: decode time / audio time, in-process, no pacing. TTS RTF: synthesis
  time / audio time; first audio: time to the first chunk of a sentence.
* worst loop stall: the largest lateness of a 5 ms timer on the server's event loop while
  20 streams run (clients in this process, server in a subprocess), next to the same
  timer on the idle server (the machine's own noise) and, for Whisper, the same run with
  Whisper on threads of the server instead of its worker process; and while 4 or 20
  ``/speak`` requests (six sentences each) synthesize at once, with Piper in the worker
  process and (``--tts-stall``) on threads of the server (``SAYNA_LOCAL_TTS_PROCESS=0``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SPEECH = ROOT / "tests" / "data" / "speech"
sys.path.insert(0, str(ROOT / "src"))

from sayna_client import SaynaClient, STTConfig, TTSConfig  # noqa: E402
from sayna_client._wer import word_errors  # noqa: E402
from sayna_client.audio import linear16_to_mulaw  # noqa: E402

RATE = 16000
DEMO = "Hello from Sayna. I would like a cup of coffee, please."
EVERYDAY = [
    "Good morning, how are you today?",
    "Can you tell me the way to the train station?",
    "I would like to book a table for two at seven.",
    "Please call me back when you get this message.",
    "The weather is nice, let's go for a walk.",
    "My order number is on the receipt.",
    "Could you speak a little more slowly, please?",
    "We need to buy milk, bread and eggs.",
    "The meeting has been moved to Thursday afternoon.",
    "Thank you very much for your help.",
    "Where did you put the car keys?",
    "I am sorry, I did not hear what you said.",
    "Turn left at the next traffic light.",
    "What time does the store open tomorrow?",
    "She is reading a book in the garden.",
    "Let me know if you have any questions.",
]
#: Silence after speech before each engine sends the speech-final (Silero endpoint; for
#: pocketsphinx, the 0.3 s endpointer plus the 0.4 s it holds the final for).
ENDPOINT_WINDOW = {"neural": 0.5, "legacy": 0.7}


def clips() -> list[tuple[str, bytes, str]]:
    rows = [line.split("\t") for line in (SPEECH / "transcripts.tsv").read_text().splitlines()]
    out = []
    for name, text in rows:
        with wave.open(str(SPEECH / name)) as clip:
            out.append((name, clip.readframes(clip.getnframes()), text))
    return out


def speech_end(pcm: bytes, rate: int = RATE) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frame = rate // 50
    rms = np.sqrt(np.mean(samples[: len(samples) // frame * frame].reshape(-1, frame) ** 2, 1))
    threshold = 0.1 * np.percentile(rms, 95)
    loud = np.nonzero(rms > threshold)[0]
    return float((loud[-1] + 1) * 0.02) if len(loud) else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """``sayna serve --engine local`` in a subprocess, with a loop-stall monitor."""

    def __init__(self, neural: bool, stt_process: bool = True, tts_process: bool = True) -> None:
        self.port = free_port()
        env = dict(
            os.environ,
            SAYNA_LOCAL_NEURAL="1" if neural else "0",
            SAYNA_LOCAL_STT_PROCESS="1" if stt_process else "0",
            SAYNA_LOCAL_TTS_PROCESS="1" if tts_process else "0",
        )
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(self.port)],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"server did not start: {line!r}")
        self.url = f"http://127.0.0.1:{self.port}"

    def pids(self) -> list[int]:
        """The server and its descendants (the speech worker process)."""
        found, todo = [], [self.proc.pid]
        while todo:
            pid = todo.pop()
            found.append(pid)
            for task in Path(f"/proc/{pid}/task").glob("*/children"):
                todo.extend(int(child) for child in task.read_text().split())
        return found

    def cpu_seconds(self) -> float:
        total = 0
        for pid in self.pids():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def own_cpu_seconds(self) -> float:
        """CPU seconds of the server's own process (not its worker)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def peak_rss_mb(self) -> float:
        """Sum of the peak RSS of the server and its worker process."""
        total = 0.0
        for pid in self.pids():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        return total

    def stalls(self, reset: bool = True) -> dict[str, float]:
        assert self.proc.stdin is not None
        assert self.proc.stdout is not None
        self.proc.stdin.write("stalls reset\n" if reset else "stalls\n")
        self.proc.stdin.flush()
        return dict(json.loads(self.proc.stdout.readline()))

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(30)


def serve(port: int) -> None:
    """Subprocess side: LocalServer(engine="local") plus a 5 ms timer measuring lateness."""
    import gc

    from sayna_client.server import LocalServer

    pauses: list[float] = []
    started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append(time.perf_counter() - started[0])

    gc.callbacks.append(on_gc)

    async def main() -> None:
        lateness: list[float] = []
        async with LocalServer(engine="local", port=port, stt_hint="Sayna", keep_audio=0):
            loop = asyncio.get_running_loop()

            async def monitor() -> None:
                while True:
                    start = loop.time()
                    await asyncio.sleep(0.005)
                    lateness.append(loop.time() - start - 0.005)

            task = asyncio.ensure_future(monitor())
            print("ready", flush=True)
            reader = asyncio.StreamReader()
            await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
            while line := (await reader.readline()).decode():
                worst = max(lateness, default=0.0)
                p99 = float(np.percentile(lateness, 99)) if lateness else 0.0
                gc_ms = max(pauses, default=0.0) * 1000
                print(
                    json.dumps({"max_ms": worst * 1000, "p99_ms": p99 * 1000, "gc_max_ms": gc_ms}),
                    flush=True,
                )
                if "reset" in line:
                    lateness.clear()
                    pauses.clear()
            task.cancel()

    asyncio.run(main())


async def stream(
    url: str, pcm: bytes, rate: int = RATE, mulaw: bool = False, speed: float = 1.0
) -> tuple[str, list[float], float]:
    """Stream ``pcm`` (16-bit at ``rate``) in 20 ms frames, then 1.5 s of silence; return
    the finals' text, their arrival times and the time streaming started."""
    stt = STTConfig(
        provider="deepgram", sample_rate=rate, encoding="mulaw" if mulaw else "linear16"
    )
    audio = pcm + bytes(int(rate * 1.5) * 2)
    if mulaw:
        audio = linear16_to_mulaw(audio)
    step = rate // 50 * (1 if mulaw else 2)
    finals: list[str] = []
    arrivals: list[float] = []
    loop = asyncio.get_running_loop()
    async with SaynaClient(url, stt, TTSConfig(provider="deepgram")) as client:
        turn_open = [False]
        last = [loop.time()]

        def on_result(result: Any) -> None:
            turn_open[0] = not result.is_speech_final
            last[0] = loop.time()
            if result.is_final and result.transcript:
                finals.append(result.transcript)
                arrivals.append(loop.time())

        client.register_on_stt_result(on_result)
        await client.connect()
        start = loop.time()
        for index, offset in enumerate(range(0, len(audio), step)):
            delay = start + index * 0.02 / speed - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            await client.on_audio_input(audio[offset : offset + step])
        # A loaded server may still be decoding: wait for the turn to close and 2 s of
        # quiet (at most 30 s).
        deadline = loop.time() + 30.0
        while True:  # a poll: the condition mixes events and elapsed time
            now = loop.time()
            if now >= deadline or (not turn_open[0] and now - last[0] >= 2.0):
                break
            await asyncio.sleep(0.05)
    return " ".join(finals), arrivals, start


def wer_of(pairs: list[tuple[str, str]]) -> float:
    errors = words = 0
    for reference, hypothesis in pairs:
        e, n = word_errors(reference, hypothesis)
        errors, words = errors + e, words + n
    return errors / max(1, words)


async def stt_figures(server: Server, kind: str, quick: bool) -> dict[str, Any]:
    import soxr

    data = clips()[:4] if quick else clips()
    results: dict[str, Any] = {}
    pairs, latencies, cpu, wall = [], [], 0.0, 0.0
    for _name, pcm, text in data:
        cpu0, t0 = server.cpu_seconds(), time.perf_counter()
        heard, arrivals, start = await stream(server.url, pcm)
        cpu += server.cpu_seconds() - cpu0
        wall += time.perf_counter() - t0
        pairs.append((text, heard))
        if arrivals:
            endpoint = start + speech_end(pcm) + ENDPOINT_WINDOW[kind]
            latencies.append(arrivals[-1] - endpoint)
    results["wer_human"] = wer_of(pairs)
    results["human_examples"] = pairs[:2]
    results["final_latency_ms"] = statistics.median(latencies) * 1000 if latencies else None
    results["cpu_per_stream"] = cpu / wall
    phone = []
    for _name, pcm, text in data:
        narrow = soxr.resample(np.frombuffer(pcm, dtype="<i2"), RATE, 8000).astype("<i2")
        heard, _, _ = await stream(server.url, narrow.tobytes(), rate=8000, mulaw=True)
        phone.append((text, heard))
    results["wer_phone"] = wer_of(phone)
    gap = bytes(int(RATE * 0.3) * 2)
    passage = gap.join(pcm for _, pcm, _ in data)
    reference = " ".join(text for _, _, text in data)
    heard, _, _ = await stream(server.url, passage)
    results["passage_seconds"] = len(passage) / 2 / RATE
    results["wer_passage"] = wer_of([(reference, heard)])
    return results


async def round_trip(server: Server, quick: bool) -> dict[str, Any]:
    sentences = [DEMO, *(EVERYDAY[:4] if quick else EVERYDAY)]
    pairs = []
    tts = TTSConfig(provider="elevenlabs", sample_rate=RATE)
    async with SaynaClient(server.url, without_audio=True) as client:
        spoken = [(await client.speak_rest(text, tts))[0] for text in sentences]
    for text, pcm in zip(sentences, spoken):
        heard, _, _ = await stream(server.url, pcm, speed=2.0)
        pairs.append((text, heard))
    worst = max(pairs, key=lambda p: word_errors(*p)[0])
    return {"wer_round_trip": wer_of(pairs), "round_trip_worst": worst}


async def loop_stall(server: Server, streams: int) -> dict[str, float]:
    pcm = clips()[0][1] * 2
    server.stalls(reset=True)
    await asyncio.sleep(5)  # the same timer on an idle server: the machine's own noise
    idle = server.stalls(reset=True)
    await asyncio.gather(*(stream(server.url, pcm) for _ in range(streams)))
    busy = server.stalls(reset=True)
    return {**busy, "idle_max_ms": idle["max_ms"], "idle_p99_ms": idle["p99_ms"]}


async def tts_stall(server: Server, requests: int) -> dict[str, float]:
    """The loop's lateness while ``requests`` ``/speak`` calls synthesize at once."""
    text = " ".join(EVERYDAY[:6])
    tts = TTSConfig(provider="elevenlabs", sample_rate=RATE)
    server.stalls(reset=True)
    async with SaynaClient(server.url, without_audio=True) as client:
        await asyncio.gather(*(client.speak_rest(text, tts) for _ in range(requests)))
    return server.stalls(reset=True)


async def offline_figures(kind: str) -> dict[str, Any]:
    """In-process: STT RTF without pacing, TTS RTF and first-audio latency."""
    from sayna_client.server.engines.base import STTParams, TTSRequest
    from sayna_client.server.engines.local import LocalEngine

    engine = LocalEngine(stt_workers=1, neural=kind == "neural")
    await engine.start()
    out: dict[str, Any] = {}
    try:
        audio_s = busy = 0.0
        for _, pcm, _ in clips():
            stream_ = engine.open_stt(STTParams())
            t0 = time.perf_counter()
            await stream_.feed(pcm + bytes(RATE))
            await stream_.finish()
            busy += time.perf_counter() - t0
            audio_s += len(pcm) / 2 / RATE + 0.5
            stream_.close()
        out["stt_rtf_offline"] = busy / audio_s
        firsts, synth_s, spoken_s = [], 0.0, 0.0
        for text in EVERYDAY:
            request = TTSRequest(text=text, sample_rate=RATE)
            t0 = time.perf_counter()
            chunks = []
            async for chunk in engine.synthesize(request):
                if not chunks:
                    firsts.append(time.perf_counter() - t0)
                chunks.append(chunk)
            synth_s += time.perf_counter() - t0
            spoken_s += sum(map(len, chunks)) / 2 / RATE
        out["tts_rtf"] = synth_s / spoken_s
        out["tts_first_audio_ms"] = statistics.median(firsts) * 1000
    finally:
        engine.close()
    return out


def install_size(requirements: list[str]) -> dict[str, float]:
    target = Path(tempfile.mkdtemp(prefix="sayna-size-"))
    try:
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", str(target), *requirements],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        seconds = time.perf_counter() - t0
        size = sum(f.stat().st_size for f in target.rglob("*") if f.is_file())
        return {"mb": size / 1e6, "seconds": seconds}
    finally:
        shutil.rmtree(target, ignore_errors=True)


def demo_time(kind: str) -> float:
    env = dict(os.environ, SAYNA_LOCAL_NEURAL="1" if kind == "neural" else "0")
    sayna = Path(sys.executable).with_name("sayna")
    with tempfile.TemporaryDirectory() as folder:
        t0 = time.perf_counter()
        subprocess.run(
            [str(sayna), "demo", "--speed", "4", "--output-dir", folder],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return time.perf_counter() - t0


async def measure(kind: str, quick: bool) -> dict[str, Any]:
    load_before = os.getloadavg()
    print(f"[{kind}] offline figures", file=sys.stderr)
    figures = await offline_figures(kind)
    server = Server(neural=kind == "neural")
    try:
        print(f"[{kind}] streaming human speech", file=sys.stderr)
        figures.update(await stt_figures(server, kind, quick))
        print(f"[{kind}] round trips", file=sys.stderr)
        figures.update(await round_trip(server, quick))
        print(f"[{kind}] 20 streams", file=sys.stderr)
        stalls = await loop_stall(server, 20)
        figures["stall_max_ms"], figures["stall_p99_ms"] = stalls["max_ms"], stalls["p99_ms"]
        figures["idle_max_ms"], figures["idle_p99_ms"] = (
            stalls["idle_max_ms"],
            stalls["idle_p99_ms"],
        )
        print(f"[{kind}] 4 and 20 concurrent TTS requests", file=sys.stderr)
        for requests in (4, 20):
            stalls = await tts_stall(server, requests)
            figures[f"tts_stall_{requests}"] = (stalls["max_ms"], stalls["p99_ms"])
        figures["peak_rss_mb"] = server.peak_rss_mb()
    finally:
        server.close()
    if kind == "neural":
        print(f"[{kind}] 20 streams, Whisper on threads of the server", file=sys.stderr)
        threaded = Server(neural=True, stt_process=False)
        try:
            stalls = await loop_stall(threaded, 20)
            figures["thread_stall_max_ms"] = stalls["max_ms"]
            figures["thread_stall_p99_ms"] = stalls["p99_ms"]
        finally:
            threaded.close()
    figures["demo_seconds"] = demo_time(kind)
    figures["load"] = (load_before, os.getloadavg())
    return figures


def report(results: dict[str, dict[str, Any]], sizes: dict[str, Any], args: Any) -> str:
    n, legacy = results["neural"], results["legacy"]

    def pct(v: float) -> str:
        return f"{100 * v:.1f} %"

    def num(v: Any, fmt: str = "{:.3f}") -> str:
        return "-" if v is None else fmt.format(v)

    rows = [
        ("WER, read human speech (16 kHz)", pct(n["wer_human"]), pct(legacy["wer_human"])),
        ("WER, same via 8 kHz mu-law", pct(n["wer_phone"]), pct(legacy["wer_phone"])),
        (
            f"WER, {n['passage_seconds']:.0f} s passage (one stream)",
            pct(n["wer_passage"]),
            pct(legacy["wer_passage"]),
        ),
        (
            "WER, TTS -> STT round trip (17 sentences)",
            pct(n["wer_round_trip"]),
            pct(legacy["wer_round_trip"]),
        ),
        (
            "final after endpoint, median (ms)",
            num(n["final_latency_ms"], "{:.0f}"),
            num(legacy["final_latency_ms"], "{:.0f}"),
        ),
        ("STT RTF offline (1 thread)", num(n["stt_rtf_offline"]), num(legacy["stt_rtf_offline"])),
        (
            "CPU per real-time stream (cores)",
            num(n["cpu_per_stream"], "{:.2f}"),
            num(legacy["cpu_per_stream"], "{:.2f}"),
        ),
        ("TTS RTF", num(n["tts_rtf"]), num(legacy["tts_rtf"])),
        (
            "TTS first audio, median (ms)",
            num(n["tts_first_audio_ms"], "{:.0f}"),
            num(legacy["tts_first_audio_ms"], "{:.0f}"),
        ),
        (
            "server peak RSS (MB)",
            num(n["peak_rss_mb"], "{:.0f}"),
            num(legacy["peak_rss_mb"], "{:.0f}"),
        ),
        (
            "worst loop stall, 20 streams (ms)",
            num(n["stall_max_ms"], "{:.1f}"),
            num(legacy["stall_max_ms"], "{:.1f}"),
        ),
        (
            "same timer on the idle server: worst / p99 (ms)",
            f"{n['idle_max_ms']:.1f} / {n['idle_p99_ms']:.1f}",
            f"{legacy['idle_max_ms']:.1f} / {legacy['idle_p99_ms']:.1f}",
        ),
        (
            "loop stall p99, 20 streams (ms)",
            num(n["stall_p99_ms"], "{:.1f}"),
            num(legacy["stall_p99_ms"], "{:.1f}"),
        ),
        (
            "same with Whisper on threads of the server: worst / p99 (ms)",
            f"{n['thread_stall_max_ms']:.1f} / {n['thread_stall_p99_ms']:.1f}",
            "-",
        ),
        *(
            (
                f"loop stall, {requests} concurrent TTS requests: worst / p99 (ms)",
                "{:.1f} / {:.1f}".format(*n[f"tts_stall_{requests}"]),
                "{:.1f} / {:.1f}".format(*legacy[f"tts_stall_{requests}"]),
            )
            for requests in (4, 20)
        ),
        (
            "`sayna demo --speed 4`, first run (s)",
            num(n["demo_seconds"], "{:.1f}"),
            num(legacy["demo_seconds"], "{:.1f}"),
        ),
    ]
    if sizes:
        rows.append(
            (
                "install size of [local] (MB, unpacked)",
                f"{sizes['neural']['mb']:.0f}",
                f"{sizes['legacy']['mb']:.0f}",
            )
        )
        rows.append(
            (
                "install time of [local] (s, pip cache warm)",
                f"{sizes['neural']['seconds']:.0f}",
                f"{sizes['legacy']['seconds']:.0f}",
            )
        )
    lines = [
        "# Local engine benchmarks",
        "",
        f"`python benchmarks/engines.py{' --quick' if args.quick else ''}` on "
        f"{os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (finished). The machine is "
        "shared: load average (1/5/15 min) at the start and end of each column: "
        + "; ".join(
            f"{kind} {' / '.join(f'{v:.1f}' for v in results[kind]['load'][0])} -> "
            f"{' / '.join(f'{v:.1f}' for v in results[kind]['load'][1])}"
            for kind in ("neural", "legacy")
        )
        + ". Times on a loaded machine are upper bounds.",
        "",
        "| measure | Whisper tiny.en + Silero VAD + Piper joe | pocketsphinx + espeak-ng |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
        "Examples (reference -> heard, Whisper):",
        "",
        *(f"- {ref!r} -> {hyp!r}" for ref, hyp in n["human_examples"]),
        f"- round trip, worst: {n['round_trip_worst'][0]!r} -> {n['round_trip_worst'][1]!r}",
        "",
        "Definitions are in the docstring of `benchmarks/engines.py`.",
    ]
    return "\n".join(lines) + "\n"


async def tts_stall_only(rounds: int) -> str:
    """The synthesis stall rows only: Piper in the worker process vs on server threads."""
    lines = [
        "| Piper runs in | /speak at once | worst / p99 stall (ms) | idle worst (ms) "
        "| server process CPU (s) | load |",
        "|---|---|---|---|---|---|",
    ]
    for _ in range(rounds):
        for in_process in (True, False):
            server = Server(neural=True, tts_process=in_process)
            try:
                await tts_stall(server, 1)  # warm-up: the first synthesis fills caches
                for requests in (4, 20):
                    server.stalls(reset=True)
                    await asyncio.sleep(3)
                    idle = server.stalls(reset=True)
                    before = os.getloadavg()[0]
                    cpu = server.own_cpu_seconds()
                    stalls = await tts_stall(server, requests)
                    cpu = server.own_cpu_seconds() - cpu
                    after = os.getloadavg()[0]
                    where = "worker process" if in_process else "server threads"
                    lines.append(
                        f"| {where} | {requests} | {stalls['max_ms']:.1f} / "
                        f"{stalls['p99_ms']:.1f} | {idle['max_ms']:.1f} | {cpu:.2f} | "
                        f"{before:.1f} -> {after:.1f} |"
                    )
                    print(lines[-1], file=sys.stderr)
            finally:
                server.close()
    return "\n".join(lines)


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def stt_stall_only(rounds: int, streams: int = 20) -> str:
    """The 20-stream loop-stall rows only, ``rounds`` times on one server (Whisper in its
    worker process), each with the load average before and after: the figure of issue
    #15 item 8 (< 20 ms), re-measured in about two minutes."""
    lines = [
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {_commit()}, "
        f"{os.cpu_count()} CPUs, {streams} streams at real time",
        "",
        "| round | worst / p99 stall (ms) | idle server worst / p99 (ms) | GC worst (ms) "
        "| load (1 min) |",
        "|---|---|---|---|---|",
    ]
    server = Server(neural=True)
    try:
        await loop_stall(server, 2)  # warm-up: the first decodes fill caches
        for round_ in range(1, rounds + 1):
            before = os.getloadavg()[0]
            stalls = await loop_stall(server, streams)
            after = os.getloadavg()[0]
            lines.append(
                f"| {round_} | {stalls['max_ms']:.1f} / {stalls['p99_ms']:.1f} | "
                f"{stalls['idle_max_ms']:.1f} / {stalls['idle_p99_ms']:.1f} | "
                f"{stalls['gc_max_ms']:.1f} | {before:.1f} -> {after:.1f} |"
            )
            print(lines[-1], file=sys.stderr)
    finally:
        server.close()
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--no-install", action="store_true", help="skip the install sizes")
    parser.add_argument("--tts-stall", action="store_true", help="only the synthesis stall rows")
    parser.add_argument(
        "--stt-stall", action="store_true", help="only the 20-stream loop-stall rows"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="repetitions for --tts-stall / --stt-stall"
    )
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", default=str(Path(__file__).with_name("ENGINES.md")))
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    if args.stt_stall:
        print(asyncio.run(stt_stall_only(args.rounds)))
        return
    if args.tts_stall:
        print(time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
        print(asyncio.run(tts_stall_only(args.rounds)))
        return
    results = {kind: asyncio.run(measure(kind, args.quick)) for kind in ("neural", "legacy")}
    sizes: dict[str, Any] = {}
    if not args.quick and not args.no_install:
        print("install sizes", file=sys.stderr)
        legacy = ["espeakng-loader", "pocketsphinx", "soxr", "numpy", "soundfile"]
        local = re.findall(
            r'"([^"]+)"', (ROOT / "pyproject.toml").read_text().split("local = [")[1].split("]")[0]
        )
        sizes = {"neural": install_size(local), "legacy": install_size(legacy)}
    text = report(results, sizes, args)
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
