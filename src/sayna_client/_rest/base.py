"""The REST client's ground floor: its settings, its transport and the one call.

:class:`RestBase` holds what every endpoint needs: the checked settings (URL, API key,
timeouts, retry policy, proxy, TLS), the HTTP transport
(:class:`~sayna_client._http.HttpTransport`) and :meth:`RestBase._request`, through which
every endpoint is sent: it builds the body from a request model (``types.rest``),
applies the per-call ``timeout`` (seconds, ``None`` for no limit,
:data:`~sayna_client._defaults.CLIENT_DEFAULT` for the client's ``timeouts.request``) and
parses the answer into the response model named by ``cast_to``, so that an unreadable
body is always a ``SaynaInvalidResponseError`` (a ``SaynaServerError`` with the status
and an excerpt), never a ``JSONDecodeError``.

The endpoints sit one area a module on top of it (``livekit.py``, ``sip.py``, and
``client.py`` for health, voices, speech and recordings), and ``RestClient`` is their
union. ``SaynaClient`` is a ``RestClient`` that adds the WebSocket session, and reads only
what is documented here (``_http``, ``_http_base``, ``_auth_headers``, ``_redactor``,
``_ssl``).
"""

from __future__ import annotations

import base64
import ssl
import sys
import warnings
from types import FrameType
from typing import Any, Optional, TypeVar, Union, overload
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from pydantic import BaseModel, ValidationError

from .._checks import check_utf8
from .._config import (
    RetryPolicy,
    Timeouts,
    check_seconds,
    derive_urls,
    is_loopback_host,
    is_plaintext,
    resolve_api_key,
)
from .._defaults import CLIENT_DEFAULT, Seconds
from .._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    HttpResponse,
    HttpTransport,
    authorization_secrets,
    check_proxy_url,
    proxy_secrets,
)
from .._redact import Redactor, safe_url, split_userinfo, url_secrets
from .._serving import check_served
from ..errors import SaynaValidationError

__all__ = ["RestBase", "auth_headers", "require_text"]

M = TypeVar("M", bound=BaseModel)

_DEFAULT_REQUEST_TIMEOUT = Timeouts().request
_DEFAULT_RETRY = RetryPolicy()


def require_text(name: str, value: Any, example: str) -> str:
    """``value`` if it is a non-empty string.

    Raises:
        SaynaValidationError: naming ``name`` and showing ``example`` (or the lone
            surrogate it holds, which UTF-8 cannot carry).
    """
    if not isinstance(value, str):
        raise SaynaValidationError(
            f"{name} must be a string, got {type(value).__name__}; e.g. {name}={example!r}"
        )
    if not value.strip():
        raise SaynaValidationError(f"{name} must not be empty; e.g. {name}={example!r}")
    if not value.isascii():
        check_utf8(name, value)
    return value


def _problems(exc: ValidationError) -> str:
    """Pydantic's complaints without the input (which may be long, or a secret)."""
    found = [
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
        for err in exc.errors(include_url=False, include_input=False)[:3]
    ]
    return "; ".join(found)


def _parse(model: type[M], response: HttpResponse) -> M:
    """``response``'s body as ``model``.

    Raises:
        SaynaInvalidResponseError: the body is not a ``model`` (not JSON, nested too
            deeply, another shape), with the status and the start of the body.
    """
    try:
        return model.model_validate_json(response.body)
    except ValidationError as exc:
        problem = f"not a {model.__name__} ({_problems(exc)})"
    except (ValueError, RecursionError) as exc:
        problem = f"not a {model.__name__} ({type(exc).__name__})"
    raise response.unreadable(problem)


def query_api_key(url: str) -> Optional[str]:
    """The ``api_key`` query parameter of ``url`` (URL-decoded), or None when absent or
    only whitespace: the server reads it when no ``Authorization`` header is sent."""
    try:
        query = urlsplit(url).query
    except ValueError:
        return None
    for name, value in parse_qsl(query):
        if name == "api_key" and value.strip():
            return value
    return None


#: The headers of a client without credentials, shared (never mutated: requests copy).
_NO_AUTH: dict[str, str] = {}


def auth_headers(api_key: Optional[str], userinfo: Optional[tuple[str, str]]) -> dict[str, str]:
    """The ``Authorization`` header: Bearer for an API key, Basic for a URL's user:password.

    Raises:
        SaynaValidationError: both are given (only one header can be sent).
    """
    if userinfo is not None and api_key:
        raise SaynaValidationError(
            "url carries user:password credentials and an API key is set (api_key= or "
            "SAYNA_API_KEY); only one Authorization header can be sent: remove one"
        )
    if api_key:
        return {"Authorization": f"Bearer {api_key}"}
    if userinfo is not None:
        token = base64.b64encode(":".join(userinfo).encode("utf-8")).decode("ascii")
        return {"Authorization": f"Basic {token}"}
    return _NO_AUTH


def _user_stacklevel() -> int:
    """The ``warnings.warn`` stacklevel, for its caller, of the first frame outside this
    package: the user's line that made the client, however deep the constructors."""
    level = 1
    frame: Optional[FrameType] = sys._getframe(2)  # the caller of our caller
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith("sayna_client"):
        level += 1
        frame = frame.f_back
    return level + 1


def _check_http_options(
    proxy: Optional[str],
    http_session: Optional[aiohttp.ClientSession],
    max_response_bytes: Optional[int],
) -> None:
    if max_response_bytes is not None and (
        type(max_response_bytes) is not int or max_response_bytes < 1
    ):
        raise SaynaValidationError(
            "max_response_bytes must be a positive whole number of bytes, or None for no bound"
        )
    if proxy is not None and (
        not isinstance(proxy, str) or not proxy.startswith(("http://", "https://"))
    ):
        raise SaynaValidationError(
            "proxy must be an http:// URL such as 'http://proxy.example:3128', or None"
        )
    if proxy is not None:
        check_proxy_url(proxy, "proxy=")  # aiohttp would refuse it at every call
    if http_session is not None and not isinstance(http_session, aiohttp.ClientSession):
        raise SaynaValidationError(
            "http_session must be an aiohttp.ClientSession (or None), got "
            f"{type(http_session).__name__}"
        )


def check_ssl(ssl_option: Any) -> Union[bool, ssl.SSLContext, aiohttp.Fingerprint]:
    """``ssl=`` as aiohttp takes it: ``None`` is the default, ``True`` (aiohttp warns
    that its own ``ssl=None`` is deprecated).

    Raises:
        SaynaValidationError: any other type (aiohttp would raise its own ``TypeError``
            on every request).
    """
    if ssl_option is None:
        return True
    if isinstance(ssl_option, (bool, ssl.SSLContext, aiohttp.Fingerprint)):
        return ssl_option
    raise SaynaValidationError(
        f"ssl must be True (verify certificates, the default), False (no verification), "
        f"an ssl.SSLContext (e.g. one trusting a private CA) or an aiohttp.Fingerprint; "
        f"got {type(ssl_option).__name__}"
    )


class RestBase:
    """The settings, the HTTP transport and :meth:`_request` of a REST client.

    Not used alone: :class:`~sayna_client._rest.RestClient` is this plus every
    endpoint, and documents the arguments.

    Raises:
        SaynaValidationError: a bad argument, named with the fix.
    """

    def __init__(
        self,
        url: str,
        api_key: Optional[str] = None,
        *,
        timeout: Optional[float] = _DEFAULT_REQUEST_TIMEOUT,
        retry: Optional[RetryPolicy] = None,
        ssl: Any = True,
        proxy: Optional[str] = None,
        http_session: Optional[aiohttp.ClientSession] = None,
        max_response_bytes: Optional[int] = DEFAULT_MAX_RESPONSE_BYTES,
    ) -> None:
        bare, userinfo = split_userinfo(url.strip()) if isinstance(url, str) else (url, None)
        self._http_base = derive_urls(bare)[0]
        check_seconds("timeout", timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise SaynaValidationError(
                f"retry must be a RetryPolicy, e.g. RetryPolicy(max_retries=2), got "
                f"{type(retry).__name__}"
            )
        _check_http_options(proxy, http_session, max_response_bytes)
        self._api_key = resolve_api_key(api_key)
        # A key given only as the URL's ``?api_key=`` authenticates REST calls too (the
        # WebSocket URL keeps the query; REST paths are joined to a base without it).
        key = self._api_key or (None if userinfo else query_api_key(bare))
        self._auth_headers = auth_headers(key, userinfo)
        self._redactor = Redactor(
            [
                self._api_key,
                *url_secrets(url),
                # The proxy's user:password@ goes as `Proxy-Authorization: Basic <base64>`,
                # which a proxy's error page may echo.
                *(proxy_secrets(proxy) if proxy else ()),
                # The header as sent: a URL's user:password goes as base64, which a
                # server echoing the request would show (and anyone can decode).
                *authorization_secrets(self._auth_headers.get("Authorization")),
            ]
        )
        self._ssl = ssl = check_ssl(ssl)
        if (
            self._auth_headers
            and is_plaintext(self._http_base)
            and not is_loopback_host(self._http_base)
        ):
            warnings.warn(
                "An API key will be sent over unencrypted http/ws to a non-loopback host; "
                "use https:// or wss:// so it cannot be read on the network",
                stacklevel=_user_stacklevel(),
            )
        self._http = HttpTransport(
            self._http_base,
            api_key=self._api_key,
            headers=self._auth_headers,
            redactor=self._redactor,
            timeout=timeout,
            retry=retry or _DEFAULT_RETRY,
            ssl=ssl,
            max_response_bytes=max_response_bytes,
            proxy=proxy,
            http_session=http_session,
        )

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy of idempotent REST requests. A new ``RetryPolicy`` assigned
        here applies from the next call on.

        Raises (on assignment):
            SaynaValidationError: not a ``RetryPolicy``.
        """
        return self._http.retry

    @retry.setter
    def retry(self, value: RetryPolicy) -> None:
        if not isinstance(value, RetryPolicy):
            raise SaynaValidationError(
                f"retry must be a RetryPolicy, e.g. RetryPolicy(max_retries=2), got "
                f"{type(value).__name__}"
            )
        self._http.retry = value

    def _renew_http(self) -> HttpTransport:
        """Replace the transport with a new one of the same settings and return it (a
        new event loop needs one: the old one's aiohttp session belongs to the old
        loop; the voice session's socket is opened through the new one too)."""
        http = self._http = self._http.renewed()
        return http

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={safe_url(self._http_base)!r})"

    async def aclose(self) -> None:
        """Release the HTTP connections (the next call opens new ones). Safe to call
        twice; a user's ``http_session`` stays open."""
        await self._http.close()

    @overload
    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[BaseModel] = None,
        cast_to: type[M],
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
        idempotent: bool = False,
        check: Optional[str] = None,
    ) -> M: ...

    @overload
    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[BaseModel] = None,
        cast_to: None = None,
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
        idempotent: bool = False,
        check: Optional[str] = None,
    ) -> HttpResponse: ...

    async def _request(
        self,
        method: str,
        path: str,
        *,
        body: Optional[BaseModel] = None,
        cast_to: Optional[type[M]] = None,
        timeout: Seconds = CLIENT_DEFAULT,
        retry: Optional[RetryPolicy] = None,
        idempotent: bool = False,
        check: Optional[str] = None,
    ) -> Union[M, HttpResponse]:
        """Send one REST call: the only way any endpoint is reached.

        Args:
            method: HTTP method.
            path: path below the base URL, each variable segment percent-encoded
                (``path_segment``).
            body: the request model, sent as JSON without its ``None`` fields.
            cast_to: the response model to parse the 2xx body into; ``None`` returns
                the raw response (audio, recordings).
            timeout: seconds for each attempt; ``None``: no limit; ``CLIENT_DEFAULT``:
                the client's.
            retry: this call's retry policy instead of the client's.
            idempotent: the call has no side effect and may be re-sent.
            check: for a call that is not idempotent, how to find out whether the
                server applied it (``"e.g. whether get_livekit_room('r') lists 'id'"``),
                said when an error leaves that open (a connection lost after sending, a
                timeout, a 2xx it cannot read).

        Returns:
            a ``cast_to`` instance, or the ``HttpResponse`` when ``cast_to`` is None.

        Raises:
            SaynaInvalidResponseError: the body is not a ``cast_to`` (not JSON, nested
                too deeply, another shape, over ``max_response_bytes``): a
                ``SaynaServerError`` with the status and the start of the body.
            SaynaHttpError: a non-2xx status (a subclass per status).
            SaynaTimeoutError: an attempt exceeded ``timeout``.
            SaynaConnectionError: the connection failed.
            SaynaEventLoopError: the server is a local one of this process whose
                event loop is not running: nothing could answer
                (:func:`~sayna_client._serving.check_served`).

        Cancellation: cancelling the awaiting task abandons the request (its
        connection is closed, not reused).
        """
        check_served(self._http_base)
        if timeout is not CLIENT_DEFAULT:
            check_seconds("timeout", timeout)
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise SaynaValidationError("retry must be a RetryPolicy or None")
        response = await self._http.request(
            method,
            path,
            body=body,
            timeout=timeout,
            retry=retry,
            idempotent=idempotent,
            check=check,
        )
        if cast_to is None:
            return response
        return _parse(cast_to, response)
