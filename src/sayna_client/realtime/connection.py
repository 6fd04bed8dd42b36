"""One WebSocket connection: ``config`` → ``ready``, receiving, the heartbeat, close.

The upgrade is :mod:`.handshake`'s and the sends are :mod:`.sender`'s (the connection's
base class); with :mod:`.wire` and :mod:`.framing`, these are the only modules that
touch aiohttp's WebSocket API or the transport, and the places where their exceptions
are translated (always chained with ``from``).

**Two ways to receive.** Normally the client takes the socket's data path over after the
upgrade (:func:`~.wire.own_path`): a :class:`~.framing.FrameProtocol` parses the frames
as they arrive and calls this connection's ``frame_*`` methods, in order, with no task
and no future per message. When aiohttp is not laid out as expected (or the tests turn
:data:`~.wire.FAST_PATH` off) a reader task reads through aiohttp's ``receive()``
instead. Either way every text frame is decoded, ``ready`` recorded and each event
published to the :class:`~.hub.EventHub`, which never blocks; so a slow consumer cannot
delay close detection or the heartbeat.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, Optional, Protocol, cast

import aiohttp

from .._compat import within
from .._http_sessions import SharedSession, let_go
from .._redact import Redactor
from ..errors import (
    SaynaConfigRejectedError,
    SaynaTimeoutError,
)
from ..protocol.decode import MAX_TEXT_FRAME, completion_in, decode_text, validate_event_json
from ..protocol.events import (
    ConnectionClosed,
    ErrorMessage,
    ReadyMessage,
    SipTransferErrorMessage,
)
from ..protocol.lifecycle import (
    CloseCode,
    Phase,
    PhaseInput,
    client_close_code,
    config_answer,
    next_phase,
    received_close_code,
)
from .deadline import Deadlines, deadlines
from .framing import BYTES_PER_TURN, FRAMES_PER_TURN, FrameProtocol, WireViolation
from .handshake import MAX_MESSAGE_BYTES, open_socket
from .heartbeat import Heartbeat, PingLedger
from .hub import EventHub
from .sender import ABNORMAL_CLOSURE, SocketSender
from .wire import (
    PING,
    SendProgress,
    drop_transport,
    frame_writer,
    own_path,
    release_connection,
    release_reader,
    send_progress,
    take_connection,
    transport_of,
    upgrade_response,
)

__all__ = ["ConnectionOwner", "WebSocketConnection"]

logger = logging.getLogger("sayna_client")

_WS = aiohttp.WSMsgType
# The message kinds as module constants: ``WSMsgType.BINARY`` is an enum class attribute
# lookup (about 0.15 µs on CPython 3.11), paid for every frame on the hot path.
_BINARY = _WS.BINARY
_TEXT = _WS.TEXT
#: The events frame_text looks at before publishing (one set lookup per text frame).
#: Events handled before they are published (the rest go straight to the hub).
#: Events the connection looks at before publishing them.
_NOTED = frozenset({"ready", "error", "sip_transfer_error", "malformed_message"})
#: The close the client asked for.
_CLOSED_BY_CLIENT = (int(CloseCode.NORMAL_CLOSURE), "closed by client")
#: The reader yields to the event loop after this many frames in a row.
_YIELD_EVERY = 128
#: The close reason when the heartbeat found the server dead.
NO_PONG = "no pong from the server within the heartbeat interval"
#: The close reason when the TCP connection ended without a WebSocket Close.
PEER_HUNG_UP = "the connection ended without a Close frame (closed by the server or the network)"
#: After the server's Close, how long what is still buffered for it (our answering Close
#: behind unsent audio) may take to be written before the connection is dropped: a
#: server that stopped reading would otherwise hold the socket, and every send waiting
#: for it, for good.
CLOSE_FLUSH_SECONDS = 2.0


class ConnectionOwner(Protocol):
    """Who a connection reports to (the voice session)."""

    def connection_ready(self, ready: ReadyMessage) -> None:
        """The server sent ``ready`` (on the reading task, before ``configure`` returns)."""
        ...

    def connection_closed(self, info: ConnectionClosed) -> None:
        """The socket ended, for any reason (once)."""
        ...

    def connection_activity(self) -> int:
        """A counter of data received that changes while data flows (keepalive)."""
        ...

    def audio_sent(self) -> tuple[int, int]:
        """The audio frames and bytes sent on the current socket so far (read per Ping)."""
        ...

    def audio_unanswered(self, frames: int, size: int) -> None:
        """The heartbeat found the server dead: ``frames`` (``size`` bytes) were sent
        after the last Ping it answered, so it may not have taken them."""
        ...

    def redact(self, text: str) -> str:
        """``text`` (a server's words about to go into an exception or a log line) with
        the client's secrets masked. Called only when such a text is built, never per
        message."""
        ...


class WebSocketConnection(SocketSender):
    """A single connected socket. Not reused after it closes.

    On the client's own data path (see the module docstring) the frames arrive through
    the ``frame_*`` methods (the :class:`~.framing.FrameSink` protocol). On aiohttp's,
    until the first ``ready`` the connecting task reads the socket itself and a reader
    task takes over from then on.
    """

    __slots__ = (
        "_acks",
        "_closing_by_client",
        "_control",
        "_ended",
        "_heartbeat",
        "_heartbeat_interval",
        "_http",
        "_hub",
        "_lease",
        "_owner",
        "_reader",
        "_ready_waiter",
        "_sent",
        "_upgrade",
        "_wire",
        "phase",
    )

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse[Any],
        hub: EventHub,
        owner: ConnectionOwner,
        *,
        heartbeat: Optional[float] = None,
        http: Optional[aiohttp.ClientSession] = None,
        lease: Optional[SharedSession] = None,
    ) -> None:
        SocketSender.__init__(self, ws)
        self._hub = hub
        #: The socket's own lease of the shared aiohttp session (None: the user's
        #: session), given back when the session ends: at once for a peer's close or a
        #: loss (:meth:`_finish`), after our own close or drop (:meth:`_release`,
        #: :meth:`drop`).
        self._lease = lease
        #: The aiohttp session the socket was opened through: closed under the socket,
        #: it ended the connection (the close is then ours, not the peer's).
        self._http = http
        # The owner itself rather than three of its bound methods (64 bytes each, per
        # session: issue #19).
        self._owner = owner
        self._ready_waiter: Optional[asyncio.Future[ReadyMessage]] = None
        #: Where the session stands (see :mod:`sayna_client.protocol.lifecycle`).
        self.phase = Phase.CONNECTING
        self._closing_by_client = False
        self._reader: Optional[asyncio.Task[None]] = None
        # Ping every 2/3 of the user's figure, Pong due within 1/3 of it: a dead peer
        # is detected within the figure itself. Made and armed by the reader task.
        self._heartbeat_interval = heartbeat * 2 / 3 if heartbeat else None
        self._heartbeat: Optional[Heartbeat] = None
        self._sent: Optional[SendProgress] = None  # made at the first Ping
        #: The audio the answered Pings vouch for (made at the first Ping).
        self._acks: Optional[PingLedger] = None
        #: Ping / Pong sends and the close after a dead heartbeat (awaited by close()).
        self._control: Optional[set[asyncio.Task[None]]] = None
        #: Set when the session ends (made by close() while it waits for the server).
        self._ended: Optional[asyncio.Future[None]] = None
        #: The client's own data path (None: aiohttp's reader task and sends).
        self._wire: Optional[FrameProtocol] = None
        #: aiohttp's record of the connection on the own data path, released when the
        #: session ends (see :func:`~.wire.release_connection`; None on aiohttp's path).
        self._upgrade: Optional[Any] = None
        transport = own_path(ws)
        if transport is not None:
            aiohttp_protocol = transport.get_protocol()
            wire = FrameProtocol(
                self,
                MAX_MESSAGE_BYTES,
                transport,
                aiohttp_protocol,
                binary=hub.publish_audio,  # TTS audio straight to the hub
                # Half the consumers' queues at most between two turns, in which they
                # take what was read: one that keeps up never overflows.
                frames_per_turn=max(1, min(FRAMES_PER_TURN, hub.max_queue // 2)),
                bytes_per_turn=max(1, min(BYTES_PER_TURN, hub.max_queue_bytes // 2)),
            )
            transport.set_protocol(wire)
            self._wire = wire
            self._frames = frame_writer(transport, wire)
            # aiohttp's WebSocket object, its reader and parsers can never run again:
            # keep only the record of the connection and let the rest go (issue #19:
            # about 2.5 KiB per idle session; the upgrade response is kept only when the
            # record cannot be taken out of it).
            self._upgrade = take_connection(ws) or upgrade_response(ws)
            release_reader(aiohttp_protocol)
            self._ws = None

    # --- opening -------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        session: aiohttp.ClientSession,
        url: str,
        *,
        headers: dict[str, str],
        heartbeat: Optional[float],
        connect_timeout: Optional[float],
        ssl: Any,
        hub: EventHub,
        owner: ConnectionOwner,
        redactor: Optional[Redactor] = None,
        proxy: Optional[str] = None,
        proxy_auth: Optional[aiohttp.BasicAuth] = None,
        netrc: bool = False,
        lease: Optional[SharedSession] = None,
    ) -> WebSocketConnection:
        """Open the socket (bounded by ``connect_timeout``); ``heartbeat`` is the user's
        dead-peer detection figure in seconds (None: no pings); ``owner`` is told of
        ``ready`` and of the close, and its activity counter keeps a late Pong from
        counting while data still flows.
        ``redactor`` masks the client's secrets in the errors and their causes;
        ``netrc``: the ``Authorization`` header holds ``.netrc`` credentials, not a key.
        ``lease``: the socket's lease of ``session`` (see
        :meth:`~.._http.HttpTransport.socket_session`), given back when the session
        ends; the caller gives it back when this raises.

        Raises:
            SaynaError: what :func:`~.handshake.open_socket` raises: an HTTP error status
                of the upgrade (``SaynaAuthenticationError`` for 401...), a timeout, a
                redirect to another origin, a network failure, or a refused request.
        """
        ws = await open_socket(
            session,
            url,
            headers=headers,
            connect_timeout=connect_timeout,
            ssl=ssl,
            redactor=redactor,
            proxy=proxy,
            proxy_auth=proxy_auth,
            netrc=netrc,
        )
        return cls(ws, hub, owner, heartbeat=heartbeat, http=session, lease=lease)

    async def configure(self, config_text: str, ready_timeout: Optional[float]) -> ReadyMessage:
        """Send ``config`` and wait for ``ready``.

        Raises:
            SaynaConfigRejectedError: the server answered with a fatal ``error`` (the
                socket stays open and its reader runs, for a corrected config).
            SaynaTimeoutError: no ``ready`` within ``ready_timeout``.
            SaynaConnectionClosedError: the socket closed first.
        """
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[ReadyMessage] = loop.create_future()
        self._ready_waiter = waiter
        self.phase = next_phase(self.phase, PhaseInput.CONFIG_SENT)
        expiry: Optional[Deadlines] = None
        try:
            await self.send_text(config_text)
            if self._wire is not None:
                # Frames arrive on their own; only the deadline is ours to keep (one
                # timer of the loop for every connection: see .deadline).
                if ready_timeout is not None:
                    expiry = deadlines(ready_timeout)
                    expiry.add(waiter, self._ready_expired, waiter)
                try:
                    ready = await waiter
                finally:
                    # What followed the answer is handled once this task has resumed
                    # (see frame_text): as the old reader task started after ready.
                    loop.call_soon(self._wire.release)
                self._start_heartbeat()
                return ready
            if self._reader is not None:
                # The waiter is ours alone: a timeout may cancel it (no shield needed).
                return await within(ready_timeout, waiter)
            if ready_timeout is not None:
                # A deadline rather than a timeout scope: on expiry it fails the waiter
                # and closes the socket, which ends the read below. One timer of the
                # loop serves every connection's (see .deadline: a timer handle of
                # our own would stay in the loop's heap for ready_timeout seconds).
                expiry = deadlines(ready_timeout)
                expiry.add(waiter, self._ready_expired, waiter)
            return await self._read_until_ready(waiter)
        except asyncio.TimeoutError as exc:
            raise SaynaTimeoutError(
                f"The server did not send `ready` within {ready_timeout} s of the config; "
                "providers may be slow or misconfigured (raise Timeouts.ready to wait longer)",
                operation="ready",
                timeout=ready_timeout,
            ) from exc
        finally:
            if expiry is not None:
                expiry.discard(waiter)
            self._ready_waiter = None
            if not waiter.done():
                waiter.cancel()

    def _ready_expired(self, waiter: asyncio.Future[ReadyMessage]) -> None:
        if waiter.done():
            return
        waiter.set_exception(asyncio.TimeoutError())
        self._closing_by_client = True  # giving up on this socket is our decision
        if self._wire is None:
            self._spawn(self._aiohttp().close())  # wakes the pending receive() with CLOSING
        # (On the own path the caller, woken by the waiter, closes the connection.)

    async def _read_until_ready(self, waiter: asyncio.Future[ReadyMessage]) -> ReadyMessage:
        """Read on the calling task until ``waiter`` is decided, then start the reader."""
        ws = self._aiohttp()
        try:
            while not waiter.done():
                ended = self._handle(await ws.receive())
                if ended is not None:
                    self._finish(*ended)  # fails the waiter with a typed close
                    break  # a closed aiohttp socket answers receive() without waiting
        except asyncio.CancelledError:
            raise  # a timeout or the caller: the caller closes the connection
        except Exception as exc:
            logger.error("Sayna reader failed", exc_info=exc)
            self._finish(ABNORMAL_CLOSURE, _describe(exc))
        if self.close_info is None:
            self._reader = asyncio.get_running_loop().create_task(self._read(), name="sayna-reader")
        elif not waiter.done():
            waiter.set_exception(self._closed_error())
        return waiter.result()

    # --- receiving on the own data path (the FrameSink protocol) ------------------------

    def frame_text(self, text: str) -> None:
        """A text message: decode it, note ``ready`` / a config ``error``, publish it.

        A ``ready`` or refusal that answers a waiting :meth:`configure` holds the frames
        after it until that task has resumed (``connect()`` returns before a Close the
        server sent right after ``ready`` is handled)."""
        # decode_text, its fast path inline (one call less per received event): what
        # is no valid event within the size limit gets decode_text's own answer.
        if len(text) <= MAX_TEXT_FRAME:
            try:
                event = validate_event_json(text)
            except Exception:  # not a valid server event: unknown, or malformed and why
                event = decode_text(text)
        else:
            event = decode_text(text)
        event_type = event.type
        if event_type in _NOTED:  # one test on the path of every other event
            if event_type == "malformed_message":
                self._hub.publish(event)
                # A completion with a bad timestamp is reported, and still a
                # completion: speech waiting for it must not wait for ever.
                completion = completion_in(text)
                if completion is not None:
                    self._hub.publish(completion)
                return
            waiter = self._ready_waiter
            pending = waiter is not None and not waiter.done()
            if event_type == "ready":
                self._got_ready(cast(ReadyMessage, event))
            elif event_type == "error":
                event = self._got_error(cast(ErrorMessage, event))
            else:  # sip_transfer_error: the server's words may echo the key too
                event = self._masked(cast(SipTransferErrorMessage, event))
            if pending and waiter.done() and self._wire is not None:  # type: ignore[union-attr]
                self._wire.hold()
        self._hub.publish(event)

    def frame_binary(self, data: bytes) -> None:
        """A binary message: TTS audio."""
        self._hub.publish_audio(data)

    def frame_binary_run(self, run: list[bytes]) -> None:
        """Binary messages that came in a row in one read: TTS audio (the hub's run: no
        bound method of it kept per connection, as ``binary`` is)."""
        self._hub.publish_audio_run(run)

    def frame_ping(self, payload: bytes) -> None:
        """Answer a Ping with a Pong carrying its payload (while the server reads
        nothing, only its latest Ping, once it reads again: see FrameWriter.pong)."""
        if self._frames is not None:
            self._frames.pong(payload)

    def frame_pong(self) -> None:
        """A Pong: the peer is alive, and has read what we sent before its Ping."""
        if self._heartbeat is not None:
            self._heartbeat.pong()
        if self._acks is not None:
            self._acks.pong()

    def frame_close(self, code: int, reason: str) -> None:
        """The server's Close: answer it unless ours went first, end the session, and
        close the TCP connection (after the answer is written)."""
        frames = self._frames
        if frames is not None and not frames.closing:
            frames.write_close(int(CloseCode.NORMAL_CLOSURE))  # aiohttp answered 1000 too
        if self._closing_by_client and not reason:
            reason = _CLOSED_BY_CLIENT[1]
        self._finish(received_close_code(code), reason)
        self._end_transport()

    def frame_violation(self, violation: WireViolation) -> None:
        """The server broke the protocol: Close with the code it earns, and end."""
        logger.warning("Sayna server broke the WebSocket protocol: %s", violation.reason)
        if self._frames is not None:
            self._frames.write_close(violation.code)
        self._finish(violation.code, violation.reason, refused=True)
        self._end_transport()

    def frame_failure(self, exc: Exception) -> None:
        """Handling a frame raised: log it, end the session as lost (no further frame
        would be handled in order)."""
        logger.error("Sayna reader failed", exc_info=exc)
        self._finish(ABNORMAL_CLOSURE, _describe(exc))
        self._drop_transport()

    def wire_lost(self, exc: Optional[BaseException]) -> None:
        """The TCP connection ended: end the session if nothing did yet, and release
        aiohttp's record of the connection."""
        if self._frames is not None:
            self._frames.closing = True  # (nothing more may be written)
        self._finish(ABNORMAL_CLOSURE, self._lost_reason(exc))
        if self._upgrade is not None:
            release_connection(self._upgrade)

    def _lost_reason(self, exc: Optional[BaseException]) -> str:
        """Why the connection ended without a Close frame from the server, in words."""
        http = self._http
        if http is not None and http.closed and not self._closing_by_client:
            self._closing_by_client = True  # the close is this process's doing
            return f"{_CLOSED_BY_CLIENT[1]}: the aiohttp ClientSession it used was closed"
        if self._closing_by_client:
            return _CLOSED_BY_CLIENT[1]
        if exc is None or isinstance(exc, ConnectionResetError):
            return PEER_HUNG_UP
        return _describe(exc)

    def _end_transport(self) -> None:
        """Close the TCP connection once what is buffered is written; drop it should the
        peer not read that within :data:`CLOSE_FLUSH_SECONDS` (sends still waiting for
        it then wake with the session's close error)."""
        wire = self._wire
        if wire is not None:
            if self._frames is not None:
                self._frames.closing = True  # (nothing more may be written)
            transport = wire.transport
            transport.close()
            if transport.get_write_buffer_size():
                asyncio.get_running_loop().call_later(
                    CLOSE_FLUSH_SECONDS, drop_transport, transport
                )

    def _drop_transport(self) -> None:
        """Abort the TCP connection now (:func:`~.wire.drop_transport`)."""
        if self._frames is not None:
            self._frames.closing = True  # (nothing more may be written)
        drop_transport(self._transport())

    def send_failed(self, exc: BaseException) -> BaseException:
        """The SDK error for an exception raised by a send. A send that finds the
        transport closed before asyncio told the connection (it tells at a later turn
        of the loop, which an upload that never waits may not reach) ends the session
        now, as lost: the reconnection, or the end, starts at once, and later frames are
        held (or refused) as after any loss."""
        if self.close_info is None and self._wire is not None and self._wire.transport.is_closing():
            # (The rest of wire_lost, aiohttp's view of the connection included, comes
            # with the transport's own connection_lost, as after any loss.)
            self._finish(ABNORMAL_CLOSURE, self._lost_reason(exc))
        return super().send_failed(exc)

    def _transport(self) -> Optional[Any]:
        """The asyncio transport of the socket (None when aiohttp's cannot be found)."""
        return self._wire.transport if self._wire is not None else transport_of(self._ws)

    def _start_heartbeat(self) -> None:
        interval = self._heartbeat_interval
        if interval is not None and self._heartbeat is None and self.close_info is None:
            heartbeat = Heartbeat(interval, self)
            self._heartbeat = heartbeat
            heartbeat.start()

    # --- receiving through aiohttp (the fallback) ------------------------------------

    def _handle(self, msg: aiohttp.WSMessage) -> Optional[tuple[int, str]]:
        """Process one frame; returns ``(code, reason)`` when the socket has ended."""
        kind = msg.type
        if kind is _TEXT:  # first: the reader handles binary frames itself
            self.frame_text(msg.data)  # (no hold on this path: it has no _wire)
        elif kind is _BINARY:
            self.frame_binary(msg.data)
        elif kind is _WS.PONG:
            self.frame_pong()
        elif kind is _WS.PING:
            self._spawn(self._aiohttp().pong(msg.data))
        elif kind is _WS.CLOSE:
            # aiohttp reports a Close frame without payload as code 0.
            return received_close_code(msg.data), msg.extra or ""
        elif kind is _WS.ERROR:
            # A protocol violation aiohttp closed the socket for carries its close code
            # (1007: a text frame not in UTF-8, 1009: too big), which no reconnect fixes.
            error = msg.data
            if isinstance(error, aiohttp.WebSocketError):
                self._finish(error.code, _describe(error), refused=True)
                return error.code, _describe(error)
            return ABNORMAL_CLOSURE, _describe(error)
        elif kind in (_WS.CLOSED, _WS.CLOSING):
            return int(self._aiohttp().close_code or ABNORMAL_CLOSURE), self._ended_reason()
        return None

    def _ended_reason(self) -> str:
        """Why the socket closed without a Close frame from the peer, in words."""
        exc = self._aiohttp().exception()
        http = self._http
        if http is not None and http.closed and not self._closing_by_client:
            self._closing_by_client = True  # the close is this process's doing
            return f"{_CLOSED_BY_CLIENT[1]}: the aiohttp ClientSession it used was closed"
        if not isinstance(exc, ConnectionResetError):
            return _describe(exc)
        # The TCP connection ended first; aiohttp's own Close in reply could not be
        # written ("Cannot write to closing transport"): that is not the cause.
        if self._closing_by_client:
            return _CLOSED_BY_CLIENT[1]
        return PEER_HUNG_UP

    # --- heartbeat -----------------------------------------------------------------

    def _spawn(self, send: Awaitable[Any]) -> None:
        """Run a control-frame send (or the dead-peer close) beside the reader."""
        task = asyncio.get_running_loop().create_task(_quietly(send), name="sayna-control")
        if self._control is None:
            self._control = set()
        self._control.add(task)
        task.add_done_callback(self._control.discard)

    def heartbeat_ping(self) -> None:
        """Send a Ping (for the :class:`~.heartbeat.Heartbeat`)."""
        if self.close_info is not None:
            return
        acks = self._acks
        if acks is None:
            acks = self._acks = PingLedger()
        acks.ping(self._owner.audio_sent())
        if self._wire is not None:
            frames = self._frames
            assert frames is not None
            before = frames.written
            frames.write_control(PING)
            sent = self._sent
            if sent is not None:  # (made by the liveness reading before the first Ping)
                sent.pings += frames.written - before
        else:
            self._spawn(self._aiohttp().ping())

    def _bytes_written(self) -> int:
        return self._frames.written if self._frames is not None else 0

    def heartbeat_liveness(self) -> tuple[int, int]:
        """Life the peer shows other than a Pong, as ``(arrived, drained)``: data
        arriving from the server (the owner's activity: its process runs), and our
        queued bytes draining into it (maybe only its kernel taking them: the keepalive
        trusts that for one heartbeat at most). A Ping sent during an upload waits
        behind the upload's bytes, so its Pong is late however alive a slow peer is; a
        silent peer takes nothing and is still found dead. Read per keepalive tick."""
        sent = self._sent
        if sent is None and self.close_info is None:
            # Made at the first Ping, not with the reader: its first reading is its
            # baseline either way, and an idle session holds nothing until then.
            sent = self._sent = send_progress(self._transport(), self._bytes_written)
        return self._owner.connection_activity(), (sent() if sent is not None else 0)

    def heartbeat_dead(self) -> None:
        """No Pong in time: the session ends now with 1006, and the connection is dropped
        (a peer that answers no ping answers no Close either; a send waiting for it to
        read is woken by the drop). The reader then sees the closed socket and ends."""
        if self.close_info is not None:
            return
        logger.warning("Sayna server did not answer a ping in time: dropping the connection")
        acks = self._acks
        if acks is not None:
            # What went out after the last answered Ping may be in a hung server's
            # buffers only: reported (before the close), never lost silently.
            frames, size = acks.unconfirmed(self._owner.audio_sent())
            if frames:
                self._owner.audio_unanswered(frames, size)
        self._finish(ABNORMAL_CLOSURE, NO_PONG)

    async def _read(self) -> None:
        ws = self._aiohttp()
        # Functions called with their object rather than bound methods, which this
        # frame would keep for the socket's life (64 bytes each: issue #19).
        hub = self._hub
        publish_audio = EventHub.publish_audio
        handle = WebSocketConnection._handle
        ended: Optional[tuple[int, str]] = None
        burst = 0
        self._start_heartbeat()
        try:
            while True:
                msg = await ws.receive()
                if msg.type is _BINARY:  # the hot path: TTS audio
                    publish_audio(hub, msg.data)
                else:
                    ended = handle(self, msg)
                    if ended is not None:
                        break
                burst += 1
                if burst >= _YIELD_EVERY:
                    # ws.receive() does not yield while aiohttp has frames buffered: give
                    # async consumers a turn, and leave the backlog in aiohttp's
                    # flow-controlled buffer (TCP back-pressure) rather than in mailboxes.
                    burst = 0
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            # Cancelled from outside (disconnect, or loop teardown): the client's doing.
            self._closing_by_client = True
            ended = _CLOSED_BY_CLIENT
            raise
        except Exception as exc:  # the reader must always end in a typed close
            logger.error("Sayna reader failed", exc_info=exc)
            ended = (ABNORMAL_CLOSURE, _describe(exc))
        finally:
            self._finish(*(ended or (ABNORMAL_CLOSURE, "")))

    def _got_ready(self, ready: ReadyMessage) -> None:
        self.phase = next_phase(self.phase, PhaseInput.READY_RECEIVED)
        self._owner.connection_ready(ready)
        waiter = self._ready_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(ready)

    def _masked(self, event: SipTransferErrorMessage) -> SipTransferErrorMessage:
        """``event`` with the client's secrets masked in its message (a server echoing
        the key)."""
        message = self._owner.redact(event.message)
        return event if message == event.message else event.model_copy(update={"message": message})

    def _got_error(self, error: ErrorMessage) -> ErrorMessage:
        """Fail a pending ready wait on the config's refusal; return the event to
        publish: ``error`` with the client's secrets masked, should the server have
        echoed one (it reaches callbacks, reprs and logs)."""
        message = self._owner.redact(error.message)
        if message != error.message:
            error = error.model_copy(update={"message": message})
        # Errors of commands sent before the config arrive after it was sent: only the
        # config's own refusals fail the wait (see protocol.lifecycle.config_answer).
        waiter = self._ready_waiter
        refused = config_answer("error", message) is PhaseInput.CONFIG_REFUSED
        if refused and waiter is not None and not waiter.done():
            self.phase = next_phase(self.phase, PhaseInput.CONFIG_REFUSED)
            waiter.set_exception(SaynaConfigRejectedError(message))
        return error

    def _finish(self, code: Optional[int], reason: str, *, refused: bool = False) -> None:
        """End the session once: publish the close (``refused``: the client closed with
        ``code`` because of what the server sent)."""
        if self.close_info is not None:
            return
        by_client = self._closing_by_client
        if by_client:
            code = client_close_code(code)
        self.phase = Phase.CLOSED
        if reason:  # a server's reason may echo the key; it goes into errors and the log
            reason = self._owner.redact(reason)
        info = ConnectionClosed(code, reason, by_client, refused_by_client=refused)
        self.close_info = info
        heartbeat, self._heartbeat = self._heartbeat, None  # it refers back to us
        self._sent = None  # so does this (through _bytes_written)
        if heartbeat is not None:
            heartbeat.stop()
        waiter = self._ready_waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(self._closed_error())
        ended = self._ended
        if ended is not None and not ended.done():
            ended.set_result(None)
        self._owner.connection_closed(info)
        if code == ABNORMAL_CLOSURE and not by_client:
            # Lost or dead rather than closed by a handshake: release the socket now and
            # wake sends waiting for a peer that may never read again (a close() of ours
            # drops it itself, after its bounded Close handshake).
            self._drop_transport()
        if not by_client:
            # (A close of ours gives it back once done, in _release(): on aiohttp's path
            # the close is seen here before its Close frame is written.)
            self._give_back_lease()

    def _give_back_lease(self) -> None:
        """Give back the socket's lease of the shared HTTP session (once): its last
        holder closes it."""
        lease, self._lease = self._lease, None
        if lease is not None:
            let_go(lease)

    # --- closing -------------------------------------------------------------------

    async def close(self, timeout: Optional[float]) -> ConnectionClosed:
        """Close the socket: a Close handshake bounded by ``timeout``, then the TCP
        connection is dropped whatever the peer does (sends still waiting for it fail
        with the close error), and the reader and control tasks end.

        Safe to call in any state and more than once; never raises except
        ``CancelledError``. Cancelled, it still drops the connection and stops its
        tasks before the cancellation propagates.
        """
        self._closing_by_client = True
        try:
            if self._wire is not None:
                await self._close_handshake(timeout)
            elif not self._aiohttp().closed:
                try:
                    await within(timeout, self._aiohttp().close())
                except (asyncio.TimeoutError, aiohttp.ClientError, ConnectionError, RuntimeError):
                    pass
        finally:
            tasks = self._release()
        # Not reached when cancelled: the tasks were told to stop and end on their own.
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        assert self.close_info is not None
        return self.close_info

    async def _close_handshake(self, timeout: Optional[float]) -> None:
        """Our Close (after the audio sent so far), then the server's, within ``timeout``."""
        frames = self._frames
        assert frames is not None
        if self.close_info is not None or not frames.write_close(int(CloseCode.NORMAL_CLOSURE)):
            return
        ended = self._ended
        if ended is None:
            ended = self._ended = asyncio.get_running_loop().create_future()
        try:
            await within(timeout, ended)
        except asyncio.TimeoutError:
            pass

    def drop(self) -> None:
        """End the session now, as the client's doing, with no Close handshake (for a
        client garbage-collected with its session open, or a loop ending with it open):
        the TCP connection is dropped and aiohttp's record of it released; the reader,
        seeing it, ends (as after a dead heartbeat)."""
        self._closing_by_client = True
        self._finish(*_CLOSED_BY_CLIENT)
        self._drop_transport()
        if self._upgrade is not None:
            # Released now, not when the reader sees the drop: at the end of an event
            # loop, it may not run again.
            release_connection(self._upgrade)
        self._give_back_lease()

    def _release(self) -> list[asyncio.Task[None]]:
        """Synchronously end everything: close record, TCP connection, reader, control
        sends. Returns the tasks that were told to stop (to be awaited)."""
        if self.close_info is None:  # the reader has not seen the close (or never ran)
            self._finish(*_CLOSED_BY_CLIENT)
        self._drop_transport()
        if self._upgrade is not None:
            release_connection(self._upgrade)  # aiohttp's record of it (idempotent)
        self._give_back_lease()
        tasks = [task for task in (self._control or ()) if not task.done()]
        reader = self._reader
        if reader is not None:
            if not reader.done():
                tasks.append(reader)
            elif not reader.cancelled():
                reader.exception()  # retrieved here, as the gather would
        for task in tasks:
            task.cancel()
        return tasks


async def _quietly(send: Awaitable[Any]) -> None:
    """Await a control send; a socket that is closing is reported by the reader instead."""
    try:
        await send
    except (aiohttp.ClientError, ConnectionError, RuntimeError, asyncio.TimeoutError):
        pass


def _describe(exc: Optional[BaseException]) -> str:
    if exc is None:
        return ""
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
