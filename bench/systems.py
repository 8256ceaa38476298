"""What a run's system is: its kind, whether it is a recorded run, what is known of it.

A recorded reference run (``reference:RUN``) replays another system's
published answers. Its registry kind says only "recorded"; the system it
records (a frontier API, a fine-tuned Llama, a word2vec random forest...) and
what is known of it (organisation, model and size, date, prompt, training
rows, cost per 1,000 items) come from the project's table
``datasets/meta/reference-runs.json``, keyed by run name, so the board does
not depend on the data folder's ``SOURCES.md`` being present. A recorded run
missing from the table keeps the ``reference`` kind.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bench import data, kinds
from bench.records import RunInfo

TABLE = "meta/reference-runs.json"
RECORDED_KIND = "reference"  # the registry kind of recorded runs
FREE_KINDS = ("classic", "floor")  # run on a CPU, no API: no spend when none is recorded
KNOWN = ("organisation", "model", "size", "date", "prompt", "training_rows",
         "cost_per_1k_usd", "cost_basis", "source")


@dataclass(frozen=True)
class System:
    """The kind a run is shown as, the recorded mark, and what is known of it."""

    kind: str
    recorded: bool = False
    known: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "recorded": self.recorded, **self.known}


@cache
def table(path: Path | None = None) -> dict[str, dict[str, Any]]:
    """The recorded runs' table, by run name (empty when the file is missing)."""
    path = path or data.MANIFEST_DIR / TABLE
    try:
        runs = json.loads(path.read_text(encoding="utf-8"))["runs"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {name: row for name, row in runs.items()
            if isinstance(row, dict) and row.get("kind") in kinds.KINDS}


def recorded_run(info: RunInfo) -> str | None:
    """The recorded run's name (``reference:NAME`` -> ``NAME``), None for other runs."""
    if info.kind != RECORDED_KIND or not info.predictor:
        return None
    return info.predictor.partition(":")[2] or None


def describe(info: RunInfo) -> System:
    """The system behind a stored run."""
    run = recorded_run(info)
    if run is None:
        return System(info.kind or "custom", info.kind == RECORDED_KIND)
    row = table().get(run)
    if row is None:
        return System(RECORDED_KIND, True)
    return System(str(row["kind"]), True, {k: row.get(k) for k in KNOWN})
