"""``openai-logprobs`` asks the server's own tokenizer, once per run, whether a
price's dollars are one token, through each server's tokenize endpoint (vLLM's
``/tokenize``, llama.cpp's ``/tokenize``, llama-cpp-python's
``/extras/tokenize``), against real loopback servers through the official
openai SDK; it records the verdict in run.json and prices by it, falling back
to judging each item only where no endpoint answers."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.context import Context
from bench.errors import BenchError
from bench.records import read_run
from bench.runner import run_predictor
from predictors.frontier import tokenizer_probe
from predictors.topk import DIGIT_SPLIT, PROBES
from tests.conftest import run_cli, write_synthetic_test_file
from tests.fake_llm_server import TOKENIZE_FLAVOURS, FakeLLMServer

pytest.importorskip("openai")

from predictors.frontier.logprobs import OpenAILogprobs  # noqa: E402

FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0}
# A $2.80 item on a whole-number tokenizer: the top 3 next tokens are single digits.
UNDER_TEN = [("4", 0.5), ("2", 0.3), ("1", 0.2)]
UNDER_TEN_PRICE = 4 * 0.5 + 2 * 0.3 + 1 * 0.2
# Which endpoint answers, at which path, after which others were tried.
ANSWERS = {"vllm": ("vLLM", "/tokenize", 0),
           "llama.cpp": ("llama.cpp server", "/tokenize", 1),  # vLLM's body: no tokens
           "llama-cpp-python": ("llama-cpp-python server", "/extras/tokenize", 2)}


@pytest.fixture(autouse=True)
def _no_real_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("LOGPROBS_BASE_URL", "LOGPROBS_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY"):
        monkeypatch.delenv(var, raising=False)


def _tokenize_requests(server: FakeLLMServer) -> list:
    return [r for r in server.requests if r.path.endswith("tokenize")]


def _run(server: FakeLLMServer, test_set, results: Path, ctx: Context, limit: int = 4):
    predictor = OpenAILogprobs(base_url=server.openai_url, ctx=ctx, **FAST)
    result = run_predictor(predictor, test_set, results, spec="openai-logprobs",
                           kind="local-llm", limit=limit, progress=False)
    return result, read_run(result.store.run_path)


@pytest.mark.parametrize("flavour", TOKENIZE_FLAVOURS)
def test_a_whole_number_tokenizer_prices_single_digit_top_tokens(
        flavour, synthetic_test_set, tmp_path: Path) -> None:
    ctx = Context(cache_dir=tmp_path / "cache")
    with FakeLLMServer(tokenize=flavour, top_tokens=lambda text: UNDER_TEN) as server:
        result, run = _run(server, synthetic_test_set, tmp_path / "r", ctx)
        asked = _tokenize_requests(server)
        completions = [r for r in server.requests if r.path == "/v1/completions"]

    server_name, path, tried_before = ANSWERS[flavour]
    # Asked once per run: one request per probe at the endpoint that answers.
    assert len(asked) == tried_before + len(PROBES)
    assert [r.path for r in asked[tried_before:]] == [path] * len(PROBES)
    assert len(completions) == 4
    records = result.store.records().values()
    assert len(records) == 4
    for record in records:  # priced by the rule, as published; not refused
        assert record.error is None, record.error
        assert record.price == pytest.approx(UNDER_TEN_PRICE)
    details = run.details["tokenizer"]
    assert details["numbers_whole"] is True and details["server"] == server_name
    assert details["asked"] == f"http://127.0.0.1:{server.port}{path}"
    assert len(set(details["token_counts"].values())) == 1


@pytest.mark.parametrize("flavour", TOKENIZE_FLAVOURS)
def test_a_digit_splitting_tokenizer_is_refused_before_any_item(
        flavour, synthetic_test_set, tmp_path: Path) -> None:
    ctx = Context(cache_dir=tmp_path / "cache")
    with FakeLLMServer(tokenize=flavour, split_digits=True,
                       top_tokens=lambda text: UNDER_TEN) as server:
        with pytest.raises(BenchError, match="splits numbers into digits") as caught:
            _run(server, synthetic_test_set, tmp_path / "r", ctx)
        assert not [r for r in server.requests if r.path == "/v1/completions"]
    # "Price is $374.00" takes two more tokens than "Price is $7.00".
    said = re.search(r'"Price is \$374\.00" is (\d+) tokens, "Price is \$7\.00" (\d+)\)',
                     str(caught.value))
    assert said and int(said[1]) == int(said[2]) + 2, str(caught.value)
    assert ANSWERS[flavour][0] in str(caught.value)
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("run.json"))


def test_without_a_tokenize_endpoint_each_item_is_judged_and_the_run_says_so(
        synthetic_test_set, tmp_path: Path) -> None:
    ctx = Context(cache_dir=tmp_path / "cache")
    whole = {p.prompt for p in synthetic_test_set.products()[:2]}

    def top(text: str) -> list[tuple[str, float]]:
        return [("374", 0.6), ("375", 0.4)] if text in whole else UNDER_TEN

    with FakeLLMServer(top_tokens=top) as server:  # OpenAI-compatible, no tokenize
        result, run = _run(server, synthetic_test_set, tmp_path / "r", ctx)
        assert len(_tokenize_requests(server)) == 3  # each kind tried once: 404
        # Nothing to keep: the next run asks again.
        _run(server, synthetic_test_set, tmp_path / "r2", ctx)
        assert len(_tokenize_requests(server)) == 6
    by_prompt = {p.id: p.prompt in whole for p in synthetic_test_set.products()}
    for record in result.store.records().values():
        if by_prompt[record.id]:
            assert record.price == pytest.approx(374.4)
        else:  # the per-item fallback: single digits read as a split number
            assert record.price is None and record.error == DIGIT_SPLIT
    details = run.details["tokenizer"]
    assert details["numbers_whole"] is None and details["asked"] is None
    assert "no tokenize endpoint answered" in details["pricing"]
    assert [t.split(" (")[0].rsplit("/", 1)[-1] for t in details["tried"]] == [
        "tokenize", "tokenize", "tokenize"]
    assert all("HTTP 404" in t for t in details["tried"])


def test_the_verdict_is_cached_and_a_cached_rerun_prices_the_same(
        synthetic_test_set, tmp_path: Path) -> None:
    ctx = Context(cache_dir=tmp_path / "cache")
    with FakeLLMServer(tokenize="vllm", top_tokens=lambda text: UNDER_TEN) as server:
        first, _ = _run(server, synthetic_test_set, tmp_path / "r1", ctx)
        url = server.openai_url
    # The server is gone: the answers and the verdict come from the cache.
    second = OpenAILogprobs(base_url=url, ctx=ctx, **FAST)
    result = run_predictor(second, synthetic_test_set, tmp_path / "r2", spec="openai-logprobs",
                           kind="local-llm", limit=4, progress=False)
    run = read_run(result.store.run_path)
    assert [r.price for r in result.store.records().values()] == \
        [r.price for r in first.store.records().values()] == [pytest.approx(UNDER_TEN_PRICE)] * 4
    assert run.details["tokenizer"]["from_cache"] is True


def test_through_the_cli_the_verdict_is_in_run_json(tmp_path: Path) -> None:
    path = str(write_synthetic_test_file(tmp_path / "synthetic.jsonl"))
    with FakeLLMServer(tokenize="llama.cpp", top_tokens=lambda text: UNDER_TEN) as server:
        done = run_cli("run", "openai-logprobs:pricer", "--param", f"base_url={server.openai_url}",
                       "--test", path, "--results-dir", str(tmp_path / "r"), "--limit", "3",
                       "--quiet", env={"BENCH_CACHE_DIR": str(tmp_path / "cache"),
                                       "LOGPROBS_API_KEY": ""})
    assert done.returncode == 0, done.stderr
    (run_json,) = (tmp_path / "r").rglob("run.json")
    details = json.loads(run_json.read_text())["details"]["tokenizer"]
    assert details["numbers_whole"] is True and details["server"] == "llama.cpp server"
    stored = run_json.with_name("predictions.jsonl").read_text().splitlines()
    lines = [json.loads(x) for x in stored]
    assert [line["price"] for line in lines] == [pytest.approx(UNDER_TEN_PRICE)] * 3


def test_token_counts_decide_and_server_roots() -> None:
    from predictors.topk import numbers_whole_by_count

    assert numbers_whole_by_count({"7": 6, "42": 6, "374": 6, "999": 6}) is True
    assert numbers_whole_by_count({"7": 6, "42": 7, "374": 8, "999": 8}) is False
    with pytest.raises(ValueError, match="no token count for 999"):
        numbers_whole_by_count({"7": 6, "42": 6, "374": 6})
    assert tokenizer_probe.server_root("http://h:8000/v1") == "http://h:8000"
    assert tokenizer_probe.server_root("http://h:8000/v1/") == "http://h:8000"
    assert tokenizer_probe.server_root("http://h:8000/proxy") == "http://h:8000/proxy"
