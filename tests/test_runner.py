import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench import registry
from bench.data import load_test_set
from bench.runner import run_predictor
from bench.store import RunStore
from bench.types import Prediction, Product
from tests.conftest import ROOT, SESSION_CACHE, run_cli
from tests.plugins import toy_predictors  # noqa: F401


def _lines(results: Path, name: str) -> list[dict]:
    (path,) = results.glob(f"pricer-test/{name}-*/predictions.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_kill_mid_run_then_resume_loses_and_duplicates_nothing(tmp_path, data_dir):
    results = tmp_path / "results"
    calls = tmp_path / "calls.log"
    env = {**os.environ, "BENCH_PLUGINS": "tests.plugins.toy_predictors",
           "TOY_CALL_LOG": str(calls), "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "bench", "run", "slow-pricer", "--param", "delay=0.05",
            "--concurrency", "2", "--data-dir", str(data_dir), "--results-dir", str(results),
            "--quiet"]
    proc = subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    deadline = time.time() + 60
    while time.time() < deadline:  # wait until some, not all, answers are on disk
        found = list(results.glob("pricer-test/slow-pricer-*/predictions.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= 40:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    before = _lines(results, "slow-pricer")
    assert 40 <= len(before) < 251
    answered_before = {r["id"] for r in before}

    calls.write_text("")
    again = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    after = _lines(results, "slow-pricer")
    ids = [r["id"] for r in after]
    assert sorted(ids) == list(range(251))  # every item once: nothing lost or duplicated
    asked_again = {int(x) for x in calls.read_text().split()}
    assert not asked_again & answered_before  # answered items were not asked again
    assert all(r["price"] is not None for r in after)

    # A third, identical run asks nothing and is quick.
    calls.write_text("")
    start = time.perf_counter()
    third = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert third.returncode == 0 and calls.read_text() == ""
    assert "251/251" in third.stdout
    assert time.perf_counter() - start < 30  # generous: the README's figure is measured


def test_exceptions_become_no_answers_and_retry_errors(tmp_path, data_dir):
    ts = load_test_set(data_dir)
    predictor = registry.build("flaky-pricer")
    result = run_predictor(predictor, ts, tmp_path, spec="flaky-pricer", concurrency=3,
                           progress=False)
    records = result.store.records()
    assert len(records) == 251
    assert "RuntimeError: boom on 7" in records[7].error and records[7].price is None
    assert records[10].error == "no answer"
    assert records[1].price == 100.0
    failed = sum(1 for r in records.values() if r.price is None)
    assert result.scores.answered == 251 - failed

    again = run_predictor(predictor, ts, tmp_path, spec="flaky-pricer", progress=False)
    assert again.predicted == 0
    retried = run_predictor(predictor, ts, tmp_path, spec="flaky-pricer", retry_errors=True,
                            progress=False)
    assert retried.predicted == failed
    lines = result.store.predictions_path.read_text().splitlines()
    assert len(lines) == 251 + failed  # retries append; the last line per id wins


def test_batches_and_a_poisoned_item(tmp_path, data_dir):
    ts = load_test_set(data_dir)
    predictor = registry.build("batch-pricer", {"batch_size": "50", "poison": "60"})
    result = run_predictor(predictor, ts, tmp_path, spec="batch-pricer", limit=120,
                           progress=False)
    records = result.store.records()
    assert len(records) == 120 and result.scores.total == 120
    assert records[60].price is None and "poisoned" in records[60].error
    assert records[61].price == 61.0 and records[0].price == 0.0
    assert predictor.calls[:2] == [50, 50]  # the poisoned chunk is then retried item by item


def test_torn_last_line_is_repaired(tmp_path, data_dir):
    ts = load_test_set(data_dir)
    predictor = registry.build("batch-pricer")
    result = run_predictor(predictor, ts, tmp_path, spec="batch-pricer", limit=5,
                           progress=False)
    path = result.store.predictions_path
    path.write_text(path.read_text() + '{"id": 5, "pri')  # killed mid-write
    store = RunStore(path.parent)
    assert sorted(store.records()) == [0, 1, 2, 3, 4]
    run_predictor(predictor, ts, tmp_path, spec="batch-pricer", limit=8, progress=False)
    lines = path.read_text().splitlines()
    assert [json.loads(line)["id"] for line in lines] == list(range(8))


def test_run_all_skips_what_cannot_run_and_exits_zero(tmp_path, data_dir):
    result = run_cli("run", "all", "--data-dir", str(data_dir), "--results-dir",
                     str(tmp_path), "--quiet", "--limit", "3",
                     env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": "",
                          "BENCH_CACHE_DIR": str(SESSION_CACHE)})
    assert result.returncode == 0, result.stderr
    assert "human" in result.stdout and "reference:gpt-4o-2024-08-06" in result.stdout


def test_run_json_records_provenance(tmp_path, data_dir):
    ts = load_test_set(data_dir)
    result = run_predictor(registry.build("slow-pricer", {"delay": "0"}), ts, tmp_path,
                           spec="slow-pricer", limit=4, progress=False)
    info = json.loads(result.store.run_path.read_text())
    assert info["status"] == "complete"
    assert info["data_fingerprint"] == ts.fingerprint
    assert info["fingerprint"]["params"] == {"delay": 0.0}
    assert info["versions"]["python"] and "numpy" in info["versions"]
    assert info["seeds"]["bootstrap"] == 42
    assert info["totals"]["answered"] == 4 and info["metrics"]["answered"] == 4
    assert "last_wall_s" in info["timings"]


def test_secrets_in_params_and_errors_are_not_written(tmp_path):
    from bench.redact import public_params

    shown = public_params({"base_url": "http://user:hunter2pw@127.0.0.1:8000/v1/",
                           "api_key": "sk-abcdefghijklmnop", "model": "x"})
    assert shown == {"base_url": "http://127.0.0.1:8000/v1", "api_key": "***", "model": "x"}
    from bench.runner import _describe

    text = _describe(RuntimeError("401 for key sk-abcdefghijklmnop"))
    assert "sk-abcdefghijklmnop" not in text and "***" in text


# Items 0-3 get a price that is no answer, the rest a fine one.
BAD_PRICES = {0: -5.0, 1: math.nan, 2: math.inf, 3: -math.inf}
BAD_REASONS = {0: "negative price -5.0", 1: "non-finite price nan",
               2: "non-finite price inf", 3: "non-finite price -inf"}


@registry.price_predictor("test-bad-price-fn")
def bad_price_fn(product: Product) -> float:
    return BAD_PRICES.get(product.id, 10.0 + product.id)


class BadPriceBatch:
    name = "test-bad-price-batch"
    batch_size = 4

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [Prediction(price=BAD_PRICES.get(p.id, 10.0 + p.id), raw=f"answer {p.id}")
                for p in products]


def test_a_negative_or_non_finite_price_is_no_answer_from_any_predictor(tmp_path, data_dir):
    ts = load_test_set(data_dir)
    for predictor in (registry.build("test-bad-price-fn"), BadPriceBatch()):
        result = run_predictor(predictor, ts, tmp_path, spec=predictor.name, limit=6,
                               concurrency=2, progress=False)
        records = result.store.records()
        for i, reason in BAD_REASONS.items():
            assert records[i].price is None, (predictor.name, i)
            assert records[i].error == reason, (predictor.name, i)
        assert records[4].price == 14.0 and records[5].price == 15.0
        assert result.scores.answered == 2 and result.scores.total == 6
        assert math.isfinite(result.scores.mae) and result.scores.mae >= 0
        if isinstance(predictor, BadPriceBatch):
            assert records[0].prediction.raw == "answer 0"  # what the model said is kept
        for line in result.store.predictions_path.read_text().splitlines():
            json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} written"))


def _test_file_with_details(path: Path) -> Path:
    from bench.prompts import PRICE_PREFIX, QUESTION

    lines = []
    for i in range(6):
        title = f"Widget {i}"
        text = f"{QUESTION}\n\n{title}\nA made-up widget.\n\n{PRICE_PREFIX}{10 + i:.2f}"
        details = {"Brand": "Acme", "Best Sellers Rank": {"Tools": 100 + i},
                   "Tags": ["red", "small"]}
        lines.append(json.dumps({"id": i, "title": title, "category": "Tools",
                                 "price": 10.0 + i, "text": text, "details": details}))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_what_one_predictor_does_to_its_input_is_never_seen_by_the_next(tmp_path):
    """Products are read-only (details included, nested values too), and each run
    gets its own: even a predictor that forces a change past the read-only
    guards changes only its own copy."""
    test_set = load_test_set(test_file=_test_file_with_details(tmp_path / "items.jsonl"))
    original = {p.id: (p.title, json.dumps(p.details, sort_keys=True))
                for p in test_set.products()}
    refused: list[str] = []

    class Mutator:
        name = "mutator"

        def predict(self, products: Sequence[Product]) -> list[Prediction]:
            for p in products:
                for change in (lambda p: p.details.__setitem__("Brand", "Leaked"),
                               lambda p: p.details["Best Sellers Rank"].update(Tools=1),
                               lambda p: p.details["Tags"].append("leaked"),
                               lambda p: p.details.pop("Brand"),
                               lambda p: setattr(p, "title", "Leaked")):
                    try:
                        change(p)
                    except (TypeError, AttributeError) as exc:
                        refused.append(type(exc).__name__)
                # forced past the guards: this Product, this run only
                dict.__setitem__(p.details, "Brand", "Forced")
                object.__setattr__(p, "title", "Forced")
            return [Prediction(price=1.0) for _ in products]

    class Observer:
        name = "observer"

        def predict(self, products: Sequence[Product]) -> list[Prediction]:
            return [Prediction(price=1.0) if (p.title, json.dumps(p.details, sort_keys=True))
                    == original[p.id] else Prediction.failed(f"saw {p.title} {p.details}")
                    for p in products]

    def per_item(product: Product) -> float:
        product.details["Brand"] = "Leaked"
        return 1.0

    run_predictor(Mutator(), test_set, tmp_path, spec="mutator", progress=False)
    assert len(refused) == 5 * 6  # every ordinary change was refused
    seen = run_predictor(Observer(), test_set, tmp_path, spec="observer", progress=False)
    assert seen.scores.answered == 6, seen.common_error
    failed = run_predictor(registry.FunctionPredictor("per-item", per_item, {}), test_set,
                           tmp_path, spec="per-item", progress=False)
    assert failed.common_error.startswith("ReadOnlyError: product ")
    assert "details are read-only: predictors must not modify their input" \
        in failed.common_error
    assert run_predictor(Observer(), test_set, tmp_path / "again", spec="observer",
                         progress=False).scores.answered == 6
