"""The exception tree: every public error survives pickle (process pools, queues)."""

from __future__ import annotations

import pickle
from typing import Any

import pytest

import sayna_client
from sayna_client import errors
from sayna_client.webhooks import WebhookVerificationError


class _NeedsTwoArguments(Exception):
    """An exception pickle cannot rebuild (``cls(*args)`` misses an argument)."""

    def __init__(self, first: str, second: str) -> None:
        super().__init__(f"{first} {second}")


def _model_error() -> errors.ModelValidationError:
    with pytest.raises(errors.ModelValidationError) as info:
        sayna_client.STTConfig(provider="deepgram", sample_rate="fast")  # type: ignore[arg-type]
    return info.value


HTTP = {"body": {"error": "nope", "code": "NO"}, "error": "nope", "code": "NO"}

EXAMPLES: dict[type[BaseException], Any] = {
    errors.SaynaError: lambda: errors.SaynaError("boom"),
    errors.SaynaValidationError: lambda: errors.SaynaValidationError("text must be a string"),
    errors.ModelValidationError: _model_error,
    errors.SaynaNotConnectedError: errors.SaynaNotConnectedError,
    errors.SaynaNotReadyError: errors.SaynaNotReadyError,
    errors.SaynaEventLoopError: lambda: errors.SaynaEventLoopError("another loop"),
    errors.SaynaTimeoutError: lambda: errors.SaynaTimeoutError(
        "GET / timed out", operation="GET /", timeout=2.5
    ),
    errors.SaynaConnectionError: lambda: errors.SaynaConnectionError(
        "cannot reach", cause=ConnectionRefusedError(111, "refused")
    ),
    errors.SaynaConnectionClosedError: lambda: errors.SaynaConnectionClosedError(
        "closed", code=1011, reason="bye", cause=ConnectionResetError(104, "reset")
    ),
    errors.SaynaProtocolError: lambda: errors.SaynaProtocolError("bad frame"),
    errors.SaynaServerError: lambda: errors.SaynaServerError("failed", 500, "GET /"),
    errors.SaynaInvalidResponseError: lambda: errors.SaynaInvalidResponseError(
        "GET /voices answered HTTP 200 with a body that is not JSON",
        200,
        "GET /voices",
        excerpt="<html>",
    ),
    errors.SaynaConfigRejectedError: lambda: errors.SaynaConfigRejectedError(
        "Unsupported provider: foo"
    ),
    errors.SaynaTTSError: lambda: errors.SaynaTTSError("TTS error: quota"),
    errors.SaynaHttpError: lambda: errors.SaynaHttpError("HTTP 418", 418, "GET /tea", **HTTP),
    errors.SaynaRateLimitError: lambda: errors.SaynaRateLimitError(
        "HTTP 429", 429, "GET /voices", retry_after=1.5, **HTTP
    ),
    WebhookVerificationError: lambda: WebhookVerificationError(
        "the signature does not match", reason="bad_signature"
    ),
}
for _status in (400, 401, 403, 404, 405, 413, 422, 500):
    _cls = errors.http_error_for_status(_status)
    EXAMPLES[_cls] = lambda cls=_cls, status=_status: cls(
        f"GET /x failed with HTTP {status}", status, "GET /x", **HTTP
    )


def _public_error_classes() -> set[type[BaseException]]:
    found = set()
    for module in (sayna_client, errors):
        for name in module.__all__:
            value = getattr(module, name)
            if isinstance(value, type) and issubclass(value, BaseException):
                found.add(value)
    return found | {WebhookVerificationError}


def test_every_public_error_has_an_example() -> None:
    assert _public_error_classes() == set(EXAMPLES)


def _attributes(error: BaseException) -> dict[str, Any]:
    return {
        name: repr(value) if isinstance(value, BaseException) else value
        for name, value in vars(error).items()
    }


@pytest.mark.parametrize(
    "cls", sorted(EXAMPLES, key=lambda c: c.__name__), ids=lambda c: c.__name__
)
@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_every_public_error_pickles_with_its_attributes(
    cls: type[BaseException], protocol: int
) -> None:
    error = EXAMPLES[cls]()
    assert type(error) is cls
    copy = pickle.loads(pickle.dumps(error, protocol=protocol))
    assert type(copy) is cls
    assert str(copy) == str(error)
    assert repr(copy) == repr(error)
    assert copy.args == error.args
    if not isinstance(error, errors.ModelValidationError):  # its inputs stay behind
        assert _attributes(copy) == _attributes(error)
    assert str(pickle.loads(pickle.dumps(copy, protocol=protocol))) == str(error)


def test_a_cause_that_does_not_unpickle_travels_as_text() -> None:
    error = errors.SaynaConnectionError("cannot reach", cause=_NeedsTwoArguments("a", "b"))
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy.cause, RuntimeError)
    assert str(copy.cause).endswith("_NeedsTwoArguments: a b")
    assert isinstance(error.cause, _NeedsTwoArguments)  # the original is untouched
