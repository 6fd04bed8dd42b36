"""``/_local/bench/...``: control endpoints for benchmarks and load tests (local server only).

A benchmark client runs in another process than the server, so it reads the server's
per-session counters and makes the server push traffic over HTTP. Like every
``/_local`` route these are authenticated like the rest of the server.

=========================================  ==============================================
``GET  /_local/bench/sessions``            per-session counters (``?stream_id=`` filters):
                                           ``{"sessions": [{"stream_id", "open",
                                           "audio_frames", "audio_bytes",
                                           "sent_audio_frames", "sent_events", "closed",
                                           "close_code"}]}``, oldest first
``POST /_local/bench/{stream_id}/burst``   push frames to that open session: ``{"kind":
                                           "audio"|"stt"|"turn", "count", "size"?: 640,
                                           "interval_ms"?: 0}``; answers 202 at once
``POST /_local/bench/reset``               forget recorded requests and sessions (memory
                                           of long runs); open sessions keep counting
=========================================  ==============================================

A burst goes through the session's outbound FIFO (:meth:`Session.send`), so it is ordered
with the session's other frames and recorded like them. ``audio`` frames are ``size``
bytes of silence. ``stt`` frames are interim ``stt_result`` events carrying an extra field
``"sent_ns": time.monotonic_ns()`` taken when the frame is queued; the transcript holds the
same number as text, for clients that drop unknown fields. ``turn`` frames are the end of
a user turn as a session's STT ends one: a final ``stt_result`` that is also the
speech-final, transcript ``"okay"``, with the same ``sent_ns``. Clients on the same machine
share the monotonic clock, so ``monotonic_ns() - sent_ns`` on arrival is the delivery
latency. With ``interval_ms`` 0 the frames are queued as fast as the writer drains them;
otherwise one is queued every ``interval_ms`` on an absolute schedule (no drift).
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from aiohttp import web

from .state import STATE_KEY, ServerState
from .web_util import error, json_response, read_object

if TYPE_CHECKING:
    from .records import SessionRecord
    from .session import Session

__all__ = ["add_bench_routes"]

MAX_BURST_FRAMES = 10_000_000
MAX_BURST_FRAME_BYTES = 1 << 20
MAX_INTERVAL_MS = 60_000.0
#: Frames queued between yields to the loop, so the writer starts sending at once and
#: the queue stays short in unpaced bursts.
_BATCH = 256


def _state(request: web.Request) -> ServerState:
    return request.app[STATE_KEY]


def _session_info(record: SessionRecord, open_ids: set[int]) -> dict[str, Any]:
    return {
        "stream_id": record.stream_id,
        "open": id(record) in open_ids,
        "audio_frames": record.audio_frames,
        "audio_bytes": record.audio_bytes,
        "sent_audio_frames": record.sent_audio_frames,
        "sent_audio_bytes": record.sent_audio_bytes,
        "sent_events": record.sent_events,
        "closed": record.closed.is_set(),
        "close_code": record.close_code,
    }


async def list_sessions(request: web.Request) -> web.Response:
    state = _state(request)
    wanted = request.query.get("stream_id")
    open_ids = {id(session.record) for session in state.sessions}
    sessions = [
        _session_info(record, open_ids)
        for record in state.records.sessions
        if wanted is None or record.stream_id == wanted
    ]
    return json_response({"sessions": sessions})


async def reset(request: web.Request) -> web.Response:
    _state(request).records.clear()
    return json_response({"status": "cleared"})


def _open_session(state: ServerState, stream_id: str) -> Optional[Session]:
    for session in state.sessions:
        if session.stream_id == stream_id and session.out.accepting:
            return session
    return None


def _int(body: dict[str, Any], key: str, default: Optional[int], low: int, high: int) -> int:
    value = body.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"'{key}' must be an integer from {low} to {high}"}),
            content_type="application/json",
        )
    return value


async def burst(request: web.Request) -> web.Response:
    body = await read_object(request)
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in _KINDS:
        return error(400, '\'kind\' must be "audio", "stt" or "turn"')
    count = _int(body, "count", None, 1, MAX_BURST_FRAMES)
    size = _int(body, "size", 640, 1, MAX_BURST_FRAME_BYTES)
    interval = body.get("interval_ms", 0)
    if (
        isinstance(interval, bool)
        or not isinstance(interval, (int, float))
        or not 0 <= interval <= MAX_INTERVAL_MS
    ):
        return error(400, f"'interval_ms' must be a number from 0 to {MAX_INTERVAL_MS:g}")
    state = _state(request)
    stream_id = request.match_info["stream_id"]
    session = _open_session(state, stream_id)
    if session is None:
        return error(404, f"No open session with stream_id '{stream_id}'")
    state.spawn(_push(session, kind, count, size, interval / 1000.0))
    return json_response({"status": "queued", "count": count}, status=202)


def _stt_frame() -> dict[str, Any]:
    """An interim result whose transcript is its ``sent_ns``."""
    sent_ns = time.monotonic_ns()
    return {
        "type": "stt_result",
        "transcript": str(sent_ns),
        "is_final": False,
        "is_speech_final": False,
        "confidence": 0.9,
        "sent_ns": sent_ns,
    }


def _turn_frame() -> dict[str, Any]:
    """The end of a user turn: a final result that is also the speech-final."""
    return {
        "type": "stt_result",
        "transcript": "okay",
        "is_final": True,
        "is_speech_final": True,
        "confidence": 0.9,
        "sent_ns": time.monotonic_ns(),
    }


#: What each burst ``kind`` pushes: a frame maker (None: audio, ``size`` bytes of silence).
_KINDS: dict[str, Optional[Callable[[], dict[str, Any]]]] = {
    "audio": None,
    "stt": _stt_frame,
    "turn": _turn_frame,
}


async def _push(session: Session, kind: str, count: int, size: int, interval: float) -> None:
    """Queue ``count`` frames of ``kind`` on the session's outbound FIFO (see the module
    docstring)."""
    audio = bytes(size)
    event = _KINDS[kind]
    if interval <= 0:
        for index in range(count):
            if not session.out.accepting:
                return
            session.send(event() if event is not None else audio)
            if index % _BATCH == _BATCH - 1:
                if session.out.full:
                    await session.out.wait_space()  # as fast as the writer drains them
                else:
                    await asyncio.sleep(0)
        return
    loop = asyncio.get_running_loop()
    start = loop.time()
    for index in range(count):
        delay = start + index * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        if not session.out.accepting:
            return
        session.send(event() if event is not None else audio)


def add_bench_routes(app: web.Application) -> None:
    app.router.add_get("/_local/bench/sessions", list_sessions)
    app.router.add_post("/_local/bench/reset", reset)
    app.router.add_post("/_local/bench/{stream_id}/burst", burst)
