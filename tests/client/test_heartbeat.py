"""The keepalive: timer behaviour on a real loop, and Ping/Pong over a real socket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Optional

import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

from helpers.waiting import eventually
from sayna_client import SaynaClient
from sayna_client.realtime.heartbeat import Heartbeat, PingLedger

from .conftest import serving, stt, tts


class Recorder:
    """A heartbeat's peer: counts Pings and verdicts; ``arrived`` and ``drained`` are its
    liveness counters (data from the peer, our bytes taken by it)."""

    def __init__(self, *, answer: bool = False) -> None:
        self.pings = 0
        self.dead = 0
        self.arrived = 0
        self.drained = 0
        self.answer = answer
        self.beat: Optional[Heartbeat] = None

    def heartbeat_ping(self) -> None:
        self.pings += 1
        if self.answer:  # an immediate answer
            assert self.beat is not None
            asyncio.get_running_loop().call_soon(self.beat.pong)

    def heartbeat_dead(self) -> None:
        self.dead += 1

    def heartbeat_liveness(self) -> tuple[int, int]:
        return self.arrived, self.drained


def beating(interval: float, peer: Recorder) -> Heartbeat:
    beat = peer.beat = Heartbeat(interval, peer)
    beat.start()
    return beat


async def test_pings_every_interval_while_pongs_come_back() -> None:
    seen = Recorder(answer=True)
    beat = beating(0.05, seen)
    await eventually(lambda: seen.pings >= 3)  # a Ping about every 50 ms
    beat.stop()
    assert seen.dead == 0


async def test_a_missing_pong_is_reported_once_then_nothing_more() -> None:
    seen = Recorder()
    beat = beating(0.05, seen)
    await eventually(lambda: seen.dead)  # about 25 ms after the first unanswered Ping
    await asyncio.sleep(0.3)  # the scenario: six more intervals pass
    assert seen.dead == 1
    assert seen.pings == 1  # no Ping after the verdict
    beat.stop()


async def test_data_still_arriving_defers_the_verdict_on_a_late_pong() -> None:
    # On a slow link the Pong can wait behind seconds of queued audio: as long as data
    # keeps coming the peer is alive; once it stops, a missing Pong is a dead peer.
    seen = Recorder()
    # Pings about every 0.75 s, the first Pong due 0.5 s after the first, waited for
    # until 1.5 s later while data comes: the second Ping (past the due time) comes
    # with a wide margin for a loaded machine's late timers.
    beat = beating(1.0, seen)

    async def feed() -> None:
        while True:
            seen.arrived += 1
            await asyncio.sleep(0.01)

    feeding = asyncio.get_running_loop().create_task(feed())
    try:
        await eventually(lambda: seen.pings >= 2)  # past the first Pong's due time
        assert seen.dead == 0
    finally:
        feeding.cancel()
    # The data stops: the Pong still missing is a verdict.
    await eventually(lambda: seen.dead)
    assert seen.dead == 1
    beat.stop()


async def test_a_peer_that_seems_alive_but_never_answers_is_dead_within_a_bound() -> None:
    # A hung server's kernel keeps acknowledging our audio until its buffers fill: the
    # drained counter keeps changing, but the late Pong is waited for at most one more
    # heartbeat (1.5 intervals) past its due time: three Pings at most, then the verdict.
    seen = Recorder()
    beat = beating(0.1, seen)

    async def feed() -> None:
        while True:  # the counter changes at every turn, for ever
            seen.drained += 1
            await asyncio.sleep(0.005)

    feeding = asyncio.get_running_loop().create_task(feed())
    try:
        await eventually(lambda: seen.dead)
    finally:
        feeding.cancel()
        beat.stop()
    assert seen.dead == 1
    assert seen.pings <= 3  # (counted in Pings, not seconds: a loaded machine's timers)


async def test_a_busy_peer_whose_data_keeps_arriving_is_waited_for_past_the_ceiling() -> None:
    # A server streaming TTS whose Pongs wait behind it runs: data arriving moves the
    # deadline on with no ceiling (the ceiling of draining alone ended it after three
    # Pings); once its data stops and only our bytes drain, the ceiling holds again,
    # counted from the last time data was seen.
    seen = Recorder()
    beat = beating(0.1, seen)
    flowing = True

    async def feed() -> None:
        while True:
            if flowing:
                seen.arrived += 1
            seen.drained += 1  # our upload drains all along
            await asyncio.sleep(0.005)

    feeding = asyncio.get_running_loop().create_task(feed())
    try:
        await eventually(lambda: seen.pings >= 10 or seen.dead)
        assert seen.dead == 0  # ten Pings, none answered, the peer still sending
        flowing = False
        stopped_at = seen.pings
        await eventually(lambda: seen.dead)
    finally:
        feeding.cancel()
        beat.stop()
    assert seen.dead == 1
    assert seen.pings - stopped_at <= 4  # (the bound of draining alone, plus the Ping in flight)


def test_the_ping_ledger_vouches_for_what_preceded_each_answered_ping() -> None:
    ledger = PingLedger()
    assert ledger.unconfirmed((5, 50)) == (5, 50)  # nothing answered yet
    ledger.ping((5, 50))
    ledger.ping((8, 80))  # sent while the first Pong was late
    ledger.pong()  # answers the first Ping only
    assert ledger.unconfirmed((10, 100)) == (5, 50)
    ledger.pong()
    assert ledger.unconfirmed((10, 100)) == (2, 20)
    ledger.pong()  # a Pong with no Ping outstanding (unsolicited): answers nothing
    ledger.ping((12, 120))
    assert ledger.unconfirmed((12, 120)) == (4, 40)
    ledger.pong()
    assert ledger.unconfirmed((12, 120)) == (0, 0)


async def test_stop_cancels_the_timers() -> None:
    seen = Recorder()
    beat = beating(0.05, seen)
    beat.stop()
    beat.stop()  # twice is fine
    await asyncio.sleep(0.15)  # the scenario: three intervals pass, and nothing fires
    assert seen.pings == 0


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Heartbeat(0, Recorder())


async def test_sessions_of_a_loop_share_one_timer_and_stay_independent() -> None:
    # One timer per loop and interval serves every session (issue #19: no timer handle
    # per idle session); a session's stop, verdict or failure never touches another.
    answering = [Recorder(answer=True) for _ in range(20)]
    beats = [beating(0.05, peer) for peer in answering]
    silent = Recorder()
    beating(0.05, silent)

    class Broken(Recorder):
        def heartbeat_ping(self) -> None:
            raise RuntimeError("boom")

    broken = Broken()
    beating(0.05, broken)
    stopped = answering[0]
    beats[0].stop()
    await eventually(lambda: silent.dead == 1 and all(p.pings >= 3 for p in answering[1:]))
    assert stopped.pings == 0
    assert all(p.dead == 0 for p in answering)
    assert broken.dead == 0  # logged and stopped, the others go on
    for beat in beats[1:]:
        beat.stop()
    await asyncio.sleep(0.15)  # three intervals pass: nobody is pinged any more
    counts = [p.pings for p in answering]
    await asyncio.sleep(0.1)
    assert [p.pings for p in answering] == counts


@pytest_asyncio.fixture
async def pinging_server() -> AsyncIterator[tuple[str, asyncio.Queue[bytes]]]:
    """A minimal Sayna-speaking server that pings the client once it is ready and
    puts each Pong payload it gets on a queue."""
    pongs: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT and '"config"' in msg.data:
                await ws.send_str('{"type":"ready","stream_id":"s1"}')
                await ws.ping(b"are you there")
            elif msg.type is WSMsgType.PONG:
                pongs.put_nowait(msg.data)
            elif msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    async with serving(app) as url:
        yield url, pongs


async def test_the_client_answers_the_servers_pings(
    pinging_server: tuple[str, asyncio.Queue[bytes]],
) -> None:
    url, pongs = pinging_server
    async with SaynaClient(url, stt(), tts()) as client:
        await client.connect()
        assert await asyncio.wait_for(pongs.get(), 5) == b"are you there"
        assert client.ready


async def test_a_hung_server_is_found_dead_at_the_first_unanswered_ping() -> None:
    # A hung server's kernel still acknowledges our Ping; its bytes counted as the
    # peer taking our data (a sign of life), so the verdict waited for another Ping:
    # found dead after 1.5 x heartbeat instead of within it.
    pings: list[bytes] = []

    async def hung(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str('{"type":"ready","stream_id":"s"}')
            elif msg.type is WSMsgType.PING:
                pings.append(msg.data)  # never answered
        return ws

    app = web.Application()
    app.router.add_get("/ws", hung)
    async with serving(app) as url:
        client = SaynaClient(url, stt(), tts(), heartbeat=0.6)
        closed = asyncio.get_running_loop().create_future()
        client.register_on_close(lambda event: closed.done() or closed.set_result(event))
        await client.connect()
        event = await asyncio.wait_for(closed, 30)
        assert event.code == 1006
        await eventually(lambda: pings, what="the Ping received")
        assert len(pings) == 1
        await client.disconnect()


async def test_a_busy_server_that_answers_pings_late_while_streaming_stays_connected() -> None:
    # A server streaming TTS audio whose Pongs come back well past the ceiling of
    # draining alone (queued behind that audio): alive, since its data keeps arriving.
    # The ceiling applied to arriving data too and dropped it with 1006 before its
    # first late Pong.
    late_pongs = 0

    async def busy(request: web.Request) -> web.WebSocketResponse:
        nonlocal late_pongs
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)

        async def stream() -> None:
            while not ws.closed:
                await ws.send_bytes(bytes(640))
                await asyncio.sleep(0.005)  # (pacing: TTS faster than real time)

        async def pong_late(data: bytes) -> None:
            nonlocal late_pongs
            await asyncio.sleep(1.2)  # the scenario: past the 0.8 s ceiling of draining
            if not ws.closed:
                await ws.pong(data)
                late_pongs += 1

        tasks: set[asyncio.Task[None]] = set()
        async for msg in ws:
            if msg.type is WSMsgType.TEXT:
                await ws.send_str('{"type":"ready","stream_id":"s"}')
                tasks.add(asyncio.get_running_loop().create_task(stream()))
            elif msg.type is WSMsgType.PING:
                tasks.add(asyncio.get_running_loop().create_task(pong_late(msg.data)))
        for task in tasks:
            task.cancel()
        return ws

    app = web.Application()
    app.router.add_get("/ws", busy)
    async with serving(app) as url:
        client = SaynaClient(url, stt(), tts(), heartbeat=0.6)
        closed: list[object] = []
        client.register_on_close(closed.append)
        try:
            await client.connect()
            await eventually(lambda: late_pongs >= 4 or closed, timeout=30)
            assert not closed, closed
            assert client.ready
        finally:
            await client.disconnect()
