"""The client's commands after ``config``, and :data:`HANDLERS`, the dispatch table.

Each handler takes the session and the parsed message (the parser admits only the types
of ``schemas.CLIENT_MESSAGES``, each with its fields checked) and answers as the real
server does: an ``error`` frame for a command the session's state does not allow.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Callable

from .providers import apply_pronunciations, tts_request
from .session_config import on_config
from .sip import validate_phone

if TYPE_CHECKING:  # the session imports this module: its type only
    from .session import Session

__all__ = ["AUDIO_DISABLED", "HANDLERS", "NO_LIVEKIT", "NO_VOICE_MANAGER"]

AUDIO_DISABLED = "Audio processing is disabled. Send config message with audio=true first."
NO_VOICE_MANAGER = "Voice manager not configured. Send config message with audio=true first."
NO_LIVEKIT = "LiveKit client not configured. Send config message with livekit configuration first."


async def on_speak(session: Session, message: dict[str, Any]) -> None:
    """``speak``: queue the text (with the config's pronunciations) for synthesis."""
    if not session.audio:
        session.error(AUDIO_DISABLED)
        return
    if session.tts is None:
        session.error(NO_VOICE_MANAGER)
        return
    config = session.tts_config
    text = apply_pronunciations(message["text"], config.get("pronunciations") or [])
    allow = message.get("allow_interruption")
    # Google TTS synthesizes here, holding up the frames after this one (6.2).
    await session.tts.speak(tts_request(config, text), True if allow is None else bool(allow))


async def on_clear(session: Session, message: dict[str, Any]) -> None:
    """``clear``: drop queued and playing speech (ignored when audio is off)."""
    if not session.audio:
        return
    if session.tts is None:
        session.error(NO_VOICE_MANAGER)
        return
    await session.tts.clear()


async def on_send_message(session: Session, message: dict[str, Any]) -> None:
    """``send_message``: publish a data packet to the room from the session's agent."""
    room, agent = session.room, session.agent
    if room is None or agent is None:
        session.error(NO_LIVEKIT)
        return
    # serde_json's json!() object is a BTreeMap: its keys (and the debug value's) come
    # out sorted (operation_worker.rs:272-277).
    payload = json.dumps(
        {"message": message["message"], "role": message["role"], "debug": message.get("debug")},
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=True,
    ).encode()
    topic = message.get("topic")
    topic = "messages" if topic is None else topic  # unwrap_or: "" stays ""
    session.state.publish_data(room, agent.identity, payload, topic)


async def on_sip_transfer(session: Session, message: dict[str, Any]) -> None:
    """``sip_transfer``: transfer the room's SIP caller (who then leaves the room), or send
    ``sip_transfer_error`` saying why not."""

    def fail(text: str) -> None:
        session.send({"type": "sip_transfer_error", "message": text})

    try:
        target = validate_phone(message["transfer_to"])
    except ValueError as exc:
        fail(f"Invalid phone number: {exc}")
        return
    if not session.livekit_requested or session.room is None or session.agent is None:
        fail("Room name not available. Ensure LiveKit is configured.")
        return
    state = session.state
    if not state.config.livekit_configured:
        fail(NO_LIVEKIT)
        return
    room = state.livekit.rooms.get(session.room.name)
    if room is None:
        fail("SIP transfer failed: Room not found")
        return
    if session.auth_id is not None and room.auth_id != session.auth_id:
        fail("SIP transfer failed: Room not accessible")
        return
    agent_identity = session.agent.identity
    sip = next(
        (p for p in room.participants.values() if p.kind == "SIP" and p.identity != agent_identity),
        None,
    )
    if sip is None:
        fail("No SIP participant found in room to transfer")
        return
    state.transfer_sip(room, sip, target)


async def on_update_config(session: Session, message: dict[str, Any]) -> None:
    """``update_config``: set the turn-detection threshold (from 0.0 to 1.0)."""
    turn_detect = message.get("turn_detect")
    value = turn_detect.get("threshold") if turn_detect is not None else None
    if value is None:  # omitted or null: nothing to change, no answer (config.rs:33-39)
        return
    threshold = float(value)
    if not 0.0 <= threshold <= 1.0:
        shown = repr(threshold)[:-2] if repr(threshold).endswith(".0") else repr(threshold)
        session.error(f"Invalid turn detection threshold: {shown}. Must be between 0.0 and 1.0")
        return
    session.state.turn_detect_threshold = threshold


async def on_loading_start(session: Session, message: dict[str, Any]) -> None:
    """``loading_start``: play the loading clip, or say which precondition is missing
    (loading_handler.rs: a decode error of the config's clip is replayed; without a
    LiveKit client, i.e. no room joined, the room is asked for)."""
    room, agent = session.room, session.agent
    if not session.configured:
        session.error("Send a config message first before using loading_start.")
    elif not session.audio:
        session.error(
            "Loading indicator requires audio to be enabled. Send a config message with audio=true."
        )
    elif session.loading_error is not None:
        session.error(session.loading_error)
    elif room is None or agent is None:
        session.error(
            "Loading indicator requires a LiveKit room. Include a livekit configuration in "
            "your config message."
        )
    elif room.participants.get(agent.identity) is not agent:
        session.error(
            "loading indicator requires an active LiveKit connection; connect to a room first"
        )
    elif session.loading_clip is None:
        session.error("no loading audio configured")
    else:
        session.loading_active = True


async def on_loading_stop(session: Session, message: dict[str, Any]) -> None:
    """``loading_stop``: stop the loading clip (always accepted)."""
    session.loading_active = False


#: The handler of each client message type (the keys of ``schemas.CLIENT_MESSAGES``, the
#: only types the parser lets through). A new message type is a schema plus a line here.
HANDLERS: dict[str, Callable[[Session, dict[str, Any]], Awaitable[None]]] = {
    "config": on_config,
    "speak": on_speak,
    "clear": on_clear,
    "send_message": on_send_message,
    "sip_transfer": on_sip_transfer,
    "update_config": on_update_config,
    "loading_start": on_loading_start,
    "loading_stop": on_loading_stop,
}
