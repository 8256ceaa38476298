"""Classic baselines: test-set figures next to cross-validated ones, with costs.

    python -m bench.perf.classic [--data-dir DIR] [--folds 5] [--extra default|yes|no]
                                 [--predictors constant,linear,random-forest,xgboost]
                                 [--param KEY=VALUE ...] [--repro]

For each predictor, in its own process (so peak memory is its own):
5-fold cross-validated MAE on the training pool (the model never sees the
held-out fold; when the predictor's ``include_extra`` is on, or with
--extra yes, the extra products join every training fold but are never
scored), then a fit on all its training rows (training time), prediction of
the 251 test items (prediction time), and MAE / RMSLE / hits on them. The CV
figure over pool rows that have ``details`` is shown apart: those rows come
from the same split of the source as the test items. Nothing is tuned here
on the test items: defaults were chosen by CV on the pool.

``--repro`` trains and predicts each predictor (no CV) under conditions that
mimic another machine of the same kind: one thread, another OpenBLAS kernel
(``OPENBLAS_CORETYPE=Prescott``, set in that child process only), numpy
without each SIMD level it dispatches to here in turn (``NPY_DISABLE_CPU_FEATURES``,
that level and all above it), another folder with
a fresh cache, more threads and ``n_jobs=1``. It prints the test MAE and a
digest of the 251 predictions for each: they must all be the same.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

DEFAULT = "constant,linear,random-forest,xgboost"
FALLBACK_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pricer"


def _one(name: str, data_dir: str, folds: int, extra_choice: str,
         params: dict[str, str]) -> dict[str, Any]:
    import numpy as np
    from sklearn.model_selection import KFold

    from bench import metrics, registry
    from bench.context import Context

    ctx = Context(data_dir=Path(data_dir))
    test = ctx.benchmark
    pool, _ = ctx.train_examples()
    accepted = inspect.signature(registry.get(name).factory).parameters
    own = {k: v for k, v in params.items() if k in accepted}

    def fresh() -> Any:  # no context: fit in memory, never read or write saved models
        return registry.build(name, own, None)

    include_extra = {"yes": True, "no": False}.get(
        extra_choice, bool(getattr(fresh(), "include_extra", False)))
    extra: list[Any] = []
    if include_extra:
        everything, _ = ctx.train_examples(include_extra=True)
        seen = {e.product.description for e in pool}
        extra = [e for e in everything if e.product.description not in seen]
    out: dict[str, Any] = {"predictor": name, "params": own, "pool": len(pool),
                           "extra": len(extra)}
    if folds > 1:
        truth = np.array([e.price for e in pool])
        guess = np.zeros(len(pool))
        splitter = KFold(folds, shuffle=True, random_state=0)
        for train, held in splitter.split(np.arange(len(pool))):
            model = fresh()
            model.fit([pool[i] for i in train] + extra)
            guess[held] = [p.price for p in model.predict([pool[i].product for i in held])]
        errors = np.abs(guess - truth)
        same_source = np.array([bool(e.product.details) for e in pool])
        out["cv_mae"] = float(errors.mean())
        out["cv_mae_with_details"] = float(errors[same_source].mean())
        out["cv_rows_with_details"] = int(same_source.sum())

    model = fresh()
    started = time.perf_counter()
    model.fit(pool + extra)
    out["train_s"] = time.perf_counter() - started
    products = test.products()
    started = time.perf_counter()
    answers = model.predict(products)
    out["predict_s"] = time.perf_counter() - started
    scores = metrics.score(test.truth(), {p.id: a.price for p, a in
                                          zip(products, answers, strict=True)})
    prices = json.dumps([a.price for a in answers])
    out["digest"] = hashlib.sha256(prices.encode()).hexdigest()[:16]
    out.update(mae=scores.mae, rmsle=scores.rmsle, hits=scores.hit_rate,
               peak_rss_mib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return out


def _row(r: dict[str, Any]) -> str:
    cv = f"${r['cv_mae']:.2f}" if "cv_mae" in r else "-"
    cv_d = f"${r['cv_mae_with_details']:.2f}" if "cv_mae" in r else "-"
    rows = f"{r['pool']:,}" + (f" + {r['extra']:,} extra" if r["extra"] else "")
    return (f"| {r['predictor']} | {rows} | ${r['mae']:.2f} | {r['rmsle']:.2f} | {r['hits']:.1%} | "
            f"{cv} | {cv_d} | {r['train_s']:.1f} s | {r['predict_s']:.2f} s | "
            f"{r['peak_rss_mib']:.0f} MiB |")


def _conditions(scratch: Path) -> list[tuple[str, dict[str, str], Path | None, list[str]]]:
    """(label, environment changes, working folder, extra params) for --repro."""
    out: list[tuple[str, dict[str, str], Path | None, list[str]]] = [
        ("as is", {}, None, []),
        ("1 thread", {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}, None, []),
        ("OpenBLAS kernel Prescott", {"OPENBLAS_CORETYPE": "Prescott"}, None, []),
    ]
    from bench.exactmath import without_levels

    out += [(label, {"NPY_DISABLE_CPU_FEATURES": value}, None, [])
            for label, value in without_levels()]
    out.append(("other folder, fresh cache, 3 threads, n_jobs=1",
                {"OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": "3", "LC_ALL": "C",
                 "PYTHONHASHSEED": "1", "BENCH_CACHE_DIR": str(scratch / "cache")},
                scratch, ["n_jobs=1"]))
    return out


def _repro(args: argparse.Namespace) -> None:
    root = Path(__file__).resolve().parents[2]
    print(f"data: {args.data_dir}; params: {args.param or 'defaults'}; the same inputs "
          "under conditions of another machine", flush=True)
    print("| predictor | condition | test MAE | predictions sha256 | train |")
    print("| --- | --- | ---: | --- | ---: |", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-repro-") as scratch:
        for name in args.predictors.split(","):
            for label, env, cwd, extra in _conditions(Path(scratch)):
                command = [sys.executable, "-m", "bench.perf.classic", "--one", name,
                           "--data-dir", str(args.data_dir), "--folds", "0",
                           "--extra", args.extra,
                           *(f"--param={p}" for p in [*args.param, *extra])]
                full_env = {**os.environ, **env, "PYTHONPATH": os.pathsep.join(
                    filter(None, (str(root), os.environ.get("PYTHONPATH"))))}
                done = subprocess.run(command, capture_output=True, text=True, env=full_env,
                                      cwd=cwd or root)
                if done.returncode != 0:
                    print(f"| {name} | {label} | failed: "
                          f"{done.stderr.strip().splitlines()[-1:]} | | |", flush=True)
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"| {name} | {label} | ${r['mae']:.4f} | {r['digest']} | "
                      f"{r['train_s']:.0f} s |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=os.environ.get("BENCH_DATA_DIR") or FALLBACK_DATA)
    parser.add_argument("--predictors", default=DEFAULT)
    parser.add_argument("--folds", type=int, default=5, help="0 skips cross-validation")
    parser.add_argument("--extra", choices=("default", "yes", "no"), default="default",
                        help="add the extra products to every training set (default: "
                             "as the predictor's include_extra parameter says)")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to each predictor that takes it")
    parser.add_argument("--repro", action="store_true",
                        help="train under conditions of another machine; compare figures")
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    params = dict(p.split("=", 1) for p in args.param)
    if args.repro:
        _repro(args)
        return
    if args.one:
        print(json.dumps(_one(args.one, str(args.data_dir), args.folds, args.extra, params)))
        return
    print(f"data: {args.data_dir}; {args.folds}-fold CV on the pool; extra products: "
          f"{args.extra}; params: {params or 'defaults'}", flush=True)
    print("| predictor | train rows | test MAE | RMSLE | hits | CV MAE (pool) | CV MAE (rows "
          "with details) | train | predict 251 | peak RSS |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", flush=True)
    for name in args.predictors.split(","):
        command = [sys.executable, "-m", "bench.perf.classic", "--one", name, "--data-dir",
                   str(args.data_dir), "--folds", str(args.folds),
                   "--extra", args.extra,
                   *(f"--param={p}" for p in args.param)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            print(f"| {name} | failed: {done.stderr.strip().splitlines()[-1:]} |", flush=True)
            continue
        print(_row(json.loads(done.stdout.strip().splitlines()[-1])), flush=True)


if __name__ == "__main__":
    main()
