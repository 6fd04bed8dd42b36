"""The server's records: bounded in bytes as well as in entries (configs and data packet
payloads, as request bodies are), and reprs that print no credentials.
"""

from __future__ import annotations

import json

import aiohttp

from helpers.wire import STT, TTS, configure, recv_json, send
from sayna_client.server import LocalServer

#: What each of those lists keeps at most, in bytes (the records' 64 MiB budgets).
BUDGET = 64 * 1024 * 1024
BIG = 3_900_000  # a message just under the local server's 4 MiB limit


async def test_data_packet_payloads_are_kept_within_a_byte_budget() -> None:
    async with LocalServer() as server, aiohttp.ClientSession() as http:
        async with http.ws_connect(server.ws_url) as ws:
            await configure(ws, {"type": "config", "audio": False, "livekit": {"room_name": "r"}})
            for index in range(20):  # 78 MB of payloads
                message = f"{index:02d}" + "x" * BIG
                await send(ws, {"type": "send_message", "message": message, "role": "user"})
            await send(ws, {"type": "marker"})  # answered once the messages before it are
            assert "marker" in (await recv_json(ws, 60))["message"]
        packets = server.records.data_packets
        assert 0 < sum(len(packet.payload) for packet in packets) <= BUDGET
        assert len(packets) < 20  # the oldest went first; the newest is there
        assert json.loads(packets[-1].payload)["message"].startswith("19x")


async def test_session_configs_are_kept_within_a_byte_budget() -> None:
    # A `config` may carry keys the protocol ignores; 20 sessions of 3.9 MB configs.
    async with LocalServer() as server, aiohttp.ClientSession() as http:
        for index in range(20):
            async with http.ws_connect(server.ws_url) as ws:
                config = {"type": "config", "audio": False, "padding": "x" * BIG, "n": index}
                await configure(ws, config)
        sessions = server.records.sessions
        kept = sum(len(json.dumps(record.config)) for record in sessions if record.config)
        assert kept <= BUDGET + 20 * 100  # (json.dumps adds a space after separators)
        assert len(sessions) < 20
        assert sessions[-1].config is not None
        assert sessions[-1].config["n"] == 19


async def test_record_reprs_mask_credentials() -> None:
    key, provider_key, hook_secret = "sk-sayna-123456", "dg-provider-987654", "hook-secret-5555"
    auth = {"Authorization": f"Bearer {key}"}
    async with LocalServer(api_key=key) as server, aiohttp.ClientSession() as http:
        stt = {**STT, "auth": {"api_key": provider_key}}
        async with http.ws_connect(server.ws_url, headers=auth) as ws:
            await configure(ws, {"type": "config", "stt_config": stt, "tts_config": TTS})
        body = {"text": "hi", "tts_config": {**TTS, "auth": {"api_key": provider_key}}}
        async with http.post(f"{server.url}/speak?api_key={key}", json=body) as response:
            assert response.status == 200
        hooks = {"hooks": [{"host": "a.example.com", "url": "http://x/", "secret": hook_secret}]}
        async with http.post(f"{server.url}/sip/hooks", json=hooks, headers=auth) as response:
            await response.read()
        async with http.ws_connect(f"{server.ws_url}?api_key={key}") as ws:
            await send(ws, {"type": "config", "stt_config": stt, "tts_config": TTS})
            await recv_json(ws)
    session, query_session = server.records.sessions
    speak = server.records.requests_to("/speak")[0]
    sip = server.records.requests_to("/sip/hooks")[0]
    for record in (session, query_session, speak, sip):
        shown = repr(record)
        for secret in (key, provider_key, hook_secret):
            assert secret not in shown, shown
        assert "***" in shown
        assert str(record) == shown
    assert "Bearer ***" in repr(session)
    assert "'api_key': '***'" in repr(query_session)
    # The fields keep the values, for the code that reads them.
    assert session.headers["Authorization"] == f"Bearer {key}"
    assert session.config is not None
    assert session.config["stt_config"]["auth"] == {"api_key": provider_key}
    assert query_session.query["api_key"] == key
    assert speak.query["api_key"] == key
    assert provider_key.encode() in speak.body
    assert sip.json["hooks"][0]["secret"] == hook_secret


async def test_record_reprs_mask_sip_trunk_passwords_and_auth_given_as_a_string() -> None:
    """A `/sip/call` with the trunk's `auth_password` (section 3.10), and a refused
    `config` whose `auth` is a string: neither shows in a record's repr."""
    password, provider_key = "hunter2-TRUNK-PASSWORD", "sk-string-auth-4242"
    async with LocalServer() as server, aiohttp.ClientSession() as http:
        body = {
            "room_name": "call-1",
            "participant_name": "Caller",
            "participant_identity": "caller-1",
            "from_phone_number": "+15550000001",
            "to_phone_number": "+15550000002",
            "sip": {"auth_username": "trunk-user", "auth_password": password},
        }
        async with http.post(f"{server.url}/sip/call", json=body) as response:
            await response.read()
        async with http.ws_connect(server.ws_url) as ws:
            tts = {**TTS, "auth": provider_key}
            await send(ws, {"type": "config", "stt_config": STT, "tts_config": tts})
            await recv_json(ws)  # refused
    call = server.records.requests_to("/sip/call")[0]
    assert call.json is not None
    assert call.json["sip"]["auth_password"] == password  # the field keeps it
    assert password not in repr(call)
    session = server.records.last_session
    assert session.messages
    assert provider_key not in repr(session)
