"""Shared fixtures: the real data directory, isolated caches, a CLI runner."""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = Path(os.environ.get("BENCH_TEST_DATA_DIR", ROOT.parent / "shared" / "data" / "pricer"))

if not (DATA_DIR / "test.jsonl").exists():  # fail loudly: these tests need the real data
    raise RuntimeError(f"test data not found at {DATA_DIR}: set BENCH_TEST_DATA_DIR")


# Session-wide isolation too: module-scoped fixtures run before the per-test one.
# Tests that `run all` share it, so the classic models are trained once per session.
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="bench-test-cache-"))
atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)
os.environ["BENCH_CACHE_DIR"] = str(SESSION_CACHE)
os.environ["HF_HOME"] = str(SESSION_CACHE / "hf")
os.environ.pop("BENCH_DATA_DIR", None)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's caches, or picks up their data dir."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HOME", str(cache / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA_DIR


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` in a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout)
