"""The sending side of one WebSocket connection: text frames, binary frames (the
per-frame hot path), both through :mod:`.wire`'s writer on the client's own data path
or through aiohttp's WebSocket API otherwise, and the one error every send raises once
the session on the socket has ended.

:class:`SocketSender` is the base of :class:`~.connection.WebSocketConnection`, which
records the end of the session in :attr:`SocketSender.close_info`; a send made after it,
or woken by it, raises :class:`~sayna_client.errors.SaynaConnectionClosedError` with the
close code and reason.
"""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any, Callable, Optional, Union

import aiohttp

from ..errors import SaynaConnectionClosedError
from ..protocol.events import ConnectionClosed
from ..protocol.lifecycle import CloseCode
from .wire import FrameWriter

__all__ = ["ABNORMAL_CLOSURE", "BinarySender", "SocketSender"]

#: Sends one binary frame (see :meth:`SocketSender.binary_sender`).
BinarySender = Callable[[Union[bytes, bytearray, memoryview]], Awaitable[None]]
#: Close code reported when the transport dropped or the heartbeat timed out.
ABNORMAL_CLOSURE = int(CloseCode.ABNORMAL_CLOSURE)


class SocketSender:
    """Sends on the aiohttp client WebSocket ``ws`` until :attr:`close_info` is set.

    A subclass that takes the socket's data path over (:mod:`.wire`) sets :attr:`_frames`
    and lets ``ws`` go (``_ws`` None): every send then goes through the frame writer.
    """

    __slots__ = ("_binary_sender", "_frames", "_ws", "close_info")

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[Any]) -> None:
        #: aiohttp's WebSocket while the data path is aiohttp's (see :meth:`_aiohttp`).
        self._ws: Optional[aiohttp.ClientWebSocketResponse[Any]] = ws
        self._binary_sender: Optional[BinarySender] = None
        #: The client's own frame writer (None: aiohttp's sends; see .connection).
        self._frames: Optional[FrameWriter] = None
        #: How the session on this socket ended (None while it runs).
        self.close_info: Optional[ConnectionClosed] = None

    @property
    def closed(self) -> bool:
        """True once the session on this socket ended (or aiohttp closed the socket)."""
        ws = self._ws
        return self.close_info is not None or (ws is not None and ws.closed)

    def _aiohttp(self) -> aiohttp.ClientWebSocketResponse[Any]:
        """aiohttp's WebSocket: only the aiohttp data path calls this (the client's own
        path let it go when it took the transport over)."""
        ws = self._ws
        assert ws is not None, (
            "aiohttp's WebSocket was let go: the client reads and writes frames itself"
        )
        return ws

    def _closed_error(self, exc: Optional[BaseException] = None) -> SaynaConnectionClosedError:
        """The error a send raises once the session ended (``exc``: what the send hit)."""
        info = self.close_info
        code = info.code if info else ABNORMAL_CLOSURE
        reason = info.reason if info else str(exc or "")
        what = info.message.replace("Connection closed", "", 1) if info else f" (code {code})"
        if not info and reason:
            what += f": {reason}"
        return SaynaConnectionClosedError(
            f"The Sayna WebSocket is closed{what}",
            code=code,
            reason=reason,
            cause=exc,
        )

    async def send_text(self, text: str) -> None:
        """Send one text frame. Raises :class:`SaynaConnectionClosedError` if the socket is gone."""
        if self.close_info is not None:
            raise self._closed_error()
        try:
            if self._frames is not None:
                await self._frames.send_text(text)  # after the audio sent before it
            else:
                await self._aiohttp().send_str(text)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise self._closed_error(exc) from exc
        if self.close_info is not None:
            # The session ended while the frame waited for the peer to read: the
            # dropped transport woke aiohttp's wait, but the text may never arrive.
            raise self._closed_error()

    async def send_bytes(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """Send one binary frame; :class:`SaynaConnectionClosedError` if the socket is gone."""
        if self.close_info is not None:
            raise self._closed_error()
        try:
            await self.binary_sender()(data)
        except (aiohttp.ClientError, ConnectionError, RuntimeError) as exc:
            raise self._closed_error(exc) from exc

    def binary_sender(self) -> BinarySender:
        """The per-frame hot path's send: :class:`~.wire.FrameWriter` on the client's own
        data path, else aiohttp's ``send_bytes``. No SDK checks in between: pass any
        exception it raises through :meth:`send_failed`."""
        sender = self._binary_sender
        if sender is None:
            frames = self._frames
            if frames is not None:
                # Made per call (its callers keep it while audio flows): an idle session
                # holds no bound method for it (issue #19).
                return frames.send
            sender = self._binary_sender = self._send_via_aiohttp
        return sender

    async def _send_via_aiohttp(self, data: Union[bytes, bytearray, memoryview]) -> None:
        """aiohttp's ``send_bytes``, given a view of plain bytes: it would put the number
        of items (not bytes) of e.g. a 16-bit array's view into the frame header."""
        if type(data) is memoryview and (data.ndim != 1 or data.itemsize != 1):
            data = data.tobytes()
        await self._aiohttp().send_bytes(data)  # type: ignore[arg-type]
        if self.close_info is not None:  # woken by the end of the session (see send_text)
            raise ConnectionResetError("The connection closed while the frame waited to be sent")

    def send_failed(self, exc: BaseException) -> BaseException:
        """The SDK error for an exception raised by a :meth:`binary_sender` send."""
        if isinstance(exc, (aiohttp.ClientError, ConnectionError, RuntimeError)):
            return self._closed_error(exc)
        return exc
