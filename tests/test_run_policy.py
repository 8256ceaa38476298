"""Runs that end, once, and say why: per-item time limits, Ctrl-C, one writer per
run directory, systematic failures, and ``run all`` skipping what cannot run.

Real subprocesses, real signals, real files; the predictors are in
tests/plugins/run_policy_predictors.py. No data folder needed except where a
test takes ``data_dir``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import registry
from bench.errors import BenchError
from bench.lock import RunLock, RunLocked, holder
from bench.records import read_run
from bench.runner import run_predictor
from bench.types import Product
from tests.conftest import ROOT, run_cli, write_synthetic_test_file
from tests.plugins import run_policy_predictors  # noqa: F401

PLUGINS = "tests.plugins.run_policy_predictors"
HINT = "interrupted: rerun the same command to resume\n"


@pytest.fixture
def test_file(tmp_path: Path) -> Path:
    return write_synthetic_test_file(tmp_path / "items.jsonl")  # 12 items, ids 0..11


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "BENCH_PLUGINS": PLUGINS, **extra}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _bench(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench", *args]


def _run_dir(results: Path, name: str) -> Path:
    (found,) = results.glob(f"*/{name}-*/")
    return found


def _lines(run_dir: Path) -> list[dict]:
    path = run_dir / "predictions.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _wait_for_lines(results: Path, name: str, count: int, proc: subprocess.Popen,
                    within: float = 60) -> Path:
    deadline = time.time() + within
    while time.time() < deadline:
        found = list(results.glob(f"*/{name}-*/predictions.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= count:
            return found[0].parent
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"{name} wrote fewer than {count} answers in {within} s")


# -- 6. no hang ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["hang-pricer", "hang-batch"])
def test_an_item_that_never_returns_is_recorded_as_timed_out(tmp_path, test_file, name):
    results = tmp_path / "results"
    start = time.perf_counter()
    done = subprocess.run(
        _bench("run", name, "--test", str(test_file), "--results-dir", str(results),
               "--timeout", "1", "--quiet"),
        env=_env(POLICY_HANG_IDS="5"), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - start < 30
    records = {r["id"]: r for r in _lines(_run_dir(results, name))}
    assert sorted(records) == list(range(12))  # the run went on past the stuck item
    assert records[5]["price"] is None and records[5]["error"].startswith("timed out after")
    assert records[3]["price"] == 13.0 and records[11]["price"] == 21.0
    failed = {i for i, r in records.items() if r["price"] is None}
    if name == "hang-pricer":
        assert failed == {5} and records[5]["error"] == "timed out after 1 s"
        assert "| 1: timed out after 1 s" in done.stdout  # the table says how many, and why
    else:  # the chunk (ids 4..7) that holds it: 4 items, 1 s each
        assert failed == {4, 5, 6, 7}
        assert records[4]["error"] == "timed out after 4 s (4 items at 1 s each)"
        assert "| 4: timed out after 4 s" in done.stdout


def test_a_predictor_declares_its_own_time_limit(tmp_path, synthetic_test_set):
    predictor = registry.build("hang-pricer")
    predictor.item_timeout_s = 0.5
    os.environ["POLICY_HANG_IDS"] = "2"
    try:
        result = run_predictor(predictor, synthetic_test_set, tmp_path, spec="hang-pricer",
                               limit=4, progress=False)
    finally:
        del os.environ["POLICY_HANG_IDS"]
    records = result.store.records()
    assert records[2].error == "timed out after 0.5 s" and records[3].price == 13.0


def test_ctrl_c_ends_the_run_at_once_with_only_the_resume_hint(tmp_path, test_file):
    results = tmp_path / "results"
    args = _bench("run", "hang-pricer", "--test", str(test_file), "--results-dir",
                  str(results), "--concurrency", "2", "--quiet")
    # Item 0 never returns (its thread is stuck for good), the others take 0.3 s.
    proc = subprocess.Popen(args, env=_env(POLICY_HANG_IDS="0", POLICY_DELAY="0.3"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    run_dir = _wait_for_lines(results, "hang-pricer", 2, proc)
    proc.send_signal(signal.SIGINT)
    sent = time.perf_counter()
    out, err = proc.communicate(timeout=30)
    assert time.perf_counter() - sent < 2.0
    assert proc.returncode == 130
    assert err == HINT  # nothing else: no traceback
    first = read_run(run_dir / "run.json")
    assert first is not None and first.status == "interrupted"
    assert first.timings is not None and first.timings.predict_s_total > 0.3
    answered = len(_lines(run_dir))
    assert 2 <= answered < 12

    # Resumed (nothing hangs now): the time of both segments adds up.
    again = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    second = read_run(run_dir / "run.json")
    assert second is not None and second.status == "complete"
    assert second.timings.items_last_run == 12 - answered
    assert second.timings.predict_s_total == pytest.approx(
        first.timings.predict_s_total + second.timings.last_predict_s, abs=0.002)


# -- 7. one writer per run directory ---------------------------------------------


def test_two_identical_runs_at_once_ask_each_item_once(tmp_path, test_file):
    results, calls = tmp_path / "results", tmp_path / "calls.log"
    args = _bench("run", "hang-pricer", "--test", str(test_file), "--results-dir",
                  str(results), "--concurrency", "1", "--quiet")
    env = _env(POLICY_DELAY="0.25", POLICY_CALL_LOG=str(calls))
    procs = [subprocess.Popen(args, env=env, cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=60) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], outs
    winner, loser = (0, 1) if procs[0].returncode == 0 else (1, 0)
    err = outs[loser][1]
    assert err.count("\n") == 1 and f"pid {procs[winner].pid}" in err
    assert "another bench run is writing" in err and "bench run hang-pricer" in err
    asked = [line.split() for line in calls.read_text().splitlines()]
    assert sorted(int(i) for _, i in asked) == list(range(12))  # each item once
    assert {int(pid) for pid, _ in asked} == {procs[winner].pid}
    assert not list(results.rglob(".lock"))  # released


def test_a_killed_holder_never_blocks_the_next_run(tmp_path, test_file):
    results = tmp_path / "results"
    args = _bench("run", "hang-pricer", "--test", str(test_file), "--results-dir",
                  str(results), "--concurrency", "1", "--quiet")
    proc = subprocess.Popen(args, env=_env(POLICY_DELAY="0.3"), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    run_dir = _wait_for_lines(results, "hang-pricer", 1, proc)
    seen = holder(run_dir)
    assert seen is not None and seen.pid == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert (run_dir / ".lock").exists()  # left behind by the killed process...
    assert holder(run_dir) is None  # ...but held by nobody
    info = read_run(run_dir / "run.json")
    assert info is not None and info.status == "running"  # what a killed run looks like
    again = subprocess.run(args, env=_env(), cwd=ROOT, capture_output=True, text=True,
                           timeout=60)
    assert again.returncode == 0, again.stderr
    assert sorted(r["id"] for r in _lines(run_dir)) == list(range(12))
    assert not (run_dir / ".lock").exists()


def test_the_lock_names_its_holder_in_process(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            RunLock(tmp_path / "run").acquire()
        assert holder(tmp_path / "run").pid == os.getpid()
    with RunLock(tmp_path / "run"):  # free again
        pass
    assert issubclass(RunLocked, BenchError)


# -- 8. systematic failure stops the run -------------------------------------------


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_dead_server_stops_the_run_with_its_cause(tmp_path, test_file):
    results = tmp_path / "results"
    port = _closed_port()
    done = run_cli("run", "openai", "--test", str(test_file), "--results-dir", str(results),
                   "--param", f"base_url=http://127.0.0.1:{port}/v1", "--param",
                   "max_retries=0", "--quiet",
                   env={"OPENAI_API_KEY": "sk-test-not-real", "BENCH_PLUGINS": ""},
                   timeout=120)
    assert done.returncode == 1, done.stderr
    (line,) = [x for x in done.stderr.splitlines() if x.startswith("failed ")]
    assert "the first 8 items all failed the same way" in line
    assert "APIConnectionError" in line
    run_dir = _run_dir(results, "openai_gpt-4o-mini")
    assert len(_lines(run_dir)) == 8  # stopped there: the other 4 were never recorded
    info = read_run(run_dir / "run.json")
    assert info is not None and info.status == "failed" and "APIConnectionError" in info.reason
    assert "8: APIConnectionError" in done.stdout  # the table: how many, and why


@registry.price_predictor("test-always-raises")
def always_raises(product: Product) -> float:
    raise ValueError(f"cannot price item {product.id}")


@registry.price_predictor("test-first-raises")
def first_raises(product: Product) -> float:
    if product.id == 0:
        raise ValueError("cannot price item 0")
    return 1.0 + product.id


def test_a_predictor_that_always_raises_stops_after_the_first_items(tmp_path,
                                                                    synthetic_test_set):
    result = run_predictor(registry.build("test-always-raises"), synthetic_test_set, tmp_path,
                           spec="test-always-raises", concurrency=3, progress=False)
    assert result.failure is not None
    assert "the first 8 items all failed the same way: ValueError: cannot price item" \
        in result.failure
    assert len(result.store.records()) == 8
    info = result.store.run_info()
    assert info.status == "failed" and info.reason == result.failure
    assert result.common_error.startswith("ValueError: cannot price item")


def test_one_failure_among_successes_does_not_stop_the_run(tmp_path, synthetic_test_set):
    result = run_predictor(registry.build("test-first-raises"), synthetic_test_set, tmp_path,
                           spec="test-first-raises", concurrency=1, progress=False)
    assert result.failure is None and result.scores.answered == 11
    assert result.store.run_info().status == "complete"


def test_a_run_with_failures_says_how_to_retry_them(tmp_path, test_file):
    results = tmp_path / "results"
    args = ("run", "hang-pricer", "--test", str(test_file), "--results-dir", str(results),
            "--timeout", "0.5", "--quiet")
    first = run_cli(*args, env={"BENCH_PLUGINS": PLUGINS, "POLICY_HANG_IDS": "3"})
    assert first.returncode == 0, first.stderr
    again = run_cli(*args, env={"BENCH_PLUGINS": PLUGINS})
    assert again.returncode == 0
    assert "1 item without an answer; add --retry-errors" in again.stdout
    assert "1: timed out after 0.5 s" in again.stdout
    retried = run_cli(*args, "--retry-errors", env={"BENCH_PLUGINS": PLUGINS})
    assert retried.returncode == 0 and "12/12" in retried.stdout
    assert "--retry-errors" not in retried.stdout


# -- 9. run all skips, never aborts ------------------------------------------------


def test_run_all_without_training_data_skips_the_classic_models(tmp_path, data_dir):
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("test.jsonl", "human_output.csv"):
        shutil.copy(data_dir / name, folder / name)
    shutil.copytree(data_dir / "reference-runs", folder / "reference-runs")
    env = {"BENCH_PLUGINS": PLUGINS, "OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""}
    listed = run_cli("list", "--long", "--data-dir", str(folder), env=env)
    assert listed.returncode == 0
    xgb = next(line for line in listed.stdout.splitlines() if line.startswith("| xgboost"))
    assert "no: no training data" in xgb and "train.jsonl" in xgb

    done = run_cli("run", "all", "--data-dir", str(folder), "--results-dir",
                   str(tmp_path / "results"), "--limit", "2", "--quiet", env=env)
    assert done.returncode == 0, done.stderr
    for name in ("human", "reference:gpt-4o-2024-08-06", "reference:human", "hang-pricer"):
        assert f"| {name} " in done.stdout
    skips = [line for line in done.stdout.splitlines() if line.startswith("skipped ")]
    assert any(line.startswith("skipped xgboost: no training data") for line in skips)
    assert any(line.startswith("skipped random-forest: no training data") for line in skips)
    assert "skipped prepare-fails: prepare-fails: its model file is missing" in skips
    assert any(line.startswith("skipped openai:gpt-4o-mini: set OPENAI_API_KEY")
               for line in skips)  # run all skips what cannot run (#22)
    # Named explicitly, a predictor that cannot get ready is an error (exit 2).
    alone = run_cli("run", "prepare-fails", "--data-dir", str(folder), "--results-dir",
                    str(tmp_path / "results"), "--quiet", env=env)
    assert alone.returncode == 2 and alone.stderr.strip() == \
        "error: prepare-fails: its model file is missing"
    assert not list((tmp_path / "results").glob("*/prepare-fails-*"))  # nothing left behind


# -- a predictor cannot take the run down: BaseExceptions are its failure ---------

ROGUES = "tests.plugins.rogue_predictors"
ROGUE_REASON = {"SystemExit": "SystemExit: 3 (raised inside the predictor)",
                "KeyboardInterrupt": "KeyboardInterrupt (raised inside the predictor)",
                "GeneratorExit": "GeneratorExit: closed (raised inside the predictor)"}


@pytest.mark.parametrize("raised", sorted(ROGUE_REASON))
def test_a_base_exception_inside_a_predictor_is_that_items_failure(tmp_path, test_file,
                                                                   raised):
    """Per item and in batches, SystemExit, KeyboardInterrupt or GeneratorExit
    raised by predictor code is a no-answer with its reason, at once (not a
    timeout 600 s later, not the end of the command), and the predictors after
    it still run."""
    results = tmp_path / "results"
    start = time.perf_counter()
    done = subprocess.run(
        _bench("run", "rogue-item", "rogue-batch", "steady", "--test", str(test_file),
               "--results-dir", str(results), "--quiet"),
        env=_env(BENCH_PLUGINS=ROGUES, ROGUE_RAISE=raised, ROGUE_IDS="5"), cwd=ROOT,
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert time.perf_counter() - start < 60
    reason = ROGUE_REASON[raised]
    for name in ("rogue-item", "rogue-batch"):
        run_dir = _run_dir(results, name)
        records = {r["id"]: r for r in _lines(run_dir)}
        assert sorted(records) == list(range(12))
        # the chunk holding id 5 failed; asked one by one, only id 5 has no answer
        assert {i for i, r in records.items() if r["price"] is None} == {5}
        assert records[5]["error"] == reason
        assert records[6]["price"] == 16.0
        assert read_run(run_dir / "run.json").status == "complete"
        assert f"| 1: {reason}" in done.stdout
    steady = read_run(_run_dir(results, "steady") / "run.json")
    assert steady is not None and steady.status == "complete"


def test_a_predictor_that_always_exits_fails_its_run_and_the_next_one_runs(tmp_path,
                                                                           test_file):
    results = tmp_path / "results"
    done = subprocess.run(
        _bench("run", "rogue-batch", "rogue-item", "steady", "--test", str(test_file),
               "--results-dir", str(results), "--quiet"),
        env=_env(BENCH_PLUGINS=ROGUES, ROGUE_RAISE="SystemExit"), cwd=ROOT,
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr  # stopped on a systematic failure, not exit 3
    for name in ("rogue-batch", "rogue-item"):
        info = read_run(_run_dir(results, name) / "run.json")
        assert info is not None and info.status == "failed"
        assert info.reason == ("the first 8 items all failed the same way: "
                               "SystemExit: 3 (raised inside the predictor)")
        assert f"failed {name}: the first 8 items" in done.stderr
    assert "| steady " in done.stdout
    assert read_run(_run_dir(results, "steady") / "run.json").status == "complete"


def test_a_base_exception_inside_a_predictor_through_the_python_api(tmp_path, test_file):
    import bench
    from tests.plugins import rogue_predictors

    def exits_on_three(product: Product) -> float:
        if product.id == 3:
            raise SystemExit("bye")
        if product.id == 4:
            raise KeyboardInterrupt
        return 1.0

    run = bench.evaluate(exits_on_three, test=test_file, results_dir=tmp_path, progress=False)
    assert run.answered == 10 and run.total == 12
    assert run.records[3].error == "SystemExit: bye (raised inside the predictor)"
    assert run.records[4].error == "KeyboardInterrupt (raised inside the predictor)"
    assert run.info.status == "complete"

    os.environ["ROGUE_RAISE"], os.environ["ROGUE_IDS"] = "GeneratorExit", "0,9"
    try:
        batch = bench.evaluate(rogue_predictors.RogueBatch(), test=test_file,
                               results_dir=tmp_path, progress=False)
    finally:
        del os.environ["ROGUE_RAISE"], os.environ["ROGUE_IDS"]
    assert {i for i, r in batch.records.items() if r.price is None} == {0, 9}
    assert batch.records[9].error == "GeneratorExit: closed (raised inside the predictor)"


def test_a_system_exit_from_prepare_is_an_error_naming_the_predictor(tmp_path,
                                                                     synthetic_test_set):
    class ExitsWhilePreparing:
        name = "exits-while-preparing"

        def prepare(self) -> None:
            raise SystemExit(3)

        def predict(self, products):
            raise AssertionError("never called: prepare failed")

    with pytest.raises(BenchError, match=r"^exits-while-preparing: prepare\(\) raised "
                                         r"SystemExit: 3 \(raised inside the predictor\)$"):
        run_predictor(ExitsWhilePreparing(), synthetic_test_set, tmp_path,
                      spec="exits-while-preparing", progress=False)
    assert not list(tmp_path.glob("*/exits-while-preparing-*"))  # nothing left behind
