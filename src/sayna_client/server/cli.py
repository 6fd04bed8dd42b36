"""``sayna serve``: run the local server until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import errno
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Mapping
from typing import Any, Callable, Optional, TypeVar

from .._cli_util import EXIT_FAILURE, EXIT_USAGE, Parser, non_negative_float, port
from .app import LocalServer
from .config_file import ConfigError, load_settings
from .engines import ENGINE_NAMES, EngineUnavailable
from .faults import Faults

__all__ = ["LOOP_NAMES", "build_parser", "loop_runner", "serve_main", "serve_options"]

#: The event loops ``sayna serve --loop`` runs on.
LOOP_NAMES = ("asyncio", "uvloop")
#: How to get uvloop, pinned to the version tested with this package.
UVLOOP_HINT = "pip install 'sayna-client[uvloop]'"

_T = TypeVar("_T")


class LoopUnavailable(Exception):
    """The event loop asked for cannot run here; the message names the fix."""


def loop_runner(name: str) -> Callable[[Coroutine[Any, Any, _T]], _T]:
    """What runs a coroutine to its end on a fresh event loop of ``name`` (one of
    :data:`LOOP_NAMES`): ``asyncio.run`` (which makes its loop with the process's event
    loop policy: after a ``uvloop.install()`` that is uvloop's too) or ``uvloop.run``.

    Raises:
        LoopUnavailable: uvloop is not installed (the message names the ``uvloop``
            extra), is too old to have ``uvloop.run`` (0.18+), cannot be imported (the
            message carries why), or this is Windows (uvloop does not run there).
        ValueError: ``name`` is no loop of :data:`LOOP_NAMES`.
    """
    if name == "asyncio":
        return asyncio.run
    if name != "uvloop":
        raise ValueError(f"unknown event loop {name!r}: choose one of {', '.join(LOOP_NAMES)}")
    if sys.platform == "win32":
        raise LoopUnavailable("uvloop does not run on Windows: use --loop asyncio")
    try:
        import uvloop
    except ModuleNotFoundError as exc:
        if exc.name != "uvloop":  # a module uvloop itself needs
            raise LoopUnavailable(_broken_uvloop(exc)) from exc
        raise LoopUnavailable(
            f"--loop uvloop needs the optional 'uvloop' extra: {UVLOOP_HINT}"
        ) from exc
    except ImportError as exc:  # installed, but not for this Python (or damaged)
        raise LoopUnavailable(_broken_uvloop(exc)) from exc
    run: Optional[Callable[[Coroutine[Any, Any, _T]], _T]] = getattr(uvloop, "run", None)
    if run is None:
        version = getattr(uvloop, "__version__", "?")
        raise LoopUnavailable(
            f"uvloop {version} is too old for --loop uvloop (0.18 or later has uvloop.run): "
            f"{UVLOOP_HINT}"
        )
    return run


def _broken_uvloop(exc: ImportError) -> str:
    return f"uvloop is installed but cannot be imported ({exc}): reinstall it with {UVLOOP_HINT}"


def _loop_name() -> str:
    """The running event loop, as the banner names it (uvloop with its version)."""
    module = type(asyncio.get_running_loop()).__module__.split(".", 1)[0]
    if module == "uvloop":
        version = getattr(sys.modules.get("uvloop"), "__version__", "")
        return f"uvloop {version}".rstrip()
    return module


def build_parser(prog: str = "sayna serve") -> argparse.ArgumentParser:
    """The ``sayna serve`` argument parser; usage errors are one line, exit status 2."""
    parser = Parser(
        prog=prog,
        description="Run a local Sayna-compatible server (REST and WebSocket, no network "
        "needed) until Ctrl-C.",
        epilog="examples:\n  sayna serve\n  sayna serve --engine local --port 3001\n"
        "  sayna serve --port 0 --api-key dev-key   # any free port, auth required\n"
        "  sayna serve --config sayna.json          # hooks and keys from a Sayna config\n"
        "  AUTH_REQUIRED=true AUTH_API_SECRET=k sayna serve   # Sayna's own variables\n\n"
        "Sayna's environment variables read (under --config, over the defaults):\n"
        "  LIVEKIT_URL LIVEKIT_PUBLIC_URL LIVEKIT_API_KEY LIVEKIT_API_SECRET\n"
        "  AUTH_REQUIRED AUTH_API_SECRETS_JSON AUTH_API_SECRET AUTH_API_SECRET_ID\n"
        "  SIP_ROOM_PREFIX SIP_HOOKS_JSON SIP_HOOK_SECRET SIP_OUTBOUND_ADDRESS RECORDING_*\n"
        "  (not HOST or PORT: 127.0.0.1:3001 unless --host/--port or the file says)",
    )
    parser.add_argument(
        "--config",
        default=None,
        metavar="FILE",
        help="a Sayna config file (JSON, or YAML with PyYAML): server, livekit, auth, sip "
        "and recording keys, SIP hooks included; it wins over Sayna's variables, as on "
        "Sayna, and command-line options win over both (default: none)",
    )
    parser.add_argument(
        "--host",
        default=None,
        help="interface to bind (default: the file's server.host, else 127.0.0.1; $HOST is "
        "not read)",
    )
    parser.add_argument(
        "--port",
        type=port,
        default=None,
        help="TCP port, 0 = any free port (default: the file's server.port, else 3001; "
        "$PORT is not read)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINE_NAMES,
        default="fake",
        help="engine behind every provider name: fake (deterministic tones) or local "
        "(Whisper + Silero VAD + a Piper voice, offline, needs the [local] extra; see "
        "docs/local-engine.md) (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="require this API key (tenant 'default'), besides any secret the file or "
        "$AUTH_REQUIRED with $AUTH_API_SECRET(S_JSON) set (default: $SAYNA_API_KEY; unset = "
        "their auth, else none)",
    )
    parser.add_argument(
        "--stt-hint",
        default="",
        metavar="WORDS",
        help="words the local engine should expect, e.g. --stt-hint Sayna (default: none)",
    )
    parser.add_argument(
        "--livekit-url",
        default=None,
        help="LiveKit URL reported to clients (default: livekit.public_url, "
        "$LIVEKIT_PUBLIC_URL, livekit.url, $LIVEKIT_URL, else ws://127.0.0.1:7880)",
    )
    parser.add_argument(
        "--livekit-api-key",
        default=None,
        help="LiveKit API key for tokens and /livekit/webhook (default: livekit.api_key, "
        "else $LIVEKIT_API_KEY; unset = a random one)",
    )
    parser.add_argument(
        "--livekit-api-secret",
        default=None,
        help="LiveKit API secret signing tokens and verifying /livekit/webhook (default: "
        "livekit.api_secret, else $LIVEKIT_API_SECRET; unset = a random one, never printed)",
    )
    parser.add_argument(
        "--hook-secret",
        default=None,
        help="global SIP webhook signing secret (default: sip.hook_secret, else "
        "$SIP_HOOK_SECRET; unset = none, hooks are unsigned unless they have their own)",
    )
    parser.add_argument(
        "--sip-hook-host",
        dest="sip_hook_hosts",
        action="append",
        metavar="HOST",
        default=None,
        help="allow SIP hook URLs on this host only (repeat for several; default: any host)",
    )
    parser.add_argument(
        "--max-message-bytes",
        type=int,
        default=4 * 1024 * 1024,
        metavar="N",
        help="largest WebSocket message accepted, up to the real server's 67108864 "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--no-control",
        dest="control",
        action="store_false",
        help="do not serve the /_local/... control endpoints (default: served)",
    )
    parser.add_argument(
        "--fast-tts",
        action="store_true",
        help="send TTS audio as fast as it is made instead of at the pace of speech, for "
        "benchmarks (default: paced)",
    )
    parser.add_argument(
        "--loop",
        choices=LOOP_NAMES,
        default="asyncio",
        help="event loop to serve on: asyncio, or uvloop (needs the [uvloop] extra, not on "
        "Windows; benchmarks/UVLOOP.md) (default: %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level (default: %(default)s)",
    )
    faults = parser.add_argument_group("fault injection (for client tests)")
    faults.add_argument(
        "--fault-ready-delay",
        type=non_negative_float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long before sending ready (default: %(default)s)",
    )
    faults.add_argument(
        "--fault-never-send-ready",
        action="store_true",
        help="never answer the config with ready (default: off)",
    )
    faults.add_argument(
        "--fault-ignore-pings",
        action="store_true",
        help="do not answer WebSocket pings (default: off)",
    )
    faults.add_argument(
        "--fault-drop-after-frames",
        type=int,
        default=None,
        metavar="N",
        help="drop the connection (no Close frame) after sending N frames to the client, "
        "any kind: ready, results, audio... (default: never)",
    )
    faults.add_argument(
        "--fault-malformed-frames",
        action="store_true",
        help="send malformed JSON frames (default: off)",
    )
    return parser


async def _serve(server: LocalServer, out: _Printer) -> None:
    """Serve until Ctrl-C or SIGTERM (``docker stop``, systemd, ``kill``): both close the
    sessions with a close frame and stop the engine, then ``sayna serve`` exits 0 (a second
    Ctrl-C meanwhile interrupts at once)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_ctrl_c() -> None:
        # The first Ctrl-C stops as SIGTERM does; a second one, while the sessions close,
        # interrupts at once (KeyboardInterrupt, as Python's own handler does).
        stop.set()
        loop.remove_signal_handler(signal.SIGINT)

    handlers: list[tuple[signal.Signals, Callable[[], None]]] = [(signal.SIGTERM, stop.set)]
    # Ctrl-C only where Python's own handler is in place (not when the process was started
    # with SIGINT ignored, e.g. in the background of a shell script). Without this,
    # asyncio.run of Python 3.9-3.10 and uvloop.run leave the sessions unclosed on Ctrl-C.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        handlers.append((signal.SIGINT, on_ctrl_c))
    handled: list[signal.Signals] = []
    for signum, handler in handlers:
        try:
            loop.add_signal_handler(signum, handler)
        except (NotImplementedError, RuntimeError, ValueError):  # Windows, or not the main thread
            break
        handled.append(signum)
    try:
        await server.start()
        try:
            out(f"Sayna local server listening on {server.url} (WebSocket {server.ws_url})")
            out(
                f"engine: {server.engine}; event loop: {_loop_name()}; "
                f"LiveKit API key: {server.livekit_api_key}"
            )
            out("press Ctrl-C to stop")
            await stop.wait()
        finally:
            await server.stop()
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)


class _Printer:
    def __call__(self, text: str) -> None:
        print(text, flush=True)


def serve_main(argv: Optional[list[str]] = None) -> int:
    """Entry point of ``sayna serve``; returns the process exit status.

    The settings are :func:`serve_options`: the ``--config`` file over Sayna's own
    environment variables, command-line options over both. Exits 2 when the engine is
    unavailable (e.g. ``--engine local`` without ``pip install 'sayna-client[local]'``),
    the event loop is (``--loop uvloop`` without ``pip install 'sayna-client[uvloop]'``)
    or the config file or a variable is unusable (one line naming it), 0 on Ctrl-C or
    SIGTERM (sessions closed with a close frame, the engine stopped).
    """
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    try:
        options = serve_options(args, os.environ)
    except ConfigError as exc:
        print(f"sayna serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        run = loop_runner(args.loop)
    except LoopUnavailable as exc:
        print(f"sayna serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        server = _make_server(args, options)
    except ValueError as exc:  # an option out of range, named by the message
        print(f"sayna serve: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        run(_serve(server, _Printer()))
    except KeyboardInterrupt:
        return 0
    except EngineUnavailable as exc:
        print(f"sayna serve: cannot start engine {args.engine!r}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:
        where, number = options["host"], options["port"]
        print(f"sayna serve: {_listen_problem(where, number, exc)}", file=sys.stderr)
        return EXIT_FAILURE
    return 0


def serve_options(args: argparse.Namespace, environ: Mapping[str, str]) -> dict[str, Any]:
    """The :class:`~.app.LocalServer` settings of ``sayna serve``: the ``--config`` file
    and Sayna's environment variables merged as the real server merges them (file first;
    :func:`~.config_file.load_settings`), then the command-line options over both, then
    ``127.0.0.1:3001``. ``--api-key`` (else ``SAYNA_API_KEY``, this package's own
    variable) adds a key of tenant ``default`` to whatever authentication they set.

    Raises:
        ConfigError: the file or a variable is unusable (the message names it).
    """
    api_key = args.api_key or environ.get("SAYNA_API_KEY") or None
    options = load_settings(args.config, environ, key_given=api_key is not None)
    for key, value in (
        ("host", args.host),
        ("port", args.port),
        ("livekit_url", args.livekit_url),
        ("livekit_api_key", args.livekit_api_key or None),
        ("livekit_api_secret", args.livekit_api_secret or None),
        ("hook_secret", args.hook_secret),
    ):
        if value is not None:
            options[key] = value
    options.setdefault("host", "127.0.0.1")
    options.setdefault("port", 3001)
    if api_key:
        options["api_key"] = api_key
    return options


def _listen_problem(host: str, port_number: int, exc: OSError) -> str:
    """One line for a failed bind, with the fix."""
    if exc.errno == errno.EADDRINUSE:
        return (
            f"port {port_number} on {host} is already in use (another `sayna serve`?): "
            "stop that program, or pass --port N (--port 0 picks a free one)"
        )
    if exc.errno in (errno.EACCES, errno.EPERM):
        return (
            f"no permission to listen on {host}:{port_number} (ports below 1024 need root): "
            "pass --port 3001 or another port above 1023"
        )
    if exc.errno == errno.EADDRNOTAVAIL or isinstance(exc, socket.gaierror):
        return f"cannot listen on {host}: not an address of this machine; pass --host 127.0.0.1"
    return f"cannot listen on {host}:{port_number}: {exc.strerror or exc}"


def _make_server(args: argparse.Namespace, options: dict[str, Any]) -> LocalServer:
    """The server ``args`` and ``options`` describe.

    Raises:
        ValueError: an option is out of range.
    """
    return LocalServer(
        engine=args.engine,
        stt_hint=args.stt_hint,
        max_message_bytes=args.max_message_bytes,
        sip_hook_hosts=args.sip_hook_hosts,
        keep_audio=0,  # records are only readable in-process; the counters still count
        keep_records=1000,
        control=args.control,
        tts_realtime=not args.fast_tts,
        faults=Faults(
            never_send_ready=args.fault_never_send_ready,
            ready_delay=args.fault_ready_delay,
            drop_connection_after_frames=args.fault_drop_after_frames,
            malformed_frames=args.fault_malformed_frames,
            ignore_pings=args.fault_ignore_pings,
        ),
        **options,
    )
