"""A server that does not answer, never gets ready, or whose certificate this machine
does not trust; a warning on the way: each is one line whose fix is a command-line one
(``--timeout``, ``SSL_CERT_FILE``), not an SDK argument (``Timeouts.request``, ``ssl=``)."""

from __future__ import annotations

import http.server
import json
import shutil
import socket
import ssl
import subprocess
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from helpers.cli import one_line_error
from sayna_client.cli import main
from sayna_client.server.faults import Faults

from .conftest import TIMEOUT, ThreadedApp, ThreadedServer, environment, run_cli, tone_wav

SDK_ONLY = ("Timeouts", "timeout=", "ssl=", "SSLContext", "client.")


class SilentServer:
    """A listening socket that never accepts: the kernel completes each TCP handshake
    and holds the connection in the backlog, the request goes unanswered. Counted once
    the client is done (no thread races it)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self) -> int:
        """How many connections were made to it so far (they are taken and closed)."""
        self.sock.setblocking(False)
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1

    def __enter__(self) -> SilentServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


@pytest.mark.parametrize(("command", "endpoint"), [("health", "GET /"), ("voices", "GET /voices")])
def test_a_server_that_never_answers(tmp_path: Path, command: str, endpoint: str) -> None:
    """`sayna health` waited 183 s silently (three tries of 60 s), then named the
    SDK's Timeouts.request. Now: --timeout (10 s by default), one try."""
    with SilentServer() as silent:
        done = run_cli(command, "--url", silent.url, "--timeout", "0.5", cwd=tmp_path)
        tries = silent.connections()
    line = one_line_error(
        done,
        1,
        f"error: the server did not answer {endpoint} within 0.5 s: pass --timeout SECONDS "
        "to wait longer",
    )
    assert not any(word in line for word in SDK_ONLY), line
    assert tries == 1  # no retry: the time said is the time taken


def test_the_timeout_is_in_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    for command, default in (("health", "10"), ("speak", "10"), ("transcribe", "45")):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert "--timeout SECONDS" in text
        assert f"(default: {default})" in text.split("--timeout SECONDS", 2)[2]


def test_a_server_that_never_gets_ready(tmp_path: Path) -> None:
    """It said `raise Timeouts.ready to wait longer` after 45 s."""
    wav = tone_wav(tmp_path / "speech.wav", words=1)
    with ThreadedServer(faults=Faults(never_send_ready=True)) as server:
        done = run_cli("transcribe", str(wav), "--url", server.url, "--timeout", "3", cwd=tmp_path)
    line = one_line_error(
        done,
        1,
        "error: the server did not get the session ready within 3 s",
        "pass --timeout SECONDS to wait longer",
    )
    assert not any(word in line for word in SDK_ONLY), line


def tls_server(context: ssl.SSLContext) -> ThreadedApp:
    """``GET /`` -> ``{"status": "OK"}`` over HTTPS, with ``context``'s certificate."""

    async def health(request: web.Request) -> web.Response:
        return web.json_response({"status": "OK"})

    app = web.Application()
    app.router.add_get("/", health)
    return ThreadedApp(app, context)


@pytest.fixture
def private_ca(tmp_path: Path) -> Iterator[tuple[Path, ThreadedApp]]:
    """A server whose certificate is signed by no CA this machine trusts (its own), and
    that certificate's file."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=TIMEOUT,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with tls_server(context) as server:
        yield cert, server


def test_an_untrusted_certificate_names_ssl_cert_file(
    tmp_path: Path, private_ca: tuple[Path, ThreadedApp]
) -> None:
    """It said `pass ssl= an SSLContext that trusts its CA`; SSL_CERT_FILE is the way
    from the command line, and it works."""
    cert, server = private_ca
    line = one_line_error(
        run_cli("health", "--url", server.url, cwd=tmp_path),
        1,
        f"error: cannot reach {server.url}: its TLS certificate is not trusted",
        "SSL_CERT_FILE=ca.pem",
    )
    assert not any(word in line for word in SDK_ONLY), line
    trusted = run_cli(
        "health", "--url", server.url, cwd=tmp_path, env=environment(SSL_CERT_FILE=str(cert))
    )
    assert (trusted.returncode, trusted.stderr) == (0, "")
    assert json.loads(trusted.stdout) == {"status": "OK"}


@pytest.fixture
def remote_refusing_url() -> Iterator[str]:
    """``http://ADDRESS:PORT`` on an address of this machine that is not loopback (the
    SDK warns before sending a key there over plain http), on a port that refuses."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # picks the outgoing address; sends nothing
        except OSError:
            pytest.skip("no network interface but loopback")
        address = probe.getsockname()[0]
    if address.startswith("127."):
        pytest.skip("no network interface but loopback")
    with socket.socket() as sock:
        sock.bind((address, 0))  # bound, never listening: connections are refused
        yield f"http://{address}:{sock.getsockname()[1]}"


def test_a_warning_is_one_line(tmp_path: Path, remote_refusing_url: str) -> None:
    """The API key over plain http to a host that is not this machine's loopback: the
    warning was Python's two lines, blamed on asyncio/events.py."""
    done = run_cli("health", "--url", remote_refusing_url, "--api-key", "k-12345", cwd=tmp_path)
    assert "Traceback" not in done.stderr, done.stderr
    warning, error = done.stderr.splitlines()
    assert warning == (
        "warning: An API key will be sent over unencrypted http/ws to a non-loopback host; "
        "use https:// or wss:// so it cannot be read on the network"
    )
    assert error.startswith("error: ")
    assert "connection refused" in error
    assert "k-12345" not in done.stderr


def test_the_warning_hook_is_put_back(
    capsys: pytest.CaptureFixture[str], remote_refusing_url: str
) -> None:
    before = warnings.showwarning
    assert main(["health", "--url", remote_refusing_url, "--api-key", "k-12345"]) == 1
    assert warnings.showwarning is before
    assert capsys.readouterr().err.startswith("warning: An API key will be sent")


class BusyOnceHandler(http.server.BaseHTTPRequestHandler):
    """``GET /``: 503 (``Retry-After: 0``) to the first request, then Sayna's health."""

    answered: list[int] = []

    def do_GET(self) -> None:
        status = 503 if not self.answered else 200
        self.answered.append(status)
        body = b'{"error":"busy"}' if status == 503 else b'{"status":"OK"}'
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 503:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_a_busy_server_is_asked_again(capsys: pytest.CaptureFixture[str]) -> None:
    """The CLI's REST commands were sent once: a server answering one 503 (restarting,
    or behind a load balancer) failed `sayna health` at once. A timeout is still not
    retried (test_a_server_that_never_answers)."""
    BusyOnceHandler.answered = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), BusyOnceHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        assert main(["health", "--url", url]) == 0
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr()
    assert (json.loads(out.out), out.err) == ({"status": "OK"}, "")
    assert BusyOnceHandler.answered == [503, 200]
