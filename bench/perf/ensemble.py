"""The ensemble's figures: every member's out-of-fold, holdout and test-item
error, the ensemble's, the members' error correlation, what each member adds to
the blend's cross-validated error, and each member's training time.

    python -m bench.perf.ensemble [--data-dir DIR] [--results-dir DIR]
        [--members linear,xgboost,knn,...] [--param KEY=VALUE ...] [--standalone]

Runs ``ensemble`` (resumable: members' out-of-fold runs are stored under
``<results-dir>/held-out-runs/`` and reused) on the 251 test items, then prints:

- per member: OOF MAE on the pool, MAE on the ensemble's holdout (pool rows no
  model trained on), MAE on the test items as refitted inside the ensemble,
  the blend's CV MAE without that member, and the seconds its K fold runs and
  its refit took when they ran (training included; the load average then is
  not known, so the load now is printed beside it);
- the ensemble's figures on the same three sets, and whether it beats its best
  member on each; with ``--standalone`` also each member run alone with its
  defaults (the board's runs);
- the error correlation of the members on the OOF rows.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

FALLBACK_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pricer"


def _money(value: float | None) -> str:
    return f"${value:,.2f}" if value is not None else "-"


def run(args: argparse.Namespace) -> int:
    from bench import metrics, registry, runner
    from bench.context import Context
    from bench.tables import render

    ctx = Context(data_dir=args.data_dir, results_dir=args.results_dir)
    ctx.test_set = ctx.benchmark
    test_set = ctx.test_set
    params = dict(p.split("=", 1) for p in args.param)
    if args.members:
        params["members"] = args.members
    print(f"test set {test_set.name} ({len(test_set)} items); {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    ensemble = registry.build("ensemble", params, ctx)
    started = time.perf_counter()
    result = runner.run_predictor(ensemble, test_set, args.results_dir, spec="ensemble",
                                  kind="ensemble", params=params, progress=not args.quiet)
    print(f"ensemble run: {time.perf_counter() - started:.0f} s this time "
          f"(out-of-fold runs and refits reused where stored)", flush=True)
    info = result.store.run_info()
    details: dict[str, Any] = (info.details if info else None) or {}
    if not details:
        print("the ensemble's run.json has no details: rerun after deleting "
              f"{result.store.dir}", file=sys.stderr)
        return 1
    members: dict[str, Any] = details["members"]
    blend = details["blend"]
    truth = test_set.truth()
    inside: dict[str, dict[int, float]] = {m: {} for m in members}
    for item_id, record in result.store.records().items():
        for m, price in json.loads(record.prediction.raw or "{}").items():
            if price is not None and m in inside:
                inside[m][item_id] = price
    test_mae = {m: metrics.score(truth, inside[m]).mae for m in members}
    alone: dict[str, float | None] = {}
    if args.standalone:
        for spec in members:
            own = ensemble.params.get(spec, {})
            predictor = registry.build(spec, own, ctx)
            got = runner.run_predictor(predictor, test_set, args.results_dir, spec=spec,
                                       kind=registry.get(registry.parse_spec(spec)[0]).kind,
                                       params=own, progress=not args.quiet)
            alone[spec] = got.scores.mae
    plan = details["plan"]
    print(f"\npool: {plan['oof_rows']} out-of-fold rows in {plan['k']} folds "
          f"{plan['fold_sizes']}, holdout {plan['holdout']['rows']} rows, seed {plan['seed']}; "
          f"blend {blend['form']} on {blend['rows']} rows")
    rows = []
    for m, r in members.items():
        rows.append([m, _money(r["oof_mae"]), _money(r.get("holdout_mae")),
                     _money(test_mae[m]), *([_money(alone.get(m))] if alone else []),
                     _money(blend["cv_mae_without"].get(m)),
                     f"{r['train_and_predict_s']:.0f}",
                     f"{r['train_and_predict_s'] / (plan['k'] + 1):.0f}", r["rows"]])
    holdout = details.get("holdout", {})
    best_cv = min(blend["cv_mae"].values())
    rows.append(["ensemble", _money(best_cv), _money(holdout.get("ensemble_mae")),
                 _money(result.scores.mae), *(["-"] if alone else []), "-", "-", "-",
                 f"blend {blend['form']}"])
    print(render(rows, ["member", "OOF MAE", "holdout MAE", "test MAE (inside)",
                        *(["test MAE (alone)"] if alone else []), "blend CV without it",
                        f"train+predict s ({plan['k']} folds + holdout fit)", "per fit s",
                        "OOF rows"]))
    print("(OOF MAE of the ensemble: its blend's cross-validated MAE over the OOF rows; "
          f"seconds as measured when each run trained; load average now "
          f"{os.getloadavg()[0]:.1f})")
    for label, table, ens in (
            ("OOF (CV)", {m: r["oof_mae_blend_rows"] for m, r in members.items()}, best_cv),
            ("holdout", {m: r.get("holdout_mae") for m, r in members.items()},
             holdout.get("ensemble_mae")),
            ("test items, inside", test_mae, result.scores.mae),
            ("test items, alone", alone, result.scores.mae)):
        known = {m: v for m, v in table.items() if v is not None}
        if not known or ens is None:
            continue
        best = min(known, key=lambda m: known[m])
        verdict = "beats" if ens < known[best] else "does NOT beat"
        print(f"{label}: ensemble {_money(ens)} {verdict} its best member {best} "
              f"{_money(known[best])}")
    corr = details["error_correlation"]
    names = list(corr)
    print("\nerror correlation (log errors on the OOF rows):")
    print(render([[a, *(f"{corr[a][b]:.2f}" for b in names)] for a in names],
                 ["", *names]))
    print("\nblend CV MAE by form: " + ", ".join(f"{f} {_money(v)}"
                                                 for f, v in blend["cv_mae"].items()))
    print(f"weights: {blend['weights']}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--results-dir", type=Path, default=Path("results"))
    parser.add_argument("--members", default=None, help="default: the ensemble's own")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                        help="an ensemble parameter (folds, holdout, blend, member_params)")
    parser.add_argument("--standalone", action="store_true",
                        help="also run every member alone (trains each on all its rows)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.data_dir is None and not os.environ.get("BENCH_DATA_DIR") and FALLBACK_DATA.exists():
        args.data_dir = FALLBACK_DATA
    from bench.errors import BenchError

    if any("=" not in p for p in args.param):
        print("error: --param takes KEY=VALUE", file=sys.stderr)
        return 2
    try:
        return run(args)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
