"""``/livekit/*`` REST routes over the in-memory LiveKit (sections 3.4 to 3.8, 3.13)."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from aiohttp import web

from .livekit import AccessDenied, Participant, Room, access_token, verify_token
from .routes import state_of
from .schemas import MUTE, REMOVE_PARTICIPANT, TOKEN
from .web_util import (
    Rejection,
    auth_id,
    error,
    error_code,
    json_response,
    keep_body,
    read_body,
    read_json,
)

__all__ = ["add_livekit_routes"]

NOT_CONFIGURED = "LiveKit service not configured"


async def token(request: web.Request) -> web.Response:
    state = state_of(request)
    if not state.config.livekit_configured:
        return error(500, NOT_CONFIGURED)
    body = await read_json(request, TOKEN)
    for key in ("room_name", "participant_name", "participant_identity"):
        if not body[key].strip():
            return error(400, f"Invalid request: {key} cannot be empty")
    tenant = auth_id(request)
    if tenant is not None:
        try:
            state.livekit.ensure_room(body["room_name"], tenant)
        except AccessDenied:
            return error(403, "Access denied: room belongs to a different tenant")
    jwt = access_token(
        state.config.livekit_api_key,
        state.config.livekit_api_secret,
        identity=body["participant_identity"],
        name=body["participant_name"],
        room=body["room_name"],
    )
    return json_response(
        {
            "token": jwt,
            "room_name": body["room_name"],
            "participant_identity": body["participant_identity"],
            "livekit_url": state.config.livekit_url,
        }
    )


async def list_rooms(request: web.Request) -> web.Response:
    state = state_of(request)
    if not state.config.livekit_configured:
        return error(500, NOT_CONFIGURED)
    rooms = state.livekit.list_rooms(auth_id(request))
    return json_response({"rooms": [room.to_info() for room in rooms]})


async def room_details(request: web.Request) -> web.Response:
    state = state_of(request)
    name = request.match_info["room_name"]
    if not name.strip():
        return error(400, "Room name cannot be empty")
    if not state.config.livekit_configured:
        return error(500, NOT_CONFIGURED)
    tenant = auth_id(request)
    room = state.livekit.rooms.get(name)
    if room is None:
        return error(404, f"Room '{name}' not found")
    if state.livekit.accessible(name, tenant) is None:
        return error(404, f"Room '{name}' not found or not accessible")
    return json_response(room.to_details())


async def remove_participant(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, REMOVE_PARTICIPANT)
    room_name, identity = body["room_name"], body["participant_identity"]
    if not room_name.strip():
        return error_code(400, "Room name cannot be empty", "INVALID_REQUEST")
    if not identity.strip():
        return error_code(400, "Participant identity cannot be empty", "INVALID_REQUEST")
    if not state.config.livekit_configured:
        return error_code(500, NOT_CONFIGURED, "LIVEKIT_NOT_CONFIGURED")
    room = state.livekit.accessible(room_name, auth_id(request))
    if room is None:
        return error_code(
            404, f"Room '{room_name}' not found or not accessible", "PARTICIPANT_NOT_FOUND"
        )
    if identity not in room.participants:
        return error_code(
            404,
            f"Participant '{identity}' not found in room '{room_name}'",
            "PARTICIPANT_NOT_FOUND",
        )
    state.livekit.leave(room, identity)
    return json_response(
        {"status": "removed", "room_name": room_name, "participant_identity": identity}
    )


async def mute_track(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, MUTE)
    room_name, identity, track_sid = (
        body["room_name"],
        body["participant_identity"],
        body["track_sid"],
    )
    for value, label in (
        (room_name, "Room name"),
        (identity, "Participant identity"),
        (track_sid, "Track SID"),
    ):
        if not value.strip():
            return error_code(400, f"{label} cannot be empty", "INVALID_REQUEST")
    if not state.config.livekit_configured:
        return error_code(500, NOT_CONFIGURED, "LIVEKIT_NOT_CONFIGURED")
    room = state.livekit.accessible(room_name, auth_id(request))
    if room is None:
        return error_code(
            404, f"Room '{room_name}' not found or not accessible", "PARTICIPANT_NOT_FOUND"
        )
    participant = room.participants.get(identity)
    track = (
        next((t for t in participant.tracks if t.sid == track_sid), None) if participant else None
    )
    if track is None:
        return error_code(
            404,
            f"Track '{track_sid}' or participant '{identity}' not found in room '{room_name}'",
            "PARTICIPANT_NOT_FOUND",
        )
    track.muted = bool(body["muted"])
    state.records.touch()
    return json_response(
        {
            "room_name": room_name,
            "participant_identity": identity,
            "track_sid": track_sid,
            "muted": track.muted,
        }
    )


async def livekit_webhook(request: web.Request) -> web.Response:
    """LiveKit -> Sayna: a JWT-signed webhook; ``participant_joined`` of a SIP caller is
    forwarded to the matching SIP hook (section 9). Errors have empty bodies."""
    state = state_of(request)
    if not state.config.livekit_configured:
        return web.Response(status=503)
    header = request.headers.get("Authorization", "").strip()
    header = header[len("Bearer ") :] if header.startswith("Bearer ") else header
    if not header:
        return web.Response(status=401)
    try:
        raw = await read_body(request)
    except Rejection as exc:
        return web.Response(status=exc.status)
    try:
        claims = verify_token(header, state.config.livekit_api_key, state.config.livekit_api_secret)
    except ValueError:
        return web.Response(status=401)
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode()
    if claims.get("sha256") != digest:
        return web.Response(status=401)
    keep_body(request, raw)  # only now: it came from whoever holds the LiveKit secret
    try:
        event = json.loads(raw.decode("utf-8"))
    except ValueError:
        return web.Response(status=400)
    if not _is_webhook_event(event):
        return web.Response(status=400)
    participant = event.get("participant")
    room_info = event.get("room") or {}
    if event.get("event") == "participant_joined" and participant is not None:
        name = room_info.get("name") or ""
        room = state.livekit.rooms.get(name) or Room(name, sid=room_info.get("sid") or "")
        joined = Participant(
            identity=participant.get("identity") or "",
            name=participant.get("name") or "",
            sid=participant.get("sid") or "",
            kind="SIP",
            attributes=dict(participant.get("attributes") or {}),
        )
        state.forward_sip_webhook(room, joined, event_id=event.get("id") or None)
    return json_response({"status": "received"})


def _strings(value: Any, *keys: str) -> bool:
    """``keys`` of the object ``value`` are strings where present (null: absent)."""
    return all(isinstance(value.get(key), (str, type(None))) for key in keys)


def _is_webhook_event(event: Any) -> bool:
    """Whether ``event`` has the types of LiveKit's ``WebhookEvent`` in the fields this
    server reads, as Sayna's parser (serde, protobuf JSON) requires of them: else 400."""
    if not isinstance(event, dict) or not _strings(event, "event", "id"):
        return False
    room = event.get("room")
    if room is not None and not (isinstance(room, dict) and _strings(room, "name", "sid")):
        return False
    participant = event.get("participant")
    if participant is None:
        return True
    if not isinstance(participant, dict) or not _strings(participant, "identity", "name", "sid"):
        return False
    attributes = participant.get("attributes")
    return attributes is None or (
        isinstance(attributes, dict) and all(isinstance(v, str) for v in attributes.values())
    )


def add_livekit_routes(app: web.Application) -> None:
    app.router.add_post("/livekit/token", token)
    app.router.add_get("/livekit/rooms", list_rooms)
    app.router.add_get("/livekit/rooms/{room_name}", room_details)
    app.router.add_delete("/livekit/participant", remove_participant)
    app.router.add_post("/livekit/participant/mute", mute_track)
    app.router.add_post("/livekit/webhook", livekit_webhook)
