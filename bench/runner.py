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
from bench.records import RunInfo, Seeds, Timings, Totals
from bench.redact import public_params, scrub
from bench.store import Record, RunStore, fingerprint_hash
from bench.types import Prediction, Predictor, Product, capabilities

DEFAULT_CONCURRENCY = 4


@dataclass
class RunResult:
    name: str
    store: RunStore
    scores: metrics.Scores
    predicted: int  # items asked this time (0 on a complete rerun)
    wall_s: float
    totals: Totals = field(default_factory=Totals)
    skipped: str | None = None


def fingerprint_of(predictor: Predictor, spec: str) -> dict[str, Any]:
    return {"predictor": predictor.name, "spec": spec, **capabilities(predictor).fingerprint()}


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
        capabilities(predictor).prepare()  # may raise BenchError: nothing written yet
        prepared = time.perf_counter()
        info = _run_info(predictor, test_set, spec, kind, params, fingerprint, store)
        info.status, info.started_at = "running", provenance.now()
        store.open()
        store.write_run(info)
        try:
            _predict(predictor, todo, truth, store, done, concurrency, progress)
        except BaseException:
            info.status, info.updated_at = "interrupted", provenance.now()
            info.finished_ns = time.time_ns()
            store.write_run(info)
            raise
        finally:
            store.close()
        done = store.records()
    else:
        info = store.run_info() or RunInfo()
    # run.json missing or damaged while answers are stored: rebuilt and written below.
    rebuild = not todo and bool(done) and (store.run_problem() is not None
                                           or not store.run_path.exists())
    if rebuild:
        info = _run_info(predictor, test_set, spec, kind, params, fingerprint, store)

    wall = time.perf_counter() - started
    in_scope = {p.id: truth[p.id] for p in products}
    if not todo and info.metrics and info.limit == limit and info.totals:
        # Nothing new: the figures in run.json are current (a rerun stays instant).
        return RunResult(predictor.name, store, info.metrics, 0, wall, info.totals)
    answers = {i: r.price for i, r in done.items() if i in in_scope}
    scores = metrics.score(in_scope, answers)
    totals = _totals(done, in_scope)
    if todo or rebuild:
        if todo:
            # Loading or training is not prediction: time per item counts predict only.
            predict_s = time.perf_counter() - prepared
            before = info.timings.predict_s_total if info.timings else None
            info.timings = Timings(
                last_wall_s=round(wall, 3), last_prepare_s=round(prepared - started, 3),
                last_predict_s=round(predict_s, 3),
                predict_s_total=round((before or 0.0) + predict_s, 3),
                items_last_run=len(todo))
        info.status, info.finished_at = "complete", provenance.now()
        info.finished_ns = time.time_ns()
        info.totals, info.metrics, info.limit = totals, scores, limit
        store.write_run(info)
    return RunResult(predictor.name, store, scores, len(todo), wall, totals)


def _run_info(predictor: Predictor, test_set: TestSet, spec: str, kind: str,
              params: dict[str, str] | None, fingerprint: dict[str, Any],
              store: RunStore) -> RunInfo:
    previous = store.run_info() or RunInfo()
    caps = capabilities(predictor)
    return RunInfo(
        predictor=predictor.name,
        spec=spec,
        kind=kind,
        params=public_params(params or {}),
        fingerprint=fingerprint,
        fingerprint_hash=fingerprint_hash(fingerprint),
        test_set=test_set.name,
        data_fingerprint=test_set.fingerprint,
        data_source=test_set.source,
        items=len(test_set),
        seeds=Seeds(metrics.BOOTSTRAP_SEED, caps.seed, has_predictor=caps.seed is not None),
        versions=provenance.package_versions(),
        git_commit=provenance.git_commit(),
        created_at=previous.created_at or provenance.now(),
        timings=previous.timings or Timings(),
    )


def _totals(done: dict[int, Record], scope: dict[int, float]) -> Totals:
    records = [r for i, r in done.items() if i in scope]

    def total(attr: str) -> Any:
        values = [getattr(r.prediction, attr) for r in records
                  if getattr(r.prediction, attr) is not None]
        return sum(values) if values else None

    latencies = [r.prediction.latency_s for r in records if r.prediction.latency_s is not None]
    return Totals(
        answered=sum(r.price is not None for r in records),
        errors=sum(r.price is None for r in records),
        total=len(scope),
        input_tokens=total("input_tokens"),
        output_tokens=total("output_tokens"),
        cost_usd=total("cost_usd"),
        mean_latency_s=sum(latencies) / len(latencies) if latencies else None,
    )


def _clean(prediction: Any) -> Prediction:
    """Whatever a predictor returned, as a Prediction. Every answer passes here, so
    this is where a price that is not a finite, non-negative number becomes a
    no-answer with the reason (as on a person's sheet)."""
    if not isinstance(prediction, Prediction):
        return Prediction.failed(f"predictor returned {type(prediction).__name__}, "
                                 "not a Prediction")
    price = prediction.price
    if price is None:
        return prediction
    reason = None
    if isinstance(price, bool) or not isinstance(price, int | float):
        reason = f"price {price!r} is not a number"
    elif not math.isfinite(price):
        reason = f"non-finite price {price}"
    elif price < 0:
        reason = f"negative price {price}"
    if reason is not None:
        return replace(prediction, price=None, error=reason)
    return replace(prediction, price=float(price)) if type(price) is not float else prediction


def _describe(exc: BaseException) -> str:
    return scrub(f"{type(exc).__name__}: {exc}")[:500]


def _predict(predictor: Predictor, todo: list[Product], truth: dict[int, float],
             store: RunStore, done: dict[int, Record], concurrency: int | None,
             progress: bool) -> None:
    tracker = _Progress(len(todo), done, truth, predictor.name, progress)

    def record(product: Product, prediction: Prediction) -> None:
        rec = Record(product.id, truth.get(product.id), _clean(prediction))
        store.append(rec)
        tracker.update(rec)

    try:
        hooks = capabilities(predictor)
        if hooks.predict_one is not None:
            workers = concurrency or hooks.default_concurrency or DEFAULT_CONCURRENCY
            _fan_out(hooks.predict_one, todo, record, workers)
        else:
            batch = max(1, hooks.batch_size or len(todo))
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
