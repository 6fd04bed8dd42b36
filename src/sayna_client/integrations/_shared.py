"""What the framework adapters share: format checks and one session used by several owners."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from typing import Optional

from ..client import SaynaClient
from ..errors import SaynaValidationError
from ..protocol.encodings import canonical
from ..types import STTConfig, TTSConfig

__all__ = ["SharedSession", "SpeakQueue", "check_client", "missing_extra", "pcm_stt", "pcm_tts"]

#: The framework each adapter needs: (its name, the extra that installs it, its Python).
_FRAMEWORKS = {
    "livekit": ("LiveKit Agents", "Python 3.10 or newer"),
    "pipecat": ("Pipecat", "Python 3.11 or newer"),
}


def missing_extra(adapter: str) -> ImportError:
    """The error for an adapter module imported without its framework: names the extra
    to install (``adapter`` is the module's name under ``integrations/``, also the
    extra's)."""
    framework, python = _FRAMEWORKS[adapter]
    return ImportError(
        f"sayna_client.integrations.{adapter} needs {framework}: "
        f"pip install 'sayna-client[{adapter}]' ({python})"
    )


def check_client(client: object, owner: str) -> SaynaClient:
    """``client`` if it is a ``SaynaClient`` with audio; else ``SaynaValidationError``."""
    if not isinstance(client, SaynaClient):
        raise SaynaValidationError(
            f"{owner} needs client=SaynaClient(url, stt_config, tts_config), got {client!r}"
        )
    if client.without_audio:
        raise SaynaValidationError(
            f"{owner} needs an audio session: build the SaynaClient without without_audio=True"
        )
    return client


def pcm_stt(config: Optional[STTConfig], sample_rate: Optional[int], owner: str) -> STTConfig:
    """``config`` checked for 16-bit mono PCM (the frameworks' audio), at ``sample_rate``
    unless None. Raises ``SaynaValidationError`` naming the field to fix."""
    if config is None:
        raise SaynaValidationError(f"{owner} needs the SaynaClient's stt_config")
    if canonical(config.encoding) != "linear16" or config.channels != 1:
        raise SaynaValidationError(
            f"{owner} sends the framework's 16-bit mono PCM: use STTConfig(encoding='linear16', "
            f"channels=1), got encoding={config.encoding!r}, channels={config.channels}"
        )
    if sample_rate is None or config.sample_rate == sample_rate:
        return config
    return config.model_copy(update={"sample_rate": sample_rate})


def pcm_tts(config: Optional[TTSConfig], sample_rate: Optional[int], owner: str) -> TTSConfig:
    """``config`` checked for raw 16-bit PCM output, at ``sample_rate`` unless None.
    Raises ``SaynaValidationError`` naming the field to fix."""
    if config is None:
        raise SaynaValidationError(f"{owner} needs the SaynaClient's tts_config")
    if canonical(config.audio_format) != "linear16":
        raise SaynaValidationError(
            f"{owner} plays raw PCM: use TTSConfig(audio_format='linear16'), "
            f"got audio_format={config.audio_format!r}"
        )
    if sample_rate is None or config.sample_rate == sample_rate:
        return config
    return config.model_copy(update={"sample_rate": sample_rate})


class SharedSession:
    """One ``SaynaClient`` session used by several adapters (e.g. an STT and a TTS service).

    The first :meth:`acquire` connects, the last :meth:`release` disconnects; the one
    :class:`SharedSession` per client is found with :meth:`of`. Everything runs on one
    event loop.
    """

    _sessions: weakref.WeakKeyDictionary[SaynaClient, SharedSession] = weakref.WeakKeyDictionary()

    def __init__(self, client: SaynaClient) -> None:
        self.client = client
        self._owners: list[object] = []
        self._lock: Optional[asyncio.Lock] = None
        # The configs the session was opened (or last reconfigured) with.
        self._sent: Optional[tuple[Optional[STTConfig], Optional[TTSConfig]]] = None

    @classmethod
    def of(cls, client: SaynaClient) -> SharedSession:
        """The shared session of ``client`` (created on first use)."""
        session = cls._sessions.get(client)
        if session is None:
            session = cls._sessions[client] = cls(client)
        return session

    def is_reporter(self, owner: object) -> bool:
        """True for the owner that reports session-wide problems (the first one), so a
        server error is reported once, not once per adapter."""
        return bool(self._owners) and self._owners[0] is owner

    async def acquire(self, owner: object) -> None:
        """Register ``owner`` and make sure the session is ready with the client's
        current configs (an adapter may have changed a sample rate: a session that is
        already open with other configs is sent them with ``reconfigure``).

        Raises:
            what ``SaynaClient.connect()`` raises; ``owner`` is then not registered.
        """
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            client = self.client
            wanted = (client.stt_config, client.tts_config)
            if client.ready and self._sent != wanted:
                await client.reconfigure(stt_config=wanted[0], tts_config=wanted[1])
            else:
                await client.connect()
            self._sent = wanted
            if owner not in self._owners:
                self._owners.append(owner)

    async def release(self, owner: object, *, graceful: bool = True) -> None:
        """Unregister ``owner``; the last owner out ends the session.

        ``graceful`` ends it with ``disconnect()``; otherwise with ``abort()`` where the
        client has it (immediate: nothing pending is waited for).
        """
        if owner in self._owners:
            self._owners.remove(owner)
        if self._owners:
            return
        abort = getattr(self.client, "abort", None)
        if not graceful and abort is not None:
            await abort()
        else:
            await self.client.disconnect()


class SpeakQueue:
    """Sends ``speak`` commands to a session one at a time.

    Sayna reports ``tts_playback_complete`` when its queue drains, so completions of
    back-to-back ``speak`` commands coalesce and a client cannot tell which text a
    completion covers. Sending the next text only once the previous one completed makes
    every ``speak`` get exactly one completion, so the end of a reply is known exactly.
    It costs nothing audible: Sayna synthesizes requests one after another anyway, and
    audio arrives faster than it plays.
    """

    def __init__(self, client: SaynaClient, *, allow_interruption: bool = True) -> None:
        self.client = client
        self.allow_interruption = allow_interruption
        self._pending: deque[str] = deque()
        self._in_flight = False

    @property
    def idle(self) -> bool:
        """True when every text sent has completed and none is waiting."""
        return not self._in_flight and not self._pending

    async def add(self, text: str) -> None:
        """Speak ``text`` now, or after the texts before it completed.

        Raises:
            what ``SaynaClient.speak`` raises (the text is then dropped).
        """
        if self._in_flight:
            self._pending.append(text)
            return
        await self._send(text)

    async def completed(self) -> bool:
        """Handle a ``tts_playback_complete``: send the next text, if any. Returns True
        when the queue is idle afterwards (a completion while idle, e.g. of speech
        cleared before, is ignored and returns True).

        Raises:
            what ``SaynaClient.speak`` raises for the next text.
        """
        self._in_flight = False
        if self._pending:
            await self._send(self._pending.popleft())
        return self.idle

    def reset(self) -> None:
        """Forget queued and in-flight texts (after ``clear``: they get no completion)."""
        self._pending.clear()
        self._in_flight = False

    async def _send(self, text: str) -> None:
        self._in_flight = True
        try:
            await self.client.speak(text, allow_interruption=self.allow_interruption)
        except BaseException:
            self._in_flight = False
            raise
