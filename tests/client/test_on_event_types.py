"""``on(event_type, cb)`` refuses a type no event has (a typo such as
``tts_playback_completed`` was accepted and its callback never called), on the async and
the sync client, and takes every type the SDK delivers and the docs use."""

from __future__ import annotations

import asyncio
import re
import typing
from pathlib import Path

import pytest

from sayna_client import (
    Event,
    SaynaSyncClient,
    SaynaValidationError,
    TTSPlaybackCompleteMessage,
)
from sayna_client.agents.barge_in import BargeInEvent
from sayna_client.agents.metrics import TurnRecord
from sayna_client.agents.watchdog import IdleEvent
from sayna_client.realtime.conversation import Turn
from sayna_client.server import LocalServer

from .conftest import make_client, stt, tts

ROOT = Path(__file__).resolve().parents[2]


def _documented_types() -> set[str]:
    """Every ``on("...")`` of the README, the docs, the examples and the docstrings, and
    the event table of docs/sessions.md (`type` | Event)."""
    names: set[str] = set()
    paths = [
        ROOT / "README.md",
        *(ROOT / "docs").rglob("*.md"),
        *(ROOT / "examples").rglob("*"),
        *(ROOT / "src").rglob("*.py"),  # the docstrings
    ]
    for path in paths:
        if path.suffix not in (".md", ".py"):
            continue
        text = path.read_text(encoding="utf-8")
        names.update(re.findall(r"\.on\(\s*[\"']([a-z_]+)[\"']", text))
    sessions = (ROOT / "docs" / "sessions.md").read_text(encoding="utf-8")
    header = "| `type` | Event |"
    table = sessions[sessions.index(header) :].split("\n\n", 1)[0].split("\n", 1)[1]
    for cell in re.findall(r"\| `([a-z_]+)`(?: / `([a-z_]+)`)? \|", table):
        names.update(name for name in cell if name)
    return names


async def test_a_misspelt_type_is_refused_with_the_closest_one(server: LocalServer) -> None:
    async with make_client(server) as client:
        with pytest.raises(SaynaValidationError) as info:
            client.on("tts_playback_completed", print)
        message = str(info.value)
        assert "'tts_playback_completed'" in message
        assert "Did you mean 'tts_playback_complete'?" in message
        for name in ("stt_result", "turn", "closed", "barge_in", "unknown"):
            assert name in message
        assert client.off(print) == 0  # nothing was registered


async def test_a_type_with_no_close_match_lists_them_all(server: LocalServer) -> None:
    async with make_client(server) as client:
        with pytest.raises(SaynaValidationError, match="The event types are: audio_dropped, "):
            client.on("zzz", print)
        with pytest.raises(SaynaValidationError, match="must be a str"):
            client.on(TTSPlaybackCompleteMessage, print)  # type: ignore[arg-type]


def test_every_event_the_sdk_delivers_has_a_known_type() -> None:
    from sayna_client.realtime.subscriptions import EVENT_TYPES

    classes = [*typing.get_args(Event), Turn, TurnRecord, BargeInEvent, IdleEvent]
    types = set()
    for cls in classes:
        fields = getattr(cls, "model_fields", None)
        types.add(fields["type"].default if fields else cls.type)
    assert types == EVENT_TYPES


def test_every_documented_type_is_known() -> None:
    from sayna_client.realtime.subscriptions import EVENT_TYPES

    documented = _documented_types()
    assert {"turn", "turn_metrics", "barge_in", "idle", "tts_playback_complete"} <= documented
    assert documented <= EVENT_TYPES


async def test_the_documented_types_are_delivered(server: LocalServer) -> None:
    from sayna_client.realtime.subscriptions import EVENT_TYPES

    called: list[str] = []
    async with make_client(server) as client:
        for name in sorted(_documented_types() | EVENT_TYPES):
            client.on(name, lambda _event, name=name: called.append(name))
        await client.connect()
        await client.speak("hello", wait=True)
    assert {"ready", "tts_audio", "tts_playback_complete", "closed"} <= set(called)


async def test_the_sync_client_refuses_a_typo_and_takes_the_right_name(
    server: LocalServer,
) -> None:
    def run() -> list[object]:
        got: list[object] = []
        with SaynaSyncClient(server.url, stt(), tts(sample_rate=16000)) as client:
            with pytest.raises(SaynaValidationError, match="'tts_playback_complete'"):
                client.on("tts_playback_completed", got.append)
            client.on("tts_playback_complete", got.append)
            client.connect()
            client.speak("hello", wait=True)
        return got

    got = await asyncio.to_thread(run)
    assert [type(event) for event in got] == [TTSPlaybackCompleteMessage]
