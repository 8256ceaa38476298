"""Frontier predictors through the official SDKs against a real loopback HTTP
server: the prompt that arrives, parsing, the cache, concurrency, faults,
costs, and keys kept out of every file."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench import prompts
from bench.context import Context
from bench.redact import public_url, scrub
from bench.runner import run_predictor
from bench.types import Product
from predictors.frontier import pricing
from predictors.frontier.chat import OpenAIChat
from predictors.frontier.logprobs import OpenAILogprobs
from predictors.frontier.messages import AnthropicMessages, takes_prefill
from predictors.frontier.prompt import PREFILL, SYSTEM_MESSAGE
from predictors.frontier.retry import RetryPolicy, TokenBucket, retry_after
from tests.conftest import ROOT
from tests.fake_llm_server import FakeLLMServer

KEY = "sk-test-SECRET0123456789abcdef"
FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 2.0}


@pytest.fixture(autouse=True)
def _no_real_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
                "LOGPROBS_BASE_URL", "LOGPROBS_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture(scope="module")
def test_set(synthetic_test_set):
    return synthetic_test_set


@pytest.fixture
def products(test_set) -> list[Product]:
    return test_set.products()[:12]


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(cache_dir=tmp_path / "cache")


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def openai_predictor(server: FakeLLMServer, ctx: Context | None, **params) -> OpenAIChat:
    return OpenAIChat(base_url=server.openai_url, ctx=ctx, **{**FAST, **params})


def scripted(script: dict[str, list[str]], text: str, attempt: int) -> str | None:
    """The fault for this item's n-th request, if its script has one."""
    faults = script.get(text, [])
    return faults[attempt - 1] if attempt <= len(faults) else None


# -- the prompt that arrives, and parsing -------------------------------------------


def test_openai_sends_the_published_prompt_and_parses_the_reply(server, ctx, products,
                                                               monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.price = lambda text: 1234.5  # the reply reads "1,234.50"
    prediction = openai_predictor(server, ctx).predict_one(products[0])

    assert prediction.price == 1234.5 and prediction.raw == "1,234.50"
    (rec,) = server.requests
    assert rec.path == "/v1/chat/completions"
    assert rec.headers["authorization"] == f"Bearer {KEY}"
    body = rec.body
    assert body["model"] == "gpt-4o-mini" and body["seed"] == 42 and body["max_tokens"] == 5
    system, user, prefill = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_MESSAGE}
    assert prefill == {"role": "assistant", "content": "Price is $"}
    assert user["role"] == "user"
    assert user["content"] == prompts.frontier_user_prompt(products[0].prompt)
    assert user["content"].startswith("How much does this cost?\n\n")
    assert "to the nearest dollar" not in user["content"]
    assert not user["content"].endswith("Price is $")
    assert products[0].title in user["content"]
    # Tokens from the response's usage, cost from the price table.
    usage = server.requests and prediction.input_tokens
    assert usage and prediction.output_tokens == 3
    assert prediction.cost_usd == pytest.approx((usage * 0.15 + 3 * 0.60) / 1e6)


def test_a_reply_without_a_number_is_no_answer_with_the_text_kept(server, ctx, products,
                                                                  monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.fault_plan = lambda text, attempt: "nonumber"
    prediction = openai_predictor(server, ctx).predict_one(products[0])
    assert prediction.price is None
    assert prediction.raw == "sorry, I cannot tell"
    assert "no number" in prediction.error
    assert prediction.input_tokens is not None  # it was paid for: still counted


def test_anthropic_prefill_models_get_the_prefill_as_last_assistant_turn(server, ctx,
                                                                        products, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    predictor = AnthropicMessages("claude-haiku-4-5", base_url=server.anthropic_url, ctx=ctx,
                                  **FAST)
    prediction = predictor.predict_one(products[1])
    (rec,) = server.requests
    assert rec.path == "/v1/messages"
    assert KEY in (rec.headers.get("x-api-key", "") + rec.headers.get("authorization", ""))
    body = rec.body
    assert body["system"] == SYSTEM_MESSAGE and body["max_tokens"] == 5
    assert body["messages"] == [
        {"role": "user", "content": prompts.frontier_user_prompt(products[1].prompt)},
        {"role": "assistant", "content": PREFILL},
    ]
    assert "thinking" not in body and "temperature" not in body
    assert prediction.price == server.price(body["messages"][0]["content"])
    assert prediction.cost_usd == pytest.approx(
        (prediction.input_tokens * 1 + prediction.output_tokens * 5) / 1e6)


def test_anthropic_models_that_refuse_prefills_get_none_and_no_thinking(server, ctx,
                                                                       products, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    predictor = AnthropicMessages(base_url=server.anthropic_url, ctx=ctx, **FAST)
    assert predictor.model.startswith("claude-sonnet-5")
    assert predictor.predict_one(products[1]).price is not None
    body = server.requests[-1].body
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert body["thinking"] == {"type": "disabled"}
    # Generations, old and new name styles.
    assert takes_prefill("claude-3-5-sonnet-20240620") and takes_prefill("claude-haiku-4-5")
    assert not takes_prefill("claude-sonnet-4-6") and not takes_prefill("claude-opus-5")
    assert not takes_prefill("claude-mythos-preview") and takes_prefill("llama3.1")
    # Forcing a prefill on a model that refuses it: one 400, then nothing more is sent.
    server.fault_plan = lambda text, attempt: "400prefill"
    forced = AnthropicMessages("claude-sonnet-5", prefill=True, base_url=server.anthropic_url,
                               ctx=ctx, **FAST)
    sent = server.count
    out = [forced.predict_one(p) for p in products[:4]]
    assert server.count == sent + 1 and server.requests[-1].body["messages"][-1] == {
        "role": "assistant", "content": PREFILL}
    assert all(p.price is None for p in out)
    assert sum("does not support assistant message prefill" in p.error for p in out) == 4


def test_logprobs_weights_the_numeric_tokens_among_the_top_k(server, ctx, products,
                                                            monkeypatch):
    server.top_tokens = lambda text: [("799", 0.5), ("abc", 0.2), ("800", 0.2), ("1", 0.1)]
    predictor = OpenAILogprobs(base_url=server.openai_url, ctx=ctx, **FAST)
    assert predictor.unavailable() is None  # a named server needs no key
    prediction = predictor.predict_one(products[2])

    (rec,) = server.requests
    assert rec.path == "/v1/completions"
    assert rec.headers["authorization"] == "Bearer EMPTY"
    assert rec.body["prompt"] == products[2].prompt and rec.body["prompt"].endswith("Price is $")
    assert rec.body["logprobs"] == 3 and rec.body["max_tokens"] == 1
    assert rec.body["model"] == "pricer"
    # Top 3 = 799 (0.5), abc (0.2), 800 (0.2): "1" is 4th; weights renormalised.
    assert prediction.price == pytest.approx((799 * 0.5 + 800 * 0.2) / 0.7)
    assert '"799"' in prediction.raw and '"1"' not in prediction.raw

    server.top_tokens = lambda text: [("abc", 0.9), ("def", 0.1)]
    none = predictor.predict_one(products[3])
    assert none.price is None and "no numeric token" in none.error


@pytest.mark.parametrize("kind", ["chat", "logprobs"])
def test_the_fast_send_is_what_the_sdks_create_sends(kind, server, products, monkeypatch):
    """``fast_create`` skips ``create()``'s parameter transform: the same request
    must reach the server (body and headers) and parse to the same reply."""
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.top_tokens = lambda text: [("799", 0.5), ("800", 0.3)]
    if kind == "chat":
        predictor = openai_predictor(server, None)
        resource = "chat.completions"
    else:
        predictor = OpenAILogprobs(base_url=server.openai_url, **FAST)
        resource = "completions"
    client = predictor.client()
    for product in products[:3]:
        request = predictor.request(product)
        fast = predictor.send(client, request)
        create = client
        for part in resource.split("."):
            create = getattr(create, part)
        slow = create.create(**request)
        by_fast, by_create = server.requests[-2:]
        assert by_fast.path == by_create.path
        assert by_fast.body == by_create.body
        per_request = {"x-stainless-retry-count", "x-stainless-read-timeout"}
        assert ({k: v for k, v in by_fast.headers.items() if k not in per_request}
                == {k: v for k, v in by_create.headers.items() if k not in per_request})
        if kind == "chat":
            assert fast["text"] == slow.choices[0].message.content
            assert fast["input_tokens"] == slow.usage.prompt_tokens
        else:
            assert fast["top"] == sorted(
                ([t, lp] for t, lp in slow.choices[0].logprobs.top_logprobs[0].items()),
                key=lambda c: -c[1])
            assert fast["text"] == slow.choices[0].text


def test_logprobs_needs_a_named_server(monkeypatch):
    reason = OpenAILogprobs().unavailable()
    assert reason and "LOGPROBS_BASE_URL" in reason
    monkeypatch.setenv("LOGPROBS_BASE_URL", "http://127.0.0.1:9/v1")
    assert OpenAILogprobs().unavailable() is None


# -- cache ----------------------------------------------------------------------------


def test_a_rerun_is_served_from_the_cache_and_re_parsed(server, ctx, products, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    first = openai_predictor(server, ctx).predict(products[:5])
    assert server.count == 5
    again = openai_predictor(server, ctx, timeout=9.0, rpm=10_000).predict(products[:5])
    assert server.count == 5  # not one request: timeouts and rpm are not in the key
    assert [p.price for p in again] == [p.price for p in first]
    assert [p.cost_usd for p in again] == [p.cost_usd for p in first]

    # A hit is the raw reply re-parsed, not a stored price.
    predictor = openai_predictor(server, ctx)
    parts = predictor.cache_parts(predictor.request(products[0]))
    ctx.responses.put(parts, {**ctx.responses.get(parts), "text": "$1,999.00 or so"})
    assert predictor.predict_one(products[0]).price == 1999.0

    # Output-shaping parameters and the server are in the key.
    openai_predictor(server, ctx, max_tokens=6).predict_one(products[0])
    assert server.count == 6
    assert (openai_predictor(server, ctx).fingerprint()
            != OpenAIChat(base_url="http://other:8000/v1").fingerprint())


def test_no_cache_sends_every_time(server, tmp_path, products, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    off = Context(cache_dir=tmp_path / "c", use_cache=False)
    openai_predictor(server, off).predict(products[:3])
    openai_predictor(server, off).predict(products[:3])
    assert server.count == 6
    assert not (tmp_path / "c" / "responses.sqlite").exists()


# -- concurrency, rate cap ----------------------------------------------------------


def test_requests_really_overlap(server, ctx, products, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.latency = 0.25
    out = openai_predictor(server, ctx).predict(products)  # 12 items, 16 threads
    assert all(p.price is not None for p in out)
    assert server.max_in_flight >= 8  # the server saw them in flight together


def test_rpm_caps_the_request_rate_across_threads(server, ctx, products, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    started = time.perf_counter()
    openai_predictor(server, ctx, rpm=600).predict(products[:6])  # 10 per second
    assert time.perf_counter() - started >= 0.45  # 5 waits of 0.1 s after the first


def test_token_bucket_paces_with_an_injected_clock():
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    bucket = TokenBucket(rpm=120, clock=lambda: now[0], sleep=sleep)  # 2 per second
    for _ in range(5):
        bucket.acquire()
    assert sum(slept) == pytest.approx(2.0)  # the first is free, then 0.5 s each


# -- faults ---------------------------------------------------------------------------


def test_faults_end_answered_or_recorded_never_raised(server, ctx, products, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    users = [prompts.frontier_user_prompt(p.prompt) for p in products[:6]]
    script = {
        users[0]: ["429", "429"],        # rate limited twice, then fine
        users[1]: ["500", "500"],        # server errors, then fine
        users[2]: ["hang"],              # no reply within the timeout, then fine
        users[3]: ["truncated"],         # a 200 with half a JSON body, then fine
        users[4]: ["nonumber"] * 99,     # always a reply without a price
        users[5]: ["500"] * 99,          # never recovers
    }
    server.fault_plan = lambda text, attempt: scripted(script, text, attempt)
    server.hang_s = 3.0
    predictor = openai_predictor(server, ctx, timeout=1.0, max_retries=3)

    out = predictor.predict(products[:8])

    assert [p.price is not None for p in out] == [True, True, True, True, False, False,
                                                  True, True]
    assert out[4].raw == "sorry, I cannot tell"
    assert "InternalServerError" in out[5].error and "after 4 attempts" in out[5].error
    # Exactly our retries (the SDKs' own are off): 3 + 3 + 2 + 2 + 1 + 4 + 1 + 1.
    assert server.count == 17
    assert server.statuses[429] == 2 and server.statuses[500] == 2 + 4
    # Errors are never cached: a rerun asks item 5 again (and only it).
    before = server.count
    server.fault_plan = None
    again = openai_predictor(server, ctx).predict(products[:8])
    assert server.count == before + 1 and again[5].price is not None
    assert again[4].price is None  # a real reply without a number is kept as such


def test_retry_after_is_honoured(server, ctx, products, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    server.retry_after = "1"
    server.fault_plan = lambda text, attempt: "429" if attempt == 1 else None
    started = time.perf_counter()
    prediction = openai_predictor(server, ctx).predict_one(products[0])
    assert prediction.price is not None
    assert time.perf_counter() - started >= 0.95  # not the 0.01 s backoff


def test_retry_after_forms_and_backoff_growth():
    class Exc(Exception):
        def __init__(self, headers):
            self.response = type("R", (), {"headers": headers})()

    assert retry_after(Exc({"retry-after": "2"})) == 2.0
    assert retry_after(Exc({"retry-after-ms": "250", "retry-after": "9"})) == 0.25
    assert retry_after(Exc({"retry-after": "Wed, 21 Oct 2015 07:28:10 GMT"}),
                       now=1445412480.0) == pytest.approx(10.0)
    assert retry_after(Exc({})) is None and retry_after(ValueError()) is None
    policy = RetryPolicy(backoff=1.0, max_backoff=8.0)
    for attempt, ceiling in [(0, 1), (1, 2), (2, 4), (5, 8)]:
        assert ceiling / 2 <= policy.delay(attempt) <= ceiling
    assert policy.delay(0, server_wait=500.0) == policy.max_retry_after


def test_a_bad_key_stops_asking_and_never_reaches_a_file(server, tmp_path, test_set,
                                                         monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    ctx = Context(cache_dir=tmp_path / "cache")
    # Items after the 3rd get a 401 that echoes the key back.
    server.fault_plan = lambda text, attempt: "401" if server.count > 3 else None
    predictor = openai_predictor(server, ctx)
    result = run_predictor(predictor, test_set, tmp_path / "results", spec="openai",
                           kind="frontier", concurrency=1, limit=10, progress=False)

    assert result.scores.answered == 3
    assert server.count == 4  # after the first 401, nothing more is sent
    records = result.store.records()
    assert any("AuthenticationError" in (r.error or "") for r in records.values())
    assert any((r.error or "").startswith("not sent") for r in records.values())
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "responses.sqlite" for p in written)
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
        assert KEY[8:].encode() not in path.read_bytes(), path


# -- availability, estimates, pricing, redaction --------------------------------------


def test_a_missing_key_names_the_variable(monkeypatch):
    assert "OPENAI_API_KEY" in OpenAIChat().unavailable()
    assert "ANTHROPIC_API_KEY" in AnthropicMessages().unavailable()
    # A custom server needs no key (vLLM accepts any); the env var names it too.
    assert OpenAIChat(base_url="http://127.0.0.1:8000/v1").unavailable() is None
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:11434/v1")
    assert OpenAIChat("llama3.1").unavailable() is None
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    assert AnthropicMessages().unavailable() is None


def test_estimate_sends_nothing_and_skips_cached_items(server, ctx, products, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    predictor = openai_predictor(server, ctx)
    estimate = predictor.estimate(products)
    assert server.count == 0
    assert estimate["requests"] == len(products) and estimate["output_tokens"] == 5 * 12
    chars = sum(len(SYSTEM_MESSAGE) + len(prompts.frontier_user_prompt(p.prompt)) + len(PREFILL)
                for p in products)
    assert chars / 4 <= estimate["input_tokens"] <= chars / 4 + 12 * 3 * 5
    assert estimate["cost_usd"] == pytest.approx(
        (estimate["input_tokens"] * 0.15 + estimate["output_tokens"] * 0.60) / 1e6)
    predictor.predict(products[:4])
    assert predictor.estimate(products)["requests"] == 8
    unknown = OpenAIChat("my-local-model", base_url=server.openai_url).estimate(products)
    assert unknown["cost_usd"] is None
    priced = OpenAIChat("my-local-model", base_url=server.openai_url, price_in=1.0,
                        price_out=2.0).estimate(products)
    assert priced["cost_usd"] == pytest.approx(
        (priced["input_tokens"] + 2 * priced["output_tokens"]) / 1e6)


def test_price_table_snapshots_and_extension(monkeypatch):
    assert pricing.price_of("gpt-4o-mini-2024-07-18") == pricing.PRICES["gpt-4o-mini"]
    assert pricing.price_of("claude-3-5-sonnet-20240620") == (3.0, 15.0)
    assert pricing.price_of("gpt-5.6-sol") is None  # never priced by a wrong prefix
    monkeypatch.setitem(pricing.PRICES, "my-model", (1.0, 3.0))
    assert pricing.cost_usd("my-model", 1_000_000, 1_000_000) == 4.0
    assert pricing.cost_usd("gpt-4o-mini", 1000, 10, price_in=0, price_out=0) == 0.0
    assert pricing.cost_usd("unknown", 10, 10) is None


def test_scrub_and_public_url():
    text = f"401 Incorrect API key provided: Bearer {KEY}; api_key={KEY[3:]}"
    clean = scrub(text, [KEY])
    assert KEY not in clean and KEY[3:] not in clean and "***" in clean
    assert scrub("sk-ant-api03-abcdefghijkl and x-api-key: zzzzzzzzzz") == \
        "*** and x-api-key: ***"
    assert public_url("HTTP://user:pw@Example.COM:8000/v1/?token=x") == \
        "http://example.com:8000/v1"


def test_parameters_arrive_typed_through_the_registry(server):
    from bench import registry

    predictor = registry.build("openai:gpt-4o", {"rpm": "120", "max_tokens": "7",
                                                 "base_url": server.openai_url,
                                                 "temperature": "0"})
    assert predictor.name == "openai:gpt-4o" and predictor.max_tokens == 7
    assert predictor.limiter is not None and predictor.temperature == 0.0
    assert registry.build("anthropic", {"prefill": "false"}).prefill is False
    assert math.isclose(registry.build("openai-logprobs", {"top_k": "5"}).top_k, 5)


def test_the_client_is_made_in_prepare_unless_answers_are_cached(server, ctx, products,
                                                                  monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    first = openai_predictor(server, ctx)
    first.prepare()  # nothing cached: every item will be sent, so the client is loaded now
    assert first._client is not None  # noqa: SLF001
    answer = first.predict_one(products[0])
    again = openai_predictor(server, ctx)
    again.prepare()  # answers cached: made on the first miss, if any
    assert again._client is None  # noqa: SLF001
    assert again.predict_one(products[0]).price == answer.price
    assert again._client is None and len(server.requests) == 1  # noqa: SLF001


def test_registering_imports_no_sdk():
    code = ("import sys, predictors.frontier; from bench import registry; registry.entries(); "
            "sys.exit(int('openai' in sys.modules or 'anthropic' in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT).returncode == 0
