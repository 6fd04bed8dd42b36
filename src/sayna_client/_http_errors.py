"""A failed HTTP exchange as a typed ``Sayna*`` error, in words a user acts on.

The REST transport (``_http.py``) and the WebSocket handshake (``realtime/handshake.py``)
both use these: an error status to its ``SaynaHttpError`` subclass (the server's body
kept, the client's secrets masked), a connection failure without aiohttp's internals,
a body over the client's bound.
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import socket
import ssl
from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Optional, Union

import aiohttp
from yarl import URL

from ._redact import Redactor, safe_url
from .errors import (
    SaynaHttpError,
    SaynaInternalServerError,
    SaynaInvalidResponseError,
    SaynaRateLimitError,
    http_error_for_status,
)

__all__ = [
    "NOT_HTTP",
    "auth_hint",
    "connection_problem",
    "cut_short",
    "error_from_response",
    "excerpt",
    "not_http",
    "printable",
    "refused_request",
    "retry_after_seconds",
    "too_large",
]

#: Characters of a body quoted in an error message.
_EXCERPT_CHARS = 300


#: Bytes past the quoted part that are scrubbed too, so that a secret starting inside
#: the excerpt is masked whole (a Google private key is about 1,700 characters).
_SCRUB_SLACK = 16 * 1024


#: C0 and C1 control characters and DEL: a terminal acts on them (``ESC [2J`` clears the
#: screen, ``ESC ]0;...BEL`` sets the window title), so text from a server never shows
#: them raw. Tab and newline are left to the caller (:func:`printable`'s ``lines``).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_CONTROL_AND_LINES = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def _escaped(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: str, *, lines: bool = True) -> str:
    """``text`` with every control character (C0, DEL, C1) written as ``\\xNN``, so that
    a server's text printed to a terminal cannot move the cursor, clear the screen or
    retitle the window; tab and newline are kept unless ``lines`` is False."""
    pattern = _CONTROL if lines else _CONTROL_AND_LINES
    return pattern.sub(_escaped, text)


def excerpt(
    body: Union[bytes, str], limit: int = _EXCERPT_CHARS, redactor: Optional[Redactor] = None
) -> str:
    """The start of ``body`` on one line, at most ``limit`` characters (``...`` when cut),
    with ``redactor``'s secrets masked (before the cut: no secret's first half shows) and
    control characters written as ``\\xNN`` (:func:`printable`)."""
    head = body[: limit * 4 + _SCRUB_SLACK]
    text = head if isinstance(head, str) else head.decode("utf-8", "replace")
    if redactor is not None:
        text = redactor.scrub(text)
    text = printable(" ".join(text[: limit * 4].split()), lines=False)
    cut = len(text) > limit or len(body) > limit * 4
    return (text[:limit] + "...") if cut else (text or "(empty body)")


def retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """A ``Retry-After`` header in seconds from now, or None when absent or invalid.

    RFC 9110 allows a whole number of seconds (``1*DIGIT``) or an HTTP date; anything
    else (``inf``, ``1e400``, ``-5``, ``1.5``) is ignored, so the value is always finite:
    ``await asyncio.sleep(exc.retry_after or 5)`` returns."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        seconds = float(value)  # 400 digits and more: inf
        return seconds if math.isfinite(seconds) else None
    import datetime

    try:
        when = parsedate_to_datetime(value)
        if when.tzinfo is None:  # "-0000" (RFC 5322: no zone information): an HTTP date is UTC
            when = when.replace(tzinfo=datetime.timezone.utc)
        wait = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    return max(0.0, wait) if math.isfinite(wait) else None


def auth_hint(sent_key: bool, *, netrc: bool = False, trust_env: bool = False) -> str:
    """The fix for a 401, in code terms, saying what was sent: never "pass api_key=" when
    one was passed, never "refused the API key" when none was.

    Args:
        sent_key: the client sent its ``api_key``.
        netrc: no key was given and the ``.netrc`` credentials for the host were sent.
        trust_env: the request went through a user's ``http_session`` with
            ``trust_env=True`` (aiohttp may put ``.netrc`` credentials in place of the key).
    """
    if sent_key:
        hint = "the server refused the API key: pass the right one as api_key= or SAYNA_API_KEY"
        if trust_env:
            hint += (
                " (if a .netrc entry names this host, your http_session's trust_env=True "
                "may have made aiohttp send its credentials in place of the key: create that "
                "session with trust_env=False or remove the .netrc entry)"
            )
        return hint
    if netrc:
        return (
            "the server requires an API key and refused the .netrc credentials sent for "
            "this host (no api_key was given): pass api_key= or set SAYNA_API_KEY"
        )
    return "the server requires an API key: pass api_key= or set SAYNA_API_KEY"


def refused_request(what: str, problem: str, *, sent_key: bool, trust_env: bool) -> str:
    """The message of a request aiohttp refused to send (``problem``, already scrubbed):
    with the cause and fix when it is the ``api_key`` meeting ``.netrc`` credentials on a
    user's ``http_session`` with ``trust_env=True`` (aiohttp cannot send both)."""
    text = f"{what} could not be sent: {problem}"
    if sent_key and trust_env and "AUTHORIZATION" in problem.upper():
        text += (
            "; your http_session has trust_env=True and a .netrc entry names this host: "
            "aiohttp cannot send both its credentials and the api_key. Create that session "
            "with trust_env=False, or remove the .netrc entry"
        )
    return text


def _scrubbed(value: Any, redactor: Redactor) -> Any:
    """``value`` (decoded JSON) with every string in it scrubbed by ``redactor``."""
    if isinstance(value, str):
        return redactor.scrub(value)
    if isinstance(value, dict):
        return {redactor.scrub(k): _scrubbed(v, redactor) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, redactor) for item in value]
    return value


def redirect_advice(url: str, endpoint: str, location: Optional[str]) -> str:
    """What a REST answer redirected to ``location`` says: where it points (without
    credentials or query, as the WebSocket's redirect error names it) and the fix, the
    server URL to use instead when the target is the same call under another base."""
    if not location:
        return "a redirect without a Location; REST calls do not follow redirects: check the URL"
    try:
        shown = safe_url(URL(url).join(URL(location)))
        if not shown.endswith("/") and URL(shown).raw_path == "/":
            shown += "/"  # https://host, written without its path, is https://host/
    except ValueError:
        shown = "<unparseable URL>"
    if shown == "<unparseable URL>":
        return (
            "a redirect to an invalid Location; REST calls do not follow redirects: check the URL"
        )
    called = endpoint.partition(" ")[2] or "/"
    if not shown.endswith(called):
        return (
            f"redirected to {shown}. REST calls do not follow redirects: check that the URL "
            "points at the Sayna server itself"
        )
    base = shown[: len(shown) - len(called)].rstrip("/")  # the same call under another base
    return (
        f"redirected to {shown}. REST calls do not follow redirects; if you trust that "
        f"server, use its URL instead (e.g. {base})"
    )


#: A gateway's answers after it may have passed the request on (502: the upstream's answer
#: was bad or cut, 504: none in time): a call sent once may have been applied.
_GATEWAY_FAILURES = frozenset({502, 504})


def error_from_response(
    status: int,
    endpoint: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    sent_key: bool = False,
    netrc: bool = False,
    trust_env: bool = False,
    redactor: Optional[Redactor] = None,
    url: Optional[str] = None,
    note: Optional[str] = None,
) -> SaynaHttpError:
    """Build the typed error for a non-2xx response, keeping the server's body (with the
    client's secrets masked, should the server echo them). ``url``: the request's, which a
    3xx's ``Location`` is relative to (the message names the target and the fix).
    ``note``: for a call sent once, that the server may have applied it; added to a 502 or
    504, the answers of a gateway that may have passed the request on before it failed."""
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
    else:
        if redactor is not None:
            # Decoding removed a level of escaping: a secret echoed inside a JSON string
            # of the body (a Google key's newlines as \\n) shows only now.
            try:
                parsed = _scrubbed(parsed, redactor)
            except RecursionError:  # nested nearly as deep as json.loads allows
                parsed = text
    if isinstance(parsed, dict):
        error = parsed.get("error") if isinstance(parsed.get("error"), str) else None
        code = parsed.get("code") if isinstance(parsed.get("code"), str) else None
        message = parsed.get("message") if isinstance(parsed.get("message"), str) else None
        # Auth errors: {"error": code, "message": text}; handlers: {"error": text, "code"?}.
        detail = message or error or text
        if message and error and not code:
            code = error
    if 300 <= status < 400 and url is not None:
        advice = redirect_advice(url, endpoint, headers.get("Location"))
        if redactor is not None:
            advice = redactor.scrub(advice)
        message_text = f"{endpoint} failed with HTTP {status}: {printable(advice, lines=False)}"
    else:
        message_text = f"{endpoint} failed with HTTP {status}: {excerpt(detail)}"
    if status == 401:
        message_text += f"; {auth_hint(sent_key, netrc=netrc, trust_env=trust_env)}"
    if note is not None and status in _GATEWAY_FAILURES:
        message_text += f"; {note}"
    retry_after: Optional[float] = None
    if status == 429 or status >= 500:
        retry_after = retry_after_seconds(headers.get("Retry-After"))
        if retry_after is not None and status in (429, 503):
            busy = "rate-limited" if status == 429 else "over capacity"
            message_text += (
                f"; the server is {busy}: retry in {math.ceil(retry_after)} s (Retry-After)"
            )
    failure = http_error_for_status(status)(
        message_text, status, endpoint, body=parsed, error=error, code=code
    )
    if isinstance(failure, (SaynaRateLimitError, SaynaInternalServerError)):
        failure.retry_after = retry_after
    return failure


def connection_problem(
    url: str, exc: BaseException, proxy: Optional[str] = None, proxy_source: Optional[str] = None
) -> str:
    """``exc`` (an aiohttp or OS error) in words a user acts on, without aiohttp's
    internals (``ssl:default``, connection keys) and without credentials. ``proxy``: the
    proxy the request went through, if any; ``proxy_source``: where it came from
    (``"proxy="``, ``"HTTP_PROXY"``...), named in the fix."""
    where = url.split("?", 1)[0]
    through_proxy = _proxy_problem(where, exc, proxy, proxy_source)
    if through_proxy is not None:
        return through_proxy
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return (
            f"cannot reach {where}: its TLS certificate is not trusted; pass ssl= an "
            "SSLContext that trusts its CA"
        )
    tls = _tls_problem(where, exc)
    if tls is not None:
        return tls
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        if isinstance(os_error, socket.gaierror):
            return f"cannot reach {where}: host name not found; check the URL"
        if os_error.errno == errno.ECONNREFUSED:
            return f"cannot reach {where}: connection refused; is the server running there?"
        if isinstance(os_error, ConnectionResetError) and _secure(where):
            # The connector's last step for https/wss is the TLS handshake: a server
            # that refuses the client's TLS versions or ciphers may just hang up.
            return (
                f"cannot reach {where}: connection reset during the TLS handshake; check "
                "ssl= and the TLS versions the server accepts"
            )
        return f"cannot reach {where}: {_os_reason(os_error).lower()}"
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return f"{where} closed the connection before answering"
    if isinstance(exc, aiohttp.ClientOSError):  # after connecting: sending or reading
        if exc.errno == errno.ECONNRESET:
            return f"{where} reset the connection before answering"
        return f"the connection to {where} failed before the answer: {_os_reason(exc).lower()}"
    if isinstance(exc, aiohttp.ClientPayloadError) and cut_short(exc):
        return f"{where} closed the connection before sending the whole answer"
    if not_http(exc):
        return f"{where} {NOT_HTTP}"
    if isinstance(exc, aiohttp.ClientError):
        return f"{type(exc).__name__} talking to {where}: {exc}"
    reason = _os_reason(exc) if isinstance(exc, OSError) else (str(exc) or type(exc).__name__)
    return f"cannot reach {where}: {reason}"


def _proxy_problem(
    where: str, exc: BaseException, proxy: Optional[str], source: Optional[str]
) -> Optional[str]:
    """The words for a proxy that could not be reached, or None when ``exc`` is not that.
    aiohttp says ``ClientProxyConnectionError`` for a refused or unreachable proxy, but a
    failed look-up of the proxy's host name is its ``ClientConnectorDNSError``, like the
    server's: the host and port that failed tell them apart (with no proxy in use, such
    a failure is the server's)."""
    if not isinstance(exc, aiohttp.ClientConnectorError) or isinstance(exc, aiohttp.ClientSSLError):
        return None
    if not isinstance(exc, aiohttp.ClientProxyConnectionError):
        if proxy is None:  # no proxy in use: the failure is the server's
            return None
        # (aiohttp's host is the encoded one, xn--... for an IDN: compare yarl's raw_host)
        failed = ((exc.host or "").strip("[]").rstrip(".").lower(), exc.port)
        try:
            server = URL(where)
            own = ((server.raw_host or "").rstrip(".").lower(), server.port)
        except ValueError:  # pragma: no cover - the client's URL was checked
            own = failed
        if failed == own:
            return None
    name = safe_url(proxy).rstrip("/") if proxy else f"{exc.host}:{exc.port}"
    if source is None:
        origin, fix = "", "check HTTPS_PROXY/HTTP_PROXY or proxy="
    elif source == "proxy=":
        origin, fix = " (the proxy= argument)", "check the proxy= argument"
    else:
        origin = f" (from {source})"
        fix = f"check {source}, or add the server's host to NO_PROXY to reach it directly"
    os_error = exc.os_error
    if isinstance(os_error, socket.gaierror):
        reason = "host name not found"
    elif os_error.errno == errno.ECONNREFUSED:
        reason = "connection refused"
    else:
        reason = _os_reason(os_error).lower()
    return f"cannot reach the proxy {name}{origin} for {where}: {reason}; {fix}"


#: What a peer that does not speak HTTP is said to have done (after its URL).
NOT_HTTP = "answered with something that is not HTTP (wrong port?)"


def not_http(exc: BaseException) -> bool:
    """``exc`` is aiohttp's parser refusing the answer: a status line or headers that
    are not HTTP (another service on the port, an SSH banner) or a body whose framing
    is broken (chunks, compression). aiohttp reports those as ``ClientResponseError``
    with a status 400 the peer never sent, or as ``ClientPayloadError``; a body cut
    short by a closed connection is a connection problem instead (:func:`cut_short`).
    The ``ClientResponseError`` subclasses (a proxy's refusal, a WebSocket upgrade's)
    are real statuses, not this."""
    if isinstance(exc, aiohttp.ClientPayloadError):
        return not cut_short(exc)
    return type(exc) is aiohttp.ClientResponseError


def cut_short(exc: aiohttp.ClientPayloadError) -> bool:
    """The body ended with the connection before its length (aiohttp's words for it
    since 3.9; another text reads as a malformed body)."""
    return str(exc).startswith("Response payload is not completed")


def _secure(where: str) -> bool:
    return where.split(":", 1)[0].lower() in ("https", "wss")


def _os_reason(error: OSError) -> str:
    """``error`` in words: the OS's text for its errno, else its own text, else its
    class in words (``ConnectionResetError()`` has neither errno nor text)."""
    if error.errno:
        return os.strerror(error.errno)
    text = str(error)
    if text:
        return text
    if isinstance(error, ConnectionResetError):
        return "connection reset by the server"
    if isinstance(error, ConnectionAbortedError):
        return "connection aborted"
    return f"the connection failed ({type(error).__name__})"


#: OpenSSL's reasons for a handshake answered by a peer that does not speak TLS (a plain
#: HTTP server answers the ClientHello with ``HTTP/1.1 400``), across OpenSSL versions.
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "HTTP_REQUEST"}
)


def _ssl_error(exc: BaseException) -> Optional[ssl.SSLError]:
    """The ``ssl.SSLError`` behind ``exc`` (itself, aiohttp's ``os_error`` or a cause)."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, ssl.SSLError):
            return os_error
        # aiohttp's ClientConnectorSSLError is an SSLError too, without OpenSSL's reason.
        if isinstance(current, ssl.SSLError) and not isinstance(current, aiohttp.ClientError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _tls_problem(where: str, exc: BaseException) -> Optional[str]:
    """The words for a failed TLS handshake, or None when ``exc`` is not one. An
    ``SSLError``'s ``errno`` is OpenSSL's error class, not an OS errno (1 would read as
    "operation not permitted")."""
    error = _ssl_error(exc)
    if error is None or isinstance(error, ssl.SSLCertVerificationError):
        return None
    if error.reason in _NOT_TLS_REASONS:
        scheme = where.split(":", 1)[0].lower()
        plain = {"https": "http://", "wss": "ws://"}.get(scheme, "http:// or ws://")
        return (
            f"cannot reach {where}: the server does not speak TLS on this port (a plain "
            f"HTTP server?); use {plain} for it, or the port where it serves TLS"
        )
    reason = error.reason or error.strerror or type(error).__name__
    return (
        f"cannot reach {where}: the TLS handshake failed ({reason}); check that this "
        "port serves TLS and that ssl= allows the server's TLS version and ciphers"
    )


def too_large(
    status: int, endpoint: str, limit: int, what: str, note: Optional[str] = None
) -> SaynaInvalidResponseError:
    """The error for a body over the client's ``max_response_bytes`` (``what`` it did;
    ``note``: for a call sent once, that the server may have applied it)."""
    applied = f"; {note}" if note is not None else ""
    return SaynaInvalidResponseError(
        f"{endpoint} answered HTTP {status} with a body that {what}, over the client's "
        f"bound of {limit} bytes; nothing more was read{applied}. If you expect such a "
        "body, raise SaynaClient(max_response_bytes=...) (None: no bound)",
        status,
        endpoint,
    )
