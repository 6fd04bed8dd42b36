"""What a newcomer meets in the first hour of library use: errors that say what the
server said and what to change, in the caller's terms."""

from __future__ import annotations

from typing import Optional

import pytest

from sayna_client import SaynaAuthenticationError, SaynaClient
from sayna_client.server import LocalServer

from .conftest import stt, tts


@pytest.mark.parametrize(
    ("key", "server_reason", "fix"),
    [
        (
            "wrong",
            "Unauthorized: Invalid API secret",
            "the server refused the API key: pass the right one as api_key= or SAYNA_API_KEY",
        ),
        (
            None,
            "Missing authentication token",
            "the server requires an API key: pass api_key= or set SAYNA_API_KEY",
        ),
    ],
)
async def test_auth_errors_give_the_servers_reason_and_the_fix(
    auth_server: LocalServer, key: Optional[str], server_reason: str, fix: str
) -> None:
    async with SaynaClient(auth_server.url, stt(), tts(), api_key=key) as client:
        with pytest.raises(SaynaAuthenticationError) as rest:
            await client.get_voices()
        with pytest.raises(SaynaAuthenticationError) as ws:
            await client.connect()
    for error in (rest.value, ws.value):
        assert server_reason in str(error)
        assert str(error).endswith(fix)
        assert error.status_code == 401
        assert isinstance(error.body, dict)
        assert server_reason in error.body["message"]
    assert ws.value.endpoint == "GET /ws"
    assert ws.value.code in ("unauthorized", "missing_auth_header")
