"""``bench run --log mlflow``: each run into MLflow, beside a team's own experiments.

MLflow's own client (``mlflow``, the ``mlflow`` extra; imported only here and
only when asked). The tracking URI is ``MLFLOW_TRACKING_URI`` when set (any
server or database), else a local file store under the results dir
(``<results>/mlruns``; MLflow's file store needs ``MLFLOW_ALLOW_FILE_STORE``,
set for that default only). Per run: its parameters (predictor, spec, kind,
test set, fingerprint, data fingerprint, ``--param`` values), figures (MAE,
its interval, RMSLE, hits, median error, coverage, cost, time per item), tags
(status, reason, git commit), and as artifacts the per-item table
(``items.csv``), ``run.json`` and the scatter and running-error charts.
"""

from __future__ import annotations

import csv
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.metrics import band
from bench.store import RunStore

EXPERIMENT = "pricer-bench"
MISSING = "--log mlflow needs MLflow's client: pip install 'pricer-bench[mlflow]'"


def client(results_dir: Path) -> Any:
    """An MlflowClient on the tracking URI; BenchError (exit 2) without MLflow."""
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise BenchError(MISSING) from None
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
        uri = (results_dir.resolve() / "mlruns").as_uri()
    return MlflowClient(tracking_uri=uri)


def log_run(mlflow: Any, store: RunStore, experiment: str = EXPERIMENT) -> str:
    """Log one stored run; returns the MLflow run id."""
    info = store.run_info()
    if info is None:
        raise BenchError("run.json missing or damaged: nothing to log", store.run_path)
    found = mlflow.get_experiment_by_name(experiment)
    exp_id = found.experiment_id if found else mlflow.create_experiment(experiment)
    run = mlflow.create_run(exp_id, run_name=info.predictor, tags={
        "bench.status": info.status or "", "bench.reason": info.reason or "",
        "bench.git_commit": info.git_commit or "", "bench.run_dir": str(store.dir)})
    run_id = run.info.run_id
    try:
        params = {"predictor": info.predictor, "spec": info.spec, "kind": info.kind,
                  "test_set": info.test_set, "fingerprint": info.fingerprint_hash,
                  "data_fingerprint": info.data_fingerprint, "items": info.items,
                  **{f"param.{k}": v for k, v in (info.params or {}).items()}}
        for key, value in params.items():
            if value is not None:
                mlflow.log_param(run_id, key, str(value)[:6000])
        for key, value in _figures(info).items():
            mlflow.log_metric(run_id, key, value)
        with tempfile.TemporaryDirectory(prefix="bench-mlflow-") as tmp:
            for path in _artifacts(store, Path(tmp), info.predictor or store.dir.name):
                mlflow.log_artifact(run_id, str(path))
        mlflow.set_terminated(run_id, "FINISHED" if info.status == "complete" else "KILLED")
    except BaseException:
        mlflow.set_terminated(run_id, "FAILED")
        raise
    return str(run_id)


def _figures(info: Any) -> dict[str, float]:
    s, t = info.metrics, info.totals
    out: dict[str, Any] = {}
    if s is not None:
        out.update(mae=s.mae, rmsle=s.rmsle, hit_rate=s.hit_rate, median_error=s.median_error,
                   coverage=s.coverage, answered=s.answered, total=s.total)
        if s.mae_ci95:
            out["mae_ci95_low"], out["mae_ci95_high"] = s.mae_ci95
    if t is not None:
        out.update(cost_usd=t.cost_usd, input_tokens=t.input_tokens,
                   output_tokens=t.output_tokens)
    out["seconds_per_item"] = info.seconds_per_item
    return {k: float(v) for k, v in out.items() if v is not None}


def _artifacts(store: RunStore, folder: Path, name: str) -> list[Path]:
    """items.csv (one row per item), run.json, and the two charts of this run."""
    records = store.records()
    table = folder / "items.csv"
    with table.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(["id", "truth", "guess", "error", "band", "no_answer_reason",
                      "latency_s", "cost_usd"])
        for i in sorted(records):
            r = records[i]
            error = abs(r.price - r.truth) if r.price is not None and r.truth is not None \
                else None
            out.writerow([i, r.truth, r.price, error,
                          band(error, r.truth) if error is not None and r.truth is not None else "",
                          r.error or "", r.prediction.latency_s, r.prediction.cost_usd])
    paths = [table, store.run_path]
    answered = [r for _, r in sorted(records.items())
                if r.price is not None and r.truth is not None]
    if answered:
        from bench.reports import charts  # matplotlib: only when there is something to draw

        truth = [float(r.truth) for r in answered]  # type: ignore[arg-type]
        guess = [float(r.price) for r in answered]  # type: ignore[arg-type]
        charts.draw_scatter(folder / "scatter.png", name, truth, guess)
        charts.draw_running(folder / "running.png", name,
                            [abs(g - t) for g, t in zip(guess, truth, strict=True)])
        paths += [folder / "scatter.png", folder / "running.png"]
    return paths
