"""`sayna serve` (serve_main) and the pytest plugin of sayna_client.testing."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from helpers.serve import sayna_serve
from sayna_client.server import LocalServer
from sayna_client.server.cli import LOOP_NAMES, build_parser
from sayna_client.testing import running_server

pytest_plugins = ["pytester"]


def test_parser_defaults() -> None:
    args = build_parser().parse_args([])
    # host and port stay unset so a --config file can supply them (127.0.0.1:3001 else).
    assert (args.host, args.port, args.engine, args.api_key) == (None, None, "fake", None)
    assert (args.config, args.fast_tts) == (None, False)


async def test_serve_main_runs_until_interrupted(http: aiohttp.ClientSession) -> None:
    async with sayna_serve(env={"SAYNA_API_KEY": "env-key"}) as served:
        assert served.url.startswith("http://127.0.0.1:")
        async with http.get(served.url + "/voices") as response:
            assert response.status == 401
        headers = {"Authorization": "Bearer env-key"}
        async with http.get(served.url + "/voices", headers=headers) as response:
            assert response.status == 200
        served.process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(served.process.wait(), 30) == 0


@pytest.mark.parametrize("loop", LOOP_NAMES)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_serve_main_closes_the_sessions_on_sigterm_and_ctrl_c(
    http: aiohttp.ClientSession, signum: signal.Signals, loop: str
) -> None:
    """``docker stop``, systemd and ``kill`` send SIGTERM: it died of the signal (exit
    143, no close frame); now it stops as on Ctrl-C: sessions closed, exit 0. Ctrl-C
    closed no session on Python 3.9-3.10 (their ``asyncio.run``) nor on uvloop: it is
    handled by ``sayna serve`` itself now, on every loop."""
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    async with sayna_serve("--loop", loop) as served:
        async with http.ws_connect(served.ws_url) as ws:
            await ws.send_json({"type": "config", "audio": False})
            ready = await asyncio.wait_for(ws.receive_json(), 30)
            assert ready["type"] == "ready"
            served.process.send_signal(signum)
            message = await asyncio.wait_for(ws.receive(), 30)
            while message.type is aiohttp.WSMsgType.TEXT:  # events sent before the close
                message = await asyncio.wait_for(ws.receive(), 30)
            # A close frame (going away), not a dropped connection (CLOSED / ERROR).
            assert message.type is aiohttp.WSMsgType.CLOSE
            assert message.data == 1001
        assert await asyncio.wait_for(served.process.wait(), 30) == 0


async def test_running_server_context_manager(http: aiohttp.ClientSession) -> None:
    async with running_server(api_key="k") as server:
        assert isinstance(server, LocalServer)
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.ws_url == f"ws://127.0.0.1:{server.port}/ws"
        async with http.get(server.url + "/") as response:
            assert response.status == 200
    with pytest.raises(aiohttp.ClientConnectionError):
        async with http.get(server.url + "/"):
            pass
    with pytest.raises(RuntimeError):
        _ = LocalServer().port


def test_plugin_fixture_for_users(pytester: pytest.Pytester) -> None:
    pytester.makeconftest('pytest_plugins = ["sayna_client.testing"]\n')
    pytester.makepyfile(
        """
        import aiohttp

        async def test_uses_fixture(sayna_server):
            async with aiohttp.ClientSession() as http:
                async with http.get(sayna_server.url + "/voices") as response:
                    assert response.status == 200
            assert sayna_server.records.requests[0].path == "/voices"
        """
    )
    result = pytester.runpytest_subprocess("-p", "asyncio", "-o", "asyncio_mode=auto")
    result.assert_outcomes(passed=1)
