"""A new user's frictions: short skip reasons, what train and export do, the
fitted models in `cache info`, plain English in errors."""

from __future__ import annotations

from bench.cli import build_parser, main
from bench.tables import short_reason

QLORA = ("model meta-llama/Meta-Llama-3.1-8B is not downloaded (not in the Hugging Face "
         "cache) and the hub is unreachable; adapter ed-donner/pricer@e8d637df is not "
         "downloaded (not in the Hugging Face cache) and the hub is unreachable; no CUDA GPU, "
         "and on CPU the model needs about 35.4 GiB but only 20.0 GiB of RAM is available")


def test_a_long_reason_is_one_short_line_and_the_full_one_is_on_request(capsys):
    short = short_reason(QLORA)
    assert len(short) <= 70 and short.endswith("(+2 more)") and "\n" not in short
    assert short_reason("set OPENAI_API_KEY") == "set OPENAI_API_KEY"
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) < 250
    assert main(["list", "--long"]) == 0


def test_train_offers_only_the_options_that_apply(capsys):
    parser = build_parser()
    try:
        parser.parse_args(["train", "--help"])
    except SystemExit:
        pass
    text = capsys.readouterr().out
    assert "--param" in text and "--data-dir" in text
    assert "--test" not in text and "--no-cache" not in text and "replac" in text


def test_human_export_needs_an_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    try:
        code = main(["human", "export"])
    except SystemExit as exc:
        code = exc.code
    assert code == 2 and list(tmp_path.iterdir()) == []
    assert "--output" in capsys.readouterr().err


def test_cache_info_counts_the_fitted_models(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path))
    model = tmp_path / "models" / "xgboost" / "abc123"
    model.mkdir(parents=True)
    (model / "model.json").write_text("x" * 1000)
    assert main(["cache", "info"]) == 0
    out = capsys.readouterr().out
    assert "1 fitted models, 1,000 bytes" in out and "xgboost: 1" in out


def test_a_wrong_typed_param_says_an_int(capsys, synthetic_test_set):
    import tests.plugins.toy_predictors  # noqa: F401

    assert main(["run", "batch-pricer", "--param", "batch_size=abc", "--dry-run",
                 "--test", synthetic_test_set.source]) == 2
    assert "is not an int" in capsys.readouterr().err


def test_train_says_where_the_model_went_and_when_it_replaced_one(tmp_path, data_dir):
    from tests.conftest import run_cli

    env = {"BENCH_CACHE_DIR": str(tmp_path)}
    args = ["train", "constant", "--data-dir", str(data_dir), "--param", "train_size=50"]
    first = run_cli(*args, env=env)
    assert first.returncode == 0, first.stderr
    (model,) = (tmp_path / "models" / "constant").iterdir()
    assert f"trained constant: saved the model in {model}" in first.stdout
    second = run_cli(*args, env=env)
    assert f"trained constant: replaced the saved model in {model}" in second.stdout
    assert "retrains even when a model is saved" in second.stderr
