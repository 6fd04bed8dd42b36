"""The voice session: one WebSocket at a time, its hub, connect + ready, reconnect, close.

:class:`VoiceSession` owns the connection (:class:`~.connection.WebSocketConnection`),
the event hub and dispatcher (:class:`~.hub.EventHub`), the conversation tracker and
the lifecycle gate. It applies the protocol's rules (:mod:`sayna_client.protocol.lifecycle`)
to what the connection reports; its parts hold the rest of the session API:
:class:`~.subscriptions.Subscriptions` (events and callbacks),
:class:`~.speaking.Speaking` (speech, with the agents toolkit's handles),
:class:`~.commands.Commands` (the other commands) and :class:`~.drain.Drainer`
(waiting for the conversation to finish), :class:`~.lane.AudioInput`
(``on_audio_input``). ``SaynaClient`` forwards the seed's names
to them. How a socket is opened and configured is :mod:`.opening`'s.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from typing import Any, Optional, Union

from .._config import check_seconds
from .._defaults import CLIENT_DEFAULT, ClientDefault
from .._loop_end import at_loop_end, forget
from .._options import SessionOptions, check_configs
from ..errors import (
    SaynaConfigRejectedError,
    SaynaConnectionClosedError,
    SaynaNotConnectedError,
    SaynaNotReadyError,
)
from ..protocol.events import ConnectionClosed, ReadyMessage
from ..protocol.lifecycle import ends_normally
from ..types import LiveKitConfig, LoadingAudioConfig, STTConfig, TTSConfig
from .commands import Commands
from .connection import WebSocketConnection
from .conversation import SessionTracker
from .drain import Drainer
from .events import AudioDropped
from .gate import SessionGate
from .hold import AudioHold
from .hub import EventHub
from .lane import AudioInput
from .link import SessionLink
from .opening import ReadyInfo, configure, dial
from .reconnect import Reconnector
from .speaking import Speaking
from .subscriptions import Subscriptions

__all__ = ["VoiceSession"]

logger = logging.getLogger("sayna_client")


class VoiceSession:
    """One voice session of a client: a WebSocket at a time, ready or not.

    Args:
        options: the checked session arguments.
        link: the socket's URL, headers and HTTP transport.

    The configs (``stt_config``...) are the values sent with the next ``config``;
    :meth:`reconfigure` replaces them.
    """

    def __init__(self, options: SessionOptions, link: SessionLink) -> None:
        self.stt_config = options.stt_config
        self.tts_config = options.tts_config
        self.livekit_config = options.livekit_config
        self.loading_audio = options.loading_audio
        self.without_audio = options.without_audio
        self.stream_id = options.stream_id
        self.timeouts = options.timeouts
        self.heartbeat = options.heartbeat
        self.reconnect_policy = options.reconnect
        self._link = link
        self.hub = hub = EventHub(options.max_queue, options.max_queue_bytes)
        self.tracker = SessionTracker()
        self.tracker.watch(hub)  # its routes, and Turn events
        self._conn: Optional[WebSocketConnection] = None
        #: The fields of the current session's ``ready`` as a plain tuple, which the
        #: cycle collector stops tracking (a NamedTuple stays tracked; issue #19):
        #: :attr:`ready_message` makes the :class:`ReadyInfo` when read.
        self._ready_msg: Optional[tuple[Optional[str], ...]] = None
        #: The latest ``ready``'s fields, kept after its session ended (the stream id is
        #: the key of the recording, downloadable once the session closed).
        self._last_ready: Optional[tuple[Optional[str], ...]] = None
        #: The current socket has had its ``ready`` (a ``reconfigure()`` waiting for the
        #: next one clears ``_ready_msg``, not this): its loss is the session's.
        self._was_ready = False
        #: The current socket was opened while an outage was open (an attempt of the
        #: reconnection, or a ``connect()`` taking over): until its ``ready``, its close is
        #: that attempt's failure, not the session's.
        self._attempt_socket = False
        self._gate = SessionGate()
        # The parts refer back to the session weakly, so that a dropped client is freed
        # by reference counting alone (no cycle through the SDK's own objects).
        me = self._me = link.session_proxy(self)
        # The parts a session may never use are made at their first use (an idle
        # session holds none of them: issue #19, idle memory per session).
        self._audio_in: Optional[AudioInput] = None
        self._reconnector: Optional[Reconnector] = None  # only with a reconnect policy
        self._drainer: Optional[Drainer] = None
        self._commands: Optional[Commands] = None
        self.speaking = Speaking(me)  # its speech queue is made when first needed

    # --- the parts -------------------------------------------------------------------

    @property
    def audio_in(self) -> AudioInput:
        """``on_audio_input`` (made at the first use)."""
        part = self._audio_in
        if part is None:
            part = self._audio_in = AudioInput(self._me)
        return part

    @property
    def subscriptions(self) -> Subscriptions:
        """Events and callbacks: a new part at each use, which holds nothing but the hub
        (a session keeps no object for it: issue #19)."""
        return Subscriptions(self.hub)

    @property
    def drainer(self) -> Drainer:
        """``drain()``, ``finish_audio()``, ``metrics`` (made at the first use)."""
        part = self._drainer
        if part is None:
            part = self._drainer = Drainer(self._me)
        return part

    @property
    def commands(self) -> Commands:
        """The other commands (made at the first use)."""
        part = self._commands
        if part is None:
            part = self._commands = Commands(self._me)
        return part

    def _drop_lane(self) -> None:
        """``on_audio_input`` must look again (readiness or the connection changed)."""
        part = self._audio_in
        if part is not None:
            part.drop_lane()

    # --- state ---------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """True while the session's WebSocket is open; False while reconnecting, even
        while an attempt's socket is open or the held audio is being replayed."""
        conn = self._conn
        reconnector = self._reconnector
        return (
            conn is not None
            and not conn.closed
            and (reconnector is None or reconnector.hold is None)
        )

    @property
    def ready(self) -> bool:
        """True once the server sent ``ready`` and while the socket stays open; False
        while reconnecting, until the ``reconnected`` event."""
        # (Read per event by applications: attribute reads only, no nested property.)
        conn = self._conn
        reconnector = self._reconnector
        return (
            self._ready_msg is not None
            and conn is not None
            and not conn.closed
            and (reconnector is None or reconnector.hold is None)
        )

    @property
    def ready_message(self) -> Optional[ReadyInfo]:
        """What the server's ``ready`` of the current session said (None before it, after
        the end)."""
        ready = self._ready_msg
        return ReadyInfo._make(ready) if ready is not None else None

    @property
    def last_ready(self) -> Optional[ReadyInfo]:
        """What the latest ``ready`` the client received said, also after its session
        ended (None before the first)."""
        ready = self._last_ready
        return ReadyInfo._make(ready) if ready is not None else None

    @property
    def reconnecting(self) -> bool:
        """True while an automatic reconnection is in progress (see ``ReconnectPolicy``):
        from the close that starts it until the ``reconnected`` event, or its end."""
        reconnector = self._reconnector
        return reconnector is not None and reconnector.hold is not None

    def held_audio(self) -> Optional[AudioHold]:
        """Where audio goes while an automatic reconnection runs, until it replayed what
        it held (None: send it now)."""
        reconnector = self._reconnector
        return reconnector.hold if reconnector is not None else None

    def ready_connection(self) -> WebSocketConnection:
        """The ready connection for a send, or the error saying why there is none.

        Raises:
            SaynaNotConnectedError: never connected, or the session ended.
            SaynaNotReadyError: not ready yet, or reconnecting (until the audio held
                meanwhile is sent: for the reconnection's own task, once ready).
            SaynaEventLoopError: the session lives on another running loop.
        """
        conn = self._conn
        if self._gate.loop is not None:
            self._gate.check_loop()  # raises for another live loop; a dead one has no conn
        reconnector = self._reconnector
        outage = reconnector is not None and reconnector.hold is not None
        if conn is None or conn.closed or self._ready_msg is None:
            if outage:
                raise SaynaNotReadyError(
                    "The Sayna session is reconnecting; retry after the `reconnected` event "
                    "(audio sent with on_audio_input is held and replayed)"
                )
            if conn is not None and not conn.closed:
                raise SaynaNotReadyError()
            info = conn.close_info if conn is not None else None
            if info is not None:
                raise SaynaNotConnectedError(
                    f"The Sayna session has ended ({info.message}); call "
                    "client.connect() (awaited on SaynaClient) to start a new one"
                )
            raise SaynaNotConnectedError()
        if outage:
            assert reconnector is not None
            if reconnector.owner is not asyncio.current_task():
                # Ready again, and sending the audio held meanwhile: a text message now
                # would reach the server before audio passed earlier.
                raise SaynaNotReadyError(
                    "The Sayna session is sending the audio held while it reconnected; "
                    "retry after the `reconnected` event"
                )
        return conn

    # --- connecting ----------------------------------------------------------------

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

        A failed ``connect()`` (any error but ``SaynaConfigRejectedError``, or a
        cancellation) ends the ``events()`` and ``turns()`` iterators made before it:
        the session they were made for never began.

        Concurrency: ``connect()``, ``reconfigure()`` and the close of ``disconnect()``
        run one at a time, in call order, from any tasks of the session's loop. A
        ``connect()`` during an automatic reconnection stops its retries and is its
        next attempt, at once: the iterators go on, and once the new session is ready
        the audio held is replayed and ``Reconnected`` published, as after an attempt
        of its own. If it fails, the reconnection is over: the held audio is reported
        as ``AudioDropped`` and the session ends, as when the reconnection gives up.
        """
        self._adopt_loop()
        reconnector = self._reconnector
        me = asyncio.current_task()
        # During an outage the caller takes it over (see Reconnector.claim): its retries
        # stop now, not after their attempt under way.
        task = reconnector.claim() if reconnector is not None else None
        try:
            if task is not None:
                await asyncio.gather(task, return_exceptions=True)
            async with self._gate.hold("connect()"):
                if reconnector is not None:
                    # (Again: lost while this call waited, or another connect() claimed it.)
                    task = reconnector.claim()
                    if task is not None:
                        await asyncio.gather(task, return_exceptions=True)
                taking_over = reconnector is not None and reconnector.owns(me)
                conn = self._conn
                if conn is not None and not conn.closed:
                    if self._ready_msg is None:
                        # A config was rejected earlier: send the current one again.
                        await self._configure(conn)
                    elif not taking_over:
                        return  # ready already
                else:
                    # (Nothing stays open after a failed connect, even when the caller
                    # never reaches disconnect(): the socket gives back its lease of the
                    # HTTP session, whose last holder closes it. The REST calls' lease
                    # stays, with any call still running on it.)
                    if reconnector is not None and not taking_over:
                        reconnector.forget_recovery()  # a session of the application's own
                    await self._open()
                if reconnector is not None and taking_over:
                    await reconnector.recover(reconnector.attempt)
        except SaynaConfigRejectedError:
            # The socket stays open for reconfigure(): the session goes on (a reconnection
            # taken over ends here, its held audio reported), as after a plain connect()
            # whose config was rejected: its close, when it comes, is the session's.
            if reconnector is not None and reconnector.owns(me):
                reconnector.end(by_client=False, announce=False)
                self._attempt_socket = False
            raise
        except BaseException as exc:
            if reconnector is not None and reconnector.owns(me):
                reconnector.end(by_client=isinstance(exc, asyncio.CancelledError))
                self.end_of_session()
            else:  # (a disconnect() that interrupted it ends a reconnection taken over)
                self.hub.close_iterators()  # the session they were made for never began
            raise

    def _adopt_loop(self) -> None:
        """Raise ``SaynaEventLoopError`` when the session lives on another running loop;
        forget a session whose loop has been closed (nothing of it can run any more)."""
        if self._gate.check_loop():
            logger.info("The loop of the previous Sayna session was closed; starting afresh")
            self._conn = None
            if self._reconnector is not None:
                self._reconnector.forget()
            self._set_ready(None)
            self._gate.release()
            self._link.renew_http()  # its aiohttp session belonged to that loop

    async def _open(self) -> None:
        """Open a socket and configure it (the caller holds the gate)."""
        old = self._conn
        if old is not None:
            await old.close(self.timeouts.close)  # closed already; release what remains
        self._set_ready(None)
        self._was_ready = False
        self._attempt_socket = self.reconnecting
        started = self.tracker.connecting()
        conn = await dial(
            self._link,
            connect_timeout=self.timeouts.connect,
            heartbeat=self.heartbeat,
            hub=self.hub,
            owner=self,
        )
        self._conn = conn
        self._gate.bind()
        # An application whose loop ends with this socket open (no disconnect()) is
        # told so, and the socket is closed while the loop can still close it.
        at_loop_end(id(self), self._me, _end_at_loop_end)
        try:
            await self._configure(conn)
            self.tracker.ready(started)
        except SaynaConfigRejectedError:
            raise  # the socket stays open for reconfigure()
        except BaseException:
            self._conn = None
            await conn.close(self.timeouts.close)
            raise

    async def reopen(self) -> None:
        """One attempt of an automatic reconnection (see :class:`~.reconnect.Reconnector`)."""
        async with self._gate.hold("reconnecting"):
            await self._open()

    async def close_refused(self) -> None:
        """The reconnection gave up: close the socket a refused config left open."""
        conn = self._conn
        if conn is not None:
            await conn.close(self.timeouts.close)

    async def _configure(self, conn: WebSocketConnection) -> ReadyMessage:
        """Send the current config on ``conn``; returns at ``ready``."""
        return await configure(conn, self, self.timeouts.ready)

    def _set_ready(self, ready: Optional[tuple[Optional[str], ...]]) -> None:
        """Record the session's ``ready`` (None: not ready); on_audio_input looks again."""
        self._ready_msg = ready
        self._drop_lane()

    def connection_ready(self, ready: ReadyMessage) -> None:
        """The server's ``ready`` (called by the connection)."""
        self._set_ready(tuple(ReadyInfo.of(ready)))
        self._last_ready = self._ready_msg
        self._was_ready = True
        logger.info(
            "Sayna session ready (stream_id=%s, livekit_room=%s)",
            ready.stream_id,
            ready.livekit_room_name,
        )
        if self.stream_id is None and self.reconnect_policy is not None:
            # Reconnects must resume the same stream (recording key, server logs).
            self.stream_id = ready.stream_id

    def connection_activity(self) -> int:
        """Results and TTS frames received so far (the keepalive watches it)."""
        return self.tracker.activity

    def audio_sent(self) -> tuple[int, int]:
        """Audio frames and bytes sent on the current socket (the keepalive's marks)."""
        metrics = self.tracker.metrics  # (new for each socket: see SessionTracker.connecting)
        return metrics.audio_frames_sent, metrics.audio_bytes_sent

    def audio_unanswered(self, frames: int, size: int) -> None:
        """Audio sent after the last Ping a dead server answered: reported as dropped."""
        self.report(AudioDropped(frames, size, unconfirmed=True))

    def redact(self, text: str) -> str:
        """``text`` with the client's secrets (API key, URL credentials) masked."""
        return self._link.redactor.scrub(text)

    def connection_closed(self, info: ConnectionClosed) -> None:
        """Called by the reader when a socket ends (any reason)."""
        self._drop_lane()  # on_audio_input must not use this connection any more
        was_ready = self._was_ready
        lost = not info.initiated_by_client
        self.tracker.closed(
            lambda: SaynaConnectionClosedError(
                f"The Sayna session closed while waiting: {info.message}",
                code=info.code,
                reason=info.reason,
            ),
            lost=lost,
        )
        if self._attempt_socket and not was_ready:
            # An attempt failed before its `ready`: whoever made it reports that (one
            # `Reconnecting` per attempt, then `Reconnected` or the end of the outage),
            # not as a close of the session, which is still reconnecting.
            # (The loop-end hook stays: a loop that ends during the outage ends it.)
            logger.info("Sayna reconnect attempt ended before ready: %s", info.message)
            return
        reconnector = self._reconnector
        if reconnector is None and self.reconnect_policy is not None:
            reconnector = self._reconnector = Reconnector(self._me)
        used = (
            reconnector.attempts_for(info, was_ready=was_ready) if reconnector is not None else None
        )
        info.will_reconnect = used is not None
        if used is None and lost and reconnector is not None:
            # Lost for good while it replayed the audio held after a reconnection: that
            # audio goes too, reported before the close that ends the session.
            reconnector.end(by_client=False, announce=False)
        if used is None:
            forget(id(self), self._gate.loop)
        # Else the loop-end hook stays while the outage is open: a close seen as the
        # loop ends (``asyncio.run()`` returning with the client connected, the
        # server's socket closed in its teardown) starts a reconnection whose task the
        # loop will never run; the hook's loop_ending() ends it (end_dropped()).
        self.hub.publish(info)
        if not lost:
            return  # (the client's close: whoever closed ends the session)
        if ends_normally(info.code, initiated_by_client=False, peer_left=self.tracker.peer_left):
            logger.info("Sayna session ended after a participant left the room")
        else:
            if used is None:
                logger.warning("Sayna WebSocket closed by the server or network: %s", info.message)
            else:  # (the `Reconnecting` events tell it; giving up is logged as an error)
                logger.info("Sayna WebSocket lost; reconnecting: %s", info.message)
            self.hub.notify_callbacks("lost", info)
        if used is not None:
            assert reconnector is not None
            reconnector.start(info, used)
        else:
            # Over: also when it was never ready (a failed connect(), or a rejected config
            # whose socket the server closed) or was waiting for a reconfigure()'s ready.
            self.end_of_session()

    def client_dropped(self) -> Optional[asyncio.AbstractEventLoop]:
        """The client was garbage-collected (any thread): the loop of this session if it
        is open, for :meth:`end_dropped` to run on (None: nothing to end)."""
        loop = self._gate.loop
        if loop is None or loop.is_closed() or not (self.connected or self.reconnecting):
            return None
        return loop

    def end_dropped(self) -> None:
        """End the session of a garbage-collected client at once (see :mod:`.link`): no
        Close handshake, as nobody is left to wait for it; the close is the client's."""
        reconnector = self._reconnector
        if reconnector is not None:
            reconnector.claim()  # (cancelled: nobody awaits it, the loop may not run again)
            conn = self._conn
            # The held audio is reported; the close of an open session's socket says the
            # session is over, or with none (an outage), one ConnectionClosed of ours.
            reconnector.end(by_client=True, announce=conn is None or conn.closed)
        if self._conn is not None:
            self._conn.drop()
        self.end_of_session()

    def loop_ending(self) -> None:
        """Its event loop is ending with the session open: the application never
        disconnected (``asyncio.run()`` returned with the client connected). Warn with a
        ``ResourceWarning`` naming the fix, as for a client garbage-collected while
        connected, and end the session now, while the loop can still close its socket
        (aiohttp's objects must not outlive the loop)."""
        if not (self.connected or self.reconnecting):
            return
        ready = self.ready_message
        stream = ready.stream_id if ready is not None else self.stream_id
        message = (
            f"A SaynaClient was never disconnected: its session (stream_id={stream}) was "
            "still open when its event loop ended, and the SDK closed it. Use `async with "
            "SaynaClient(...) as client:` or `await client.disconnect()`"
        )
        try:
            logger.warning("%s", message)
            warnings.warn(message, ResourceWarning, stacklevel=2)
        finally:  # (-W error makes the warning an exception: the session ends anyway)
            self.end_dropped()

    def end_of_session(self) -> None:
        """The session is over for good: iterators end, callbacks drain on their own."""
        conn = self._conn
        if conn is None or conn.closed:
            forget(id(self), self._gate.loop)  # (kept while an outage was open)
        self._set_ready(None)
        self.hub.end_session()
        self.hub.close_iterators()

    def report(self, event: Any) -> None:
        """An SDK-side problem: to the log, the event stream and the error callbacks."""
        logger.warning("%s", event.message)
        self.hub.publish(event)

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
        check_configs(stt_config, tts_config, livekit_config, loading_audio)
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

    # --- closing -------------------------------------------------------------------

    async def disconnect(
        self,
        *,
        graceful: bool = True,
        drain: Union[float, ClientDefault, None] = CLIENT_DEFAULT,
    ) -> None:
        """Let the conversation finish, then close the session and release every socket,
        task and HTTP session.

        Graceful (the default): first wait, at most ``drain`` seconds, until speech
        already sent has been synthesized and received (``tts_playback_complete``, with
        callbacks caught up), every ``speak_stream`` has read its text source to the end
        and its chunks have played (a source that stays open holds the close until
        ``drain`` passes), and the results of audio already sent have arrived
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
                ``None``: no limit; ``0``: do not wait, close at once as :meth:`abort`).
                When it passes, the session closes anyway.

        Raises:
            SaynaValidationError: ``drain`` is not a number of seconds >= 0 or None
                (the session is closed all the same).
            SaynaEventLoopError: the session lives on another running event loop.

        Cancellation: cancelling ``disconnect()`` (while it waits for the conversation
        or while it closes) still closes the session and releases everything: the
        close goes on in a task of its own and takes at most about ``timeouts.close``
        seconds.
        """
        self._adopt_loop()
        try:
            if graceful:
                timeout = self.timeouts.drain if isinstance(drain, ClientDefault) else drain
                check_seconds("drain", timeout, zero="close at once")
                # Not ready: nothing is in flight (never ready, closed, reconnecting).
                if self.ready and timeout != 0:
                    await self.drainer.let_finish(timeout)
        finally:
            caller = asyncio.current_task()  # (a callback's task cannot wait for itself)
            closing = asyncio.get_running_loop().create_task(
                self._close(caller), name="sayna-close"
            )
            await asyncio.shield(closing)

    async def abort(self) -> None:
        """Close the session at once, as :meth:`disconnect` with ``graceful=False``.

        Speech not yet received and results not yet arrived are lost; the Close
        handshake is still bounded by ``timeouts.close``, after which the connection
        is dropped whatever the server does. Safe in every state; the same
        cancellation guarantee as :meth:`disconnect`.
        """
        await self.disconnect(graceful=False)

    async def _close(self, caller: Optional[asyncio.Task[Any]] = None) -> None:
        """Close and release everything (the second half of :meth:`disconnect`, called
        from ``caller``'s task: when that is the callbacks task, the close does not wait
        for it)."""
        reconnector = self._reconnector
        # The close owns an outage from now on (a connect() taking it over leaves it).
        task = reconnector.claim() if reconnector is not None else None
        self._gate.interrupt()  # a connect()/reconfigure() in another task ends now
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)
        async with self._gate.hold("disconnect()", interruptible=False):
            conn, self._conn = self._conn, None
            if reconnector is not None:
                reconnector.forget_recovery()  # the next connect() starts afresh
                # Audio held for a reconnection that will not happen is reported; the
                # close of an open socket says the session is over, or with none open
                # (an outage), one ConnectionClosed of the client's.
                reconnector.end(by_client=True, announce=conn is None or conn.closed)
            try:
                if conn is not None:
                    await conn.close(self.timeouts.close)
                await self.hub.close_session(self.timeouts.close, caller)
            finally:
                forget(id(self), self._gate.loop)  # (kept while an outage was open)
                self._set_ready(None)
                self._gate.release()
                self.hub.close_iterators()
                await self._link.http().close()


def _end_at_loop_end(session: VoiceSession) -> None:
    """:func:`~.._loop_end.at_loop_end`'s callback (``session`` is a weak proxy)."""
    try:
        session.loop_ending()
    except ReferenceError:  # collected meanwhile: nothing is open
        pass
