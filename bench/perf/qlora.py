"""Batched versus one-by-one inference of the ``qlora`` predictor.

    python -m bench.perf.qlora [--data-dir ../shared/data/pricer] [--items 64]

On CPU: a tiny Llama (built in a temp dir, with a random LoRA adapter), items
per second one prompt per forward pass versus chunks of ``--batch-size``, and
the ratio; with the adapter merged into the weights (the default for an
unquantised base) and kept apart. With a CUDA GPU it also times the real predictor (8B 4-bit + the
published adapter, when its weights are cached) on the whole test set and
names the card. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

from bench.data import load_test_set
from bench.types import Product
from predictors.qlora.predictor import QLoRAPredictor


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


def gpu(products: Sequence[Product], batch: int) -> None:
    import torch

    if not torch.cuda.is_available():
        print("no CUDA GPU: real-model timing skipped")
        return
    predictor = QLoRAPredictor(batch_size=batch)
    reason = predictor.unavailable()
    if reason:
        print(f"real model skipped: {reason}")
        return
    card = torch.cuda.get_device_name(0)
    started = time.perf_counter()
    predictor.prepare()
    print(f"{card}: loaded {predictor.base} + {predictor.adapter} "
          f"({predictor.plan.quant}-bit) in {time.perf_counter() - started:.1f} s")
    compare(predictor, products, batch, 1, f"{card}, {predictor.name}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--items", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", FutureWarning)
    products = load_test_set(args.data_dir).products()
    tiny(products[: args.items], args.batch_size, args.repeats, args.threads)
    gpu(products, args.batch_size)


if __name__ == "__main__":
    main()
