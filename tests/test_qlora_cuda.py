"""QLoRA on a CUDA GPU: the paths CPU machines cannot take. Skipped without
CUDA and bitsandbytes (so in CI); on a GPU machine ``pytest
tests/test_qlora_cuda.py`` runs them on the tiny model, offline, in about a
minute.

- ``bench train qlora`` under ``torchrun --nproc_per_node=1``: the 4-bit base
  (bitsandbytes nf4) lands on the GPU of its local rank, trains with mixed
  precision and non-reentrant gradient checkpointing, and rank 0 writes one
  adapter whose ``training.json`` records where and how it trained.
- The trained adapter predicts on the 4-bit base on the GPU: every module on
  ``cuda:0``, 4-bit layers present, answers batched agree with one by one.
- More processes than GPUs (``--nproc_per_node`` too high) is refused.
- With two GPUs or more: two processes (NCCL) against one with the same global
  batch, as ``test_qlora_distributed.py`` does on CPU over gloo.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.data import load_test_set, load_train
from tests.conftest import ROOT

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytestmark = [
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU"),
    pytest.mark.skipif(importlib.util.find_spec("bitsandbytes") is None,
                       reason="bitsandbytes is not installed"),
]

TRAIN_SIZE = 48  # 24 steps x 4 = two passes: enough for the tiny model to learn
STEPS = 24  # logged every 4 (each a mean over 4 batches): 6 points
LOGGED = 6
ITEMS = 48


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from predictors.qlora.examples import training_text
    from predictors.qlora.tiny import build_tiny_llama

    test_set = load_test_set(data_dir)
    examples = load_train(data_dir, test_set=test_set, size=TRAIN_SIZE, seed=42)[0]
    texts = [training_text(e) for e in examples] + [p.prompt for p in test_set.products()]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "base", texts)


def _train(launcher: list[str], tiny: Path, data_dir: Path, cache: Path, batch: int,
           *extra: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    params = [f"base={tiny}", f"train_size={TRAIN_SIZE}", f"train_batch_size={batch}",
              f"max_steps={STEPS}", "lr=1e-2", "max_length=512", "logging_steps=4",
              "warmup_ratio=0", "lora_r=8", "lora_alpha=16", "lora_dropout=0",
              "group_by_length=false", *extra]
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                         if p)}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    cmd = [*launcher, "-m", "bench", "train", "qlora", "--data-dir", str(data_dir),
           *[a for p in params for a in ("--param", p)]]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0 or not check, done.stderr[-4000:]
    return done


def _meta(cache: Path) -> tuple[Path, dict]:
    [meta] = list(cache.rglob("training.json"))
    return meta.parent, json.loads(meta.read_text())


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny: Path,
            data_dir: Path) -> tuple[Path, dict]:
    cache = tmp_path_factory.mktemp("cuda-train")
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=1"]
    _train(torchrun, tiny, data_dir, cache, 4, "gradient_checkpointing=true")
    return _meta(cache)


def test_4bit_training_on_the_gpu_under_torchrun(trained: tuple[Path, dict]) -> None:
    adapter, meta = trained
    print(json.dumps({k: meta[k] for k in ("load", "world_size", "global_batch_size",
                                           "seconds_per_step")}))
    assert meta["load"]["device"].startswith("cuda")
    assert meta["load"]["quant"] == "4"
    expected = "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
    assert meta["load"]["mixed_precision"] == expected
    assert (meta["world_size"], meta["global_batch_size"]) == (1, 4)
    assert meta["hyperparameters"]["gradient_checkpointing"] is True
    assert meta["hyperparameters"]["optimizer_used"].startswith("paged_adamw")
    losses = [c["loss"] for c in meta["loss_curve"]]
    assert len(losses) == LOGGED and all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0], losses  # as on CPU (test_qlora.py)
    from safetensors.torch import load_file

    weights = load_file(adapter / "adapter_model.safetensors")
    assert all(w.abs().max() > 0 for k, w in weights.items() if "lora_B" in k)  # zero at start


def test_the_adapter_predicts_on_the_4bit_base_on_the_gpu(
        trained: tuple[Path, dict], tiny: Path, data_dir: Path) -> None:
    import bitsandbytes as bnb

    from predictors.qlora.predictor import QLoRAPredictor

    adapter, _ = trained
    products = load_test_set(data_dir).products()[:ITEMS]
    predictor = QLoRAPredictor(base=str(tiny), adapter=str(adapter), device="auto",
                               batch_size=16)
    predictor.prepare()
    model = predictor._model  # noqa: SLF001 - where did it load?
    devices = {p.device for p in model.parameters()}
    assert devices == {torch.device("cuda", 0)}, devices
    assert any(isinstance(m, bnb.nn.Linear4bit) for m in model.modules())
    assert predictor.fingerprint()["quant"] == "4"
    assert predictor.loaded()["device"].startswith("cuda")  # type: ignore[index]

    batched = predictor.predict(products)
    alone = [predictor.predict([p])[0] for p in products[:16]]
    answered = [p for p in batched if p.price is not None]
    assert answered, [p.error for p in batched][:5]
    assert all(p.price > 0 for p in answered)
    for one, many in zip(alone, batched[:16], strict=True):  # left padding is masked out
        assert (one.price is None) == (many.price is None)
        if one.price is not None:
            assert many.price == pytest.approx(one.price, rel=2e-2)


def test_more_processes_than_gpus_are_refused(tiny: Path, data_dir: Path,
                                              tmp_path: Path) -> None:
    n = torch.cuda.device_count() + 1
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={n}"]
    done = _train(torchrun, tiny, data_dir, tmp_path, 2, check=False)
    assert done.returncode != 0
    assert f"{n} processes on this machine but it shows {n - 1} GPU" in done.stderr
    assert not list(tmp_path.rglob("training.json"))


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_two_gpus_train_like_one_with_the_same_global_batch(
        tiny: Path, data_dir: Path, tmp_path: Path) -> None:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2"]
    _train(torchrun, tiny, data_dir, tmp_path / "two", 2)
    _train([sys.executable], tiny, data_dir, tmp_path / "one", 4)
    _, two = _meta(tmp_path / "two")
    _, one = _meta(tmp_path / "one")
    assert (two["world_size"], two["global_batch_size"]) == (2, 4)
    assert two["load"]["device"] == "cuda:0"  # rank 0's own GPU
    curve_two = [c["loss"] for c in two["loss_curve"]]
    curve_one = [c["loss"] for c in one["loss_curve"]]
    # 4-bit matmuls in bf16 reduce in another order across two GPUs: 2%.
    assert curve_two == pytest.approx(curve_one, rel=2e-2), (curve_two, curve_one)
