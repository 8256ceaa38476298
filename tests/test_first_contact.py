"""A new user's first hour (#22): fast honest failures offline and against a
dead server, exit 2 for a named predictor that cannot run, the small frictions
(suggestions, `run reference`, `show --param`, paths in provenance)."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from bench.cli import build_parser
from predictors.frontier.retry import RetryPolicy, call_with_retries, is_retryable
from tests.conftest import ROOT, run_cli


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- point 3: no data folder and no hub ------------------------------------------


def test_without_data_or_hub_run_says_so_at_once_and_list_agrees(tmp_path):
    """The hub cannot be reached (a closed loopback port as HF_ENDPOINT), nothing
    is cached, no data folder: one line naming --data-dir and BENCH_DATA_DIR, no
    retry lines from the hub client; `bench list` says the classic models cannot run."""
    env = {"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}",
           "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    run = run_cli("run", "constant", "--limit", "5", "--results-dir", str(tmp_path / "r"),
                  env=env, timeout=120)
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1, run.stderr
    assert "cannot be reached" in lines[0] and "--data-dir" in lines[0]
    assert "BENCH_DATA_DIR" in lines[0]
    listed = run_cli("list", env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    for name in ("constant", "linear", "random-forest", "xgboost"):
        row = next(line for line in listed.stdout.splitlines() if line.startswith(f"| {name} "))
        assert "| no: no data folder" in row, row


# -- point 4: a dead local server ------------------------------------------------


def _refused_error() -> BaseException:
    import openai

    client = openai.OpenAI(api_key="x", base_url=f"http://127.0.0.1:{_closed_port()}/v1",
                           max_retries=0)
    try:
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    except Exception as exc:
        return exc
    raise AssertionError("a closed port answered")


def test_a_refused_connection_is_not_retried_but_passing_faults_are():
    error = _refused_error()
    assert not is_retryable(error)
    calls: list[int] = []

    def send() -> None:
        calls.append(1)
        raise error

    outcome = call_with_retries(send, RetryPolicy(max_retries=6), sleep=lambda s: None)
    assert outcome.error is error and len(calls) == 1
    # A time-out or a plain reset still passes: retried.
    assert is_retryable(TimeoutError("slow")) and is_retryable(ConnectionResetError("reset"))


def test_a_dead_local_server_stops_the_run_with_its_cause(data_dir, tmp_path):
    env = {"OPENAI_BASE_URL": f"http://127.0.0.1:{_closed_port()}/v1",
           "OPENAI_API_KEY": "sk-test"}
    result = run_cli("run", "openai", "--data-dir", str(data_dir), "--limit", "20",
                     "--results-dir", str(tmp_path), "--quiet", env=env, timeout=300)
    assert result.returncode == 1, result.stderr
    failed = [line for line in result.stderr.splitlines() if line.startswith("failed ")]
    assert len(failed) == 1 and "connection refused" in failed[0], result.stderr
    assert "attempts" not in result.stdout + result.stderr  # asked once, never retried
    (run_dir,) = (tmp_path / "pricer-test").iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "failed"


# -- point 5 and 10: a predictor named explicitly that cannot run ----------------


@pytest.mark.parametrize(("args", "env", "message"), [
    (["openai"], {"OPENAI_API_KEY": "", "OPENAI_BASE_URL": ""}, "set OPENAI_API_KEY"),
    (["human", "--param", "csv=/nonexistent.csv"], {}, "/nonexistent.csv not found"),
    (["my-model:v3"], {"BENCH_PLUGINS": "plugins.my_model"}, "no checkpoint v3"),
])
def test_a_named_predictor_that_cannot_run_is_exit_2_with_its_reason(
        args, env, message, data_dir, tmp_path):
    if "BENCH_PLUGINS" in env:
        plugin = tmp_path / "plugins"
        plugin.mkdir()
        (plugin / "__init__.py").write_text("")
        (plugin / "my_model.py").write_text(
            "from bench import BasePredictor, Prediction, register\n\n"
            "@register('my-model', variant='checkpoint')\n"
            "class MyModel(BasePredictor):\n"
            "    def __init__(self, checkpoint: str = 'v1'):\n"
            "        self.name, self.checkpoint = f'my-model:{checkpoint}', checkpoint\n"
            "    def unavailable(self):\n"
            "        ok = self.checkpoint == 'v1'\n"
            "        return None if ok else f'no checkpoint {self.checkpoint}'\n"
            "    def predict(self, products):\n"
            "        return [Prediction(price=1.0) for _ in products]\n")
        env = {**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    result = run_cli("run", *args, "--data-dir", str(data_dir), "--limit", "2",
                     "--results-dir", str(tmp_path / "r"), "--quiet", env=env, timeout=300)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "skipped" not in result.stdout
    assert not (tmp_path / "r" / "pricer-test").exists()  # nothing ran


def test_run_reference_is_every_recorded_run(data_dir, tmp_path):
    runs = sorted(p.stem for p in (data_dir / "reference-runs").glob("*.csv"))
    result = run_cli("run", "reference", "--data-dir", str(data_dir), "--limit", "2",
                     "--results-dir", str(tmp_path), "--quiet", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "None" not in result.stdout
    assert all(f"reference:{run} " in result.stdout for run in runs)
    assert len(list((tmp_path / "pricer-test").iterdir())) == len(runs)
    # Without a data folder there is none to run: one line saying so.
    bare = run_cli("run", "reference", "--results-dir", str(tmp_path), "--test",
                   str(data_dir / "test.jsonl"), "--quiet", timeout=300)
    assert bare.returncode == 2 and "reference:RUN" in bare.stderr and "None" not in bare.stderr


def test_a_misspelt_predictor_gets_a_suggestion(tmp_path, data_dir):
    result = run_cli("run", "xgbost", "--results-dir", str(tmp_path), "--data-dir",
                     str(data_dir), timeout=120)
    assert result.returncode == 2
    assert "did you mean xgboost?" in result.stderr, result.stderr


def test_results_dir_has_help_text():
    parser = build_parser()
    for command in ("run", "leaderboard", "score", "compare", "show", "site", "view"):
        sub = parser._subparsers._group_actions[0].choices[command]  # type: ignore[union-attr]
        (action,) = [a for a in sub._actions if "--results-dir" in a.option_strings]
        assert action.help, command


def test_show_takes_params_as_run_does(tmp_path, data_dir):
    plugin = tmp_path / "by_length.py"
    plugin.write_text(
        "from bench import Product, price_predictor\n\n"
        "@price_predictor('by-length')\n"
        "def by_length(product: Product, k: float = 0.5) -> float:\n"
        "    return k * len(product.description)\n")
    env = {"BENCH_PLUGINS": str(plugin)}
    results = tmp_path / "r"
    for k in ("0.3", "0.4"):
        ran = run_cli("run", "by-length", "--param", f"k={k}", "--data-dir", str(data_dir),
                      "--limit", "3", "--results-dir", str(results), "--quiet", env=env)
        assert ran.returncode == 0, ran.stderr
    shown = run_cli("show", "by-length", "--param", "k=0.3", "--results-dir", str(results),
                    "--data-dir", str(data_dir), env=env)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("by-length (k=0.3) on pricer-test"), shown.stdout
    missing = run_cli("show", "by-length", "--param", "k=9", "--results-dir", str(results),
                      env=env)
    assert missing.returncode == 2 and "k=9" in missing.stderr
    assert "by-length (k=0.3)" in missing.stderr


def test_provenance_records_no_absolute_path(tmp_path, data_dir):
    from bench.provenance import local_path, portable_path

    result = run_cli("run", "reference:human", "--data-dir", str(data_dir), "--limit", "2",
                     "--results-dir", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr
    (run_json,) = (tmp_path / "pricer-test").glob("*/run.json")
    source = json.loads(run_json.read_text())["data_source"]
    assert not Path(source).is_absolute()
    assert local_path(source).resolve() == (data_dir / "test.jsonl").resolve()
    home = Path.home() / "somewhere" / "test.jsonl"
    if not ROOT.is_relative_to(Path.home()):
        assert portable_path(str(home)) == "~/somewhere/test.jsonl"
    assert portable_path(str(ROOT / "data" / "x.jsonl")) == "data/x.jsonl"
    assert portable_path("hf://datasets/x@y") == "hf://datasets/x@y"
