"""Errors are blamed on the call that caused them (issue #12 part 4).

The server's ``error`` carries no request id and arrives in server order; an error of a
command sent before a ``config`` reaches the client after the config was sent. Only the
config's own refusals may fail ``connect()`` / ``reconfigure()``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sayna_client import ErrorMessage, SaynaConfigRejectedError, STTConfig, decode_text
from sayna_client.protocol.attribution import error_source, refuses_config
from sayna_client.server import LocalServer

from .conftest import make_client, tts


@pytest.mark.parametrize(
    ("text", "source", "refuses"),
    [
        ("Unsupported provider: foo", "config", True),
        ("Timeout waiting for voice providers to be ready", "config", True),
        ("Failed to create voice manager: TTS error: Invalid configuration: x", "config", True),
        ("Access denied: room 'r' belongs to a different tenant", "config", True),
        ("Failed to set up STT callback: boom", "config", True),
        ("loading_audio.data is not valid base64", "config", False),
        ("loading audio sample rate must be non-zero", "config", False),
        ("Failed to set up TTS audio callback: boom", "config", False),
        ("Invalid message format: missing field `model`", "message", True),
        (
            "LiveKit client not configured. Send config message with livekit configuration first.",
            "send_message",
            False,
        ),
        (
            "Audio processing is disabled. Send config message with audio=true first.",
            "speak",
            False,
        ),
        ("Failed to synthesize speech: 500", "speak", False),
        ("Failed to clear TTS provider: x", "clear", False),
        (
            "Invalid turn detection threshold: 2. Must be between 0.0 and 1.0",
            "update_config",
            False,
        ),
        ("no loading audio configured", "loading_start", False),
        ("Failed to process audio: x", "audio", False),
        ("STT streaming error: Configuration error: bad language", "session", False),
        ("TTS error: 401", "session", False),
        ("Something new the server says", None, True),
    ],
)
def test_error_texts_are_attributed_to_their_message(text: str, source: Any, refuses: bool) -> None:
    assert error_source(text) == source
    assert refuses_config(text) is bool(refuses)
    event = decode_text(json.dumps({"type": "error", "message": text}))
    assert isinstance(event, ErrorMessage)
    assert event.source == source


async def test_an_earlier_commands_error_does_not_fail_reconfigure(server: LocalServer) -> None:
    client = make_client(server)
    errors: list[Any] = []
    client.register_on_error(errors.append)
    await client.connect()
    # No LiveKit room: the server answers send_message with an error, which reaches the
    # client after the config below was sent (the server handles messages in order).
    await client.send_message("hi", "user")
    await client.reconfigure(tts_config=tts(speaking_rate=1.5))
    assert client.ready
    record = server.records.last_session
    assert [m["type"] for m in record.messages] == ["config", "send_message", "config"]
    assert record.config is not None
    assert record.config["tts_config"]["speaking_rate"] == 1.5
    blamed = [e for e in errors if isinstance(e, ErrorMessage)]
    assert [e.source for e in blamed] == ["send_message"]
    await client.disconnect()


async def test_the_configs_own_refusal_still_fails_reconfigure(server: LocalServer) -> None:
    client = make_client(server)
    await client.connect()
    await client.send_message("hi", "user")
    with pytest.raises(SaynaConfigRejectedError) as info:
        await client.reconfigure(stt_config=STTConfig(provider="nope"))
    assert info.value.server_message == "Unsupported provider: nope"
    await client.disconnect()
