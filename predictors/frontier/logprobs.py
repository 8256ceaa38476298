"""``openai-logprobs[:MODEL]``: the fine-tuned model's top-k price, from an
OpenAI-compatible *completions* server that returns top log-probabilities
(vLLM serving Llama 3.1 8B with the pricer LoRA adapter).

The full test prompt (ending ``Price is $``) is sent as the completion prompt
for one token; the price is the probability-weighted mean of the numeric
tokens among the top k next tokens (``predictors.topk``, the same rule as the local
QLoRA predictor). Whether the served tokenizer keeps numbers whole is asked of
the server once per run, in ``prepare()`` (``tokenizer_probe``: vLLM's and
llama.cpp's tokenize endpoints), recorded in run.json's details and kept in
the response cache; only where no such endpoint answers is each item judged by
its own top tokens. It is a separate name rather than a mode of ``openai``
because it is a different prompt, endpoint and parser, and because it must
only run where such a server is named: ``LOGPROBS_BASE_URL`` or
``--param base_url=`` (never OpenAI's own API, which has no such model).
"""

from __future__ import annotations

import json
import math
import sys
from typing import Any

from bench.errors import BenchError
from bench.redact import public_url
from bench.registry import register
from bench.types import Product
from predictors.frontier import tokenizer_probe
from predictors.frontier.base import ApiPredictor, Reply, fast_create, usage_tokens
from predictors.frontier.tokenizer_probe import Verdict
from predictors.topk import PROBES, top_k_price

DEFAULT_TOP_K = 3


@register("openai-logprobs", kind="local-llm", variant="model",
          summary="fine-tuned model on a vLLM/OpenAI-compatible server: top-k weighted price")
class OpenAILogprobs(ApiPredictor):
    """Top-k log-probability price from an OpenAI-compatible completions server."""

    registry_name = "openai-logprobs"
    sdk = "openai"
    url_env = "LOGPROBS_BASE_URL"
    default_url = None
    default_api_key_env = "LOGPROBS_API_KEY"
    default_concurrency = 16

    def __init__(
        self,
        model: str = "pricer",
        *,
        top_k: int = DEFAULT_TOP_K,
        seed: int = 42,
        **settings: Any,  # RequestSettings (base_url, api_key_env, timeout, ...) and ctx
    ):
        super().__init__(model, **settings)
        if not 1 <= top_k <= 20:  # vLLM's default --max-logprobs is 20
            raise ValueError(f"top_k must be between 1 and 20, not {top_k}")
        self.top_k = top_k
        self.seed = seed
        self.tokenizer: Verdict | None = None  # asked in prepare()

    def output_params(self) -> dict[str, Any]:
        return {"prompt": "test prompt", "top_k": self.top_k, "seed": self.seed}

    def request(self, product: Product) -> dict[str, Any]:
        return {"model": self.model, "prompt": product.prompt, "max_tokens": 1,
                "temperature": 0, "logprobs": self.top_k, "seed": self.seed}

    def make_client(self, api_key: str, base_url: str) -> Any:
        import openai

        return openai.OpenAI(api_key=api_key, base_url=base_url, timeout=self.settings.timeout,
                             max_retries=0)

    def send(self, client: Any, request: dict[str, Any]) -> Reply:
        from openai.types import Completion

        response = fast_create(client, "/completions", request, Completion)
        if not response.choices:
            raise ValueError("the server returned no choices")
        choice = response.choices[0]
        logprobs = choice.logprobs
        top = (logprobs.top_logprobs or [None])[0] if logprobs is not None else None
        if not top:
            # A configuration problem (no logprobs support), not an answer: not cached.
            raise ValueError("the server returned no top log-probabilities: it must be a "
                             "completions server with logprobs (vLLM: --max-logprobs)")
        ranked = sorted(((str(t), float(lp)) for t, lp in top.items()), key=lambda c: -c[1])
        tokens_in, tokens_out = usage_tokens(response.usage, "prompt_tokens", "completion_tokens")
        return {"text": choice.text, "top": [list(c) for c in ranked],
                "input_tokens": tokens_in, "output_tokens": tokens_out}

    def candidates(self, reply: Reply) -> list[tuple[str, float]]:
        """The top k (token, probability) pairs, most probable first. vLLM may
        also return the sampled token beyond the k asked for: cut to k."""
        return [(tok, math.exp(lp)) for tok, lp in reply.get("top", [])[: self.top_k]]

    # -- the served tokenizer, asked once per run -----------------------------------

    def prepare(self) -> None:
        """The client(s), then the server's tokenizer verdict: from the
        response cache, else asked (``tokenizer_probe``). A tokenizer that
        splits numbers into digits refuses the run here, before any item."""
        super().prepare()
        self.tokenizer = self.ask_tokenizer()
        verdict = self.tokenizer
        if verdict.numbers_whole is False:
            counts = verdict.token_counts or {}
            raise BenchError(
                f"{self.name}: the served model's tokenizer splits numbers into digits "
                f"({verdict.server} at {verdict.asked}: \"Price is $374.00\" is "
                f"{counts.get('374')} tokens, \"Price is $7.00\" {counts.get('7')}), so the "
                "top-k rule would average digits, not prices; generate the number instead "
                f"(openai:{self.model} at the same server)")
        if verdict.numbers_whole is None:
            print(f"{self.name}: no tokenize endpoint answered, so each item is judged by "
                  "its own top tokens (all single digits: refused as digit split)",
                  file=sys.stderr)

    def tokenizer_parts(self) -> dict[str, Any]:
        # Like an item's key: the model, the server identity (no replica), the probes.
        return {"predictor": self.registry_name, "version": self.version,
                "endpoint": self.endpoint, "tokenizer_probe": {"model": self.model,
                                                               "probes": list(PROBES)}}

    def ask_tokenizer(self) -> Verdict:
        cached = self.responses.get(self.tokenizer_parts())
        if cached is not None:
            return Verdict.from_cached(cached)
        assert self.fleet is not None  # prepare() checked there is a server

        def post_to(replica: Any) -> tokenizer_probe.Post:
            return lambda url, body: self.client(replica).post(url, body=body, cast_to=object)

        verdict = tokenizer_probe.ask(
            [(tokenizer_probe.server_root(r.url),
              tokenizer_probe.server_root(public_url(r.url)), post_to(r))
             for r in self.fleet.live()], self.model)
        if verdict.numbers_whole is not None:  # an answer, never "nobody answered"
            self.responses.put(self.tokenizer_parts(), verdict.cached())
        return verdict

    def run_details(self) -> dict[str, Any] | None:
        details = dict(super().run_details() or {})
        if self.tokenizer is not None:
            details["tokenizer"] = self.tokenizer.details()
        return details or None

    # -- one reply ----------------------------------------------------------------------

    def interpret(self, reply: Reply) -> tuple[float | None, str | None, str | None]:
        top = [[tok, round(lp, 6)] for tok, lp in reply.get("top", [])[: self.top_k]]
        verdict = self.tokenizer.numbers_whole if self.tokenizer is not None else None
        price, why = top_k_price(self.candidates(reply), verdict)
        raw = json.dumps(top, ensure_ascii=False)
        if price is None and why is None:
            why = f"no numeric token in the top {self.top_k}"
        return price, raw, why

    def max_output_tokens(self, request: dict[str, Any]) -> int:
        return 1
