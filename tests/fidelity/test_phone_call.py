"""A scripted phone call from start to end, the way a Sayna telephony app runs.

A SIP caller joins a room; Sayna forwards the signed SIP webhook (protocol 9) to the
app; the app's agent, written only with the seed API, joins the room, answers the
caller's first sentence (a final, speech-final result with its text, 6.8); the caller
hangs up (``participant_disconnected``, then the server's close, 6.6); and every
resource is released: the room, the session, the app's client. The caller was in the
room before the agent, so the agent hears of it only through ``track_subscribed``, as
on Sayna, where room audio reaches STT only through that event. In a second call the
agent transfers the caller, who leaves the room as after LiveKit's cold transfer.
"""

from __future__ import annotations

import asyncio
from typing import Any, Optional

import pytest
from aiohttp import web

from sayna_client import (
    LiveKitConfig,
    ParticipantConnectedMessage,
    ParticipantDisconnectedMessage,
    SaynaClient,
    STTConfig,
    STTResultMessage,
    TrackSubscribedMessage,
    TTSConfig,
    WebhookReceiver,
    WebhookSIPOutput,
)
from sayna_client.server import LocalServer, SipHook
from sayna_client.server.engines.fake import render_words
from sayna_client.webhooks import receive_aiohttp

SECRET = "phone-call-hook-secret-0123456789"
RATE = 24000  # room audio reaches STT at the TTS rate (section 6.9)


class PhoneApp:
    """The customer's app: a webhook endpoint that starts one agent per call."""

    def __init__(self) -> None:
        self.sayna_url = ""
        self.receiver = WebhookReceiver(SECRET)
        self.calls: list[WebhookSIPOutput] = []
        self.agents: list[asyncio.Task[None]] = []
        self.clients: list[SaynaClient] = []
        self.heard: list[str] = []
        self.answered = asyncio.Event()
        #: The room events the agents got, as (type, identity).
        self.room_events: list[tuple[str, str]] = []
        #: Where the agent transfers the call after its answer (None: it waits for a hang-up).
        self.transfer_to: Optional[str] = None

    async def sip_hook(self, request: web.Request) -> web.Response:
        call = await receive_aiohttp(self.receiver, request)  # checks the signature
        self.calls.append(call)
        self.agents.append(asyncio.ensure_future(self.agent(call)))
        return web.Response(status=204)

    async def agent(self, call: WebhookSIPOutput) -> None:
        client = SaynaClient(
            self.sayna_url,
            STTConfig(provider="deepgram", model="nova-3", sample_rate=RATE),
            TTSConfig(provider="elevenlabs", voice_id="rachel", sample_rate=RATE),
            livekit_config=LiveKitConfig(room_name=call.room.name),
        )
        self.clients.append(client)
        hung_up = asyncio.Event()

        async def on_result(result: STTResultMessage) -> None:
            if result.is_final and result.is_speech_final and result.transcript:
                self.heard.append(result.transcript)
                await client.speak(f"Hello {call.from_phone_number}, I can help with that.")

        async def on_answered(_message: Any) -> None:
            self.answered.set()
            if self.transfer_to is not None:
                await client.sip_transfer(self.transfer_to)

        def on_connected(message: ParticipantConnectedMessage) -> None:
            self.room_events.append(("participant_connected", message.participant.identity))

        def on_track(message: TrackSubscribedMessage) -> None:
            self.room_events.append(("track_subscribed", message.track.identity))

        def on_disconnected(message: ParticipantDisconnectedMessage) -> None:
            self.room_events.append(("participant_disconnected", message.participant.identity))
            hung_up.set()

        client.register_on_stt_result(on_result)
        client.register_on_tts_playback_complete(on_answered)
        client.register_on_participant_connected(on_connected)
        client.register_on_track_subscribed(on_track)
        client.register_on_participant_disconnected(on_disconnected)
        await client.connect()
        try:
            await hung_up.wait()
        finally:
            await client.disconnect()


@pytest.mark.parametrize("ending", ["hang-up", "transfer"])
async def test_scripted_phone_call_releases_everything(ending: str) -> None:
    app = PhoneApp()
    if ending == "transfer":
        app.transfer_to = "+15550123"
    web_app = web.Application()
    web_app.router.add_post("/sip", app.sip_hook)
    runner = web.AppRunner(web_app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    hook_url = f"http://127.0.0.1:{runner.addresses[0][1]}/sip"
    room: Optional[str] = None
    try:
        hooks = [SipHook("sip.example.com:5063", hook_url)]
        async with LocalServer(hook_secret=SECRET, sip_hooks=hooks) as server:
            app.sayna_url = server.url
            server.script_speech("hi, my internet is down")

            await server.inject_sip_participant(
                "sip-call-7",
                "caller",
                from_phone_number="+15550100",
                to_phone_number="+15550199",
                sip_host="sip.example.com:5063",
            )
            await server.records.wait_for(lambda: app.calls, timeout=10)
            call = app.calls[0]
            room = call.room.name
            assert (call.from_phone_number, call.to_phone_number) == ("+15550100", "+15550199")
            assert call.sip_host == "sip.example.com:5063"
            webhook = server.records.webhooks[0]
            assert webhook.headers["X-Sayna-Signature"].startswith("v1=")

            # The agent joins, then the caller says their first sentence.
            await server.records.wait_for(
                lambda: "sayna-ai" in server.rooms[room].participants, timeout=10
            )
            speech = render_words(["x"] * 5, RATE) + bytes(RATE * 2)
            await server.inject_audio(room, "caller", speech)
            await asyncio.wait_for(app.answered.wait(), 20)
            assert app.heard == ["hi, my internet is down"]
            session = server.records.last_session
            assert [m["text"] for m in session.messages if m["type"] == "speak"] == [
                "Hello +15550100, I can help with that."
            ]
            track = server.rooms[room].participants["sayna-ai"].audio_track()
            assert track is not None
            assert track.published_bytes > 0  # the answer went to the room (6.9)

            if ending == "hang-up":
                assert await server.inject_participant_left(room, "caller")
            # else the agent transferred the call: the caller leaves the room
            await asyncio.wait_for(asyncio.gather(*app.agents), 10)
            assert app.room_events == [
                ("track_subscribed", "caller"),
                ("participant_disconnected", "caller"),
            ]
            transfers = [
                {
                    "room_name": room,
                    "participant_identity": "caller",
                    "transfer_to": "tel:+15550123",
                }
            ]
            assert server.records.sip_transfers == (transfers if ending == "transfer" else [])
            await asyncio.wait_for(session.closed.wait(), 10)
            assert session.close_code is not None
            assert room not in server.rooms  # Sayna deletes the room when its socket ends
            assert all(record.closed.is_set() for record in server.records.sessions)
            assert webhook.done
            assert webhook.status == 204
        assert all(not client.connected for client in app.clients)
    finally:
        for task in app.agents:
            task.cancel()
        await asyncio.gather(*app.agents, return_exceptions=True)
        await runner.cleanup()
    assert room is not None
