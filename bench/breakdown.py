"""Error broken down the ways people ask: by price band and by product category.

Items are grouped by their *true* price (the band a shopper would put them
in), never by the guess, so every predictor is cut along the same lines.
Figures are over the answered items of each group, like the headline ones.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench import metrics
from bench.data import DEFAULT_TEST, Row, TestSet, default_data_dir, load_test_set
from bench.errors import BenchError
from bench.provenance import local_path
from bench.records import RunInfo

PRICE_BANDS: tuple[tuple[str, float, float], ...] = (
    ("under $50", 0.0, 50.0),
    ("$50-200", 50.0, 200.0),
    ("$200-500", 200.0, 500.0),
    ("over $500", 500.0, math.inf),
)
UNKNOWN_CATEGORY = "(unknown)"


@dataclass(frozen=True)
class Group:
    """One slice of the test set: how many items, how many answered, MAE, hits."""

    name: str
    items: int
    answered: int
    mae: float | None
    hit_rate: float | None

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.name, "items": self.items, "answered": self.answered,
                "mae": self.mae, "hit_rate": self.hit_rate}


def price_band(truth: float) -> str:
    for name, low, high in PRICE_BANDS:
        if low <= truth < high:
            return name
    return PRICE_BANDS[0][0]  # a negative price cannot pass data loading; be total anyway


def _group(name: str, ids: list[int], truth: Mapping[int, float],
           guesses: Mapping[int, float | None]) -> Group:
    answered = [i for i in ids if guesses.get(i) is not None]
    if not answered:
        return Group(name, len(ids), 0, None, None)
    errors = [abs(float(guesses[i]) - truth[i]) for i in answered]  # type: ignore[arg-type]
    hits = sum(metrics.band(e, truth[i]) == "green" for e, i in zip(errors, answered, strict=True))
    return Group(name, len(ids), len(answered), sum(errors) / len(errors), hits / len(answered))


def by_price_band(truth: Mapping[int, float],
                  guesses: Mapping[int, float | None]) -> list[Group]:
    """Every band, in price order, even an empty one (tables keep their columns)."""
    members: dict[str, list[int]] = {name: [] for name, _, _ in PRICE_BANDS}
    for item_id, price in truth.items():
        members[price_band(price)].append(item_id)
    return [_group(name, ids, truth, guesses) for name, ids in members.items()]


def by_category(truth: Mapping[int, float], guesses: Mapping[int, float | None],
                categories: Mapping[int, str | None]) -> list[Group]:
    """Largest category first (then by name); items without one go last, ``(unknown)``."""
    members: dict[str, list[int]] = {}
    for item_id in truth:
        members.setdefault(categories.get(item_id) or UNKNOWN_CATEGORY, []).append(item_id)
    order = sorted(members, key=lambda c: (c == UNKNOWN_CATEGORY, -len(members[c]), c))
    return [_group(name, members[name], truth, guesses) for name in order]


def categories(rows: Mapping[int, Row] | None) -> dict[int, str | None] | None:
    """Each item's category, or None when the rows are not at hand or carry none."""
    if not rows or not any(r.category for r in rows.values()):
        return None
    return {i: r.category for i, r in rows.items()}


def label(category: str) -> str:
    """``Tools_and_Home_Improvement`` -> ``Tools and Home Improvement``."""
    return category.replace("_", " ")


# -- the test rows behind a run (titles, categories) ---------------------------


class TestRows:
    """Finds the rows a run was scored on (titles, categories), loading each source once.

    Never downloads: the fixed test set comes from ``data_dir`` (or
    ``$BENCH_DATA_DIR``, or the local cache), else from the folder the run
    recorded as its source; a ``--test`` file from its recorded path. Rows
    whose fingerprint differs from the run's are not used. A ``data_dir``
    given explicitly that does not exist is an error (exit 2), not a fallback.
    """

    def __init__(self, data_dir: Path | None = None):
        if data_dir is not None:
            default_data_dir(data_dir)  # raises BenchError for a missing folder
        self.data_dir = data_dir
        self._loaded: dict[tuple[str | None, str | None], TestSet | None] = {}

    def for_run(self, info: RunInfo) -> dict[int, Row] | None:
        """Rows by id, or None when they cannot be found here."""
        name, wanted = info.test_set, info.data_fingerprint
        source = info.data_source or ""
        local = local_path(source) if source and "://" not in source else None
        candidates: list[tuple[str | None, str | None]] = []
        if name == DEFAULT_TEST:
            candidates.append((str(self.data_dir) if self.data_dir else None, None))
            if local is not None:
                candidates.append((str(local.parent), None))
        elif local is not None:
            candidates.append((None, str(local)))
        for key in candidates:
            if key not in self._loaded:
                self._loaded[key] = _load(*key)
            test_set = self._loaded[key]
            if test_set is not None and test_set.name == name and test_set.known_as(wanted):
                return {r.id: r for r in test_set.rows}
        return None


def _load(directory: str | None, test_file: str | None) -> TestSet | None:
    if test_file is not None and not Path(test_file).is_file():
        return None
    if directory is not None and not Path(directory).is_dir():
        return None
    try:
        return load_test_set(directory, test_file, download=False)
    except BenchError:
        return None
