"""Memory per idle session (issue #19): what is shared between sessions must behave as
if it were not.

Configs built with the same fields share pydantic's fields-set (copy on write), so every
public way to read or change a config's set fields must still see that config's own.
The figures themselves are measured by ``benchmarks/driver.py --measure rss_seed``
(``benchmarks/RSS-issue19.md``), not here.
"""

from __future__ import annotations

import asyncio
import copy
import pickle

import pytest
from pydantic import ValidationError

from sayna_client import (
    Pronunciation,
    Reconnected,
    ReconnectPolicy,
    SaynaTimeoutError,
    STTConfig,
    Timeouts,
    TTSConfig,
)
from sayna_client.realtime.deadline import deadlines
from sayna_client.server import Faults, LocalServer

from .conftest import make_client


def _shared(a: object, b: object) -> bool:
    return a.__pydantic_fields_set__ is b.__pydantic_fields_set__  # type: ignore[attr-defined]


def test_configs_built_alike_share_their_fields_set() -> None:
    a = STTConfig(provider="deepgram", model="nova-2")
    b = STTConfig(provider="deepgram", model="nova-2")
    assert _shared(a, b)
    assert not _shared(a, STTConfig(provider="deepgram"))  # other fields: another set


def test_assignment_changes_only_that_config() -> None:
    a = TTSConfig(provider="elevenlabs", voice_id="v")
    b = TTSConfig(provider="elevenlabs", voice_id="v")
    b.speaking_rate = 1.5
    assert b.model_fields_set == {"provider", "voice_id", "speaking_rate"}
    assert a.model_fields_set == {"provider", "voice_id"}
    assert a.model_dump(exclude_unset=True) == {"provider": "elevenlabs", "voice_id": "v"}
    assert b.model_dump(exclude_unset=True)["speaking_rate"] == 1.5
    with pytest.raises(ValidationError):
        a.speaking_rate = -1.0  # validation on assignment still runs
    assert a.model_fields_set == {"provider", "voice_id"}


def test_model_fields_set_is_the_configs_own() -> None:
    a = STTConfig(provider="deepgram")
    b = STTConfig(provider="deepgram")
    a.model_fields_set.add("language")  # pydantic hands out the model's own set
    assert a.model_fields_set == {"provider", "language"}
    assert b.model_fields_set == {"provider"}
    assert STTConfig(provider="deepgram").model_fields_set == {"provider"}


def test_copies_and_pickles_have_their_own_set() -> None:
    a = TTSConfig(provider="cartesia", pronunciations=[Pronunciation(word="a", pronunciation="b")])
    updated = a.model_copy(update={"voice_id": "x"})
    assert updated.model_fields_set == {"provider", "pronunciations", "voice_id"}
    assert a.model_fields_set == {"provider", "pronunciations"}
    for other in (copy.copy(a), copy.deepcopy(a), pickle.loads(pickle.dumps(a))):
        assert other == a
        assert type(other.__pydantic_fields_set__) is set  # a plain set of its own
        other.model_fields_set.add("model")
        assert a.model_fields_set == {"provider", "pronunciations"}


def test_delete_attribute_keeps_others_intact() -> None:
    a = STTConfig(provider="deepgram", model="m")
    b = STTConfig(provider="deepgram", model="m")
    with pytest.raises(AttributeError):
        del a.no_such_field
    assert b.model_fields_set == {"provider", "model"}


async def test_a_reconnect_policy_set_after_construction_still_reconnects(
    server: LocalServer,
) -> None:
    # The reconnector is made only when a close finds a policy (an idle session without
    # one holds none): a policy assigned to the client later must still take effect.
    server.faults = Faults(drop_connection_after_frames=3)
    client = make_client(server)
    client.reconnect_policy = ReconnectPolicy(initial_backoff=0.05, max_backoff=0.1)
    async with client:
        events = client.events()
        await client.connect()
        server.faults = Faults()  # only the first session breaks
        await client.speak("hello")  # the TTS frames coming back trip the fault
        seen = []
        async for event in events:
            seen.append(event.type)
            if isinstance(event, Reconnected):
                break
        assert seen.index("closed") < seen.index("reconnecting") < seen.index("reconnected")
        assert client.ready
        await client.speak("back again")


async def test_ready_deadlines_share_one_timer_and_a_ready_session_keeps_none(
    server: LocalServer,
) -> None:
    # The `ready` deadlines of a loop share one timer: a session that got `ready` leaves
    # no entry behind (and no cancelled timer handle in the loop's heap), and its dropped
    # deadline never fires, while the deadlines of others still do, each on its own.
    timeouts = Timeouts(connect=5, ready=0.3, close=1)
    async with make_client(server, timeouts=timeouts) as ready:
        await ready.connect()
        assert len(deadlines(0.3)) == 0
        server.faults = Faults(never_send_ready=True)
        late = [make_client(server, timeouts=timeouts) for _ in range(3)]
        try:
            results = await asyncio.gather(*(c.connect() for c in late), return_exceptions=True)
        finally:
            for client in late:
                await client.disconnect()
        assert all(isinstance(r, SaynaTimeoutError) and r.operation == "ready" for r in results)
        assert len(deadlines(0.3)) == 0
        assert ready.ready  # its own deadline, dropped at `ready`, never fired
        await ready.speak("still here", wait=True)
