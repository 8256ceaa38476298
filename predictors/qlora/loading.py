"""How the model is loaded here: the plan (device, quantisation, dtype), decided
cheaply, and the loading itself (torch, transformers, bitsandbytes, peft:
imported inside the functions that need them).

The published setup is CUDA + bitsandbytes 4-bit nf4 with double quantisation
and bf16 compute; the published run gave no dtype, so everything outside the
4-bit weights (embeddings, norms, LM head) was float16, and ``dtype=auto``
reproduces that. Where 4-bit cannot run (no CUDA GPU, no bitsandbytes) the
model loads unquantised, float32 on CPU, with a warning: slower, and close to
but not exactly the published numbers.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import sys
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from predictors.qlora import memory, sources
from predictors.qlora.sources import Source

QUANTS = ("4", "8", "none")
DTYPES = ("auto", "float32", "bfloat16", "float16")


class FallbackWarning(UserWarning):
    """The model is loaded differently from the published setup."""


@dataclass(frozen=True)
class Plan:
    device: str  # "cpu", "cuda", "cuda:1", ...
    quant: str  # "4", "8" or "none"
    dtype: str  # the weights (unquantised) or what is not quantised (4/8-bit)
    notes: tuple[str, ...] = field(default=())
    compute_dtype: str = "bfloat16"  # of the 4-bit matmuls

    @property
    def on_cuda(self) -> bool:
        return self.device.startswith("cuda")

    def describe(self, *, merged: bool | None = None) -> dict[str, object]:
        """What was loaded, for run records."""
        out: dict[str, object] = {"device": self.device, "quant": self.quant,
                                  "dtype": self.dtype}
        if self.quant == "4":
            out["compute_dtype"] = self.compute_dtype
        if merged is not None:
            out["merged"] = merged
        if self.notes:
            out["notes"] = list(self.notes)
        return out


def normalise_quant(quant: str | int) -> str:
    value = str(quant).lower().removesuffix("bit").removesuffix("-")
    value = {"0": "none", "no": "none", "off": "none", "false": "none"}.get(value, value)
    if value not in QUANTS:
        raise ValueError(f"quant must be one of 4, 8, none (got {quant!r})")
    return value


def cuda_present() -> bool:
    """Is there a usable NVIDIA GPU? Asks torch if it is already imported, else
    looks for the driver's device files, so that listing stays torch-free."""
    if sys.modules.get("torch") is not None:  # None: blocked, as if absent
        return bool(sys.modules["torch"].cuda.is_available())
    return _visible_gpus() > 0


def gpu_count() -> int:
    """How many NVIDIA GPUs this process may use; torch-free like ``cuda_present``."""
    if sys.modules.get("torch") is not None:  # None: blocked, as if absent
        return int(sys.modules["torch"].cuda.device_count())
    return _visible_gpus()


def _visible_gpus() -> int:
    """The driver's device files, narrowed by ``CUDA_VISIBLE_DEVICES`` as CUDA
    reads it: the ids before the first empty or negative one ("" or "-1": none)."""
    present = len(glob.glob("/dev/nvidia[0-9]*"))
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is None:
        return present
    listed = 0
    for device in visible.split(","):
        if not device.strip() or device.strip().startswith("-"):
            break
        listed += 1
    return min(present, listed)


def make_plan(device: str, quant: str, dtype: str) -> Plan:
    """Device, quantisation and dtype to load with, and why they differ from
    what was asked."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)} (got {dtype!r})")
    target = ("cuda" if cuda_present() else "cpu") if device == "auto" else device
    notes: list[str] = []
    if quant != "none" and not target.startswith("cuda"):
        notes.append(f"no CUDA GPU: {quant}-bit quantisation needs one, so the model loads "
                     "unquantised on CPU (slow; results close to, not exactly, published)")
        quant = "none"
    elif quant != "none" and importlib.util.find_spec("bitsandbytes") is None:
        notes.append("bitsandbytes is not installed: the model loads unquantised")
        quant = "none"
    if dtype == "auto":
        # As published: no dtype given, so float16 around the 4-bit weights.
        dtype = ("float16" if quant != "none" else "bfloat16") if target.startswith("cuda") \
            else "float32"
    return Plan(target, quant, dtype, tuple(notes))


def bnb_config(quant: str, compute_dtype: str = "bfloat16") -> Any:
    """The quantisation config: 4-bit = the published QLoRA setup."""
    from transformers import BitsAndBytesConfig

    if quant == "4":
        return BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch_dtype(compute_dtype),
            bnb_4bit_quant_type="nf4",
        )
    if quant == "8":
        return BitsAndBytesConfig(load_in_8bit=True)
    return None


def check_runtime(plan: Plan) -> Plan:
    """Check the plan against torch itself (now imported); a broken bitsandbytes
    degrades to unquantised with a warning, a missing GPU is an error."""
    import torch

    if plan.on_cuda and not torch.cuda.is_available():
        raise BenchError(f"device {plan.device!r} requested but torch sees no CUDA GPU "
                         f"(torch {torch.__version__}); pass --param device=cpu")
    if plan.quant != "none":
        try:
            import bitsandbytes  # noqa: F401
        except Exception as exc:  # import errors of broken CUDA builds vary
            plan = replace(plan, quant="none", notes=(
                *plan.notes, f"bitsandbytes does not work here ({type(exc).__name__}: {exc}); "
                "loading unquantised"))
    for note in plan.notes:
        warnings.warn(note, FallbackWarning, stacklevel=3)
    return plan


def base_config(base: Source) -> dict[str, Any] | None:
    """The base's config.json if on disk, else a known one (for estimates)."""
    return memory.read_config(base.file("config.json")) or memory.KNOWN_CONFIGS.get(base.ref)


def _estimate(base: Source, plan: Plan) -> memory.Estimate | None:
    config = base_config(base)
    return memory.estimate(config, quant=plan.quant, dtype=plan.dtype) if config else None


def ram_refusal(base: Source, plan: Plan) -> str | None:
    """Why loading on CPU would not fit in the RAM available now (torch-free)."""
    return memory.refusal(_estimate(base, plan), memory.available_ram_bytes(), "RAM")


def check_memory(base: Source, plan: Plan) -> None:
    """Refuse, with the figures, a load that would not fit."""
    if plan.on_cuda:
        import torch

        index = torch.device(plan.device).index or 0
        free, _ = torch.cuda.mem_get_info(index)
        reason = memory.refusal(_estimate(base, plan), free,
                                f"GPU memory ({torch.cuda.get_device_name(index)})")
    else:
        reason = ram_refusal(base, plan)
    if reason:
        raise BenchError(f"not loading {base.label}: {reason}; use a GPU, quant=4, or a "
                         "smaller base model")


def torch_dtype(name: str) -> Any:
    import torch

    return getattr(torch, name)


def load_tokenizer(base: Source, padding_side: str = "left") -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base.ref, trust_remote_code=False,
                                              **sources.hub_kwargs(base))
    if tokenizer.pad_token is None:  # Llama 3 has none; padding is masked anyway
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = padding_side
    return tokenizer


def load_base_model(base: Source, plan: Plan) -> Any:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"trust_remote_code": False, "dtype": torch_dtype(plan.dtype),
                              **sources.hub_kwargs(base)}
    if plan.quant != "none":
        kwargs["quantization_config"] = bnb_config(plan.quant, plan.compute_dtype)
    if plan.on_cuda:  # straight onto its GPU: under torchrun, the one of its local rank
        import torch

        kwargs["device_map"] = {"": torch.device(plan.device).index or 0}
    model = AutoModelForCausalLM.from_pretrained(base.ref, **kwargs)
    if not plan.on_cuda:
        model = model.to(plan.device)
    return model


def load_for_inference(base: Source, adapter: Source | None, plan: Plan, tokenizer: Any,
                       merge: bool = True) -> Any:
    """The model (+ LoRA adapter) in eval mode, padding with ``tokenizer``'s pad id.

    On an unquantised base the adapter is merged into the weights (W + BA): one
    matmul per projection instead of three, the same outputs within float
    tolerance. A quantised base keeps it apart: merging would round the sum
    back to 4 or 8 bits."""
    model = load_base_model(base, plan)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter.ref, **sources.hub_kwargs(adapter))
        if merge and plan.quant == "none":
            model = model.merge_and_unload()
    model.eval()
    return model


def numbers_whole(tokenizer: Any) -> bool:
    """Does this (transformers) tokenizer keep a price's dollars as one token?"""
    from predictors.topk import numbers_are_whole_tokens

    def pieces(text: str) -> list[str]:
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return [tokenizer.decode([i]) for i in ids]

    return numbers_are_whole_tokens(pieces)


def numbers_whole_on_disk(tokenizer_json: Path | None) -> bool | None:
    """The same question asked of a ``tokenizer.json`` with the torch-free
    ``tokenizers`` library; None when there is no file to ask."""
    if tokenizer_json is None or not tokenizer_json.is_file():
        return None
    from tokenizers import Tokenizer

    from predictors.topk import numbers_are_whole_tokens

    core = Tokenizer.from_file(str(tokenizer_json))
    return numbers_are_whole_tokens(
        lambda text: [core.decode([i]) for i in core.encode(text, add_special_tokens=False).ids])
