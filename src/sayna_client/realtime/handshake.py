"""Opening the WebSocket: the upgrade, bounded by the connect timeout, and the one
place where its failures become typed errors (a refused upgrade with the server's
reason and the fix, a redirect to another origin refused, a timeout, a network error),
always chained with ``from`` and with the client's secrets masked."""

from __future__ import annotations

import asyncio
import json
import logging
import math
from typing import Any, Optional

import aiohttp

from .._compat import within
from .._http_errors import auth_hint, connection_problem, refused_request, retry_after_seconds
from .._http_sessions import RedirectRefused, left_origin, redirected_elsewhere
from .._redact import Redactor, safe_url
from ..errors import (
    SaynaConnectionError,
    SaynaError,
    SaynaHttpError,
    SaynaInternalServerError,
    SaynaRateLimitError,
    SaynaTimeoutError,
    SaynaValidationError,
    http_error_for_status,
)
from .wire import upgrade_response

__all__ = ["MAX_MESSAGE_BYTES", "open_socket"]

#: The largest message the client accepts from the server (a frame, or a fragmented
#: message in all); a larger one ends the session with 1009.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024

logger = logging.getLogger("sayna_client")
_UNVERIFIED_WARNED = False  # the warning of _redirect_of is given once a process


async def open_socket(
    session: aiohttp.ClientSession,
    url: str,
    *,
    headers: dict[str, str],
    connect_timeout: Optional[float],
    ssl: Any,
    redactor: Optional[Redactor] = None,
    proxy: Optional[str] = None,
    proxy_auth: Optional[aiohttp.BasicAuth] = None,
    netrc: bool = False,
) -> aiohttp.ClientWebSocketResponse[Any]:
    """Open the socket (bounded by ``connect_timeout``); ``redactor`` masks the client's
    secrets in the errors and their causes; ``proxy`` and ``proxy_auth`` come from
    the transport's :meth:`~sayna_client._http.HttpTransport.route`; ``netrc``: the
    ``Authorization`` header holds ``.netrc`` credentials, not the ``api_key`` (a 401
    then says no key was given).

    Raises:
        SaynaAuthenticationError (and other ``SaynaHttpError``): the upgrade got an
            HTTP error status, e.g. 401 for a missing or wrong API key.
        SaynaTimeoutError: the handshake took longer than ``connect_timeout``.
        SaynaHttpError: the upgrade was redirected to another origin (not followed; with
            a user's ``http_session``, followed by aiohttp and refused after, whatever
            the target answered).
        SaynaConnectionError: refused, reset, DNS or TLS failure.
        SaynaValidationError: aiohttp refused to send the upgrade as built.
    """
    # Pings and Pongs are ours (autoping=False): see heartbeat.py for why.
    handshake = session.ws_connect(
        url,
        headers=headers,
        autoping=False,
        autoclose=True,
        max_msg_size=MAX_MESSAGE_BYTES,
        # No per-message deflate: audio does not compress, and the client reads and
        # writes frames itself after the upgrade (.framing, .wire).
        compress=0,
        ssl=ssl,
        proxy=proxy,
        proxy_auth=proxy_auth,
    )
    scrub = redactor or Redactor()
    where = safe_url(url)
    failure: SaynaError
    try:
        if session.timeout.total == connect_timeout:
            ws = await handshake  # a user's session whose own total is the bound
        else:
            ws = await within(connect_timeout, handshake)
    except asyncio.TimeoutError as exc:
        failure = SaynaTimeoutError(
            f"Timed out after {connect_timeout} s opening the WebSocket to {where}; "
            "check the URL and that the server is reachable, or raise Timeouts.connect",
            operation="connect",
            timeout=connect_timeout,
        )
        cause: BaseException = exc
    except RedirectRefused as exc:
        failure = _redirect_error(exc)
        cause = exc
    except aiohttp.WSServerHandshakeError as exc:
        cause = scrub.cause(exc)  # its text holds the URL, query included
        moved = left_origin(exc.history, exc.request_info.url, url)
        if moved is not None:
            # A user's http_session followed a redirect to another origin, whose
            # answer refused the upgrade: the redirect is what went wrong here.
            failure = _redirect_error(RedirectRefused(moved[0], where, moved[1]))
        else:
            body = await _refusal_body(
                session, url, headers, ssl, connect_timeout, proxy, proxy_auth, scrub
            )
            hint = auth_hint(
                "Authorization" in headers and not netrc, netrc=netrc, trust_env=session.trust_env
            )
            wait = None
            if exc.status in (429, 503) and exc.headers:  # where Retry-After means "busy"
                wait = retry_after_seconds(exc.headers.get("Retry-After"))
            failure = _handshake_error(where, exc.status, body, hint, retry_after=wait)
    except (aiohttp.ClientError, OSError) as exc:
        cause = scrub.cause(exc)
        problem = scrub.scrub(connection_problem(url, exc, proxy))
        failure = SaynaConnectionError(f"Could not open the WebSocket: {problem}", cause)
    except ValueError as exc:  # aiohttp refused a header or the URL as built
        cause = scrub.cause(exc)
        failure = SaynaValidationError(
            refused_request(
                f"The WebSocket upgrade to {where}",
                scrub.scrub(str(exc)),
                sent_key="Authorization" in headers and not netrc,
                trust_env=session.trust_env,
            )
        )
    else:
        moved = _redirect_of(ws, url)
        if moved is None:
            return ws
        await ws.close()  # nothing was sent on it
        refused = RedirectRefused(moved[0], where, moved[1])
        failure = _redirect_error(refused)
        cause = refused
    # Raised outside the except blocks so that an original whose text holds a
    # secret is not kept as __context__; __cause__ is it or its scrubbed stand-in.
    failure.__cause__ = cause
    raise failure


def _redirect_of(ws: aiohttp.ClientWebSocketResponse[Any], url: str) -> Optional[tuple[int, str]]:
    """Where a redirect the session followed took the upgrade, if to another origin."""
    response = upgrade_response(ws)
    if response is not None:
        return redirected_elsewhere(response, url)
    global _UNVERIFIED_WARNED
    if not _UNVERIFIED_WARNED:
        _UNVERIFIED_WARNED = True
        logger.warning(
            "This aiohttp version hides the WebSocket upgrade's response: a redirect to "
            "another origin followed by an http_session you passed cannot be detected "
            "(the SDK's own sessions refuse it before it is followed)"
        )
    return None


def _redirect_error(exc: RedirectRefused) -> SaynaHttpError:
    return SaynaHttpError(
        f"The WebSocket upgrade to {exc.source} was redirected (HTTP {exc.status}) "
        f"to {exc.target}. The SDK does not follow a WebSocket redirect to another "
        "origin, which would take the session config and provider keys there: "
        "connect to that URL directly if you trust it",
        exc.status,
        "GET /ws",
        error="redirect",
        body={"location": exc.target},
    )


async def _refusal_body(
    session: aiohttp.ClientSession,
    url: str,
    headers: dict[str, str],
    ssl: Any,
    timeout: Optional[float],
    proxy: Optional[str],
    proxy_auth: Optional[aiohttp.BasicAuth],
    scrub: Redactor,
) -> Any:
    """The body of a refused upgrade, which aiohttp discards (the real server explains a
    401 there): the same request again without the upgrade, read up to 4 KiB. JSON is
    parsed; None when that request fails or succeeds. The client's secrets are masked
    (a server may echo the query)."""
    http_url = "http" + url[2:] if url.startswith(("ws://", "wss://")) else url
    limit = aiohttp.ClientTimeout(total=min(timeout, 5.0) if timeout else 5.0)
    try:
        async with session.get(
            http_url,
            headers=headers,
            ssl=ssl,
            timeout=limit,
            proxy=proxy,
            proxy_auth=proxy_auth,
            allow_redirects=False,
        ) as response:
            if response.status < 400:
                return None
            raw = await response.content.read(4096)
    except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
        return None
    text = scrub.scrub(raw.decode("utf-8", errors="replace").strip())
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # not JSON, or nested too deeply
        return text or None


def _handshake_error(
    where: str, status: int, body: Any, auth: str, *, retry_after: Optional[float] = None
) -> SaynaHttpError:
    """The typed error of a refused upgrade: the server's reason, and the fix in the
    caller's terms (``auth``, the 401 hint: never "pass api_key=" when one was passed).
    ``retry_after``: the ``Retry-After`` of a 429 or 503 refusal in seconds, kept on
    the error (its ``retry_after``) and named in the message."""
    error = code = message = None
    if isinstance(body, dict):
        error = body.get("error") if isinstance(body.get("error"), str) else None
        code = body.get("code") if isinstance(body.get("code"), str) else None
        message = body.get("message") if isinstance(body.get("message"), str) else None
        if message and error and not code:
            code = error
    elif isinstance(body, str):
        message = body[:200]
    reason = message or error or "no reason given"
    if status == 401:
        hint = auth
    elif status == 429 or status == 503:
        # A busy server, not a wrong URL: the same request works later.
        later = (
            f"in {math.ceil(retry_after)} s (Retry-After)" if retry_after is not None else "later"
        )
        busy = "rate-limited" if status == 429 else "over capacity"
        hint = f"the server is {busy}: retry {later}"
    elif status >= 500:
        hint = "the server failed; retry later"
    else:
        hint = "check the URL points at a Sayna server"
    failure = http_error_for_status(status)(
        f"WebSocket upgrade to {where} failed with HTTP {status}: {reason}; {hint}",
        status,
        "GET /ws",
        body=body,
        error=error,
        code=code,
    )
    if isinstance(failure, (SaynaRateLimitError, SaynaInternalServerError)):
        failure.retry_after = retry_after
    return failure
