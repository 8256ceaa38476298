"""Where results live: the default results folder, and the two boards built from it.

The results folder holds the run folders (``<test set>/<predictor>-<hash>/``).
Its default is the same for the CLI and the Python API wherever they start:
``$BENCH_RESULTS_DIR`` when set; else, when the current folder is inside the
checkout this package runs from, that checkout's ``results/`` (a notebook in
``docs/`` finds the runs ``bench run`` stored); else a per-user folder,
``$XDG_DATA_HOME/pricer-bench/results`` (``~/.local/share/pricer-bench/results``).

Two boards are built from a results folder: the **published** one (its
``LEADERBOARD.md``, ``leaderboard.json`` / ``.csv``, ``charts/`` and ``site/``,
committed in the checkout), written only when asked (``--publish``, which
``make publish`` passes), and the user's **working** one, the same files under
``<results>/local/`` (git-ignored), which ``bench leaderboard``, ``site`` and
``view`` write by default.
"""

from __future__ import annotations

import os
from pathlib import Path

from bench.errors import BenchError

RESULTS_ENV = "BENCH_RESULTS_DIR"
RESULTS = "results"
WORKING = "local"  # the working board's folder inside a results folder
APP = "pricer-bench"
# What the published board is made of, inside a results folder.
PUBLISHED = ("LEADERBOARD.md", "leaderboard.json", "leaderboard.csv", "charts", "site")


def checkout_root() -> Path | None:
    """The source checkout this package runs from; None when it is installed."""
    root = Path(__file__).resolve().parent.parent
    try:
        project = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return root if f'name = "{APP}"' in project else None


def user_results() -> Path:
    """The per-user results folder (XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base).expanduser() / APP / RESULTS


def default_results_dir(cwd: Path | None = None) -> Path:
    """Where runs are stored when no folder is named (see the module docstring)."""
    env = os.environ.get(RESULTS_ENV)
    if env:
        return Path(env).expanduser()
    root = checkout_root()
    try:
        here = (cwd or Path.cwd()).resolve()
    except OSError:  # the current folder was removed
        here = None
    if root is not None and here is not None and here.is_relative_to(root):
        return root / RESULTS
    return user_results()


def results_dir(given: str | Path | None = None) -> Path:
    """``given`` when named, else the default."""
    return Path(given).expanduser() if given is not None else default_results_dir()


def board_dir(results: Path, publish: bool = False) -> Path:
    """Where the board of ``results`` is written: the published board (``results``
    itself) only with ``publish``, else the working board (``results/local``)."""
    return results if publish else results / WORKING


def refuse_published(path: Path, results: Path) -> None:
    """BenchError when ``path`` is (inside) a part of the published board of ``results``
    or of this checkout: a user's look or run never writes it (``--publish`` does)."""
    target = path.resolve()
    root = checkout_root()
    for folder in [results] + ([root / RESULTS] if root is not None else []):
        for part in PUBLISHED:
            published = (folder / part).resolve()
            if target == published or target.is_relative_to(published):
                raise BenchError(f"is the published board ({part} of {folder}); only "
                                 "`make publish` (--publish) writes it: choose another "
                                 "--output", path)
