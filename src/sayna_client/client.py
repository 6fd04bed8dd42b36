"""``SaynaClient``: the seed API, a thin facade over REST, the WebSocket session and the hub."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import warnings
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Iterable
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

import aiohttp

from ._audio_lane import AudioLane
from ._callbacks import CallbackMethods, Unsubscribe
from ._checks import (
    MAX_AUDIO_FRAME,
    as_frame,
    bounded,
    check_text,
    check_type,
    has_google_auth,
    reject_frame,
)
from ._commands import CommandMethods
from ._config import (
    ReconnectPolicy,
    RetryPolicy,
    Timeouts,
    check_seconds,
    derive_urls,
)
from ._conversation import ConversationMethods
from ._defaults import CLIENT_DEFAULT
from ._defaults import ClientDefault as _ClientDefault
from ._http import DEFAULT_MAX_RESPONSE_BYTES
from ._redact import safe_url, split_userinfo
from ._rest import RestClient
from .agents.barge_in import DEFAULT_BACKCHANNELS, DEFAULT_FILLERS, BargeIn, BargeInEvent
from .agents.metrics import TurnMetrics
from .agents.segmenter import SentenceSegmenter
from .agents.speech import AudioOutput, SpeechHandle, SpeechQueue
from .agents.watchdog import IdleEvent, IdleWatchdog
from .errors import (
    SaynaConfigRejectedError,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaNotConnectedError,
    SaynaNotReadyError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from .protocol.commands import (
    ClearMessage,
    encode,
    encode_config,
    encode_speak,
)
from .protocol.events import ConnectionClosed, ReadyMessage
from .realtime.connection import NO_STATUS_RECEIVED, WebSocketConnection
from .realtime.conversation import SessionTracker
from .realtime.gate import SessionGate
from .realtime.hub import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES, EventHub
from .realtime.reconnect import STABLE_AFTER, AudioHold, is_recoverable, run_reconnect
from .types import LiveKitConfig, LoadingAudioConfig, STTConfig, TTSConfig
from .types.credentials import load_local_google_credentials

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["SaynaClient", "Unsubscribe"]

logger = logging.getLogger("sayna_client")

_DEFAULT_TIMEOUTS = Timeouts()
_DEFAULT_RETRY = RetryPolicy()
_NO_HEADERS: dict[str, str] = {}  # never mutated (aiohttp copies what it is given)


def _alive(ref: weakref.ref[SaynaClient]) -> SaynaClient:
    client = ref()
    if client is None:
        raise SaynaNotConnectedError()
    return client


class SaynaClient(RestClient, CommandMethods, CallbackMethods, ConversationMethods):
    """A client for one Sayna server: REST calls, and one WebSocket voice session at a time.

    Args:
        url: server URL, ``http(s)://host[:port]`` or ``ws(s)://host[:port][/ws]``.
        stt_config: speech-to-text settings (required unless ``without_audio``).
        tts_config: text-to-speech settings (required unless ``without_audio``).
        livekit_config: join a LiveKit room with this session.
        without_audio: control-only session (``audio: false``): no STT/TTS.
        api_key: sent as ``Authorization: Bearer``; defaults to ``SAYNA_API_KEY``.
        stream_id: session id echoed in ``ready`` and used for recordings.
        loading_audio: a loading clip for LiveKit sessions (see ``loading_start``).
        timeouts: connect / ready / request / close deadlines.
        retry: retry policy for idempotent REST requests.
        heartbeat: seconds within which a dead server is detected by WebSocket
            ping/pong (``None`` disables pings).
        max_queue: per-consumer event queue bound: each ``events()`` / ``turns()``
            iterator and the callbacks' dispatcher hold at most this many events.
        max_queue_bytes: per-consumer bound on queued audio, in bytes (16 MiB by
            default); past either bound the oldest events are dropped and reported
            (``EventsDropped``).
        ssl: passed to aiohttp (``True`` verifies certificates; an ``SSLContext`` for
            private CAs). Verification is never turned off by default.
        reconnect: opt-in automatic reconnection (see ``ReconnectPolicy``).
        proxy: an HTTP proxy URL (``http://[user:pass@]host:port``) for REST and the
            WebSocket upgrade. Without it, ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``
            from the environment apply (to a session the client makes itself).
        http_session: an ``aiohttp.ClientSession`` to send everything through, e.g. one
            shared by many clients so they share its connection pool. The client never
            closes it; its own settings (``trust_env``, connector limits) apply. Without
            it, the clients of one event loop share one session the SDK makes (no cookie
            jar, no connection limit) and closes when the last of them disconnects; one
            client's ``disconnect()`` never closes another's socket.
        max_response_bytes: REST response bodies larger than this raise
            ``SaynaInvalidResponseError`` without being read further (default 64 MiB;
            ``None``: no bound). Error bodies are read up to 64 KiB.

    A ``user:password@`` in ``url`` is sent as HTTP Basic authentication (instead of
    ``api_key``) and, like the API key, any query value and a proxy's credentials, never
    appears in a repr, message or log line of this client.

    Raises:
        SaynaValidationError: a bad argument, named with the fix.
    """

    def __init__(
        self,
        url: str,
        stt_config: Optional[STTConfig] = None,
        tts_config: Optional[TTSConfig] = None,
        livekit_config: Optional[LiveKitConfig] = None,
        without_audio: bool = False,
        api_key: Optional[str] = None,
        *,
        stream_id: Optional[str] = None,
        loading_audio: Optional[LoadingAudioConfig] = None,
        timeouts: Optional[Timeouts] = None,
        retry: Optional[RetryPolicy] = None,
        heartbeat: Optional[float] = 20.0,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        ssl: Any = True,
        reconnect: Optional[ReconnectPolicy] = None,
        proxy: Optional[str] = None,
        http_session: Optional[aiohttp.ClientSession] = None,
        max_response_bytes: Optional[int] = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        bare = split_userinfo(url.strip())[0] if isinstance(url, str) else url
        self._ws_url = derive_urls(bare)[1]
        self.url = url
        check_type("stt_config", stt_config, STTConfig, "STTConfig(provider='deepgram')")
        check_type("tts_config", tts_config, TTSConfig, "TTSConfig(provider='deepgram')")
        check_type("livekit_config", livekit_config, LiveKitConfig, "LiveKitConfig(room_name=..)")
        check_type("loading_audio", loading_audio, LoadingAudioConfig, "LoadingAudioConfig(..)")
        if not isinstance(without_audio, bool):
            raise SaynaValidationError(
                f"without_audio must be True or False, got {without_audio!r}"
            )
        if not without_audio and (stt_config is None or tts_config is None):
            raise SaynaValidationError(
                "stt_config and tts_config are required when audio is enabled; pass both, "
                "or without_audio=True for a control-only session"
            )
        if stream_id is not None and (
            not isinstance(stream_id, str) or "/" in stream_id or ".." in stream_id
        ):
            raise SaynaValidationError(
                "stream_id must be a string without '/' or '..' (it names the recording path)"
            )
        check_type("timeouts", timeouts, Timeouts, "Timeouts(connect=5)")
        check_type("retry", retry, RetryPolicy, "RetryPolicy(max_retries=2)")
        check_type("reconnect", reconnect, ReconnectPolicy, "ReconnectPolicy(max_attempts=10)")
        check_seconds("heartbeat", heartbeat)
        if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
            raise SaynaValidationError(f"max_queue must be a positive integer, got {max_queue!r}")
        if (
            isinstance(max_queue_bytes, bool)
            or not isinstance(max_queue_bytes, int)
            or max_queue_bytes < 1
        ):
            raise SaynaValidationError(
                "max_queue_bytes must be a positive integer (bytes of audio a consumer "
                "may have queued, e.g. 16 * 1024 * 1024)"
            )
        self.stt_config = stt_config
        self.tts_config = tts_config
        self.livekit_config = livekit_config
        self.loading_audio = loading_audio
        self.without_audio = without_audio
        self.stream_id = stream_id
        self.timeouts = timeouts or _DEFAULT_TIMEOUTS
        self.retry = retry or _DEFAULT_RETRY
        self.heartbeat = heartbeat
        self.reconnect_policy = reconnect
        RestClient.__init__(
            self,
            url,
            api_key,
            timeout=self.timeouts.request,
            retry=self.retry,
            ssl=ssl,
            proxy=proxy,
            http_session=http_session,
            max_response_bytes=max_response_bytes,
        )
        self._http.handshake_timeout = self.timeouts.connect
        self._hub = EventHub(max_queue, max_queue_bytes)
        self._tracker = SessionTracker()
        self._hub.observe_audio(self._tracker.on_tts_audio)
        self._hub.observe("tts_playback_complete", self._tracker.on_playback_complete)
        self._hub.derive("stt_result", self._tracker.on_stt_result)  # -> Turn events
        self._hub.observe("participant_disconnected", self._tracker.on_participant_disconnected)
        self._conn: Optional[WebSocketConnection] = None
        self._ready_msg: Optional[ReadyMessage] = None
        self._gate = SessionGate()
        self._reconnect_task: Optional[asyncio.Task[None]] = None
        self._audio_hold: Optional[AudioHold] = None
        self._lane: Optional[AudioLane] = None
        #: (attempts spent, loop time) of the last automatic reconnect that succeeded.
        self._last_recovery: Optional[tuple[int, float]] = None
        self._speech: Optional[SpeechQueue] = None
        self._speeches()  # watches from the start, for turn_metrics

    def __repr__(self) -> str:
        state = "ready" if self.ready else ("connected" if self.connected else "disconnected")
        return f"SaynaClient(url={safe_url(self._http_base)!r}, {state})"

    # --- resources -----------------------------------------------------------------

    async def __aenter__(self) -> SaynaClient:
        return self

    async def __aexit__(self, exc_type: object, *exc_info: object) -> None:
        # Leaving normally lets the conversation finish; an exception aborts at once.
        await self.disconnect(graceful=exc_type is None)

    async def aclose(self) -> None:
        """Same as :meth:`disconnect` (graceful)."""
        await self.disconnect()

    @contextlib.asynccontextmanager
    async def session(self) -> AsyncIterator[SaynaClient]:
        """Connect on entry and disconnect on exit, in one statement (like the Node SDK's
        ``saynaConnect()``)::

            async with SaynaClient(url, stt, tts).session() as client:
                await client.speak("Hello!")

        Yields:
            this client, ready (the server's ``ready`` has arrived).

        Raises:
            what :meth:`connect` raises, on entry (nothing is left open then).
        """
        graceful = False  # an exception (or a failed connect) aborts, as `async with`
        try:
            await self.connect()
            yield self
            graceful = True
        finally:
            await self.disconnect(graceful=graceful)

    # --- state ---------------------------------------------------------------------

    @property
    def stt_config(self) -> Optional[STTConfig]:
        """The speech-to-text settings: sent with the next ``config`` (``reconfigure()``
        sends new ones now). Audio passed to ``on_audio_input`` must be in this format."""
        return self._stt_config

    @stt_config.setter
    def stt_config(self, value: Optional[STTConfig]) -> None:
        self._stt_config = value

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._conn is not None and not self._conn.closed

    @property
    def ready(self) -> bool:
        """True once the server sent ``ready`` and while the socket stays open."""
        return self._ready_msg is not None and self.connected

    @property
    def livekit_room_name(self) -> Optional[str]:
        """The LiveKit room of this session (after ready, LiveKit sessions only)."""
        return self._ready_msg.livekit_room_name if self._ready_msg else None

    @property
    def livekit_url(self) -> Optional[str]:
        """The LiveKit URL participants join (after ready)."""
        return self._ready_msg.livekit_url if self._ready_msg else None

    @property
    def sayna_participant_identity(self) -> Optional[str]:
        """Sayna's identity in the LiveKit room (after ready, LiveKit sessions only)."""
        return self._ready_msg.sayna_participant_identity if self._ready_msg else None

    @property
    def sayna_participant_name(self) -> Optional[str]:
        """Sayna's display name in the LiveKit room (after ready, LiveKit sessions only)."""
        return self._ready_msg.sayna_participant_name if self._ready_msg else None

    @property
    def received_stream_id(self) -> Optional[str]:
        """The ``stream_id`` the server confirmed in ``ready`` (key for ``get_recording``)."""
        return self._ready_msg.stream_id if self._ready_msg else None

    # --- connecting ----------------------------------------------------------------

    def _config_text(self) -> str:
        return encode_config(
            stream_id=self.stream_id,
            audio=not self.without_audio,
            stt_config=None if self.without_audio else self.stt_config,
            tts_config=None if self.without_audio else self.tts_config,
            livekit=self.livekit_config,
            loading_audio=self.loading_audio,
        )

    async def connect(self) -> None:
        """Open the WebSocket, send the config, and return once the server sent ``ready``.

        Calling it when already ready does nothing. Cancelling it closes whatever it
        had opened.

        Raises:
            SaynaTimeoutError: no socket within ``timeouts.connect`` or no ``ready``
                within ``timeouts.ready`` (the socket is closed).
            SaynaConfigRejectedError: the server answered the config with an error; the
                socket stays open: call :meth:`reconfigure` with a fixed config, or
                :meth:`disconnect`.
            SaynaAuthenticationError: the upgrade got 401 (API key missing or wrong).
            SaynaConnectionError: the network failed or the socket closed first;
                ``SaynaConnectionClosedError`` when :meth:`disconnect` or :meth:`abort`
                (from another task) ended the attempt.
            SaynaEventLoopError: the client's session lives on another running loop.

        Concurrency: ``connect()``, ``reconfigure()`` and the close of ``disconnect()``
        run one at a time, in call order, from any tasks of the session's loop. A
        ``connect()`` during an automatic reconnection stops it and connects at once.
        """
        self._adopt_loop()
        task = self._reconnect_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()  # the caller takes over from the automatic reconnection
            await asyncio.gather(task, return_exceptions=True)
        async with self._gate.hold("connect()"):
            if self.ready:
                return
            if self._conn is not None and not self._conn.closed:
                # A config was rejected earlier: send the current one again.
                await self._configure(self._conn)
                return
            try:
                await self._open()
            except BaseException:
                if self._conn is None:
                    # Nothing stays open after a failed connect, even when the caller
                    # never reaches disconnect() (a Quick Start whose exception ends
                    # the program); a later REST call makes a new HTTP session.
                    await self._http.close()
                raise

    def _adopt_loop(self) -> None:
        """Raise ``SaynaEventLoopError`` when the session lives on another running loop;
        forget a session whose loop has been closed (nothing of it can run any more)."""
        if self._gate.check_loop():
            logger.info("The loop of the previous Sayna session was closed; starting afresh")
            self._conn = None
            self._reconnect_task = None
            self._audio_hold = None
            self._set_ready(None)
            self._gate.release()
            self._http = self._new_transport()  # its aiohttp session belonged to that loop
            self._http.handshake_timeout = self.timeouts.connect

    async def _open(self) -> None:
        """Open a socket and configure it (the caller holds the gate)."""
        old = self._conn
        if old is not None:
            await old.close(self.timeouts.close)  # closed already; release what remains
        headers = self._auth_headers or _NO_HEADERS
        self._set_ready(None)
        started = self._tracker.connecting()
        http = self._http
        http.handshake_timeout = self.timeouts.connect  # for a session made from now on
        proxy, proxy_auth = http.proxy_for(self._ws_url)
        # Through a forward proxy the upgrade is `GET http://host/ws`: proxies know the
        # http scheme (ws:// is not one they all accept); wss:// tunnels with CONNECT.
        ws_url = "http" + self._ws_url[2:] if proxy and self._ws_url[:5] == "ws://" else None
        conn = await WebSocketConnection.open(
            http.session(),
            ws_url or self._ws_url,
            proxy=proxy,
            proxy_auth=proxy_auth,
            headers=headers,
            heartbeat=self.heartbeat,
            connect_timeout=self.timeouts.connect,
            ssl=self._ssl,
            hub=self._hub,
            on_closed=self._on_closed,
            on_ready=self._on_ready,
            activity=self._tracker.activity_count,
            redactor=self._redactor,
        )
        self._conn = conn
        self._gate.bind()
        try:
            await self._configure(conn)
            self._tracker.ready(started)
        except SaynaConfigRejectedError:
            raise  # the socket stays open for reconfigure()
        except BaseException:
            self._conn = None
            await conn.close(self.timeouts.close)
            raise

    def _configure(self, conn: WebSocketConnection) -> Awaitable[ReadyMessage]:
        """Send the current config on ``conn``; the awaitable ends at ``ready``."""
        if has_google_auth(self.stt_config) or has_google_auth(self.tts_config):
            return self._configure_with_credential_files(conn)
        return conn.configure(self._config_text(), self.timeouts.ready)

    async def _configure_with_credential_files(self, conn: WebSocketConnection) -> ReadyMessage:
        # 0.0.18 compatibility: credentials given as a local file path are read here
        # (in a thread: file I/O) and sent as JSON.
        self.stt_config = await asyncio.to_thread(load_local_google_credentials, self.stt_config)
        self.tts_config = await asyncio.to_thread(load_local_google_credentials, self.tts_config)
        return await conn.configure(self._config_text(), self.timeouts.ready)

    def _set_ready(self, ready: Optional[ReadyMessage]) -> None:
        """Record the session's ``ready`` (None: not ready); on_audio_input looks again."""
        self._ready_msg = ready
        self._lane = None

    def _on_ready(self, ready: ReadyMessage) -> None:
        self._set_ready(ready)
        logger.info(
            "Sayna session ready (stream_id=%s, livekit_room=%s)",
            ready.stream_id,
            ready.livekit_room_name,
        )
        if self.stream_id is None and self.reconnect_policy is not None:
            # Reconnects must resume the same stream (recording key, server logs).
            self.stream_id = ready.stream_id

    def _on_closed(self, info: ConnectionClosed) -> None:
        """Called by the reader when a socket ends (any reason)."""
        self._lane = None  # on_audio_input must not use this connection any more
        policy = self.reconnect_policy
        will_reconnect = policy is not None and self._ready_msg is not None and is_recoverable(info)
        used = self._attempts_spent() if will_reconnect else 0
        if policy is not None and policy.max_attempts is not None and used >= policy.max_attempts:
            will_reconnect = False  # it keeps failing right after recovering: give up
            logger.error(
                "Sayna session lost again within %s s of reconnecting; giving up after %d "
                "attempts (ReconnectPolicy.max_attempts)",
                STABLE_AFTER,
                used,
            )
        info.will_reconnect = will_reconnect
        self._tracker.closed(
            lambda: SaynaConnectionClosedError(
                f"The Sayna session closed while waiting: {info.message}",
                code=info.code,
                reason=info.reason,
            )
        )
        self._hub.publish(info)
        if info.initiated_by_client:
            return
        if info.code == NO_STATUS_RECEIVED and self._tracker.peer_left:
            # The server ends a LiveKit session this way ~100 ms after a participant
            # left (protocol §6.6): the normal end, not an error.
            logger.info("Sayna session ended after a participant left the room")
        else:
            logger.warning("Sayna WebSocket closed by the server or network: %s", info.message)
            self._hub.notify_callbacks("lost", info)
        if will_reconnect and policy is not None:
            self._audio_hold = AudioHold(policy.buffer_bytes)
            self._reconnect_task = asyncio.get_running_loop().create_task(
                self._reconnect(policy, info, used), name="sayna-reconnect"
            )
        elif self._ready_msg is not None:
            self._end_of_session()

    def _end_of_session(self) -> None:
        """The session is over for good: iterators end, callbacks drain on their own."""
        self._set_ready(None)
        self._hub.end_session()
        self._hub.close_iterators()

    def _attempts_spent(self) -> int:
        """Reconnect attempts already spent on this outage: those of the last recovery
        when the session is lost again within ``STABLE_AFTER`` seconds of it, else 0."""
        last, self._last_recovery = self._last_recovery, None
        if last is not None and asyncio.get_running_loop().time() - last[1] < STABLE_AFTER:
            return last[0]
        return 0

    async def _reconnect(self, policy: ReconnectPolicy, info: ConnectionClosed, used: int) -> None:
        async def open_session() -> None:
            async with self._gate.hold("reconnecting"):
                await self._open()

        loop = asyncio.get_running_loop()
        ok = False
        try:
            succeeded = await run_reconnect(
                policy,
                info,
                open_session=open_session,
                replay=self._replay_audio,
                publish=self._hub.publish,
                attempts_used=used,
            )
            ok = succeeded is not None
            if succeeded is not None:
                self._last_recovery = (succeeded, loop.time())
            conn = self._conn
            if not ok and conn is not None:
                # A refused attempt (rejected config) leaves its socket open: the
                # session is over, so close it; later sends raise "not connected".
                await conn.close(self.timeouts.close)
        finally:
            self._reconnect_task = None
            hold, self._audio_hold = self._audio_hold, None
            report = hold.discard() if hold is not None and not ok else None
            if report is not None:
                self._report(report)
            if not ok:
                self._end_of_session()

    async def _replay_audio(self) -> tuple[int, int]:
        """Send the audio held during the outage, in order; report what overflowed."""
        hold = self._audio_hold
        if hold is None:
            return 0, 0
        frames = hold.take()
        conn = self._ready_connection()
        for frame in frames:
            await conn.send_bytes(frame)
        report = hold.take_dropped()
        if report is not None:
            self._report(report)
        self._audio_hold = None
        return len(frames), sum(map(len, frames))

    def _report(self, event: Any) -> None:
        """An SDK-side problem: to the event stream and the error callbacks."""
        logger.warning("%s", event.message)
        self._hub.publish(event)

    @property
    def reconnecting(self) -> bool:
        """True while an automatic reconnection is in progress (see ``ReconnectPolicy``)."""
        return self._reconnect_task is not None

    async def reconfigure(
        self,
        *,
        stt_config: Optional[STTConfig] = None,
        tts_config: Optional[TTSConfig] = None,
        livekit_config: Optional[LiveKitConfig] = None,
        loading_audio: Optional[LoadingAudioConfig] = None,
    ) -> None:
        """Replace parts of the session config and send it again, waiting for ``ready``.

        Use it after :class:`SaynaConfigRejectedError` to send a corrected config on the
        same socket, or on a ready session to switch providers. When not connected it
        only stores the new values for the next :meth:`connect`.

        Raises:
            the same errors as :meth:`connect`.
        """
        check_type("stt_config", stt_config, STTConfig, "STTConfig(provider='deepgram')")
        check_type("tts_config", tts_config, TTSConfig, "TTSConfig(provider='deepgram')")
        check_type("livekit_config", livekit_config, LiveKitConfig, "LiveKitConfig(room_name=..)")
        check_type("loading_audio", loading_audio, LoadingAudioConfig, "LoadingAudioConfig(..)")
        if stt_config is not None:
            self.stt_config = stt_config
        if tts_config is not None:
            self.tts_config = tts_config
        if livekit_config is not None:
            self.livekit_config = livekit_config
        if loading_audio is not None:
            self.loading_audio = loading_audio
        conn = self._conn
        if conn is None or conn.closed:
            return
        self._adopt_loop()
        async with self._gate.hold("reconfigure()"):
            conn = self._conn
            if conn is None or conn.closed:
                return  # closed while waiting: the values are kept for connect()
            self._set_ready(None)
            await self._configure(conn)

    async def disconnect(
        self,
        *,
        graceful: bool = True,
        drain: Union[float, _ClientDefault, None] = CLIENT_DEFAULT,
    ) -> None:
        """Let the conversation finish, then close the session and release every socket,
        task and HTTP session.

        Graceful (the default): first wait, at most ``drain`` seconds, until speech
        already sent has been synthesized and received (``tts_playback_complete``, with
        callbacks caught up) and the results of audio already sent have arrived
        (the current turn's speech-final, then no new result for a moment). A stream
        that stopped mid-utterance gets no final: call :meth:`finish_audio` first.
        Then close: a Close handshake bounded by ``timeouts.close``, after which the
        connection is dropped whatever the server does; callbacks get up to
        ``timeouts.close`` seconds to finish queued events; ``events()`` iterators end
        after draining. Audio held for a reconnect that will not happen is reported as
        ``AudioDropped``.

        Safe in every state (never connected, REST-only use, after the server closed
        the socket, after a failed connect, while reconnecting) and safe to call twice.
        A ``connect()`` or ``reconfigure()`` running in another task is interrupted
        and raises ``SaynaConnectionClosedError``; sends waiting for the server fail
        with it too.

        Args:
            graceful: False closes at once, as :meth:`abort`.
            drain: seconds to let the conversation finish (default ``timeouts.drain``;
                ``None``: no limit). When it passes, the session closes anyway.

        Raises:
            SaynaEventLoopError: the session lives on another running event loop.

        Cancellation: cancelling ``disconnect()`` (while it waits for the conversation
        or while it closes) still closes the session and releases everything: the
        close goes on in a task of its own and takes at most about ``timeouts.close``
        seconds.
        """
        self._adopt_loop()
        try:
            if graceful:
                await self._let_conversation_finish(drain)
        finally:
            closing = asyncio.get_running_loop().create_task(self._close(), name="sayna-close")
            await asyncio.shield(closing)

    async def abort(self) -> None:
        """Close the session at once, as :meth:`disconnect` with ``graceful=False``.

        Speech not yet received and results not yet arrived are lost; the Close
        handshake is still bounded by ``timeouts.close``, after which the connection
        is dropped whatever the server does. Safe in every state; the same
        cancellation guarantee as :meth:`disconnect`.
        """
        await self.disconnect(graceful=False)

    async def _let_conversation_finish(self, drain: Union[float, _ClientDefault, None]) -> None:
        """The graceful half of :meth:`disconnect`. Raises ``SaynaValidationError`` for a
        bad ``drain``, else nothing but ``CancelledError``."""
        timeout = self.timeouts.drain if isinstance(drain, _ClientDefault) else drain
        check_seconds("drain", timeout)
        if not self.ready:
            return  # nothing in flight: never ready, closed, reconnecting
        tracker = self._tracker
        if not (tracker.playback_pending or tracker.turn_pending or tracker.audio_unanswered):
            return  # nothing outstanding (the close lets callbacks finish what is queued)
        try:
            await bounded(self._quiet(always_settle=False), timeout, "disconnect()")
        except SaynaTimeoutError:
            logger.info(
                "disconnect(): the conversation had not finished after %s s (drain); closing",
                timeout,
            )
        except SaynaConnectionError:
            pass  # the session ended meanwhile

    async def _close(self) -> None:
        """Close and release everything (the second half of :meth:`disconnect`)."""
        task = self._reconnect_task
        if task is not None:
            task.cancel()
        self._gate.interrupt()  # a connect()/reconfigure() in another task ends now
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        async with self._gate.hold("disconnect()", interruptible=False):
            conn, self._conn = self._conn, None
            try:
                if conn is not None:
                    await conn.close(self.timeouts.close)
                await self._hub.close_session(self.timeouts.close)
            finally:
                self._set_ready(None)
                self._gate.release()
                self._hub.close_iterators()
                await self._http.close()

    # --- sending -------------------------------------------------------------------

    def _ready_connection(self) -> WebSocketConnection:
        """The ready connection for a send, or the error saying why there is none."""
        conn = self._conn
        if self._gate.loop is not None:
            self._gate.check_loop()  # raises for another live loop; a dead one has no conn
        if conn is None or conn.closed:
            if self._reconnect_task is not None:
                raise SaynaNotReadyError(
                    "The Sayna session is reconnecting; retry after the `reconnected` event "
                    "(audio sent with on_audio_input is held and replayed)"
                )
            info = conn.close_info if conn is not None else None
            if info is not None:
                raise SaynaNotConnectedError(
                    f"The Sayna session has ended ({info.message}); call "
                    "`await client.connect()` to start a new one"
                )
            raise SaynaNotConnectedError()
        if self._ready_msg is None:
            raise SaynaNotReadyError()
        return conn

    async def speak(
        self,
        text: str,
        flush: bool = True,
        allow_interruption: bool = True,
        *,
        wait: bool = False,
        timeout: Optional[float] = None,
    ) -> SpeechHandle:
        """Queue ``text`` for synthesis; audio arrives as ``tts_audio`` events.

        Args:
            text: non-empty text (use :meth:`tts_flush` to send an empty speak).
            flush: sent as given (the current server ignores it; use :meth:`clear`
                to cut speech short).
            allow_interruption: False makes :meth:`clear` a no-op until this speech ends.
            wait: return only when the server reports the queue drained
                (``tts_playback_complete``), i.e. this text is fully synthesized, and
                the callbacks have handled that audio and the completion (called from
                a callback, it cannot wait for the callbacks after it); a :meth:`clear`
                also ends the wait.
            timeout: with ``wait``, seconds to wait at most.

        Returns:
            a :class:`~sayna_client.agents.SpeechHandle` once the ``speak`` is on the
            wire (``await client.speak(text)`` alone does not wait for the audio):
            ``await handle`` waits until it played out or was interrupted,
            ``handle.interrupt()`` stops it, ``handle.text_heard`` is what the user heard.

        Raises:
            SaynaValidationError: empty or oversized text (nothing is sent).
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the socket closed while sending (or while waiting).
            SaynaTimeoutError: ``wait`` took longer than ``timeout``.
        """
        check_text("text", text)
        self._ready_connection()
        queue = self._speeches()
        await queue.settle()
        conn = self._ready_connection()
        handle = queue.open(allow_interruption)
        queue.add_chunk(handle, text)
        self._tracker.speak_sent()
        done = self._tracker.wait_playback() if wait else None
        try:
            await self._send_speak(text, flush, allow_interruption, conn)
        except BaseException:
            queue.abandon(handle, None)
            raise
        queue.chunk_sent(handle, last=True)
        if done is not None:
            await bounded(self._caught_up(done), timeout, "speak(wait=True)")
        return handle

    async def speak_stream(
        self,
        chunks: Union[AsyncIterable[str], Iterable[str]],
        *,
        flush: bool = True,
        allow_interruption: bool = True,
        segmenter: Optional[SentenceSegmenter] = None,
    ) -> SpeechHandle:
        """Speak text that arrives in pieces (an LLM's tokens), sentence by sentence.

        The pieces are cut at sentence and clause boundaries by ``segmenter`` (a
        :class:`~sayna_client.agents.SentenceSegmenter` with its defaults when None);
        each chunk goes out as one ``speak``, in order, the first as soon as the first
        sentence is complete. The first ``speak`` carries ``flush``, later ones
        ``flush=False`` (so a chunk never asks to drop the one before it). The pieces are
        read on a task of their own; this returns the handle at once.

        Returns:
            the :class:`~sayna_client.agents.SpeechHandle`: ``await handle`` waits for
            every chunk to play out and raises what the iterable (or a send) raised;
            ``handle.interrupt()`` also stops reading the pieces.

        Raises:
            SaynaValidationError: ``chunks`` is a string or not iterable.
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
        """
        self._ready_connection()
        return self._speeches().speak_stream(
            chunks, flush=flush, allow_interruption=allow_interruption, segmenter=segmenter
        )

    @property
    def audio_output(self) -> Optional[AudioOutput]:
        """Where TTS audio is written as it arrives (a speaker, a phone bridge), or None.

        Set it to an :class:`~sayna_client.agents.AudioOutput`; interruptions flush it,
        and speech handles then count only audio it played as heard.
        """
        return self._speech.output if self._speech is not None else None

    @audio_output.setter
    def audio_output(self, output: Optional[AudioOutput]) -> None:
        if output is not None and not isinstance(output, AudioOutput):
            raise SaynaValidationError(
                "audio_output needs write(bytes) and flush() -> int (see AudioOutput)"
            )
        self._speeches().output = output

    @property
    def speech(self) -> SpeechQueue:
        """The session's speech handles, in ``speak`` order (``current``, ``speaking``,
        ``interrupt_all()``); used by :class:`~sayna_client.agents.BargeIn`."""
        return self._speeches()

    def barge_in(
        self,
        *,
        min_words: int = 1,
        min_duration: float = 0.0,
        backchannels: Iterable[str] = DEFAULT_BACKCHANNELS,
        fillers: Iterable[str] = DEFAULT_FILLERS,
        resume_on_noise: bool = False,
        on_barge_in: Optional[Callable[[BargeInEvent], Any]] = None,
    ) -> BargeIn:
        """Stop the agent's speech when the user talks over it (see
        :class:`~sayna_client.agents.BargeIn` for the arguments); returns the attached
        policy (``detach()`` it to stop). Each decision is a ``BargeInEvent``, also
        delivered to ``client.on("barge_in", cb)``.

        Raises:
            SaynaValidationError: a bad guard value.
        """
        policy = BargeIn(
            min_words=min_words,
            min_duration=min_duration,
            backchannels=backchannels,
            fillers=fillers,
            resume_on_noise=resume_on_noise,
            on_barge_in=on_barge_in,
        )
        return policy.attach(self)

    def idle_watchdog(
        self,
        idle_after: float,
        *,
        on_idle: Optional[Callable[[IdleEvent], Any]] = None,
        max_duration: Optional[float] = None,
        on_max_duration: Optional[Callable[[IdleEvent], Any]] = None,
    ) -> IdleWatchdog:
        """Start an :class:`~sayna_client.agents.IdleWatchdog`: an ``IdleEvent`` (also to
        ``client.on("idle", cb)``) after ``idle_after`` seconds with neither user speech
        nor agent audio, ``on_idle`` to re-prompt or hang up, and the end of the session
        after ``max_duration`` seconds (``on_max_duration``, default ``disconnect()``).
        Call it on the event loop; ``stop()`` the returned watchdog to end it.

        Raises:
            SaynaValidationError: a duration that is not a positive number.
        """
        watchdog = IdleWatchdog(
            self,
            idle_after=idle_after,
            on_idle=on_idle,
            max_duration=max_duration,
            on_max_duration=on_max_duration,
        )
        return watchdog.start()

    def _emit_local(self, event: Any) -> None:
        """An event the agents helpers made: to callbacks and iterators, in order."""
        self._hub.publish(event)

    def _speeches(self) -> SpeechQueue:
        queue = self._speech
        if queue is None:
            # Weakly: a dropped client must not be kept alive by its own queue (its HTTP
            # session is released when it is freed, see test_first_hour).
            me = weakref.ref(self)

            async def send_chunk(text: str, flush: bool, allow_interruption: bool) -> None:
                await _alive(me)._send_chunk(text, flush, allow_interruption)

            async def send_clear() -> None:
                await _alive(me)._send_clear()

            def tts_format() -> tuple[str, int]:
                client = me()
                return client._tts_format() if client is not None else ("linear16", 24000)

            def providers() -> tuple[str, str]:
                client = me()
                return client._providers() if client is not None else ("stt", "tts")

            def transcribed() -> float:
                client = me()
                if client is None or client.stt_config is None:
                    return 0.0
                return client.metrics.audio_bytes_sent / (2.0 * client.stt_config.sample_rate)

            queue = self._speech = SpeechQueue(send_chunk, send_clear, tts_format)
            metrics = queue.metrics
            metrics.emit, metrics.providers, metrics.transcribed = (
                self._hub.publish,
                providers,
                transcribed,
            )
            metrics.synthesized = self._tracker.tts_bytes_total
            hub_ref, queue_ref = weakref.ref(self._hub), weakref.ref(queue)  # no cycles

            def listen(on: bool) -> None:  # TTS frames only while the queue needs them
                hub, speech = hub_ref(), queue_ref()
                if hub is not None and speech is not None:
                    (hub.observe_audio if on else hub.unobserve_audio)(speech.on_tts_audio)

            queue.listen = listen
            self._hub.observe("stt_result", metrics.on_stt_result)
            self._hub.observe("tts_playback_complete", queue.on_playback_complete)
            self._hub.observe("closed", queue.on_closed)
        return queue

    @property
    def turn_metrics(self) -> TurnMetrics:
        """Latency of each user turn and the agent's reply, and usage per provider:
        ``turn_metrics.turns`` (``TurnRecord``s, also delivered as ``turn_metrics`` events)
        and ``turn_metrics.summary()`` (p50/p95). See ``docs/agents.md``."""
        return self._speeches().metrics

    def _providers(self) -> tuple[str, str]:
        stt, tts = self.stt_config, self.tts_config
        return (
            "/".join(filter(None, (stt.provider, stt.model))) if stt is not None else "stt",
            "/".join(filter(None, (tts.provider, tts.model))) if tts is not None else "tts",
        )

    def _tts_format(self) -> tuple[str, int]:
        tts = self.tts_config
        return (tts.audio_format, tts.sample_rate) if tts is not None else ("linear16", 24000)

    async def _send_clear(self) -> None:
        await self._ready_connection().send_text(encode(ClearMessage()))
        self._tracker.cleared()

    async def _send_chunk(self, text: str, flush: bool, allow_interruption: bool) -> None:
        conn = self._ready_connection()
        self._tracker.speak_sent()
        await self._send_speak(text, flush, allow_interruption, conn)

    async def _send_speak(
        self,
        text: str,
        flush: bool,
        allow_interruption: bool,
        conn: Optional[WebSocketConnection] = None,
    ) -> None:
        if not isinstance(flush, bool) or not isinstance(allow_interruption, bool):
            raise SaynaValidationError("flush and allow_interruption must be True or False")
        conn = conn or self._ready_connection()
        await conn.send_text(encode_speak(text, flush, allow_interruption))

    async def tts_flush(self, allow_interruption: bool = True) -> None:
        """Send an empty ``speak`` (the server treats it as a no-op flush marker)."""
        await self._send_speak("", True, allow_interruption)

    async def clear(self) -> None:
        """Stop queued and in-flight speech (ignored while non-interruptible speech plays)."""
        await self._send_clear()
        if self._speech is not None:
            self._speech.cleared()

    async def on_audio_input(self, audio_data: Buffer) -> None:
        """Send one frame of microphone/phone audio for transcription.

        ``audio_data`` is any bytes-like object: ``bytes``, ``bytearray``, a
        ``memoryview``, or any C-contiguous buffer such as an ``array.array`` or a numpy
        array. It goes out as one binary frame carrying exactly its bytes (a 16-bit
        array's frame holds two bytes per item), whatever its length: the server and
        its providers take a byte stream, so the audio must be in the ``stt_config``
        format (sample rate, channels, encoding), but a frame need not end on a sample.
        Frames sent back to back, faster than live audio (an upload, a replay), share
        system calls: each is handed to the socket by the time the event loop next
        waits, and always before a later text message or the close. The buffer is
        copied before this returns, so it may be reused at once.

        Raises:
            SaynaValidationError: not bytes-like (the message names ``.tobytes()`` when
                the object has one), a buffer that is not C-contiguous, empty, or over
                16 MiB; nothing is sent.
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the socket closed while sending.
        """
        # Hot path (50 calls a second per stream): the lane holds what a frame needs,
        # looked up once per session; messages are built only on failure.
        frame: Union[bytes, bytearray, memoryview]
        if type(audio_data) is bytes:
            frame, size = audio_data, len(audio_data)
        else:
            frame, size = as_frame(audio_data)
        lane = self._lane
        # (The lane is dropped when the session or its readiness changes.)
        if lane is None:
            lane = self._new_audio_lane(frame, size)
            if lane is None:
                return  # held for the reconnect
        elif not 0 < size <= MAX_AUDIO_FRAME:
            reject_frame(size)
        try:
            await lane.send(frame)
        except Exception as exc:
            error = lane.conn.send_failed(exc)
            if error is exc:
                raise
            raise error from exc
        metrics = lane.metrics
        metrics.audio_frames_sent += 1
        metrics.audio_bytes_sent += size

    def _new_audio_lane(
        self, audio_data: Union[bytes, bytearray, memoryview], size: int
    ) -> Optional[AudioLane]:
        """``on_audio_input``'s first frame of a session: check the frame, then return a
        new lane, or None when the frame was held for a reconnect (as an exact copy of
        its bytes). Raises what ``on_audio_input`` documents."""
        if not 0 < size <= MAX_AUDIO_FRAME:
            reject_frame(size)
        hold = self._audio_hold
        if hold is not None and self._reconnect_task is not None and not self.ready:
            hold.add(bytes(audio_data))
            return None
        conn = self._ready_connection()  # raises: not connected, or not ready yet
        self._tracker.audio_started()
        lane = self._lane = AudioLane(conn, self._tracker.metrics)
        return lane

    # --- 0.0.18 names ---------------------------------------------------------------

    async def send_audio(self, audio_data: Buffer) -> None:
        """Deprecated alias of :meth:`on_audio_input`."""
        warnings.warn("use on_audio_input()", DeprecationWarning, stacklevel=2)
        await self.on_audio_input(audio_data)

    async def send_clear(self) -> None:
        """Deprecated alias of :meth:`clear`."""
        warnings.warn("use clear()", DeprecationWarning, stacklevel=2)
        await self.clear()

    async def send_speak(
        self, text: str, flush: bool = True, allow_interruption: bool = True
    ) -> None:
        """Deprecated alias of :meth:`speak`."""
        warnings.warn("use speak()", DeprecationWarning, stacklevel=2)
        await self.speak(text, flush, allow_interruption)
