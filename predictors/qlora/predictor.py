"""The ``qlora`` predictor: a base causal LM (4-bit) plus a LoRA adapter,
pricing from the next-token distribution after ``Price is $``; and ``fit``,
which fine-tunes such an adapter (``bench train qlora``).

Nothing heavy is imported here at module level: torch, transformers and peft
load in ``prepare()`` / ``fit()``.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.prompts import parse_price
from bench.registry import register
from bench.topk import weighted_price
from bench.types import BasePredictor, Example, Prediction, Product
from predictors.qlora import loading, sources
from predictors.qlora.loading import Plan
from predictors.qlora.sources import Source

DEFAULT_BASE = "meta-llama/Meta-Llama-3.1-8B"
DEFAULT_ADAPTER = "ed-donner/pricer-2024-09-13_13.04.39"
DEFAULT_REVISION = "e8d637df551603dc86cd7a1598a8f44af4d7ae36"
MODES = ("topk", "greedy")
NEEDED = ("torch", "transformers", "peft")
VERSION = 1  # bump when the outputs for the same fingerprint would change


@register("qlora", kind="local-llm")
class QLoRAPredictor(BasePredictor):
    """Fine-tuned open LLM (Llama 3.1 8B 4-bit + LoRA), top-3 weighted next-token price."""

    def __init__(
        self,
        base: str = DEFAULT_BASE,
        adapter: str | None = "default",
        revision: str | None = None,
        quant: str = "4",
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        k: int = 3,
        mode: str = "topk",
        max_new_tokens: int = 4,
        merge: bool = True,
        # -- fine-tuning (bench train qlora) --
        output_dir: Path | None = None,
        lr: float = 1e-4,
        epochs: float = 1.0,
        max_steps: int = -1,
        optimizer: str = "paged_adamw_32bit",
        train_batch_size: int = 4,
        grad_accum: int = 1,
        lora_r: int = 32,
        lora_alpha: int = 64,
        lora_dropout: float = 0.1,
        target_modules: str = "q_proj,k_proj,v_proj,o_proj",
        lr_scheduler: str = "cosine",
        warmup_ratio: float = 0.03,
        weight_decay: float = 0.001,
        max_grad_norm: float = 0.3,
        group_by_length: bool = True,
        max_length: int = 182,
        train_size: int | None = None,
        include_extra: bool = False,
        seed: int = 42,
        logging_steps: int = 10,
        gradient_checkpointing: bool = True,
        push_to_hub: str | None = None,
        ctx: Any = None,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
        if k < 1 or batch_size < 1 or max_new_tokens < 1:
            raise ValueError("k, batch_size and max_new_tokens must be at least 1")
        self.base = base
        # "default" = the published adapter, which only fits the default base.
        if adapter == "default":
            adapter = DEFAULT_ADAPTER if base == DEFAULT_BASE else None
        self.adapter = None if adapter in (None, "", "none") else adapter
        # The pinned revision belongs to the published adapter only.
        self.revision = revision or (DEFAULT_REVISION if self.adapter == DEFAULT_ADAPTER
                                     else None)
        self.quant = loading.normalise_quant(quant)
        self.device = device
        self.dtype = dtype
        self.batch_size = batch_size
        self.k = k
        self.mode = mode
        self.max_new_tokens = max_new_tokens
        self.merge = merge
        self.output_dir = output_dir
        self.train_config = {
            "lr": lr, "epochs": epochs, "max_steps": max_steps, "optimizer": optimizer,
            "batch_size": train_batch_size, "grad_accum": grad_accum, "lora_r": lora_r,
            "lora_alpha": lora_alpha, "lora_dropout": lora_dropout,
            "target_modules": tuple(m.strip() for m in target_modules.split(",") if m.strip()),
            "lr_scheduler": lr_scheduler, "warmup_ratio": warmup_ratio,
            "weight_decay": weight_decay, "max_grad_norm": max_grad_norm,
            "group_by_length": group_by_length,
            "max_length": max_length, "seed": seed, "logging_steps": logging_steps,
            "gradient_checkpointing": gradient_checkpointing,
        }
        self.train_size = train_size
        self.include_extra = include_extra
        self.seed = seed
        self.push_to_hub = push_to_hub
        self.ctx = ctx
        self._plan = loading.make_plan(device, self.quant, dtype)
        self._model: Any = None
        self._tokenizer: Any = None
        self._data_fingerprint: str | None = None
        self._fingerprint: dict[str, Any] | None = None
        self.name = self._display_name()

    # -- identity -------------------------------------------------------------

    def _display_name(self) -> str:
        if self.base == DEFAULT_BASE and self.adapter == DEFAULT_ADAPTER:
            return "qlora"
        adapter = Path(self.adapter).name if self.adapter else "no-adapter"
        if self.base == DEFAULT_BASE:
            return f"qlora:{adapter}"
        return f"qlora:{Path(self.base).name}+{adapter}"

    @property
    def base_source(self) -> Source:
        return Source.parse(self.base)

    @property
    def adapter_source(self) -> Source | None:
        return Source.parse(self.adapter, self.revision) if self.adapter else None

    @property
    def plan(self) -> Plan:
        return self._plan

    def fingerprint(self) -> dict[str, Any]:
        """What shapes the outputs (not batch size or device); for local
        directories also a digest of their contents, so retraining into the
        same folder is a new run. Computed once per loaded model: predict()
        asks for it on every chunk, and the adapter digest reads its weights."""
        if self._fingerprint is not None:
            return dict(self._fingerprint)
        base, adapter = self.base_source, self.adapter_source
        fp: dict[str, Any] = {
            "version": VERSION, "base": base.label, "adapter": adapter.label if adapter else None,
            "revision": self.revision, "quant": self.plan.quant, "dtype": self.plan.dtype,
            "mode": self.mode,
        }
        if self.mode == "topk":
            fp["k"] = self.k
        else:
            fp["max_new_tokens"] = self.max_new_tokens
        if base.local is not None:
            fp["base_digest"] = sources.content_digest(base, "model")
        if adapter is not None and adapter.local is not None:
            fp["adapter_digest"] = sources.content_digest(adapter, "adapter")
        self._fingerprint = fp
        return dict(fp)

    # -- can it run here? -------------------------------------------------------

    def unavailable(self) -> str | None:
        """Why this cannot run here (missing libraries, weights, token, memory)."""
        missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
        if missing:
            return f"needs {', '.join(missing)}: pip install 'pricer-bench[llm]'"
        base = self.base_source
        reasons = sources.problems(base, "model")
        if self.adapter_source is not None:
            reasons += sources.problems(self.adapter_source, "adapter")
        if self.plan.on_cuda and not loading.cuda_present():
            reasons.append(f"device={self.device} but no CUDA GPU is visible")
        if not self.plan.on_cuda:
            refusal = loading.ram_refusal(base, self.plan)
            if refusal:
                where = "no CUDA GPU, and on CPU" if self.device == "auto" else "on CPU"
                reasons.append(f"{where} {refusal}")
        return "; ".join(reasons) or None

    # -- inference --------------------------------------------------------------

    def prepare(self) -> None:
        """Load tokenizer, model and adapter (once)."""
        if self._model is not None:
            return
        problem = self.unavailable()
        if problem:
            raise BenchError(f"qlora cannot run here: {problem}")
        self._plan = loading.check_runtime(self.plan)
        self._fingerprint = None  # the plan may have fallen back (quant)
        loading.check_memory(self.base_source, self.plan)
        self._tokenizer, self._model = loading.load_for_inference(
            self.base_source, self.adapter_source, self.plan, sources.hf_token(),
            merge=self.merge)

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        """One Prediction per product, in order; cached outputs are reused and
        the rest run through the model in chunks of ``batch_size``."""
        cache = getattr(self.ctx, "responses", None)
        identity = {"predictor": "qlora", **self.fingerprint()} if cache else {}
        keys = [{**identity, "prompt": p.prompt} for p in products]
        outputs: list[dict[str, Any] | None] = [cache.get(k) if cache else None for k in keys]
        latency = [0.0] * len(products)
        # Similar lengths batch together: less padding when given many at once.
        todo = sorted((i for i, out in enumerate(outputs) if out is None),
                      key=lambda i: len(products[i].prompt))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start : start + self.batch_size]
            started = time.perf_counter()
            fresh = self._run_model([products[i].prompt for i in chunk])
            each = (time.perf_counter() - started) / len(chunk)
            for i, out in zip(chunk, fresh, strict=True):
                outputs[i], latency[i] = out, each
                if cache:
                    cache.put(keys[i], out)
        return [self._prediction(out, t) for out, t in zip(outputs, latency, strict=True)]

    def _run_model(self, prompts: list[str]) -> list[dict[str, Any]]:
        self.prepare()
        from predictors.qlora import inference

        device = self._model.device
        if self.mode == "topk":
            outs = inference.top_k_next_tokens(self._model, self._tokenizer, prompts, self.k,
                                               device)
        else:
            outs = inference.greedy(self._model, self._tokenizer, prompts,
                                    self.max_new_tokens, device)
        return [asdict(o) for o in outs]

    def _prediction(self, out: dict[str, Any] | None, latency: float) -> Prediction:
        assert out is not None
        extra = {"latency_s": latency, "input_tokens": out["input_tokens"],
                 "output_tokens": out["output_tokens"]}
        if self.mode == "topk":
            candidates = [(str(t), float(p)) for t, p in out["candidates"]]
            raw = json.dumps(candidates, ensure_ascii=False)
            price = weighted_price(candidates)
            if price is None:
                return Prediction.failed(f"none of the top {self.k} tokens is a number",
                                         raw=raw, **extra)
            return Prediction(price=price, raw=raw, **extra)
        price = parse_price(out["text"])
        if price is None:
            return Prediction.failed("no number in the generated text", raw=out["text"],
                                     **extra)
        return Prediction(price=price, raw=out["text"], **extra)

    # -- fine-tuning --------------------------------------------------------------

    def training_examples(self) -> list[Example]:
        """The training pool (benchmark rows excluded), ``train_size`` of it if set."""
        if self.ctx is None:
            raise ValueError("training needs data: run through `bench train qlora`")
        examples, fp = self.ctx.train_examples(include_extra=self.include_extra,
                                               size=self.train_size, seed=self.seed)
        self._data_fingerprint = fp
        return examples

    def default_output_dir(self) -> Path:
        stamp = datetime.now().strftime("%Y-%m-%d_%H.%M.%S")
        root = Path(self.ctx.models_dir) / "qlora" if self.ctx is not None else Path("runs")
        return root / f"pricer-{stamp}"

    def fit(self, examples: Sequence[Example]) -> QLoRAPredictor:
        """Fine-tune a LoRA adapter on ``examples``; afterwards this predictor
        uses it (``bench run qlora --param adapter=PATH`` scores it later)."""
        from predictors.qlora import training

        base = self.base_source
        problems = sources.problems(base, "model")
        if problems:
            raise BenchError(f"cannot fine-tune: {'; '.join(problems)}")
        plan = loading.check_runtime(self.plan)
        loading.check_memory(base, plan)
        output_dir = Path(self.output_dir) if self.output_dir else self.default_output_dir()
        config = training.TrainConfig(**self.train_config)
        result = training.train(base, examples, output_dir, plan, config,
                                token=sources.hf_token(),
                                data_fingerprint=self._data_fingerprint,
                                push_to_hub=self.push_to_hub)
        last = result.loss_curve[-1]["loss"] if result.loss_curve else float("nan")
        print(f"saved adapter to {result.output_dir} ({result.examples_used} examples, "
              f"{result.seconds:.0f} s, last logged loss {last:.3f}); score it with: "
              f"bench run qlora --param adapter={result.output_dir}"
              + (f" --param base={self.base}" if self.base != DEFAULT_BASE else ""),
              file=sys.stderr)
        self.adapter, self.revision = str(result.output_dir), None
        self._model = self._tokenizer = self._fingerprint = None
        self.name = self._display_name()
        return self
