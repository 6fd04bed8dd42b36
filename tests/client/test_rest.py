"""Every REST method against the local server: what reached the wire and what came back."""

from __future__ import annotations

import asyncio

import aiohttp
import jwt
import pytest
from aiohttp import web

from sayna_client import (
    HealthResponse,
    LiveKitConfig,
    RetryPolicy,
    SaynaAuthenticationError,
    SaynaBadRequestError,
    SaynaClient,
    SaynaConnectionError,
    SaynaHttpError,
    SaynaInternalServerError,
    SaynaMethodNotAllowedError,
    SaynaNotFoundError,
    SaynaRateLimitError,
    SaynaTimeoutError,
    SaynaValidationError,
    SipCallSipConfig,
    SipHook,
    Timeouts,
    TrackSubscribedMessage,
    TTSConfig,
    VoiceDescriptor,
)
from sayna_client.server import LocalServer

from .conftest import make_client, stt, tts


async def test_health(client: SaynaClient, server: LocalServer) -> None:
    health = await client.health()
    assert isinstance(health, HealthResponse)
    assert health.status == "OK"
    assert server.records.requests_to("/", "GET")


async def test_get_voices(client: SaynaClient) -> None:
    voices = await client.get_voices()
    assert voices
    for provider, items in voices.items():
        assert isinstance(provider, str)
        assert items
        assert all(isinstance(v, VoiceDescriptor) for v in items)
        assert all(v.id and v.name for v in items)


async def test_speak_rest_returns_audio_and_headers(
    client: SaynaClient, server: LocalServer
) -> None:
    config = TTSConfig(
        provider="deepgram", voice_id="aura", audio_format="linear16", sample_rate=16000
    )
    audio, headers = await client.speak_rest("Hello there, world", config)
    assert headers["Content-Type"] == "audio/pcm"
    assert headers["x-audio-format"] == "linear16"
    assert headers["x-sample-rate"] == "16000"
    assert int(headers["Content-Length"]) == len(audio) > 16000 // 2  # > 0.25 s
    (request,) = server.records.requests_to("/speak", "POST")
    assert request.json["text"] == "Hello there, world"
    assert request.json["tts_config"]["sample_rate"] == 16000
    assert request.headers["Content-Type"] == "application/json"


async def test_speak_rest_mulaw_and_wav_content_types(client: SaynaClient) -> None:
    _audio, headers = await client.speak_rest("hi", tts(audio_format="mulaw", sample_rate=8000))
    assert headers["Content-Type"] == "audio/basic"
    wav, headers = await client.speak_rest("hi", tts(audio_format="wav"))
    assert headers["Content-Type"] == "audio/wav"
    assert wav[:4] == b"RIFF"


async def test_speak_rest_validates_before_sending(
    client: SaynaClient, server: LocalServer
) -> None:
    with pytest.raises(SaynaValidationError, match="text must not be empty"):
        await client.speak_rest("   ", tts())
    with pytest.raises(SaynaValidationError, match="tts_config must be a TTSConfig"):
        await client.speak_rest("hi", {"provider": "x"})  # type: ignore[arg-type]
    assert not server.records.requests_to("/speak")


async def test_server_errors_are_typed_with_body(client: SaynaClient) -> None:
    with pytest.raises(SaynaBadRequestError) as info:
        await client.speak_rest("hi", TTSConfig(provider="nope"))
    err = info.value
    assert err.status_code == 400
    assert err.body == {"error": "Unsupported provider: nope"}
    assert err.error == "Unsupported provider: nope"
    assert "Unsupported provider: nope" in str(err)
    assert err.endpoint == "POST /speak"


async def test_auth_header_and_401(auth_server: LocalServer) -> None:
    async with make_client(auth_server) as anonymous:
        with pytest.raises(SaynaAuthenticationError) as info:
            await anonymous.get_voices()
        assert info.value.status_code == 401
        assert info.value.code == "missing_auth_header"
        assert (await anonymous.health()).status == "OK"  # GET / needs no key
    async with make_client(auth_server, api_key="wrong") as wrong:
        with pytest.raises(SaynaAuthenticationError, match="Invalid API secret"):
            await wrong.get_voices()
    async with make_client(auth_server, api_key="test-key") as good:
        assert await good.get_voices()
    request = auth_server.records.requests_to("/voices")[-1]
    assert request.headers["Authorization"] == "Bearer test-key"


async def test_api_key_from_environment(
    auth_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SAYNA_API_KEY", "test-key")
    async with make_client(auth_server) as c:
        assert await c.get_voices()


async def test_livekit_token_is_a_verifiable_jwt(client: SaynaClient, server: LocalServer) -> None:
    token = await client.get_livekit_token("room-1", "Jane Doe", "user-123")
    assert token.room_name == "room-1"
    assert token.participant_identity == "user-123"
    assert token.livekit_url == "ws://127.0.0.1:7880"
    assert token.token not in repr(token)
    secret = server.livekit_api_secret
    claims = jwt.decode(token.token, secret, algorithms=["HS256"], options={"verify_aud": False})
    assert claims["sub"] == "user-123"
    assert claims["video"]["room"] == "room-1"
    (request,) = server.records.requests_to("/livekit/token")
    assert request.json == {
        "room_name": "room-1",
        "participant_name": "Jane Doe",
        "participant_identity": "user-123",
    }
    with pytest.raises(SaynaValidationError, match="participant_identity"):
        await client.get_livekit_token("room", "name", " ")


@pytest.mark.parametrize("name", [".", "..", "a/..", "%2E", "..."])
async def test_rooms_named_with_dots_are_reached(auth_server: LocalServer, name: str) -> None:
    """``.`` and ``..`` are room names like any other: the URL library must not read
    them as dot segments (``/livekit/rooms/..`` would be ``/livekit``)."""
    async with make_client(auth_server, api_key="test-key") as client:
        await client.get_livekit_token(name, "Jane", "jane")
        details = await client.get_livekit_room(name)
    assert details.name == name
    (sent,) = auth_server.records.requests_to(f"/livekit/rooms/{name}", "GET")
    assert sent.method == "GET"


async def test_rooms_participants_and_mute(server: LocalServer) -> None:
    async with make_client(server, livekit_config=LiveKitConfig(room_name="room a/b")) as c:
        tracks = c.events()
        await c.connect()
        assert c.livekit_room_name == "room a/b"
        await server.inject_participant("room a/b", "caller-1", name="Caller")
        track_sid = None
        async for event in tracks:
            if isinstance(event, TrackSubscribedMessage):
                track_sid = event.track.track_sid
                break
        assert track_sid
        rooms = await c.get_livekit_rooms()
        assert [r.name for r in rooms.rooms] == ["room a/b"]
        assert rooms.rooms[0].num_participants >= 1
        details = await c.get_livekit_room("room a/b")
        assert details.name == "room a/b"
        assert "caller-1" in {p.identity for p in details.participants}
        # The name holds a space and a slash: it must travel as one encoded path segment.
        assert server.records.requests[-1].path == "/livekit/rooms/room a/b"
        muted = await c.mute_livekit_participant_track("room a/b", "caller-1", track_sid, True)
        assert muted.muted is True
        assert muted.track_sid == track_sid
        with pytest.raises(SaynaNotFoundError) as info:
            await c.mute_livekit_participant_track("room a/b", "caller-1", "TR_nope", True)
        assert info.value.code == "PARTICIPANT_NOT_FOUND"
        removed = await c.remove_livekit_participant("room a/b", "caller-1")
        assert removed.status == "removed"
        assert server.records.requests_to("/livekit/participant", "DELETE")[0].json == {
            "room_name": "room a/b",
            "participant_identity": "caller-1",
        }
        with pytest.raises(SaynaNotFoundError):
            await c.get_livekit_room("missing-room")
        with pytest.raises(SaynaValidationError, match="muted"):
            await c.mute_livekit_participant_track("r", "p", "t", "yes")  # type: ignore[arg-type]


async def test_sip_hooks_roundtrip(client: SaynaClient, server: LocalServer) -> None:
    result = await client.set_sip_hooks(
        [
            SipHook(host="SIP.Example.com", url="http://127.0.0.1:9/hook", auth_id=""),
            {"host": "b.com", "url": "http://x"},
        ]
    )
    assert {h.host for h in result.hooks} == {"sip.example.com", "b.com"}
    listed = await client.get_sip_hooks()
    assert {h.host for h in listed.hooks} == {"sip.example.com", "b.com"}
    remaining = await client.delete_sip_hooks(["b.com"])
    assert [h.host for h in remaining.hooks] == ["sip.example.com"]
    assert server.records.requests_to("/sip/hooks", "DELETE")[0].json == {"hosts": ["b.com"]}
    with pytest.raises(SaynaValidationError, match="appears twice"):
        await client.set_sip_hooks([SipHook(host="a", url="u"), SipHook(host="A", url="u")])
    with pytest.raises(SaynaValidationError, match="non-empty list"):
        await client.delete_sip_hooks([])


async def test_a_sip_hook_with_an_unknown_field_is_refused(
    client: SaynaClient, server: LocalServer
) -> None:
    """A typo (``authid``) would send the hook without its tenant; an extra ``secret``
    would show in its repr: both are errors naming the fields, before anything is sent."""
    secret = "whsec-super-secret-value"
    with pytest.raises(SaynaValidationError) as built:
        SipHook(host="sip.example.com", url="https://example.com/hook", authid="tenant-1")  # type: ignore[call-arg]
    assert str(built.value) == ("SipHook has no field 'authid' (its fields: host, url, auth_id)")
    with pytest.raises(SaynaValidationError) as extra:
        SipHook(host="h.com", url="https://example.com/hook", secret=secret)  # type: ignore[call-arg]
    assert "no field 'secret'" in str(extra.value)
    assert secret not in str(extra.value)
    assert secret not in repr(extra.value)
    with pytest.raises(SaynaValidationError) as sent:
        await client.set_sip_hooks(
            [{"host": "sip.example.com", "url": "https://example.com/hook", "authid": "t"}]
        )
    assert str(sent.value) == (
        "hooks[0] is not a valid SipHook(host=..., url=..., auth_id=...): "
        "SipHook has no field 'authid' (its fields: host, url, auth_id)"
    )
    assert server.records.requests_to("/sip/hooks", "POST") == []


@pytest.mark.parametrize(
    ("hooks", "ending"),
    [
        (
            None,
            "got NoneType, e.g. [SipHook(host='sip.example.com', url='https://example.com/hook')]",
        ),
        ("sip.example.com", "got str, e.g. [SipHook("),
        (SipHook(host="a.com", url="http://x"), "got SipHook: wrap it in a list, [hook]"),
        ({"host": "a.com", "url": "http://x"}, "got dict: wrap it in a list, [hook]"),
    ],
)
async def test_set_sip_hooks_wants_a_list(
    client: SaynaClient, server: LocalServer, hooks: object, ending: str
) -> None:
    with pytest.raises(SaynaValidationError) as info:
        await client.set_sip_hooks(hooks)  # type: ignore[arg-type]
    assert str(info.value).startswith(
        "hooks must be a list of SipHook (or of dicts of their fields), "
    )
    assert ending in str(info.value)
    assert server.records.requests_to("/sip/hooks", "POST") == []


@pytest.mark.parametrize(
    ("hosts", "message"),
    [
        (5, "got int, e.g. ['sip.example.com']"),
        (3.5, "got float, e.g. ['sip.example.com']"),
        (None, "got NoneType, e.g. ['sip.example.com']"),
        (b"sip.example.com", "got bytes, e.g. ['sip.example.com']"),
        ("sip.example.com", "got str: wrap it in a list, e.g. ['sip.example.com']"),
        ({"sip.example.com": "x"}, "got dict, e.g. ['sip.example.com']"),
    ],
)
async def test_delete_sip_hooks_wants_a_list_of_names(
    client: SaynaClient, server: LocalServer, hosts: object, message: str
) -> None:
    """delete_sip_hooks(5) raised a bare TypeError, bytes said "hosts[0] must be a string,
    got int", and a dict was sent as its keys."""
    with pytest.raises(SaynaValidationError) as info:
        await client.delete_sip_hooks(hosts)  # type: ignore[arg-type]
    assert str(info.value) == f"hosts must be a list of host names, {message}"
    assert server.records.requests_to("/sip/hooks", "DELETE") == []


async def test_delete_sip_hooks_takes_any_collection_of_names(
    client: SaynaClient, server: LocalServer
) -> None:
    await client.set_sip_hooks(
        [{"host": f"{name}.example.com", "url": "http://127.0.0.1:9/hook"} for name in "abc"]
    )
    await client.delete_sip_hooks(("a.example.com",))
    remaining = await client.delete_sip_hooks({"b.example.com"})
    assert [h.host for h in remaining.hooks] == ["c.example.com"]
    sent = [r.json for r in server.records.requests_to("/sip/hooks", "DELETE")]
    assert sent == [{"hosts": ["a.example.com"]}, {"hosts": ["b.example.com"]}]


async def test_sip_hooks_response_tolerates_new_fields() -> None:
    """A server whose hook entries carry more fields (a newer version): the table is
    read, the unknown fields left out of the hooks (never a secret in a repr)."""

    async def hooks(request: web.Request) -> web.Response:
        entry = {"host": "h.com", "url": "https://x/hook", "auth_id": "t", "secret": "whsec-x1"}
        return web.json_response({"hooks": [{**entry, "source": "runtime"}], "version": 2})

    app = web.Application()
    app.router.add_get("/sip/hooks", hooks)
    runner, url = await _serve(app)
    try:
        async with SaynaClient(url, without_audio=True) as c:
            table = await c.get_sip_hooks()
    finally:
        await runner.cleanup()
    assert table.hooks == [SipHook(host="h.com", url="https://x/hook", auth_id="t")]
    assert "whsec-x1" not in repr(table)
    assert table.model_extra == {"version": 2}


async def test_config_hooks_are_read_only() -> None:
    from sayna_client.server.sip import SipHook as ServerHook

    async with (
        LocalServer(
            sip_hooks=[ServerHook(host="fixed.com", url="http://x", auth_id="", secret=None)]
        ) as srv,
        make_client(srv) as c,
    ):
        with pytest.raises(SaynaMethodNotAllowedError) as info:
            await c.set_sip_hooks([SipHook(host="fixed.com", url="http://y")])
        assert info.value.status_code == 405


async def test_sip_call_and_transfer(client: SaynaClient, server: LocalServer) -> None:
    call = await client.sip_call(
        "call-room",
        "Caller",
        "caller-1",
        "+15105550123",
        "+15551234567",
        sip_config=SipCallSipConfig(outbound_address="sip.example.com:5060", auth_password="pw"),
    )
    assert call.status == "initiated"
    assert call.room_name == "call-room"
    (request,) = server.records.requests_to("/sip/call")
    assert request.json["sip"] == {
        "outbound_address": "sip.example.com:5060",
        "auth_password": "pw",
    }
    transfer = await client.sip_transfer_rest("call-room", "caller-1", " +15550001111 ")
    assert transfer.status in {"completed", "initiated"}
    assert transfer.transfer_to == "tel:+15550001111"
    with pytest.raises(SaynaBadRequestError) as info:
        await client.sip_transfer_rest("call-room", "caller-1", "12a")
    assert info.value.code == "INVALID_PHONE_NUMBER"


async def test_recording_download(server: LocalServer) -> None:
    async with make_client(
        server,
        stream_id="rec-1",
        livekit_config=LiveKitConfig(room_name="r", enable_recording=True),
    ) as c:
        await c.connect()
        await c.on_audio_input(b"\x10\x00" * 1600)
        await server.records.wait_for(lambda: server.records.last_session.audio_bytes >= 3200)
        await c.disconnect()
        data, headers = await c.get_recording("rec-1")
        assert data
        assert headers["Content-Type"] in {"audio/ogg", "audio/wav"}
        with pytest.raises(SaynaValidationError, match="must not contain"):
            await c.get_recording("../etc")
        with pytest.raises(SaynaNotFoundError):
            await c.get_recording("never-recorded")


async def test_connection_refused_is_translated() -> None:
    async with LocalServer() as srv:
        url = srv.url
    client = SaynaClient(url, stt(), tts(), retry=RetryPolicy(max_retries=0))
    async with client:
        with pytest.raises(SaynaConnectionError) as info:
            await client.health()
        assert isinstance(info.value.__cause__, aiohttp.ClientError)


async def _flaky_app(statuses: list[int], hits: list[float], delay: float = 0.0) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        hits.append(asyncio.get_running_loop().time())
        if delay:
            await asyncio.sleep(delay)
        status = statuses.pop(0) if statuses else 200
        if status == 200:
            return web.json_response({"status": "OK"})
        headers = {"Retry-After": "0"} if status == 429 else {}
        return web.json_response({"error": f"status {status}"}, status=status, headers=headers)

    app = web.Application()
    app.router.add_get("/", handler)
    app.router.add_post("/sip/transfer", handler)
    return app


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return runner, f"http://127.0.0.1:{port}"


async def test_retries_idempotent_requests_on_429_and_5xx() -> None:
    hits: list[float] = []
    runner, url = await _serve(await _flaky_app([503, 429, 200], hits))
    try:
        policy = RetryPolicy(max_retries=3, initial_backoff=0.01, max_backoff=0.05)
        async with SaynaClient(url, stt(), tts(), retry=policy) as c:
            assert (await c.health()).status == "OK"
        assert len(hits) == 3
    finally:
        await runner.cleanup()


async def test_retries_give_up_with_the_last_error() -> None:
    hits: list[float] = []
    runner, url = await _serve(await _flaky_app([500, 500, 500, 500], hits))
    try:
        policy = RetryPolicy(max_retries=2, initial_backoff=0.01, max_backoff=0.02)
        async with SaynaClient(url, stt(), tts(), retry=policy) as c:
            with pytest.raises(SaynaInternalServerError) as info:
                await c.health()
        assert info.value.status_code == 500
        assert len(hits) == 3
    finally:
        await runner.cleanup()


async def test_non_idempotent_requests_are_not_retried() -> None:
    hits: list[float] = []
    runner, url = await _serve(await _flaky_app([429, 200], hits))
    try:
        async with SaynaClient(
            url, stt(), tts(), retry=RetryPolicy(max_retries=3, initial_backoff=0.01)
        ) as c:
            with pytest.raises(SaynaRateLimitError) as info:
                await c.sip_transfer_rest("room", "p", "+1")
        assert info.value.retry_after == 0
        assert len(hits) == 1
    finally:
        await runner.cleanup()


async def test_per_call_and_client_timeouts() -> None:
    hits: list[float] = []
    runner, url = await _serve(await _flaky_app([], hits, delay=1.0))
    try:
        no_retry = RetryPolicy(max_retries=0)
        async with SaynaClient(
            url, stt(), tts(), retry=no_retry, timeouts=Timeouts(request=0.1)
        ) as c:
            with pytest.raises(SaynaTimeoutError) as info:
                await c.health()
            assert info.value.operation == "GET /"
            assert isinstance(info.value, TimeoutError)
            with pytest.raises(SaynaTimeoutError):
                await c.health(timeout=0.05)
            assert (await c.health(timeout=5)).status == "OK"
    finally:
        await runner.cleanup()


async def test_plain_text_error_bodies_are_kept() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(status=422, text="Failed to deserialize the JSON body")

    app = web.Application()
    app.router.add_get("/voices", handler)
    runner, url = await _serve(app)
    try:
        async with SaynaClient(url, stt(), tts()) as c:
            with pytest.raises(SaynaHttpError) as info:
                await c.get_voices()
        assert info.value.status_code == 422
        assert info.value.body == "Failed to deserialize the JSON body"
        assert "Failed to deserialize" in str(info.value)
    finally:
        await runner.cleanup()
