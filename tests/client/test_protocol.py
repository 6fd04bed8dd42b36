"""The sans-I/O protocol layer: encoding commands and decoding frames, no event loop."""

import json

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sayna_client import (
    ErrorMessage,
    MalformedMessage,
    ReadyMessage,
    STTConfig,
    STTResultMessage,
    TTSConfig,
    UnknownEvent,
    decode_text,
)
from sayna_client.protocol import KNOWN_EVENT_TYPES, encode_config, encode_speak
from sayna_client.protocol.decode import MAX_TEXT_FRAME


def test_config_sends_every_stt_key_the_server_requires() -> None:
    text = encode_config(
        stream_id="s1",
        audio=True,
        stt_config=STTConfig(provider="deepgram", model="nova-2"),
        tts_config=TTSConfig(provider="cartesia", voice_id="v"),
        livekit=None,
        loading_audio=None,
    )
    data = json.loads(text)
    assert data["type"] == "config"
    assert data["stream_id"] == "s1"
    assert set(data["stt_config"]) == {
        "provider",
        "language",
        "sample_rate",
        "channels",
        "punctuation",
        "encoding",
        "model",
    }
    assert data["stt_config"]["language"] == "en-US"
    assert data["tts_config"]["model"] == ""
    assert "livekit" not in data


def test_speak_encoding_is_compact_json() -> None:
    assert json.loads(encode_speak("héllo", True, False)) == {
        "type": "speak",
        "text": "héllo",
        "flush": True,
        "allow_interruption": False,
    }


def test_decode_known_events_tolerates_new_fields() -> None:
    event = decode_text('{"type":"ready","stream_id":"a","livekit_url":"u","future":1}')
    assert isinstance(event, ReadyMessage)
    assert event.stream_id == "a"
    result = decode_text(
        '{"type":"stt_result","transcript":"hi","is_final":true,'
        '"is_speech_final":false,"confidence":0.5}'
    )
    assert isinstance(result, STTResultMessage)
    assert result.transcript == "hi"
    assert isinstance(decode_text('{"type":"error","message":"x"}'), ErrorMessage)


def test_unknown_type_is_a_value() -> None:
    event = decode_text('{"type":"brand_new","x":[1,2]}')
    assert isinstance(event, UnknownEvent)
    assert event.event_type == "brand_new"
    assert event.data == {"type": "brand_new", "x": [1, 2]}


def test_malformed_frames_become_values() -> None:
    for text, fragment in [
        ("{not json", "invalid JSON"),
        ("[1,2]", "expected a JSON object"),
        ('{"no_type":1}', "no string 'type'"),
        ('{"type":"stt_result","transcript":5}', "invalid 'stt_result'"),
        ('{"type":"ready","stream_id":{"a":1}}', "invalid 'ready'"),
    ]:
        event = decode_text(text)
        assert isinstance(event, MalformedMessage), text
        assert fragment in event.reason
        assert event.message.startswith("Malformed message")


def test_huge_frame_is_reported_without_parsing() -> None:
    event = decode_text("x" * (MAX_TEXT_FRAME + 1))
    assert isinstance(event, MalformedMessage)
    assert "exceeds" in event.reason
    assert len(event.raw) < 100


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=4,
)
_objects = st.fixed_dictionaries(
    {"type": st.sampled_from(sorted(KNOWN_EVENT_TYPES)) | st.text(max_size=12)},
    optional={
        "transcript": _json_values,
        "is_final": _json_values,
        "is_speech_final": _json_values,
        "confidence": _json_values,
        "message": _json_values,
        "participant": _json_values,
        "track": _json_values,
        "timestamp": _json_values,
        "stream_id": _json_values,
    },
)
_frames = st.one_of(
    _objects.map(json.dumps),
    _json_values.map(json.dumps),
    st.text(max_size=200),
)


@settings(
    max_examples=10_000,
    deadline=None,
    database=None,
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=list(HealthCheck),
)
@given(_frames)
def test_decoder_never_raises_on_hostile_frames(frame: str) -> None:
    event = decode_text(frame)
    assert event.type in KNOWN_EVENT_TYPES | {"unknown", "malformed_message"}
