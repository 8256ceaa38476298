"""The result store: one directory per (test set, predictor fingerprint).

``predictions.jsonl`` gets one line per answer, appended and flushed as it
arrives: it is the resume point. The last line for an id wins (so
``--retry-errors`` appends). ``run.json`` holds the run's config and totals.
"""

from __future__ import annotations

import json
import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.digest import digest
from bench.fsutil import atomic_write_json
from bench.types import Prediction

PREDICTIONS = "predictions.jsonl"
RUN = "run.json"


def fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    return digest(fingerprint, 10)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "predictor"


@dataclass(frozen=True)
class Record:
    """One stored answer (a line of predictions.jsonl)."""

    id: int
    price: float | None
    error: str | None
    truth: float | None = None
    raw: str | None = None
    latency_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None

    @classmethod
    def of(cls, item_id: int, prediction: Prediction, truth: float | None) -> Record:
        return cls(item_id, prediction.price, prediction.error, truth, prediction.raw,
                   prediction.latency_s, prediction.input_tokens, prediction.output_tokens,
                   prediction.cost_usd)

    def line(self) -> str:
        return json.dumps({k: v for k, v in self.__dict__.items()}, ensure_ascii=False)


class RunStore:
    """Reads and appends one run directory; thread-safe appends."""

    def __init__(self, directory: Path):
        self.dir = directory
        self.predictions_path = directory / PREDICTIONS
        self.run_path = directory / RUN
        self._lock = threading.Lock()
        self._handle: Any = None

    @classmethod
    def for_run(cls, results_dir: Path, test_set: str, predictor: str,
                fingerprint: dict[str, Any]) -> RunStore:
        name = f"{slug(predictor)}-{fingerprint_hash(fingerprint)}"
        return cls(results_dir / slug(test_set) / name)

    def records(self) -> dict[int, Record]:
        """The latest record per id; a torn last line (killed mid-write) is ignored."""
        out: dict[int, Record] = {}
        if not self.predictions_path.exists():
            return out
        with self.predictions_path.open(encoding="utf-8") as handle:
            for line in handle:
                if not line.endswith("\n"):
                    break
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    continue
                fields = {k: obj.get(k) for k in Record.__dataclass_fields__}
                out[int(obj["id"])] = Record(**fields)
        return out

    def run_info(self) -> dict[str, Any]:
        if not self.run_path.exists():
            return {}
        try:
            return json.loads(self.run_path.read_text())
        except json.JSONDecodeError:
            return {}

    def write_run(self, info: dict[str, Any]) -> None:
        atomic_write_json(self.run_path, info)

    def open(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self._handle = self.predictions_path.open("a", encoding="utf-8")

    def _repair_tail(self) -> None:
        """Cut a torn last line so the next append starts on a fresh line."""
        path = self.predictions_path
        if not path.exists() or path.stat().st_size == 0:
            return
        with path.open("rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return
            data = path.read_bytes()
            handle.truncate(data.rfind(b"\n") + 1)

    def append(self, record: Record) -> None:
        with self._lock:
            self._handle.write(record.line() + "\n")
            self._handle.flush()

    def close(self) -> None:
        with self._lock:
            if self._handle is not None:
                self._handle.close()
                self._handle = None


def iter_runs(results_dir: Path) -> Iterator[RunStore]:
    """Every run directory under ``results_dir`` (``<test set>/<predictor>-<hash>``)."""
    if not results_dir.is_dir():
        return
    for run_json in sorted(results_dir.glob(f"*/*/{RUN}")):
        yield RunStore(run_json.parent)
