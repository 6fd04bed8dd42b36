"""The client's layout behind the flat API: forwarded names, one options object."""

from __future__ import annotations

import inspect

import pytest

from sayna_client import (
    SaynaClient,
    SaynaSyncClient,
    SaynaValidationError,
    STTConfig,
    Timeouts,
    TTSConfig,
)
from sayna_client._options import SessionOptions
from sayna_client.realtime.session import VoiceSession
from sayna_client.realtime.speaking import Speaking
from sayna_client.server import LocalServer

from .conftest import stt, tts


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


def test_a_forwarded_method_is_the_same_object_at_every_look_up() -> None:
    client = _client()
    first = client.on_audio_input
    assert client.on_audio_input is first  # stored on first use: a plain attribute read
    assert client.speak.__name__ == "speak"


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
