"""``openai[:MODEL]``: chat completions through the official openai SDK, on
OpenAI or on any OpenAI-compatible server (vLLM, Ollama, LM Studio,
llama.cpp) named by ``OPENAI_BASE_URL`` or ``--param base_url=``."""

from __future__ import annotations

import re
from typing import Any

from bench import prompts
from bench.registry import register
from bench.types import Product
from predictors.frontier import prompt
from predictors.frontier.base import ApiPredictor, Reply, fast_create, usage_tokens

# Reasoning models take max_completion_tokens (max_tokens is refused) and
# spend part of it thinking: give them a bigger --param max_tokens.
_REASONING = re.compile(r"^(o\d|gpt-5)")


@register("openai", kind="frontier", variant="model",
          summary="OpenAI chat model (or any OpenAI-compatible server), the published prompt")
class OpenAIChat(ApiPredictor):
    """OpenAI chat completions with the published prompt and prefill."""

    registry_name = "openai"
    sdk = "openai"
    url_env = "OPENAI_BASE_URL"
    default_url = "https://api.openai.com/v1"
    default_api_key_env = "OPENAI_API_KEY"
    default_concurrency = 16

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        seed: int = 42,
        max_tokens: int = 5,
        temperature: float | None = None,
        **settings: Any,  # RequestSettings (base_url, api_key_env, timeout, ...) and ctx
    ):
        super().__init__(model, **settings)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, not {max_tokens}")
        self.seed = seed
        self.max_tokens = max_tokens
        self.temperature = temperature

    def output_params(self) -> dict[str, Any]:
        return {"system": prompt.SYSTEM_MESSAGE, "prefill": prompt.PREFILL, "seed": self.seed,
                "max_tokens": self.max_tokens, "temperature": self.temperature}

    def request(self, product: Product) -> dict[str, Any]:
        budget = "max_completion_tokens" if _REASONING.match(self.model) else "max_tokens"
        body: dict[str, Any] = {"model": self.model, "messages": prompt.chat_messages(product),
                                "seed": self.seed, budget: self.max_tokens}
        if self.temperature is not None:
            body["temperature"] = self.temperature
        return body

    def make_client(self, api_key: str, base_url: str) -> Any:
        import openai

        # max_retries=0: our retry loop is the only one (and is tested).
        return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=self.settings.timeout,
                             max_retries=0)

    def send(self, client: Any, request: dict[str, Any]) -> Reply:
        from openai.types.chat import ChatCompletion

        response = fast_create(client, "/chat/completions", request, ChatCompletion)
        if not response.choices:
            raise ValueError("the server returned no choices")
        text = response.choices[0].message.content or ""
        tokens_in, tokens_out = usage_tokens(response.usage, "prompt_tokens", "completion_tokens")
        return {"text": text, "input_tokens": tokens_in, "output_tokens": tokens_out}

    def interpret(self, reply: Reply) -> tuple[float | None, str | None, str | None]:
        text = reply.get("text")
        price = prompts.parse_price(text)
        return price, text, None if price is not None else "no number in the reply"
