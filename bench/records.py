"""``run.json``: the one typed definition of a stored run's record.

A run directory's ``run.json`` says what ran (predictor, spec, kind, params,
fingerprint), on what (test set, data fingerprint and source), with what
(seeds, package versions, git commit), how it went (status and times,
timings) and what came out (totals, metrics). ``RunInfo`` is that record;
``read_run`` and ``write_run`` are the only code that turns it into JSON and
back. Every reader (runner, reports, ``bench score``, benchmark scripts) goes
through them.

``version`` is the format's number: a file without one is version 1, the
format described here. Unknown keys are kept (``extra``) and written back.
A field that is ``None`` is left out of the file, except ``git_commit``
(written with ``versions``) and ``limit`` (written with ``metrics``), whose
``null`` means something. A file that is not JSON, or not shaped like a run
record, reads as ``None``: readers treat the run as damaged, never crash.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from bench.fsutil import atomic_write_json
from bench.metrics import Scores

VERSION = 1


class Damaged(ValueError):
    """run.json is JSON but not shaped like a run record."""


def _check(value: Any, types: type | tuple[type, ...], what: str) -> Any:
    """``value`` when None or of ``types`` (never a bool: no field holds one), else Damaged."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
        raise Damaged(f"{what}: unexpected {type(value).__name__}")
    return value


def _number(value: Any, what: str) -> Any:
    return _check(value, (int, float), what)


def _mapping(value: Any, what: str) -> dict[str, Any] | None:
    return _check(value, dict, what)


@dataclass
class Timings:
    """Seconds spent by the latest invocation that predicted anything, and overall."""

    last_wall_s: float | None = None  # the whole invocation, loading and training included
    last_prepare_s: float | None = None  # loading or training before the first prediction
    last_predict_s: float | None = None  # predicting only
    predict_s_total: float | None = None  # predicting, summed over every invocation
    items_last_run: int | None = None  # items predicted by the latest invocation

    @property
    def seconds_per_item(self) -> float | None:
        """Prediction time per item of the latest invocation (wall time in older files)."""
        items = self.items_last_run or 0
        spent = self.last_predict_s if self.last_predict_s is not None else self.last_wall_s
        return (spent or 0) / items if items else None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Timings:
        return cls(**{f.name: _number(data.get(f.name), f"timings.{f.name}")
                      for f in fields(cls)})


@dataclass(frozen=True)
class Totals:
    """Sums over the stored answers in scope (None: no answer carried that figure)."""

    answered: int | None = None
    errors: int | None = None
    total: int | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    mean_latency_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Totals:
        return cls(**{f.name: _number(data.get(f.name), f"totals.{f.name}")
                      for f in fields(cls)})


@dataclass(frozen=True)
class Seeds:
    """The bootstrap's seed, and the predictor's when it has a ``seed`` attribute."""

    bootstrap: int | None = None
    predictor: Any = None
    has_predictor: bool = False  # the predictor has a seed, even a None one

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.bootstrap is not None:
            out["bootstrap"] = self.bootstrap
        if self.has_predictor:
            out["predictor"] = self.predictor
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Seeds:
        return cls(_check(data.get("bootstrap"), int, "seeds.bootstrap"),
                   data.get("predictor"), "predictor" in data)


def _scores(data: dict[str, Any]) -> Scores:
    names = [f.name for f in fields(Scores)]
    missing = [n for n in names if n not in data]
    if missing:
        raise Damaged(f"metrics: missing {', '.join(missing)}")
    ci = data["mae_ci95"]
    if ci is not None and (not isinstance(ci, list | tuple) or len(ci) != 2):
        raise Damaged("metrics.mae_ci95: expected two numbers")
    for name in names:
        if name != "mae_ci95":
            _number(data[name], f"metrics.{name}")
    return Scores(**{**{n: data[n] for n in names},
                     "mae_ci95": tuple(ci) if ci is not None else None})


@dataclass
class RunInfo:
    """The contents of one run.json (see the module docstring)."""

    version: int = VERSION
    predictor: str | None = None
    spec: str | None = None
    kind: str | None = None
    params: dict[str, Any] | None = None  # --param values as given (secrets redacted)
    fingerprint: dict[str, Any] | None = None  # what makes two runs the same run
    fingerprint_hash: str | None = None
    test_set: str | None = None
    data_fingerprint: str | None = None
    data_source: str | None = None
    items: int | None = None  # the test set's size
    seeds: Seeds | None = None
    versions: dict[str, str] | None = None  # python and the packages that matter
    git_commit: str | None = None
    created_at: str | None = None
    timings: Timings | None = None
    status: str | None = None  # running | interrupted | failed | complete
    reason: str | None = None  # why a failed run stopped (its first answers all failed so)
    started_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
    # time.time_ns() when the run last finished (or stopped): orders runs that
    # finished within the same second, which ``finished_at`` cannot.
    finished_ns: int | None = None
    totals: Totals | None = None
    metrics: Scores | None = None
    limit: int | None = None  # the --limit the metrics were computed under
    rescored_at: str | None = None
    details: dict[str, Any] | None = None  # what the predictor reports once prepared
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    @property
    def stamp(self) -> str:
        """When the run was last finished, updated or started: the latest run wins."""
        return self.finished_at or self.updated_at or self.started_at or ""

    @property
    def order(self) -> tuple[str, int]:
        """Sorts runs oldest first; ties within one second go by ``finished_ns``."""
        return self.stamp, self.finished_ns or 0

    @property
    def seconds_per_item(self) -> float | None:
        return self.timings.seconds_per_item if self.timings else None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "extra":
                continue
            if value is None and not (f.name == "git_commit" and self.versions is not None
                                      or f.name == "limit" and self.metrics is not None):
                continue
            if isinstance(value, Timings | Totals | Seeds):
                value = value.to_dict()
            elif isinstance(value, Scores):
                value = value.as_dict()
            out[f.name] = value
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    @classmethod
    def from_dict(cls, data: Any) -> RunInfo:
        """Damaged when ``data`` is not shaped like a run record."""
        if not isinstance(data, dict):
            raise Damaged(f"expected a JSON object, found {type(data).__name__}")
        known = {f.name for f in fields(cls)} - {"extra"}
        texts = ("predictor", "spec", "kind", "fingerprint_hash", "test_set",
                 "data_fingerprint", "data_source", "git_commit", "created_at", "status", "reason",
                 "started_at", "updated_at", "finished_at", "rescored_at")
        values: dict[str, Any] = {name: _check(data.get(name), str, name) for name in texts}
        for name in ("params", "fingerprint", "versions", "details"):
            values[name] = _mapping(data.get(name), name)
        version = _check(data.get("version"), int, "version")
        values["version"] = VERSION if version is None else version
        values["items"] = _check(data.get("items"), int, "items")
        values["limit"] = _check(data.get("limit"), int, "limit")
        values["finished_ns"] = _check(data.get("finished_ns"), int, "finished_ns")
        parts: dict[str, Any] = {"seeds": Seeds.from_dict, "timings": Timings.from_dict,
                                 "totals": Totals.from_dict, "metrics": _scores}
        for name, parse in parts.items():
            part = _mapping(data.get(name), name)
            values[name] = None if part is None else parse(part)
        extra = {k: v for k, v in data.items() if k not in known}
        return cls(**values, extra=extra)


def _no_constant(name: str) -> Any:
    """``NaN`` / ``Infinity`` in run.json: a figure no report can show (an old run
    scored a price of 1e308); the record is damaged, and `bench run` rewrites it."""
    raise Damaged(f"holds a non-finite number ({name})")


def load_run(path: Path) -> RunInfo:
    """The record in ``path``; OSError when unreadable, Damaged when not a run record."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Damaged(f"not JSON ({exc})") from None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:  # an escaped lone surrogate: a non-UTF-8 byte in an argument
        raise Damaged("holds text that is not valid Unicode (a non-UTF-8 byte in a "
                      "parameter?)") from None
    return RunInfo.from_dict(data)


def read_run(path: Path) -> RunInfo | None:
    """The record in ``path``; None when it is missing, not JSON or wrong-shaped."""
    try:
        return load_run(path)
    except (OSError, Damaged):
        return None


def run_problem(path: Path) -> str | None:
    """Why ``path`` is not a usable run record; None when it is one, or is missing."""
    try:
        info = load_run(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"unreadable ({exc.strerror})"
    except Damaged as exc:
        return str(exc)
    if not info.predictor or not info.test_set:
        return "names no predictor or test set"
    return None


def write_run(path: Path, info: RunInfo) -> None:
    """Atomically: a crash leaves the old record or the new one, never half of one."""
    atomic_write_json(path, info.to_dict())
