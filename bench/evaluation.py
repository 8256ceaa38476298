"""What ``bench.evaluate`` returns: one stored run, with its figures, its items as
a table, its chart, and a rich display for notebooks.

An ``Evaluation`` reads nothing but the run's stored answers (``bench.store``)
and the test rows (titles, categories): the same figures ``bench show`` and the
leaderboard print. In a notebook, the last line of a cell showing one draws
its summary, the truth-against-guess chart and the colour-coded guesses, as
the course's ``Tester`` does. pandas and matplotlib are imported only when a
table or a chart is asked for.
"""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import kinds, metrics
from bench.data import TestSet
from bench.records import RunInfo, Totals
from bench.reports.format import cost, money, number, percent
from bench.store import Record, RunStore

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from bench.reports.collect import Entry

# The tester's colours, as HTML.
HTML_COLOURS = {"green": "#2ca02c", "orange": "#e08000", "red": "#d62728"}
COLUMNS = ["id", "title", "category", "truth", "guess", "error", "band", "reason"]


@dataclass
class Evaluation:
    """One predictor's stored run on one test set, scored over the items in scope."""

    name: str
    kind: str
    test_set: TestSet
    store: RunStore
    records: dict[int, Record]  # the stored answers of the items in scope
    scores: metrics.Scores
    totals: Totals
    predicted: int = 0  # items asked this time (0: everything came from the stored run)
    wall_s: float = 0.0

    # -- figures -------------------------------------------------------------

    @property
    def mae(self) -> float | None:
        """Mean absolute error in dollars over the answered items."""
        return self.scores.mae

    @property
    def mae_ci95(self) -> tuple[float, float] | None:
        return self.scores.mae_ci95

    @property
    def rmsle(self) -> float | None:
        return self.scores.rmsle

    @property
    def hit_rate(self) -> float | None:
        """Share of answers within $40 or 20% of the truth (green)."""
        return self.scores.hit_rate

    @property
    def coverage(self) -> float:
        return self.scores.coverage

    @property
    def answered(self) -> int:
        return self.scores.answered

    @property
    def total(self) -> int:
        return self.scores.total

    @property
    def cost_usd(self) -> float | None:
        return self.totals.cost_usd

    @property
    def run_dir(self) -> Path:
        return self.store.dir

    @property
    def info(self) -> RunInfo | None:
        return self.store.run_info()

    def figures(self) -> dict[str, Any]:
        """The headline figures as a plain dict (as in leaderboard.json)."""
        return {**self.scores.as_dict(), "predictor": self.name,
                "test_set": self.test_set.name, "cost_usd": self.cost_usd}

    # -- items -----------------------------------------------------------------

    def _items(self) -> list[dict[str, Any]]:
        out = []
        for item_id in sorted(self.records):
            record = self.records[item_id]
            row = self.test_set.row(item_id)
            truth = record.truth if record.truth is not None else (row.price if row else None)
            guess = record.price
            error = abs(guess - truth) if guess is not None and truth is not None else None
            out.append({
                "id": item_id,
                "title": (row.title or row.product().title) if row else None,
                "category": row.category if row else None,
                "truth": truth, "guess": guess, "error": error,
                "band": metrics.band(error, truth) if error is not None and truth else None,
                "reason": record.error if guess is None else None,
            })
        return out

    def to_pandas(self) -> pd.DataFrame:
        """One row per item: id, title, category, truth, guess, error (dollars), band
        (green / orange / red, None for no answer) and reason (why no answer)."""
        import pandas as pd

        frame = pd.DataFrame(self._items(), columns=COLUMNS)
        for column in ("truth", "guess", "error"):
            frame[column] = frame[column].astype(float)
        return frame

    def worst(self, n: int = 10) -> pd.DataFrame:
        """The ``n`` answers furthest from the truth, worst first."""
        return (self.to_pandas().dropna(subset=["error"])
                .sort_values(["error", "id"], ascending=[False, True]).head(n)
                .reset_index(drop=True))

    def entry(self) -> Entry:
        """This run as a report entry (what ``bench show`` and ``bench compare`` read)."""
        from bench.reports.collect import Entry

        return Entry(self.name, self.test_set.name, self.kind, self.store,
                     self.info or RunInfo(), self.records, self.scores)

    # -- pictures ---------------------------------------------------------------

    def chart(self) -> Figure:
        """Truth against guess on log axes, coloured like the tester (a matplotlib Figure)."""
        from bench.reports import charts

        answered = [r for _, r in sorted(self.records.items())
                    if r.price is not None and r.truth is not None]
        fig = charts.scatter_figure(self.name, [float(r.truth) for r in answered],  # type: ignore[arg-type]
                                    [float(r.price) for r in answered],  # type: ignore[arg-type]
                                    charts.scatter_subtitle(self.scores))
        _show_figures_inline()
        return fig

    def _chart_png(self) -> bytes:
        from bench.reports import charts

        return charts.png_bytes(self.chart())

    def summary(self) -> str:
        """One line: MAE with interval, RMSLE, hits, answered, cost."""
        s = self.scores
        if s.mae is None:
            return f"{self.name} on {self.test_set.name}: no answers (0/{s.total})"
        ci = f" [{money(s.mae_ci95[0])}, {money(s.mae_ci95[1])}]" if s.mae_ci95 else ""
        spent = f", cost {cost(self.cost_usd)}" if self.cost_usd is not None else ""
        return (f"{self.name} on {self.test_set.name}: MAE {money(s.mae)}{ci}, "
                f"RMSLE {number(s.rmsle)}, hits {percent(s.hit_rate)}, "
                f"{s.answered}/{s.total} answered{spent}")

    def __repr__(self) -> str:
        return f"<Evaluation {self.summary()}>"

    def _repr_html_(self) -> str:
        s = self.scores
        ci = (f"{money(s.mae_ci95[0])} – {money(s.mae_ci95[1])}" if s.mae_ci95 else "-")
        figures = [("MAE", money(s.mae)), ("95% interval", ci), ("RMSLE", number(s.rmsle)),
                   ("hits (green)", percent(s.hit_rate)), ("near (orange)", percent(s.orange_rate)),
                   ("median error", money(s.median_error)),
                   ("answered", f"{s.answered}/{s.total} ({percent(s.coverage)})"),
                   ("cost", cost(self.cost_usd)),
                   # no seconds here: the same run shows the same page (`wall_s` has them)
                   ("asked now", f"{self.predicted} item(s)")]
        cells = "".join(f"<tr><th style='text-align:left'>{html.escape(k)}</th>"
                        f"<td style='text-align:right'>{html.escape(v)}</td></tr>"
                        for k, v in figures)
        parts = [f"<div class='bench-evaluation'><h4>{html.escape(self.name)} "
                 f"<small>({html.escape(kinds.label(self.kind))}, "
                 f"{html.escape(self.test_set.name)})</small></h4>",
                 "<div style='display:flex;gap:1.5em;align-items:flex-start;flex-wrap:wrap'>",
                 f"<table>{cells}</table>"]
        if s.answered:
            png = base64.b64encode(self._chart_png()).decode("ascii")
            parts.append(f"<img alt='truth against guess' style='max-width:460px' "
                         f"src='data:image/png;base64,{png}'/>")
        parts.append("</div>")
        items = self._items()
        scored = sorted((i for i in items if i["error"] is not None),
                        key=lambda i: (-i["error"], i["id"]))
        parts.append("<p><b>Worst misses</b></p>" + _guess_table(scored[:5]))
        parts.append(f"<details><summary>All {len(items)} guesses, colour-coded "
                     f"(green: within $40 or 20%, orange: $80 or 40%, red: further)"
                     f"</summary>{_guess_table(items)}</details></div>")
        return "".join(parts)


def _guess_table(items: list[dict[str, Any]]) -> str:
    rows = []
    for i in items:
        colour = HTML_COLOURS.get(i["band"] or "", "#777777")
        guess = money(i["guess"]) if i["guess"] is not None else f"no answer: {i['reason']}"
        title = i["title"] or f"item {i['id']}"
        title = title if len(title) <= 70 else title[:67] + "..."
        rows.append(f"<tr style='color:{colour}'><td>{i['id']}</td>"
                    f"<td style='text-align:right'>{html.escape(guess)}</td>"
                    f"<td style='text-align:right'>{money(i['truth'])}</td>"
                    f"<td style='text-align:right'>{money(i['error'])}</td>"
                    f"<td style='text-align:left'>{html.escape(title)}</td></tr>")
    head = ("<tr><th>id</th><th>guess</th><th>truth</th><th>error</th>"
            "<th style='text-align:left'>title</th></tr>")
    return f"<table>{head}{''.join(rows)}</table>"


def _show_figures_inline() -> None:
    """In IPython, show a bare matplotlib Figure as a PNG when it ends a cell.

    The charts are drawn without pyplot (no global backend, no double display),
    so IPython may have no formatter for them until pyplot is imported; this adds one.
    """
    import sys

    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    if shell is None:
        return
    from matplotlib.figure import Figure

    from bench.reports.charts import png_bytes

    formatter = shell.display_formatter.formatters["image/png"]
    try:
        formatter.lookup_by_type(Figure)
    except KeyError:
        formatter.for_type(Figure, png_bytes)
