import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bench import registry
from bench.errors import BenchError
from tests.conftest import fake_distribution, run_cli
from tests.plugins import toy_predictors  # noqa: F401  (registers the toys)


def test_spec_and_params_parsing():
    assert registry.parse_spec("openai:gpt-4o") == ("openai", "gpt-4o")
    assert registry.parse_spec("reference:a:b") == ("reference", "a:b")
    assert registry.parse_spec("human") == ("human", None)
    assert registry.parse_params(["a=1", "b=x=y"]) == {"a": "1", "b": "x=y"}
    with pytest.raises(BenchError, match="KEY=VALUE"):
        registry.parse_params(["novalue"])


def test_function_predictor_params_are_typed():
    predictor = registry.build("slow-pricer", {"delay": "0"})
    assert predictor.name == "slow-pricer"
    assert predictor.fingerprint()["params"] == {"delay": 0.0}
    with pytest.raises(BenchError, match="not a float"):
        registry.build("slow-pricer", {"delay": "soon"})
    with pytest.raises(BenchError, match="no parameter 'speed'"):
        registry.build("slow-pricer", {"speed": "1"})


def test_class_predictor_params_and_variants():
    predictor = registry.build("batch-pricer", {"batch_size": "3"})
    assert predictor.batch_size == 3
    with pytest.raises(BenchError, match="takes no variant"):
        registry.build("batch-pricer:x")
    with pytest.raises(BenchError, match="unknown predictor 'nope'"):
        registry.build("nope")


def test_function_predictor_none_and_prediction(monkeypatch):
    predictor = registry.build("flaky-pricer")
    from bench.types import Product

    product = Product(id=10, title="t", description="t", prompt="p")
    assert predictor.predict_one(product).price is None


def test_entry_point_plugin_is_listed_and_runs(tmp_path, data_dir):
    """A separate package declares `bench.predictors` and the CLI finds it."""
    env = fake_distribution(tmp_path / "site", "mypricer", '''
        from bench import price_predictor

        @price_predictor("fifty")
        def fifty(product):
            """Always fifty dollars."""
            return 50.0
    ''', "fifty = mypricer:fifty\n")
    listed = run_cli("list", "--data-dir", str(data_dir), env=env)
    assert listed.returncode == 0, listed.stderr
    assert "fifty" in listed.stdout and "Always fifty dollars." in listed.stdout
    ran = run_cli("run", "fifty", "--data-dir", str(data_dir), "--results-dir",
                  str(tmp_path / "results"), "--limit", "5", "--quiet", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "5/5" in ran.stdout


def test_plain_module_plugin_via_env(tmp_path, data_dir):
    (tmp_path / "myguess.py").write_text(
        "from bench import price_predictor\n\n"
        "@price_predictor('my-guess')\ndef my_guess(product):\n    return 10.0\n")
    result = run_cli("run", "my-guess", "--data-dir", str(data_dir), "--results-dir",
                     str(tmp_path / "r"), "--limit", "3", "--quiet",
                     env={"BENCH_PLUGINS": "myguess"}, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "my-guess" in result.stdout and "3/3" in result.stdout
    bad = run_cli("list", env={"BENCH_PLUGINS": "no_such_module"}, cwd=tmp_path)
    assert bad.returncode == 2 and "no_such_module" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_listing_imports_no_heavy_library(data_dir, tmp_path):
    results = tmp_path / "r"
    run = run_cli("run", "human", "--data-dir", str(data_dir), "--results-dir", str(results),
                  "--quiet")
    assert run.returncode == 0, run.stderr
    probe = textwrap.dedent(f"""
        import sys
        from bench.cli import main
        for argv in (["list", "--data-dir", {str(data_dir)!r}],
                     ["leaderboard", "--results-dir", {str(results)!r}]):
            assert main(argv) == 0
        heavy = [m for m in ("torch", "sklearn", "xgboost", "transformers", "peft",
                             "bitsandbytes", "openai", "anthropic") if m in sys.modules]
        print("HEAVY", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout


def test_a_predictor_registered_by_name_only_is_not_in_run_all():
    """``in_all=False`` (the mlp member, whose figures depend on the CPU): runnable and
    listed by name, never run by `run all`."""
    from bench import registry

    assert "mlp" in registry.entries() and not registry.get("mlp").in_all
    assert "mlp" not in registry.specs(["all"])
    assert registry.specs(["mlp"]) == ["mlp"]
    assert {"xgboost", "linear", "constant"} <= set(registry.specs(["all"]))
