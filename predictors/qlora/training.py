"""QLoRA fine-tuning (``bench train qlora``): the seed project's training
notebook as a trainer with its own configuration.

``TrainConfig`` holds every fine-tuning setting (each a ``--param``);
``QLoRATrainer`` picks the training rows, checks memory and precision before
loading, trains LoRA (peft) on the base with a plain transformers Trainer, and
saves the adapter with a ``training.json`` record. The loss is on the price
tokens only (``examples.py``).

Launched by ``torchrun`` or ``accelerate launch``, the same code trains data
parallel (``distributed.py``): each process on its own GPU, the Trainer
shards the data, and rank 0 alone writes the adapter and ``training.json``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import math
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench import provenance
from bench.errors import BenchError
from bench.fsutil import atomic_write_json
from bench.types import Example
from predictors.qlora import distributed, loading, memory, sources
from predictors.qlora.examples import PadCollator, data_digest, encode_examples
from predictors.qlora.loading import FallbackWarning, Plan
from predictors.qlora.sources import Source


@dataclass(frozen=True)
class TrainConfig:
    """Fine-tuning settings, each a ``bench train qlora --param``; defaults are
    the published run's."""

    # -- what to learn from, and where the adapter goes
    train_size: int | None = None  # a sample of the training pool (all when None)
    include_extra: bool = False  # add train-extra.jsonl to the pool
    seed: int = 42
    output_dir: Path | None = None  # default: <cache>/models/qlora/pricer-<time>
    push_to_hub: str | None = None  # a private hub repo to upload the adapter to
    # -- LoRA
    lora_r: int = 32
    lora_alpha: int = 64
    lora_dropout: float = 0.1
    target_modules: str = "q_proj,k_proj,v_proj,o_proj"
    # -- optimisation
    optimizer: str = "paged_adamw_32bit"
    lr: float = 1e-4
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    weight_decay: float = 0.001
    max_grad_norm: float = 0.3
    train_batch_size: int = 4
    grad_accum: int = 1
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    max_length: int = 182
    group_by_length: bool = True
    gradient_checkpointing: bool = False  # off, as published; saves memory, costs time
    logging_steps: int = 10
    max_minutes: float = 0.0  # > 0: stop training after this many minutes
    lora_layers: int = 0  # > 0: LoRA on the top N decoder layers only (cheaper backward)
    # -- a regression head on log price, trained with the adapter (head.py)
    head: str = "none"  # "log-price": train (and price with) a head beside the adapter
    head_layer: int = -1  # which hidden state it reads (-1: the final one)
    head_pool: str = "last"  # "last" prompt token or "mean" over the prompt
    head_weight: float = 1.0  # the head's loss weight
    head_lr: float = 0.0  # the head's learning rate (0: lr)
    head_depth: int = 0  # > 0: the head reads layer N's normed state; the rest never run
    head_init: str = "zero"  # "ridge": start from a ridge fit on the base's features
    head_init_minutes: float = 0.0  # time for those features (0: every training row)
    lm_weight: float = 1.0  # the price tokens' loss weight (0: the head alone)

    def __post_init__(self) -> None:
        if self.train_batch_size < 1 or self.grad_accum < 1 or self.max_length < 8:
            raise ValueError("train_batch_size and grad_accum must be at least 1, "
                             "max_length at least 8")
        if not self.modules:
            raise ValueError("target_modules names no module")
        from predictors.qlora.head import KINDS, POOLS

        if self.head not in KINDS:
            raise ValueError(f"head must be one of {', '.join(KINDS)} (got {self.head!r})")
        if self.head_pool not in POOLS:
            raise ValueError(f"head_pool must be one of {', '.join(POOLS)} "
                             f"(got {self.head_pool!r})")
        if min(self.max_minutes, self.lora_layers, self.head_weight, self.lm_weight,
               self.head_lr) < 0:
            raise ValueError("max_minutes, lora_layers, head_weight, head_lr and lm_weight "
                             "must not be negative")
        if self.head != "none" and self.head_weight == 0:
            raise ValueError("head=log-price needs head_weight > 0")
        if self.head_depth < 0 or self.head_init_minutes < 0:
            raise ValueError("head_depth and head_init_minutes must not be negative")
        if self.head_init not in ("zero", "ridge"):
            raise ValueError(f"head_init must be zero or ridge (got {self.head_init!r})")
        if self.head_depth and (self.head == "none" or self.lm_weight):
            raise ValueError("head_depth needs head=log-price and lm_weight=0 (the layers "
                             "above it, which generate the price tokens, do not run)")

    @property
    def modules(self) -> tuple[str, ...]:
        return tuple(m.strip() for m in self.target_modules.split(",") if m.strip())

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def hyperparameters(self) -> dict[str, Any]:
        """The settings that shape the adapter, for ``training.json``."""
        out = asdict(self)
        for key in ("output_dir", "push_to_hub"):
            out.pop(key)
        out["target_modules"] = list(self.modules)
        return out


@dataclass
class TrainResult:
    output_dir: Path
    examples_used: int
    examples_dropped: int
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0
    written: bool = True  # False on the ranks other than 0 of a data-parallel run


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


def precision(plan: Plan) -> str:
    """Mixed precision for training: bf16 where the GPU supports it (Ampere and
    later), else fp16 (T4, V100); none on CPU (float32)."""
    if not plan.on_cuda:
        return "float32"
    import torch

    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


class QLoRATrainer:
    """Fine-tunes a LoRA adapter on ``base`` with ``config`` (``bench train qlora``)."""

    def __init__(self, base: Source, config: TrainConfig, plan: Plan, *, ctx: Any = None):
        self.base = base
        self.config = config
        self.plan = plan
        self.ctx = ctx
        self.data_fingerprint: str | None = None

    def examples(self) -> list[Example]:
        """The training pool (benchmark rows excluded), ``train_size`` of it if set."""
        if self.ctx is None:
            raise ValueError("training needs data: run through `bench train qlora`")
        c = self.config
        examples, fp = self.ctx.train_examples(include_extra=c.include_extra,
                                               size=c.train_size, seed=c.seed)
        self.data_fingerprint = fp
        return examples

    def output_dir(self) -> Path:
        if self.config.output_dir:
            return Path(self.config.output_dir)
        stamp = datetime.now().strftime("%Y-%m-%d_%H.%M.%S")
        root = Path(self.ctx.models_dir) / "qlora" if self.ctx is not None else Path("runs")
        return root / f"pricer-{stamp}"

    def runtime_plan(self) -> Plan:
        """The plan checked against torch, in the training precision."""
        plan = loading.check_runtime(self.plan)
        if plan.on_cuda:
            chosen = precision(plan)
            dtype = plan.dtype if plan.quant == "none" and plan.dtype == "float32" else chosen
            plan = Plan(plan.device, plan.quant, dtype, plan.notes, compute_dtype=chosen)
        return plan

    def check_memory(self, base: Source, plan: Plan) -> None:
        """Refuse, with the figures, a fine-tune that would not fit (before loading)."""
        config = loading.base_config(base)
        c = self.config
        est = memory.training_estimate(
            config, quant=plan.quant, dtype=plan.dtype, batch=c.train_batch_size,
            length=c.max_length, lora_r=c.lora_r, targets=len(c.modules),
            checkpointing=c.gradient_checkpointing) if config else None
        if plan.on_cuda:
            import torch

            index = torch.device(plan.device).index or 0
            free, _ = torch.cuda.mem_get_info(index)
            where = f"GPU memory ({torch.cuda.get_device_name(index)})"
        else:
            free, where = memory.available_ram_bytes(), "RAM"
        reason = memory.refusal(est, free, where)
        if reason:
            raise BenchError(f"not fine-tuning {base.label}: {reason}; lower "
                             "--param train_batch_size or max_length, or turn on "
                             "gradient_checkpointing")

    def fit(self, examples: Sequence[Example]) -> TrainResult:
        """Train, save the adapter and ``training.json``; return what happened."""
        problems = sources.problems(self.base, "model")
        if problems:
            raise BenchError(f"cannot fine-tune: {'; '.join(problems)}")
        from predictors.qlora import gguf

        base = gguf.model_source(self.base, self.ctx)
        plan = self.runtime_plan()
        self.check_memory(base, plan)
        return _train(base, examples, self.output_dir(), plan, self.config,
                      data_fingerprint=self.data_fingerprint)


def _train(base: Source, examples: Sequence[Example], output_dir: Path, plan: Plan,
           config: TrainConfig, *, data_fingerprint: str | None) -> TrainResult:
    import torch
    import transformers
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
    from transformers import Trainer, TrainingArguments

    where = distributed.ranks()
    with_head = config.head != "none"
    if with_head and where.distributed:
        raise BenchError("head=log-price trains in one process: start it without "
                         "torchrun / accelerate launch")
    if not where.main:  # one set of progress bars, warnings and final lines: rank 0's
        transformers.logging.set_verbosity_error()
        warnings.simplefilter("ignore", FallbackWarning)
    transformers.set_seed(config.seed)
    tokenizer = loading.load_tokenizer(base, padding_side="right")
    rows, dropped = encode_examples(tokenizer, examples, config.max_length,
                                    with_price=with_head)
    if not rows:
        raise BenchError("no training example keeps a price token within "
                         f"max_length={config.max_length}: raise --param max_length")
    if dropped:
        warnings.warn(f"{dropped} examples dropped: their price lies beyond max_length="
                      f"{config.max_length} tokens", FallbackWarning, stacklevel=2)

    model = loading.load_base_model(base, plan)
    checkpointing = config.gradient_checkpointing
    # Non-reentrant checkpointing: the reentrant kind breaks DDP with frozen weights.
    reentrancy = {"use_reentrant": False} if checkpointing else None
    if plan.quant != "none":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=checkpointing,
                                                gradient_checkpointing_kwargs=reentrancy)
    if with_head and config.head_depth:
        from predictors.qlora.head import truncate

        truncate(model, config.head_depth)
    layers = model.config.num_hidden_layers
    top = range(max(0, layers - config.lora_layers), layers) if config.lora_layers else None
    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha,
                      lora_dropout=config.lora_dropout, target_modules=list(config.modules),
                      bias="none", task_type="CAUSAL_LM",
                      layers_to_transform=list(top) if top is not None else None)
    model.config.use_cache = False  # no KV cache while training (and checkpointing)
    model = get_peft_model(model, lora)
    spec, init = None, None
    if with_head:
        from predictors.qlora import head as price_head

        spec = price_head.fitted_spec([r["price"] for r in rows], config.head_layer,
                                      config.head_pool, config.head_depth)
        # An attribute of the model, so the Trainer's optimiser trains it too.
        model.price_head = price_head.make(model.config.hidden_size)
        if config.head_init == "ridge":
            init = _ridge_init(model, tokenizer, examples, spec, config)

    global_batch = distributed.global_batch(config.train_batch_size, config.grad_accum, where)
    per_epoch = math.ceil(len(rows) / global_batch)
    total = config.max_steps if config.max_steps > 0 else math.ceil(per_epoch * config.epochs)
    mixed = precision(plan) if plan.quant != "none" or plan.dtype != "float32" else "float32"
    args = TrainingArguments(
        output_dir=str(output_dir / "checkpoints"),
        run_name=output_dir.name,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.train_batch_size,
        gradient_accumulation_steps=config.grad_accum,
        learning_rate=config.lr,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=math.ceil(config.warmup_ratio * total),
        optim=_optimizer(config.optimizer, plan),
        logging_steps=config.logging_steps,
        save_strategy="no",
        report_to=_report_to(),
        seed=config.seed,
        bf16=plan.on_cuda and mixed == "bfloat16",
        fp16=plan.on_cuda and mixed == "float16",
        gradient_checkpointing=checkpointing,
        gradient_checkpointing_kwargs=reentrancy,
        use_cpu=not plan.on_cuda,
        # Data parallel (no effect in one process): LoRA trains every adapter
        # weight each step, so DDP need not search for unused ones; gloo on CPU.
        ddp_find_unused_parameters=False,
        ddp_backend="gloo" if where.distributed and not plan.on_cuda else None,
        disable_tqdm=not where.main or None,
        remove_unused_columns=False,
        dataloader_num_workers=0,
        weight_decay=config.weight_decay,
        max_grad_norm=config.max_grad_norm,
        **_length_grouping(config.group_by_length, TrainingArguments),
    )
    budget = config.max_minutes - (init["seconds"] / 60 if init else 0.0)
    if config.max_minutes and budget <= 0:
        raise BenchError(f"the head's initial fit took {init['seconds']:.0f} s, all of "
                         f"max_minutes={config.max_minutes:g}: lower head_init_minutes")
    trainer_class = _head_trainer(Trainer, spec, config) if spec is not None else Trainer
    trainer = trainer_class(model=model, args=args, train_dataset=rows,
                            data_collator=PadCollator(tokenizer.pad_token_id),
                            callbacks=[_time_limit(budget)] if config.max_minutes
                            else None)
    started = time.perf_counter()
    with _datasets_shadow_guard():
        trainer.train()
    seconds = time.perf_counter() - started

    curve = [
        {k: int(v) if k == "step" else float(v) for k, v in entry.items()
         if k in ("step", "epoch", "loss", "learning_rate", "grad_norm", "head_loss",
                  "lm_loss")}
        for entry in trainer.state.log_history if "loss" in entry
    ]
    steps = trainer.state.global_step
    if not where.main:  # rank 0 writes the one adapter and training.json
        return TrainResult(output_dir, len(rows), dropped, curve, seconds, written=False)
    output_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(output_dir))
    if spec is not None:
        price_head.save(output_dir, model.price_head, spec)
        if init is not None:  # the starting point, for comparing with what training made
            price_head.save(output_dir, init.pop("head"), spec, stem="price_head.init")
    meta = {
        "base": base.label,
        "base_revision": base.revision,
        "hyperparameters": {**config.hyperparameters(), "optimizer_used": args.optim.value
                            if hasattr(args.optim, "value") else str(args.optim),
                            "total_steps": steps},
        "load": {**plan.describe(), "mixed_precision": mixed},
        "world_size": where.world_size,
        "global_batch_size": global_batch,
        "data": {"fingerprint": data_fingerprint, "texts_sha256": data_digest(examples),
                 "examples": len(examples), "used": len(rows), "dropped": dropped},
        "loss_curve": curve,
        "head": asdict(spec) if spec is not None else None,
        "head_init": init,
        "stopped_by_time_limit": bool(config.max_minutes) and steps < total,
        "trained_on": _where_trained(plan),
        "git_commit": provenance.git_commit(),
        "train_seconds": round(seconds, 2),
        "seconds_per_step": round(seconds / steps, 3) if steps else None,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__,
                     "peft": metadata.version("peft")},
    }
    atomic_write_json(output_dir / "training.json", meta)
    checkpoints = output_dir / "checkpoints"  # save_strategy="no" leaves it empty
    if checkpoints.is_dir() and not any(checkpoints.iterdir()):
        checkpoints.rmdir()
    if config.push_to_hub:
        _push(model, output_dir, config.push_to_hub)
    return TrainResult(output_dir, len(rows), dropped, curve, seconds)


def _ridge_init(model: Any, tokenizer: Any, examples: Sequence[Example], spec: Any,
                config: TrainConfig) -> dict[str, Any]:
    """Start the head at the ridge fit on the untrained model's features of the
    training rows (in a seeded order, for ``head_init_minutes``)."""
    import random

    from predictors.qlora import head as price_head

    started = time.perf_counter()
    order = list(examples)
    random.Random(config.seed).shuffle(order)
    model.eval()
    feats, targets = price_head.frozen_features(
        model, tokenizer, [e.price for e in order], [e.product.prompt for e in order], spec,
        seconds=config.head_init_minutes * 60 or float("inf"))
    model.train()
    fit = price_head.ridge_init(model.price_head, feats, targets)
    start = price_head.make(model.price_head.in_features)
    start.load_state_dict(model.price_head.state_dict())
    return {**fit, "seconds": round(time.perf_counter() - started, 2), "head": start}


def _where_trained(plan: Plan) -> dict[str, Any]:
    """The machine the adapter trained on (figures depend on it)."""
    out: dict[str, Any] = {"cpu": provenance.cpu_model(), "cpu_count": os.cpu_count(),
                           "torch_threads": None, "load_average_at_end": None}
    import torch

    out["torch_threads"] = torch.get_num_threads()
    if hasattr(os, "getloadavg"):
        out["load_average_at_end"] = round(os.getloadavg()[0], 2)
    if plan.on_cuda:
        out["gpu"] = torch.cuda.get_device_name(torch.device(plan.device).index or 0)
    return out


def _time_limit_callback() -> type:
    from transformers import TrainerCallback

    class TimeLimit(TrainerCallback):
        """Ends training after ``minutes`` (checked after each step)."""

        def __init__(self, minutes: float):
            self.seconds = minutes * 60
            self.started = time.perf_counter()

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if time.perf_counter() - self.started >= self.seconds:
                control.should_training_stop = True

    return TimeLimit


def _time_limit(minutes: float) -> Any:
    return _time_limit_callback()(minutes)


def _head_trainer(base: type, spec: Any, config: TrainConfig) -> type:
    """A Trainer whose loss is the head's plus the price tokens' (head.joint_loss),
    logging both."""
    from predictors.qlora import head as price_head

    class HeadTrainer(base):  # type: ignore[misc, valid-type]
        _sums = [0.0, 0.0, 0]

        def create_optimizer(self, *args: Any, **kwargs: Any) -> Any:
            """The Trainer's optimiser, the head in a group of its own (head_lr,
            no weight decay)."""
            if self.optimizer is None:
                inner = getattr(self.model, "module", self.model)
                head_ids = {id(p) for p in inner.price_head.parameters()}
                rest = [p for p in self.model.parameters()
                        if p.requires_grad and id(p) not in head_ids]
                cls, kwargs = base.get_optimizer_cls_and_kwargs(self.args, self.model)
                self.optimizer = cls(
                    [{"params": rest, "weight_decay": self.args.weight_decay},
                     {"params": list(inner.price_head.parameters()), "weight_decay": 0.0,
                      "lr": config.head_lr or self.args.learning_rate}], **kwargs)
            return self.optimizer

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            inner = getattr(model, "module", model)
            loss, head_loss, lm_loss = price_head.joint_loss(
                inner, inputs, inner.price_head, spec, head_weight=config.head_weight,
                lm_weight=config.lm_weight)
            self._sums = [self._sums[0] + float(head_loss), self._sums[1] + float(lm_loss),
                          self._sums[2] + 1]
            return (loss, None) if return_outputs else loss

        def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
            if "loss" in logs and self._sums[2]:
                logs = {**logs, "head_loss": round(self._sums[0] / self._sums[2], 4),
                        "lm_loss": round(self._sums[1] / self._sums[2], 4)}
                self._sums = [0.0, 0.0, 0]
            super().log(logs, *args, **kwargs)

    return HeadTrainer


def _push(model: Any, output_dir: Path, repo_id: str) -> None:
    from huggingface_hub import HfApi

    token = sources.hf_token()
    model.push_to_hub(repo_id, private=True, token=token)
    HfApi(token=token).upload_file(path_or_fileobj=str(output_dir / "training.json"),
                                   path_in_repo="training.json", repo_id=repo_id)
