"""``finish_audio()`` cut short by the session's end raises the end's error, and leaves no
"Future exception was never retrieved" behind (``sayna talk`` printed one after its
error line when the connection dropped while it ended the caller's audio).

The peer answers ``ready`` and then never reads (see ``test_silent_peer``): a send of
``finish_audio()``'s silence waits for it, the keepalive declares it dead, which fails
the call's wait for the next speech-final, and the send raises first."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

from sayna_client import SaynaClient, SaynaConnectionClosedError, Timeouts

from .conftest import stt, tts
from .test_silent_peer import FRAME, SilentPeer


async def _sends_until_one_waits(client: SaynaClient) -> asyncio.Future[None]:
    """Send frames until one waits for the peer (the socket is full); that send."""
    while True:
        send = asyncio.ensure_future(client.on_audio_input(FRAME))
        await asyncio.sleep(0)  # a send the socket takes is done by now
        if not send.done():
            return send
        send.result()


async def _failure(task: asyncio.Future[Any]) -> BaseException:
    try:
        await asyncio.wait_for(task, 30)
    except Exception as exc:
        return exc
    raise AssertionError("it did not raise")


async def test_finish_audio_ended_by_the_close_leaves_no_unretrieved_future() -> None:
    loop = asyncio.get_running_loop()
    reported: list[dict[str, Any]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _loop, context: reported.append(context))
    try:
        async with SilentPeer().running() as peer:
            client = SaynaClient(
                peer.url, stt(), tts(), heartbeat=0.6, timeouts=Timeouts(close=0.5, drain=0.5)
            )
            await client.connect()
            await peer.silent.wait()
            blocked = await _sends_until_one_waits(client)
            finishing = asyncio.ensure_future(client.finish_audio(timeout=30))
            errors = [await _failure(blocked), await _failure(finishing)]
            assert [type(e) for e in errors] == [SaynaConnectionClosedError] * 2, errors
            assert "no pong" in str(errors[1])
            del blocked, finishing, errors  # their tracebacks hold the call's frames
            gc.collect()
            await client.disconnect()
            await peer.released()
        gc.collect()
    finally:
        loop.set_exception_handler(previous)
    assert [c.get("message") for c in reported] == []
