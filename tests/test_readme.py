"""Every code block in the README and in docs/*.md that a user would copy runs
here (#13, #22): the Python files are written out and used as a user would (as
plugins, and the contract test run), and the bash blocks' `bench` / `python -m
bench` commands run offline against the data folder in a temporary folder. A
block that needs a key, a GPU, the network, `make` or minutes of training is
marked below with the reason; a new block that is neither run nor marked fails
the test. Every dollar figure quoted next to a board row's name (in backticks)
is checked against results/leaderboard.json, so none can go stale."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.conftest import ROOT

README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]
BOARD = ROOT / "results" / "leaderboard.json"
FENCE = re.compile(r"^```([a-z]*)\n(.*?)^```$", re.M | re.S)

# First line of a block -> why the tests do not run it.
MARKED = {
    "make run    # score every predictor that can run here; your board in "
    "results/local/LEADERBOARD.md": "make builds a fresh .venv (minutes, network)",
    "BENCH_DATA_DIR=../shared/data/pricer make run": "make builds a fresh .venv (minutes)",
    "results/": "a folder listing, not a command",
    "python -m bench train xgboost                       # or random-forest, linear, "
    "constant": "trains the classic models: minutes (tests/test_classic_* cover them)",
    "export OPENAI_API_KEY=...                                  # or ANTHROPIC_API_KEY=...":
        "needs API keys and the network (tests/test_frontier_cli.py runs the same "
        "commands against a loopback server)",
    'make setup TORCH_SPEC="torch>=2.3"     # a CUDA build of torch; then accept the Llama '
    "3.1 licence on the hub": "needs an NVIDIA GPU and the Llama weights",
    "import bench": "run by tests/test_notebook.py (the notebook block, in a subprocess)",
    "bench site [--results-dir results] [--output results/local/site] [--data-dir DIR]":
        "tests/test_site.py and tests/test_site_browser.py build and serve the site",
    "pip install -e '.[retrieval,classic,frontier]'": "installs packages (network)",
    "torchrun --nproc_per_node=4 -m bench train qlora --param train_size=400000 \\":
        "needs 4 GPUs (tests/test_qlora_distributed.py runs 2 CPU processes)",
    "vllm serve meta-llama/Meta-Llama-3.1-8B --enable-lora \\":
        "needs a GPU, vLLM and the Llama weights",
    "pip install -e '.[llm,gguf]'                  # the CPU build of torch is enough":
        "installs packages and fine-tunes for minutes (tests/test_qlora_smollm2.py, "
        "marked slow, runs the same path)",
    "pip install -e .                 # in the repository: the core alone":
        "installs packages (network): tests/test_install.py, marked install, does it "
        "in a fresh environment",
    'python -m venv .venv && .venv/bin/pip install torch==2.13.0 -e ".[dev]"':
        "installs every extra (minutes, network)",
    "datasets/*.json (manifest: source, rows, fingerprint)": "a diagram, not a command",
    "guess reads TABLE, model from outside the function, and their values are not":
        "a warning's text, not a command (tests/test_function_identity.py checks it)",
    "error: data/test.jsonl:4: rows do not match the manifest 'pricer-test': row id 3 "
    "differs (its text or price); refusing to score on different data":
        "an error's text, not a command (tests/test_integrity.py checks it)",
    "error: results/pricer-test/human-1b732a498b: is a symbolic link: refusing to write or "
    "delete through it (remove the link, or point the command at the real folder)":
        "an error's text, not a command (tests/test_integrity.py checks it)",
    "python -m bench run ensemble                       # xgboost,random-forest,knn":
        "trains 5 fold models per member: many minutes (tests/test_ensemble.py runs "
        "the same path on a small pool)",
    "pip install -e '.[llm,gguf]'": "installs packages (network)",
    "python -m bench run qlora --param base=wheel:smollm2 \\":
        "tests/test_committed_finetune.py scores the committed adapter on the first items",
    "OMP_NUM_THREADS=1 python -m bench.perf.finetune --validation 150 --minutes 48 \\":
        "trains for 48 minutes (tests/test_qlora_head.py runs the same path on a tiny model)",
    "python -m bench train qlora --param base=wheel:smollm2 --param quant=none \\":
        "trains for 48 minutes (tests/test_qlora_head.py runs the same path on a tiny model)",
    "bash bench/perf/finetune_gpu.sh pack      # here: .gpu-carry/ (GGUF in two parts < 64 "
    "MiB, sha256, gguf wheel, data)": "packs files for the GPU machine (hundreds of MB)",
    "bench run openai anthropic --max-cost 0.50":
        "needs API keys (tests/test_share.py runs --max-cost against a loopback server)",
    "stopped openai:gpt-4o-mini: --max-cost $0.5000: 120 items not asked (about $0.0041 "
    "more; $0.0009 was left); rerun with a larger --max-cost to resume":
        "a message's text, not a command (tests/test_share.py checks it)",
    "pip install 'pricer-bench[mlflow]'     # MLflow's client (mlflow-skinny); full mlflow "
    "works too": "installs packages (network)",
    "python -m bench run openai-logprobs:pricer \\":
        "needs two vLLM or llama.cpp servers (tests/test_replicas.py runs two loopback "
        "servers through the same code)",
}
# Blocks this file runs, by first line.
RUN = {"# my_predictors.py", "# my_model.py", "# test_my_model.py",
       "BENCH_PLUGINS=my_predictors python -m bench run by-length --param "
       "dollars_per_char=0.3", "# your pyproject.toml"}


def blocks() -> list[tuple[str, str]]:
    """Every fenced block of the README and the docs pages: (language, body)."""
    return [(m.group(1), m.group(2)) for page in PAGES for m in FENCE.finditer(page.read_text())]


def first_line(body: str) -> str:
    return body.strip().splitlines()[0].rstrip()


def test_every_block_is_run_or_marked_with_a_reason():
    unknown = [first_line(b) for _, b in blocks()
               if first_line(b) not in RUN and first_line(b) not in MARKED]
    assert not unknown, f"blocks neither run by tests/test_readme.py nor marked: {unknown}"
    stale = (RUN | set(MARKED)) - {first_line(b) for _, b in blocks()}
    assert not stale, f"marked blocks no longer in the README or docs: {stale}"


def _block(first: str) -> tuple[str, str]:
    (found,) = [(lang, body) for lang, body in blocks() if first_line(body) == first]
    return found


def _command(line: str, folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    words = shlex.split(line, comments=True)
    extra = {}
    while words and re.fullmatch(r"[A-Z_]+=.*", words[0]):
        key, _, value = words.pop(0).partition("=")
        extra[key] = value
    if words[:3] == ["python", "-m", "bench"]:
        words = [sys.executable, *words[1:]]
    elif words[0] == "bench":
        script = Path(sys.executable).with_name("bench")
        if not script.exists():
            pytest.skip("the `bench` console script is not installed in this environment")
        words = [str(script), *words[1:]]
    else:
        raise AssertionError(f"not a bench command: {line}")
    return subprocess.run(words, cwd=folder, env={**env, **extra}, capture_output=True,
                          text=True, timeout=600)


def test_the_readme_python_and_bash_blocks_run(tmp_path, data_dir):
    for first in ("# my_predictors.py", "# my_model.py", "# test_my_model.py"):
        lang, body = _block(first)
        assert lang == "python"
        (tmp_path / first[2:]).write_text(body)
    env = {**os.environ, "BENCH_DATA_DIR": str(data_dir), "XDG_DATA_HOME": str(tmp_path / "data"),
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("BENCH_RESULTS_DIR", None)
    # The contract test, as the user would run it (pytest from their folder).
    test = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "test_my_model.py"], cwd=tmp_path, capture_output=True, text=True,
                          env={**env, "PYTHONPATH": f"{tmp_path}{os.pathsep}{env['PYTHONPATH']}"},
                          timeout=600)
    assert test.returncode == 0, test.stdout + test.stderr
    # The bash block: both commands, as written (the second uses the console script).
    _, body = _block("BENCH_PLUGINS=my_predictors python -m bench run by-length --param "
                     "dollars_per_char=0.3")
    for line in body.strip().splitlines():
        result = _command(line, tmp_path, env)
        assert result.returncode == 0, (line, result.stderr)
        assert "by-length" in result.stdout
    # outside a checkout, runs go to the per-user results folder (bench.places)
    results = tmp_path / "data" / "pricer-bench" / "results"
    stored = sorted(p.parent.name for p in results.glob("*/*/run.json"))
    assert len(stored) == 2 and all(s.startswith("by-length-") for s in stored)
    # A module name from the current folder works with the console script as with -m.
    listed = _command("BENCH_PLUGINS=my_predictors,my_model bench list", tmp_path, env)
    assert listed.returncode == 0 and "by-length" in listed.stdout, listed.stderr
    assert "my-model" in listed.stdout
    # The class example runs too, through the same plugin mechanism.
    result = _command("BENCH_PLUGINS=./my_model.py python -m bench run my-model:v2 --quiet",
                      tmp_path, env)
    assert result.returncode == 0 and "my-model:v2" in result.stdout, result.stderr


def test_the_entry_point_block_is_valid_toml_naming_the_example():
    lang, body = _block("# your pyproject.toml")
    assert lang == "toml"
    table = tomllib.loads(body)["project"]["entry-points"]["bench.predictors"]
    assert table == {"by-length": "my_predictors:by_length"}


# -- figures quoted from the board ---------------------------------------------

MONEY = re.compile(r"\$[\d,]+\.\d\d")
NAME = re.compile(r"`([^`\s]+)`")
GENERATED = re.compile(r"<!-- leaderboard:start -->.*?<!-- leaderboard:end -->", re.S)


def _quoted_board_figures() -> list[tuple[str, int, list[str], list[str]]]:
    """(page, line, board names in backticks, $ figures) for each line that
    names a board row and quotes a dollar figure (the generated block aside)."""
    from bench.reports.format import money

    rows = json.loads(BOARD.read_text())["rows"]
    figures = {r["predictor"]: {money(r["mae"]), *(money(v) for v in r["mae_ci95"] or [])}
               for r in rows if r["mae"] is not None}
    found = []
    for page in PAGES:
        text = GENERATED.sub("", page.read_text())
        for number, line in enumerate(text.splitlines(), 1):
            names = [n for n in NAME.findall(line) if n in figures]
            dollars = MONEY.findall(line)
            if names and dollars:
                allowed = set().union(*(figures[n] for n in names))
                found.append((page.name, number, names,
                              [d for d in dollars if d not in allowed]))
    return found


def test_figures_quoted_from_the_board_match_leaderboard_json():
    quoted = _quoted_board_figures()
    assert quoted, "no board figure quoted anywhere: the check would check nothing"
    wrong = [(page, line, names, bad) for page, line, names, bad in quoted if bad]
    assert not wrong, ("figures quoted next to a board row's name that are not that row's "
                       f"MAE or interval in results/leaderboard.json: {wrong}")


def test_no_stale_board_figure_in_the_docs():
    """The figures of boards before the classic models were made exact, and
    the README's old table, are gone."""
    for page in PAGES:
        text = GENERATED.sub("", page.read_text())
        for stale in ("$88.89", "$94.92", "$88.13", "$94.35"):
            assert stale not in text, (page.name, stale)


def test_the_readme_says_what_is_replayed_and_how_to_install_light():
    text = README.read_text()
    intro = text[: text.index("<!-- leaderboard:start -->")]
    assert "makes the field's headline claims reproducible" not in intro
    assert "Replayed" in intro and "recorded" in intro and "gated" in intro
    notebook = text[text.index("## In a notebook"):text.index("## The CLI")]
    assert "pip install -e ." in notebook and "pip install -e '.[notebook]'" in notebook
    assert "docs/install.md" in notebook
    install = (ROOT / "docs" / "install.md").read_text()
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    for extra in extras:
        assert f"| `{extra}` |" in install, f"extra {extra!r} missing from docs/install.md"
    assert len(text.splitlines()) < 350, "the README is a front page: details go to docs/"
    for link in re.findall(r"\]\((docs/[^)#]+)", text):
        assert (ROOT / link).exists(), link
