"""REST against a hostile loopback server: bodies that are not JSON, not UTF-8, nested
1,000 levels, numbers of 5,000 digits, or 300 MB long. Every failure is a SaynaError
with the status and a short excerpt; no body is read past the client's bound."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Callable, Optional

import pytest
import pytest_asyncio
from aiohttp import web

from sayna_client import (
    RetryPolicy,
    SaynaClient,
    SaynaError,
    SaynaHttpError,
    SaynaInternalServerError,
    SaynaInvalidResponseError,
    SaynaProtocolError,
    SaynaServerError,
    SaynaValidationError,
    Timeouts,
    TTSConfig,
)

from .conftest import serving

MB = 1024 * 1024
NOT_JSON = b"<html><body>502 Bad Gateway from a proxy</body></html>"
NOT_UTF8 = b'{"status": "\xff\xfe\xfd"}'
NESTED = b"[" * 1000 + b"]" * 1000
NESTED_OBJECT = b'{"a":' * 1000 + b"1" + b"}" * 1000
HUGE_INT = b'{"status": ' + b"9" * 5000 + b"}"
BODIES = {
    "not-json": NOT_JSON,
    "not-utf8": NOT_UTF8,
    "nested": NESTED,
    "nested-object": NESTED_OBJECT,
    "huge-int": HUGE_INT,
    "empty": b"",
    "not-an-object": b"[1, 2, 3]",
}

Call = Callable[[SaynaClient], Awaitable[Any]]
CALLS: dict[str, Call] = {
    "health": lambda c: c.health(),
    "get_voices": lambda c: c.get_voices(),
    "get_livekit_rooms": lambda c: c.get_livekit_rooms(),
    "get_livekit_token": lambda c: c.get_livekit_token("room", "Jane", "jane"),
    "get_sip_hooks": lambda c: c.get_sip_hooks(),
    "sip_transfer_rest": lambda c: c.sip_transfer_rest("room", "caller", "+15551234567"),
}


class Hostile:
    """Answers every request with ``status`` and ``body``, or streams ``stream_bytes``."""

    def __init__(self) -> None:
        self.status = 200
        self.body = b""
        self.headers: dict[str, str] = {}
        self.stream_bytes = 0
        self.declare_length = False
        self.sent = 0
        self.finished = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self.app = app

    async def _any(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        if not self.stream_bytes:
            return web.Response(status=self.status, body=self.body, headers=self.headers)
        response = web.StreamResponse(status=self.status)
        if self.declare_length:
            response.content_length = self.stream_bytes
        await response.prepare(request)
        chunk = b"x" * (256 * 1024)
        try:
            while self.sent < self.stream_bytes:
                await response.write(chunk)
                self.sent += len(chunk)
        except (ConnectionError, RuntimeError):
            pass  # the client hung up: what we wanted
        finally:
            self.finished.set()
        return response


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[tuple[Hostile, str]]:
    server = Hostile()
    async with serving(server.app) as url:
        yield server, url


def _client(url: str, **kwargs: Any) -> SaynaClient:
    return SaynaClient(
        url,
        without_audio=True,
        timeouts=Timeouts(connect=10, request=30),
        retry=RetryPolicy(max_retries=0),
        **kwargs,
    )


@pytest.mark.parametrize("body_name", sorted(BODIES))
@pytest.mark.parametrize("call_name", sorted(CALLS))
async def test_unreadable_2xx_bodies_are_typed_errors_with_an_excerpt(
    hostile: tuple[Hostile, str], body_name: str, call_name: str
) -> None:
    server, url = hostile
    server.body = BODIES[body_name]
    async with _client(url) as client:
        with pytest.raises(SaynaError) as info:
            await CALLS[call_name](client)
    error = info.value
    assert isinstance(error, SaynaInvalidResponseError)
    assert isinstance(error, SaynaServerError)  # with the status and the endpoint
    assert isinstance(error, SaynaProtocolError)  # as before, for older except clauses
    assert error.status_code == 200
    assert error.endpoint
    assert len(str(error)) < 1000


async def test_get_voices_names_status_and_body_of_a_non_json_answer(
    hostile: tuple[Hostile, str],
) -> None:
    server, url = hostile
    server.body = NOT_JSON
    async with _client(url) as client:
        with pytest.raises(SaynaServerError) as info:
            await client.get_voices()
    assert info.value.status_code == 200
    assert info.value.endpoint == "GET /voices"
    assert "502 Bad Gateway from a proxy" in str(info.value)


@pytest.mark.parametrize("body_name", sorted(BODIES))
@pytest.mark.parametrize("status", [400, 404, 500])
async def test_error_statuses_with_hostile_bodies_keep_their_type(
    hostile: tuple[Hostile, str], body_name: str, status: int
) -> None:
    server, url = hostile
    server.status = status
    server.body = BODIES[body_name]
    async with _client(url) as client:
        with pytest.raises(SaynaHttpError) as info:
            await client.get_voices()
    assert info.value.status_code == status
    assert len(str(info.value)) < 1000


async def test_a_long_error_body_is_quoted_as_an_excerpt(hostile: tuple[Hostile, str]) -> None:
    server, url = hostile
    server.status = 500
    server.body = b"E" * (2 * MB)
    async with _client(url) as client:
        with pytest.raises(SaynaInternalServerError) as info:
            await client.health()
    assert len(str(info.value)) < 1000
    assert "EEEE" in str(info.value)


async def _streamed(
    hostile: tuple[Hostile, str],
    call: Call,
    *,
    status: int = 200,
    declare_length: bool = False,
    limit: Optional[int] = MB,
) -> SaynaError:
    server, url = hostile
    server.status = status
    server.stream_bytes = 300 * MB
    server.declare_length = declare_length
    kwargs = {} if limit is None else {"max_response_bytes": limit}
    async with _client(url, **kwargs) as client:
        with pytest.raises(SaynaError) as info:
            await call(client)
    await asyncio.wait_for(server.finished.wait(), 60)
    return info.value


@pytest.mark.parametrize("declare_length", [False, True])
async def test_a_300_mb_body_is_not_read_whole(
    hostile: tuple[Hostile, str], declare_length: bool
) -> None:
    error = await _streamed(
        hostile, lambda c: c.get_recording("call-1"), declare_length=declare_length
    )
    assert isinstance(error, SaynaInvalidResponseError)
    assert "max_response_bytes" in str(error)
    assert hostile[0].sent < 100 * MB  # stopped near the bound (plus socket buffers)


async def test_the_default_bound_stops_a_300_mb_body(hostile: tuple[Hostile, str]) -> None:
    tts = TTSConfig(provider="deepgram")
    error = await _streamed(hostile, lambda c: c.speak_rest("hello", tts), limit=None)
    assert isinstance(error, SaynaInvalidResponseError)
    assert hostile[0].sent < 250 * MB


async def test_a_300_mb_error_body_is_not_read_whole(hostile: tuple[Hostile, str]) -> None:
    error = await _streamed(hostile, lambda c: c.health(), status=503)
    assert isinstance(error, SaynaInternalServerError)
    assert error.status_code == 503
    assert len(str(error)) < 1000
    assert hostile[0].sent < 100 * MB


@pytest.mark.parametrize("bad", [0, -1, 1.5, "10"])
def test_the_bound_must_be_a_positive_integer(bad: Any) -> None:
    with pytest.raises(SaynaValidationError, match="max_response_bytes"):
        SaynaClient("http://127.0.0.1:1", without_audio=True, max_response_bytes=bad)


PROXY_PAGE = b"<html><head><title>Proxy Authentication Required</title></head></html>"
AUDIO_CALLS: dict[str, Call] = {
    "speak_rest": lambda c: c.speak_rest("hello", TTSConfig(provider="deepgram")),
    "get_recording": lambda c: c.get_recording("call-1"),
}


@pytest.mark.parametrize(
    "content_type",
    [
        "text/html; charset=utf-8",
        "text/plain",
        "application/json",
        "application/problem+json",
        "application/xml",
        "application/xhtml+xml",
    ],
)
@pytest.mark.parametrize("call_name", sorted(AUDIO_CALLS))
async def test_a_2xx_page_that_is_not_audio_is_refused(
    hostile: tuple[Hostile, str], call_name: str, content_type: str
) -> None:
    """A proxy's HTML page (or a gateway's JSON) with status 200 was returned as audio:
    `sayna speak` wrote it into a WAV file and exited 0."""
    server, url = hostile
    server.body = PROXY_PAGE
    server.headers = {"Content-Type": content_type}
    async with _client(url) as client:
        with pytest.raises(SaynaInvalidResponseError) as info:
            await AUDIO_CALLS[call_name](client)
    error = info.value
    assert error.status_code == 200
    assert error.endpoint in ("POST /speak", "GET /recording/call-1")
    media = content_type.split(";")[0]
    assert f"its Content-Type is {media!r}, not audio" in str(error)
    assert "Proxy Authentication Required" in error.excerpt


@pytest.mark.parametrize(
    "content_type",
    ["audio/pcm", "audio/ogg", "Audio/WAV", "audio/basic", "application/octet-stream"],
)
@pytest.mark.parametrize("call_name", sorted(AUDIO_CALLS))
async def test_audio_types_the_server_sends_are_returned(
    hostile: tuple[Hostile, str], call_name: str, content_type: str
) -> None:
    server, url = hostile
    server.body = b"\x00\x01" * 100
    server.headers = {"Content-Type": content_type}
    async with _client(url) as client:
        audio, headers = await AUDIO_CALLS[call_name](client)
    assert audio == server.body
    assert headers["Content-Type"] == content_type


@pytest.mark.parametrize("call_name", sorted(AUDIO_CALLS))
async def test_audio_headers_are_looked_up_in_any_case(
    hostile: tuple[Hostile, str], call_name: str
) -> None:
    """The README's int(headers["x-sample-rate"]) raised KeyError when the server (or a
    proxy) sent X-Sample-Rate: header names are case-insensitive."""
    server, url = hostile
    server.body = b"\x00\x00" * 10
    server.headers = {
        "Content-Type": "audio/pcm",
        "X-Sample-Rate": "24000",
        "X-Audio-Format": "linear16",
    }
    async with _client(url) as client:
        _audio, headers = await AUDIO_CALLS[call_name](client)
    assert int(headers["x-sample-rate"]) == 24000
    assert headers["X-SAMPLE-RATE"] == headers["X-Sample-Rate"] == "24000"
    assert headers.get("x-audio-format") == "linear16"
    assert headers.get("content-type") == "audio/pcm"
    assert headers.get("x-missing") is None
    assert headers.get("x-missing", "0") == "0"
    assert "x-sample-rate" in headers
    assert "x-missing" not in headers
    with pytest.raises(KeyError):
        headers["x-missing"]
    # Still the dict it was: the names as sent, equality, JSON, assignment.
    assert isinstance(headers, dict)
    assert "X-Sample-Rate" in list(headers)
    as_sent = dict(headers)
    assert headers == as_sent
    assert json.loads(json.dumps(headers)) == as_sent
    headers["x-mine"] = "1"
    assert headers["X-Mine"] == "1"


@pytest.mark.parametrize(
    "rate", ["abc", "1.5", "99999999999", "0", "-8000", "", "２４０００", "9" * 5000]
)
async def test_speak_rest_refuses_a_sample_rate_that_is_not_one(
    hostile: tuple[Hostile, str], rate: str
) -> None:
    """The x-sample-rate of a speak_rest answer is what makes its PCM playable:
    int(headers["x-sample-rate"]) raised ValueError (or, for 99999999999, OverflowError
    later in the WAV header) in `sayna speak` and in the README's recipe."""
    server, url = hostile
    server.body = b"\x00\x01" * 100
    server.headers = {"Content-Type": "audio/pcm", "x-sample-rate": rate}
    async with _client(url) as client:
        with pytest.raises(SaynaInvalidResponseError) as info:
            await AUDIO_CALLS["speak_rest"](client)
        error = info.value
        assert (error.status_code, error.endpoint) == (200, "POST /speak")
        assert str(error).startswith(
            f"POST /speak answered HTTP 200 with an x-sample-rate header of {rate[:40]!r}, "
            "not a sample rate in Hz (1 to 768000)"
        )
        assert len(str(error)) < 300
        _audio, headers = await AUDIO_CALLS["get_recording"](client)  # not its business
        assert headers["x-sample-rate"] == rate


@pytest.mark.parametrize("rate", [None, "24000", " 16000 ", "768000", "8000"])
async def test_speak_rest_takes_a_sample_rate_in_hz_or_none(
    hostile: tuple[Hostile, str], rate: Optional[str]
) -> None:
    server, url = hostile
    server.body = b"\x00\x01" * 100
    server.headers = {"Content-Type": "audio/pcm"}
    if rate is not None:
        server.headers["x-sample-rate"] = rate
    async with _client(url) as client:
        audio, headers = await AUDIO_CALLS["speak_rest"](client)
    assert audio == server.body
    assert headers.get("x-sample-rate") == (rate if rate is None else rate.strip())


TRUST = "REST calls do not follow redirects; if you trust that server, use its URL instead"
ELSEWHERE = (
    "REST calls do not follow redirects: check that the URL points at the Sayna server itself"
)


@pytest.mark.parametrize(
    ("call", "location", "said"),
    [
        (
            "health",
            "https://secure.example.com/",
            f"GET / failed with HTTP 301: redirected to https://secure.example.com/. {TRUST} "
            "(e.g. https://secure.example.com)",
        ),
        (  # (no trailing slash: the same call, "/", as with one)
            "health",
            "https://secure.example.com",
            f"GET / failed with HTTP 301: redirected to https://secure.example.com/. {TRUST} "
            "(e.g. https://secure.example.com)",
        ),
        (
            "get_voices",
            "https://user:pass-SECRET@api.example.com/v2/voices?api_key=SECRET-q",
            "GET /voices failed with HTTP 301: redirected to https://api.example.com/v2/voices. "
            f"{TRUST} (e.g. https://api.example.com/v2)",
        ),
        (
            "get_voices",
            "/v2/voices",
            "GET /voices failed with HTTP 301: redirected to {url}/v2/voices. "
            f"{TRUST} (e.g. {{url}}/v2)",
        ),
        (
            "get_voices",
            "/login",
            "GET /voices failed with HTTP 301: redirected to {url}/login. " + ELSEWHERE,
        ),
    ],
)
async def test_a_redirect_names_its_target_and_the_fix(
    hostile: tuple[Hostile, str], call: str, location: str, said: str
) -> None:
    """A 301 to https said "GET / failed with HTTP 301: (empty body)": neither where it
    pointed nor that REST calls do not follow redirects (the WebSocket's redirect error
    said both). The target is shown without credentials or query, as there."""
    server, url = hostile
    server.status = 301
    server.headers = {"Location": location}
    async with _client(url) as client:
        with pytest.raises(SaynaHttpError) as info:
            await CALLS[call](client)
    assert str(info.value) == said.format(url=url)
    assert info.value.status_code == 301


async def test_a_redirect_without_a_location_says_so(hostile: tuple[Hostile, str]) -> None:
    server, url = hostile
    server.status = 302
    async with _client(url) as client:
        with pytest.raises(SaynaHttpError) as info:
            await client.health()
    assert str(info.value) == (
        "GET / failed with HTTP 302: a redirect without a Location; REST calls do not "
        "follow redirects: check the URL"
    )


TERMINAL_TRICKS = "\x1b[2J\x1b[H\x1b]0;pwned\x07all good\x1b[8m hidden\x9b31m\x7f\x00"
ESCAPED_TRICKS = "\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07all good\\x1b[8m hidden\\x9b31m\\x7f\\x00"


@pytest.mark.parametrize("shape", ["json", "text"])
@pytest.mark.parametrize("status", [200, 400, 500])
async def test_control_characters_of_a_body_are_escaped_in_the_message(
    hostile: tuple[Hostile, str], status: int, shape: str
) -> None:
    """A body's ESC [2J (clear the screen), OSC title and C1 controls went raw into the
    message (and to a terminal, through `sayna`'s error line or a log)."""
    server, url = hostile
    server.status = status
    if shape == "json":
        server.body = json.dumps({"error": TERMINAL_TRICKS}, ensure_ascii=False).encode()
        server.headers = {"Content-Type": "application/json"}
    else:
        server.body = TERMINAL_TRICKS.encode()
        server.headers = {"Content-Type": "text/plain"}
    async with _client(url) as client:
        with pytest.raises(SaynaError) as info:
            await client.get_voices()
    message = str(info.value)
    assert not [char for char in message if ord(char) < 32 or 0x7F <= ord(char) <= 0x9F]
    if shape == "text" or status >= 400:
        assert ESCAPED_TRICKS in message
    if status >= 400:  # the body itself is the server's, as it sent it
        expected = {"error": TERMINAL_TRICKS} if shape == "json" else TERMINAL_TRICKS
        assert info.value.body == expected  # type: ignore[attr-defined]
