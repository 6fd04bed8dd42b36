"""Raw WebSocket helpers for talking to the local server as a client of any language
does (the server and fidelity suites): JSON messages in, frames out, nothing of the SDK."""

from __future__ import annotations

import json
import struct
from typing import Any, Callable, Optional

import aiohttp

TIMEOUT = 10.0
STT = {
    "provider": "deepgram",
    "language": "en-US",
    "sample_rate": 16000,
    "channels": 1,
    "punctuation": True,
    "encoding": "linear16",
    "model": "nova-3",
}
TTS = {"provider": "deepgram", "model": "", "audio_format": "linear16", "sample_rate": 16000}


def config(**overrides: Any) -> dict[str, Any]:
    """A valid ``config`` message; keyword arguments replace top-level keys."""
    message: dict[str, Any] = {"type": "config", "stt_config": dict(STT), "tts_config": dict(TTS)}
    message.update(overrides)
    return message


async def send(ws: aiohttp.ClientWebSocketResponse, message: dict[str, Any]) -> None:
    await ws.send_str(json.dumps(message))


async def recv(ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT) -> Any:
    """Next frame: a dict for text, bytes for binary, the WSMessage otherwise."""
    msg = await ws.receive(timeout=timeout)
    if msg.type == aiohttp.WSMsgType.TEXT:
        return json.loads(msg.data)
    if msg.type == aiohttp.WSMsgType.BINARY:
        return bytes(msg.data)
    return msg


async def recv_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = TIMEOUT) -> Any:
    frame = await recv(ws, timeout)
    assert isinstance(frame, dict), frame
    return frame


async def collect(
    ws: aiohttp.ClientWebSocketResponse,
    until: Callable[[dict[str, Any]], bool],
    timeout: float = TIMEOUT,
    *,
    with_audio_frames: bool = False,
) -> tuple[list[Any], bytes]:
    """JSON frames up to and including the first matching ``until``; plus all audio.

    With ``with_audio_frames`` the list holds the binary frames too, in arrival order."""
    frames: list[Any] = []
    audio = bytearray()
    while True:
        frame = await recv(ws, timeout)
        if isinstance(frame, bytes):
            audio += frame
            if with_audio_frames:
                frames.append(frame)
        elif isinstance(frame, dict):
            frames.append(frame)
            if until(frame):
                return frames, bytes(audio)
        else:
            raise AssertionError(f"unexpected frame {frame!r}")


def of_type(kind: str) -> Callable[[dict[str, Any]], bool]:
    return lambda message: message.get("type") == kind


async def configure(
    ws: aiohttp.ClientWebSocketResponse, message: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    """Send ``config`` and return ``ready`` (fails if anything else comes first)."""
    await send(ws, message or config())
    ready = await recv_json(ws)
    assert ready["type"] == "ready", ready
    return dict(ready)


def ws_frame(first: int, payload: bytes, mask: Optional[bytes] = None) -> bytes:
    """One WebSocket frame laid out as RFC 6455 section 5.2 has it (``first``: its FIN,
    RSV and opcode bits), masked with the 4-byte ``mask`` when given (a client's frame)."""
    size = len(payload)
    second = 0x80 if mask is not None else 0
    if size < 126:
        head = bytes((first, second | size))
    elif size < 65536:
        head = struct.pack("!BBH", first, second | 126, size)
    else:
        head = struct.pack("!BBQ", first, second | 127, size)
    if mask is None:
        return head + payload
    stream = (mask * (size // 4 + 1))[:size]
    masked = int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")
    return head + mask + masked.to_bytes(size, "big")
