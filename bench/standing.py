"""Where a stored run stands: its status, and whether the board may rank it.

The one definition every view uses (``bench leaderboard``, ``show``, the site,
``bench.leaderboard()``):

- ``complete``: every item of the test set was asked and the run finished;
- ``partial``: the run finished, but was asked only part of the test set
  (``--limit N``);
- ``incomplete``: the run did not finish (still running, interrupted, killed),
  or fewer items are stored than it was asked;
- ``failed``: the run stopped because its items kept failing.

"Asked" counts the stored items, answered or not. Only a ``complete`` run
that answered at least a minimum share of the test set (``MIN_ANSWERED``,
settable) is ranked; every other run is listed as not ranked, with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.errors import BenchError
from bench.records import RunInfo

COMPLETE, PARTIAL, INCOMPLETE, FAILED = "complete", "partial", "incomplete", "failed"
STATUSES = (COMPLETE, PARTIAL, INCOMPLETE, FAILED)
MIN_ANSWERED = 0.95  # share of the test set a run must answer to be ranked

MEANING = {
    PARTIAL: "asked only part of the test set (--limit)",
    INCOMPLETE: "killed, interrupted or still running (fewer items stored than asked)",
    FAILED: "stopped because its items kept failing",
}


def run_status(info: RunInfo, asked: int, total: int) -> str:
    """``info``'s run with ``asked`` items stored, of a test set of ``total``."""
    if info.status == FAILED:
        return FAILED
    if info.status in ("running", "interrupted"):
        return INCOMPLETE
    if asked >= total:
        return COMPLETE
    if info.limit is not None and info.limit < total and asked >= info.limit:
        return PARTIAL
    return INCOMPLETE


@dataclass(frozen=True)
class Standing:
    """A run's status and, when it is not ranked, why."""

    status: str
    not_ranked: str | None = None  # None: ranked

    @property
    def ranked(self) -> bool:
        return self.not_ranked is None


def standing(info: RunInfo, asked: int, answered: int, total: int,
             min_answered: float = MIN_ANSWERED) -> Standing:
    """The status, and the reason the run is not ranked (None when it is)."""
    status = run_status(info, asked, total)
    if status == PARTIAL:
        why = f"--limit {info.limit}: asked {asked}/{total}"
    elif status == INCOMPLETE:
        why = f"incomplete: asked {asked}/{total}"
    elif status == FAILED:
        why = f"failed: {_short(info.reason)}" if info.reason else "failed"
    elif total <= 0 or answered < min_answered * total:
        why = f"answered {answered}/{total} (under {share(min_answered)})"
    else:
        why = None
    return Standing(status, why)


def _short(text: str, width: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[: width - 1] + "…"


def share(value: float) -> str:
    """``0.95`` -> ``95%`` (as the rule is written)."""
    return f"{value * 100:g}%"


def check_min_answered(value: float) -> float:
    """The minimum share, checked: a number from 0 to 1 (BenchError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        raise BenchError(f"the minimum answered share must be a number from 0 to 1 "
                         f"(0.95 = 95%), not {value!r}")
    return float(value)
