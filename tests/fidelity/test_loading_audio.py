"""Protocol 6.3 ``loading_audio`` and ``loading_start``, as Sayna decodes and answers.

The clip is decoded by livekit/loading_clip.rs (base64's ``STANDARD`` engine, frames
before channels, hound 3.5.1 for WAV); only a decode error is kept for ``loading_start``
to replay (config_handler.rs:122-153). Without a LiveKit client (no room joined)
``loading_start`` asks for a room (loading_handler.rs:81-97).
"""

from __future__ import annotations

import base64
import struct
from typing import Any

import aiohttp
import pytest

from helpers.wire import config, configure, recv_json, send
from sayna_client.server import LocalServer
from sayna_client.server.engines.base import wav_header

NEED_ROOM = (
    "Loading indicator requires a LiveKit room. Include a livekit configuration in your config "
    "message."
)
NOT_WAV = "loading_audio is not a valid WAV file: "


def _error(message: str) -> dict[str, str]:
    return {"type": "error", "message": message}


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _fmt_chunk(tag: int, channels: int, rate: int, align: int, bits: int) -> bytes:
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    return b"fmt " + struct.pack("<I", len(body)) + body


def _wav(*chunks: bytes) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _data(payload: bytes) -> bytes:
    return b"data" + struct.pack("<I", len(payload)) + payload


@pytest.mark.parametrize(
    ("clip", "text"),
    [
        pytest.param(  # 3 channels: the frame check comes first
            {"data": _b64(bytes(16000)), "sample_rate": 16000, "channels": 3},
            "loading_audio raw PCM length is not frame-aligned",
            id="pcm-3-channels",
        ),
        pytest.param(
            {"data": _b64(bytes(16002)), "sample_rate": 16000, "channels": 3},
            "loading_audio supports mono or stereo only",
            id="pcm-3-channels-aligned",
        ),
        pytest.param(
            {"data": _b64(bytes(16000)), "sample_rate": 16000, "channels": 0},
            "loading_audio raw PCM length is not frame-aligned",
            id="pcm-0-channels",
        ),
        pytest.param(
            {"data": "AB==", "format": "pcm", "sample_rate": 16000},
            "loading_audio.data is not valid base64",
            id="base64-trailing-bits",
        ),
        pytest.param(
            {"data": _b64(bytes(16000)), "format": "wav"},
            NOT_WAV + "Ill-formed WAVE file: no RIFF tag found",
            id="wav-no-riff",
        ),
        pytest.param(
            {"data": _b64(b"RIFF\x00"), "format": "wav"},
            NOT_WAV + "Failed to read enough bytes.",
            id="wav-short",
        ),
        pytest.param(
            {"data": _b64(_wav(_data(bytes(16000))))},
            NOT_WAV + "Ill-formed WAVE file: missing fmt chunk",
            id="wav-no-fmt",
        ),
        pytest.param(
            {"data": _b64(_wav(_fmt_chunk(1, 1, 16000, 2, 16)))},
            NOT_WAV + "Failed to read enough bytes.",
            id="wav-no-data",
        ),
        pytest.param(
            {"data": _b64(_wav(_fmt_chunk(1, 1, 16000, 4, 16), _data(bytes(16002))))},
            NOT_WAV + "Ill-formed WAVE file: data chunk length is not a multiple of sample size",
            id="wav-sample-size",
        ),
        pytest.param(
            {"data": _b64(_wav(_fmt_chunk(1, 2, 16000, 4, 16), _data(bytes(16002))))},
            NOT_WAV + "Ill-formed WAVE file: invalid data chunk length",
            id="wav-stereo-frames",
        ),
        pytest.param(
            {"data": _b64(_wav(_fmt_chunk(1, 1, 16000, 2, 16)[:-2] + b"\x00\x00"))},
            NOT_WAV + "Ill-formed WAVE file: bits per sample is 0",
            id="wav-zero-bits",
        ),
        pytest.param(
            {"data": _b64(_wav(_fmt_chunk(2, 1, 16000, 2, 16), _data(bytes(16000))))},
            NOT_WAV + "The wave format of the file is not supported.",
            id="wav-adpcm",
        ),
        pytest.param(
            {"data": _b64(_wav(_fmt_chunk(1, 1, 16000, 2, 16), _data(bytes(16000))[:100]))},
            "loading_audio could not be read as 16-bit PCM: Failed to read enough bytes.",
            id="wav-truncated",
        ),
    ],
)
async def test_clip_decode_errors_in_sayna_words(
    server: LocalServer, http: aiohttp.ClientSession, clip: dict[str, Any], text: str
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config(livekit={"room_name": "r"}, loading_audio=clip))
        assert await recv_json(ws) == _error(text)
        assert (await recv_json(ws))["type"] == "ready"
        await send(ws, {"type": "loading_start"})  # a decode error is replayed
        assert await recv_json(ws) == _error(text)


async def test_a_good_wav_with_extra_chunks_is_taken(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    pcm = bytes(16000)  # 500 ms of 16 kHz mono
    wav = _wav(b"LIST" + struct.pack("<I", 4) + b"INFO", _fmt_chunk(1, 1, 16000, 2, 16), _data(pcm))
    assert wav_header(16000, data_bytes=len(pcm))[12:36] == _fmt_chunk(1, 1, 16000, 2, 16)
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws, config(livekit={"room_name": "r"}, loading_audio={"data": _b64(wav)}))
        await send(ws, {"type": "loading_start"})
        await send(ws, {"type": "marker"})
        assert "unknown variant `marker`" in (await recv_json(ws))["message"]


async def test_a_clip_without_a_room_is_not_replayed(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    clip = {"data": _b64(bytes(16000)), "format": "pcm", "sample_rate": 16000}
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config(loading_audio=clip))
        assert await recv_json(ws) == _error(
            "loading_audio requires audio to be enabled and a livekit configuration"
        )
        assert (await recv_json(ws))["type"] == "ready"
        await send(ws, {"type": "loading_start"})
        assert await recv_json(ws) == _error(NEED_ROOM)


async def test_a_refused_room_leaves_no_livekit_client() -> None:
    clip = {"data": _b64(bytes(16000)), "format": "pcm", "sample_rate": 16000}
    token = {"room_name": "b-room", "participant_name": "b", "participant_identity": "b"}
    async with (
        LocalServer(api_keys={"ka": "a", "kb": "b"}) as server,
        aiohttp.ClientSession() as http,
    ):
        headers = {"Authorization": "Bearer kb"}
        async with http.post(server.url + "/livekit/token", json=token, headers=headers) as r:
            assert r.status == 200
        async with http.ws_connect(server.ws_url + "?api_key=ka") as ws:
            await send(ws, config(livekit={"room_name": "b-room"}, loading_audio=clip))
            assert await recv_json(ws) == _error(
                "Access denied: room 'b-room' belongs to a different tenant"
            )
            await send(ws, {"type": "loading_start"})
            assert await recv_json(ws) == _error(NEED_ROOM)
