"""The published top-k price rule, pure: no torch, no model. Shared by the
local ``qlora`` predictor and the served ``openai-logprobs`` one.

The QLoRA notebook prices an item from the model's next-token distribution
after ``Price is $``: take the k most likely tokens, keep those whose text is
a positive number, and average them weighted by their probabilities. Where
the notebook then returns 0 when no candidate is numeric, here that is no
answer (None), never a $0 guess.

The rule only means something when a price's dollars are ONE token, as in
Llama 3's tokenizer (every integer 0..999 is a token). A tokenizer that splits
numbers into digits (SmolLM2, many others) offers single digits as the next
token, and their weighted mean ($1.69 for a $374.41 product) is not a price.
Whether numbers are whole is a property of the tokenizer, so it is decided
once, from the tokenizer, wherever the tokenizer can be asked:
``numbers_are_whole_tokens`` (its pieces, in process) or
``numbers_whole_by_count`` (token counts, from a server's tokenize endpoint).
Then ``top_k_price`` prices every item by the rule, single-digit prices under
$10 included, as the published notebook did. Only where nothing could be
asked does it fall back to judging each item by its candidates
(``looks_digit_split``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

# Prices whose dollars must each come out as one token after "Price is $".
PROBES = ("7", "42", "374", "999")
DIGIT_SPLIT = ("the numeric top tokens are all single digits: the model's tokenizer "
               "splits numbers into digits, so the top-k rule would average digits, not "
               "prices; generate the number instead (greedy)")


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


def looks_digit_split(candidates: Sequence[tuple[str, float]]) -> bool:
    """Evidence, from the returned tokens alone, that numbers are split into
    digits: numeric candidates exist and every one is a single digit.

    The fallback only, where the tokenizer could not be asked: a whole-number
    tokenizer offers single digits too, for prices under $10 (the published
    fine-tune priced 8 of its 250 items so, e.g. $2.51), and this judgement
    refuses those; it costs an answer there, never a wrong one."""
    numeric = [text.strip() for text, _ in candidates if token_number(text) is not None]
    return bool(numeric) and all(len(t) == 1 and t.isdigit() for t in numeric)


def top_k_price(candidates: Sequence[tuple[str, float]], numbers_whole: bool | None = None,
                ) -> tuple[float | None, str | None]:
    """The rule: (price, None), or (None, None) when no candidate is a number.

    ``numbers_whole`` is the tokenizer's verdict, decided once per model: True,
    the weighted mean whatever the candidates (a $4 item whose top tokens are
    "4", "2", "1" is priced, as published); False, (None, DIGIT_SPLIT) for
    every item. None (nobody could ask the tokenizer) falls back to judging
    each item: (None, DIGIT_SPLIT) when its candidates show digit splitting."""
    if numbers_whole is False or (numbers_whole is None and looks_digit_split(candidates)):
        return None, DIGIT_SPLIT
    return weighted_price(candidates), None


def probe_text(number: str) -> str:
    """The text a tokenizer is asked about: a price as the training rows end."""
    return f"Price is ${number}.00"


def numbers_are_whole_tokens(pieces: Callable[[str], Sequence[str]]) -> bool:
    """Does a tokenizer keep a price's dollars as one token after ``Price is $``?

    ``pieces(text)`` returns the decoded text of each token of ``text`` (no
    special tokens). True when every probe price comes out as one token."""
    for number in PROBES:
        tokens = [p.strip() for p in pieces(probe_text(number))]
        if number not in tokens:
            return False
    return True


def numbers_whole_by_count(counts: Mapping[str, int]) -> bool:
    """The same question answered from token counts alone (what every server's
    tokenize endpoint returns): ``counts[number]`` is the number of tokens of
    ``probe_text(number)`` for each of ``PROBES``. Whole when "$7.00" and
    "$374.00" take as many tokens (a single digit is one token everywhere, so
    "374" then is one too); a tokenizer that splits digits needs two more."""
    missing = [n for n in PROBES if n not in counts]
    if missing:
        raise ValueError(f"no token count for {', '.join(missing)}")
    return len({counts[n] for n in PROBES}) == 1
