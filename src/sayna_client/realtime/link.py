"""What a voice session's socket is opened with, shared with the REST side of its client:
the WebSocket URL, the ``Authorization`` header, the TLS setting, the redactor of the
client's secrets, and the client's current HTTP transport (:class:`SessionLink`), the
client held weakly (:class:`HttpOwner`)."""

from __future__ import annotations

import weakref
from typing import Any, Protocol

from .._http import HttpTransport
from .._redact import Redactor
from ..errors import SaynaNotConnectedError

__all__ = ["HttpOwner", "SessionLink"]


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
        self._owner = weakref.ref(owner)

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
