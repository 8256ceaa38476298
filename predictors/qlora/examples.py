"""Training rows for the fine-tune: the hub's text, token ids, and labels only
on the price (completion-only), checked to decode back to the price text.

The labels start after ``Price is $``, found from the tokenizer's character
offsets rather than by searching for the template's token ids (which can
tokenise differently in context). Tokenizers before 0.20.1 had an offsets bug
on Llama 3 that loses the number token; every row is therefore checked: its
labelled tokens must decode to its price text, or training is refused.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from bench.errors import BenchError
from bench.types import Example


def price_text(example: Example) -> str:
    """What the model learns to say: dollars rounded, ``NNN.00``."""
    return f"{round(example.price)}.00"


def training_text(example: Example) -> str:
    """The hub's ``text``: the prompt followed by the price text."""
    return f"{example.product.prompt}{price_text(example)}"


def data_digest(examples: Sequence[Example]) -> str:
    digest = hashlib.sha256()
    for ex in examples:
        digest.update(training_text(ex).encode())
        digest.update(b"\x00")
    return "sha256:" + digest.hexdigest()


def encode_examples(tokenizer: Any, examples: Sequence[Example], max_length: int, *,
                    with_price: bool = False) -> tuple[list[dict[str, Any]], int]:
    """Token ids and labels; labels are -100 up to the end of the prompt
    (``with_price``: each row also holds its ``price``, for a regression head).

    Returns the encoded rows and how many were dropped because truncation to
    ``max_length`` cut off every price token (nothing left to learn from).
    Raises BenchError when a row's labelled tokens do not decode to its price.
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
    for n, (ids, answer, ex) in enumerate(zip(enc["input_ids"], starts, examples, strict=True)):
        answer = [i for i in answer if i < len(ids)]
        if not answer:
            dropped += 1
            continue
        check_label_span(tokenizer, [ids[i] for i in answer], price_text(ex), n,
                         truncated=len(ids) >= max_length)
        labels = [-100] * len(ids)
        for i in answer:
            labels[i] = ids[i]
        row: dict[str, Any] = {"input_ids": list(ids), "labels": labels}
        if with_price:
            row["price"] = ex.price
        rows.append(row)
    return rows, dropped


def check_label_span(tokenizer: Any, label_ids: Sequence[int], expected: str, row: int,
                     *, truncated: bool = False) -> None:
    """The labelled tokens must say the price (a truncated row: its start).

    Spaces are ignored: a word-level tokenizer decodes ``374 . 00``."""
    said = tokenizer.decode(list(label_ids)).replace(" ", "")
    if said == expected or (truncated and said and expected.startswith(said)):
        return
    import tokenizers

    raise BenchError(
        f"training row {row}: the labelled tokens decode to {said!r}, not the price "
        f"{expected!r}, so the model would learn the wrong answer (tokenizers "
        f"{tokenizers.__version__}; versions before 0.20.1 lose Llama 3's number token: "
        "pip install -U 'tokenizers>=0.20.1')")


class PadCollator:
    """Right-pads a batch: pad id for inputs, -100 for labels, 0 in the mask
    (and passes rows' ``price`` on as a float tensor when they hold one)."""

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
        batch = {"input_ids": torch.tensor(ids), "labels": torch.tensor(labels),
                 "attention_mask": torch.tensor(mask)}
        if "price" in rows[0]:
            batch["price"] = torch.tensor([float(r["price"]) for r in rows])
        return batch
