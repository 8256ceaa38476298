"""Will the model fit? Estimated from its config alone, before loading anything.

Loading an 8B model unquantised on a machine that cannot hold it ends in the
kernel's OOM killer, minutes later and without a word; a refusal up front with
the figures is kinder. No torch here: ``bench list`` asks these questions.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GIB = 1024**3
# Bytes per weight by load mode. 4-bit nf4 with double quantisation stores a
# little over half a byte; embeddings and the LM head stay in 16 bits (below).
_DTYPE_BYTES = {"float32": 4.0, "bfloat16": 2.0, "float16": 2.0}
_QUANT_BYTES = {"4": 0.5, "8": 1.0}
# Headroom for activations, the CUDA context / allocator, the tokenizer and the
# LoRA weights: proportional plus a fixed part.
MARGIN_FRACTION = 0.15
MARGIN_BYTES = 1.0 * GIB


# Configs of well-known bases, for estimates before anything is downloaded.
KNOWN_CONFIGS: dict[str, dict[str, Any]] = {
    "meta-llama/Meta-Llama-3.1-8B": {
        "hidden_size": 4096, "num_hidden_layers": 32, "vocab_size": 128256,
        "intermediate_size": 14336, "num_attention_heads": 32, "num_key_value_heads": 8,
        "tie_word_embeddings": False,
    },
}


@dataclass(frozen=True)
class Estimate:
    params: int
    bytes_needed: float
    how: str  # e.g. "8.03B params x 4 bytes (float32)"

    @property
    def gib(self) -> float:
        return self.bytes_needed / GIB


def param_count(config: Mapping[str, Any]) -> int | None:
    """Parameters of a decoder-only transformer (Llama-style) from its config,
    or None when the config lacks the fields to tell."""
    try:
        h = int(config["hidden_size"])
        layers = int(config["num_hidden_layers"])
        vocab = int(config["vocab_size"])
        inter = int(config.get("intermediate_size") or 4 * h)
        heads = int(config.get("num_attention_heads") or 1)
    except (KeyError, TypeError, ValueError):
        return None
    kv_heads = int(config.get("num_key_value_heads") or heads)
    head_dim = int(config.get("head_dim") or h // heads)
    attention = h * heads * head_dim * 2 + h * kv_heads * head_dim * 2  # q, o + k, v
    mlp = 3 * h * inter  # gate, up, down
    per_layer = attention + mlp + 2 * h  # two RMS norms
    embeddings = vocab * h
    head = 0 if config.get("tie_word_embeddings") else vocab * h
    return layers * per_layer + embeddings + head + h


def estimate(config: Mapping[str, Any], *, quant: str, dtype: str) -> Estimate | None:
    """Memory to load the model for inference, margin included."""
    params = param_count(config)
    if params is None:
        return None
    vocab, h = int(config["vocab_size"]), int(config["hidden_size"])
    if quant in _QUANT_BYTES:
        # bitsandbytes leaves the embeddings and LM head unquantised (16-bit).
        big = vocab * h * (1 if config.get("tie_word_embeddings") else 2)
        raw = (params - big) * _QUANT_BYTES[quant] + big * 2.0
        how = f"{params / 1e9:.2f}B params, {quant}-bit (16-bit embeddings)"
    else:
        size = _DTYPE_BYTES.get(dtype, 4.0)
        raw = params * size
        how = f"{params / 1e9:.2f}B params x {size:g} bytes ({dtype})"
    return Estimate(params, raw * (1 + MARGIN_FRACTION) + MARGIN_BYTES, how)


def available_ram_bytes() -> int | None:
    """Memory the OS can give us now (``MemAvailable``), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def refusal(est: Estimate | None, available: int | None, where: str) -> str | None:
    """Why loading would not fit in ``available`` bytes of ``where``, or None."""
    if est is None or available is None or est.bytes_needed <= available:
        return None
    return (f"the model needs about {est.gib:.1f} GiB ({est.how}, with margin) but only "
            f"{available / GIB:.1f} GiB of {where} is available")


def read_config(path: str | Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def training_estimate(config: Mapping[str, Any], *, quant: str, dtype: str, batch: int,
                      length: int, lora_r: int, targets: int,
                      checkpointing: bool) -> Estimate | None:
    """Memory to fine-tune LoRA at this batch and length: the frozen weights
    (as for inference), the LoRA weights with their gradients and AdamW state
    (float32: 16 bytes each), activations kept for the backward pass, and the
    float32 logits with their gradient. A rough upper bound, for refusing
    early; eager attention's score matrices included."""
    weights = estimate(config, quant=quant, dtype=dtype)
    if weights is None:
        return None
    h, layers = int(config["hidden_size"]), int(config["num_hidden_layers"])
    vocab = int(config["vocab_size"])
    inter = int(config.get("intermediate_size") or 4 * h)
    heads = int(config.get("num_attention_heads") or 1)
    act = 2.0 if quant != "none" or dtype in ("bfloat16", "float16") else 4.0
    tokens = batch * length
    per_layer = tokens * act * (17 * h + 3 * inter + 2.5 * heads * length)
    saved = tokens * h * act * layers + per_layer if checkpointing else per_layer * layers
    logits = tokens * vocab * 4.0 * 3
    lora = layers * targets * lora_r * 2 * h * 16.0
    extra = (saved + logits + lora) * (1 + MARGIN_FRACTION)
    how = (f"{weights.how}; LoRA r={lora_r} on {targets} modules with AdamW; activations "
           f"for batch {batch} x {length} tokens"
           + (" (checkpointed)" if checkpointing else ""))
    return Estimate(weights.params, weights.bytes_needed + extra, how)
