"""Batched inference: one padded forward pass (top-k) or a short greedy
generation per chunk of prompts.

Prompts are padded on the left, so the last position is every row's last real
token, with an attention mask and position ids counted from each row's first
real token: a row's result does not depend on what it is batched with.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Output:
    """What the model said about one prompt, before any price rule."""

    candidates: list[tuple[str, float]] | None  # top-k (decoded text, probability)
    text: str | None  # greedy continuation
    input_tokens: int
    output_tokens: int


def encode(tokenizer: Any, prompts: Sequence[str], device: Any) -> dict[str, Any]:
    # Tokenised as the tokenizer does by default (BOS included), like the notebook.
    enc = tokenizer(list(prompts), return_tensors="pt", padding=True)
    mask = enc["attention_mask"].to(device)
    return {
        "input_ids": enc["input_ids"].to(device),
        "attention_mask": mask,
        "position_ids": (mask.long().cumsum(-1) - 1).clamp(min=0),
    }


def top_k_next_tokens(model: Any, tokenizer: Any, prompts: Sequence[str], k: int,
                      device: Any) -> list[Output]:
    """The k most likely next tokens after each prompt, over the whole vocabulary."""
    import torch

    batch = encode(tokenizer, prompts, device)
    with torch.inference_mode():
        # Only the last position's logits: the full (batch, length, vocab) tensor
        # would be gigabytes for Llama 3's 128k vocabulary.
        logits = model(**batch, logits_to_keep=1).logits[:, -1, :]
    probs = torch.softmax(logits.float(), dim=-1)
    top_p, top_i = probs.topk(k, dim=-1)
    lengths = batch["attention_mask"].sum(-1).tolist()
    outputs = []
    for row_p, row_i, n in zip(top_p.tolist(), top_i.tolist(), lengths, strict=True):
        cands = [(tokenizer.decode([i]), p) for i, p in zip(row_i, row_p, strict=True)]
        outputs.append(Output(cands, None, int(n), 1))
    return outputs


def greedy(model: Any, tokenizer: Any, prompts: Sequence[str], max_new_tokens: int,
           device: Any) -> list[Output]:
    """A few greedily generated tokens per prompt (the base-model notebook)."""
    import torch

    batch = encode(tokenizer, prompts, device)
    batch.pop("position_ids")  # generate() derives them from the mask
    with torch.inference_mode():
        out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False,
                             pad_token_id=tokenizer.pad_token_id)
    new = out[:, batch["input_ids"].shape[1]:]
    texts = tokenizer.batch_decode(new, skip_special_tokens=True)
    lengths = batch["attention_mask"].sum(-1).tolist()
    eos = tokenizer.eos_token_id
    produced = [int((row != eos).sum()) if eos is not None else row.numel() for row in new]
    return [Output(None, t, int(n), m) for t, n, m in zip(texts, lengths, produced, strict=True)]


class ModelError(RuntimeError):
    """The model failed on a batch; the message is one line saying why."""


def one_line(exc: BaseException, batch: int) -> str:
    """A model failure as one line: CUDA out of memory and kernels missing for
    this GPU (a torch or bitsandbytes build without its architecture) are
    named with what to do; anything else is its first line."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    lowered = text.lower()
    if "out of memory" in lowered:
        tried = re.search(r"tried to allocate ([\d.]+ [KMGT]iB)", text, re.IGNORECASE)
        size = f" (tried to allocate {tried.group(1)})" if tried else ""
        return (f"CUDA out of memory on a batch of {batch}{size}: lower --param batch_size "
                "or use a smaller model")
    if "no kernel image" in lowered or "kernel not found" in lowered \
            or "not compiled with" in lowered:
        return (f"CUDA kernel missing for this GPU ({first[:160]}): torch or bitsandbytes "
                "was built without this GPU's architecture; install a build for it")
    return f"{type(exc).__name__}: {first[:300]}"
