"""QLoRA fine-tuning: the seed project's training notebook as a function.

LoRA (peft) on a 4-bit base with a plain transformers Trainer. The loss is
computed only on the tokens after ``Price is $`` (completion-only masking, done
here from the tokenizer's character offsets rather than by searching for the
template's token ids, which tokenise differently in context).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.fsutil import atomic_write_json
from bench.types import Example
from predictors.qlora import loading
from predictors.qlora.loading import FallbackWarning, Plan
from predictors.qlora.sources import Source


@dataclass(frozen=True)
class TrainConfig:
    """Hyperparameters; defaults are the published run's."""

    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")
    optimizer: str = "paged_adamw_32bit"
    lr: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.001
    max_grad_norm: float = 0.3
    group_by_length: bool = True
    batch_size: int = 4
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    max_length: int = 182
    seed: int = 42
    logging_steps: int = 10
    gradient_checkpointing: bool = True  # on quantised bases only


@dataclass
class TrainResult:
    output_dir: Path
    examples_used: int
    examples_dropped: int
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0


def training_text(example: Example) -> str:
    """The hub's ``text``: the prompt and the price rounded to dollars, ``NNN.00``."""
    return f"{example.product.prompt}{round(example.price)}.00"


def data_digest(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(training_text(ex).encode())
        digest.update(b"\x00")
    return "sha256:" + digest.hexdigest()


def encode_examples(tokenizer: Any, examples: Sequence[Example],
                    max_length: int) -> tuple[list[dict[str, list[int]]], int]:
    """Token ids and labels; labels are -100 up to the end of the prompt.

    Returns the encoded rows and how many were dropped because truncation to
    ``max_length`` cut off every price token (nothing left to learn from).
    """
    prompts = [ex.product.prompt for ex in examples]
    texts = [training_text(ex) for ex in examples]
    if tokenizer.is_fast:
        enc = tokenizer(texts, truncation=True, max_length=max_length,
                        return_offsets_mapping=True)
        starts = [
            [i for i, (_, end) in enumerate(offsets) if end > len(p)]
            for offsets, p in zip(enc["offset_mapping"], prompts, strict=True)
        ]
    else:  # no offsets: count the prompt's own tokens
        enc = tokenizer(texts, truncation=True, max_length=max_length)
        starts = [list(range(len(tokenizer(p)["input_ids"]), len(ids)))
                  for p, ids in zip(prompts, enc["input_ids"], strict=True)]
    rows, dropped = [], 0
    for ids, answer in zip(enc["input_ids"], starts, strict=True):
        answer = [i for i in answer if i < len(ids)]
        if not answer:
            dropped += 1
            continue
        labels = [-100] * len(ids)
        for i in answer:
            labels[i] = ids[i]
        rows.append({"input_ids": list(ids), "labels": labels})
    return rows, dropped


class PadCollator:
    """Right-pads a batch: pad id for inputs, -100 for labels, 0 in the mask."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        width = max(len(r["input_ids"]) for r in rows)
        ids, labels, mask = [], [], []
        for r in rows:
            gap = width - len(r["input_ids"])
            ids.append(r["input_ids"] + [self.pad_id] * gap)
            labels.append(r["labels"] + [-100] * gap)
            mask.append([1] * len(r["input_ids"]) + [0] * gap)
        return {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                "attention_mask": torch.tensor(mask)}


def _optimizer(name: str, plan: Plan) -> str:
    # Paged and 8-bit optimisers live in bitsandbytes and need CUDA.
    needs_bnb = "paged" in name or "8bit" in name or name.startswith("bnb")
    if needs_bnb and (not plan.on_cuda or importlib.util.find_spec("bitsandbytes") is None):
        warnings.warn(f"optimizer {name} needs bitsandbytes on CUDA: using adamw_torch",
                      FallbackWarning, stacklevel=3)
        return "adamw_torch"
    return name


@contextlib.contextmanager
def _datasets_shadow_guard() -> Iterator[None]:
    """Run from the repository root, the project's ``datasets/`` folder is found
    as a namespace package named ``datasets`` when Hugging Face's ``datasets``
    is not installed; transformers' Trainer then takes it for the library and
    fails on ``datasets.Dataset``. Tell the Trainer the truth for this call."""
    import transformers.trainer as trainer_module

    spec = importlib.util.find_spec("datasets")
    shadowed = spec is not None and spec.origin in (None, "namespace") \
        and not hasattr(sys.modules.get("datasets"), "Dataset")
    saved = getattr(trainer_module, "is_datasets_available", None)
    if not shadowed or saved is None:
        yield
        return
    trainer_module.is_datasets_available = lambda: False
    try:
        yield
    finally:
        trainer_module.is_datasets_available = saved


def _length_grouping(enabled: bool, arguments: type) -> dict[str, Any]:
    """Batches of similar lengths (less padding), under either transformers API."""
    accepted = inspect.signature(arguments).parameters
    if "train_sampling_strategy" in accepted:
        return {"train_sampling_strategy": "group_by_length" if enabled else "random"}
    return {"group_by_length": enabled} if "group_by_length" in accepted else {}


def _report_to() -> list[str]:
    """Weights & Biases when installed and configured, else nothing."""
    if importlib.util.find_spec("wandb") is not None and os.environ.get("WANDB_API_KEY"):
        os.environ.setdefault("WANDB_PROJECT", "pricer")
        return ["wandb"]
    return []


def train(
    base: Source,
    examples: Sequence[Example],
    output_dir: Path,
    plan: Plan,
    config: TrainConfig,
    *,
    token: str | None = None,
    data_fingerprint: str | None = None,
    push_to_hub: str | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on ``examples``; save it with ``training.json``."""
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import Trainer, TrainingArguments

    transformers.set_seed(config.seed)
    tokenizer = loading.load_tokenizer(base, token, padding_side="right")
    rows, dropped = encode_examples(tokenizer, examples, config.max_length)
    if not rows:
        raise BenchError("no training example keeps a price token within "
                         f"max_length={config.max_length}: raise --param max_length")
    if dropped:
        warnings.warn(f"{dropped} examples dropped: their price lies beyond max_length="
                      f"{config.max_length} tokens", FallbackWarning, stacklevel=2)

    model = loading.load_base_model(base, plan, token)
    if plan.quant != "none":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=config.gradient_checkpointing)
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout,
                      target_modules=list(config.target_modules),
                      bias="none", task_type="CAUSAL_LM")
    model.config.use_cache = False  # no KV cache while training (and checkpointing)
    model = get_peft_model(model, lora)

    per_epoch = math.ceil(len(rows) / (config.batch_size * config.grad_accum))
    total = config.max_steps if config.max_steps > 0 else math.ceil(per_epoch * config.epochs)
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        run_name=output_dir.name,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=math.ceil(config.warmup_ratio * total),
        optim=_optimizer(config.optimizer, plan),
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to=_report_to(),
        seed=config.seed,
        bf16=plan.on_cuda and plan.dtype == "bfloat16",
        use_cpu=not plan.on_cuda,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        **_length_grouping(config.group_by_length, TrainingArguments),
    )
    trainer = Trainer(model=model, args=args, train_dataset=rows,
                      data_collator=PadCollator(tokenizer.pad_token_id))
    started = time.perf_counter()
    with _datasets_shadow_guard():
        trainer.train()
    seconds = time.perf_counter() - started

    curve = [
        {k: int(v) if k == "step" else float(v) for k, v in entry.items()
         if k in ("step", "epoch", "loss", "learning_rate", "grad_norm")}
        for entry in trainer.state.log_history if "loss" in entry
    ]
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    meta = {
        "base": base.label,
        "base_revision": base.revision,
        "hyperparameters": {**asdict(config), "optimizer_used": args.optim.value
                            if hasattr(args.optim, "value") else str(args.optim),
                            "total_steps": trainer.state.global_step},
        "load": {"device": plan.device, "quant": plan.quant, "dtype": plan.dtype,
                 "notes": list(plan.notes)},
        "data": {"fingerprint": data_fingerprint, "texts_sha256": data_digest(examples),
                 "examples": len(examples), "used": len(rows), "dropped": dropped},
        "loss_curve": curve,
        "train_seconds": round(seconds, 2),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__,
                     "peft": metadata.version("peft")},
    }
    atomic_write_json(output_dir / "training.json", meta)
    checkpoints = output_dir / "checkpoints"  # save_strategy="no" leaves it empty
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()
    if push_to_hub:
        _push(model, output_dir, push_to_hub, token)
    return TrainResult(output_dir, len(rows), dropped, curve, seconds)


def _push(model: Any, output_dir: Path, repo_id: str, token: str | None) -> None:
    from huggingface_hub import HfApi

    model.push_to_hub(repo_id, private=True, token=token)
    HfApi(token=token).upload_file(path_or_fileobj=str(output_dir / "training.json"),
                                   path_in_repo="training.json", repo_id=repo_id)
