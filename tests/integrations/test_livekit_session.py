"""LiveKit Agents: a whole AgentSession with the Sayna STT and TTS, against the local server.

No LiveKit room: the session's audio input and output are LiveKit's own ``AudioInput`` /
``AudioOutput`` interfaces, implemented here as a caller (tone bursts the fake engine
hears as words, silence in between, faster than real time) and a speaker (records what
it is given and plays it back at a multiple of real time). The LLM is a scripted
``llm.LLM``. Turns end on Sayna's speech-final (turn detection "stt", no VAD), and the
caller talking over a reply interrupts it through the framework's own interruption path.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from typing import Any, Optional

import pytest

if sys.version_info < (3, 10):
    pytest.skip(
        "livekit-agents 1.8 requires Python 3.10+, so the [livekit] extra cannot be installed here",
        allow_module_level=True,
    )

from livekit import rtc
from livekit.agents import DEFAULT_API_CONNECT_OPTIONS, Agent, AgentSession, llm
from livekit.agents.voice import io

from helpers.waiting import eventually
from sayna_client import STTConfig, Timeouts, TTSConfig
from sayna_client.integrations import livekit as sayna
from sayna_client.server import LocalServer

from .helpers import tone_bursts

RATE = 16000
FRAME = 2 * RATE // 100  # 10 ms, as a room track delivers
SPEED = 4.0  # audio runs this many times faster than real time, both ways


class Caller(io.AudioInput):
    """A microphone: queued speech, else silence, one 10 ms frame per 10 ms / SPEED."""

    def __init__(self) -> None:
        super().__init__(label="caller")
        self.queue: list[bytes] = []
        self._next = 0.0

    def say(self, words: int) -> None:
        pcm = tone_bursts(words, RATE, silence_after=0)
        self.queue.extend(pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME))

    async def __anext__(self) -> rtc.AudioFrame:
        now = time.monotonic()
        self._next = max(self._next + 0.01 / SPEED, now)
        await asyncio.sleep(self._next - now)  # the microphone's clock
        chunk = self.queue.pop(0) if self.queue else bytes(FRAME)
        chunk = chunk.ljust(FRAME, b"\0")
        return rtc.AudioFrame(chunk, RATE, 1, FRAME // 2)


class Speaker(io.AudioOutput):
    """A loudspeaker: plays each flushed segment for its duration / SPEED, records it."""

    def __init__(self) -> None:
        super().__init__(label="speaker", capabilities=io.AudioOutputCapabilities(pause=False))
        self.segments: list[dict[str, Any]] = []
        self._current: Optional[dict[str, Any]] = None
        self._playing: Optional[asyncio.Task[None]] = None
        self.changed = asyncio.Event()

    async def capture_frame(self, frame: rtc.AudioFrame) -> None:
        await super().capture_frame(frame)
        if self._current is None:
            self._current = {"bytes": 0, "duration": 0.0, "interrupted": None}
            self.segments.append(self._current)
            self.on_playback_started(created_at=time.time())
        self._current["bytes"] += len(frame.data.tobytes())
        self._current["duration"] += frame.duration
        self.changed.set()

    def flush(self) -> None:
        super().flush()
        segment, self._current = self._current, None
        if segment is not None:
            self._playing = asyncio.ensure_future(self._play(segment))

    async def _play(self, segment: dict[str, Any]) -> None:
        await asyncio.sleep(segment["duration"] / SPEED)
        self._finish(segment, interrupted=False)

    def clear_buffer(self) -> None:
        segment = self._current
        if self._playing is not None and not self._playing.done():
            self._playing.cancel()
            segment = self.segments[-1]
        self._current = None
        if segment is not None and segment["interrupted"] is None:
            self._finish(segment, interrupted=True)

    def _finish(self, segment: dict[str, Any], *, interrupted: bool) -> None:
        segment["interrupted"] = interrupted
        self.on_playback_finished(playback_position=segment["duration"], interrupted=interrupted)
        self.changed.set()


class ScriptedLLM(llm.LLM):
    """Answers turn ``i`` with ``replies[i]``, one word at a time; a word ``|`` holds the
    reply until ``release`` is set (a slow LLM), so the caller can talk over it."""

    def __init__(self, replies: list[str]) -> None:
        super().__init__()
        self.replies = list(replies)
        self.heard: list[str] = []
        self.release = asyncio.Event()

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: Optional[list[Any]] = None,
        conn_options: Any = DEFAULT_API_CONNECT_OPTIONS,
        **kwargs: Any,
    ) -> llm.LLMStream:
        users = [m for m in chat_ctx.items if getattr(m, "role", None) == "user"]
        self.heard.append(users[-1].text_content if users else "")
        reply = self.replies.pop(0) if self.replies else "Okay."
        return _Reply(self, reply, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)


class _Reply(llm.LLMStream):
    def __init__(self, owner: ScriptedLLM, text: str, **kwargs: Any) -> None:
        super().__init__(owner, **kwargs)
        self._owner = owner
        self._text = text

    async def _run(self) -> None:
        for word in self._text.split(" "):
            if word == "|":
                await self._owner.release.wait()
                continue
            self._event_ch.send_nowait(
                llm.ChatChunk(id="r", delta=llm.ChoiceDelta(role="assistant", content=word + " "))
            )


@pytest.fixture
async def server() -> AsyncIterator[LocalServer]:
    async with LocalServer() as srv:
        yield srv


async def until(event: asyncio.Event, predicate: Any) -> Any:
    return await eventually(predicate, wake=event)


async def test_agent_session_turns_and_interruption(server: LocalServer) -> None:
    options: dict[str, Any] = {
        "url": server.url,
        "stt_config": STTConfig(provider="deepgram", model="nova-2", sample_rate=RATE),
        "tts_config": TTSConfig(provider="deepgram", voice_id="aura-asteria-en"),
        "timeouts": Timeouts(connect=5, ready=10, request=10, close=5),
    }
    brain = ScriptedLLM(
        [
            "Hello there, how can I help?",
            # The tokenizer sends a sentence once the next one starts: hold after "Five".
            "One two three four, and five. Five | six seven eight nine ten eleven twelve.",
            "Sorry, go on.",
        ]
    )
    caller, speaker = Caller(), Speaker()
    stt_plugin, tts_plugin = sayna.STT(**options), sayna.TTS(**options)
    session = AgentSession(
        stt=stt_plugin,
        tts=tts_plugin,
        llm=brain,
        aec_warmup_duration=None,  # no echo canceller warming up here: interrupt at once
        turn_handling={
            "turn_detection": "stt",
            "endpointing": {"min_delay": 0.0, "max_delay": 1.0},
            "interruption": {"min_words": 1},
            "preemptive_generation": {"enabled": False},
        },
    )
    session.input.audio = caller
    session.output.audio = speaker
    await session.start(agent=Agent(instructions="Answer briefly."))
    try:
        # Turn 1: two words, then silence: Sayna's speech-final ends the turn.
        caller.say(2)
        first = await until(speaker.changed, lambda: speaker.segments[:1])
        await until(speaker.changed, lambda: first[0]["interrupted"] is not None)
        assert brain.heard == ["word word"]
        assert first[0]["interrupted"] is False
        # Turn 2: the reply's first sentence plays, the rest is held; the caller talks over it.
        caller.say(3)
        await until(speaker.changed, lambda: len(speaker.segments) >= 2)
        await until(speaker.changed, lambda: len(brain.heard) >= 2)
        caller.say(2)
        await until(speaker.changed, lambda: speaker.segments[1]["interrupted"] is not None)
        assert speaker.segments[1]["interrupted"] is True
        brain.release.set()
        # Turn 3: what the caller said over the reply is answered.
        await until(
            speaker.changed,
            lambda: len(speaker.segments) >= 3 and speaker.segments[2]["interrupted"] is False,
        )
        assert brain.heard[1] == "word word word"
        assert brain.heard[2] == "word word"
    finally:
        print("heard", brain.heard, "segments", speaker.segments)
        await session.aclose()
        await tts_plugin.aclose()
        await stt_plugin.aclose()
    speaks = [
        m.get("text") for s in server.records.sessions for m in s.messages if m["type"] == "speak"
    ]
    assert not [text for text in speaks if "twelve" in text]
    cleared = [s for s in server.records.sessions if any(m["type"] == "clear" for m in s.messages)]
    assert len(cleared) == 1  # the interrupted reply's session, which was not reused
