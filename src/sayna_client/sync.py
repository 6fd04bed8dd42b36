"""``SaynaSyncClient``: the ``SaynaClient`` API as blocking calls, for scripts, notebooks, threads.

The sync client wraps one :class:`~sayna_client.SaynaClient` and runs it on a private
event loop in a daemon thread named ``sayna-sync-loop-<n>``, started by the first call
that needs it. A blocking method submits the matching coroutine to that loop with
:func:`asyncio.run_coroutine_threadsafe` and waits for it, so:

* any thread may call any method, concurrently (a microphone thread calling
  ``on_audio_input`` while the main thread calls ``speak``); calls from one thread keep
  their order;
* it works where an event loop already runs (Jupyter, an ``async def``): the caller's
  loop is never used, the calling thread simply blocks;
* errors are the async client's, unchanged: the same exception object is re-raised.

Callbacks run on the loop thread. A blocking method called there (from a callback)
would wait for the thread it runs on, so it raises ``RuntimeError`` instead; async
callbacks can ``await client.async_client.<method>(...)``.

``close()`` (= ``disconnect()``) ends the session, then the thread and its loop. The
client stays usable: the next call starts a new thread, and registered callbacks stay
registered, as with ``SaynaClient.disconnect()``.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from ._callbacks import Unsubscribe
from ._config import ReconnectPolicy, RetryPolicy, Timeouts
from ._defaults import CLIENT_DEFAULT, Seconds
from ._defaults import ClientDefault as _ClientDefault
from ._http import DEFAULT_MAX_RESPONSE_BYTES
from ._portal import BlockingIterator, _Portal, _ThreadSafeUnsubscribe
from .client import SaynaClient
from .protocol.events import (
    ConnectionClosed,
    Event,
    MessageMessage,
    ParticipantConnectedMessage,
    ParticipantDisconnectedMessage,
    ReadyMessage,
    SipTransferErrorMessage,
    STTResultMessage,
    TrackSubscribedMessage,
    TTSPlaybackCompleteMessage,
    VADEventMessage,
)
from .realtime.conversation import SessionMetrics, Turn
from .realtime.hub import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES
from .types import (
    HealthResponse,
    LiveKitConfig,
    LiveKitRoomDetails,
    LiveKitRoomsResponse,
    LiveKitTokenResponse,
    LoadingAudioConfig,
    MuteLiveKitParticipantResponse,
    RemoveLiveKitParticipantResponse,
    SipCallResponse,
    SipCallSipConfig,
    SipHook,
    SipHooksResponse,
    SipTransferResponse,
    STTConfig,
    TTSConfig,
    VoiceDescriptor,
)

if TYPE_CHECKING:
    from typing_extensions import Buffer

__all__ = ["BlockingIterator", "SaynaSyncClient"]

logger = logging.getLogger("sayna_client")

T = TypeVar("T")
Callback = Callable[[T], Any]

_clients: weakref.WeakSet[SaynaSyncClient] = weakref.WeakSet()


class SaynaSyncClient:
    """The :class:`~sayna_client.SaynaClient` API as blocking calls, usable from any thread.

    Takes the same arguments as ``SaynaClient`` but ``http_session`` (an aiohttp session
    belongs to one event loop; this client's loop is private), validated the same way, at
    once, and has
    the same methods and properties, blocking instead of ``async``: each runs the async
    method on the client's own event loop, in the daemon thread ``sayna-sync-loop-<n>``
    started by the first call, and returns its result or raises its exception unchanged.
    A blocking call has the async method's own deadlines (``timeouts``, ``timeout=``);
    an interrupted wait (Ctrl-C) cancels the call, as cancelling the coroutine would.

    Threads: any thread may call any method concurrently; calls from one thread keep
    their order. Callbacks (plain or ``async``) run on the loop thread: a callback that
    blocks stalls the socket and heartbeat, so hand slow work to another thread. Calling
    a blocking method on the loop thread (e.g. ``speak()`` inside a callback) raises
    ``RuntimeError`` because it would deadlock; the non-blocking ones (``register_on_*``,
    ``on``, ``off``, properties) work everywhere.

    Lifetime: :meth:`close` (or :meth:`disconnect`, or leaving ``with``) ends the session,
    then the thread and its loop. The client stays usable: a later call starts a new
    thread; callbacks stay registered. A client dropped or still open at interpreter exit
    is closed and warns with ``ResourceWarning``; the daemon thread never delays exit.

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
        max_response_bytes: Optional[int] = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        self._portal = _Portal()
        self._client = SaynaClient(
            url,
            stt_config,
            tts_config,
            livekit_config,
            without_audio,
            api_key,
            stream_id=stream_id,
            loading_audio=loading_audio,
            timeouts=timeouts,
            retry=retry,
            heartbeat=heartbeat,
            max_queue=max_queue,
            max_queue_bytes=max_queue_bytes,
            ssl=ssl,
            reconnect=reconnect,
            proxy=proxy,
            max_response_bytes=max_response_bytes,
        )
        # connect() and reconfigure() one at a time: the async client's lock must not be
        # contended across the loops of successive threads.
        self._connect_serial = threading.Lock()
        _clients.add(self)

    def __repr__(self) -> str:
        thread = "running" if self._portal.running else "stopped"
        return f"<SaynaSyncClient {self._client!r}, loop thread {thread}>"

    @property
    def async_client(self) -> SaynaClient:
        """The wrapped ``SaynaClient``. Use it only on the loop thread, i.e. in async
        callbacks (``await client.async_client.speak(...)``)."""
        return self._client

    # --- lifetime --------------------------------------------------------------------

    def __enter__(self) -> SaynaSyncClient:
        return self

    def __exit__(self, exc_type: object, *exc_info: object) -> None:
        # As ``async with SaynaClient``: a normal exit lets the conversation finish, an
        # exception aborts at once.
        self._portal.close(self._client, graceful=exc_type is None)

    def close(self) -> None:
        """End the session (as ``SaynaClient.disconnect()``: the conversation finishes
        first, within ``timeouts.drain``), then the loop thread.

        Blocks until the thread has ended. Calls still waiting in other threads get their
        own error (``SaynaConnectionClosedError`` for a ``speak(wait=True)``...) or
        ``SaynaConnectionError``; ``events()`` iterators end. Safe in every state and
        twice; the client may be used again afterwards (a new thread starts).

        Raises:
            RuntimeError: called on the loop thread (from a callback).
        """
        self._portal.close(self._client)

    def disconnect(
        self,
        *,
        graceful: bool = True,
        drain: Union[float, _ClientDefault, None] = CLIENT_DEFAULT,
    ) -> None:
        """:meth:`close`, with the options of ``SaynaClient.disconnect()``: ``graceful``
        (False: close at once, as :meth:`abort`) and ``drain`` (seconds to let the
        conversation finish; default ``timeouts.drain``, ``None``: no limit)."""
        self._portal.close(self._client, graceful=graceful, drain=drain)

    def abort(self) -> None:
        """End the session at once (as ``SaynaClient.abort()``), then the loop thread."""
        self._portal.close(self._client, graceful=False)

    @contextlib.contextmanager
    def session(self) -> Iterator[SaynaSyncClient]:
        """Connect on entry and :meth:`close` on exit, in one statement::

            with SaynaSyncClient(url, stt, tts).session() as client:
                client.speak("Hello!", wait=True)

        Yields:
            this client, ready.

        Raises:
            what :meth:`connect` raises, on entry (the client is closed then).
        """
        graceful = False  # an exception (or a failed connect) aborts, as leaving `with`
        try:
            self.connect()
            yield self
            graceful = True
        finally:
            self._portal.close(self._client, graceful=graceful)

    def __del__(self) -> None:
        portal = getattr(self, "_portal", None)
        if portal is None or not portal.running:
            return
        warnings.warn(
            f"unclosed {self!r}: call close() or use `with SaynaSyncClient(...) as client:`",
            ResourceWarning,
            stacklevel=1,
            source=self,
        )
        portal.close_nowait(self._client)

    def _close_at_exit(self) -> None:
        if self._portal.running:
            warnings.warn(f"unclosed {self!r} at exit", ResourceWarning, stacklevel=1, source=self)
            close = self._client.timeouts.close
            self._portal.close(self._client, timeout=2 * (close or 5.0) + 1, graceful=False)

    # --- state (snapshots, readable from any thread) ---------------------------------

    @property
    def connected(self) -> bool:
        """True while the WebSocket is open."""
        return self._client.connected

    @property
    def ready(self) -> bool:
        """True once the server sent ``ready`` and while the socket stays open."""
        return self._client.ready

    @property
    def reconnecting(self) -> bool:
        """True while an automatic reconnection is in progress."""
        return self._client.reconnecting

    @property
    def livekit_room_name(self) -> Optional[str]:
        """The LiveKit room of this session (after ready, LiveKit sessions only)."""
        return self._client.livekit_room_name

    @property
    def livekit_url(self) -> Optional[str]:
        """The LiveKit URL participants join (after ready)."""
        return self._client.livekit_url

    @property
    def sayna_participant_identity(self) -> Optional[str]:
        """Sayna's identity in the LiveKit room (after ready, LiveKit sessions only)."""
        return self._client.sayna_participant_identity

    @property
    def sayna_participant_name(self) -> Optional[str]:
        """Sayna's display name in the LiveKit room (after ready, LiveKit sessions only)."""
        return self._client.sayna_participant_name

    @property
    def received_stream_id(self) -> Optional[str]:
        """The ``stream_id`` the server confirmed in ``ready`` (key for ``get_recording``)."""
        return self._client.received_stream_id

    @property
    def metrics(self) -> SessionMetrics:
        """Latency figures of the current session (updated on the loop thread)."""
        return self._client.metrics

    @property
    def stt_config(self) -> Optional[STTConfig]:
        """The speech-to-text settings (use :meth:`reconfigure` to change them in a session)."""
        return self._client.stt_config

    # --- REST: each is the SaynaClient method, blocking; same arguments, result, errors ---
    # ``timeout``: seconds, None for no limit, left out for the client's timeouts.request.

    def health(self, *, timeout: Seconds = CLIENT_DEFAULT) -> HealthResponse:
        """``GET /``: ``HealthResponse`` (``status == "OK"``). See ``SaynaClient.health``."""
        return self._portal.run(self._client.health, timeout=timeout)

    def get_voices(self, *, timeout: Seconds = CLIENT_DEFAULT) -> dict[str, list[VoiceDescriptor]]:
        """``GET /voices``: provider name -> voices. See ``SaynaClient.get_voices``."""
        return self._portal.run(self._client.get_voices, timeout=timeout)

    def speak_rest(
        self,
        text: str,
        tts_config: TTSConfig,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
    ) -> tuple[bytes, dict[str, str]]:
        """``POST /speak``: ``(audio, headers)``. See ``SaynaClient.speak_rest``."""
        return self._portal.run(
            self._client.speak_rest, text, tts_config, timeout=timeout, retry=retry
        )

    def get_livekit_token(
        self,
        room_name: str,
        participant_name: str,
        participant_identity: str,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> LiveKitTokenResponse:
        """``POST /livekit/token``. See ``SaynaClient.get_livekit_token``."""
        return self._portal.run(
            self._client.get_livekit_token,
            room_name,
            participant_name,
            participant_identity,
            timeout=timeout,
        )

    def get_livekit_rooms(self, *, timeout: Seconds = CLIENT_DEFAULT) -> LiveKitRoomsResponse:
        """``GET /livekit/rooms``. See ``SaynaClient.get_livekit_rooms``."""
        return self._portal.run(self._client.get_livekit_rooms, timeout=timeout)

    def get_livekit_room(
        self, room_name: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> LiveKitRoomDetails:
        """``GET /livekit/rooms/{room_name}``. See ``SaynaClient.get_livekit_room``."""
        return self._portal.run(self._client.get_livekit_room, room_name, timeout=timeout)

    def remove_livekit_participant(
        self, room_name: str, participant_identity: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> RemoveLiveKitParticipantResponse:
        """``DELETE /livekit/participant`` (sent once). See the ``SaynaClient`` method."""
        return self._portal.run(
            self._client.remove_livekit_participant,
            room_name,
            participant_identity,
            timeout=timeout,
        )

    def mute_livekit_participant_track(
        self,
        room_name: str,
        participant_identity: str,
        track_sid: str,
        muted: bool,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> MuteLiveKitParticipantResponse:
        """``POST /livekit/participant/mute``. See the ``SaynaClient`` method."""
        return self._portal.run(
            self._client.mute_livekit_participant_track,
            room_name,
            participant_identity,
            track_sid,
            muted,
            timeout=timeout,
        )

    def get_sip_hooks(self, *, timeout: Seconds = CLIENT_DEFAULT) -> SipHooksResponse:
        """``GET /sip/hooks``. See ``SaynaClient.get_sip_hooks``."""
        return self._portal.run(self._client.get_sip_hooks, timeout=timeout)

    def set_sip_hooks(
        self,
        hooks: Sequence[Union[SipHook, dict[str, Any]]],
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> SipHooksResponse:
        """``POST /sip/hooks``: the merged table. See ``SaynaClient.set_sip_hooks``."""
        return self._portal.run(self._client.set_sip_hooks, hooks, timeout=timeout)

    def delete_sip_hooks(
        self, hosts: Sequence[str], *, timeout: Seconds = CLIENT_DEFAULT
    ) -> SipHooksResponse:
        """``DELETE /sip/hooks``: what remains. See ``SaynaClient.delete_sip_hooks``."""
        return self._portal.run(self._client.delete_sip_hooks, hosts, timeout=timeout)

    def sip_transfer_rest(
        self,
        room_name: str,
        participant_identity: str,
        transfer_to: str,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> SipTransferResponse:
        """``POST /sip/transfer`` (sent once). See ``SaynaClient.sip_transfer_rest``."""
        return self._portal.run(
            self._client.sip_transfer_rest,
            room_name,
            participant_identity,
            transfer_to,
            timeout=timeout,
        )

    def sip_call(
        self,
        room_name: str,
        participant_name: str,
        participant_identity: str,
        from_phone_number: str,
        to_phone_number: str,
        sip_config: Optional[SipCallSipConfig] = None,
        *,
        timeout: Seconds = CLIENT_DEFAULT,
    ) -> SipCallResponse:
        """``POST /sip/call`` (sent once, never retried). See ``SaynaClient.sip_call``."""
        return self._portal.run(
            self._client.sip_call,
            room_name,
            participant_name,
            participant_identity,
            from_phone_number,
            to_phone_number,
            sip_config,
            timeout=timeout,
        )

    def get_recording(
        self, stream_id: str, *, timeout: Seconds = CLIENT_DEFAULT
    ) -> tuple[bytes, dict[str, str]]:
        """``GET /recording/{stream_id}``: ``(bytes, headers)``. See the ``SaynaClient`` one."""
        return self._portal.run(self._client.get_recording, stream_id, timeout=timeout)

    # --- the WebSocket session ---------------------------------------------------------

    def connect(self) -> None:
        """Open the WebSocket, send the config, and return once the server sent ``ready``.

        Does nothing when already ready. Interrupting the wait closes what it opened.

        Raises:
            SaynaTimeoutError: no socket or no ``ready`` in time, as ``SaynaClient.connect``.
            SaynaConfigRejectedError: the server answered the config with an error.
            SaynaAuthenticationError: the upgrade got 401 (API key missing or wrong).
            SaynaConnectionError: the network failed or the socket closed first.
        """
        self._portal.check_thread("connect()")  # before the lock: a callback must not wait
        with self._connect_serial:
            self._portal.run(self._client.connect)

    def reconfigure(
        self,
        *,
        stt_config: Optional[STTConfig] = None,
        tts_config: Optional[TTSConfig] = None,
        livekit_config: Optional[LiveKitConfig] = None,
        loading_audio: Optional[LoadingAudioConfig] = None,
    ) -> None:
        """Replace parts of the config and send it again, waiting for ``ready`` (only stores
        them when not connected). Raises what :meth:`connect` raises."""
        self._portal.check_thread("reconfigure()")
        with self._connect_serial:
            self._portal.run(
                self._client.reconfigure,
                stt_config=stt_config,
                tts_config=tts_config,
                livekit_config=livekit_config,
                loading_audio=loading_audio,
            )

    def speak(
        self,
        text: str,
        flush: bool = True,
        allow_interruption: bool = True,
        *,
        wait: bool = False,
        timeout: Optional[float] = None,
    ) -> None:
        """Queue ``text`` for synthesis; with ``wait``, return once it is synthesized
        (``tts_playback_complete``, or a ``clear()``), within ``timeout`` seconds if given.

        Raises:
            SaynaValidationError: empty or oversized text (nothing is sent).
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the socket closed while sending or waiting.
            SaynaTimeoutError: ``wait`` took longer than ``timeout``.
        """
        self._portal.run(
            self._client.speak,
            text,
            flush,
            allow_interruption,
            wait=wait,
            timeout=timeout,
        )

    def tts_flush(self, allow_interruption: bool = True) -> None:
        """Send an empty ``speak`` (a no-op flush marker for the server)."""
        self._portal.run(self._client.tts_flush, allow_interruption)

    def clear(self) -> None:
        """Stop queued and in-flight speech (ignored while non-interruptible speech plays)."""
        self._portal.run(self._client.clear)

    def on_audio_input(self, audio_data: Buffer) -> None:
        """Send one frame of audio in the ``stt_config`` format; returns once it is sent.

        ``audio_data`` is any bytes-like object (``bytes``, ``bytearray``, a memoryview,
        an ``array.array``, a C-contiguous numpy array); exactly its bytes go out as one
        binary frame, whatever its length (see ``SaynaClient.on_audio_input``).

        Raises:
            SaynaValidationError: not bytes-like, not C-contiguous, empty or over 16 MiB.
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the socket closed while sending.
        """
        self._portal.run(self._client.on_audio_input, audio_data)

    def send_message(
        self,
        message: str,
        role: str,
        topic: str = "messages",
        debug: Optional[dict[str, Any]] = None,
    ) -> None:
        """Publish a data message into the session's LiveKit room."""
        self._portal.run(self._client.send_message, message, role, topic, debug)

    def sip_transfer(self, transfer_to: str) -> None:
        """Transfer the room's SIP caller; failures arrive as ``sip_transfer_error`` events."""
        self._portal.run(self._client.sip_transfer, transfer_to)

    def update_config(
        self,
        *,
        vad_silence_duration_ms: Optional[int] = None,
        turn_detect_threshold: Optional[float] = None,
    ) -> None:
        """Send ``update_config`` (turn-detector threshold 0.0-1.0); nothing is sent back."""
        self._portal.run(
            self._client.update_config,
            vad_silence_duration_ms=vad_silence_duration_ms,
            turn_detect_threshold=turn_detect_threshold,
        )

    def loading_start(self) -> None:
        """Start looping the configured loading clip into the LiveKit track."""
        self._portal.run(self._client.loading_start)

    def loading_stop(self) -> None:
        """Fade out the loading clip."""
        self._portal.run(self._client.loading_stop)

    def finish_audio(
        self, timeout: Optional[float] = 10.0, *, silence_ms: int = 1500
    ) -> Optional[Turn]:
        """End the audio stream: send up to ``silence_ms`` of trailing silence in the
        session's format so the recogniser ends the utterance, and wait for its final.

        Returns:
            The :class:`Turn` that ended, or None when no words were heard.

        Raises:
            SaynaError: as ``SaynaClient.finish_audio`` (``SaynaValidationError``,
                ``SaynaNotConnectedError``, ``SaynaNotReadyError``,
                ``SaynaConnectionError``, ``SaynaTimeoutError``).
        """
        return self._portal.run(self._client.finish_audio, timeout, silence_ms=silence_ms)

    def drain(self, timeout: Optional[float] = None, *, settle: float = 0.3) -> None:
        """Wait until outstanding speech is synthesized, the user's turn has ended and the
        session stayed quiet ``settle`` seconds.

        Raises:
            SaynaTimeoutError: not drained within ``timeout`` seconds.
            SaynaConnectionClosedError: the session closed first.
        """
        self._portal.run(self._client.drain, timeout, settle=settle)

    # --- events: pull -------------------------------------------------------------------

    def events(self, timeout: Optional[float] = None) -> BlockingIterator[Event]:
        """Every event of the session in arrival order, as a blocking iterator.

        Subscribes when called (create it before the actions whose events you want);
        ends when the session ends. ``timeout`` bounds each wait (see
        :class:`BlockingIterator`); the queue bound and overflow reports are those of
        ``SaynaClient.events()``.
        """
        source = self._portal.call(self._client.events)
        return BlockingIterator(self._portal, source, timeout, "events()")

    def turns(self, timeout: Optional[float] = None) -> BlockingIterator[Turn]:
        """One :class:`Turn` per user turn, as a blocking iterator; like :meth:`events`."""
        source = self._portal.call(self._client.turns)
        return BlockingIterator(self._portal, source, timeout, "turns()")

    # --- events: callbacks, run on the loop thread --------------------------------------

    def _subscribe(self, register: Callable[[Any], Unsubscribe], callback: Any) -> Unsubscribe:
        return _ThreadSafeUnsubscribe(self._portal.call(register, callback), self._portal)

    def on(self, event_type: str, callback: Callback[Any]) -> Unsubscribe:
        """Call ``callback(event)`` on the loop thread for every event of ``event_type``
        (``"stt_result"``, ``"turn"``, ``"closed"``, ``"unknown"``...). Plain or async.

        Returns:
            An ``Unsubscribe`` handle, callable from any thread.

        Raises:
            SaynaValidationError: ``callback`` is not callable.
        """
        return self._subscribe(lambda cb: self._client.on(event_type, cb), callback)

    def off(self, callback: Callback[Any]) -> int:
        """Remove every registration of ``callback``; returns how many were removed."""
        return self._portal.call(self._client.off, callback)

    def register_on_ready(self, callback: Callback[ReadyMessage]) -> Unsubscribe:
        """Call ``callback(ReadyMessage)`` when the server sends ``ready``."""
        return self._subscribe(self._client.register_on_ready, callback)

    def register_on_stt_result(self, callback: Callback[STTResultMessage]) -> Unsubscribe:
        """Call ``callback(STTResultMessage)`` for every transcription result."""
        return self._subscribe(self._client.register_on_stt_result, callback)

    def register_on_tts_audio(self, callback: Callback[bytes]) -> Unsubscribe:
        """Call ``callback(bytes)`` for every frame of synthesized audio."""
        return self._subscribe(self._client.register_on_tts_audio, callback)

    def register_on_error(self, callback: Callback[Any]) -> Unsubscribe:
        """Call ``callback(event)`` for server errors and SDK reports (unexpected close,
        malformed frame, a callback that raised, dropped events or audio)."""
        return self._subscribe(self._client.register_on_error, callback)

    def register_on_message(self, callback: Callback[MessageMessage]) -> Unsubscribe:
        """Call ``callback(MessageMessage)`` for LiveKit data messages."""
        return self._subscribe(self._client.register_on_message, callback)

    def register_on_participant_connected(
        self, callback: Callback[ParticipantConnectedMessage]
    ) -> Unsubscribe:
        """Call ``callback(ParticipantConnectedMessage)`` when someone joins the room."""
        return self._subscribe(self._client.register_on_participant_connected, callback)

    def register_on_participant_disconnected(
        self, callback: Callback[ParticipantDisconnectedMessage]
    ) -> Unsubscribe:
        """Call ``callback(ParticipantDisconnectedMessage)`` when someone leaves."""
        return self._subscribe(self._client.register_on_participant_disconnected, callback)

    def register_on_track_subscribed(
        self, callback: Callback[TrackSubscribedMessage]
    ) -> Unsubscribe:
        """Call ``callback(TrackSubscribedMessage)`` when Sayna subscribes to a track."""
        return self._subscribe(self._client.register_on_track_subscribed, callback)

    def register_on_tts_playback_complete(
        self, callback: Callback[TTSPlaybackCompleteMessage]
    ) -> Unsubscribe:
        """Call ``callback(TTSPlaybackCompleteMessage)`` when the TTS queue drained."""
        return self._subscribe(self._client.register_on_tts_playback_complete, callback)

    def register_on_sip_transfer_error(
        self, callback: Callback[SipTransferErrorMessage]
    ) -> Unsubscribe:
        """Call ``callback(SipTransferErrorMessage)`` when a ``sip_transfer`` fails."""
        return self._subscribe(self._client.register_on_sip_transfer_error, callback)

    def register_on_vad_event(self, callback: Callback[VADEventMessage]) -> Unsubscribe:
        """Call ``callback(VADEventMessage)`` (defined by the protocol; not sent today)."""
        return self._subscribe(self._client.register_on_vad_event, callback)

    def register_on_close(self, callback: Callback[ConnectionClosed]) -> Unsubscribe:
        """Call ``callback(ConnectionClosed)`` whenever the socket closes, for any reason."""
        return self._subscribe(self._client.register_on_close, callback)


@atexit.register
def _close_clients_at_exit() -> None:
    for client in list(_clients):
        try:
            client._close_at_exit()
        except Exception:  # keep closing the others; the interpreter is exiting anyway
            logger.warning("closing %r at exit failed", client, exc_info=True)
