"""End to end: ``python -m bench run openai`` in a subprocess, the official SDK
talking to a loopback server named by OPENAI_BASE_URL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.fake_llm_server import FakeLLMServer

KEY = "sk-test-CLI-SECRET-9876543210"


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def _run(server: FakeLLMServer, data_dir: Path, results: Path, *extra: str):
    env = {"OPENAI_BASE_URL": server.openai_url, "OPENAI_API_KEY": KEY}
    return run_cli("run", "openai", "--data-dir", str(data_dir), "--limit", "8",
                   "--results-dir", str(results), "--quiet", "--param", "backoff=0.01",
                   "--param", "max_backoff=0.05", *extra, env=env, timeout=120)


def test_cli_run_then_cached_rerun_then_dry_run(server, data_dir, tmp_path):
    server.fault_plan = lambda text, attempt: "500" if attempt == 1 else None  # then fine
    first = _run(server, data_dir, tmp_path / "r1")
    assert first.returncode == 0, first.stderr
    assert "openai:gpt-4o-mini" in first.stdout and "8/8" in first.stdout
    sent = server.count
    assert sent == 16 and server.statuses[200] == 8

    (run_dir,) = (tmp_path / "r1" / "pricer-test").iterdir()
    lines = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 8 and all(line["price"] is not None for line in lines)
    assert all(line["input_tokens"] and line["cost_usd"] > 0 for line in lines)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["totals"]["cost_usd"] == pytest.approx(sum(line["cost_usd"] for line in lines))
    assert run["fingerprint"]["model"] == "gpt-4o-mini" and run["seeds"]["predictor"] == 42

    # A fresh results dir, the same cache: every answer from the cache, none sent.
    second = _run(server, data_dir, tmp_path / "r2")
    assert second.returncode == 0, second.stderr
    assert server.count == sent and "8/8" in second.stdout

    dry = _run(server, data_dir, tmp_path / "r3", "--dry-run", "--limit", "12")
    assert dry.returncode == 0, dry.stderr
    assert server.count == sent
    row = next(line for line in dry.stdout.splitlines() if "openai:gpt-4o-mini" in line)
    assert "| 4 " in row  # 12 items, 8 of them cached

    # No key in anything written (results, cache) or printed.
    cache = Path(os.environ["BENCH_CACHE_DIR"])
    for path in [*tmp_path.rglob("*"), *cache.rglob("*")]:
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in first.stdout + first.stderr + second.stdout + dry.stdout


def test_cli_without_a_key_is_exit_2_with_the_variable_named(data_dir, tmp_path, monkeypatch):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(var, raising=False)
    result = run_cli("run", "openai", "--data-dir", str(data_dir), "--limit", "2",
                     "--results-dir", str(tmp_path), "--quiet", timeout=120)
    assert result.returncode == 2, result.stderr
    assert "cannot run openai:gpt-4o-mini: set OPENAI_API_KEY" in result.stderr
