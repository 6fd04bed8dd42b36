"""The command line the two framework examples share (``pipecat_agent.py`` and
``livekit_agent.py``): the question the simulated caller asks, where the server is, the
provider and voice, how fast to stream, where the reply goes; and how they end (exit 1
with the error's message on a Sayna or framework error)."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable
from pathlib import Path
from typing import Callable

from sayna_client import SaynaError


def agent_arguments(doc: str) -> argparse.ArgumentParser:
    """The shared options, described by the first line of the example's ``doc``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("question", nargs="?", default="What time is it?")
    parser.add_argument("--url", default="http://127.0.0.1:3001", help="Sayna server URL")
    parser.add_argument(
        "--api-key", default=os.environ.get("SAYNA_API_KEY"), help="(default: $SAYNA_API_KEY)"
    )
    parser.add_argument("--provider", default="deepgram", help="STT and TTS provider")
    parser.add_argument("--voice", default="aura-asteria-en", help="TTS voice_id")
    parser.add_argument("--speed", type=float, default=1.0, help="audio faster than real time")
    parser.add_argument("--out", type=Path, default=Path("reply.wav"))
    return parser


def run_agent(
    run: Callable[[argparse.Namespace], Awaitable[None]],
    args: argparse.Namespace,
    errors: tuple[type[BaseException], ...] = (SaynaError,),
) -> int:
    """Run ``run(args)``; the exit status: 0, or 1 after printing one of ``errors``."""

    async def main() -> None:
        await run(args)

    try:
        asyncio.run(main())
    except errors as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
