"""REST against raw TCP peers on loopback, written byte by byte: a connection reset
before the answer, a peer that does not speak HTTP, a TLS handshake the peer ends.
What the server received is counted, so a request sent twice shows."""

from __future__ import annotations

import asyncio
import datetime
import math
import socket
import struct
from collections.abc import AsyncIterator, Awaitable
from email.utils import format_datetime
from typing import Any, Callable, Optional, TypeVar

import aiohttp
import pytest
import pytest_asyncio

from sayna_client import (
    RetryPolicy,
    SaynaClient,
    SaynaConnectionError,
    SaynaHttpError,
    SaynaInvalidResponseError,
    SaynaRateLimitError,
    SaynaTimeoutError,
    SaynaValidationError,
    Timeouts,
)

#: Retries without waiting for the default backoff.
FAST = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.01)
ONCE = RetryPolicy(max_retries=0)
_REQUEST_02 = Timeouts(request=0.2)

#: ``(reader, writer, request bytes)`` -> True to keep the connection for another request.
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]


class RawPeer:
    """A TCP server on 127.0.0.1 answering each request with ``answer``; ``requests``
    holds every request it read (head and body). ``tls_hello``: read the start of a TLS
    ClientHello and close the connection instead (with a reset: ``reset_hello``)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.hellos = 0
        self.tls_hello = False
        self.reset_hello = False
        self.url = ""
        self._server: Optional[asyncio.AbstractServer] = None

    async def __aenter__(self) -> RawPeer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if self.tls_hello:
                await reader.read(5)  # the start of the ClientHello
                self.hellos += 1
                if self.reset_hello:
                    reset(writer)
                return
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                request = head + (await reader.readexactly(length) if length else b"")
                self.requests.append(request)
                if not await self.answer(reader, writer, request):
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @property
    def request_lines(self) -> list[str]:
        return [request.split(b"\r\n", 1)[0].decode() for request in self.requests]


def reset(writer: asyncio.StreamWriter) -> None:
    """End the connection with a TCP RST (no answer, no FIN)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> bool:
    reset(writer)
    return False


@pytest_asyncio.fixture
async def resetting() -> AsyncIterator[RawPeer]:
    async with RawPeer(_reset) as peer:
        yield peer


Call = Callable[[SaynaClient], Awaitable[Any]]


@pytest.mark.parametrize(
    ("call", "retry", "sent"),
    [
        (lambda c: c.remove_livekit_participant("room", "alice"), FAST, 1),
        (lambda c: c.sip_call("room", "n", "i", "+15105550123", "+15551234567"), FAST, 1),
        (lambda c: c.health(), ONCE, 1),
        (lambda c: c.health(), FAST, 3),
        (lambda c: c.set_sip_hooks([{"host": "a.example", "url": "http://x"}]), ONCE, 1),
    ],
    ids=["delete-sent-once", "post-sent-once", "get-max-retries-0", "get-max-retries-2", "post"],
)
async def test_a_reset_connection_is_retried_only_by_the_retry_policy(
    resetting: RawPeer, call: Call, retry: RetryPolicy, sent: int
) -> None:
    """aiohttp 3.10+ re-sends a GET/PUT/DELETE once, unasked, when the connection drops
    before the answer: remove_livekit_participant (documented as sent exactly once)
    reached the server twice, and RetryPolicy(max_retries=0) sent every GET twice."""
    async with SaynaClient(resetting.url, without_audio=True, retry=retry) as client:
        with pytest.raises(SaynaConnectionError) as info:
            await call(client)
    assert len(resetting.requests) == sent, resetting.request_lines
    # In words, without aiohttp's ("ClientOSError talking to ...: [Errno 104] ...").
    assert "talking to" not in str(info.value)
    assert "Error" not in str(info.value)


def _answering(*parts: bytes) -> Answer:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> bool:
        for part in parts:
            writer.write(part)
        await writer.drain()
        return False

    return answer


E = TypeVar("E", bound=BaseException)


async def _health_failing(
    answer: bytes, error: type[E], retry: RetryPolicy = FAST
) -> tuple[E, RawPeer]:
    """``health()`` against a peer that answers ``answer``, which must raise ``error``;
    returns the error and the peer (its requests)."""
    async with (
        RawPeer(_answering(answer)) as peer,
        SaynaClient(peer.url, without_audio=True, retry=retry) as client,
    ):
        with pytest.raises(error) as info:
            await client.health()
    return info.value, peer


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH_9.6\r\n",
        b"HTTP/1.1 abc OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nBad Header\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    ],
    ids=["ssh-banner", "bad-status-line", "bad-header", "bad-chunk-size"],
)
async def test_a_peer_that_does_not_speak_http_is_an_invalid_response_not_retried(
    answer: bytes,
) -> None:
    """It was a SaynaConnectionError quoting aiohttp's parser ("ClientResponseError
    talking to ...: 400, message=...", a 400 the peer never sent), retried."""
    error, peer = await _health_failing(answer, SaynaInvalidResponseError)
    assert len(peer.requests) == 1
    assert str(error) == (
        f"GET / failed: {peer.url} answered with something that is not HTTP (wrong port?)"
    )
    assert error.status_code is None
    assert error.endpoint == "GET /"
    assert isinstance(error.__cause__, aiohttp.ClientResponseError)


async def test_a_body_whose_encoding_is_broken_is_an_invalid_response() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde"
    error, peer = await _health_failing(answer, SaynaInvalidResponseError)
    assert len(peer.requests) == 1
    assert error.status_code == 200
    assert str(error) == (
        f"GET / answered HTTP 200 from {peer.url} with a body that is not valid HTTP "
        "(broken chunked or compressed framing)"
    )


async def test_a_body_cut_short_by_the_connection_is_a_connection_error_retried() -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{}"
    error, peer = await _health_failing(answer, SaynaConnectionError)
    assert len(peer.requests) == 3
    assert str(error) == (
        f"GET / failed: {peer.url} closed the connection before sending the whole answer"
    )


async def test_a_websocket_peer_that_does_not_speak_http_is_named_plainly() -> None:
    async with (
        RawPeer(_answering(b"SSH-2.0-OpenSSH_9.6\r\n")) as peer,
        SaynaClient(peer.url, without_audio=True, retry=ONCE) as client,
    ):
        with pytest.raises(SaynaConnectionError) as info:
            await client.connect()
    ws_url = "ws" + peer.url[len("http") :] + "/ws"
    assert str(info.value) == (
        f"Could not open the WebSocket: {ws_url} answered with something that is not HTTP "
        "(wrong port?)"
    )


async def test_an_audio_answer_without_a_content_type_is_returned() -> None:
    """The real server always names the type; a body without one is taken as audio."""
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\n\x00\x01\x02\x03"
    async with (
        RawPeer(_answering(answer)) as peer,
        SaynaClient(peer.url, without_audio=True, retry=ONCE) as client,
    ):
        audio, headers = await client.get_recording("call-1")
    assert audio == b"\x00\x01\x02\x03"
    assert "content-type" not in headers


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        *[(bad, None) for bad in ("inf", "Infinity", "1e400", "nan", "-5", "1.5", "9" * 400)],
        ("0", 0.0),
        ("7", 7.0),
        (" 120 ", 120.0),
        ("1234567", 1234567.0),  # said as such, not "1.23457e+06"
    ],
)
async def test_only_a_retry_after_in_whole_seconds_is_kept(
    value: str, seconds: Optional[float]
) -> None:
    """float() took inf, 1e400 and Infinity: retry_after was inf, and the documented
    ``await asyncio.sleep(exc.retry_after or 5)`` never returned."""
    limited = (
        b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
        b"Retry-After: " + value.encode() + b"\r\nContent-Length: 2\r\n\r\n{}"
    )
    error, _ = await _health_failing(limited, SaynaRateLimitError, ONCE)
    assert error.retry_after == seconds
    if seconds is not None:  # the message says it too, as the WebSocket upgrade's does
        assert f"rate-limited: retry in {math.ceil(seconds)} s (Retry-After)" in str(error)
    else:
        assert "Retry-After" not in str(error)


def _http_date(when: datetime.datetime, zone: str) -> str:
    """``when`` (UTC) as an HTTP date whose zone is written ``zone`` ("GMT", "-0000")."""
    return format_datetime(when, usegmt=True)[: -len("GMT")] + zone


@pytest.mark.parametrize("zone", ["GMT", "-0000", "+0000"])
async def test_a_retry_after_date_is_seconds_from_now_whatever_its_zone_form(zone: str) -> None:
    """``-0000`` (RFC 5322's "no zone information") parses to a naive datetime, which
    was subtracted from an aware "now": a TypeError from the call instead of its
    SaynaRateLimitError."""
    now = datetime.datetime.now(datetime.timezone.utc)
    for when, low, high in (
        (datetime.datetime(2015, 10, 21, 7, 28, tzinfo=datetime.timezone.utc), 0.0, 0.0),
        (now + datetime.timedelta(hours=1), 3000.0, 3601.0),
    ):
        limited = (
            b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: application/json\r\n"
            b"Retry-After: " + _http_date(when, zone).encode() + b"\r\nContent-Length: 2\r\n\r\n{}"
        )
        error, _ = await _health_failing(limited, SaynaRateLimitError, ONCE)
        assert error.retry_after is not None
        assert low <= error.retry_after <= high, (when, error.retry_after)


@pytest.mark.parametrize("how", ["close", "reset"])
async def test_a_tls_handshake_the_server_ends_names_the_cause(how: str) -> None:
    """A server that hangs up on the ClientHello (one refusing the client's TLS
    versions may) gave "cannot reach https://...: " with nothing after the colon."""

    async def unused(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> bool:
        return False

    peer = RawPeer(unused)
    peer.tls_hello = True
    peer.reset_hello = how == "reset"
    async with peer:
        url = peer.url.replace("http://", "https://")
        async with SaynaClient(url, without_audio=True, retry=ONCE) as client:
            with pytest.raises(SaynaConnectionError) as rest:
                await client.health()
            with pytest.raises(SaynaConnectionError) as ws:
                await client.connect()
    assert str(rest.value) == (
        f"GET / failed: cannot reach {url}: connection reset during the TLS handshake; "
        "check ssl= and the TLS versions the server accepts"
    )
    assert str(ws.value).endswith(
        "/ws: connection reset during the TLS handshake; check ssl= and the TLS versions "
        "the server accepts"
    )
    assert peer.hellos == 2


async def test_retry_timeouts_false_ends_a_call_at_its_first_timeout() -> None:
    """``RetryPolicy(retry_timeouts=False)``: a peer that never answers is asked once, so
    the call's ``timeout`` bounds the wait (the CLI's policy); a 503 is still retried."""
    answered = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> bool:
        await answered.wait()  # never set while the call runs
        return False

    no_timeouts = RetryPolicy(max_retries=2, initial_backoff=0.01, retry_timeouts=False)
    async with RawPeer(silent) as peer:
        async with SaynaClient(peer.url, without_audio=True, retry=no_timeouts) as client:
            with pytest.raises(SaynaTimeoutError):
                await client.health(timeout=0.2)
        answered.set()
    assert len(peer.requests) == 1, peer.request_lines

    statuses = [b"503 Service Unavailable", b"200 OK"]

    async def busy_then_fine(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes
    ) -> bool:
        status = statuses.pop(0)
        writer.write(
            b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\n"
            b'Content-Length: 15\r\n\r\n{"status":"OK"}'
        )
        await writer.drain()
        return True

    async with (
        RawPeer(busy_then_fine) as peer,
        SaynaClient(peer.url, without_audio=True, retry=no_timeouts) as client,
    ):
        health = await client.health()
    assert health.status == "OK"
    assert peer.request_lines == ["GET / HTTP/1.1"] * 2


def test_retry_timeouts_must_be_a_bool() -> None:
    with pytest.raises(SaynaValidationError, match=r"retry_timeouts must be True or False"):
        RetryPolicy(retry_timeouts="no")  # type: ignore[arg-type]


async def test_a_policy_with_a_list_of_statuses_retries_them() -> None:
    statuses = [b"503 Service Unavailable", b"200 OK"]

    async def busy_then_fine(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes
    ) -> bool:
        writer.write(
            b"HTTP/1.1 " + statuses.pop(0) + b"\r\nContent-Type: application/json\r\n"
            b'Content-Length: 15\r\n\r\n{"status":"OK"}'
        )
        await writer.drain()
        return True

    policy = RetryPolicy(max_retries=1, initial_backoff=0, retry_statuses=[503])  # type: ignore[arg-type]
    async with (
        RawPeer(busy_then_fine) as peer,
        SaynaClient(peer.url, without_audio=True, retry=policy) as client,
    ):
        assert (await client.health()).status == "OK"
    assert peer.request_lines == ["GET / HTTP/1.1"] * 2


# --- calls sent once: an error that leaves open whether the server applied it says so ------

SENT_ONCE: dict[str, tuple[Call, str]] = {
    "sip_call": (
        lambda c: c.sip_call("room-1", "Caller", "caller-1", "+15105550123", "+15551234567"),
        "e.g. whether get_livekit_room('room-1') lists 'caller-1'",
    ),
    "sip_transfer_rest": (
        lambda c: c.sip_transfer_rest("room-1", "caller-1", "+15551234567"),
        "e.g. whether get_livekit_room('room-1') still lists 'caller-1'",
    ),
    "remove_livekit_participant": (
        lambda c: c.remove_livekit_participant("room-1", "caller-1"),
        "e.g. whether get_livekit_room('room-1') still lists 'caller-1'",
    ),
}

#: Answers after which the server may have done what it was asked.
MAYBE_APPLIED: dict[str, Answer] = {
    "cut-mid-answer": _answering(
        b'HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n{"status":"initiated"'
    ),
    "reset-after-the-request": _reset,
    "closed-after-the-request": _answering(b""),
    "2xx-of-another-shape": _answering(
        b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8\r\n\r\n{"x": 1}'
    ),
    "2xx-broken-framing": _answering(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 5\r\n\r\nabcde"
    ),
    # A gateway in front of Sayna that passed the request on, then got no good answer.
    "gateway-502": _answering(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n"),
    "gateway-504": _answering(b"HTTP/1.1 504 Gateway Timeout\r\nContent-Length: 0\r\n\r\n"),
}


def _applied(check: str) -> str:
    return f"the server may have applied it: check ({check}) before sending it again"


@pytest.mark.parametrize("answer", sorted(MAYBE_APPLIED))
@pytest.mark.parametrize("call", sorted(SENT_ONCE))
async def test_a_call_sent_once_that_may_have_been_applied_says_so(call: str, answer: str) -> None:
    """sip_call's answer cut short said only "closed the connection before sending the
    whole answer", and docs/errors.md said "Retry later" for a SaynaConnectionError: a
    second call dialled the number twice."""
    send, check = SENT_ONCE[call]
    async with (
        RawPeer(MAYBE_APPLIED[answer]) as peer,
        SaynaClient(peer.url, without_audio=True, retry=FAST) as client,
    ):
        with pytest.raises(
            (SaynaConnectionError, SaynaInvalidResponseError, SaynaHttpError)
        ) as info:
            await send(client)
    assert len(peer.requests) == 1
    assert _applied(check) in str(info.value)


async def test_a_call_sent_once_that_timed_out_may_have_been_applied() -> None:
    answered = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, _: bytes) -> bool:
        await answered.wait()  # never set while the call runs
        return False

    send, check = SENT_ONCE["sip_call"]
    async with RawPeer(silent) as peer:
        async with SaynaClient(peer.url, without_audio=True, timeouts=_REQUEST_02) as client:
            with pytest.raises(SaynaTimeoutError) as info:
                await send(client)
        answered.set()
    assert str(info.value) == (
        f"POST /sip/call timed out after 0.2 s; {_applied(check)}. Raise the timeout (client "
        "Timeouts.request or timeout= on the call) or check the server"
    )


async def test_a_call_never_sent_or_sent_again_safely_does_not_say_so() -> None:
    """A refused connection sent nothing; an idempotent call may be repeated; an error
    status is the server's answer (it says what it did)."""
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{unused.getsockname()[1]}"
        async with SaynaClient(dead, without_audio=True, retry=FAST) as client:
            for send, _check in SENT_ONCE.values():
                with pytest.raises(SaynaConnectionError) as info:
                    await send(client)
                assert "connection refused" in str(info.value)
                assert "may have applied" not in str(info.value)
    cut = MAYBE_APPLIED["cut-mid-answer"]
    async with (
        RawPeer(cut) as peer,
        SaynaClient(peer.url, without_audio=True, retry=ONCE) as client,
    ):
        with pytest.raises(SaynaConnectionError) as info:
            await client.get_livekit_room("room-1")
    assert "may have applied" not in str(info.value)
    refusing = _answering(
        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
        b'Content-Length: 15\r\n\r\n{"error":"SIP"}'
    )
    async with (
        RawPeer(refusing) as peer,
        SaynaClient(peer.url, without_audio=True, retry=ONCE) as client,
    ):
        with pytest.raises(SaynaHttpError) as http_info:
            await SENT_ONCE["sip_call"][0](client)
    assert "may have applied" not in str(http_info.value)
