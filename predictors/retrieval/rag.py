"""``rag[:MODEL]``: a chat model shown the k most similar training products
and their prices before the question (the course's week-8 frontier agent).

The request is the frontier predictors' own (system message, ``Price is $``
prefill, seed 42, 5 output tokens), with the user message replaced by::

    To provide some context, here are some other items that might be similar
    to the item you need to estimate.

    Potentially related product:
    <description>
    Price is $<price to the cent>

    ... (k of them, most similar first)
    And now the question for you:

    How much does this cost?

    <the item's description>

Neighbours come from the training rows only (test rows are dropped by the data
layer). ``k``, the embedding model and the training rows' fingerprint are part
of the predictor's fingerprint and of every cache key. The backend follows the
model name (``claude-*``: Anthropic; anything else: OpenAI or the server named
by ``OPENAI_BASE_URL`` / ``--param base_url=``), or ``--param backend=``.
Each stored prediction's ``raw`` is JSON with the messages sent and the reply.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

from bench.errors import BenchError
from bench.registry import register
from bench.types import Prediction, Product
from predictors.frontier import prompt
from predictors.frontier.base import request_settings
from predictors.frontier.chat import OpenAIChat
from predictors.frontier.messages import AnthropicMessages
from predictors.retrieval import embeddings
from predictors.retrieval.embeddings import Embedder, document
from predictors.retrieval.index import TrainingIndex, build_index

CONTEXT_INTRO = ("To provide some context, here are some other items that might be similar "
                 "to the item you need to estimate.\n\n")
NEIGHBOUR = "Potentially related product:\n{description}\nPrice is ${price:.2f}\n\n"
QUESTION_INTRO = "And now the question for you:\n\n"
BACKENDS = ("openai", "anthropic")


def context_message(neighbours: Sequence[tuple[str, float]], product: Product) -> str:
    """The RAG user message: the neighbours (description, price), then the question."""
    text = CONTEXT_INTRO
    for description, price in neighbours:
        text += NEIGHBOUR.format(description=description, price=price)
    return text + QUESTION_INTRO + prompt.user_message(product)


class _Rag:
    """Mixed into a chat backend: the user message gets the retrieved context."""

    registry_name = "rag"
    # Bump with any change to the context prompt: it is in every cache key.
    rag_version = 1

    def _setup_rag(self, ctx: Any, k: int, embedding_model: str | None, include_extra: bool,
                   train_size: int | None, seed: int) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, not {k}")
        self.ctx = ctx
        self.k = k
        self.embedding_model = embedding_model
        self.include_extra = include_extra
        self.train_size = train_size
        self.train_seed = seed
        self._index: TrainingIndex | None = None
        self._index_lock = threading.Lock()
        self._rows_fp: str | None = None
        self._neighbours: dict[str, list[tuple[str, float]]] = {}
        self.embedder = Embedder(embedding_model, ctx.cache_dir if ctx is not None else None)

    # -- identity ------------------------------------------------------------------

    def training_examples(self) -> list[Any]:
        if self.ctx is None:
            raise BenchError(f"{self.name} needs a data context to find its training rows")
        examples, _ = self.ctx.train_examples(include_extra=self.include_extra,
                                              size=self.train_size, seed=self.train_seed)
        if not examples:
            raise BenchError(f"{self.name}: no training rows left")
        return examples

    def rows_fingerprint(self) -> str:
        if self._rows_fp is None:
            examples = self.training_examples()
            self._rows_fp = embeddings.fingerprint_rows(
                [document(e.product) for e in examples], [e.price for e in examples])
        return self._rows_fp

    def rag_params(self) -> dict[str, Any]:
        return {"version": self.rag_version, "k": self.k, "embedding": self.embedder.identity,
                "train_rows": self.rows_fingerprint(), "include_extra": self.include_extra,
                "train_size": self.train_size}

    def fingerprint(self) -> dict[str, Any]:
        return {**super().fingerprint(), "rag": self.rag_params()}  # type: ignore[misc]

    def cache_parts(self, request: dict[str, Any]) -> dict[str, Any]:
        return {**super().cache_parts(request), "rag": self.rag_params()}  # type: ignore[misc]

    # -- the harness's hooks ------------------------------------------------------------

    def unavailable(self) -> str | None:
        return (super().unavailable()  # type: ignore[misc]
                or embeddings.model_problem(self.embedding_model))

    def prepare(self) -> None:
        super().prepare()  # type: ignore[misc]
        self.index()

    def index(self) -> TrainingIndex:
        with self._index_lock:
            if self._index is None:
                models = self.ctx.models_dir if self.ctx is not None else None
                self._index = build_index(self.training_examples(), self.embedder, models)
            return self._index

    # -- the prompt -------------------------------------------------------------------

    def neighbours(self, product: Product) -> list[tuple[str, float]]:
        """(description, price) of the k most similar training products."""
        text = document(product)
        found = self._neighbours.get(text)
        if found is None:
            index = self.index()
            with self._index_lock:  # one embedding at a time: the model is shared
                pairs = index.neighbours([text], self.k)[0]
            found = [(document(index.examples[r].product), index.examples[r].price)
                     for r, _ in pairs]
            self._neighbours[text] = found
        return found

    def request(self, product: Product) -> dict[str, Any]:
        body = super().request(product)  # type: ignore[misc]
        user = context_message(self.neighbours(product), product)
        body["messages"] = [{**m, "content": user} if m.get("role") == "user" else m
                            for m in body["messages"]]
        return body

    def predict_one(self, product: Product) -> Prediction:
        prediction: Prediction = super().predict_one(product)  # type: ignore[misc]
        try:
            body = self.request(product)
        except Exception:  # the error is already the prediction's
            return prediction
        sent = {"system": body.get("system"), "messages": body["messages"]}
        raw = json.dumps({**{k: v for k, v in sent.items() if v is not None},
                          "reply": prediction.raw}, ensure_ascii=False)
        return Prediction(price=prediction.price, raw=raw, error=prediction.error,
                          latency_s=prediction.latency_s, input_tokens=prediction.input_tokens,
                          output_tokens=prediction.output_tokens, cost_usd=prediction.cost_usd)


class RagOpenAI(_Rag, OpenAIChat):
    """RAG through OpenAI chat completions (or any OpenAI-compatible server)."""

    def __init__(self, model: str, *, ctx: Any, k: int, embedding_model: str | None,
                 include_extra: bool, train_size: int | None, train_seed: int,
                 **backend: Any):
        OpenAIChat.__init__(self, model, ctx=ctx, **backend)
        self._setup_rag(ctx, k, embedding_model, include_extra, train_size, train_seed)


class RagAnthropic(_Rag, AnthropicMessages):
    """RAG through the Anthropic messages API."""

    def __init__(self, model: str, *, ctx: Any, k: int, embedding_model: str | None,
                 include_extra: bool, train_size: int | None, train_seed: int,
                 **backend: Any):
        AnthropicMessages.__init__(self, model, ctx=ctx, **backend)
        self._setup_rag(ctx, k, embedding_model, include_extra, train_size, train_seed)


@register("rag", kind="frontier", variant="model",
          summary="chat model shown the k most similar training products and their prices")
@request_settings(api_key_env=None)  # None: the backend's own key variable
def rag(
    model: str = "gpt-4o-mini",
    *,
    backend: str | None = None,
    k: int = 5,
    embedding_model: str | None = None,
    include_extra: bool = False,
    train_size: int | None = None,
    train_seed: int = 42,
    seed: int = 42,
    max_tokens: int | None = None,
    temperature: float | None = None,
    prefill: bool | None = None,
    ctx: Any = None,
    **settings: Any,  # RequestSettings (base_url, api_key_env, timeout, ...)
) -> RagOpenAI | RagAnthropic:
    """A chat model with the course's retrieval context (k nearest training products)."""
    chosen = backend or ("anthropic" if model.startswith("claude") else "openai")
    if chosen not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not {chosen!r}")
    common: dict[str, Any] = {"temperature": temperature, **settings}
    if common.get("api_key_env") is None:
        common.pop("api_key_env", None)
    rag_args: dict[str, Any] = {"ctx": ctx, "k": k, "embedding_model": embedding_model,
                                "include_extra": include_extra, "train_size": train_size,
                                "train_seed": train_seed}
    if chosen == "openai":
        if prefill is not None:
            raise ValueError("prefill applies to the anthropic backend only")
        return RagOpenAI(model, seed=seed, max_tokens=5 if max_tokens is None else max_tokens,
                         **common, **rag_args)
    return RagAnthropic(model, prefill=prefill, max_tokens=max_tokens, **common, **rag_args)
