"""The sans-I/O protocol layer: encoding commands and decoding frames, no event loop."""

import json
from typing import Any, Optional

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from sayna_client import (
    ApiKeyAuth,
    AzureAuth,
    ErrorMessage,
    GoogleAuth,
    MalformedMessage,
    Pronunciation,
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


_text = st.text(max_size=12)
_json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=8,
)
_auth = st.one_of(
    st.none(),
    st.builds(ApiKeyAuth, api_key=st.text(min_size=1, max_size=12)),
    st.builds(AzureAuth, api_key=st.text(min_size=1), region=st.text(min_size=1)),
    st.builds(GoogleAuth, credentials=_text | st.dictionaries(_text, _json_value, max_size=3)),
    st.dictionaries(_text, _json_value, max_size=3),
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(
    stt=st.builds(
        STTConfig,
        provider=st.text(min_size=1, max_size=12),
        language=_text,
        sample_rate=st.integers(1, 384000),
        channels=st.integers(1, 8),
        encoding=st.text(min_size=1, max_size=8),
        auth=_auth,
    ),
    tts=st.builds(
        TTSConfig,
        provider=st.text(min_size=1, max_size=12),
        voice_id=st.none() | _text,
        speaking_rate=st.floats(0.01, 4.0),
        connection_timeout=st.none() | st.integers(0, 600),
        pronunciations=st.lists(
            st.builds(Pronunciation, word=st.text(min_size=1, max_size=8), pronunciation=_text),
            max_size=2,
        ),
        auth=_auth,
    ),
    stream_id=st.none() | _text,
)
def test_config_encoding_matches_the_models_json(
    stt: STTConfig, tts: TTSConfig, stream_id: Optional[str]
) -> None:
    # The one-call encoder must send what model_dump(mode="json", exclude_none=True)
    # says, key for key (None dropped at every level of the models).
    text = encode_config(
        stream_id=stream_id,
        audio=True,
        stt_config=stt,
        tts_config=tts,
        livekit=None,
        loading_audio=None,
    )
    expected: dict[str, Any] = {"type": "config", "audio": True}
    if stream_id is not None:
        expected["stream_id"] = stream_id
    expected["stt_config"] = stt.model_dump(mode="json", exclude_none=True)
    expected["tts_config"] = tts.model_dump(mode="json", exclude_none=True)
    assert json.loads(text) == expected


def test_speak_encoding_is_compact_json() -> None:
    assert json.loads(encode_speak("héllo", True, False)) == {
        "type": "speak",
        "text": "héllo",
        "flush": True,
        "allow_interruption": False,
    }


@pytest.mark.parametrize(
    "text",
    [
        "okay",
        'say "hi" \\ back',
        "line\nbreak\ttab\r\x00\x1f\x7f",
        "h\u00e9llo \u2028 \u2029 \U0001f600 \u4f60\u597d",
        "</script> & \\u0041",
        "\ud800 lone surrogate",
    ],
)
@pytest.mark.parametrize("flush", [True, False])
@pytest.mark.parametrize("allow_interruption", [True, False])
def test_speak_encoding_is_what_the_json_encoder_writes(
    text: str, flush: bool, allow_interruption: bool
) -> None:
    # encode_speak puts the text together from pieces: it must stay byte for byte the
    # JSON encoder's output (compact, non-ASCII kept, the encoder's escapes).
    expected = json.dumps(
        {"type": "speak", "text": text, "flush": flush, "allow_interruption": allow_interruption},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert encode_speak(text, flush, allow_interruption) == expected


@given(text=st.text(), flush=st.booleans(), allow_interruption=st.booleans())
def test_speak_encoding_matches_the_encoder_for_any_text(
    text: str, flush: bool, allow_interruption: bool
) -> None:
    expected = json.dumps(
        {"type": "speak", "text": text, "flush": flush, "allow_interruption": allow_interruption},
        ensure_ascii=False,
        separators=(",", ":"),
    )
    assert encode_speak(text, flush, allow_interruption) == expected


def test_speak_encoding_of_other_values_goes_through_the_encoder() -> None:
    class Text(str):
        pass

    assert encode_speak(Text("hi"), 1, None) == (  # type: ignore[arg-type]
        '{"type":"speak","text":"hi","flush":1,"allow_interruption":null}'
    )


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
