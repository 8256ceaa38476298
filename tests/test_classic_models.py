"""Classic predictors: train/save/load, keys, tamper refusal, test-row dedupe, CLI.

Small on purpose: 240 training rows, few trees, 2 folds, so the file runs in
well under a minute on two cores. Quality figures come from
``python -m bench.perf.classic``, not from here.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from bench import registry
from bench.context import Context
from bench.errors import BenchError
from tests.conftest import run_cli

SMALL = {"n_estimators": "12", "svd": "8", "folds": "2"}
LEAKED = 3  # test rows copied into the training file


@pytest.fixture(scope="module")
def small_data(tmp_path_factory, data_dir) -> Path:
    """A data dir: the real test set, 240 real training rows plus copies of test rows."""
    folder = tmp_path_factory.mktemp("data")
    (folder / "test.jsonl").write_text((data_dir / "test.jsonl").read_text())
    train = (data_dir / "train.jsonl").read_text().splitlines()[:240]
    leaked = []
    for line in (data_dir / "test.jsonl").read_text().splitlines()[:LEAKED]:
        row = json.loads(line)
        leaked.append(json.dumps({"text": row["text"], "price": row["price"] + 1}))
    (folder / "train.jsonl").write_text("\n".join(train[:100] + leaked + train[100:]) + "\n")
    return folder


def _ctx(data: Path, cache: Path) -> Context:
    return Context(data_dir=data, cache_dir=cache)


def _build(name: str, ctx: Context, **params: str):
    extra = SMALL if name in ("random-forest", "xgboost") else {}
    return registry.build(name, {**extra, **params}, ctx)


def _prices(predictor, products) -> list[float]:
    return [p.price for p in predictor.predict(products)]


@pytest.mark.parametrize("name", ["constant", "linear", "random-forest", "xgboost"])
def test_train_save_load_round_trip_gives_identical_predictions(name, small_data, tmp_path):
    ctx = _ctx(small_data, tmp_path)
    products = ctx.benchmark.products()[:40]
    trained = _build(name, ctx)
    trained.prepare()
    assert trained.fit_seconds is not None and trained.model_dir is not None
    first = _prices(trained, products)
    assert all(p is not None and p >= 0 for p in first)

    loaded = _build(name, ctx)
    loaded.prepare()
    assert loaded.fit_seconds is None  # loaded from disk, not trained again
    assert loaded.model_dir == trained.model_dir
    assert _prices(loaded, products) == first
    if name in ("random-forest", "xgboost"):
        assert len(set(first)) > 10  # a real model, not a constant
    files = {p.name for p in trained.model_dir.iterdir()}
    assert not any(f.endswith((".pkl", ".pickle", ".joblib")) for f in files)


def test_same_data_and_seed_give_the_same_predictions_in_a_fresh_cache(small_data, tmp_path):
    products = _ctx(small_data, tmp_path / "a").benchmark.products()[:30]
    a = _build("xgboost", _ctx(small_data, tmp_path / "a"))
    b = _build("xgboost", _ctx(small_data, tmp_path / "b"))
    assert _prices(a, products) == _prices(b, products)
    forest_a = _build("random-forest", _ctx(small_data, tmp_path / "a"))
    forest_b = _build("random-forest", _ctx(small_data, tmp_path / "b"))
    assert _prices(forest_a, products) == _prices(forest_b, products)


def test_changing_parameters_or_data_trains_a_new_model(small_data, tmp_path):
    ctx = _ctx(small_data, tmp_path / "cache")
    base = _build("linear", ctx)
    base.prepare()
    other_alpha = _build("linear", ctx, alpha="2.0")
    assert other_alpha.fingerprint() != base.fingerprint()
    other_alpha.prepare()
    assert other_alpha.fit_seconds is not None and other_alpha.model_dir != base.model_dir
    fewer = _build("linear", ctx, train_size="150")
    fewer.prepare()
    assert fewer.fit_seconds is not None and fewer.model_dir != base.model_dir

    # The same parameters on changed training data: one price edited.
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "test.jsonl").write_text((small_data / "test.jsonl").read_text())
    lines = (small_data / "train.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["price"] += 5
    (changed / "train.jsonl").write_text("\n".join([json.dumps(row), *lines[1:]]) + "\n")
    edited = _build("linear", _ctx(changed, tmp_path / "cache"))
    assert edited.fingerprint()["train"] != base.fingerprint()["train"]
    edited.prepare()
    assert edited.fit_seconds is not None and edited.model_dir != base.model_dir

    again = _build("linear", ctx)
    again.prepare()
    assert again.fit_seconds is None and again.model_dir == base.model_dir


def _trained_xgboost(small_data: Path, cache: Path):
    model = _build("xgboost", _ctx(small_data, cache))
    model.prepare()
    return model.model_dir


@pytest.mark.parametrize("target", ["xgboost.json", "forest", "manifest"])
def test_a_tampered_model_is_refused(target, small_data, tmp_path):
    name = "random-forest" if target == "forest" else "xgboost"
    model = _build(name, _ctx(small_data, tmp_path))
    model.prepare()
    folder = model.model_dir
    if target == "manifest":  # rewrite the recorded digests to match a changed file
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["files"]["svd.npz"] = "0" * 64
        (folder / "manifest.json").write_text(json.dumps(manifest))
        message = "not signed by this harness"
    else:
        path = folder / ("forest.npz" if target == "forest" else target)
        raw = bytearray(path.read_bytes())
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(bytes(raw))
        message = "modified after the harness saved it"
    with pytest.raises(BenchError, match=message):
        _build(name, _ctx(small_data, tmp_path)).prepare()


def test_a_model_signed_under_another_key_is_refused(small_data, tmp_path):
    folder = _trained_xgboost(small_data, tmp_path)
    (tmp_path / "models" / ".hmac-key").write_text("ab" * 32)
    assert folder.exists()
    with pytest.raises(BenchError, match="not signed by this harness"):
        _build("xgboost", _ctx(small_data, tmp_path)).prepare()


def test_training_rows_equal_to_test_rows_are_dropped(small_data, tmp_path):
    ctx = _ctx(small_data, tmp_path)
    predictor = _build("linear", ctx)
    examples = predictor.training_examples()
    assert len(examples) == 240  # the copies of test rows are gone
    test_texts = {p.description for p in ctx.benchmark.products()}
    assert not test_texts & {e.product.description for e in examples}
    predictor.prepare()
    assert predictor.fingerprint()["train"]["rows"] == 240


def test_parameters_are_checked():
    with pytest.raises(BenchError, match="n_estimators"):
        registry.build("random-forest", {"n_estimators": "0"})
    with pytest.raises(BenchError, match="train_size"):
        registry.build("linear", {"train_size": "3"})
    with pytest.raises(BenchError, match="not an int"):
        registry.build("xgboost", {"max_depth": "deep"})


def test_bench_train_then_run_reuses_the_saved_model(small_data, tmp_path):
    env = {"BENCH_CACHE_DIR": str(tmp_path / "cache")}
    params = ["--param", "train_size=200", "--param", "n_estimators=10", "--param", "svd=4",
              "--param", "folds=2"]
    trained = run_cli("train", "xgboost", "--data-dir", str(small_data), *params, env=env)
    assert trained.returncode == 0, trained.stderr
    assert "trained xgboost" in trained.stdout
    (model_dir,) = (tmp_path / "cache" / "models" / "xgboost").iterdir()
    ran = run_cli("run", "xgboost", "--data-dir", str(small_data), "--results-dir",
                  str(tmp_path / "results"), "--limit", "20", "--quiet", *params, env=env)
    assert ran.returncode == 0, ran.stderr
    assert "no saved model" not in ran.stderr  # loaded, not retrained
    assert list((tmp_path / "cache" / "models" / "xgboost").iterdir()) == [model_dir]
    (run_json,) = (tmp_path / "results").glob("pricer-test/xgboost-*/run.json")
    fingerprint = json.loads(run_json.read_text())["fingerprint"]
    assert fingerprint["params"]["train_size"] == 200
    assert fingerprint["train"]["rows"] == 200 and fingerprint["versions"]["xgboost"]


def test_listing_does_not_import_the_ml_libraries():
    code = ("import sys, bench.registry as r; r.entries(); "
            "print([m for m in ('sklearn', 'xgboost', 'scipy') if m in sys.modules])")
    import subprocess

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent, check=True)
    assert out.stdout.strip() == "[]"


def test_predictions_are_prices_in_the_data_range(small_data, tmp_path):
    ctx = _ctx(small_data, tmp_path)
    prices = np.array(_prices(_build("linear", ctx), ctx.benchmark.products()))
    assert (prices > 0).all() and (prices < 5000).all()
