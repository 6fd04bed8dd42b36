"""The client's own WebSocket data path (``realtime.framing``) against a server on loopback
that writes raw RFC 6455 frames: fragmented messages, control frames between fragments,
frames split over many TCP writes, bursts, Close frames and protocol violations.

The tests of well-formed traffic run on both paths (the own one and aiohttp's
``receive()``, forced with ``wire.FAST_PATH``), so the two agree on what the application
sees. The protocol violations run on the own path: on aiohttp's, what a violation is
reported as is aiohttp's and differs between its versions (3.9 takes a reserved bit for
compression and reports 1007).
"""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Callable, Optional

import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web

from helpers import internals
from helpers.waiting import eventually
from helpers.wire import ws_frame as frame
from sayna_client import ConnectionClosed, EventsDropped, SaynaClient, SaynaError, Timeouts
from sayna_client.realtime import connection, handshake, wire
from sayna_client.testing import running_server

from .conftest import start_app, stt, tts

Script = Callable[["RawServer", web.WebSocketResponse], Awaitable[None]]


def text(event: dict[str, Any], first: int = 0x81) -> bytes:
    return frame(first, json.dumps(event).encode())


def results(count: int) -> bytes:
    """``count`` interim stt_result frames, transcripts ``w0``, ``w1``..."""
    return b"".join(
        text(
            {
                "type": "stt_result",
                "transcript": f"w{i}",
                "is_final": False,
                "is_speech_final": False,
                "confidence": 0.9,
            }
        )
        for i in range(count)
    )


def close(code: int, reason: bytes = b"") -> bytes:
    return frame(0x88, struct.pack("!H", code) + reason)


MESSAGE = {
    "type": "message",
    "message": {"message": "hi", "identity": "srv", "topic": "t", "room": "r", "timestamp": 1},
}


class RawServer:
    """``/ws``: reads the config, answers ``ready``, runs ``script``, then records what the
    client sends until it closes (Pongs, its Close code)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.pongs: list[bytes] = []
        self.client_close: Optional[int] = None
        self.finished = asyncio.Event()
        self._transport: Optional[asyncio.BaseTransport] = None
        app = web.Application()
        app.router.add_get("/ws", self._ws)
        self.app = app

    async def _ws(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False, autoclose=False)
        await ws.prepare(request)
        self._transport = request.transport
        msg = await ws.receive()
        assert msg.type is WSMsgType.TEXT
        assert json.loads(msg.data)["type"] == "config"
        await ws.send_str(json.dumps({"type": "ready", "stream_id": "raw"}))
        await self.script(self, ws)
        while True:
            msg = await ws.receive()
            if msg.type is WSMsgType.PONG:
                self.pongs.append(msg.data)
            elif msg.type is WSMsgType.PING:
                await ws.pong(msg.data)
            elif msg.type is WSMsgType.CLOSE:
                self.client_close = msg.data
                await ws.close()
                break
            elif msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                break
        self.finished.set()
        return ws

    def write(self, data: bytes) -> None:
        """Raw bytes on the socket (the frames' bits exactly as given)."""
        transport: Any = self._transport  # uvloop's transports are not asyncio's classes
        assert transport is not None
        transport.write(data)


@pytest.fixture(params=["own", "aiohttp"])
def path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "aiohttp":
        monkeypatch.setattr(wire, "FAST_PATH", False)  # the documented internal switch
    return str(request.param)


@pytest_asyncio.fixture
async def serve() -> AsyncIterator[Callable[[Script], Awaitable[tuple[RawServer, str]]]]:
    runners: list[web.AppRunner] = []

    async def start(script: Script) -> tuple[RawServer, str]:
        server = RawServer(script)
        runner, url = await start_app(server.app)
        runners.append(runner)
        return server, url

    yield start
    for runner in runners:
        await runner.cleanup()


def _watch(client: SaynaClient) -> tuple[list[ConnectionClosed], list[Any]]:
    """The close events and the messages ``client`` will receive."""
    closes: list[ConnectionClosed] = []
    messages: list[Any] = []
    client.register_on_close(closes.append)
    client.register_on_message(messages.append)
    return closes, messages


def _watch_audio(client: SaynaClient) -> tuple[list[ConnectionClosed], list[bytes]]:
    """The close events and the TTS audio frames ``client`` will receive."""
    closes: list[ConnectionClosed] = []
    audio_in: list[bytes] = []
    client.register_on_close(closes.append)
    client.register_on_tts_audio(audio_in.append)
    return closes, audio_in


def _client(url: str, **kwargs: Any) -> SaynaClient:
    kwargs.setdefault("timeouts", Timeouts(connect=5, ready=5, request=5, close=2))
    return SaynaClient(url, stt(), tts(), **kwargs)


async def test_fragmented_messages_with_a_ping_between_fragments(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    body = json.dumps(MESSAGE).encode()
    audio = bytes(range(256)) * 10

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(
            frame(0x01, body[:10])  # text, not final
            + frame(0x89, b"are you there")  # a Ping between fragments (§5.4)
            + frame(0x00, body[10:20])
            + frame(0x80, body[20:])  # the final continuation
            + frame(0x02, audio[:1000])  # binary, not final
            + frame(0x80, audio[1000:]),
        )

    server, url = await serve(script)
    async with _client(url) as client:
        messages: list[Any] = []
        audio_in: list[bytes] = []
        client.register_on_message(messages.append)
        client.register_on_tts_audio(audio_in.append)
        await client.connect()
        assert internals.sender_kind(client) == ("frame_writer" if path == "own" else "send_bytes")
        await eventually(lambda: messages and audio_in and server.pongs)
        assert [m.message.message for m in messages] == ["hi"]
        assert audio_in == [audio]
        assert server.pongs == [b"are you there"]  # the Pong carries the Ping's payload


async def test_frames_split_over_many_writes_arrive_whole(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    big = bytes(range(251)) * 4000  # ~1 MB: a 64-bit length
    wire_bytes = frame(0x82, big) + text(MESSAGE) + frame(0x82, b"tail")

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        for start in range(0, len(wire_bytes), 7919):  # cuts through headers and payloads
            server.write(wire_bytes[start : start + 7919])
            await asyncio.sleep(0)

    _, url = await serve(script)
    async with _client(url) as client:
        audio_in: list[bytes] = []
        messages: list[Any] = []
        client.register_on_tts_audio(audio_in.append)
        client.register_on_message(messages.append)
        await client.connect()
        await eventually(lambda: len(audio_in) == 2)
        assert audio_in == [big, b"tail"]
        assert len(messages) == 1


async def test_a_burst_in_one_write_is_handled_without_dropping(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    # 5,000 results written at once: the client hands them to its callbacks in turns, so
    # a queue of 1,000 never overflows (a backlog stays in the socket, not in memory).
    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(results(5000))

    _, url = await serve(script)
    async with _client(url, max_queue=1000) as client:
        seen: list[str] = []
        dropped: list[EventsDropped] = []
        client.register_on_stt_result(lambda result: seen.append(result.transcript))
        client.on("events_dropped", dropped.append)
        await client.connect()
        await eventually(lambda: len(seen) == 5000 or dropped, timeout=30)
        assert dropped == []
        assert seen == [f"w{i}" for i in range(5000)]


async def test_the_servers_close_is_answered_and_reported(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(text(MESSAGE) + close(4001, "bye ✓".encode()))

    server, url = await serve(script)
    async with _client(url) as client:
        closes, messages = _watch(client)
        await client.connect()
        await eventually(lambda: closes)
        assert (closes[0].code, closes[0].reason) == (4001, "bye ✓")
        assert not closes[0].initiated_by_client
        assert len(messages) == 1  # what came before the Close was delivered
        await asyncio.wait_for(server.finished.wait(), 10)
        assert server.client_close == 1000  # the client answered the Close


async def test_disconnect_does_the_close_handshake(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        return None

    server, url = await serve(script)
    client = _client(url)
    closes: list[ConnectionClosed] = []
    client.register_on_close(closes.append)
    await client.connect()
    await client.disconnect()
    assert server.client_close == 1000
    assert closes[0].initiated_by_client
    assert closes[0].code == 1000


VIOLATIONS = [
    ("reserved bits", frame(0xC1, b"{}"), 1002),
    ("unknown opcode", frame(0x83, b"x"), 1002),
    ("continuation outside a message", frame(0x80, b"x"), 1002),
    ("new message inside a fragmented one", frame(0x01, b"{") + frame(0x81, b"{}"), 1002),
    (
        "audio inside a fragmented message, after audio alike",
        frame(0x82, b"abc") + frame(0x01, b"{") + frame(0x82, b"abc") + frame(0x80, b"}"),
        1002,
    ),
    ("fragmented Ping", frame(0x09, b"x"), 1002),
    ("Close of one byte", frame(0x88, b"\x03"), 1002),
    ("invalid close code", close(999), 1002),
    ("text not in UTF-8", frame(0x81, b'{"type": "\xff"}'), 1007),
    ("close reason not in UTF-8", close(1000, b"\xff"), 1007),
]


@pytest.mark.parametrize(("name", "data", "code"), VIOLATIONS, ids=[v[0] for v in VIOLATIONS])
async def test_protocol_violations_end_the_session_with_the_rfc_code(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],
    name: str,
    data: bytes,
    code: int,
) -> None:
    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(data + text(MESSAGE))  # nothing after the violation is handled

    server, url = await serve(script)
    async with _client(url) as client:
        closes, messages = _watch(client)
        await client.connect()
        await eventually(lambda: closes)
        assert closes[0].code == code, closes[0]
        assert not closes[0].will_reconnect
        assert messages == []
        await asyncio.wait_for(server.finished.wait(), 10)
        assert server.client_close == code  # the client's Close names the violation


async def test_a_masked_frame_from_the_server_is_a_protocol_error(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],
) -> None:
    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(frame(0x81, json.dumps(MESSAGE).encode(), mask=b"\x01\x02\x03\x04"))

    _, url = await serve(script)
    async with _client(url) as client:
        closes: list[ConnectionClosed] = []
        client.register_on_close(closes.append)
        await client.connect()
        await eventually(lambda: closes)
        assert closes[0].code == 1002
        assert "masked" in closes[0].reason


async def test_a_message_over_the_limit_is_refused_with_1009(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],
    path: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(handshake, "MAX_MESSAGE_BYTES", 4096)  # aiohttp's limit
    monkeypatch.setattr(connection, "MAX_MESSAGE_BYTES", 4096)  # the own path's

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        # A fragmented message whose parts are each under the limit, then one frame over it.
        server.write(frame(0x02, bytes(3000)) + frame(0x80, bytes(3000)))

    _, url = await serve(script)
    async with _client(url) as client:
        closes, audio_in = _watch_audio(client)
        await client.connect()
        await eventually(lambda: closes)
        assert closes[0].code == 1009
        assert closes[0].refused_by_client  # the client's refusal, not the server's
        assert "20 ms frames" not in closes[0].message  # the server's limit is not the cause
        assert audio_in == []


async def test_audio_frames_alike_and_not_arrive_exactly(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    # The parser takes a frame whose header repeats the last binary frame's at once
    # (a TTS stream's frames are alike): frames of the same size and of other sizes,
    # empty ones, 7-, 16- and 64-bit lengths, text between them, in one write and cut
    # through headers, all arrive byte for byte and in order.
    sizes = [640, 640, 640, 641, 640, 0, 0, 125, 126, 640, 70_000, 640, 640]
    payloads = [bytes((i * 7 + j) % 256 for j in range(size)) for i, size in enumerate(sizes)]
    frames = [frame(0x82, payload) for payload in payloads]
    frames.insert(4, text(MESSAGE))
    wire_bytes = b"".join(frames)

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(wire_bytes)  # all at once
        await asyncio.sleep(0)
        for start in range(0, len(wire_bytes), 641):  # then cut through headers
            server.write(wire_bytes[start : start + 641])
            await asyncio.sleep(0)

    _, url = await serve(script)
    async with _client(url) as client:
        audio_in: list[bytes] = []
        messages: list[Any] = []
        client.register_on_tts_audio(audio_in.append)
        client.register_on_message(messages.append)
        await client.connect()
        await eventually(lambda: len(audio_in) == 2 * len(payloads))
        assert audio_in == payloads + payloads
        assert len(messages) == 2


async def test_a_frame_read_with_the_close_reaches_the_callbacks_before_it(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    # The usual session (an async result callback, a plain audio one) with its task
    # waiting: a TTS frame and the server's Close in one write. The frame's pass is
    # scheduled when the Close ends the session: the frame still reaches the audio
    # callback, before the close callback.
    handled = asyncio.Event()
    payload = bytes(range(200))

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(results(1))
        await handled.wait()  # the task has handled the result: it waits for events
        server.write(frame(0x82, payload) + close(4001))

    order: list[Any] = []

    async def on_result(result: Any) -> None:
        order.append(result.transcript)
        handled.set()

    _, url = await serve(script)
    async with _client(url) as client:
        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(order.append)
        client.register_on_close(lambda event: order.append(event.code))
        await client.connect()
        await eventually(lambda: 4001 in order)
        assert order == ["w0", payload, 4001]


async def test_frames_written_a_byte_at_a_time_arrive_whole(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    # Every header cut at every byte (tiny frames, 7- and 16-bit lengths, audio alike and
    # not, text, a Ping, a fragmented audio message), then audio frames alike, each in a
    # write of its own (the reader's one-frame chunk), after the fragmented message.
    audio = [bytes((i + j) % 256 for j in range(size)) for i, size in enumerate([640, 640, 3, 0])]
    fragmented = bytes(range(256)) * 3
    stream = (
        frame(0x82, audio[0])
        + frame(0x82, audio[1])
        + frame(0x82, audio[2])
        + frame(0x89, b"")  # a Ping of 2 bytes
        + frame(0x82, audio[3])
        + text(MESSAGE)
        + frame(0x02, fragmented[:100])
        + frame(0x80, fragmented[100:])
    )
    alike = [bytes((7 * i + j) % 256 for j in range(640)) for i in range(3)]

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        for index in range(len(stream)):
            server.write(stream[index : index + 1])
            await asyncio.sleep(0)
        for payload in alike:
            server.write(frame(0x82, payload))
            await asyncio.sleep(0)

    server, url = await serve(script)
    async with _client(url) as client:
        audio_in: list[bytes] = []
        messages: list[Any] = []
        client.register_on_tts_audio(audio_in.append)
        client.register_on_message(messages.append)
        await client.connect()
        await eventually(lambda: len(audio_in) == 8 and server.pongs)
        assert audio_in == [*audio, fragmented, *alike]
        assert len(messages) == 1


async def test_audio_alike_alone_in_a_write_inside_a_fragmented_message_is_refused(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],
) -> None:
    # A whole audio frame like the last one, while a fragmented message is gathered, is a
    # protocol violation however it arrives (here likely a read of its own).
    payload = bytes(640)

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(frame(0x82, payload))
        await asyncio.sleep(0)
        server.write(frame(0x02, b"part"))
        await asyncio.sleep(0)
        server.write(frame(0x82, payload))
        server.write(frame(0x80, b"rest"))

    _, url = await serve(script)
    async with _client(url) as client:
        closes, audio_in = _watch_audio(client)
        await client.connect()
        await eventually(lambda: closes)
        assert closes[0].code == 1002
        assert audio_in == [payload]


# --- binary frames that come in a row in one read ---------------------------------------


def _speech_final(transcript: str) -> bytes:
    return text(
        {
            "type": "stt_result",
            "transcript": transcript,
            "is_final": True,
            "is_speech_final": True,
            "confidence": 0.9,
        }
    )


def _turn_and_reply(greeting: bytes, frames: list[bytes]) -> Script:
    """A server that sends the audio ``greeting`` and a user turn ("hello"), waits for the
    client's ``speak``, then writes the reply's ``frames`` and its completion in one write
    (the greeting is as long as the frames: the reply's frames are then all alike, a run)."""

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(frame(0x82, greeting) + _speech_final("hello"))
        msg = await ws.receive()  # the reply's speak
        assert json.loads(msg.data)["type"] == "speak"
        server.write(
            b"".join(frame(0x82, p) for p in frames)
            + text({"type": "tts_playback_complete", "timestamp": 1})
        )

    return script


def _alike(count: int, seed: int) -> list[bytes]:
    """``count`` different payloads of one size: frames whose headers are alike."""
    return [bytes((seed + 3 * i + j) % 256 for j in range(640)) for i in range(count)]


@pytest.mark.parametrize("iterator", [False, True], ids=["callbacks", "and-iterator"])
@pytest.mark.parametrize("audio_kind", ["plain", "async"])
@pytest.mark.parametrize("result_kind", ["plain", "async"])
async def test_audio_frames_in_a_row_keep_their_place_among_events(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],
    path: str,
    audio_kind: str,
    result_kind: str,
    iterator: bool,
) -> None:
    # Frames alike that come several to a read are handed on together (the own path;
    # one by one while an iterator takes audio too); callbacks and iterators still see
    # every frame in its place: after the result before them, before the message after
    # them, and the counts take each one.
    first, second = _alike(6, 1), _alike(130, 2)  # the second run crosses a turn's budget
    wire_bytes = (
        results(1)
        + b"".join(frame(0x82, p) for p in first)
        + text(MESSAGE)
        + b"".join(frame(0x82, p) for p in second)
        + _speech_final("w0")  # (the turn ends: disconnect() waits for no result)
    )

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(wire_bytes)

    order: list[Any] = []

    def on_audio(data: bytes) -> None:
        order.append(data)

    async def on_audio_async(data: bytes) -> None:
        order.append(data)

    def on_result(result: Any) -> None:
        order.append(result.transcript)

    async def on_result_async(result: Any) -> None:
        order.append(result.transcript)

    _, url = await serve(script)
    async with _client(url) as client:
        client.register_on_tts_audio(on_audio if audio_kind == "plain" else on_audio_async)
        client.register_on_stt_result(on_result if result_kind == "plain" else on_result_async)
        client.register_on_message(lambda message: order.append("message"))
        events = client.events() if iterator else None
        await client.connect()
        expected = ["w0", *first, "message", *second, "w0"]
        await eventually(lambda: len(order) == len(expected))
        assert order == expected
        if events is not None:
            seen: list[Any] = []
            async for event in events:
                if event.type in ("tts_audio", "stt_result", "message"):
                    seen.append(event.data if event.type == "tts_audio" else event.type)
                    if len(seen) == len(expected):
                        break
            assert seen == ["stt_result", *first, "message", *second, "stt_result"]
        assert client.metrics.tts_audio_frames == len(first) + len(second)
        assert client.metrics.tts_audio_bytes == 640 * (len(first) + len(second))


async def test_the_reply_frame_a_turn_waits_for_is_timed_in_its_place_in_a_run(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    # The reply's first frame comes with the rest of its audio in one read: the turn's
    # record (timed at that frame) reaches its callback after that frame and before the
    # next, and every frame is counted.
    greeting, *frames = _alike(6, 3)

    script = _turn_and_reply(greeting, frames)
    order: list[Any] = []

    async def on_result(result: Any) -> None:
        order.append(result.transcript)
        if result.is_speech_final:
            await client.speak("hi")

    _, url = await serve(script)
    async with _client(url) as client:
        client.register_on_stt_result(on_result)
        client.register_on_tts_audio(order.append)
        client.on("turn_metrics", lambda record: order.append(record.type))
        client.register_on_tts_playback_complete(lambda event: order.append(event.type))
        await client.connect()
        await eventually(lambda: "tts_playback_complete" in order)
        assert order == [
            greeting,
            "hello",
            frames[0],
            "turn_metrics",
            *frames[1:],
            "tts_playback_complete",
        ]
        (record,) = client.turn_metrics.turns
        assert record.end_to_first_audio is not None
        assert record.tts_first_byte is not None
        assert client.metrics.tts_audio_frames == 1 + len(frames)


async def test_audio_in_a_row_before_a_violation_reaches_the_callbacks(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],
) -> None:
    # Frames in a row, then a masked frame in the same write: the frames before the
    # violation are the server's and arrive; nothing after it does.
    frames = _alike(4, 4)

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(
            b"".join(frame(0x82, p) for p in frames)
            + frame(0x82, bytes(640), mask=b"\x01\x02\x03\x04")
            + frame(0x82, bytes(640))
        )

    _, url = await serve(script)
    async with _client(url) as client:
        closes, audio_in = _watch_audio(client)
        await client.connect()
        await eventually(lambda: closes)
        assert closes[0].code == 1002
        assert audio_in == frames


async def test_a_consumer_added_while_a_run_is_handed_on_gets_the_rest_of_it(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]], path: str
) -> None:
    # Timing the reply's first frame calls the turn metrics' ``emit`` hook; an iterator
    # it opens there gets that frame (its iterators are told after its counts) and every
    # frame after it, though they came in the same read, as frames one by one would.
    greeting, *frames = _alike(6, 5)

    script = _turn_and_reply(greeting, frames)
    opened: list[Any] = []

    async def on_result(result: Any) -> None:
        if result.is_speech_final:
            await client.speak("hi")

    _, url = await serve(script)
    async with _client(url) as client:
        client.register_on_stt_result(on_result)
        client.turn_metrics.emit = lambda record: opened.append(client.events())
        await client.connect()
        await eventually(lambda: opened)
        seen: list[bytes] = []
        async for event in opened[0]:
            if event.type == "tts_audio":
                seen.append(event.data)
            elif event.type == "tts_playback_complete":
                break
        assert seen == frames


@pytest.mark.parametrize("audio_kind", ["plain", "async"])
@pytest.mark.parametrize("result_kind", ["plain", "async"])
async def test_a_run_over_the_queue_bound_is_shed_oldest_first_then_the_close(
    serve: Callable[[Script], Awaitable[tuple[RawServer, str]]],
    path: str,
    result_kind: str,
    audio_kind: str,
) -> None:
    # Twenty frames in a row and the server's Close in one write, to callbacks whose
    # queue holds six frames' bytes: the oldest are dropped and reported, the newest
    # arrive in order, then the close. (A bound in events is never crossed by one read:
    # the reader hands on at most half of it between two turns of the loop.)
    frames = _alike(20, 6)
    bound = {"max_queue_bytes": 6 * 640 + 100}

    async def script(server: RawServer, ws: web.WebSocketResponse) -> None:
        server.write(b"".join(frame(0x82, p) for p in frames) + close(4001))

    order: list[Any] = []

    async def on_result_async(result: Any) -> None:
        order.append(result.transcript)

    async def on_audio_async(data: bytes) -> None:
        order.append(data)

    _, url = await serve(script)
    async with _client(url, **bound) as client:
        client.register_on_stt_result(
            order.append if result_kind == "plain" else on_result_async  # (never called)
        )
        client.register_on_tts_audio(order.append if audio_kind == "plain" else on_audio_async)
        client.on("events_dropped", lambda event: order.append(("dropped", event.count)))
        client.register_on_close(lambda event: order.append(event.code))
        await client.connect()
        await eventually(lambda: 4001 in order)
    drops = [item for item in order if type(item) is tuple]
    delivered = [item for item in order if type(item) is bytes]
    assert sum(count for _, count in drops) + len(delivered) == len(frames)
    assert drops
    assert delivered == frames[len(frames) - len(delivered) :]  # the newest, in order
    assert order[-1] == 4001


async def test_a_frame_over_the_servers_limit_says_so_and_names_the_fix() -> None:
    """The server closes with 1009 when a frame is over its limit: the closed event and
    the next send's error say what was too big and how to send it."""
    async with (
        running_server(max_message_bytes=64 * 1024) as server,
        SaynaClient(server.url, stt(), tts()) as client,
    ):
        closes: list[ConnectionClosed] = []
        client.register_on_close(closes.append)
        await client.connect()
        await client.on_audio_input(bytes(128 * 1024))  # a whole file in one frame
        await eventually(lambda: closes, what="the server's close")
        assert closes[0].code == 1009
        assert not closes[0].refused_by_client
        assert "20 ms frames" in closes[0].message
        with pytest.raises(SaynaError) as caught:
            await client.on_audio_input(bytes(640))
        assert "20 ms frames" in str(caught.value)
