"""``sayna``'s parser and entry point: which command runs, and errors as one line."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import ssl
import sys
import warnings
from collections.abc import Coroutine, Iterator, Sequence
from typing import Any, Callable, Optional, TextIO, Union

import aiohttp

from .._cli_util import EXIT_FAILURE, EXIT_USAGE, CliError, Parser, silence_broken_pipe
from .._config import is_loopback_host
from .._http_errors import printable
from .._redact import RedactedError, Redactor, safe_url, split_userinfo, url_secrets
from .._rest.base import query_api_key
from .._version import __version__
from ..errors import (
    SaynaAuthenticationError,
    SaynaConnectionClosedError,
    SaynaConnectionError,
    SaynaError,
    SaynaHttpError,
    SaynaTimeoutError,
    SaynaValidationError,
)
from . import demo, rest, talk, transcribe
from .common import DEFAULT_URL

__all__ = ["build_parser", "main"]

_KEY_FIX = "pass --api-key KEY or set SAYNA_API_KEY"

#: The coroutine of every command that runs on ``asyncio.run`` (``demo`` runs its own
#: loop; ``serve`` has its own parser, in ``server.cli``).
_ASYNC_COMMANDS: dict[str, Callable[[argparse.Namespace], Coroutine[Any, Any, int]]] = {
    **rest.COMMANDS,
    "transcribe": transcribe.cmd_transcribe,
    "talk": talk.run,
}


def build_parser() -> argparse.ArgumentParser:
    """The ``sayna`` argument parser (``sayna serve`` has its own, in ``server.cli``)."""
    parser = Parser(
        prog="sayna",
        description="Sayna voice SDK command line. `sayna COMMAND --help` explains each "
        "command's options, with their defaults and an example.",
        epilog="examples:\n  sayna demo\n  sayna serve --engine local\n"
        "  sayna speak 'Hello there' -o hello.wav\n  sayna transcribe hello.wav\n"
        "  sayna talk --input caller.wav --output agent.wav\n\n"
        "exit status: 0 ok, 1 failure (server unreachable, key refused, ...), "
        "2 usage error, 130 Ctrl-C (sayna serve: 0, Ctrl-C is how it stops)",
    )
    parser.add_argument("--version", action="version", version=f"sayna-client {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo.add_parser(sub)
    sub.add_parser(
        "serve", help="run the local Sayna server (see `sayna serve --help`)", add_help=False
    )
    rest.add_parsers(sub)
    transcribe.add_parser(sub)
    talk.add_parser(sub)
    rest.add_livekit_sip_parsers(sub)
    return parser


def _check_hooks_action(argv: Sequence[str]) -> None:
    """``sayna hooks`` with no action, or options first: name the actions (argparse
    would say ``invalid choice: 'http://...'`` for ``sayna hooks --url http://...``)."""
    rest_args = argv[1:]
    if rest_args and (not rest_args[0].startswith("-") or rest_args[0] in ("-h", "--help")):
        return
    Parser(prog="sayna hooks").error(
        f"missing ACTION: choose one of: {', '.join(rest.HOOK_ACTIONS)}; the action "
        "comes before its options, e.g. `sayna hooks list --url URL`"
    )


def _server_reason(exc: SaynaHttpError) -> str:
    """What the server said, from the error body (``message``, else ``error``)."""
    body = exc.body
    if isinstance(body, dict):
        for key in ("message", "error"):
            if isinstance(body.get(key), str) and body[key]:
                return str(body[key])
    if isinstance(body, str) and body.strip():
        return body.strip()[:200]
    return f"HTTP {exc.status_code}"


def _credentials_sent(args: argparse.Namespace) -> bool:
    """Whether the command sent credentials: ``--api-key``, ``$SAYNA_API_KEY``, or the
    ``--url``'s ``?api_key=`` or ``user:password@``."""
    if getattr(args, "api_key", None) or os.environ.get("SAYNA_API_KEY"):
        return True
    url = str(getattr(args, "url", "") or "")
    return query_api_key(url) is not None or split_userinfo(url)[1] is not None


def _refused(exc: BaseException) -> bool:
    """Whether ``exc`` (or an error it was raised from) is a refused TCP connection to
    the server: not to a proxy (``HTTP_PROXY``), which `sayna serve` would not start."""
    seen: set[int] = set()
    current: Optional[BaseException] = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, aiohttp.ClientProxyConnectionError) or (
            # The stand-in for a cause whose text held the proxy's credentials.
            isinstance(current, RedactedError) and "ClientProxyConnectionError" in str(current)
        ):
            return False
        if isinstance(current, ConnectionRefusedError):
            return True
        os_error = getattr(current, "os_error", None)
        if isinstance(os_error, ConnectionRefusedError):
            return True
        cause = getattr(current, "cause", None)
        current = cause if isinstance(cause, BaseException) else current.__cause__
    return False


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it was raised from (``cause``, ``__cause__``, aiohttp's
    ``os_error`` and ``certificate_error``)."""
    seen: set[int] = set()
    todo: list[BaseException] = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        for name in ("cause", "__cause__", "os_error", "certificate_error"):
            inner = getattr(current, name, None)
            if isinstance(inner, BaseException):
                todo.append(inner)


def _untrusted_certificate(exc: BaseException) -> Optional[str]:
    """OpenSSL's reason when ``exc`` is a TLS certificate this machine does not trust
    (``self-signed certificate``...), else None."""
    found = False
    for current in _chain(exc):
        # aiohttp's ClientConnectorCertificateError is an SSLCertVerificationError
        # without OpenSSL's words (its certificate_error has them); a scrubbed stand-in
        # (a URL with credentials in it) keeps only the text.
        if isinstance(current, ssl.SSLCertVerificationError) or (
            "CertificateError" in type(current).__name__
            or "CERTIFICATE_VERIFY_FAILED" in str(current)
        ):
            found = True
            reason = getattr(current, "verify_message", None)
            if isinstance(reason, str) and reason:
                return reason
    return "not trusted" if found else None


def _timed_out(exc: SaynaTimeoutError, args: argparse.Namespace) -> str:
    """A deadline passed: which, and ``--timeout`` (the SDK's message names
    ``Timeouts``, which the command line sets with that option)."""
    seconds = f"{exc.timeout:g} s" if exc.timeout is not None else "the time allowed"
    longer = "pass --timeout SECONDS to wait longer"
    if exc.operation == "connect":
        where = safe_url(getattr(args, "url", DEFAULT_URL))
        return (
            f"no answer from {where} within {seconds} while connecting: check --url and "
            f"that the server is reachable, or {longer}"
        )
    if exc.operation == "ready":
        return (
            f"the server did not get the session ready within {seconds} (its speech "
            f"providers may be slow or misconfigured): {longer}, or check the server's logs"
        )
    if exc.operation.partition(" ")[0] in ("GET", "POST", "PUT", "PATCH", "DELETE"):
        return (
            f"the server did not answer {exc.operation} within {seconds}: {longer}, or "
            "check that the server at --url is working"
        )
    return str(exc)


def _explain(exc: SaynaError, args: argparse.Namespace) -> tuple[str, int]:
    """One line for ``exc`` in the command line's terms, and the exit status."""
    if isinstance(exc, SaynaTimeoutError):
        return _timed_out(exc, args), EXIT_FAILURE
    if isinstance(exc, SaynaAuthenticationError):
        reason = _server_reason(exc)
        if _credentials_sent(args):
            fix = "pass the right key with --api-key KEY or set SAYNA_API_KEY"
            return f"the server refused the API key ({reason}): {fix}", EXIT_FAILURE
        return f"the server requires an API key ({reason}): {_KEY_FIX}", EXIT_FAILURE
    if isinstance(exc, SaynaConnectionError) and not isinstance(exc, SaynaConnectionClosedError):
        # The SDK's message names the cause (refused, DNS, TLS...) and the URL without
        # its credentials; `sayna serve` is the fix only for a local server not running.
        url = str(getattr(args, "url", DEFAULT_URL))
        untrusted = _untrusted_certificate(exc)
        if untrusted is not None:
            # The SDK says to pass ssl= an SSLContext; the command line's way to trust a
            # private CA is OpenSSL's own variable.
            return (
                f"cannot reach {safe_url(url)}: its TLS certificate is not trusted "
                f"({untrusted}); if you trust that server, give its CA certificate (PEM) "
                "with SSL_CERT_FILE, e.g. `SSL_CERT_FILE=ca.pem sayna ...`",
                EXIT_FAILURE,
            )
        if _refused(exc) and is_loopback_host(url):
            text = str(exc)
            hint = "start one with `sayna serve`, or pass --url with its address"
            if text.endswith(("?", ".")):
                return f"{text} {hint[0].upper()}{hint[1:]}", EXIT_FAILURE
            return f"{text}; {hint}", EXIT_FAILURE
        return str(exc), EXIT_FAILURE
    if isinstance(exc, SaynaValidationError):
        return str(exc), EXIT_USAGE
    return str(exc), EXIT_FAILURE


def _scrub(message: str, args: argparse.Namespace) -> str:
    """``message`` without the command's secrets (the SDK's messages never hold them:
    this keeps it so for the command line's own words too)."""
    url = str(getattr(args, "url", "") or "")
    redactor = Redactor(
        [getattr(args, "api_key", None), os.environ.get("SAYNA_API_KEY"), *url_secrets(url)]
    )
    return redactor.scrub(message)


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename else reason


@contextlib.contextmanager
def _warnings_as_lines(args: Optional[argparse.Namespace]) -> Iterator[None]:
    """While the command runs, a Python warning (an API key sent over plain http, say)
    shows as one ``warning: MESSAGE`` line on stderr, not as Python's two lines
    pointing into asyncio; the previous hook is put back after."""
    previous = warnings.showwarning

    def show(
        message: Union[Warning, str],
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Optional[TextIO] = None,
        line: Optional[str] = None,
    ) -> None:
        text = str(message) if args is None else _scrub(str(message), args)
        print(f"warning: {text}", file=sys.stderr if file is None else file)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous


def _run(args: argparse.Namespace) -> int:
    if args.command == "demo":
        return demo.cmd_demo(args)
    return asyncio.run(_ASYNC_COMMANDS[args.command](args))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``sayna``; returns the exit status.

    Returns:
        0 on success (``sayna transcribe`` included when nothing was heard: it says so
        on stderr), 1 on a failure (unreachable server, refused key, unwritable file),
        2 on a usage error (bad option value, missing or unreadable input file), 130 on
        Ctrl-C. Errors are one line on stderr, never a traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "serve":
        from ..server.cli import serve_main

        with _warnings_as_lines(None):
            return serve_main(argv[1:])
    if argv and argv[0] == "hooks":
        _check_hooks_action(argv)
    args = build_parser().parse_args(argv)
    with _warnings_as_lines(args):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    try:
        status = _run(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except CliError as exc:
        message, status = str(exc), exc.status
    except SaynaError as exc:
        message, status = _explain(exc, args)
    except BrokenPipeError:
        return silence_broken_pipe()
    except OSError as exc:
        message, status = _describe_os_error(exc), EXIT_FAILURE
    except KeyboardInterrupt:
        return 130
    # A server's words may be in it (a reason, a body's start): control characters are
    # written as \xNN, so that they cannot clear the screen or retitle the terminal.
    print(f"error: {printable(_scrub(message, args))}", file=sys.stderr)
    return status
