"""The published top-k price rule, pure: no torch, no model.

The QLoRA notebook prices an item from the model's next-token distribution
after ``Price is $``: take the k most likely tokens, keep those whose text is
a positive number, and average them weighted by their probabilities. Where
the notebook then returns 0 when no candidate is numeric, here that is no
answer (None), never a $0 guess.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def token_number(text: str) -> float | None:
    """A candidate's value as the notebook reads it (``float(text)``), when it
    is a finite positive number; otherwise None."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return value


def weighted_price(candidates: Sequence[tuple[str, float]]) -> float | None:
    """Probability-weighted mean of the candidates that decode to a positive
    number, weights renormalised over those kept.

    ``candidates`` are (decoded token text, probability) pairs, in any order
    (ties do not matter: the mean is order-free). None when no candidate is
    numeric or the numeric ones carry no probability at all.
    """
    kept = [(v, float(p)) for text, p in candidates if (v := token_number(text)) is not None]
    total = sum(p for _, p in kept)
    if not kept or not total > 0:
        return None
    return sum(v * p for v, p in kept) / total
