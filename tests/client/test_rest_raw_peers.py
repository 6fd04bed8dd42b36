"""REST against raw TCP peers on loopback, written byte by byte: a connection reset
before the answer, a peer that does not speak HTTP, a TLS handshake the peer ends.
What the server received is counted, so a request sent twice shows."""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Callable, Optional

import pytest
import pytest_asyncio

from sayna_client import (
    RetryPolicy,
    SaynaClient,
    SaynaConnectionError,
)

#: Retries without waiting for the default backoff.
FAST = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.01)
ONCE = RetryPolicy(max_retries=0)

#: ``(reader, writer, request bytes)`` -> True to keep the connection for another request.
Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter, bytes], Awaitable[bool]]


class RawPeer:
    """A TCP server on 127.0.0.1 answering each request with ``answer``; ``requests``
    holds every request it read (head and body). ``tls_hello``: read a TLS ClientHello
    and close instead (an HTTP request never comes)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[bytes] = []
        self.hellos = 0
        self.tls_hello = False
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
        with pytest.raises(SaynaConnectionError):
            await call(client)
    assert len(resetting.requests) == sent, resetting.request_lines
