import json
from pathlib import Path

import pytest

from bench.provenance import local_path
from tests.conftest import run_cli
from tests.test_data import BAD_FILES


@pytest.mark.parametrize("case", ["truncated", "no_price", "negative", "duplicate_ids", "csv",
                                  "empty"])
def test_bad_test_file_exits_2_with_one_line(tmp_path, case):
    content, line, message = BAD_FILES[case]
    path = tmp_path / "t.jsonl"
    path.write_text(content)
    result = run_cli("run", "human", "--test", str(path), "--results-dir", str(tmp_path / "r"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and str(path) in lines[0]
    assert not (tmp_path / "r").exists()


def test_other_test_file_is_scored_and_kept_apart(tmp_path, data_dir):
    rows = (data_dir / "test.jsonl").read_text().splitlines()[:12]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({k: json.loads(r)[k] for k in ("text", "price")})
                              for r in rows) + "\n")
    results = tmp_path / "r"
    default = run_cli("run", "human", "--test", str(path), "--data-dir", str(data_dir),
                      "--results-dir", str(results), "--quiet")
    assert default.returncode == 2 and "pricer-test only" in default.stderr
    sheet = tmp_path / "guesses.csv"
    sheet.write_text("id,prediction\n" + "".join(f"{i},{10 * i}\n" for i in range(12)))
    ran = run_cli("run", "human", "--param", f"csv={sheet}", "--test", str(path),
                  "--data-dir", str(data_dir), "--results-dir", str(results), "--quiet")
    assert ran.returncode == 0, ran.stderr
    assert "12/12" in ran.stdout
    (run_dir,) = results.glob("mine-*/human-*")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["test_set"].startswith("mine-") and not Path(info["data_source"]).is_absolute()
    assert local_path(info["data_source"]).resolve() == path.resolve()


@pytest.mark.parametrize(("args", "message"), [
    (["run", "nope"], "unknown predictor 'nope'"),
    (["run", "human", "--param", "oops"], "KEY=VALUE"),
    (["run", "human", "--param", "colour=red"], "no parameter 'colour'"),
    (["run", "all", "--param", "colour=red"], "no predictor takes the parameter 'colour'"),
    (["run", "human", "--limit", "0"], "--limit"),
    (["run", "all", "human"], "cannot be combined"),
    (["compare", "a", "b", "--results-dir", "/nonexistent"], "no stored run"),
    (["leaderboard", "--results-dir", "/nonexistent"], "no stored runs"),
])
def test_user_mistakes_exit_2(args, message, data_dir):
    result = run_cli(*args, "--data-dir", str(data_dir)) if args[0] == "run" else run_cli(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_missing_data_dir_is_a_clear_error(tmp_path):
    result = run_cli("run", "human", "--data-dir", str(tmp_path / "nope"))
    assert result.returncode == 2 and "data directory does not exist" in result.stderr


def test_score_and_compare(tmp_path, data_dir):
    results = tmp_path / "r"
    for spec in ("human", "reference:gpt-4o-2024-08-06"):
        ran = run_cli("run", spec, "--data-dir", str(data_dir), "--results-dir", str(results),
                      "--quiet")
        assert ran.returncode == 0, ran.stderr
    scored = run_cli("score", "--results-dir", str(results))
    assert scored.returncode == 0 and "$126.55" in scored.stdout and "$75.92" in scored.stdout
    compared = run_cli("compare", "human", "reference:gpt-4o-2024-08-06", "--results-dir",
                       str(results))
    assert compared.returncode == 0, compared.stderr
    assert "250 items" in compared.stdout and "+$50.63" in compared.stdout


def test_dry_run_sends_and_writes_nothing(tmp_path, data_dir):
    result = run_cli("run", "human", "--dry-run", "--data-dir", str(data_dir), "--results-dir",
                     str(tmp_path / "r"))
    assert result.returncode == 0 and "nothing sent" in result.stdout
    assert not (tmp_path / "r").exists()
