"""The session writer: queued frames leave in order and intact, batched or not."""

from __future__ import annotations

import aiohttp

from helpers import internals
from helpers.wire import configure, recv
from sayna_client.server import LocalServer
from sayna_client.server.outbound import BATCH_FRAMES, Raw


async def test_queued_frames_leave_in_order_and_intact(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url, max_msg_size=0) as ws:
        await configure(ws)
        (session,) = internals.server_state(server).sessions
        # Every header length (7-bit, 16-bit, 64-bit), text and binary mixed, a Raw frame
        # (sent alone) in the middle, and more frames than one batch holds.
        sizes = [1, 125, 126, 65535, 65536, 300_000]
        expected: list[object] = [bytes([n % 251]) * n for n in sizes]
        expected += [{"type": "stt_result", "transcript": "héllo", "n": 1}, b"\x01\x02"]
        expected += [Raw('{"type":"raw"}')]
        expected += [bytes([i % 256]) * 640 for i in range(BATCH_FRAMES + 10)]
        expected += [{"type": "message", "n": 2}]
        for item in expected:
            session.send(item)  # type: ignore[arg-type]
        received = [await recv(ws) for _ in expected]
    wanted = [{"type": "raw"} if isinstance(item, Raw) else item for item in expected]
    assert received == wanted
    record = server.records.last_session
    audio = [item for item in expected if isinstance(item, bytes)]
    assert record.sent_audio_frames == len(audio)
    assert record.sent_audio_bytes == sum(len(item) for item in audio)
