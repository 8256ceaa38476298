"""The ensemble's stacking: a holdout and K folds of the training pool, members'
out-of-fold predictions run through the runner (stored, resumable), a blend
whose form is chosen by CV on those rows only, members refitted on all rows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bench import cli, registry
from bench.context import HELD_OUT_RUNS, Context
from bench.errors import BenchError
from bench.runner import run_predictor
from bench.types import Example
from predictors.ensemble import blend
from predictors.ensemble.folds import make_plan
from predictors.ensemble.predictor import EnsemblePredictor, correlation
from tests.fake_llm_server import FakeLLMServer

# Cheap members that train on exactly the ensemble's pool (the same seeded sample
# of 400 pool rows), so "refitted on all rows" is checkable row by row.
PARAMS = {"members": "constant,linear", "pool_size": "400", "holdout": "40", "folds": "3",
          "member_params": "constant.include_extra=true;constant.train_size=400;"
                           "linear.include_extra=true;linear.train_size=400"}


@pytest.fixture
def ctx(tmp_path: Path, data_dir: Path) -> Context:
    ctx = Context(data_dir=data_dir, cache_dir=tmp_path / "cache",
                  results_dir=tmp_path / "results")
    ctx.test_set = ctx.benchmark
    return ctx


def ids(rows: list[Example]) -> set[int]:
    return {e.product.id for e in rows}


def texts(rows) -> set[str]:
    return {e.product.description for e in rows}


# -- the split -------------------------------------------------------------------------


def test_folds_are_disjoint_covering_balanced_and_fixed_by_the_seed(ctx):
    pool, _ = ctx.train_examples(include_extra=True)
    plan = make_plan(pool, 5, 500, 300, 42)
    folds = [ids(rows) for rows in plan.folds]
    assert all(a.isdisjoint(b) for i, a in enumerate(folds) for b in folds[i + 1:])
    assert set().union(*folds) | ids(plan.holdout) == ids(pool)
    assert ids(plan.holdout).isdisjoint(set().union(*folds))
    assert len(plan.holdout) == 500
    assert max(map(len, folds)) - min(map(len, folds)) <= 1
    assert ids(plan.paid) <= set().union(*folds) and len(plan.paid) == 300
    for f, rows in enumerate(plan.folds):
        assert all(plan.fold_of(e.product.id) == f for e in rows)
    # The paid slice is spread over every fold (so the blend can be cross-validated).
    assert {plan.fold_of(i) for i in ids(plan.paid)} == set(range(5))
    again = make_plan(pool, 5, 500, 300, 42)
    assert again.digest() == plan.digest() and [ids(r) for r in again.folds] == folds
    assert make_plan(pool, 5, 500, 300, 7).digest() != plan.digest()
    with pytest.raises(ValueError, match="too few"):
        make_plan(pool[:60], 5, 30, 10, 42)


def test_test_items_are_never_in_the_pool(ctx, tmp_path):
    e: EnsemblePredictor = registry.build("ensemble", {}, ctx)
    plan = e.plan()
    pooled = texts([*plan.holdout, *plan.oof_rows])
    assert len(pooled) > 12_000
    assert not pooled & {p.description for p in ctx.benchmark.products()}
    # A --test file's items are removed from the pool too.
    other = Context(data_dir=ctx.data_dir, cache_dir=ctx.cache_dir)
    pool, _ = other.train_examples(include_extra=True)
    rows = [json.dumps({"text": f"{x.product.prompt}{x.price:.2f}", "price": x.price})
            for x in pool[100:103]]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(rows) + "\n")
    from bench import data

    mine_ctx = Context(data_dir=ctx.data_dir, cache_dir=ctx.cache_dir)
    mine_ctx.test_set = data.load_test_set(test_file=path)
    mine = registry.build("ensemble", {}, mine_ctx).plan()
    assert not texts([*mine.holdout, *mine.oof_rows]) & texts(pool[100:103])


# -- out-of-fold discipline --------------------------------------------------------------


def test_no_row_is_predicted_by_a_model_that_trained_on_it_and_refits_use_all_rows(ctx):
    e: EnsemblePredictor = registry.build("ensemble", PARAMS, ctx)
    plan = e.plan()
    assert len(plan.folds) == 3 and len(plan.holdout) == 40
    pool = texts([*plan.holdout, *plan.oof_rows])
    for spec in e.specs:
        for f in range(3):
            member = e.fold_context(f).build(spec, e.params[spec])
            trained = texts(member.training_examples())
            assert trained.isdisjoint(texts(plan.folds[f]))  # no row predicts itself
            assert trained.isdisjoint(texts(plan.holdout))
            others = set().union(*(texts(plan.folds[g]) for g in range(3) if g != f))
            assert others <= trained  # every other fold's row is in its training
        refit = e.members()[e.specs.index(spec)]
        assert texts(refit.training_examples()) == pool  # refitted on every row
        on_holdout = e.holdout_context().build(spec, e.params[spec])
        assert texts(on_holdout.training_examples()) == pool - texts(plan.holdout)


def test_ensemble_stores_oof_runs_fits_its_blend_on_them_and_records_it(ctx, capsys,
                                                                        monkeypatch):
    fitted_on: list[list[float]] = []
    real_fit = blend.fit

    def spy(prices, truth, fold_ids, form="auto", seed=42):
        fitted_on.append(list(truth))
        return real_fit(prices, truth, fold_ids, form, seed)

    monkeypatch.setattr(blend, "fit", spy)
    e = registry.build("ensemble", PARAMS, ctx)
    result = run_predictor(e, ctx.benchmark, ctx.results_dir, spec="ensemble",
                           kind="ensemble", limit=8, progress=False)
    assert result.scores.answered == 8
    plan = e.plan()
    # The blend was fitted once, on the OOF rows' truths: never a test item's.
    assert fitted_on == [[x.price for x in plan.oof_rows]]
    runs = sorted((ctx.results_dir / HELD_OUT_RUNS).glob("*/*/run.json"))
    assert len(runs) == 2 * (3 + 1)  # each member: one run per fold, one on the holdout
    for f in range(3):
        (linear_run,) = [p for p in runs if f"oof-fold{f + 1}of3-" in str(p)
                         and "/linear-" in str(p)]
        stored = {json.loads(line)["id"]: json.loads(line)["price"]
                  for line in (linear_run.parent / "predictions.jsonl").read_text().splitlines()}
        assert set(stored) == ids(plan.folds[f])
        # What the fold's model predicts, not what the refit (which saw the rows) does.
        fold_model = e.fold_context(f).build("linear", e.params["linear"])
        rows = plan.folds[f][:20]
        guesses = [p.price for p in fold_model.predict([x.product for x in rows])]
        assert [stored[x.product.id] for x in rows] == guesses
        refit_guesses = [p.price for p in e.members()[1].predict([x.product for x in rows])]
        assert refit_guesses != guesses

    info = json.loads((result.store.dir / "run.json").read_text())
    details = info["details"]
    assert details["plan"]["k"] == 3 and details["plan"]["fold_sizes"] == [120, 120, 120]
    assert details["plan"]["holdout"]["ids"] == [x.product.id for x in plan.holdout]
    assert info["fingerprint"]["plan"]["sha256"] == plan.digest()
    cv = details["blend"]["cv_mae"]
    assert set(cv) == set(blend.FORMS)
    assert details["blend"]["form"] == min(cv, key=lambda f: (cv[f], blend.FORMS.index(f)))
    assert details["blend"]["rows"] == 360
    members = details["members"]
    assert set(members) == {"constant", "linear"}
    assert members["linear"]["oof_answered"] == "360/360"
    assert members["linear"]["oof_mae"] < members["constant"]["oof_mae"]
    corr = details["error_correlation"]
    assert corr["linear"]["linear"] == 1.0 and -1 <= corr["linear"]["constant"] <= 1
    assert details["holdout"]["rows"] == 40
    assert "refit" in details
    # Each item's raw holds the members' guesses; the blend reproduces the price.
    record = next(iter(result.store.records().values()))
    guesses = json.loads(record.prediction.raw)
    assert record.price == pytest.approx(
        e._blend.predict([[guesses["constant"], guesses["linear"]]])[0], abs=0.01)
    # A rerun resumes: no member runs again on any fold.
    before = {p: p.stat().st_mtime_ns for p in runs}
    again = run_predictor(registry.build("ensemble", PARAMS, ctx), ctx.benchmark,
                          ctx.results_dir, spec="ensemble", kind="ensemble", limit=8,
                          progress=False)
    assert again.predicted == 0
    assert {p: p.stat().st_mtime_ns for p in runs} == before
    # `bench show ensemble` prints members, OOF errors, correlation and the blend.
    assert cli.main(["show", "ensemble", "--results-dir", str(ctx.results_dir),
                     "--data-dir", str(ctx.data_dir)]) == 0
    shown = capsys.readouterr().out
    assert f"oof_mae: {members['linear']['oof_mae']:.4g}" in shown
    assert "error_correlation:" in shown and "cv_mae:" in shown
    assert f"form: {details['blend']['form']}" in shown
    assert "oof-fold" not in shown.split("Details")[0]


def test_paid_members_answer_a_declared_slice_and_the_dry_run_costs_it(ctx, monkeypatch,
                                                                       capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-ensemble")
    with FakeLLMServer() as server:
        params = {"members": "linear,openai:gpt-4o-mini", "pool_size": "200",
                  "holdout": "10", "folds": "3", "paid_slice": "24",
                  "member_params": f"linear.train_size=300;openai.base_url={server.openai_url}"}
        e: EnsemblePredictor = registry.build("ensemble", params, ctx)
        assert not e.is_paid("linear") and e.is_paid("openai:gpt-4o-mini")
        items = ctx.benchmark.products()[:5]
        estimate = e.estimate(items)
        asked = {(b["member"], b["part"]): b["rows"] for b in estimate["breakdown"]}
        assert sum(v for (m, p), v in asked.items() if p.startswith("fold")) == 24
        assert asked[("openai:gpt-4o-mini", "holdout")] == 10
        assert asked[("openai:gpt-4o-mini", "items")] == 5
        assert estimate["requests"] == 24 + 10 + 5 and estimate["cost_usd"] > 0
        assert not server.requests  # nothing sent
        assert cli.main(["run", "ensemble", "--dry-run", "--limit", "5",
                         "--data-dir", str(ctx.data_dir),
                         *[a for k, v in params.items() for a in ("--param", f"{k}={v}")]]) == 0
        out = capsys.readouterr().out
        assert "ensemble" in out and "39" in out
        assert "openai:gpt-4o-mini holdout: 10 rows, 10 requests" in out
        result = run_predictor(e, ctx.benchmark, ctx.results_dir, spec="ensemble",
                               kind="ensemble", limit=5, progress=False)
        assert result.scores.answered == 5
        chat = [r for r in server.requests if r.path.endswith("/chat/completions")]
        assert len(chat) == 24 + 10 + 5
    details = e.run_details()
    assert details["members"]["openai:gpt-4o-mini"]["rows"] == "paid slice"
    assert details["members"]["openai:gpt-4o-mini"]["oof_answered"] == "24/24"
    assert details["members"]["linear"]["oof_answered"] == "190/190"
    assert details["blend"]["rows"] == 24  # only where every member answered
    assert details["members"]["openai:gpt-4o-mini"]["cost_usd"] > 0


# -- the blend ---------------------------------------------------------------------------


def test_blend_forms_are_chosen_by_cv_and_weights_find_the_right_member():
    rng = np.random.default_rng(1)
    truth = np.exp(rng.uniform(1, 6, 300))
    good = truth * np.exp(rng.normal(0, 0.1, 300))
    noise = np.exp(rng.uniform(1, 6, 300))
    prices = np.column_stack([good, noise]).tolist()
    folds = [i % 5 for i in range(300)]
    fitted, cv = blend.fit(prices, truth.tolist(), folds)
    assert set(cv) == set(blend.FORMS)
    assert fitted.form == min(cv, key=lambda f: (cv[f], blend.FORMS.index(f)))
    for form in ("log", "log-0", "dollars", "dollars-0"):
        one = blend.fit_form(prices, truth.tolist(), form)
        weights = one.named(["good", "noise"])
        assert all(w >= 0 for k, w in weights.items() if k != "intercept")
        assert weights["good"] > 0.5 and weights["noise"] < 0.1
        if form.endswith("-0"):
            assert weights["intercept"] == 0
    guess = blend.fit_form(prices, truth.tolist(), "gbm").predict([[100.0, 5.0]])[0]
    assert 50 < guess < 200
    # CV predictions come from forms that never saw the row's fold.
    cvp = blend.cv_predictions(prices, truth.tolist(), "log", folds)
    held = [i for i in range(300) if folds[i] == 0]
    rest = [i for i in range(300) if folds[i] != 0]
    alone = blend.fit_form([prices[i] for i in rest], [truth[i] for i in rest], "log")
    assert [cvp[i] for i in held] == pytest.approx(alone.predict([prices[i] for i in held]))
    with pytest.raises(ValueError, match="at least 10"):
        blend.fit([[1.0, 2.0]] * 5, [1.0] * 5, [0, 1, 0, 1, 0])
    with pytest.raises(ValueError, match="one fold"):
        blend.fit([[1.0, 2.0]] * 20, [1.0] * 20, [0] * 20)


def test_error_correlation_is_of_log_errors():
    truth = [10.0, 20.0, 40.0, 80.0]
    a = [t * 2 for t in truth[:2]] + [t / 2 for t in truth[2:]]
    b = [t * 4 for t in truth[:2]] + [t / 4 for t in truth[2:]]
    c = [t / 2 for t in truth[:2]] + [t * 2 for t in truth[2:]]
    r = correlation(np.column_stack([a, b, c]).tolist(), truth, ["a", "b", "c"])
    assert r["a"]["b"] == pytest.approx(1.0) and r["a"]["c"] == pytest.approx(-1.0)


def test_member_parameters_and_bad_settings_are_one_clear_error(ctx):
    e = registry.build("ensemble", PARAMS, ctx)
    assert e.params["linear"] == {"include_extra": "true", "train_size": "400"}
    for bad, match in (({"members": "linear"}, "at least two"),
                       ({"members": "linear,linear"}, "twice"),
                       ({"members": "linear,ensemble"}, "its own member"),
                       ({"members": "linear,constant", "member_params": "knn.k=3"},
                        "MEMBER.KEY"),
                       ({"members": "linear,constant", "member_params": "linear.alpha"},
                        "MEMBER.KEY"),
                       ({"folds": "1"}, "at least 2"),
                       ({"holdout": "-1"}, "negative"),
                       ({"blend": "median"}, "blend must be"),
                       ({"members": "linear,constant", "colour": "red"}, "no parameter")):
        with pytest.raises(BenchError, match=match):
            registry.build("ensemble", bad, ctx)
    too_big = registry.build("ensemble", {**PARAMS, "holdout": "390"}, ctx)
    with pytest.raises(BenchError, match="too few"):
        too_big.plan()


def test_ensemble_passes_check_predictor(ctx):
    from bench.testing import check_predictor

    check_predictor(registry.build("ensemble", PARAMS, ctx))
