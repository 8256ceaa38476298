"""Writes the site: four HTML shells, the assets, and one data file per page.

Data files are scripts (``bench.put("data/...", {...})``) rather than JSON so
the pages also work from ``file://``, where browsers refuse to fetch files.
Output is deterministic (sorted keys, no clock): the same stored runs give the
same bytes, and a file whose bytes are unchanged is not rewritten (the new
site links the old file). Stale data files of runs that are gone are removed.

The new site is written beside the old one, in a sibling folder
(``.NAME.building-PID-XXXX``), then switched in whole: in one atomic exchange
where the system has one (Linux's ``renameat2``), else by two renames a few
microseconds apart (the folder is missing in between). So a reader sees the
old site, complete, until the switch, then the new one; a killed build leaves
the old site as it was, and its sibling folder is removed by the next build.
What the output held that is not the site's (a ``CNAME``, notes) is carried
over. Nothing is written into the old site, so nothing is ever written or
deleted through a symbolic link in it: links are removed as links.
"""

from __future__ import annotations

import ctypes
import html
import json
import os
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import standing
from bench.errors import BenchError
from bench.fsutil import umask
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
    """Writes the site into ``staging``; a file whose bytes the old site already holds
    is linked from there, not rewritten."""

    def __init__(self, staging: Path, output: Path, built: Built):
        self.staging = staging
        self.output = output
        self.built = built
        self.old = _site_files(output)

    def text(self, rel: str, content: str) -> None:
        path = self.staging / rel
        self.built.files.append(self.output / rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode("utf-8")
        old = self.old.get(rel)
        if old is not None:
            try:
                if old.read_bytes() == data:
                    os.link(old, path, follow_symlinks=False)
                    return
            except OSError:
                pass  # unreadable, or no hard links here: written anew
        path.write_bytes(data)
        self.built.written += 1

    def data(self, rel: str, payload: Any) -> None:
        self.text(rel, data_script(rel, payload))

    def finish(self) -> None:
        """Count the old site's files that are gone, and carry over what is not the site's."""
        new = {p.relative_to(self.output).as_posix() for p in self.built.files}
        self.built.removed = sum(1 for rel in self.old
                                 if rel.split("/")[0] in OWNED and rel not in new)
        if not self.output.is_dir():
            return
        for entry in os.scandir(self.output):
            if entry.name in PAGES or entry.name in OWNED:
                continue
            target = self.staging / entry.name
            if entry.is_dir(follow_symlinks=False):
                shutil.copytree(entry.path, target, symlinks=True)
            else:
                shutil.copy2(entry.path, target, follow_symlinks=False)


def _site_files(output: Path) -> dict[str, Path]:
    """The old site's own regular files by relative path (links never followed)."""
    found: dict[str, Path] = {}
    if not output.is_dir() or output.is_symlink():
        return found
    for top in (*PAGES, *OWNED):
        start = output / top
        if start.is_symlink():
            continue
        if start.is_file():
            found[top] = start
            continue
        for folder, _, names in os.walk(start, followlinks=False):
            for name in names:
                path = Path(folder) / name
                if stat.S_ISREG(os.lstat(path).st_mode):
                    found[path.relative_to(output).as_posix()] = path
    return found


BUILDING, OLD = "building", "old"  # the sibling folders of a build, by what they hold


def _sibling(output: Path, what: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f".{output.name}.{what}-{os.getpid()}-",
                                 dir=output.parent))


def _remove_leftovers(output: Path) -> None:
    """Sibling folders of builds that were killed (their process is gone)."""
    for path in output.parent.iterdir():
        for what in (BUILDING, OLD):
            prefix = f".{output.name}.{what}-"
            if not path.name.startswith(prefix):
                continue
            pid = path.name[len(prefix):].split("-")[0]
            if pid.isdigit() and not _alive(int(pid)) and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _exchange(a: Path, b: Path) -> bool:
    """Swap two folders in one atomic step (Linux ``renameat2``); False where the
    system cannot, and nothing was done."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _switch(staging: Path, output: Path) -> None:
    """Put ``staging`` in place of ``output``; the old site is removed after."""
    if _exchange(staging, output):
        shutil.rmtree(staging, ignore_errors=True)  # it holds the old site now
        return
    for _ in range(5):  # another build may switch meanwhile: take its place
        if output.exists() or output.is_symlink():
            trash = _sibling(output, OLD)
            try:
                os.replace(output, trash)
            except FileNotFoundError:
                pass
        try:
            os.rename(staging, output)
        except OSError:
            continue
        else:
            break
    else:
        raise BenchError("could not switch the new site in (another build keeps replacing "
                         "it?)", output)
    mine = f".{output.name}.{OLD}-{os.getpid()}-"
    for trash in output.parent.iterdir():
        if trash.name.startswith(mine) and not trash.is_symlink():
            shutil.rmtree(trash, ignore_errors=True)


def _check_output(output: Path) -> None:
    """Refuse a link, a file, or a folder with other things in it: the build replaces
    the pages, ``data/`` and ``assets/``, which must be the site's own."""
    if output.is_symlink():
        raise BenchError("is a symbolic link: refusing to write through it (pass the "
                         "folder it points to as --output)", output)
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
    output.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(output)
    specs = assets.chart_specs()
    bundle = assets.vega_bundle(specs)
    built = Built(output, runs=sum(len(g.runs) for g in groups),
                  test_sets=[g.name for g in groups])
    staging = _sibling(output, BUILDING)
    try:
        _write(groups, _Writer(staging, output, built), specs, bundle)
        os.chmod(staging, 0o777 & ~umask())  # mkdtemp makes 0700; a site is readable
        _switch(staging, output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    built.files.sort()
    return built


def _write(groups: list[source.TestSetRuns], out: _Writer, specs: Any, bundle: str) -> None:
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
    out.finish()
