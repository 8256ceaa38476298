"""What API calls cost: a per-model price table and a rough token estimate.

``PRICES`` maps a model id to (USD per million input tokens, USD per million
output tokens). It is a plain module-level dict: extend it from your own code
(``PRICES["my-model"] = (0.5, 1.5)``) or override one run with
``--param price_in=... --param price_out=...``. A model that is not in the
table (a local server's model, say) has an unknown cost (None), never a made-up
one. Figures are list prices as published by the providers (checked November
2026); they change, so check before budgeting.
"""

from __future__ import annotations

import math
import re

PRICES: dict[str, tuple[float, float]] = {
    # OpenAI
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-2024-05-13": (5.00, 15.00),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-5": (1.25, 10.00),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5.1": (1.25, 10.00),
    "gpt-5.4": (2.50, 15.00),
    "gpt-5.4-mini": (0.75, 4.50),
    "gpt-5.4-nano": (0.20, 1.25),
    "gpt-5.5": (5.00, 30.00),
    # Anthropic
    "claude-3-5-sonnet": (3.00, 15.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4-6": (3.00, 15.00),
    "claude-opus-4-5": (5.00, 25.00),
    "claude-sonnet-5": (2.00, 10.00),
    "claude-sonnet-5-5": (2.00, 10.00),
    "claude-opus-5": (5.00, 25.00),
    "claude-opus-5-5": (4.00, 20.00),
}

# A dated snapshot ("gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20240620")
# costs what its base id costs, unless the table lists it on its own.
_SNAPSHOT = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")
CHARS_PER_TOKEN = 4


def price_of(model: str) -> tuple[float, float] | None:
    """(input, output) USD per million tokens for ``model``, or None if unknown."""
    if model in PRICES:
        return PRICES[model]
    base = _SNAPSHOT.sub("", model)
    return PRICES.get(base)


def cost_usd(
    model: str,
    input_tokens: int | None,
    output_tokens: int | None,
    price_in: float | None = None,
    price_out: float | None = None,
) -> float | None:
    """Dollars for one call; None when the tokens or the model's price are unknown.

    ``price_in`` / ``price_out`` (USD per million tokens) override the table.
    """
    if input_tokens is None and output_tokens is None:
        return None
    table = price_of(model)
    rate_in = price_in if price_in is not None else (table[0] if table else None)
    rate_out = price_out if price_out is not None else (table[1] if table else None)
    if rate_in is None or rate_out is None:
        return None
    return ((input_tokens or 0) * rate_in + (output_tokens or 0) * rate_out) / 1_000_000


def estimate_tokens(text: str) -> int:
    """Tokens in ``text``, roughly: one per 4 characters (English, GPT/Claude
    tokenizers; a dry-run figure, not a bill)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)
