"""The server->client side of one WebSocket: one FIFO, one writer task, close handshakes.

Every frame a session sends goes through :meth:`Outbound.send`, so JSON messages and
binary audio leave in exactly the order they were queued (section 6.10). Closing follows
the real server: after ``participant_disconnected`` it sends a Close frame without payload
(clients see 1005) and ends the TCP connection once the client answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, Optional, Union

from aiohttp import WSMsgType, web

from .records import SessionRecord

__all__ = ["Close", "Outbound", "Raw"]

logger = logging.getLogger("sayna_client.server")

CLOSE_REPLY_TIMEOUT = 5.0


@dataclass(frozen=True)
class Close:
    """Queue item: close with ``code`` (``None`` = Close frame without payload)."""

    code: Optional[int]


@dataclass(frozen=True)
class Raw:
    """Queue item: a text frame sent verbatim and not recorded (fault injection)."""

    text: str


Item = Union[dict[str, Any], bytes, Close, Raw]


class Outbound:
    """Writer of one connection.

    Args:
        drop_after: abort the TCP connection after this many frames (fault injection).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        request: web.Request,
        record: SessionRecord,
        drop_after: Optional[int] = None,
    ) -> None:
        self._ws = ws
        self._request = request
        self._record = record
        self._drop_after = drop_after
        self._queue: asyncio.Queue[Item] = asyncio.Queue()
        self._writer: Optional[asyncio.Task[None]] = None
        self._abort_timer: Optional[asyncio.Task[None]] = None
        self._accepting = True
        self._server_closing = False
        #: The close code the session ended with (1005 = no status, 1006 = abnormal).
        self.close_code: Optional[int] = None

    @property
    def accepting(self) -> bool:
        """``False`` once a Close was queued or the writer stopped."""
        return self._accepting

    def start(self) -> None:
        self._writer = asyncio.ensure_future(self._write_loop())

    def send(self, item: Item) -> None:
        """Queue a frame (dropped once a Close was queued or the writer stopped)."""
        if self._accepting:
            self._queue.put_nowait(item)
            if isinstance(item, Close):
                self._accepting = False

    def close_transport(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.close()

    def _abort_transport(self) -> None:
        transport = self._request.transport
        if transport is not None:
            transport.abort()

    async def client_closed(self, code: int) -> None:
        """The client sent Close with ``code`` (0 = no payload): answer and end the connection."""
        if self._server_closing:
            # Our payload-less Close was answered: end TCP, send nothing more.
            self.close_transport()
            return
        self.close_code = code or 1005
        if code:
            await self._ws.close(code=code)
        else:
            await send_close_frame(self._ws, b"")
            self.close_transport()

    def connection_lost(self) -> None:
        """The reader saw the connection end without a Close handshake."""
        if self.close_code is None:
            self.close_code = self._ws.close_code or 1006

    async def shutdown(self, code: int = 1001) -> None:
        """Close from the server side with ``code`` (server stopping)."""
        if self._ws.closed or not self._accepting:
            self.close_transport()
            return
        self._accepting = False
        self.close_code = code
        try:
            await asyncio.wait_for(self._ws.close(code=code), 3.0)
        except (asyncio.TimeoutError, ConnectionError, RuntimeError):
            self.close_transport()

    async def aclose(self) -> None:
        """Stop the writer and timers; queued frames are discarded."""
        self._accepting = False
        for task in (self._writer, self._abort_timer):
            if task is not None and not task.done():
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _write_loop(self) -> None:
        frames = 0
        try:
            while True:
                item = await self._queue.get()
                if isinstance(item, Close):
                    await self._send_close(item.code)
                    return
                if isinstance(item, bytes):
                    await self._ws.send_bytes(item)
                elif isinstance(item, Raw):
                    await self._ws.send_str(item.text)
                else:
                    await self._ws.send_str(json.dumps(item, separators=(",", ":")))
                if not isinstance(item, Raw):
                    self._record.add_sent(item)
                frames += 1
                if self._drop_after is not None and frames >= self._drop_after:
                    self.close_code = 1006
                    self._abort_transport()
                    return
        except (ConnectionError, RuntimeError) as exc:
            logger.debug("session writer stopped: %s", exc)
        finally:
            self._accepting = False

    async def _send_close(self, code: Optional[int]) -> None:
        if code is None:
            self._server_closing = True
            self.close_code = 1005
            await send_close_frame(self._ws, b"")
            # The reader ends the connection when the client answers; do not wait forever.
            self._abort_timer = asyncio.ensure_future(self._abort_later())
        else:
            self.close_code = code
            await self._ws.close(code=code)

    async def _abort_later(self) -> None:
        await asyncio.sleep(CLOSE_REPLY_TIMEOUT)
        self._abort_transport()


async def send_close_frame(ws: web.WebSocketResponse, payload: bytes) -> None:
    """Send a Close frame with an arbitrary payload (empty = "no status", seen as 1005).

    ``WebSocketResponse.close()`` always sends a status code, so the frame is written
    directly: public ``send_frame`` on aiohttp >= 3.11, the writer before that.
    """
    send_frame = getattr(ws, "send_frame", None)
    if send_frame is not None:
        await send_frame(payload, WSMsgType.CLOSE)
    else:  # pragma: no cover - aiohttp < 3.11
        await ws._writer._send_frame(payload, WSMsgType.CLOSE)  # type: ignore[union-attr]
