"""Automatic reconnection at its edges: a connect() that takes it over, closes of its
attempts, the session's state and event order meanwhile, and what ends a session.

The sessions break for real: the local server's faults, or a small scripted peer on
loopback whose sessions close (1011) when a test says so.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Callable, Optional

import aiohttp
import pytest
from aiohttp import web

from helpers.waiting import TIMEOUT, eventually
from sayna_client import (
    AudioDropped,
    ConnectionClosed,
    Reconnected,
    ReconnectPolicy,
    SaynaClient,
    SaynaConfigRejectedError,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaNotReadyError,
    Timeouts,
    Turn,
)
from sayna_client.server import Faults, LocalServer

from .conftest import make_client, serving, stt, tts

FRAME = b"\x01\x00" * 320  # 20 ms of 16 kHz mono PCM


def numbered(index: int) -> bytes:
    """A frame of :data:`FRAME`'s size that says which one it is."""
    return index.to_bytes(4, "big") * (len(FRAME) // 4)


def numbers(audio: bytes) -> list[int]:
    return [int.from_bytes(audio[i : i + 4], "big") for i in range(0, len(audio), len(FRAME))]


async def _until(events: AsyncIterator[Any], last: Optional[str] = None) -> list[Any]:
    """The events of ``events`` up to the first of type ``last`` (included), or to the
    iterator's end (``last`` None, or never seen); fails after TIMEOUT seconds."""
    seen: list[Any] = []

    async def read() -> None:
        async for event in events:
            seen.append(event)
            if event.type == last:
                return

    await asyncio.wait_for(read(), TIMEOUT)
    return seen


def kinds(events: list[Any]) -> list[str]:
    return [e.type for e in events]


async def _broken_once(server: LocalServer, **kwargs: Any) -> SaynaClient:
    """A connected client whose session the server drops at its first TTS chunk (the
    sessions after it behave)."""
    server.faults = Faults(drop_connection_after_frames=2)  # ready, then one audio chunk
    kwargs.setdefault("reconnect", ReconnectPolicy(initial_backoff=0.3, jitter=0))
    client = make_client(server, stream_id="call-1", **kwargs)
    await client.connect()
    server.faults = Faults()
    return client


class Peer:
    """A scripted Sayna-like server: session ``n`` (0, 1, ...) runs ``script(ws, n)``
    after the first ``config``; :meth:`ready` answers a config. Frames the client sends
    are recorded per session."""

    def __init__(self, script: Callable[[web.WebSocketResponse, int], Awaitable[None]]) -> None:
        self.script = script
        self.audio: list[bytearray] = []
        self.texts: list[list[dict[str, Any]]] = []
        self.statuses: dict[int, int] = {}  # upgrade number -> HTTP status to refuse with
        self.upgrades = 0

    async def handle(self, request: web.Request) -> web.StreamResponse:
        upgrade = self.upgrades
        self.upgrades += 1
        if upgrade in self.statuses:
            return web.Response(status=self.statuses[upgrade], text="no")
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        number = len(self.audio)
        self.audio.append(bytearray())
        self.texts.append([])
        if await self.next_config(ws, number):
            await self.script(ws, number)
        return ws

    async def next_config(self, ws: web.WebSocketResponse, number: int) -> bool:
        """Read until a ``config`` (False: the socket closed first)."""
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                self.audio[number].extend(msg.data)
            elif msg.type == aiohttp.WSMsgType.TEXT:
                message = json.loads(msg.data)
                self.texts[number].append(message)
                if message.get("type") == "config":
                    return True
        return False

    async def pump(self, ws: web.WebSocketResponse, number: int) -> None:
        """Read what the client sends until the socket closes."""
        await self.next_config(ws, number)

    @staticmethod
    async def ready(ws: web.WebSocketResponse) -> None:
        await ws.send_json({"type": "ready", "stream_id": "s-1"})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/ws", self.handle)
        return app


#: A reconnection whose first attempt comes long after a test is done with the outage.
_LATE = ReconnectPolicy(initial_backoff=30, max_backoff=60, jitter=0)


def _peer_client(url: str, **kwargs: Any) -> SaynaClient:
    kwargs.setdefault("reconnect", ReconnectPolicy(initial_backoff=0.05, jitter=0))
    kwargs.setdefault("timeouts", Timeouts(connect=5, ready=10, request=10, close=2))
    return SaynaClient(url, stt(), tts(sample_rate=16000), heartbeat=None, **kwargs)


def _result(text: str, *, final: bool, speech_final: bool) -> dict[str, Any]:
    return {
        "type": "stt_result",
        "transcript": text,
        "is_final": final,
        "is_speech_final": speech_final,
        "confidence": 0.9,
    }


# --- a connect() during a reconnection ----------------------------------------------------


async def test_connect_at_the_close_that_starts_a_reconnection_takes_it_over(
    server: LocalServer,
) -> None:
    # The reconnection's task is cancelled before its first step: it never ran its own
    # clean-up, and the client stayed `reconnecting` for good (audio held and never sent,
    # speak() refused, the held frames dropped unreported at disconnect()).
    client = await _broken_once(server)
    dropped: list[AudioDropped] = []
    client.on("audio_dropped", dropped.append)
    async with client:
        events = client.events()
        await client.speak("hello there")  # the server drops the session at its audio
        async for event in events:  # (read here: this task runs before the reconnection's)
            if event.type == "closed":
                assert event.will_reconnect
                for index in range(3):
                    await client.on_audio_input(numbered(index))  # held
                await client.connect()
                break
        assert client.ready
        assert not client.reconnecting
        for index in range(3, 5):
            await client.on_audio_input(numbered(index))
        await client.speak("are you there?")
        after = await _until(events, "reconnected")
        assert [k for k in kinds(after) if k != "reconnecting"] == ["ready", "reconnected"]
        assert (after[-1].replayed_frames, after[-1].replayed_bytes) == (3, 3 * len(FRAME))
        second = server.records.last_session
        await server.records.wait_for(lambda: second.audio_frames == 5)
        assert numbers(bytes(second.audio)) == [0, 1, 2, 3, 4]
        assert client.metrics.audio_frames_sent == 5
    assert not dropped


async def test_connect_in_an_async_close_callback_takes_the_reconnection_over(
    server: LocalServer,
) -> None:
    client = await _broken_once(server)
    outcome: list[Any] = []

    async def on_close(event: ConnectionClosed) -> None:
        if event.will_reconnect:
            await client.connect()
            outcome.append((client.ready, client.reconnecting))

    client.register_on_close(on_close)
    async with client:
        events = client.events()
        await client.speak("hello there")
        seen = await _until(events, "reconnected")
        assert [k for k in kinds(seen) if k != "reconnecting"][-3:] == [
            "closed",
            "ready",
            "reconnected",
        ]
        await eventually(lambda: outcome)
        assert outcome == [(True, False)]
        await client.speak("still there")  # no longer refused as "reconnecting"


async def test_connect_during_the_backoff_keeps_the_iterators_and_replays_the_held_audio(
    server: LocalServer,
) -> None:
    # It used to end the reconnection as if it gave up: events() and turns() ended
    # although the session went on, and the held audio was discarded, not replayed.
    client = await _broken_once(server, reconnect=_LATE)
    async with client:
        events = client.events()
        turns = client.turns()
        await client.speak("hello there")
        await _until(events, "reconnecting")  # attempt 1 in 30 s
        for index in range(10):
            await client.on_audio_input(numbered(index))
        await client.connect()
        assert client.ready
        after = await _until(events, "reconnected")
        assert kinds(after) == ["ready", "reconnected"]
        assert after[-1].attempt == 1  # the connect() was the attempt announced
        assert after[-1].replayed_frames == 10
        second = server.records.last_session
        await server.records.wait_for(lambda: second.audio_frames == 10)
        assert numbers(bytes(second.audio)) == list(range(10))
        assert len(server.records.sessions) == 2
        await client.disconnect()
        assert await _until(turns) == []  # open until the session ended


async def test_connect_during_the_replay_finishes_it_in_order() -> None:
    # Ready again, the reconnection replays the held audio into a socket that takes it
    # slowly; a connect() then takes over: the rest goes out after what was sent, once
    # each, and the new session's metrics count every frame the server got.
    read = asyncio.Event()

    async def script(ws: web.WebSocketResponse, number: int) -> None:
        await Peer.ready(ws)
        if number == 0:
            await ws.close(code=1011)
            return
        await read.wait()
        await peer.pump(ws, number)

    peer = Peer(script)
    async with serving(peer.app()) as url:
        policy = ReconnectPolicy(initial_backoff=0.05, buffer_bytes=64 << 20)
        client = _peer_client(url, reconnect=policy)
        try:
            events = client.events()
            await client.connect()
            await _until(events, "reconnecting")
            count = 400  # 64 KiB each: far more than the socket buffers take
            for index in range(count):
                await client.on_audio_input(index.to_bytes(4, "big") * (1 << 14))
            await eventually(lambda: client.metrics.audio_frames_sent > 0)  # replaying
            started = asyncio.Event()

            async def take_over() -> None:
                started.set()  # (this step goes on into connect(), which stops the replay)
                await client.connect()

            connecting = asyncio.ensure_future(take_over())
            await started.wait()
            read.set()
            await asyncio.wait_for(connecting, TIMEOUT)
            assert peer.upgrades == 2  # no new session: the ready one is taken over
            assert client.ready
            seen = await _until(events, "reconnected")
            assert kinds(seen) == ["ready", "reconnected"]
            await client.on_audio_input(b"end!")
            await eventually(lambda: peer.audio[1].endswith(b"end!"))
            audio = bytes(peer.audio[1][:-4])
            assert [
                int.from_bytes(audio[i : i + 4], "big") for i in range(0, len(audio), 1 << 16)
            ] == list(range(count))
            assert client.metrics.audio_frames_sent == count + 1
        finally:
            read.set()
            await client.disconnect(drain=0)


async def test_a_connect_that_takes_over_and_fails_ends_the_session_and_reports_the_audio(
    server: LocalServer,
) -> None:
    client = await _broken_once(server, reconnect=_LATE)
    errors: list[Any] = []
    client.register_on_error(errors.append)
    async with client:
        events = client.events()
        await client.speak("hello there")
        await _until(events, "reconnecting")
        await client.on_audio_input(FRAME)
        server.faults = Faults(close_after_config=True, close_code=1011)
        with pytest.raises(SaynaConnectionClosedError):
            await client.connect()
        assert not client.reconnecting
        rest = await _until(events)  # ends
        assert kinds(rest) == ["audio_dropped", "closed"]
        assert (rest[0].frames, rest[0].bytes) == (1, len(FRAME))
        assert (rest[1].code, rest[1].will_reconnect) == (1006, False)  # the loss, over
        await eventually(lambda: [e.type for e in errors] == ["closed", "audio_dropped", "closed"])


# --- closes of the attempts ---------------------------------------------------------------


async def test_failed_attempts_publish_no_close_of_their_own() -> None:
    # Attempts 1 and 2 are closed (1011) right after their config, attempt 3 succeeds:
    # the outage went on, yet each failed attempt published a ConnectionClosed with
    # will_reconnect=False (and told the error callbacks).
    async def script(ws: web.WebSocketResponse, number: int) -> None:
        if number in (1, 2):
            await ws.close(code=1011)
            return
        await Peer.ready(ws)
        if number == 0:
            await ws.close(code=1011, message=b"boom")
            return
        await peer.pump(ws, number)

    peer = Peer(script)
    async with serving(peer.app()) as url:
        client = _peer_client(url)
        closes: list[ConnectionClosed] = []
        errors: list[Any] = []
        client.register_on_close(closes.append)
        client.register_on_error(errors.append)
        async with client:
            events = client.events()
            await client.connect()
            seen = await _until(events, "reconnected")
            assert kinds(seen) == [
                "ready",
                "closed",
                "reconnecting",
                "reconnecting",
                "reconnecting",
                "ready",
                "reconnected",
            ]
            assert seen[-1].attempt == 3
            await client.drain(settle=0.01)  # (the callbacks have caught up)
            assert [(c.code, c.will_reconnect) for c in closes] == [(1011, True)]
            assert [e.type for e in errors] == ["closed"]


async def test_a_reconnection_that_gives_up_says_so_with_one_close() -> None:
    # Attempt 1 is closed (1011) after its config, attempt 2 never gets `ready` and is
    # given up on (a close of the client's): neither is a close of the session; giving
    # up is, once, after the held audio is reported.
    async def script(ws: web.WebSocketResponse, number: int) -> None:
        if number == 0:
            await Peer.ready(ws)
            await ws.close(code=1011, message=b"boom")
        elif number == 1:
            await ws.close(code=1011)
        else:
            await peer.pump(ws, number)  # no ready

    peer = Peer(script)
    async with serving(peer.app()) as url:
        policy = ReconnectPolicy(max_attempts=2, initial_backoff=0.05, jitter=0)
        client = _peer_client(url, reconnect=policy)
        closes: list[ConnectionClosed] = []
        errors: list[Any] = []
        client.register_on_close(closes.append)
        client.register_on_error(errors.append)
        async with client:
            events = client.events()
            await client.connect()
            await _until(events, "reconnecting")
            client.timeouts = Timeouts(connect=5, ready=0.5, request=10, close=2)
            await client.on_audio_input(FRAME)
            rest = await _until(events)
            assert kinds(rest) == ["reconnecting", "audio_dropped", "closed"]
            final = rest[-1]
            assert (final.code, final.reason, final.initiated_by_client) == (1011, "boom", False)
            assert not final.will_reconnect
            assert [(c.code, c.will_reconnect) for c in closes] == [(1011, True), (1011, False)]
            await eventually(lambda: len(errors) == 3)
            assert [e.type for e in errors] == ["closed", "audio_dropped", "closed"]
            assert peer.upgrades == 3


async def test_disconnect_during_an_attempt_ends_the_outage_with_one_close_of_its_own(
    server: LocalServer,
) -> None:
    client = await _broken_once(server, reconnect=ReconnectPolicy(initial_backoff=0.05))
    closes: list[ConnectionClosed] = []
    client.register_on_close(closes.append)
    events = client.events()
    server.faults = Faults(never_send_ready=True)
    await client.speak("hello there")
    await _until(events, "reconnecting")
    await client.on_audio_input(FRAME)
    await server.records.wait_for(
        lambda: len(server.records.sessions) == 2 and server.records.last_session.config
    )
    await client.disconnect()
    rest = await _until(events)
    assert kinds(rest) == ["audio_dropped", "closed"]
    assert [(c.code, c.initiated_by_client, c.will_reconnect) for c in closes] == [
        (1006, False, True),
        (1000, True, False),
    ]


# --- state and order -----------------------------------------------------------------------


async def test_connected_and_ready_are_false_until_reconnected() -> None:
    # Session 1 gets its `ready` when the test says so, then reads only when told:
    # the attempt's socket is open before `ready`, and the replay of the held audio
    # waits for the socket after it.
    answer = asyncio.Event()
    read = asyncio.Event()

    async def script(ws: web.WebSocketResponse, number: int) -> None:
        if number == 1:
            await answer.wait()
        await Peer.ready(ws)
        if number == 0:
            await ws.close(code=1011)
            return
        await read.wait()
        await peer.pump(ws, number)

    peer = Peer(script)
    async with serving(peer.app()) as url:
        policy = ReconnectPolicy(initial_backoff=0.05, buffer_bytes=64 << 20)
        client = _peer_client(url, reconnect=policy)
        try:
            events = client.events()
            await client.connect()
            await _until(events, "reconnecting")
            for index in range(400):  # 26 MB: far more than the socket buffers take
                await client.on_audio_input(index.to_bytes(4, "big") * (1 << 14))
            await eventually(lambda: len(peer.texts) == 2 and peer.texts[1])  # its config
            states = {(client.reconnecting, client.connected, client.ready)}
            answer.set()
            await eventually(lambda: client.metrics.audio_frames_sent > 0)  # replaying
            states.add((client.reconnecting, client.connected, client.ready))
            assert states == {(True, False, False)}
            with pytest.raises(SaynaNotReadyError, match="reconnected"):
                await client.speak("not yet")
            read.set()
            await _until(events, "reconnected")
            assert (client.reconnecting, client.connected, client.ready) == (False, True, True)
        finally:
            answer.set()
            read.set()
            await client.disconnect(drain=0)


async def test_audio_dropped_follows_reconnected() -> None:
    go = asyncio.Event()

    async def script(ws: web.WebSocketResponse, number: int) -> None:
        if number == 1:
            await go.wait()
        await Peer.ready(ws)
        if number == 0:
            await ws.close(code=1011)
            return
        await peer.pump(ws, number)

    peer = Peer(script)
    async with serving(peer.app()) as url:
        policy = ReconnectPolicy(initial_backoff=0.05, jitter=0, buffer_bytes=4 * len(FRAME))
        client = _peer_client(url, reconnect=policy)
        try:
            events = client.events()
            await client.connect()
            await _until(events, "closed")
            for index in range(10):
                await client.on_audio_input(numbered(index))
            go.set()
            seen = await _until(events, "audio_dropped")
            assert kinds(seen) == ["reconnecting", "ready", "reconnected", "audio_dropped"]
            reconnected, dropped = seen[-2:]
            assert isinstance(reconnected, Reconnected)
            assert reconnected.replayed_frames == 4
            assert dropped.frames == 6
            await eventually(lambda: len(peer.audio[1]) == 4 * len(FRAME))
            assert numbers(bytes(peer.audio[1])) == [6, 7, 8, 9]
        finally:
            go.set()
            await client.disconnect()


# --- what ends a session ------------------------------------------------------------------


@pytest.mark.parametrize("policy", [None, ReconnectPolicy(initial_backoff=0.05, jitter=0)])
async def test_a_close_during_reconfigure_is_the_loss_of_the_session(
    policy: Optional[ReconnectPolicy],
) -> None:
    # reconfigure() clears `ready` while it waits for the next one: the close then looked
    # like that of a session never ready, with no reconnection and no end of the
    # iterators (they never ended).
    async def script(ws: web.WebSocketResponse, number: int) -> None:
        await Peer.ready(ws)
        if number == 0 and await peer.next_config(ws, number):  # the reconfigure()
            await ws.close(code=1011, message=b"internal error")
            return
        await peer.pump(ws, number)

    peer = Peer(script)
    async with serving(peer.app()) as url:
        client = _peer_client(url, reconnect=policy)
        async with client:
            events = client.events()
            turns = client.turns()
            await client.connect()
            with pytest.raises(SaynaConnectionClosedError):
                await client.reconfigure(tts_config=tts(sample_rate=16000, speaking_rate=1.2))
            if policy is None:
                seen = await _until(events)  # ends
                assert kinds(seen) == ["ready", "closed"]
                assert await _until(turns) == []
                assert not client.reconnecting
            else:
                seen = await _until(events, "reconnected")
                assert kinds(seen) == ["ready", "closed", "reconnecting", "ready", "reconnected"]
                assert seen[1].will_reconnect
                # The reconnection sent the new config.
                assert peer.texts[1][-1]["tts_config"]["speaking_rate"] == 1.2


async def test_an_iterator_made_before_a_failed_connect_ends(server: LocalServer) -> None:
    # The loop of docs/reconnect.md ("Doing it yourself") makes one per attempt.
    client = make_client(server)
    server.faults = Faults(close_after_config=True, close_code=1011)  # a socket, then a close
    events = client.events()
    with pytest.raises(SaynaConnectionClosedError):
        await client.connect()
    assert kinds(await _until(events)) == ["closed"]
    await server.stop()  # no socket at all
    events = client.events()
    with pytest.raises(SaynaConnectionError):  # refused
        await client.connect()
    assert await _until(events) == []
    await client.disconnect()


async def test_a_new_session_of_the_application_starts_a_new_outage() -> None:
    # The first outage took both attempts of max_attempts=2 (the first upgrade got 503);
    # a session the application starts itself, lost in the next 30 s, must reconnect,
    # not be given up on at once as if the old outage went on.
    lose = [asyncio.Event() for _ in range(4)]

    async def script(ws: web.WebSocketResponse, number: int) -> None:
        await Peer.ready(ws)
        if number in (0, 2):
            await lose[number].wait()
            await ws.close(code=1011, message=b"oops")
            return
        await peer.pump(ws, number)

    peer = Peer(script)
    peer.statuses[1] = 503
    async with serving(peer.app()) as url:
        policy = ReconnectPolicy(max_attempts=2, initial_backoff=0.05, jitter=0)
        client = _peer_client(url, reconnect=policy)
        try:
            events = client.events()
            await client.connect()
            lose[0].set()
            seen = await _until(events, "reconnected")
            assert seen[-1].attempt == 2
            await client.disconnect()
            events = client.events()
            await client.connect()  # session 2
            lose[2].set()
            seen = await _until(events, "reconnected")
            closed = next(e for e in seen if isinstance(e, ConnectionClosed))
            assert closed.will_reconnect
            assert seen[-1].attempt == 1
        finally:
            for event in lose:
                event.set()
            await client.disconnect()


# --- the conversation across an outage ------------------------------------------------------


async def test_a_turn_cut_by_a_lost_connection_ends_with_its_finals() -> None:
    # The server forgets the turn with its session: its finals were dropped silently
    # (the callbacks had them, turns() never did).
    async def script(ws: web.WebSocketResponse, number: int) -> None:
        await Peer.ready(ws)
        if number == 0:
            await ws.send_json(_result("please book", final=False, speech_final=False))
            await ws.send_json(_result("please book a table", final=True, speech_final=False))
            await ws.close(code=1011)
            return
        await ws.send_json(_result("for two", final=True, speech_final=True))
        await peer.pump(ws, number)

    peer = Peer(script)
    async with serving(peer.app()) as url:
        client = _peer_client(url)
        async with client:
            events = client.events()
            turns = client.turns()
            await client.connect()
            seen = await _until(events, "closed")
            assert kinds(seen)[-2:] == ["turn", "closed"]  # it ended with the connection
            first = await asyncio.wait_for(turns.__anext__(), TIMEOUT)
            second = await asyncio.wait_for(turns.__anext__(), TIMEOUT)
            assert isinstance(first, Turn)
            assert (first.text, first.segments, first.interim_count) == (
                "please book a table",
                ("please book a table",),
                1,
            )
            assert second.text == "for two"


async def test_drain_during_a_reconnection_is_refused_and_no_turn_is_left_open() -> None:
    # A turn was open when the connection dropped: drain() called during the outage
    # waited for its end, which no session would ever send (it never returned, even
    # once reconnected and idle).
    go = asyncio.Event()

    async def script(ws: web.WebSocketResponse, number: int) -> None:
        if number == 0:
            await Peer.ready(ws)
            await ws.send_json(_result("hel", final=False, speech_final=False))
            await ws.close(code=1011)
            return
        await go.wait()
        await Peer.ready(ws)
        await peer.pump(ws, number)

    peer = Peer(script)
    async with serving(peer.app()) as url:
        client = _peer_client(url)
        try:
            events = client.events()
            await client.connect()
            await _until(events, "reconnecting")
            with pytest.raises(SaynaNotReadyError, match="reconnect"):
                await asyncio.wait_for(client.drain(), TIMEOUT)
            go.set()
            await _until(events, "reconnected")
            await asyncio.wait_for(client.drain(settle=0.05), TIMEOUT)
        finally:
            go.set()
            await client.disconnect()


async def test_a_loss_that_is_reconnected_is_not_logged_as_a_warning(
    server: LocalServer, caplog: pytest.LogCaptureFixture
) -> None:
    # The drop that starts a reconnection was a WARNING (printed on stderr by logging's
    # last-resort handler, in the middle of docs/reconnect.md's shown output); the
    # `Reconnecting` events tell it, and giving up is logged as an error.
    caplog.set_level(logging.INFO, logger="sayna_client")
    client = await _broken_once(server)
    async with client:
        events = client.events()
        await client.speak("hello there")  # the server drops the session at its audio
        await _until(events, "reconnected")
    lost = [r for r in caplog.records if "reconnecting:" in r.getMessage()]
    assert [r.levelno for r in lost] == [logging.INFO]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_a_takeover_whose_config_is_rejected_ends_with_its_sockets_close() -> None:
    # The rejected takeover kept its socket open for reconfigure(), still marked as an
    # attempt of the (ended) outage: when the server then closed it, nothing was
    # published and events() never ended (a plain connect() rejected the same way ends).
    closing = asyncio.Event()

    async def script(ws: web.WebSocketResponse, number: int) -> None:
        if number == 0:
            await Peer.ready(ws)
            await ws.close(code=1011, message=b"boom")
            return
        await ws.send_json({"type": "error", "message": "Unsupported provider: deepgram"})
        await closing.wait()
        await ws.close(code=1011, message=b"bye")

    peer = Peer(script)
    async with serving(peer.app()) as url:
        client = _peer_client(url, reconnect=_LATE)
        try:
            events = client.events()
            await client.connect()
            await _until(events, "reconnecting")
            with pytest.raises(SaynaConfigRejectedError):
                await client.connect()
            assert not client.reconnecting
            closing.set()
            rest = await _until(events)  # (ends: the session is over)
            closes = [e for e in rest if isinstance(e, ConnectionClosed)]
            assert [(c.code, c.will_reconnect) for c in closes] == [(1011, False)]
        finally:
            closing.set()
            await client.disconnect()
