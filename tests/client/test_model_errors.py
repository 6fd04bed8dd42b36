"""Bad values in the public models are SaynaValidationErrors naming the field, what it
expects and the type given, and still pydantic ValidationErrors (issue: a stranger's
``STTConfig(provider=1)`` got pydantic's raw error while the rest of the SDK names the fix).
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any, Callable

import pydantic
import pytest

from sayna_client import (
    ApiKeyAuth,
    GoogleAuth,
    LiveKitConfig,
    LoadingAudioConfig,
    Pronunciation,
    SaynaValidationError,
    SipHook,
    STTConfig,
    TTSConfig,
)
from sayna_client.types.rest import SpeakRequest

BAD: dict[str, tuple[Callable[[], Any], str]] = {
    "wrong type": (
        lambda: STTConfig(provider=1),
        "STTConfig.provider: must be a valid string (got int)",
    ),
    "not a number": (
        lambda: STTConfig(provider="deepgram", sample_rate="fast"),
        "STTConfig.sample_rate: must be a valid integer",
    ),
    "out of range": (
        lambda: TTSConfig(provider="deepgram", speaking_rate=9),
        "TTSConfig.speaking_rate: must be less than or equal to 4 (got int)",
    ),
    "missing": (lambda: LiveKitConfig(), "LiveKitConfig.room_name is required"),
    "typo": (
        lambda: STTConfig(provider="deepgram", sample_rte=8000),
        "STTConfig has no field 'sample_rte' (its fields: provider, language, sample_rate",
    ),
    "nested": (
        lambda: TTSConfig(provider="x", pronunciations=[{"word": "a", "pronunciation": 2}]),
        "TTSConfig.pronunciations[0].pronunciation: must be a valid string (got int)",
    ),
    "union": (
        lambda: STTConfig(provider="deepgram", auth=3),
        "STTConfig.auth: must be one of ApiKeyAuth, GoogleAuth, AzureAuth, dict[str,any] (got int)",
    ),
    "validator": (
        lambda: LoadingAudioConfig(data=" "),
        "LoadingAudioConfig.data: loading_audio.data must be non-empty base64 audio",
    ),
    "auth model": (lambda: ApiKeyAuth(api_key=5), "ApiKeyAuth.api_key: must be a valid string"),
    "google": (lambda: GoogleAuth(credentials=[1]), "GoogleAuth.credentials: must be one of str"),
    "pronunciation": (lambda: Pronunciation(word=""), "Pronunciation.word: string should have"),
    "sip hook": (
        lambda: SipHook(host=1, url="u"),
        "SipHook.host: must be a valid string (got int)",
    ),
    "request": (lambda: SpeakRequest(text=1), "SpeakRequest.text: must be a valid string"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_values_raise_a_validation_error_naming_the_field(case: str) -> None:
    build, expected = BAD[case]
    with pytest.raises(SaynaValidationError) as info:
        build()
    assert expected in str(info.value)
    assert "\n" not in str(info.value)
    # Also pydantic's error, with pydantic's details: code catching it keeps working.
    assert isinstance(info.value, pydantic.ValidationError)
    assert isinstance(info.value, ValueError)
    assert info.value.errors()
    assert repr(info.value) == f"ModelValidationError({str(info.value)!r})"


def test_many_problems_are_counted_after_the_first_three() -> None:
    with pytest.raises(SaynaValidationError) as info:
        STTConfig(provider=1, language=2, channels="x", encoding=3, model=4)
    text = str(info.value)
    assert text.count("STTConfig.") == 3
    assert text.endswith("; and 2 more")
    assert info.value.error_count() == 5  # type: ignore[attr-defined]


def test_assignment_is_checked_the_same_way() -> None:
    config = STTConfig(provider="deepgram")
    with pytest.raises(SaynaValidationError, match=r"STTConfig\.sample_rate: must be a valid"):
        config.sample_rate = "fast"  # type: ignore[assignment]
    config.sample_rate = 8000
    assert config.sample_rate == 8000


def test_assigning_a_misspelt_field_names_the_fields() -> None:
    """As for a typo at construction: not pydantic's "object has no attribute"."""
    config = STTConfig(provider="deepgram")
    with pytest.raises(SaynaValidationError) as info:
        config.langauge = "fr-FR"  # type: ignore[attr-defined]
    assert str(info.value) == (
        "STTConfig has no field 'langauge' (its fields: provider, language, sample_rate, "
        "channels, punctuation, encoding, model, auth)"
    )
    assert config.language == "en-US"


def test_the_value_is_never_quoted() -> None:
    secret = "sk-live-0123456789abcdef"
    for build in (
        lambda: ApiKeyAuth(api_key=[secret]),
        lambda: STTConfig(provider="deepgram", sample_rate=secret),
        lambda: STTConfig(provider="deepgram", auth=secret),
    ):
        with pytest.raises(SaynaValidationError) as info:
            build()
        assert secret not in str(info.value)
        assert secret not in repr(info.value)
        # Logged error lists and their JSON leave the values out unless asked for them.
        assert secret not in repr(info.value.errors())
        assert secret not in info.value.json()
        assert secret in repr(info.value.errors(include_input=True))


def test_pydantic_behaviour_is_unchanged() -> None:
    config = STTConfig.model_validate({"provider": "deepgram", "sample_rate": 8000})
    assert config.model_dump()["sample_rate"] == 8000
    assert STTConfig.model_validate_json(config.model_dump_json()) == config
    assert config.model_copy(update={"language": "fr"}).language == "fr"
    # model_validate is pydantic's own entry point: pydantic's error, as before.
    with pytest.raises(pydantic.ValidationError):
        STTConfig.model_validate({"provider": 1})


@pytest.mark.parametrize("case", sorted(BAD))
def test_the_error_pickles_with_its_message(case: str) -> None:
    """A process pool or multiprocessing queue carries the error by pickle: the message
    users read must survive it (pydantic's own pickling rebuilt it without)."""
    build, message = BAD[case]
    with pytest.raises(SaynaValidationError) as caught:
        build()
    copy = pickle.loads(pickle.dumps(caught.value))
    assert type(copy) is type(caught.value)
    assert str(copy) == str(caught.value)
    assert copy.errors(include_context=False) == caught.value.errors(include_context=False)
    assert message in str(copy)
    assert isinstance(copy, pydantic.ValidationError)


def test_the_pickled_error_leaves_the_values_given_behind() -> None:
    """A key passed in the wrong field must not travel through process pools, queues or
    log handlers that pickle (the pickle carried ``errors(include_input=True)``)."""
    secret = "sk-live-pickled-0123456789"
    for build in (
        lambda: ApiKeyAuth(api_key=[secret]),
        lambda: STTConfig(provider="deepgram", sample_rate=secret),
        lambda: STTConfig(provider="deepgram", auth=secret),
    ):
        with pytest.raises(SaynaValidationError) as info:
            build()
        data = pickle.dumps(info.value)
        assert secret.encode() not in data
        copy = pickle.loads(data)
        assert str(copy) == str(info.value)
        assert secret not in repr(copy.errors(include_input=True))
        kept = [(line["loc"], line["type"], line["msg"]) for line in copy.errors()]
        assert kept == [(line["loc"], line["type"], line["msg"]) for line in info.value.errors()]
        # The live error still shows them to whoever asks.
        assert secret in repr(info.value.errors(include_input=True))


def test_the_documented_way_to_get_one_in_a_test() -> None:
    """The docstring and docs/errors.md say: validate a model with a bad value."""
    from sayna_client import ModelValidationError

    with pytest.raises(ModelValidationError) as info:
        STTConfig(provider="deepgram", sample_rate="fast")
    assert str(info.value).startswith("STTConfig.sample_rate:")
    assert "build a model with a bad value" in (ModelValidationError.__doc__ or "")


def test_the_error_is_public_under_its_own_name() -> None:
    """Tracebacks and reprs name the class users can import and catch, not a private module
    (they showed ``sayna_client.types._checked.ModelValidationError``)."""
    import sayna_client
    import sayna_client.errors

    with pytest.raises(sayna_client.ModelValidationError) as info:
        STTConfig(provider=1)
    error = info.value
    assert type(error) is sayna_client.ModelValidationError
    assert sayna_client.errors.ModelValidationError is sayna_client.ModelValidationError
    assert "ModelValidationError" in sayna_client.__all__
    assert "ModelValidationError" in sayna_client.errors.__all__
    kind = type(error)
    assert f"{kind.__module__}.{kind.__qualname__}" == "sayna_client.errors.ModelValidationError"
    # The last line of a traceback, as Python prints it.
    last = traceback.format_exception_only(kind, error)[-1]
    assert last.startswith("sayna_client.errors.ModelValidationError: STTConfig.provider: must")
    assert isinstance(error, SaynaValidationError)
    assert isinstance(error, pydantic.ValidationError)
    # The class itself pickles by its public name (a process pool sends the type too).
    assert pickle.loads(pickle.dumps(kind)) is kind
    assert b"_checked" not in pickle.dumps(error)
