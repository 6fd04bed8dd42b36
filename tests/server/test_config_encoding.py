"""``sayna serve --config FILE`` with a file that is not UTF-8: a UTF-8 byte-order mark
is read; anything else (UTF-16 as Windows editors save, a Latin-1 letter) is one line
saying to save it as UTF-8, exit 2. It was a UnicodeDecodeError traceback."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

from sayna_client.server.config_file import ConfigFileError, load_config_file

CONFIG = '{"server": {"port": 39399}, "sip": {"room_prefix": "caf\\u00e9-"}}'


def test_a_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    path = tmp_path / "sayna.json"
    path.write_bytes(CONFIG.encode("utf-8-sig"))
    assert load_config_file(str(path))["port"] == 39399


@pytest.mark.parametrize(
    ("name", "data", "found"),
    [
        ("utf16.json", CONFIG.encode("utf-16"), "it is UTF-16, as some Windows editors save"),
        ("latin1.yaml", "# café\nserver:\n  port: 3001\n".encode("latin-1"), "byte 0xe9 at"),
    ],
)
def test_a_file_that_is_not_utf8_says_so(
    tmp_path: Path, name: str, data: bytes, found: str
) -> None:
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(ConfigFileError) as info:
        load_config_file(str(path))
    assert str(info.value).startswith(f"config file {path} is not UTF-8 text ({found}")
    assert str(info.value).endswith("): save it as UTF-8")


async def test_sayna_serve_refuses_it_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "utf16.json"
    path.write_bytes(CONFIG.encode("utf-16"))
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sayna_client",
        "serve",
        "--config",
        str(path),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2, err
    assert err.decode().splitlines() == [
        f"sayna serve: config file {path} is not UTF-8 text (it is UTF-16, as some Windows "
        "editors save): save it as UTF-8"
    ]
    assert out == b""
