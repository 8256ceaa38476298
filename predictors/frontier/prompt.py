"""The published frontier prompt (see the data README): a system message, the
test prompt without " to the nearest dollar" and without its price line, then
``Price is $`` as the start of the assistant's reply (a prefill)."""

from __future__ import annotations

from typing import Any

from bench import prompts
from bench.types import Product

SYSTEM_MESSAGE = "You estimate prices of items. Reply only with the price, no explanation"
PREFILL = prompts.PRICE_PREFIX


def user_message(product: Product) -> str:
    return prompts.frontier_user_prompt(product.prompt)


def chat_messages(product: Product, *, system: bool = True,
                  prefill: bool = True) -> list[dict[str, Any]]:
    """OpenAI-style messages; Anthropic takes the system message separately."""
    messages: list[dict[str, Any]] = []
    if system:
        messages.append({"role": "system", "content": SYSTEM_MESSAGE})
    messages.append({"role": "user", "content": user_message(product)})
    if prefill:
        messages.append({"role": "assistant", "content": PREFILL})
    return messages
