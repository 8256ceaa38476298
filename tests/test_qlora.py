"""The qlora predictor on a tiny Llama built in code: fine-tune through the CLI,
reload the adapter, predict (batched = one by one), the published top-k rule,
the memory refusal, the 4-bit config, and availability without torch.

CPU only and offline; the whole module runs in about a minute.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from types import SimpleNamespace

import pytest

from bench.data import load_test_set, load_train
from bench.errors import BenchError
from bench.types import Example
from predictors.topk import weighted_price
from tests.conftest import ROOT, run_cli

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

from predictors.qlora import loading, memory, sources  # noqa: E402
from predictors.qlora.examples import encode_examples, training_text  # noqa: E402
from predictors.qlora.predictor import DEFAULT_REVISION, QLoRAPredictor  # noqa: E402
from predictors.qlora.tiny import build_tiny_adapter, build_tiny_llama  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Tiny matrices gain nothing from threads, and a shared CI machine punishes them.
ONE_THREAD = {"OMP_NUM_THREADS": "1"}
TRAIN_SIZE = 48
N_TEST = 12
LLAMA_8B = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096,
    "num_hidden_layers": 32, "vocab_size": 128256, "intermediate_size": 14336,
    "num_attention_heads": 32, "num_key_value_heads": 8, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16",
}


# -- fixtures: one tiny model, one fine-tune for the whole module ----------------


@pytest.fixture(scope="module")
def products(data_dir: Path) -> list:
    return load_test_set(data_dir).products()[:N_TEST]


@pytest.fixture(scope="module")
def train_examples(data_dir: Path) -> list[Example]:
    # The same draw `bench train qlora --param train_size=48` makes (seed 42).
    test_set = load_test_set(data_dir)
    return load_train(data_dir, test_set=test_set, size=TRAIN_SIZE, seed=42)[0]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory, train_examples: list[Example],
         products: list) -> Path:
    texts = [training_text(e) for e in train_examples] + [p.prompt for p in products]
    return build_tiny_llama(tmp_path_factory.mktemp("tiny") / "base", texts)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, tiny: Path, data_dir: Path) -> Path:
    """An adapter fine-tuned by the real command line."""
    out = tmp_path_factory.mktemp("adapter") / "pricer-test"
    params = [f"base={tiny}", f"output_dir={out}", f"train_size={TRAIN_SIZE}",
              "max_steps=24", "lr=1e-2", "max_length=512", "logging_steps=4",
              "warmup_ratio=0", "lora_r=8", "lora_alpha=16",
              "device=cpu"]  # on a GPU machine too: tests/test_qlora_cuda.py trains there
    result = run_cli("train", "qlora", "--data-dir", str(data_dir),
                     *[a for p in params for a in ("--param", p)], env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"adapter={out}" in result.stderr  # tells the user how to score it
    return out


def tiny_predictor(base: Path, adapter: Path | str | None, **params: object) -> QLoRAPredictor:
    return QLoRAPredictor(base=str(base), adapter=str(adapter) if adapter else "none",
                          quant="none", device="cpu", **params)


# -- the published top-k rule ----------------------------------------------------


def test_weighted_price_keeps_positive_numbers_and_renormalises() -> None:
    assert weighted_price([("100", 0.5), ("200", 0.25), ("abc", 0.25)]) == pytest.approx(
        (100 * 0.5 + 200 * 0.25) / 0.75)
    assert weighted_price([("0", 0.9), ("-5", 0.05), (" 40", 0.05)]) == pytest.approx(40.0)
    assert weighted_price([("nan", 0.5), ("inf", 0.4), ("12.5", 0.1)]) == pytest.approx(12.5)


def test_weighted_price_no_number_is_no_answer_never_zero() -> None:
    assert weighted_price([("Price", 0.6), ("$", 0.3), ("<|end_of_text|>", 0.1)]) is None
    assert weighted_price([]) is None
    assert weighted_price([("word", 1.0), ("5", 0.0)]) is None  # numbers carry no mass


def test_weighted_price_ties_do_not_depend_on_order() -> None:
    a = weighted_price([("100", 0.3), ("200", 0.3), ("x", 0.4)])
    b = weighted_price([("x", 0.4), ("200", 0.3), ("100", 0.3)])
    assert a == b == pytest.approx(150.0)


class FixedLogits(torch.nn.Module):
    """A 'model' whose next-token logits are made by hand."""

    def __init__(self, rows: list[torch.Tensor]):
        super().__init__()
        self.rows = torch.stack(rows)

    def forward(self, input_ids, attention_mask, position_ids, logits_to_keep):  # noqa: ANN001
        assert logits_to_keep == 1 and input_ids.shape == attention_mask.shape
        return SimpleNamespace(logits=self.rows[: input_ids.shape[0], None, :])


def test_top_k_rule_on_hand_made_logits(tiny: Path, products: list) -> None:
    from predictors.qlora import inference

    predictor = tiny_predictor(tiny, None)
    tok = loading.load_tokenizer(sources.Source.parse(str(tiny)))
    vocab = tok.get_vocab()
    ids = {w: vocab[w] for w in ("100", "200", "300", "Price", "is", "$")}
    size = len(tok)
    tie = torch.full((size,), -10.0)  # "100" and "200" tie on top, then a word
    tie[ids["100"]] = tie[ids["200"]] = 3.0
    tie[ids["Price"]] = 2.0
    words = torch.full((size,), -10.0)  # the top three are all words
    words[ids["Price"]], words[ids["is"]], words[ids["$"]] = 3.0, 2.0, 1.0
    words[ids["300"]] = 0.5  # fourth: outside the top 3
    model = FixedLogits([tie, words])
    outs = inference.top_k_next_tokens(model, tok, [p.prompt for p in products[:2]], 3, "cpu")

    texts = [t for t, _ in outs[0].candidates]
    assert sorted(texts) == ["100", "200", "Price"]
    probs = torch.softmax(tie, -1)
    assert dict(outs[0].candidates)["100"] == pytest.approx(float(probs[ids["100"]]))
    first = predictor._prediction(asdict(outs[0]), 0.0)
    assert first.price == pytest.approx(150.0)  # equal weights after renormalising
    second = predictor._prediction(asdict(outs[1]), 0.0)
    assert second.price is None and "none of the top 3" in second.error
    assert json.loads(second.raw)[0][0] == "Price"


# -- training data and masking ---------------------------------------------------


def test_training_text_is_the_hubs_text(data_dir: Path) -> None:
    rows = [json.loads(line) for line in (data_dir / "train.jsonl").read_text().splitlines()]
    examples, _ = load_train(data_dir)
    by_prompt = {r["text"][: r["text"].rfind("$") + 1]: r["text"] for r in rows}
    checked = 0
    for ex in examples[:500]:
        assert training_text(ex) == by_prompt[ex.product.prompt]
        checked += 1
    assert checked == 500


def test_loss_only_on_the_price_tokens(tiny: Path, train_examples: list[Example]) -> None:
    tok = loading.load_tokenizer(sources.Source.parse(str(tiny)), padding_side="right")
    rows, dropped = encode_examples(tok, train_examples[:8], max_length=512)
    assert dropped == 0 and len(rows) == 8
    for row, ex in zip(rows, train_examples[:8], strict=True):
        answer = [t for t, lab in zip(row["input_ids"], row["labels"], strict=True)
                  if lab != -100]
        assert tok.decode(answer).replace(" ", "") == f"{round(ex.price)}.00"
        first = row["labels"].index(next(lab for lab in row["labels"] if lab != -100))
        assert tok.decode(row["input_ids"][:first]).endswith("Price is $")
    # Truncation that cuts the price away leaves nothing to learn: dropped.
    rows, dropped = encode_examples(tok, train_examples[:8], max_length=20)
    assert rows == [] and dropped == 8


# -- fine-tune, save, reload, predict ------------------------------------------------


def test_fine_tuning_lowers_the_loss_and_records_its_run(trained: Path) -> None:
    assert (trained / "adapter_config.json").is_file()
    assert (trained / "adapter_model.safetensors").is_file()
    meta = json.loads((trained / "training.json").read_text())
    losses = [c["loss"] for c in meta["loss_curve"]]
    assert len(losses) == 6 and all(math.isfinite(x) for x in losses)
    assert losses[-1] < 0.7 * losses[0], losses
    hp = meta["hyperparameters"]
    assert (hp["lora_r"], hp["lr"], hp["max_steps"], hp["total_steps"]) == (8, 0.01, 24, 24)
    assert hp["target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj"]
    assert hp["optimizer"] == "paged_adamw_32bit" and hp["optimizer_used"] == "adamw_torch"
    assert meta["data"]["fingerprint"].startswith("sha256:")
    assert meta["data"]["used"] == TRAIN_SIZE


def test_reloaded_adapter_predicts_prices(tiny: Path, trained: Path, products: list) -> None:
    tuned = tiny_predictor(tiny, trained, batch_size=N_TEST)
    assert tuned.unavailable() is None
    tuned.prepare()
    preds = tuned.predict(products)
    assert len(preds) == N_TEST
    answered = [p for p in preds if p.price is not None]
    # Fine-tuned to put numbers after "$": most items get a numeric answer.
    assert len(answered) >= N_TEST // 2, [p.raw for p in preds]
    assert all(0 < p.price < 1000 and p.input_tokens > 50 for p in answered)
    bare = tiny_predictor(tiny, None, batch_size=N_TEST).predict(products)
    assert [p.raw for p in bare] != [p.raw for p in preds]  # the adapter is applied


def test_batched_equals_one_by_one(tiny: Path, tmp_path: Path, products: list) -> None:
    adapter = build_tiny_adapter(tiny, tmp_path / "random-lora")
    predictor = tiny_predictor(tiny, adapter, batch_size=N_TEST)
    lengths = {len(p.prompt.split()) for p in products}
    assert len(lengths) > 3  # prompts of different lengths: left padding is exercised
    batched = predictor.predict(products)
    single = [predictor.predict([p])[0] for p in products]
    for b, s in zip(batched, single, strict=True):
        bc, sc = json.loads(b.raw), json.loads(s.raw)
        assert [t for t, _ in bc] == [t for t, _ in sc]
        assert [p for _, p in bc] == pytest.approx([p for _, p in sc], rel=1e-4, abs=1e-7)
        assert (b.price is None) == (s.price is None)
        if b.price is not None:
            assert b.price == pytest.approx(s.price, rel=1e-5)


def test_merged_adapter_equals_adapter_kept_apart(tiny: Path, tmp_path: Path,
                                                 products: list) -> None:
    adapter = build_tiny_adapter(tiny, tmp_path / "random-lora")
    merged = tiny_predictor(tiny, adapter, batch_size=N_TEST)
    apart = tiny_predictor(tiny, adapter, batch_size=N_TEST, merge=False)
    merged.prepare()
    apart.prepare()
    assert not hasattr(merged._model, "peft_config")  # LoRA folded into the weights
    assert hasattr(apart._model, "peft_config")
    for m, a in zip(merged.predict(products), apart.predict(products), strict=True):
        mc, ac = json.loads(m.raw), json.loads(a.raw)
        assert [t for t, _ in mc] == [t for t, _ in ac]
        assert [p for _, p in mc] == pytest.approx([p for _, p in ac], rel=1e-4, abs=1e-7)


def test_outputs_are_cached_and_reused_without_loading(tiny: Path, trained: Path,
                                                       products: list, data_dir: Path,
                                                       tmp_path: Path) -> None:
    from bench.context import Context

    ctx = Context(data_dir=data_dir, cache_dir=tmp_path)
    first = tiny_predictor(tiny, trained, ctx=ctx, batch_size=4).predict(products[:6])
    again = tiny_predictor(tiny, trained, ctx=ctx, batch_size=4)
    second = again.predict(products[:6])
    assert again._model is None  # every answer came from the cache
    assert [p.raw for p in second] == [p.raw for p in first]
    assert [p.price for p in second] == [p.price for p in first]
    other = tiny_predictor(tiny, trained, ctx=ctx, k=2)  # another k: not the same outputs
    assert other.predict(products[:1])[0].raw != first[0].raw and other._model is not None


def test_greedy_mode_parses_generated_text(tiny: Path, trained: Path, products: list) -> None:
    from bench.prompts import parse_price

    greedy = tiny_predictor(tiny, trained, mode="greedy", max_new_tokens=3)
    preds = greedy.predict(products[:4])
    for p in preds:
        assert p.raw is not None and p.price == parse_price(p.raw)
        assert p.output_tokens is not None and p.output_tokens <= 3


def test_cli_run_scores_the_trained_adapter(tiny: Path, trained: Path, data_dir: Path,
                                            tmp_path: Path) -> None:
    result = run_cli("run", "qlora", "--data-dir", str(data_dir), "--limit", "6", "--quiet",
                     "--results-dir", str(tmp_path), "--param", f"base={tiny}",
                     "--param", f"adapter={trained}", "--param", "quant=none", env=ONE_THREAD)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [json.loads(x) for f in tmp_path.rglob("predictions.jsonl")
             for x in f.read_text().splitlines()]
    assert len(lines) == 6 and {x["id"] for x in lines} == set(range(6))


# -- identity, availability, memory, quantisation ----------------------------------


def test_fingerprint_names_what_shapes_outputs(tiny: Path) -> None:
    default = QLoRAPredictor()
    fp = default.fingerprint()
    assert fp["adapter"] == "ed-donner/pricer-2024-09-13_13.04.39"
    assert fp["revision"] == DEFAULT_REVISION
    assert {"base", "quant", "mode", "k", "dtype"} <= fp.keys()
    assert "batch_size" not in fp and "device" not in fp
    assert QLoRAPredictor(batch_size=2).fingerprint() == fp
    assert QLoRAPredictor(k=5).fingerprint() != fp
    assert tiny_predictor(tiny, "/nonexistent/x").fingerprint()["revision"] is None
    # The published adapter belongs to the default base only.
    assert QLoRAPredictor(base=str(tiny)).adapter is None


def test_unavailable_says_what_is_missing(tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    gone = QLoRAPredictor(base=str(tmp_path / "nope"), adapter="none", device="cpu")
    assert "does not exist" in gone.unavailable()
    offline = QLoRAPredictor().unavailable()
    assert "not downloaded" in offline and "unreachable" in offline
    if not loading.cuda_present():  # 8B in float32 does not fit a CI machine's RAM
        assert "no CUDA GPU" in offline and "GiB" in offline
    if not loading.cuda_present():
        assert "no CUDA GPU is visible" in QLoRAPredictor(device="cuda").unavailable()
    # Reachable hub, gated model, no token: say so.
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setattr(sources, "hf_token", lambda: None)
    monkeypatch.setattr("bench.hub._can_connect", lambda host, port: True)
    assert "HF_TOKEN" in QLoRAPredictor(adapter="none", device="cpu").unavailable()


def test_hub_cache_is_recognised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    snap = tmp_path / "models--ed-donner--pricer-2024-09-13_13.04.39" / "snapshots"
    files = snap / DEFAULT_REVISION
    files.mkdir(parents=True)
    adapter = sources.Source.parse("ed-donner/pricer-2024-09-13_13.04.39", DEFAULT_REVISION)
    assert sources.problems(adapter, "adapter")
    (files / "adapter_config.json").write_text("{}")
    (files / "adapter_model.safetensors").write_bytes(b"x")
    assert sources.problems(adapter, "adapter") == []
    other = sources.Source.parse("ed-donner/pricer-2024-09-13_13.04.39", "0" * 40)
    assert sources.problems(other, "adapter")  # another revision is not cached


def test_memory_estimate_and_refusal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory.param_count(LLAMA_8B) == pytest.approx(8.03e9, rel=0.01)
    four = memory.estimate(LLAMA_8B, quant="4", dtype="bfloat16")
    full = memory.estimate(LLAMA_8B, quant="none", dtype="float32")
    assert 5 < four.gib < 8 and 32 < full.gib < 40
    base = tmp_path / "llama-8b-config-only"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(LLAMA_8B))
    (base / "model.safetensors").write_bytes(b"")  # never read: refused before loading
    monkeypatch.setattr(memory, "available_ram_bytes", lambda: 16 * memory.GIB)
    predictor = QLoRAPredictor(base=str(base), adapter="none", device="cpu")
    reason = predictor.unavailable()
    assert reason and "16.0 GiB of RAM" in reason and "needs about" in reason
    with pytest.raises(BenchError, match="needs about"):
        predictor.prepare()
    monkeypatch.setattr(memory, "available_ram_bytes", lambda: 64 * memory.GIB)
    assert predictor.unavailable() is None


def test_four_bit_config_is_the_published_one() -> None:
    config = loading.bnb_config("4")
    assert config.load_in_4bit and not config.load_in_8bit
    assert config.bnb_4bit_quant_type == "nf4"
    assert config.bnb_4bit_use_double_quant is True
    assert config.bnb_4bit_compute_dtype == torch.bfloat16
    assert loading.bnb_config("8").load_in_8bit
    assert loading.bnb_config("none") is None


def test_plan_falls_back_to_float32_on_cpu() -> None:
    plan = loading.make_plan("cpu", "4", "auto")
    assert (plan.quant, plan.dtype) == ("none", "float32") and "no CUDA GPU" in plan.notes[0]
    # As published (no dtype given): float16 around the 4-bit weights, bf16 compute.
    four = loading.make_plan("cuda", "4", "auto")
    if four.quant == "4":  # bitsandbytes installed
        assert (four.dtype, four.compute_dtype) == ("float16", "bfloat16")
    assert loading.make_plan("cuda", "none", "auto").dtype == "bfloat16"
    if not torch.cuda.is_available():
        with pytest.raises(BenchError, match="no CUDA GPU"):
            loading.check_runtime(loading.make_plan("cuda", "none", "auto"))
    for bad in ("3", "fp4"):
        with pytest.raises(ValueError):
            loading.normalise_quant(bad)


def test_listing_and_availability_do_not_import_torch() -> None:
    code = ("import sys; from predictors.qlora.predictor import QLoRAPredictor as Q; "
            "p = Q(); p.unavailable(); p.fingerprint(); "
            "print([m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, env={"PATH": "", "HF_HUB_OFFLINE": "1"}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


# -- tokenizers that split numbers, failures, offline, training checks (#12) -----


def test_digit_splitting_tokenizer_generates_and_refuses_forced_topk(
        tmp_path: Path, train_examples: list[Example], products: list) -> None:
    from bench.prompts import parse_price

    texts = [training_text(e) for e in train_examples] + [p.prompt for p in products]
    base = build_tiny_llama(tmp_path / "digits", texts, split_digits=True)
    auto = tiny_predictor(base, None)
    assert auto.numbers_whole() is False and auto.effective_mode() == "greedy"
    assert auto.fingerprint()["mode"] == "greedy" and "k" not in auto.fingerprint()
    preds = auto.predict(products[:3])
    assert all(p.raw is not None and p.price == parse_price(p.raw) for p in preds)
    forced = tiny_predictor(base, None, mode="topk")
    with pytest.raises(BenchError, match="splits them into digits.*mode=greedy"):
        forced.prepare()
    assert tiny_predictor(base, None, mode="topk").fingerprint()["mode"] == "topk"


def test_top_k_rule_refuses_single_digit_candidates() -> None:
    from predictors.topk import DIGIT_SPLIT, top_k_price

    # SmolLM2 after "$374.41"'s "Price is $": digits, whose mean would be $1.69.
    digits = [("3", 0.4), ("1", 0.3), ("2", 0.2)]
    assert weighted_price(digits) == pytest.approx((1.2 + 0.3 + 0.4) / 0.9)
    assert top_k_price(digits) == (None, DIGIT_SPLIT)
    assert top_k_price([("374", 0.5), ("3", 0.2), ("Price", 0.1)])[0] == pytest.approx(
        (374 * 0.5 + 3 * 0.2) / 0.7)
    assert top_k_price([("Price", 0.5)]) == (None, None)
    # Where the tokenizer was asked, its verdict decides, never the item's tokens.
    assert top_k_price(digits, numbers_whole=True)[0] == pytest.approx((1.2 + 0.3 + 0.4) / 0.9)
    assert top_k_price([("374", 0.9)], numbers_whole=False) == (None, DIGIT_SPLIT)


def test_openai_logprobs_refuses_digit_tokens_from_the_server() -> None:
    pytest.importorskip("openai")
    from predictors.frontier.logprobs import OpenAILogprobs

    predictor = OpenAILogprobs(base_url="http://127.0.0.1:9/v1")
    split = {"text": "3", "top": [["3", math.log(0.4)], ["1", math.log(0.3)],
                                  ["2", math.log(0.2)]]}
    price, raw, why = predictor.interpret(split)
    assert price is None and "single digits" in why and json.loads(raw)[0][0] == "3"
    whole = {"text": "374", "top": [["374", math.log(0.6)], ["375", math.log(0.3)],
                                    [" the", math.log(0.1)]]}
    assert predictor.interpret(whole)[0] == pytest.approx((374 * 0.6 + 375 * 0.3) / 0.9)


def test_model_failures_are_one_line_item_errors(tiny: Path, data_dir: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.runner import run_predictor
    from predictors.qlora import inference

    oom = torch.cuda.OutOfMemoryError(
        "CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "14.74 GiB of which 1.06 GiB is free.\nOf the allocated memory 12.9 GiB is allocated "
        "by PyTorch.\nIf reserved but unallocated memory is large try setting "
        "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True")

    def out_of_memory(*args: object, **kwargs: object) -> None:
        raise oom

    monkeypatch.setattr(inference, "top_k_next_tokens", out_of_memory)
    predictor = tiny_predictor(tiny, None, batch_size=4)
    result = run_predictor(predictor, load_test_set(data_dir), tmp_path, spec="qlora",
                           limit=4, progress=False)
    records = result.store.records()
    assert len(records) == 4 and all(r.price is None for r in records.values())
    errors = {r.error for r in records.values()}
    assert errors == {"ModelError: CUDA out of memory on a batch of 1 (tried to allocate "
                      "2.00 GiB): lower --param batch_size or use a smaller model"}
    kernel = RuntimeError("CUDA error: no kernel image is available for execution on the "
                          "device\nCUDA kernel errors might be asynchronously reported")
    text = inference.one_line(kernel, 16)
    assert "\n" not in text and text.startswith("CUDA kernel missing for this GPU")
    assert inference.one_line(ValueError("bad\nthings"), 2) == "ValueError: bad"


def test_hub_loads_are_offline_when_the_hub_is(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    hub = sources.Source.parse("meta-llama/Meta-Llama-3.1-8B", "abc123")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert sources.hub_kwargs(hub) == {"revision": "abc123", "token": "hf_test_token",
                                       "local_files_only": True}
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr("bench.hub._can_connect", lambda host, port: False)
    assert sources.hub_kwargs(hub)["local_files_only"] is True
    monkeypatch.setattr("bench.hub._can_connect", lambda host, port: True)
    assert sources.hub_kwargs(hub)["local_files_only"] is False
    assert sources.hub_kwargs(sources.Source.parse(str(tmp_path))) == {}


def test_default_base_is_pinned() -> None:
    from predictors.qlora.predictor import DEFAULT_BASE_REVISION

    default = QLoRAPredictor()
    assert len(DEFAULT_BASE_REVISION) == 40
    assert default.base_source.revision == DEFAULT_BASE_REVISION
    assert default.fingerprint()["base_revision"] == DEFAULT_BASE_REVISION


def test_prepare_refuses_a_load_unlike_its_identity(tiny: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    predictor = tiny_predictor(tiny, None)
    promised = predictor.fingerprint()
    # e.g. bitsandbytes failing at import: the plan changes only once torch loads.
    monkeypatch.setattr(loading, "check_runtime", lambda plan: replace(plan, dtype="bfloat16"))
    with pytest.raises(BenchError, match="dtype=float32->bfloat16"):
        predictor.prepare()
    assert predictor._model is None and predictor.fingerprint() == promised


def test_training_settings_are_params_of_the_predictor() -> None:
    import inspect

    from bench import registry

    built = registry.build("qlora", {"lr": "2e-4", "gradient_checkpointing": "yes",
                                     "target_modules": "q_proj, v_proj", "train_size": "none",
                                     "k": "2"})
    assert built.training.lr == 2e-4 and built.training.gradient_checkpointing is True
    assert built.training.modules == ("q_proj", "v_proj") and built.training.train_size is None
    assert built.k == 2 and "lr" not in built.fingerprint()  # training does not shape outputs
    params = inspect.signature(QLoRAPredictor).parameters
    assert {"lr", "max_steps", "train_batch_size", "output_dir", "batch_size"} <= set(params)
    with pytest.raises(BenchError, match="has no parameter 'lerning_rate'"):
        registry.build("qlora", {"lerning_rate": "1"})
    with pytest.raises(BenchError, match="is not a float"):
        registry.build("qlora", {"lr": "fast"})


def test_training_checks_before_loading(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        train_examples: list[Example]) -> None:
    from predictors.qlora.training import QLoRATrainer, TrainConfig, precision

    assert TrainConfig().gradient_checkpointing is False  # as published
    assert precision(loading.make_plan("cpu", "none", "auto")) == "float32"
    train = memory.training_estimate(LLAMA_8B, quant="4", dtype="float16", batch=4,
                                     length=182, lora_r=32, targets=4, checkpointing=False)
    lighter = memory.training_estimate(LLAMA_8B, quant="4", dtype="float16", batch=4,
                                       length=182, lora_r=32, targets=4, checkpointing=True)
    infer = memory.estimate(LLAMA_8B, quant="4", dtype="float16")
    assert infer.gib + 3 < train.gib < 24 and lighter.gib < train.gib
    base = tmp_path / "llama-8b-config-only"
    base.mkdir()
    (base / "config.json").write_text(json.dumps(LLAMA_8B))
    (base / "model.safetensors").write_bytes(b"")  # never read: refused before loading
    monkeypatch.setattr(memory, "available_ram_bytes", lambda: 48 * memory.GIB)
    trainer = QLoRATrainer(sources.Source.parse(str(base)), TrainConfig(),
                           loading.make_plan("cpu", "none", "auto"))
    with pytest.raises(BenchError, match="not fine-tuning .* needs about .* batch 4 x 182"):
        trainer.fit(train_examples[:4])


def test_the_training_record_says_how_it_trained(trained: Path) -> None:
    meta = json.loads((trained / "training.json").read_text())
    assert meta["load"]["mixed_precision"] == "float32" and meta["load"]["device"] == "cpu"
    assert meta["hyperparameters"]["gradient_checkpointing"] is False
    assert meta["seconds_per_step"] > 0
