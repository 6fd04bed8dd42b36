"""The local server against hostile clients (issue 13, items 10-15): real sockets on loopback."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import io
import json
import logging
import time
from typing import Any, Optional

import aiohttp
import pytest
from aiohttp import web

from helpers.serve import sayna_serve
from helpers.waiting import eventually
from sayna_client.server import LocalServer, SipHook
from sayna_client.server.livekit import access_token

# --- LiveKit webhook secret (item 12) -------------------------------------------------


def livekit_webhook_token(api_key: str, api_secret: str, body: bytes) -> str:
    """A LiveKit webhook JWT: an access token with the body's ``sha256`` claim."""
    header, claims_b64, _ = access_token(api_key, api_secret, "", "", "").split(".")
    claims = json.loads(base64.urlsafe_b64decode(claims_b64 + "=="))
    claims["sha256"] = base64.b64encode(hashlib.sha256(body).digest()).decode()
    encoded = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    signing = f"{header}.{encoded}"
    signature = hmac.new(api_secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + base64.urlsafe_b64encode(signature).rstrip(b"=").decode()


WEBHOOK_EVENT = json.dumps({"event": "room_started", "id": "EV_1"}).encode()


async def post_webhook(
    http: aiohttp.ClientSession, url: str, key: str, secret: str, body: bytes = WEBHOOK_EVENT
) -> int:
    token = livekit_webhook_token(key, secret, body)
    async with http.post(
        url + "/livekit/webhook", data=body, headers={"Authorization": token}
    ) as response:
        return response.status


async def test_livekit_webhook_refuses_the_well_known_dev_secret(
    http: aiohttp.ClientSession,
) -> None:
    async with LocalServer() as server:
        assert server.livekit_api_secret not in ("", "secret")
        assert len(server.livekit_api_secret) >= 32
        assert await post_webhook(http, server.url, "devkey", "secret") == 401
        assert await post_webhook(http, server.url, server.livekit_api_key, "secret") == 401
        assert (
            await post_webhook(http, server.url, server.livekit_api_key, server.livekit_api_secret)
            == 200
        )
    async with LocalServer() as other:
        assert other.livekit_api_secret != server.livekit_api_secret


async def test_livekit_key_and_secret_are_configurable(http: aiohttp.ClientSession) -> None:
    secret = "a-livekit-secret-of-some-length"
    async with LocalServer(livekit_api_key="APIkey", livekit_api_secret=secret) as server:
        assert (server.livekit_api_key, server.livekit_api_secret) == ("APIkey", secret)
        assert await post_webhook(http, server.url, "APIkey", secret) == 200
        assert await post_webhook(http, server.url, "APIother", secret) == 401


async def test_sayna_serve_takes_livekit_credentials_from_flags_and_environment(
    http: aiohttp.ClientSession,
) -> None:
    secret = "env-livekit-secret-0123456789"
    env = {"LIVEKIT_API_KEY": "APIenv", "LIVEKIT_API_SECRET": secret}
    async with sayna_serve(env=env) as served:
        assert "LiveKit API key: APIenv" in served.banner
        assert secret not in served.banner
        assert await post_webhook(http, served.url, "APIenv", secret) == 200
        assert await post_webhook(http, served.url, "devkey", "secret") == 401
    flag_only = {"LIVEKIT_API_KEY": "", "LIVEKIT_API_SECRET": ""}
    async with sayna_serve("--livekit-api-key", "APIflag", env=flag_only) as served:
        assert "LiveKit API key: APIflag" in served.banner
        assert await post_webhook(http, served.url, "APIflag", "secret") == 401  # random secret


# --- raw sockets ---------------------------------------------------------------------


async def raw_request(
    port: int, data: bytes, *, timeout: float = 20.0, close_write: bool = False
) -> bytes:
    """Send ``data`` on a fresh connection and read until the server closes (or the
    response's head and body arrived); fails if nothing arrives within ``timeout``."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        if close_write:
            writer.write_eof()
        return await asyncio.wait_for(_read_response(reader), timeout)
    finally:
        writer.close()


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head + await reader.readexactly(length)


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


# --- authenticate before reading bodies (item 10) -------------------------------------

TWO_MIB = 2 * 1024 * 1024


async def test_unauthenticated_bodies_are_neither_read_nor_kept(
    auth_server: LocalServer, http: aiohttp.ClientSession
) -> None:
    body = b"x" * (TWO_MIB - 1024)
    for path in ("/speak", "/sip/hooks", "/_local/rooms/r/audio", "/livekit/token"):
        async with http.post(auth_server.url + path, data=io.BytesIO(body)) as response:
            assert response.status == 401
    assert len(auth_server.records.requests) == 4
    assert all(record.body == b"" for record in auth_server.records.requests)
    assert all(record.status == 401 for record in auth_server.records.requests)


async def test_unauthenticated_request_is_answered_without_waiting_for_its_body(
    auth_server: LocalServer,
) -> None:
    # Headers announce 2 MiB that never come: the 401 must not wait for them.
    head = (
        b"POST /speak HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (TWO_MIB - 1)
    )
    response = await raw_request(auth_server.port, head)
    assert status_of(response) == 401
    assert b"missing_auth_header" in response


async def test_a_declared_oversized_body_is_refused_before_it_is_read(
    auth_server: LocalServer,
) -> None:
    head = (
        b"POST /speak HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer test-key\r\nContent-Length: %d\r\n\r\n" % (TWO_MIB + 1)
    )
    response = await raw_request(auth_server.port, head)
    assert status_of(response) == 413
    assert auth_server.records.requests[-1].body == b""


async def test_records_are_bounded(http: aiohttp.ClientSession) -> None:
    async with LocalServer(keep_records=5, keep_audio=1000) as server:
        for index in range(12):
            async with http.post(server.url + "/sip/hooks", json={"hooks": []}) as response:
                assert response.status == 200, index
        assert len(server.records.requests) == 5
        async with http.ws_connect(server.ws_url) as ws:
            for index in range(12):
                await ws.send_str(json.dumps({"type": "speak", "text": f"t{index}"}))
            await ws.send_bytes(b"\0" * 3000)
            record = server.records.last_session
            await server.records.wait_for(lambda: record.audio_frames == 1)
        assert record.text_frames == 12
        assert len(record.raw_text_frames) == len(record.messages) == 5
        assert record.sent_events == 13  # an error for each frame (no config yet)
        assert len(record.sent) == 5
        assert len(record.audio) == 1000
        assert record.audio_bytes == 3000


# --- malformed JSON: 400/422 as axum, never 500 (item 15) -----------------------------

MALFORMED = [
    b"",
    b"{",
    b'{"a',
    b'{"a":',
    b'{"text": "\\x"}',
    b'{"text": "\x01"}',
    b'{"text": "\\ud800"}',
    b'{"text": "\\udc00x", "tts_config": {}}',
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"text": ' + b"9" * 5000 + b"}",
    b'{"text": 1e999}',
    b'{"text": NaN}',
    b'{"text": -Infinity}',
    b"\xff\xfe{}",
    b'{"text": "\xc3\x28"}',
    b"null",
    b"[]",
    b'"just a string"',
    b'{"hooks": [{"host": 1}]}',
    b'{"hooks": ' + b"[" * 200 + b"]" * 200 + b"}",
    b'{"room_name": "r", "participant_name": "p", "participant_identity": "\\ud83d"}',
    b'{"kind": "audio", "count": "x"}',
    b'{"identity": "a", "attributes": [1, 2]}',
    b'{"identity": "a", "audio": "yes"}',
    b'{"ready_delay": "soon"}',
    b'{"close_code": 1e308}',
    b"{}" + b" " * 10 + b"x",
    '{"text": "\u0661"}'.encode(),
    b'{"text": 1\xd9\xa3}',
]

JSON_ROUTES = [
    ("POST", "/speak"),
    ("POST", "/livekit/token"),
    ("DELETE", "/livekit/participant"),
    ("POST", "/livekit/participant/mute"),
    ("POST", "/sip/call"),
    ("POST", "/sip/transfer"),
    ("POST", "/sip/hooks"),
    ("DELETE", "/sip/hooks"),
    ("POST", "/livekit/webhook"),
    ("POST", "/_local/rooms/r/participants"),
    ("POST", "/_local/rooms/r/sip"),
    ("POST", "/_local/rooms/r/data"),
    ("PUT", "/_local/faults"),
    ("POST", "/_local/tts-failures"),
    ("POST", "/_local/bench/nobody/burst"),
]


@pytest.mark.parametrize("authorized", [True, False])
async def test_malformed_json_never_gets_a_500(
    auth_server: LocalServer, http: aiohttp.ClientSession, authorized: bool
) -> None:
    headers = {"Content-Type": "application/json"}
    if authorized:
        headers["Authorization"] = "Bearer test-key"
    statuses: dict[int, int] = {}
    for method, path in JSON_ROUTES:
        for body in MALFORMED:
            async with http.request(
                method, auth_server.url + path, data=body, headers=headers
            ) as response:
                text = await response.text(errors="replace")
                assert response.status < 500 or (
                    path == "/speak" and response.status == 500 and "synthesize" in text
                ), (method, path, body[:40], response.status, text[:200])
                statuses[response.status] = statuses.get(response.status, 0) + 1
    assert statuses
    if authorized:
        assert 400 in statuses
        assert 422 in statuses


async def test_serde_wording_for_the_new_rejections(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    headers = {"Content-Type": "application/json"}
    cases = [
        (b"[" * 200 + b"]" * 200, 400, "recursion limit exceeded at line 1 column 129"),
        (b'{"text": 1e999}', 400, "number out of range at line 1 column 14"),
        (b'{"text": "\\ud800"}', 400, "lone leading surrogate in hex escape"),
        (
            b'{"text": ' + b"9" * 30 + b', "tts_config": {}}',
            422,
            "text: invalid type: floating point `1" + "0" * 30 + "`, expected a string",
        ),
    ]
    for body, status, wording in cases:
        async with http.post(server.url + "/speak", data=body, headers=headers) as response:
            assert response.status == status, body[:30]
            assert wording in await response.text()


async def test_malformed_frames_get_errors_and_the_session_goes_on(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    from helpers.wire import configure

    async with http.ws_connect(server.ws_url) as ws:
        for body in MALFORMED:
            text = body.decode("utf-8", errors="replace")
            await ws.send_str(text)
            reply = await asyncio.wait_for(ws.receive_json(), 10)
            assert reply["type"] == "error", (body[:40], reply)
            assert reply["message"].startswith("Invalid message format: "), reply
        await configure(ws)
    assert server.records.last_session.text_frames == len(MALFORMED) + 1


async def test_stream_id_is_escaped_in_content_disposition(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    from helpers.wire import config, configure

    stream_id = 'x"; filename=evil.sh; a="\r\nX-Injected: 1\\'
    async with http.ws_connect(server.ws_url) as ws:
        await configure(
            ws, config(stream_id=stream_id, livekit={"room_name": "r", "enable_recording": True})
        )
        await ws.send_bytes(b"\0\1" * 1600)
        await server.records.wait_for(lambda: server.records.last_session.audio_bytes)
    from urllib.parse import quote

    async with http.get(server.url + "/recording/" + quote(stream_id, safe="")) as response:
        assert response.status == 200
        assert "X-Injected" not in response.headers
        disposition = response.headers["Content-Disposition"]
    assert disposition.startswith('attachment; filename="x\\"; filename=evil.sh; a=\\"__X')
    assert "filename*=UTF-8''x%22%3B%20filename%3Devil.sh" in disposition


async def test_fault_values_are_type_checked(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    from sayna_client.server import Faults

    for body in (
        {"ready_delay": "soon"},
        {"ready_delay": 1e9},
        {"never_send_ready": 1},
        {"close_code": "1011"},
        {"drop_connection_after_frames": -1},
        {"reject_config_error": 5},
    ):
        async with http.put(server.url + "/_local/faults", json=body) as response:
            assert response.status == 400, body
            assert "must be" in (await response.json())["error"]
    assert server.faults == Faults()
    with pytest.raises(ValueError, match="ready_delay"):
        Faults(ready_delay="soon")  # type: ignore[arg-type]


async def test_half_sent_requests_time_out(http: aiohttp.ClientSession) -> None:
    async with LocalServer(request_timeout=0.5) as server:
        # headers that never end
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 20) == b""  # closed by the server
        writer.close()
        # a body that never arrives
        head = (
            b"POST /sip/hooks HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"
        )
        response = await raw_request(server.port, head)
        assert status_of(response) == 408
        # and the server still serves
        async with http.get(server.url + "/") as ok:
            assert ok.status == 200


# --- /_local control routes (item 11) ---------------------------------------------------


async def test_control_routes_refuse_cross_origin_and_foreign_hosts(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    await server.inject_participant("r", "agent-peer")
    url = server.url + "/_local/rooms/r/data"
    # What a web page can send without a preflight: a text/plain POST with its Origin.
    page = {"Origin": "https://evil.example", "Content-Type": "text/plain"}
    async with http.post(url, data='{"message": "hi"}', headers=page) as response:
        assert response.status == 403
        assert "cross-origin" in (await response.json())["error"]
    async with http.post(
        url, json={"message": "hi"}, headers={"Sec-Fetch-Site": "cross-site"}
    ) as r:
        assert r.status == 403
    # DNS rebinding: the page's own name resolving to 127.0.0.1.
    rebound = {
        "Host": f"evil.example:{server.port}",
        "Origin": f"http://evil.example:{server.port}",
    }
    async with http.put(
        server.url + "/_local/faults", json={"ignore_pings": True}, headers=rebound
    ) as r:
        assert r.status == 403
        assert "Host" in (await r.json())["error"]
    assert server.faults.ignore_pings is False
    assert server.records.data_packets == []
    # The project's own callers: loopback addresses and localhost, with or without Origin.
    for host in (f"127.0.0.1:{server.port}", f"localhost:{server.port}", "localhost"):
        async with http.get(server.url + "/_local/faults", headers={"Host": host}) as r:
            assert r.status == 200, host
    same = {"Origin": f"http://127.0.0.1:{server.port}"}
    async with http.post(url, json={"message": "hi"}, headers=same) as response:
        assert response.status == 200
    # Other routes are the real server's: no such checks there.
    async with http.get(server.url + "/voices", headers={"Origin": "https://evil.example"}) as r:
        assert r.status == 200


async def test_control_routes_need_the_api_key_and_can_be_turned_off(
    http: aiohttp.ClientSession,
) -> None:
    async with LocalServer(api_key="k") as server:
        async with http.get(server.url + "/_local/faults") as response:
            assert response.status == 401
        async with http.get(
            server.url + "/_local/faults", headers={"Authorization": "Bearer k"}
        ) as response:
            assert response.status == 200
    async with LocalServer(control=False) as server:
        for path in ("/_local/faults", "/_local/bench/sessions"):
            async with http.get(server.url + path) as response:
                assert response.status == 404
    async with sayna_serve("--no-control") as served:
        async with http.get(served.url + "/_local/faults") as response:
            assert response.status == 404
        async with http.get(served.url + "/voices") as response:
            assert response.status == 200


# --- SIP hooks: no redirects, bounded replies, allow-list, no credentials in logs (item 13)

HOOK_SECRET = "a-very-long-hook-secret"


class HostileHooks:
    """Small aiohttp servers on loopback: one redirecting, one replying without end, one
    receiving whatever reaches it."""

    def __init__(self) -> None:
        self.reached: list[str] = []
        self.streamed = 0
        self.stream_total = 100 * 1024 * 1024
        self.runner: Optional[web.AppRunner] = None
        self.base = ""

    async def redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(self.base + "/target")

    async def target(self, request: web.Request) -> web.Response:
        self.reached.append(request.path)
        return web.Response(status=204)

    async def endless(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        response = web.StreamResponse()
        response.content_length = self.stream_total
        await response.prepare(request)
        chunk = b"x" * 65536
        try:
            while self.streamed < self.stream_total:
                await response.write(chunk)
                self.streamed += len(chunk)
        except (ConnectionError, RuntimeError):
            pass
        return response

    async def __aenter__(self) -> HostileHooks:
        app = web.Application()
        app.router.add_post("/redirect", self.redirect)
        app.router.add_post("/target", self.target)
        app.router.add_post("/endless", self.endless)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.base = f"http://127.0.0.1:{self.runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.runner is not None
        await self.runner.cleanup()


async def deliver_to(server: LocalServer, http: aiohttp.ClientSession, url: str, host: str) -> Any:
    async with http.post(
        server.url + "/sip/hooks", json={"hooks": [{"host": host, "url": url, "auth_id": ""}]}
    ) as response:
        assert response.status == 200, await response.text()
    count = len(server.records.webhooks)
    await server.inject_sip_participant(
        "room-" + host, "caller", from_phone_number="+1", to_phone_number="+2", sip_host=host
    )
    return await server.records.wait_for(
        lambda: len(server.records.webhooks) > count and server.records.webhooks[-1].done, 20
    )


async def test_sip_hooks_follow_no_redirect_and_read_a_bounded_reply(
    http: aiohttp.ClientSession,
) -> None:
    async with HostileHooks() as hostile, LocalServer(hook_secret=HOOK_SECRET) as server:
        await deliver_to(server, http, hostile.base + "/redirect", "a.test")
        delivery = server.records.webhooks[-1]
        assert delivery.status == 307
        assert hostile.reached == []
        await deliver_to(server, http, hostile.base + "/endless", "b.test")
        delivery = server.records.webhooks[-1]
        assert delivery.status == 200
        assert delivery.error is None
        # The reply was dropped after 64 KiB: the sender got no further than its buffers.
        assert hostile.streamed < hostile.stream_total // 4


async def test_sip_hook_hosts_allow_list(http: aiohttp.ClientSession) -> None:
    async with (
        HostileHooks() as hostile,
        LocalServer(
            hook_secret=HOOK_SECRET,
            sip_hook_hosts=["localhost"],
            sip_hooks=[SipHook("fixed.test", hostile.base + "/target")],
        ) as server,
    ):
        body = {"hooks": [{"host": "x.test", "url": hostile.base + "/target", "auth_id": ""}]}
        async with http.post(server.url + "/sip/hooks", json=body) as response:
            assert response.status == 400
            assert "Hook URL host '127.0.0.1' is not allowed" in (await response.json())["error"]
        await server.inject_sip_participant(
            "r", "c", from_phone_number="+1", to_phone_number="+2", sip_host="fixed.test"
        )
        (delivery,) = await server.records.wait_for(
            lambda: [w for w in server.records.webhooks if w.done]
        )
        assert delivery.status is None
        assert delivery.error is not None
        assert "not allowed" in delivery.error
        assert hostile.reached == []
        allowed = hostile.base.replace("127.0.0.1", "localhost") + "/target"
        await deliver_to(server, http, allowed, "ok.test")
        assert server.records.webhooks[-1].status == 204
        assert hostile.reached == ["/target"]
    with pytest.raises(ValueError, match="list of host names"):
        LocalServer(sip_hook_hosts="localhost")


async def test_hook_url_credentials_stay_out_of_logs(
    http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with HostileHooks() as hostile, LocalServer(hook_secret=HOOK_SECRET) as server:
        port = hostile.base.rsplit(":", 1)[1]
        answered = f"http://hookuser:pa55w0rd-x@127.0.0.1:{port}/redirect?token=t0ken-y"
        await deliver_to(server, http, answered, "a.test")
        unreachable = "http://hookuser:pa55w0rd-x@127.0.0.1:1/hook?token=t0ken-y"
        await deliver_to(server, http, unreachable, "b.test")
        assert server.records.webhooks[-1].error
        assert "t0ken-y" not in server.records.webhooks[-1].error
    # Ours only: the hostile receiver's own access log shows what it received.
    text = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("sayna_client"))
    assert "SIP webhook to http://127.0.0.1:" in text
    assert "pa55w0rd-x" not in text
    assert "t0ken-y" not in text


# --- large messages: bounded, and the loop keeps turning (item 14) -----------------------


class StallWatch:
    """Measures the longest stretch this event loop's thread spent working without
    letting a 5 ms sleep wake (the server runs on this loop too).

    ``worst`` is in CPU seconds of this thread (``time.thread_time()``) between the
    probe's sleep and its wake, not in wall time: a synchronous parse holding the loop
    burns its whole stall as CPU, while a loaded machine that deschedules the process
    stretches the wall time only. ``worst_wall`` is the wall-clock lateness, shown in
    the assertion message.
    """

    def __init__(self) -> None:
        self.worst = 0.0
        self.worst_wall = 0.0
        self.ticks = 0
        self._task: Optional[asyncio.Task[None]] = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start, cpu = loop.time(), time.thread_time()
            await asyncio.sleep(0.005)  # the probe: how much work ran before it woke?
            self.worst = max(self.worst, time.thread_time() - cpu)
            self.worst_wall = max(self.worst_wall, loop.time() - start - 0.005)
            self.ticks += 1

    async def __aenter__(self) -> StallWatch:
        self._task = asyncio.ensure_future(self._run())
        await eventually(lambda: self.ticks >= 2, what="the watch is ticking")
        self.worst = self.worst_wall = 0.0
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()

    def __str__(self) -> str:
        return f"loop held for {self.worst:.3f} CPU s at once ({self.worst_wall:.3f} s wall)"


# Generous on purpose: the mechanism keeps stalls to milliseconds (benchmarks/server_stall.py
# measures them); before it, these inputs held the loop for many seconds of CPU. Measured
# in CPU time, so a loaded machine does not stretch it.
STALL_LIMIT = 1.0


async def test_huge_json_messages_neither_freeze_the_loop_nor_kill_the_session(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    from helpers.wire import configure

    dense = '{"type":"speak","text":"hi","x":[' + ",".join(["1"] * 1_900_000) + "]}"
    strings = (
        '{"type":"speak","text":"hi","x":[' + ",".join(['"' + "b" * 150 + '"'] * 19_000) + "]}"
    )
    async with http.ws_connect(server.ws_url) as ws, StallWatch() as watch:
        await ws.send_str(dense)
        reply = await asyncio.wait_for(ws.receive_json(), 30)
        assert "more than 20000 JSON values" in reply["message"]
        await ws.send_str(strings)
        reply = await asyncio.wait_for(ws.receive_json(), 30)
        assert reply["message"].startswith("Audio processing is disabled")  # parsed, valid
        await configure(ws)
    assert watch.worst < STALL_LIMIT, str(watch)


async def test_websocket_messages_are_bounded(http: aiohttp.ClientSession) -> None:
    async with LocalServer() as server, StallWatch() as watch:
        async with http.ws_connect(server.ws_url) as ws:
            try:
                await ws.send_str("[" + "1," * (8 * 1024 * 1024) + "1]")  # 16 MiB
                message = await asyncio.wait_for(ws.receive(), 30)
                assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
                assert ws.close_code == 1009
            except (aiohttp.ClientError, ConnectionError):
                pass  # refused while the rest was still being sent
        async with http.get(server.url + "/") as response:
            assert response.status == 200
    assert watch.worst < STALL_LIMIT, str(watch)
    async with (
        LocalServer(max_message_bytes=8 * 1024 * 1024) as big,
        http.ws_connect(big.ws_url) as ws,
    ):
        await ws.send_bytes(bytes(6 * 1024 * 1024))
        record = await big.records.wait_for(lambda: big.records.sessions)
        await big.records.wait_for(lambda: record[0].audio_bytes == 6 * 1024 * 1024, 30)
    with pytest.raises(ValueError, match="max_message_bytes"):
        LocalServer(max_message_bytes=65 * 1024 * 1024)


async def test_a_large_rest_body_does_not_freeze_the_loop(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    dense = b'{"hooks":[' + b",".join([b"1"] * 950_000) + b"]}"
    hook = '{"host":"h%d.test","url":"http://127.0.0.1:9/x","auth_id":""}'
    many = ('{"hooks":[' + ",".join(hook % i for i in range(1001)) + "]}").encode()
    headers = {"Content-Type": "application/json"}
    async with StallWatch() as watch:
        async with http.post(
            server.url + "/sip/hooks", data=io.BytesIO(dense), headers=headers
        ) as response:
            assert response.status == 400
            assert "more than 20000 JSON values" in await response.text()
        async with http.post(server.url + "/sip/hooks", data=many, headers=headers) as response:
            assert response.status == 400
            assert "at most 1000 runtime hooks" in (await response.json())["error"]
    assert watch.worst < STALL_LIMIT, str(watch)


def test_sayna_serve_refuses_out_of_range_options(capsys: pytest.CaptureFixture[str]) -> None:
    from sayna_client.server.cli import serve_main

    assert serve_main(["--port", "0", "--max-message-bytes", "0"]) == 2
    assert "max_message_bytes must be from 1" in capsys.readouterr().err


async def test_recordings_kept_for_download_are_bounded(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    from helpers.wire import config, configure
    from sayna_client.server.recording import MAX_RECORDINGS

    for index in range(MAX_RECORDINGS + 2):
        async with http.ws_connect(server.ws_url) as ws:
            livekit = {"room_name": f"r{index}", "enable_recording": True}
            await configure(ws, config(stream_id=f"rec-{index}", livekit=livekit))
            await ws.send_bytes(b"\0\1" * 800)
            record = server.records.last_session
            await server.records.wait_for(lambda record=record: record.audio_bytes)
    for index, expected in ((0, 404), (1, 404), (2, 200), (MAX_RECORDINGS + 1, 200)):
        async with http.get(f"{server.url}/recording/rec-{index}") as response:
            assert response.status == expected, index
