"""``sayna``: the command line, built on the public API only.

``sayna demo`` runs the whole story on an embedded local server; ``sayna serve``
starts that server; the other subcommands wrap REST and streaming calls against
any Sayna server (``--url``, ``--api-key`` or ``SAYNA_API_KEY``).

Everyday mistakes end with one line on stderr naming the problem and the fix, never
a traceback: exit status 2 for usage errors (a bad option, a missing input file),
1 for failures (server unreachable, key refused, a file that cannot be written).

The modules, one a command group, over ``common`` (shared options and output):
``rest`` (health, voices, speak, token, rooms, hooks, recording), ``transcribe``,
``demo``, ``talk``; ``entry`` builds the parser and runs a command. Imports run one
way: ``entry`` -> the groups -> ``common``.
"""

from __future__ import annotations

from .entry import build_parser, main

__all__ = ["build_parser", "main"]
