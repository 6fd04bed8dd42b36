"""Every exception the SDK raises, organised by what the caller can do about it.

::

    SaynaError                          catch-all for this SDK
    ├── SaynaValidationError            a bad argument or bad local input; fix the call
    │   └── ModelValidationError        a config/request model built or assigned with a bad
    │                                   value; also a ``pydantic.ValidationError``
    ├── WebhookVerificationError        (sayna_client.webhooks) a webhook request failed
    │                                   verification: an untrusted peer, not a bad argument
    ├── SaynaNotConnectedError          the call needs an open WebSocket: connect() first
    ├── SaynaNotReadyError              the socket is open but the server's ``ready`` has not come
    ├── SaynaEventLoopError             the session belongs to another running event loop
    ├── SaynaTimeoutError               a deadline passed (connect, ready, REST request)
    ├── SaynaConnectionError            the transport failed (refused, reset, TLS, DNS, lost)
    │   └── SaynaConnectionClosedError  the WebSocket closed; carries ``code`` and ``reason``
    ├── SaynaProtocolError              the server sent something the protocol does not allow
    └── SaynaServerError                the server answered with an error
        ├── SaynaInvalidResponseError   a REST body this SDK cannot read (not JSON, too deep,
        │                               too large, not HTTP...); also a SaynaProtocolError
        ├── SaynaConfigRejectedError    the WebSocket ``config`` was answered with ``error``
        ├── SaynaTTSError               the TTS provider failed a speech (``TTS error: ...``):
        │                               raised by ``await`` of that speech's handle
        └── SaynaHttpError              a REST call returned a non-2xx status (``status_code``,
            │                           ``body``, ``error``, ``code``, ``endpoint``)
            ├── SaynaBadRequestError            400
            ├── SaynaAuthenticationError        401
            ├── SaynaPermissionDeniedError      403
            ├── SaynaNotFoundError              404
            ├── SaynaMethodNotAllowedError      405
            ├── SaynaPayloadTooLargeError       413
            ├── SaynaUnprocessableEntityError   415, 422
            ├── SaynaRateLimitError             429 (``retry_after`` seconds when sent)
            └── SaynaInternalServerError        5xx (``retry_after`` seconds when sent)

aiohttp exceptions never escape the SDK: they are translated in exactly one place
for REST (``_http``) and one for the WebSocket (``realtime``), always chained with
``from`` so the original stays on ``__cause__``.
"""

from __future__ import annotations

import pickle
from typing import Any, Optional

from pydantic import ValidationError

__all__ = [
    "ModelValidationError",
    "SaynaAuthenticationError",
    "SaynaBadRequestError",
    "SaynaConfigRejectedError",
    "SaynaConnectionClosedError",
    "SaynaConnectionError",
    "SaynaError",
    "SaynaEventLoopError",
    "SaynaHttpError",
    "SaynaInternalServerError",
    "SaynaInvalidResponseError",
    "SaynaMethodNotAllowedError",
    "SaynaNotConnectedError",
    "SaynaNotFoundError",
    "SaynaNotReadyError",
    "SaynaPayloadTooLargeError",
    "SaynaPermissionDeniedError",
    "SaynaProtocolError",
    "SaynaRateLimitError",
    "SaynaServerError",
    "SaynaTTSError",
    "SaynaTimeoutError",
    "SaynaUnprocessableEntityError",
    "SaynaValidationError",
    "http_error_for_status",
]


class SaynaError(Exception):
    """Base class of every exception raised by ``sayna_client``.

    Every one pickles with its message and attributes (process pools, multiprocessing
    queues and log handlers that pickle carry it). ``__cause__`` and the traceback stay
    behind, as for any exception; a ``cause`` attribute that would not come back from
    pickle travels as a ``RuntimeError`` holding its type and text.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> Any:
        # Exception's own rebuilds with ``cls(*self.args)``: the classes whose __init__
        # takes more than the message (``status_code``, ``server_message``...) could not
        # be unpickled, and a process pool that got one broke. The instance is rebuilt
        # without calling __init__, its attributes set back as they were.
        state = dict(vars(self))
        if isinstance(state.get("cause"), BaseException):
            state["cause"] = _picklable(state["cause"])
        return _rebuild_error, (type(self), self.args, state)


def _picklable(cause: BaseException) -> BaseException:
    """``cause``, or a ``RuntimeError`` with its type and text when it does not come
    back from pickle (aiohttp's ``ClientResponseError`` holds headers that do not)."""
    try:
        pickle.loads(pickle.dumps(cause))
    except Exception:
        return RuntimeError(f"{type(cause).__module__}.{type(cause).__qualname__}: {cause}")
    return cause


def _rebuild_error(cls: type[SaynaError], args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """A pickled :class:`SaynaError`, rebuilt with its arguments and attributes."""
    error = cls.__new__(cls, *args)
    error.args = args
    error.__dict__.update(state)
    return error


class SaynaValidationError(SaynaError, ValueError):
    """An argument or local input is invalid; the message names it and the fix.

    Raised before anything is sent, so the session is unaffected.
    """


class ModelValidationError(SaynaValidationError, ValidationError):
    """A config or request model (``STTConfig``, ``TTSConfig``, ``SpeakRequest``...) built or
    assigned with bad values.

    The one-line message names each field, what it expects and the type it got, never the
    value (it may be a key): ``STTConfig(provider=1)`` says ``STTConfig.provider: must be a
    valid string (got int)``. It is also a ``pydantic.ValidationError`` with pydantic's
    ``errors()``, ``error_count()`` and ``json()``, so code that catches pydantic's error keeps
    working; ``errors()`` and ``json()`` leave the values given out unless
    ``include_input=True``. It pickles with its message, fields and error types but
    without the values given (process pools, queues and log handlers that pickle never
    carry a key passed in the wrong field): an unpickled copy's ``errors(include_input=True)``
    shows ``None`` for each input.
    ``model_validate`` and ``model_validate_json`` are pydantic's own and raise pydantic's
    error, as they always have.

    The SDK's models raise it; it is not built from a message
    (``ModelValidationError("text")`` is pydantic-core's ``TypeError``). To get one in a
    test, build a model with a bad value::

        with pytest.raises(ModelValidationError) as info:
            STTConfig(provider="deepgram", sample_rate="fast")
    """

    message: str

    def __init__(self, *args: Any) -> None:
        # pydantic-core builds the instance (``from_exception_data``) and the model sets
        # ``message`` (types/_checked.py). SaynaError's __init__ takes the message only.
        self.message = ""

    def errors(
        self,
        *,
        include_url: bool = True,
        include_context: bool = True,
        include_input: bool = False,
    ) -> Any:
        """pydantic's list of problems; without the values given unless
        ``include_input=True`` (a value in the wrong field may be a key, and these
        lists end up in logs)."""
        return super().errors(
            include_url=include_url, include_context=include_context, include_input=include_input
        )

    def json(
        self,
        *,
        indent: Any = None,
        include_url: bool = True,
        include_context: bool = True,
        include_input: bool = False,
    ) -> str:
        """:meth:`errors` as JSON text; without the values given unless
        ``include_input=True``."""
        return super().json(
            indent=indent,
            include_url=include_url,
            include_context=include_context,
            include_input=include_input,
        )

    def __reduce__(self) -> Any:
        # pydantic's own rebuilds the error from its errors() alone: the message (the
        # text users see) would come back empty from pickle or a process pool. The values
        # given stay behind: a key passed in the wrong field must not travel through
        # process pools, queues or log handlers that pickle.
        errors = [{**line, "input": None} for line in self.errors(include_input=False)]
        return _rebuild_model_error, (self.title, errors, self.message)

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


def _rebuild_model_error(title: str, errors: Any, message: str) -> ModelValidationError:
    """A pickled :class:`ModelValidationError`, rebuilt with its message."""
    error = ModelValidationError.from_exception_data(title, errors, hide_input=True)
    error.message = message
    return error


class SaynaNotConnectedError(SaynaError):
    """The operation needs an open WebSocket session."""

    def __init__(
        self,
        message: str = (
            "Not connected to Sayna: call client.connect() first "
            "(`await client.connect()` on SaynaClient)"
        ),
    ) -> None:
        super().__init__(message)


class SaynaNotReadyError(SaynaError):
    """The WebSocket is open but the server has not sent ``ready`` yet."""

    def __init__(
        self,
        message: str = (
            "The Sayna session is not ready yet: await `client.connect()`, which returns "
            "once the server has sent `ready`"
        ),
    ) -> None:
        super().__init__(message)


class SaynaEventLoopError(SaynaError, RuntimeError):
    """A session method was awaited on an event loop other than the one whose session it
    would touch (the loop that called ``connect()``, while that loop is alive).

    A client's socket, tasks and timers belong to one loop; use one client per loop, or
    ``SaynaSyncClient`` to share a client between threads. Once the session is closed
    (``disconnect()``), or its loop has been closed, another loop may use the client.

    Also raised at once by a connection or REST call to a local server of this process
    (``LocalServer``, the ``sayna_server`` fixture) whose event loop is not running:
    nothing could answer it (see docs/testing.md).
    """


class SaynaTimeoutError(SaynaError, TimeoutError):
    """A deadline passed. ``operation`` says which (``"connect"``, ``"ready"``, ``"GET /"``...)."""

    def __init__(self, message: str, *, operation: str = "", timeout: Optional[float] = None):
        super().__init__(message)
        self.operation = operation
        self.timeout = timeout


class SaynaConnectionError(SaynaError):
    """The transport failed: refused, reset, TLS or DNS failure, or the session was lost.

    ``cause`` is the underlying exception when there is one (also on ``__cause__``).
    """

    def __init__(self, message: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(message)
        self.cause = cause


class SaynaConnectionClosedError(SaynaConnectionError):
    """The WebSocket closed. ``code`` is the close code (1005 when the peer sent none)."""

    def __init__(
        self,
        message: str,
        *,
        code: Optional[int] = None,
        reason: str = "",
        cause: Optional[BaseException] = None,
    ) -> None:
        super().__init__(message, cause)
        self.code = code
        self.reason = reason


class SaynaProtocolError(SaynaError):
    """The server sent something the Sayna protocol does not allow."""


class SaynaServerError(SaynaError):
    """The server answered with an error.

    ``status_code`` and ``endpoint`` are set for REST errors (see :class:`SaynaHttpError`).
    """

    def __init__(
        self,
        message: str,
        status_code: Optional[int] = None,
        endpoint: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.endpoint = endpoint


class SaynaInvalidResponseError(SaynaServerError, SaynaProtocolError):
    """A REST answer this SDK cannot use: a body that is not JSON, not UTF-8, nested too
    deeply, holds a number too large to convert or is not the documented shape, or a
    body larger than the client's ``max_response_bytes`` (not read past the bound).

    Also an answer that is not HTTP at all (another service on the port: no status line,
    ``status_code`` None) or whose body framing is broken (chunks, compression); such an
    answer is not retried.

    ``status_code`` and ``endpoint`` say which answer; ``excerpt`` (also in the message)
    is the start of the body, never the whole of it. It is a :class:`SaynaProtocolError`
    too, the class such answers raised before.
    """

    def __init__(
        self, message: str, status_code: Optional[int], endpoint: str, *, excerpt: str = ""
    ) -> None:
        super().__init__(message, status_code=status_code, endpoint=endpoint)
        self.excerpt = excerpt


class SaynaConfigRejectedError(SaynaServerError):
    """The server answered the WebSocket ``config`` with an ``error`` and will not send ``ready``.

    ``server_message`` is the server's text (e.g. ``"Unsupported provider: foo"``). The
    socket stays open: fix the configuration and call ``client.reconfigure(...)``, or
    ``disconnect()`` and connect again.
    """

    def __init__(self, server_message: str) -> None:
        super().__init__(f"The server rejected the session config: {server_message}")
        self.server_message = server_message


class SaynaTTSError(SaynaServerError):
    """The server's TTS provider failed to synthesize a speech (Sayna sent ``error`` with
    ``TTS error: ...``, protocol section 6.7, or ``Failed to synthesize speech: ...`` when
    it refused the ``speak`` itself: Google TTS, a provider not connected).

    Raised by ``await handle`` (and ``handle.wait()``) of the
    :class:`~sayna_client.agents.SpeechHandle` the failure was credited to, and returned
    by its ``exception()``. ``server_message`` is the server's text, e.g. ``"TTS error:
    Provider error: API error (401 Unauthorized): ..."``. The session goes on: the
    speeches after it are synthesized as usual.
    """

    def __init__(self, server_message: str) -> None:
        super().__init__(f"The speech was not synthesized: {server_message}")
        self.server_message = server_message


class SaynaHttpError(SaynaServerError):
    """A REST call returned a non-2xx status.

    Attributes:
        status_code: the HTTP status.
        body: the decoded JSON body (``dict``) or the raw text when it is not JSON.
        error: the server's ``error`` field (an error code for auth errors, else the text).
        code: the server's machine ``code`` field when present (``"INVALID_PHONE_NUMBER"``...).
        endpoint: ``"METHOD /path"`` of the failed request.
    """

    def __init__(
        self,
        message: str,
        status_code: int,
        endpoint: Optional[str] = None,
        *,
        body: Any = None,
        error: Optional[str] = None,
        code: Optional[str] = None,
    ) -> None:
        super().__init__(message, status_code=status_code, endpoint=endpoint)
        self.status_code: int = status_code
        self.body = body
        self.error = error
        self.code = code


class SaynaBadRequestError(SaynaHttpError):
    """400: the server refused the request's content (empty text, bad phone number...)."""


class SaynaAuthenticationError(SaynaHttpError):
    """401: the API key is missing or wrong (pass ``api_key=`` or set ``SAYNA_API_KEY``).

    The message holds the server's reason and says which: "the server requires an API
    key" when none was sent, "the server refused the API key" when one was.
    """


class SaynaPermissionDeniedError(SaynaHttpError):
    """403: the resource belongs to another tenant."""


class SaynaNotFoundError(SaynaHttpError):
    """404: not found, or not accessible to this tenant (the server masks both as 404)."""


class SaynaMethodNotAllowedError(SaynaHttpError):
    """405: the method is not allowed (e.g. changing a SIP hook defined in server config)."""


class SaynaPayloadTooLargeError(SaynaHttpError):
    """413: the request body exceeds the server's limit (2 MiB)."""


class SaynaUnprocessableEntityError(SaynaHttpError):
    """415/422: the body was not JSON of the expected shape."""


class _RetryAfterError(SaynaHttpError):
    """An HTTP error that may carry the server's ``Retry-After`` hint, in seconds."""

    def __init__(
        self,
        message: str,
        status_code: int,
        endpoint: Optional[str] = None,
        *,
        body: Any = None,
        error: Optional[str] = None,
        code: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        super().__init__(message, status_code, endpoint, body=body, error=error, code=code)
        self.retry_after = retry_after


class SaynaRateLimitError(_RetryAfterError):
    """429: too many requests. ``retry_after`` is the server's hint in seconds, if any."""


class SaynaInternalServerError(_RetryAfterError):
    """5xx: the server or one of its upstream providers failed. ``retry_after`` is the
    server's hint in seconds, if any (a 503 over capacity sends one)."""


_STATUS_CLASSES: dict[int, type[SaynaHttpError]] = {
    400: SaynaBadRequestError,
    401: SaynaAuthenticationError,
    403: SaynaPermissionDeniedError,
    404: SaynaNotFoundError,
    405: SaynaMethodNotAllowedError,
    413: SaynaPayloadTooLargeError,
    415: SaynaUnprocessableEntityError,
    422: SaynaUnprocessableEntityError,
    429: SaynaRateLimitError,
}


def http_error_for_status(status: int) -> type[SaynaHttpError]:
    """The most specific :class:`SaynaHttpError` subclass for an HTTP status."""
    if status >= 500:
        return SaynaInternalServerError
    return _STATUS_CLASSES.get(status, SaynaHttpError)
