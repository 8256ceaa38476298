"""User-facing errors: the CLI turns these into one line and exit code 2."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """``did you mean A, B?`` for the known names closest to ``name``, else
    ``known: ...`` (every one): the hint after an unknown name."""
    names = sorted(set(known))
    close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
    return f"did you mean {', '.join(close)}?" if close else f"known: {', '.join(names)}"


class BenchError(Exception):
    """A mistake in the user's input (a file, a flag, a parameter), not a bug.

    The message names what is wrong and where: ``path:line: what``.
    """

    def __init__(self, message: str, path: str | Path | None = None, line: int | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.detail = message
        where = ""
        if self.path is not None:
            where = f"{self.path}:{line}: " if line is not None else f"{self.path}: "
        super().__init__(f"{where}{message}")
