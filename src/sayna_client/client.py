"""``SaynaClient``: the seed API over a REST client and a voice session.

The client is a :class:`~._rest.RestClient` (every REST call, the HTTP transport)
that holds a voice session and forwards the seed's names to it (see
:mod:`._forward`): everything about the WebSocket session to
:class:`~.realtime.session.VoiceSession` and its parts (``client.speak`` is the
session's ``speak``). Session arguments are checked once, by
:class:`~._options.SessionOptions`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, Optional

import aiohttp

from ._checks import check_type
from ._config import ReconnectPolicy, RetryPolicy, Timeouts, check_seconds, derive_urls
from ._defaults import CLIENT_DEFAULT
from ._deprecated import DeprecatedNames
from ._forward import (
    ForwardAttribute,
    ForwardSetting,
    ReadyField,
    forward,
    forwarding,
    store_hot,
)
from ._http import DEFAULT_MAX_RESPONSE_BYTES
from ._options import (
    DEFAULT_HEARTBEAT,
    DEFAULT_MAX_QUEUE,
    DEFAULT_MAX_QUEUE_BYTES,
    SessionOptions,
    check_configs,
    check_stream_id,
    check_without_audio,
)
from ._redact import safe_url, split_userinfo
from ._rest import RestClient
from .agents.methods import AgentMethods
from .agents.metrics import TurnMetrics
from .agents.speech import AudioOutput, SpeechQueue
from .errors import SaynaValidationError
from .realtime.commands import Commands
from .realtime.conversation import SessionMetrics
from .realtime.drain import Drainer
from .realtime.lane import AudioInput
from .realtime.link import SessionLink
from .realtime.session import VoiceSession
from .realtime.speaking import Speaking
from .realtime.subscriptions import Subscriptions, Unsubscribe
from .types import LiveKitConfig, LoadingAudioConfig, STTConfig, TTSConfig

__all__ = ["CLIENT_DEFAULT", "SaynaClient", "Unsubscribe"]

_DEFAULT_TIMEOUTS = Timeouts()

_S = "_voice"
_EVENTS, _DRAIN, _COMMANDS = "_voice.subscriptions", "_voice.drainer", "_voice.commands"
_SPEECH, _AUDIO = "_voice.speaking", "_voice.audio_in"


@forwarding
class SaynaClient(RestClient, AgentMethods, DeprecatedNames):
    """A client for one Sayna server: REST calls, and one WebSocket voice session at a time.

    The README (``SaynaClient(url, ...)`` under "WebSocket API Methods") says more of
    each argument.

    Args:
        url: server URL, ``http(s)://host[:port]`` or ``ws(s)://host[:port][/ws]``; a
            ``user:password@`` in it is sent as HTTP Basic authentication.
        stt_config: speech-to-text settings (required unless ``without_audio``).
        tts_config: text-to-speech settings (required unless ``without_audio``).
        livekit_config: join a LiveKit room with this session.
        without_audio: control-only session (``audio: false``): no STT/TTS.
        api_key: sent as ``Authorization: Bearer``; defaults to ``SAYNA_API_KEY``.
        stream_id: session id echoed in ``ready`` and used for recordings.
        loading_audio: a loading clip for LiveKit sessions (see ``loading_start``).
        timeouts: connect / ready / request / close deadlines.
        retry: retry policy for idempotent REST requests.
        heartbeat: seconds within which a dead server is detected (``None``: no pings).
        max_queue: events each consumer (``events()``, ``turns()``, the callbacks) holds.
        max_queue_bytes: audio bytes each consumer holds (16 MiB); past either bound the
            oldest events are dropped and reported (``EventsDropped``).
        ssl: ``True`` verifies certificates (``None`` means the same), ``False`` does
            not, an ``ssl.SSLContext`` for private CAs, or an ``aiohttp.Fingerprint``;
            another type raises ``SaynaValidationError``.
        reconnect: opt-in automatic reconnection (see ``ReconnectPolicy``).
        proxy: an ``http://[user:pass@]host:port`` proxy for REST and the WebSocket
            (default: ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY``).
        http_session: an ``aiohttp.ClientSession`` to send everything through (never
            closed by the client); without it, the clients of one loop share one.
        max_response_bytes: larger REST bodies raise ``SaynaInvalidResponseError``
            unread (default 64 MiB; ``None``: no bound).

    No credential (API key, password, query value, proxy credentials) appears in a
    repr, message or log line of this client.

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
        heartbeat: Optional[float] = DEFAULT_HEARTBEAT,
        max_queue: int = DEFAULT_MAX_QUEUE,
        max_queue_bytes: int = DEFAULT_MAX_QUEUE_BYTES,
        ssl: Any = True,
        reconnect: Optional[ReconnectPolicy] = None,
        proxy: Optional[str] = None,
        http_session: Optional[aiohttp.ClientSession] = None,
        max_response_bytes: Optional[int] = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        bare = split_userinfo(url.strip())[0] if isinstance(url, str) else url
        ws_url = derive_urls(bare)[1]
        self.url = url
        options = SessionOptions(
            stt_config=stt_config,
            tts_config=tts_config,
            livekit_config=livekit_config,
            without_audio=without_audio,
            stream_id=stream_id,
            loading_audio=loading_audio,
            timeouts=timeouts or _DEFAULT_TIMEOUTS,
            heartbeat=heartbeat,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            reconnect=reconnect,
        )
        RestClient.__init__(
            self,
            url,
            api_key,
            timeout=options.timeouts.request,
            retry=retry,
            ssl=ssl,
            proxy=proxy,
            http_session=http_session,
            max_response_bytes=max_response_bytes,
        )
        link = SessionLink(ws_url, self._auth_headers, self._ssl, self._redactor, self)
        self._voice = VoiceSession(options, link)
        store_hot(self, "on_audio_input")

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

    # --- the voice session: lifecycle and state ----------------------------------------

    connect = forward(_S, VoiceSession.connect)
    reconfigure = forward(_S, VoiceSession.reconfigure)
    disconnect = forward(_S, VoiceSession.disconnect)
    abort = forward(_S, VoiceSession.abort)
    on_audio_input = forward(_AUDIO, AudioInput.on_audio_input, hot=True)

    connected = ForwardAttribute[bool](_S, VoiceSession.connected.__doc__)
    ready = ForwardAttribute[bool](_S, VoiceSession.ready.__doc__)
    reconnecting = ForwardAttribute[bool](_S, VoiceSession.reconnecting.__doc__)
    stt_config = ForwardSetting[Optional[STTConfig]](
        _S,
        "The speech-to-text settings: sent with the next ``config`` (``reconfigure()`` "
        "sends new ones now). Audio passed to ``on_audio_input`` must be in this format.",
        check=lambda value: check_configs(stt_config=value),
    )
    tts_config = ForwardSetting[Optional[TTSConfig]](
        _S,
        "The text-to-speech settings sent with the next ``config``.",
        check=lambda value: check_configs(tts_config=value),
    )
    livekit_config = ForwardSetting[Optional[LiveKitConfig]](
        _S,
        "The LiveKit room settings sent with the next ``config``.",
        check=lambda value: check_configs(livekit_config=value),
    )
    loading_audio = ForwardSetting[Optional[LoadingAudioConfig]](
        _S,
        "The LiveKit loading clip sent with the next ``config``.",
        check=lambda value: check_configs(loading_audio=value),
    )
    without_audio = ForwardSetting[bool](
        _S,
        "True for a control-only session (``audio: false``).",
        check=check_without_audio,
    )
    stream_id = ForwardSetting[Optional[str]](
        _S,
        "The ``stream_id`` sent with the next ``config`` (None: the server picks one).",
        check=check_stream_id,
    )
    heartbeat = ForwardSetting[Optional[float]](
        _S,
        "Seconds within which a dead server is detected (None: no pings).",
        check=lambda value: check_seconds("heartbeat", value),
    )
    reconnect_policy = ForwardSetting[Optional[ReconnectPolicy]](
        _S,
        "The automatic reconnection policy (None: no reconnection).",
        check=lambda value: check_type(
            "reconnect_policy", value, ReconnectPolicy, "ReconnectPolicy(max_attempts=10)"
        ),
    )

    @property
    def timeouts(self) -> Timeouts:
        """Connect / ready / request / close / drain deadlines. A new ``Timeouts``
        assigned here applies from the next call on: REST calls take its ``request``,
        the voice session the others.

        Raises (on assignment):
            SaynaValidationError: not a ``Timeouts``.
        """
        return self._voice.timeouts

    @timeouts.setter
    def timeouts(self, value: Timeouts) -> None:
        if not isinstance(value, Timeouts):
            check_type("timeouts", value, Timeouts, "Timeouts(connect=5)")  # (names a dict's fix)
            raise SaynaValidationError(
                "timeouts must be a Timeouts (e.g. Timeouts(connect=5)), got None"
            )
        self._voice.timeouts = value
        self._http.timeout = value.request

    livekit_room_name = ReadyField(
        "livekit_room_name",
        "The LiveKit room of this session (after ready, LiveKit sessions only).",
    )
    livekit_url = ReadyField("livekit_url", "The LiveKit URL participants join (after ready).")
    sayna_participant_identity = ReadyField(
        "sayna_participant_identity",
        "Sayna's identity in the LiveKit room (after ready, LiveKit sessions only).",
    )
    sayna_participant_name = ReadyField(
        "sayna_participant_name",
        "Sayna's display name in the LiveKit room (after ready, LiveKit sessions only).",
    )
    received_stream_id = ReadyField(
        "stream_id",
        "The ``stream_id`` the server confirmed in ``ready`` (key for ``get_recording``; "
        "kept after the session ended, until the next ``ready``).",
    )

    # --- events and callbacks ----------------------------------------------------------

    events = forward(_EVENTS, Subscriptions.events)
    turns = forward(_EVENTS, Subscriptions.turns)
    on = forward(_EVENTS, Subscriptions.on)
    off = forward(_EVENTS, Subscriptions.off)
    register_on_ready = forward(_EVENTS, Subscriptions.register_on_ready)
    register_on_stt_result = forward(_EVENTS, Subscriptions.register_on_stt_result)
    register_on_tts_audio = forward(_EVENTS, Subscriptions.register_on_tts_audio)
    register_on_error = forward(_EVENTS, Subscriptions.register_on_error)
    register_on_message = forward(_EVENTS, Subscriptions.register_on_message)
    register_on_participant_connected = forward(
        _EVENTS, Subscriptions.register_on_participant_connected
    )
    register_on_participant_disconnected = forward(
        _EVENTS, Subscriptions.register_on_participant_disconnected
    )
    register_on_track_subscribed = forward(_EVENTS, Subscriptions.register_on_track_subscribed)
    register_on_tts_playback_complete = forward(
        _EVENTS, Subscriptions.register_on_tts_playback_complete
    )
    register_on_sip_transfer_error = forward(_EVENTS, Subscriptions.register_on_sip_transfer_error)
    register_on_vad_event = forward(_EVENTS, Subscriptions.register_on_vad_event)
    register_on_close = forward(_EVENTS, Subscriptions.register_on_close)
    register_on_audio = forward(_EVENTS, Subscriptions.register_on_audio)

    # --- commands, speech and the conversation -------------------------------------------

    speak = forward(_SPEECH, Speaking.speak)
    speak_stream = forward(_SPEECH, Speaking.speak_stream)
    tts_flush = forward(_SPEECH, Speaking.tts_flush)
    clear = forward(_SPEECH, Speaking.clear)
    send_message = forward(_COMMANDS, Commands.send_message)
    sip_transfer = forward(_COMMANDS, Commands.sip_transfer)
    update_config = forward(_COMMANDS, Commands.update_config)
    loading_start = forward(_COMMANDS, Commands.loading_start)
    loading_stop = forward(_COMMANDS, Commands.loading_stop)
    drain = forward(_DRAIN, Drainer.drain)
    finish_audio = forward(_DRAIN, Drainer.finish_audio)

    metrics = ForwardAttribute[SessionMetrics](
        _DRAIN, "Latency figures of the current session (also logged at DEBUG)."
    )
    speech = ForwardAttribute[SpeechQueue](
        _SPEECH,
        "The session's speech handles, in ``speak`` order (``current``, ``speaking``, "
        "``interrupt_all()``); used by :class:`~sayna_client.agents.BargeIn`.",
    )
    turn_metrics = ForwardAttribute[TurnMetrics](
        _SPEECH,
        "Latency of each user turn and the agent's reply, and usage per provider "
        "(``turns``, ``summary()``); see ``docs/agents.md``.",
    )
    audio_output = ForwardSetting[Optional[AudioOutput]](
        _SPEECH,
        "Where TTS audio is written as it arrives (a speaker, a phone bridge), or None; "
        "interruptions flush it, and speech handles count only audio it played as heard.",
    )
