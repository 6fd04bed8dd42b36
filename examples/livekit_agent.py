"""LiveKit Agents plugins on Sayna: sayna.STT and sayna.TTS through LiveKit's stream APIs.

    sayna serve --engine local                    # terminal 1 (or the fake engine)
    python examples/livekit_agent.py "What time is it?"   # terminal 2

Needs ``pip install 'sayna-client[livekit]'`` (Python 3.10+). No LiveKit server: the
caller's question is synthesized by Sayna (``speak_rest``), pushed into an STT stream as
the 10 ms ``rtc.AudioFrame``s a room track delivers, and the answer is spoken through a
TTS stream into ``reply.wav``, the two calls an ``AgentSession`` makes. In an agent, pass
the same objects to ``AgentSession(stt=..., tts=...)``.
"""

from __future__ import annotations

import argparse
import sys

from _agent_cli import agent_arguments, run_agent
from livekit import rtc
from livekit.agents import APIConnectOptions, APIError, stt

from sayna_client import SaynaClient, SaynaError, STTConfig, TTSConfig, audio
from sayna_client.integrations import livekit as sayna

RATE = 16000


async def run(args: argparse.Namespace) -> None:
    stt_config = STTConfig(provider=args.provider, model="nova-2", sample_rate=RATE)
    tts_config = TTSConfig(provider=args.provider, voice_id=args.voice)
    options = {"url": args.url, "api_key": args.api_key}
    recognizer = sayna.STT(stt_config=stt_config, tts_config=tts_config, **options)
    speaker = sayna.TTS(stt_config=stt_config, tts_config=tts_config, **options)
    conn = APIConnectOptions(max_retry=1, timeout=30)

    async with SaynaClient(args.url, without_audio=True, api_key=args.api_key) as rest:
        question, _ = await rest.speak_rest(
            args.question, tts_config.model_copy(update={"sample_rate": RATE})
        )
    pcm = question + bytes(RATE * 2)  # the question, then a second of silence
    step = RATE * 2 // 100  # 10 ms frames, like a room track

    stream = recognizer.stream(conn_options=conn)
    async for chunk in audio.paced(
        [pcm[i : i + step] for i in range(0, len(pcm), step)], frame_ms=10, speed=args.speed
    ):
        stream.push_frame(rtc.AudioFrame(chunk, RATE, 1, len(chunk) // 2))
    stream.end_input()
    heard: list[str] = []
    async for event in stream:
        if event.type == stt.SpeechEventType.FINAL_TRANSCRIPT:
            heard.append(event.alternatives[0].text)
        if event.type != stt.SpeechEventType.RECOGNITION_USAGE:
            text = event.alternatives[0].text if event.alternatives else ""
            print(f"stt: {event.type.value} {text}".rstrip())
    await stream.aclose()

    answer = f"You said: {' '.join(heard)}."
    synthesis = speaker.stream(conn_options=conn)
    for word in answer.split(" "):  # tokens, as an LLM streams them
        synthesis.push_text(word + " ")
    synthesis.end_input()
    with audio.WavWriter(args.out, speaker.sample_rate) as wav:
        async for piece in synthesis:
            wav.write(piece.frame.data.tobytes())
        seconds = wav.duration_ms / 1000
    await synthesis.aclose()
    await speaker.aclose()
    print(f"tts: {answer!r}: {seconds:.2f} s of speech written to {args.out}")


def main() -> int:
    return run_agent(run, agent_arguments(__doc__).parse_args(), (SaynaError, APIError))


if __name__ == "__main__":
    sys.exit(main())
