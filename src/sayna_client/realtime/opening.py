"""Opening a voice session: the socket, the ``config``, and what ``ready`` said.

:func:`dial` opens the WebSocket the way the client's REST calls go (the HTTP
transport's route: the ``proxy=`` argument or the environment's proxy, ``.netrc``
credentials), :func:`configure` sends the session's settings as ``config`` and returns
at ``ready``, and :class:`ReadyInfo` is what the session keeps of that ``ready``.
:class:`~.session.VoiceSession` calls them while it holds its gate.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple, Optional, Protocol

from .._checks import has_google_auth
from .._http_sessions import let_go
from .._serving import check_served
from ..protocol.commands import encode_config
from ..protocol.events import ReadyMessage
from ..types import LiveKitConfig, LoadingAudioConfig, STTConfig, TTSConfig
from ..types.credentials import load_local_google_credentials
from .connection import ConnectionOwner, WebSocketConnection
from .hub import EventHub
from .link import SessionLink

__all__ = ["ReadyInfo", "SessionSettings", "configure", "dial"]

_NO_HEADERS: dict[str, str] = {}  # never mutated (aiohttp copies what it is given)


class ReadyInfo(NamedTuple):
    """What the server's ``ready`` said, kept for the session's life: its fields rather
    than the :class:`~sayna_client.ReadyMessage` model (about 0.6 KiB less per session)."""

    stream_id: Optional[str]
    livekit_room_name: Optional[str]
    livekit_url: Optional[str]
    sayna_participant_identity: Optional[str]
    sayna_participant_name: Optional[str]

    @classmethod
    def of(cls, ready: ReadyMessage) -> ReadyInfo:
        """The fields of ``ready``."""
        return cls(
            ready.stream_id,
            ready.livekit_room_name,
            ready.livekit_url,
            ready.sayna_participant_identity,
            ready.sayna_participant_name,
        )


class SessionSettings(Protocol):
    """What a ``config`` is made of: the session's current values."""

    stt_config: Optional[STTConfig]
    tts_config: Optional[TTSConfig]
    livekit_config: Optional[LiveKitConfig]
    loading_audio: Optional[LoadingAudioConfig]
    without_audio: bool
    stream_id: Optional[str]


async def dial(
    link: SessionLink,
    *,
    connect_timeout: Optional[float],
    heartbeat: Optional[float],
    hub: EventHub,
    owner: ConnectionOwner,
) -> WebSocketConnection:
    """Open the session's socket through the client's current HTTP transport.

    Args:
        link: the socket's URL, headers, TLS setting and HTTP transport.
        connect_timeout: bound of the upgrade (``timeouts.connect``).
        heartbeat: the dead-peer detection figure in seconds (None: no pings).
        hub: where the connection publishes what it receives.
        owner: told of ``ready`` and of the close.

    Raises:
        SaynaError: what :meth:`WebSocketConnection.open` raises (an HTTP error status
            of the upgrade, a timeout, a redirect to another origin, a network failure).
        SaynaNotConnectedError: the client was garbage-collected.
        SaynaEventLoopError: the URL is a local server of this process whose event
            loop is not running (see :func:`~sayna_client._serving.check_served`).
    """
    check_served(link.ws_url)
    http = link.http()
    proxy, proxy_auth, authorization = await http.route()
    headers = link.headers or _NO_HEADERS
    if authorization is not None:  # .netrc credentials for the host
        headers = {**headers, "Authorization": authorization}
    # Through a forward proxy the upgrade is `GET http://host/ws`: proxies know the
    # http scheme (ws:// is not one they all accept); wss:// tunnels with CONNECT.
    ws_url = "http" + link.ws_url[2:] if proxy and link.ws_url[:5] == "ws://" else None
    session, lease = http.socket_session()
    try:
        return await WebSocketConnection.open(
            session,
            ws_url or link.ws_url,
            proxy=proxy,
            proxy_auth=proxy_auth,
            headers=headers,
            heartbeat=heartbeat,
            connect_timeout=connect_timeout,
            ssl=link.ssl,
            hub=hub,
            owner=owner,
            redactor=link.redactor,
            netrc=authorization is not None,
            lease=lease,
        )
    except BaseException:
        if lease is not None:
            let_go(lease)  # (no socket holds it)
        raise


async def configure(
    conn: WebSocketConnection, settings: SessionSettings, ready_timeout: Optional[float]
) -> ReadyMessage:
    """Send ``settings`` as the ``config`` on ``conn``; returns at ``ready``.

    Google credentials given as a local file path (sayna-client 0.0.18) are read here,
    in a worker thread, and kept in ``settings`` as the JSON sent.

    Raises:
        what :meth:`WebSocketConnection.configure` raises.
    """
    if has_google_auth(settings.stt_config) or has_google_auth(settings.tts_config):
        load = load_local_google_credentials
        settings.stt_config = await asyncio.to_thread(load, settings.stt_config)
        settings.tts_config = await asyncio.to_thread(load, settings.tts_config)
    audio = not settings.without_audio
    text = encode_config(
        stream_id=settings.stream_id,
        audio=audio,
        stt_config=settings.stt_config if audio else None,
        tts_config=settings.tts_config if audio else None,
        livekit=settings.livekit_config,
        loading_audio=settings.loading_audio,
    )
    return await conn.configure(text, ready_timeout)
