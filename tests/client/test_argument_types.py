"""Arguments of the wrong type or value on the session's commands: a SaynaValidationError
naming the argument, raised before anything is sent (never a bare TypeError from deep
inside, never a speech sent and then an error)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

import pytest

from sayna_client import SaynaClient, SaynaValidationError
from sayna_client.server import LocalServer

Call = Callable[[SaynaClient], Any]

BAD_CALLS: dict[str, tuple[Call, str]] = {
    "speak timeout str": (lambda c: c.speak("hello", wait=True, timeout="5"), "timeout"),
    "speak timeout negative": (lambda c: c.speak("hello", wait=True, timeout=-1), "timeout"),
    "speak lone surrogate": (lambda c: c.speak("hi \ud800"), "surrogate"),
    "drain timeout str": (lambda c: c.drain(timeout="2"), "timeout"),
    "drain settle str": (lambda c: c.drain(settle="0.1"), "settle"),
    "drain settle negative": (lambda c: c.drain(settle=-1), "settle"),
    "finish_audio timeout str": (lambda c: c.finish_audio(timeout="1"), "timeout"),
    "update_config silence str": (
        lambda c: c.update_config(vad_silence_duration_ms="300"),
        "vad_silence_duration_ms",
    ),
    "update_config threshold str": (
        lambda c: c.update_config(turn_detect_threshold="0.5"),
        "turn_detect_threshold",
    ),
    "update_config silence fractional": (
        lambda c: c.update_config(vad_silence_duration_ms=300.5),
        "vad_silence_duration_ms",
    ),
    "update_config silence bool": (
        lambda c: c.update_config(vad_silence_duration_ms=True),
        "vad_silence_duration_ms",
    ),
    "update_config threshold nan": (
        lambda c: c.update_config(turn_detect_threshold=float("nan")),
        "turn_detect_threshold",
    ),
    "update_config threshold bool": (
        lambda c: c.update_config(turn_detect_threshold=True),
        "turn_detect_threshold",
    ),
    "send_message topic int": (lambda c: c.send_message("x", "user", topic=5), "topic"),
    "send_message debug int key": (lambda c: c.send_message("x", "user", debug={1: "a"}), "debug"),
    "send_message debug object": (
        lambda c: c.send_message("x", "user", debug={"o": object()}),
        "debug",
    ),
    "send_message lone surrogate": (lambda c: c.send_message("x \udcff", "user"), "message"),
    "sip_transfer lone surrogate": (lambda c: c.sip_transfer("+1555\ud800"), "transfer_to"),
    "speak_rest lone surrogate": (
        lambda c: c.speak_rest("hello \ud800", c.tts_config),
        "surrogate",
    ),
}


@pytest.mark.parametrize("case", list(BAD_CALLS))
async def test_a_bad_argument_is_refused_before_anything_is_sent(
    connected: SaynaClient, server: LocalServer, case: str
) -> None:
    call, name = BAD_CALLS[case]
    record = server.records.sessions[-1]
    before = list(record.messages)
    with pytest.raises(SaynaValidationError) as caught:
        await call(connected)
    assert name in str(caught.value)
    # nothing went out: a speak after it is the next message the server gets
    await connected.speak("after", wait=True, timeout=30)
    assert [m["type"] for m in record.messages[len(before) :]] == ["speak"]
    assert record.messages[-1]["text"] == "after"


async def test_a_lone_surrogate_in_a_streamed_piece_fails_the_handle(
    connected: SaynaClient, server: LocalServer
) -> None:
    """A piece of ``speak_stream`` with a lone surrogate (a broken LLM token): the
    handle fails with a SaynaValidationError naming it (it raised the encoder's bare
    UnicodeEncodeError); the session stays usable."""
    record = server.records.sessions[-1]
    handle = await connected.speak_stream(["First sentence. ", "Second \ud800 one. ", "Third."])
    with pytest.raises(SaynaValidationError, match="surrogate"):
        await handle.wait(timeout=30)
    assert connected.connected
    await connected.speak("after", wait=True, timeout=30)
    texts = [m.get("text") for m in record.messages if m["type"] == "speak"]
    assert not any("Second" in (t or "") for t in texts)
    assert texts[-1] == "after"


@pytest.mark.parametrize(
    ("kwargs", "sent"),
    [
        ({"vad_silence_duration_ms": 300.0}, {"vad": {"silence_duration_ms": 300}}),
        ({"vad_silence_duration_ms": Fraction(600, 2)}, {"vad": {"silence_duration_ms": 300}}),
        ({"turn_detect_threshold": 1}, {"turn_detect": {"threshold": 1.0}}),
        ({"turn_detect_threshold": Fraction(1, 2)}, {"turn_detect": {"threshold": 0.5}}),
    ],
    ids=["ms-float", "ms-fraction", "threshold-int", "threshold-fraction"],
)
async def test_update_config_takes_numbers_of_other_types(
    connected: SaynaClient, server: LocalServer, kwargs: dict[str, Any], sent: dict[str, Any]
) -> None:
    """A whole float or any integral number for the milliseconds, any real number for the
    threshold (numpy's among them): they were refused by a strict int/float check."""
    record = server.records.sessions[-1]
    await connected.update_config(**kwargs)
    message = await server.records.wait_for(
        lambda: next((m for m in record.messages if m["type"] == "update_config"), None)
    )
    for key, value in sent.items():
        assert message[key] == value
        inner = next(iter(value))
        assert type(message[key][inner]) is type(value[inner])


async def test_update_config_takes_numpy_numbers(
    connected: SaynaClient, server: LocalServer
) -> None:
    np = pytest.importorskip("numpy")
    record = server.records.sessions[-1]
    await connected.update_config(
        vad_silence_duration_ms=np.int64(300), turn_detect_threshold=np.float32(0.5)
    )
    message = await server.records.wait_for(
        lambda: next((m for m in record.messages if m["type"] == "update_config"), None)
    )
    assert message["vad"] == {"silence_duration_ms": 300}
    assert message["turn_detect"] == {"threshold": 0.5}
