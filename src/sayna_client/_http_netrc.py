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
import weakref
from typing import Optional, Tuple

from aiohttp.helpers import netrc_from_env

__all__ = ["netrc_entries"]

#: What identifies a version of the file: path, size, modification and change times (ns),
#: inode, device and mode (a ``chmod`` changes only the last two).
_Version = Tuple[str, int, int, int, int, int, int]
#: What a finished read found, by path: kept for the process (no loop in it: the loops of
#: ``asyncio.run`` calls and sync clients come and go).
_DONE: dict[str, tuple[_Version, netrc.netrc]] = {}
#: Per loop: the reads still running (their futures belong to it), forgotten when done.
_RUNNING: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[str, tuple[_Version, asyncio.Future[Optional[netrc.netrc]]]]
]
_RUNNING = weakref.WeakKeyDictionary()
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
        running = _RUNNING.get(loop)
        if running is None:
            running = _RUNNING[loop] = {}
    known = running.get(path)
    if known is not None and known[0] == version:
        read = known[1]
    else:
        read = loop.run_in_executor(None, netrc_from_env)
        running[path] = (version, read)
        read.add_done_callback(lambda ended: _finished(running, path, version, ended))
    # shield: one caller cancelled does not cancel the read the others wait for.
    return await asyncio.shield(read)


def _finished(
    running: dict[str, tuple[_Version, asyncio.Future[Optional[netrc.netrc]]]],
    path: str,
    version: _Version,
    ended: asyncio.Future[Optional[netrc.netrc]],
) -> None:
    """A read ended: forget its future (it holds its loop), keep what it found for the
    process. A read that found nothing usable is not kept: the next client reads (and
    warns) again, as each client did before the reads were shared."""
    known = running.get(path)
    if known is not None and known[1] is ended:
        del running[path]
    if ended.cancelled() or ended.exception() is not None:
        return
    entries = ended.result()
    if entries is not None:
        with _LOCK:
            _DONE[path] = (version, entries)
