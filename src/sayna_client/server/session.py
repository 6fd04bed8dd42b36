"""One ``/ws`` connection: its life (upgrade, read loop, teardown), inbound frames, audio.

Frames are read and processed strictly in order (a slow ``config`` delays what follows,
as on the real server); TTS synthesis runs in the voice manager's worker task. Every
server frame goes through one FIFO drained by a writer task.

A text frame is parsed strictly and handed to its handler in :data:`HANDLERS`
(``session_config`` for ``config``, ``session_commands`` for the rest); binary frames
and room audio are fed to speech-to-text here; room events become frames in
``session_room``. Those modules take the session as an argument: they import this one
for its type only, so imports run one way (session -> handlers).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Optional

from aiohttp import WSMsgType, web

from .inbound import AudioFastResponse
from .livekit import Participant, Room
from .loading import LoadingClip
from .outbound import Close, Item, Outbound
from .recording import Recording, track_pcm, track_rate
from .records import SessionRecord
from .schemas import parse_client_message_async
from .serde import SerdeError
from .session_commands import AUDIO_DISABLED, HANDLERS, NO_VOICE_MANAGER
from .state import ServerState
from .voice import SpeechFinalGate, TTSPipeline

# The kinds of every received frame, looked up once (an enum attribute costs ~0.15 us).
_BINARY = WSMsgType.BINARY
_TEXT = WSMsgType.TEXT

__all__ = ["HANDLERS", "MAX_MESSAGE_BYTES", "Session"]

logger = logging.getLogger("sayna_client.server")

#: The real server's limit (tungstenite's default maximum message size); the local
#: server's default is lower (``LocalServer(max_message_bytes=...)``).
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
#: Binary frames larger than this are fed to speech-to-text in pieces of this size.
FEED_PIECE_BYTES = 256 * 1024
#: TTS chunks queued between turns of the event loop when synthesis runs ahead of
#: real time (``--fast-tts``; paced speech waits between chunks anyway).
TTS_CHUNKS_PER_TURN = 16
#: Seconds between a participant leaving the room and the session's close (1005).
DISCONNECT_CLOSE_DELAY = 0.1
#: Seconds :meth:`Session.shutdown` waits for the session's release after the close
#: handshake before it aborts the connection (and as long again after that).
SHUTDOWN_RELEASE_TIMEOUT = 2.0


class Session:
    """Serves one WebSocket connection until either side closes it.

    The attributes below the socket are the session state the ``config`` message
    writes (in the real server's order) and the command handlers read.
    """

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
        self.ws = AudioFastResponse(
            self,
            # aiohttp refuses a message of max_msg_size bytes or more: leave those to it.
            min(FEED_PIECE_BYTES, state.config.max_message_bytes - 1),
            autoping=not self.faults.ignore_pings,
            autoclose=False,
            max_msg_size=state.config.max_message_bytes,
            timeout=2.0,
            # Sayna (axum 0.8, tungstenite) negotiates no extension: a client offering
            # permessage-deflate gets an uncompressed connection, as there.
            compress=False,
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
        self._tts_chunks = 0  # queued since the last turn of the loop (emit_tts_audio)
        self._reading = False  # the read loop waits in receive() (see can_take_audio)

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
        out = self.out
        while True:
            if out.full:
                # Back-pressure (section 6.1): the next frame waits until the client has
                # taken some of what it was sent (aiohttp then stops reading the socket).
                await out.wait_space()
            self._reading = True
            try:
                msg = await self.ws.receive()
            finally:
                self._reading = False
            kind = msg.type
            if kind is _BINARY or kind is _TEXT:  # (module constants: no enum lookups)
                try:
                    if kind is _BINARY:
                        feeding = self._on_binary(msg.data)
                        if feeding is not None:
                            await feeding
                    else:
                        await self._on_text(msg.data)
                except Exception as exc:
                    self._handling_failed(exc)
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

    def _handling_failed(self, exc: Exception) -> None:
        """As the real server: a frame whose handling failed closes nothing; the client
        gets an ``error`` message."""
        logger.error("session %s: message handling failed", self.stream_id, exc_info=exc)
        self.error(f"Internal error: {type(exc).__name__}")

    def can_take_audio(self) -> bool:
        """Whether a binary frame arriving now may be handled inside the socket's
        callback (:mod:`.inbound`): the read loop waits in ``receive()``
        (nothing before the frame is still being handled), the outbound queue has room
        (else the frame waits as the read loop would) and handling it needs no
        ``await`` (speech-to-text is instant, or audio is refused)."""
        if not self._reading or self.ws.closed or self.out.full:
            return False
        stt = self.stt
        return stt is None or stt.instant or not self.audio

    def take_audio(self, data: bytes) -> None:
        """Handle one binary frame now, as the read loop would (see
        :meth:`can_take_audio`)."""
        try:
            self._on_binary(data)
        except Exception as exc:
            self._handling_failed(exc)

    def send(self, item: Item) -> None:
        """Queue a frame for the client (see :class:`Outbound`)."""
        self.out.send(item)

    def error(self, message: str) -> None:
        """Queue an ``error`` frame carrying ``message``."""
        self.send({"type": "error", "message": message})

    def close_soon(self) -> None:
        """Close the session (1005) shortly, once: a participant left the room."""
        if self._disconnect_close is None and self.out.accepting:
            self._disconnect_close = asyncio.ensure_future(self._close_later())

    async def _close_later(self) -> None:
        await asyncio.sleep(DISCONNECT_CLOSE_DELAY)
        self.send(Close(None))

    async def shutdown(self) -> None:
        """Close with 1001 (server going away) and wait until the session is released;
        a connection still open :data:`SHUTDOWN_RELEASE_TIMEOUT` s after the close
        handshake (a graceful close waiting for a client that does not read) is aborted."""
        await self.out.shutdown(1001)
        try:
            await asyncio.wait_for(self._done.wait(), SHUTDOWN_RELEASE_TIMEOUT)
            return
        except asyncio.TimeoutError:
            self.out.abort()
        try:
            await asyncio.wait_for(self._done.wait(), SHUTDOWN_RELEASE_TIMEOUT)
        except asyncio.TimeoutError:
            logger.warning("session %s did not finish in time", self.stream_id)

    async def _teardown(self) -> None:
        if self._disconnect_close is not None:
            self._disconnect_close.cancel()
        await self.out.aclose()
        await self.release_voice()
        self.leave_room(delete=True)
        self.loading_active = False
        self.state.sessions.discard(self)
        self.record.mark_closed(self.out.close_code or self.ws.close_code)
        self._done.set()

    async def release_voice(self) -> None:
        """Stop and drop the voice manager (TTS pipeline and STT stream), if any."""
        tts, self.tts = self.tts, None
        stt, self.stt = self.stt, None
        if tts is not None:
            await tts.aclose()
        if stt is not None:
            stt.close()

    def leave_room(self, delete: bool) -> None:
        """Take the session's agent out of its room (and delete the room if ``delete``)."""
        self.stop_recording()
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
            self.error(f"Invalid message format: {exc.located(text)}")
            return
        self.record.add_text(text, message)
        # The parser admits only the types of CLIENT_MESSAGES, and each has a handler.
        await HANDLERS[message["type"]](self, message)

    # --- audio in: the client's frames and the room's audio to STT ------------------------

    def _on_binary(self, data: bytes) -> Optional[Awaitable[None]]:
        """Record one binary frame and feed it to STT: at once when the engine's stream
        is instant (the per-frame hot path: no coroutine), else return the feed for the
        read loop to await."""
        self.record.add_audio(data)
        if not self.audio:
            self.error(AUDIO_DISABLED)
            return None
        stt = self.stt
        if stt is None:
            self.error(NO_VOICE_MANAGER)
            return None
        if len(data) > FEED_PIECE_BYTES:
            return self._feed_in_pieces(data)
        if not stt.instant:
            return self._feed(stt, data)
        try:
            stt.feed_now(data)
        except Exception as exc:
            self._stt_failed(exc)
        return None

    def _stt_failed(self, exc: Exception) -> None:
        logger.warning("STT engine failed: %s", exc)
        self.error(f"Failed to process audio: {exc}")

    async def _feed(self, stt: SpeechFinalGate, data: bytes) -> None:
        try:
            await stt.feed(data)
        except Exception as exc:
            self._stt_failed(exc)

    async def _feed_in_pieces(self, data: bytes) -> None:
        """A large frame, fed in pieces with the loop free in between (other clients are
        served while a 16 MB frame is processed); the engines see the same byte stream."""
        try:
            await self._feed_pieces(data)
        except Exception as exc:
            self._stt_failed(exc)

    async def _feed_pieces(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(data), FEED_PIECE_BYTES):
            piece = bytes(view[start : start + FEED_PIECE_BYTES])
            if self.stt is None:
                return
            await self.stt.feed(piece)
            await asyncio.sleep(0)

    async def room_audio(self, identity: str, pcm16: bytes) -> None:
        """Room audio from ``identity`` (16-bit mono at the TTS rate) goes to STT."""
        if self.listen_participants and identity not in self.listen_participants:
            return
        if self.stt is not None:
            await self.stt.feed(pcm16)

    def _record_tts(self, room: Room, identity: str, chunk: bytes) -> None:
        """The agent's track audio for the room's recordings (compressed formats are not
        recorded: the local room has no decoder)."""
        to_pcm = track_pcm(self.tts_config.get("audio_format"))
        if to_pcm is not None:
            room.record(identity, to_pcm(chunk), track_rate(self.tts_config))

    def stop_recording(self) -> None:
        """Stop the session's room recording (the egress ends; the file stays)."""
        recording, self.recording = self.recording, None
        room = self.room
        if recording is not None and room is not None and recording in room.recordings:
            room.recordings.remove(recording)

    # --- audio out -----------------------------------------------------------------------

    async def emit_tts_audio(self, chunk: bytes) -> None:
        """A synthesized chunk: to the room's track in LiveKit mode, else to the client."""
        agent = self.agent
        track = agent.audio_track() if agent is not None else None
        if track is not None:
            track.published_bytes += len(chunk)  # LiveKit mode: audio goes to the room
            room = self.room
            if room is not None and room.recordings and agent is not None:
                self._record_tts(room, agent.identity, chunk)
            self.record.touch()
        else:
            out = self.out
            if out.full:  # the client is behind: wait, as Sayna's channel does (no drop)
                await out.wait_space()
            out.send(chunk)
        self._tts_chunks += 1
        if self._tts_chunks >= TTS_CHUNKS_PER_TURN:
            # Let the reader and the writer run: the chunks queued so far leave in one
            # write (a sleep after every chunk made a write and a wake-up per chunk).
            self._tts_chunks = 0
            await asyncio.sleep(0)
