"""The request settings all frontier predictors share, declared once
(``RequestSettings``): each is still a typed constructor parameter (so a
``--param``), and moving them changed no fingerprint and no cache key, so a
rerun hits the same cache and the same result folder. Needs no data."""

from __future__ import annotations

import dataclasses
import inspect
import typing
from typing import Any

import pytest

from bench import registry
from bench.errors import BenchError
from bench.types import Product
from predictors.frontier.base import RequestSettings
from predictors.frontier.chat import OpenAIChat
from predictors.frontier.logprobs import OpenAILogprobs
from predictors.frontier.messages import AnthropicMessages

SYSTEM = "You estimate prices of items. Reply only with the price, no explanation"
PRODUCT = Product(id="x1", title="T", description="T\nbody",
                  prompt="How much?\n\nT\nbody\n\nPrice is $", category="Toys")
USER = {"content": "How much?\n\nT\nbody", "role": "user"}
PREFILL = {"content": "Price is $", "role": "assistant"}

# Shared settings in the order each predictor declared them before: server and
# key first, its own parameters, then the rest.
TAIL = [("timeout", 60.0, float), ("max_retries", 6, int), ("backoff", 1.0, float),
        ("max_backoff", 60.0, float), ("rpm", None, float | None),
        ("price_in", None, float | None), ("price_out", None, float | None),
        ("ctx", None, Any)]


def _head(model: str, key_env: str) -> list[tuple[str, Any, Any]]:
    return [("model", model, str), ("base_url", None, str | None), ("api_key_env", key_env, str)]


SIGNATURES = {
    OpenAIChat: [*_head("gpt-4o-mini", "OPENAI_API_KEY"), ("seed", 42, int),
                 ("max_tokens", 5, int), ("temperature", None, float | None), *TAIL],
    AnthropicMessages: [*_head("claude-sonnet-5-5", "ANTHROPIC_API_KEY"),
                        ("prefill", None, bool | None), ("max_tokens", None, int | None),
                        ("temperature", None, float | None), *TAIL],
    OpenAILogprobs: [*_head("pricer", "LOGPROBS_API_KEY"), ("top_k", 3, int),
                     ("seed", 42, int), *TAIL],
}


@pytest.fixture(autouse=True)
def _no_real_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL", "LOGPROBS_BASE_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("cls", list(SIGNATURES), ids=lambda c: c.__name__)
def test_every_parameter_keeps_its_name_default_and_type(cls):
    signature = inspect.signature(cls)
    hints = typing.get_type_hints(cls.__init__)
    got = [(name, p.default, hints[name]) for name, p in signature.parameters.items()]
    assert got == SIGNATURES[cls]
    kinds = [p.kind for p in signature.parameters.values()]
    assert kinds[0] is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert set(kinds[1:]) == {inspect.Parameter.KEYWORD_ONLY}


def test_settings_are_declared_once():
    shared = [f.name for f in dataclasses.fields(RequestSettings)]
    assert shared == ["base_url", "api_key_env", "timeout", "max_retries", "backoff",
                      "max_backoff", "rpm", "price_in", "price_out"]
    for cls in SIGNATURES:
        source = inspect.getsource(cls.__init__)
        assert not any(f"{name}:" in source for name in shared), cls.__name__
    settings = OpenAIChat(timeout=3.0, rpm=5.0, price_in=1.0).settings
    assert settings == RequestSettings(api_key_env="OPENAI_API_KEY", timeout=3.0, rpm=5.0,
                                       price_in=1.0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.timeout = 1.0  # type: ignore[misc]


def test_params_convert_through_the_registry_into_the_settings():
    predictor = registry.build("openai:my-model", {
        "timeout": "3", "max_retries": "2", "rpm": "none", "price_in": "0.5",
        "api_key_env": "MY_KEY", "base_url": "http://127.0.0.1:9/v1", "seed": "7"})
    assert predictor.settings == RequestSettings(
        base_url="http://127.0.0.1:9/v1", api_key_env="MY_KEY", timeout=3.0, max_retries=2,
        price_in=0.5)
    assert predictor.seed == 7 and predictor.limiter is None
    assert predictor.policy.max_retries == 2
    with pytest.raises(BenchError, match="timeout='soon' is not a float"):
        registry.build("anthropic", {"timeout": "soon"})
    with pytest.raises(BenchError, match="timeout must be > 0"):
        registry.build("openai-logprobs", {"timeout": "0"})


def test_the_rag_factory_takes_the_same_settings_declared_once():
    from predictors.retrieval.rag import rag

    shared = [f.name for f in dataclasses.fields(RequestSettings)]
    assert set(shared) <= set(inspect.signature(rag).parameters)
    source = inspect.getsource(rag)
    assert not any(f"    {name}:" in source for name in shared)
    predictor = registry.build("rag:gpt-4o-mini", {"timeout": "3", "rpm": "60",
                                                   "base_url": "http://127.0.0.1:9/v1"})
    assert predictor.settings == RequestSettings(
        base_url="http://127.0.0.1:9/v1", api_key_env="OPENAI_API_KEY", timeout=3.0, rpm=60.0)
    claude = registry.build("rag:claude-haiku-4-5", {"max_retries": "2"})
    assert (claude.settings.api_key_env, claude.settings.max_retries) == ("ANTHROPIC_API_KEY", 2)
    with pytest.raises(BenchError, match="timeout='soon' is not a float"):
        registry.build("rag", {"timeout": "soon"})


def test_an_unknown_parameter_lists_every_one():
    with pytest.raises(BenchError) as caught:
        registry.build("openai", {"nope": "1"})
    assert str(caught.value) == (
        "predictor 'openai' has no parameter 'nope' (parameters: model, base_url, api_key_env, "
        "seed, max_tokens, temperature, timeout, max_retries, backoff, max_backoff, rpm, "
        "price_in, price_out)")
    with pytest.raises(TypeError, match="unexpected parameters: nope"):
        OpenAIChat(nope=1)


# Recorded before the settings moved: fingerprints (the result folder) and
# cache parts (the response cache key) must stay exactly these.
CASES: list[tuple[Any, dict[str, Any], dict[str, Any], dict[str, Any]]] = [
    (OpenAIChat, {},
     {"endpoint": "https://api.openai.com/v1", "max_tokens": 5, "model": "gpt-4o-mini",
      "prefill": "Price is $", "seed": 42, "system": SYSTEM, "temperature": None, "version": 1},
     {"endpoint": "https://api.openai.com/v1", "predictor": "openai", "version": 1,
      "request": {"max_tokens": 5, "model": "gpt-4o-mini", "seed": 42, "messages": [
          {"content": SYSTEM, "role": "system"}, USER, PREFILL]}}),
    (OpenAIChat, {"model": "o3-mini", "base_url": "http://u:pw@h:1/v1", "seed": 7,
                  "max_tokens": 9, "temperature": 0.5, "timeout": 3.0, "rpm": 5.0,
                  "price_in": 1.0, "price_out": 2.0, "api_key_env": "X"},
     {"endpoint": "http://h:1/v1", "max_tokens": 9, "model": "o3-mini", "prefill": "Price is $",
      "seed": 7, "system": SYSTEM, "temperature": 0.5, "version": 1},
     {"endpoint": "http://h:1/v1", "predictor": "openai", "version": 1,
      "request": {"max_completion_tokens": 9, "model": "o3-mini", "seed": 7,
                  "temperature": 0.5, "messages": [
                      {"content": SYSTEM, "role": "system"}, USER, PREFILL]}}),
    (AnthropicMessages, {},
     {"endpoint": "https://api.anthropic.com", "max_tokens": 10, "model": "claude-sonnet-5-5",
      "prefill": None, "system": SYSTEM, "temperature": None, "thinking_off": True,
      "version": 1},
     {"endpoint": "https://api.anthropic.com", "predictor": "anthropic", "version": 1,
      "request": {"max_tokens": 10, "messages": [USER], "model": "claude-sonnet-5-5",
                  "system": SYSTEM, "thinking": {"type": "disabled"}}}),
    (AnthropicMessages, {"model": "claude-3-5-sonnet-20240620"},
     {"endpoint": "https://api.anthropic.com", "max_tokens": 5,
      "model": "claude-3-5-sonnet-20240620", "prefill": "Price is $", "system": SYSTEM,
      "temperature": None, "thinking_off": False, "version": 1},
     {"endpoint": "https://api.anthropic.com", "predictor": "anthropic", "version": 1,
      "request": {"max_tokens": 5, "messages": [USER, PREFILL],
                  "model": "claude-3-5-sonnet-20240620", "system": SYSTEM}}),
    (AnthropicMessages, {"model": "claude-sonnet-5", "prefill": True, "max_tokens": 3,
                         "temperature": 0.1, "base_url": "http://h:2", "max_retries": 1,
                         "backoff": 0.0, "max_backoff": 1.0},
     {"endpoint": "http://h:2", "max_tokens": 3, "model": "claude-sonnet-5",
      "prefill": "Price is $", "system": SYSTEM, "temperature": 0.1, "thinking_off": True,
      "version": 1},
     {"endpoint": "http://h:2", "predictor": "anthropic", "version": 1,
      "request": {"max_tokens": 3, "messages": [USER, PREFILL], "model": "claude-sonnet-5",
                  "system": SYSTEM, "temperature": 0.1, "thinking": {"type": "disabled"}}}),
    (OpenAILogprobs, {"base_url": "http://h:3/v1"},
     {"endpoint": "http://h:3/v1", "model": "pricer", "prompt": "test prompt", "seed": 42,
      "top_k": 3, "version": 1},
     {"endpoint": "http://h:3/v1", "predictor": "openai-logprobs", "version": 1,
      "request": {"logprobs": 3, "max_tokens": 1, "model": "pricer", "seed": 42,
                  "prompt": PRODUCT.prompt, "temperature": 0}}),
    (OpenAILogprobs, {"model": "m", "base_url": "http://h:3/v1", "top_k": 5, "seed": 1,
                      "price_in": 0.0, "price_out": 0.0},
     {"endpoint": "http://h:3/v1", "model": "m", "prompt": "test prompt", "seed": 1,
      "top_k": 5, "version": 1},
     {"endpoint": "http://h:3/v1", "predictor": "openai-logprobs", "version": 1,
      "request": {"logprobs": 5, "max_tokens": 1, "model": "m", "seed": 1,
                  "prompt": PRODUCT.prompt, "temperature": 0}}),
]


@pytest.mark.parametrize("cls,params,fingerprint,parts", CASES,
                         ids=[f"{c[0].__name__}-{i}" for i, c in enumerate(CASES)])
def test_fingerprints_and_cache_keys_are_unchanged(cls, params, fingerprint, parts):
    predictor = cls(**params)
    assert predictor.fingerprint() == fingerprint
    assert predictor.cache_parts(predictor.request(PRODUCT)) == parts
    # Settings other than the server never reach either.
    quiet = cls(**{**params, "timeout": 1.5, "max_retries": 0, "rpm": 1.0, "price_out": 9.0})
    assert quiet.fingerprint() == fingerprint
