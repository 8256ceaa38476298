"""The result store: one directory per (test set, predictor fingerprint).

``predictions.jsonl`` gets one line per answer, appended and flushed as it
arrives: it is the resume point. The last line for an id wins (so
``--retry-errors`` appends). ``run.json`` holds the run's config and totals
(``bench.records.RunInfo``).
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from bench.digest import digest
from bench.fsutil import no_links
from bench.lock import LOCK_FILE
from bench.records import RunInfo, read_run, run_problem, write_run
from bench.types import MAX_PRICE, Prediction, price_problem

PREDICTIONS = "predictions.jsonl"
RUN = "run.json"


def fingerprint_hash(fingerprint: dict[str, Any]) -> str:
    return digest(fingerprint, 10)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "predictor"


@dataclass(frozen=True)
class Record:
    """One stored answer (a line of predictions.jsonl): the item, its truth, the answer.

    The line is flat, ``id``, the Prediction's fields, then ``truth``, in the
    order the format has always had; ``served_by`` (added later) only when
    set, so other runs' lines are as they were, and a line without it reads.
    """

    id: int
    truth: float | None
    prediction: Prediction

    @property
    def price(self) -> float | None:
        return self.prediction.price

    @property
    def error(self) -> str | None:
        return self.prediction.error

    @property
    def raw(self) -> str | None:
        return self.prediction.raw

    def line(self) -> str:
        p = self.prediction
        line = {"id": self.id, "price": p.price, "error": p.error,
                "truth": self.truth, "raw": p.raw, "latency_s": p.latency_s,
                "input_tokens": p.input_tokens, "output_tokens": p.output_tokens,
                "cost_usd": p.cost_usd}
        if p.served_by is not None:
            line["served_by"] = p.served_by
        return json.dumps(line, ensure_ascii=False)

    @classmethod
    def from_line(cls, obj: Any) -> Record:
        """The record a parsed line holds; BadLine (saying what is wrong) when it is
        not shaped like one (not an object, no integer id, a price that is not a
        finite non-negative number, ...)."""
        if not isinstance(obj, dict):
            raise BadLine(f"expected a JSON object, found {_kind(obj)}")
        if "id" not in obj:
            raise BadLine("no \"id\"")
        item = obj["id"]
        if isinstance(item, float) and item.is_integer():
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int):
            raise BadLine(f"\"id\" is {_kind(item)}, expected an integer")
        for key, types in FIELD_TYPES.items():
            value = obj.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
                raise BadLine(f"\"{key}\" is {_kind(value)}, expected "
                              f"{'text' if types is str else 'a number'} or null")
        for key in ("price", "truth"):
            value = obj.get(key)
            if value is not None and price_problem(value) is not None:
                raise BadLine(f"\"{key}\" is {value!r}, expected a finite non-negative number "
                              f"up to {MAX_PRICE:.0f}")
        values = {k: obj.get(k) for k in PREDICTION_FIELDS}
        for key in ("latency_s", "input_tokens", "output_tokens", "cost_usd"):
            if values[key] is not None and not _finite(values[key]):
                values[key] = None  # informational: NaN / Infinity is no figure to show
        for key in TEXT:  # informational: any other JSON value is kept as its JSON text
            if values[key] is not None and not isinstance(values[key], str):
                values[key] = json.dumps(values[key], ensure_ascii=False)
        return cls(item, obj.get("truth"), Prediction(**values))


def _finite(value: float) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an integer beyond any float
        return False


class BadLine(ValueError):
    """A predictions.jsonl line that is JSON but not shaped like a record."""


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "text", bool: "true/false",
             type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


PREDICTION_FIELDS = tuple(f.name for f in fields(Prediction))
NUMBER = (int, float)
FIELD_TYPES: dict[str, type | tuple[type, ...]] = {
    "price": NUMBER, "truth": NUMBER, "latency_s": NUMBER,
    "input_tokens": NUMBER, "output_tokens": NUMBER, "cost_usd": NUMBER,
}
TEXT = ("raw", "error", "served_by")
_warned: set[tuple[str, str]] = set()


def warn(where: str, what: str) -> None:
    """One line on stderr, once per process for the same place and problem."""
    key = (where, what)
    if key in _warned:
        return
    _warned.add(key)
    print(f"warning: {where}: {what}", file=sys.stderr)


class RunStore:
    """Reads and appends one run directory; thread-safe appends.

    ``root`` is the folder the harness owns (the results dir: by default two levels
    up, ``<results>/<test set>/<run>``): nothing is written or truncated through a
    symbolic link below it (a run folder or predictions.jsonl that is a link to a
    user's file is refused in one line)."""

    def __init__(self, directory: Path, root: Path | None = None):
        self.dir = directory
        self.root = root if root is not None else directory.parent.parent
        self.predictions_path = directory / PREDICTIONS
        self.run_path = directory / RUN
        self._lock = threading.Lock()
        self._handle: Any = None

    def refuse_links(self) -> None:
        """BenchError naming the link when the run folder, or a file the store writes in
        it, is (or lies below) a symbolic link under ``root``."""
        for path in (self.predictions_path, self.run_path, self.dir / LOCK_FILE):
            no_links(self.root, path)

    @classmethod
    def for_run(cls, results_dir: Path, test_set: str, predictor: str,
                fingerprint: dict[str, Any]) -> RunStore:
        name = f"{slug(predictor)}-{fingerprint_hash(fingerprint)}"
        return cls(results_dir / slug(test_set) / name)

    def records(self) -> dict[int, Record]:
        """The latest record per id; a torn last line (killed mid-write) is ignored.

        A line that is not JSON, or JSON not shaped like a record, is skipped with
        a one-line warning naming the file and line: its item counts as not asked,
        so the next ``bench run`` asks it again (the bad line stays, never lost).
        """
        out: dict[int, Record] = {}
        if self.predictions_path.is_symlink():
            warn(str(self.predictions_path), "is a symbolic link: not followed; run left empty")
            return out
        try:
            handle = self.predictions_path.open("rb")
        except FileNotFoundError:
            return out
        except OSError as exc:
            warn(str(self.predictions_path), f"unreadable ({exc.strerror}); run left empty")
            return out
        bad: list[tuple[int, str]] = []
        with handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    break
                try:
                    record = Record.from_line(json.loads(raw.decode("utf-8")))
                except (UnicodeDecodeError, json.JSONDecodeError):
                    bad.append((number, "not JSON"))
                    continue
                except BadLine as exc:
                    bad.append((number, str(exc)))
                    continue
                out[record.id] = record
        if bad:
            self._bad(bad)
        return out

    def _bad(self, bad: list[tuple[int, str]]) -> None:
        """One warning per file, naming the first bad line (and how many there are)."""
        number, why = bad[0]
        skipped = ("line skipped (its item counts as not asked" if len(bad) == 1 else
                   f"{len(bad)} such lines skipped, this the first (their items count as "
                   "not asked")
        warn(f"{self.predictions_path}:{number}",
             f"{why}; {skipped}: `bench run` asks {'it' if len(bad) == 1 else 'them'} again)")

    def run_info(self) -> RunInfo | None:
        """The run's record; None when run.json is missing or damaged."""
        return read_run(self.run_path)

    def run_problem(self) -> str | None:
        """Why run.json cannot be read (None when it reads, or is simply missing)."""
        return run_problem(self.run_path)

    def write_run(self, info: RunInfo | Mapping[str, Any]) -> None:
        """Write run.json; a mapping is read as a run record first (Damaged if it is not)."""
        no_links(self.root, self.run_path)
        write_run(self.run_path, info if isinstance(info, RunInfo)
                  else RunInfo.from_dict(dict(info)))

    def open(self) -> None:
        self.refuse_links()
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.predictions_path,
                     os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0), 0o666)
        self._repair_tail(fd)
        self._handle = os.fdopen(fd, "a", encoding="utf-8")

    @staticmethod
    def _repair_tail(fd: int) -> None:
        """Cut a torn last line so the next append starts on a fresh line."""
        size = os.fstat(fd).st_size
        if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
            return
        data = os.pread(fd, size, 0)
        os.ftruncate(fd, data.rfind(b"\n") + 1)

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
    """Every run directory under ``results_dir`` (``<test set>/<predictor>-<hash>``):
    those with a run.json, and those with answers but no run.json (readers warn)."""
    if not results_dir.is_dir():
        return
    folders = {p.parent for name in (RUN, PREDICTIONS) for p in results_dir.glob(f"*/*/{name}")}
    for folder in sorted(folders):
        yield RunStore(folder)
