"""How the benchmark scripts hand over their report: printed, and appended to ``--output``.

Standard library only. The committed result files are records: a run adds a section at the
end of one, never rewrites it.
"""

from __future__ import annotations

from typing import Optional


def publish(report: str, output: Optional[str]) -> None:
    """Print ``report`` and, when ``output`` names a file, append it there after a blank
    line."""
    print(report)
    if output:
        with open(output, "a") as out:
            out.write("\n" + report + "\n")
