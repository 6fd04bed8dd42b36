"""A voice conversation loop: a microphone in, a reply function, a speaker out.

:func:`talk` is what ``sayna talk`` runs, usable on its own: each user turn's text goes to
``reply(text)``, whose pieces (an LLM's tokens, or one string) are spoken with
``speak_stream``; barge-in stops the agent when the user talks over it, and only the words
the user heard are reported. :func:`echo` and :class:`RuleTable` are the trivial built-in
agents; your own is any ``reply(text) -> AsyncIterable[str]`` (an async generator).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import re
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional, Union

from ..errors import SaynaTTSError, SaynaValidationError
from .devices import Microphone, PacedSpeaker

if TYPE_CHECKING:
    from ..client import SaynaClient
    from ..realtime.conversation import Turn
    from .handle import SpeechHandle

__all__ = ["DEFAULT_END_WORDS", "DEFAULT_RULES", "Line", "Reply", "RuleTable", "echo", "talk"]

logger = logging.getLogger("sayna_client")

#: What a reply function may return: pieces of text (async or not), one text, or an
#: awaitable of either.
Reply = Callable[[str], Any]

#: Words of the user that end the conversation once the agent has answered.
DEFAULT_END_WORDS = ("bye", "goodbye")

#: The built-in rule table of ``sayna talk --agent rules``: a regular expression searched
#: (case-insensitively) in what the user said -> the answer.
DEFAULT_RULES: Mapping[str, str] = {
    r"\b(hello|hi|hey)\b": "Hello! How can I help you today?",
    r"\bhow are you\b": "I am fine, thank you. How are you?",
    r"\b(your name|who are you)\b": "I am the Sayna talk demo, a very small voice agent.",
    r"\b(help|what can you do)\b": "Say hello, ask my name, or say goodbye to end the call.",
    r"\b(good)?bye\b": "Goodbye! Thanks for calling.",
}


async def echo(text: str) -> AsyncIterator[str]:
    """The echo agent: says back what it heard ("You said: ...")."""
    yield f"You said: {text}."


class RuleTable:
    """A rule-table agent: the answer of the first pattern found in the user's words.

    Args:
        rules: regular expression -> answer, tried in order, case-insensitively
            (:data:`DEFAULT_RULES` when None).
        fallback: the answer when nothing matches; ``None`` echoes the user.

    Raises:
        SaynaValidationError: a pattern that is not a valid regular expression, or an
            answer that is not a non-empty string.
    """

    def __init__(
        self, rules: Optional[Mapping[str, str]] = None, *, fallback: Optional[str] = None
    ) -> None:
        table = DEFAULT_RULES if rules is None else rules
        self.rules: list[tuple[re.Pattern[str], str]] = []
        for pattern, answer in table.items():
            if not isinstance(answer, str) or not answer.strip():
                raise SaynaValidationError(
                    f"the answer of rule {pattern!r} must be a non-empty string"
                )
            try:
                self.rules.append((re.compile(pattern, re.IGNORECASE), answer))
            except re.error as exc:
                raise SaynaValidationError(
                    f"rule {pattern!r} is not a valid regular expression: {exc}"
                ) from exc
        self.fallback = fallback

    def answer(self, text: str) -> str:
        """The answer to ``text`` (the fallback, or an echo, when no rule matches)."""
        for pattern, answer in self.rules:
            if pattern.search(text):
                return answer
        return self.fallback if self.fallback is not None else f"You said: {text}."

    async def __call__(self, text: str) -> AsyncIterator[str]:
        """The reply function: yields :meth:`answer`."""
        yield self.answer(text)


@dataclass
class Line:
    """One line of the conversation: who spoke and what (for the agent: what the user
    heard; ``interrupted`` when the user talked over it; ``error``, the server's message,
    when its TTS provider failed the answer)."""

    speaker: str
    text: str
    interrupted: bool = False
    error: Optional[str] = None

    def __str__(self) -> str:
        tail = " [interrupted]" if self.interrupted else ""
        if self.error is not None:
            tail += f" [not spoken: {self.error}]"
        return f"{self.speaker}: {self.text}{tail}"


async def _pieces(reply: Reply, text: str) -> AsyncIterator[str]:
    """Whatever ``reply(text)`` gives, as an async stream of str pieces."""
    result = reply(text)
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, str):
        yield result
    elif isinstance(result, AsyncIterable):
        async for piece in result:
            yield piece
    elif isinstance(result, Iterable):
        for piece in result:
            yield piece
    elif result is not None:
        raise SaynaValidationError(
            "reply(text) must return text, or an (async) iterable of text pieces; got "
            f"{type(result).__name__}"
        )


async def talk(
    client: SaynaClient,
    microphone: Microphone,
    reply: Reply = echo,
    *,
    speaker: Optional[PacedSpeaker] = None,
    barge_in: bool = True,
    end_words: Iterable[str] = DEFAULT_END_WORDS,
    max_seconds: Optional[float] = None,
    on_line: Optional[Callable[[Line], Any]] = None,
) -> list[Line]:
    """Hold a conversation on a connected client until it ends; return its lines.

    Each user turn's text is passed to ``reply`` and the answer spoken with
    ``client.speak_stream`` (one reply at a time, in turn order). It ends when the
    microphone's frames end (a file) and every turn has been answered and played, when
    the user said one of ``end_words`` and was answered, after ``max_seconds``, or when
    the session closes.

    Args:
        client: a connected :class:`~sayna_client.SaynaClient`.
        microphone: frames in the session's STT format (``WavMicrophone``,
            ``SoundDeviceMicrophone``, your own ``Microphone``).
        reply: ``reply(text)`` -> an async iterable (or iterable) of text pieces, or a
            text, or an awaitable of these (default :func:`echo`).
        speaker: set as ``client.audio_output`` while talking (played out before
            returning); None: the audio is not played.
        barge_in: stop the agent when the user talks over it (``client.barge_in()``).
        end_words: words of the user that end the conversation after the answer.
        max_seconds: end after this long (None: no limit).
        on_line: called with each :class:`Line` as it happens (e.g. ``print``).

    Returns:
        the conversation's lines, in order.

    An answer the server's TTS provider failed (:class:`~sayna_client.errors.SaynaTTSError`)
    does not stop the conversation: its line holds what was heard of it and ``error``.

    Raises:
        Exception: whatever ``reply`` raised (the conversation stops).
        SaynaConnectionError: the session failed while talking.

    Cancelling stops the conversation (the microphone is closed); so does ``max_seconds``.
    Either way an answer under way is interrupted: its reply is no longer read, and
    ``clear`` stops what the server still had to say; its line (what the user heard of
    it, ``interrupted``) is still reported to ``on_line`` and, after ``max_seconds``,
    returned.

    Once the microphone's frames have ended (a file), a reply that gives no text for
    ``client.timeouts.request`` seconds (60 by default; None: no limit) ends the
    conversation as ``max_seconds`` does, with a warning giving the length of the turn it
    answered (in words: user speech is personal data, its text reaches no log line): with
    nobody left to talk, a stalled reply would otherwise never end it.
    """
    lines: list[Line] = []
    loop = asyncio.get_running_loop()
    #: Since when the answer under way has waited for its reply's next piece (None: it
    #: is not waiting for the reply).
    waiting_since: Optional[float] = None
    # Words in the user's turn the reply under way (or the last one) answers: a count,
    # for the log (user speech is personal data: its text reaches no log line).
    answering = 0
    ends = {w.lower() for w in end_words}
    pending: asyncio.Queue[Turn] = asyncio.Queue()
    policy = client.barge_in() if barge_in else None
    unsubscribe = client.on("turn", pending.put_nowait)
    previous_output = client.audio_output
    if speaker is not None:
        client.audio_output = speaker

    def say(line: Line) -> None:
        lines.append(line)
        if on_line is not None:
            on_line(line)

    async def feed() -> None:
        async for frame in microphone.frames():
            await client.on_audio_input(frame)
            # Neither a microphone with frames waiting nor a send the socket takes at
            # once suspends: let the loop run (max_seconds, the answers) after each frame.
            await asyncio.sleep(0)
        await client.finish_audio()

    async def timed(text: str) -> AsyncIterator[str]:
        """The reply's pieces, noting when the answer waits on the reply."""
        nonlocal waiting_since
        waiting_since = loop.time()
        try:
            async for piece in _pieces(reply, text):
                waiting_since = None
                yield piece
                waiting_since = loop.time()
        finally:
            waiting_since = None

    async def converse() -> None:
        nonlocal answering
        while True:
            turn = await pending.get()
            try:
                text = turn.text.strip()
                if not text:
                    continue
                say(Line("you", text))
                answering = len(text.split())
                handle = await client.speak_stream(timed(text))
                failure = None
                try:
                    await handle
                except SaynaTTSError as exc:  # this answer is lost, not the conversation
                    failure = exc.server_message
                except asyncio.CancelledError:  # talk() ends: so does the answer
                    _stop(handle)
                    # What the user heard of it is a line of the conversation too.
                    cut = handle.interrupted or not handle.done
                    say(Line("agent", handle.text_heard, cut))
                    raise
                say(Line("agent", handle.text_heard, handle.interrupted, failure))
                if ends & set(re.findall(r"[a-z']+", text.lower())):
                    return
            finally:
                pending.task_done()

    async def answers() -> None:
        await client.drain()  # the last turn is in `pending` (the callbacks caught up)
        await pending.join()

    async def until_answered() -> None:
        await feed()
        # The microphone ended (a file): nobody is left to end a reply that stalls, so
        # one that gives no text for Timeouts.request seconds ends the conversation.
        bound = client.timeouts.request
        if bound is None:
            await answers()
            return
        answered = asyncio.ensure_future(answers())
        try:
            while not answered.done():
                since = waiting_since
                if since is not None and loop.time() - since >= bound:
                    logger.warning(
                        "talk(): the reply to the user's turn of %d words gave no text "
                        "for %.1f s after the microphone ended (Timeouts.request); ending "
                        "the conversation without the rest of it",
                        answering,
                        bound,
                    )
                    return
                step = _STALL_POLL
                if since is not None:
                    step = min(step, since + bound - loop.time())
                await asyncio.wait({answered}, timeout=step)
            answered.result()  # raises what the session raised
        finally:
            answered.cancel()

    conversation = asyncio.ensure_future(converse())
    listening = asyncio.ensure_future(until_answered())
    try:
        await asyncio.wait(
            {conversation, listening},
            timeout=max_seconds,
            return_when=asyncio.FIRST_COMPLETED,
        )
        for task in (conversation, listening):
            if task.done() and not task.cancelled():
                task.result()  # raises what reply() or the session raised
        if speaker is not None:
            await _played_out(speaker)
    finally:
        for task in (conversation, listening):
            task.cancel()
        await asyncio.gather(conversation, listening, return_exceptions=True)
        unsubscribe()
        if policy is not None:
            policy.detach()
        if speaker is not None:
            client.audio_output = previous_output
    return lines


def _stop(handle: SpeechHandle) -> None:
    """Interrupt the answer under way as the conversation ends (after ``max_seconds``,
    or cancelled): its reply stops being read and spoken, and the server stops it."""
    try:
        handle.interrupt()
    except SaynaValidationError:  # sent with allow_interruption=False: it plays out
        logger.debug("the answer under way cannot be interrupted; it plays out")


#: Seconds between two looks of :func:`talk`, once the microphone ended, at whether the
#: reply under way stalled.
_STALL_POLL = 0.25

#: Seconds the end of :func:`talk` waits for the speaker, beyond twice the audio it holds.
_PLAY_OUT_SLACK = 2.0


async def _played_out(speaker: PacedSpeaker) -> None:
    """Play what the speaker holds, without waiting for its jitter buffer to fill (the
    last words of an answer may be shorter than its prebuffer), and wait until it has
    been played: at most twice the audio's length plus :data:`_PLAY_OUT_SLACK` seconds
    (a speaker that was not started, or a stalled sound card, never plays it)."""
    held = speaker.buffered_bytes
    if held is None:  # closed: it plays nothing more
        return
    timeout = 2 * held / (2 * speaker.sample_rate) + _PLAY_OUT_SLACK
    if not await speaker.play_out(timeout):
        logger.warning(
            "talk(): the speaker did not play its last %.2f s of audio within %.1f s (is it "
            "started? `async with speaker:`); ending without it",
            (speaker.buffered_bytes or 0) / (2 * speaker.sample_rate),
            timeout,
        )


#: The fix shown when ``--reply`` names no loadable function.
_REPLY_FORM = "expected --reply path/to/file.py:function_name or --reply module.name:function_name"


def load_reply(spec: str) -> Reply:
    """The reply function named by ``spec``: ``module:function`` (importable) or
    ``path/to/file.py:function``.

    Raises:
        SaynaValidationError: no such module, file or function, or not callable.
    """
    import importlib
    import importlib.util
    from pathlib import Path

    module_name, sep, attr = spec.rpartition(":")
    if not sep or not module_name or not attr:
        raise SaynaValidationError(
            f"--reply takes FILE.py:FUNCTION or MODULE:FUNCTION, got {spec!r}; e.g. "
            "--reply path/to/file.py:function_name"
        )
    module: Any
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            where = "is a directory" if path.is_dir() else f"not found in {Path.cwd()}"
            raise SaynaValidationError(f"--reply: no file {module_name} ({where}); {_REPLY_FORM}")
        loaded = importlib.util.spec_from_file_location(path.stem, path)
        if loaded is None or loaded.loader is None:
            raise SaynaValidationError(f"--reply: cannot load {module_name}; {_REPLY_FORM}")
        module = importlib.util.module_from_spec(loaded)
        try:
            loaded.loader.exec_module(module)
        except Exception as exc:  # the user's file failed: say so in one line
            raise SaynaValidationError(f"--reply: loading {module_name} failed: {exc!r}") from exc
    elif "/" in module_name or "\\" in module_name:  # a path, but not to a .py file
        raise SaynaValidationError(f"--reply: {module_name} is not a .py file; {_REPLY_FORM}")
    else:
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise SaynaValidationError(
                f"--reply: cannot import {module_name}: {exc}; {_REPLY_FORM}"
            ) from exc
    function = getattr(module, attr, None)
    if not callable(function):
        defined = sorted(
            name
            for name, value in vars(module).items()
            if inspect.isfunction(value)
            and value.__module__ == module.__name__
            and not name.startswith("_")
        )
        found = f"it defines: {', '.join(defined)}" if defined else "it defines no function"
        raise SaynaValidationError(
            f"--reply: {module_name} has no function {attr!r} ({found}); {_REPLY_FORM}"
        )
    reply: Reply = function
    return reply


def rules_from_json(text: Union[str, bytes]) -> RuleTable:
    """A :class:`RuleTable` from a JSON object ``{"pattern": "answer", ...}``.

    Raises:
        SaynaValidationError: not a JSON object of strings, or a bad pattern.
    """
    import json

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SaynaValidationError(f"the rules are not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or not all(isinstance(k, str) for k in data):
        raise SaynaValidationError('the rules must be a JSON object: {"pattern": "answer", ...}')
    return RuleTable(data)
