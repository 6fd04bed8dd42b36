"""The client's read-only attributes are read-only to a type checker too.

``client.ready = True`` raises ``AttributeError`` at run time; a user's ``mypy --strict``
run must refuse it as well, while the writable settings stay assignable with their own
types (``client.stt_config = STTConfig(...)``).
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

import sayna_client

mypy_api = pytest.importorskip("mypy.api")

USER_CODE = textwrap.dedent(
    """
    from sayna_client import SaynaClient, SaynaSyncClient, STTConfig, Timeouts

    def configure(client: SaynaClient, sync: SaynaSyncClient) -> None:
        client.stt_config = STTConfig(provider="deepgram")  # writable
        client.heartbeat = 5.0
        client.stream_id = None
        client.audio_output = None
        client.timeouts = Timeouts(connect=5)
        ready: bool = client.ready  # reads keep their types
        client.ready = True  # refused
        client.connected = False  # refused
        client.metrics = client.metrics  # refused
        client.livekit_url = "wss://example"  # refused
        sync.stream_id = "call-1"  # refused
        client.heartbeat = "5"  # refused (the wrong type)
    """
)


def test_mypy_refuses_assigning_read_only_attributes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "user.py").write_text(USER_CODE, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    # The package under test, not whatever copy site-packages may hold.
    monkeypatch.setenv("MYPYPATH", str(Path(sayna_client.__file__).parent.parent))
    out, err, _status = mypy_api.run(
        ["--strict", "--cache-dir", str(tmp_path / "cache"), "user.py"]
    )
    refused = sorted(int(n) for n in re.findall(r"^user\.py:(\d+): error", out, re.MULTILINE))
    marked = [n for n, line in enumerate(USER_CODE.splitlines(), 1) if "# refused" in line]
    assert len(marked) == 6
    assert refused == marked, out + err
