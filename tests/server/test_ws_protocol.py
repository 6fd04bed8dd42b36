"""WebSocket: strict parsing, the command x state matrix, config processing."""

from __future__ import annotations

import base64
import json
import struct
import uuid
from typing import Any

import aiohttp
import pytest

from helpers.wire import STT, TTS, config, configure, recv, recv_json, send
from sayna_client.server import LocalServer
from sayna_client.server.engines.base import wav_header

VARIANTS = (
    "`config`, `speak`, `clear`, `send_message`, `sip_transfer`, `update_config`, "
    "`loading_start`, `loading_stop`"
)
AUDIO_DISABLED = "Audio processing is disabled. Send config message with audio=true first."
NO_LIVEKIT = "LiveKit client not configured. Send config message with livekit configuration first."


def _error(message: str) -> dict[str, str]:
    return {"type": "error", "message": message}


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        (
            '{"type":"foo"}',
            f"unknown variant `foo`, expected one of {VARIANTS} at line 1 column 14",
        ),
        ('{"text":"hi"}', "missing field `type` at line 1 column 13"),
        ('{"type":"speak"}', "missing field `text` at line 1 column 16"),
        (
            '{"type":"speak","text":5}',
            "invalid type: integer `5`, expected a string at line 1 column 25",
        ),
        ("not json", "expected ident at line 1 column 2"),  # "n" starts a null to serde
        ("json", "expected value at line 1 column 1"),
        (
            "[1]",
            "invalid type: sequence, expected internally tagged enum IncomingMessage at line 1 "
            "column 3",
        ),
        (
            json.dumps(config(tts_config={"provider": "deepgram"})),
            "missing field `model`",
        ),
        (
            json.dumps(config(stt_config={k: v for k, v in STT.items() if k != "encoding"})),
            "missing field `encoding`",
        ),
        (
            json.dumps(config(stt_config={**STT, "sample_rate": -1})),
            "invalid value: integer `-1`, expected u32",
        ),
        (json.dumps(config(audio="yes")), 'invalid type: string "yes", expected a boolean'),
    ],
)
async def test_invalid_frames_get_serde_errors_and_connection_stays_open(
    server: LocalServer, http: aiohttp.ClientSession, text: str, detail: str
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await ws.send_str(text)
        error = await recv_json(ws)
        assert error["type"] == "error"
        assert error["message"].startswith("Invalid message format: " + detail), error
        await configure(ws)
    session = server.records.last_session
    assert session.raw_text_frames[0] == text


async def test_stream_id_is_echoed_or_generated(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        ready = await configure(ws, config(stream_id=""))
        assert ready == {"type": "ready", "stream_id": "", "livekit_url": "ws://127.0.0.1:7880"}
        ready = await configure(ws)
        assert uuid.UUID(ready["stream_id"]).version == 4
        assert server.records.last_session.stream_id == ready["stream_id"]


@pytest.mark.parametrize(
    "update",
    [
        {"turn_detect": {}},
        {"turn_detect": {"threshold": None}},
        {"vad": {"silence_duration_ms": 300}, "turn_detect": {}},
        {"vad": {}, "turn_detect": None},
    ],
)
async def test_update_config_without_a_threshold_changes_nothing(
    server: LocalServer, http: aiohttp.ClientSession, update: dict[str, Any]
) -> None:
    # config.rs: TurnDetectConfigUpdate.threshold is an Option; only Some acts.
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, {"type": "update_config", "turn_detect": {"threshold": 0.3}})
        await send(ws, {"type": "update_config", **update})
        await send(ws, {"type": "marker"})  # answered once both were handled, silently
        assert (await recv_json(ws))["message"].startswith(
            "Invalid message format: unknown variant `marker`"
        )
    assert server.turn_detect_threshold == pytest.approx(0.3)


async def test_update_config_parts_are_named_as_sayna_names_them(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        for key, name in (("vad", "VADConfigUpdate"), ("turn_detect", "TurnDetectConfigUpdate")):
            text = json.dumps({"type": "update_config", key: "x"})
            await ws.send_str(text)
            assert await recv_json(ws) == _error(
                f'Invalid message format: invalid type: string "x", expected struct {name} '
                f"at line 1 column {len(text)}"
            )


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        # serde_json 1.0.145 (de.rs): a character peeked and refused is placed at itself,
        # an early end at the end of the text; columns count UTF-8 bytes.
        ('{"type":"speak","text":"hi"', "EOF while parsing an object at line 1 column 27"),
        ('{"type":"speak","text":"hi",}', "trailing comma at line 1 column 29"),
        ("{'type':'clear'}", "key must be a string at line 1 column 2"),
        ('{"type":"speak" "text":"hi"}', "expected `,` or `}` at line 1 column 17"),
        ('{"type" "speak"}', "expected `:` at line 1 column 9"),
        ('{"type":"speak","text":tru}', "expected ident at line 1 column 27"),
        ('{"type":"speak","text":01}', "invalid number at line 1 column 25"),
        ('{"type":"speak","text":1.}', "invalid number at line 1 column 26"),
        ('{"type":"speak","text":-}', "invalid number at line 1 column 25"),
        ('{"type":"speak","text":1e}', "invalid number at line 1 column 26"),
        ("[1,]", "trailing comma at line 1 column 4"),
        ("[1 2]", "expected `,` or `]` at line 1 column 4"),
        ('{"type":"speak","text":"\u00e9" x}', "expected `,` or `}` at line 1 column 29"),
        ("{", "EOF while parsing an object at line 1 column 1"),
        ("[", "EOF while parsing a list at line 1 column 1"),
        ("[1,", "EOF while parsing a value at line 1 column 3"),
        ('{"type":"speak","text":"hi",', "EOF while parsing a value at line 1 column 28"),
        ('{"type"', "EOF while parsing an object at line 1 column 7"),
        ('{"type":', "EOF while parsing a value at line 1 column 8"),
        ('{"type":"clear"}\n\n x', "trailing characters at line 3 column 2"),
    ],
)
async def test_syntax_errors_in_serde_json_words(
    server: LocalServer, http: aiohttp.ClientSession, text: str, detail: str
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await ws.send_str(text)
        assert await recv_json(ws) == _error("Invalid message format: " + detail)


async def test_repeated_fields_are_refused_as_serde_does(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        # The tag is refused right after its second key (and the blanks after it).
        for text, column in (
            ('{"type":"update_config","type":"clear"}', 30),
            ('{"type":"update_config", "type" :"clear"}', 32),
        ):
            await ws.send_str(text)
            assert await recv_json(ws) == _error(
                f"Invalid message format: duplicate field `type` at line 1 column {column}"
            )
        await ws.send_str('{"type":"bogus","type":"clear"}')  # the first tag is read first
        assert (await recv_json(ws))["message"].startswith(
            "Invalid message format: unknown variant `bogus`"
        )
        await ws.send_str('{"type":"send_message","message":"a","role":"r","message":"b"}')
        assert (await recv_json(ws))["message"].startswith(
            "Invalid message format: duplicate field `message`"
        )
        # Repeated keys that are not fields, and repeated keys of a map, pass.
        await ws.send_str('{"type":"clear","x":1,"x":2}')
        stt = {**STT, "auth": {"api_key": "a"}}
        text = json.dumps(config(stt_config=stt)).replace(
            '"api_key": "a"', '"api_key": "a", "api_key": "b"'
        )
        await ws.send_str(text)
        assert (await recv_json(ws))["type"] == "ready"
    assert server.records.last_session.config["stt_config"]["auth"] == {"api_key": "b"}


async def test_before_config_matrix(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await ws.send_bytes(b"\x00\x00")
        assert await recv_json(ws) == _error(AUDIO_DISABLED)
        await send(ws, {"type": "speak", "text": "hi"})
        assert await recv_json(ws) == _error(AUDIO_DISABLED)
        await send(ws, {"type": "clear"})
        await send(ws, {"type": "loading_stop"})
        await send(ws, {"type": "update_config", "turn_detect": {"threshold": 0.7}})
        await send(ws, {"type": "send_message", "message": "m", "role": "user"})
        assert await recv_json(ws) == _error(NO_LIVEKIT)
        await send(ws, {"type": "sip_transfer", "transfer_to": "+15550100"})
        assert await recv_json(ws) == {
            "type": "sip_transfer_error",
            "message": "Room name not available. Ensure LiveKit is configured.",
        }
        await send(ws, {"type": "loading_start"})
        assert await recv_json(ws) == _error(
            "Send a config message first before using loading_start."
        )
        await send(ws, {"type": "update_config", "turn_detect": {"threshold": 2}})
        assert await recv_json(ws) == _error(
            "Invalid turn detection threshold: 2. Must be between 0.0 and 1.0"
        )
    assert server.turn_detect_threshold == pytest.approx(0.7)
    session = server.records.last_session
    assert [m["type"] for m in session.messages][:3] == ["speak", "clear", "loading_stop"]
    assert session.audio_frames == 1
    assert session.audio_bytes == 2


async def test_audio_false_matrix(server: LocalServer, http: aiohttp.ClientSession) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        ready = await configure(ws, {"type": "config", "audio": False})
        assert "livekit_room_name" not in ready
        await ws.send_bytes(b"\x00\x00")
        assert await recv_json(ws) == _error(AUDIO_DISABLED)
        await send(ws, {"type": "speak", "text": "hi"})
        assert await recv_json(ws) == _error(AUDIO_DISABLED)
        await send(ws, {"type": "clear"})
        await send(ws, {"type": "loading_start"})
        assert await recv_json(ws) == _error(
            "Loading indicator requires audio to be enabled. Send a config message with audio=true."
        )


async def test_audio_without_livekit_matrix(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(ws)
        await send(ws, {"type": "send_message", "message": "m", "role": "user"})
        assert await recv_json(ws) == _error(NO_LIVEKIT)
        await send(ws, {"type": "sip_transfer", "transfer_to": "12a"})
        assert await recv_json(ws) == {
            "type": "sip_transfer_error",
            "message": "Invalid phone number: Invalid character 'a' at position 2 - only digits "
            "(0-9) and optional leading '+' are allowed",
        }
        await send(ws, {"type": "loading_start"})
        assert await recv_json(ws) == _error(
            "Loading indicator requires a LiveKit room. Include a livekit configuration in your "
            "config message."
        )


@pytest.mark.parametrize(
    ("message", "error"),
    [
        ({"type": "config"}, "STT configuration is required when audio=true"),
        ({"type": "config", "stt_config": STT}, "TTS configuration is required when audio=true"),
        (config(stt_config={**STT, "provider": "whisper"}), "Unsupported provider: whisper"),
        (
            config(tts_config={**TTS, "provider": "cartesia", "auth": {}}),
            None,
        ),
        (
            config(stt_config={**STT, "auth": {"api_key": ""}}),
            "Invalid auth input for provider deepgram: Auth field 'api_key' is required for "
            "provider deepgram",
        ),
        (
            config(tts_config={**TTS, "provider": "microsoft-azure", "auth": {"key": "x"}}),
            "Invalid auth input for provider azure: Unsupported auth field(s) for provider azure: "
            "key",
        ),
    ],
)
async def test_config_errors_are_fatal(
    server: LocalServer, http: aiohttp.ClientSession, message: dict[str, Any], error: Any
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, message)
        first = await recv_json(ws)
        if error is None:
            assert first["type"] == "ready"
            return
        assert first == _error(error)
        # No ready follows: the next frame answers the next message.
        await send(ws, {"type": "speak", "text": "hi"})
        follow = await recv_json(ws)
        assert follow["type"] == "error"
        assert follow["message"] in (
            AUDIO_DISABLED,
            "Voice manager not configured. Send config message with audio=true first.",
        )


async def test_fake_and_local_provider_names_pick_engines(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await configure(
            ws,
            config(stt_config={**STT, "provider": "fake"}, tts_config={**TTS, "provider": "FAKE"}),
        )
    assert server.records.last_session.stt_engine == "fake"
    assert server.records.last_session.tts_engine == "fake"


def _pcm_clip(ms: int, rate: int = 16000) -> bytes:
    return bytes(rate * ms // 1000 * 2)


@pytest.mark.parametrize(
    ("loading", "error"),
    [
        ({"data": "!!!"}, "loading_audio.data is not valid base64"),
        (
            {"data": base64.b64encode(_pcm_clip(500)).decode()},
            "sample_rate is required for raw PCM loading_audio",
        ),
        (
            {"data": base64.b64encode(_pcm_clip(100)).decode(), "sample_rate": 16000},
            "loading_audio is too short; the minimum duration is 250 ms",
        ),
        (
            {"data": base64.b64encode(_pcm_clip(500)).decode(), "format": "mp3"},
            'loading_audio.format must be "wav" or "pcm"',
        ),
        (
            {"data": base64.b64encode(_pcm_clip(500, 4000)).decode(), "sample_rate": 4000},
            "loading_audio sample rate must be between 8000 Hz and 48000 Hz",
        ),
        (
            {"data": base64.b64encode(b"\x00" * 16001).decode(), "sample_rate": 16000},
            "loading_audio raw PCM length is not frame-aligned",
        ),
        (
            {
                "data": base64.b64encode(
                    wav_header(16000, data_bytes=8000, bits=8) + bytes(8000)
                ).decode()
            },
            "loading_audio: only 16-bit PCM is supported; please provide 16-bit PCM audio",
        ),
    ],
)
async def test_loading_audio_errors_are_not_fatal(
    server: LocalServer, http: aiohttp.ClientSession, loading: dict[str, Any], error: str
) -> None:
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config(livekit={"room_name": "r1"}, loading_audio=loading))
        assert await recv_json(ws) == _error(error)
        assert (await recv_json(ws))["type"] == "ready"
        await send(ws, {"type": "loading_start"})
        assert await recv_json(ws) == _error(error)


async def test_loading_audio_needs_livekit_and_valid_clip_starts(
    server: LocalServer, http: aiohttp.ClientSession
) -> None:
    clip = _pcm_clip(300)
    wav = wav_header(16000, data_bytes=len(clip)) + clip
    async with http.ws_connect(server.ws_url) as ws:
        await send(ws, config(loading_audio={"data": base64.b64encode(wav).decode()}))
        assert await recv_json(ws) == _error(
            "loading_audio requires audio to be enabled and a livekit configuration"
        )
        assert (await recv_json(ws))["type"] == "ready"
        await send(
            ws,
            config(
                livekit={"room_name": "r2"}, loading_audio={"data": base64.b64encode(wav).decode()}
            ),
        )
        assert (await recv_json(ws))["type"] == "ready"
        await send(ws, {"type": "loading_start"})
        await send(ws, {"type": "loading_stop"})
        await send(ws, {"type": "speak", "text": ""})
        await send(ws, {"type": "update_config", "vad": {"silence_duration_ms": 10}})
        # Nothing answered any of the four: the next frame is this error.
        await send(ws, {"type": "send_message", "message": 1, "role": "r"})
        frame = await recv(ws)
        assert isinstance(frame, dict)
        assert frame["message"].startswith("Invalid message format: invalid type: integer `1`")
    assert struct.unpack_from("<I", wav, 24)[0] == 16000


@pytest.mark.parametrize(("keep", "kept"), [(0, 0), (1000, 1000), (10_000, 6400)])
async def test_records_keep_as_much_audio_as_asked(keep: int, kept: int) -> None:
    audio = bytes(range(256)) * 25  # 6,400 bytes in 10 frames
    async with LocalServer(keep_audio=keep) as server, aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.ws_url)
        await configure(ws, config())
        for start in range(0, len(audio), 640):
            await ws.send_bytes(audio[start : start + 640])
        session = server.records.last_session
        await server.records.wait_for(lambda: session.audio_frames == 10)
        await ws.close()
    assert session.audio_bytes == len(audio)  # counted whatever is kept
    assert bytes(session.audio) == audio[:kept]


def test_keep_audio_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="keep_audio is a number of bytes"):
        LocalServer(keep_audio=-1)


def test_every_client_message_type_has_exactly_one_handler() -> None:
    """The session dispatches through a table: each type the parser admits has a handler,
    and the table holds nothing the parser would never let through."""
    from sayna_client.server.schemas import CLIENT_MESSAGES
    from sayna_client.server.session import HANDLERS

    assert sorted(HANDLERS) == sorted(CLIENT_MESSAGES)
    assert all(callable(handler) for handler in HANDLERS.values())
