# Two commands for a fresh machine:
#   make run    set up .venv, score every predictor that can run here, write your
#               leaderboard in results/local/ (git-ignored: git status stays clean)
#   make test   set up .venv, run the test suite
# For maintainers: make publish (after make run) writes the published board, the only
# command that does: results/LEADERBOARD.md, leaderboard.json/.csv, results/charts/,
# the README's leaderboard block and the committed site in results/site/.
# Data: BENCH_DATA_DIR (a folder with test.jsonl, train.jsonl, ...) if set, else the
# Hugging Face hub. The tests need the real data folder: BENCH_TEST_DATA_DIR
# (default ../shared/data/pricer).

PYTHON ?= python3
VENV ?= .venv
# The torch build to install first: CPU wheel here; on a GPU machine pass e.g.
# TORCH_SPEC="torch>=2.3" to get the CUDA build from PyPI.
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup run publish test lint clean

setup: $(STAMP)

# Each step says what it does first: a fresh install takes minutes, and pip --quiet
# prints nothing while it works (errors still show).
$(STAMP): pyproject.toml
	@echo "setup 1/4: creating the virtual environment $(VENV) with $(PYTHON)"
	@$(PYTHON) -m venv $(VENV)
	@echo "setup 2/4: upgrading pip"
	@$(BIN)/pip install --quiet --upgrade pip
	@echo "setup 3/4: installing $(TORCH_SPEC) (the largest download; a minute or more)"
	@$(BIN)/pip install --quiet "$(TORCH_SPEC)"
	@echo "setup 4/4: installing pricer-bench and its dependencies (pip install -e .[dev]; a minute or two)"
	@$(BIN)/pip install --quiet -e ".[dev]"
	@touch $(STAMP)
	@echo "setup done: $(VENV) is ready"

run: setup
	@echo "scoring every predictor that can run here (classic models train on first use: a few minutes)"
	$(BIN)/python -m bench run all --results-dir results
	$(BIN)/python -m bench leaderboard --results-dir results

# The published board (and the site, which shows each run's provenance: git commit,
# timings, versions) is written on purpose here, never by a user's make run.
publish: run
	$(BIN)/python -m bench leaderboard --results-dir results --publish --update-readme
	$(BIN)/python -m bench site --results-dir results --publish
	$(BIN)/python -m bench.screenshot --site results/site --output results/leaderboard.png

test: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check bench predictors tests

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
