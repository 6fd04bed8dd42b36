"""The ``config`` message: a session's voice manager, room, loading clip and recording.

Each step runs in the real server's order and reports a failure as an ``error`` frame
(the session stays open, unconfigured for what failed); ``ready`` ends a success.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Optional

from .engines import EngineUnavailable
from .faults import MALFORMED_FRAMES
from .livekit import AccessDenied, Participant, Track, access_token, new_id
from .loading import LoadingError, decode_loading_audio
from .outbound import Close, Raw
from .providers import ProviderError, engine_for_provider, stt_params, validate_auth
from .recording import track_rate
from .session_room import RoomEvents
from .validation import ConfigRejected, check_voice_config
from .voice import SpeechFinalGate, TTSPipeline

if TYPE_CHECKING:  # the session imports this module (through HANDLERS): its type only
    from .session import Session

__all__ = ["on_config"]

logger = logging.getLogger("sayna_client.server")


async def on_config(session: Session, message: dict[str, Any]) -> None:
    """Configure ``session`` from a parsed ``config`` message, then send ``ready``."""
    faults = session.faults
    if faults.close_after_config:
        session.send(Close(faults.close_code))
        return
    if faults.reject_config_error is not None:
        session.error(faults.reject_config_error)
        return
    audio = message.get("audio")
    audio = True if audio is None else bool(audio)
    stt_config: Optional[dict[str, Any]] = message.get("stt_config")
    tts_config: Optional[dict[str, Any]] = message.get("tts_config")
    livekit: Optional[dict[str, Any]] = message.get("livekit")
    if audio and stt_config is None:
        session.error("STT configuration is required when audio=true")
        return
    if audio and tts_config is None:
        session.error("TTS configuration is required when audio=true")
        return
    # Sayna stores these before it builds providers (6.2): a failure below keeps them.
    session.configured = True
    session.audio = audio
    stream_id = message.get("stream_id")
    session.stream_id = stream_id if stream_id is not None else str(uuid.uuid4())
    session.record.stream_id = session.stream_id
    session.livekit_requested = livekit is not None
    _configure_loading(session, message.get("loading_audio"), audio, livekit is not None)
    voice: Optional[_Voice] = None
    if audio:
        assert stt_config is not None
        assert tts_config is not None
        voice = _build_voice(session, stt_config, tts_config)
        if voice is None:
            # A re-config that fails here leaves the previous voice manager (and room)
            # working, as on Sayna, which replaces them only with a new one (6.2, 6.11).
            return
    # The new voice manager replaces the previous one before LiveKit setup (6.2).
    await session.release_voice()
    if voice is not None:
        _install_voice(session, voice)
    if livekit is None:
        session.leave_room(delete=False)
    elif not _join_room(session, livekit, audio):
        return
    if session.loading_clip is not None and tts_config is not None:
        _convert_loading_clip(session, tts_config)
    if livekit is not None and livekit.get("enable_recording"):
        _start_recording(session, tts_config)
    await _announce_ready(session, livekit)


def _convert_loading_clip(session: Session, tts_config: dict[str, Any]) -> None:
    """HEAD's conversion of the clip to the track format (6.11, non-fatal): the track
    runs at the TTS rate, so a rate of 0 drops the clip (not kept for loading_start)."""
    if tts_config.get("sample_rate") == 0:
        session.loading_clip = None
        session.error("loading audio sample rate must be non-zero")


def _configure_loading(
    session: Session, loading: Optional[dict[str, Any]], audio: bool, has_livekit: bool
) -> None:
    session.loading_clip = None
    session.loading_error = None
    if loading is None:
        return
    if not (audio and has_livekit):
        # Reported, not kept: loading_start answers from the session's state (6.3).
        session.error("loading_audio requires audio to be enabled and a livekit configuration")
        return
    try:
        session.loading_clip = decode_loading_audio(loading)
    except LoadingError as exc:
        session.loading_error = str(exc)  # replayed by loading_start
        session.error(session.loading_error)


#: ``format!("{e:?}")`` of Sayna's ``LiveKitError`` for livekit-api 0.4.9's refusal of a
#: token with ``room_join`` and an empty identity (access_token.rs ``to_jwt``).
NO_IDENTITY = (
    'ConnectionFailed("Failed to generate agent token with SIP grants: invalid claims: token '
    "grants room_join but doesn't have an identity or room\")"
)


@dataclass(frozen=True)
class _Voice:
    """A voice manager built for a ``config``, not yet the session's."""

    stt: SpeechFinalGate
    tts: TTSPipeline
    tts_config: dict[str, Any]
    stt_provider: str
    stt_engine: str
    tts_engine: str


def _build_voice(
    session: Session, stt_config: dict[str, Any], tts_config: dict[str, Any]
) -> Optional[_Voice]:
    """Check providers and build the session's next voice manager (steps 4-6 of 6.11);
    ``None`` after sending the error of the first check that failed."""
    state = session.state
    default = state.config.engine
    try:
        stt_name = engine_for_provider(stt_config["provider"], default)
        validate_auth(stt_config["provider"], stt_config.get("auth"))
        tts_name = engine_for_provider(tts_config["provider"], default)
        validate_auth(tts_config["provider"], tts_config.get("auth"))
        check_voice_config(stt_config, tts_config)
    except (ProviderError, ConfigRejected) as exc:
        session.error(str(exc))
        return None
    try:
        stt_engine = state.engine(stt_name)
        tts_engine = state.engine(tts_name)
    except EngineUnavailable as exc:
        session.error(f"Failed to create voice manager: {exc}")
        return None
    try:
        stream = stt_engine.open_stt(
            stt_params(stt_config, session.stream_id, state.config.stt_hint)
        )
    except Exception as exc:
        logger.warning("engine %s could not start STT: %s", stt_name, exc)
        session.error(f"Failed to start voice manager: {exc}")
        return None
    tts = TTSPipeline(
        tts_engine,
        session.emit_tts_audio,
        session.send,
        realtime=state.config.tts_realtime,
        failures=state.tts_failures,
        stream_id=session.stream_id,
        inline=tts_config["provider"].lower() == "google",  # synthesized inline (6.7)
    )
    stt = SpeechFinalGate(
        stream,
        session.send,
        suppressed=lambda: not tts.interruptible(),
        engine_name=stt_name,
        on_decoded=session.record.touch,
    )
    return _Voice(stt, tts, tts_config, stt_config["provider"], stt_engine.name, tts_engine.name)


def _install_voice(session: Session, voice: _Voice) -> None:
    session.stt, session.tts = voice.stt, voice.tts
    session.tts_config = voice.tts_config
    session.record.stt_engine, session.record.tts_engine = voice.stt_engine, voice.tts_engine
    logger.info(
        "session %s: STT %r served by engine %s, TTS %r served by engine %s",
        session.stream_id,
        voice.stt_provider,
        voice.stt_engine,
        voice.tts_config["provider"],
        voice.tts_engine,
    )


def _join_room(session: Session, livekit: dict[str, Any], audio: bool) -> bool:
    state = session.state
    if not state.config.livekit_configured:
        session.error("LiveKit room handler not initialized. Check API keys configuration.")
        return False
    name = livekit["room_name"]
    try:
        room = state.livekit.ensure_room(name, session.auth_id)
    except AccessDenied:
        session.error(f"Access denied: room '{name}' belongs to a different tenant")
        return False
    # Only an omitted (or null) value takes the default: "" is kept (config_handler.rs:889).
    identity = livekit.get("sayna_participant_identity")
    identity = "sayna-ai" if identity is None else identity
    display = livekit.get("sayna_participant_name")
    display = "Sayna AI" if display is None else display
    if not identity:
        # livekit-api refuses a token that joins a room without an identity; the room
        # Sayna has just ensured stays (config_handler.rs:901-911).
        session.error(f"Failed to generate agent token: {NO_IDENTITY}")
        return False
    config = state.config
    listener = RoomEvents(session)
    agent = Participant(
        identity=identity,
        name=display,
        token=access_token(
            config.livekit_api_key,
            config.livekit_api_secret,
            identity,
            display,
            name,
            agent=True,
            can_publish=audio,
        ),
        kind="STANDARD",  # Sayna's token marks no kind: LiveKit lists it as STANDARD
        listener=listener,
        audio_mode=audio,
        tracks=[Track(new_id("TR_"), "audio", "tts-audio")] if audio else [],
    )
    session.leave_room(delete=False)  # the previous room, replaced by this one
    session.listen_participants = list(livekit.get("listen_participants") or [])
    session.room, session.agent = room, agent
    state.livekit.join(room, agent)
    # The room's existing audio tracks are subscribed as the agent joins, so their
    # track_subscribed come before ready (Sayna's room event handler starts inside its
    # LiveKit connect, before it sends ready; config_handler.rs:984, connection.rs:153).
    listener.joined(room)
    return True


def _start_recording(session: Session, tts_config: Optional[dict[str, Any]]) -> None:
    """Sayna's room-composite egress: the room's audio at the track rate (6.9)."""
    assert session.stream_id is not None
    session.stop_recording()
    room = session.room
    if room is None:
        return
    if not session.state.config.recording_storage:
        # Sayna's egress setup fails without a recording config; it logs and carries on
        # without recording (config_handler.rs:919-937, room_handler.rs:444-446).
        logger.error(
            "Failed to start room recording: recording storage not configured (stream %s)",
            session.stream_id,
        )
        return
    recording = session.state.recordings.start(session.stream_id, track_rate(tts_config))
    room.recordings.append(recording)
    session.recording = recording


async def _announce_ready(session: Session, livekit: Optional[dict[str, Any]]) -> None:
    faults = session.faults
    if faults.malformed_frames:
        for text in MALFORMED_FRAMES:
            session.send(Raw(text))
    if faults.ready_delay > 0:
        await asyncio.sleep(faults.ready_delay)
    if faults.never_send_ready:
        return
    ready: dict[str, Any] = {"type": "ready", "stream_id": session.stream_id}
    if livekit is not None and session.agent is not None:
        ready["livekit_room_name"] = livekit["room_name"]
    ready["livekit_url"] = session.state.config.livekit_url
    if livekit is not None and session.agent is not None:
        ready["sayna_participant_identity"] = session.agent.identity
        ready["sayna_participant_name"] = session.agent.name
    session.send(ready)
