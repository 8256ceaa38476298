"""Shared fixtures: the real data directory, a made-up test file, isolated
caches, a CLI runner.

Tests that read the real data take the ``data_dir`` fixture; without the data
folder they skip with one reason naming it (CI always has it), and every other
test still runs."""

from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Absolute: tests hand it to subprocesses and notebook kernels that run elsewhere
# (the README's `BENCH_TEST_DATA_DIR=../shared/data/pricer make test` is relative).
DATA_DIR = Path(os.environ.get("BENCH_TEST_DATA_DIR",
                               ROOT.parent / "shared" / "data" / "pricer")).resolve()
MISSING_DATA = (f"needs the pricer data folder: {DATA_DIR / 'test.jsonl'} not found "
                "(set BENCH_TEST_DATA_DIR)")


# Session-wide isolation too: module-scoped fixtures run before the per-test one.
# Tests that `run all` share it, so the classic models are trained once per session.
SESSION_CACHE = Path(tempfile.mkdtemp(prefix="bench-test-cache-"))
atexit.register(shutil.rmtree, SESSION_CACHE, ignore_errors=True)
os.environ["BENCH_CACHE_DIR"] = str(SESSION_CACHE)
os.environ["HF_HOME"] = str(SESSION_CACHE / "hf")
os.environ.pop("BENCH_DATA_DIR", None)


@pytest.fixture(autouse=True)
def _isolated(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's caches or results, or picks up their data dir."""
    cache = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache))
    monkeypatch.setenv("HF_HOME", str(cache / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    # The per-user results folder (used outside a checkout without --results-dir): a temp one
    monkeypatch.setenv("XDG_DATA_HOME", str(cache / "xdg-data"))
    monkeypatch.delenv("BENCH_DATA_DIR", raising=False)
    monkeypatch.delenv("BENCH_PLUGINS", raising=False)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real data folder; a test that takes it is skipped when it is missing."""
    if not (DATA_DIR / "test.jsonl").exists():
        pytest.skip(MISSING_DATA)
    return DATA_DIR


SYNTHETIC_ITEMS = [
    ("Stainless Steel Chef Knife, 8 Inch", "Home & Kitchen", 39.99),
    ("Wireless Noise Cancelling Headphones", "Electronics", 249.0),
    ("LED Desk Lamp with USB Charging Port", "Office Products", 27.5),
    ("Cordless Drill Driver Kit, 20V", "Tools & Home Improvement", 89.0),
    ("Front Brake Pads Set for Sedans", "Automotive", 45.25),
    ("Organic Green Tea, 100 Bags", "Grocery", 12.99),
    ("Mechanical Gaming Keyboard, RGB", "Electronics", 119.0),
    ("Yoga Mat, Non Slip, 6mm", "Sports & Outdoors", 24.0),
    ("Ceramic Dinner Plate Set of 6", "Home & Kitchen", 54.0),
    ("Digital Kitchen Scale, 11 lb", "Home & Kitchen", 15.49),
    ("Portable Air Compressor for Tires", "Automotive", 64.0),
    ("4K Action Camera, Waterproof", "Electronics", 179.99),
]


def write_synthetic_test_file(path: Path) -> Path:
    """A small test file in the data folder's format (``--test FILE``), made up
    here: for tests that need products with real-shaped prompts, not the data."""
    from bench.prompts import PRICE_PREFIX, QUESTION

    lines = []
    for i, (title, category, price) in enumerate(SYNTHETIC_ITEMS):
        text = (f"{QUESTION}\n\n{title}\nA made-up product for the tests, number {i}. "
                f"Sturdy, well reviewed, ships in a plain box.\n\n{PRICE_PREFIX}{price:.2f}")
        lines.append(json.dumps({"id": i, "title": title, "category": category,
                                 "price": price, "text": text}))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def synthetic_test_set(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Twelve made-up items loaded through ``bench.data`` as any other test
    file is: needs no data folder."""
    from bench.data import load_test_set

    path = write_synthetic_test_file(tmp_path_factory.mktemp("synthetic") / "synthetic.jsonl")
    return load_test_set(test_file=path)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    """``python -m bench ARGS`` in a real subprocess."""
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), full_env.get("PYTHONPATH", "")) if p)
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout)


def fake_distribution(site: Path, name: str, code: str, entry_points: str) -> dict[str, str]:
    """An installed package as a third party ships one: ``site/name/__init__.py``
    holding ``code`` (dedented) and a ``name-1.0.dist-info`` whose
    ``entry_points.txt`` has the ``[bench.predictors]`` lines given. Returns the
    environment that puts ``site`` on the path."""
    import textwrap

    (site / name).mkdir(parents=True)
    (site / name / "__init__.py").write_text(textwrap.dedent(code))
    dist = site / f"{name}-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[bench.predictors]\n{entry_points}")
    return {"PYTHONPATH": str(site)}


@pytest.fixture(scope="module")
def one_torch_thread() -> Any:
    """One torch thread for a module (``pytestmark = pytest.mark.usefixtures(...)``):
    two threads fighting other jobs for two cores run tiny models far slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
