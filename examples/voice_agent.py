"""A voice agent on `sayna_client.agents`: streamed answers, barge-in, only heard words kept.

    sayna serve                                              # terminal 1 (fake engine)
    python examples/voice_agent.py --simulate --turns 3      # terminal 2

The agent greets, then answers every user turn (``client.turns()``) by streaming its
"LLM"'s tokens into ``client.speak_stream()``, sentence by sentence. ``client.barge_in()``
stops it when the caller talks over it (Sayna never does by itself), and the agent keeps in
its LLM context only ``handle.text_heard``: the words the caller actually heard.

``--simulate`` needs no microphone: a simulated caller speaks lines synthesized with
``speak_rest`` into the session, every second one 400 ms into the agent's answer (a
barge-in). With the fake engine every spoken word is a tone and every turn reads
``word word ...``; ``sayna serve --engine local`` gives real speech. Without ``--simulate``
the microphone is read through the optional ``sounddevice`` package (wear headphones).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from collections.abc import AsyncIterator, Iterator
from typing import Any, Callable, Optional

from sayna_client import SaynaClient, SaynaError, STTConfig, TTSConfig, audio
from sayna_client.agents import BargeInEvent

FRAME_MS = 20
MIC_RATE = 16000  # what the microphone sends (stt_config.sample_rate)
GREETING = "Hello! How can I help you today?"
GOODBYE = "Thank you for calling. Goodbye!"
CALLER_LINES = ("hello there", "sorry to interrupt but what time is it", "thank you very much")
Brain = Callable[[list[dict[str, str]]], AsyncIterator[str]]


async def llm(context: list[dict[str, str]]) -> AsyncIterator[str]:
    """The agent's brain, streaming tokens: replace it with your LLM client."""
    said = context[-1]["content"]
    answer = f"You said: {said}. That was {len(said.split())} words. Tell me more, I am listening."
    for token in tokens(answer):
        await asyncio.sleep(0.02)  # tokens trickle in
        yield token


def tokens(text: str) -> Iterator[str]:
    """``text`` as LLM-like tokens: words with their leading space."""
    for index, word in enumerate(text.split(" ")):
        yield word if index == 0 else " " + word


class Agent:
    """The conversation: the LLM context, and barge-in on the client."""

    def __init__(self, client: SaynaClient, brain: Brain = llm) -> None:
        self.client = client
        self.brain = brain
        self.context: list[dict[str, str]] = []
        self.barge_ins = 0
        client.barge_in(on_barge_in=self.on_barge_in)

    def on_barge_in(self, event: BargeInEvent) -> None:
        self.barge_ins += 1
        print(f'barge-in after "{event.text_heard}"', flush=True)

    async def say(self, pieces: object) -> None:
        handle = await self.client.speak_stream(pieces)  # type: ignore[arg-type]
        await handle  # played out, or interrupted by the caller
        # Only what the caller heard goes into the context, not the whole answer.
        self.context.append({"role": "assistant", "content": handle.text_heard})
        print(f"agent: {handle.text_heard}" + (" [interrupted]" if handle.interrupted else ""))

    async def run(self, max_turns: Optional[int]) -> int:
        turns = self.client.turns()
        await self.say(tokens(GREETING))
        count = 0
        async for turn in turns:
            count += 1
            print(f'turn {count}: "{turn.text}" ({turn.interim_count} interim results)', flush=True)
            self.context.append({"role": "user", "content": turn.text})
            if max_turns is not None and count >= max_turns:
                await self.say(tokens(GOODBYE))
                break
            await self.say(self.brain(self.context))
        return count


def caller(client: SaynaClient, lines: list[tuple[str, bytes]]) -> Iterator[bytes]:
    """Microphone frames of a simulated caller: silence while it listens; each line once the
    agent has finished and 300 ms passed, or, every second line, 400 ms into its answer."""
    size = audio.frame_bytes(FRAME_MS, MIC_RATE)
    for index, (text, pcm) in enumerate(lines):
        interrupt, spoke, waited = index % 2 == 1, False, 0
        while waited < (400 if interrupt else 300):
            speaking = client.speech.speaking
            spoke = spoke or speaking
            waited = waited + FRAME_MS if spoke and speaking == interrupt else 0
            yield bytes(size)
        print(f'[caller] {"talks over the agent" if interrupt else "says"}: "{text}"', flush=True)
        voice = pcm + bytes(MIC_RATE)  # the line, then 0.5 s of silence
        for start in range(0, len(voice), size):
            yield voice[start : start + size].ljust(size, b"\x00")
    yield from itertools.repeat(bytes(size))


async def main(args: argparse.Namespace) -> None:
    stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=MIC_RATE)
    tts = TTSConfig(provider="deepgram", voice_id="aura-asteria-en", sample_rate=24000)
    async with SaynaClient(args.url, stt, tts, api_key=args.api_key) as client:
        agent = Agent(client)
        if args.simulate:
            voice = tts.model_copy(update={"sample_rate": MIC_RATE})
            texts = itertools.islice(itertools.cycle(CALLER_LINES), args.turns)
            lines = [(text, (await client.speak_rest(text, voice))[0]) for text in texts]
            microphone = audio.paced(caller(client, lines), frame_ms=FRAME_MS)
        else:
            microphone = sound_card()
        await client.connect()
        print(f"connected: stream_id={client.received_stream_id}", flush=True)

        async def stream() -> None:
            async for frame in microphone:
                await client.on_audio_input(frame)

        task = asyncio.ensure_future(stream())
        try:
            count = await agent.run(args.turns)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        summary = client.turn_metrics.summary()["end_to_first_audio"]
    print(f"done: {count} turns, {agent.barge_ins} barge-in(s)", end="")
    p50 = summary["p50"]
    print(f"; end of turn -> first audio p50 {p50 * 1000:.0f} ms" if p50 is not None else "")


def sound_card() -> AsyncIterator[bytes]:
    """Microphone frames from the default input device (the agent's voice is not played).
    Checks for sounddevice at once, before the session is opened."""
    try:
        import sounddevice  # the devices extra (needs the PortAudio library)
    except (ImportError, OSError) as exc:
        raise SystemExit(
            f"live mode needs the devices extra: pip install 'sayna-client[devices]' (and "
            f"the PortAudio library, e.g. apt install libportaudio2) ({exc}); or run with "
            "--simulate"
        ) from exc
    return _microphone(sounddevice)


async def _microphone(sounddevice: Any) -> AsyncIterator[bytes]:
    loop = asyncio.get_running_loop()
    frames: asyncio.Queue[bytes] = asyncio.Queue()

    def on_input(data: bytes, *_: object) -> None:  # PortAudio's thread
        loop.call_soon_threadsafe(frames.put_nowait, bytes(data))

    block = MIC_RATE * FRAME_MS // 1000
    with sounddevice.RawInputStream(MIC_RATE, block, channels=1, dtype="int16", callback=on_input):
        print("listening on the microphone; press Ctrl-C to stop", flush=True)
        while True:
            yield await frames.get()


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument("--api-key", default=os.environ.get("SAYNA_API_KEY"), help="API key")
    parser.add_argument("--simulate", action="store_true", help="a simulated caller, no mic")
    parser.add_argument("--turns", type=int, default=None, help="stop after N user turns")
    args = parser.parse_args()
    if args.turns is None and args.simulate:
        args.turns = 3
    return args


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except SaynaError as exc:
        sys.exit(f"error: {exc}")
    except KeyboardInterrupt:
        pass
