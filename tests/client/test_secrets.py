"""No secret in any text the SDK produces, whatever the input.

Secrets go in every way a user may pass them (URL user:password, ``?api_key=`` and
``&token=`` in the URL, ``api_key=``, provider keys in configs, keys passed where
something else was expected) against REST and WebSocket paths that fail in every way
(refused, 401, 500, redirected, malformed). Every string produced is then searched:
``repr`` and ``str`` of clients and errors, ``traceback.format_exception`` (chained
causes included), every ``__cause__``/``__context__`` in the chain, and the DEBUG log.
"""

from __future__ import annotations

import logging
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Callable

import pydantic
import pytest
import pytest_asyncio
from aiohttp import web

from sayna_client import (
    ApiKeyAuth,
    AzureAuth,
    GoogleAuth,
    RetryPolicy,
    SaynaAuthenticationError,
    SaynaClient,
    SaynaError,
    SaynaSyncClient,
    SaynaValidationError,
    STTConfig,
    Timeouts,
    TTSConfig,
)
from sayna_client.server import LocalServer

from .conftest import serving

API_KEY = "sk-live-SECRET-api-key-0001"
PROVIDER = "dg-PROVIDER-secret-0002"
PASSWORD = "pa55-URL-password-0004"
USER = "url-user-SECRET-0005"
QUERY_KEY = "qs-api-key-SECRET-0006"
TOKEN = "qs-token-SECRET-0007"
SECRETS = [API_KEY, PROVIDER, PASSWORD, USER, QUERY_KEY, TOKEN]
#: The default number of retries (their log lines and chained errors are searched too),
#: without the default backoff (0.5 s, then 1 s: about 4.5 s per test of nothing to check).
RETRY = RetryPolicy(initial_backoff=0.01, max_backoff=0.01)


def _texts_of(exc: BaseException) -> list[str]:
    texts = [str(exc), repr(exc)]
    texts += traceback.format_exception(type(exc), exc, exc.__traceback__)
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        texts += [str(current), repr(current)]
        texts += [repr(arg) for arg in getattr(current, "args", ())]
        for attr in ("cause", "body", "endpoint", "excerpt", "reason"):
            if hasattr(current, attr):
                texts.append(repr(getattr(current, attr)))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                stack.append(linked)
    return texts


class Texts:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def add(self, *values: object) -> None:
        for value in values:
            if isinstance(value, BaseException):
                self.texts += _texts_of(value)
            else:
                self.texts += [str(value), repr(value)]

    async def failure(self, call: Awaitable[Any]) -> BaseException:
        """Await ``call``, which must fail with a SaynaError; keep its texts."""
        try:
            await call
        except SaynaError as exc:
            self.add(exc)
            return exc
        raise AssertionError("the call did not fail")

    def check(self, caplog: pytest.LogCaptureFixture) -> None:
        # The hostile test servers' own access logs (they print the request line) are
        # not the client's: every other record is checked.
        records = [r for r in caplog.records if r.name not in ("aiohttp.access", "aiohttp.server")]
        everything = list(self.texts)
        everything += [logging.Formatter().format(record) for record in records]
        for record in records:
            if record.exc_info and record.exc_info[1] is not None:
                everything += _texts_of(record.exc_info[1])
        for text in everything:
            for secret in SECRETS:
                assert secret not in text, f"{secret!r} leaked in: {text[:300]!r}"


def _configs() -> tuple[STTConfig, TTSConfig]:
    stt = STTConfig(provider="deepgram", auth=ApiKeyAuth(api_key=PROVIDER))
    tts = TTSConfig(provider="elevenlabs", voice_id="v", auth={"api_key": PROVIDER})
    return stt, tts


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest_asyncio.fixture
async def hostile() -> AsyncIterator[str]:
    """401 on /401, 500 on /500, redirects elsewhere on /302, garbage JSON on /bad."""

    async def status_of(request: web.Request) -> web.StreamResponse:
        kind = request.path.strip("/").split("/")[0]
        if kind == "302":
            return web.Response(status=302, headers={"Location": "http://localhost:1/ws"})
        if kind == "bad":
            return web.Response(body=b"[" * 1000)
        return web.Response(status=int(kind), text=f"nope {request.path_qs}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", status_of)
    async with serving(app) as url:
        yield url


Call = Callable[[SaynaClient], Awaitable[Any]]
CALLS: list[Call] = [
    lambda c: c.connect(),
    lambda c: c.health(),
    lambda c: c.get_voices(),
    lambda c: c.get_livekit_token("room", "Jane", "jane"),
    lambda c: c.speak_rest("hello", TTSConfig(provider="deepgram", auth={"api_key": PROVIDER})),
]


@pytest.mark.parametrize("path", ["401", "500", "302", "bad"])
@pytest.mark.parametrize("credentials", ["userinfo", "query", "api_key"])
async def test_failing_calls_never_show_a_secret(
    hostile: str, path: str, credentials: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    host = hostile.split("//", 1)[1]
    url, key = {
        "userinfo": (f"http://{USER}:{PASSWORD}@{host}/{path}", None),
        "query": (f"http://{host}/{path}?api_key={QUERY_KEY}&token={TOKEN}", None),
        "api_key": (f"http://{host}/{path}", API_KEY),
    }[credentials]
    stt, tts = _configs()
    timeouts = Timeouts(connect=5, ready=5, request=5, close=1)
    async with SaynaClient(url, stt, tts, api_key=key, timeouts=timeouts, retry=RETRY) as client:
        texts.add(client)
        for index, call in enumerate(CALLS):
            if path == "bad" and index == 4:
                texts.add(await call(client))  # audio bytes: speak_rest does not parse
            else:
                await texts.failure(call(client))
        texts.add(client)
    texts.check(caplog)


@pytest.mark.parametrize("credentials", ["userinfo", "query", "api_key"])
async def test_unreachable_server_errors_never_show_a_secret(
    credentials: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    port = _dead_port()
    url, key = {
        "userinfo": (f"ws://{USER}:{PASSWORD}@127.0.0.1:{port}/ws", None),
        "query": (f"ws://127.0.0.1:{port}/ws?api_key={QUERY_KEY}&token={TOKEN}", None),
        "api_key": (f"http://127.0.0.1:{port}", API_KEY),
    }[credentials]
    stt, tts = _configs()
    async with SaynaClient(url, stt, tts, api_key=key, retry=RETRY) as client:
        for call in CALLS[:3]:
            await texts.failure(call(client))
    sync = SaynaSyncClient(url, stt, tts, api_key=key)
    texts.add(sync)
    sync.close()
    texts.check(caplog)


async def test_a_working_session_never_logs_a_secret(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    stt, tts = _configs()
    async with LocalServer(api_key=API_KEY) as server:
        async with SaynaClient(server.url, stt, tts, api_key=API_KEY) as client:
            await client.connect()
            await client.speak("hello", wait=True, timeout=10)
            texts.add(client, client.stt_config, client.tts_config)
            await client.get_voices()
        sent = server.records.last_session.config
        assert sent is not None
        assert sent["stt_config"]["auth"] == {"api_key": PROVIDER}  # it does reach the server
        host = server.url.split("//", 1)[1]
        async with SaynaClient(f"http://{host}?api_key={QUERY_KEY}", stt, tts) as wrong:
            await texts.failure(wrong.connect())
    texts.check(caplog)


def _bad_inputs() -> list[Callable[[], object]]:
    return [
        lambda: SaynaClient(API_KEY),  # the key where the URL goes
        lambda: SaynaClient(f"{USER}:{PASSWORD}@127.0.0.1:1"),  # no scheme
        lambda: SaynaClient(f"ftp://{USER}:{PASSWORD}@127.0.0.1"),
        lambda: SaynaClient(f"http://{USER}:{PASSWORD}@[::1"),
        lambda: SaynaClient(f"http://{USER}:{PASSWORD}@127.0.0.1:port"),
        lambda: SaynaClient(f"http://{USER}:{PASSWORD}@/ws"),
        lambda: SaynaClient(f"http://{USER}:{PASSWORD}@127.0.0.1", api_key=API_KEY),
        lambda: SaynaClient("http://127.0.0.1", api_key=API_KEY.encode()),  # type: ignore[arg-type]
        lambda: SaynaClient("http://127.0.0.1", api_key=f"{API_KEY}\nX-Evil: 1"),
        lambda: SaynaClient("http://127.0.0.1", stt_config=API_KEY),  # type: ignore[arg-type]
        lambda: SaynaClient("http://127.0.0.1", without_audio=True, stream_id=API_KEY + "/x"),
        lambda: STTConfig(provider="deepgram", auth=API_KEY),  # type: ignore[arg-type]
        lambda: TTSConfig(provider="deepgram", auth=[API_KEY]),  # type: ignore[arg-type]
        lambda: TTSConfig(provider="deepgram", auth={"api_key": PROVIDER}, bogus=API_KEY),  # type: ignore[call-arg]
        lambda: ApiKeyAuth(api_key=PROVIDER, region=API_KEY),  # type: ignore[call-arg]
        lambda: ApiKeyAuth(api_key=[PROVIDER]),  # type: ignore[arg-type]
        lambda: AzureAuth(api_key=PROVIDER),  # type: ignore[call-arg]
        lambda: GoogleAuth(credentials=[PROVIDER]),  # type: ignore[arg-type]
        lambda: STTConfig(provider="deepgram", sample_rate=API_KEY),  # type: ignore[arg-type]
    ]


@pytest.mark.parametrize("index", range(len(_bad_inputs())))
def test_bad_input_errors_never_echo_a_secret(index: int) -> None:
    texts = Texts()
    with pytest.raises((SaynaValidationError, pydantic.ValidationError)) as info:
        _bad_inputs()[index]()
    texts.add(info.value)
    for text in texts.texts:
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked in: {text[:300]!r}"


async def test_a_key_in_the_url_query_authenticates_rest_calls_too() -> None:
    """``?api_key=`` is how the seed README's URL form carries a key: the server reads it
    on REST requests as well as the WebSocket upgrade (protocol section 1), so the
    client's REST calls must be authenticated by it, not only ``connect()``."""
    stt, tts = _configs()
    async with LocalServer(api_key=API_KEY) as server:
        host = server.url.split("//", 1)[1]
        async with SaynaClient(f"http://{host}/?api_key={API_KEY}", stt, tts) as client:
            await client.connect()
            voices = await client.get_voices()
            assert voices
            assert API_KEY not in repr(client)
        async with SaynaClient(f"http://{host}/?api_key={QUERY_KEY}", stt, tts) as wrong:
            with pytest.raises(SaynaAuthenticationError):
                await wrong.get_voices()
