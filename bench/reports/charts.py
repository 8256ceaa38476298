"""Charts drawn from stored predictions: the pictures this field reads a model off.

Per predictor: truth against guess, coloured green / orange / red like the
tester, with the y = x line; and the running mean error with its 95% band.
Across predictors: MAE with its interval bars, coloured by kind
(``bench.kinds``). PNGs go where ``bench.reports.layout`` says, under
``<results>/charts/<test set>/``.

matplotlib is imported only inside the drawing functions (a leaderboard
without charts, and ``bench list``, never load it), through the Agg canvas
directly: no pyplot, no global backend, no display needed. Files are
deterministic: the default style (a user's matplotlibrc cannot change them),
no "Software" stamp, and a digest of the chart's inputs stored in the PNG, so
a rerun skips charts whose inputs did not change and leaves the bytes alone.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import struct
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import version
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from bench import kinds
from bench.fsutil import atomic_write, no_links
from bench.metrics import Scores, band
from bench.reports.format import money, percent, published
from bench.reports.layout import (
    CHARTS_DIR,
    Drawn,
    PredictorCharts,
    chart_dir,
    cost_chart,
    mae_chart,
    predictor_charts,
)
from bench.store import warn

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from bench.reports.collect import Entry

__all__ = ["CHARTS_DIR", "Bar", "Chart", "Drawn", "PngInfo", "PredictorCharts", "chart_dir",
           "draw_all", "draw_mae", "draw_running", "draw_scatter", "mae_chart",
           "png_bytes", "predictor_charts", "read_png", "scatter_figure", "scatter_subtitle"]
STYLE_VERSION = "3"  # bump when the drawing code changes, so digests change and charts redraw
DIGEST_KEY = "bench-chart-digest"
BAND_COLOURS = {"green": "#2ca02c", "orange": "#ff8c00", "red": "#d62728"}
BAND_LABELS = {"green": "hit (< $40 or < 20%)", "orange": "near (< $80 or < 40%)",
               "red": "miss"}
# Log axes from 50 cents to $2,000: the test prices span $0.50-$999.49 and the
# interesting errors are relative; guesses outside are pinned to the edge.
AXIS_LOW, AXIS_HIGH = 0.5, 2000.0
DPI = 100
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# -- PNG reading (no imaging library: tests and the skip check use it) --------


@dataclass(frozen=True)
class PngInfo:
    width: int
    height: int
    text: dict[str, str]


def read_png(path: Path) -> PngInfo:
    """Size from the IHDR chunk and the tEXt entries; ValueError if not a PNG."""
    data = path.read_bytes()
    if not data.startswith(PNG_MAGIC):
        raise ValueError(f"{path} is not a PNG")
    pos, width, height, text = len(PNG_MAGIC), 0, 0, {}
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif kind == b"tEXt" and b"\0" in body:
            key, value = body.split(b"\0", 1)
            text[key.decode("latin-1")] = value.decode("latin-1")
        elif kind in (b"IDAT", b"IEND"):
            break  # text chunks we write come before the image data
        pos += 12 + length
    if not width:
        raise ValueError(f"{path} has no IHDR chunk")
    return PngInfo(width, height, text)


@dataclass(frozen=True)
class Chart:
    """One PNG to draw: which picture, where, and the plain data it shows."""

    kind: str  # "scatter" | "running" | "mae"
    path: Path
    args: tuple[Any, ...]

    @cached_property
    def digest(self) -> str:
        """Changes with the data, the drawing code and matplotlib (whose pixels may move)."""
        payload = [STYLE_VERSION, version("matplotlib"), self.kind, _plain(self.args)]
        body = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(body.encode()).hexdigest()[:16]

    def current(self) -> bool:
        """The file exists and was drawn from these very inputs: leave its bytes alone."""
        try:
            return read_png(self.path).text.get(DIGEST_KEY) == self.digest
        except (OSError, ValueError):
            return False

    def draw(self) -> bool:
        """Draw unless current; True when the file was (re)written."""
        if self.current():
            return False
        render(self)
        return True


def _plain(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, Bar):
        return [value.name, value.kind, value.mae, _plain(value.ci95), value.tied]
    return value


def render(chart: Chart) -> None:
    """Draw one chart (module level, so a worker process can run it)."""
    draw = {"scatter": _scatter, "running": _running, "mae": _mae, "cost": _cost}[chart.kind]
    draw(chart.path, chart.digest, *chart.args)


# -- drawing -----------------------------------------------------------------


@contextmanager
def _figure(width: float, height: float, margins: dict[str, float]) -> Iterator[Figure]:
    import matplotlib.style
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.style.context("default"):
        # Fixed margins, not a layout engine: constrained layout doubles the drawing time.
        fig = Figure(figsize=(width, height), dpi=DPI)
        fig.subplots_adjust(**margins)
        FigureCanvasAgg(fig)
        yield fig


def _save(fig: Figure, path: Path, digest: str) -> None:
    import matplotlib.style

    def fill(handle: IO[bytes], _: str) -> None:
        with matplotlib.style.context("default"):  # savefig reads rcParams: keep files fixed
            fig.savefig(handle, format="png", dpi=DPI,
                        metadata={"Software": None, DIGEST_KEY: digest})

    atomic_write(path, fill)  # a unique temp name: two `bench leaderboard` at once never clash


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG bytes, drawn as the files are (notebooks embed these)."""
    import io

    import matplotlib.style

    buffer = io.BytesIO()
    with matplotlib.style.context("default"):
        fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def money_axis(ax: Any, which: str) -> None:
    from matplotlib.ticker import FuncFormatter

    def dollars(value: float, _: object) -> str:
        if value == 0 or value >= 1:
            return f"${value:,.0f}"
        return f"${value:.2f}"

    getattr(ax, f"{which}axis").set_major_formatter(FuncFormatter(dollars))


def draw_scatter(path: Path, name: str, truth: Sequence[float], guess: Sequence[float],
                 subtitle: str = "") -> bool:
    """Truth (x) against guess (y) on log axes; False when the file was already current."""
    return Chart("scatter", path, (name, tuple(truth), tuple(guess), subtitle)).draw()


def _scatter(path: Path, digest: str, name: str, truth: Sequence[float],
             guess: Sequence[float], subtitle: str) -> None:
    _save(scatter_figure(name, truth, guess, subtitle), path, digest)


def scatter_subtitle(scores: Scores) -> str:
    """The line under a scatter's title: MAE, hits, answered."""
    s = scores
    return (f"MAE {money(s.mae)}, hits {percent(s.hit_rate)}, {s.answered}/{s.total} answered"
            if s.mae is not None and s.hit_rate is not None else "no answers")


def scatter_figure(name: str, truth: Sequence[float], guess: Sequence[float],
                   subtitle: str = "") -> Figure:
    """The truth-against-guess figure itself, unsaved (notebooks show it inline)."""
    import numpy as np

    t, g = np.asarray(truth, dtype=float), np.asarray(guess, dtype=float)
    bands = np.array([band(abs(a - b), b) for a, b in zip(g, t, strict=True)])
    shown = np.clip(g, AXIS_LOW, AXIS_HIGH)
    pinned = shown != g
    margins = {"left": 0.14, "right": 0.97, "bottom": 0.09, "top": 0.91}
    with _figure(6.0, 6.2, margins) as fig:
        ax = fig.add_subplot()
        ax.plot([AXIS_LOW, AXIS_HIGH], [AXIS_LOW, AXIS_HIGH], color="#444444", lw=1,
                ls="--", zorder=1, label="guess = truth")
        for colour in ("green", "orange", "red"):
            sel = bands == colour
            ax.scatter(t[sel & ~pinned], shown[sel & ~pinned], s=16, c=BAND_COLOURS[colour],
                       alpha=0.8, edgecolors="none", zorder=2,
                       label=f"{BAND_LABELS[colour]}: {int(sel.sum())}")
            # Guesses off the axes (a $0 or a $5,000 answer) stay visible on its edge.
            ax.scatter(t[sel & pinned], shown[sel & pinned], s=30, c=BAND_COLOURS[colour],
                       marker="^", edgecolors="none", zorder=3, clip_on=False)
        if pinned.any():
            ax.scatter([], [], s=30, c="#777777", marker="^",
                       label=f"guess off the scale, on its edge: {int(pinned.sum())}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlim(AXIS_LOW, AXIS_HIGH)
        ax.set_ylim(AXIS_LOW, AXIS_HIGH)
        ax.minorticks_off()  # half the drawing time, and the grid marks the decades anyway
        money_axis(ax, "x")
        money_axis(ax, "y")
        ax.grid(True, which="major", color="#dddddd", lw=0.6)
        ax.set_xlabel("true price")
        ax.set_ylabel("guess")
        ax.set_title(f"{name}\n{subtitle}", fontsize=10)
        ax.legend(loc="upper left", fontsize=8, frameon=True)
    return fig


def draw_running(path: Path, name: str, errors: Sequence[float]) -> bool:
    """Mean absolute error over the first k answered items, with a 95% normal band."""
    return Chart("running", path, (name, tuple(errors))).draw()


def _running(path: Path, digest: str, name: str, errors: Sequence[float]) -> None:
    import numpy as np

    e = np.asarray(errors, dtype=float)
    k = np.arange(1, len(e) + 1)
    mean = np.cumsum(e) / k
    # Running sample variance; the band is mean ± 1.96·sd/√k (none at k = 1).
    sq = np.cumsum(e**2) / k
    var = (sq - mean**2) * k / np.maximum(k - 1, 1)
    half = np.where(k > 1, 1.96 * np.sqrt(np.maximum(var, 0.0) / k), np.nan)
    margins = {"left": 0.11, "right": 0.97, "bottom": 0.12, "top": 0.92}
    with _figure(7.0, 4.2, margins) as fig:
        ax = fig.add_subplot()
        if len(e):
            ax.fill_between(k, np.maximum(mean - half, 0.0), mean + half, color="#1f77b4",
                            alpha=0.18, lw=0, label="95% interval")
            ax.plot(k, mean, color="#1f77b4", lw=1.6, label="mean absolute error so far")
            ax.axhline(mean[-1], color="#444444", lw=0.8, ls="--",
                       label=f"final: {money(float(mean[-1]))} over {len(e)} items")
            top = np.nanmax(np.concatenate([mean, mean + np.nan_to_num(half)]))
            ax.set_ylim(0, float(top) * 1.05 or 1.0)
            ax.legend(loc="upper right", fontsize=8)
        ax.set_xlim(1, max(len(e), 2))
        money_axis(ax, "y")
        ax.grid(True, color="#dddddd", lw=0.6)
        ax.set_xlabel("items answered (test-set order)")
        ax.set_ylabel("mean absolute error")
        ax.set_title(f"{name}: running mean error", fontsize=10)
        _save(fig, path, digest)


@dataclass(frozen=True)
class Bar:
    name: str
    kind: str
    mae: float
    ci95: tuple[float, float] | None
    tied: bool  # statistically tied with the leader


def draw_mae(path: Path, test_set: str, bars: Sequence[Bar]) -> bool:
    """Horizontal MAE bars, best at the top, 95% interval whiskers, colour by kind."""
    return Chart("mae", path, (test_set, tuple(bars))).draw()


def _mae(path: Path, digest: str, test_set: str, bars: Sequence[Bar]) -> None:
    import numpy as np
    from matplotlib.patches import Patch

    y = np.arange(len(bars))
    mae = np.array([b.mae for b in bars])
    lo = np.array([b.mae - b.ci95[0] if b.ci95 else 0.0 for b in bars])
    hi = np.array([b.ci95[1] - b.mae if b.ci95 else 0.0 for b in bars])
    width, height = 8.0, 1.3 + 0.3 * len(bars)
    label_in = 0.3 + 0.062 * max((len(b.name) for b in bars), default=4)
    margins = {"left": min(label_in / width, 0.6), "right": 0.97,
               "bottom": 0.7 / height, "top": 1 - 0.4 / height}
    with _figure(width, height, margins) as fig:
        ax = fig.add_subplot()
        colours = [kinds.colour(b.kind) for b in bars]
        ax.barh(y, mae, color=colours, height=0.7, zorder=2, edgecolor="white", lw=0,
                hatch=["//" if b.tied and i else "" for i, b in enumerate(bars)])
        ax.errorbar(mae, y, xerr=[lo, hi], fmt="none", ecolor="#222222", elinewidth=1,
                    capsize=2.5, zorder=3)
        right = float(np.max(mae + hi)) if len(bars) else 1.0
        for yi, b, h in zip(y, bars, hi, strict=True):
            ax.text(b.mae + h + right * 0.01, yi, money(b.mae), va="center", fontsize=7.5)
        ax.set_yticks(y, [b.name for b in bars], fontsize=8)
        ax.set_ylim(len(bars) - 0.4, -0.6)  # best on top
        ax.set_xlim(0, right * 1.12)
        money_axis(ax, "x")
        ax.grid(True, axis="x", color="#dddddd", lw=0.6, zorder=0)
        ax.set_xlabel("mean absolute error, 95% bootstrap interval (hatched: tied with #1)")
        ax.set_title(f"{test_set}: mean absolute error, lower is better", fontsize=10)
        shown = list(dict.fromkeys(b.kind for b in bars))
        ax.legend(handles=[Patch(color=kinds.colour(k), label=kinds.label(k)) for k in shown],
                  loc="upper right", fontsize=8)
        _save(fig, path, digest)


COST_STYLE = "1"  # bump when _cost's drawing changes (its own digest input)


def _cost(path: Path, digest: str, style: str, test_set: str,
          points: Sequence[tuple[Any, ...]]) -> None:
    """MAE against cost per 1,000 items (left) and time per item (right), colour by kind;
    the runs no other beats on both (``cost.pareto``) ringed, joined and named."""
    from matplotlib.lines import Line2D

    with _figure(11.0, 5.0, {"left": 0.07, "right": 0.98, "bottom": 0.2, "top": 0.88,
                             "wspace": 0.18}) as fig:
        panels = ((3, 5, "cost per 1,000 items in dollars (symmetric log; 0 = no API spend)"),
                  (4, 6, "time per item (seconds, log)"))
        for at, (xi, fi, xlabel) in enumerate(panels, start=1):
            ax = fig.add_subplot(1, 2, at)
            shown = [p for p in points if p[xi] is not None]
            if at == 1:
                ax.set_xscale("symlog", linthresh=0.01)
                money_axis(ax, "x")
            elif shown:
                ax.set_xscale("log")
            for p in shown:
                ax.scatter([p[xi]], [p[2]], s=60 if p[fi] else 28, color=kinds.colour(p[1]),
                           edgecolors="#111111" if p[fi] else "none", linewidths=1.4, zorder=3)
            edge = sorted((p[xi], p[2], p[0]) for p in shown if p[fi])
            if edge:
                ax.step([e[0] for e in edge], [e[1] for e in edge], where="post",
                        color="#111111", lw=0.8, ls="--", zorder=2)
                for x, y, name in edge:
                    ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4),
                                fontsize=7)
            ax.margins(x=0.25, y=0.08)  # room for the names of the frontier's runs
            ax.set_xlabel(xlabel, fontsize=8)
            ax.set_ylabel("mean absolute error", fontsize=8)
            money_axis(ax, "y")
            ax.grid(True, color="#dddddd", lw=0.6, zorder=0)
            left = len(points) - len(shown)
            ax.set_title(f"{len(shown)} of {len(points)} runs"
                         + (f" ({left} unknown, not shown)" if left else ""), fontsize=8)
        used = list(dict.fromkeys(p[1] for p in points))
        handles = [Line2D([], [], marker="o", ls="", color=kinds.colour(k), label=kinds.label(k))
                   for k in used]
        handles.append(Line2D([], [], marker="o", ls="--", color="#111111", mfc="white",
                              label="no other run beats it on both"))
        fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7.5)
        fig.suptitle(f"{test_set}: the cost of accuracy (lower left is better)", fontsize=10)
        _save(fig, path, digest)


def _cost_jobs(results_dir: Path, entries: Sequence[Entry], out: Drawn) -> list[Chart]:
    """The cost chart of each test set (``bench.reports.cost``)."""
    from bench.reports import cost

    jobs = []
    for ts in dict.fromkeys(e.test_set for e in entries):
        runs = cost.scored([e for e in entries if e.test_set == ts])
        by_cost, by_time = cost.frontiers(runs)
        # In their published form (12 significant digits): a time kept from the
        # published file and the run's own then draw, and digest, the same.
        points = tuple(tuple(published([e.predictor, e.kind, e.scores.mae,
                                        cost.cost_per_1k(e)[0], cost.time_per_item(e), c, t]))
                       for e, c, t in zip(runs, by_cost, by_time, strict=True))
        if points:
            out.cost[ts] = cost_chart(results_dir, ts)
            jobs.append(Chart("cost", out.cost[ts], (COST_STYLE, ts, points)))
    return jobs


# -- the leaderboard's charts ------------------------------------------------


def draw_all(results_dir: Path, entries: Sequence[Entry], *, workers: int | None = 1) -> Drawn:
    """Every chart for ``entries``; stale PNGs of predictors no longer listed are removed.
    The MAE chart of a test set shows its ranked runs only (a run on a few items
    is no bar to compare).

    Charts whose inputs did not change are skipped; the rest are drawn on
    ``workers`` processes. ``None`` picks 2 when there are enough charts to pay
    for starting processes (drawing is CPU-bound Python); the CLI does that.
    Library callers get 1 by default: spawned workers re-import the caller's
    main module, which a script without a ``__main__`` guard cannot survive.
    """
    out = Drawn({}, {})
    jobs: list[Chart] = []
    for e in entries:
        paths = predictor_charts(results_dir, e.test_set, e.predictor)
        ids = sorted(i for i, r in e.records.items()
                     if r.price is not None and r.truth is not None)
        truth = tuple(float(e.records[i].truth) for i in ids)  # type: ignore[arg-type]
        guess = tuple(float(e.records[i].price) for i in ids)  # type: ignore[arg-type]
        subtitle = scatter_subtitle(e.scores)
        errors = tuple(abs(a - b) for a, b in zip(guess, truth, strict=True))
        jobs += [Chart("scatter", paths.scatter, (e.predictor, truth, guess, subtitle)),
                 Chart("running", paths.running, (e.predictor, errors))]
        out.predictors[(e.test_set, e.predictor)] = paths
    for ts in dict.fromkeys(e.test_set for e in entries):
        bars = tuple(Bar(e.predictor, e.kind, e.scores.mae, e.scores.mae_ci95,
                         bool(e.tied_with_leader))
                     for e in entries
                     if e.test_set == ts and e.ranked and e.scores.mae is not None)
        if bars:
            out.mae[ts] = mae_chart(results_dir, ts)
            jobs.append(Chart("mae", out.mae[ts], (ts, bars)))
    jobs += _cost_jobs(results_dir, entries, out)
    for job in jobs:  # refused before anything is drawn: never through a link
        no_links(results_dir, job.path)
    todo = [job for job in jobs if not job.current()]
    out.drawn, out.skipped = len(todo), len(jobs) - len(todo)
    failed = {job.path for job, problem in zip(todo, _render_all(todo, workers), strict=True)
              if problem is not None}
    if failed:  # one chart that cannot be written never stops the others or the board
        out.drawn -= len(failed)
        out.predictors = {k: p for k, p in out.predictors.items()
                          if p.scatter not in failed and p.running not in failed}
        out.mae = {k: p for k, p in out.mae.items() if p not in failed}
    keep = {job.path for job in jobs} - failed
    for ts in dict.fromkeys(e.test_set for e in entries):
        for old in sorted(chart_dir(results_dir, ts).glob("*.png")):
            if old not in keep and not old.is_symlink():  # a link is left alone
                old.unlink()
                out.removed += 1
    return out


PARALLEL_FROM = 12  # charts; below this a second process costs more than it saves


def _render_all(jobs: Sequence[Chart], workers: int | None) -> list[str | None]:
    """Draw ``jobs``; for each, None or why its file could not be written (warned)."""
    if workers is None:
        workers = min(2, os.cpu_count() or 1) if len(jobs) >= PARALLEL_FROM else 1
    if workers <= 1:
        return [_warned(job, attempt(job)) for job in jobs]
    # spawn, not fork: the caller may hold threads (a test server, a thread pool).
    context = multiprocessing.get_context("spawn")
    try:
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            problems = list(pool.map(attempt, jobs,
                                     chunksize=max(1, len(jobs) // (4 * workers))))
    except BrokenProcessPool:
        # A caller's script without a __main__ guard cannot be re-imported by spawn:
        # draw what is left here instead.
        problems = [None if job.current() else attempt(job) for job in jobs]
    return [_warned(job, problem) for job, problem in zip(jobs, problems, strict=True)]


def attempt(chart: Chart) -> str | None:
    """``render``, with a file system refusal (a name too long, a full disk, a
    read-only folder) as its reason instead of an exception (module level, for workers)."""
    try:
        render(chart)
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def _warned(job: Chart, problem: str | None) -> str | None:
    if problem is not None:
        name = job.path.name if len(job.path.name) <= 80 else job.path.name[:60] + "..."
        warn(str(job.path.parent / name), f"chart not written ({problem}); its row "
             "links no chart")
    return problem
