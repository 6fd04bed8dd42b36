"""Shared state of one local server: configuration, rooms, hooks, engines, live sessions."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional

import aiohttp
from aiohttp import web

from .auth import Authenticator
from .engines import EngineUnavailable, get_engine
from .engines.base import Engine, Voice
from .engines.fake import FakeEngine
from .faults import Faults
from .livekit import DEPARTURE_TIMEOUT, EMPTY_TIMEOUT, LiveKitSim, Participant, Room
from .recording import RecordingStore
from .records import AUDIO_KEEP_LIMIT, RECORDS_KEEP_LIMIT, DataPacketRecord, Records
from .sip import HookHosts, SipHook, SipHooks, deliver_webhook, match_hook, webhook_body
from .voice import TTSFailures

if TYPE_CHECKING:
    from .session import Session

__all__ = ["STATE_KEY", "ServerConfig", "ServerState"]

logger = logging.getLogger("sayna_client.server")

#: Concurrent webhook requests per SIP hook host (as the real server).
HOOK_CONCURRENCY = 3

STATE_KEY: web.AppKey[ServerState] = web.AppKey("sayna_state")


@dataclass(frozen=True)
class ServerConfig:
    """Static configuration of a local server (see :class:`~.app.LocalServer` for meanings)."""

    engine: str = "fake"
    api_keys: Mapping[str, Optional[str]] = field(default_factory=dict)
    livekit_url: str = "ws://127.0.0.1:7880"
    livekit_api_key: str = ""
    livekit_api_secret: str = ""  # LocalServer generates a random pair
    hook_secret: Optional[str] = None
    sip_room_prefix: str = "sip-"
    sip_outbound_address: Optional[str] = "127.0.0.1:5060"
    recording_storage: bool = True
    control: bool = True
    request_timeout: float = 30.0
    keep_records: int = RECORDS_KEEP_LIMIT
    sip_hook_hosts: Optional[frozenset[str]] = None
    max_message_bytes: int = 4 * 1024 * 1024
    keep_audio: int = AUDIO_KEEP_LIMIT
    stt_hint: str = ""
    tts_realtime: bool = True
    room_departure_timeout: Optional[float] = DEPARTURE_TIMEOUT
    room_empty_timeout: Optional[float] = EMPTY_TIMEOUT

    @property
    def livekit_configured(self) -> bool:
        return bool(self.livekit_api_key and self.livekit_api_secret)


class ServerState:
    """Everything routes and sessions share. Owned by one event loop."""

    def __init__(
        self, config: ServerConfig, faults: Faults, config_hooks: tuple[SipHook, ...] = ()
    ) -> None:
        self.config = config
        self.faults = faults
        self.auth = Authenticator(config.api_keys)
        self.records = Records(config.keep_audio, config.keep_records)
        self.livekit = LiveKitSim(config.room_departure_timeout, config.room_empty_timeout)
        self.recordings = RecordingStore()
        self.hooks = SipHooks(config_hooks)
        self.hook_hosts = HookHosts(config.sip_hook_hosts)
        self.sessions: set[Session] = set()
        self.turn_detect_threshold = 0.5
        #: Scripted TTS failures (``LocalServer.fail_tts``), shared by the sessions.
        self.tts_failures = TTSFailures()
        self._engines: dict[str, Engine] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._http: Optional[aiohttp.ClientSession] = None
        self._hook_slots: dict[str, asyncio.Semaphore] = {}

    # --- engines ---------------------------------------------------------------------

    def engine(self, name: str) -> Engine:
        """The (cached) engine called ``name``.

        Raises:
            EngineUnavailable: it cannot be created.
        """
        engine = self._engines.get(name)
        if engine is None:
            if name == "fake":
                aliases = ("deepgram", "elevenlabs") if self.config.engine == "fake" else ()
                engine = FakeEngine(voice_aliases=aliases)
            else:
                engine = get_engine(name)
            self._engines[name] = engine
        return engine

    def has_engine(self, name: str) -> bool:
        """Whether the engine called ``name`` has been made (and not discarded)."""
        return name in self._engines

    def discard_engine(self, name: str) -> None:
        """Close the engine called ``name`` and forget it (the next :meth:`engine` makes a
        new one); nothing when there is none. For a start that failed after making it."""
        close = getattr(self._engines.pop(name, None), "close", None)
        if callable(close):
            close()

    def fake_engine(self) -> FakeEngine:
        """The ``fake`` engine (holds the scripted speech)."""
        engine = self.engine("fake")
        if not isinstance(engine, FakeEngine):  # pragma: no cover - engine() makes one
            raise RuntimeError("the fake engine slot holds another engine")
        return engine

    def voices(self) -> dict[str, list[Voice]]:
        """Default engine catalogue plus the fake catalogue (never fails)."""
        catalogue: dict[str, list[Voice]] = {}
        for name in dict.fromkeys((self.config.engine, "fake")):
            try:
                catalogue.update(self.engine(name).voices())
            except EngineUnavailable:
                logger.warning("engine %s unavailable; its voices are omitted", name)
        return catalogue

    # --- background tasks ------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Run ``coro`` as a task the server cancels on stop."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        """Close sessions (all at once: a client that does not read holds up no other),
        cancel tasks, close the webhook client."""
        sessions = list(self.sessions)
        outcomes = await asyncio.gather(
            *(session.shutdown() for session in sessions), return_exceptions=True
        )
        for session, outcome in zip(sessions, outcomes):
            if isinstance(outcome, Exception):  # one session's failure stops no other
                logger.error("session %s did not shut down", session.stream_id, exc_info=outcome)
        self.livekit.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._http is not None:
            await self._http.close()
            self._http = None
        for engine in self._engines.values():
            close = getattr(engine, "close", None)
            if callable(close):
                close()

    # --- LiveKit side effects ----------------------------------------------------------

    def participant_joined(self, room: Room, participant: Participant) -> None:
        """Add a participant like LiveKit does, then forward its SIP webhook if one matches."""
        self.livekit.join(room, participant)
        if participant.kind == "SIP":
            self.forward_sip_webhook(room, participant)

    def forward_sip_webhook(
        self, room: Room, participant: Participant, event_id: Optional[str] = None
    ) -> None:
        """Send the section 9 webhook for a joining SIP participant, if a hook matches."""
        matched = match_hook(participant, self.hooks)
        if matched is None:
            return
        hook, host = matched
        secret = (hook.secret or self.config.hook_secret or "").strip()
        if not secret:
            logger.warning("SIP hook for %s has no signing secret; webhook not sent", host)
            return
        if hook.auth_id:
            owner = room.auth_id
            if owner is None or owner == hook.auth_id:
                room.set_auth_id(hook.auth_id)
            else:  # section 1.6: a conflict is only logged; the webhook still goes out
                logger.warning("room %s belongs to another tenant; owner kept", room.name)
        body = webhook_body(participant, room, host, self.config.sip_room_prefix)
        slots = self._hook_slots.setdefault(host, asyncio.Semaphore(HOOK_CONCURRENCY))

        async def deliver() -> None:
            async with slots:
                await deliver_webhook(
                    self._client(),
                    self.records,
                    hook.url,
                    secret,
                    body,
                    event_id,
                    self.hook_hosts,
                )

        self.spawn(deliver())

    def publish_data(
        self, room: Room, identity: Optional[str], payload: bytes, topic: Optional[str]
    ) -> None:
        """Publish a data packet into ``room`` and record it (``identity`` None = server API)."""
        packet = DataPacketRecord(room.name, identity or "server", topic, payload)
        self.records.add_packet(packet)
        self.livekit.publish_data(room, identity, payload, topic)

    def transfer_sip(self, room: Room, participant: Participant, transfer_to: str) -> None:
        """Carry out a SIP transfer (the simulated REFER always succeeds) as LiveKit's cold
        transfer does: record it, then the caller leaves the room, right after the
        current handler returns (its answer is on its way). Every session in the room then
        gets ``participant_disconnected`` and closes, as when the caller hangs up."""
        transfer = {
            "room_name": room.name,
            "participant_identity": participant.identity,
            "transfer_to": transfer_to,
        }
        self.records.add(self.records.sip_transfers, transfer)

        def leave() -> None:
            if room.participants.get(participant.identity) is participant:
                self.participant_left(room, participant.identity)

        asyncio.get_running_loop().call_soon(leave)

    def participant_left(self, room: Room, identity: str) -> bool:
        """A participant leaves ``room`` (see :meth:`LiveKitSim.leave`); ``False`` when it
        was not there."""
        if self.livekit.leave(room, identity) is None:
            return False
        self.records.touch()
        return True

    def _client(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http
