"""``LocalServer``: the embedded Sayna-compatible server and its test-facing Python API."""

from __future__ import annotations

import asyncio
import inspect
import logging
import math
import secrets
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Optional, Union

from aiohttp import web

from .. import _serving
from .control import SERVER_KEY, add_control_routes, control_guard
from .engines import ENGINE_NAMES, EngineUnavailable
from .engines.fake import ScriptedLine
from .faults import Faults
from .livekit import DEPARTURE_TIMEOUT, EMPTY_TIMEOUT, Participant, Room, Track, new_id
from .livekit_routes import add_livekit_routes
from .records import AUDIO_KEEP_LIMIT, RECORDS_KEEP_LIMIT, Records
from .routes import add_core_routes
from .session import MAX_MESSAGE_BYTES
from .sip import SipHook
from .sip_routes import add_sip_routes
from .state import STATE_KEY, ServerConfig, ServerState
from .voice import DEFAULT_TTS_FAILURE, TTSFailure
from .web_util import BODY_LIMIT, make_middlewares

__all__ = ["DEFAULT_MAX_MESSAGE_BYTES", "DEFAULT_TENANT", "LocalServer"]

#: Largest WebSocket message the local server accepts by default (see ``max_message_bytes``).
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
#: Tenant of the single ``api_key`` (the real server's ``AUTH_API_SECRET_ID`` default).
DEFAULT_TENANT = "default"

logger = logging.getLogger("sayna_client.server")


class LocalServer:
    """A Sayna-compatible server on loopback, speaking the real REST + WebSocket protocol.

    Use ``async with LocalServer() as server:`` (or :meth:`start` / :meth:`stop`).

    Args:
        host: interface to bind (default loopback).
        port: TCP port; ``0`` picks a free one (read :attr:`port` after start).
        engine: engine serving real provider names (``deepgram``, ``elevenlabs``, ...):
            ``"fake"`` (deterministic) or ``"local"`` (Whisper + Piper, falling back to
            pocketsphinx + espeak-ng; needs the ``local`` extra). Providers ``fake`` and
            ``local`` always pick their engine.
        api_key: require this key (``Authorization: Bearer`` or ``?api_key=``) on every
            route except ``GET /`` and ``POST /livekit/webhook``. Its tenant is
            ``default``, as on a real server run with one ``AUTH_API_SECRET`` (section
            1.6): token requests create rooms marked ``{"auth_id":"default"}``, room
            lists show only such rooms, and other rooms answer 404.
        api_keys: alternatively several keys, each mapped to a tenant id (``auth.id``;
            ``None`` for none) to exercise LiveKit room isolation.
        livekit_url: ``livekit_url`` reported in ``ready`` and ``/livekit/token``.
        livekit_api_key: with ``livekit_api_secret``, signs LiveKit tokens and verifies
            ``/livekit/webhook`` JWTs. ``None`` (the default) generates a random pair per
            server (read them from :attr:`livekit_api_key` / :attr:`livekit_api_secret`),
            so no well-known secret can forge a LiveKit webhook. Empty strings make
            LiveKit "not configured".
        livekit_api_secret: the secret of that pair (``None``: random).
        hook_secret: global SIP webhook signing secret (runtime hooks only use this one).
        sip_hooks: config-file hooks (cannot be changed through ``/sip/hooks``: 405).
        sip_hook_hosts: the hosts SIP hook URLs may point at (host names or IP addresses;
            ``POST /sip/hooks`` with another URL host is refused with 400, and no webhook
            is sent to one). ``None`` (default) allows any URL, as the real server: whoever
            may call ``/sip/hooks`` can then make this server POST to any address it
            reaches (see ``docs/security.md``).
        sip_room_prefix: prefix of the rooms SIP calls create.
        sip_outbound_address: SIP trunk address for ``/sip/call`` (``None`` makes
            ``/sip/call`` fail unless the request carries one).
        recording_storage: whether the server has recording storage (Sayna's ``recording``
            section or ``RECORDING_*`` variables). ``True`` (default): sessions with
            ``enable_recording`` record their room and ``GET /recording/{stream_id}``
            serves it. ``False``: as on Sayna without storage, nothing is recorded (the
            session carries on; only a log line says so) and ``GET /recording/...``
            answers 503 ``{"error": "Recording storage not configured"}``.
        faults: initial :class:`Faults` for new WebSocket sessions.
        control: serve the ``/_local/...`` control endpoints: authenticated like the rest,
            and refused to cross-origin requests and to a ``Host`` that is not an IP
            address, ``localhost`` or ``host`` (see ``docs/security.md``).
        request_timeout: seconds a client may take to send a request's headers or body
            (slowloris), and that an idle keep-alive connection is kept; the request
            then gets 408 or the connection is closed.
        keep_audio: bytes of each session's audio input kept in memory for
            ``records`` (``SessionRecord.audio``; the counters count everything), and of
            its text frames. ``sayna serve`` keeps none: nothing outside the process can
            read them.
        max_message_bytes: largest WebSocket message accepted (text or binary); a larger
            one closes the session with 1009. 4 MiB by default, lower than the real
            server's 64 MiB: aiohttp holds the event loop for about 10 ms per 4 MiB while
            it assembles a message, so a 16 MB frame would stall every other client (see
            ``docs/security.md``). At most 64 MiB.
        keep_records: entries kept per list of ``records`` (the newest) and messages
            per list of a session record (the first); request bodies are kept up to
            64 MiB in all. Bounds the memory a long-running server uses.
        stt_hint: words the local engine's recogniser should expect in every session
            (names such as ``"Sayna"``); given to Whisper as previous text. Other
            engines ignore it.
        tts_realtime: pace TTS audio like real speech (first chunk after about 100 ms,
            then real time), so ``clear`` cuts speech as it would on Sayna. ``False``
            sends audio as fast as the engine makes it (benchmarks, quick tests).
        room_departure_timeout: seconds after which a room that everyone left is
            deleted, as LiveKit does (default 20, LiveKit's). ``None`` keeps such rooms.
        room_empty_timeout: seconds after which a room that nobody ever joined is
            deleted (default 300, LiveKit's). ``None`` keeps such rooms.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        engine: str = "fake",
        api_key: Optional[str] = None,
        *,
        api_keys: Optional[Mapping[str, Optional[str]]] = None,
        livekit_url: str = "ws://127.0.0.1:7880",
        livekit_api_key: Optional[str] = None,
        livekit_api_secret: Optional[str] = None,
        hook_secret: Optional[str] = None,
        sip_hooks: Sequence[SipHook] = (),
        sip_room_prefix: str = "sip-",
        sip_outbound_address: Optional[str] = "127.0.0.1:5060",
        sip_hook_hosts: Optional[Sequence[str]] = None,
        recording_storage: bool = True,
        faults: Optional[Faults] = None,
        control: bool = True,
        keep_audio: int = AUDIO_KEEP_LIMIT,
        request_timeout: float = 30.0,
        keep_records: int = RECORDS_KEEP_LIMIT,
        stt_hint: str = "",
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        tts_realtime: bool = True,
        room_departure_timeout: Optional[float] = DEPARTURE_TIMEOUT,
        room_empty_timeout: Optional[float] = EMPTY_TIMEOUT,
    ) -> None:
        if engine not in ENGINE_NAMES:
            raise ValueError(f"engine must be one of {', '.join(ENGINE_NAMES)}, not {engine!r}")
        if not request_timeout > 0:
            raise ValueError(f"request_timeout is a number of seconds > 0, not {request_timeout}")
        if isinstance(sip_hook_hosts, str):
            raise ValueError("sip_hook_hosts is a list of host names, not one string")
        if not 1 <= max_message_bytes <= MAX_MESSAGE_BYTES:
            raise ValueError(
                f"max_message_bytes must be from 1 to {MAX_MESSAGE_BYTES} (the real server's "
                f"limit), not {max_message_bytes}"
            )
        if keep_records < 1:
            raise ValueError(f"keep_records must be at least 1, not {keep_records}")
        if keep_audio < 0:
            raise ValueError(f"keep_audio is a number of bytes (0 keeps none), not {keep_audio}")
        if livekit_api_key is None:
            livekit_api_key = "API" + secrets.token_urlsafe(9)
        if livekit_api_secret is None:
            livekit_api_secret = secrets.token_urlsafe(32)
        keys: dict[str, Optional[str]] = dict(api_keys or {})
        if api_key:
            keys.setdefault(api_key, DEFAULT_TENANT)
        self.host = host
        self._requested_port = port
        self._port: Optional[int] = None
        self._runner: Optional[web.AppRunner] = None
        self._state = ServerState(
            ServerConfig(
                engine=engine,
                api_keys=keys,
                livekit_url=livekit_url,
                livekit_api_key=livekit_api_key,
                livekit_api_secret=livekit_api_secret,
                hook_secret=hook_secret,
                sip_room_prefix=sip_room_prefix,
                sip_outbound_address=sip_outbound_address,
                recording_storage=recording_storage,
                control=control,
                keep_audio=keep_audio,
                keep_records=keep_records,
                request_timeout=request_timeout,
                stt_hint=stt_hint,
                max_message_bytes=max_message_bytes,
                sip_hook_hosts=None if sip_hook_hosts is None else frozenset(sip_hook_hosts),
                tts_realtime=tts_realtime,
                room_departure_timeout=room_departure_timeout,
                room_empty_timeout=room_empty_timeout,
            ),
            faults or Faults(),
            tuple(sip_hooks),
        )

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Bind and start serving.

        A failed or cancelled start leaves nothing running: the engine it made is closed
        (its threads end, its speech worker process exits) and forgotten, so a later
        ``start()`` makes a new one.

        Raises:
            EngineUnavailable: the default engine cannot be created or started (e.g.
                ``local`` without its optional dependencies, or a modified model file).
            OSError: the port cannot be bound (e.g. it is already in use).
        """
        if self._runner is not None:
            return
        name = self._state.config.engine
        made = not self._state.has_engine(name)
        try:
            await self._start_engine(name, made)
            runner = await self._serve()
        except BaseException:
            if made:
                self._state.discard_engine(name)
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        _serving.serving(self.host, self._port, asyncio.get_running_loop())
        logger.info("local Sayna server listening on %s (engine %s)", self.url, self.engine)

    async def _start_engine(self, name: str, made: bool) -> None:
        """Make the default engine and wait until it is ready (off the event loop).

        Fails fast on a missing extra or a bad model file; engines load their models in
        worker threads, never on the loop.
        """
        making = asyncio.ensure_future(asyncio.to_thread(self._state.engine, name))
        try:
            engine = await asyncio.shield(making)
        except asyncio.CancelledError:
            if made:  # the thread goes on making it: close it once it exists
                making.add_done_callback(lambda _: self._state.discard_engine(name))
            raise
        try:
            await engine.start()
        except RuntimeError as exc:
            raise EngineUnavailable(f"engine {name!r} cannot start: {exc}") from exc

    async def _serve(self) -> web.AppRunner:
        """The application, bound to the port and serving."""
        app = web.Application(
            client_max_size=BODY_LIMIT,
            middlewares=make_middlewares(
                lambda: self._state.auth,
                self._state.records,
                control_guard(self.host) if self._state.config.control else None,
            ),
        )
        app[STATE_KEY] = self._state
        app[SERVER_KEY] = self
        add_core_routes(app)
        add_livekit_routes(app)
        add_sip_routes(app)
        if self._state.config.control:
            add_control_routes(app)
        runner_kwargs: dict[str, Any] = {
            "handle_signals": False,
            "access_log": None,
            # Closes connections whose request headers do not arrive (and idle keep-alives).
            "keepalive_timeout": self._state.config.request_timeout,
        }
        if "shutdown_timeout" in inspect.signature(web.BaseRunner.__init__).parameters:
            runner_kwargs["shutdown_timeout"] = 2.0
        runner = web.AppRunner(app, **runner_kwargs)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self._requested_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        return runner

    async def stop(self) -> None:
        """Close every session, task and socket. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        if self._port is not None:
            _serving.stopped(self._port)
        await self._state.aclose()
        await runner.cleanup()

    async def __aenter__(self) -> LocalServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        await self.stop()

    # --- addresses and state -------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port.

        Raises:
            RuntimeError: the server is not started.
        """
        if self._port is None:
            raise RuntimeError("LocalServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://<host>:<port>`` (the base URL for SDK clients); an IPv6 host is in
        brackets, as URLs write it (``http://[::1]:3001``)."""
        return f"http://{self._url_host}:{self.port}"

    @property
    def ws_url(self) -> str:
        """``ws://<host>:<port>/ws`` (an IPv6 host in brackets)."""
        return f"ws://{self._url_host}:{self.port}/ws"

    @property
    def _url_host(self) -> str:
        host = self.host
        return f"[{host}]" if ":" in host and not host.startswith("[") else host

    @property
    def engine(self) -> str:
        """The default engine name."""
        return self._state.config.engine

    @property
    def records(self) -> Records:
        """What the server received and sent (see :mod:`sayna_client.server.records`)."""
        return self._state.records

    @property
    def faults(self) -> Faults:
        """Faults applied to WebSocket sessions opened from now on."""
        return self._state.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._state.faults = value

    @property
    def rooms(self) -> dict[str, Room]:
        """The simulated LiveKit rooms by name (live objects; do not mutate)."""
        return self._state.livekit.rooms

    @property
    def livekit_api_key(self) -> str:
        """The LiveKit API key tokens are issued under (``iss``); generated when not given."""
        return self._state.config.livekit_api_key

    @property
    def livekit_api_secret(self) -> str:
        """The LiveKit API secret signing tokens and verifying ``/livekit/webhook``
        (random when not given). Keep it out of logs."""
        return self._state.config.livekit_api_secret

    @property
    def turn_detect_threshold(self) -> float:
        """Server-global turn-detection threshold set by ``update_config``."""
        return self._state.turn_detect_threshold

    async def wait_transcribed(
        self, stream_id: str, audio_bytes: int, timeout: Optional[float] = None
    ) -> int:
        """Wait until the recogniser of the open session ``stream_id`` has finished with
        the first ``audio_bytes`` bytes of audio input since its ``config``: decoded,
        its results queued for the socket in order. However slowly the engine runs (a
        loaded machine), this waits for the engine, not for a clock.

        A client that sent ``audio_bytes`` bytes (``client.metrics.audio_bytes_sent``)
        has every result of that audio once it received as many ``stt_result``
        messages as this returns (the server sends them in order).

        Args:
            stream_id: the session's ``stream_id`` (``client.received_stream_id``).
            audio_bytes: bytes of binary audio the client sent since its ``config``.
            timeout: seconds to wait at most (``None``: no limit).

        Returns:
            How many ``stt_result`` messages the session's recogniser has sent since
            its ``config`` (forced speech-finals included).

        Raises:
            ValueError: ``audio_bytes`` is negative.
            LookupError: no open session has this ``stream_id``, or it has no
                recogniser (no ``config`` yet, or ``audio: false``).
            ConnectionError: the session ended before its recogniser got that far.
            asyncio.TimeoutError: not within ``timeout`` seconds.
        """
        if audio_bytes < 0:
            raise ValueError(f"audio_bytes must be 0 or more, got {audio_bytes}")
        session = next((s for s in self._state.sessions if s.stream_id == stream_id), None)
        gate = session.stt if session is not None else None
        if session is None or gate is None:
            raise LookupError(f"no open session {stream_id!r} with a recogniser")
        record = session.record

        def done() -> bool:
            return gate.decoded_bytes >= audio_bytes or record.closed.is_set()

        await self.records.wait_for(done, math.inf if timeout is None else timeout)
        if gate.decoded_bytes < audio_bytes:
            raise ConnectionError(
                f"session {stream_id} ended after {gate.decoded_bytes} of {audio_bytes} "
                "bytes of audio were transcribed"
            )
        return gate.results_sent

    # --- scripted speech ----------------------------------------------------------------

    def script_speech(
        self, *transcripts: str, unit: str = "utterance", stream_id: Optional[str] = None
    ) -> list[ScriptedLine]:
        """Say what the caller "says" next, for the ``fake`` engine's recognisers.

        Audio must still flow: the fake STT hears an utterance in the bursts of the
        client's audio (any loud sound; ``fake.render_words`` makes some) and ends it
        after 300 ms of silence with one final, speech-final result. With a script, that
        result's transcript is the next scripted line instead of ``"word word ..."``.

        Args:
            *transcripts: lines in the order they will be heard.
            unit: ``"utterance"`` - each line is the whole text of the next utterance
                (interims reveal it one word per burst); ``"burst"`` - each line is the
                text of the next audio burst, and the utterance's final joins them.
            stream_id: only the session with this ``stream_id`` hears the lines
                (default: whichever session hears speech first).

        Returns:
            Every line still pending, in order.

        Raises:
            ValueError: unknown ``unit`` or a blank transcript.
        """
        return self._state.fake_engine().script.add(transcripts, unit, stream_id)

    @property
    def scripted_speech(self) -> list[ScriptedLine]:
        """Scripted lines not heard yet, in order."""
        return self._state.fake_engine().script.pending()

    def clear_scripted_speech(self) -> None:
        """Forget every scripted line not heard yet."""
        self._state.fake_engine().script.clear()

    # --- scripted TTS failures ------------------------------------------------------------

    def fail_tts(
        self,
        message: str = DEFAULT_TTS_FAILURE,
        *,
        after_chunks: int = 0,
        times: int = 1,
        stream_id: Optional[str] = None,
        refuse: bool = False,
    ) -> list[TTSFailure]:
        """Make the next TTS requests fail as a provider failure does on Sayna (section 6.7).

        The next ``times`` requests a session takes up (in order, whatever the engine)
        send ``after_chunks`` audio chunks, then ``{"type": "error", "message": "TTS
        error: <message>"}``; ``tts_playback_complete`` still follows when nothing else
        is queued, and the requests queued behind it are synthesized as usual.

        Args:
            message: the provider's error text (``TTS error: `` is put before it).
            after_chunks: audio chunks sent before the failure (0: none); a speech with
                fewer chunks fails after its last one.
            times: how many requests fail.
            stream_id: only requests of the session with this ``stream_id`` fail
                (default: those of whichever session synthesizes next).
            refuse: fail the next ``speak`` itself instead, when it is read, as Sayna
                does when synthesis runs inline (Google TTS) or the provider is not
                connected: ``Failed to synthesize speech: TTS error: <message>``, and
                neither audio nor a completion for it.

        Returns:
            Every failure still pending, in order.

        Raises:
            ValueError: ``after_chunks`` below 0 (or not 0 with ``refuse``), or ``times``
                below 1.
        """
        if isinstance(after_chunks, bool) or not isinstance(after_chunks, int) or after_chunks < 0:
            raise ValueError(f"after_chunks is a number of chunks >= 0, not {after_chunks!r}")
        if isinstance(times, bool) or not isinstance(times, int) or times < 1:
            raise ValueError(f"times is a number of requests >= 1, not {times!r}")
        if refuse and after_chunks:
            raise ValueError("a refused speak has no audio: after_chunks must be 0 with refuse")
        failures = self._state.tts_failures
        failures.add(TTSFailure(message, after_chunks, stream_id, bool(refuse)), times)
        return failures.pending()

    @property
    def tts_failures(self) -> list[TTSFailure]:
        """Scripted TTS failures not used yet, in order (see :meth:`fail_tts`)."""
        return self._state.tts_failures.pending()

    def clear_tts_failures(self) -> None:
        """Forget every scripted TTS failure not used yet."""
        self._state.tts_failures.clear()

    # --- LiveKit injection ---------------------------------------------------------------

    async def inject_participant(
        self,
        room: str,
        identity: str,
        *,
        name: str = "",
        kind: str = "STANDARD",
        attributes: Optional[Mapping[str, str]] = None,
        metadata: str = "",
        audio: bool = True,
    ) -> dict[str, Any]:
        """A remote participant joins ``room`` (created if missing).

        Every session in the room receives ``participant_connected``, and sessions in
        audio mode also ``track_subscribed`` when ``audio`` (a microphone track).
        Returns the participant as ``ParticipantInfo`` JSON.
        """
        target = self._state.livekit.ensure_room(room, None, sayna=False)
        participant = Participant(
            identity=identity,
            name=name,
            kind=kind,
            metadata=metadata,
            attributes=dict(attributes or {}),
            tracks=[Track(new_id("TR_"), "audio", "microphone")] if audio else [],
        )
        self._state.participant_joined(target, participant)
        self.records.touch()
        return participant.to_wire()

    async def inject_sip_participant(
        self,
        room: str,
        identity: str,
        *,
        from_phone_number: str,
        to_phone_number: str,
        sip_host: Optional[str] = None,
        name: str = "",
        headers: Optional[Mapping[str, str]] = None,
    ) -> dict[str, Any]:
        """A SIP caller joins ``room``: attributes ``sip.phoneNumber`` (caller),
        ``sip.trunkPhoneNumber`` (called DID) and ``sip.h.<header>`` for ``headers``;
        ``sip_host`` sets ``sip.h.to`` to ``sip:<to>@<host>``. A matching SIP hook with a
        secret receives the signed webhook (see ``records.webhooks``)."""
        attributes = {
            "sip.phoneNumber": from_phone_number,
            "sip.trunkPhoneNumber": to_phone_number,
        }
        if sip_host is not None:
            attributes["sip.h.to"] = f"<sip:{to_phone_number}@{sip_host}>"
        for header, value in (headers or {}).items():
            attributes[f"sip.h.{header.lower()}"] = value
        return await self.inject_participant(
            room, identity, name=name, kind="SIP", attributes=attributes
        )

    async def inject_participant_left(self, room: str, identity: str) -> bool:
        """A participant leaves: sessions get ``participant_disconnected`` then close
        (payload-less Close, 100 ms later). Returns ``False`` if it was not there."""
        target = self._state.livekit.rooms.get(room)
        return target is not None and self._state.participant_left(target, identity)

    async def inject_data(
        self,
        room: str,
        payload: Union[bytes, str],
        *,
        identity: Optional[str] = "user",
        topic: Optional[str] = None,
    ) -> bool:
        """Publish a data packet from ``identity`` (``None`` = server API, shown as
        ``"server"`` and never filtered by ``listen_participants``). Returns ``False``
        when the room does not exist."""
        target = self._state.livekit.rooms.get(room)
        if target is None:
            return False
        data = payload.encode() if isinstance(payload, str) else payload
        self._state.publish_data(target, identity, data, topic)
        return True

    async def inject_audio(self, room: str, identity: str, pcm16: bytes) -> bool:
        """Room audio from ``identity`` (16-bit mono PCM at the session's TTS rate) is fed
        to the STT of every audio-mode session in ``room`` (honouring
        ``listen_participants``) and goes into the room's recordings (every
        participant's audio). Returns ``False`` when the room does not exist."""
        target = self._state.livekit.rooms.get(room)
        if target is None:
            return False
        target.record(identity, pcm16)
        for session in list(self._state.sessions):
            if session.room is target:
                await session.room_audio(identity, pcm16)
        return True
