"""``sayna demo``: what it says and hears, where it writes, and what it does without the
``local`` extra. Runs the real entry point on an embedded local server."""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

import pytest

from sayna_client.cli import main


def test_demo_writes_to_a_temporary_directory_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["demo", "--engine", "fake", "--speed", "0"]) == 0
    out = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # nothing written into the current directory
    # Captured (not a terminal): every numbered step is still printed, in order.
    steps = [int(n) for n in re.findall(r"^(\d+)\. ", out, re.MULTILINE)]
    assert steps == list(range(1, 9)), out
    written = Path(re.search(r"-> (\S+sayna-demo-speak\.wav)", out).group(1))  # type: ignore[union-attr]
    assert written.is_file()
    assert Path(tempfile.gettempdir()) in written.parents
    written.unlink()
    written.parent.rmdir()


def test_demo_without_the_local_extra_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "pocketsphinx", None)  # as if not installed
    assert main(["demo"]) == 1
    captured = capsys.readouterr()
    assert "pip install 'sayna-client[local]'" in captured.err
    assert "pocketsphinx" in captured.err
    assert "--engine fake" in captured.err
    assert "fake engine" not in captured.out  # no silent switch to the fake engine


def _demo_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[str, int]:
    """One `sayna demo` run: its output and the word error rate it printed."""
    assert main(["demo", "--speed", "0", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "said    'Hello from Sayna. I would like a cup of coffee, please.'" in out
    assert (tmp_path / "sayna-demo-speak.wav").is_file()
    rate = re.search(r"word error rate: (\d+)%", out)
    assert rate is not None, out
    heard = re.search(r"heard '([^']*)'", out)
    if heard is None or "coffee" not in heard.group(1).lower():
        return out, 100  # "(nothing heard)" or the key word missed: a miss like any other
    return out, int(rate.group(1))


def test_demo_prints_what_it_said_heard_and_the_word_error_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("pocketsphinx", "espeakng_loader", "soxr", "ctranslate2", "piper"):
        pytest.importorskip(name)
    # Piper samples fresh noise on every synthesis, so the voice (and what Whisper hears)
    # differs run to run: about 1 run in 20 misses a word or two under load (once, on a
    # loaded machine, the whole phrase). One retry keeps the 10 % bar (a real regression
    # fails both runs) without a flaky suite.
    out, rate = _demo_run(tmp_path, capsys)
    if rate > 10:
        out, rate = _demo_run(tmp_path, capsys)
    assert rate <= 10, out
