"""Run a Sayna session inside a LiveKit room and control the room over REST.

    sayna serve                                                 # terminal 1
    python examples/livekit_room_control.py --simulate          # terminal 2

The session joins the room given in ``LiveKitConfig``. The script issues a token a
participant would join with, lists the rooms, and then reacts to room events:

* ``participant_connected``: show the room's participants (``get_livekit_room``);
* ``track_subscribed``: mute that track (``mute_livekit_participant_track``) with
  the ``track_sid`` from the event, as a moderator would;
* ``message``: answer on the same topic with ``send_message``;
* ``participant_disconnected``: Sayna ends the session about 100 ms later (code 1005)
  and deletes the room, so the script exits.

Against a real Sayna, participants join with the printed token. The local server
simulates LiveKit in memory: ``--simulate`` makes a participant join, talk and leave
through its ``/_local/rooms/...`` control endpoints (not part of the Sayna API).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from typing import Optional

import aiohttp

from sayna_client import (
    ConnectionClosed,
    ErrorEvent,
    LiveKitConfig,
    MessageMessage,
    ParticipantConnectedMessage,
    ParticipantDisconnectedMessage,
    SaynaClient,
    SaynaError,
    STTConfig,
    TrackSubscribedMessage,
    TTSConfig,
)

AGENT = "sayna-agent"
CALLER = "caller-1"
#: In LiveKit mode room audio reaches STT at the TTS sample rate (protocol 6.9), so
#: both configs use the same rate.
RATE = 24000


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SAYNA_API_KEY"),
        help="API key (default: $SAYNA_API_KEY)",
    )
    parser.add_argument("--room", default="demo-room", help="LiveKit room name")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="local server only: a participant joins, sends a message and leaves",
    )
    return parser.parse_args()


class Moderator:
    """The reactions to room events, registered as callbacks on the client."""

    def __init__(self, client: SaynaClient, room: str) -> None:
        self.client = client
        self.room = room
        self.ended = asyncio.Event()
        # Milestones the simulated participant waits for (a real one would not).
        self.muted = asyncio.Event()
        self.replied = asyncio.Event()
        client.register_on_participant_connected(self.on_participant_connected)
        client.register_on_track_subscribed(self.on_track_subscribed)
        client.register_on_message(self.on_message)
        client.register_on_participant_disconnected(self.on_participant_disconnected)
        client.register_on_error(self.on_error)
        client.register_on_close(self.on_close)

    async def on_participant_connected(self, event: ParticipantConnectedMessage) -> None:
        who = event.participant
        print(f"participant_connected: {who.identity} ({who.name or 'no name'})", flush=True)
        details = await self.client.get_livekit_room(self.room)
        people = ", ".join(f"{p.identity} ({p.kind})" for p in details.participants)
        print(f"room {details.name}: {details.num_participants} participants: {people}", flush=True)

    async def on_track_subscribed(self, event: TrackSubscribedMessage) -> None:
        track = event.track
        print(
            f"track_subscribed: {track.track_kind} {track.track_sid} of {track.identity}",
            flush=True,
        )
        result = await self.client.mute_livekit_participant_track(
            self.room, track.identity, track.track_sid, muted=True
        )
        print(f"muted {result.track_sid} of {result.participant_identity}", flush=True)
        self.muted.set()

    async def on_message(self, event: MessageMessage) -> None:
        data = event.message
        # Exactly one of .message (UTF-8 text) and .data (base64 bytes) is set.
        text = data.message if data.message is not None else f"<{len(data.data or '')} b64>"
        print(f"message from {data.identity} on {data.topic!r}: {text}", flush=True)
        await self.client.send_message(f"You said: {text}", role="assistant", topic=data.topic)
        print("replied with send_message", flush=True)
        self.replied.set()

    def on_participant_disconnected(self, event: ParticipantDisconnectedMessage) -> None:
        print(f"participant_disconnected: {event.participant.identity}", flush=True)

    def on_error(self, error: ErrorEvent) -> None:
        print(f"error: {error.message}", flush=True)

    def on_close(self, event: ConnectionClosed) -> None:
        # 1005 (no status) is Sayna's normal end of a LiveKit session.
        print(f"session closed (code {event.code})", flush=True)
        self.ended.set()


async def simulate_participant(
    url: str, api_key: Optional[str], room: str, moderator: Moderator
) -> None:
    """What a LiveKit participant would do, driven through the local server."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    base = f"{url.rstrip('/')}/_local/rooms/{room}"
    async with aiohttp.ClientSession(headers=headers, raise_for_status=True) as http:
        print(f"[simulate] {CALLER} joins {room}", flush=True)
        await http.post(f"{base}/participants", json={"identity": CALLER, "name": "Caller"})
        await asyncio.wait_for(moderator.muted.wait(), 10)
        print(f'[simulate] {CALLER} sends "hello agent" on topic "chat"', flush=True)
        await http.post(
            f"{base}/data", json={"identity": CALLER, "topic": "chat", "message": "hello agent"}
        )
        await asyncio.wait_for(moderator.replied.wait(), 10)
        async with http.get(f"{base}/data") as response:  # what was published in the room
            for packet in (await response.json())["packets"]:
                if packet["identity"] == AGENT:
                    reply = json.loads(packet["message"])
                    print(f"[simulate] {CALLER} received: {reply['message']!r} ({reply['role']})")
        print(f"[simulate] {CALLER} leaves", flush=True)
        await http.delete(f"{base}/participants/{CALLER}")


async def main(args: argparse.Namespace) -> None:
    stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE)
    tts = TTSConfig(provider="deepgram", voice_id="aura-asteria-en", sample_rate=RATE)
    livekit = LiveKitConfig(
        room_name=args.room, sayna_participant_identity=AGENT, sayna_participant_name="Agent"
    )
    async with SaynaClient(
        args.url, stt, tts, livekit_config=livekit, api_key=args.api_key
    ) as client:
        moderator = Moderator(client, args.room)
        await client.connect()
        print(
            f"ready: room {client.livekit_room_name}, Sayna joined as "
            f"{client.sayna_participant_identity}, LiveKit at {client.livekit_url}"
        )
        token = await client.get_livekit_token(args.room, "Caller", CALLER)
        print(
            f"token for {token.participant_identity}: {token.token[:20]}... ({token.livekit_url})"
        )
        rooms = await client.get_livekit_rooms()
        print("rooms:", ", ".join(f"{r.name} ({r.num_participants})" for r in rooms.rooms))

        if args.simulate:
            # Returns once the participant left; the callbacks react meanwhile.
            await simulate_participant(args.url, args.api_key, args.room, moderator)
        else:
            print("waiting for participants; press Ctrl-C to stop", flush=True)
        await moderator.ended.wait()
    print("done")


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except SaynaError as exc:
        sys.exit(f"error: {exc}")
    except OSError as exc:  # a file or folder that cannot be read or written
        sys.exit(f"error: {exc.filename or ''}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
