"""What a voice session's socket is opened with, shared with the REST side of its client:
the WebSocket URL, the ``Authorization`` header, the TLS setting, the redactor of the
client's secrets, and the client's current HTTP transport (:class:`SessionLink`), the
client held weakly (:class:`HttpOwner`).

**A client dropped with its session open.** The session does not keep its client alive
(its reader task keeps the session alive, not the client). When the application lets go
of a connected client without ``disconnect()``, the link hears of it (a weak reference's
callback): it warns with a ``ResourceWarning`` naming ``disconnect()`` and ``async with``,
as aiohttp warns of an unclosed session, logs the same, and has the session ended on its
loop (``VoiceSession.end_dropped``): the socket is dropped at once and the close is the
client's, not "closed by the server or network".
"""

from __future__ import annotations

import logging
import sys
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Optional, Protocol, cast

from .._http import HttpTransport
from .._redact import Redactor
from ..errors import SaynaNotConnectedError

if TYPE_CHECKING:
    from .session import VoiceSession

__all__ = ["HttpOwner", "SessionLink"]

logger = logging.getLogger("sayna_client")


class HttpOwner(Protocol):
    """The client whose HTTP transport opens the session's socket."""

    _http: HttpTransport

    def _renew_http(self) -> HttpTransport:
        """Replace the transport with a new one (its aiohttp session belonged to a loop
        that has been closed); returns the new one."""
        ...


class SessionLink:
    """Where and how the session's socket is opened, shared with the REST side.

    Attributes:
        ws_url: the ``ws(s)://.../ws`` URL.
        headers: the ``Authorization`` header (or none).
        ssl: passed to aiohttp.
        redactor: masks the client's secrets in errors.

    The client is held weakly: the session must not keep a dropped client alive.
    """

    __slots__ = ("_owner", "headers", "redactor", "ssl", "ws_url")

    def __init__(
        self, ws_url: str, headers: dict[str, str], ssl: Any, redactor: Redactor, owner: HttpOwner
    ) -> None:
        self.ws_url = ws_url
        self.headers = headers
        self.ssl = ssl
        self.redactor = redactor
        self._owner = _ClientRef(owner, _client_collected)
        self._owner.session = None  # set by session_proxy()

    def session_proxy(self, session: VoiceSession) -> VoiceSession:
        """A weak proxy of ``session`` (what its parts hold), which the link also uses to
        end the session if the client is garbage-collected while it is open."""
        proxy = cast("VoiceSession", weakref.proxy(session))
        self._owner.session = proxy
        return proxy

    def _client(self) -> HttpOwner:
        client = self._owner()
        if client is None:
            raise SaynaNotConnectedError(
                "The SaynaClient was dropped (garbage-collected): its session cannot be reopened"
            )
        return client

    def http(self) -> HttpTransport:
        """The client's current HTTP transport (its aiohttp session opens the socket).

        Raises:
            SaynaNotConnectedError: the client was garbage-collected.
        """
        return self._client()._http

    def renew_http(self) -> HttpTransport:
        """Replace the client's transport with a new one (its aiohttp session belonged
        to a loop that has been closed); returns the new one.

        Raises:
            SaynaNotConnectedError: the client was garbage-collected.
        """
        return self._client()._renew_http()


class _ClientRef(weakref.ref["HttpOwner"]):
    """The link's weak reference to its client, with the session to end (a weak proxy:
    the session holds the link) when the client is collected."""

    __slots__ = ("session",)

    session: Optional[VoiceSession]


def _client_collected(ref: _ClientRef) -> None:
    """A client was garbage-collected (any thread, maybe inside the collector): if its
    session is open, warn and have it ended on its own loop."""
    session = ref.session
    if session is None or sys.is_finalizing():
        return
    try:
        loop = session.client_dropped()
        ready = session.ready_message
        stream = ready.stream_id if ready is not None else session.stream_id
    except ReferenceError:  # the session went first: nothing is open
        return
    if loop is None:
        return
    message = (
        f"A SaynaClient was garbage-collected with its session open (stream_id={stream}); "
        "the SDK drops its connection now. Call `await client.disconnect()` when done with "
        "a client, or use `async with SaynaClient(...) as client:`"
    )
    warnings.warn(message, ResourceWarning, stacklevel=2)
    logger.warning("%s", message)
    try:
        loop.call_soon_threadsafe(_end_dropped, session)
    except RuntimeError:  # its loop closed meanwhile: so did the socket
        pass


def _end_dropped(session: VoiceSession) -> None:
    try:
        session.end_dropped()
    except ReferenceError:  # ended meanwhile (its reader gone, nothing held it)
        pass
