"""Batched versus one-by-one inference of the ``qlora`` predictor.

    python -m bench.perf.qlora [--data-dir ../shared/data/pricer] [--items 64]

On CPU: a tiny Llama (built in a temp dir, with a random LoRA adapter), items
per second one prompt per forward pass versus chunks of ``--batch-size``, and
the ratio, with the adapter merged into the weights (the default for an
unquantised base) and kept apart. With a CUDA GPU and the weights cached, the
real predictor (8B 4-bit + the published adapter) the same way, then the
whole test set batched: seconds and MAE on rows 0..249 against the published
$46.66, with the card named. Where the real weights cannot be had (gated, no
network), or with ``--random-8b``, the same timings on an 8B-shaped Llama with
random weights over Meta's Llama 3 tokenizer: the speed, not the error.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from bench.data import TestSet, load_test_set
from bench.metrics import score
from bench.types import Product
from predictors.qlora.predictor import QLoRAPredictor

PUBLISHED_MAE = 46.66  # Llama 3.1 8B QLoRA, rows 0..249 of the test split
PUBLISHED_ROWS = 250


def items_per_second(predictor: QLoRAPredictor, products: Sequence[Product], batch: int,
                     repeats: int) -> float:
    """Best of ``repeats`` passes (the machine may be shared: the best is the
    least disturbed)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        for i in range(0, len(products), batch):
            predictor.predict(products[i : i + batch])
        best = min(best, time.perf_counter() - started)
    return len(products) / best


def compare(predictor: QLoRAPredictor, products: Sequence[Product], batch: int,
            repeats: int, label: str) -> None:
    predictor.prepare()
    predictor.predict(products[:batch])  # warm-up: allocator, kernels, caches
    one = items_per_second(predictor, products, 1, repeats)
    many = items_per_second(predictor, products, batch, repeats)
    print(f"{label}: {len(products)} items | one-by-one {one:8.1f} items/s | "
          f"batch {batch:3d} {many:8.1f} items/s | batched/one-by-one {many / one:5.2f}x")


def tiny(products: Sequence[Product], batch: int, repeats: int, threads: int) -> None:
    import torch

    from predictors.qlora.tiny import build_tiny_adapter, build_tiny_llama

    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory(prefix="qlora-perf-") as tmp:
        base = build_tiny_llama(Path(tmp) / "base", [p.prompt for p in products])
        adapter = build_tiny_adapter(base, Path(tmp) / "adapter")
        for merge in (True, False):
            predictor = QLoRAPredictor(base=str(base), adapter=str(adapter), quant="none",
                                       device="cpu", batch_size=batch, merge=merge)
            how = "merged" if merge else "kept apart"
            compare(predictor, products, batch, repeats,
                    f"tiny Llama (hidden 64, 2 layers), LoRA {how}, CPU, {threads} threads")


def full_run(predictor: QLoRAPredictor, test_set: TestSet, label: str) -> None:
    """The issue's targets: the whole test set batched in under 30 s, and the
    published MAE ($46.66) within $2 on rows 0..249."""
    products = test_set.products()
    started = time.perf_counter()
    predictions = predictor.predict(products)
    elapsed = time.perf_counter() - started
    truth = {i: p for i, p in test_set.truth().items() if i < PUBLISHED_ROWS}
    guesses = {p.id: pred.price for p, pred in zip(products, predictions, strict=True)}
    scores = score(truth, guesses)
    mae = "n/a" if scores.mae is None else f"${scores.mae:.2f}"
    print(f"{label}: {len(products)} items in {elapsed:.1f} s (target < 30 s) | MAE rows "
          f"0..{PUBLISHED_ROWS - 1} {mae}, {scores.answered}/{scores.total} answered "
          f"(published ${PUBLISHED_MAE}, target within $2)")


def gpu(test_set: TestSet, batch: int) -> bool | None:
    """The real model on the GPU: True when timed, False when it cannot be
    loaded here, None without a GPU."""
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: real-model timing skipped")
        return None
    predictor = QLoRAPredictor(batch_size=batch)
    reason = predictor.unavailable()
    if reason:
        print(f"real model skipped: {reason}; timing an 8B-shaped one with random weights")
        return False
    card = torch.cuda.get_device_name(0)
    started = time.perf_counter()
    predictor.prepare()
    print(f"{card}: loaded {predictor.base} + {predictor.adapter} "
          f"({predictor.plan.quant}-bit) in {time.perf_counter() - started:.1f} s")
    compare(predictor, test_set.products()[:64], batch, 1, f"{card}, {predictor.name}")
    full_run(predictor, test_set, f"{card}, {predictor.name}")
    return True


# Llama 3.1 8B's shape (its config.json), for timing without its gated weights.
LLAMA3_8B = {"hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
             "num_attention_heads": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-5,
             "rope_theta": 500000.0, "max_position_embeddings": 8192}


def random_8b(test_set: TestSet, batch: int) -> None:
    """The same path on an 8B-shaped Llama with random weights over Meta's real
    Llama 3 tokenizer (from the ``llama-models`` wheel): loading in 4 bits and
    items per second one by one and batched, the speed the real model would
    have; no error figure (random weights answer at random)."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from predictors.qlora.tiny import build_llama3_tokenizer
    from predictors.qlora.wheels import fetch

    card = torch.cuda.get_device_name(0)
    with tempfile.TemporaryDirectory(prefix="qlora-8b-") as tmp:
        folder = Path(tmp) / "llama-8b-random"
        tokenizer = build_llama3_tokenizer(fetch("llama3-tokenizer"), folder)
        config = LlamaConfig(vocab_size=len(tokenizer), bos_token_id=128000,  # type: ignore[arg-type]
                             eos_token_id=128001, tie_word_embeddings=False, **LLAMA3_8B)
        started = time.perf_counter()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device("cuda"):
                model = LlamaForCausalLM(config)
        finally:
            torch.set_default_dtype(torch.float32)
        model.save_pretrained(folder)
        del model
        torch.cuda.empty_cache()
        print(f"{card}: an 8B-shaped Llama with random weights built and saved in "
              f"{time.perf_counter() - started:.1f} s")
        predictor = QLoRAPredictor(base=str(folder), adapter="none", mode="topk",
                                   batch_size=batch)
        started = time.perf_counter()
        predictor.prepare()
        print(f"{card}: loaded in {predictor.plan.quant} bits in "
              f"{time.perf_counter() - started:.1f} s")
        products = test_set.products()
        compare(predictor, products[:64], batch, 1, f"{card}, 8B-shaped, random weights")
        started = time.perf_counter()
        predictor.predict(products)
        print(f"{card}, 8B-shaped, random weights: {len(products)} items in "
              f"{time.perf_counter() - started:.1f} s (target < 30 s)")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--random-8b", action="store_true",
                        help="on a GPU, also time an 8B-shaped Llama with random weights "
                             "(done anyway when the real model cannot be loaded)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", FutureWarning)
    test_set = load_test_set(args.data_dir)
    tiny(test_set.products()[: args.items], args.batch_size, args.repeats, args.threads)
    real = gpu(test_set, args.batch_size)
    if real is False or (args.random_8b and real is not None):
        random_8b(test_set, args.batch_size)


if __name__ == "__main__":
    main()
