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
from collections.abc import AsyncIterable, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union

from ._config import ReconnectPolicy, RetryPolicy, Timeouts, check_seconds
from ._defaults import CLIENT_DEFAULT
from ._defaults import ClientDefault as _ClientDefault
from ._forward import ForwardAttribute
from ._http import DEFAULT_MAX_RESPONSE_BYTES
from ._options import DEFAULT_MAX_QUEUE, DEFAULT_MAX_QUEUE_BYTES
from ._portal import BlockingIterator, _Portal, _ThreadSafeUnsubscribe, blocking, registration
from .agents.segmenter import SentenceSegmenter
from .agents.speech_sync import SyncSpeechHandle, iterate_in_thread
from .client import SaynaClient
from .realtime.conversation import SessionMetrics, Turn
from .realtime.events import Event
from .realtime.subscriptions import Unsubscribe
from .types import (
    LiveKitConfig,
    LoadingAudioConfig,
    STTConfig,
    TTSConfig,
)

if TYPE_CHECKING:
    pass

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
    the same methods and properties (but the voice-agent helpers bound to the client's
    loop, ``barge_in``, ``idle_watchdog``, ``speech``, ``audio_output`` and
    ``turn_metrics``, and the 0.0.18 aliases; ``close()`` stands for ``aclose()``),
    blocking instead of ``async``: each runs the async
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
    is closed and, if it still held a session (open or reconnecting) or the HTTP
    connections of its REST calls, warns with ``ResourceWarning``; a loop thread holding
    nothing (restarted by a call after ``close()``) ends silently. The daemon thread
    never delays exit.

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
        self._portal = _Portal(url)
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
        # exception aborts at once (through the methods: a subclass's own run).
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def close(self) -> None:
        """End the session (as ``SaynaClient.disconnect()``: the conversation finishes
        first, within ``timeouts.drain``), then the loop thread.

        Blocks until the thread has ended; work a callback handed to the loop's default
        executor (``run_in_executor(None, ...)``) gets 5 s more after the close itself to
        finish, then is left to its thread (a daemon: it does not hold the process at
        exit) with a WARNING. Calls still waiting in other threads get their
        own error (``SaynaConnectionClosedError`` for a ``speak(wait=True)``...) or
        ``SaynaConnectionError``; ``events()`` and ``turns()`` iterators end after
        yielding what was queued for them (the close's ``ConnectionClosed`` last), read
        during or after the close. Safe in every state and
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
        conversation finish; default ``timeouts.drain``, ``None``: no limit, ``0``: close
        at once)."""
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
            if graceful:
                self.close()
            else:
                self.abort()

    def _holds_open(self) -> bool:
        """True while the client holds what only a close releases: a session (open,
        opening or reconnecting) or the aiohttp session of its REST calls. A loop thread
        alone is not a leak: a call after ``close()`` starts one, even a call refused
        at once (``speak()`` when not connected)."""
        client = self._client
        # (HttpTransport.has_session: reading the wrapped client's transport, which has
        # no public view of it)
        return client.connected or client.reconnecting or client._http.has_session

    def __del__(self) -> None:
        portal = getattr(self, "_portal", None)
        if portal is None or not portal.running:
            return
        try:
            if self._holds_open():
                warnings.warn(
                    f"unclosed {self!r}: call close() or use `with SaynaSyncClient(...) as "
                    "client:`",
                    ResourceWarning,
                    stacklevel=1,
                    source=self,
                )
        finally:  # the thread ends, warned or not (-W error: the warning raised)
            portal.close_nowait(self._client)

    def _close_at_exit(self) -> None:
        if self._portal.running:
            try:
                if self._holds_open():
                    warnings.warn(
                        f"unclosed {self!r} at exit: call close() or use "
                        "`with SaynaSyncClient(...) as client:`",
                        ResourceWarning,
                        stacklevel=1,
                        source=self,
                    )
            finally:  # closed even when -W error made the warning an exception
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

    # The client's other settings, read-only here (the wrapped client's own attributes).
    url = ForwardAttribute[str](
        "_client",
        "The URL as you passed it, credentials included (keep it out of logs; the repr "
        "shows it without them).",
    )
    tts_config = ForwardAttribute[Optional[TTSConfig]]("_client", "The TTS settings.")
    livekit_config = ForwardAttribute[Optional[LiveKitConfig]]("_client", "The LiveKit settings.")
    loading_audio = ForwardAttribute[Optional[LoadingAudioConfig]]("_client", "The loading clip.")
    without_audio = ForwardAttribute[bool]("_client", "True for a control-only session.")
    stream_id = ForwardAttribute[Optional[str]]("_client", "The ``stream_id`` of the next config.")

    @property
    def timeouts(self) -> Timeouts:
        """The client's deadlines (read-only here: set them in the constructor)."""
        return self._client.timeouts

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of idempotent REST requests (read-only here)."""
        return self._client.retry

    heartbeat = ForwardAttribute[Optional[float]]("_client", "The dead-peer detection figure.")
    reconnect_policy = ForwardAttribute[Optional[ReconnectPolicy]](
        "_client", "The automatic reconnection policy."
    )

    # --- REST: each is the SaynaClient method, blocking; same arguments, result, errors ---

    health = blocking(SaynaClient.health)
    get_voices = blocking(SaynaClient.get_voices)
    speak_rest = blocking(SaynaClient.speak_rest)
    get_livekit_token = blocking(SaynaClient.get_livekit_token)
    get_livekit_rooms = blocking(SaynaClient.get_livekit_rooms)
    get_livekit_room = blocking(SaynaClient.get_livekit_room)
    remove_livekit_participant = blocking(SaynaClient.remove_livekit_participant)
    mute_livekit_participant_track = blocking(SaynaClient.mute_livekit_participant_track)
    get_sip_hooks = blocking(SaynaClient.get_sip_hooks)
    set_sip_hooks = blocking(SaynaClient.set_sip_hooks)
    delete_sip_hooks = blocking(SaynaClient.delete_sip_hooks)
    sip_transfer_rest = blocking(SaynaClient.sip_transfer_rest)
    sip_call = blocking(SaynaClient.sip_call)
    get_recording = blocking(SaynaClient.get_recording)

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
    ) -> SyncSpeechHandle:
        """Queue ``text`` for synthesis; with ``wait``, return once it is synthesized
        (``tts_playback_complete``, or a ``clear()``), within ``timeout`` seconds if given.

        Returns:
            a :class:`~sayna_client.agents.SyncSpeechHandle` (ignore it, or
            ``handle.wait()`` until played out, ``handle.interrupt()``,
            ``handle.text_heard``; see ``docs/agents.md``).

        Raises:
            SaynaValidationError: empty or oversized text (nothing is sent).
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
            SaynaConnectionError: the socket closed while sending or waiting.
            SaynaTimeoutError: ``wait`` took longer than ``timeout``.
        """
        handle = self._portal.run(
            self._client.speak,
            text,
            flush,
            allow_interruption,
            wait=wait,
            timeout=timeout,
        )
        return SyncSpeechHandle(handle, self._portal)

    def speak_stream(
        self,
        chunks: Union[AsyncIterable[str], Iterable[str]],
        *,
        flush: bool = True,
        allow_interruption: bool = True,
        segmenter: Optional[SentenceSegmenter] = None,
    ) -> SyncSpeechHandle:
        """Speak text that arrives in pieces (a synchronous LLM client's token stream),
        sentence by sentence, as ``SaynaClient.speak_stream``; returns the handle at once.

        A plain iterator is read on a worker thread (each ``next()`` may block), never on
        the session's loop.

        Raises:
            SaynaValidationError: ``chunks`` is a string or not iterable.
            SaynaNotConnectedError / SaynaNotReadyError: call :meth:`connect` first.
        """
        if isinstance(chunks, Iterable) and not isinstance(chunks, (str, bytes)):
            chunks = iterate_in_thread(chunks)
        handle = self._portal.run(
            self._client.speak_stream,
            chunks,
            flush=flush,
            allow_interruption=allow_interruption,
            segmenter=segmenter,
        )
        return SyncSpeechHandle(handle, self._portal)

    tts_flush = blocking(SaynaClient.tts_flush)

    clear = blocking(SaynaClient.clear)

    on_audio_input = blocking(SaynaClient.on_audio_input)

    send_message = blocking(SaynaClient.send_message)

    sip_transfer = blocking(SaynaClient.sip_transfer)

    update_config = blocking(SaynaClient.update_config)

    loading_start = blocking(SaynaClient.loading_start)

    loading_stop = blocking(SaynaClient.loading_stop)

    finish_audio = blocking(SaynaClient.finish_audio)

    drain = blocking(SaynaClient.drain)

    # --- events: pull -------------------------------------------------------------------

    def events(self, timeout: Optional[float] = None) -> BlockingIterator[Event]:
        """Every event of the session in arrival order, as a blocking iterator.

        Subscribes when called (create it before the actions whose events you want);
        ends when the session ends. ``timeout`` bounds each wait (see
        :class:`BlockingIterator`); the queue bound and overflow reports are those of
        ``SaynaClient.events()``.

        Raises:
            SaynaValidationError: ``timeout`` is not a positive number of seconds or
                None (nothing is subscribed then).
        """
        check_seconds("timeout", timeout)
        return self._portal.iterate(self._client.events, timeout, "events()")

    def turns(self, timeout: Optional[float] = None) -> BlockingIterator[Turn]:
        """One :class:`Turn` per user turn, as a blocking iterator; like :meth:`events`.

        Raises:
            SaynaValidationError: ``timeout`` is not a positive number of seconds or
                None (nothing is subscribed then).
        """
        check_seconds("timeout", timeout)
        return self._portal.iterate(self._client.turns, timeout, "turns()")

    # --- events: callbacks, run on the loop thread --------------------------------------

    def _subscribe(self, register: Callable[[Any], Unsubscribe], callback: Any) -> Unsubscribe:
        return _ThreadSafeUnsubscribe(self._portal.call(register, callback), self._portal)

    def on(self, event_type: str, callback: Callback[Any]) -> Unsubscribe:
        """Call ``callback(event)`` on the loop thread for every event of ``event_type``
        (``"stt_result"``, ``"turn"``, ``"closed"``, ``"unknown"``...). Plain or async.

        Returns:
            An ``Unsubscribe`` handle, callable from any thread.

        Raises:
            SaynaValidationError: ``callback`` is not callable, or no event has the type
                ``event_type`` (a typo: the message names the closest type).
        """
        return self._subscribe(lambda cb: self._client.on(event_type, cb), callback)

    def off(self, callback: Callback[Any]) -> int:
        """Remove every registration of ``callback``; returns how many were removed."""
        return self._portal.call(self._client.off, callback)

    register_on_ready = registration(SaynaClient.register_on_ready)
    register_on_stt_result = registration(SaynaClient.register_on_stt_result)
    register_on_tts_audio = registration(SaynaClient.register_on_tts_audio)
    register_on_error = registration(SaynaClient.register_on_error)
    register_on_message = registration(SaynaClient.register_on_message)
    register_on_participant_connected = registration(SaynaClient.register_on_participant_connected)
    register_on_participant_disconnected = registration(
        SaynaClient.register_on_participant_disconnected
    )
    register_on_track_subscribed = registration(SaynaClient.register_on_track_subscribed)
    register_on_tts_playback_complete = registration(SaynaClient.register_on_tts_playback_complete)
    register_on_sip_transfer_error = registration(SaynaClient.register_on_sip_transfer_error)
    register_on_vad_event = registration(SaynaClient.register_on_vad_event)
    register_on_close = registration(SaynaClient.register_on_close)


@atexit.register
def _close_clients_at_exit() -> None:
    for client in list(_clients):
        try:
            client._close_at_exit()
        except Exception:  # keep closing the others; the interpreter is exiting anyway
            logger.warning("closing %r at exit failed", client, exc_info=True)
