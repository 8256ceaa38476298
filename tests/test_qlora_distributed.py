"""Data-parallel fine-tuning: ``torchrun --nproc_per_node=2 -m bench train qlora``
on the tiny model, two CPU processes over gloo, against one process with the
same global batch; and the placement rules of ``predictors/qlora/distributed.py``.

CPU only and offline; about a minute.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from bench.data import load_test_set, load_train
from bench.errors import BenchError
from predictors.qlora import distributed
from tests.conftest import ROOT, run_cli

TRAIN_SIZE = 32
STEPS = 6
# Same seed, same data order, same global batch of 4 (2 x 2 processes vs 4 x 1),
# no dropout: the runs differ only in float reduction order (measured: the
# logged losses agree to 1e-6). Stated tolerance: 0.1% on every logged loss.
LOSS_TOLERANCE = 1e-3


# -- where each process goes (torch-free) -----------------------------------------


def test_ranks_come_from_the_launcher_environment() -> None:
    assert distributed.ranks({}) == distributed.Ranks(1, 0, 0)
    two = distributed.ranks({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})
    assert (two.distributed, two.main) == (True, False)
    with pytest.raises(BenchError, match="RANK=2"):
        distributed.ranks({"WORLD_SIZE": "2", "RANK": "2"})
    with pytest.raises(BenchError, match="WORLD_SIZE='two'"):
        distributed.ranks({"WORLD_SIZE": "two"})


def test_each_process_takes_the_gpu_of_its_local_rank() -> None:
    one, second = distributed.Ranks(), distributed.Ranks(4, 3, 1)
    assert distributed.device_for("cuda:1", 2, one) == "cuda:1"  # one process: as asked
    assert distributed.device_for("auto", 2, second) == "cuda:1"
    assert distributed.device_for("cuda", 2, second) == "cuda:1"
    assert distributed.device_for("auto", 0, second) == "cpu"
    assert distributed.device_for("cpu", 2, second) == "cpu"
    for fixed in ("cuda:0", "map"):
        with pytest.raises(BenchError, match="device_map='auto'") as err:
            distributed.device_for(fixed, 2, second)
        assert "\n" not in str(err.value)
    # Two processes on a one-GPU machine: the second has no GPU of its own.
    first_of_two = distributed.ranks({"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0",
                                      "LOCAL_WORLD_SIZE": "2"})
    for where in (second, first_of_two):  # every process refuses, rank 0 too
        with pytest.raises(BenchError, match="2 processes on this machine but it shows 1 GPU:"
                           ".*--nproc_per_node=1") as err:
            distributed.device_for("auto", 1, where)
        assert "\n" not in str(err.value)
    assert distributed.device_for("auto", 2, first_of_two) == "cuda:0"
    assert distributed.global_batch(2, 3, distributed.Ranks(4, 0, 0)) == 24


def test_a_fixed_device_under_torchrun_is_refused_in_one_line(data_dir: Path) -> None:
    done = run_cli("train", "qlora", "--data-dir", str(data_dir), "--param", "device=cuda:0",
                   env={"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"})
    assert done.returncode == 2, done.stderr[-2000:]
    [line] = done.stderr.strip().splitlines()
    assert "device=cuda:0" in line and "local rank" in line and "Traceback" not in line


def test_visible_gpus_are_counted_as_cuda_reads_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from predictors.qlora import loading

    monkeypatch.setattr(loading.glob, "glob", lambda pattern: ["/dev/nvidia0", "/dev/nvidia1"])
    for visible, count in (("", 0), ("-1", 0), ("0", 1), ("1,0", 2), ("0,-1,1", 1),
                           ("GPU-5c1e", 1), ("0,1,2,3", 2), (None, 2)):
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
        assert loading._visible_gpus() == count, visible  # noqa: SLF001 - the torch-free path


# -- two processes against one ------------------------------------------------------


torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    from predictors.qlora.examples import training_text
    from predictors.qlora.tiny import build_tiny_llama

    test_set = load_test_set(data_dir)
    examples = load_train(data_dir, test_set=test_set, size=TRAIN_SIZE, seed=42)[0]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "base",
                            [training_text(e) for e in examples])


def _train(launcher: list[str], tiny: Path, data_dir: Path, cache: Path,
           batch: int) -> subprocess.CompletedProcess[str]:
    # device=cpu: CPU processes over gloo, on a GPU machine too.
    params = [f"base={tiny}", f"train_size={TRAIN_SIZE}", f"train_batch_size={batch}",
              f"max_steps={STEPS}", "lr=1e-2", "max_length=512", "logging_steps=1",
              "warmup_ratio=0", "lora_r=8", "lora_alpha=16", "lora_dropout=0",
              "group_by_length=false", "device=cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "BENCH_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                         if p)}
    for key in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):  # the launcher sets its own
        env.pop(key, None)
    cmd = [*launcher, "-m", "bench", "train", "qlora", "--data-dir", str(data_dir),
           *[a for p in params for a in ("--param", p)]]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    return done


def _adapters(cache: Path) -> list[Path]:
    return sorted(p.parent for p in cache.rglob("adapter_config.json"))


def test_two_processes_train_like_one_with_the_same_global_batch(
        tiny: Path, data_dir: Path, tmp_path: Path) -> None:
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                "--nproc_per_node=2"]
    two = _train(torchrun, tiny, data_dir, tmp_path / "two", batch=2)
    one = _train([sys.executable], tiny, data_dir, tmp_path / "one", batch=4)

    # Rank 0 alone wrote, and spoke.
    [adapter] = _adapters(tmp_path / "two")
    assert sorted(p.name for p in adapter.iterdir()) == [
        "README.md", "adapter_config.json", "adapter_model.safetensors", "training.json"]
    assert len(list((tmp_path / "two").rglob("training.json"))) == 1
    assert two.stdout.count("trained qlora") == one.stdout.count("trained qlora") == 1
    assert two.stderr.count("saved adapter to") == 1
    assert len(re.findall(r"training qlora\S* on \d+ examples", two.stderr)) == 1

    meta_two = json.loads((adapter / "training.json").read_text())
    [single] = _adapters(tmp_path / "one")
    meta_one = json.loads((single / "training.json").read_text())
    assert (meta_two["world_size"], meta_two["global_batch_size"]) == (2, 4)
    assert (meta_one["world_size"], meta_one["global_batch_size"]) == (1, 4)
    assert meta_two["hyperparameters"]["total_steps"] == STEPS
    assert meta_two["hyperparameters"]["train_batch_size"] == 2

    curve_two = [c["loss"] for c in meta_two["loss_curve"]]
    curve_one = [c["loss"] for c in meta_one["loss_curve"]]
    assert len(curve_two) == len(curve_one) == STEPS
    print("losses, 2 processes x 2:", curve_two, "\nlosses, 1 process x 4:", curve_one)
    assert curve_two == pytest.approx(curve_one, rel=LOSS_TOLERANCE), (curve_two, curve_one)

    # The same update reached both: the LoRA B matrices (zero at the start) moved,
    # and alike; two unsynchronised processes would each have moved their own way.
    from safetensors.torch import load_file

    weights_two = load_file(adapter / "adapter_model.safetensors")
    weights_one = load_file(single / "adapter_model.safetensors")
    assert weights_two.keys() == weights_one.keys()
    lora_b = [k for k in weights_two if "lora_B" in k]
    assert lora_b and all(weights_two[k].abs().max() > 0 for k in lora_b)
    for key, tensor in weights_two.items():
        torch.testing.assert_close(tensor, weights_one[key], rtol=1e-3, atol=1e-5)
