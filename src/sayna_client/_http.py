"""The REST transport: the only place that calls aiohttp for HTTP requests.

It adds authentication, applies the per-client or per-call timeout, retries
idempotent requests on connection errors, 429 and 5xx (honouring
``Retry-After``), and turns every failure into a typed ``Sayna*`` error chained
to the aiohttp exception.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import json
import logging
import os
import socket
import threading
import weakref
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Callable, Optional, Union
from urllib.parse import quote

import aiohttp
from aiohttp.helpers import get_env_proxy_for_url
from pydantic import BaseModel
from yarl import URL

from ._config import RetryPolicy, backoff_delay
from ._defaults import CLIENT_DEFAULT, Seconds, resolve
from ._redact import Redactor, safe_url
from .errors import (
    SaynaConnectionError,
    SaynaError,
    SaynaHttpError,
    SaynaInvalidResponseError,
    SaynaRateLimitError,
    SaynaTimeoutError,
    SaynaValidationError,
    http_error_for_status,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "HttpResponse",
    "HttpTransport",
    "RedirectRefused",
    "excerpt",
    "path_segment",
    "redirected_elsewhere",
]

logger = logging.getLogger("sayna_client")

#: Default bound of a REST response body (``SaynaClient(max_response_bytes=...)``):
#: far above any JSON answer, a long recording or minutes of synthesized PCM.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Bodies of error statuses are read up to this many bytes (the rest is not read).
_MAX_ERROR_BODY = 64 * 1024
#: Characters of a body quoted in an error message.
_EXCERPT_CHARS = 300
_CHUNK = 64 * 1024


def excerpt(body: Union[bytes, str], limit: int = _EXCERPT_CHARS) -> str:
    """The start of ``body`` on one line, at most ``limit`` characters (``...`` when cut)."""
    text = body if isinstance(body, str) else body[: limit * 4].decode("utf-8", "replace")
    text = " ".join(text[: limit * 4].split())
    cut = len(text) > limit or len(body) > limit * 4
    return (text[:limit] + "...") if cut else (text or "(empty body)")


def path_segment(value: str) -> str:
    """Percent-encode one path segment (room names and stream ids may hold anything)."""
    return quote(value, safe="")


class HttpResponse:
    """A response: status, headers (case-insensitive, read-only) and the raw body."""

    __slots__ = ("body", "endpoint", "headers", "status")

    def __init__(
        self, status: int, headers: Mapping[str, str], body: bytes, endpoint: str = ""
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.endpoint = endpoint

    def unreadable(self, problem: str) -> SaynaInvalidResponseError:
        """The error for a body this SDK cannot use (``problem`` says why)."""
        quoted = excerpt(self.body)
        return SaynaInvalidResponseError(
            f"{self.endpoint} answered HTTP {self.status} with a body this SDK cannot read: "
            f"{problem}. The body starts: {quoted}",
            self.status,
            self.endpoint,
            excerpt=quoted,
        )


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    import datetime

    now = datetime.datetime.now(when.tzinfo or datetime.timezone.utc)
    return max(0.0, (when - now).total_seconds())


def auth_hint(sent_key: bool) -> str:
    """The fix for a 401, in code terms: never "pass api_key=" when one was passed."""
    if sent_key:
        return "the server refused the API key: pass the right one as api_key= or SAYNA_API_KEY"
    return "the server requires an API key: pass api_key= or set SAYNA_API_KEY"


def _error_from_response(
    status: int,
    endpoint: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    sent_key: bool = False,
    redactor: Optional[Redactor] = None,
) -> SaynaHttpError:
    """Build the typed error for a non-2xx response, keeping the server's body (with the
    client's secrets masked, should the server echo them)."""
    text = body.decode("utf-8", errors="replace")
    if redactor is not None:
        text = redactor.scrub(text)
    parsed: Any = text
    error: Optional[str] = None
    code: Optional[str] = None
    detail = text.strip()
    try:
        parsed = json.loads(text) if text else None
    except (ValueError, RecursionError):  # not JSON, 4,300-digit numbers, deep nesting
        parsed = text
    if isinstance(parsed, dict):
        error = parsed.get("error") if isinstance(parsed.get("error"), str) else None
        code = parsed.get("code") if isinstance(parsed.get("code"), str) else None
        message = parsed.get("message") if isinstance(parsed.get("message"), str) else None
        # Auth errors: {"error": code, "message": text}; handlers: {"error": text, "code"?}.
        detail = message or error or text
        if message and error and not code:
            code = error
    message_text = f"{endpoint} failed with HTTP {status}: {excerpt(detail)}"
    if status == 401:
        message_text += f"; {auth_hint(sent_key)}"
    error_cls = http_error_for_status(status)
    if error_cls is SaynaRateLimitError:
        return SaynaRateLimitError(
            message_text,
            status,
            endpoint,
            body=parsed,
            error=error,
            code=code,
            retry_after=_retry_after_seconds(headers.get("Retry-After")),
        )
    return error_cls(message_text, status, endpoint, body=parsed, error=error, code=code)


@functools.lru_cache(maxsize=32)
def client_timeout(seconds: Optional[float]) -> aiohttp.ClientTimeout:
    """The aiohttp timeout for ``seconds`` in total (frozen, so one object per value)."""
    return aiohttp.ClientTimeout(total=seconds)


class RedirectRefused(Exception):
    """A WebSocket upgrade was redirected to another origin (raised to stop aiohttp
    following it; the connection turns it into a typed error)."""

    def __init__(self, status: int, source: str, target: str) -> None:
        super().__init__(f"HTTP {status} redirect from {source} to {target}")
        self.status = status
        self.source = source
        self.target = target


_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_SECURE = {"http": "http", "ws": "http", "https": "https", "wss": "https"}


def _origin(url: URL) -> tuple[str, str, Optional[int]]:
    scheme = (url.scheme or "").lower()
    return _SECURE.get(scheme, scheme), (url.host or "").lower(), url.port


def redirected_elsewhere(ws: Any, url: str) -> Optional[tuple[int, str]]:
    """``(status, target)`` when the upgrade of ``ws`` (opened for ``url``) was
    redirected to another origin, else None. A session the client did not make
    (``http_session=``) follows redirects before :func:`_refuse_redirect` could stop
    it; this catches it before anything is sent on the socket."""
    response = getattr(ws, "_response", None)
    history = getattr(response, "history", ())
    final = getattr(response, "url", None)
    if not history or not isinstance(final, URL):
        return None
    if _origin(final) == _origin(URL(url)):
        return None
    return int(history[0].status), safe_url(final)


async def _refuse_redirect(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestRedirectParams
) -> None:
    """Stop aiohttp from following a redirect to another origin.

    REST requests never follow redirects (``allow_redirects=False``); the WebSocket
    upgrade cannot say so, and a redirect there would take the session's config and
    provider keys to another host, or from wss to ws. A redirect within the same
    origin (scheme, host and port) is followed: it changes nothing of that.
    """
    response = params.response
    location = response.headers.get("Location", "")
    try:
        target = params.url.join(URL(location))
    except ValueError:
        target = None
    if target is not None and _origin(target) == _origin(params.url):
        return
    response.release()
    raise RedirectRefused(
        response.status, safe_url(params.url), safe_url(target) if target else "<invalid Location>"
    )


def connection_problem(url: str, exc: BaseException) -> str:
    """``exc`` (an aiohttp or OS error) in words a user acts on, without aiohttp's
    internals (``ssl:default``, connection keys) and without credentials."""
    where = url.split("?", 1)[0]
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return f"cannot reach the proxy for {where}: check HTTPS_PROXY/HTTP_PROXY or proxy="
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            f"cannot reach {where}: its TLS certificate is not trusted; pass ssl= an "
            "SSLContext that trusts its CA"
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, socket.gaierror):
            return f"cannot reach {where}: host name not found; check the URL"
        if os_error.errno == errno.ECONNREFUSED:
            return f"cannot reach {where}: connection refused; is the server running there?"
        reason = os.strerror(os_error.errno) if os_error.errno else str(os_error)
        return f"cannot reach {where}: {reason.lower()}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection before answering"
    if isinstance(exc, aiohttp.ClientError):
        return f"{type(exc).__name__} talking to {where}: {exc}"
    reason = os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else str(exc)
    return f"cannot reach {where}: {reason}"


def _abandon(session: aiohttp.ClientSession) -> None:
    """Release a session nobody will close: its last client was dropped without
    ``disconnect()`` (a REST-only script may end without it), and aiohttp would warn
    "Unclosed client session" and "Unclosed connector". Its connections are closed as
    aiohttp itself does when it collects a connector (``_close``, synchronous); quietly,
    since nothing is lost."""
    if session.closed:
        return
    connector = session.connector
    session.detach()  # public: the session counts as closed from now on
    if connector is None:
        return
    try:
        connector._close()
    except Exception:  # pragma: no cover - a loop already closed, another aiohttp
        logger.debug("Could not close the connections of a dropped client", exc_info=True)


class _Shared:
    """The aiohttp session that the clients of one event loop share when they were
    given no ``http_session`` (one per handshake timeout, its default timer), with the
    count of clients holding it. A client's connections stay its own (a WebSocket is
    one socket, never pooled); what is shared is immutable or a pool of idle REST
    connections: the connector, its DNS cache, the redirect guard. No cookie jar
    (``DummyCookieJar``): nothing one client is sent reaches another. It is closed
    when its last client lets go."""

    __slots__ = ("__weakref__", "key", "loop", "session", "users")

    def __init__(self, loop: asyncio.AbstractEventLoop, key: Optional[float]) -> None:
        redirects = aiohttp.TraceConfig()
        redirects.on_request_redirect.append(_refuse_redirect)
        self.loop = loop
        self.key = key
        self.session = aiohttp.ClientSession(
            # limit=0: a WebSocket holds its connection for the session's life, and
            # aiohttp's default of 100 per session would stall the 101st client.
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=client_timeout(key),
            trust_env=True,
            trace_configs=[redirects],
        )
        self.users = 0


#: The shared sessions of each running event loop, by handshake timeout.
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Optional[float], _Shared]]
_SHARED = weakref.WeakKeyDictionary()
#: Loops of several threads (sync clients) join and leave; a finalizer may leave while its
#: thread is inside _lease, hence reentrant.
_SHARED_LOCK = threading.RLock()
#: Closes of sessions left behind by a changed handshake timeout (kept until done).
_CLOSING: set[asyncio.Task[None]] = set()


def _lease(timeout: Optional[float]) -> _Shared:
    """Join the running loop's shared session for ``timeout`` (made if none is open)."""
    loop = asyncio.get_running_loop()
    with _SHARED_LOCK:
        by_key = _SHARED.get(loop)
        if by_key is None:
            by_key = _SHARED[loop] = {}
        shared = by_key.get(timeout)
        if shared is None or shared.session.closed:
            shared = by_key[timeout] = _Shared(loop, timeout)
        shared.users += 1
        return shared


def _unlease(shared: _Shared) -> Optional[aiohttp.ClientSession]:
    """Leave ``shared``; returns its session when this was the last client (for the
    caller to close), else None."""
    with _SHARED_LOCK:
        shared.users -= 1
        if shared.users > 0:
            return None
        by_key = _SHARED.get(shared.loop)
        if by_key is not None and by_key.get(shared.key) is shared:
            del by_key[shared.key]
        return shared.session


def _drop(shared: _Shared) -> None:
    """A client holding ``shared`` was collected without ``disconnect()``."""
    session = _unlease(shared)
    if session is not None:
        _abandon(session)


class HttpTransport:
    """Sends REST requests to one Sayna server through the client's aiohttp session.

    The WebSocket is opened through :meth:`session` too. The session's own timeout is
    the WebSocket handshake's (``handshake_timeout``): REST calls pass theirs per
    request.

    The session is the user's when ``http_session`` is given (never closed here);
    otherwise it is the running loop's shared one (:class:`_Shared`: ``trust_env=True``
    for ``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY`` and ``.netrc``), joined on first
    use and left by :meth:`close` or when this transport is garbage-collected without
    it; the last client to leave closes it (no "Unclosed client session" warnings).
    One client's close never closes another's socket.
    """

    __slots__ = (
        "__weakref__",
        "_base_url",
        "_finalizer",
        "_headers",
        "_proxy",
        "_retry",
        "_shared",
        "_sleep",
        "_ssl",
        "_timeout",
        "_user_session",
        "handshake_timeout",
        "max_response_bytes",
        "redactor",
    )

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Optional[str],
        timeout: Optional[float],
        retry: RetryPolicy,
        handshake_timeout: Optional[float] = None,
        ssl: Any = True,
        sleep: Callable[[float], Any] = asyncio.sleep,
        max_response_bytes: Optional[int] = DEFAULT_MAX_RESPONSE_BYTES,
        headers: Optional[dict[str, str]] = None,
        redactor: Optional[Redactor] = None,
        proxy: Optional[str] = None,
        http_session: Optional[aiohttp.ClientSession] = None,
    ) -> None:
        """``headers`` replaces the ``Authorization: Bearer`` made from ``api_key``;
        ``redactor`` masks the client's secrets in error texts."""
        self._base_url = base_url
        if headers is not None:
            self._headers = headers
        else:
            self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.max_response_bytes = max_response_bytes
        self.redactor = redactor or Redactor([api_key])
        self._timeout = timeout
        self._retry = retry
        self._shared: Optional[_Shared] = None
        self._user_session = http_session
        self._finalizer: Optional[weakref.finalize[[_Shared], HttpTransport]] = None
        self._ssl = ssl
        self._sleep = sleep
        self._proxy = proxy
        self.handshake_timeout = handshake_timeout

    @property
    def has_session(self) -> bool:
        """True while an open aiohttp session exists."""
        session = self._user_session
        if session is None and self._shared is not None:
            session = self._shared.session
        return session is not None and not session.closed

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session: the user's, else ours, created on first use (inside a
        running loop).

        Raises:
            SaynaConnectionError: the user's ``http_session`` has been closed.
        """
        if self._user_session is not None:
            if self._user_session.closed:
                raise SaynaConnectionError(
                    "the aiohttp.ClientSession passed as http_session= is closed; keep it "
                    "open while the client uses it"
                )
            return self._user_session
        shared = self._shared
        if (
            shared is None
            or shared.key != self.handshake_timeout
            or shared.session.closed
            or shared.loop is not asyncio.get_running_loop()
        ):
            shared = self._rejoin()
        return shared.session

    def _rejoin(self) -> _Shared:
        old, self._shared = self._shared, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if old is not None:
            stale = _unlease(old)
            if stale is not None and not stale.closed:
                # Its loop is this one (a client lives on one loop): close in the
                # background, as nothing here may wait.
                if old.loop is asyncio.get_running_loop():
                    closing = old.loop.create_task(stale.close())
                    _CLOSING.add(closing)
                    closing.add_done_callback(_CLOSING.discard)
                else:  # pragma: no cover - a client moved between loops
                    _abandon(stale)
        shared = self._shared = _lease(self.handshake_timeout)
        finalizer = self._finalizer = weakref.finalize(self, _drop, shared)
        # Not at interpreter exit: the loop is gone by then, and a client still
        # alive there (the sync client's) closes its own session properly.
        finalizer.atexit = False
        return shared

    def proxy_for(self, url: str) -> tuple[Optional[str], Optional[aiohttp.BasicAuth]]:
        """The proxy (and its credentials) for ``url``: the ``proxy=`` argument, else for
        ``ws://``/``wss://`` the environment's ``HTTP_PROXY``/``HTTPS_PROXY`` unless
        ``NO_PROXY`` matches (aiohttp's ``trust_env`` looks up only ``WS_PROXY`` there).
        HTTP URLs get ``(None, None)`` and aiohttp's own ``trust_env`` lookup."""
        if self._proxy is not None:
            return self._proxy, None
        session = self._user_session
        trust_env = session.trust_env if session is not None else True
        if not trust_env or not url.startswith(("ws://", "wss://")):
            return None, None
        try:
            proxy, auth = get_env_proxy_for_url(URL("http" + url[2:]))
        except LookupError:
            return None, None
        return str(proxy), auth

    async def close(self) -> None:
        """Leave the shared session, closing it if this client was its last (it is
        joined again on the next use); the user's ``http_session`` stays open. Safe to
        call twice."""
        shared, self._shared = self._shared, None
        finalizer, self._finalizer = self._finalizer, None
        if finalizer is not None:
            finalizer.detach()
        if shared is None:
            return
        session = _unlease(shared)
        if session is not None and not session.closed:
            await session.close()

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[BaseModel] = None,
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
        idempotent: bool = False,
    ) -> HttpResponse:
        """Send a request and return the 2xx response.

        Args:
            method: HTTP method.
            path: path below the base URL, already percent-encoded.
            body: a request model, sent as its JSON without ``None`` fields with
                ``Content-Type: application/json`` (DELETE bodies included, as the
                server requires).
            timeout: seconds for each attempt (connect, send and read the whole
                answer); ``None``: no limit; ``CLIENT_DEFAULT``: the client's.
            retry: overrides the client's retry policy for this call.
            idempotent: retries happen only when True.

        Raises:
            SaynaHttpError (a status subclass): a non-2xx status after any retries (its
                body is read up to 64 KiB; the message quotes the start).
            SaynaInvalidResponseError: a 2xx body over ``max_response_bytes`` (it is not
                read further).
            SaynaTimeoutError: the request exceeded ``timeout``.
            SaynaConnectionError: the connection failed.
            SaynaValidationError: aiohttp refused to send the request as built.
        """
        policy = retry or self._retry
        attempts = 1 + (policy.max_retries if idempotent else 0)
        endpoint = f"{method} {path.split('?', 1)[0]}"
        deadline = resolve(timeout, self._timeout)
        data = None if body is None else body.model_dump_json(exclude_none=True)
        headers = self._headers
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        url = self._base_url + path
        for attempt in range(1, attempts + 1):
            retry_after: Optional[float] = None
            try:
                response = await self._send(method, url, headers, data, deadline, endpoint)
            except (SaynaConnectionError, SaynaTimeoutError) as exc:
                if attempt >= attempts:
                    raise
                logger.debug("Retrying %s after %s", endpoint, type(exc).__name__)
            else:
                if response.status < 300:
                    return response
                error = _error_from_response(
                    response.status,
                    endpoint,
                    response.headers,
                    response.body,
                    sent_key="Authorization" in self._headers,
                    redactor=self.redactor,
                )
                if attempt >= attempts or response.status not in policy.retry_statuses:
                    raise error
                retry_after = getattr(error, "retry_after", None) or _retry_after_seconds(
                    response.headers.get("Retry-After")
                )
                logger.debug("Retrying %s after HTTP %d", endpoint, response.status)
            await self._sleep(
                backoff_delay(
                    attempt,
                    initial=policy.initial_backoff,
                    maximum=policy.max_backoff,
                    jitter=policy.jitter,
                    retry_after=retry_after,
                )
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _send(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        data: Optional[str],
        timeout: Optional[float],
        endpoint: str,
    ) -> HttpResponse:
        failure: SaynaError
        try:
            async with self.session().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=client_timeout(timeout),
                ssl=self._ssl,
                proxy=self._proxy,
                allow_redirects=False,
            ) as resp:
                return await self._read(resp, endpoint)
        except asyncio.TimeoutError as exc:
            failure = SaynaTimeoutError(
                f"{endpoint} timed out after {timeout} s; raise the timeout (client "
                "Timeouts.request or timeout= on the call) or check the server",
                operation=endpoint,
                timeout=timeout,
            )
            cause: BaseException = exc
        except (aiohttp.ClientError, OSError) as exc:
            cause = self.redactor.cause(exc)
            problem = connection_problem(self._base_url, exc)
            failure = SaynaConnectionError(
                f"{endpoint} failed: {self.redactor.scrub(problem)}", cause
            )
        except ValueError as exc:  # aiohttp refused a header or the URL as built
            cause = self.redactor.cause(exc)
            failure = SaynaValidationError(
                f"{endpoint} could not be sent: {self.redactor.scrub(str(exc))}"
            )
        # Raised here, outside the except blocks, so the original (whose text may hold
        # a secret) is not kept as __context__; __cause__ is it, or its scrubbed stand-in.
        failure.__cause__ = cause
        raise failure

    async def _read(self, resp: aiohttp.ClientResponse, endpoint: str) -> HttpResponse:
        """The response with its body, read up to the bound for its status."""
        status = resp.status
        limit = self.max_response_bytes if status < 300 else _MAX_ERROR_BODY
        if limit is None:
            return HttpResponse(status, resp.headers, await resp.read(), endpoint)
        declared = resp.content_length
        if status < 300 and declared is not None and declared > limit:
            resp.close()  # drop the connection: the body is never read
            raise _too_large(status, endpoint, limit, f"declares {declared} bytes")
        body = bytearray()
        while True:
            chunk = await resp.content.read(_CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                resp.close()  # the rest stays unread; the connection is not reused
                if status < 300:
                    raise _too_large(status, endpoint, limit, f"sent more than {limit} bytes")
                del body[limit:]  # an error's start is enough to report it
                break
        return HttpResponse(status, resp.headers, bytes(body), endpoint)


def _too_large(status: int, endpoint: str, limit: int, what: str) -> SaynaInvalidResponseError:
    return SaynaInvalidResponseError(
        f"{endpoint} answered HTTP {status} with a body that {what}, over the client's "
        f"bound of {limit} bytes; nothing more was read. If you expect such a body, raise "
        "SaynaClient(max_response_bytes=...) (None: no bound)",
        status,
        endpoint,
    )
