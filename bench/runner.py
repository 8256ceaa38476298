"""Runs one predictor over a test set: resume, fan-out, append as answers arrive.

The runner knows no concrete predictor. It skips items the run directory
already answered, takes the run directory's lock (one writer at a time),
calls ``prepare()`` only when something is left to predict, then predicts the
rest either per item on daemon worker threads (``predict_one``) or in chunks
(``predict`` with ``batch_size``, each chunk on a worker thread), appending
each answer at once, so a killed run loses at most the items in flight.

Runs end, once, and say why:

- every item has a time limit (``--timeout``, else the predictor's
  ``item_timeout_s``, else ``DEFAULT_ITEM_TIMEOUT_S``; a chunk gets the limit
  times its size). An item past it is a no-answer "timed out after N s"; its
  thread is abandoned (a Python thread cannot be killed; workers are daemon
  threads, never joined) and replaced, and the run goes on;
- when the first ``min(FAILURE_WINDOW, items)`` answers of an invocation all
  failed the same way, the run stops there, marked ``failed`` with the cause;
- an interrupt (Ctrl-C: SIGINT reaches the main thread, which only waits for
  answers) marks the run ``interrupted``; the prediction time of every
  invocation, interrupted or failed ones included, adds up in
  ``predict_s_total``.

Predictor code runs on worker threads, so whatever it raises there, even a
``KeyboardInterrupt``, ``SystemExit`` or ``GeneratorExit`` of its own, is that
item's (or that chunk's) failure with its reason, recorded at once; the run
goes on and the failure rule applies. ``prepare()`` runs on the calling thread:
a ``SystemExit`` or other non-``Exception`` it raises (a ``KeyboardInterrupt``
aside, which cannot be told from Ctrl-C there) is a ``BenchError`` naming it.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import metrics, provenance
from bench.budget import Budget
from bench.data import TestSet
from bench.errors import BenchError
from bench.lock import RunLock
from bench.records import RunInfo, Seeds, Timings, Totals
from bench.redact import public_params, scrub
from bench.reports.format import money
from bench.store import Record, RunStore, fingerprint_hash
from bench.types import Prediction, Predictor, Product, capabilities, price_problem

DEFAULT_CONCURRENCY = 4
# Seconds one item may take when neither --timeout nor the predictor says: far
# beyond any healthy answer (an API item with every retry stays under it).
DEFAULT_ITEM_TIMEOUT_S = 600.0
# How many first answers, all failed the same way, stop a run.
FAILURE_WINDOW = 8


@dataclass
class RunResult:
    name: str
    store: RunStore
    scores: metrics.Scores
    predicted: int  # items asked this time (0 on a complete rerun)
    wall_s: float
    totals: Totals = field(default_factory=Totals)
    skipped: str | None = None
    failure: str | None = None  # why the run stopped early (status "failed")
    common_error: str | None = None  # the most common reason for no answer, if any
    stopped: str | None = None  # why items were left unasked (``--max-cost``)


def fingerprint_of(predictor: Predictor, spec: str) -> dict[str, Any]:
    return {"predictor": predictor.name, "spec": spec, **capabilities(predictor).fingerprint()}


def item_timeout(predictor: Predictor, override: float | None = None) -> float:
    """Seconds one item may take: ``override`` (``--timeout``), else the
    predictor's ``item_timeout_s``, else ``DEFAULT_ITEM_TIMEOUT_S``."""
    return float(override or capabilities(predictor).item_timeout_s or DEFAULT_ITEM_TIMEOUT_S)


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
    timeout: float | None = None,
    budget: Budget | None = None,
) -> RunResult:
    """Predict what ``results_dir``'s run of ``predictor`` lacks, and score it.

    Raises ``bench.lock.RunLocked`` when another process writes the same run
    directory, and ``BenchError`` from ``prepare()`` (nothing written then).
    """
    started = time.perf_counter()
    fingerprint = fingerprint_of(predictor, spec)
    store = RunStore.for_run(results_dir, test_set.name, predictor.name, fingerprint)
    store.refuse_links()  # nothing read or written through a symbolic link in the results
    products = test_set.products()[: limit if limit is not None else None]
    truth = test_set.truth()

    def left(done: dict[int, Record]) -> list[Product]:
        return [p for p in products if p.id not in done
                or (retry_errors and done[p.id].price is None)]

    done = store.records()
    todo = left(done)
    failure = stopped = None
    if todo:
        lock = RunLock(store.dir)
        lock.acquire()  # RunLocked: another process is asking these items now
        try:
            done = store.records()  # what the last holder wrote before we got the lock
            todo = left(done)
            if todo and budget is not None:
                todo, stopped = budget.plan(predictor, todo)
            if todo:
                info, failure = _predict_and_record(
                    predictor, test_set, store, todo, truth, done, spec=spec, kind=kind,
                    params=params, fingerprint=fingerprint, concurrency=concurrency,
                    progress=progress, limit_s=item_timeout(predictor, timeout),
                    started=started)
                done = store.records()
                if budget is not None:
                    budget.charge({p.id: done[p.id].prediction.cost_usd
                                   for p in todo if p.id in done})
                if stopped and failure is None:
                    info.status, info.reason = "interrupted", stopped
        finally:
            lock.release()
            _remove_if_empty(store.dir)
    if not todo:
        info = store.run_info() or RunInfo()
    # run.json missing or damaged while answers are stored: rebuilt and written below.
    rebuild = not todo and bool(done) and (store.run_problem() is not None
                                           or not store.run_path.exists())
    if rebuild:
        info = _run_info(predictor, test_set, spec, kind, params, fingerprint, store)

    wall = time.perf_counter() - started
    in_scope = {p.id: truth[p.id] for p in products}
    common = common_error(r for i, r in done.items() if i in in_scope)
    if stopped and not todo and info.status == "complete":
        info.status, info.reason = "interrupted", stopped  # stored earlier, none asked now
        store.write_run(info)
    if not todo and info.metrics and info.limit == limit and info.totals:
        # Nothing new: the figures in run.json are current (a rerun stays instant).
        return RunResult(predictor.name, store, info.metrics, 0, wall, info.totals,
                         common_error=common, stopped=stopped)
    answers = {i: r.price for i, r in done.items() if i in in_scope}
    scores = metrics.score(in_scope, answers)
    totals = _totals(done, in_scope)
    if todo or rebuild:
        if todo:
            assert info.timings is not None
            info.timings.last_wall_s = round(wall, 3)
        else:
            info.status, info.finished_at = "complete", provenance.now()
            info.finished_ns = time.time_ns()
        info.totals, info.metrics, info.limit = totals, scores, limit
        store.write_run(info)
    return RunResult(predictor.name, store, scores, len(todo), wall, totals,
                     failure=failure, common_error=common, stopped=stopped)


def _remove_if_empty(directory: Path) -> None:
    """A run that wrote nothing (prepare failed) leaves no empty folder behind."""
    try:
        directory.rmdir()
    except OSError:
        pass


def _predict_and_record(predictor: Predictor, test_set: TestSet, store: RunStore,
                        todo: list[Product], truth: dict[int, float],
                        done: dict[int, Record], *, spec: str, kind: str,
                        params: dict[str, str] | None, fingerprint: dict[str, Any],
                        concurrency: int | None, progress: bool, limit_s: float,
                        started: float) -> tuple[RunInfo, str | None]:
    """Prepare, predict ``todo`` and keep run.json's status and timings true
    whichever way it ends (complete, failed, interrupted)."""
    try:
        capabilities(predictor).prepare()  # may raise BenchError: nothing written yet
    except (KeyboardInterrupt, Exception):
        raise
    except BaseException as exc:  # SystemExit, GeneratorExit: the predictor's, not ours
        raise BenchError(f"{predictor.name}: prepare() raised {_describe(exc)}") from None
    prepared = time.perf_counter()
    info = _run_info(predictor, test_set, spec, kind, params, fingerprint, store)
    info.status, info.started_at, info.reason = "running", provenance.now(), None
    store.open()
    outcome = _Outcome()
    try:
        store.write_run(info)
        _predict(predictor, todo, truth, store, done, concurrency, progress, limit_s, outcome)
    except BaseException:
        # Interrupted (Ctrl-C) or broken: say so, and keep the time spent.
        _add_timings(info, started, prepared, outcome.recorded)
        info.details = capabilities(predictor).run_details()
        info.status, info.updated_at = "interrupted", provenance.now()
        info.finished_ns = time.time_ns()
        store.write_run(info)
        raise
    finally:
        store.close()
    _add_timings(info, started, prepared, outcome.recorded)
    # Asked again at the end: details may say how the predicting went (replicas).
    info.details = capabilities(predictor).run_details()
    if outcome.failure is not None:
        info.status, info.reason, info.updated_at = "failed", outcome.failure, provenance.now()
    else:
        info.status, info.finished_at = "complete", provenance.now()
    info.finished_ns = time.time_ns()  # orders runs finished within one second
    return info, outcome.failure


def _add_timings(info: RunInfo, started: float, prepared: float, items: int) -> None:
    """This invocation's times; ``predict_s_total`` adds them to the earlier ones'.
    Loading or training is not prediction: time per item counts predict only."""
    now = time.perf_counter()
    predict_s = now - prepared
    before = info.timings.predict_s_total if info.timings else None
    info.timings = Timings(
        last_wall_s=round(now - started, 3), last_prepare_s=round(prepared - started, 3),
        last_predict_s=round(predict_s, 3),
        predict_s_total=round((before or 0.0) + predict_s, 3), items_last_run=items)


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
        data_source=provenance.portable_path(test_set.source),
        items=len(test_set),
        seeds=Seeds(metrics.BOOTSTRAP_SEED, caps.seed, has_predictor=caps.seed is not None),
        versions=provenance.package_versions(),
        git_commit=provenance.git_commit(),
        created_at=previous.created_at or provenance.now(),
        timings=previous.timings or Timings(),
        details=caps.run_details(),
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
    this is where a price that is not a number from 0 to ``MAX_PRICE`` becomes a
    no-answer with the reason (as on a person's sheet)."""
    if not isinstance(prediction, Prediction):
        return Prediction.failed(f"predictor returned {type(prediction).__name__}, "
                                 "not a Prediction")
    prediction = _storable_texts(prediction)
    price = prediction.price
    if price is None:
        return prediction
    reason = price_problem(price)
    if reason is not None:
        return replace(prediction, price=None, error=reason)
    return replace(prediction, price=float(price)) if type(price) is not float else prediction


def _storable_texts(prediction: Prediction) -> Prediction:
    """The informational fields as a file can hold them faithfully: ``raw`` and
    ``error`` with a lone surrogate (undecodable bytes) kept as its escape, never a
    write that fails; a count, time or cost that is not a finite number dropped."""
    changed: dict[str, Any] = {}
    for name in ("latency_s", "input_tokens", "output_tokens", "cost_usd"):
        value = getattr(prediction, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)
                                  or price_problem(abs(value)) is not None):
            changed[name] = None  # not finite, or beyond any sane count, time or cost
    for name in ("raw", "error"):
        value = getattr(prediction, name)
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                changed[name] = value.encode("utf-8", "backslashreplace").decode("utf-8")
    return replace(prediction, **changed) if changed else prediction


def _describe(exc: BaseException) -> str:
    """Why a call failed, in one line: the exception's type and message; one
    that is not an ``Exception`` (``SystemExit``, ``KeyboardInterrupt``) says it
    came from the predictor."""
    if isinstance(exc, _Raised):
        return str(exc)
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    if not isinstance(exc, Exception):
        text += " (raised inside the predictor)"
    return scrub(text)[:500]


class _Raised(Exception):
    """Predictor code raised a ``BaseException`` that is not an ``Exception``
    (``SystemExit``, ``KeyboardInterrupt``, ``GeneratorExit``) on a worker
    thread: that call's failure, handed to the runner as an ordinary error."""


def failure_kind(error: str | None) -> str:
    """An error with what differs between items taken out (numbers, quoted
    text, a "not sent:" prefix), so that one cause reads as one kind."""
    text = re.sub(r"^not sent: ", "", error or "no answer")
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    return re.sub(r"\d+(?:\.\d+)?", "#", text)[:200]


def common_error(records: Iterator[Record] | Sequence[Record]) -> str | None:
    """The most common reason among the records without an answer (one
    example of it), or None when every record has an answer."""
    kinds: Counter[str] = Counter()
    example: dict[str, str] = {}
    for r in records:
        if r.price is None:
            kind = failure_kind(r.error)
            kinds[kind] += 1
            example.setdefault(kind, r.error or "no answer")
    if not kinds:
        return None
    return example[kinds.most_common(1)[0][0]]


@dataclass
class _Outcome:
    """How one invocation's predicting went: answers recorded, and why it stopped early."""

    recorded: int = 0
    failure: str | None = None


class _Stop(Exception):
    """The first answers all failed the same way: stop asking."""


class _FailureRule:
    """Stops a run whose first ``window`` answers all failed the same way."""

    def __init__(self, window: int):
        self.window = window
        self.kinds: list[str] = []
        self.first: str | None = None
        self.settled = window <= 0

    def check(self, prediction: Prediction) -> str | None:
        if self.settled:
            return None
        if prediction.price is not None:
            self.settled = True  # one answer: not a systematic failure
            return None
        self.kinds.append(failure_kind(prediction.error))
        self.first = self.first or prediction.error or "no answer"
        if len(self.kinds) < self.window:
            return None
        self.settled = True
        if len(set(self.kinds)) > 1:
            return None
        return f"the first {self.window} items all failed the same way: {self.first}"


def _predict(predictor: Predictor, todo: list[Product], truth: dict[int, float],
             store: RunStore, done: dict[int, Record], concurrency: int | None,
             progress: bool, limit_s: float, outcome: _Outcome) -> None:
    tracker = _Progress(len(todo), done, truth, predictor.name, progress)
    rule = _FailureRule(min(FAILURE_WINDOW, len(todo)))

    def record(product: Product, prediction: Prediction) -> None:
        rec = Record(product.id, truth.get(product.id), _clean(prediction))
        store.append(rec)
        outcome.recorded += 1
        tracker.update(rec)
        reason = rule.check(rec.prediction)
        if reason is not None:
            outcome.failure = reason
            raise _Stop(reason)

    try:
        hooks = capabilities(predictor)
        if hooks.predict_one is not None:
            workers = concurrency or hooks.default_concurrency or DEFAULT_CONCURRENCY
            _fan_out(hooks.predict_one, todo, record, workers, limit_s)
        else:
            batch = max(1, hooks.batch_size or len(todo))
            for start in range(0, len(todo), batch):
                for product, prediction in _predict_chunk(predictor, todo[start : start + batch],
                                                          limit_s):
                    record(product, prediction)
    except _Stop:
        pass  # outcome.failure says why; items in flight are abandoned
    finally:
        tracker.close()


def _timed_one(fn: Callable[[Product], Prediction], product: Product) -> Prediction:
    start = time.perf_counter()
    try:
        prediction = fn(product)
    except BaseException as exc:  # one failing item must not stop the run, nor hang it
        return Prediction.failed(_describe(exc), latency_s=time.perf_counter() - start)
    if isinstance(prediction, Prediction) and prediction.latency_s is None:
        prediction = _with_latency(prediction, time.perf_counter() - start)
    return prediction


def _with_latency(prediction: Prediction, latency: float) -> Prediction:
    return replace(prediction, latency_s=latency)


def _timed_out(seconds: float, items: int = 1) -> Prediction:
    each = f" ({items} items at {seconds / items:g} s each)" if items > 1 else ""
    return Prediction.failed(f"timed out after {seconds:g} s{each}", latency_s=seconds)


def _fan_out(fn: Callable[[Product], Prediction], todo: Sequence[Product],
             record: Callable[[Product, Prediction], None], workers: int,
             limit_s: float) -> None:
    """``fn`` on each product from ``workers`` daemon threads; answers are
    recorded here, on the calling thread, as they arrive.

    Items are handed out lazily, a bounded window ahead, so a kill loses only
    items in flight. An item running past ``limit_s`` is recorded as timed out;
    its thread is abandoned (it drops its late answer and ends) and a new
    worker takes its place. Worker threads are daemons and are never joined:
    neither an interrupt nor the end of the run waits for a stuck one.
    """
    tasks: queue.SimpleQueue[int | None] = queue.SimpleQueue()
    answers: queue.Queue[tuple[int, Prediction]] = queue.Queue()
    guard = threading.Lock()
    running: dict[int, float] = {}  # task -> when it started
    abandoned: set[int] = set()
    stop = threading.Event()

    def work() -> None:
        while True:
            task = tasks.get()
            if task is None or stop.is_set():
                return
            with guard:
                running[task] = time.monotonic()
            prediction = _timed_one(fn, todo[task])
            with guard:
                running.pop(task, None)
                if task in abandoned:
                    return  # recorded as timed out, and replaced
            answers.put((task, prediction))

    def spawn() -> None:
        threading.Thread(target=work, name="predict", daemon=True).start()

    outstanding: set[int] = set()
    handed = 0

    def hand_out(n: int) -> None:
        nonlocal handed
        for _ in range(n):
            if handed >= len(todo):
                return
            outstanding.add(handed)
            tasks.put(handed)
            handed += 1

    for _ in range(min(workers, len(todo))):
        spawn()
    hand_out(workers * 2)
    try:
        while outstanding:
            with guard:
                now = time.monotonic()
                expired = [t for t, began in running.items() if now - began >= limit_s]
                for task in expired:
                    running.pop(task)
                    abandoned.add(task)
                earliest = min(running.values(), default=now)
            for task in expired:
                outstanding.discard(task)
                spawn()
                record(todo[task], _timed_out(limit_s))
                hand_out(1)
            wait = min(1.0, max(0.005, limit_s - (now - earliest)))
            try:
                task, prediction = answers.get(timeout=wait)
            except queue.Empty:
                continue
            if task in outstanding:
                outstanding.discard(task)
                record(todo[task], prediction)
                hand_out(1)
    finally:
        stop.set()
        for _ in range(workers):
            tasks.put(None)


class _OutOfTime(Exception):
    """A call ran past its time limit (not a TimeoutError the predictor raised)."""


def _call_with_limit(fn: Callable[[], Any], seconds: float) -> Any:
    """``fn()`` on a daemon thread; ``_OutOfTime`` when it takes longer than
    ``seconds`` (the thread is abandoned, never joined)."""
    box: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=1)

    def target() -> None:
        try:
            box.put((True, fn()))
        except Exception as exc:  # handed to the caller
            box.put((False, exc))
        except BaseException as exc:  # SystemExit and the like: the call's failure too
            box.put((False, _Raised(_describe(exc))))

    threading.Thread(target=target, name="predict-batch", daemon=True).start()
    deadline = time.monotonic() + seconds
    while True:
        try:
            ok, value = box.get(timeout=max(0.0, min(1.0, deadline - time.monotonic())))
            break
        except queue.Empty:
            if time.monotonic() >= deadline:
                raise _OutOfTime(seconds) from None
    if not ok:
        raise value
    return value


def _predict_chunk(predictor: Predictor, chunk: list[Product],
                   limit_s: float) -> Iterator[tuple[Product, Prediction]]:
    """A chunk's predictions, under a limit of ``limit_s`` per item. If the
    chunk fails, each item alone, so one bad item becomes one no-answer instead
    of a lost chunk; if it runs out of time, each item is a timed-out no-answer."""
    start = time.perf_counter()
    seconds = limit_s * len(chunk)
    try:
        out = list(_call_with_limit(lambda: list(predictor.predict(chunk)), seconds))
        if len(out) != len(chunk):
            raise RuntimeError(f"predict returned {len(out)} predictions for {len(chunk)} items")
    except _OutOfTime:
        for product in chunk:
            yield product, _timed_out(seconds, len(chunk))
        return
    except Exception as exc:
        if len(chunk) == 1:
            yield chunk[0], Prediction.failed(_describe(exc))
        else:
            for product in chunk:
                yield from _predict_chunk(predictor, [product], limit_s)
        return
    each = (time.perf_counter() - start) / len(chunk)
    for product, p in zip(chunk, out, strict=True):
        yield product, (_with_latency(p, each) if isinstance(p, Prediction)
                        and p.latency_s is None else p)


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
            from tqdm.auto import tqdm  # a widget in Jupyter, text on a terminal

            self._bar = tqdm(total=total, desc=name, unit="item", leave=False, disable=None)

    def update(self, record: Record) -> None:
        with self._lock:
            if record.price is not None and record.truth is not None:
                self._sum += abs(record.price - record.truth)
                self._n += 1
            if self._bar is not None:
                if self._n:
                    self._bar.set_postfix_str(f"MAE {money(self._sum / self._n)}",
                                              refresh=False)
                self._bar.update(1)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
