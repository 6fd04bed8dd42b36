"""A ``tts_playback_complete`` whose ``timestamp`` is missing or not an integer: reported as
malformed (the protocol requires the field), and still the completion it is."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from sayna_client import MalformedMessage, SaynaClient, TTSPlaybackCompleteMessage, decode_text
from sayna_client.protocol.decode import completion_in

from .conftest import WAIT, Peer

BAD_COMPLETIONS = [
    {"type": "tts_playback_complete"},
    {"type": "tts_playback_complete", "timestamp": "NaN"},
    {"type": "tts_playback_complete", "timestamp": 1.5, "extra": [1]},
]


def test_a_null_timestamp_is_a_completion_without_one() -> None:
    event = decode_text('{"type": "tts_playback_complete", "timestamp": null}')
    assert event == TTSPlaybackCompleteMessage(timestamp=None)


@pytest.mark.parametrize("frame", BAD_COMPLETIONS)
def test_a_completion_with_a_bad_timestamp_is_malformed_and_a_completion(
    frame: dict[str, Any],
) -> None:
    text = json.dumps(frame)
    assert isinstance(decode_text(text), MalformedMessage)
    completion = completion_in(text)
    assert isinstance(completion, TTSPlaybackCompleteMessage)
    assert completion.type == "tts_playback_complete"
    assert completion.timestamp is None


@pytest.mark.parametrize(
    "text", ["not json {", "[1]", '{"type": "error"}', '{"type": "tts_playback_completed"}']
)
def test_other_malformed_frames_are_no_completion(text: str) -> None:
    assert completion_in(text) is None


def test_a_good_completion_keeps_its_timestamp() -> None:
    event = decode_text('{"type": "tts_playback_complete", "timestamp": 5}')
    assert event == TTSPlaybackCompleteMessage(timestamp=5)


@pytest.mark.parametrize("frame", BAD_COMPLETIONS[:2])
async def test_speech_waiting_for_a_malformed_completion_ends(
    peer: tuple[Peer, SaynaClient], frame: dict[str, Any]
) -> None:
    # One such frame used to leave every speech waiting for its completion hanging.
    server, client = peer
    errors: list[Any] = []
    completions: list[Any] = []
    client.register_on_error(errors.append)
    client.register_on_tts_playback_complete(completions.append)
    handle = await client.speak("one two three")
    await server.got("speak")
    await server.audio(3)
    assert server.ws is not None
    await server.ws.send_str(json.dumps(frame))
    await asyncio.wait_for(handle, WAIT)
    assert not handle.interrupted
    assert handle.text_heard == "one two three"
    await client.drain(WAIT, settle=0)  # the callbacks caught up
    assert [type(e) for e in errors] == [MalformedMessage]
    assert "timestamp" in errors[0].reason
    assert [c.timestamp for c in completions] == [None]
