"""Runs one predictor over a test set: resume, fan-out, append as answers arrive.

The runner knows no concrete predictor. It skips items the run directory
already answered, calls ``prepare()`` only when something is left to predict,
then predicts the rest either per item on a thread pool (``predict_one``) or
in chunks (``predict`` with ``batch_size``), appending each answer at once, so
a killed run loses at most the items in flight.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import metrics, provenance
from bench.data import TestSet
from bench.redact import public_params, scrub
from bench.store import Record, RunStore, fingerprint_hash
from bench.types import Prediction, Predictor, Product

DEFAULT_CONCURRENCY = 4


@dataclass
class RunResult:
    name: str
    store: RunStore
    scores: metrics.Scores
    predicted: int  # items asked this time (0 on a complete rerun)
    wall_s: float
    totals: dict[str, Any] = field(default_factory=dict)
    skipped: str | None = None


def fingerprint_of(predictor: Predictor, spec: str) -> dict[str, Any]:
    own = getattr(predictor, "fingerprint", None)
    body = dict(own()) if callable(own) else {}
    return {"predictor": predictor.name, "spec": spec, **body}


def run_predictor(
    predictor: Predictor,
    test_set: TestSet,
    results_dir: Path,
    *,
    spec: str,
    kind: str = "custom",
    params: dict[str, str] | None = None,
    concurrency: int | None = None,
    limit: int | None = None,
    retry_errors: bool = False,
    progress: bool = True,
) -> RunResult:
    started = time.perf_counter()
    fingerprint = fingerprint_of(predictor, spec)
    store = RunStore.for_run(results_dir, test_set.name, predictor.name, fingerprint)
    products = test_set.products()[: limit if limit is not None else None]
    truth = test_set.truth()
    done = store.records()
    todo = [p for p in products if p.id not in done
            or (retry_errors and done[p.id].price is None)]

    if todo:
        prepare = getattr(predictor, "prepare", None)
        if callable(prepare):
            prepare()  # may raise BenchError: nothing has been written yet
        prepared = time.perf_counter()
        info = _run_info(predictor, test_set, spec, kind, params, fingerprint, store)
        info.update(status="running", started_at=provenance.now())
        store.open()
        store.write_run(info)
        try:
            _predict(predictor, todo, truth, store, done, concurrency, progress)
        except BaseException:
            info.update(status="interrupted", updated_at=provenance.now())
            store.write_run(info)
            raise
        finally:
            store.close()
        done = store.records()
    else:
        info = store.run_info()

    wall = time.perf_counter() - started
    in_scope = {p.id: truth[p.id] for p in products}
    stored = info.get("metrics")
    if not todo and stored and info.get("limit") == limit and info.get("totals"):
        # Nothing new: the figures in run.json are current (a rerun stays instant).
        stored = {**stored, "mae_ci95": tuple(stored["mae_ci95"]) if stored["mae_ci95"]
                  else None}
        return RunResult(predictor.name, store, metrics.Scores(**stored), 0, wall,
                         info["totals"])
    answers = {i: r.price for i, r in done.items() if i in in_scope}
    scores = metrics.score(in_scope, answers)
    totals = _totals(done, in_scope)
    if todo:
        timings = info.setdefault("timings", {})
        # Loading or training is not prediction: time per item counts predict only.
        predict_s = time.perf_counter() - prepared
        timings["last_wall_s"] = round(wall, 3)
        timings["last_prepare_s"] = round(prepared - started, 3)
        timings["last_predict_s"] = round(predict_s, 3)
        timings["predict_s_total"] = round(timings.get("predict_s_total", 0.0) + predict_s, 3)
        timings["items_last_run"] = len(todo)
        info.update(status="complete", finished_at=provenance.now(), totals=totals,
                    metrics=scores.as_dict(), limit=limit)
        store.write_run(info)
    return RunResult(predictor.name, store, scores, len(todo), wall, totals)


def _run_info(predictor: Predictor, test_set: TestSet, spec: str, kind: str,
              params: dict[str, str] | None, fingerprint: dict[str, Any],
              store: RunStore) -> dict[str, Any]:
    previous = store.run_info()
    return {
        "predictor": predictor.name,
        "spec": spec,
        "kind": kind,
        "params": public_params(params or {}),
        "fingerprint": fingerprint,
        "fingerprint_hash": fingerprint_hash(fingerprint),
        "test_set": test_set.name,
        "data_fingerprint": test_set.fingerprint,
        "data_source": test_set.source,
        "items": len(test_set),
        "seeds": {"bootstrap": metrics.BOOTSTRAP_SEED,
                  **({"predictor": predictor.seed} if hasattr(predictor, "seed")
                     else {})},
        "versions": provenance.package_versions(),
        "git_commit": provenance.git_commit(),
        "created_at": previous.get("created_at", provenance.now()),
        "timings": previous.get("timings", {}),
        **_details(predictor),
    }


def _details(predictor: Predictor) -> dict[str, Any]:
    """What a predictor reports about itself once prepared (an ensemble's weights):
    the optional ``run_details() -> dict``, kept in run.json as ``details``."""
    describe = getattr(predictor, "run_details", None)
    return {"details": dict(describe())} if callable(describe) else {}


def _totals(done: dict[int, Record], scope: dict[int, float]) -> dict[str, Any]:
    records = [r for i, r in done.items() if i in scope]

    def total(attr: str) -> float | None:
        values = [getattr(r, attr) for r in records if getattr(r, attr) is not None]
        return sum(values) if values else None

    latencies = [r.latency_s for r in records if r.latency_s is not None]
    return {
        "answered": sum(r.price is not None for r in records),
        "errors": sum(r.price is None for r in records),
        "total": len(scope),
        "input_tokens": total("input_tokens"),
        "output_tokens": total("output_tokens"),
        "cost_usd": total("cost_usd"),
        "mean_latency_s": sum(latencies) / len(latencies) if latencies else None,
    }


def _clean(prediction: Any) -> Prediction:
    """Whatever a predictor returned, as a Prediction: NaN/inf are no answer."""
    if not isinstance(prediction, Prediction):
        return Prediction.failed(f"predictor returned {type(prediction).__name__}, "
                                 "not a Prediction")
    if prediction.price is not None and not math.isfinite(prediction.price):
        return Prediction.failed(f"non-finite price {prediction.price}", raw=prediction.raw)
    return prediction


def _describe(exc: BaseException) -> str:
    return scrub(f"{type(exc).__name__}: {exc}")[:500]


def _predict(predictor: Predictor, todo: list[Product], truth: dict[int, float],
             store: RunStore, done: dict[int, Record], concurrency: int | None,
             progress: bool) -> None:
    tracker = _Progress(len(todo), done, truth, predictor.name, progress)

    def record(product: Product, prediction: Prediction) -> None:
        rec = Record.of(product.id, _clean(prediction), truth.get(product.id))
        store.append(rec)
        tracker.update(rec)

    try:
        predict_one = getattr(predictor, "predict_one", None)
        if callable(predict_one):
            workers = concurrency or getattr(predictor, "default_concurrency", None) \
                or DEFAULT_CONCURRENCY
            _fan_out(predict_one, todo, record, workers)
        else:
            batch = max(1, int(getattr(predictor, "batch_size", None) or len(todo)))
            for start in range(0, len(todo), batch):
                chunk = todo[start : start + batch]
                for product, prediction in zip(chunk, _predict_chunk(predictor, chunk),
                                               strict=True):
                    record(product, prediction)
    finally:
        tracker.close()


def _timed_one(fn: Callable[[Product], Prediction], product: Product) -> Prediction:
    start = time.perf_counter()
    try:
        prediction = fn(product)
    except Exception as exc:  # one failing item must not stop the run
        return Prediction.failed(_describe(exc), latency_s=time.perf_counter() - start)
    if isinstance(prediction, Prediction) and prediction.latency_s is None:
        prediction = _with_latency(prediction, time.perf_counter() - start)
    return prediction


def _with_latency(prediction: Prediction, latency: float) -> Prediction:
    return replace(prediction, latency_s=latency)


def _fan_out(fn: Callable[[Product], Prediction], todo: Sequence[Product],
             record: Callable[[Product, Prediction], None], workers: int) -> None:
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="predict")
    pending: dict[Future[Prediction], Product] = {}
    items = iter(todo)
    try:
        # Submit lazily, a bounded window ahead: a kill loses only items in flight.
        for product in _take(items, workers * 2):
            pending[pool.submit(_timed_one, fn, product)] = product
        while pending:
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                record(pending.pop(future), future.result())
            for product in _take(items, len(finished)):
                pending[pool.submit(_timed_one, fn, product)] = product
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _take(items: Iterable[Product], n: int) -> list[Product]:
    out = []
    for product in items:
        out.append(product)
        if len(out) >= n:
            break
    return out


def _predict_chunk(predictor: Predictor, chunk: list[Product]) -> list[Prediction]:
    """A chunk's predictions; if the chunk fails, each item alone, so one bad
    item becomes one no-answer instead of a lost chunk."""
    start = time.perf_counter()
    try:
        out = list(predictor.predict(chunk))
        if len(out) != len(chunk):
            raise RuntimeError(f"predict returned {len(out)} predictions for {len(chunk)} items")
        each = (time.perf_counter() - start) / len(chunk)
        return [_with_latency(p, each) if isinstance(p, Prediction) and p.latency_s is None
                else p for p in out]
    except Exception as exc:
        if len(chunk) == 1:
            return [Prediction.failed(_describe(exc))]
    return [_predict_chunk(predictor, [p])[0] for p in chunk]


class _Progress:
    """A progress bar whose postfix is the running mean error over all answers."""

    def __init__(self, total: int, done: dict[int, Record], truth: dict[int, float],
                 name: str, enabled: bool):
        self._lock = threading.Lock()
        errors = [abs(r.price - truth[i]) for i, r in done.items()
                  if r.price is not None and i in truth]
        self._sum, self._n = sum(errors), len(errors)
        self._bar = None
        if enabled:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=name, unit="item", leave=False, disable=None)

    def update(self, record: Record) -> None:
        with self._lock:
            if record.price is not None and record.truth is not None:
                self._sum += abs(record.price - record.truth)
                self._n += 1
            if self._bar is not None:
                if self._n:
                    self._bar.set_postfix_str(f"MAE ${self._sum / self._n:,.2f}", refresh=False)
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
