"""``/sip/*`` REST routes (sections 3.10 to 3.12) over the simulated LiveKit."""

from __future__ import annotations

from aiohttp import web

from .livekit import Participant, new_id
from .routes import state_of
from .schemas import DELETE_HOOKS, POST_HOOKS, SIP_CALL, SIP_TRANSFER
from .sip import HookError, validate_phone
from .web_util import auth_id, error, error_code, json_response, read_json

__all__ = ["add_sip_routes"]

INVALID_PHONE = "INVALID_PHONE_NUMBER"


async def sip_call(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, SIP_CALL)
    for key, label in (
        ("room_name", "Room name"),
        ("participant_name", "Participant name"),
        ("participant_identity", "Participant identity"),
    ):
        if not body[key].strip():
            return error_code(400, f"{label} cannot be empty", INVALID_PHONE)
    numbers = {}
    for key in ("to_phone_number", "from_phone_number"):
        try:
            numbers[key] = validate_phone(body[key])
        except ValueError as exc:
            return error_code(400, f"Invalid {key}: {exc}", INVALID_PHONE)
    overrides = body.get("sip") or {}
    if not (overrides.get("outbound_address") or state.config.sip_outbound_address):
        return error_code(500, "Outbound address not configured", "OUTBOUND_ADDRESS_NOT_CONFIGURED")
    if not state.config.livekit_configured:
        return error_code(500, "LiveKit SIP service not configured", "LIVEKIT_NOT_CONFIGURED")
    tenant = auth_id(request)
    room_name = body["room_name"]
    existing = state.livekit.rooms.get(room_name)
    if existing is not None and tenant is not None and existing.auth_id != tenant:
        return error_code(404, "Room not found or not accessible", "ROOM_ACCESS_DENIED")
    # LiveKit's SIP service creates a missing room itself (LiveKit defaults, no owner).
    room = existing or state.livekit.ensure_room(room_name, None, sayna=False)
    participant = Participant(
        identity=body["participant_identity"],
        name=body["participant_name"],
        kind="SIP",
        attributes={
            "sip.phoneNumber": body["to_phone_number"].strip(),
            "sip.trunkPhoneNumber": body["from_phone_number"].strip(),
            "sip.callStatus": "dialing",
        },
    )
    state.participant_joined(room, participant)
    if tenant is not None:
        room.set_auth_id(tenant)
    return json_response(
        {
            "status": "initiated",
            "room_name": room_name,
            "participant_identity": participant.identity,
            "participant_id": participant.sid,
            "sip_call_id": new_id("SCL_"),
        }
    )


async def sip_transfer(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, SIP_TRANSFER)
    try:
        target = validate_phone(body["transfer_to"])
    except ValueError as exc:
        return error_code(400, f"Invalid phone number: {exc}", INVALID_PHONE)
    room_name, identity = body["room_name"], body["participant_identity"]
    if not room_name.strip():
        return error_code(400, "Room name cannot be empty", INVALID_PHONE)
    if not state.config.livekit_configured:
        return error_code(500, "LiveKit SIP service not configured", "LIVEKIT_NOT_CONFIGURED")
    room = state.livekit.accessible(room_name, auth_id(request))
    if room is None:
        return error_code(404, "Room not found or not accessible", "ROOM_ACCESS_DENIED")
    if not identity.strip():
        return error_code(400, "Participant identity cannot be empty", "PARTICIPANT_NOT_FOUND")
    participant = room.participants.get(identity)
    if participant is None or participant.kind != "SIP":
        return error_code(
            404,
            f"Participant '{identity}' not found or is not a SIP participant",
            "PARTICIPANT_NOT_FOUND",
        )
    state.transfer_sip(room, participant, target)
    return json_response(
        {
            "status": "completed",
            "room_name": room_name,
            "participant_identity": identity,
            "transfer_to": target,
        }
    )


def _hooks_response(request: web.Request) -> web.Response:
    hooks = state_of(request).hooks.merged()
    return json_response({"hooks": [hook.to_wire() for hook in hooks]})


async def get_hooks(request: web.Request) -> web.Response:
    return _hooks_response(request)


async def post_hooks(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, POST_HOOKS)
    try:
        state.hooks.upsert(
            body.get("hooks") or [], auth_required=state.auth.required, allowed=state.hook_hosts
        )
    except HookError as exc:
        return error(exc.status, exc.message)
    return _hooks_response(request)


async def delete_hooks(request: web.Request) -> web.Response:
    state = state_of(request)
    body = await read_json(request, DELETE_HOOKS)
    try:
        state.hooks.delete(body.get("hosts") or [])
    except HookError as exc:
        return error(exc.status, exc.message)
    return _hooks_response(request)


def add_sip_routes(app: web.Application) -> None:
    app.router.add_post("/sip/call", sip_call)
    app.router.add_post("/sip/transfer", sip_transfer)
    app.router.add_get("/sip/hooks", get_hooks)
    app.router.add_post("/sip/hooks", post_hooks)
    app.router.add_delete("/sip/hooks", delete_hooks)
