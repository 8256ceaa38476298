"""Terminal reports: ``bench show NAME`` (one predictor's worst misses and best
hits, coloured like the classic tester) and ``bench compare A B`` (paired).

Both read the stored runs only; titles and categories come from the test rows
when they can be found here (``bench.breakdown.TestRows``), else items are
named by id. Colour only on a terminal, never with ``NO_COLOR`` set.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import IO

from bench import breakdown, metrics, standing, tables
from bench.data import DEFAULT_TEST, Row
from bench.errors import BenchError, did_you_mean
from bench.escape import terminal
from bench.reports.collect import Entry
from bench.reports.format import money, number, p_value, paired_diff, percent, signed_money

ANSI = {"green": "\033[92m", "orange": "\033[93m", "red": "\033[91m"}
RESET = "\033[0m"
TITLE_WIDTH = 70


def colour_wanted(mode: str, stream: IO[str]) -> bool:
    """``always`` / ``never``, or ``auto``: a TTY and no ``NO_COLOR`` (https://no-color.org)."""
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def pick(entries: Sequence[Entry], name: str, test_set: str | None,
         params: dict[str, str] | None = None) -> Entry:
    """The entry for ``name`` (with these parameters, as ``bench run NAME --param
    K=V`` stored it); on several test sets, the fixed benchmark's, else ask."""
    if params:
        entries = _with_params(entries, name, params)
    found = [e for e in entries if e.predictor == name
             and (test_set is None or e.test_set == test_set)]
    if not found:  # the plain name of a predictor whose rows are named by their parameters
        found = [e for e in entries if e.name == name
                 and (test_set is None or e.test_set == test_set)]
        if len({e.test_set for e in found}) == 1 and len(found) > 1:
            labels = ", ".join(repr(e.predictor) for e in found)
            raise BenchError(f"{name!r} ran with different parameters: name one of {labels}")
    if not found:
        names = sorted({e.predictor for e in entries
                        if test_set is None or e.test_set == test_set})
        hint = did_you_mean(name, names)
        where = f" on test set {test_set!r}" if test_set else ""
        raise BenchError(f"no stored run for {name!r}{where} ({hint})")
    if len(found) == 1:
        return found[0]
    default = [e for e in found if e.test_set == DEFAULT_TEST]
    if default:
        return default[0]
    sets = ", ".join(sorted(e.test_set for e in found))
    raise BenchError(f"{name!r} ran on several test sets ({sets}): pass --test-set")


def _with_params(entries: Sequence[Entry], name: str, params: dict[str, str]) -> list[Entry]:
    mine = [e for e in entries if name in (e.name, e.predictor)]
    found = [e for e in mine
             if all(_same(e.info.params.get(k) if e.info.params else None, v)
                    for k, v in params.items())]
    if not found:
        asked = ", ".join(f"{k}={v}" for k, v in params.items())
        have = ", ".join(sorted(repr(e.predictor) for e in mine)) or "none"
        raise BenchError(f"no stored run of {name!r} with {asked} (runs of {name!r}: {have})")
    return found


def _same(stored: object, asked: str) -> bool:
    """A stored parameter equals the one typed (``6`` is ``6.0``)."""
    if stored is None:
        return False
    if str(stored) == asked:
        return True
    try:
        return float(str(stored)) == float(asked)
    except ValueError:
        return False


def shared_test_set(entries: Sequence[Entry], a: str, b: str, test_set: str | None) -> str:
    """The test set both ran on: the one asked for, the fixed benchmark, or the only one."""
    if test_set is not None:
        return test_set
    for name in (a, b):
        pick(entries, name, None)  # a clear error for an unknown name
    both = ({e.test_set for e in entries if e.predictor == a}
            & {e.test_set for e in entries if e.predictor == b})
    if DEFAULT_TEST in both or not both:
        return DEFAULT_TEST
    if len(both) == 1:
        return next(iter(both))
    raise BenchError(f"{a} and {b} both ran on several test sets ({', '.join(sorted(both))}): "
                     "pass --test-set")


# -- bench show -----------------------------------------------------------------


def _title(item_id: int, rows: dict[int, Row] | None) -> str:
    row = rows.get(item_id) if rows else None
    if row is None:
        return f"item {item_id}"
    title = terminal(row.title or row.product().title)
    return title if len(title) <= TITLE_WIDTH else title[: TITLE_WIDTH - 3] + "..."


def item_line(number: int, item_id: int, guess: float, truth: float,
              rows: dict[int, Row] | None, colour: bool) -> str:
    error = abs(guess - truth)
    line = (f"{number:>3}: guess {money(guess):>10}  truth {money(truth):>9}  "
            f"error {money(error):>10}  #{item_id:<4} {_title(item_id, rows)}")
    return f"{ANSI[metrics.band(error, truth)]}{line}{RESET}" if colour else line


def _groups_table(groups: Sequence[breakdown.Group], label: str) -> str:
    return tables.render([[breakdown.label(g.name), str(g.items), str(g.answered),
                           money(g.mae), percent(g.hit_rate)] for g in groups],
                         [label, "items", "answered", "MAE", "hits"])


def report(entry: Entry, rows: dict[int, Row] | None, count: int = 10,
           colour: bool = False, rank_of: int | None = None) -> str:
    """The whole ``bench show`` text."""
    s = entry.scores
    out = [terminal(f"{entry.predictor} on {entry.test_set} ({entry.kind_label})")]
    if entry.info.params:  # in full: a row's name shows them shortened
        out.append(terminal("parameters: " + ", ".join(f"{k}={v}"
                                                       for k, v in entry.info.params.items())))
    if entry.status != standing.COMPLETE:
        out.append(f"{entry.status.upper()} run ({standing.MEANING[entry.status]}; "
                   f"asked {len(entry.records)}/{entry.scores.total} items): "
                   "its figures cover only what it was asked")
    if s.mae is None:
        out.append(f"no answers ({s.answered}/{s.total})")
        return "\n".join(out)
    ci = f" (95% CI {money(s.mae_ci95[0])}-{money(s.mae_ci95[1])})" if s.mae_ci95 else ""
    out.append(f"MAE {money(s.mae)}{ci}, RMSLE {number(s.rmsle)}, hits {percent(s.hit_rate)}, "
               f"orange {percent(s.orange_rate)}, {s.answered}/{s.total} answered")
    place = (f"rank {entry.rank}" + (f" of {rank_of}" if rank_of else "")
             if entry.rank is not None else f"not ranked: {terminal(entry.not_ranked or '')}")
    p = entry.vs_leader
    diff = paired_diff(p) if p is not None else None
    if p is not None and diff is not None:
        place += (f"; vs #1 {terminal(entry.leader)}: {diff}" + (", tied" if p.tied else "")
                  + f", p {p_value(p.p_value)}"
                  + (f", Holm: {entry.verdict}" if entry.verdict else ""))
    out.append(place)
    scored = sorted((abs(r.price - r.truth), i, r.price, r.truth)
                    for i, r in entry.records.items()
                    if r.price is not None and r.truth is not None)
    worst = sorted(scored, key=lambda x: (-x[0], x[1]))[:count]
    best = scored[:count]
    for heading, picked in ((f"Worst {len(worst)} misses", worst),
                            (f"Best {len(best)} hits", best)):
        out += ["", heading]
        out += [item_line(n, i, g, t, rows, colour)
                for n, (_, i, g, t) in enumerate(picked, start=1)]
    unanswered = sorted(i for i, r in entry.records.items() if r.price is None)
    missing = s.total - len(entry.records)
    if unanswered or missing > 0:
        why = {entry.records[i].error for i in unanswered} - {None}
        shown = ", ".join(f"#{i}" for i in unanswered[:10]) + (" ..." if len(unanswered) > 10
                                                                else "")
        out += ["", f"no answer: {len(unanswered)} item(s) {shown}".rstrip()
                + (f" ({terminal('; '.join(sorted(why))[:200])})" if why else "")
                + (f"; {missing} never asked" if missing > 0 else "")]
    out += details_lines(entry.info.details)
    out += ["", "By true price", _groups_table(entry.price_bands(), "price")]
    groups = entry.category_groups()
    if groups is not None:
        out += ["", "By category", _groups_table(groups, "category")]
    elif rows is None:
        out += ["", "(titles and categories: test rows not found here; pass --data-dir)"]
    return "\n".join(out)


def details_lines(details: object) -> list[str]:
    """The ``details`` a predictor recorded in run.json (an ensemble's weights), as
    indented ``key: value`` lines; nested mappings indent further."""
    if not isinstance(details, dict) or not details:
        return []

    def walk(obj: dict, depth: int) -> list[str]:
        lines = []
        for key, value in obj.items():
            pad = "  " * depth
            if isinstance(value, dict):
                lines += [f"{pad}{terminal(key)}:", *walk(value, depth + 1)]
            elif isinstance(value, list) and len(value) > 10:
                lines.append(f"{pad}{terminal(key)}: [{len(value)} items]")
            else:
                shown = f"{value:.4g}" if isinstance(value, float) else str(value)
                lines.append(f"{pad}{terminal(key)}: {terminal(shown[:200])}")
        return lines

    return ["", "Details (run.json)", *walk(details, 1)]


# -- bench compare --------------------------------------------------------------


def _p(value: float | None) -> str:
    """``= 0.012`` or ``< 0.001``."""
    text = p_value(value)
    return f"< {text[1:]}" if text.startswith("<") else f"= {text}"


def comparison(a: Entry, b: Entry, *, seed: int = metrics.BOOTSTRAP_SEED) -> str:
    """A against B on the items both answered: the paired difference and win shares."""
    truth = {**a.truth, **b.truth}
    p = metrics.paired(truth, a.answers, b.answers, seed=seed)
    if p.items == 0 or p.diff is None or p.diff_ci95 is None:
        raise BenchError(f"{a.predictor} and {b.predictor} answered no item in common")
    shared = {i: truth[i] for i in truth
              if a.answers.get(i) is not None and b.answers.get(i) is not None}
    hits = [metrics.score(shared, e.answers).hit_rate for e in (a, b)]
    lo, hi = p.diff_ci95
    name_a, name_b = terminal(a.predictor), terminal(b.predictor)
    width = max(len(name_a), len(name_b))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        verdict = "no verdict: the interval is not a number (an answer too large to score?)"
    elif p.tied:
        verdict = "tied: the interval includes 0, no significant difference"
    else:
        better = name_a if p.diff < 0 else name_b
        verdict = f"{better} is better: the interval excludes 0"
    only_a = sum(1 for i in truth if a.answers.get(i) is not None and b.answers.get(i) is None)
    only_b = sum(1 for i in truth if b.answers.get(i) is not None and a.answers.get(i) is None)
    lines = [
        f"{name_a} (A) vs {name_b} (B) on {terminal(a.test_set)}: "
        f"{p.items} items both answered",
        f"  A {name_a:<{width}}  MAE {money(p.mae_a):>9}  hits {percent(hits[0]):>6}",
        f"  B {name_b:<{width}}  MAE {money(p.mae_b):>9}  hits {percent(hits[1]):>6}",
        f"  A - B: {signed_money(p.diff)} per item, 95% paired bootstrap interval "
        f"[{signed_money(lo)}, {signed_money(hi)}]",
        f"  {verdict}",
        f"  paired sign-flip test of A - B = 0: p {_p(p.p_value)} (one comparison: "
        "no correction)",
        f"  closer to the truth: A on {p.a_wins:.1%} of items, B on {p.b_wins:.1%}, "
        f"equal on {p.ties:.1%}",
    ]
    if only_a or only_b:
        lines.append(f"  not compared: {only_a} answered by A only, {only_b} by B only")
    return "\n".join(lines)
