"""``bench leaderboard``: collect the stored runs, write the files, draw the charts,
and update the README block, in that order (``publish``).

The work is done by the modules before this one in ``bench.reports`` (collect ->
format -> writers -> charts); this module only runs them, and names the pieces
other code and tests call. (From Python, ``bench.leaderboard()`` is the notebook
API's DataFrame of the same rows: ``bench.api.leaderboard``.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.errors import BenchError
from bench.fsutil import writable_folder
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
    drawn: Drawn | None
    without_categories: list[str]
    readme_changed: bool | None = None  # None: no README asked for
    unchanged: list[Path] = field(default_factory=list)  # files left alone: same content


def publish(results_dir: Path, *, data_dir: Path | None = None, charts: bool = True,
            readme: Path | None = None, workers: int | None = 1) -> Published:
    """Everything ``bench leaderboard`` writes: files, charts, and the README block.

    ``workers``: processes drawing charts (None: automatic, see ``charts.draw_all``).
    """
    writable_folder(results_dir)
    if readme is not None:
        split_readme(readme)  # refuse before writing anything
    entries = collect(results_dir)
    if not entries:
        raise BenchError("no stored runs: run `bench run all` first", results_dir)
    keep_timings(entries, results_dir / JSON)
    missing = attach_categories(entries, data_dir)
    drawn = None
    if charts:
        from bench.reports import charts as drawing  # matplotlib: only when drawing

        drawn = drawing.draw_all(results_dir, entries, workers=workers)
    unchanged: list[Path] = []
    files = write(results_dir, entries, drawn, unchanged)
    out = Published(entries, files, drawn, missing, unchanged=unchanged)
    if readme is not None:
        out.readme_changed = update_readme(readme,
                                           readme_block(entries, results_dir, readme, drawn))
    return out
