"""The REST transport: the only place that calls aiohttp for HTTP requests.

It adds authentication, applies the per-client or per-call timeout, retries
idempotent requests on connection errors, 429 and 5xx (honouring
``Retry-After``), and turns every failure into a typed ``Sayna*`` error chained
to the aiohttp exception.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import logging
import os
import sys
from collections.abc import Mapping
from typing import Any, Callable, Optional, Tuple
from urllib.parse import quote

# What aiohttp's trust_env reads (typeshed lacks proxy_bypass_environment; 3.9+ has it).
from urllib.request import (  # type: ignore[attr-defined]
    getproxies_environment,
    proxy_bypass_environment,
)

import aiohttp
from pydantic import BaseModel
from yarl import URL

from ._config import RetryPolicy, backoff_delay
from ._defaults import CLIENT_DEFAULT, Seconds, resolve
from ._http_errors import (
    NOT_HTTP,
    connection_problem,
    error_from_response,
    excerpt,
    not_http,
    refused_request,
    retry_after_seconds,
    too_large,
)
from ._http_netrc import netrc_entries
from ._http_sessions import SharedSession, abandon, client_timeout, drop, lease, unlease
from ._redact import Redactor, model_secrets, safe_url, url_secrets
from .errors import (
    SaynaConnectionError,
    SaynaError,
    SaynaInvalidResponseError,
    SaynaTimeoutError,
    SaynaValidationError,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "HttpResponse",
    "HttpTransport",
    "applied_note",
    "check_proxy_url",
    "path_segment",
    "proxy_secrets",
]

logger = logging.getLogger("sayna_client")

#: Default bound of a REST response body (``SaynaClient(max_response_bytes=...)``):
#: far above any JSON answer, a long recording or minutes of synthesized PCM.
DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
#: Bodies of error statuses are read up to this many bytes (the rest is not read).
_MAX_ERROR_BODY = 64 * 1024
_CHUNK = 64 * 1024

#: How requests reach the server: ``(proxy, proxy_auth, authorization)``, the last an
#: ``Authorization`` header value from ``.netrc`` (:meth:`HttpTransport.route`).
Route = Tuple[Optional[str], Optional[aiohttp.BasicAuth], Optional[str]]
#: The route of most clients: straight to the server, no credentials (one shared tuple).
_DIRECT: Route = (None, None, None)


async def environment_route(url: str, proxy: Optional[str], netrc: bool) -> Route:
    """What aiohttp's ``trust_env`` looks up for ``url``, looked up here once: the
    ``proxy`` argument, else ``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` matches
    (with a proxy's ``.netrc`` credentials), and when ``netrc`` the ``.netrc``
    credentials for ``url``'s host. ``.netrc`` is read at most once, and only when
    needed (aiohttp's own lookup read it for the proxy, then again for the host: an
    unreadable ``NETRC`` was logged twice); in a worker thread when the file exists,
    shared by the loop's clients while it is unchanged (:func:`netrc_entries`). The
    environment variables are read on the loop (no I/O)."""
    proxy_auth: Optional[aiohttp.BasicAuth] = None
    target = URL(url)
    proxy_host: Optional[str] = None
    if proxy is None and _proxy_variables():
        found = _env_proxy(target)
        if found is not None:
            proxy_auth = aiohttp.BasicAuth.from_url(found)
            found = found if proxy_auth is None else found.with_user(None)
            proxy = str(found)
            if proxy_auth is None and found.host:
                proxy_host = found.host
    host = target.host if netrc else None
    if proxy_host is None and not host:
        return proxy, proxy_auth, None
    entries = await netrc_entries()
    if proxy_host is not None:
        login = _netrc_login(entries, proxy_host)
        proxy_auth = None if login is None else aiohttp.BasicAuth(*login)
    authorization: Optional[str] = None
    if host:
        login = _netrc_login(entries, host)
        if login is not None:
            token = base64.b64encode(f"{login[0]}:{login[1]}".encode()).decode("ascii")
            authorization = f"Basic {token}"
    return proxy, proxy_auth, authorization


def _env_proxy(target: URL) -> Optional[URL]:
    """The environment's proxy for ``target`` as aiohttp's ``trust_env`` picks it
    (``NO_PROXY``; http, https, ws and wss targets; an https proxy is not supported).

    Raises:
        SaynaValidationError: the variable is not an http:// URL (named, with the fix).
    """
    proxies = getproxies_environment()
    if target.host is not None and proxy_bypass_environment(target.host, proxies):
        return None
    if target.scheme not in ("http", "https", "ws", "wss"):
        return None
    raw = proxies.get(target.scheme)
    if raw is None:
        return None
    scheme = raw.partition("://")[0].lower() if "://" in raw else ""
    if scheme in ("https", "wss"):
        logger.warning("%s proxies are not supported, ignoring", scheme.upper())
        return None
    return check_proxy_url(raw, proxy_variable(target.scheme))


def _proxy_variables() -> bool:
    """Whether any ``*_proxy`` variable is set, as ``getproxies_environment`` finds them
    (in any case; ``NO_PROXY`` counts): one pass over the names. ``urllib``'s own lookup
    reads every variable's name and value twice (and ``proxy_bypass_environment`` once
    more): about 0.2 ms per client here, with a few dozen variables."""
    return any(name[-6:].lower() == "_proxy" for name in os.environ)


def proxy_variable(scheme: str) -> str:
    """The name of the variable that gives the proxy for ``scheme`` URLs, as
    ``urllib.request.getproxies_environment`` reads it (the lowercase one wins)."""
    lower = f"{scheme}_proxy"
    return lower if os.environ.get(lower) else lower.upper()


def _masked(raw: str) -> str:
    """``raw``, a proxy URL that may not parse, with any ``user:password@`` as ``***@``."""
    start = raw.find("://")
    start = 0 if start < 0 else start + 3
    at = raw.rfind("@")
    return raw if at < start else raw[:start] + "***" + raw[at:]


def check_proxy_url(raw: str, name: str) -> URL:
    """``raw`` (the ``proxy=`` argument, which may be https://, or a ``*_PROXY``
    variable, ``name``) as a URL.

    Raises:
        SaynaValidationError: not an ``http://host[:port]`` URL: the message names
            ``name`` and shows the value without its credentials.
    """
    schemes = ("http", "https") if name == "proxy=" else ("http",)
    try:
        found = URL(raw)
        if found.scheme not in schemes:
            scheme = f"its scheme is {found.scheme}" if "://" in raw else "it has no scheme"
            problem: Optional[str] = f"{scheme}; only http:// proxies are supported"
        else:
            problem = "no host" if not found.host or found.port is None else None
    except (ValueError, TypeError) as exc:
        # yarl's reason ("port can't be converted to integer"), without any part of
        # the value, which may hold a password.
        problem = Redactor([*url_secrets(raw), raw]).scrub(str(exc)) or type(exc).__name__
    else:
        if problem is None:
            return found
    # user:password@ masked; the query's values too, when it parses that far.
    shown = Redactor([s for s in url_secrets(raw) if s != raw]).scrub(_masked(raw))
    if name == "proxy=":
        where, fix = "the proxy= argument", "pass"
        extra = ""
    else:
        where, fix = f"the environment variable {name}", f"set {name} to"
        extra = ", or unset it"
    raise SaynaValidationError(
        f"{where} is not a usable proxy URL ({problem}): {shown!r}; {fix} an http:// URL "
        f"such as 'http://proxy.example:3128'{extra}"
    )


def proxy_secrets(proxy: str) -> list[str]:
    """The credentials of a proxy URL in the forms a text may show them: its user,
    password and query values, and the ``Proxy-Authorization`` header aiohttp makes of
    them (``Basic`` and base64, which a proxy's error page may echo)."""
    found = url_secrets(proxy)
    try:
        auth = aiohttp.BasicAuth.from_url(URL(proxy))
        if auth is not None:
            found += authorization_secrets(auth.encode())
    except (ValueError, TypeError, UnicodeError):
        pass  # aiohttp cannot send it either
    return found


def _maybe_sent(exc: BaseException) -> bool:
    """Whether the request may have reached the server before ``exc``: not when the
    connection was never made (refused, DNS, TLS, a proxy that refused the tunnel)."""
    return not isinstance(exc, (aiohttp.ClientConnectorError, aiohttp.ClientHttpProxyError))


def _netrc_login(entries: Any, host: str) -> Optional[tuple[str, str]]:
    """The ``.netrc`` user and password for ``host`` (None: no file or no entry)."""
    entry = entries.authenticators(host) if entries is not None else None
    if entry is None:
        return None
    login, account, password = entry
    user = login if (login or account is None) else account
    return user, password or ""


def authorization_secrets(value: Optional[str]) -> tuple[str, ...]:
    """The secrets of an ``Authorization`` (or ``Proxy-Authorization``) header value: the
    whole value and its credentials (``Basic``'s base64 token, ``Bearer``'s key)."""
    if not value:
        return ()
    return value, value.partition(" ")[2]


def applied_note(check: Optional[str]) -> str:
    """What the error of a call sent once adds when the request may have reached the
    server (a connection lost after sending it, a timeout, a 2xx it cannot read): it may
    have been applied, and ``check`` (e.g. ``"e.g. get_livekit_room('r') lists 'id'"``)
    says how to find out before sending it again."""
    how = f"check ({check})" if check else "check the server's state"
    return f"the server may have applied it: {how} before sending it again"


def call_redactor(redactor: Redactor, request: Optional[BaseModel]) -> Redactor:
    """``redactor`` plus the credentials in ``request`` (``TTSConfig.auth``...), for the
    text of one failed call (walks the model: the error path only)."""
    return redactor if request is None else redactor.also(model_secrets(request))


def path_segment(value: str) -> str:
    """Percent-encode one path segment (room names and stream ids may hold anything).

    The dot segments ``.`` and ``..`` are encoded too (``%2E``): as they are, URL
    normalisation would drop them (``/livekit/rooms/..`` is ``/livekit``)."""
    if value in (".", ".."):
        return "%2E" * len(value)
    return quote(value, safe="")


@functools.lru_cache(maxsize=64)
def _normalised(base_url: str) -> str:
    """``base_url`` as yarl writes it, worked out once per URL, not per request."""
    return str(URL(base_url))


class HttpResponse:
    """A response: status, headers (case-insensitive, read-only) and the raw body, with
    what masks the client's secrets and the request's (``request``: the request model) in
    a text quoting the body."""

    __slots__ = ("body", "endpoint", "headers", "note", "redactor", "request", "status")

    def __init__(
        self,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        endpoint: str = "",
        redactor: Optional[Redactor] = None,
        request: Optional[BaseModel] = None,
        note: Optional[str] = None,
    ) -> None:
        self.status = status
        self.headers = headers
        self.body = body
        self.endpoint = endpoint
        self.redactor = redactor
        self.request = request
        self.note = note

    def unreadable(self, problem: str) -> SaynaInvalidResponseError:
        """The error for a body this SDK cannot use (``problem`` says why), quoting its
        start with every secret of the client and of the request masked (a page that
        echoes the request would show the API key). For a call sent once, a 2xx says the
        server may have applied it (``note``, :func:`applied_note`)."""
        redactor = call_redactor(self.redactor or Redactor(), self.request)
        quoted = excerpt(self.body, redactor=redactor)
        if self.note is not None and self.status < 300:
            problem = f"{problem}; {self.note}"
        return SaynaInvalidResponseError(
            f"{self.endpoint} answered HTTP {self.status} with a body this SDK cannot read: "
            f"{problem}. The body starts: {quoted}",
            self.status,
            self.endpoint,
            excerpt=quoted,
        )


class HttpTransport:
    """Sends REST requests to one Sayna server through the client's aiohttp session.

    The WebSocket is opened through :meth:`socket_session`. REST calls pass their timeout
    per request; the WebSocket handshake is bounded by its caller.

    The session is the user's when ``http_session`` is given (never closed here);
    otherwise it is the running loop's shared one (:class:`SharedSession`;
    ``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY`` and ``.netrc`` apply through
    :meth:`route`), joined on first
    use and left by :meth:`close` or when this transport is garbage-collected without
    it; the last client to leave closes it (no "Unclosed client session" warnings).
    One client's close never closes another's socket.
    """

    __slots__ = (
        "__weakref__",
        "_base_url",
        "_headers",
        "_proxy",
        "_route",
        "_shared",
        "_sleep",
        "_ssl",
        "_user_session",
        "max_response_bytes",
        "redactor",
        "retry",
        "timeout",
    )

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Optional[str],
        timeout: Optional[float],
        retry: RetryPolicy,
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
        self.timeout = timeout
        self.retry = retry
        self._shared: Optional[SharedSession] = None
        self._user_session = http_session
        self._ssl = ssl
        self._sleep = sleep
        self._proxy = proxy
        self._route: Optional[Route] = None

    def renewed(self) -> HttpTransport:
        """A new transport with this one's settings and no aiohttp session joined yet
        (for a new event loop: this one's session belongs to the old loop)."""
        return HttpTransport(
            self._base_url,
            api_key=None,
            timeout=self.timeout,
            retry=self.retry,
            ssl=self._ssl,
            sleep=self._sleep,
            max_response_bytes=self.max_response_bytes,
            headers=self._headers,
            redactor=self.redactor,
            proxy=self._proxy,
            http_session=self._user_session,
        )

    def __del__(self) -> None:
        # Collected without close(): leave the shared session (the last client out
        # releases it, with no "Unclosed client session" warning). A __del__ rather than
        # a weakref.finalize per transport: about 0.3 KiB less per idle client. Not at
        # interpreter exit: the loop is gone by then, and a client still alive there
        # (the sync client's) closes its own session properly.
        shared = getattr(self, "_shared", None)
        if shared is not None and not sys.is_finalizing():
            self._shared = None
            drop(shared)

    @property
    def has_session(self) -> bool:
        """True while an open aiohttp session exists."""
        session = self._user_session
        if session is None and self._shared is not None:
            session = self._shared.session
        return session is not None and not session.closed

    def session(self) -> aiohttp.ClientSession:
        """The aiohttp session of REST calls: the user's, else the loop's shared one's
        (:meth:`SharedSession.rest`), created on first use (inside a running loop).

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
        if shared is None or shared.session.closed or shared.loop is not asyncio.get_running_loop():
            shared = self._rejoin()
        return shared.rest()

    def socket_session(self) -> tuple[aiohttp.ClientSession, Optional[SharedSession]]:
        """The aiohttp session a WebSocket opens on (inside a running loop), with the
        socket's own lease of it: None for the user's ``http_session``, else held for
        the socket's life and given back with :func:`~._http_sessions.let_go`. Apart
        from the REST calls' lease, so that a REST call from another loop, or the end
        of the REST lease, never closes the session under a live socket.

        Raises:
            SaynaConnectionError: the user's ``http_session`` has been closed.
        """
        if self._user_session is not None:
            return self.session(), None
        shared = lease()
        return shared.session, shared

    def _rejoin(self) -> SharedSession:
        old, self._shared = self._shared, None
        if old is not None:
            stale = unlease(old)
            # Left for a closed session (nothing to do) or another loop's: a client
            # moved between loops leaves the old one's session, if it was the last.
            if stale is not None and not stale.closed:  # pragma: no cover
                abandon(stale, old.loop)
        shared = self._shared = lease()  # left by close() or __del__
        return shared

    async def route(self) -> Route:
        """How requests and the WebSocket upgrade reach the server: ``(proxy,
        proxy_auth, authorization)``, looked up on first use and kept.

        The ``proxy=`` argument, else, when the environment is trusted (always with the
        shared session; with a user's ``http_session`` as its ``trust_env`` says), the
        environment's ``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` matches the
        host; with the shared session, the ``.netrc`` credentials for the host (as an
        ``Authorization`` header value) when the client sends no ``Authorization``
        header of its own (a user's session with ``trust_env=True`` reads ``.netrc``
        itself: a second ``Authorization`` header would make aiohttp refuse the
        request). The credentials found are masked in every text of the client from then
        on (an error page may echo the header).
        The shared session has aiohttp's ``trust_env`` off: aiohttp would look this up
        in two worker threads on every request, which cost more than half of a
        ``health()`` call on loopback; here it is one lookup per client, on the loop but
        for reading an existing ``.netrc``: that is done in a worker thread, once for the
        loop's clients while the file is unchanged, and the concurrent first calls of a
        client wait for that one read.

        Cancellation: cancelling the caller during the lookup leaves nothing kept (the
        next call looks again).
        """
        route = self._route
        if route is None:
            session = self._user_session
            trust_env = session.trust_env if session is not None else True
            if trust_env:
                netrc = session is None and "Authorization" not in self._headers
                route = await environment_route(self._base_url, self._proxy, netrc)
                if self._route is not None:  # a concurrent first call kept its own
                    return self._route
            else:
                route = (self._proxy, None, None)
            if route != _DIRECT:
                self._mask(route)
            self._route = route = _DIRECT if route == _DIRECT else route
        return route

    def _mask(self, route: Route) -> None:
        """Mask the credentials ``route`` found (``.netrc``'s for the host, a proxy's) in
        every text of this client from now on: an error page may echo the header."""
        proxy, proxy_auth, authorization = route
        secrets = list(authorization_secrets(authorization))
        if proxy is not None and "@" in proxy:  # the proxy= argument's user:password@
            secrets += proxy_secrets(proxy)
        if proxy_auth is not None:
            secrets += [proxy_auth.password, *authorization_secrets(proxy_auth.encode())]
        if secrets:
            self.redactor.add(*secrets)

    async def close(self) -> None:
        """Leave the shared session, closing it if this client was its last (it is
        joined again on the next use); the user's ``http_session`` stays open. Safe to
        call twice."""
        shared, self._shared = self._shared, None
        if shared is None:
            return
        session = unlease(shared)
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
        check: Optional[str] = None,
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
            check: for a call that is not idempotent, how to find out whether the server
                applied it; an error after the request may have reached the server (a
                connection lost after sending, a timeout, a 2xx it cannot read) says it
                may have been applied, and this (:func:`applied_note`).

        Raises:
            SaynaHttpError (a status subclass): a non-2xx status after any retries (its
                body is read up to 64 KiB; the message quotes the start).
            SaynaInvalidResponseError: a 2xx body over ``max_response_bytes`` (it is not
                read further).
            SaynaTimeoutError: the request exceeded ``timeout``.
            SaynaConnectionError: the connection failed.
            SaynaValidationError: aiohttp refused to send the request as built.
        """
        policy = retry or self.retry
        attempts = 1 + (policy.max_retries if idempotent else 0)
        endpoint = f"{method} {path.split('?', 1)[0]}"
        deadline = resolve(timeout, self.timeout)
        data = None if body is None else body.model_dump_json(exclude_none=True)
        headers = self._headers
        if data is not None:
            headers = {**headers, "Content-Type": "application/json"}
        # ``path`` is encoded already: parsed again, its %2E would become a dot segment
        # and be normalised away (a room named ".." would be GET /livekit).
        url = URL(_normalised(self._base_url) + path, encoded=True)
        note = None if idempotent else applied_note(check)
        for attempt in range(1, attempts + 1):
            retry_after: Optional[float] = None
            try:
                response = await self._send(
                    method, url, headers, data, deadline, endpoint, body, note
                )
            except (SaynaConnectionError, SaynaTimeoutError) as exc:
                if attempt >= attempts or (
                    not policy.retry_timeouts and isinstance(exc, SaynaTimeoutError)
                ):
                    raise
                logger.debug("Retrying %s after %s", endpoint, type(exc).__name__)
            else:
                if response.status < 300:
                    return response
                error = error_from_response(
                    response.status,
                    endpoint,
                    response.headers,
                    response.body,
                    sent_key="Authorization" in self._headers,
                    netrc=self._route is not None and self._route[2] is not None,
                    trust_env=self._user_session is not None and self._user_session.trust_env,
                    redactor=call_redactor(self.redactor, body),
                    url=str(url),
                    note=note,
                )
                if attempt >= attempts or response.status not in policy.retry_statuses:
                    raise error
                retry_after = getattr(error, "retry_after", None) or retry_after_seconds(
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
        url: URL,
        headers: dict[str, str],
        data: Optional[str],
        timeout: Optional[float],
        endpoint: str,
        request: Optional[BaseModel] = None,
        note: Optional[str] = None,
    ) -> HttpResponse:
        """One attempt. ``note``: for a call sent once, what its error adds when the
        request may have reached the server (:func:`applied_note`)."""
        failure: SaynaError
        proxy, proxy_auth, authorization = self._route or await self.route()
        if authorization is not None:
            headers = {**headers, "Authorization": authorization}
        status: Optional[int] = None
        try:
            async with self.session().request(
                method,
                url,
                data=data,
                headers=headers,
                timeout=client_timeout(timeout),
                ssl=self._ssl,
                proxy=proxy,
                proxy_auth=proxy_auth,
                allow_redirects=False,
            ) as resp:
                status = resp.status
                return await self._read(resp, endpoint, request, note)
        except asyncio.TimeoutError as exc:
            # Whether the request went out before the deadline is not known.
            failure = SaynaTimeoutError(
                f"{endpoint} timed out after {timeout} s; "
                + (f"{note}. Raise" if note is not None else "raise")
                + " the timeout (client Timeouts.request or timeout= on the call) or check "
                "the server",
                operation=endpoint,
                timeout=timeout,
            )
            cause: BaseException = exc
        except (aiohttp.ClientError, OSError) as exc:
            cause = self.redactor.cause(exc)
            if not_http(exc):  # not retried: the same peer answers the same way
                failure = self._not_http(endpoint, status, note)
            else:
                problem = connection_problem(self._base_url, exc, proxy, self._proxy_source(proxy))
                if note is not None and _maybe_sent(exc):
                    problem = f"{problem}; {note}"
                failure = SaynaConnectionError(
                    f"{endpoint} failed: {self.redactor.scrub(problem)}", cause
                )
        except ValueError as exc:  # aiohttp refused a header or the URL as built
            cause = self.redactor.cause(exc)
            failure = SaynaValidationError(
                refused_request(
                    endpoint,
                    self.redactor.scrub(str(exc)),
                    sent_key="Authorization" in self._headers,
                    trust_env=self._user_session is not None and self._user_session.trust_env,
                )
            )
        # Raised here, outside the except blocks, so the original (whose text may hold
        # a secret) is not kept as __context__; __cause__ is it, or its scrubbed stand-in.
        failure.__cause__ = cause
        raise failure

    def _not_http(
        self, endpoint: str, status: Optional[int], note: Optional[str] = None
    ) -> SaynaInvalidResponseError:
        """The error of an answer aiohttp could not parse as HTTP: no status line
        (``status`` None: another service on the port) or a body whose framing is broken
        (after a 2xx, ``note`` says a call sent once may have been applied)."""
        where = self.redactor.scrub(safe_url(self._base_url))
        if status is None:
            text = f"{endpoint} failed: {where} {NOT_HTTP}"
        else:
            text = (
                f"{endpoint} answered HTTP {status} from {where} with a body that is not valid "
                "HTTP (broken chunked or compressed framing)"
            )
            if note is not None and status < 300:
                text += f"; {note}"
        return SaynaInvalidResponseError(text, status, endpoint)

    def _proxy_source(self, proxy: Optional[str]) -> Optional[str]:
        """Where ``proxy``, the route's, came from: ``"proxy="`` or the variable's name."""
        if proxy is None:
            return None
        if self._proxy is not None:
            return "proxy="
        return proxy_variable(URL(self._base_url).scheme)

    async def _read(
        self,
        resp: aiohttp.ClientResponse,
        endpoint: str,
        request: Optional[BaseModel],
        note: Optional[str] = None,
    ) -> HttpResponse:
        """The response with its body, read up to the bound for its status (``request``:
        the request model, whose secrets a text quoting the body masks; ``note``: what an
        error about a 2xx of a call sent once adds, :func:`applied_note`)."""
        status = resp.status
        limit = self.max_response_bytes if status < 300 else _MAX_ERROR_BODY
        if limit is None:
            data = await resp.read()
            return HttpResponse(status, resp.headers, data, endpoint, self.redactor, request, note)
        declared = resp.content_length
        if status < 300 and declared is not None and declared > limit:
            resp.close()  # drop the connection: the body is never read
            raise too_large(status, endpoint, limit, f"declares {declared} bytes", note)
        if declared is not None and declared <= limit and "Content-Encoding" not in resp.headers:
            # Exactly ``declared`` bytes as sent (no decompression that could make more):
            # read at once (JSON answers; about 5 % of a health() call against the loop below).
            data = await resp.read()
            return HttpResponse(status, resp.headers, data, endpoint, self.redactor, request, note)
        body = bytearray()
        while True:
            chunk = await resp.content.read(_CHUNK)
            if not chunk:
                break
            body += chunk
            if len(body) > limit:
                resp.close()  # the rest stays unread; the connection is not reused
                if status < 300:
                    raise too_large(status, endpoint, limit, f"sent more than {limit} bytes", note)
                del body[limit:]  # an error's start is enough to report it
                break
        return HttpResponse(
            status, resp.headers, bytes(body), endpoint, self.redactor, request, note
        )
