"""The message codec between the server and its speech worker process.

Frames on the child's stdin/stdout: a 4-byte big-endian length and a pickled tuple. Both
ends are this package (the parent in :mod:`.speech_worker`, the child in
:mod:`.speech_child`), started by the engine itself; nothing else writes to these pipes,
which is why pickle is acceptable here.

* parent -> child: ``("open", sid, STTParams)``, ``("feed", sid, seq, bytes)``,
  ``("finish", sid, seq)``, ``("close", sid)``; ``("speak", tid, text, speaking_rate,
  sample_rate, audio_format)``, ``("stop", tid)``;
* child -> parent: ``("ready", {part: reason})`` (the parts that could not be imported)
  or ``("failed", kind, message)`` once, then ``("done", sid, seq, [Transcript, ...],
  error, in_speech)`` per processed job, in order per stream (``seq`` is the highest
  sequence number the job consumed; ``in_speech`` the recogniser's state after it); per
  synthesis ``("audio", tid, [chunk, ...])`` for each sentence (resampled, encoded, 20 ms
  chunks) and one ``("spoken", tid, error)`` at its end.
"""

from __future__ import annotations

import pickle
import struct
import threading
from typing import IO, Any, Optional

__all__ = ["encode", "read_message", "widen", "write_message"]

_HEADER = struct.Struct(">I")


def encode(message: tuple[Any, ...]) -> bytes:
    """One message as a frame (length header + pickled tuple)."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(body)) + body


def write_message(stream: IO[bytes], lock: threading.Lock, message: tuple[Any, ...]) -> None:
    """Write and flush one frame; ``lock`` keeps frames of several threads whole.

    Raises:
        OSError: the pipe is closed.
    """
    data = encode(message)
    with lock:
        stream.write(data)
        stream.flush()


def read_message(stream: IO[bytes]) -> Optional[tuple[Any, ...]]:
    """The next message, or ``None`` at the end of the stream (also when it ends inside
    a frame: the writer died).

    Raises:
        pickle.UnpicklingError: a frame's body is not a pickle.
    """
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        return None
    (size,) = _HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    message: tuple[Any, ...] = pickle.loads(body)
    return message


def widen(pipe: IO[bytes]) -> None:
    """Give a pipe 1 MiB of buffer where Linux allows it (default 64 KiB). Never raises."""
    try:
        import fcntl

        fcntl.fcntl(pipe.fileno(), getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError, ValueError):
        pass  # another platform, or a limit below 1 MiB: the default buffer works too
