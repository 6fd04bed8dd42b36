"""The ``.netrc`` entries the REST transport's route lookup reads, without a thread hop when
there is nothing to read, and read once while the file is unchanged.

A client's first request or WebSocket upgrade needs them (``HttpTransport.route()``):
aiohttp's ``trust_env`` reads the file in a worker thread on every request. Here a
missing file is found by one ``stat`` on the loop (no file to block on; aiohttp's own
lookup, with its "Could not read .netrc file" warning, then fails at once), an existing
one is read in a worker thread, and the clients of a loop share what was read while the
file's path, size, times, inode and mode stay the same: sequential clients and 50
concurrent first calls alike wait for one read, and later clients (of any loop) take
what it found.
"""

from __future__ import annotations

import asyncio
import netrc
import os
import threading
from concurrent.futures import Future
from typing import Optional, Tuple

from aiohttp.helpers import netrc_from_env

__all__ = ["netrc_entries"]

#: What identifies a version of the file: path, size, modification and change times (ns),
#: inode, device and mode (a ``chmod`` changes only the last two).
_Version = Tuple[str, int, int, int, int, int, int]
#: What a finished read found, by path: kept for the process (no loop in it: the loops of
#: ``asyncio.run`` calls and sync clients come and go).
_DONE: dict[str, tuple[_Version, netrc.netrc]] = {}
#: The reads still running, by path: thread futures (no loop in them either), which the
#: callers of every loop await, forgotten by the worker thread when the read ends (a loop
#: closed meanwhile keeps nothing).
_RUNNING: dict[str, tuple[_Version, Future[Optional[netrc.netrc]]]] = {}
#: Loops of several threads (sync clients) share the two.
_LOCK = threading.Lock()


def netrc_path() -> Optional[str]:
    """The file aiohttp's ``netrc_from_env`` reads: ``NETRC``, else ``.netrc`` (``_netrc`` on
    Windows) in the home directory; None when finding the home directory needs the
    password database (no ``HOME``), which may be a network service."""
    path = os.environ.get("NETRC")
    if path is not None:
        return path
    if os.name != "nt" and "HOME" not in os.environ:
        return None
    return os.path.join(os.path.expanduser("~"), "_netrc" if os.name == "nt" else ".netrc")


async def netrc_entries() -> Optional[netrc.netrc]:
    """The ``.netrc`` entries as aiohttp's ``netrc_from_env`` reads them (None: no file,
    or one it cannot read or parse, with aiohttp's warning).

    Cancellation: cancelling the caller leaves a read in progress running for the loop's
    other clients (and the next caller).
    """
    loop = asyncio.get_running_loop()
    path = netrc_path()
    if path is None:
        return await loop.run_in_executor(None, netrc_from_env)
    try:
        found = os.stat(path)
    except OSError:
        # Nothing to read. aiohttp's lookup warns only for a NETRC it could not read
        # (then it fails at once, with its warning); else it says nothing.
        return None if "NETRC" not in os.environ else netrc_from_env()
    version = (
        path,
        found.st_size,
        found.st_mtime_ns,
        found.st_ctime_ns,
        found.st_ino,
        found.st_dev,
        found.st_mode,
    )
    with _LOCK:
        done = _DONE.get(path)
        if done is not None and done[0] == version:
            return done[1]
        known = _RUNNING.get(path)
        start = known is None or known[0] != version
        if start:
            shared: Future[Optional[netrc.netrc]] = Future()
            _RUNNING[path] = (version, shared)
        else:
            shared = known[1]  # type: ignore[index]
    if start:
        try:
            loop.run_in_executor(None, _read_netrc, path, version, shared)
        except RuntimeError as exc:  # the loop's executor is shut down (a loop ending)
            _settle(path, version, shared, None)
            shared.set_exception(exc)
    # shield: one caller cancelled does not cancel the read the others (of any loop)
    # wait for.
    return await asyncio.shield(asyncio.wrap_future(shared))


def _read_netrc(path: str, version: _Version, shared: Future[Optional[netrc.netrc]]) -> None:
    """Read the file (in a worker thread), keep what it found for the process and hand it
    to the waiters of every loop through ``shared``. Never raises: its own future, which
    nobody awaits, must not hold an error."""
    try:
        entries = netrc_from_env()
    except BaseException as exc:  # (aiohttp's reader warns and returns None for its own)
        _settle(path, version, shared, None)
        shared.set_exception(exc)
        return
    _settle(path, version, shared, entries)
    shared.set_result(entries)


def _settle(
    path: str,
    version: _Version,
    shared: Future[Optional[netrc.netrc]],
    entries: Optional[netrc.netrc],
) -> None:
    """A read ended: forget it as running, keep what it found. A read that found nothing
    usable is not kept: the next client reads (and warns) again, as each client did
    before the reads were shared."""
    with _LOCK:
        known = _RUNNING.get(path)
        if known is not None and known[1] is shared:
            del _RUNNING[path]
        if entries is not None:
            _DONE[path] = (version, entries)
