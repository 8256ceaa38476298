"""The qlora predictor's regression head (``--param head=log-price``) on a tiny
Llama built in code: trained with the adapter through the real CLI, saved
beside it, priced in one forward pass (checked against a price computed by
hand from the saved files), its ridge start, its identity and provenance, and
bad input. CPU only and offline.
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from bench.data import load_test_set, load_train
from bench.types import Example
from tests.conftest import run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from predictors.qlora import head as price_head  # noqa: E402
from predictors.qlora.examples import training_text  # noqa: E402
from predictors.qlora.predictor import QLoRAPredictor  # noqa: E402
from predictors.qlora.tiny import build_tiny_llama  # noqa: E402
from predictors.qlora.training import TrainConfig  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TRAIN_SIZE = 48
N_TEST = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    test_set = load_test_set(data_dir)
    examples: list[Example] = load_train(data_dir, test_set=test_set, size=TRAIN_SIZE,
                                         seed=42)[0]
    texts = [training_text(e) for e in examples] + [p.prompt for p in
                                                    test_set.products()[:N_TEST]]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "base", texts)


@pytest.fixture(scope="module")
def adapter(tmp_path_factory: pytest.TempPathFactory, tiny: Path, data_dir: Path) -> Path:
    """An adapter and head trained by the real command line: the head starts
    from its ridge fit, reads the mean of layer 1's normed state."""
    out = tmp_path_factory.mktemp("adapter") / "tiny-pricer-head"
    params = [f"base={tiny}", f"output_dir={out}", f"train_size={TRAIN_SIZE}",
              "max_steps=6", "lr=1e-2", "max_length=512", "logging_steps=2", "lora_r=4",
              "device=cpu", "head=log-price", "head_depth=1", "head_pool=mean",
              "lm_weight=0", "head_init=ridge", "head_lr=1e-3", "lora_layers=1"]
    result = run_cli("train", "qlora", "--data-dir", str(data_dir),
                     *[a for p in params for a in ("--param", p)], env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def head_predictor(base: Path, adapter: Path | str, **params: object) -> QLoRAPredictor:
    return QLoRAPredictor(base=str(base), adapter=str(adapter), quant="none", device="cpu",
                          head="log-price", **params)


def test_the_head_is_saved_beside_the_adapter_with_its_start(adapter: Path) -> None:
    for name in ("adapter_model.safetensors", price_head.WEIGHTS, price_head.CONFIG,
                 "price_head.init.safetensors", "price_head.init.json"):
        assert (adapter / name).is_file(), name
    meta = json.loads((adapter / "training.json").read_text())
    spec = json.loads((adapter / price_head.CONFIG).read_text())
    assert spec["depth"] == 1 and spec["pool"] == "mean" and spec["std"] > 0
    assert meta["head"] == spec
    assert meta["head_init"]["alpha"] in price_head.RIDGE_ALPHAS
    assert meta["head_init"]["rows"] == TRAIN_SIZE  # no time limit: every training row
    assert all("head_loss" in c for c in meta["loss_curve"])
    assert meta["trained_on"]["cpu"] and meta["hyperparameters"]["head"] == "log-price"
    # The head trained: it moved from its start.
    start, _ = price_head.load(adapter, stem="price_head.init")
    trained, _ = price_head.load(adapter)
    assert not torch.equal(start.weight, trained.weight)


def test_head_prices_are_the_saved_head_applied_by_hand(tiny: Path, adapter: Path,
                                                        data_dir: Path) -> None:
    """The predictor's price = expm1(std * (w . mean(norm(layer 1 states)) + b) + mean),
    recomputed here from the files with plain transformers and peft."""
    from peft import PeftModel
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM, AutoTokenizer

    products = load_test_set(data_dir).products()[:N_TEST]
    got = head_predictor(tiny, adapter, batch_size=3).predict(products)
    assert all(p.price is not None and p.price > 0 for p in got)

    tok = AutoTokenizer.from_pretrained(tiny)
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny),
                                      str(adapter)).merge_and_unload().eval()
    spec = json.loads((adapter / price_head.CONFIG).read_text())
    w = load_file(str(adapter / price_head.WEIGHTS))
    for product, pred in zip(products, got, strict=True):
        ids = tok(product.prompt, return_tensors="pt")["input_ids"]
        with torch.no_grad():
            states = model.model.embed_tokens(ids)
            out = model(input_ids=ids, output_hidden_states=True)
            state = model.model.norm(out.hidden_states[1])  # the first layer, normed
        del states
        value = float((state.mean(1) @ w["weight"].T + w["bias"]).squeeze())
        expected = math.expm1(value * spec["std"] + spec["mean"])
        assert pred.price == pytest.approx(expected, rel=1e-4), product.id


def test_batched_head_prices_equal_one_by_one(tiny: Path, adapter: Path,
                                              data_dir: Path) -> None:
    products = load_test_set(data_dir).products()[:N_TEST]
    batched = head_predictor(tiny, adapter, batch_size=N_TEST).predict(products)
    single = head_predictor(tiny, adapter, batch_size=1).predict(products)
    for a, b in zip(batched, single, strict=True):
        assert a.price == pytest.approx(b.price, rel=1e-4)


def test_run_json_records_the_provenance_and_the_folder_is_the_same_anywhere(
        tiny: Path, adapter: Path, data_dir: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    args = ["run", "qlora", "--data-dir", str(data_dir), "--limit", "3", "--results-dir",
            str(results), "--param", f"base={tiny}", "--param", f"adapter={adapter}",
            "--param", "head=log-price", "--param", "quant=none", "--param", "device=cpu"]
    result = run_cli(*args, env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-2000:]
    (run_dir,) = (results / "pricer-test").iterdir()
    details = json.loads((run_dir / "run.json").read_text())["details"]
    assert details["loaded"]["mode"] == "head"
    found = details["provenance"]
    from bench.digest import file_sha256

    assert found["adapter_files"][price_head.WEIGHTS] == file_sha256(adapter / price_head.WEIGHTS)
    assert found["training"]["hyperparameters"]["head_depth"] == 1
    assert found["training"]["data"]["fingerprint"].startswith("sha256:")
    # The same files elsewhere (another user's paths): the same run folder.
    moved = tmp_path / "elsewhere"
    shutil.copytree(tiny, moved / tiny.name)
    shutil.copytree(adapter, moved / adapter.name)
    here = head_predictor(tiny, adapter).fingerprint()
    there = head_predictor(moved / tiny.name, moved / adapter.name).fingerprint()
    assert here == there and here["mode"] == "head"


def test_the_head_files_are_part_of_the_adapter_identity(tiny: Path, adapter: Path,
                                                         tmp_path: Path) -> None:
    copy = tmp_path / adapter.name
    shutil.copytree(adapter, copy)
    before = head_predictor(tiny, copy).fingerprint()
    spec = json.loads((copy / price_head.CONFIG).read_text())
    (copy / price_head.CONFIG).write_text(json.dumps({**spec, "mean": spec["mean"] + 0.1}))
    assert head_predictor(tiny, copy).fingerprint()["adapter_digest"] \
        != before["adapter_digest"]


def test_ridge_start_is_scikit_learns_ridge_at_the_chosen_alpha() -> None:
    from sklearn.linear_model import Ridge
    from sklearn.preprocessing import StandardScaler

    gen = torch.Generator().manual_seed(0)
    n = 80
    x = torch.randn(n, 12, generator=gen) * torch.linspace(0.1, 30, 12) + 5
    y = x[:, 0] * 2.0 - x[:, 3] * 0.1 + 0.3 * torch.randn(n, generator=gen)
    head = price_head.make(12)
    fit = price_head.ridge_init(head, x, y)
    assert fit["alpha"] in price_head.RIDGE_ALPHAS and fit["rows"] == n
    # The head standardises with the sample std (n - 1), scikit-learn with the
    # population one: the same fit at the penalty scaled by n / (n - 1).
    scaler = StandardScaler().fit(x.numpy())
    ref = Ridge(alpha=fit["alpha"] * n / (n - 1)).fit(scaler.transform(x.numpy()), y.numpy())
    ours = head(x).squeeze(-1).detach().numpy()
    theirs = ref.predict(scaler.transform(x.numpy()))
    assert abs(ours - theirs).max() < 1e-4 * abs(theirs).max()
    assert abs(ours - y.numpy()).mean() < 0.5 * abs(y.numpy() - y.numpy().mean()).mean()


def test_no_head_beside_the_adapter_is_one_clear_reason(tiny: Path, adapter: Path,
                                                        tmp_path: Path, data_dir: Path) -> None:
    bare = tmp_path / "bare"
    shutil.copytree(adapter, bare)
    (bare / price_head.WEIGHTS).unlink()
    reason = head_predictor(tiny, bare).unavailable()
    assert reason and "no regression head" in reason and str(bare) in reason
    assert "local adapter" in (head_predictor(tiny, "none").unavailable() or "")
    damaged = tmp_path / "damaged"
    shutil.copytree(adapter, damaged)
    (damaged / price_head.CONFIG).write_text("{not json")
    result = run_cli("run", "qlora", "--data-dir", str(data_dir), "--limit", "2",
                     "--results-dir", str(tmp_path / "r"), "--param", f"base={tiny}",
                     "--param", f"adapter={damaged}", "--param", "head=log-price",
                     "--param", "quant=none", "--param", "device=cpu", env=ONE_THREAD)
    assert result.returncode in (1, 2), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert f"{damaged / price_head.CONFIG}" in result.stderr


@pytest.mark.parametrize("settings, words", [
    ({"head": "price"}, "head must be one of"),
    ({"head": "log-price", "head_pool": "max"}, "head_pool must be one of"),
    ({"head": "log-price", "head_depth": 3}, "lm_weight=0"),
    ({"head": "log-price", "head_init": "pca"}, "head_init must be"),
    ({"max_minutes": -1}, "must not be negative"),
])
def test_bad_head_settings_are_refused(settings: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        TrainConfig(**settings)


def test_bad_head_setting_on_the_command_line_is_one_line(data_dir: Path,
                                                          tmp_path: Path) -> None:
    result = run_cli("train", "qlora", "--data-dir", str(data_dir), "--param",
                     "head=sideways", "--param", f"output_dir={tmp_path / 'x'}")
    assert result.returncode == 2
    assert "head must be one of" in result.stderr and "Traceback" not in result.stderr


def test_the_head_variant_keeps_the_predictor_contract(tiny: Path, adapter: Path) -> None:
    from bench.testing import check_predictor

    check_predictor(head_predictor(tiny, adapter))
