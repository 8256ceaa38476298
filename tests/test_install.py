"""What each install gives (#22): the core alone scores a function, and writes
and reads the board; the notebook extra brings Jupyter.

The fast tests run the core's paths here with the heavy packages made
unimportable. The `install` tests (opt-in: `pytest -m install`, minutes, they
reach PyPI) install a copy of this checkout into fresh virtual environments, as
the README says, and print the core environment's size."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

HEAVY = ("sklearn", "scipy", "xgboost", "torch", "transformers", "peft", "bitsandbytes",
         "accelerate", "openai", "anthropic", "sentence_transformers", "altair", "vl_convert",
         "IPython", "ipykernel")

# Scores a function, then the board, show, compare and score on its runs; then
# checks that none of the heavy packages was imported.
SCRIPT = textwrap.dedent("""
    import subprocess, sys
    import bench

    def guess(prompt: str) -> float:
        return 0.8 * len(prompt.split())

    run = bench.evaluate(guess, progress=False)
    print(run.summary())
    other = bench.evaluate("reference:gpt-4o-2024-08-06", progress=False)
    print(bench.compare(run, other))
    print(bench.leaderboard()[["predictor", "mae"]].to_string())
    from bench.cli import main
    for args in (["leaderboard", "--no-charts"], ["leaderboard"], ["show", "guess"],
                 ["compare", "guess", "reference:gpt-4o-2024-08-06"], ["score"], ["list"]):
        code = main([*args, *(["--results-dir", sys.argv[1]] if args[0] != "list" else [])])
        assert code == 0, (args, code)
    heavy = sorted(m for m in {HEAVY!r} if sys.modules.get(m) is not None)
    print("heavy modules imported:", heavy or "none")
    assert not heavy, heavy
""").replace("{HEAVY!r}", repr(HEAVY))

# Makes the heavy packages unimportable, as in an environment without them
# (``find_spec`` says None, ``import`` raises ModuleNotFoundError).
BLOCKER = f"import sys\nfor name in {HEAVY!r}:\n    sys.modules[name] = None\n"


def _env(tmp_path: Path, data_dir: Path) -> dict[str, str]:
    return {**os.environ, "BENCH_DATA_DIR": str(data_dir),
            "BENCH_RESULTS_DIR": str(tmp_path / "results"),
            "BENCH_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
            "MPLBACKEND": "Agg"}


def test_the_core_paths_need_no_extra(tmp_path, data_dir):
    """Scoring a function, the board, show, compare, score and list work with
    every extra's packages unimportable, and import none of them."""
    env = {**_env(tmp_path, data_dir), "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", BLOCKER + SCRIPT, str(tmp_path / "results")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "guess on pricer-test: MAE $" in done.stdout
    assert "heavy modules imported: none" in done.stdout
    assert (tmp_path / "results" / "local" / "LEADERBOARD.md").exists()


def test_the_notebook_extra_brings_jupyter():
    """`pip install -e '.[notebook]'` gives `jupyter lab` (JupyterLab) or
    `jupyter notebook`, and what runs the notebook from a script."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    names = {req.split(">")[0].split("=")[0].split("[")[0].strip().lower()
             for req in extras["notebook"]}
    assert names & {"jupyterlab", "notebook"}, names
    assert {"ipykernel", "nbclient", "nbformat"} <= names


# -- opt-in: real installs into fresh environments -------------------------------


def _copy_of_checkout(dest: Path) -> Path:
    """The tracked files of this checkout (what a clone has), nothing built."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout to copy")
    for name in filter(None, listed.stdout.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


def _venv(where: Path, spec: str, source: Path, editable: bool = True) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(where)], check=True, timeout=300)
    pip = subprocess.run([str(where / "bin" / "pip"), "install", "--quiet",
                          *(["-e"] if editable else []), f"{source}{spec}"],
                         capture_output=True, text=True, timeout=1800)
    if pip.returncode != 0 and "No matching distribution" in pip.stderr:
        pytest.skip(f"PyPI cannot be reached: {pip.stderr.strip().splitlines()[-1]}")
    assert pip.returncode == 0, pip.stderr
    return where


def _size_mb(folder: Path) -> float:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()
               and not f.is_symlink()) / 1e6


@pytest.mark.install
def test_the_core_install_scores_a_function_and_writes_the_board(tmp_path, data_dir):
    """Installed as a package (not editable, the checkout moved away), so what
    it needs besides the code (the dataset manifests) must ship with it."""
    source = _copy_of_checkout(tmp_path / "src")
    venv = _venv(tmp_path / "venv", "", source, editable=False)
    shutil.rmtree(source)
    size = _size_mb(venv)
    print(f"\ncore install (pip install . into a fresh venv): {size:,.0f} MB")
    installed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=freeze"],
                               capture_output=True, text=True).stdout.lower()
    for extra in ("scikit-learn", "torch", "openai", "anthropic", "transformers", "xgboost"):
        assert f"{extra}==" not in installed, extra
    env = _env(tmp_path, data_dir)
    env.pop("PYTHONPATH", None)
    work = tmp_path / "work"
    work.mkdir()
    done = subprocess.run([str(venv / "bin" / "python"), "-c", SCRIPT, str(tmp_path / "results")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "heavy modules imported: none" in done.stdout
    board = subprocess.run([str(venv / "bin" / "bench"), "leaderboard", "--results-dir",
                            str(tmp_path / "results")], cwd=work, env=env,
                           capture_output=True, text=True, timeout=600)
    assert board.returncode == 0, board.stderr
    assert "guess" in (tmp_path / "results" / "local" / "LEADERBOARD.md").read_text()
    assert size < 1000  # against 3.2 GB for everything


@pytest.mark.install
def test_the_notebook_install_opens_jupyter_lab(tmp_path):
    source = _copy_of_checkout(tmp_path / "src")
    venv = _venv(tmp_path / "venv", "[notebook]", source)
    print(f"\nnotebook install (pip install -e '.[notebook]'): {_size_mb(venv):,.0f} MB")
    lab = subprocess.run([str(venv / "bin" / "jupyter"), "lab", "--version"],
                         capture_output=True, text=True, timeout=300)
    assert lab.returncode == 0, lab.stderr
