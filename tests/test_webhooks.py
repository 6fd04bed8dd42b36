"""Webhook verification: every rejection reason, the replay window edges, raw bytes."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.client
import http.server
import json
import pickle
import threading
from collections.abc import AsyncIterator
from typing import Any, Dict, List, Optional, Tuple

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from sayna_client.errors import SaynaError, SaynaValidationError
from sayna_client.webhooks import (
    WebhookReceiver,
    WebhookSIPOutput,
    WebhookVerificationError,
    receive_aiohttp,
    sign_payload,
)

SECRET = "test-secret-key-1234567890"
NOW = 1_700_000_000
EVENT_ID = "EV_4QXyJzq2Lr"

PAYLOAD: Dict[str, Any] = {
    "participant": {"name": "Alice", "identity": "sip_+15551230000", "sid": "PA_abc123"},
    "room": {"name": "sip-call-42", "sid": "RM_xyz789"},
    "from_phone_number": "+15551230000",
    "to_phone_number": "+15559870000",
    "room_prefix": "sip-",
    "sip_host": "example.com",
    "sip_headers": {"to": "sip:+15559870000@example.com", "x-to-ip": "example.com"},
}
# Compact JSON in the server's key order, as Sayna sends it.
BODY = json.dumps(PAYLOAD, separators=(",", ":")).encode()


def signed_headers(
    body: bytes = BODY,
    *,
    timestamp: str = str(NOW),
    event_id: str = EVENT_ID,
    secret: str = SECRET,
) -> Dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-Sayna-Signature": sign_payload(secret, timestamp, event_id, body),
        "X-Sayna-Timestamp": timestamp,
        "X-Sayna-Event-Id": event_id,
        "X-Sayna-Signature-Version": "v1",
    }


def make_receiver(now: float = NOW, **kwargs: Any) -> WebhookReceiver:
    return WebhookReceiver(SECRET, clock=lambda: now, **kwargs)


def rejection(
    receiver: WebhookReceiver, headers: Any, body: Any = BODY
) -> WebhookVerificationError:
    with pytest.raises(WebhookVerificationError) as info:
        receiver.receive(headers, body)
    assert SECRET not in str(info.value)
    return info.value


# --- accepted requests ------------------------------------------------------------------


def test_valid_request_is_parsed() -> None:
    event = make_receiver().receive(signed_headers(), BODY)
    assert isinstance(event, WebhookSIPOutput)
    assert event.participant.identity == "sip_+15551230000"
    assert event.participant.name == "Alice"
    assert event.room.name == "sip-call-42"
    assert event.room.sid == "RM_xyz789"
    assert event.from_phone_number == "+15551230000"
    assert event.to_phone_number == "+15559870000"
    assert event.sip_host == "example.com"
    assert event.sip_headers == {"to": "sip:+15559870000@example.com", "x-to-ip": "example.com"}


@pytest.mark.parametrize("body", [BODY, BODY.decode(), bytearray(BODY), memoryview(BODY)])
def test_body_types(body: Any) -> None:
    assert make_receiver().receive(signed_headers(), body).room_prefix == "sip-"


def test_verify_returns_none_for_valid_request() -> None:
    assert make_receiver().verify(signed_headers(), BODY) is None  # type: ignore[func-returns-value]


def test_non_ascii_str_body_is_utf8_encoded() -> None:
    payload = dict(PAYLOAD, participant={"name": "Zoë 😀", "identity": "i", "sid": "s"})
    text = json.dumps(payload, ensure_ascii=False)
    headers = signed_headers(text.encode("utf-8"))
    assert make_receiver().receive(headers, text).participant.name == "Zoë 😀"


def test_optional_fields_and_unknown_keys_are_tolerated() -> None:
    payload = json.loads(BODY)
    del payload["sip_headers"]
    del payload["participant"]["name"]
    payload["participant"]["kind"] = "sip"
    payload["added_later"] = {"x": 1}
    body = json.dumps(payload).encode()
    event = make_receiver().receive(signed_headers(body), body)
    assert event.sip_headers is None
    assert event.participant.name is None
    assert event.model_extra == {"added_later": {"x": 1}}
    assert event.participant.model_extra == {"kind": "sip"}


def test_version_header_is_optional_and_uppercase_hex_accepted() -> None:
    headers = signed_headers()
    del headers["X-Sayna-Signature-Version"]
    headers["X-Sayna-Signature"] = "v1=" + headers["X-Sayna-Signature"][3:].upper()
    make_receiver().receive(headers, BODY)


# --- header handling --------------------------------------------------------------------


def test_header_names_are_case_insensitive_in_a_dict() -> None:
    headers = signed_headers()
    mixed = {
        "x-sayna-signature": headers["X-Sayna-Signature"],
        "X-SAYNA-TIMESTAMP": headers["X-Sayna-Timestamp"],
        "x-Sayna-Event-ID": headers["X-Sayna-Event-Id"],
    }
    make_receiver().receive(mixed, BODY)


def test_multidict_and_pair_list_and_raw_bytes_headers() -> None:
    headers = signed_headers()
    receiver = make_receiver(dedupe=False)  # the same event three times
    receiver.receive(CIMultiDict(headers), BODY)
    receiver.receive(list(headers.items()), BODY)
    receiver.receive([(k.lower().encode(), v.encode()) for k, v in headers.items()], BODY)


def test_the_headers_of_a_stdlib_http_server_are_accepted() -> None:
    """``BaseHTTPRequestHandler.headers`` (an ``HTTPMessage``: iterating it gives the
    names only) raised "webhook headers must be a mapping"; its repeated header is
    still refused as a duplicate."""
    outcomes: List[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                make_receiver(dedupe=False).receive(self.headers, body)
                outcomes.append("accepted")
            except WebhookVerificationError as exc:
                outcomes.append(exc.reason)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        for extra in ([], [("X-Sayna-Event-Id", "again")]):
            connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
            connection.putrequest("POST", url)
            for name, value in [*signed_headers().items(), *extra]:
                connection.putheader(name, value)
            connection.putheader("Content-Length", str(len(BODY)))
            connection.endheaders(BODY)
            assert connection.getresponse().status == 204
            connection.close()
    finally:
        server.shutdown()
        server.server_close()
    assert outcomes == ["accepted", "duplicate_header"]


def test_single_item_list_values_are_accepted() -> None:
    headers = {k: [v] for k, v in signed_headers().items()}
    make_receiver().receive(headers, BODY)


def test_headers_of_the_wrong_shape_raise_type_error() -> None:
    with pytest.raises(TypeError, match="iterable of"):
        make_receiver().receive(42, BODY)  # type: ignore[arg-type]


@pytest.mark.parametrize("missing", ["X-Sayna-Signature", "X-Sayna-Timestamp", "X-Sayna-Event-Id"])
def test_missing_header(missing: str) -> None:
    headers = signed_headers()
    del headers[missing]
    error = rejection(make_receiver(), headers)
    assert error.reason == "missing_header"
    assert f"Missing required header: {missing.lower()}" in str(error)


def _duplicate_cases() -> List[Tuple[str, Any]]:
    base = signed_headers()
    pairs = list(base.items())
    multi = CIMultiDict(base)
    multi.add("x-sayna-signature", base["X-Sayna-Signature"])
    both_spellings = dict(base, **{"x-sayna-event-id": EVENT_ID})
    list_value = dict(base, **{"X-Sayna-Timestamp": [str(NOW), str(NOW)]})
    version_twice = [*pairs, ("x-sayna-signature-version", "v1")]
    return [
        ("multidict", multi),
        ("pair list", [*pairs, ("X-SAYNA-TIMESTAMP", str(NOW))]),
        ("dict with two spellings", both_spellings),
        ("dict with list value", list_value),
        ("version header twice", version_twice),
    ]


@pytest.mark.parametrize(("label", "headers"), _duplicate_cases())
def test_duplicate_header(label: str, headers: Any) -> None:
    error = rejection(make_receiver(), headers)
    assert error.reason == "duplicate_header", label
    assert "Duplicate header" in str(error)


@pytest.mark.parametrize(
    "signature",
    [
        "",
        "invalid-signature",
        "v1=",
        "v1=" + "a" * 63,
        "v1=" + "a" * 65,
        "v1=" + "g" * 64,
        "v2=" + "a" * 64,
        "V1=" + "a" * 64,
        "sha256=" + "a" * 64,
        "v1=" + "a" * 32 + " " + "a" * 31,
    ],
)
def test_malformed_signature(signature: str) -> None:
    headers = dict(signed_headers(), **{"X-Sayna-Signature": signature})
    error = rejection(make_receiver(), headers)
    assert error.reason == "malformed_signature"
    assert "Invalid signature" in str(error)


@pytest.mark.parametrize(
    "timestamp", ["", "abc", "1.5", "-5", "+1700000000", "1e9", "١٧٠٠٠٠٠٠٠٠", "0x10", "9" * 21]
)
def test_malformed_timestamp(timestamp: str) -> None:
    headers = signed_headers(timestamp=timestamp)
    error = rejection(make_receiver(), headers)
    assert error.reason == "malformed_timestamp"
    assert "Invalid timestamp format" in str(error)


@pytest.mark.parametrize("version", ["v2", "", "V1", "v1,v2"])
def test_bad_version(version: str) -> None:
    headers = dict(signed_headers(), **{"X-Sayna-Signature-Version": version})
    error = rejection(make_receiver(), headers)
    assert error.reason == "bad_version"
    assert "upgrade" in str(error)


# --- replay window ----------------------------------------------------------------------


@pytest.mark.parametrize("offset", [-300, -1, 0, 1, 300])
def test_timestamps_within_window_are_accepted(offset: int) -> None:
    timestamp = str(NOW + offset)
    make_receiver().receive(signed_headers(timestamp=timestamp), BODY)


def test_stale_timestamp_301_seconds_old() -> None:
    error = rejection(make_receiver(), signed_headers(timestamp=str(NOW - 301)))
    assert error.reason == "stale_timestamp"
    assert "Timestamp outside replay protection window" in str(error)


def test_future_timestamp_301_seconds_ahead() -> None:
    error = rejection(make_receiver(), signed_headers(timestamp=str(NOW + 301)))
    assert error.reason == "future_timestamp"
    assert "Timestamp outside replay protection window" in str(error)


def test_fractional_clock_just_past_the_edge_is_rejected() -> None:
    headers = signed_headers(timestamp=str(NOW))
    assert rejection(make_receiver(now=NOW + 300.5), headers).reason == "stale_timestamp"
    assert rejection(make_receiver(now=NOW - 300.5), headers).reason == "future_timestamp"


def test_custom_tolerance() -> None:
    receiver = make_receiver(tolerance_seconds=10)
    assert receiver.tolerance_seconds == 10
    receiver.receive(signed_headers(timestamp=str(NOW - 10)), BODY)
    assert rejection(receiver, signed_headers(timestamp=str(NOW - 11))).reason == (
        "stale_timestamp"
    )


def test_clock_is_read_per_request() -> None:
    now = [float(NOW)]
    receiver = WebhookReceiver(SECRET, clock=lambda: now[0])
    headers = signed_headers()
    receiver.receive(headers, BODY)
    now[0] += 301
    assert rejection(receiver, headers).reason == "stale_timestamp"


def test_default_clock_is_wall_time() -> None:
    import time

    timestamp = str(int(time.time()))
    WebhookReceiver(SECRET).receive(signed_headers(timestamp=timestamp), BODY)


# --- signature and body -----------------------------------------------------------------


def test_wrong_secret_is_a_mismatch() -> None:
    headers = signed_headers(secret="another-secret-key-0987654321")
    error = rejection(make_receiver(), headers)
    assert error.reason == "signature_mismatch"
    assert "Signature verification failed" in str(error)


@pytest.mark.parametrize(
    "field", ["X-Sayna-Timestamp", "X-Sayna-Event-Id"], ids=["timestamp", "event-id"]
)
def test_signed_headers_cannot_be_swapped(field: str) -> None:
    headers = signed_headers()
    headers[field] = str(NOW - 5) if field == "X-Sayna-Timestamp" else "EV_other"
    assert rejection(make_receiver(), headers).reason == "signature_mismatch"


def test_tampered_body_is_a_mismatch() -> None:
    tampered = BODY.replace(b"+15551230000", b"+19999999999")
    assert rejection(make_receiver(), signed_headers(), tampered).reason == "signature_mismatch"


def test_raw_body_with_whitespace_is_verified_as_is_and_reserialised_body_rejected() -> None:
    pretty = (json.dumps(PAYLOAD, indent=2) + "\n").encode()
    headers = signed_headers(pretty)
    receiver = make_receiver()
    assert receiver.receive(headers, pretty).room.sid == "RM_xyz789"
    reserialised = json.dumps(json.loads(pretty)).encode()
    assert reserialised != pretty
    assert rejection(receiver, headers, reserialised).reason == "signature_mismatch"


def test_surrounding_whitespace_of_the_secret_is_ignored() -> None:
    receiver = WebhookReceiver(f"  {SECRET}\n", clock=lambda: NOW)
    receiver.receive(signed_headers(), BODY)


def test_signed_invalid_json_is_invalid_body() -> None:
    body = b'{"participant": '
    error = rejection(make_receiver(), signed_headers(body), body)
    assert error.reason == "invalid_body"
    assert "Invalid JSON payload" in str(error)


@pytest.mark.parametrize(
    ("path", "location"),
    [
        (("participant",), "participant"),
        (("participant", "identity"), "participant.identity"),
        (("room", "sid"), "room.sid"),
        (("from_phone_number",), "from_phone_number"),
    ],
)
def test_signed_body_missing_a_field_is_invalid_body(path: Tuple[str, ...], location: str) -> None:
    payload = json.loads(BODY)
    target = payload
    for key in path[:-1]:
        target = target[key]
    del target[path[-1]]
    body = json.dumps(payload).encode()
    error = rejection(make_receiver(), signed_headers(body), body)
    assert error.reason == "invalid_body"
    assert location in str(error)
    assert "Field required" in str(error)


def test_invalid_body_message_does_not_quote_the_payload() -> None:
    payload = json.loads(BODY)
    payload["to_phone_number"] = 15559870000  # wrong type; value must not be echoed
    body = json.dumps(payload).encode()
    error = rejection(make_receiver(), signed_headers(body), body)
    assert error.reason == "invalid_body"
    assert "to_phone_number" in str(error)
    assert "15559870000" not in str(error)
    assert error.__cause__ is None
    assert error.__suppress_context__


def test_verify_does_not_parse_the_body() -> None:
    body = b"not json"
    make_receiver().verify(signed_headers(body), body)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_rejected(data: st.DataObject) -> None:
    index = data.draw(st.integers(min_value=0, max_value=len(BODY) - 1), label="index")
    new = data.draw(
        st.integers(min_value=0, max_value=255).filter(lambda b: b != BODY[index]), label="byte"
    )
    changed = bytearray(BODY)
    changed[index] = new
    with pytest.raises(WebhookVerificationError) as info:
        make_receiver().receive(signed_headers(), bytes(changed))
    assert info.value.reason == "signature_mismatch"


# --- dedupe -----------------------------------------------------------------------------


def test_dedupe_rejects_a_repeated_event_id() -> None:
    receiver = make_receiver(dedupe=True)
    receiver.receive(signed_headers(), BODY)
    error = rejection(receiver, signed_headers())
    assert error.reason == "duplicate_event"
    receiver.receive(signed_headers(event_id="EV_next"), BODY)


def test_replay_within_the_window_is_rejected_by_default() -> None:
    receiver = make_receiver()
    receiver.receive(signed_headers(), BODY)
    assert rejection(receiver, signed_headers()).reason == "duplicate_event"
    with pytest.raises(WebhookVerificationError) as info:
        receiver.verify(signed_headers(), BODY)
    assert info.value.reason == "duplicate_event"


def test_dedupe_can_be_turned_off() -> None:
    receiver = make_receiver(dedupe=False)
    receiver.receive(signed_headers(), BODY)
    receiver.receive(signed_headers(), BODY)
    assert repr(receiver) == "WebhookReceiver(tolerance_seconds=300, dedupe=False)"


def test_dedupe_forgets_ids_once_their_timestamp_left_the_window() -> None:
    now = [float(NOW)]
    receiver = WebhookReceiver(SECRET, clock=lambda: now[0])
    for index in range(50):
        receiver.receive(signed_headers(event_id=f"EV_{index}"), BODY)
    assert len(receiver._seen or ()) == 50
    now[0] = NOW + 300  # exactly at the edge: still inside, still remembered
    assert rejection(receiver, signed_headers(event_id="EV_7")).reason == "duplicate_event"
    now[0] = NOW + 301
    # A replay is now refused by the timestamp check, so the ids need not be kept.
    assert rejection(receiver, signed_headers(event_id="EV_7")).reason == "stale_timestamp"
    receiver.receive(signed_headers(timestamp=str(NOW + 301), event_id="EV_new"), BODY)
    assert list(receiver._seen or ()) == ["EV_new"]


def test_dedupe_records_only_verified_and_parsed_events() -> None:
    receiver = make_receiver(dedupe=True)
    forged = dict(signed_headers(), **{"X-Sayna-Signature": "v1=" + "0" * 64})
    assert rejection(receiver, forged).reason == "signature_mismatch"
    bad_body = b"[]"
    assert rejection(receiver, signed_headers(bad_body), bad_body).reason == "invalid_body"
    receiver.receive(signed_headers(), BODY)  # the id was not poisoned by either


def test_dedupe_with_verify() -> None:
    receiver = make_receiver(dedupe=True)
    receiver.verify(signed_headers(), BODY)
    with pytest.raises(WebhookVerificationError) as info:
        receiver.verify(signed_headers(), BODY)
    assert info.value.reason == "duplicate_event"


def test_dedupe_memory_is_bounded_lru() -> None:
    receiver = make_receiver(dedupe=True, dedupe_capacity=2)
    for event_id in ("EV_a", "EV_b"):
        receiver.receive(signed_headers(event_id=event_id), BODY)
    # A rejected repeat of EV_a refreshes it, so EV_b is the oldest when EV_c arrives.
    assert rejection(receiver, signed_headers(event_id="EV_a")).reason == "duplicate_event"
    receiver.receive(signed_headers(event_id="EV_c"), BODY)
    receiver.receive(signed_headers(event_id="EV_b"), BODY)
    assert rejection(receiver, signed_headers(event_id="EV_c")).reason == "duplicate_event"


# --- construction -----------------------------------------------------------------------


def test_secret_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAYNA_WEBHOOK_SECRET", SECRET)
    WebhookReceiver(clock=lambda: NOW).receive(signed_headers(), BODY)


def test_explicit_secret_wins_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAYNA_WEBHOOK_SECRET", "environment-secret-0123456789")
    WebhookReceiver(SECRET, clock=lambda: NOW).receive(signed_headers(), BODY)


@pytest.mark.parametrize("secret", [None, "", "   "])
def test_missing_secret(monkeypatch: pytest.MonkeyPatch, secret: Optional[str]) -> None:
    monkeypatch.delenv("SAYNA_WEBHOOK_SECRET", raising=False)
    with pytest.raises(SaynaValidationError, match="Webhook secret is required") as info:
        WebhookReceiver(secret)
    assert "SAYNA_WEBHOOK_SECRET" in str(info.value)


@pytest.mark.parametrize("secret", ["short", "fifteen-chars!!", "   fifteen-chars!!   "])
def test_short_secret(secret: str) -> None:
    with pytest.raises(SaynaValidationError, match="at least 16 characters long") as info:
        WebhookReceiver(secret)
    assert secret.strip() not in str(info.value)


@pytest.mark.parametrize(
    ("secret", "fix"),
    [
        (b"a-long-test-hook-secret", " (decode it: secret.decode())"),
        (1234567890123456789, ""),
        (["a-long-test-hook-secret"], ""),
    ],
)
def test_secret_of_another_type_is_refused_at_construction(secret: object, fix: str) -> None:
    """Not an AttributeError at the first request: the type, the fix, never the value."""
    with pytest.raises(SaynaValidationError) as info:
        WebhookReceiver(secret)  # type: ignore[arg-type]
    assert str(info.value) == (
        f"Webhook secret must be a string, got {type(secret).__name__}{fix}: pass the "
        "hook's signing secret as text, the same value as sip.hook_secret."
    )
    assert "a-long-test" not in str(info.value)
    assert "1234567890" not in str(info.value)


def test_sign_payload_refuses_a_secret_of_another_type_and_takes_a_str_body() -> None:
    # A bytes secret used to raise AttributeError ('bytes' object has no attribute 'encode').
    with pytest.raises(SaynaValidationError, match=r"got bytes \(decode it") as info:
        sign_payload(b"a-long-test-hook-secret", "1", "e", b"{}")  # type: ignore[arg-type]
    assert "a-long-test" not in str(info.value)
    secret = "a-long-test-hook-secret"
    assert sign_payload(secret, "1", "e", "{}") == sign_payload(secret, "1", "e", b"{}")
    with pytest.raises(TypeError, match="raw bytes"):
        sign_payload(secret, "1", "e", {"a": 1})  # type: ignore[arg-type]


def test_sixteen_character_secret_is_enough() -> None:
    WebhookReceiver("x" * 16)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tolerance_seconds": -1},
        {"tolerance_seconds": float("nan")},
        {"tolerance_seconds": float("inf")},
        {"dedupe_capacity": 0},
        {"dedupe_capacity": 1.5},
    ],
)
def test_invalid_options(kwargs: Dict[str, Any]) -> None:
    with pytest.raises(SaynaValidationError):
        WebhookReceiver(SECRET, **kwargs)


def test_secret_never_in_repr() -> None:
    receiver = WebhookReceiver(SECRET, dedupe=True)
    assert SECRET not in repr(receiver)
    assert repr(receiver) == "WebhookReceiver(tolerance_seconds=300, dedupe=True)"


def test_error_hierarchy_and_pickling() -> None:
    error = rejection(make_receiver(), {})
    assert isinstance(error, SaynaError)
    assert isinstance(error, ValueError)
    # Not a bad argument: an `except SaynaValidationError` for those must not swallow it.
    assert not isinstance(error, SaynaValidationError)
    assert not issubclass(WebhookVerificationError, SaynaValidationError)
    clone = pickle.loads(pickle.dumps(error))
    assert isinstance(clone, WebhookVerificationError)
    assert clone.reason == error.reason
    assert str(clone) == str(error)


# --- aiohttp helper, over loopback --------------------------------------------------------


@pytest.fixture
async def hook_client() -> AsyncIterator[TestClient[web.Request, web.Application]]:
    receiver = make_receiver()

    async def sip_hook(request: web.Request) -> web.Response:
        try:
            event = await receive_aiohttp(receiver, request)
        except WebhookVerificationError as exc:
            status = 400 if exc.reason == "invalid_body" else 401
            return web.Response(status=status, text=exc.reason)
        return web.json_response({"room": event.room.name})

    app = web.Application()
    app.router.add_post("/hook", sip_hook)
    async with TestClient(TestServer(app)) as client:
        yield client


async def test_receive_aiohttp_accepts_a_signed_request(
    hook_client: TestClient[web.Request, web.Application],
) -> None:
    response = await hook_client.post("/hook", data=BODY, headers=signed_headers())
    assert response.status == 200
    assert await response.json() == {"room": "sip-call-42"}


async def test_receive_aiohttp_verifies_the_raw_bytes(
    hook_client: TestClient[web.Request, web.Application],
) -> None:
    pretty = json.dumps(PAYLOAD, indent=1).encode()
    response = await hook_client.post("/hook", data=pretty, headers=signed_headers(pretty))
    assert response.status == 200
    response = await hook_client.post("/hook", data=BODY, headers=signed_headers(pretty))
    assert response.status == 401
    assert await response.text() == "signature_mismatch"


async def _post_raw(port: int, event_id: bytes, signature: str) -> bytes:
    """POST BODY with raw header bytes (a client may send any byte in a header value)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /hook HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(BODY)).encode() + b"\r\n"
        b"X-Sayna-Signature: " + signature.encode() + b"\r\n"
        b"X-Sayna-Timestamp: " + str(NOW).encode() + b"\r\n"
        b"X-Sayna-Event-Id: " + event_id + b"\r\n\r\n" + BODY
    )
    try:
        return await reader.read()
    finally:
        writer.close()


async def test_a_header_byte_outside_utf8_is_verified_as_sent(
    hook_client: TestClient[web.Request, web.Application],
) -> None:
    """aiohttp decodes such a byte as a lone surrogate; signing it raised
    UnicodeEncodeError, a 500 for anyone who could reach the hook. The bytes on the wire
    are what is signed: a right signature is accepted, a wrong one refused (401)."""
    port = hook_client.server.port
    assert port is not None
    event_id = b"EV_\xff1"
    digest = hmac.new(
        SECRET.encode(), b"v1:%d:%s:%s" % (NOW, event_id, BODY), hashlib.sha256
    ).hexdigest()
    answer = await _post_raw(port, event_id, f"v1={digest}")
    assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
    answer = await _post_raw(port, b"EV_\xfe1", f"v1={digest}")
    assert answer.startswith(b"HTTP/1.1 401"), answer[:80]
    assert answer.endswith(b"signature_mismatch")


def test_a_lone_surrogate_in_a_header_is_a_mismatch() -> None:
    headers = {**signed_headers(), "X-Sayna-Event-Id": "EV_\ud8001"}
    assert rejection(make_receiver(), headers).reason == "signature_mismatch"


def test_a_replay_at_the_windows_edge_is_refused_though_the_clock_moved_on() -> None:
    """The window check and the memory each read the clock: a replay that passed the
    first just inside the window had its first delivery forgotten by the second, and
    was accepted as new."""
    now = [float(NOW)]

    def clock() -> float:
        now[0] += 0.0005  # the clock moves between two reads of one request
        return now[0]

    receiver = WebhookReceiver(SECRET, clock=clock)
    receiver.receive(signed_headers(), BODY)
    now[0] = NOW + 300 - 0.0007  # the replay's window check passes, just
    assert rejection(receiver, signed_headers()).reason == "duplicate_event"


def test_a_secret_ending_in_an_information_separator_keeps_it() -> None:
    """Sayna trims Unicode white space (Rust's ``str::trim``); Python's ``strip()`` also
    took U+001C-U+001F, so such a secret never verified."""
    secret = SECRET + "\x1f"
    key = secret.encode()
    digest = hmac.new(key, b"v1:%d:%s:%s" % (NOW, EVENT_ID.encode(), BODY), hashlib.sha256)
    assert sign_payload(f" {secret}\u3000", str(NOW), EVENT_ID, BODY) == f"v1={digest.hexdigest()}"
    receiver = WebhookReceiver(secret, clock=lambda: NOW)
    receiver.receive(signed_headers(secret=secret), BODY)


def _utf8_signed_wire(event_id: str) -> List[Tuple[bytes, bytes]]:
    """Headers as Sayna sends them: the event id's UTF-8 bytes, signed over those bytes."""
    digest = hmac.new(
        SECRET.encode(), b"v1:%d:%s:%s" % (NOW, event_id.encode(), BODY), hashlib.sha256
    ).hexdigest()
    return [
        (b"X-Sayna-Signature", f"v1={digest}".encode()),
        (b"X-Sayna-Timestamp", str(NOW).encode()),
        (b"X-Sayna-Event-Id", event_id.encode()),
    ]


def test_a_non_ascii_event_id_verifies_in_every_header_form() -> None:
    """Raw header bytes (ASGI) were decoded as latin-1 and text headers a framework
    decoded as latin-1 (Starlette, http.server) were signed as UTF-8 of that text: a
    signature Sayna made over the UTF-8 bytes was refused."""
    wire = _utf8_signed_wire("EV_caf\u00e9")
    make_receiver().verify(wire, BODY)
    as_latin1 = {name.decode(): value.decode("latin-1") for name, value in wire}
    make_receiver().verify(as_latin1, BODY)
    as_aiohttp = {name.decode(): value.decode("utf-8", "surrogateescape") for name, value in wire}
    make_receiver().verify(as_aiohttp, BODY)
    tampered = [*wire[:2], (b"X-Sayna-Event-Id", "EV_caf\u00e8".encode())]
    assert rejection(make_receiver(), tampered).reason == "signature_mismatch"


def test_a_secret_that_is_no_valid_text_is_refused_up_front() -> None:
    """A lone surrogate (``os.environ``'s form of a byte that is not UTF-8) made every
    delivery a signature_mismatch that blamed the sender."""
    with pytest.raises(SaynaValidationError, match="not valid text") as info:
        WebhookReceiver(SECRET + "\udcff", clock=lambda: NOW)
    assert SECRET not in str(info.value)
