"""Writes the site: four HTML shells, the assets, and one data file per page.

Data files are scripts (``bench.put("data/...", {...})``) rather than JSON so
the pages also work from ``file://``, where browsers refuse to fetch files.
Output is deterministic (sorted keys, no clock): the same stored runs give the
same bytes, and a file whose bytes are unchanged is not rewritten. Stale data
files of runs that are gone are removed; nothing outside ``data/`` and
``assets/`` of the output folder is ever deleted.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import standing
from bench.errors import BenchError
from bench.fsutil import atomic_write_text
from bench.site import assets, pages, source

PAGES = {  # file -> (body's data-page, title)
    "index.html": ("leaderboard", "Leaderboard"),
    "predictor.html": ("predictor", "Predictor"),
    "item.html": ("item", "Item"),
    "compare.html": ("compare", "Compare two predictors"),
}
OWNED = ("data", "assets")  # folders of the output whose stale files a build removes
GENERATOR = '<meta name="generator" content="bench site">'  # how a build knows its own site


@dataclass
class Built:
    """What ``build`` wrote, for the CLI to report."""

    output: Path
    files: list[Path] = field(default_factory=list)  # every file of the site
    written: int = 0  # files whose bytes changed
    removed: int = 0  # stale files removed
    runs: int = 0
    test_sets: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def data_script(key: str, payload: Any) -> str:
    try:
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                          allow_nan=False)
    except ValueError as exc:  # NaN or infinity: stored data the site cannot show faithfully
        raise BenchError(f"cannot write the site data {key}: {exc}") from None
    return f"bench.put({json.dumps(key)},{body});\n"


def shell(page: str, title: str) -> str:
    """The HTML of one page: the page code renders it from the data files (and loads
    the Vega libraries itself once the tables are on screen)."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
{GENERATOR}
<link rel="icon" href="data:,">
<title>{html.escape(title)} · pricer-bench</title>
<link rel="stylesheet" href="assets/site.css">
<script src="assets/site.js" defer></script>
<script src="data/index.js" defer></script>
</head>
<body data-page="{page}">
<header><nav><a href="index.html">pricer-bench leaderboard</a>
<span id="test-set"></span></nav></header>
<main id="main"><p class="loading">Loading...</p>
<noscript><p>This page needs JavaScript; the same figures are in LEADERBOARD.md.</p></noscript>
</main>
<footer>Built by <code>bench site</code> from the stored predictions. Charts: Vega-Lite.</footer>
</body>
</html>
"""


class _Writer:
    def __init__(self, output: Path, built: Built):
        self.output = output
        self.built = built

    def text(self, rel: str, content: str) -> None:
        path = self.output / rel
        self.built.files.append(path)
        try:
            if path.read_text(encoding="utf-8") == content:
                return
        except (FileNotFoundError, UnicodeDecodeError):
            pass
        atomic_write_text(path, content)
        self.built.written += 1

    def data(self, rel: str, payload: Any) -> None:
        self.text(rel, data_script(rel, payload))

    def prune(self) -> None:
        keep = set(self.built.files)
        for top in OWNED:
            folder = self.output / top
            if not folder.is_dir():
                continue
            for path in sorted(folder.rglob("*"), reverse=True):
                if path.is_file() and path not in keep:
                    path.unlink()
                    self.built.removed += 1
                elif path.is_dir() and not any(path.iterdir()):
                    path.rmdir()


def _check_output(output: Path) -> None:
    """Refuse a file, or a folder with other things in it: the build prunes ``data/``
    and ``assets/``, which must be the site's own."""
    if output.exists() and not output.is_dir():
        raise BenchError("not a folder", output)
    if not output.is_dir() or not any(output.iterdir()):
        return
    try:
        ours = GENERATOR in (output / "index.html").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        ours = False
    if not ours:
        raise BenchError("not empty and not a site that `bench site` wrote: choose another "
                         "--output (or an empty folder)", output)


def build(results_dir: Path, output: Path, data_dir: Path | None = None, *,
          min_answered: float = standing.MIN_ANSWERED) -> Built:
    """Write the site of the runs stored under ``results_dir`` into ``output``
    (ranked as the leaderboard ranks them, with ``min_answered``)."""
    groups = source.load(results_dir, data_dir, min_answered=min_answered)
    _check_output(output)
    specs = assets.chart_specs()
    bundle = assets.vega_bundle(specs)
    built = Built(output, runs=sum(len(g.runs) for g in groups),
                  test_sets=[g.name for g in groups])
    out = _Writer(output, built)
    out.text("assets/vega.js", bundle)
    for name in assets.STATIC:
        out.text(f"assets/{name}", assets.static(name))
    ts_slugs = pages.slugs([g.name for g in groups])
    out.data("data/index.js", pages.index(groups, ts_slugs))
    out.data("data/specs.js", specs)
    for group in groups:
        base = f"data/{ts_slugs[group.name]}"
        p_slugs = pages.slugs([r.predictor for r in group.runs])
        table = source.PairTable(group.runs)  # may work in other processes meanwhile
        try:
            listing = pages.items(group, p_slugs)
            out.data(f"{base}/items.js", listing)
            out.data(f"{base}/leaderboard.js", pages.leaderboard(group, p_slugs, listing))
            for n, chunk in enumerate(pages.chunks(group, listing)):
                out.data(f"{base}/text/{n}.js", chunk)
            pairs = table.result()
        finally:
            table.close()
        for run in group.runs:
            out.data(f"{base}/p/{p_slugs[run.predictor]}.js",
                     pages.predictor(run, group, listing, pairs, p_slugs))
    for name, (page, title) in PAGES.items():
        out.text(name, shell(page, title))
    out.prune()
    built.files.sort()
    return built
