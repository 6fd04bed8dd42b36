"""Pure settings: URL derivation, API key fallback, backoff, timeouts."""

import pytest

from sayna_client import ReconnectPolicy, RetryPolicy, SaynaValidationError, Timeouts
from sayna_client._config import backoff_delay, derive_urls, is_loopback_host, resolve_api_key
from sayna_client.errors import (
    SaynaAuthenticationError,
    SaynaHttpError,
    SaynaInternalServerError,
    SaynaRateLimitError,
    http_error_for_status,
)


@pytest.mark.parametrize(
    ("url", "http", "ws"),
    [
        ("http://h:3001", "http://h:3001", "ws://h:3001/ws"),
        ("http://h:3001/", "http://h:3001", "ws://h:3001/ws"),
        ("https://api.sayna.ai", "https://api.sayna.ai", "wss://api.sayna.ai/ws"),
        ("ws://h:1/ws", "http://h:1", "ws://h:1/ws"),
        ("wss://h/ws/", "https://h", "wss://h/ws"),
        ("wss://h", "https://h", "wss://h/ws"),
        ("https://h/prefix", "https://h/prefix", "wss://h/prefix/ws"),
        ("HTTP://h", "http://h", "ws://h/ws"),
    ],
)
def test_derive_urls(url: str, http: str, ws: str) -> None:
    assert derive_urls(url) == (http, ws)


@pytest.mark.parametrize("url", ["", "   ", "ftp://h", "h:3001", "http://", 5])
def test_bad_urls_name_the_fix(url: object) -> None:
    with pytest.raises(SaynaValidationError, match="url"):
        derive_urls(url)  # type: ignore[arg-type]


def test_api_key_falls_back_to_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAYNA_API_KEY", " env-key ")
    assert resolve_api_key(None) == "env-key"
    assert resolve_api_key("explicit") == "explicit"
    monkeypatch.delenv("SAYNA_API_KEY")
    assert resolve_api_key(None) is None
    assert resolve_api_key("  ") is None


def test_loopback_detection() -> None:
    assert is_loopback_host("http://127.0.0.1:1")
    assert is_loopback_host("ws://localhost/ws")
    assert is_loopback_host("http://[::1]:80")
    assert not is_loopback_host("http://10.0.0.1")
    assert not is_loopback_host("https://api.sayna.ai")


def test_backoff_is_capped_exponential_with_jitter() -> None:
    no_jitter = [
        backoff_delay(n, initial=0.5, maximum=4, jitter=0, rand=lambda: 0.7) for n in range(1, 7)
    ]
    assert no_jitter == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    jittered = backoff_delay(3, initial=0.5, maximum=4, jitter=0.5, rand=lambda: 1.0)
    assert jittered == pytest.approx(1.0)
    assert backoff_delay(1, initial=0.5, maximum=4, jitter=0, retry_after=3) == 3
    assert backoff_delay(1, initial=0.5, maximum=4, jitter=0, retry_after=1000) == 4


def test_backoff_of_a_policy_retrying_for_ever_stays_at_its_cap() -> None:
    # ReconnectPolicy(max_attempts=None): attempt 1,025 comes after about 4 hours at a
    # 15 s cap; 2.0 ** 1024 overflowed and ended the reconnection with OverflowError.
    for attempt in (1025, 10_000):
        assert backoff_delay(attempt, initial=0.5, maximum=15, jitter=0) == 15


def test_policies_validate() -> None:
    with pytest.raises(SaynaValidationError, match="Timeouts.ready"):
        Timeouts(ready=0)
    with pytest.raises(SaynaValidationError, match="max_retries"):
        RetryPolicy(max_retries=-1)
    with pytest.raises(SaynaValidationError, match="max_attempts"):
        ReconnectPolicy(max_attempts=0)
    assert Timeouts(ready=None).ready is None


@pytest.mark.parametrize("policy", [RetryPolicy, ReconnectPolicy])
@pytest.mark.parametrize("field", ["initial_backoff", "max_backoff"])
@pytest.mark.parametrize("value", [-1, -0.5, float("nan"), float("inf"), float("-inf")])
def test_backoffs_must_be_finite_and_not_negative(policy: type, field: str, value: float) -> None:
    # A negative or NaN backoff made ReconnectPolicy retry with no delay at all (about
    # 800 attempts a second against a server that is down); an infinite one never retries.
    with pytest.raises(SaynaValidationError, match=f"{policy.__name__}.{field} must be a finite"):
        policy(**{field: value})
    assert policy(**{field: 0}) is not None  # 0: retry at once, allowed


def test_status_classes() -> None:
    assert http_error_for_status(401) is SaynaAuthenticationError
    assert http_error_for_status(429) is SaynaRateLimitError
    assert http_error_for_status(503) is SaynaInternalServerError
    assert http_error_for_status(418) is SaynaHttpError


@pytest.mark.parametrize(
    "value", [503, None, "503", b"503", ["503"], {"a"}, [True], [503, False], [99], [600], [503.0]]
)
def test_retry_statuses_must_be_a_collection_of_status_codes(value: object) -> None:
    """RetryPolicy(retry_statuses=503) or None was taken, then every error status of every
    call raised TypeError ("argument of type 'int' is not iterable"); ["503"] was taken
    and never matched a status: no retry, no word why."""
    with pytest.raises(SaynaValidationError) as info:
        RetryPolicy(retry_statuses=value)  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("RetryPolicy.retry_statuses must ")
    assert "ints from 100 to 599" in message
    assert message.endswith(
        "e.g. RetryPolicy(retry_statuses={429, 503}), or frozenset() to retry no status"
    )


def test_retry_statuses_are_kept_as_a_frozenset_of_ints() -> None:
    from http import HTTPStatus

    policy = RetryPolicy(retry_statuses=[503, HTTPStatus.BAD_GATEWAY, 503])  # type: ignore[arg-type]
    assert policy.retry_statuses == frozenset({502, 503})
    assert type(policy.retry_statuses) is frozenset
    assert {type(status) for status in policy.retry_statuses} == {int}
    assert RetryPolicy(retry_statuses=(s for s in (500, 504))).retry_statuses == {500, 504}  # type: ignore[arg-type]
    assert RetryPolicy(retry_statuses=set()).retry_statuses == frozenset()  # type: ignore[arg-type]
    assert RetryPolicy(retry_statuses={429}) == RetryPolicy(retry_statuses=frozenset({429}))  # type: ignore[arg-type]
    assert hash(RetryPolicy(retry_statuses={429})) == hash(RetryPolicy(retry_statuses=[429]))  # type: ignore[arg-type]
