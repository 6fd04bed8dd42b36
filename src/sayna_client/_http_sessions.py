"""The aiohttp session the clients of one event loop share, and the redirect guard.

A client given no ``http_session`` leases the running loop's shared session
(:func:`lease`), lets go of it on close (:func:`unlease`, the last one closes it) or
when collected without a close (:func:`drop`). A WebSocket holds a lease of its own for
its life (:func:`let_go` at its end), apart from its client's REST calls, whose lease
may move to another loop or be given back under a live socket. Every shared session
refuses a redirect to another origin (:class:`RedirectRefused`), and
:func:`redirected_elsewhere` catches one a user's own session followed.

A session whose last client was collected is released on its loop (:func:`abandon`) with
aiohttp's synchronous connector close, behind a check that falls back to the public
``close()`` (see :func:`_sync_close_of`). The only other private API used here is the
switch of aiohttp's silent re-send of a request whose connection dropped, turned off when
this aiohttp has it (:func:`no_silent_resend`).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
import threading
import types
import weakref
from typing import Any, Callable, Optional, cast

import aiohttp
from yarl import URL

from ._loop_end import at_loop_end, forget
from ._redact import safe_url

__all__ = [
    "SYNC_CLOSE",
    "RedirectRefused",
    "SharedSession",
    "abandon",
    "client_timeout",
    "drop",
    "lease",
    "left_origin",
    "let_go",
    "no_silent_resend",
    "redirected_elsewhere",
    "unlease",
]

logger = logging.getLogger("sayna_client")


@functools.lru_cache(maxsize=32)
def client_timeout(seconds: Optional[float]) -> aiohttp.ClientTimeout:
    """The aiohttp timeout for ``seconds`` in total (frozen, so one object per value)."""
    return aiohttp.ClientTimeout(total=seconds)


class RedirectRefused(Exception):
    """A WebSocket upgrade was redirected to another origin (raised to stop aiohttp
    following it; the connection turns it into a typed error)."""

    def __init__(self, status: int, source: str, target: str) -> None:
        super().__init__(f"HTTP {status} redirect from {source} to {target}")
        self.status = status
        self.source = source
        self.target = target


_DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
_SECURE = {"http": "http", "ws": "http", "https": "https", "wss": "https"}


def _origin(url: URL) -> tuple[str, str, Optional[int]]:
    scheme = (url.scheme or "").lower()
    return _SECURE.get(scheme, scheme), (url.host or "").lower(), url.port


def redirected_elsewhere(response: aiohttp.ClientResponse, url: str) -> Optional[tuple[int, str]]:
    """``(status, target)`` when ``response``, the upgrade of a WebSocket opened for
    ``url``, was redirected to another origin, else None. A session the client did not
    make (``http_session=``) follows redirects before :func:`_refuse_redirect` could
    stop it; this catches it before anything is sent on the socket."""
    return left_origin(response.history, response.url, url)


def left_origin(
    history: tuple[aiohttp.ClientResponse, ...], final: URL, url: str
) -> Optional[tuple[int, str]]:
    """``(status of the first redirect, final URL without credentials)`` when the
    redirects in ``history`` took a request for ``url`` to ``final`` on another origin,
    else None. Also for an upgrade the target refused: aiohttp's
    ``WSServerHandshakeError`` carries the history and the final request's URL."""
    if not history:
        return None
    if _origin(final) == _origin(URL(url)):
        return None
    return int(history[0].status), safe_url(final)


async def _refuse_redirect(
    session: aiohttp.ClientSession, context: Any, params: aiohttp.TraceRequestRedirectParams
) -> None:
    """Stop aiohttp from following a redirect to another origin.

    REST requests never follow redirects (``allow_redirects=False``); the WebSocket
    upgrade cannot say so, and a redirect there would take the session's config and
    provider keys to another host, or from wss to ws. A redirect within the same
    origin (scheme, host and port) is followed: it changes nothing of that.
    """
    response = params.response
    location = response.headers.get("Location", "")
    try:
        target = params.url.join(URL(location))
    except ValueError:
        target = None
    if target is not None and _origin(target) == _origin(params.url):
        return
    response.release()
    raise RedirectRefused(
        response.status, safe_url(params.url), safe_url(target) if target else "<invalid Location>"
    )


#: The context aiohttp hands :func:`_refuse_redirect` (which uses none): one object for
#: every request. aiohttp's default makes a ``SimpleNamespace`` per request, which the
#: response of a WebSocket keeps for the socket's life (224 bytes per session: issue #19).
_NO_CONTEXT = types.SimpleNamespace()


def _no_context(trace_request_ctx: Any = None) -> types.SimpleNamespace:
    """aiohttp's ``trace_config_ctx_factory`` for the redirect guard: the shared context."""
    return _NO_CONTEXT


@functools.cache
def _redirect_guard() -> aiohttp.TraceConfig:
    """The trace config that runs :func:`_refuse_redirect`: one for every shared session
    (it holds no state; aiohttp's signals and their owner form a cycle, which one object
    made once leaves nothing for the cycle collector when a session closes)."""
    # aiohttp types the factory as a class; it only calls it.
    factory = cast("type[types.SimpleNamespace]", _no_context)
    guard = aiohttp.TraceConfig(trace_config_ctx_factory=factory)
    guard.on_request_redirect.append(_refuse_redirect)
    return guard


#: How a dropped client's connections are closed: aiohttp's synchronous close (True), or
#: its public ``close()`` awaited on the session's loop (False; also what happens when
#: aiohttp no longer has the former). The documented internal switch the tests flip to
#: run both paths, on the oldest aiohttp the package allows and on the newest.
SYNC_CLOSE = True


def _sync_close_of(connector: Optional[aiohttp.BaseConnector]) -> Optional[Callable[[], Any]]:
    """``connector``'s synchronous close, or None (then close it with ``await``).

    One of the two uses of aiohttp's private API here (:func:`no_silent_resend` is the
    other): a finalizer cannot wait, and aiohttp's public ``close()`` returns an awaitable
    that warns when it is not awaited (and a task made to await it may never run, at the
    end of ``asyncio.run()``); its synchronous half is ``BaseConnector._close()``, which
    aiohttp's own finalizer calls. Checked (a ``BaseConnector`` whose ``_close`` takes no
    argument); when this aiohttp has none, one warning, and the public close is used.
    """
    if connector is None or not SYNC_CLOSE:
        return None
    close_now = getattr(connector, "_close", None)
    if isinstance(connector, aiohttp.BaseConnector) and _takes_no_argument(close_now):
        return cast("Callable[[], Any]", close_now)
    global _WARNED
    if not _WARNED:
        _WARNED = True
        logger.warning(
            "aiohttp %s has no BaseConnector._close(): the connections of clients dropped "
            "without disconnect() are closed in the background (report it to sayna-client)",
            aiohttp.__version__,
        )
    return None


_WARNED = False
#: Public closes of dropped clients' connections still running (kept until done).
_CLOSING: set[asyncio.Task[None]] = set()


def _takes_no_argument(method: Any) -> bool:
    """Whether ``method`` can be called with no argument; for a bound method, decided once
    per function (``inspect.signature`` took about 40 µs, on every last client's close)."""
    function = getattr(method, "__func__", None)
    if function is None:
        return _signature_takes_none(method)
    known = _NO_ARGUMENT.get(function)
    if known is None:
        known = _NO_ARGUMENT[function] = _signature_takes_none(method)
    return known


#: :func:`_takes_no_argument` of the bound methods seen, by function (a connector class or
#: two: aiohttp's, a user's subclass).
_NO_ARGUMENT: weakref.WeakKeyDictionary[Any, bool] = weakref.WeakKeyDictionary()


def _signature_takes_none(method: Any) -> bool:
    if not callable(method):
        return False
    try:
        params = inspect.signature(method).parameters.values()
    except (TypeError, ValueError):
        return False
    return all(
        p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
    )


def abandon(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    """Release a session nobody will close: its last client was dropped without
    ``disconnect()`` (a REST-only script may end without it), and aiohttp would warn
    "Unclosed client session" and "Unclosed connector". Quietly, since nothing is lost.
    On ``loop``, the session's (from another thread, the release is handed to it)."""
    if session.closed:
        return
    if loop.is_running() and not _runs_here(loop):
        try:
            loop.call_soon_threadsafe(_release, session, loop)
            return
        except RuntimeError:  # closed meanwhile
            pass
    _release(session, loop)


def _runs_here(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def _release(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    """:func:`abandon` on the session's loop (or with the loop closed)."""
    connector = session.connector
    if session.closed or connector is None:
        return
    session.detach()  # public: the session counts as closed from now on
    close_now = _sync_close_of(connector)
    if close_now is not None:
        # aiohttp hands back a future per connection it closed, set when the connection
        # is gone: with the error of one lost meanwhile, which nobody else would read.
        for waiter in close_now() or ():
            if isinstance(waiter, asyncio.Future):
                waiter.add_done_callback(_read_outcome)
    elif not loop.is_closed():  # (a closed loop's connections died with it)
        closing = loop.create_task(_close(connector))
        _CLOSING.add(closing)
        closing.add_done_callback(_CLOSING.discard)


def _read_outcome(future: asyncio.Future[Any]) -> None:
    """Mark ``future``'s outcome as read (asyncio would log an error nobody read)."""
    if not future.cancelled():
        future.exception()


async def _close(connector: aiohttp.BaseConnector) -> None:
    await connector.close()


class SharedSession:
    """The aiohttp session that the clients of one event loop share when they were
    given no ``http_session``, with the count of clients holding it. A client's
    connections stay its own (a WebSocket is one socket, never pooled); what is shared
    is immutable or a pool of idle REST connections: the connector, its DNS cache, the
    redirect guard. No cookie jar (``DummyCookieJar``): nothing one client is sent
    reaches another. It is closed when its last client lets go.

    It has no timeout of its own: each REST call passes its client's, and the WebSocket
    handshake is bounded by its client's ``Timeouts.connect`` (see ``handshake.py``).
    A session-wide total would arm a timer for every request, which aiohttp keeps, with
    its callbacks and context, until it fires: for a WebSocket, about 0.6 KiB per
    session for the first ``Timeouts.connect`` seconds (issue #19).

    ``session`` opens the WebSocket upgrades (with the redirect guard); REST calls go
    through :meth:`rest`, on the same connector and cookie jar.
    """

    __slots__ = ("__weakref__", "_rest", "loop", "session", "users")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.session = aiohttp.ClientSession(
            # limit=0: a WebSocket holds its connection for the session's life, and
            # aiohttp's default of 100 per session would stall the 101st client.
            connector=aiohttp.TCPConnector(limit=0, limit_per_host=0),
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=client_timeout(None),
            # trust_env off: HttpTransport.route() looks the environment up once per
            # client (aiohttp would, in two worker threads, on every request).
            trust_env=False,
            trace_configs=[_redirect_guard()],
        )
        no_silent_resend(self.session)
        self.users = 0
        self._rest: Optional[aiohttp.ClientSession] = None

    def rest(self) -> aiohttp.ClientSession:
        """The session of the REST calls (made on first use, in the running loop):
        ``session``'s connector and cookie jar, without the redirect guard. REST calls
        never follow redirects (``allow_redirects=False``), and aiohttp runs every
        signal of a session's trace configs on each request: about 12 µs, 15 % of a
        ``health()`` call on loopback. It closes with ``session`` (it does not own the
        connector; :func:`unlease` detaches it)."""
        rest = self._rest
        if rest is None:
            rest = self._rest = aiohttp.ClientSession(
                connector=self.session.connector,
                connector_owner=False,
                cookie_jar=self.session.cookie_jar,
                timeout=client_timeout(None),
                trust_env=False,
            )
            no_silent_resend(rest)
        return rest

    def detach_rest(self) -> None:
        """Mark the REST calls' session closed now (its connector, ``session``'s, is
        closed by ``session``'s owner), as aiohttp's ``detach()`` does: closed at once
        whichever way the connector goes, and no "Unclosed client session" warning."""
        rest = self._rest
        if rest is not None and not rest.closed:
            rest.detach()


def no_silent_resend(session: aiohttp.ClientSession) -> None:
    """Turn off aiohttp's own re-send of a ``GET``/``PUT``/``DELETE`` whose connection
    dropped before the answer (aiohttp 3.10+ sends it once more, unasked), so that the
    client's ``RetryPolicy`` is the only source of retries: ``max_retries=0`` sends once,
    and ``remove_livekit_participant`` (a ``DELETE``) is sent exactly once.

    The switch is aiohttp's private ``ClientSession._retry_connection`` (what its own
    test client turns off); an aiohttp without it (3.9) does not re-send, and nothing is
    set there (setting an unknown attribute would warn in debug mode)."""
    if isinstance(getattr(session, "_retry_connection", None), bool):
        session._retry_connection = False


#: The shared session of each running event loop.
_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, SharedSession]
_SHARED = weakref.WeakKeyDictionary()
#: Loops of several threads (sync clients) join and leave; a finalizer may leave while its
#: thread is inside lease, hence reentrant.
_SHARED_LOCK = threading.RLock()


def lease() -> SharedSession:
    """Join the running loop's shared session (made if none is open).

    A session still open when its loop ends (clients that outlive ``asyncio.run()``
    without ``disconnect()``) is closed then, quietly, as :func:`abandon` does: aiohttp
    would otherwise report it unclosed at exit, after the loop, with tracebacks."""
    loop = asyncio.get_running_loop()
    with _SHARED_LOCK:
        shared = _SHARED.get(loop)
        made = shared is None or shared.session.closed
        if made:
            shared = _SHARED[loop] = SharedSession(loop)
        assert shared is not None
        shared.users += 1
    if made:
        at_loop_end(id(shared), shared, _loop_ended)
    return shared


def _loop_ended(shared: SharedSession) -> None:
    shared.detach_rest()
    abandon(shared.session, shared.loop)


def let_go(shared: SharedSession) -> None:
    """Leave ``shared`` from synchronous code (a WebSocket's lease, at the socket's end):
    when this was its last holder, its session is released as :func:`abandon` does."""
    session = unlease(shared)
    if session is not None:
        abandon(session, shared.loop)


def unlease(shared: SharedSession) -> Optional[aiohttp.ClientSession]:
    """Leave ``shared``; returns its session when this was the last client (for the
    caller to close), else None."""
    with _SHARED_LOCK:
        shared.users -= 1
        if shared.users > 0:
            return None
        if _SHARED.get(shared.loop) is shared:
            del _SHARED[shared.loop]
    forget(id(shared), shared.loop)
    shared.detach_rest()
    return shared.session


def drop(shared: SharedSession) -> None:
    """A client holding ``shared`` was collected without ``disconnect()`` (any thread)."""
    session = unlease(shared)
    if session is not None:
        abandon(session, shared.loop)
