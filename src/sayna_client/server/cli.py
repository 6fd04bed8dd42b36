"""``sayna serve``: run the local server until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from typing import Optional

from .app import LocalServer
from .engines import ENGINE_NAMES, EngineUnavailable
from .faults import Faults

__all__ = ["build_parser", "serve_main"]


def build_parser(prog: str = "sayna serve") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Run a local Sayna-compatible server (no network needed)."
    )
    parser.add_argument(
        "--host", default="127.0.0.1", help="interface to bind (default: %(default)s)"
    )
    parser.add_argument("--port", type=int, default=3001, help="TCP port (default: %(default)s)")
    parser.add_argument(
        "--engine",
        choices=ENGINE_NAMES,
        default="fake",
        help="engine serving real provider names (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this API key (default: $SAYNA_API_KEY; unset = no auth)",
    )
    parser.add_argument("--livekit-url", default="ws://127.0.0.1:7880", help="reported LiveKit URL")
    parser.add_argument(
        "--livekit-api-key",
        default=None,
        help="LiveKit API key for tokens and /livekit/webhook (default: $LIVEKIT_API_KEY; "
        "unset = a random one)",
    )
    parser.add_argument(
        "--livekit-api-secret",
        default=None,
        help="LiveKit API secret signing tokens and verifying /livekit/webhook (default: "
        "$LIVEKIT_API_SECRET; unset = a random one, never printed)",
    )
    parser.add_argument("--hook-secret", default=None, help="global SIP webhook signing secret")
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level (default: %(default)s)",
    )
    faults = parser.add_argument_group("fault injection (for client tests)")
    faults.add_argument("--fault-ready-delay", type=float, default=0.0, metavar="SECONDS")
    faults.add_argument("--fault-never-send-ready", action="store_true")
    faults.add_argument("--fault-ignore-pings", action="store_true")
    faults.add_argument("--fault-drop-after-frames", type=int, default=None, metavar="N")
    faults.add_argument("--fault-malformed-frames", action="store_true")
    return parser


async def _serve(server: LocalServer, out: _Printer) -> None:
    await server.start()
    try:
        out(f"Sayna local server listening on {server.url} (WebSocket {server.ws_url})")
        out(f"engine: {server.engine}; LiveKit API key: {server.livekit_api_key}")
        out("press Ctrl-C to stop")
        await asyncio.Event().wait()
    finally:
        await server.stop()


class _Printer:
    def __call__(self, text: str) -> None:
        print(text, flush=True)


def serve_main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``sayna serve``; returns the process exit status.

    The API key falls back to ``SAYNA_API_KEY``, the LiveKit key and secret to
    ``LIVEKIT_API_KEY`` / ``LIVEKIT_API_SECRET`` (random when unset). Exits 2 when the
    engine is unavailable (e.g. ``--engine local`` without
    ``pip install 'sayna-client[local]'``), 0 on Ctrl-C.
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    server = LocalServer(
        host=args.host,
        port=args.port,
        engine=args.engine,
        api_key=args.api_key or os.environ.get("SAYNA_API_KEY") or None,
        livekit_url=args.livekit_url,
        livekit_api_key=args.livekit_api_key or os.environ.get("LIVEKIT_API_KEY") or None,
        livekit_api_secret=args.livekit_api_secret or os.environ.get("LIVEKIT_API_SECRET") or None,
        hook_secret=args.hook_secret,
        keep_audio=0,  # records are only readable in-process; the counters still count
        faults=Faults(
            never_send_ready=args.fault_never_send_ready,
            ready_delay=args.fault_ready_delay,
            drop_connection_after_frames=args.fault_drop_after_frames,
            malformed_frames=args.fault_malformed_frames,
            ignore_pings=args.fault_ignore_pings,
        ),
    )
    try:
        asyncio.run(_serve(server, _Printer()))
    except KeyboardInterrupt:
        return 0
    except EngineUnavailable as exc:
        print(f"sayna serve: cannot start engine {args.engine!r}: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"sayna serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0
