"""G.711 A-law (``sayna_client._alaw``), the format the local server sends for a TTS
``audio_format`` of ``alaw``."""

from __future__ import annotations

import struct
import warnings

import pytest

from sayna_client._alaw import alaw_to_linear16, linear16_to_alaw

EVERY_SAMPLE = struct.pack("<65536h", *range(-32768, 32768))


def test_known_codes() -> None:
    # ITU-T G.711 A-law: even bits inverted, so silence is 0xD5 and the extremes are
    # 0xAA (positive) and 0x2A (negative).
    assert linear16_to_alaw(struct.pack("<4h", 0, 32767, -32768, -1)) == b"\xd5\xaa\x2a\x55"
    assert alaw_to_linear16(b"\xd5\x55\xaa\x2a") == struct.pack("<4h", 8, -8, 32256, -32256)
    assert linear16_to_alaw(b"\x00\x00\x01") == b"\xd5"  # trailing odd byte ignored
    assert linear16_to_alaw(b"") == alaw_to_linear16(b"") == b""


def test_round_trip_error_stays_within_the_segment_step() -> None:
    decoded = struct.unpack("<65536h", alaw_to_linear16(linear16_to_alaw(EVERY_SAMPLE)))
    for sample, back in zip(range(-32768, 32768), decoded):
        # 13-bit quantisation, step 16 << (segment - 1) at most 1024 for the top segment.
        assert abs(sample - back) <= max(16, abs(sample) // 32 + 16)
    codes = bytes(range(256))
    assert linear16_to_alaw(alaw_to_linear16(codes)) == codes


def test_matches_the_standard_librarys_codec_where_it_exists() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        audioop = pytest.importorskip("audioop")  # removed in Python 3.13
    assert linear16_to_alaw(EVERY_SAMPLE) == audioop.lin2alaw(EVERY_SAMPLE, 2)
    assert alaw_to_linear16(bytes(range(256))) == audioop.alaw2lin(bytes(range(256)), 2)
