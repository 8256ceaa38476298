"""The qlora path on the REAL Llama 3 tokenizer: Meta's ``tokenizer.model``
from the ``llama-models`` wheel (fetched by package name with
``pip download --no-deps``), turned into a fast tokenizer by transformers'
``TikTokenConverter``.

Shows what the published adapter relies on: every integer 0..999 is one token
and decodes back; "Price is $" tokenises the same alone and in context; the
completion-only labels equal TRL's completion-only collator's on every
training row; the top-3 rule on a tiny model over this vocabulary picks the
number tokens and weights them as specified; batched equals one by one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.data import load_test_set, load_train
from bench.errors import BenchError
from bench.types import Example

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")
pytest.importorskip("tiktoken", reason="the Llama 3 tokenizer is read with tiktoken")

from predictors.qlora import loading, sources  # noqa: E402
from predictors.qlora.examples import encode_examples  # noqa: E402
from predictors.qlora.predictor import QLoRAPredictor  # noqa: E402
from predictors.qlora.tiny import build_fixed_llama, build_llama3_tokenizer  # noqa: E402
from predictors.qlora.wheels import fetch  # noqa: E402
from predictors.topk import DIGIT_SPLIT, numbers_are_whole_tokens  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEMPLATE = "Price is $"


@pytest.fixture(scope="module")
def llama3_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        model_file = fetch("llama3-tokenizer")
    except BenchError as exc:  # only without a package index
        pytest.skip(f"the llama-models wheel cannot be downloaded here: {exc}")
    directory = tmp_path_factory.mktemp("llama3") / "tokenizer"
    build_llama3_tokenizer(model_file, directory)
    return directory


@pytest.fixture(scope="module")
def tok(llama3_dir: Path):  # noqa: ANN201
    return loading.load_tokenizer(sources.Source.parse(str(llama3_dir)), padding_side="right")


@pytest.fixture(scope="module")
def every_training_row(data_dir: Path) -> list[Example]:
    return load_train(data_dir, test_set=load_test_set(data_dir))[0]


def test_it_is_llama_3(tok) -> None:  # noqa: ANN001
    assert len(tok) == 128256
    assert tok.convert_tokens_to_ids("<|begin_of_text|>") == 128000
    assert tok.convert_tokens_to_ids("<|eot_id|>") == 128009
    ids = tok("Price is $374.00")["input_ids"]
    assert ids[0] == 128000  # BOS first, as the notebook's tokenizer call adds it
    assert [tok.decode([i]) for i in ids[1:]] == ["Price", " is", " $", "374", ".", "00"]


def test_every_integer_below_1000_is_one_token(tok) -> None:  # noqa: ANN001
    for n in range(1000):
        ids = tok(f"{TEMPLATE}{n}.00", add_special_tokens=False)["input_ids"]
        alone = tok(str(n), add_special_tokens=False)["input_ids"]
        assert len(alone) == 1 and tok.decode(alone) == str(n), n
        assert alone[0] in ids, n  # the same token after "$" as alone
    assert loading.numbers_whole(tok) is True


def test_template_tokenises_the_same_alone_and_in_context(
        tok, every_training_row: list[Example]) -> None:  # noqa: ANN001
    template = tok(TEMPLATE, add_special_tokens=False)["input_ids"]
    for ex in every_training_row:
        ids = tok(ex.product.prompt, add_special_tokens=False)["input_ids"]
        assert ids[-len(template):] == template, ex.product.prompt[-80:]


def _trl_completion_only(ids: list[int], template: list[int]) -> list[int]:
    """TRL's DataCollatorForCompletionOnlyLM rule, as the published notebook
    used it: find the response template's token ids in the row (the last
    match), ignore everything up to and including it, learn the rest."""
    start = None
    for i in range(len(ids) - len(template) + 1):
        if ids[i : i + len(template)] == template:
            start = i
    assert start is not None, "template not found: TRL would mask the whole row"
    end = start + len(template)
    return [-100] * end + ids[end:]


def test_labels_equal_trls_completion_only_collator_on_every_row(
        tok, every_training_row: list[Example]) -> None:  # noqa: ANN001
    template = tok(TEMPLATE, add_special_tokens=False)["input_ids"]
    rows, dropped = encode_examples(tok, every_training_row, max_length=4096)
    assert dropped == 0 and len(rows) == len(every_training_row) > 3000
    for row, ex in zip(rows, every_training_row, strict=True):
        assert row["labels"] == _trl_completion_only(row["input_ids"], template), ex.price
        answer = [t for t in row["labels"] if t != -100]
        assert tok.decode(answer) == f"{round(ex.price)}.00"


def test_a_label_span_that_loses_the_number_is_refused(
        tok, every_training_row: list[Example]) -> None:  # noqa: ANN001
    from predictors.qlora.examples import check_label_span

    ex = every_training_row[0]
    price = f"{round(ex.price)}.00"
    whole = tok(price, add_special_tokens=False)["input_ids"]
    check_label_span(tok, whole, price, 0)
    # The tokenizers < 0.20.1 bug: offsets that skip the number token.
    with pytest.raises(BenchError, match=r"row 7: the labelled tokens decode to '\.00'"):
        check_label_span(tok, whole[1:], price, 7)


@pytest.fixture(scope="module")
def fixed(tmp_path_factory: pytest.TempPathFactory, tok) -> Path:  # noqa: ANN001
    # Top 3: "374" and "Price" tie, then "12"; "999" is fourth.
    logits = {"374": 9.0, "Price": 9.0, "12": 8.0, "999": 7.5}
    return build_fixed_llama(tmp_path_factory.mktemp("fixed") / "model", tok, logits)


def test_top3_rule_on_a_model_over_this_vocabulary(fixed: Path, data_dir: Path) -> None:
    products = load_test_set(data_dir).products()[:3]
    predictor = QLoRAPredictor(base=str(fixed), adapter="none", quant="none", device="cpu")
    assert predictor.effective_mode() == "topk"
    preds = predictor.predict(products)
    # The exact distribution: 4 named logits, 0 for the other 128,252 tokens.
    z = 2 * math.exp(9.0) + math.exp(8.0) + math.exp(7.5) + (128256 - 4)
    p374, p12 = math.exp(9.0) / z, math.exp(8.0) / z
    expected = (374 * p374 + 12 * p12) / (p374 + p12)  # "Price" is dropped, renormalised
    for pred in preds:
        top = json.loads(pred.raw)
        assert sorted(t for t, _ in top) == ["12", "374", "Price"]
        assert dict(top)["374"] == pytest.approx(p374, rel=1e-4)
        assert pred.price == pytest.approx(expected, rel=1e-4)


# After "Price is $", a $4 item: the top 3 tokens are the single digits 4, 2, 1.
UNDER_TEN = {"4": 9.0, "2": 8.5, "1": 8.0}


def test_single_digit_top_tokens_are_priced_where_numbers_are_whole(
        tmp_path: Path, tok, data_dir: Path) -> None:  # noqa: ANN001
    """The published notebook prices such an item (its run priced 8 of 250 so,
    e.g. $2.51): the tokenizer keeps numbers whole, decided once from it, so
    single digits here are prices under $10, not a split number."""
    model = build_fixed_llama(tmp_path / "model", tok, UNDER_TEN)
    products = load_test_set(data_dir).products()[:2]
    predictor = QLoRAPredictor(base=str(model), adapter="none", quant="none", device="cpu")
    assert predictor.effective_mode() == "topk"
    z = sum(math.exp(v) for v in UNDER_TEN.values()) + (len(tok) - len(UNDER_TEN))
    probs = {t: math.exp(v) / z for t, v in UNDER_TEN.items()}
    expected = sum(int(t) * p for t, p in probs.items()) / sum(probs.values())
    for pred in predictor.predict(products):
        assert pred.error is None and pred.error != DIGIT_SPLIT
        assert [t for t, _ in json.loads(pred.raw)] == ["4", "2", "1"]
        assert pred.price == pytest.approx(expected, rel=1e-4)  # about $2.83


def test_single_digit_top_tokens_stay_refused_up_front_where_digits_split(
        tmp_path: Path, data_dir: Path) -> None:
    """The same logits over a tokenizer that splits numbers into digits
    (SmolLM2-like): top-k is refused before anything is priced; auto generates."""
    from predictors.qlora.tiny import build_tokenizer

    products = load_test_set(data_dir).products()[:2]
    split = build_tokenizer([p.prompt for p in products], split_digits=True)
    model = build_fixed_llama(tmp_path / "model", split, UNDER_TEN)
    forced = QLoRAPredictor(base=str(model), adapter="none", quant="none", device="cpu",
                            mode="topk")
    with pytest.raises(BenchError, match="splits them into digits"):
        forced.predict(products)
    auto = QLoRAPredictor(base=str(model), adapter="none", quant="none", device="cpu")
    assert auto.numbers_whole() is False and auto.effective_mode() == "greedy"


def test_batched_equals_one_by_one_on_the_real_tokenizer(
        tmp_path: Path, tok, data_dir: Path) -> None:  # noqa: ANN001
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                         bos_token_id=128000, eos_token_id=128001, initializer_range=0.5,
                         tie_word_embeddings=False)
    LlamaForCausalLM(config).save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    products = load_test_set(data_dir).products()[:8]
    assert len({len(p.prompt) for p in products}) > 3  # left padding is exercised
    predictor = QLoRAPredictor(base=str(tmp_path), adapter="none", quant="none",
                               device="cpu", batch_size=8, mode="topk", k=5)
    batched = predictor.predict(products)
    single = [predictor.predict([p])[0] for p in products]
    for b, s in zip(batched, single, strict=True):
        bc, sc = json.loads(b.raw), json.loads(s.raw)
        assert [t for t, _ in bc] == [t for t, _ in sc]
        assert [p for _, p in bc] == pytest.approx([p for _, p in sc], rel=1e-4, abs=1e-7)


def test_digit_splitting_tokenizer_is_recognised() -> None:
    # SmolLM2-style: every digit its own token.
    def digits(text: str) -> list[str]:
        return [c for c in text]

    assert numbers_are_whole_tokens(digits) is False
    assert "single digits" in DIGIT_SPLIT

