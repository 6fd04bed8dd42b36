"""No secret in any text the SDK produces, whatever the input.

Secrets go in every way a user may pass them (URL user:password, ``?api_key=`` and
``&token=`` in the URL, ``api_key=``, provider keys in configs, keys passed where
something else was expected) against REST and WebSocket paths that fail in every way
(refused, 401, 500, redirected, malformed). Every string produced is then searched:
``repr`` and ``str`` of clients and errors, ``traceback.format_exception`` (chained
causes included), every ``__cause__``/``__context__`` in the chain, and the DEBUG log.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import traceback
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, Callable
from urllib.parse import quote

import pydantic
import pytest
import pytest_asyncio
from aiohttp import web

from helpers.waiting import eventually
from sayna_client import (
    ApiKeyAuth,
    AzureAuth,
    GoogleAuth,
    RetryPolicy,
    SaynaAuthenticationError,
    SaynaClient,
    SaynaConfigRejectedError,
    SaynaError,
    SaynaInvalidResponseError,
    SaynaSyncClient,
    SaynaValidationError,
    SipCallSipConfig,
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


#: Query values written percent-encoded: yarl prints them half-decoded (``%2B`` kept,
#: ``%2F`` decoded), a form neither as given nor fully decoded nor re-encoded.
ENCODED_KEYS = ["abc%2Bdef%2Fghi%3D%3D-PCT-SECRET-0008", "k3y+plus=eq%2Fenc-PCT-SECRET-0009"]


@pytest.mark.parametrize("path", ["400", "401", "500"])
@pytest.mark.parametrize("key", ENCODED_KEYS)
async def test_a_percent_encoded_query_key_never_shows_in_a_failed_connect(
    hostile: str, path: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    url = f"{hostile}/{path}?api_key={key}"
    stt, tts = _configs()
    timeouts = Timeouts(connect=5, ready=5, request=5, close=1)
    async with SaynaClient(url, stt, tts, timeouts=timeouts, retry=RETRY) as client:
        await texts.failure(client.connect())
    texts.check(caplog)
    marker = key.rsplit("-", 3)[1]  # "PCT": only in the key, masked whole with it
    for text in texts.texts:
        assert f"{marker}-SECRET" not in text, f"the key leaked in: {text[:300]!r}"


async def test_a_key_echoed_in_a_websocket_error_or_close_reason_is_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # A (buggy) server echoes the Authorization header it got in its `error` answer to
    # the config and in its Close reason: neither the exception, nor the error and close
    # events, nor the log shows the key (the rest of the server's words are kept).
    caplog.set_level(logging.DEBUG)

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the config
        auth = request.headers.get("Authorization", "")
        await ws.send_json({"type": "error", "message": f"Invalid credentials: {auth}"})
        await ws.close(code=4001, message=f"rejected {auth}".encode())
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    texts = Texts()
    errors: list[Any] = []
    closes: list[Any] = []
    stt, tts = _configs()
    async with serving(app) as url:
        client = SaynaClient(url, stt, tts, api_key=API_KEY, retry=RETRY)
        async with client:
            client.on("error", errors.append)
            client.on("closed", closes.append)
            rejected = await texts.failure(client.connect())
            assert isinstance(rejected, SaynaConfigRejectedError)
            assert str(rejected).endswith("Invalid credentials: ***")
            await eventually(lambda: closes, what="the server's close")
            texts.add(*closes)
    assert closes[0].code == 4001
    assert closes[0].reason == "rejected ***"
    assert errors[0].message == "Invalid credentials: ***"
    assert API_KEY not in repr(errors[0])
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


# --- a server (or a proxy's page) that echoes the whole request ----------------------------

NETRC_PASSWORD = "netrc-SECRET-password-0008"
SIP_PASSWORD = "sip-SECRET-password-0009"
#: A Google key as the JSON of a request carries it: its newlines escaped as ``\n``.
GOOGLE_KEY = "-----BEGIN PRIVATE KEY-----\nMIIEvSECRET0010google\n-----END PRIVATE KEY-----\n"


def _basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


@pytest_asyncio.fixture
async def echo() -> AsyncIterator[str]:
    """Answers every request with its request line, headers and body quoted back, with
    the status the path names (/200 as an HTML page, /400, /500), as a debug proxy or a
    framework's error page does; under /json/ the body alone, inside a JSON error
    string (its escapes escaped once more)."""

    async def echo_request(request: web.Request) -> web.Response:
        parts = request.path.strip("/").split("/")
        as_json = parts[0] == "json"
        status = int(parts[1 if as_json else 0] or 200)
        body = (await request.read()).decode()
        if as_json:
            return web.json_response({"error": f"bad request: {body}"}, status=status)
        headers = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
        page = f"<pre>{body}\n\n{request.method} {request.path_qs}\n{headers}</pre>"
        return web.Response(status=status, text=page, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo_request)
    async with serving(app) as url:
        yield url


def _no_secret_in(texts: Texts, secrets: list[str]) -> None:
    for text in texts.texts:
        for secret in secrets:
            assert secret not in text, f"{secret!r} leaked in: {text[:300]!r}"


async def test_an_unreadable_2xx_body_echoing_the_key_never_shows_it(
    echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A 200 page quoting the request (a debug proxy) is a SaynaInvalidResponseError
    whose message, repr and .excerpt quote the body: the API key in it is masked, as in
    an error status's body."""
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    async with SaynaClient(
        echo + "/200", without_audio=True, api_key=API_KEY, retry=RETRY
    ) as client:
        for call in CALLS[1:4]:
            error = await texts.failure(call(client))
            assert isinstance(error, SaynaInvalidResponseError)
            assert "Authorization: ***" in error.excerpt  # quoted, masked
            logging.getLogger("app").error("call failed", exc_info=error)
    texts.check(caplog)


async def test_the_url_credentials_are_masked_as_the_basic_header_sends_them(
    echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    """user:password@ goes as ``Authorization: Basic <base64>``: a server echoing the
    header would show the password to anyone who decodes it."""
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    host = echo.split("//", 1)[1]
    url = f"http://{USER}:{PASSWORD}@{host}"
    async with SaynaClient(url + "/400", without_audio=True, retry=RETRY) as client:
        error = await texts.failure(client.health())
        assert "Authorization: ***" in str(error.body)  # type: ignore[attr-defined]
    async with SaynaClient(url + "/200", without_audio=True, retry=RETRY) as client:
        await texts.failure(client.health())
    texts.check(caplog)
    _no_secret_in(texts, [_basic(USER, PASSWORD)])


async def test_netrc_credentials_are_masked_in_an_echoed_body(
    echo: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine 127.0.0.1 login alice password {NETRC_PASSWORD}\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    texts = Texts()
    async with SaynaClient(echo + "/500", without_audio=True, retry=RETRY) as client:
        error = await texts.failure(client.health())
        assert "Authorization: ***" in str(error.body)  # type: ignore[attr-defined]
        error = await texts.failure(client.connect())  # the upgrade's refusal body too
    _no_secret_in(texts, [NETRC_PASSWORD, _basic("alice", NETRC_PASSWORD)])


async def test_provider_keys_of_the_request_body_are_masked_in_an_echoed_body(
    echo: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The keys a REST body carries (``TTSConfig.auth`` in speak_rest, the SIP password
    of sip_call) are masked in an error quoting the request, in the message and in
    ``.body``; a Google key as the JSON escapes it too."""
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    google = GoogleAuth(credentials={"type": "service_account", "private_key": GOOGLE_KEY})
    secrets = [PROVIDER, SIP_PASSWORD, GOOGLE_KEY, GOOGLE_KEY.replace("\n", "\\n")]
    configs = [
        TTSConfig(provider="elevenlabs", voice_id="v", auth=ApiKeyAuth(api_key=PROVIDER)),
        TTSConfig(provider="elevenlabs", voice_id="v", auth={"api_key": PROVIDER}),
        TTSConfig(provider="azure", auth=AzureAuth(api_key=PROVIDER, region="eastus")),
        TTSConfig(provider="google", auth=google),
        TTSConfig(provider="google", auth=GoogleAuth(credentials=json.dumps(google.credentials))),
    ]
    sip = SipCallSipConfig(auth_username="trunk", auth_password=SIP_PASSWORD)
    async with SaynaClient(echo + "/400", without_audio=True, retry=RETRY) as client:
        for config in configs:
            error = await texts.failure(client.speak_rest("hello", config))
            assert '"auth":' in str(error)  # the body was quoted
        error = await texts.failure(
            client.sip_call("room", "Caller", "caller-1", "+15105550123", "+15551234567", sip)
        )
        assert '"auth_username":"trunk"' in str(error)  # only the password is masked
    # Quoted inside a JSON error string: decoding the error body unescaped the key once,
    # after the body's text was scrubbed (the decoded .body showed it).
    async with SaynaClient(echo + "/json/400", without_audio=True, retry=RETRY) as client:
        for config in configs:
            error = await texts.failure(client.speak_rest("hello", config))
            quoted = error.body["error"]  # type: ignore[attr-defined]
            assert quoted.startswith("bad request: ")
            assert not [secret for secret in secrets if secret in quoted]
    texts.check(caplog)
    _no_secret_in(texts, secrets)


def test_a_secret_added_after_a_scrub_is_masked_in_any_encoding() -> None:
    """The any-encoding pattern was made at the first scrub and kept: a secret added
    afterwards (a proxy's or .netrc's credentials, found at the first request) was masked
    only in its literal forms, not half-encoded as yarl prints it."""
    from sayna_client._redact import Redactor

    redactor = Redactor(["first-secret"])
    assert redactor.scrub("nothing here") == "nothing here"  # the pattern is made
    redactor.add("p@ss/word+x")
    assert redactor.scrub("proxy http://u:p%40ss/word%2Bx@host") == "proxy http://u:***@host"
    assert redactor.leaks("p%40ss%2Fword%2bx")


# --- secrets echoed JSON-escaped, and a proxy's credentials -------------------------------

#: Keys with characters a JSON encoder escapes: "/" (PHP and some Java encoders write
#: "\/"), '"' and "\" (every encoder), non-ASCII (with ensure_ascii, Python's default).
#: Each holds a "SECRET-00NN" that no escaping changes: found anywhere, a key leaked.
SLASH_KEY = "sk-9fQ/x7Lm+Zt2Rk/w-SECRET-0011"
QUOTE_KEY = 'sk-Ab"c\\d-SECRET-0012'
ACCENT_PROVIDER_KEY = "dg-clé/ü-SECRET-0013"
SLASH_GOOGLE_KEY = (
    "-----BEGIN PRIVATE KEY-----\nMIIE/vSECRET-0014+google/\n-----END PRIVATE KEY-----\n"
)
ESCAPED_MARKERS = ["SECRET-0011", "SECRET-0012", "SECRET-0013", "SECRET-0014"]


@pytest_asyncio.fixture
async def json_echo() -> AsyncIterator[str]:
    """Answers /MODE/STATUS with the request's Authorization header and body quoted in a
    JSON ``detail`` (no ``error`` nor ``message``: the SDK quotes the body's text), encoded
    as MODE says: ``ascii`` (Python's default), ``php`` (``/`` as ``\\/``), ``nested`` (a
    JSON text inside the string: escaped twice), ``pct`` (percent-encoded: the request's
    JSON body, with its escapes, URL-encoded)."""

    async def answer(request: web.Request) -> web.Response:
        mode, status = request.path.strip("/").split("/")[:2]
        body = (await request.read()).decode()
        detail = f"rejected Authorization: {request.headers.get('Authorization')}; body: {body}"
        if mode == "ascii":
            text = json.dumps({"detail": detail})
        elif mode == "php":
            text = json.dumps({"detail": detail}, ensure_ascii=False).replace("/", "\\/")
        elif mode == "pct":
            text = json.dumps({"detail": quote(detail)})
        else:
            text = json.dumps({"detail": json.dumps({"got": detail}, ensure_ascii=False)})
        return web.Response(status=int(status), text=text, content_type="application/json")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    async with serving(app) as url:
        yield url


def _no_marker_in(texts: Texts, markers: list[str]) -> None:
    for text in texts.texts:
        for marker in markers:
            assert marker not in text, f"a key ({marker}) leaked in: {text[:400]!r}"


@pytest.mark.parametrize("status", ["401", "200"])
@pytest.mark.parametrize("mode", ["ascii", "php", "nested", "pct"])
@pytest.mark.parametrize("key", [SLASH_KEY, QUOTE_KEY])
async def test_a_key_echoed_json_escaped_never_shows(
    json_echo: str, mode: str, status: str, key: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``{"detail": "... Bearer sk-9fQ\\/x7Lm..."}`` with 401: the message quoted the body's
    text, scrubbed for the key as given and percent-encoded only, so the key showed
    (``.body``, decoded, was clean); on a 200, the "The body starts" excerpt did too."""
    caplog.set_level(logging.DEBUG)
    texts = Texts()
    google = GoogleAuth(credentials={"type": "service_account", "private_key": SLASH_GOOGLE_KEY})
    configs = [
        TTSConfig(provider="deepgram", auth=ApiKeyAuth(api_key=ACCENT_PROVIDER_KEY)),
        TTSConfig(provider="google", auth=google),
    ]
    url = f"{json_echo}/{mode}/{status}"
    async with SaynaClient(url, without_audio=True, api_key=key, retry=RETRY) as client:
        error = await texts.failure(client.get_voices())
        assert "rejected" in str(error)  # the body's text is quoted
        for config in configs:
            error = await texts.failure(client.speak_rest("hello", config))
            assert "rejected" in str(error)
            logging.getLogger("app").error("call failed", exc_info=error)
    texts.check(caplog)
    _no_marker_in(texts, ESCAPED_MARKERS)


def test_a_secret_added_later_is_masked_json_escaped_too() -> None:
    """``add()`` makes the forms again: a proxy's or .netrc's password, found at the first
    request, is masked escaped as a JSON string writes it, as the first secrets are."""
    from sayna_client._redact import Redactor

    redactor = Redactor([QUOTE_KEY])
    assert redactor.scrub(json.dumps(QUOTE_KEY)) == '"***"'  # the forms are made
    redactor.add(SLASH_KEY, ACCENT_PROVIDER_KEY)
    for secret in (QUOTE_KEY, SLASH_KEY, ACCENT_PROVIDER_KEY):
        for text in (
            json.dumps({"k": secret}),
            json.dumps({"k": secret}, ensure_ascii=False).replace("/", "\\/"),
            json.dumps({"k": json.dumps({"k": secret})}),
        ):
            scrubbed = redactor.scrub(text)
            assert "SECRET-00" not in scrubbed, scrubbed
            assert redactor.leaks(text)


PROXY_USER = "proxy-user-0015"
PROXY_PASSWORD = "PRX-pass-SECRET-0016"


async def test_the_proxy_credentials_are_masked_as_the_proxy_authorization_header_sends_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``proxy="http://user:pass@host"``: aiohttp sends ``Proxy-Authorization: Basic
    <base64>``, which a proxy's error page echoed in the message and ``.body`` (anyone
    can decode it), for REST and for the WebSocket's upgrade (whose refusal body is read
    again through the proxy). With HTTP_PROXY it was masked already."""
    caplog.set_level(logging.DEBUG)

    async def gateway(request: web.Request) -> web.Response:
        echoed = "\n".join(f"{name}: {value}" for name, value in request.headers.items())
        auth = request.headers.get("Proxy-Authorization")
        return web.Response(status=502, text=f"bad gateway, Proxy-Authorization: {auth}\n{echoed}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", gateway)
    texts = Texts()
    token = _basic(PROXY_USER, PROXY_PASSWORD)
    stt, tts = _configs()
    async with serving(app) as proxy_url:
        proxy = f"http://{PROXY_USER}:{PROXY_PASSWORD}@{proxy_url.split('//', 1)[1]}"
        client = SaynaClient("http://sayna.example.com", stt, tts, proxy=proxy, retry=RETRY)
        async with client:
            error = await texts.failure(client.health())
            assert "Proxy-Authorization: ***" in str(error)  # it did reach the proxy
            error = await texts.failure(client.connect())
            assert "Proxy-Authorization: ***" in str(error.body)  # type: ignore[attr-defined]
    texts.check(caplog)
    _no_secret_in(texts, [PROXY_PASSWORD, token])


async def test_a_key_echoed_in_a_sip_transfer_error_is_masked() -> None:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.receive()  # the config
        await ws.send_json({"type": "ready", "stream_id": "s"})
        auth = request.headers.get("Authorization", "")
        await ws.send_json({"type": "sip_transfer_error", "message": f"refused for {auth}"})
        await ws.receive()  # until the client closes
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    failures: list[Any] = []
    stt, tts = _configs()
    async with (
        serving(app) as url,
        SaynaClient(url, stt, tts, api_key=API_KEY, retry=RETRY) as client,
    ):
        client.on("sip_transfer_error", failures.append)
        await client.connect()
        await eventually(lambda: failures, what="the sip_transfer_error")
    assert failures[0].message == "refused for ***"
    assert API_KEY not in repr(failures[0])
