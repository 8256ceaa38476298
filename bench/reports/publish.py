"""``bench leaderboard``: collect the stored runs, write the files, draw the charts,
and update the README block, in that order (``publish``).

The files go to the working board (``<results>/local/``) unless ``public``: only
then are the published files (``<results>/LEADERBOARD.md`` ..., the README block)
written (``bench.places``).

The work is done by the modules before this one in ``bench.reports`` (collect ->
format -> writers -> charts); this module only runs them, and names the pieces
other code and tests call. (From Python, ``bench.leaderboard()`` is the notebook
API's DataFrame of the same rows: ``bench.api.leaderboard``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench import places, standing
from bench.errors import BenchError
from bench.fsutil import writable_folder
from bench.reports import cost
from bench.reports.collect import Entry, attach_categories, collect
from bench.reports.files import CSV, JSON, MARKDOWN, keep_timings, write
from bench.reports.layout import Drawn
from bench.reports.markdown import markdown
from bench.reports.readme import README_END, README_START, readme_block, split_readme, update_readme

__all__ = ["CSV", "JSON", "MARKDOWN", "README_END", "README_START", "Entry", "Published",
           "collect", "markdown", "publish", "readme_block", "update_readme", "write"]


@dataclass
class Published:
    """What ``publish`` did, for the CLI to report."""

    entries: list[Entry]
    files: list[Path]
    board: Path  # the folder the files and charts went to
    drawn: Drawn | None
    without_categories: list[str]
    readme_changed: bool | None = None  # None: no README asked for
    unchanged: list[Path] = field(default_factory=list)  # files left alone: same content


def publish(results_dir: Path, *, data_dir: Path | None = None, charts: bool = True,
            readme: Path | None = None, workers: int | None = 1, public: bool = False,
            min_answered: float = standing.MIN_ANSWERED) -> Published:
    """Everything ``bench leaderboard`` writes: files, charts, and the README block.

    ``public``: write the published board (``results_dir`` itself, and the README
    block); else the working board in ``results_dir/local`` (a README is refused).
    ``workers``: processes drawing charts (None: automatic, see ``charts.draw_all``).
    ``min_answered``: the share of the test set a run must answer to be ranked.
    """
    min_answered = standing.check_min_answered(min_answered)
    if readme is not None and not public:
        raise BenchError("the README block is part of the published board: pass --publish "
                         "(`make publish` does)", readme)
    writable_folder(results_dir)
    if readme is not None:
        split_readme(readme)  # refuse before writing anything
    entries = collect(results_dir, min_answered=min_answered)
    if not entries:
        raise BenchError("no stored runs: run `bench run all` first", results_dir)
    board = places.board_dir(results_dir, public)
    board.mkdir(exist_ok=True)
    keep_timings(entries, board / JSON)
    cost.mark_frontiers(entries)  # again: the time frontier on the times kept
    missing = attach_categories(entries, data_dir)
    drawn = None
    if charts:
        from bench.reports import charts as drawing  # matplotlib: only when drawing

        drawn = drawing.draw_all(board, entries, workers=workers)
    unchanged: list[Path] = []
    files = write(board, entries, drawn, unchanged, min_answered)
    out = Published(entries, files, board, drawn, missing, unchanged=unchanged)
    if readme is not None:
        out.readme_changed = update_readme(readme, readme_block(entries, board, readme, drawn,
                                                                min_answered))
    return out
