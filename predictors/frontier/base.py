"""What every API predictor shares: the response cache, retries, the rate cap,
token and cost accounting, dry-run estimates, and keeping keys secret.

A subclass says how to build one item's request body, how to send it with its
SDK (returning a JSON-able raw reply), and how to read a price out of a raw
reply. Raw replies are cached, keyed by the exact request body plus the
server it goes to, so a cache hit is re-parsed: a parser change needs no new
calls. Errors are never cached and never raised out of ``predict_one``.
``base_url`` may name several replicas of one model (``replicas.Fleet``):
requests are spread over them, and none of their URLs is in a key.

The settings every API predictor takes (server, key variable, timeout,
retries, rate cap, prices) are declared once, in ``RequestSettings``; a
subclass declares only the model and its own output-shaping parameters, and
the shared ones join its signature (so each stays a typed ``--param``).
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import threading
import time
import typing
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from bench.cache import ResponseCache
from bench.errors import BenchError
from bench.redact import public_url, scrub
from bench.types import BasePredictor, Prediction, Product
from predictors.frontier import pricing
from predictors.frontier.replicas import FLEET_ENDPOINT, Fleet, Replica, split_urls
from predictors.frontier.retry import (
    Outcome,
    RetryPolicy,
    TokenBucket,
    call_with_retries,
    is_fatal,
    refused,
)

# Per-message framing tokens added by chat APIs (role markers), for estimates.
MESSAGE_OVERHEAD_TOKENS = 4
PLACEHOLDER_KEY = "EMPTY"  # what local OpenAI-compatible servers accept (vLLM docs)
_MAX_ERROR_CHARS = 400

Reply = dict[str, Any]  # text, input_tokens, output_tokens, latency_s, (+ extras)


@dataclass(frozen=True, kw_only=True)
class RequestSettings:
    """How an API predictor reaches its server and paces its calls, shared by
    every frontier predictor. Each field is also a constructor parameter (and
    so a ``--param``) of every ``ApiPredictor`` subclass; none of them shapes an
    answer, so only the server (``base_url``, resolved) is in a cache key, and
    of several replicas (``base_url=URL1,URL2``) none is."""

    base_url: str | None = None  # None: url_env, then default_url; "URL1,URL2": replicas
    api_key_env: str  # the environment variable holding the key (keys are never params)
    timeout: float = 60.0  # seconds per request
    max_retries: int = 6
    backoff: float = 1.0  # first wait between retries; doubles, with jitter
    max_backoff: float = 60.0
    rpm: float | None = None  # requests-per-minute cap shared by all threads
    price_in: float | None = None  # USD per million input tokens (default: the price table)
    price_out: float | None = None  # USD per million output tokens

    def __post_init__(self) -> None:
        if (self.timeout <= 0 or self.max_retries < 0 or self.backoff < 0
                or self.max_backoff < 0):
            raise ValueError("timeout must be > 0; max_retries, backoff, max_backoff >= 0")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries, backoff=self.backoff,
                           max_backoff=self.max_backoff)


F = TypeVar("F", bound=Callable[..., Any])

# Which server and which key: listed before a predictor's own parameters (the
# other settings after them), as each predictor used to declare them.
_LEADING_SETTINGS = ("base_url", "api_key_env")


def request_settings(*, api_key_env: str | None) -> Callable[[F], F]:
    """For a factory ``f(model, *, OWN..., **settings)`` that builds an API
    predictor: the same joined signature, ``api_key_env`` defaulting to the one
    given (None: the predictor's own)."""
    def expose(fn: F) -> F:
        expose_settings(fn, api_key_env)
        return fn
    return expose


def expose_settings(init: Callable[..., Any], api_key_env: str | None) -> None:
    """Give ``init(model, *, OWN..., **settings)`` (an ``ApiPredictor``
    subclass's ``__init__``, or a factory) the signature and type hints of its
    full parameter list: its own parameters plus every ``RequestSettings`` field
    and ``ctx``, each with its type and default (``api_key_env``: the one
    given). The registry converts ``--param`` strings by these, and lists them
    in errors."""
    signature = inspect.signature(init)
    own = [p for p in signature.parameters.values() if p.kind is not p.VAR_KEYWORD]
    if len(own) == len(signature.parameters):
        return  # declares every parameter itself: nothing to add
    hints = {k: v for k, v in typing.get_type_hints(init).items() if k != "return"}
    setting_hints = typing.get_type_hints(RequestSettings)
    if api_key_env is None:
        setting_hints["api_key_env"] = str | None  # type: ignore[assignment]
    leading: list[inspect.Parameter] = []
    trailing: list[inspect.Parameter] = []
    declared = {p.name for p in own}
    for f in fields(RequestSettings):
        if f.name in declared:  # a subclass that names a setting itself keeps its own
            continue
        default = api_key_env if f.name == "api_key_env" else f.default
        param = inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=default,
                                  annotation=setting_hints[f.name])
        (leading if f.name in _LEADING_SETTINGS else trailing).append(param)
    positional = [p for p in own if p.kind is not p.KEYWORD_ONLY]
    keyword = [p for p in own if p.kind is p.KEYWORD_ONLY and p.name != "ctx"]
    ctx = next((p for p in own if p.name == "ctx"), None) or inspect.Parameter(
        "ctx", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Any)
    init.__signature__ = signature.replace(
        parameters=[*positional, *leading, *keyword, *trailing, ctx])
    init.__annotations__ = {**hints, **setting_hints, "ctx": Any}


class ApiPredictor(BasePredictor):
    """Base for per-item API predictors (the runner fans ``predict_one`` out).

    A subclass's ``__init__`` declares the model and its own output-shaping
    parameters and passes ``**settings`` on: the shared ``RequestSettings``
    (and ``ctx``) join its signature automatically.
    """

    registry_name: ClassVar[str]
    sdk: ClassVar[str]  # the import name of the official SDK
    url_env: ClassVar[str]  # the environment variable naming a custom server
    default_url: ClassVar[str | None]  # None: a server must be named
    default_api_key_env: ClassVar[str]  # the key's environment variable unless overridden
    # Bump when the request shape or prompt changes: it is in every cache key.
    version: ClassVar[int] = 1
    default_concurrency: int = 8

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            expose_settings(cls.__dict__["__init__"], cls.default_api_key_env)

    def __init__(self, model: str, *, ctx: Any = None, **settings: Any):
        if not model:
            raise ValueError("model must not be empty")
        settings.setdefault("api_key_env", self.default_api_key_env)
        unknown = sorted(set(settings) - {f.name for f in fields(RequestSettings)})
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected parameters: "
                            f"{', '.join(unknown)}")
        self.settings = RequestSettings(**settings)
        self.model = model
        self.name = f"{self.registry_name}:{model}"
        url = self.settings.base_url or os.environ.get(self.url_env) or self.default_url
        self.base_url = url or None  # resolved: argument, environment, provider
        self.fleet = (Fleet(split_urls(url), label=self.name,
                            describe=lambda exc: self.describe(exc, None)) if url else None)
        # The server identity in fingerprints and cache keys: one server's URL;
        # for replicas of one model, none of theirs (any of them may answer).
        self.endpoint = (None if self.fleet is None else FLEET_ENDPOINT if self.fleet.several
                         else public_url(url))
        self.policy = self.settings.retry_policy()
        self.limiter = TokenBucket(self.settings.rpm) if self.settings.rpm else None
        self.responses: ResponseCache = ctx.responses if ctx is not None else ResponseCache(None)
        self._client: Any = None
        self._client_lock = threading.Lock()
        self._fatal: str | None = None  # set once every later call would fail too

    # -- what a subclass provides ------------------------------------------------

    def request(self, product: Product) -> dict[str, Any]:
        """The exact request body (SDK keyword arguments) for one item."""
        raise NotImplementedError

    def make_client(self, api_key: str, base_url: str) -> Any:
        """An SDK client for the server at ``base_url`` (one per replica)."""
        raise NotImplementedError

    def send(self, client: Any, request: dict[str, Any]) -> Reply:
        """One call; the reply as JSON-able data (text, input/output tokens)."""
        raise NotImplementedError

    def interpret(self, reply: Reply) -> tuple[float | None, str | None, str | None]:
        """(price or None, raw text to keep, why there is no price)."""
        raise NotImplementedError

    def output_params(self) -> dict[str, Any]:
        """Parameters that shape the answers (for the fingerprint)."""
        return {}

    def fatal(self, exc: BaseException) -> bool:
        """Whether every later item would fail the same way (stop sending): a
        refused connection only once no live replica is left to ask."""
        if refused(exc) and self.fleet is not None and not self.fleet.all_refused():
            return False
        return is_fatal(exc)

    def max_output_tokens(self, request: dict[str, Any]) -> int:
        return int(request.get("max_tokens") or request.get("max_completion_tokens") or 0)

    # -- capabilities the harness discovers --------------------------------------

    def api_key(self) -> str | None:
        key = os.environ.get(self.settings.api_key_env)
        if key:
            return key
        default = public_url(self.default_url) if self.default_url else None
        custom = self.endpoint is not None and self.endpoint != default
        return PLACEHOLDER_KEY if custom else None

    def unavailable(self) -> str | None:
        if importlib.util.find_spec(self.sdk) is None:
            return f"the {self.sdk} package is missing: pip install 'pricer-bench[frontier]'"
        if self.endpoint is None:
            return (f"no server: set {self.url_env} or --param base_url=http://HOST:PORT/v1")
        if self.api_key() is None:
            return (f"set {self.settings.api_key_env} (or point {self.url_env} / --param base_url= "
                    "at a compatible server)")
        return None

    @property
    def item_timeout_s(self) -> float:  # type: ignore[override]
        """The runner's time limit per item: every attempt's timeout and the
        longest waits between them (backoff or a server's Retry-After), plus a
        minute; an item past it is recorded as timed out."""
        s = self.settings
        wait = max(s.max_backoff, self.policy.max_retry_after)
        return (s.max_retries + 1) * s.timeout + s.max_retries * wait + 60.0

    def fingerprint(self) -> dict[str, Any]:
        return {"version": self.version, "model": self.model, "endpoint": self.endpoint,
                **self.output_params()}

    def prepare(self) -> None:
        reason = self.unavailable()
        if reason:
            raise BenchError(f"{self.name}: {reason}")
        # The client and its SDK (about a second to import) are loading, not
        # predicting: where nothing of this predictor's is cached yet, every
        # request will be sent, so make the client now rather than with all
        # workers waiting on the first one. Otherwise it is made on the first
        # cache miss, so a fully cached rerun never loads it.
        if not self.responses.holds(self.registry_name) and self.fleet is not None:
            for replica in self.fleet.replicas:
                self.client(replica)

    def client(self, replica: Replica | None = None) -> Any:
        """The SDK client for ``replica`` (default: the first server), made once."""
        if self.fleet is None:
            raise BenchError(f"{self.name}: no server")
        replica = replica or self.fleet.replicas[0]
        with self._client_lock:
            if replica.client is None:
                key = self.api_key()
                if key is None:
                    raise BenchError(f"{self.name}: set {self.settings.api_key_env}")
                replica.client = self.make_client(key, replica.url)
            self._client = self._client or replica.client
            return replica.client

    # -- predicting ----------------------------------------------------------------

    def cache_parts(self, request: dict[str, Any]) -> dict[str, Any]:
        # Everything that shapes the reply: the full request body (model, prompt
        # with the item's text, output-affecting settings) and the server. Never
        # keys, timeouts, retries or concurrency.
        return {"predictor": self.registry_name, "version": self.version,
                "endpoint": self.endpoint, "request": request}

    def predict_one(self, product: Product) -> Prediction:
        try:
            request = self.request(product)
            parts = self.cache_parts(request)
            cached = self.responses.get(parts)
            if cached is not None:
                return self.prediction(cached)
            if self._fatal is not None:
                return Prediction.failed(f"not sent: {self._fatal}")
            outcome = self._call(request)
            if outcome.error is not None:
                message = self.describe(outcome.error, outcome.attempts)
                if self.fatal(outcome.error):
                    self._fatal = message
                return Prediction.failed(message)
            reply: Reply = outcome.value
            self.responses.put(parts, reply)
            return self.prediction(reply)
        except Exception as exc:  # a bug or a broken reply: one no-answer, not a crash
            return Prediction.failed(self.describe(exc, None))

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        with ThreadPoolExecutor(max_workers=self.default_concurrency) as pool:
            return list(pool.map(self.predict_one, products))

    def _call(self, request: dict[str, Any]) -> Outcome:
        """Send one request with retries, each attempt to a replica of the
        fleet (to the one server, where there is one): after a failed attempt
        the next goes to another live replica at once, without backoff."""
        fleet = self.fleet
        if fleet is None:
            raise BenchError(f"{self.name}: no server")
        failed_on: list[Replica | None] = [None]

        def attempt() -> Reply:
            replica = fleet.acquire(avoid=failed_on[0])
            try:
                reply = self._timed_send(self.client(replica), request)
            except BaseException as exc:
                fleet.release(replica, exc)
                failed_on[0] = replica
                raise
            fleet.release(replica)
            if fleet.several:
                reply["served_by"] = replica.public
            return reply

        return call_with_retries(attempt, self.policy, self.limiter,
                                 retry_now=lambda exc: fleet.another_live(failed_on[0]))

    def run_details(self) -> dict[str, Any] | None:
        """run.json's ``details``: for replicas, what each answered and failed."""
        return self.fleet.details() if self.fleet is not None and self.fleet.several else None

    def _timed_send(self, client: Any, request: dict[str, Any]) -> Reply:
        start = time.perf_counter()
        reply = self.send(client, request)
        reply["latency_s"] = round(time.perf_counter() - start, 4)
        return reply

    def prediction(self, reply: Reply) -> Prediction:
        """A Prediction from a raw reply, fresh or cached (re-parsed either way).

        Tokens and cost are those of the call that produced the reply, so a
        cached rerun reports what its answers cost, not $0.
        """
        price, raw, why = self.interpret(reply)
        tokens_in, tokens_out = reply.get("input_tokens"), reply.get("output_tokens")
        return Prediction(
            price=price, raw=raw, error=None if price is not None else why,
            latency_s=reply.get("latency_s"), input_tokens=tokens_in, output_tokens=tokens_out,
            cost_usd=pricing.cost_usd(self.model, tokens_in, tokens_out,
                                      self.settings.price_in, self.settings.price_out),
            served_by=reply.get("served_by"),
        )

    def describe(self, exc: BaseException, attempts: int | None) -> str:
        text = f"{type(exc).__name__}: {exc}"
        if refused(exc):
            text += f" (connection refused: nothing listens at {self.endpoint})"
        if attempts and attempts > 1:
            text += f" (after {attempts} attempts)"
        passwords = [urlsplit(r.url).password for r in self.fleet.replicas] if self.fleet else []
        return scrub(text, [os.environ.get(self.settings.api_key_env), *passwords]
                     )[:_MAX_ERROR_CHARS]

    # -- dry run -------------------------------------------------------------------

    def input_text(self, request: dict[str, Any]) -> list[str]:
        """The texts a request sends (for token estimates)."""
        texts = [str(m.get("content", "")) for m in request.get("messages", [])]
        if "system" in request:
            texts.append(str(request["system"]))
        if "prompt" in request:
            texts.append(str(request["prompt"]))
        return texts

    def estimate(self, products: Sequence[Product]) -> dict[str, Any]:
        """Requests, tokens and dollars a run would cost; nothing is sent.

        Input tokens ~ characters / 4 plus a few per message; output tokens =
        the reply budget (max_tokens), an upper bound. Items already in the
        response cache need no request and are left out.
        """
        requests = input_tokens = output_tokens = cached = 0
        for product in products:
            request = self.request(product)
            if self.responses.get(self.cache_parts(request)) is not None:
                cached += 1
                continue
            texts = self.input_text(request)
            requests += 1
            input_tokens += sum(pricing.estimate_tokens(t) for t in texts)
            input_tokens += MESSAGE_OVERHEAD_TOKENS * len(texts)
            output_tokens += self.max_output_tokens(request)
        cost = pricing.cost_usd(self.model, input_tokens, output_tokens, self.settings.price_in,
                                self.settings.price_out) if requests else 0.0
        return {"requests": requests, "input_tokens": input_tokens,
                "output_tokens": output_tokens, "cost_usd": cost, "cached": cached}


def fast_create(client: Any, path: str, body: dict[str, Any], cast_to: type) -> Any:
    """What ``create(**body)`` of the official SDK returns (the typed reply
    ``cast_to``), sent with ``client.post``, the SDK's documented call for any
    endpoint: the same JSON body, headers, timeout and error types, without
    ``create()``'s per-call transform of its forty-odd parameters. That
    transform is the identity for the plain JSON bodies built here (checked
    against ``create()`` in tests/test_frontier.py) and took a third of a
    request's client-side CPU, which 16 threads queue for under the GIL."""
    return client.post(path, body=body, cast_to=cast_to)


def usage_tokens(usage: Any, input_field: str, output_field: str) -> tuple[int | None, int | None]:
    """(input, output) tokens from an SDK usage object; servers may omit it."""
    if usage is None:
        return None, None
    return getattr(usage, input_field, None), getattr(usage, output_field, None)
