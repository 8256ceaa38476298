"""Where the leaderboard's charts live: file paths only, nothing drawn.

Writers link these paths and ``bench.reports.charts`` draws into them; both
read the layout from here, so neither needs the other. File names come from
``escape.file_stem``: no two predictors (or test sets) share one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bench.escape import file_stem

CHARTS_DIR = "charts"


@dataclass(frozen=True)
class PredictorCharts:
    scatter: Path
    running: Path


@dataclass
class Drawn:
    """What one ``draw_all`` wrote: chart paths by (test set, predictor), and counts."""

    predictors: dict[tuple[str, str], PredictorCharts]
    mae: dict[str, Path]
    drawn: int = 0
    skipped: int = 0
    removed: int = 0
    cost: dict[str, Path] = field(default_factory=dict)  # the cost chart per test set


def chart_dir(results_dir: Path, test_set: str) -> Path:
    return results_dir / CHARTS_DIR / file_stem(test_set)


def predictor_charts(results_dir: Path, test_set: str, predictor: str) -> PredictorCharts:
    base = chart_dir(results_dir, test_set) / file_stem(predictor)
    return PredictorCharts(base.with_name(base.name + "-scatter.png"),
                           base.with_name(base.name + "-running.png"))


def mae_chart(results_dir: Path, test_set: str) -> Path:
    return chart_dir(results_dir, test_set) / "mae.png"


def cost_chart(results_dir: Path, test_set: str) -> Path:
    """Error against cost and time (``bench.reports.cost``)."""
    return chart_dir(results_dir, test_set) / "cost.png"
