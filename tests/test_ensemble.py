"""The ensemble: a validation slice held out of the training rows, members run on
it through the runner (stored, resumable), a non-negative blend whose weights
land in run.json and in ``bench show``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import cli, registry
from bench.context import HELD_OUT_RUNS, Context
from bench.errors import BenchError
from bench.runner import run_predictor
from predictors.ensemble import blend
from predictors.ensemble.predictor import EnsemblePredictor

# Cheap members: the constant floor and the linear model on a 300-row sample.
PARAMS = {"members": "constant,linear", "slice_size": "60",
          "member_params": "linear.train_size=300"}


@pytest.fixture
def ctx(tmp_path: Path, data_dir: Path) -> Context:
    ctx = Context(data_dir=data_dir, cache_dir=tmp_path / "cache",
                  results_dir=tmp_path / "results")
    ctx.test_set = ctx.benchmark
    return ctx


def test_blend_weights_are_non_negative_and_find_the_right_member():
    rng = np.random.default_rng(1)
    truth = np.exp(rng.uniform(1, 6, 300))
    good = truth * np.exp(rng.normal(0, 0.1, 300))
    noise = np.exp(rng.uniform(1, 6, 300))
    fitted, cv = blend.fit(np.column_stack([good, noise]).tolist(), truth.tolist())
    assert set(cv) == {"log", "dollars"} and fitted.form in cv
    weights = fitted.named(["good", "noise"])
    assert all(w >= 0 for k, w in weights.items() if k != "intercept")
    assert weights["good"] > 0.5 and weights["noise"] < 0.1
    guess = fitted.predict([[100.0, 5.0]])[0]
    assert 70 < guess < 130
    with pytest.raises(ValueError, match="at least 10"):
        blend.fit([[1.0, 2.0]] * 5, [1.0] * 5)


def test_member_parameters_and_bad_members_are_one_clear_error(ctx):
    e = registry.build("ensemble", PARAMS, ctx)
    assert e.params == {"constant": {}, "linear": {"train_size": "300"}}
    for bad, match in (({"members": "linear"}, "at least two"),
                       ({"members": "linear,linear"}, "twice"),
                       ({"members": "linear,ensemble"}, "its own member"),
                       ({"members": "linear,constant", "member_params": "knn.k=3"},
                        "MEMBER.KEY"),
                       ({"members": "linear,constant", "member_params": "linear.alpha"},
                        "MEMBER.KEY"),
                       ({"members": "linear,constant", "colour": "red"}, "no parameter")):
        with pytest.raises(BenchError, match=match):
            registry.build("ensemble", bad, ctx)


def test_slice_is_held_out_of_members_training_and_never_a_test_item(ctx):
    e: EnsemblePredictor = registry.build("ensemble", PARAMS, ctx)
    rows = e.validation_slice()
    assert len(rows) == 60
    assert [r.product.id for r in rows] == [r.product.id for r in e.validation_slice()]
    sliced = {r.product.description for r in rows}
    test_texts = {p.description for p in ctx.benchmark.products()}
    assert not sliced & test_texts
    pool, _ = ctx.train_examples()
    assert sliced <= {x.product.description for x in pool}  # drawn from training rows
    for member in e.members():
        trained_on = {x.product.description for x in member.training_examples()}
        assert trained_on and not trained_on & sliced
    # A different seed draws a different slice.
    other = registry.build("ensemble", {**PARAMS, "seed": "7"}, ctx)
    assert {r.product.id for r in other.validation_slice()} != {r.product.id for r in rows}


def test_ensemble_runs_members_on_the_slice_and_records_its_weights(ctx, capsys):
    e = registry.build("ensemble", PARAMS, ctx)
    result = run_predictor(e, ctx.benchmark, ctx.results_dir, spec="ensemble",
                           kind="ensemble", limit=8, progress=False)
    assert result.scores.answered == 8
    info = json.loads((result.store.dir / "run.json").read_text())
    assert info["kind"] == "ensemble"
    members = info["fingerprint"]["members"]
    assert [m["spec"] for m in members] == ["constant", "linear"]
    assert all(m["train"]["digest"].startswith("sha256:") for m in members)
    details = info["details"]
    assert details["slice"]["size"] == 60 and len(details["slice"]["ids"]) == 60
    assert details["slice"]["ids"] == [r.product.id for r in e.validation_slice()]
    weights = details["blend"]["weights"]
    assert set(weights) == {"intercept", "constant", "linear", "min", "max"}
    assert all(weights[k] >= 0 for k in ("constant", "linear", "min", "max"))
    assert details["blend"]["rows"] == 60
    # Each member ran on the slice through the runner, stored apart from test runs.
    slice_runs = sorted((ctx.results_dir / HELD_OUT_RUNS).glob("slice-*/*/run.json"))
    assert len(slice_runs) == 2
    for path in slice_runs:
        run = json.loads(path.read_text())
        assert run["items"] == 60 and run["status"] == "complete"
        assert run["metrics"]["mae"] is not None
    # Each item's raw holds the members' guesses; the blend reproduces the price.
    record = next(iter(result.store.records().values()))
    guesses = json.loads(record.prediction.raw)
    assert set(guesses) == {"constant", "linear"}
    assert record.price == pytest.approx(e._blend.predict([[guesses["constant"],
                                                            guesses["linear"]]])[0], abs=0.01)
    # A rerun resumes: members are not run again on the slice.
    before = {p: p.stat().st_mtime_ns for p in slice_runs}
    again = run_predictor(registry.build("ensemble", PARAMS, ctx), ctx.benchmark,
                          ctx.results_dir, spec="ensemble", kind="ensemble", limit=8,
                          progress=False)
    assert again.predicted == 0
    assert {p: p.stat().st_mtime_ns for p in slice_runs} == before
    # `bench show ensemble` prints the weights; the leaderboard never lists slice runs.
    assert cli.main(["show", "ensemble", "--results-dir", str(ctx.results_dir),
                     "--data-dir", str(ctx.data_dir)]) == 0
    shown = capsys.readouterr().out
    assert "weights:" in shown and f"linear: {weights['linear']:.4g}" in shown
    assert "slice-" not in shown.split("Details")[0]


def test_ensemble_passes_check_predictor(ctx):
    from bench.testing import check_predictor

    check_predictor(registry.build("ensemble", PARAMS, ctx))
