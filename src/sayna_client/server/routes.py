"""Core REST routes (health, voices, speak, recording) and the ``/ws`` upgrade."""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import quote

from aiohttp import web

from .engines import EngineUnavailable
from .engines.output import synthesize
from .providers import (
    ProviderError,
    apply_pronunciations,
    content_type_for,
    engine_for_provider,
    tts_request,
    validate_auth,
)
from .schemas import SPEAK
from .session import Session
from .state import STATE_KEY, ServerState
from .validation import tts_build_error
from .web_util import Rejection, auth_id, error, json_response, read_json

__all__ = ["add_core_routes", "state_of"]


def state_of(request: web.Request) -> ServerState:
    """The server state attached to the application."""
    return request.app[STATE_KEY]


async def health(request: web.Request) -> web.Response:
    return json_response({"status": "OK"})


async def voices(request: web.Request) -> web.Response:
    catalogue = state_of(request).voices()
    return json_response(
        {
            provider: [voice.to_wire() for voice in entries]
            for provider, entries in catalogue.items()
        }
    )


async def speak(request: web.Request) -> web.Response:
    """``POST /speak``: whole clip synthesized, then returned with format headers."""
    state = state_of(request)
    body = await read_json(request, SPEAK)
    config: dict[str, Any] = body["tts_config"]
    text: str = body["text"]
    if not text.strip():
        return error(400, "Text cannot be empty")
    provider = config["provider"]
    try:
        engine_name = engine_for_provider(provider, state.config.engine)
        validate_auth(provider, config.get("auth"))
    except ProviderError as exc:
        return error(400, str(exc))
    problem = tts_build_error(config)
    if problem is not None:
        # 400 needs a request-scoped auth object and a configuration error (section 2).
        return error(
            400 if config.get("auth") else 500, f"Failed to create TTS provider: {problem}"
        )
    try:
        engine = state.engine(engine_name)
    except EngineUnavailable as exc:
        return error(500, f"Failed to create TTS provider: {exc}")
    text = apply_pronunciations(text, config.get("pronunciations") or [], substring_first=True)
    tts = tts_request(config, text)
    chunks: list[bytes] = []
    try:
        async for chunk, _seconds in synthesize(engine, tts):
            chunks.append(chunk)
    except Exception as exc:  # an engine failure, or a format it cannot produce
        return error(500, f"Failed to synthesize speech: {exc}")
    audio = b"".join(chunks)
    requested_format = config.get("audio_format")
    audio_format = requested_format if requested_format is not None else "linear16"
    requested_rate = config.get("sample_rate")
    return web.Response(
        body=audio,
        headers={
            "Content-Type": content_type_for(audio_format),
            "x-audio-format": audio_format,
            "x-sample-rate": str(requested_rate if requested_rate is not None else 24000),
        },
    )


async def recording(request: web.Request) -> web.Response:
    """``GET /recording/{stream_id}``: the session's recorded input (OGG, or WAV fallback)."""
    stream_id = request.match_info["stream_id"]
    if not stream_id or ".." in stream_id or "/" in stream_id:
        return error(400, "Invalid stream_id format")
    state = state_of(request)
    if not state.config.recording_storage:  # recording.rs:73-92
        return error(503, "Recording storage not configured")
    encoded = await state.recordings.encode(stream_id)
    if encoded is None:
        return error(404, f"Recording not found: {stream_id}")
    body, content_type, extension = encoded
    return web.Response(
        body=body,
        headers={
            "Content-Type": content_type,
            "Content-Disposition": content_disposition(f"{stream_id}.{extension}"),
        },
    )


def content_disposition(filename: str) -> str:
    """``attachment; filename="..."`` with the name quoted safely: ``"`` and ``\\`` escaped,
    control characters and non-ASCII replaced by ``_`` there, and the exact name in a
    ``filename*`` (RFC 6266) when it was changed."""
    safe = "".join("_" if ord(char) < 0x20 or ord(char) >= 0x7F else char for char in filename)
    quoted = safe.replace("\\", "\\\\").replace('"', '\\"')
    value = f'attachment; filename="{quoted}"'
    if safe != filename:
        exact = quote(filename.encode("utf-8", "replace"), safe="")
        value += f"; filename*=UTF-8''{exact}"
    return value


async def websocket(request: web.Request) -> web.StreamResponse:
    """``GET /ws``: authenticated by the middleware before the upgrade."""
    problem = _upgrade_problem(request)
    if problem is not None:
        return Rejection(400, problem).response()
    state = state_of(request)
    record = state.records.new_session(dict(request.headers), dict(request.query))
    tenant = auth_id(request)
    record.auth_id = tenant
    return await Session(state, request, record, tenant).run()


def _upgrade_problem(request: web.Request) -> Optional[str]:
    """axum's ``WebSocketUpgrade`` rejection text for a request that cannot upgrade."""
    headers = request.headers
    connection = {t.strip().lower() for t in headers.get("Connection", "").split(",")}
    if "upgrade" not in connection:
        return "Connection header did not include 'upgrade'"
    if headers.get("Upgrade", "").strip().lower() != "websocket":
        return "`Upgrade` header did not include 'websocket'"
    if headers.get("Sec-WebSocket-Version", "").strip() != "13":
        return "`Sec-WebSocket-Version` header did not include '13'"
    if not headers.get("Sec-WebSocket-Key"):
        return "`Sec-WebSocket-Key` header missing"
    return None


def add_core_routes(app: web.Application) -> None:
    app.router.add_get("/", health)
    app.router.add_get("/voices", voices)
    app.router.add_post("/speak", speak)
    app.router.add_get("/recording/{stream_id}", recording)
    app.router.add_get("/ws", websocket, allow_head=False)
