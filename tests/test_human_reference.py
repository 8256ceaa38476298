import csv
import io
import json
from pathlib import Path

import pytest

from bench import registry
from bench.context import Context
from bench.data import load_test_set
from bench.errors import BenchError
from predictors.sheets import read_guesses
from tests.conftest import run_cli

PUBLISHED = {  # run -> (MAE, RMSLE, hits) from the data README
    "human": ("$126.55", "1.00", "32.0%"),
    "reference:human": ("$126.55", "1.00", "32.0%"),
    "reference:gpt-4o-2024-08-06": ("$75.92", "0.75", "58.0%"),
    "reference:gpt-4o-mini": ("$79.58", "0.59", "52.0%"),
    "reference:claude-3-5-sonnet-20240620": ("$100.83", "0.60", "50.8%"),
    "reference:llama-3.1-8b-qlora-pricer": ("$46.66", "0.38", "70.8%"),
    "reference:llama-3.1-8b-base": ("$395.72", "1.49", "28.0%"),
    "reference:word2vec-random-forest": ("$97.11", "0.88", "34.0%"),
}


@pytest.fixture(scope="module")
def board(tmp_path_factory, data_dir):
    results = tmp_path_factory.mktemp("results")
    ran = run_cli("run", "all", "--data-dir", str(data_dir), "--results-dir", str(results),
                  "--quiet", env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})
    assert ran.returncode == 0, ran.stderr
    made = run_cli("leaderboard", "--results-dir", str(results))
    assert made.returncode == 0, made.stderr
    return ran.stdout, results


def test_run_all_reproduces_the_published_figures(board):
    stdout, _ = board
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in stdout.splitlines() if line.startswith("| ")}
    for name, (mae, rmsle, hits) in PUBLISHED.items():
        answered, got_mae, _, got_rmsle, got_hits = rows[name][:5]
        assert (answered, got_mae, got_rmsle, got_hits) == ("250/251", mae, rmsle, hits), name


def test_leaderboard_lists_human_and_all_recorded_runs(board, data_dir):
    _, results = board
    recorded = sorted(p.stem for p in (data_dir / "reference-runs").glob("*.csv"))
    assert len(recorded) == 22
    rows = json.loads((results / "local" / "leaderboard.json").read_text())["rows"]
    names = {r["predictor"] for r in rows}
    assert {"human", *(f"reference:{r}" for r in recorded)} <= names
    row = next(r for r in rows if r["predictor"] == "reference:llama-3.1-8b-qlora-pricer")
    assert row["answered"] == 250 and row["total"] == 251
    assert row["mae"] == pytest.approx(46.66488)
    lo, hi = row["mae_ci95"]
    assert lo < row["mae"] < hi and 0 <= row["hit_rate"] <= 1
    maes = [r["mae"] for r in rows if r["test_set"] == "pricer-test"]
    assert maes == sorted(maes)
    markdown = (results / "local" / "LEADERBOARD.md").read_text()
    assert all(f"`reference:{r}`" in markdown for r in recorded)


def test_id_prediction_sheet_and_partial_coverage(tmp_path, data_dir):
    sheet = tmp_path / "mine.csv"
    sheet.write_text("id,prediction\n0,300\n1,$1,200.50\n")
    guesses = read_guesses(sheet, load_test_set(data_dir).products())
    assert guesses == {0: 300.0, 1: 1.0}  # unquoted, csv splits "$1,200.50" into columns
    sheet.write_text('id,prediction\n0,300\n1,"$1,200.50"\n')
    guesses = read_guesses(sheet, load_test_set(data_dir).products())
    assert guesses == {0: 300.0, 1: 1200.5}
    ctx = Context(data_dir=data_dir)
    predictor = registry.build("human", {"csv": str(sheet)}, ctx)
    predictions = predictor.predict(ctx.benchmark.products()[:3])
    assert [p.price for p in predictions] == [300.0, 1200.5, None]
    assert predictions[2].error == "no guess in the sheet"


def test_human_export_writes_the_blank_sheet(tmp_path, data_dir):
    out = tmp_path / "blank.csv"
    result = run_cli("human", "export", "--data-dir", str(data_dir), "--output", str(out))
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(out.read_text(), newline="")))
    assert len(rows) == 251 and all(r[1] == "0" for r in rows)
    original = list(csv.reader(io.StringIO((data_dir / "human_input.csv").read_text(),
                                           newline="")))
    assert [r[0] for r in rows[:250]] == [r[0] for r in original]
    again = run_cli("human", "export", "--data-dir", str(data_dir), "--output", str(out))
    assert again.returncode == 2 and "--force" in again.stderr


def _prompt(data_dir: Path, i: int) -> str:
    return load_test_set(data_dir).products()[i].prompt


def _sheet(rows: list[list[str]]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


BAD_SHEETS = {
    "empty": (lambda d: "", None, "empty sheet"),
    "non_numeric": (lambda d: _sheet([[_prompt(d, 0), "12"], [_prompt(d, 1), "lots"]]), 7,
                    "'lots' is not a number"),
    "negative": (lambda d: "id,prediction\n0,5\n1,-3\n", 3, "negative"),
    "nan": (lambda d: "id,prediction\n0,nan\n", 2, "not a finite number"),
    "unknown_prompt": (lambda d: _sheet([["How much is a cat?\n\nPrice is $", "3"]]), 1,
                       "prompt not in the test set"),
    "conflict": (lambda d: "id,prediction\n3,10\n4,5\n3,11\n", 4, "conflicting duplicate"),
    "one_column": (lambda d: "id\n3\n", 1, "found one"),
    "unknown_id": (lambda d: "id,prediction\n0,5\n9999,5\n", 3, "unknown id 9999"),
}


@pytest.mark.parametrize("case", sorted(BAD_SHEETS))
def test_bad_sheets_exit_2_with_one_line_and_touch_nothing(case, tmp_path, data_dir):
    results = tmp_path / "results"
    first = run_cli("run", "human", "--data-dir", str(data_dir), "--results-dir", str(results),
                    "--quiet")
    assert first.returncode == 0
    before = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}

    make, line, message = BAD_SHEETS[case]
    sheet = tmp_path / "sheet.csv"
    sheet.write_text(make(data_dir))
    result = run_cli("run", "human", "--param", f"csv={sheet}", "--data-dir", str(data_dir),
                     "--results-dir", str(results), "--quiet")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr
    where = f"{sheet}:{line}:" if line else f"{sheet}:"
    assert where in lines[0] and message in lines[0], lines[0]
    after = {p: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    assert after == before


@pytest.mark.parametrize(("content", "message"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(200)), "binary"),
    (b"id,prediction\n0,5\n1,caf\xe9\n", "not UTF-8"),
])
def test_garbage_sheets(tmp_path, data_dir, content, message):
    sheet = tmp_path / "sheet.csv"
    sheet.write_bytes(content)
    with pytest.raises(BenchError, match=message):
        read_guesses(sheet, load_test_set(data_dir).products())


def test_reference_needs_its_file_and_the_fixed_test_set(tmp_path, data_dir):
    ctx = Context(data_dir=data_dir)
    assert "no recorded run" in registry.build("reference:nope", {}, ctx).unavailable()
    assert registry.build("reference:gpt-4o-mini", {}, ctx).unavailable() is None
    other = tmp_path / "other.jsonl"
    other.write_text((data_dir / "test.jsonl").read_text().splitlines()[0] + "\n")
    ctx.test_set = load_test_set(test_file=other)
    assert "pricer-test only" in registry.build("reference:gpt-4o-mini", {}, ctx).unavailable()
