"""Smoke tests: every script in ``examples/`` runs against a local server and exits 0,
and every code snippet in ``docs/`` is valid against the current API.

One :class:`LocalServer` (fake engine, an API key, a SIP hook secret) runs on its own
event loop in a background thread for the whole module; each example runs as a
subprocess, exactly as the README in ``examples/`` tells users to run it.

Docs snippets: every ``python`` block must compile (top-level ``await`` allowed, for
fragments); self-contained programs (``asyncio.run`` with ``running_server``) run, and
their stdout must equal the ``text`` block that follows them after "It prints:";
blocks defining ``test_`` functions run under pytest with the package's plugin.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import math
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sayna_client import audio
from sayna_client.server import LocalServer

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
DOCS = ROOT / "docs"
API_KEY = "examples-api-key"
HOOK_SECRET = "examples-webhook-secret-0123456789"
TIMEOUT = 60  # per example; they take 1-10 s


class ServerThread:
    """A started ``LocalServer`` on a private event loop in a daemon thread."""

    def __init__(self, **kwargs: Any) -> None:
        self._kwargs = kwargs
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.server: LocalServer

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(30)

    def start(self) -> LocalServer:
        self._thread.start()

        async def create() -> LocalServer:
            server = LocalServer(**self._kwargs)
            await server.start()
            return server

        self.server = self._call(create())
        return self.server

    def stop(self) -> None:
        try:
            self._call(self.server.stop())
            self._call(self._loop.shutdown_asyncgens())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop.close()


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    thread = ServerThread(api_key=API_KEY, hook_secret=HOOK_SECRET)
    try:
        yield thread.start()
    finally:
        thread.stop()


def run_example(
    server: LocalServer, name: str, *args: str, cwd: Path, env: dict[str, str] | None = None
) -> str:
    """Run ``examples/<name>`` with ``--url`` and ``--api-key``; return its stdout."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("SAYNA_")}
    environment.update(env or {})
    command = [sys.executable, str(EXAMPLES / name), "--url", server.url, "--api-key", API_KEY]
    done = subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert done.returncode == 0, (
        f"{name} exited {done.returncode}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    )
    return done.stdout


def tone_bursts(path: Path, words: int, rate: int = 16000) -> None:
    """A WAV the fake engine hears as ``words`` words: 120 ms tones, 60 ms apart."""
    tone = [
        int(0.3 * 32767 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(rate * 120 // 1000)
    ]
    gap = [0] * (rate * 60 // 1000)
    samples = (tone + gap) * words
    pcm = b"".join(s.to_bytes(2, "little", signed=True) for s in samples)
    audio.write_wav(path, pcm, rate)


def test_every_example_is_tested() -> None:
    # _*.py: what several examples share (their command line), not an example itself.
    scripts = sorted(p.name for p in EXAMPLES.glob("*.py") if not p.name.startswith("_"))
    assert scripts == sorted(TESTED), "add a smoke test for each new example"
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for script in scripts:
        assert f"examples/{script}" in readme, f"{script} is missing from examples/README.md"


def test_speak_to_file(server: LocalServer, tmp_path: Path) -> None:
    out = run_example(
        server, "speak_to_file.py", "one two three", "--out-dir", str(tmp_path), cwd=tmp_path
    )
    assert "REST:" in out
    assert "WebSocket:" in out
    for name in ("speak-rest.wav", "speak-ws.wav"):
        wav = audio.read_wav(tmp_path / name)
        assert wav.sample_rate == 24000
        # The fake engine renders each word as 120 ms of tone and 60 ms of silence.
        assert wav.duration_ms == pytest.approx(3 * 180, abs=5)


@pytest.mark.parametrize("rate", [16000, 11025])
def test_transcribe_file(server: LocalServer, tmp_path: Path, rate: int) -> None:
    """Any 16-bit PCM WAV, as examples/README.md says: 11025 Hz has no whole number of
    samples in 20 ms, so the example resamples it to 16 kHz."""
    tone_bursts(tmp_path / "three.wav", 3, rate)
    out = run_example(server, "transcribe_file.py", "three.wav", "--speed", "8", cwd=tmp_path)
    assert "final:   word word word" in out
    assert "transcript: word word word\n" in out


def test_voice_agent(server: LocalServer, tmp_path: Path) -> None:
    out = run_example(server, "voice_agent.py", "--simulate", "--turns", "2", cwd=tmp_path)
    lines = out.splitlines()
    assert lines[0].startswith("connected: stream_id=")
    assert "agent: Hello! How can I help you today?" in lines
    assert 'turn 1: "word word" (1 interim results)' in lines
    # The second line talks over the agent's answer: barge-in, and only heard words kept.
    assert any(line.startswith("barge-in after ") for line in lines)
    assert any(line.endswith(" [interrupted]") for line in lines)
    # The second caller line (8 words) starts while the agent answers the first turn.
    assert any(line.startswith('turn 2: "' + " ".join(["word"] * 8) + '"') for line in lines)
    assert "agent: Thank you for calling. Goodbye!" in lines
    assert lines[-1].startswith("done: 2 turns, 1 barge-in(s)")


def test_livekit_room_control(server: LocalServer, tmp_path: Path) -> None:
    room = "examples-room"
    out = run_example(server, "livekit_room_control.py", "--simulate", "--room", room, cwd=tmp_path)
    assert f"ready: room {room}, Sayna joined as sayna-agent" in out
    assert "token for caller-1: " in out
    assert "participant_connected: caller-1 (Caller)" in out
    assert "sayna-agent (STANDARD), caller-1 (STANDARD)" in out
    assert "muted TR_" in out
    assert "message from caller-1 on 'chat': hello agent" in out
    assert "[simulate] caller-1 received: 'You said: hello agent' (assistant)" in out
    assert "participant_disconnected: caller-1" in out
    assert "session closed (code 1005)" in out
    assert out.endswith("done\n")
    assert room not in server.rooms  # Sayna deletes the room when the session ends


def test_sip_webhook_server(server: LocalServer, tmp_path: Path) -> None:
    before = len(server.records.webhooks)
    out = run_example(
        server,
        "sip_webhook_server.py",
        "--simulate",
        "--port",
        "0",
        "--auth-id",
        "examples-tenant",  # the server checks API keys, so hooks need a tenant
        cwd=tmp_path,
        env={"SAYNA_WEBHOOK_SECRET": HOOK_SECRET},
    )
    assert "SIP hooks: sip.example.com -> http://127.0.0.1:" in out
    assert "SIP call from +15551230000 to +15559990000 via sip.example.com" in out
    assert "'x-customer-id': '42'" in out
    assert "rejected with 401: signature_mismatch" in out
    assert "forged request answered 401" in out
    assert "removed the hook for sip.example.com" in out
    # The server's side of the delivery: one signed POST, answered 200.
    (delivery,) = server.records.webhooks[before:]
    assert delivery.status == 200
    assert delivery.headers["X-Sayna-Signature"].startswith("v1=")


def test_pipecat_agent(server: LocalServer, tmp_path: Path) -> None:
    if sys.version_info < (3, 11):
        pytest.skip("pipecat-ai 1.14 (the [pipecat] extra) requires Python 3.11+")
    out = run_example(
        server, "pipecat_agent.py", "one two three", "--speed", "8", "--quiet", cwd=tmp_path
    )
    assert "heard:  word word word" in out
    # "You said: word word word." is 5 words of fake speech, 180 ms each.
    assert "agent:  0.90 s of speech written to reply.wav" in out
    assert audio.read_wav(tmp_path / "reply.wav").duration_ms == pytest.approx(900, abs=5)


def test_livekit_agent(server: LocalServer, tmp_path: Path) -> None:
    if sys.version_info < (3, 10):
        pytest.skip("livekit-agents 1.8 (the [livekit] extra) requires Python 3.10+")
    out = run_example(server, "livekit_agent.py", "one two", "--speed", "8", cwd=tmp_path)
    lines = out.splitlines()
    assert lines[0] == "stt: start_of_speech"
    assert "stt: final_transcript word word" in lines
    assert "stt: end_of_speech" in lines
    # "You said: word word." is 4 words of fake speech (0.72 s); LiveKit may pad 10-20 ms.
    assert lines[-1].startswith("tts: 'You said: word word.': 0.7")
    assert lines[-1].endswith(" s of speech written to reply.wav")
    assert audio.read_wav(tmp_path / "reply.wav").duration_ms == pytest.approx(730, abs=15)


def test_many_sessions(server: LocalServer, tmp_path: Path) -> None:
    out = run_example(
        server,
        "many_sessions.py",
        "--processes",
        "2",
        "--sessions",
        "4",
        "--seconds",
        "2",
        cwd=tmp_path,
    )
    lines = out.splitlines()
    reports = [line for line in lines if line.startswith("process ")]
    assert [line.split(" (")[0] for line in reports] == ["process 1", "process 2"]
    for line in reports:
        assert " 4 sessions for " in line
        assert "frames sent 400," in line  # 2 s of 20 ms frames for each of 4 sessions
        assert "errors 0;" in line
        turns = int(re.search(r"turns (\d+)", line)[1])  # type: ignore[index]
        replies = int(re.search(r"replies (\d+)", line)[1])  # type: ignore[index]
        assert turns > 0  # every session hears at least one turn end in 2 s
        assert replies == turns  # each answered at once
    assert any(line.startswith("sizing: at ") for line in lines)


def test_many_sessions_refused_key(server: LocalServer, tmp_path: Path) -> None:
    # A wrong key is told once, by the parent, before any worker starts.
    command = [sys.executable, str(EXAMPLES / "many_sessions.py"), "--url", server.url]
    done = subprocess.run(
        [*command, "--api-key", "not-the-key", "--processes", "3", "--sessions", "2"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("SAYNA_")},
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.count("refused the API key") == 1, done.stderr
    assert "not-the-key" not in done.stderr  # no secret in a message


TESTED = (
    "livekit_agent.py",
    "livekit_room_control.py",
    "many_sessions.py",
    "pipecat_agent.py",
    "sip_webhook_server.py",
    "speak_to_file.py",
    "transcribe_file.py",
    "voice_agent.py",
)


# --- docs ---------------------------------------------------------------------------------

_BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
#: Reports the benchmark scripts write (linked from docs/benchmarks.md, committed separately).
GENERATED = {"RESULTS.md", "LOAD.md"}
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


class Snippet:
    def __init__(self, path: Path, line: int, code: str, prints: str | None) -> None:
        self.path, self.line, self.code, self.prints = path, line, code, prints

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


README = ROOT / "README.md"


def doc_snippets(paths: Any = None) -> list[Snippet]:
    snippets = []
    for path in sorted(DOCS.glob("*.md")) if paths is None else paths:
        text = path.read_text(encoding="utf-8")
        blocks = list(_BLOCK.finditer(text))
        for index, block in enumerate(blocks):
            if block.group(1) != "python":
                continue
            prints = None
            following = blocks[index + 1] if index + 1 < len(blocks) else None
            if following is not None and following.group(1) == "text":
                between = text[block.end() : following.start()]
                if between.strip() == "It prints:":
                    prints = following.group(2)
            line = text.count("\n", 0, block.start()) + 2
            snippets.append(Snippet(path, line, block.group(2), prints))
    return snippets


SNIPPETS = doc_snippets()
PROGRAMS = [
    s
    for s in SNIPPETS
    if ("asyncio.run(" in s.code or "uvloop.run(" in s.code) and "running_server(" in s.code
]
TESTS = [s for s in SNIPPETS if re.search(r"^async def test_|^def test_", s.code, re.M)]


def test_docs_exist_and_link() -> None:
    pages = {p.name for p in DOCS.glob("*.md")}
    assert {"index.md", "sessions.md", "errors.md", "reconnect.md", "testing.md"} <= pages
    assert "benchmarks.md" in pages
    for path in [*DOCS.glob("*.md"), EXAMPLES / "README.md"]:
        for target in _LINK.findall(path.read_text(encoding="utf-8")):
            if "://" in target or Path(target).name in GENERATED:
                continue
            assert (path.parent / target).exists(), f"{path.name}: broken link {target}"


@pytest.mark.parametrize("snippet", SNIPPETS, ids=[s.where for s in SNIPPETS])
def test_docs_snippet_compiles(snippet: Snippet) -> None:
    compile(snippet.code, snippet.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


#: Third-party modules docs programs may import, and the extra that installs each: a
#: program needing one that is not installed (Windows or PyPy for uvloop, Python 3.9 for
#: OpenTelemetry, an install without the extra) is skipped, not failed.
OPTIONAL_MODULES = {"uvloop": "uvloop", "opentelemetry": "otel"}


def _missing_extra(code: str) -> str | None:
    """The extra of an optional module ``code`` imports that is not installed, if any."""
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        for name in names:
            top = name.split(".", 1)[0]
            if top in OPTIONAL_MODULES and importlib.util.find_spec(top) is None:
                return OPTIONAL_MODULES[top]
    return None


@pytest.mark.parametrize("snippet", PROGRAMS, ids=[s.where for s in PROGRAMS])
def test_docs_program_runs(snippet: Snippet, tmp_path: Path) -> None:
    extra = _missing_extra(snippet.code)
    if extra is not None:
        pytest.skip(f"{snippet.where} needs the {extra!r} extra, not installed here")
    script = tmp_path / "snippet.py"
    script.write_text(snippet.code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, f"{snippet.where}\n{done.stdout}\n{done.stderr}"
    if snippet.prints is not None:
        assert done.stdout == snippet.prints, f"{snippet.where}: the output shown differs"


def test_docs_pytest_snippets(tmp_path: Path) -> None:
    assert TESTS, "docs/testing.md shows tests"
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["sayna_client.testing"]\n')
    for index, snippet in enumerate(TESTS):
        (tmp_path / f"test_doc_{index}.py").write_text(
            f"# {snippet.where}\n{snippet.code}", encoding="utf-8"
        )
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "asyncio_mode=auto"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- README -------------------------------------------------------------------------------

README_SNIPPETS = doc_snippets([README])


@pytest.mark.parametrize("snippet", README_SNIPPETS, ids=[s.where for s in README_SNIPPETS])
def test_readme_snippet_compiles(snippet: Snippet) -> None:
    compile(snippet.code, snippet.where, "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)


def test_readme_pytest_snippet_runs_as_shown(tmp_path: Path) -> None:
    """The conftest.py and test blocks, copied as they are, pass under pytest-asyncio's
    default (strict) mode: no asyncio_mode setting needed."""
    files = {}
    for snippet in README_SNIPPETS:
        first = snippet.code.splitlines()[0]
        if first in ("# conftest.py", "# test_bot.py"):
            files[first[2:]] = snippet.code
    assert sorted(files) == ["conftest.py", "test_bot.py"]
    for name, code in files.items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        cwd=tmp_path,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


def _github_anchor(heading: str) -> str:
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def test_readme_table_of_contents_links_resolve() -> None:
    text = README.read_text(encoding="utf-8")
    anchors = {_github_anchor(h) for h in re.findall(r"^#{2,4} (.+)$", text, re.M)}
    toc = text[text.index("Contents:") : text.index("## Installation")]
    links = re.findall(r"\]\(#([^)]+)\)", toc)
    assert len(links) >= 10
    for link in links:
        assert link in anchors, f"README contents: no heading for #{link}"
    top = [_github_anchor(h) for h in re.findall(r"^## (.+)$", text, re.M)]
    assert set(top) <= set(links), "every top-level section is in the contents"


def test_readme_installs_this_code_not_the_index_package() -> None:
    from sayna_client import __version__

    text = README.read_text(encoding="utf-8")
    install = text[text.index("## Installation") : text.index("## Quick Start")]
    assert "0.0.18" in install  # says what the index's package is
    commands = [line for line in install.splitlines() if "pip install" in line]
    assert any("-e '.[local]'" in line for line in commands)
    assert any(f"sayna_client-{__version__}-py3-none-any.whl[local]" in line for line in commands)
    for line in commands:  # never the index's older package
        assert not re.search(r"pip install '?sayna-client(\[|'|\s|$)", line), line


# --- API reference ------------------------------------------------------------------------

API_DOCS = DOCS / "api"
#: Type aliases (unions): documented in prose on the pages that use them.
ALIASES = {"Event", "ServerEvent", "OutgoingMessage", "ErrorEvent", "ProviderAuth", "__version__"}


def test_api_reference_covers_the_public_api() -> None:
    text = "\n".join(p.read_text(encoding="utf-8") for p in API_DOCS.glob("*.md"))
    directives = set(re.findall(r"^::: (\S+)$", text, re.M))
    import sayna_client
    import sayna_client.errors

    public = (ROOT / "tests" / "client" / "public_api.txt").read_text().split()
    for name in public:
        if name in ALIASES:
            continue
        obj = getattr(sayna_client, name)
        covered = f"sayna_client.{name}" in directives or (
            getattr(obj, "__module__", "") == "sayna_client.errors"
            and "sayna_client.errors" in directives
        )
        assert covered, f"{name} is missing from docs/api (add a `::: sayna_client.{name}`)"
    readme = README.read_text(encoding="utf-8")
    assert "(docs/api/index.md)" in readme


def test_api_reference_builds_strict(tmp_path: Path) -> None:
    """`mkdocs build --strict`: any docstring warning fails (CI runs it too)."""
    pytest.importorskip("mkdocstrings", reason="the docs extra needs Python 3.11+")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT * 2,
        cwd=ROOT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    page = (tmp_path / "clients" / "index.html").read_text(encoding="utf-8")
    assert "on_audio_input" in page
    assert "Open the WebSocket, send the config" in page
    # Every name SaynaClient forwards to its session has its entry (docs/forwarded.py).
    spec = importlib.util.spec_from_file_location("forwarded", ROOT / "docs" / "forwarded.py")
    assert spec is not None
    assert spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    names = [name for name, _ in hook.forwarded_names()]
    assert {"speak", "on_audio_input", "register_on_stt_result", "stt_config"} <= set(names)
    missing = [n for n in names if not re.search(rf">\s*SaynaClient\.{n}\s*<", page)]
    assert missing == [], f"no entry on the Clients page for {missing}"
