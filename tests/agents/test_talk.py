"""``sayna talk`` and ``agents.talk``: conversations through WAV files on the local server
(scripted caller speech), and the error that names what the sound card needs."""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from sayna_client import SaynaValidationError, audio
from sayna_client.agents import PacedSpeaker, WavMicrophone
from sayna_client.agents.talk import Line, RuleTable, load_reply, talk
from sayna_client.cli import main
from sayna_client.server import LocalServer
from sayna_client.server.engines.fake import render_words

from .conftest import RATE, WORD_BYTES, make_client


class ThreadedServer:
    """A LocalServer on its own loop thread, so the CLI (which runs its own loop) can
    talk to it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = LocalServer()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def script(self, *lines: str) -> None:
        async def script() -> None:
            self.server.script_speech(*lines)

        asyncio.run_coroutine_threadsafe(script(), self.loop).result(10)


@pytest.fixture
def threaded() -> Iterator[ThreadedServer]:
    with ThreadedServer() as server:
        yield server


def caller_wav(path: Path, *utterances: int, rate: int = 44100) -> Path:
    """Bursts the fake STT hears as utterances (``n`` words each), a second apart."""
    pcm = b"".join(render_words(["x"] * n, rate) + bytes(2 * rate) for n in utterances)
    audio.write_wav(path, pcm, rate)
    return path


def test_talk_echoes_through_wav_files(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threaded.script("how are you")
    wav_in = caller_wav(tmp_path / "caller.wav", 3)
    out = tmp_path / "agent.wav"
    args = ["talk", "--url", threaded.server.url, "--input", str(wav_in), "--output", str(out)]
    assert main([*args, "--speed", "0", "--sample-rate", "16000"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "you: how are you",
        "agent: You said: how are you.",
    ]
    spoken = [
        m["text"] for m in threaded.server.records.last_session.messages if m["type"] == "speak"
    ]
    assert spoken == ["You said: how are you."]
    # The whole answer was played into the file before talk returned: 5 words.
    assert audio.read_wav(out).nbytes == 5 * WORD_BYTES


def test_talk_with_the_rule_table_ends_on_goodbye(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    threaded.script("hello there", "goodbye", "never heard")
    wav_in = caller_wav(tmp_path / "caller.wav", 2, 1, 2)
    # Without barge-in the answers play out whatever the caller does: the lines are exact.
    args = ["talk", "--url", threaded.server.url, "--input", str(wav_in), "--no-barge-in"]
    code = main([*args, "--output", str(tmp_path / "agent.wav"), "--agent", "rules"])
    assert code == 0
    assert capsys.readouterr().out.splitlines() == [
        "you: hello there",
        "agent: Hello! How can I help you today?",
        "you: goodbye",
        "agent: Goodbye! Thanks for calling.",
    ]


def test_talk_runs_the_users_own_reply_function(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text(
        "async def reply(text):\n"
        "    for token in ['Sure', '.', ' You', ' asked', ' about ' + text.split()[-1], '.']:\n"
        "        yield token\n",
        encoding="utf-8",
    )
    threaded.script("the weather")
    wav_in = caller_wav(tmp_path / "caller.wav", 2)
    args = ["talk", "--url", threaded.server.url, "--input", str(wav_in), "--speed", "0"]
    assert main([*args, "--output", str(tmp_path / "a.wav"), "--reply", f"{bot}:reply"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "agent: Sure. You asked about weather."
    spoken = [
        m["text"] for m in threaded.server.records.last_session.messages if m["type"] == "speak"
    ]
    assert spoken == ["Sure.", "You asked about weather."]  # streamed sentence by sentence


def test_a_failing_reply_function_is_one_line(
    threaded: ThreadedServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bot = tmp_path / "bot.py"
    bot.write_text(
        "async def reply(text):\n    yield 'One moment. '\n    raise KeyError('no such intent')\n"
    )
    threaded.script("book a table")
    wav_in = caller_wav(tmp_path / "caller.wav", 3)
    args = ["talk", "--url", threaded.server.url, "--input", str(wav_in), "--speed", "0"]
    assert main([*args, "--output", str(tmp_path / "a.wav"), "--reply", f"{bot}:reply"]) == 1
    err = capsys.readouterr().err
    assert (
        err
        == f"error: the agent's reply (--reply {bot}:reply) failed: KeyError('no such intent')\n"
    )


def test_talk_without_a_sound_card_names_the_extra_or_portaudio(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens at this URL: the error comes before any connection.
    url = "http://127.0.0.1:9"
    try:
        import sounddevice

        sounddevice.query_devices(kind="input")
    except Exception:  # no package, no PortAudio library, or no input device
        assert main(["talk", "--url", url]) == 1
        err = capsys.readouterr().err
        assert "devices" in err or "PortAudio" in err or "no audio input device" in err
        assert "--input caller.wav --output agent.wav" in err
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # as if the extra is missing
    assert main(["talk", "--url", url]) == 1
    err = capsys.readouterr().err
    assert "pip install 'sayna-client[devices]'" in err
    assert err.count("\n") == 1  # one line, no traceback


def test_talk_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    wav_in = caller_wav(tmp_path / "caller.wav", 1)
    base = ["talk", "--input", str(wav_in), "--output", str(tmp_path / "a.wav")]
    assert main([*base, "--reply", "no_such_module_here:reply"]) == 2
    assert "cannot import no_such_module_here" in capsys.readouterr().err
    assert main([*base, "--reply", "reply"]) == 2
    assert "MODULE:FUNCTION" in capsys.readouterr().err
    form = "expected --reply path/to/file.py:function_name"
    assert main([*base, "--reply", str(tmp_path / "nofile.py:reply")]) == 2
    err = capsys.readouterr().err
    assert f"no file {tmp_path / 'nofile.py'} (not found in" in err
    assert form in err
    bot = tmp_path / "bot.py"
    bot.write_text("async def reply(text):\n    yield text\n", encoding="utf-8")
    assert main([*base, "--reply", f"{bot}:answer"]) == 2
    err = capsys.readouterr().err
    assert f"{bot} has no function 'answer' (it defines: reply)" in err
    assert form in err
    assert main([*base, "--reply", f"{tmp_path}:reply"]) == 2
    assert f"{tmp_path} is not a .py file" in capsys.readouterr().err
    rules = tmp_path / "rules.json"
    rules.write_text('{"(unclosed": "x"}', encoding="utf-8")
    assert main([*base, "--rules", str(rules)]) == 2
    assert "not a valid regular expression" in capsys.readouterr().err
    rules.write_text("[1, 2]", encoding="utf-8")
    assert main([*base, "--rules", str(rules)]) == 2
    assert "JSON object" in capsys.readouterr().err


def test_rule_table_and_reply_loading() -> None:
    table = RuleTable({r"\bprice\b": "It costs three dollars."}, fallback="Sorry?")
    assert table.answer("what is the PRICE") == "It costs three dollars."
    assert table.answer("hm") == "Sorry?"
    assert RuleTable().answer("my name is Ann") == "You said: my name is Ann."
    with pytest.raises(SaynaValidationError, match="non-empty"):
        RuleTable({"x": ""})
    assert load_reply("sayna_client.agents.talk:echo").__name__ == "echo"
    with pytest.raises(SaynaValidationError, match="no function"):
        load_reply("sayna_client.agents.talk:nothing")


async def test_talking_over_the_agent_interrupts_it(server: LocalServer, tmp_path: Path) -> None:
    """The library loop: the caller's second utterance starts while the agent's long answer
    plays; barge-in stops it and the line holds only what was heard."""
    server.script_speech("tell me a story", "stop")
    pcm = render_words(["x"] * 3, RATE) + bytes(RATE)  # a turn, then 0.5 s of silence
    pcm += render_words(["x"], RATE) + bytes(2 * RATE)  # "stop", while the agent speaks
    audio.write_wav(tmp_path / "caller.wav", pcm, RATE)

    story_text = "once upon a time there was a king who had very many words to say"

    async def storyteller(text: str) -> object:
        return story_text if "story" in text else "okay"

    lines: list[Line] = []
    async with make_client(server) as client:
        await client.connect()
        async with PacedSpeaker(RATE) as speaker:
            got = await talk(
                client,
                WavMicrophone(tmp_path / "caller.wav", sample_rate=RATE),
                storyteller,
                speaker=speaker,
                on_line=lines.append,
            )
        assert client.audio_output is None  # put back
    assert got == lines
    assert str(lines[0]) == "you: tell me a story"
    story = lines[1]
    assert story.speaker == "agent"
    assert story.interrupted
    assert str(story).endswith(" [interrupted]")
    # Only the words heard before the caller spoke: a beginning of the story, not all of it.
    assert story_text.startswith(story.text)
    assert len(story.text.split()) < len(story_text.split())
    assert [str(line) for line in lines[2:]] == ["you: stop", "agent: okay"]


async def test_an_answer_the_tts_provider_failed_does_not_end_the_conversation(
    server: LocalServer, tmp_path: Path
) -> None:
    """The server fails the first answer's synthesis (as Sayna does when its TTS provider
    errs): that line says so with the server's message, and the conversation goes on."""
    server.script_speech("hello there", "are you there")
    pcm = render_words(["x"] * 2, RATE) + bytes(2 * RATE)
    pcm += render_words(["x"] * 3, RATE) + bytes(2 * RATE)
    audio.write_wav(tmp_path / "caller.wav", pcm, RATE)
    server.fail_tts()  # the next request the server takes up: the first answer

    async with make_client(server) as client:
        await client.connect()
        lines = await talk(client, WavMicrophone(tmp_path / "caller.wav", sample_rate=RATE))
    assert [line.speaker for line in lines] == ["you", "agent", "you", "agent"]
    failed, answered = lines[1], lines[3]
    assert failed.error is not None
    assert failed.error.startswith("TTS error: ")
    assert "scripted failure" in str(failed)
    assert failed.text == ""  # nothing of it was heard
    assert str(answered) == "agent: You said: are you there."
    assert answered.error is None


async def test_an_answer_under_way_stops_when_talk_is_cancelled(
    server: LocalServer, tmp_path: Path
) -> None:
    # Cancelling talk() (as max_seconds does) used to stop only the wait for the answer:
    # its speak_stream went on reading the reply and sending speaks after talk() ended.
    server.script_speech("hello there")
    audio.write_wav(tmp_path / "caller.wav", render_words(["x"] * 2, RATE) + bytes(RATE), RATE)
    answering = asyncio.Event()
    reply_closed = asyncio.Event()
    more = asyncio.Event()  # never set: the reply waits for its next token for ever

    async def reply(text: str) -> AsyncIterator[str]:
        try:
            yield "Sure, let me think. "
            answering.set()
            await more.wait()
            yield "This is never said."
        finally:
            reply_closed.set()

    async with make_client(server) as client:
        await client.connect()
        microphone = WavMicrophone(tmp_path / "caller.wav", sample_rate=RATE, speed=0)
        conversation = asyncio.ensure_future(talk(client, microphone, reply))
        await asyncio.wait_for(answering.wait(), 20)
        handle = client.speech.current
        assert handle is not None
        conversation.cancel()
        with pytest.raises(asyncio.CancelledError):
            await conversation
        await asyncio.wait_for(reply_closed.wait(), 10)
        assert handle.interrupted
        assert not client.speech.speaking
        session = server.records.last_session
        await server.records.wait_for(lambda: any(m["type"] == "clear" for m in session.messages))
        spoken = [m["text"] for m in session.messages if m["type"] == "speak"]
    assert spoken == ["Sure, let me think."]
