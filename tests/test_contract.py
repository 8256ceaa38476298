"""The predictor contract: the one accessor for optional capabilities, the
registry's refusal of duplicate names, spec expansion, and ``check_predictor``
on every built-in and on broken predictors."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench import registry
from bench.context import Context
from bench.errors import BenchError
from bench.testing import ContractError, check_predictor, sample_products
from bench.types import BasePredictor, Prediction, Product, capabilities
from tests.conftest import fake_distribution, run_cli
from tests.plugins import toy_predictors  # noqa: F401  (registers the toys)

# -- capabilities: one accessor, documented defaults -----------------------------


class Duck:
    """Protocol only: no base class, no optional hooks."""

    name = "duck"

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [Prediction(price=1.0) for _ in products]


class Trainable(BasePredictor):
    name = "trainable"
    seed = 7
    batch_size = 3

    def __init__(self) -> None:
        self.fitted = 0

    def fit(self, examples: object) -> None:
        self.fitted += 1

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [Prediction(price=2.0) for _ in products]


class PerItem(BasePredictor):
    name = "per-item"
    default_concurrency = 5

    def predict_one(self, product: Product) -> Prediction:
        return Prediction(price=float(product.id))

    def fingerprint(self) -> dict:  # the README's own spelling: a body of `...`
        ...


def test_capabilities_of_a_protocol_only_predictor_are_the_defaults() -> None:
    hooks = capabilities(Duck())
    assert hooks.unavailable() is None and hooks.fingerprint() == {}
    assert hooks.estimate(sample_products()) is None and hooks.training_examples() is None
    assert hooks.fit is None and hooks.predict_one is None
    assert hooks.batch_size is None and hooks.default_concurrency is None
    assert hooks.seed is None
    hooks.prepare()  # a no-op


def test_capabilities_of_subclasses_tell_what_they_define() -> None:
    trainable, per_item = Trainable(), PerItem()
    assert capabilities(trainable).fit is not None and capabilities(trainable).seed == 7
    assert capabilities(trainable).batch_size == 3
    assert capabilities(trainable).predict_one is None  # the base's placeholder: absent
    assert capabilities(per_item).fit is None
    assert capabilities(per_item).predict_one is not None
    assert capabilities(per_item).default_concurrency == 5
    assert capabilities(per_item).fingerprint() == {}  # None is taken as {}
    assert [p.price for p in per_item.predict(sample_products()[:2])] == [9001.0, 9002.0]


# -- registry: one name, one object ----------------------------------------------


@pytest.fixture
def scratch_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the loaded registry, so a test's registrations do not leak."""
    registry.entries()
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_registering_a_different_object_under_a_taken_name_names_both(
        scratch_registry: None) -> None:
    class XGBoost(BasePredictor):
        """An impostor."""

    with pytest.raises(BenchError) as caught:
        registry.register("xgboost", kind="classic")(XGBoost)
    message = str(caught.value)
    assert "'xgboost'" in message
    assert "predictors.classic.baselines.XGBoostPredictor" in message
    assert "test_contract.test_registering_a_different_object" in message

    def guess(product: Product) -> float:
        return 1.0

    with pytest.raises(BenchError, match="already registered by tests.plugins.toy_predictors"):
        registry.price_predictor("slow-pricer")(guess)


def test_registering_the_same_object_again_is_fine(scratch_registry: None) -> None:
    entry = registry.get("batch-pricer")
    registry.register("batch-pricer")(entry.factory)
    registry.price_predictor("slow-pricer")(toy_predictors.slow_pricer)
    assert registry.get("batch-pricer").factory is entry.factory
    assert registry.build("slow-pricer", {"delay": "0"}).name == "slow-pricer"


def test_an_entry_point_cannot_take_a_builtin_name(scratch_registry: None) -> None:
    class Impostor(BasePredictor):
        """Would replace xgboost."""

    registry._load_entry_point("xgboost", "evil:Impostor", lambda: Impostor)
    registry._load_entry_point("broken", "gone:thing", lambda: 1 / 0)
    with pytest.raises(BenchError, match=r"'xgboost' is taken twice: "
                       r"predictors\.classic\.baselines\.XGBoostPredictor and entry point "
                       r"xgboost = evil:Impostor"):
        registry.build("xgboost")
    with pytest.raises(BenchError, match="failed to import: division by zero"):
        registry.build("broken")
    assert registry.get("broken").summary == "(failed to load)"
    assert registry.build("constant").name == "constant"  # everything else still builds


def test_a_clashing_plugin_is_listed_as_failed_and_the_rest_still_list(
        tmp_path: Path, data_dir: Path) -> None:
    env = fake_distribution(tmp_path / "site", "evil", '''
        from bench import price_predictor

        def xgboost(product):
            """Pretends to be xgboost."""
            return 1.0

        @price_predictor("cheap")
        def cheap(product):
            """Always a dollar."""
            return 1.0
    ''', "xgboost = evil:xgboost\ncheap = evil:cheap\n")
    listed = run_cli("list", "--data-dir", str(data_dir), env=env)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("| xgboost "))
    assert "is taken twice" in row  # in short; in full with --long
    full = run_cli("list", "--long", "--data-dir", str(data_dir), env=env).stdout
    row = next(line for line in full.splitlines() if line.startswith("| xgboost "))
    assert "is taken twice" in row and "entry point xgboost = evil:xgboost" in row
    assert "Always a dollar." in listed.stdout and "| human " in listed.stdout
    ran = run_cli("run", "xgboost", "--data-dir", str(data_dir), "--limit", "1", env=env)
    assert ran.returncode == 2 and "is taken twice" in ran.stderr
    assert "Traceback" not in ran.stderr


# -- spec expansion and --param routing ------------------------------------------


def test_run_all_expands_every_predictor_and_its_variants(data_dir: Path) -> None:
    ctx = Context(data_dir=data_dir)
    expanded = registry.expand(ctx)
    specs = [spec for spec, _ in expanded]
    runs = sorted(p.stem for p in (data_dir / "reference-runs").glob("*.csv"))
    assert [s for s in specs if s.startswith("reference:")] == [f"reference:{r}" for r in runs]
    assert "reference" not in specs  # expanded to its variants
    assert {"human", "xgboost", "openai", "qlora", "slow-pricer"} <= set(specs)
    # `run all` is every spec but those registered to run by name only (in_all=False:
    # members whose figures are not the same bytes on every CPU)
    by_name_only = [spec for spec, entry in expanded if not entry.in_all]
    assert {"mlp", "embedding-ridge"} <= set(by_name_only)
    assert registry.specs(["all"], ctx) == [s for s in specs if s not in by_name_only]
    assert registry.specs(["human", "openai:gpt-4o"], ctx) == ["human", "openai:gpt-4o"]
    with pytest.raises(BenchError, match="'all' cannot be combined"):
        registry.specs(["all", "human"], ctx)
    # Without recorded runs, reference stays one spec (and says why it cannot run).
    assert "reference" in [spec for spec, _ in registry.expand(Context())]


def test_run_all_routes_each_param_to_the_predictors_that_take_it() -> None:
    assert registry.accepts("slow-pricer", "delay")
    assert not registry.accepts("batch-pricer", "delay")
    assert registry.accepts("openai:gpt-4o", "base_url")
    params = {"delay": "0", "batch_size": "2"}
    assert registry.params_for("slow-pricer", params, everything=True) == {"delay": "0"}
    assert registry.params_for("batch-pricer", params, everything=True) == {"batch_size": "2"}
    assert registry.params_for("batch-pricer", params, everything=False) == params
    [(spec, predictor, own)] = registry.build_all(["batch-pricer"], {"batch_size": "2"})
    assert (spec, predictor.batch_size, own) == ("batch-pricer", 2, {"batch_size": "2"})
    # Named predictors route too: an unscoped key goes to those that take it ...
    built = registry.build_all(["slow-pricer", "batch-pricer"], {"batch_size": "2"})
    assert [own for *_, own in built] == [{}, {"batch_size": "2"}]
    # ... NAME.key goes to NAME only, and a key none takes (or a wrong NAME) is an error.
    built = registry.build_all(["slow-pricer", "batch-pricer"],
                               {"slow-pricer.delay": "0.001", "batch-pricer.batch_size": "3"})
    assert [own for *_, own in built] == [{"delay": "0.001"}, {"batch_size": "3"}]
    assert built[0][1].fingerprint() == registry.build("slow-pricer", {"delay": "0.001"}
                                                       ).fingerprint()
    with pytest.raises(BenchError, match="no predictor takes the parameter 'nope'"):
        registry.build_all(["slow-pricer", "batch-pricer"], {"nope": "1"})
    with pytest.raises(BenchError, match="predictor 'batch-pricer' has no parameter 'delay'"):
        registry.build_all(["slow-pricer", "batch-pricer"], {"batch-pricer.delay": "1"})
    with pytest.raises(BenchError, match="no predictor 'xgboost' in this run"):
        registry.build_all(["slow-pricer"], {"xgboost.delay": "1"})
    with pytest.raises(BenchError, match="no parameter 'nope'"):  # one predictor: its error
        registry.build_all(["slow-pricer"], {"nope": "1"})


def test_run_all_refuses_a_param_no_predictor_takes(data_dir: Path) -> None:
    with pytest.raises(BenchError, match="no predictor takes the parameter 'nope'"):
        registry.build_all(["all"], {"nope": "1"}, Context(data_dir=data_dir))


# -- check_predictor: broken predictors fail with a clear message -----------------


class Reversed(BasePredictor):
    name = "reversed"

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        ordered = sorted(products, key=lambda p: p.id)  # ignores the order it was given
        return [Prediction(price=float(p.id % 100)) for p in ordered]


class Sloppy:
    name = "sloppy"

    def unavailable(self) -> int:
        return 0

    def fingerprint(self) -> dict:
        return {"started": time.perf_counter_ns(), "where": Path("/tmp")}

    def predict(self, products: Sequence[Product]) -> list[object]:
        out: list[object] = [Prediction(price=None)] + [Prediction(price=-3.0)]
        return (out + [4.0] * len(products))[: len(products)]


class ShortChanged(BasePredictor):
    name = "short"

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [Prediction(price=1.0)] * (len(products) - 1)


class NotANumber(BasePredictor):
    name = "nan"

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [Prediction(price=math.nan if p.id == 9001 else 1.0) for p in products]


def test_check_predictor_catches_a_predictor_that_ignores_order() -> None:
    with pytest.raises(ContractError, match=r"order: product id \d+ got .* predictions must "
                                            "follow the products' order"):
        check_predictor(Reversed())


def test_check_predictor_lists_every_failure_one_per_line() -> None:
    with pytest.raises(ContractError) as caught:
        check_predictor(Sloppy())
    lines = str(caught.value).splitlines()
    assert lines[0] == "predictor 'sloppy' breaks the predictor contract:"
    body = "\n".join(lines[1:])
    assert "unavailable() must return a string or None, not int" in body
    assert "fingerprint() must be JSON-serialisable" in body
    assert "[0] has no price and no error" in body
    assert all(line.startswith("  - ") for line in lines[1:])


def test_check_predictor_catches_bad_prices_counts_and_mutation() -> None:
    class Negative(BasePredictor):
        name = "negative"

        def predict(self, products: Sequence[Product]) -> list[Prediction]:
            return [Prediction(price=-1.0) for _ in products]

    with pytest.raises(ContractError, match=r"price -1.0: a finite number >= 0"):
        check_predictor(Negative())
    with pytest.raises(ContractError, match="returned 4 predictions for 5 products"):
        check_predictor(ShortChanged())
    with pytest.raises(ContractError) as caught:
        check_predictor(NotANumber())
    assert "price nan" in str(caught.value)

    class Toucher(BasePredictor):
        name = "toucher"

        def predict(self, products: Sequence[Product]) -> list[Prediction]:
            for p in products:
                if isinstance(p.details, dict):
                    p.details["seen"] = True
            return [Prediction(price=1.0) for _ in products]

    with pytest.raises(ContractError, match="changed product 9001 it was given"):
        check_predictor(Toucher())


def test_check_predictor_catches_an_unstable_fingerprint_and_unavailability() -> None:
    class Drifting(Duck):
        def fingerprint(self) -> dict:
            return {"at": time.perf_counter_ns()}

    with pytest.raises(ContractError, match=r"fingerprint\(\) is not stable"):
        check_predictor(Drifting())

    class Away(Duck):
        def unavailable(self) -> str:
            return "no GPU here"

    with pytest.raises(ContractError, match=r"unavailable here \(no GPU here\)"):
        check_predictor(Away())
    check_predictor(Away(), require_available=False)


def test_check_predictor_passes_minimal_predictors() -> None:
    check_predictor(Duck())
    check_predictor(PerItem())
    check_predictor(Trainable())


# -- every built-in passes check_predictor ----------------------------------------


@pytest.fixture(scope="module")
def bench_ctx(data_dir: Path) -> Context:
    ctx = Context(data_dir=data_dir)
    ctx.test_set = ctx.benchmark
    return ctx


@pytest.fixture
def ctx(bench_ctx: Context) -> Context:
    """The data dir's context, with this test's isolated cache folder."""
    ctx = Context(data_dir=bench_ctx.data_dir)
    ctx.test_set = bench_ctx.test_set
    return ctx


def test_human_and_reference_pass_check_predictor(ctx: Context) -> None:
    assert ctx.test_set is not None
    products = ctx.test_set.products()[:6]
    check_predictor(registry.build("human", {}, ctx), products)
    check_predictor(registry.build("reference:gpt-4o-mini", {}, ctx), products)


def test_price_predictor_functions_pass_check_predictor() -> None:
    check_predictor(registry.build("slow-pricer", {"delay": "0"}))


@pytest.mark.parametrize("spec, params", [
    ("constant", {"train_size": "200"}),
    ("linear", {"train_size": "200"}),
    ("random-forest", {"train_size": "200", "n_estimators": "10", "svd": "4", "folds": "2"}),
    ("xgboost", {"train_size": "200", "n_estimators": "10", "svd": "4", "folds": "2"}),
])
def test_classic_predictors_pass_check_predictor(ctx: Context, spec: str,
                                                 params: dict[str, str]) -> None:
    pytest.importorskip("sklearn")
    if spec == "xgboost":
        pytest.importorskip("xgboost")
    assert ctx.test_set is not None
    check_predictor(registry.build(spec, params, ctx), ctx.test_set.products()[:6])
    check_predictor(registry.build(spec, params, ctx))  # products it never saw


def test_frontier_predictors_pass_check_predictor(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("openai")
    pytest.importorskip("anthropic")
    from tests.fake_llm_server import FakeLLMServer

    for var in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "ANTHROPIC_BASE_URL", "ANTHROPIC_API_KEY",
                "LOGPROBS_BASE_URL", "LOGPROBS_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    ctx = Context(cache_dir=tmp_path / "cache")
    with FakeLLMServer() as server:
        for spec, url in (("openai", server.openai_url), ("anthropic", server.anthropic_url),
                          ("openai-logprobs", server.openai_url)):
            predictor = registry.build(spec, {"base_url": url, "max_retries": "0"}, ctx)
            check_predictor(predictor)


def test_qlora_on_a_tiny_model_passes_check_predictor(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    pytest.importorskip("peft")
    from predictors.qlora.tiny import build_tiny_adapter, build_tiny_llama

    products = sample_products()
    base = build_tiny_llama(tmp_path / "base", [p.prompt for p in products])
    adapter = build_tiny_adapter(base, tmp_path / "lora")
    predictor = registry.build("qlora", {"base": str(base), "adapter": str(adapter),
                                         "quant": "none", "device": "cpu", "batch_size": "2"})
    check_predictor(predictor, products)
