"""The ``sayna`` command's launcher, kept outside the ``sayna_client`` package.

Importing the command line takes about half a second (aiohttp, pydantic, the
package's own modules). A Ctrl-C in that time raised ``KeyboardInterrupt`` inside
an import, before ``sayna_client.cli.main`` could catch it, and Python printed a
traceback. Any module inside the package runs the package's ``__init__`` first, so
the only place that can catch it is a module outside: this one, which the ``sayna``
console script calls.
"""

import sys


def main() -> int:
    """Run ``sayna`` with ``sys.argv``; return its exit status.

    A Ctrl-C at any moment ends with the status the command gives it (130, or 0
    for ``sayna serve``, which Ctrl-C stops) and no traceback, also while the
    command line is still being imported.
    """
    try:
        from sayna_client.cli import main as run

        return run()
    except KeyboardInterrupt:
        return 0 if sys.argv[1:2] == ["serve"] else 130
