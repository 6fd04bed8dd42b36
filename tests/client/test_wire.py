"""Audio frames written straight to the transport (``realtime.wire``) against real servers.

Every test runs twice: through :class:`FrameWriter` (what a client gets with the
aiohttp it ships with) and through aiohttp's own ``send_bytes`` (what it falls back to,
forced here with the internal switch ``wire.FAST_PATH``), so the two paths are held to
the same wire bytes, errors and back-pressure. ``.ci/run`` runs this file on the oldest
aiohttp the package allows as well as the newest.
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import gc
import os
import weakref
from collections.abc import Awaitable
from typing import Any, Callable

import aiohttp
import pytest
from aiohttp import web

from helpers import internals
from helpers.waiting import eventually
from sayna_client import (
    SaynaClient,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaNotConnectedError,
)
from sayna_client.realtime import wire
from sayna_client.realtime.wire import (
    BATCH_BYTES,
    frame_header,
    own_path,
)
from sayna_client.server import LocalServer

from .conftest import make_client, start_app, stt, tts


@pytest.fixture(params=["frame_writer", "send_bytes"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "send_bytes":
        monkeypatch.setattr(wire, "FAST_PATH", False)  # the documented internal switch
    return str(request.param)


def test_frame_header_lengths() -> None:
    # RFC 6455 §5.2: 7-bit length, then 126 + 16 bits, then 127 + 64 bits; MASK bit set.
    assert frame_header(0) == b"\x82\x80"
    assert frame_header(125) == b"\x82\xfd"
    assert frame_header(126) == b"\x82\xfe\x00\x7e"
    assert frame_header(65535) == b"\x82\xfe\xff\xff"
    assert frame_header(65536) == b"\x82\xff" + (65536).to_bytes(8, "big")


async def test_frames_reach_the_server_byte_for_byte(server: LocalServer, path: str) -> None:
    # Sizes around each header length; bytes, bytearray and memoryviews (a 16-bit
    # array's view is counted in bytes, not items).
    sizes = [2, 124, 126, 128, 640, 65534, 65536, 70000, 640]
    frames: list[Any] = []
    for index, size in enumerate(sizes):
        payload = bytes((index * 31 + i) % 256 for i in range(size))
        kind = index % 3
        frames.append(
            payload if kind == 0 else bytearray(payload) if kind == 1 else memoryview(payload)
        )
    samples = array.array("h", range(-160, 160))
    frames.append(memoryview(samples))
    expected = b"".join(bytes(frame) for frame in frames)
    originals = [bytes(frame) for frame in frames]
    async with make_client(server) as client:
        await client.connect()
        for frame in frames:
            await client.on_audio_input(frame)
        assert internals.sender_kind(client) == path
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_bytes == len(expected))
        assert bytes(record.audio) == expected
        assert record.audio_frames == len(frames)
        # Masking works on a copy: the caller's buffers are untouched.
        assert [bytes(frame) for frame in frames] == originals
        assert client.metrics.audio_bytes_sent == len(expected)


async def test_every_header_length_masks_right(server: LocalServer, path: str) -> None:
    # A frame is one buffer masked whole (wire.FrameWriter.write): the key must land
    # before the payload whatever the header's length (2, 4 or 10 bytes), and every
    # payload unmask to its own bytes, sent alone or in a batch.
    sizes = [*range(1, 131), 65534, 65535, 65536, 65537, 70001]
    payloads = [os.urandom(size) for size in sizes]
    async with make_client(server) as client:
        await client.connect()
        for index, payload in enumerate(payloads):
            await client.on_audio_input(payload)
            if index % 2:
                await asyncio.sleep(0)  # the loop turns: the next frame is written alone
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_frames == len(payloads))
        assert bytes(record.audio) == b"".join(payloads)
        assert client.metrics.audio_bytes_sent == sum(sizes)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork() on this platform")
def test_a_forked_child_draws_masking_keys_of_its_own() -> None:
    internals.masking_keys(1)  # the parent holds keys drawn in advance
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.write(write, b"".join(internals.masking_keys(64)))
        finally:
            os._exit(0)
    os.close(write)
    received = b""
    while True:
        chunk = os.read(read, 4096)
        if not chunk:
            break
        received += chunk
    os.close(read)
    os.waitpid(pid, 0)
    child = {received[i : i + 4] for i in range(0, len(received), 4)}
    parent = set(internals.masking_keys(64))
    assert len(child) == len(parent) == 64  # (a repeat of 32 random bits: 1 in ~10^6)
    assert not child & parent


def test_the_writers_keep_no_event_loop_alive() -> None:
    # The frame writers of a loop share its turns (wire._Turns), kept per loop: a loop
    # that ran and closed must still be freed.
    async def one_turn() -> None:
        internals.open_write_turn()
        await asyncio.sleep(0)

    loop = asyncio.new_event_loop()
    loop.run_until_complete(one_turn())
    loop.close()
    gone = weakref.ref(loop)
    del loop
    gc.collect()
    assert gone() is None


class _WriteSpy:
    """The real transport, keeping a copy of every write (to count and parse them)."""

    def __init__(self, transport: Any) -> None:
        self._transport = transport
        self.writes: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))
        self._transport.write(data)

    def is_closing(self) -> bool:
        return bool(self._transport.is_closing())

    def frames(self) -> list[tuple[bytes, bytes]]:
        """(masking key, unmasked payload) of every binary frame written (masked, under
        64 KiB of payload); other frames (the Close) are parsed and skipped."""
        stream = b"".join(self.writes)
        found = []
        while stream:
            assert stream[1] & 0x80, "a client frame must be masked"
            size, start = stream[1] & 0x7F, 2
            if size == 126:
                size, start = int.from_bytes(stream[2:4], "big"), 4
            key, masked = stream[start : start + 4], stream[start + 4 : start + 4 + size]
            if stream[0] == 0x82:
                found.append((key, bytes(b ^ key[i % 4] for i, b in enumerate(masked))))
            else:
                assert stream[0] == 0x88, "only binary frames and the Close are sent here"
            stream = stream[start + 4 + size :]
        return found


async def _spied_writer(client: SaynaClient) -> _WriteSpy:
    """Connect ``client`` and spy on its frame writer's transport."""
    await client.connect()
    return internals.wrap_frame_transport(client, _WriteSpy)


async def test_masking_keys_differ_per_frame(server: LocalServer) -> None:
    async with make_client(server) as client:
        spy = await _spied_writer(client)
        payloads = [bytes([i]) * 640 for i in range(64)]
        for payload in payloads:
            await client.on_audio_input(payload)
        record = server.records.last_session
        await server.records.wait_for(lambda: record.audio_bytes == 64 * 640)
    frames = spy.frames()
    assert [payload for _, payload in frames] == payloads
    assert bytes(record.audio) == b"".join(payloads)  # the server unmasked each one
    keys = {key for key, _ in frames}
    assert len(keys) > 60  # 32-bit random keys: a repeat is a one-in-millions event


async def test_bursts_share_writes_and_live_frames_go_at_once(server: LocalServer) -> None:
    frame = bytes(640)
    async with make_client(server) as client:
        spy = await _spied_writer(client)
        record = server.records.last_session
        # A live stream: every frame is written by its own call, before the next one
        # (frames a turn of the event loop apart are written alone).
        for sent in range(1, 6):
            await client.on_audio_input(frame)
            assert len(spy.writes) == sent
            await asyncio.sleep(0)
        # An upload loop: frames share writes, each write at most one batch plus a frame.
        spy.writes.clear()
        for _ in range(1000):
            await client.on_audio_input(frame)
        await server.records.wait_for(lambda: record.audio_frames == 1005)
        assert len(spy.writes) < 1000 // 4
        assert max(len(write) for write in spy.writes) < BATCH_BYTES + 648
        # A frame that joined a batch is written when the loop turns, without more sends.
        held = 0
        for target in range(1007, 1027, 2):
            await client.on_audio_input(frame)
            await client.on_audio_input(frame)  # right after: it joins a batch
            held += internals.batch_open(client)
            await server.records.wait_for(lambda n=target: record.audio_frames == n)
        assert held == 10  # (the second frame of every pair went in the same turn)
    assert bytes(record.audio) == bytes(1025 * 640)


async def _bare_server(
    session: Callable[[web.WebSocketResponse], Awaitable[None]],
) -> tuple[web.AppRunner, str]:
    """A WebSocket server that answers ``config`` with ``ready`` and hands the socket to
    ``session``: the runner (to clean up) and the base URL."""

    async def handler(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # config
        await ws.send_json({"type": "ready", "stream_id": "s"})
        await session(ws)
        return ws

    app = web.Application()
    app.router.add_get("/ws", handler)
    return await start_app(app)


async def test_text_and_close_follow_the_audio_sent_before_them() -> None:
    """A batch is written before a text frame and before Close: the server sees every
    frame in call order."""
    seen: list[Any] = []
    done = asyncio.Event()

    async def session(ws: web.WebSocketResponse) -> None:
        async for msg in ws:
            seen.append(msg.data[0] if msg.type == aiohttp.WSMsgType.BINARY else msg.json())
        seen.append("closed")
        done.set()

    runner, url = await _bare_server(session)
    try:
        client = SaynaClient(url, stt(), tts())
        await client.connect()
        for round_ in range(3):
            for index in range(50):
                await client.on_audio_input(bytes([round_ * 50 + index]) * 640)
            await client.send_message(f"after {round_}", "user")
        for index in range(150, 200):
            await client.on_audio_input(bytes([index]) * 640)
        await client.disconnect()
        await asyncio.wait_for(done.wait(), 10)
    finally:
        await runner.cleanup()
    texts = [(i, item["message"]) for i, item in enumerate(seen) if isinstance(item, dict)]
    assert texts == [(50, "after 0"), (101, "after 1"), (152, "after 2")]
    assert [item for item in seen if isinstance(item, int)] == list(range(200))
    assert seen[-1] == "closed"


async def test_send_on_a_closing_socket_is_a_typed_error(server: LocalServer, path: str) -> None:
    async with make_client(server) as client:
        await client.connect()
        await client.on_audio_input(bytes(640))
        conn = internals.connection(client)
        # Our Close frame is out: no data frame may follow it.
        if path == "frame_writer":
            assert internals.frame_writer(client).write_close(1000)
        else:
            await internals.raw_socket(client).close()
        with pytest.raises(ConnectionError) as info:
            await conn.binary_sender()(bytes(640))
        error = conn.send_failed(info.value)
        assert isinstance(error, SaynaConnectionClosedError)
        with pytest.raises((SaynaConnectionError, SaynaNotConnectedError)):  # as it's seen
            await client.on_audio_input(bytes(640))
    assert server.records.last_session.audio_bytes == 640


async def test_the_data_path_is_taken_over_only_when_aiohttp_is_as_expected(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def deflating(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=True)  # accepts per-message deflate
        await ws.prepare(request)
        await ws.receive()
        return ws

    app = web.Application()
    app.router.add_get("/ws", deflating)
    runner, url = await start_app(app)  # (the local server, like Sayna, refuses deflate)
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(f"{url}/ws", compress=15) as ws:
                assert ws.compress == 15
                assert own_path(ws) is None  # per-message deflate: aiohttp frames it
        finally:
            await runner.cleanup()
        async with session.ws_connect(f"{server.url}/ws", compress=0) as ws:
            await ws.send_str("not json")  # the server answers with an error frame...
            await eventually(lambda: len(ws._reader._buffer) > 0)  # type: ignore[attr-defined]
            assert own_path(ws) is None  # ...which aiohttp has already taken: not lost
        async with session.ws_connect(f"{server.url}/ws", compress=0) as ws:
            # This aiohttp is laid out as the own path expects...
            assert own_path(ws) is wire.transport_of(ws) is not None
            # ...and the switch turns the own path off.
            monkeypatch.setattr(wire, "FAST_PATH", False)
            assert own_path(ws) is None


async def test_the_own_path_lets_go_of_aiohttps_websocket(server: LocalServer, path: str) -> None:
    # Issue #19: once the client reads its frames itself, aiohttp's WebSocket object, its
    # message queue and its parsers can never run again; the connection keeps only
    # aiohttp's record of the connection (taken out of the upgrade response, which goes
    # too), so they are freed at connect by reference counting (the cycle collector is
    # off here), and the session still runs and closes cleanly.
    def websockets_alive() -> int:
        return sum(isinstance(o, aiohttp.ClientWebSocketResponse) for o in gc.get_objects())

    heard: list[object] = []
    gc.collect()
    gc.disable()
    try:
        async with make_client(server) as client:
            client.register_on_tts_audio(heard.append)
            await client.connect()
            if path == "frame_writer":
                assert websockets_alive() == 0
                assert not [o for o in gc.get_objects() if isinstance(o, aiohttp.ClientResponse)]
                aiohttp_protocol = internals.socket_record(client).protocol
                assert aiohttp_protocol._payload is None
                assert aiohttp_protocol._payload_parser is None
            else:
                assert websockets_alive() == 1
            await client.on_audio_input(bytes(640))
            await client.speak("still talking")
            await eventually(lambda: len(heard) > 0)
    finally:
        gc.enable()
    await eventually(lambda: server.records.last_session.close_code == 1000)
    assert server.records.last_session.audio_bytes == 640


async def test_send_waits_while_the_server_does_not_read(path: str) -> None:
    """Back-pressure: a server that stops reading makes sends wait; nothing is lost."""
    release = asyncio.Event()
    received = bytearray()
    finished = asyncio.Event()

    async def session(ws: web.WebSocketResponse) -> None:
        await release.wait()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                received.extend(msg.data)
                if len(received) == total:
                    finished.set()

    runner, url = await _bare_server(session)
    frame = bytes(range(256)) * 256  # 64 KiB
    count = 512  # 32 MiB: ~3x what the loopback socket buffers took before sends waited
    total = len(frame) * count
    peak = 0
    try:
        client = SaynaClient(url, stt(), tts())
        await client.connect()
        assert internals.sender_kind(client) == path
        transport = internals.transport(client)
        high = transport.get_write_buffer_limits()[1]

        async def send_all() -> None:
            nonlocal peak
            for _ in range(count):
                await client.on_audio_input(frame)
                peak = max(peak, transport.get_write_buffer_size())

        sender = asyncio.create_task(send_all())
        # (The transport's buffer has no event to wait on: poll it.)
        await eventually(lambda: transport.get_write_buffer_size() >= high or sender.done())
        assert not sender.done()  # the server reads nothing, so the sender must wait
        release.set()
        await asyncio.wait_for(sender, 60)
        await asyncio.wait_for(finished.wait(), 60)
        assert bytes(received) == frame * count
        # The client's own buffer never grew past the transport's limit by more than a
        # frame or two (without back-pressure it would hold most of the 32 MiB).
        assert peak <= high + 3 * len(frame)
        await client.disconnect()
    finally:
        await runner.cleanup()


async def test_a_send_cancelled_while_it_waits_still_counts(path: str) -> None:
    """A frame handed to the socket goes out even when the caller stops waiting for the
    peer to read it (cancelled): the counters include it, as the server does."""
    release = asyncio.Event()
    received = bytearray()
    frames = 0

    async def session(ws: web.WebSocketResponse) -> None:
        nonlocal frames
        await release.wait()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.BINARY:
                received.extend(msg.data)
                frames += 1

    runner, url = await _bare_server(session)
    frame = bytes(range(256)) * 256  # 64 KiB
    try:
        client = SaynaClient(url, stt(), tts(), heartbeat=None)
        await client.connect()
        assert internals.sender_kind(client) == path
        while True:  # until a send waits for the server, which reads nothing yet
            send = asyncio.ensure_future(client.on_audio_input(frame))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if not send.done():
                break
            send.result()
        send.cancel()
        with pytest.raises(asyncio.CancelledError):
            await send
        last = asyncio.ensure_future(client.on_audio_input(b"end"))
        release.set()
        await asyncio.wait_for(last, 60)
        await eventually(lambda: received.endswith(b"end"), timeout=60)
        assert client.metrics.audio_frames_sent == frames
        assert client.metrics.audio_bytes_sent == len(received)
        await client.disconnect()
    finally:
        release.set()  # (a failed test leaves no handler waiting for the cleanup)
        await runner.cleanup()


async def test_a_speak_cancelled_while_it_waits_is_still_spoken() -> None:
    """A ``speak`` whose frame waits for the socket (an upload filled it) went out:
    cancelling the call does not take it back, so its handle stays in the speech queue
    (a barge-in still sees speech to stop) and ends when the server says so."""
    release = asyncio.Event()
    texts: list[str] = []

    async def session(ws: web.WebSocketResponse) -> None:
        await release.wait()
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT and msg.json().get("type") == "speak":
                texts.append(msg.json()["text"])
                await ws.send_bytes(bytes(640))
                await ws.send_json({"type": "tts_playback_complete", "timestamp": 1})

    runner, url = await _bare_server(session)
    try:
        client = SaynaClient(url, stt(), tts(), heartbeat=None)
        await client.connect()
        # (aiohttp's own send_str waits only now and then: the SDK's writer every time)
        assert internals.sender_kind(client) == "frame_writer"
        while True:  # fill the socket: the server reads nothing yet
            send = asyncio.ensure_future(client.on_audio_input(bytes(range(256)) * 256))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if not send.done():
                break
            send.result()
        speak = asyncio.ensure_future(client.speak("hello there"))
        await asyncio.sleep(0)
        assert not speak.done()
        speak.cancel()
        with pytest.raises(asyncio.CancelledError):
            await speak
        handle = client.speech.current
        assert handle is not None
        assert handle.text == "hello there"
        assert client.speech.speaking
        release.set()
        await asyncio.wait_for(send, 60)
        await asyncio.wait_for(handle.wait(), 60)
        assert not handle.interrupted
        assert texts == ["hello there"]
        assert not client.speech.speaking
        await client.disconnect()
    finally:
        release.set()  # (a failed test leaves no handler waiting for the cleanup)
        await runner.cleanup()


async def test_a_speak_wait_cancelled_while_it_waits_leaves_no_unread_error() -> None:
    """``speak(wait=True)`` cancelled while its frame waits for the socket, then the
    session ends: the playback wait it had begun fails with the close, and nobody is
    left holding a failed future that asyncio reports as "never retrieved"."""
    release = asyncio.Event()

    async def session(ws: web.WebSocketResponse) -> None:
        await release.wait()

    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    runner, url = await _bare_server(session)
    try:
        client = SaynaClient(url, stt(), tts(), heartbeat=None)
        await client.connect()
        assert internals.sender_kind(client) == "frame_writer"
        while True:  # fill the socket: the server reads nothing
            send = asyncio.ensure_future(client.on_audio_input(bytes(range(256)) * 256))
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            if not send.done():
                break
            send.result()
        speak = asyncio.ensure_future(client.speak("hello there", wait=True, timeout=60))
        await asyncio.sleep(0)
        assert not speak.done()
        speak.cancel()
        with pytest.raises(asyncio.CancelledError):
            await speak
        await client.abort()
        # The upload ends with the socket, unless the kernel took its frame first (a
        # loopback buffer that grew under load): either way nothing is left unread.
        with contextlib.suppress(SaynaConnectionError):
            await send
        del speak, send
        gc.collect()
        assert [c.get("message") for c in reported] == []
    finally:
        loop.set_exception_handler(previous)
        release.set()
        await runner.cleanup()


async def test_frames_keep_their_order_across_bursts_and_turns(server: LocalServer) -> None:
    """Sends started in runs of every length, the loop turning between runs: each run's
    frames go out in one turn (a burst, batched), the next run's in a later one; the
    server receives every frame in the order of the calls."""
    payloads = [bytes([index % 251]) * (320 + index % 7) for index in range(300)]
    async with make_client(server) as client:
        await client.connect()
        record = server.records.last_session
        sends: list[asyncio.Task[None]] = []
        run = 0
        for index, payload in enumerate(payloads):
            sends.append(asyncio.ensure_future(client.on_audio_input(payload)))
            if index == run * (run + 1) // 2:  # runs of 1, 2, 3... sends
                run += 1
                await asyncio.sleep(0)
        await asyncio.gather(*sends)
        total = sum(map(len, payloads))
        await server.records.wait_for(lambda: record.audio_bytes == total)
        assert client.metrics.audio_frames_sent == len(payloads)
        assert client.metrics.audio_bytes_sent == total
    assert bytes(record.audio) == b"".join(payloads)
