"""A missing framework extra is named in the ImportError, whatever Python runs the tests."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECK = """
import sys
sys.modules[{blocked!r}] = None  # the framework is not installed
try:
    import {module}
except ImportError as exc:
    print(exc)
"""


@pytest.mark.parametrize(
    ("module", "blocked", "message"),
    [
        (
            "sayna_client.integrations.pipecat",
            "pipecat",
            "needs Pipecat: pip install 'sayna-client[pipecat]' (Python 3.11 or newer)",
        ),
        (
            "sayna_client.integrations.livekit",
            "livekit.agents",
            "needs LiveKit Agents: pip install 'sayna-client[livekit]' (Python 3.10 or newer)",
        ),
    ],
)
def test_missing_extra_is_named(module: str, blocked: str, message: str) -> None:
    code = CHECK.format(module=module, blocked=blocked)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == f"{module} {message}"
