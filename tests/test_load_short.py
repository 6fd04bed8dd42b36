"""Short load test: the code path of ``benchmarks/load.py`` at CI size, plus the bench hooks.

20 sessions × 5 s of real-time audio against an in-process local server. Only counts are
asserted (frames, bytes, closes, tasks), never timings, so a loaded machine can make it
slower but not make it fail.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from sayna_client import SaynaClient, STTConfig, Timeouts, TTSConfig
from sayna_client.testing import running_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from loadlib import run_load

SESSIONS = 20
SECONDS = 5.0


@pytest.mark.parametrize(
    ("pacing", "turns", "seconds"),
    [("shared", "spread", SECONDS), ("per-session", "lockstep", 2.0)],
)
async def test_short_load_loses_no_frame_and_closes_cleanly(
    pacing: str, turns: str, seconds: float
) -> None:
    async with running_server() as server:
        report = await run_load(server.url, SESSIONS, seconds, pacing=pacing, turns=turns)
    frames = round(seconds * 50)
    assert report.errors == []
    assert report.frames_per_session == frames
    assert report.frames_sent == SESSIONS * frames
    assert report.bytes_sent == SESSIONS * frames * 640
    assert all(o.frames_sent == frames for o in report.outcomes)
    assert report.frames_received == report.frames_sent
    assert report.frames_lost == 0
    assert report.mismatched_sessions == 0
    assert report.unclean_closes == 0
    assert report.leftover_tasks == []
    assert report.still_connected == 0
    assert report.late["frames"] == report.frames_sent
    assert report.stt_results > 0  # the tone bursts came back as results
    assert report.ok


@pytest.mark.parametrize(
    "client", ["raw-aiohttp", "raw-asyncio", "raw-asyncio-rfc", "raw-asyncio-seed"]
)
async def test_the_floors_without_the_sdk_run_the_same_workload(client: str) -> None:
    # load.py --client: the same sessions by hand (loadraw.py), checked the same way.
    async with running_server() as server:
        report = await run_load(server.url, 5, 2.0, speak=True, client=client, gc_freeze=True)
    assert report.errors == []
    assert report.client == client
    assert report.frames_sent == 5 * 100
    assert report.bytes_sent == 5 * 100 * 640  # audio bytes, not wire bytes
    assert report.frames_lost == 0
    assert report.mismatched_sessions == 0
    assert report.unclean_closes == 0
    assert report.still_connected == 0
    assert report.stt_results > 0
    replies = sum(o.replies for o in report.outcomes)
    assert replies > 0  # every speech-final was answered...
    assert sum(o.tts_frames for o in report.outcomes) > 0  # ...and its audio came back
    assert report.ok


@pytest.mark.parametrize("client", ["sdk", "raw-asyncio-seed"])
async def test_the_lean_peer_serves_the_same_workload(client: str) -> None:
    # load.py --server lean: the peer that keeps up at 1,000 sessions (leanpeer.py).
    from leanpeer import open_peer

    server, url = await open_peer()
    async with server:
        report = await run_load(url, SESSIONS, SECONDS, speak=True, client=client)
    assert report.errors == []
    assert report.frames_lost == 0
    assert report.mismatched_sessions == 0
    assert report.unclean_closes == 0
    assert report.leftover_tasks == []
    replies = sum(outcome.replies for outcome in report.outcomes)
    assert replies > 0
    # An interim and a speech-final per burst; a session's last burst may end after its
    # stream (its interim and final then come unanswered).
    assert 2 * replies <= report.stt_results <= 2 * (replies + SESSIONS)
    assert sum(outcome.tts_frames for outcome in report.outcomes) == 9 * replies
    assert report.ok


def test_gc_pauses_count_collections_by_generation() -> None:
    import gc

    from loadlib import GCPauses

    with GCPauses() as pauses:
        gc.collect(0)
        gc.collect(2)
    assert pauses.count[0] >= 1
    assert pauses.count[2] >= 1
    assert pauses.total_ms[2] >= pauses.max_ms[2] > 0
    assert sum(pauses.total_ms) >= sum(pauses.max_ms)
    assert "gen2" in pauses.describe()
    assert "total" in pauses.describe()
    assert pauses._callback not in gc.callbacks


async def test_bench_endpoints_count_and_push_in_order() -> None:
    async with running_server() as server:
        client = SaynaClient(
            server.url,
            STTConfig(provider="fake"),
            TTSConfig(provider="fake"),
            stream_id="bench-1",
            # The results end no turn: the graceful close would wait its whole drain (5 s).
            timeouts=Timeouts(drain=0.5),
        )
        audio: list[int] = []
        results: list[Any] = []
        delivered = asyncio.Event()

        def on_audio(chunk: bytes) -> None:
            audio.append(len(chunk))
            if len(audio) == 300 and len(results) == 20:
                delivered.set()

        def on_result(result: Any) -> None:
            results.append(result)
            if len(audio) == 300 and len(results) == 20:
                delivered.set()

        client.register_on_tts_audio(on_audio)
        client.register_on_stt_result(on_result)
        async with client, aiohttp.ClientSession() as http:
            await client.connect()
            for _ in range(7):
                await client.on_audio_input(bytes(640))
            burst_url = f"{server.url}/_local/bench/bench-1/burst"
            async with http.post(burst_url, json={"kind": "audio", "count": 300}) as response:
                assert response.status == 202
            stt = {"kind": "stt", "count": 20, "interval_ms": 1}
            async with http.post(burst_url, json=stt) as response:
                assert response.status == 202
            record = server.records.last_session
            await server.records.wait_for(
                lambda: record.sent_audio_frames == 300 and len(record.sent) == 21
            )
            async with http.get(
                f"{server.url}/_local/bench/sessions", params={"stream_id": "bench-1"}
            ) as response:
                (info,) = (await response.json())["sessions"]
            assert info["audio_frames"] == 7
            assert info["audio_bytes"] == 7 * 640
            assert info["sent_audio_frames"] == 300
            assert info["sent_events"] == 21  # ready + 20 results
            assert info["open"] is True
            assert info["closed"] is False

            for body, status in (
                ({"kind": "video", "count": 1}, 400),
                ({"kind": "audio", "count": 0}, 400),
                ({"kind": "audio", "count": 1, "interval_ms": -1}, 400),
            ):
                async with http.post(burst_url, json=body) as response:
                    assert response.status == status
            async with http.post(
                f"{server.url}/_local/bench/nobody/burst", json={"kind": "audio", "count": 1}
            ) as response:
                assert response.status == 404

            await asyncio.wait_for(delivered.wait(), 60)  # generous: counts are the test
            assert audio == [640] * 300
            stamps = [result.sent_ns for result in results]
            assert stamps == sorted(stamps)
            assert [int(result.transcript) for result in results] == stamps

            async with http.post(f"{server.url}/_local/bench/reset") as response:
                assert response.status == 200
            assert server.records.sessions == []


async def test_shared_clock_paces_every_stream_and_stops_only_a_failing_one() -> None:
    from pacing import LateStats, SharedClock

    pattern = [b"a", b"bb", b"ccc"]
    seen: dict[int, list[bytes]] = {0: [], 1: [], 2: []}
    failures: list[BaseException] = []

    def sender(index: int) -> Any:
        async def send(frame: bytes) -> None:
            if index == 2 and len(seen[2]) == 2:
                raise RuntimeError("stream 2 broke")
            seen[index].append(frame)

        return send

    clock = SharedClock(pattern, 0.004, slots=2)
    streams = [clock.add(sender(i), offset=i, on_error=failures.append) for i in range(3)]
    stats = LateStats()
    loop = asyncio.get_running_loop()
    await clock.run(start=loop.time(), count=5, stats=stats)
    assert seen[0] == [b"a", b"bb", b"ccc", b"a", b"bb"]
    assert seen[1] == [b"bb", b"ccc", b"a", b"bb", b"ccc"]
    assert seen[2] == [b"ccc", b"a"]  # then its send raised: that stream stopped
    assert [str(e) for e in failures] == ["stream 2 broke"]
    assert [(s.frames, s.bytes) for s in streams] == [(5, 9), (5, 11), (2, 4)]
    assert stats.frames == 13


async def test_shared_clock_finishes_a_waiting_send_without_holding_up_the_others() -> None:
    from pacing import SharedClock

    gate = asyncio.Event()
    order: list[str] = []

    async def slow(frame: bytes) -> None:
        order.append(f"slow {frame.decode()} written")
        await gate.wait()  # its socket is full until the fast stream has sent everything
        order.append(f"slow {frame.decode()} done")

    async def fast(frame: bytes) -> None:
        order.append(f"fast {frame.decode()}")
        if frame == b"c":
            gate.set()

    clock = SharedClock([b"a", b"b", b"c"], 0.002, slots=1)
    slow_stream = clock.add(slow, on_error=lambda exc: None)
    fast_stream = clock.add(fast, on_error=lambda exc: None)
    await clock.run(start=asyncio.get_running_loop().time(), count=3)
    assert [entry for entry in order if entry.startswith("fast")] == ["fast a", "fast b", "fast c"]
    assert order.index("fast c") < order.index("slow a done")  # not held up by slow
    assert [entry for entry in order if entry.endswith("written")] == [
        "slow a written",
        "slow b written",
        "slow c written",
    ]
    assert (slow_stream.frames, fast_stream.frames) == (3, 3)  # run() waited for them


@pytest.mark.parametrize(
    ("first", "span", "count"),
    [
        (0.0, 0.0, 50),
        (0.0004, 0.00003, 50),
        (0.001, 0.004, 40),
        (0.018, 0.006, 25),
        (0.03, 0.002, 7),
    ],
)
def test_a_tick_records_what_a_clock_read_per_frame_would_on_a_linear_run(
    first: float, span: float, count: int
) -> None:
    from pacing import LateStats

    per_frame, per_tick = LateStats(), LateStats()
    step = span / count
    for k in range(count):
        per_frame.add(first + step * k, 0.02)
    per_tick.add_tick(first, span, count, 0.02)
    assert per_tick.frames == per_frame.frames == count
    assert per_tick.late_over_period == per_frame.late_over_period
    assert per_tick.max_ms == pytest.approx(per_frame.max_ms)
    assert per_tick.total_ms == pytest.approx(per_frame.total_ms)
    # Bucket edges: a value a rounding error away from an edge may land either side.
    for fraction in (0.5, 0.9, 0.99):
        assert per_tick.quantile_ms(fraction) == pytest.approx(
            per_frame.quantile_ms(fraction), abs=0.1001
        )


def test_a_tick_fills_the_histogram_as_per_frame_reads_would_over_random_ticks() -> None:
    # add_tick places a tick's frames a bucket at a time (arithmetic, not a loop over the
    # frames): over random ticks, short and long, early and past the histogram's end,
    # the histogram must hold what a record per frame makes, but for a frame a rounding
    # error away from a bucket edge.
    import random

    from pacing import LateStats

    for seed in range(500):
        draw = random.Random(seed)
        first = draw.choice(
            [0.0, draw.uniform(0, 0.002), draw.uniform(0, 0.05), draw.uniform(0.9, 1.2)]
        )
        span = draw.choice(
            [0.0, draw.uniform(0, 0.0002), draw.uniform(0, 0.005), draw.uniform(0, 0.3)]
        )
        count = draw.randint(1, 60)
        per_frame, per_tick = LateStats(), LateStats()
        step = span / count
        for k in range(count):
            per_frame.add(first + step * k, 0.02)
        per_tick.add_tick(first, span, count, 0.02)
        assert sum(per_tick._buckets) == count
        moved = sum(abs(a - b) for a, b in zip(per_frame._buckets, per_tick._buckets))
        assert moved <= 4, (seed, first, span, count)


async def test_feel_sees_every_interval_it_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    # benchmarks/feel.py times the SDK's data path by wrapping four of its methods, and
    # splits each interval into the session's own time and the waits by timing asyncio's
    # loop callbacks; a change to that path that bypasses one would leave the report
    # empty (or the split missing) rather than fail. Three sessions for 2 s: every
    # interval must have been measured and split, and the split must add up.
    import gc
    from asyncio import events, selector_events

    import feel

    from sayna_client.realtime import connection, framing, hub, wire

    for owner, name in (
        (framing.FrameProtocol, "data_received"),
        (connection.WebSocketConnection, "frame_text"),
        (hub.EventHub, "publish_audio"),
        (wire.FrameWriter, "write_control"),
        (events.Handle, "_run"),
        (selector_events._SelectorSocketTransport, "write"),
    ):
        monkeypatch.setattr(owner, name, getattr(owner, name))  # restored after the test
    monkeypatch.setattr(gc, "callbacks", list(gc.callbacks))
    for measured in feel.MEASURED:
        measured.clear()
    feel.install_hooks()
    thresholds = gc.get_threshold()
    # Young collections every few allocations: pauses land inside the hooks' own
    # bookkeeping too, and must stay out of the own time (counted in "gc").
    gc.set_threshold(50, 5, 5)
    try:
        async with running_server(tts_realtime=False) as server:
            out = await feel.run(server.url, 3, 2.0)
    finally:
        gc.set_threshold(*thresholds)
    assert out["errors"] == []
    assert out["finals"] > 0
    speak, first, every = feel.SPEAK, feel.FIRST_AUDIO, feel.ALL_AUDIO
    assert len(speak.total) == out["finals"]
    assert 0 < len(first.total) <= out["finals"]
    assert len(every.total) >= len(first.total)
    for measured in feel.MEASURED:
        assert measured.unsplit == 0  # every sample has its own share
        assert measured.over == 0
        assert len(measured.own) == len(measured.own_cpu) == len(measured.total)
        assert all(0 <= own <= total for own, total in zip(measured.own, measured.total))
        assert all(cpu >= -1e-6 for cpu in measured.own_cpu)
        parts = ("read", "dispatch", "speak") if measured is speak else ("read", "hand-off")
        for name in (*parts, "gc", "waits"):
            assert len(measured.segments[name]) == len(measured.total), name
        # own = the SDK's segments; total = own + the user's callbacks + gc + waits.
        for index, own in enumerate(measured.own):
            assert sum(measured.segments[name][index] for name in parts) == pytest.approx(
                own, abs=1e-9
            )
        assert all(wait > -1e-9 for wait in measured.segments["waits"])
        segments = measured.segments
        for index, total in enumerate(measured.total):
            rest = sum(segments[name][index] for name in ("user's callbacks", "gc", "waits"))
            assert measured.own[index] + rest == pytest.approx(total, abs=1e-9)
    report = feel.summary()
    assert set(report) == {m.name for m in feel.MEASURED}
    assert {"total", "own", "own_cpu", "read", "waits"} <= set(report[speak.name])


async def test_loopcpu_times_every_loop_callback_by_what_it_ran() -> None:
    """benchmarks/loopcpu.py's core: a real session's loop callbacks land in the tally under
    the task's coroutine or the callback's name, with their counts; the loop is restored."""
    import selectors

    from loopcpu import table, timed_loop

    async def speaker(client: SaynaClient, heard: asyncio.Event) -> None:
        await client.speak("okay")
        await heard.wait()

    if not isinstance(asyncio.get_running_loop(), asyncio.BaseEventLoop):
        pytest.skip("loopcpu.py times asyncio's own loop (uvloop's callbacks run in C)")
    tally: dict[str, list[float]] = {}
    original = (asyncio.Handle._run, selectors.DefaultSelector.select)
    async with running_server() as server:
        client = SaynaClient(
            server.url,
            STTConfig(provider="deepgram"),
            TTSConfig(provider="elevenlabs", voice_id="fake-alpha"),
        )
        heard = asyncio.Event()
        client.register_on_tts_audio(lambda _audio: heard.set())
        with timed_loop(tally):
            async with client.session():
                await asyncio.get_running_loop().create_task(speaker(client, heard))
    assert (asyncio.Handle._run, selectors.DefaultSelector.select) == original
    speaker_steps = tally[f"task: {speaker.__qualname__}"][1]
    assert speaker_steps >= 1
    assert tally["<select>"][1] >= 1
    assert any(key.endswith("_read_ready") for key in tally)  # the socket's reads
    assert all(spent >= 0 and calls >= 1 for spent, calls in tally.values())
    rendered = table(tally, top=2)
    assert rendered.count("\n") == 1 + 2 + 2  # heading, rule, 2 groups, "more", "in all"
    assert f"| {len(tally) - 2} more |" in rendered
    assert rendered.endswith(f"| {sum(int(c) for _, c in tally.values()):,} | |")


def test_loopcpu_refuses_uvloop_and_names_why(capsys: pytest.CaptureFixture[str]) -> None:
    from loopcpu import main

    with pytest.raises(SystemExit) as exit_info:
        main(["--", "--sessions", "1", "--uvloop"])
    assert exit_info.value.code == 2
    assert "uvloop runs its callbacks in C" in capsys.readouterr().err


def _run(variant: str, round_: int, cpu: float, p99: float, ok: bool = True) -> dict[str, Any]:
    """One load.py run's figures as scale.py reads them (only what it uses)."""
    return {
        "variant": variant,
        "round": round_,
        "ok": ok,
        "client_cpu_percent": cpu,
        "client_system_percent": cpu / 3,
        "server_cpu_percent": 90.0,
        "pacing_p99_ms": p99,
        "pacing_max_ms": p99 * 4,
    }


def test_scale_counts_the_runs_that_meet_every_bar_and_the_same_round_ratio() -> None:
    """benchmarks/scale.py's verdict: a run meets item 2 only with its counts passed, CPU
    under 70 % and p99 under 5 ms; ratios pair runs of the same round; medians, not means,
    and neither takes a run that failed on counts."""
    from scale import meets_every_bar, summarize

    runs = [
        _run("sdk", 1, 69.9, 4.9),  # every bar
        _run("floor", 1, 60.0, 1.0),
        _run("sdk", 2, 70.0, 1.0),  # CPU at the bar: not under it
        _run("sdk", 3, 90.0, 5.0),  # p99 at the bar (round 2 has no floor run)
        _run("floor", 3, 45.0, 1.0),
        _run("sdk", 4, 10.0, 1.0, ok=False),  # counts failed
        _run("floor", 4, 50.0, 1.0),
    ]
    assert [meets_every_bar(r) for r in runs if r["variant"] == "sdk"] == [
        True,
        False,
        False,
        False,
    ]
    sdk, floor = summarize(runs, ["sdk", "floor"], "floor")
    assert (sdk["runs"], sdk["met"], sdk["counts_failed"]) == (4, 1, 1)
    assert sdk["cpu"] == [69.9, 70.0, 90.0]  # the failed run's 10 % left out
    assert sdk["ratios"] == pytest.approx([69.9 / 60.0, 2.0])  # rounds 1 and 3 only
    assert (floor["runs"], floor["met"], floor["ratios"]) == (3, 3, [])


def test_scale_rotates_the_order_of_the_variants_round_by_round() -> None:
    from scale import schedule

    assert schedule(["a", "b", "c"], 4) == [
        (1, "a"), (1, "b"), (1, "c"),
        (2, "b"), (2, "c"), (2, "a"),
        (3, "c"), (3, "a"), (3, "b"),
        (4, "a"), (4, "b"), (4, "c"),
    ]  # fmt: skip


def test_scale_report_gives_medians_the_bars_and_what_could_not_run() -> None:
    import argparse
    import datetime

    from scale import report

    runs = [
        _run("sdk", 1, 60.0, 1.0),
        _run("floor", 1, 50.0, 1.0),
        _run("sdk", 2, 61.0, 1.0),
        _run("floor", 2, 60.0, 1.0),
        _run("sdk", 3, 99.0, 9.0),
        _run("floor", 3, 55.0, 1.0),
        _run("sdk", 4, 1.0, 1.0, ok=False),
    ]
    started = datetime.datetime(2026, 1, 2, 3, 4, tzinfo=datetime.timezone.utc)
    item2 = argparse.Namespace(
        rounds=4, sessions=1000, seconds=20.0, server="local", server_uvloop=False, cpu=1
    )
    text = report(runs, ["sdk", "floor"], "floor", item2, started, ["round 4, floor: gone"])
    # Median 61 of (60, 61, 99), not the mean 73.3; ratios 1.2, 1.02, 1.8.
    assert (
        "| sdk | 4 | 61.00 (60.00-99.00) | 1.00 (1.00-9.00) | 2 of 4 (1 failed on counts) " in text
    )
    assert "| 1.20 (1.02-1.80) |" in text
    assert "| 3 | sdk | PASS | 99.00 (33.0) | 9.0 / 36.0 | 90.0 | no |" in text
    assert "| 1 | sdk | PASS | 60.00 (20.0) | 1.0 / 4.0 | 90.0 | yes |" in text
    assert "2026-01-02 03:04-" in text
    assert "this is item 2's run" in text
    assert "- round 4, floor: gone" in text
    smaller = argparse.Namespace(**{**vars(item2), "sessions": 3})
    assert "does not show item 2" in report(runs, ["sdk", "floor"], None, smaller, started)


def test_scale_reports_the_other_runs_when_one_cannot_be_made(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from scale import RunFailed, main

    made: list[str] = []

    def run(variant: str, _args: Any) -> dict[str, Any]:
        made.append(variant)
        if len(made) == 2:
            raise RunFailed("load.py for floor exited with status 1 without its figures")
        return _run(variant, 0, 50.0, 1.0)

    record = tmp_path / "SCALE.md"
    argv = ["--rounds", "2", "--cpu", "-1", "--variant", "sdk", "--variant", "floor"]
    with pytest.raises(SystemExit):  # "floor" is no load.py client
        main(argv)
    capsys.readouterr()
    argv = ["--rounds", "2", "--cpu", "-1", "--variant", "sdk", "--variant", "raw-asyncio"]
    assert main([*argv, "--output", str(record)], run=run) == 1
    assert made == ["sdk", "raw-asyncio", "raw-asyncio", "sdk"]
    text = record.read_text(encoding="utf-8")
    assert text.count("| PASS |") == 3
    assert "Runs that could not be made:" in text
    assert "- round 1, raw-asyncio: load.py for floor exited with status 1" in text
    assert "does not show item 2" in text  # --cpu -1: nothing pinned
    assert "could not run" in capsys.readouterr().err


def test_scale_refuses_what_it_cannot_run_and_names_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from scale import main

    for argv, words in [
        (["--variant", "sdk+uv"], "unknown variant 'sdk+uv'"),
        (["--variant", "sdk", "--variant", "sdk"], "each --variant once"),
        (["--variant", "sdk", "--floor", "raw-asyncio-seed"], "is not one of the variants"),
        (["--rounds", "0"], "must be positive"),
        (["--server", "lean", "--server-uvloop"], "not with --server lean"),
        (["--cpu", "4096"], "may run on CPUs"),
        (["--seconds", "nan"], "must be positive"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert words in capsys.readouterr().err, argv


def test_scale_runs_every_variant_each_round_in_turn_and_writes_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Real load.py runs (3 sessions, against the lean peer), the order rotating per round;
    the record names every run and says how many met every bar."""
    from scale import main

    record = tmp_path / "SCALE.md"
    argv = ["--rounds", "2", "--sessions", "3", "--seconds", "0.5", "--server", "lean"]
    argv += ["--cpu", "0", "--variant", "sdk", "--variant", "raw-asyncio-seed"]
    assert main([*argv, "--output", str(record)]) == 0
    progress = [line for line in capsys.readouterr().out.splitlines() if line.startswith("round")]
    assert [line.split(":")[0] for line in progress] == [
        "round 1, sdk",
        "round 1, raw-asyncio-seed",
        "round 2, raw-asyncio-seed",
        "round 2, sdk",
    ]
    assert all(line.endswith("counts PASS") for line in progress)
    text = record.read_text(encoding="utf-8")
    assert "| sdk | 2 |" in text
    assert "| raw-asyncio-seed | 2 |" in text
    assert text.count("| PASS |") == 4
    assert "CPU / raw-asyncio-seed, same round" in text


def test_scale_stops_a_run_past_its_time_as_failed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A load.py run that does not end in time is stopped (its process group: load.py and
    the server it started) and reported as a run that could not be made."""
    import argparse

    import scale

    monkeypatch.setattr(scale, "RUN_TIMEOUT_S", 2.0 - 10 * 30.0)  # a 2 s limit for 30 s
    args = argparse.Namespace(sessions=3, seconds=30.0, server="lean", server_uvloop=False, cpu=-1)
    with pytest.raises(scale.RunFailed, match="did not end within 2 s"):
        scale.run_once("sdk", args)
