"""The REST commands against a server whose answers are wrong or hostile, and a proxy
that is misconfigured: each failure is one ``error:`` line with exit 1 (2 for a setting
to fix), never a traceback, and no control character of the server's reaches the
terminal raw."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web

from sayna_client.cli import main

from .conftest import ThreadedApp, ThreadedServer, tone_wav

TERMINAL_TRICKS = "\x1b[2J\x1b[H\x1b]0;pwned\x07all good\x1b[8m hidden\x9b31m\x7f"


def _raw_controls(text: str) -> list[str]:
    """The control characters of ``text`` a terminal acts on (newlines and tabs aside)."""
    return [c for c in text if (ord(c) < 32 and c not in "\n\t") or 0x7F <= ord(c) <= 0x9F]


def _answering(status: int, body: bytes, headers: dict[str, str]) -> ThreadedApp:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=status, body=body, headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return ThreadedApp(app)


@pytest.fixture(autouse=True)
def _no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "ws_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


def _one_line(err: str) -> str:
    assert "Traceback" not in err, err
    lines = err.splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("rate", ["abc", "1.5", "99999999999", "0"])
def test_speak_with_a_sample_rate_that_is_not_one_is_a_server_fault(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, rate: str
) -> None:
    """int(x-sample-rate) raised ValueError ("abc", "1.5": a traceback) or, later,
    OverflowError (99999999999); 0 gave exit 2 "sample_rate must be a positive int", a
    usage error for the server's fault."""
    out = tmp_path / "o.wav"
    headers = {"Content-Type": "audio/pcm", "x-sample-rate": rate}
    with _answering(200, b"\x00\x01" * 100, headers) as server:
        status = main(["speak", "hi", "-o", str(out), "--url", server.url])
    err = capsys.readouterr().err
    assert status == 1, err
    assert _one_line(err) == (
        f"error: POST /speak answered HTTP 200 with an x-sample-rate header of {rate!r}, not "
        "a sample rate in Hz (1 to 768000): its audio cannot be played; check the server"
    )
    assert not out.exists()


def test_speak_with_an_odd_count_of_pcm_bytes_is_a_server_fault(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Exit 2 "WavAudio.pcm has 3 bytes, ... pass complete samples": a usage error, and
    advice for someone who passed the PCM."""
    out = tmp_path / "o.wav"
    headers = {"Content-Type": "audio/pcm", "x-sample-rate": "24000"}
    with _answering(200, b"\x00\x01\x02", headers) as server:
        status = main(["speak", "hi", "-o", str(out), "--url", server.url])
    err = capsys.readouterr().err
    assert status == 1, err
    assert _one_line(err) == (
        "error: the server's answer to POST /speak is unusable: 3 bytes of 16-bit PCM, an "
        "odd count (its last sample is cut short); check the server"
    )
    assert not out.exists()


def test_voices_shows_the_servers_control_characters_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    voices = {
        f"prov{TERMINAL_TRICKS}": [
            {"id": f"v{TERMINAL_TRICKS}", "name": f"\x1b[31mRED\x1b[0m{TERMINAL_TRICKS}"}
        ]
    }
    body = json.dumps(voices).encode()
    with _answering(200, body, {"Content-Type": "application/json"}) as server:
        assert main(["voices", "--url", server.url]) == 0
        table = capsys.readouterr().out
        assert main(["voices", "--url", server.url, "--json"]) == 0
        as_json = capsys.readouterr().out
    assert not _raw_controls(table), table
    assert "\\x1b[31mRED\\x1b[0m\\x1b[2J" in table
    assert not _raw_controls(as_json), as_json
    parsed = json.loads(as_json)  # still JSON, holding the server's strings as they were
    assert parsed[f"prov{TERMINAL_TRICKS}"][0]["name"] == f"\x1b[31mRED\x1b[0m{TERMINAL_TRICKS}"


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (400, json.dumps({"error": TERMINAL_TRICKS}, ensure_ascii=False)),
        (404, TERMINAL_TRICKS),
        (
            401,
            json.dumps({"error": "unauthorized", "message": TERMINAL_TRICKS}, ensure_ascii=False),
        ),
    ],
    ids=["json-error", "text", "401-reason"],
)
def test_an_error_line_shows_the_servers_control_characters_escaped(
    capsys: pytest.CaptureFixture[str], status: int, body: str
) -> None:
    """An error body with ESC [2J ESC ]0;pwned BEL went to stderr as it was: the
    terminal cleared, its title changed."""
    with _answering(status, body.encode(), {"Content-Type": "application/json"}) as server:
        assert main(["voices", "--url", server.url]) == 1
    line = _one_line(capsys.readouterr().err)
    assert not _raw_controls(line), repr(line)
    assert "\\x1b[2J\\x1b[H\\x1b]0;pwned\\x07all good" in line


def test_a_redirect_names_the_url_to_use(capsys: pytest.CaptureFixture[str]) -> None:
    headers = {"Location": "https://secure.example.com/"}
    with _answering(301, b"", headers) as server:
        assert main(["health", "--url", server.url]) == 1
    assert _one_line(capsys.readouterr().err) == (
        "error: GET / failed with HTTP 301: redirected to https://secure.example.com/. REST "
        "calls do not follow redirects; if you trust that server, use its URL instead (e.g. "
        "https://secure.example.com)"
    )


@pytest.fixture
def dead_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_a_proxy_that_refuses_is_not_blamed_on_a_missing_server(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, dead_port: int
) -> None:
    """ "cannot reach the proxy ...; start one with `sayna serve`, or pass --url": the
    server was not what refused, and `sayna serve` does not start a proxy."""
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{dead_port}")
    assert main(["health", "--timeout", "5"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(
        f"error: GET / failed: cannot reach the proxy http://127.0.0.1:{dead_port} (from "
        "HTTP_PROXY) for http://127.0.0.1:3001: connection refused; check HTTP_PROXY"
    )
    assert "sayna serve" not in line


def test_a_proxy_host_name_not_found_is_not_blamed_on_the_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.invalid:3128")
    assert main(["health", "--timeout", "5"]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(
        "error: GET / failed: cannot reach the proxy http://proxy.invalid:3128 (from "
        "HTTP_PROXY) for http://127.0.0.1:3001: host name not found; check HTTP_PROXY"
    )
    assert "check the URL" not in line


@pytest.mark.parametrize("value", ["http://proxy:notaport", "http://u:SECRET-PW@[bad"])
def test_a_malformed_proxy_variable_is_one_line_naming_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """A raw ValueError escaped: `sayna health` printed a traceback."""
    monkeypatch.setenv("HTTP_PROXY", value)
    assert main(["health"]) == 2
    line = _one_line(capsys.readouterr().err)
    assert line.startswith("error: the environment variable HTTP_PROXY is not a usable proxy URL")
    assert "set HTTP_PROXY to an http:// URL such as 'http://proxy.example:3128'" in line
    assert "SECRET-PW" not in line


def test_talk_prints_a_servers_control_characters_escaped(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``sayna talk`` prints the caller's turns as the server transcribed them: a control
    sequence in one was written to the terminal as it was."""
    threaded.script("hi \x1b[2J\x1b]0;pwned\x07 there")
    wav = tone_wav(tmp_path / "in.wav", words=3)
    out_wav = tmp_path / "out.wav"
    args = ["talk", "--url", threaded.url, "--input", str(wav), "--output", str(out_wav)]
    assert main([*args, "--speed", "0"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\\x1b[2J" in out


def test_transcribe_prints_a_servers_control_characters_escaped(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A transcript is the server's text: a control sequence in it (clear the screen,
    retitle the window) is printed as ``\\xNN``, never sent to the terminal."""
    threaded.script("hi \x1b[2J\x1b]0;pwned\x07 there")
    wav = tone_wav(tmp_path / "in.wav", words=3)
    args = ["transcribe", str(wav), "--url", threaded.url, "--provider", "fake", "--speed", "0"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out
    assert "\x07" not in out
    assert "\\x1b[2J" in out
