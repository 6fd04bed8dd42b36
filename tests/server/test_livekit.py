"""The simulated LiveKit: tokens, rooms, injected events, data messages."""

from __future__ import annotations

import base64
import json
import time

import aiohttp
import pytest
from livekit.api import TokenVerifier

from helpers.wire import TTS, collect, config, configure, of_type, recv, recv_json, send
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words


@pytest.mark.filterwarnings("ignore:The HMAC key is 6 bytes long")  # LiveKit dev secret
async def test_token_is_a_verifiable_livekit_jwt(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    body = {"room_name": "room 1", "participant_name": "Ann", "participant_identity": "ann"}
    async with http.post(server.url + "/livekit/token", json=body) as response:
        assert response.status == 200
        data = await response.json()
    assert data["room_name"] == "room 1"
    assert data["participant_identity"] == "ann"
    assert data["livekit_url"] == "ws://127.0.0.1:7880"
    claims = TokenVerifier(server.livekit_api_key, server.livekit_api_secret).verify(data["token"])
    assert claims.identity == "ann"
    assert claims.name == "Ann"
    assert claims.video is not None
    assert claims.video.room == "room 1"
    assert claims.video.room_join
    assert claims.video.can_publish
    assert claims.video.can_subscribe
    assert claims.video.can_publish_data
    payload = json.loads(base64.urlsafe_b64decode(data["token"].split(".")[1] + "=="))
    assert payload["exp"] - payload["nbf"] == 6 * 3600
    assert abs(payload["nbf"] - time.time()) < 60
    # Without an auth id no room is created.
    assert "room 1" not in server.rooms


@pytest.mark.parametrize("key", ["room_name", "participant_name", "participant_identity"])
async def test_token_field_validation(
    server: LocalServer, http: aiohttp.ClientSession, key: str
) -> None:
    body = {"room_name": "r", "participant_name": "n", "participant_identity": "i", key: " "}
    async with http.post(server.url + "/livekit/token", json=body) as response:
        assert response.status == 400
        assert await response.json() == {"error": f"Invalid request: {key} cannot be empty"}


async def test_livekit_not_configured(http: aiohttp.ClientSession) -> None:
    async with LocalServer(livekit_api_key="") as server:
        body = {"room_name": "r", "participant_name": "n", "participant_identity": ""}
        async with http.post(server.url + "/livekit/token", json=body) as response:
            assert response.status == 500
            assert await response.json() == {"error": "LiveKit service not configured"}
        async with http.ws_connect(server.ws_url) as ws:
            await send(ws, config(livekit={"room_name": "r"}))
            assert (await recv_json(ws))["message"] == (
                "LiveKit room handler not initialized. Check API keys configuration."
            )


async def test_session_room_lifecycle_and_rest_views(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        ready = await configure(
            ws,
            config(
                livekit={
                    "room_name": "lobby",
                    "sayna_participant_identity": "bot",
                    "sayna_participant_name": "Bot",
                }
            ),
        )
        assert list(ready) == [
            "type",
            "stream_id",
            "livekit_room_name",
            "livekit_url",
            "sayna_participant_identity",
            "sayna_participant_name",
        ]
        assert ready["livekit_room_name"] == "lobby"
        assert ready["sayna_participant_identity"] == "bot"
        async with http.get(server.url + "/livekit/rooms") as response:
            rooms = (await response.json())["rooms"]
        assert [(r["name"], r["num_participants"]) for r in rooms] == [("lobby", 1)]
        await server.inject_participant("lobby", "user-1", name="User")
        async with http.get(server.url + "/livekit/rooms/lobby") as response:
            details = await response.json()
        assert details["sid"].startswith("RM_")
        assert details["num_participants"] == 2
        assert details["metadata"] == ""
        assert details["active_recording"] is False
        by_identity = {p["identity"]: p for p in details["participants"]}
        assert by_identity["bot"]["kind"] == "STANDARD"  # section 3.14: Sayna's token marks no kind
        assert by_identity["user-1"]["sid"].startswith("PA_")
        assert by_identity["user-1"]["state"] == "ACTIVE"
        assert by_identity["user-1"]["is_publisher"] is True
        track_sid = server.rooms["lobby"].participants["user-1"].tracks[0].sid
        assert track_sid.startswith("TR_")
        mute = {
            "room_name": "lobby",
            "participant_identity": "user-1",
            "track_sid": track_sid,
            "muted": True,
        }
        async with http.post(server.url + "/livekit/participant/mute", json=mute) as response:
            assert response.status == 200
            assert await response.json() == mute
        async with http.post(
            server.url + "/livekit/participant/mute", json={**mute, "track_sid": "TR_nope"}
        ) as response:
            assert response.status == 404
            assert await response.json() == {
                "error": "Track 'TR_nope' or participant 'user-1' not found in room 'lobby'",
                "code": "PARTICIPANT_NOT_FOUND",
            }
    await server.records.wait_for(lambda: server.records.last_session.closed.is_set())
    assert "lobby" not in server.rooms
    async with http.get(server.url + "/livekit/rooms/lobby") as response:
        assert response.status == 404
        assert await response.json() == {"error": "Room 'lobby' not found"}


async def test_injected_participant_events_and_close_after_disconnect(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(livekit={"room_name": "call"}))
        await server.inject_participant("call", "caller", name="Caller")
        connected = await recv_json(ws)
        assert connected["type"] == "participant_connected"
        assert connected["participant"]["identity"] == "caller"
        assert connected["participant"]["name"] == "Caller"
        assert connected["participant"]["room"] == "call"
        assert isinstance(connected["participant"]["timestamp"], int)
        track = await recv_json(ws)
        assert track["type"] == "track_subscribed"
        assert track["track"]["track_kind"] == "audio"
        assert track["track"]["track_sid"].startswith("TR_")
        assert track["track"]["identity"] == "caller"
        removed = {"room_name": "call", "participant_identity": "caller"}
        removed_at = time.monotonic()
        async with http.delete(server.url + "/livekit/participant", json=removed) as response:
            assert response.status == 200
            assert await response.json() == {"status": "removed", **removed}
        event = await recv_json(ws)
        assert event["type"] == "participant_disconnected"
        assert event["participant"]["identity"] == "caller"
        close = await recv(ws)
        elapsed = time.monotonic() - removed_at
    assert close.type == aiohttp.WSMsgType.CLOSE
    assert close.data == 0  # aiohttp reports a payload-less Close (1005) as 0
    assert elapsed >= 0.1  # the server waits 100 ms after participant_disconnected
    session = server.records.last_session
    await server.records.wait_for(session.closed.is_set)
    assert session.close_code == 1005
    assert "call" not in server.rooms


async def test_joining_a_room_subscribes_to_the_audio_of_those_already_there(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    # Sayna hears room audio only through TrackSubscribed, whose callback sends
    # track_subscribed first (events.rs:117-173): a caller already in the room when the
    # agent joins yields one, whatever listen_participants says, and no
    # participant_connected (LiveKit lists them in the join response).
    caller = await server.inject_sip_participant(
        "call", "caller", from_phone_number="+15551230000", to_phone_number="+15559990000"
    )
    await server.inject_participant("call", "watcher", audio=False)
    livekit = {"room_name": "call", "listen_participants": ["someone-else"]}
    async with http.ws_connect(server.ws_url) as data_only, http.ws_connect(server.ws_url) as ws:
        # audio: false subscribes to nothing (configure fails on a frame before ready)
        data_config = {"type": "config", "audio": False, "livekit": {"room_name": "call"}}
        data_config["livekit"]["sayna_participant_identity"] = "data-bot"
        await configure(data_only, data_config)
        await send(ws, config(livekit=livekit))
        frames, _ = await collect(ws, of_type("ready"))
        assert [frame["type"] for frame in frames] == ["track_subscribed", "ready"]
        track = frames[0]["track"]
        assert track["identity"] == caller["identity"]
        assert track["track_kind"] == "audio"
        assert track["track_sid"] == server.rooms["call"].participants["caller"].tracks[0].sid
        assert track["room"] == "call"


async def test_audio_false_session_gets_no_track_events(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, {"type": "config", "audio": False, "livekit": {"room_name": "data"}})
        await server.inject_participant("data", "u")
        assert (await recv_json(ws))["type"] == "participant_connected"
        await server.inject_data("data", "ping", identity="u")
        message = await recv_json(ws)
        assert message["type"] == "message"


async def test_data_messages_respect_listen_participants(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    livekit = {"room_name": "chat", "listen_participants": ["alice"]}
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(livekit=livekit))
        assert await server.inject_data("chat", b"\xff\x00", identity="bob")
        assert await server.inject_data("chat", "hello", identity="alice", topic="t")
        first = await recv_json(ws)
        assert first["type"] == "message"
        body = first["message"]
        assert list(body) == ["message", "identity", "topic", "room", "timestamp"]
        assert body["message"] == "hello"
        assert body["identity"] == "alice"
        assert body["topic"] == "t"
        assert body["room"] == "livekit"
        assert await server.inject_data("chat", b"\xff\x00", identity=None)
        second = (await recv_json(ws))["message"]
        assert second["data"] == base64.b64encode(b"\xff\x00").decode()
        assert "message" not in second
        assert second["identity"] == "server"
        assert second["topic"] == "default"
    assert not await server.inject_data("nowhere", "x")


async def test_send_message_is_published_and_delivered_to_room_peers(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as agent_a, http.ws_connect(server.ws_url) as agent_b:
        await configure(
            agent_a, {"type": "config", "audio": False, "livekit": {"room_name": "shared"}}
        )
        await configure(
            agent_b,
            {
                "type": "config",
                "audio": False,
                "livekit": {"room_name": "shared", "sayna_participant_identity": "bot-b"},
            },
        )
        joined = await recv_json(agent_a)
        assert joined["participant"]["identity"] == "bot-b"
        await send(agent_b, {"type": "send_message", "message": "hi", "role": "assistant"})
        event = await recv_json(agent_a)
    assert event["type"] == "message"
    assert event["message"]["identity"] == "bot-b"
    assert event["message"]["topic"] == "messages"
    assert json.loads(event["message"]["message"]) == {
        "message": "hi",
        "role": "assistant",
        "debug": None,
    }
    packet = server.records.data_packets[0]
    assert packet.room == "shared"
    assert packet.identity == "bot-b"
    # serde_json's json!() object: keys sorted (operation_worker.rs:272-277).
    assert packet.payload == b'{"debug":null,"message":"hi","role":"assistant"}'


async def test_send_message_topic_and_payload_as_sayna_publishes_them(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, {"type": "config", "audio": False, "livekit": {"room_name": "t"}})
        await server.inject_participant("t", "peer")
        assert (await recv_json(ws))["type"] == "participant_connected"
        message = {"message": "é", "role": "r", "topic": "", "debug": {"z": 1, "a": [True]}}
        await send(ws, {"type": "send_message", **message})
        await send(ws, {"type": "send_message", "message": "m", "role": "r", "topic": None})
        await server.records.wait_for(lambda: len(server.records.data_packets) == 2)
        # A packet with an empty topic reaches the room's sessions with it.
        await server.inject_data("t", "x", identity="peer", topic="")
        assert (await recv_json(ws))["message"]["topic"] == ""
    first, second, _injected = server.records.data_packets
    assert first.topic == ""  # unwrap_or("messages") keeps an empty topic
    assert first.payload == '{"debug":{"a":[true],"z":1},"message":"é","role":"r"}'.encode()
    assert second.topic == "messages"


async def test_livekit_audio_mode_publishes_tts_to_room(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(livekit={"room_name": "voice"}))
        await send(ws, {"type": "speak", "text": "a b"})
        _frames, audio = await collect(ws, of_type("tts_playback_complete"))
        assert audio == b""
        agent = server.rooms["voice"].participants["sayna-ai"]
        assert agent.tracks[0].name == "tts-audio"
        assert agent.tracks[0].published_bytes == len(render_words(["a", "b"], 16000))
        # Room audio reaches STT.
        speech = render_words(["x", "y", "z"], 16000) + bytes(16000 * 2)
        assert await server.inject_audio("voice", "caller", speech)
        result, _ = await collect(ws, lambda m: m.get("is_final") is True)
    assert result[-1]["transcript"] == "word word word"


async def test_control_endpoints_drive_the_room(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(tts_config={**TTS}, livekit={"room_name": "ctl"}))
        base = server.url + "/_local/rooms/ctl"
        async with http.post(base + "/participants", json={"identity": "u", "name": "U"}) as r:
            assert r.status == 200
            assert (await r.json())["identity"] == "u"
        assert (await recv_json(ws))["type"] == "participant_connected"
        assert (await recv_json(ws))["type"] == "track_subscribed"
        async with http.post(base + "/data", json={"message": "yo", "identity": "u"}) as r:
            assert r.status == 200
        assert (await recv_json(ws))["message"]["message"] == "yo"
        await send(ws, {"type": "send_message", "message": "m", "role": "user", "topic": "x"})
        await server.records.wait_for(lambda: server.records.data_packets[1:])
        async with http.get(base + "/data") as r:
            packets = (await r.json())["packets"]
        assert packets[-1] == {
            "identity": "sayna-ai",
            "topic": "x",
            "message": '{"debug":null,"message":"m","role":"user"}',
        }
        async with http.delete(base + "/participants/u") as r:
            assert r.status == 200
        assert (await recv_json(ws))["type"] == "participant_disconnected"
        assert (await recv(ws)).type == aiohttp.WSMsgType.CLOSE
    async with http.delete(base + "/participants/u") as r:
        assert r.status == 404
