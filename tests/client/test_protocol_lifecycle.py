"""protocol/ owns the session's rules and imports alone: plain values in, no event loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from sayna_client.protocol.lifecycle import (
    RECOVERABLE_CLOSE_CODES,
    TRANSITIONS,
    CloseCode,
    Phase,
    PhaseInput,
    client_close_code,
    config_answer,
    ends_normally,
    is_recoverable,
    next_phase,
    received_close_code,
)

_BLOCKED_IMPORT = textwrap.dedent(
    """
    import importlib.abc
    import sys

    BLOCKED = ("aiohttp", "asyncio")


    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"{name} is blocked in this test")
            return None


    assert not [m for m in sys.modules if m.split(".")[0] in BLOCKED], "loaded already"
    sys.meta_path.insert(0, Refuse())

    import sayna_client.protocol
    from sayna_client.protocol import decode_text, encode_speak
    from sayna_client.protocol.lifecycle import CloseCode, is_recoverable

    assert decode_text('{"type": "ready", "stream_id": "s"}').type == "ready"
    assert encode_speak("hi", True, True).startswith("{")
    assert is_recoverable(CloseCode.GOING_AWAY, initiated_by_client=False)
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    assert not loaded, loaded
    print("isolated")
    """
)


def test_protocol_imports_with_aiohttp_and_asyncio_blocked() -> None:
    """The sans-I/O layer (and the package's own __init__) loads neither aiohttp nor
    asyncio: a fresh interpreter whose import system refuses both imports it."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", _BLOCKED_IMPORT],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "isolated"


def test_the_blocking_finder_does_block() -> None:
    """The isolation test can fail: importing the client under the same finder raises."""
    script = _BLOCKED_IMPORT.replace(
        "import sayna_client.protocol\n",
        "import sayna_client.protocol\nimport sayna_client.client\n",
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode != 0
    assert "is blocked in this test" in done.stderr


@pytest.mark.parametrize(
    ("code", "by_client", "expected"),
    [
        (1001, False, True),
        (1006, False, True),
        (1011, False, True),
        (1012, False, True),
        (1013, False, True),
        (1014, False, True),
        (1000, False, False),
        (1005, False, False),  # the normal end of a LiveKit session
        (1007, False, False),  # a protocol violation no reconnect fixes
        (1009, False, False),
        (None, False, False),
        (1006, True, False),  # the client asked for the close
    ],
)
def test_which_closes_are_recoverable(code: int, by_client: bool, expected: bool) -> None:
    assert is_recoverable(code, initiated_by_client=by_client) is expected


def test_recoverable_codes_are_close_codes() -> None:
    assert all(isinstance(code, CloseCode) for code in RECOVERABLE_CLOSE_CODES)
    assert CloseCode.NO_STATUS_RECEIVED not in RECOVERABLE_CLOSE_CODES


def test_no_status_after_a_participant_left_is_a_normal_end() -> None:
    assert ends_normally(1005, initiated_by_client=False, peer_left=True)
    assert not ends_normally(1005, initiated_by_client=False, peer_left=False)
    assert not ends_normally(1006, initiated_by_client=False, peer_left=True)
    assert ends_normally(1006, initiated_by_client=True, peer_left=False)


def test_close_codes_as_received_and_as_recorded_for_our_own_close() -> None:
    assert received_close_code(0) == 1005  # a Close frame without a code
    assert received_close_code(None) == 1005
    assert received_close_code(4000) == 4000
    assert client_close_code(None) == 1000
    assert client_close_code(1006) == 1000
    assert client_close_code(1001) == 1001
    assert type(received_close_code(0)) is int  # reprs show numbers, not enum names


def test_what_ends_the_config_phase() -> None:
    assert config_answer("ready") is PhaseInput.READY_RECEIVED
    assert config_answer("error", "Unsupported provider: nope") is PhaseInput.CONFIG_REFUSED
    assert config_answer("error", "a text no server is known to send") is (
        PhaseInput.CONFIG_REFUSED
    )
    # A non-fatal config error and another command's error do not end it.
    assert config_answer("error", "unsupported loading audio format") is None
    assert config_answer("error", "LiveKit client not configured") is None
    assert config_answer("stt_result") is None


def test_the_phase_table() -> None:
    phase = Phase.CONNECTING
    phase = next_phase(phase, PhaseInput.CONFIG_SENT)
    assert phase is Phase.CONFIGURING
    assert next_phase(phase, PhaseInput.CONFIG_REFUSED) is Phase.REJECTED
    assert next_phase(Phase.REJECTED, PhaseInput.CONFIG_SENT) is Phase.CONFIGURING
    phase = next_phase(phase, PhaseInput.READY_RECEIVED)
    assert phase is Phase.READY
    # A late or unsolicited answer changes nothing; a close is final.
    assert next_phase(Phase.READY, PhaseInput.CONFIG_REFUSED) is Phase.READY
    assert next_phase(Phase.READY, PhaseInput.CONFIG_SENT) is Phase.CONFIGURING
    for before in Phase:
        assert next_phase(before, PhaseInput.CLOSED) is Phase.CLOSED
    for event in PhaseInput:
        assert next_phase(Phase.CLOSED, event) is Phase.CLOSED
    assert all(key[0] is not Phase.CLOSED for key in TRANSITIONS)
