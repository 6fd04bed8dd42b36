"""A voice agent loop with barge-in: greet, answer every user turn, stop when interrupted.

    sayna serve                                              # terminal 1 (fake engine)
    python examples/voice_agent.py --simulate --turns 3      # terminal 2

The agent greets with ``speak``, consumes ``client.turns()`` (one ``Turn`` per user
utterance, interim and final results joined) and answers each turn with ``speak``.
Sayna never interrupts speech by itself ("no automatic barge-in" in the protocol), so
when an interim ``stt_result`` arrives while the agent is still talking, the agent
sends ``clear()`` and drops the audio its speaker has not played yet.

"Still talking" is decided at the speaker, not at the server: TTS audio arrives faster
than real time, so the agent talks until its speaker has played what it received.

``--simulate`` needs no microphone: a simulated caller speaks lines synthesized with
``speak_rest`` into the session, every second one over the agent (a barge-in). With
the ``fake`` engine every spoken word is a tone and every turn reads ``word word ...``;
``sayna serve --engine local`` gives real speech. Without ``--simulate`` the agent uses
the microphone and loudspeaker through the optional ``sounddevice`` package (wear
headphones, or the agent hears itself and barges in on its own voice).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
import threading
from collections.abc import AsyncIterator

from sayna_client import (
    Event,
    SaynaClient,
    SaynaError,
    STTConfig,
    STTResultMessage,
    TTSAudio,
    TTSConfig,
    TTSPlaybackCompleteMessage,
    Turn,
    audio,
)

FRAME_MS = 20
MIC_RATE = 16000  # what the microphone sends (stt_config.sample_rate)
SPEAKER_RATE = 24000  # what the agent's voice comes back at (tts_config.sample_rate)
GREETING = "Hello! How can I help you today?"
GOODBYE = "Thank you for calling. Goodbye!"
CALLER_LINES = (
    "hello there",
    "sorry to interrupt but what time is it",
    "thank you very much",
    "could you say that again please",
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key",
        default=os.environ.get("SAYNA_API_KEY"),
        help="API key (default: $SAYNA_API_KEY)",
    )
    parser.add_argument(
        "--simulate", action="store_true", help="play a simulated caller (no microphone)"
    )
    parser.add_argument(
        "--turns",
        type=int,
        default=None,
        help="stop after N user turns (default: 3 with --simulate, else run until Ctrl-C)",
    )
    args = parser.parse_args()
    if args.turns is None and args.simulate:
        args.turns = 3
    return args


def answer(turn: Turn) -> str:
    """The agent's brain: replace it with your LLM call."""
    said = turn.text.rstrip(".?! ")
    return f"You said: {said}. That was {len(said.split())} words. Tell me more, I am listening."


class Speaker:
    """The agent's loudspeaker: a buffer the output device drains in real time.

    ``on_event`` takes the session's audio and synthesis completions, ``pull`` is called
    by the device (possibly from a sound card thread, hence the lock), ``stop`` drops
    what was not played yet (barge-in). All but ``pull`` run on the event loop.
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._lock = threading.Lock()
        self._buffer = bytearray()
        self._pending = False  # a speak was sent and its synthesis is not complete
        self._muted = False  # after stop(): late chunks of the cancelled speech are ignored
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def busy(self) -> bool:
        """True while the agent is talking: speech outstanding or not yet played."""
        with self._lock:
            return self._pending or bool(self._buffer)

    def expect(self) -> None:
        """A ``speak`` is about to be sent: the agent talks from now on."""
        with self._lock:
            self._pending, self._muted = True, False
        self._idle.clear()

    def on_event(self, event: Event) -> None:
        if isinstance(event, TTSAudio):
            with self._lock:
                if not self._muted:
                    self._buffer += event.data
        elif isinstance(event, TTSPlaybackCompleteMessage):
            with self._lock:
                self._pending = False
            self._check_idle()

    def pull(self, size: int) -> bytes:
        with self._lock:
            data = bytes(self._buffer[:size])
            del self._buffer[:size]
            played_out = bool(data) and not self._buffer and not self._pending
        if played_out:
            self._loop.call_soon_threadsafe(self._check_idle)
        return data

    def stop(self) -> float:
        """Drop unplayed audio; returns how many seconds of speech were cut."""
        with self._lock:
            cut = len(self._buffer) / (SPEAKER_RATE * 2)
            self._buffer.clear()
            self._pending, self._muted = False, True
        self._idle.set()
        return cut

    async def wait_idle(self) -> None:
        await self._idle.wait()

    def _check_idle(self) -> None:
        if not self.busy:
            self._idle.set()


async def virtual_speaker(speaker: Speaker) -> None:
    """No sound card: consume the agent's audio at real-time pace and discard it."""
    size = audio.frame_bytes(FRAME_MS, SPEAKER_RATE)
    async for _ in audio.paced(itertools.repeat(b""), frame_ms=FRAME_MS):
        speaker.pull(size)


class SimulatedCaller:
    """Plays the user through a virtual microphone that sends a 20 ms frame at a time.

    Before each frame it "listens" to the agent's speaker, as a person would: it waits
    for the agent to speak (the greeting or an answer), then either lets it finish and
    answers 300 ms later, or, every second line, starts talking 400 ms into it.
    """

    def __init__(self, lines: list[tuple[str, bytes]], speaker: Speaker) -> None:
        self._lines = lines
        self._speaker = speaker
        self._voice = b""  # what is left of the line being said
        self._heard_agent = False
        self._frames = 0
        self._said = 0

    @classmethod
    async def create(
        cls, client: SaynaClient, tts: TTSConfig, speaker: Speaker, count: int
    ) -> SimulatedCaller:
        # The caller's voice: the session's own TTS, rendered over REST at the mic's rate.
        voice = tts.model_copy(update={"sample_rate": MIC_RATE})
        texts = list(itertools.islice(itertools.cycle(CALLER_LINES), count))
        return cls([(text, (await client.speak_rest(text, voice))[0]) for text in texts], speaker)

    async def microphone(self) -> AsyncIterator[bytes]:
        size = audio.frame_bytes(FRAME_MS, MIC_RATE)
        async for _ in audio.paced(itertools.repeat(b""), frame_ms=FRAME_MS):
            if not self._voice:
                self._decide()
            frame, self._voice = self._voice[:size], self._voice[size:]
            yield frame.ljust(size, b"\x00")  # silence when not talking

    def _decide(self) -> None:
        if not self._lines:
            return
        if not self._heard_agent:  # wait for the agent to say something
            self._heard_agent, self._frames = self._speaker.busy, 0
            return
        interrupt = self._said % 2 == 1
        if interrupt:
            self._frames += 1  # frames since the agent started talking
            if self._frames < 400 // FRAME_MS:
                return
        else:
            self._frames = 0 if self._speaker.busy else self._frames + 1  # quiet frames
            if self._frames < 300 // FRAME_MS:
                return
        text, self._voice = self._lines.pop(0)
        self._heard_agent = False
        self._said += 1
        how = "talks over the agent" if interrupt else "says"
        print(f'[caller] {how}: "{text}"', flush=True)


def sound_card(speaker: Speaker) -> AsyncIterator[bytes]:
    """Microphone frames from the default input device; plays ``speaker`` on the output."""
    try:
        import sounddevice  # optional: pip install sounddevice (needs PortAudio)
    except (ImportError, OSError) as exc:
        raise SystemExit(f"live mode needs sounddevice ({exc}); or run with --simulate") from exc
    loop = asyncio.get_running_loop()
    frames: asyncio.Queue[bytes] = asyncio.Queue()

    def on_input(data: bytes, *_: object) -> None:  # PortAudio's thread
        loop.call_soon_threadsafe(frames.put_nowait, bytes(data))

    def on_output(out: bytearray, *_: object) -> None:  # PortAudio's thread
        data = speaker.pull(len(out))
        out[:] = data + bytes(len(out) - len(data))

    async def microphone() -> AsyncIterator[bytes]:
        mic = sounddevice.RawInputStream(
            samplerate=MIC_RATE,
            blocksize=MIC_RATE * FRAME_MS // 1000,
            channels=1,
            dtype="int16",
            callback=on_input,
        )
        out = sounddevice.RawOutputStream(
            samplerate=SPEAKER_RATE, channels=1, dtype="int16", callback=on_output
        )
        with mic, out:
            print("listening on the microphone; press Ctrl-C to stop", flush=True)
            while True:
                yield await frames.get()

    return microphone()


async def main(args: argparse.Namespace) -> None:
    # A production config; on the local server these providers run on its engine.
    stt = STTConfig(provider="deepgram", model="nova-2", sample_rate=MIC_RATE)
    tts = TTSConfig(provider="deepgram", voice_id="aura-asteria-en", sample_rate=SPEAKER_RATE)
    speaker = Speaker()
    barge_ins = count = 0

    async with SaynaClient(args.url, stt, tts, api_key=args.api_key) as client:

        async def on_stt_result(result: STTResultMessage) -> None:
            # Barge-in: the user is heard (an interim) while the agent is still talking.
            nonlocal barge_ins
            if not result.is_final and result.transcript and speaker.busy:
                cut = speaker.stop()  # silence the speaker at once...
                await client.clear()  # ...and cancel what the server still synthesizes
                barge_ins += 1
                print(
                    f"barge-in: the user started talking; dropped {cut:.1f} s of buffered "
                    "speech, clear() cancels the rest",
                    flush=True,
                )

        # Callbacks run on their own tasks: this one never delays the audio below.
        client.register_on_stt_result(on_stt_result)

        async def play(events: AsyncIterator[Event]) -> None:
            # One consumer sees audio and tts_playback_complete in arrival order, so the
            # speaker knows synthesis is over only once it holds every chunk.
            async for event in events:
                speaker.on_event(event)

        async def stream(microphone: AsyncIterator[bytes]) -> None:
            async for frame in microphone:
                await client.on_audio_input(frame)

        async def say(text: str) -> None:
            speaker.expect()
            print(f"agent: {text}", flush=True)
            await client.speak(text)

        if args.simulate:
            caller = await SimulatedCaller.create(client, tts, speaker, args.turns)
            microphone = caller.microphone()
        else:
            microphone = sound_card(speaker)  # the sound card also plays the speaker

        # Subscribe before connecting, so nothing that follows is missed.
        events, turns = client.events(), client.turns()
        await client.connect()
        print(f"connected: stream_id={client.received_stream_id}", flush=True)
        jobs = [play(events), stream(microphone)]
        if args.simulate:
            jobs.append(virtual_speaker(speaker))
        tasks = [asyncio.ensure_future(job) for job in jobs]
        try:
            await say(GREETING)
            async for turn in turns:
                count += 1
                print(
                    f'turn {count}: "{turn.text}" ({turn.interim_count} interim results)',
                    flush=True,
                )
                if args.turns is not None and count >= args.turns:
                    await say(GOODBYE)
                    break
                await say(answer(turn))
            await speaker.wait_idle()  # let the last words play out before hanging up
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        first_audio = client.metrics.speak_to_first_audio_last
    print(f"done: {count} turns, {barge_ins} barge-in(s)", end="")
    print(f"; last speak -> first audio {first_audio * 1000:.0f} ms" if first_audio else "")


if __name__ == "__main__":
    try:
        asyncio.run(main(parse_args()))
    except SaynaError as exc:
        sys.exit(f"error: {exc}")
    except OSError as exc:  # a file or folder that cannot be read or written
        sys.exit(f"error: {exc.filename or ''}: {exc.strerror or exc}")
    except KeyboardInterrupt:
        pass
