"""The leaderboard: derived from stored predictions only, written atomically.

``leaderboard.json`` rows keep the keys other tools read (predictor, test_set,
answered, total, mae, mae_ci95, rmsle, hit_rate); the rest (rank, the paired
comparison with the leader, break-downs, chart links) are additions. Nothing
in the files depends on the clock, so the same runs give the same bytes.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import breakdown, metrics
from bench.data import DEFAULT_TEST
from bench.errors import BenchError
from bench.fsutil import atomic_write_json, atomic_write_text
from bench.store import Record, RunStore, iter_runs

if TYPE_CHECKING:
    from bench.charts import Drawn, PredictorCharts

MARKDOWN = "LEADERBOARD.md"
JSON = "leaderboard.json"
CSV = "leaderboard.csv"
README_START = "<!-- leaderboard:start -->"
README_END = "<!-- leaderboard:end -->"
KIND_LABELS = {"person": "person", "classic": "classic", "frontier": "frontier API",
               "local-llm": "local LLM", "reference": "recorded reference",
               "custom": "custom"}
NESTED = ("mae_ci95", "vs_leader", "by_price_band", "by_category", "charts")


@dataclass
class Entry:
    """The latest run of one predictor on one test set, scored."""

    predictor: str
    test_set: str
    kind: str
    store: RunStore
    info: dict[str, Any]
    records: dict[int, Record]
    scores: metrics.Scores
    rank: int | None = None
    leader: str | None = None  # the test set's best predictor, when this is not it
    vs_leader: metrics.Paired | None = None  # this minus the leader, on shared items
    categories: dict[int, str | None] | None = None  # None: the test rows are not at hand

    @property
    def truth(self) -> dict[int, float]:
        return {i: r.truth for i, r in self.records.items() if r.truth is not None}

    @property
    def answers(self) -> dict[int, float | None]:
        return {i: r.price for i, r in self.records.items()}

    @property
    def kind_label(self) -> str:
        return KIND_LABELS.get(self.kind, self.kind)

    @property
    def tied_with_leader(self) -> bool | None:
        """None for the leader itself (and for runs with no answer)."""
        return None if self.vs_leader is None else self.vs_leader.tied

    @property
    def seconds_per_item(self) -> float | None:
        timings = self.info.get("timings", {})
        items = timings.get("items_last_run") or 0
        spent = timings.get("last_predict_s", timings.get("last_wall_s", 0))
        return spent / items if items else None

    def price_bands(self) -> list[breakdown.Group]:
        return breakdown.by_price_band(self.truth, self.answers)

    def category_groups(self) -> list[breakdown.Group] | None:
        if self.categories is None:
            return None
        return breakdown.by_category(self.truth, self.answers, self.categories)

    def row(self) -> dict[str, Any]:
        s = self.scores
        totals = self.info.get("totals", {})
        groups = self.category_groups()
        vs = None
        if self.vs_leader is not None:
            p = self.vs_leader
            vs = {"leader": self.leader, "items": p.items, "diff": p.diff,
                  "diff_ci95": list(p.diff_ci95) if p.diff_ci95 else None,
                  "wins": p.a_wins, "leader_wins": p.b_wins, "ties": p.ties, "tied": p.tied}
        return {
            "predictor": self.predictor, "test_set": self.test_set, "kind": self.kind,
            "answered": s.answered, "total": s.total, "mae": s.mae,
            "mae_ci95": list(s.mae_ci95) if s.mae_ci95 else None, "rmsle": s.rmsle,
            "hit_rate": s.hit_rate, "orange_rate": s.orange_rate,
            "median_error": s.median_error, "coverage": s.coverage,
            "cost_usd": totals.get("cost_usd"), "seconds_per_item": self.seconds_per_item,
            "input_tokens": totals.get("input_tokens"),
            "output_tokens": totals.get("output_tokens"),
            "run_dir": str(self.store.dir),
            "rank": self.rank, "kind_label": self.kind_label,
            "tied_with_leader": self.tied_with_leader, "vs_leader": vs,
            "by_price_band": [g.as_dict() for g in self.price_bands()],
            "by_category": [g.as_dict() for g in groups] if groups is not None else None,
        }


def collect(results_dir: Path, test_set: str | None = None) -> list[Entry]:
    """One entry per (test set, predictor): its most recently updated run, ranked.

    A run stopped with ``--limit`` is scored on the items it answered for; its
    ``total`` is the test set size recorded in run.json, so coverage shows it.
    Each entry after the first of its test set is compared with that leader.
    """
    latest: dict[tuple[str, str], tuple[str, RunStore, dict[str, Any]]] = {}
    for store in iter_runs(results_dir):
        info = store.run_info()
        name, ts = info.get("predictor"), info.get("test_set")
        if not name or not ts or (test_set and ts != test_set):
            continue
        stamp = info.get("finished_at") or info.get("updated_at") or info.get("started_at", "")
        key = (ts, name)
        if key not in latest or stamp > latest[key][0]:
            latest[key] = (stamp, store, info)
    entries = []
    for (ts, name), (_, store, info) in latest.items():
        records = store.records()
        truth = {i: r.truth for i, r in records.items() if r.truth is not None}
        total = int(info.get("items") or len(truth))
        answers = {i: r.price for i, r in records.items()}
        scores = metrics.score(truth, answers)
        scores = metrics.Scores(**{**scores.__dict__, "total": total,
                                   "coverage": scores.answered / total if total else 0.0})
        entries.append(Entry(name, ts, info.get("kind", "custom"), store, info, records, scores))
    entries = sort_entries(entries)
    rank_and_compare(entries)
    return entries


def sort_entries(entries: list[Entry]) -> list[Entry]:
    """The fixed benchmark first, then other test sets; best MAE first within each."""
    return sorted(entries, key=lambda e: (e.test_set != DEFAULT_TEST, e.test_set,
                                          e.scores.mae is None, e.scores.mae or 0.0,
                                          e.predictor))


def rank_and_compare(entries: Sequence[Entry]) -> None:
    """Rank within each test set and pair every scored entry with its leader."""
    for ts in dict.fromkeys(e.test_set for e in entries):
        group = [e for e in entries if e.test_set == ts]
        leader = next((e for e in group if e.scores.mae is not None), None)
        for rank, e in enumerate(group, start=1):
            e.rank = rank
            if leader is None or e is leader or e.scores.mae is None:
                continue
            e.leader = leader.predictor
            e.vs_leader = metrics.paired({**leader.truth, **e.truth}, e.answers, leader.answers)


def attach_categories(entries: Sequence[Entry], data_dir: Path | None) -> list[str]:
    """Give entries the categories of their test rows, where the rows can be found.

    Returns the test sets left without categories (their tables show price bands only).
    """
    finder = breakdown.TestRows(data_dir)
    for e in entries:
        e.categories = breakdown.categories(finder.for_run(e.info))
    return [ts for ts in dict.fromkeys(e.test_set for e in entries)
            if all(e.categories is None for e in entries if e.test_set == ts)]


# -- formatting ----------------------------------------------------------------


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def signed_money(value: float) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):,.2f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cost(value: float | None) -> str:
    """API runs cost cents: keep four decimals under a dollar."""
    if value is None:
        return "-"
    return f"${value:,.4f}" if 0 < value < 1 else money(value)


def per_item(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "<0.01s" if seconds < 0.01 else f"{seconds:,.2f}s"


def paired_diff(p: metrics.Paired) -> str | None:
    """``+$12.34 [+$5.00, +$20.00]``: the paired difference and its 95% interval."""
    if p.diff is None or p.diff_ci95 is None:
        return None
    lo, hi = p.diff_ci95
    return f"{signed_money(p.diff)} [{signed_money(lo)}, {signed_money(hi)}]"


def versus(e: Entry) -> str:
    """The paired difference with the leader, ``tied`` when its interval includes 0."""
    p = e.vs_leader
    if e.leader is None or p is None:
        return "leader" if e.scores.mae is not None else "-"
    text = paired_diff(p)
    if text is None:
        return "no shared items"
    return f"{text} **tied**" if p.tied else text


Links = Mapping[tuple[str, str], "PredictorCharts"]


def _link(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def ranking_table(entries: Sequence[Entry], base: Path, charts: Links | None = None) -> list[str]:
    """One test set's ranked table; chart links are relative to ``base``."""
    with_charts = bool(charts)
    header = ("| rank | predictor | kind | answered | MAE | 95% CI | vs #1 (95% CI) | RMSLE "
              "| hits | cost | time/item |")
    rule = "| ---: | --- | --- | ---: | ---: | --- | --- | ---: | ---: | ---: | ---: |"
    if with_charts:
        header, rule = header + " charts |", rule + " --- |"
    lines = [header, rule]
    for e in entries:
        s = e.scores
        ci = f"[{money(s.mae_ci95[0])}, {money(s.mae_ci95[1])}]" if s.mae_ci95 else "-"
        line = (f"| {e.rank} | `{e.predictor}` | {e.kind_label} | {s.answered}/{s.total} | "
                f"{money(s.mae)} | {ci} | {versus(e)} | {number(s.rmsle)} | "
                f"{percent(s.hit_rate)} | {cost(e.info.get('totals', {}).get('cost_usd'))} | "
                f"{per_item(e.seconds_per_item)} |")
        if with_charts:
            paths = (charts or {}).get((e.test_set, e.predictor))
            line += (f" [scatter]({_link(paths.scatter, base)}) · "
                     f"[running]({_link(paths.running, base)}) |" if paths else " - |")
        lines.append(line)
    return lines


def _group_table(entries: Sequence[Entry], groups: Sequence[list[breakdown.Group] | None],
                 title: str, label: Any = str) -> list[str]:
    names = list(dict.fromkeys(g.name for gs in groups if gs for g in gs))
    sizes = {n: max(g.items for gs in groups if gs for g in gs if g.name == n) for n in names}
    lines = [f"| predictor | {' | '.join(f'{label(n)} ({sizes[n]})' for n in names)} |",
             f"| --- |{' ---: |' * len(names)}"]
    for e, gs in zip(entries, groups, strict=True):
        if not gs:
            continue
        by_name = {g.name: g for g in gs}
        cells = [money(by_name[n].mae) if n in by_name else "-" for n in names]
        lines.append(f"| `{e.predictor}` | {' | '.join(cells)} |")
    return [title, "", *lines, ""]


def breakdown_tables(entries: Sequence[Entry]) -> list[str]:
    scored = [e for e in entries if e.scores.mae is not None]
    if not scored:
        return []
    lines = _group_table(scored, [e.price_bands() for e in scored],
                         "### Mean absolute error by true price (items in brackets)")
    categories = [e.category_groups() for e in scored]
    if any(categories):
        lines += _group_table(scored, categories,
                              "### Mean absolute error by category (items in brackets)",
                              breakdown.label)
    return lines


INTRO = ("Mean absolute error in dollars (lower is better), over the items each predictor "
         "answered; 95% bootstrap interval in brackets. *vs #1*: the "
         "paired difference in mean absolute error with the leader on the items both "
         "answered, with its 95% paired bootstrap interval; **tied** when that interval "
         "includes zero (not significantly worse than #1). Hits: error under $40 or under "
         "20% of the price. Generated by `bench leaderboard` from the stored predictions.")


def markdown(entries: list[Entry], drawn: Drawn | None = None,
             base: Path | None = None) -> str:
    """The full page; chart paths in ``drawn`` are linked relative to ``base``."""
    base = base or Path(".")
    lines = ["# Leaderboard", "", INTRO, ""]
    for ts in dict.fromkeys(e.test_set for e in entries):
        group = [e for e in entries if e.test_set == ts]
        lines += [f"## {ts}", ""]
        if drawn and ts in drawn.mae:
            lines += [f"![mean absolute error by predictor, {ts}]"
                      f"({_link(drawn.mae[ts], base)})", ""]
        lines += ranking_table(group, base, drawn.predictors if drawn else None)
        lines.append("")
        lines += breakdown_tables(group)
    return "\n".join(lines)


def readme_block(entries: list[Entry], results_dir: Path, readme: Path,
                 drawn: Drawn | None = None) -> str:
    """What goes between the README markers: the fixed test set's table, linked."""
    base = readme.resolve().parent
    ts = DEFAULT_TEST if any(e.test_set == DEFAULT_TEST for e in entries) \
        else entries[0].test_set
    group = [e for e in entries if e.test_set == ts]
    lines = ["<!-- generated by `bench leaderboard --update-readme`: edits here are "
             "overwritten -->", ""]
    if drawn and ts in drawn.mae:
        lines += [f"![mean absolute error by predictor, {ts}]"
                  f"({_link(drawn.mae[ts].resolve(), base)})", ""]
    lines += ranking_table(group, base, {k: _resolved(v) for k, v in drawn.predictors.items()}
                           if drawn else None)
    full = _link((results_dir / MARKDOWN).resolve(), base)
    lines += ["", f"Test set `{ts}`. MAE: mean absolute error in dollars over the items "
                  "answered, 95% bootstrap interval; vs #1: paired difference with the leader, "
                  "**tied** when its interval includes zero. Full leaderboard with break-downs "
                  f"by price band and category: [{full}]({full})."]
    return "\n".join(lines)


def _resolved(paths: PredictorCharts) -> PredictorCharts:
    return type(paths)(paths.scatter.resolve(), paths.running.resolve())


def _split_readme(readme: Path) -> tuple[str, str, str]:
    """(text before the block, the block, text after); BenchError unless one marker pair."""
    try:
        text = readme.read_bytes().decode("utf-8")  # bytes: keep CRLF line ends as they are
    except FileNotFoundError:
        raise BenchError("README not found", readme) from None
    except UnicodeDecodeError:
        raise BenchError("README is not UTF-8 text", readme) from None
    starts, ends = text.count(README_START), text.count(README_END)
    if starts != 1 or ends != 1:
        raise BenchError(f"needs exactly one {README_START} and one {README_END} marker "
                         f"(found {starts} and {ends})", readme)
    head, rest = text.split(README_START)
    if README_END in head:
        raise BenchError(f"{README_END} comes before {README_START}", readme)
    middle, tail = rest.split(README_END)
    return head, middle, tail


def update_readme(readme: Path, block: str) -> bool:
    """Replace only what lies between the markers; True when the file changed.

    Everything outside the markers keeps its bytes, line ends and file mode.
    """
    head, middle, tail = _split_readme(readme)
    newline = "\r\n" if "\r\n" in head + middle + tail else "\n"
    inner = newline + block.replace("\n", newline) + newline
    if middle == inner:
        return False
    data = f"{head}{README_START}{inner}{README_END}{tail}".encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{readme.name}.", dir=readme.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        shutil.copymode(readme, tmp)
        os.replace(tmp, readme)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return True


def _csv_row(row: dict[str, Any]) -> dict[str, Any]:
    """Flat columns only: intervals split, the leader comparison and bands spread out."""
    flat = {k: v for k, v in row.items() if k not in NESTED}
    ci = row.get("mae_ci95") or [None, None]
    flat.update(mae_ci95_lo=ci[0], mae_ci95_hi=ci[1])
    vs = row.get("vs_leader") or {}
    diff_ci = vs.get("diff_ci95") or [None, None]
    flat.update(vs_leader_diff=vs.get("diff"), vs_leader_lo=diff_ci[0],
                vs_leader_hi=diff_ci[1])
    for group in row.get("by_price_band") or []:
        flat[f"mae_{_column(group['group'])}"] = group["mae"]
    return flat


def _column(band: str) -> str:
    """``under $50`` -> ``under_50``, ``$50-200`` -> ``50_200``."""
    return re.sub(r"[^a-z0-9]+", "_", band.lower()).strip("_")


def write(results_dir: Path, entries: list[Entry], drawn: Drawn | None = None) -> list[Path]:
    """LEADERBOARD.md, leaderboard.json and leaderboard.csv in ``results_dir``."""
    rows = [e.row() for e in entries]
    if drawn:
        for row, e in zip(rows, entries, strict=True):
            paths = drawn.predictors.get((e.test_set, e.predictor))
            row["charts"] = ({"scatter": _link(paths.scatter, results_dir),
                              "running": _link(paths.running, results_dir)} if paths else None)
    md_path, json_path, csv_path = (results_dir / n for n in (MARKDOWN, JSON, CSV))
    atomic_write_text(md_path, markdown(entries, drawn, results_dir))
    document: dict[str, Any] = {"rows": rows}
    if drawn:
        document["charts"] = {ts: {"mae": _link(p, results_dir)} for ts, p in drawn.mae.items()}
    atomic_write_json(json_path, document)
    flat = [_csv_row(r) for r in rows]
    columns = list(dict.fromkeys(k for r in flat for k in r)) or ["predictor"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write_text(csv_path, buffer.getvalue())
    return [md_path, json_path, csv_path]



@dataclass
class Published:
    """What ``publish`` did, for the CLI to report."""

    entries: list[Entry]
    files: list[Path]
    drawn: Drawn | None
    without_categories: list[str]
    readme_changed: bool | None = None  # None: no README asked for


def publish(results_dir: Path, *, data_dir: Path | None = None, charts: bool = True,
            readme: Path | None = None, workers: int | None = 1) -> Published:
    """Everything ``bench leaderboard`` writes: files, charts, and the README block.

    ``workers``: processes drawing charts (None: automatic, see ``charts.draw_all``).
    """
    if readme is not None:
        _split_readme(readme)  # refuse before writing anything
    entries = collect(results_dir)
    if not entries:
        raise BenchError("no stored runs: run `bench run all` first", results_dir)
    missing = attach_categories(entries, data_dir)
    drawn = None
    if charts:
        from bench import charts as drawing

        drawn = drawing.draw_all(results_dir, entries, workers=workers)
    files = write(results_dir, entries, drawn)
    out = Published(entries, files, drawn, missing)
    if readme is not None:
        out.readme_changed = update_readme(readme,
                                           readme_block(entries, results_dir, readme, drawn))
    return out
