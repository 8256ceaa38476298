"""The published prompt format, and parsing a price out of model text."""

from __future__ import annotations

import re

QUESTION = "How much does this cost to the nearest dollar?"
PRICE_PREFIX = "Price is $"
_NUMBER = re.compile(r"[-+]?\d*\.?\d+")


def test_prompt(text: str) -> str:
    """The hub's training ``text`` cut just after ``Price is $``."""
    cut = text.rfind(PRICE_PREFIX)
    if cut < 0:
        raise ValueError(f"no {PRICE_PREFIX!r} in the text")
    return text[: cut + len(PRICE_PREFIX)]


def description(text: str) -> str:
    """Title line plus body: the question header and the price line removed."""
    body = test_prompt(text)[: -len(PRICE_PREFIX)]
    if body.startswith(QUESTION):
        body = body[len(QUESTION) :]
    return body.strip()


def title(description_text: str) -> str:
    return description_text.split("\n", 1)[0].strip()


def frontier_user_prompt(prompt: str) -> str:
    """The frontier user message: the test prompt without " to the nearest
    dollar" and without the trailing price line (sent as a prefill instead)."""
    body = prompt.replace(" to the nearest dollar", "")
    suffix = "\n\n" + PRICE_PREFIX
    if body.endswith(suffix):
        body = body[: -len(suffix)]
    elif body.endswith(PRICE_PREFIX):
        body = body[: -len(PRICE_PREFIX)].rstrip()
    return body


def parse_price(text: str | None) -> float | None:
    """The published rule: drop ``$`` and ``,``, take the first number.

    Unlike the notebooks (which return 0), no number means no answer: None.
    """
    if not text:
        return None
    match = _NUMBER.search(text.replace("$", "").replace(",", ""))
    if match is None:
        return None
    return float(match.group())
