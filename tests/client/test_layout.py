"""The client's layout behind the flat API: forwarded names, one options object."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any
from unittest import mock

import pytest
from aiohttp import web

from sayna_client import (
    RetryPolicy,
    SaynaClient,
    SaynaNotConnectedError,
    SaynaSyncClient,
    SaynaTimeoutError,
    SaynaValidationError,
    STTConfig,
    Timeouts,
    TTSConfig,
)
from sayna_client._options import SessionOptions
from sayna_client.realtime.session import VoiceSession
from sayna_client.realtime.speaking import Speaking
from sayna_client.server import LocalServer

from .conftest import serving, stt, tts


def _client() -> SaynaClient:
    return SaynaClient(
        "http://127.0.0.1:9", STTConfig(provider="deepgram"), TTSConfig(provider="x")
    )


def test_forwarded_methods_keep_the_session_signature_and_contract() -> None:
    assert inspect.signature(SaynaClient.speak) == inspect.signature(Speaking.speak)
    assert SaynaClient.speak.__doc__ == Speaking.speak.__doc__
    assert SaynaClient.connect.__doc__ == VoiceSession.connect.__doc__
    assert "Raises:" in (SaynaClient.disconnect.__doc__ or "")
    assert inspect.iscoroutinefunction(SaynaClient.on_audio_input)


async def test_the_audio_input_is_stored_on_the_client_at_its_first_call() -> None:
    client = _client()
    with pytest.raises(SaynaNotConnectedError):
        await client.on_audio_input(bytes(640))
    first = client.on_audio_input
    assert client.on_audio_input is first  # a plain attribute read from now on
    assert first.__self__ is client._voice.audio_in
    assert client.speak.__name__ == "speak"


async def test_a_wrapper_set_on_the_instance_stays_in_force(server: LocalServer) -> None:
    # A wrapper that calls the method it captured (a spy, a counter) must see every
    # frame: the audio input's first call stores nothing over the user's attribute.
    async with Counted(server) as (client, seen):
        for _ in range(3):
            await client.on_audio_input(bytes(640))
        with mock.patch.object(client, "on_audio_input", wraps=client.on_audio_input) as spy:
            for _ in range(2):
                await client.on_audio_input(bytes(640))
        assert spy.call_count == 2
        assert seen == [640] * 5
        await server.records.wait_for(lambda: server.records.last_session.audio_frames == 5)


class Counted:
    """A connected client whose instance attribute ``on_audio_input`` is a counting
    wrapper around the method it captured."""

    def __init__(self, server: LocalServer) -> None:
        self._client = SaynaClient(server.url, stt(), tts(sample_rate=16000))

    async def __aenter__(self) -> tuple[SaynaClient, list[int]]:
        client, seen = self._client, []
        await client.connect()
        original = client.on_audio_input

        async def counting(audio_data: bytes) -> None:
            seen.append(len(audio_data))
            await original(audio_data)

        client.on_audio_input = counting  # type: ignore[method-assign]
        return client, seen

    async def __aexit__(self, *exc_info: object) -> None:
        await self._client.disconnect()


def test_forwarded_methods_are_methods_of_the_client() -> None:
    # Called through the class, patched onto it and auto-specced, as a method the client
    # wrote itself (the class holds plain functions).
    client = _client()
    assert repr(client.speak).startswith("<bound method SaynaClient.speak of ")
    assert SaynaClient.register_on_ready(client, lambda _: None)() is True  # (it was registered)
    calls: list[str] = []
    original = SaynaClient.register_on_close

    def traced(self: SaynaClient, callback: Any) -> Any:
        calls.append("traced")
        return original(self, callback)

    SaynaClient.register_on_close = traced  # type: ignore[method-assign]
    try:
        client.register_on_close(lambda _: None)()
    finally:
        SaynaClient.register_on_close = original  # type: ignore[method-assign]
    client.register_on_close(lambda _: None)()
    assert calls == ["traced"]
    spec = mock.create_autospec(SaynaClient, instance=True)
    assert inspect.iscoroutinefunction(spec.speak)
    with pytest.raises(TypeError):
        spec.speak()  # text is required, self is not
    sync = mock.create_autospec(SaynaSyncClient, instance=True)
    sync.health()
    sync.on_audio_input(b"x")
    blocking = SaynaSyncClient("http://127.0.0.1:9", without_audio=True)
    try:  # a blocking method, looked at on an instance
        assert blocking.health.__name__ == "health"
        assert "blocking" in (blocking.health.__doc__ or "")
        assert next(iter(inspect.signature(blocking.speak).parameters)) == "text"
    finally:
        blocking.close()


async def test_forwarded_coroutines_run_through_the_class() -> None:
    client = _client()
    with pytest.raises(SaynaNotConnectedError):
        await SaynaClient.speak(client, "hi")
    with pytest.raises(SaynaNotConnectedError):
        await SaynaClient.on_audio_input(client, bytes(640))
    await SaynaClient.disconnect(client)  # safe in every state


async def test_a_subclass_override_of_on_audio_input_stays_in_force(
    server: LocalServer,
) -> None:
    # The forward stores the part's method on the instance at its first use; reached
    # through super() from a subclass's override, it must not shadow that override.
    seen: list[int] = []

    class Counting(SaynaClient):
        async def on_audio_input(self, audio_data: bytes) -> None:  # type: ignore[override]
            seen.append(len(audio_data))
            await super().on_audio_input(audio_data)

    async with Counting(server.url, stt(), tts(sample_rate=16000)) as client:
        await client.connect()
        for size in (640, 640, 320):
            await client.on_audio_input(bytes(size))
        assert seen == [640, 640, 320]
        assert "on_audio_input" not in vars(client)
        await server.records.wait_for(lambda: server.records.last_session.audio_frames == 3)
        assert client.metrics.audio_frames_sent == 3


def test_settings_read_and_write_through_to_the_session() -> None:
    client = _client()
    new = STTConfig(provider="google")
    client.stt_config = new
    assert client.stt_config is new
    client.timeouts = Timeouts(connect=1)
    assert client.timeouts.connect == 1
    with pytest.raises(AttributeError):
        client.ready = True  # type: ignore[misc]


async def test_assigned_timeouts_and_retry_apply_to_rest_calls() -> None:
    stalled = asyncio.Event()

    async def health(request: web.Request) -> web.Response:
        await stalled.wait()  # (set at the end: the client's deadline ends the call)
        return web.json_response({"status": "OK"})

    app = web.Application()
    app.router.add_get("/", health)
    async with serving(app) as url:
        client = SaynaClient(url, without_audio=True, timeouts=Timeouts(request=30))
        client.timeouts = Timeouts(request=0.2)
        client.retry = RetryPolicy(max_retries=0)
        try:
            with pytest.raises(SaynaTimeoutError) as info:
                await asyncio.wait_for(client.health(), 20)
        finally:
            stalled.set()  # (the server's shutdown waits for its handler)
        assert info.value.timeout == 0.2
        assert client.retry.max_retries == 0
        await client.aclose()


def test_assigned_settings_are_checked() -> None:
    client = _client()
    for name, value, message in (
        ("timeouts", {"connect": 5}, "Timeouts"),
        ("timeouts", None, "Timeouts"),
        ("retry", 3, "RetryPolicy"),
        ("heartbeat", -5, "heartbeat"),
        ("stt_config", {"provider": "deepgram"}, "STTConfig"),
        ("tts_config", "x", "TTSConfig"),
        ("without_audio", "yes", "True or False"),
        ("stream_id", "../up", "stream_id"),
        ("reconnect_policy", 3, "ReconnectPolicy"),
    ):
        before = getattr(client, name)
        with pytest.raises(SaynaValidationError, match=message):
            setattr(client, name, value)
        assert getattr(client, name) == before  # (nothing written)


def test_both_clients_check_session_arguments_through_one_options_object() -> None:
    for build in (
        lambda: SessionOptions(stt_config=STTConfig(provider="deepgram")),
        lambda: SaynaClient("http://127.0.0.1:9", STTConfig(provider="deepgram")),
        lambda: SaynaSyncClient("http://127.0.0.1:9", STTConfig(provider="deepgram")),
    ):
        with pytest.raises(SaynaValidationError, match="stt_config and tts_config are required"):
            build()
    with pytest.raises(SaynaValidationError, match="max_queue"):
        SessionOptions(without_audio=True, max_queue=0)
    options = SessionOptions(without_audio=True)
    with pytest.raises(AttributeError):
        options.max_queue = 5  # type: ignore[misc]


def test_the_sync_client_reads_the_same_settings() -> None:
    client = SaynaSyncClient("http://127.0.0.1:9", without_audio=True, timeouts=Timeouts(ready=3))
    try:
        assert client.timeouts.ready == 3
        assert client.without_audio is True
        assert client.stream_id is None
    finally:
        client.close()


async def test_the_audio_input_taken_before_its_first_call_is_the_sessions_own() -> None:
    # A caller that keeps `client.on_audio_input` (a device callback, a pacing clock)
    # used to keep the forwarding function: a coroutine of its own and a lookup of the
    # part at every frame (about 10 % more client CPU at 1,000 sessions).
    client = _client()
    send = client.on_audio_input
    assert send.__self__ is client._voice.audio_in
    assert client.on_audio_input is send
    with pytest.raises(SaynaNotConnectedError):
        await send(bytes(640))
    assert SaynaClient.on_audio_input.__qualname__ == "SaynaClient.on_audio_input"
    assert inspect.signature(SaynaClient.on_audio_input).parameters.keys() == {
        "self",
        "audio_data",
    }


async def test_the_audio_input_patched_onto_the_class_with_autospec_is_awaited() -> None:
    # The hot forward was briefly a descriptor object in the class: autospec made a
    # plain MagicMock of it, which `await client.on_audio_input(...)` could not await.
    with mock.patch.object(SaynaClient, "on_audio_input", autospec=True) as patched:
        client = _client()  # made after the patch: the patch is what the name means
        await client.on_audio_input(bytes(640))
    assert patched.call_args.args[0] is client
    assert "on_audio_input" not in vars(client)
    assert _client().on_audio_input.__self__ is not None  # the session's own again
