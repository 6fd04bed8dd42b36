"""One ``/ws`` connection: strict message parsing, the command x state matrix, room events.

Frames are read and processed strictly in order (a slow ``config`` delays what follows,
as on the real server); TTS synthesis runs in the voice manager's worker task. Every
server frame goes through one FIFO drained by a writer task.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import uuid
from collections.abc import Awaitable
from typing import Any, Callable, Optional

from aiohttp import WSMsgType, web

from ..protocol.encodings import canonical
from .engines import EngineUnavailable
from .faults import MALFORMED_FRAMES
from .livekit import AccessDenied, Participant, Room, Track, access_token, new_id
from .loading import LoadingClip, LoadingError, decode_loading_audio
from .outbound import Close, Item, Outbound, Raw
from .providers import (
    ProviderError,
    apply_pronunciations,
    engine_for_provider,
    stt_params,
    tts_request,
    validate_auth,
)
from .recording import Recording
from .records import SessionRecord
from .schemas import parse_client_message_async
from .serde import SerdeError
from .sip import validate_phone
from .state import ServerState
from .validation import ConfigRejected, check_voice_config
from .voice import SpeechFinalGate, TTSPipeline, now_ms

# The kinds of every received frame, looked up once (an enum attribute costs ~0.15 us).
_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT

__all__ = ["HANDLERS", "Session"]

logger = logging.getLogger("sayna_client.server")

#: The real server's limit (tungstenite's default maximum message size); the local
#: server's default is lower (``LocalServer(max_message_bytes=...)``).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Binary frames larger than this are fed to speech-to-text in pieces of this size.
FEED_PIECE_BYTES = 256 * 1024
DISCONNECT_CLOSE_DELAY = 0.1

AUDIO_DISABLED = "Audio processing is disabled. Send config message with audio=true first."
NO_VOICE_MANAGER = "Voice manager not configured. Send config message with audio=true first."
NO_LIVEKIT = "LiveKit client not configured. Send config message with livekit configuration first."


class Session:
    """Serves one WebSocket connection until either side closes it."""

    def __init__(
        self,
        state: ServerState,
        request: web.Request,
        record: SessionRecord,
        auth_id: Optional[str],
    ) -> None:
        self.state = state
        self.request = request
        self.record = record
        self.auth_id = auth_id
        self.faults = state.faults
        self.ws = web.WebSocketResponse(
            autoping=not self.faults.ignore_pings,
            autoclose=False,
            max_msg_size=state.config.max_message_bytes,
            timeout=2.0,
        )
        self.out = Outbound(self.ws, request, record, self.faults.drop_connection_after_frames)
        self._disconnect_close: Optional[asyncio.Task[None]] = None
        self._done = asyncio.Event()
        # session state written by config, in the real server's order
        self.configured = False
        self.audio: Optional[bool] = None
        self.stream_id: Optional[str] = None
        self.tts: Optional[TTSPipeline] = None
        self.tts_config: dict[str, Any] = {}
        self.stt: Optional[SpeechFinalGate] = None
        self.livekit_requested = False
        self.room: Optional[Room] = None
        self.agent: Optional[Participant] = None
        self.listen_participants: list[str] = []
        self.loading_clip: Optional[LoadingClip] = None
        self.loading_error: Optional[str] = None
        self.loading_active = False
        self.recording: Optional[Recording] = None

    # --- connection lifecycle ------------------------------------------------------------

    async def run(self) -> web.WebSocketResponse:
        """Upgrade, serve frames until close, then release everything."""
        await self.ws.prepare(self.request)
        self.state.sessions.add(self)
        self.out.start()
        try:
            await self._read_loop()
        except (ConnectionError, asyncio.TimeoutError) as exc:
            logger.debug("session ended by transport error: %s", exc)
        finally:
            await self._teardown()
        return self.ws

    async def _read_loop(self) -> None:
        while True:
            msg = await self.ws.receive()
            kind = msg.type
            if kind is _BINARY or kind is _TEXT:  # (module constants: no enum lookups)
                try:
                    if kind is _BINARY:
                        await self._on_binary(msg.data)
                    else:
                        await self._on_text(msg.data)
                except Exception as exc:  # as the real server: no error closes the socket
                    logger.exception("session %s: message handling failed", self.stream_id)
                    self._error(f"Internal error: {type(exc).__name__}")
            elif msg.type == WSMsgType.CLOSE:
                await self.out.client_closed(int(msg.data or 0))
                return
            elif msg.type in (WSMsgType.PING, WSMsgType.PONG):
                continue  # only seen with ignore_pings: deliberately unanswered
            else:  # CLOSING / CLOSED / ERROR
                if msg.type == WSMsgType.CLOSING:
                    # Our own close woke the reader (aiohttp < 3.10 does): let the writer
                    # finish its Close handshake, or its close code would be lost.
                    await self.out.wait_writer()
                self.out.connection_lost()
                return

    def send(self, item: Item) -> None:
        """Queue a frame for the client (see :class:`Outbound`)."""
        self.out.send(item)

    async def shutdown(self) -> None:
        """Close with 1001 (server going away) and wait until the session is released."""
        await self.out.shutdown(1001)
        try:
            await asyncio.wait_for(self._done.wait(), 5.0)
        except asyncio.TimeoutError:
            logger.warning("session %s did not finish in time", self.stream_id)

    async def _teardown(self) -> None:
        if self._disconnect_close is not None:
            self._disconnect_close.cancel()
        await self.out.aclose()
        await self._release_voice()
        self._leave_room(delete=True)
        self.loading_active = False
        self.state.sessions.discard(self)
        self.record.mark_closed(self.out.close_code or self.ws.close_code)
        self._done.set()

    async def _release_voice(self) -> None:
        tts, self.tts = self.tts, None
        stt, self.stt = self.stt, None
        if tts is not None:
            await tts.aclose()
        if stt is not None:
            stt.close()

    def _leave_room(self, delete: bool) -> None:
        room, agent = self.room, self.agent
        self.room = self.agent = None
        if room is None or agent is None:
            return
        if room.participants.get(agent.identity) is agent:
            self.state.livekit.leave(room, agent.identity)
        if delete:
            self.state.livekit.delete_room(room.name)

    # --- inbound frames ------------------------------------------------------------------

    async def _on_text(self, text: str) -> None:
        try:
            message = await parse_client_message_async(text)
        except SerdeError as exc:
            self.record.add_text(text, exc.value)
            self.send({"type": "error", "message": f"Invalid message format: {exc.located(text)}"})
            return
        self.record.add_text(text, message)
        # The parser admits only the types of CLIENT_MESSAGES, and each has a handler.
        await HANDLERS[message["type"]](self, message)

    async def _on_binary(self, data: bytes) -> None:
        self.record.add_audio(data)
        if not self.audio:
            self._error(AUDIO_DISABLED)
            return
        if self.stt is None:
            self._error(NO_VOICE_MANAGER)
            return
        try:
            if len(data) <= FEED_PIECE_BYTES:
                if self.recording is not None:
                    self.recording.append(data)
                await self.stt.feed(data)
            else:
                await self._feed_in_pieces(data)
        except Exception as exc:
            logger.warning("STT engine failed: %s", exc)
            self._error(f"Failed to process audio: {exc}")

    async def _feed_in_pieces(self, data: bytes) -> None:
        """A large frame, fed in pieces with the loop free in between (other clients are
        served while a 16 MB frame is processed); the engines see the same byte stream."""
        view = memoryview(data)
        for start in range(0, len(data), FEED_PIECE_BYTES):
            piece = bytes(view[start : start + FEED_PIECE_BYTES])
            if self.recording is not None:
                self.recording.append(piece)
            if self.stt is None:
                return
            await self.stt.feed(piece)
            await asyncio.sleep(0)

    def _error(self, message: str) -> None:
        self.send({"type": "error", "message": message})

    # --- config --------------------------------------------------------------------------

    async def _on_config(self, message: dict[str, Any]) -> None:
        faults = self.faults
        if faults.close_after_config:
            self.send(Close(faults.close_code))
            return
        if faults.reject_config_error is not None:
            self._error(faults.reject_config_error)
            return
        audio = message.get("audio")
        audio = True if audio is None else bool(audio)
        stt_config: Optional[dict[str, Any]] = message.get("stt_config")
        tts_config: Optional[dict[str, Any]] = message.get("tts_config")
        livekit: Optional[dict[str, Any]] = message.get("livekit")
        if audio and stt_config is None:
            self._error("STT configuration is required when audio=true")
            return
        if audio and tts_config is None:
            self._error("TTS configuration is required when audio=true")
            return
        # Re-configuring replaces the previous voice manager and room membership.
        await self._release_voice()
        self._leave_room(delete=False)
        self.configured = True
        self.audio = audio
        stream_id = message.get("stream_id")
        self.stream_id = stream_id if stream_id is not None else str(uuid.uuid4())
        self.record.stream_id = self.stream_id
        self.livekit_requested = livekit is not None
        self._configure_loading(message.get("loading_audio"), audio, livekit is not None)
        if audio:
            assert stt_config is not None
            assert tts_config is not None
            if not self._configure_voice(stt_config, tts_config):
                return
        if livekit is not None and not self._join_room(livekit, audio):
            return
        if self.loading_clip is not None and tts_config is not None:
            self._convert_loading_clip(tts_config)
        if livekit is not None and livekit.get("enable_recording"):
            self._start_recording(stt_config)
        await self._announce_ready(livekit)

    def _convert_loading_clip(self, tts_config: dict[str, Any]) -> None:
        """HEAD's conversion of the clip to the track format (6.11, non-fatal): the track
        runs at the TTS rate, so a rate of 0 drops the clip (not kept for loading_start)."""
        if tts_config.get("sample_rate") == 0:
            self.loading_clip = None
            self._error("loading audio sample rate must be non-zero")

    def _configure_loading(
        self, loading: Optional[dict[str, Any]], audio: bool, has_livekit: bool
    ) -> None:
        self.loading_clip = None
        self.loading_error = None
        if loading is None:
            return
        try:
            if not (audio and has_livekit):
                raise LoadingError(
                    "loading_audio requires audio to be enabled and a livekit configuration"
                )
            self.loading_clip = decode_loading_audio(loading)
        except LoadingError as exc:
            self.loading_error = str(exc)
            self._error(self.loading_error)

    def _configure_voice(self, stt_config: dict[str, Any], tts_config: dict[str, Any]) -> bool:
        default = self.state.config.engine
        try:
            stt_name = engine_for_provider(stt_config["provider"], default)
            validate_auth(stt_config["provider"], stt_config.get("auth"))
            tts_name = engine_for_provider(tts_config["provider"], default)
            validate_auth(tts_config["provider"], tts_config.get("auth"))
            check_voice_config(stt_config, tts_config)
        except (ProviderError, ConfigRejected) as exc:
            self._error(str(exc))
            return False
        try:
            stt_engine = self.state.engine(stt_name)
            tts_engine = self.state.engine(tts_name)
        except EngineUnavailable as exc:
            self._error(f"Failed to create voice manager: {exc}")
            return False
        try:
            stream = stt_engine.open_stt(
                stt_params(stt_config, self.stream_id, self.state.config.stt_hint)
            )
        except Exception as exc:
            logger.warning("engine %s could not start STT: %s", stt_name, exc)
            self._error(f"Failed to start voice manager: {exc}")
            return False
        tts = TTSPipeline(
            tts_engine, self._emit_tts_audio, self.send, realtime=self.state.config.tts_realtime
        )
        self.stt = SpeechFinalGate(
            stream, self.send, suppressed=lambda: not tts.interruptible(), engine_name=stt_name
        )
        self.tts = tts
        self.tts_config = tts_config
        self.record.stt_engine, self.record.tts_engine = stt_engine.name, tts_engine.name
        logger.info(
            "session %s: STT %r served by engine %s, TTS %r served by engine %s",
            self.stream_id,
            stt_config["provider"],
            stt_engine.name,
            tts_config["provider"],
            tts_engine.name,
        )
        return True

    def _join_room(self, livekit: dict[str, Any], audio: bool) -> bool:
        if not self.state.config.livekit_configured:
            self._error("LiveKit room handler not initialized. Check API keys configuration.")
            return False
        name = livekit["room_name"]
        try:
            room = self.state.livekit.ensure_room(name, self.auth_id)
        except AccessDenied:
            self._error(f"Access denied: room '{name}' belongs to a different tenant")
            return False
        identity = livekit.get("sayna_participant_identity") or "sayna-ai"
        display = livekit.get("sayna_participant_name") or "Sayna AI"
        config = self.state.config
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
            listener=self,
            audio_mode=audio,
            tracks=[Track(new_id("TR_"), "audio", "tts-audio")] if audio else [],
        )
        self.listen_participants = list(livekit.get("listen_participants") or [])
        self.room, self.agent = room, agent
        self.state.livekit.join(room, agent)
        return True

    def _start_recording(self, stt_config: Optional[dict[str, Any]]) -> None:
        assert self.stream_id is not None
        rate, channels, mulaw = 16000, 1, False
        if stt_config is not None:
            rate, channels = stt_config["sample_rate"], stt_config["channels"]
            mulaw = canonical(stt_config["encoding"]) == "mulaw"
        self.recording = self.state.recordings.start(self.stream_id, rate, channels, mulaw)
        if self.room is not None:
            self.room.recording = True

    async def _announce_ready(self, livekit: Optional[dict[str, Any]]) -> None:
        faults = self.faults
        if faults.malformed_frames:
            for text in MALFORMED_FRAMES:
                self.send(Raw(text))
        if faults.ready_delay > 0:
            await asyncio.sleep(faults.ready_delay)
        if faults.never_send_ready:
            return
        ready: dict[str, Any] = {"type": "ready", "stream_id": self.stream_id}
        if livekit is not None and self.agent is not None:
            ready["livekit_room_name"] = livekit["room_name"]
        ready["livekit_url"] = self.state.config.livekit_url
        if livekit is not None and self.agent is not None:
            ready["sayna_participant_identity"] = self.agent.identity
            ready["sayna_participant_name"] = self.agent.name
        self.send(ready)

    # --- commands ------------------------------------------------------------------------

    async def _on_speak(self, message: dict[str, Any]) -> None:
        if not self.audio:
            self._error(AUDIO_DISABLED)
            return
        if self.tts is None:
            self._error(NO_VOICE_MANAGER)
            return
        config = self.tts_config
        text = apply_pronunciations(message["text"], config.get("pronunciations") or [])
        allow = message.get("allow_interruption")
        self.tts.speak(tts_request(config, text), True if allow is None else bool(allow))

    async def _emit_tts_audio(self, chunk: bytes) -> None:
        agent = self.agent
        track = agent.audio_track() if agent is not None else None
        if track is not None:
            track.published_bytes += len(chunk)  # LiveKit mode: audio goes to the room
            self.record.touch()
        else:
            self.send(chunk)
        await asyncio.sleep(0)  # let the reader and writer run between chunks

    async def _on_clear(self, message: dict[str, Any]) -> None:
        if not self.audio:
            return
        if self.tts is None:
            self._error(NO_VOICE_MANAGER)
            return
        await self.tts.clear()

    async def _on_send_message(self, message: dict[str, Any]) -> None:
        room, agent = self.room, self.agent
        if room is None or agent is None:
            self._error(NO_LIVEKIT)
            return
        payload = json.dumps(
            {"message": message["message"], "role": message["role"], "debug": message.get("debug")},
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        topic = message.get("topic") or "messages"
        self.state.publish_data(room, agent.identity, payload, topic)

    async def _on_sip_transfer(self, message: dict[str, Any]) -> None:
        def fail(text: str) -> None:
            self.send({"type": "sip_transfer_error", "message": text})

        try:
            target = validate_phone(message["transfer_to"])
        except ValueError as exc:
            fail(f"Invalid phone number: {exc}")
            return
        if not self.livekit_requested or self.room is None or self.agent is None:
            fail("Room name not available. Ensure LiveKit is configured.")
            return
        if not self.state.config.livekit_configured:
            fail(NO_LIVEKIT)
            return
        room = self.state.livekit.rooms.get(self.room.name)
        if room is None:
            fail("SIP transfer failed: Room not found")
            return
        if self.auth_id is not None and room.auth_id != self.auth_id:
            fail("SIP transfer failed: Room not accessible")
            return
        sip = next(
            (
                p
                for p in room.participants.values()
                if p.kind == "SIP" and p.identity != self.agent.identity
            ),
            None,
        )
        if sip is None:
            fail("No SIP participant found in room to transfer")
            return
        self.state.record_transfer(room.name, sip.identity, target)

    async def _on_update_config(self, message: dict[str, Any]) -> None:
        turn_detect = message.get("turn_detect")
        if turn_detect is None:
            return
        threshold = float(turn_detect["threshold"])
        if not 0.0 <= threshold <= 1.0:
            shown = repr(threshold)[:-2] if repr(threshold).endswith(".0") else repr(threshold)
            self._error(f"Invalid turn detection threshold: {shown}. Must be between 0.0 and 1.0")
            return
        self.state.turn_detect_threshold = threshold

    async def _on_loading_start(self, message: dict[str, Any]) -> None:
        if not self.configured:
            self._error("Send a config message first before using loading_start.")
        elif not self.audio:
            self._error(
                "Loading indicator requires audio to be enabled. Send a config message with "
                "audio=true."
            )
        elif self.loading_error is not None:
            self._error(self.loading_error)
        elif not self.livekit_requested:
            self._error(
                "Loading indicator requires a LiveKit room. Include a livekit configuration in "
                "your config message."
            )
        elif self.room is None:
            self._error(
                "loading indicator requires an active LiveKit connection; connect to a room first"
            )
        elif self.loading_clip is None:
            self._error("no loading audio configured")
        else:
            self.loading_active = True

    async def _on_loading_stop(self, message: dict[str, Any]) -> None:
        self.loading_active = False

    # --- RoomListener ----------------------------------------------------------------------

    def participant_connected(self, room: Room, participant: Participant) -> None:
        self.send(
            {
                "type": "participant_connected",
                "participant": _participant_wire(room, participant),
            }
        )
        track = participant.audio_track()
        if self.audio and track is not None:
            self.send(
                {
                    "type": "track_subscribed",
                    "track": {
                        "identity": participant.identity,
                        "name": participant.name,
                        "track_kind": track.kind,
                        "track_sid": track.sid,
                        "room": room.name,
                        "timestamp": now_ms(),
                    },
                }
            )

    def participant_disconnected(self, room: Room, participant: Participant) -> None:
        self.send(
            {
                "type": "participant_disconnected",
                "participant": _participant_wire(room, participant),
            }
        )
        if self._disconnect_close is None and self.out.accepting:
            self._disconnect_close = asyncio.ensure_future(self._close_later())

    async def _close_later(self) -> None:
        await asyncio.sleep(DISCONNECT_CLOSE_DELAY)
        self.send(Close(None))

    def data_received(
        self, room: Room, identity: Optional[str], topic: Optional[str], payload: bytes
    ) -> None:
        listen = self.listen_participants
        if identity is not None and listen and identity not in listen:
            return
        body: dict[str, Any] = {}
        try:
            body["message"] = payload.decode("utf-8")
        except UnicodeDecodeError:
            body["data"] = base64.b64encode(payload).decode()
        body.update(
            identity=identity if identity is not None else "server",
            topic=topic or "default",
            room="livekit",
            timestamp=now_ms(),
        )
        self.send({"type": "message", "message": body})

    async def room_audio(self, identity: str, pcm16: bytes) -> None:
        """Room audio from ``identity`` (16-bit mono at the TTS rate) goes to STT."""
        if self.listen_participants and identity not in self.listen_participants:
            return
        if self.stt is not None:
            await self.stt.feed(pcm16)


#: The handler of each client message type (the keys of ``schemas.CLIENT_MESSAGES``, the
#: only types the parser lets through). A new message type is a schema plus a line here.
HANDLERS: dict[str, Callable[[Session, dict[str, Any]], Awaitable[None]]] = {
    "config": Session._on_config,
    "speak": Session._on_speak,
    "clear": Session._on_clear,
    "send_message": Session._on_send_message,
    "sip_transfer": Session._on_sip_transfer,
    "update_config": Session._on_update_config,
    "loading_start": Session._on_loading_start,
    "loading_stop": Session._on_loading_stop,
}


def _participant_wire(room: Room, participant: Participant) -> dict[str, Any]:
    return {
        "identity": participant.identity,
        "name": participant.name,
        "room": room.name,
        "timestamp": now_ms(),
    }
