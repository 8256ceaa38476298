"""``anthropic[:MODEL]``: the messages API through the official anthropic SDK
(``ANTHROPIC_BASE_URL`` / ``--param base_url=`` for a compatible gateway).

The published prompt puts ``Price is $`` as the last assistant turn (a
prefill). Claude 4.6 and later refuse prefills with a 400, and Claude 5 models
think by default (which would spend the 5-token budget), so for those the
prefill is left out and thinking is switched off; ``--param prefill=true|false``
overrides the choice (a 400 refusing the prefill stops the run's requests).
"""

from __future__ import annotations

import re
from typing import Any

from bench import prompts
from bench.registry import register
from bench.types import Product
from predictors.frontier import prompt
from predictors.frontier.base import ApiPredictor, Reply, usage_tokens
from predictors.frontier.retry import status_of

DEFAULT_MODEL = "claude-sonnet-5-5"
# claude-sonnet-4-5, claude-opus-4-5-20251101, claude-sonnet-5, claude-3-5-sonnet-20240620
_GENERATION = re.compile(r"^claude-(?:[a-z]+-)?(\d+)(?:-(\d{1,2}))?(?:-|$)")
FIRST_WITHOUT_PREFILL = (4, 6)
# Without a prefill the reply carries its own "$" and separators: "$1,234.56".
MAX_TOKENS_PREFILLED, MAX_TOKENS_PLAIN = 5, 10


def generation(model: str) -> tuple[int, int] | None:
    match = _GENERATION.match(model)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2) or 0)


def takes_prefill(model: str) -> bool:
    """Whether a model accepts a last assistant turn. Unknown Claude names are
    taken as new (no prefill); non-Claude models behind a gateway get the
    published prompt."""
    gen = generation(model)
    if gen is None:
        return not model.startswith("claude")
    return gen < FIRST_WITHOUT_PREFILL


@register("anthropic", kind="frontier", variant="model",
          summary="Anthropic Claude (messages API), the published prompt")
class AnthropicMessages(ApiPredictor):
    """Anthropic messages API with the published system message and prefill."""

    registry_name = "anthropic"
    sdk = "anthropic"
    url_env = "ANTHROPIC_BASE_URL"
    default_url = "https://api.anthropic.com"
    default_api_key_env = "ANTHROPIC_API_KEY"
    default_concurrency = 8

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        *,
        prefill: bool | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        **settings: Any,  # RequestSettings (base_url, api_key_env, timeout, ...) and ctx
    ):
        super().__init__(model, **settings)
        self.prefill = takes_prefill(model) if prefill is None else prefill
        default_budget = MAX_TOKENS_PREFILLED if self.prefill else MAX_TOKENS_PLAIN
        self.max_tokens = max_tokens if max_tokens is not None else default_budget
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {self.max_tokens}")
        self.temperature = temperature
        gen = generation(model)
        # Explicitly off where thinking exists and may be on by default.
        self.thinking_off = (gen is None and model.startswith("claude")) or (
            gen is not None and gen >= FIRST_WITHOUT_PREFILL)

    def output_params(self) -> dict[str, Any]:
        return {"system": prompt.SYSTEM_MESSAGE,
                "prefill": prompt.PREFILL if self.prefill else None,
                "max_tokens": self.max_tokens, "temperature": self.temperature,
                "thinking_off": self.thinking_off}

    def request(self, product: Product) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "system": prompt.SYSTEM_MESSAGE,
            "messages": prompt.chat_messages(product, system=False, prefill=self.prefill),
            "max_tokens": self.max_tokens,
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.thinking_off:
            body["thinking"] = {"type": "disabled"}
        return body

    def make_client(self, api_key: str, base_url: str) -> Any:
        import anthropic

        # max_retries=0: our retry loop is the only one (and is tested).
        return anthropic.Anthropic(api_key=api_key, base_url=base_url,
                                   timeout=self.settings.timeout, max_retries=0)

    def send(self, client: Any, request: dict[str, Any]) -> Reply:
        response = client.messages.create(**request)
        # Select text blocks by type: thinking blocks may come first.
        text = "".join(getattr(b, "text", "") for b in response.content
                       if getattr(b, "type", None) == "text")
        tokens_in, tokens_out = usage_tokens(response.usage, "input_tokens", "output_tokens")
        return {"text": text, "input_tokens": tokens_in, "output_tokens": tokens_out}

    def fatal(self, exc: BaseException) -> bool:
        # A model that refuses prefills refuses them for every item.
        return super().fatal(exc) or (status_of(exc) == 400 and "prefill" in str(exc).lower())

    def interpret(self, reply: Reply) -> tuple[float | None, str | None, str | None]:
        text = reply.get("text")
        price = prompts.parse_price(text)
        return price, text, None if price is not None else "no number in the reply"
