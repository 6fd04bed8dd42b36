"""The one REST call: a per-call ``timeout`` on every method (seconds, ``None`` for no
limit, left out for the client's), against a loopback server that stalls until told,
and ``RestClient`` on its own against the local server."""

from __future__ import annotations

import asyncio
import inspect
import math
import pickle
from collections.abc import AsyncIterator, Awaitable
from typing import Any, Callable

import pytest
import pytest_asyncio
from aiohttp import web

from sayna_client import (
    RetryPolicy,
    SaynaClient,
    SaynaInvalidResponseError,
    SaynaServerError,
    SaynaSyncClient,
    SaynaTimeoutError,
    SaynaValidationError,
    SipHook,
    Timeouts,
    TTSConfig,
)
from sayna_client._defaults import CLIENT_DEFAULT
from sayna_client._rest import RestClient
from sayna_client.server import LocalServer

from .conftest import start_app


class Stalling:
    """Holds every request until ``release`` is set; counts what arrived."""

    def __init__(self) -> None:
        self.arrived = 0
        self.arrival = asyncio.Event()
        self.release = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._any)
        self.app = app

    async def _any(self, request: web.Request) -> web.Response:
        await request.read()
        self.arrived += 1
        self.arrival.set()
        await self.release.wait()
        return web.json_response({"status": "OK"})


@pytest_asyncio.fixture
async def stalling() -> AsyncIterator[tuple[Stalling, str]]:
    server = Stalling()
    runner, url = await start_app(server.app)
    try:
        yield server, url
    finally:
        server.release.set()
        await runner.cleanup()


def _client(url: str, request: float = 60.0) -> SaynaClient:
    return SaynaClient(
        url,
        without_audio=True,
        timeouts=Timeouts(request=request),
        retry=RetryPolicy(max_retries=0),
    )


Call = Callable[..., Awaitable[Any]]
#: Every REST method of SaynaClient, with arguments, called with **kwargs.
CALLS: dict[str, Callable[[SaynaClient, Any], Awaitable[Any]]] = {
    "health": lambda c, kw: c.health(**kw),
    "health_check": lambda c, kw: c.health_check(**kw),
    "get_voices": lambda c, kw: c.get_voices(**kw),
    "speak_rest": lambda c, kw: c.speak_rest("hi", TTSConfig(provider="deepgram"), **kw),
    "get_livekit_token": lambda c, kw: c.get_livekit_token("room", "Jane", "jane", **kw),
    "get_livekit_rooms": lambda c, kw: c.get_livekit_rooms(**kw),
    "get_livekit_room": lambda c, kw: c.get_livekit_room("room", **kw),
    "remove_livekit_participant": lambda c, kw: c.remove_livekit_participant("r", "p", **kw),
    "mute_livekit_participant_track": lambda c, kw: c.mute_livekit_participant_track(
        "r", "p", "TR_1", True, **kw
    ),
    "get_sip_hooks": lambda c, kw: c.get_sip_hooks(**kw),
    "set_sip_hooks": lambda c, kw: c.set_sip_hooks(
        [SipHook(host="sip.example.com", url="https://example.com/hook")], **kw
    ),
    "delete_sip_hooks": lambda c, kw: c.delete_sip_hooks(["sip.example.com"], **kw),
    "sip_transfer_rest": lambda c, kw: c.sip_transfer_rest("r", "p", "+15551234567", **kw),
    "sip_call": lambda c, kw: c.sip_call(
        "r", "Caller", "c-1", "+15105550123", "+15551234567", **kw
    ),
    "get_recording": lambda c, kw: c.get_recording("call-1", **kw),
}


def test_every_rest_method_is_covered_and_takes_a_keyword_timeout() -> None:
    """The table above is every public coroutine of RestClient, and each has a
    keyword-only ``timeout`` defaulting to CLIENT_DEFAULT, on both clients."""
    methods = {
        name
        for name, fn in inspect.getmembers(RestClient, inspect.iscoroutinefunction)
        if not name.startswith("_") and name != "aclose"
    }
    assert methods == set(CALLS)
    for name in methods:
        for cls in (SaynaClient, SaynaSyncClient):
            if name == "health_check" and cls is SaynaSyncClient:
                continue  # an alias the async client keeps from 0.0.18 only
            param = inspect.signature(getattr(cls, name)).parameters["timeout"]
            assert param.kind is inspect.Parameter.KEYWORD_ONLY, (cls, name)
            assert param.default is CLIENT_DEFAULT, (cls, name)


@pytest.mark.parametrize("name", sorted(CALLS))
async def test_a_per_call_timeout_ends_a_stalled_call(
    stalling: tuple[Stalling, str], name: str
) -> None:
    server, url = stalling
    async with _client(url) as client:  # the client's default (60 s) would wait on
        with pytest.raises(SaynaTimeoutError) as info:
            await CALLS[name](client, {"timeout": 0.1})
    assert info.value.timeout == 0.1
    assert info.value.operation  # "METHOD /path"
    # Sent at most once (no retry policy); on a loaded machine the 0.1 s can pass before
    # the request reaches the peer, so it may not have arrived at all.
    assert server.arrived <= 1


async def test_timeout_none_means_no_limit_whatever_the_client_default(
    stalling: tuple[Stalling, str],
) -> None:
    server, url = stalling
    async with _client(url, request=0.2) as client:
        unlimited = asyncio.ensure_future(client.health(timeout=None))
        await server.arrival.wait()
        # A call made after it, with the client's 0.2 s, times out: so the first has
        # been waiting longer than the client default, and is still waiting.
        with pytest.raises(SaynaTimeoutError) as info:
            await client.health()
        assert info.value.timeout == 0.2
        assert not unlimited.done()
        server.release.set()
        assert (await unlimited).status == "OK"


async def test_client_default_applies_when_timeout_is_left_out(
    stalling: tuple[Stalling, str],
) -> None:
    _server, url = stalling
    async with _client(url, request=0.1) as client:
        with pytest.raises(SaynaTimeoutError) as info:
            await client.get_voices()
        assert info.value.timeout == 0.1
        with pytest.raises(SaynaTimeoutError) as info:
            await client.get_voices(timeout=CLIENT_DEFAULT)
        assert info.value.timeout == 0.1


@pytest.mark.parametrize("bad", [0, -1, "5", True, [1], math.inf, math.nan])
async def test_a_bad_timeout_is_refused_before_sending(
    stalling: tuple[Stalling, str], bad: Any
) -> None:
    server, url = stalling
    async with _client(url) as client:
        with pytest.raises(SaynaValidationError, match="timeout"):
            await client.health(timeout=bad)
    assert server.arrived == 0


async def test_the_sync_client_passes_the_timeout(stalling: tuple[Stalling, str]) -> None:
    server, url = stalling

    def blocking() -> SaynaTimeoutError:
        with SaynaSyncClient(url, without_audio=True, retry=RetryPolicy(max_retries=0)) as c:
            with pytest.raises(SaynaTimeoutError) as info:
                c.get_sip_hooks(timeout=0.1)
            return info.value

    error = await asyncio.to_thread(blocking)  # this loop keeps serving meanwhile
    assert error.timeout == 0.1
    assert server.arrived == 1


def test_client_default_is_one_object() -> None:
    assert repr(CLIENT_DEFAULT) == "CLIENT_DEFAULT"
    assert pickle.loads(pickle.dumps(CLIENT_DEFAULT)) is CLIENT_DEFAULT


async def test_rest_client_alone_against_the_local_server(server: LocalServer) -> None:
    async with RestClient(server.url, timeout=10) as rest:
        assert (await rest.health()).status == "OK"
        voices = await rest.get_voices(timeout=None)
        assert voices
        assert all(isinstance(v, list) for v in voices.values())
        audio, headers = await rest.speak_rest("Hello", TTSConfig(provider="deepgram"))
        assert audio
        assert headers["x-audio-format"]
        assert "RestClient(url=" in repr(rest)


async def test_rest_client_checks_its_arguments() -> None:
    with pytest.raises(SaynaValidationError, match="timeout"):
        RestClient("http://127.0.0.1:1", timeout=-1)
    with pytest.raises(SaynaValidationError, match="retry"):
        RestClient("http://127.0.0.1:1", retry=3)  # type: ignore[arg-type]
    with pytest.raises(SaynaValidationError, match="url"):
        RestClient("localhost:3001")


def test_the_plaintext_warning_points_at_the_users_line() -> None:
    with pytest.warns(UserWarning, match="unencrypted") as caught:
        SaynaClient("http://api.example.com", without_audio=True, api_key="k")
    with pytest.warns(UserWarning, match="unencrypted") as direct:
        RestClient("http://api.example.com", api_key="k")
    assert [w.filename for w in (*caught, *direct)] == [__file__, __file__]


async def test_a_non_json_answer_is_a_server_error_with_status_and_excerpt() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=203, text="<html>maintenance window, back soon</html>")

    app = web.Application()
    app.router.add_get("/voices", handler)
    runner, url = await start_app(app)
    try:
        async with _client(url) as client:
            with pytest.raises(SaynaServerError) as info:
                await client.get_voices()
    finally:
        await runner.cleanup()
    error = info.value
    assert isinstance(error, SaynaInvalidResponseError)
    assert error.status_code == 203
    assert error.endpoint == "GET /voices"
    assert error.excerpt == "<html>maintenance window, back soon</html>"
    assert "maintenance window" in str(error)
    assert error.__cause__ is None
    assert error.__context__ is None
