"""A Pipecat voice agent on Sayna: SaynaSTTService -> LLM -> SaynaTTSService.

    sayna serve --engine local                    # terminal 1 (or the fake engine)
    python examples/pipecat_agent.py "What time is it?"   # terminal 2

Needs ``pip install 'sayna-client[pipecat]'`` (Python 3.11+). No microphone: the caller's
question is synthesized by the server (``speak_rest``) and streamed through the pipeline
as input audio frames, the way a transport would deliver a microphone; the agent's spoken
answer is written to ``reply.wav``. The "LLM" is a tiny processor that repeats what it
heard; put a real one (``OpenAILLMService``...) in its place.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from _agent_cli import agent_arguments, run_agent
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    TranscriptionFrame,
    TTSAudioRawFrame,
    TTSStoppedFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineParams, PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import LLMContextAggregatorPair
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.workers.runner import WorkerRunner

from sayna_client import SaynaClient, STTConfig, TTSConfig, audio
from sayna_client.integrations.pipecat import SaynaSTTService, SaynaTTSService

IN_RATE, OUT_RATE = 16000, 24000


class EchoLLM(FrameProcessor):
    """Answers each user turn with what it heard (stands in for an LLM service)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        heard = str(frame.context.get_messages()[-1]["content"])
        await self.push_frame(LLMFullResponseStartFrame())
        await self.push_frame(LLMTextFrame(f"You said: {heard}."))
        await self.push_frame(LLMFullResponseEndFrame())


class Speaker(FrameProcessor):
    """The output device: writes the agent's audio to a WAV file."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.wav = audio.WavWriter(path, OUT_RATE)
        self.done = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TTSAudioRawFrame):
            self.wav.write(frame.audio)
        elif isinstance(frame, TTSStoppedFrame):
            self.done.set()
        await self.push_frame(frame, direction)


class Transcript(FrameProcessor):
    """Prints what the STT service pushed (before the user aggregator consumes it)."""

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            print(f"heard:  {frame.text}")
        await self.push_frame(frame, direction)


async def run(args: argparse.Namespace) -> None:
    stt_config = STTConfig(provider=args.provider, model="nova-2")
    tts_config = TTSConfig(provider=args.provider, voice_id=args.voice)
    client = SaynaClient(args.url, stt_config, tts_config, api_key=args.api_key)
    # The caller: the question, spoken by the server's TTS at the pipeline's input rate.
    question, _ = await client.speak_rest(
        args.question, tts_config.model_copy(update={"sample_rate": IN_RATE})
    )
    context = LLMContext()
    aggregators = LLMContextAggregatorPair(context)
    speaker = Speaker(args.out)
    pipeline = Pipeline(
        [
            SaynaSTTService(client=client),  # the two services share the client's session
            Transcript(),
            aggregators.user(),
            EchoLLM(),
            SaynaTTSService(client=client),
            speaker,
            aggregators.assistant(),
        ]
    )
    worker = PipelineWorker(
        pipeline,
        params=PipelineParams(audio_in_sample_rate=IN_RATE, audio_out_sample_rate=OUT_RATE),
        cancel_on_idle_timeout=False,
    )
    started = asyncio.Event()

    async def on_started(worker: Any, frame: Frame) -> None:
        started.set()

    worker.event_handler("on_pipeline_started")(on_started)
    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    await asyncio.wait_for(started.wait(), 30)
    step = IN_RATE * 2 // 50  # 20 ms frames, as a transport delivers them
    pcm = question + bytes(IN_RATE * 2)  # then a second of silence: the turn ends
    async for chunk in audio.paced(
        [pcm[i : i + step] for i in range(0, len(pcm), step)], speed=args.speed
    ):
        await worker.queue_frame(InputAudioRawFrame(chunk, IN_RATE, 1))
    await asyncio.wait_for(speaker.done.wait(), 60)
    await worker.queue_frame(EndFrame())
    await asyncio.wait_for(running, 30)
    speaker.wav.close()
    print(f"agent:  {speaker.wav.duration_ms / 1000:.2f} s of speech written to {args.out}")


def main() -> int:
    parser = agent_arguments(__doc__)
    parser.add_argument("--quiet", action="store_true", help="hide Pipecat's log")
    args = parser.parse_args()
    if args.quiet:
        from loguru import logger

        logger.remove()
    return run_agent(run, args)


if __name__ == "__main__":
    sys.exit(main())
