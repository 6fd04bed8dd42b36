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


def test_demo_prints_what_it_said_heard_and_the_word_error_rate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("pocketsphinx", "espeakng_loader", "soxr", "ctranslate2", "piper"):
        pytest.importorskip(name)
    assert main(["demo", "--speed", "0", "--output-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "said    'Hello from Sayna. I would like a cup of coffee, please.'" in out
    heard = re.search(r"heard '([^']*)'", out)
    assert heard is not None, out
    assert "coffee" in heard.group(1).lower()
    rate = re.search(r"word error rate: (\d+)%", out)
    assert rate is not None, out
    assert int(rate.group(1)) <= 10
    assert (tmp_path / "sayna-demo-speak.wav").is_file()
