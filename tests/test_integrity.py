"""Nothing a file, a value or a predictor can do breaks the board (#21): odd values
are no answers with their reason (4), one odd run never stops the board (4), a
damaged cache is one line (5), unique temp names (9), the site switched whole (10),
never a write or delete through a symbolic link (3), the test set is what it says
it is (1, 2). Real files, real runs through the runner and the CLI."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from bench import prompts, runner
from bench.cli import main
from bench.data import load_test_set
from bench.errors import BenchError
from bench.functions import NotebookFunction
from bench.metrics import Paired
from bench.store import RunStore
from bench.types import MAX_PRICE, Prediction, Product
from tests.conftest import ROOT


class Fixed:
    """A batch predictor answering ``value`` (through ``Prediction.of``) for every item."""

    def __init__(self, name: str, value: object, tag: str = ""):
        self.name = name
        self.value = value
        self.tag = tag

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [Prediction.of(self.value) for _ in products]

    def fingerprint(self) -> dict[str, object]:
        return {"value": repr(self.value), "tag": self.tag}


def _run(predictor, test_set, results: Path, params: dict[str, str] | None = None):
    return runner.run_predictor(predictor, test_set, results, spec=predictor.name,
                                params=params, progress=False)


def _errors(store: RunStore) -> set[str | None]:
    return {r.error for r in store.records().values()}


# -- 4: a value that cannot be scored is no answer with its reason ----------------


@pytest.mark.parametrize("value", [1e308, MAX_PRICE * 1.5, 10**400,
                                   prompts.parse_price("9" * 308)],
                         ids=["1e308", "1.5 million", "int 10**400", "a reply of 308 nines"])
def test_a_huge_price_is_no_answer_with_its_reason(value, tmp_path, synthetic_test_set):
    result = _run(Fixed("huge", value), synthetic_test_set, tmp_path)
    assert result.scores.answered == 0 and result.scores.mae is None
    (error,) = _errors(result.store)
    assert "above the $1,000,000 limit" in error


def test_the_limit_itself_is_a_price(tmp_path, synthetic_test_set):
    result = _run(Fixed("top", MAX_PRICE), synthetic_test_set, tmp_path)
    assert result.scores.answered == len(synthetic_test_set)
    assert math.isfinite(result.scores.mae)


@pytest.mark.parametrize("value", [True, False])
def test_true_or_false_is_no_guess(value, tmp_path, synthetic_test_set):
    fn = NotebookFunction(lambda product: value, name=f"says-{value}")
    result = _run(fn, synthetic_test_set, tmp_path)
    assert result.scores.answered == 0
    assert _errors(result.store) == {f"returned {value}, not a price"}
    assert Prediction.of(value).price is None


def test_a_huge_truth_in_a_test_file_names_file_and_line(tmp_path, synthetic_test_set):
    lines = Path(synthetic_test_set.source).read_text().splitlines()
    row = json.loads(lines[3])
    lines[3] = json.dumps({**row, "price": 1e308})
    path = tmp_path / "huge.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=r"above the \$1,000,000 limit") as info:
        load_test_set(test_file=path)
    assert str(info.value).startswith(f"{path}:4: ")


def _old_huge_run(results: Path, test_set) -> RunStore:
    """A run stored by an older version that scored 1e308: answers and an infinite MAE."""
    store = _run(Fixed("old-huge", 12.0), test_set, results).store
    lines = [json.loads(x) for x in store.predictions_path.read_text().splitlines()]
    store.predictions_path.write_text("".join(json.dumps({**x, "price": 1e308}) + "\n"
                                              for x in lines))
    info = json.loads(store.run_path.read_text())
    info["metrics"]["mae"] = math.inf
    store.run_path.write_text(json.dumps(info))
    return store


def test_one_odd_run_never_stops_the_board(tmp_path, synthetic_test_set, capsys):
    results = tmp_path / "results"
    good = _run(Fixed("good", 30.0), synthetic_test_set, results).store
    odd = _old_huge_run(results, synthetic_test_set)
    # a parameter with a non-UTF-8 byte, stored by an older version
    bad_text = _run(Fixed("bytes", 20.0), synthetic_test_set, results).store
    info = json.loads(bad_text.run_path.read_text())
    info["params"] = {"tag": "a\udcff"}
    bad_text.run_path.write_text(json.dumps(info))
    # two runs whose parameters are 5,000 characters long (file names too long)
    for letter in "ab":
        _run(Fixed("long", 40.0, tag=letter * 5000), synthetic_test_set, results,
             params={"tag": letter * 5000})
    capsys.readouterr()

    assert main(["leaderboard", "--results-dir", str(results)]) == 0
    captured = capsys.readouterr()
    rows = json.loads((results / "local" / "leaderboard.json").read_text())["rows"]
    names = [r["predictor"].split(" (")[0] for r in rows]
    assert sorted(names) == ["good", "long", "long"]
    assert all(math.isfinite(r["mae"]) for r in rows)
    assert str(odd.run_path) in captured.err and str(bad_text.run_path) in captured.err
    # (a 5,000-character parameter no longer reaches a file name: rows are named by
    # cut values, see bench/reports/collect.py; both runs are still on the board)
    assert "good" in (results / "local" / "LEADERBOARD.md").read_text()
    assert good.dir.name in {r["run_dir"].split("/")[-1] for r in rows}
    for line in captured.err.splitlines():
        assert line.startswith("warning: ")

    assert main(["site", "--results-dir", str(results)]) == 0
    board = (results / "local" / "site" / "data" / synthetic_test_set.name
             / "leaderboard.js").read_text()
    assert "good" in board and "old-huge" not in board


def test_a_stored_huge_price_is_skipped_with_one_line(tmp_path, synthetic_test_set, capsys):
    odd = _old_huge_run(tmp_path, synthetic_test_set)
    capsys.readouterr()
    assert odd.records() == {}
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{odd.predictions_path}:1:" in err
    assert f"{len(synthetic_test_set)} such lines skipped" in err


def test_a_non_utf8_parameter_is_one_line(tmp_path, synthetic_test_set, capsys):
    argv = ["run", "slow-pricer", "--param", "delay=0\udcff", "--test",
            synthetic_test_set.source, "--results-dir", str(tmp_path)]
    import tests.plugins.toy_predictors  # noqa: F401  (registers slow-pricer)

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not UTF-8 text" in err and "delay" in err
    assert not list(tmp_path.rglob("run.json"))


def test_an_interval_that_is_not_a_number_is_no_verdict():
    nan = Paired(10, math.inf, math.inf, math.nan, (math.nan, math.nan), 0.1, 0.1, 0.8)
    assert nan.tied  # never "excludes 0"
    assert not Paired(10, 2.0, 1.0, 1.0, (0.5, 1.5), 0.1, 0.8, 0.1).tied


# -- 9: every atomic write has a unique temp name ------------------------------


def test_a_leftover_fixed_temp_name_never_blocks_the_charts(tmp_path, synthetic_test_set):
    """Two `bench leaderboard` at once clashed on `mae.png.tmp`: any name another
    writer holds (here, a folder by that name) must not matter."""
    _run(Fixed("good", 30.0), synthetic_test_set, tmp_path)
    charts = tmp_path / "local" / "charts" / synthetic_test_set.name
    charts.mkdir(parents=True)
    for name in ("mae.png.tmp", "good-scatter.png.tmp", "good-running.png.tmp"):
        (charts / name).mkdir()
    assert main(["leaderboard", "--results-dir", str(tmp_path)]) == 0
    assert (charts / "mae.png").read_bytes().startswith(b"\x89PNG")
    assert (charts / "good-scatter.png").read_bytes().startswith(b"\x89PNG")


def test_two_leaderboards_at_once_both_succeed(tmp_path, synthetic_test_set):
    for name, value in (("a", 30.0), ("b", 50.0)):
        _run(Fixed(name, value), synthetic_test_set, tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "bench", "leaderboard", "--results-dir", str(tmp_path)]
    for _ in range(2):
        shutil.rmtree(tmp_path / "local" / "charts", ignore_errors=True)  # both draw every chart
        procs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outs = [p.communicate(timeout=300) for p in procs]
        assert [p.returncode for p in procs] == [0, 0], outs
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


# -- 5: a damaged response cache is one line; the run goes on without it -----------


def _damaged_cache(kind: str, folder: Path) -> Path:
    from bench.cache import ResponseCache

    path = folder / "responses.sqlite"
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "folder":
        (path / "inside").mkdir(parents=True)
        return path
    cache = ResponseCache(path)
    for i in range(300):
        cache.put({"predictor": "openai", "i": i}, {"text": "x" * 200})
    cache.close()
    data = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(data[: len(data) // 3])
    else:  # corrupted: the header and the first pages overwritten
        path.write_bytes(b"\x13" * 9000 + data[9000:])
    return path


@pytest.mark.parametrize("kind", ["truncated", "corrupted", "folder"])
def test_a_damaged_cache_is_one_line_and_clear_always_works(kind, tmp_path, monkeypatch,
                                                            capsys, synthetic_test_set):
    from tests.conftest import run_cli
    from tests.fake_llm_server import FakeLLMServer

    cache_dir = tmp_path / "cache"
    path = _damaged_cache(kind, cache_dir)
    with FakeLLMServer() as server:
        env = {"OPENAI_BASE_URL": server.openai_url, "OPENAI_API_KEY": "sk-test-x",
               "BENCH_CACHE_DIR": str(cache_dir)}
        done = run_cli("run", "openai", "--test", synthetic_test_set.source, "--limit", "4",
                       "--results-dir", str(tmp_path / "results"), "--quiet", env=env,
                       timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "4/4" in done.stdout
    warnings = [line for line in done.stderr.splitlines() if "damaged response cache" in line]
    assert len(warnings) == 1 and str(path) in warnings[0]

    monkeypatch.setenv("BENCH_CACHE_DIR", str(cache_dir))
    capsys.readouterr()
    assert main(["cache", "info"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and "bench cache clear" in err
    assert main(["cache", "clear"]) == 0
    assert "removed the damaged response cache" in capsys.readouterr().out
    assert not path.exists()
    assert main(["cache", "info"]) == 0
    assert "0 responses" in capsys.readouterr().out


# -- 1: the benchmark is what it says it is -----------------------------------------


def _copy_rows(data_dir: Path) -> list[dict]:
    return [json.loads(x) for x in (data_dir / "test.jsonl").read_text().splitlines()]


def _write(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def test_a_price_leaked_into_the_texts_is_refused(tmp_path, data_dir, capsys):
    """Ids and prices kept, each description given its own price: not the benchmark."""
    rows = _copy_rows(data_dir)
    for r in rows[3:]:
        head, _, price_line = r["text"].rpartition("\n\nPrice is $")
        r["text"] = f"{head} (it sells for ${r['price']:.2f})\n\nPrice is ${price_line}"
    folder = _write(tmp_path / "leaky", rows)
    with pytest.raises(BenchError, match="do not match the manifest") as info:
        load_test_set(folder)
    assert str(info.value).startswith(f"{folder / 'test.jsonl'}:4: ")
    assert "row id 3 differs (its text or price)" in str(info.value)
    import tests.plugins.toy_predictors  # noqa: F401  (registers slow-pricer)

    assert main(["run", "slow-pricer", "--param", "delay=0", "--data-dir", str(folder),
                 "--results-dir", str(tmp_path / "results"), "--limit", "2"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{folder / 'test.jsonl'}:4:" in err
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("field", ["category", "details", "title"])
def test_an_edited_extra_field_is_refused(field, tmp_path, data_dir):
    rows = _copy_rows(data_dir)
    rows[17][field] = json.dumps({"Price": "$1"}) if field == "details" else "Edited"
    folder = _write(tmp_path / field, rows)
    with pytest.raises(BenchError, match="row id 17 differs") as info:
        load_test_set(folder)
    assert info.value.line == 18 and "title, category or details" in str(info.value)


def test_rows_without_extra_fields_are_the_same_benchmark(tmp_path, data_dir):
    """The hub's rows carry text and price only: a data folder like them is accepted,
    with the same identity as the full one."""
    rows = [{"id": r["id"], "text": r["text"], "price": r["price"]}
            for r in _copy_rows(data_dir)]
    bare = load_test_set(_write(tmp_path / "bare", rows))
    full = load_test_set(data_dir)
    assert bare.fingerprint == full.fingerprint
    assert [p.prompt for p in bare.products()] == [p.prompt for p in full.products()]


def test_hub_rows_with_an_edited_text_are_refused_naming_the_row(tmp_path, data_dir,
                                                                  monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from bench import data
    from tests.fake_hub import FakeHub

    spec = data.manifest("pricer-test")
    rows = _copy_rows(data_dir)
    rows[42]["text"] = rows[42]["text"].replace("\n\nPrice is $", " Worth $12.\n\nPrice is $")
    parquet = tmp_path / "t.parquet"
    pq.write_table(pa.table({"text": [r["text"] for r in rows],
                             "price": [r["price"] for r in rows]}), parquet)
    key = f"datasets/{spec['repo_id']}/resolve/{spec['revision']}/{spec['files'][0]}"
    with FakeHub({key: parquet}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(BenchError, match="row 42 differs"):
            data.load_test_set()


# -- 2: a --test file's identity is its content -------------------------------------


def test_two_test_files_with_one_name_and_the_same_prices_are_two_test_sets(
        tmp_path, synthetic_test_set):
    import tests.plugins.toy_predictors  # noqa: F401  (registers slow-pricer)
    from bench import registry

    original = Path(synthetic_test_set.source).read_text().splitlines()
    first, second = tmp_path / "a" / "mine.jsonl", tmp_path / "b" / "mine.jsonl"
    for path, extra in ((first, ""), (second, " Deluxe Edition")):
        path.parent.mkdir()
        lines = []
        for line in original:
            row = json.loads(line)
            title = row["title"]
            row["text"] = row["text"].replace(title, title + extra, 1)
            lines.append(json.dumps(row))
        path.write_text("\n".join(lines) + "\n")
    a, b = load_test_set(test_file=first), load_test_set(test_file=second)
    assert a.truth() == b.truth() and [r.id for r in a.rows] == [r.id for r in b.rows]
    assert a.name != b.name and a.fingerprint != b.fingerprint

    def run(test_set):
        predictor = registry.build("slow-pricer", {"delay": "0"})
        return runner.run_predictor(predictor, test_set, tmp_path / "results",
                                    spec="slow-pricer", params={"delay": "0"}, progress=False)

    ra, rb = run(a), run(b)
    assert rb.predicted == len(b) and ra.store.dir != rb.store.dir
    guesses_a = {i: r.price for i, r in ra.store.records().items()}
    guesses_b = {i: r.price for i, r in rb.store.records().items()}
    assert all(guesses_b[i] == guesses_a[i] + len(" Deluxe Edition") for i in guesses_a)


# -- 3: never outside its folder, never through a link -------------------------------


def _user_folder(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    mine = tmp_path / "my-documents"
    mine.mkdir()
    files = {"thesis.txt": b"four years of work\n", "old.js": b"keep me\n"}
    for name, body in files.items():
        (mine / name).write_bytes(body)
    return mine, files


def _unchanged(folder: Path, files: dict[str, bytes]) -> bool:
    return {p.name: p.read_bytes() for p in folder.iterdir()} == files


def test_the_site_never_deletes_through_a_linked_data_folder(tmp_path, synthetic_test_set,
                                                             monkeypatch):
    from tests.conftest import SESSION_CACHE

    monkeypatch.setenv("BENCH_CACHE_DIR", str(SESSION_CACHE))  # the Vega bundle, once
    results = tmp_path / "results"
    _run(Fixed("good", 30.0), synthetic_test_set, results)
    site = results / "local" / "site"
    assert main(["site", "--results-dir", str(results)]) == 0
    mine, files = _user_folder(tmp_path)
    import shutil as sh

    sh.rmtree(site / "data")
    (site / "data").symlink_to(mine, target_is_directory=True)
    assert main(["site", "--results-dir", str(results)]) == 0
    assert _unchanged(mine, files)
    assert not (site / "data").is_symlink() and (site / "data" / "index.js").is_file()


def test_a_linked_site_output_is_refused(tmp_path, synthetic_test_set, capsys):
    results = tmp_path / "results"
    _run(Fixed("good", 30.0), synthetic_test_set, results)
    mine, files = _user_folder(tmp_path)
    (results / "local").mkdir()
    (results / "local" / "site").symlink_to(mine, target_is_directory=True)
    capsys.readouterr()
    assert main(["site", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err
    assert str(results / "local" / "site") in err
    assert _unchanged(mine, files)


def test_a_run_folder_that_is_a_link_is_refused(tmp_path, synthetic_test_set, capsys):
    import tests.plugins.toy_predictors  # noqa: F401  (registers slow-pricer)

    results = tmp_path / "results"
    argv = ["run", "slow-pricer", "--param", "delay=0", "--test", synthetic_test_set.source,
            "--results-dir", str(results)]
    assert main([*argv, "--limit", "3"]) == 0
    (run_dir,) = results.glob("*/slow-pricer-*")
    mine = tmp_path / "elsewhere"
    run_dir.rename(mine)
    run_dir.symlink_to(mine, target_is_directory=True)
    before = {p.name: p.read_bytes() for p in mine.iterdir()}
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err and str(run_dir) in err
    assert {p.name: p.read_bytes() for p in mine.iterdir()} == before


def test_predictions_that_link_to_a_user_file_are_never_written_through(
        tmp_path, synthetic_test_set, capsys):
    import tests.plugins.toy_predictors  # noqa: F401  (registers slow-pricer)

    results = tmp_path / "results"
    argv = ["run", "slow-pricer", "--param", "delay=0", "--test", synthetic_test_set.source,
            "--results-dir", str(results)]
    assert main([*argv, "--limit", "3"]) == 0
    (predictions,) = results.glob("*/slow-pricer-*/predictions.jsonl")
    notes = tmp_path / "notes.txt"
    notes.write_bytes(b"line one\nthe last line, no newline")  # looks like a torn line
    predictions.unlink()
    predictions.symlink_to(notes)
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err and str(predictions) in err
    assert notes.read_bytes() == b"line one\nthe last line, no newline"


@pytest.mark.parametrize("link", ["LEADERBOARD.md", "charts"])
def test_the_leaderboard_never_writes_through_a_link(link, tmp_path, synthetic_test_set,
                                                     capsys):
    results = tmp_path / "results"
    _run(Fixed("good", 30.0), synthetic_test_set, results)
    mine, files = _user_folder(tmp_path)
    if link == "charts":
        (results / "local").mkdir(exist_ok=True)
        (results / "local" / "charts").symlink_to(mine, target_is_directory=True)
        target = mine
    else:
        (results / "local").mkdir(exist_ok=True)
        (results / "local" / link).symlink_to(mine / "thesis.txt")
        target = mine
    capsys.readouterr()
    assert main(["leaderboard", "--results-dir", str(results)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "symbolic link" in err
    assert _unchanged(target, files)


# -- 10: the site is written beside the old one and switched whole -------------------


def _site_snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_an_interrupted_site_build_leaves_the_old_site_whole(tmp_path, synthetic_test_set,
                                                             monkeypatch):
    from bench.site import pages
    from bench.site.writer import build
    from tests.conftest import SESSION_CACHE

    monkeypatch.setenv("BENCH_CACHE_DIR", str(SESSION_CACHE))  # the Vega bundle, once
    results, site = tmp_path / "results", tmp_path / "results" / "site"
    for name, value in (("a", 30.0), ("b", 50.0)):
        _run(Fixed(name, value), synthetic_test_set, results)
    build(results, site)
    (site / "CNAME").write_text("prices.example.org\n")  # not the site's: carried over
    before = _site_snapshot(site)
    _run(Fixed("c", 70.0), synthetic_test_set, results)

    real, calls = pages.predictor, []

    def interrupted(*args, **kwargs):  # Ctrl-C on the second predictor page
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(pages, "predictor", interrupted)
    with pytest.raises(KeyboardInterrupt):
        build(results, site)
    assert _site_snapshot(site) == before  # nothing half-updated
    assert sorted(p.name for p in site.parent.iterdir() if p.name.startswith(".site")) == []

    # A build killed outright leaves its sibling folder: the next build removes it.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    leftover = site.parent / f".site.building-{dead}-x1y2"
    (leftover / "data").mkdir(parents=True)
    (leftover / "data" / "index.js").write_text("half")
    monkeypatch.setattr(pages, "predictor", real)
    done = build(results, site)
    assert not leftover.exists()
    after = _site_snapshot(site)
    assert after["CNAME"] == b"prices.example.org\n"
    assert any(rel.endswith("/p/c.js") for rel in after)
    assert done.written < len(done.files)  # unchanged files were not rewritten
    assert all(after[rel] == body for rel, body in before.items()
               if rel.startswith("assets/"))


class Odd:
    """Answers $10 with a time and a cost that are not finite numbers."""

    name = "odd-extras"

    def predict(self, products: Sequence[Product]) -> list[Prediction]:
        return [Prediction(price=10.0, latency_s=math.nan, cost_usd=math.inf,
                           input_tokens=10**400) for _ in products]


def test_a_time_or_cost_that_is_no_number_keeps_the_answer_not_the_figure(
        tmp_path, synthetic_test_set, monkeypatch):
    from tests.conftest import SESSION_CACHE

    monkeypatch.setenv("BENCH_CACHE_DIR", str(SESSION_CACHE))  # the Vega bundle, once
    result = _run(Odd(), synthetic_test_set, tmp_path)
    records = result.store.records()
    assert {r.price for r in records.values()} == {10.0}
    assert {(r.prediction.latency_s, r.prediction.cost_usd, r.prediction.input_tokens)
            for r in records.values()} == {(None, None, None)}
    assert main(["leaderboard", "--no-charts", "--results-dir", str(tmp_path)]) == 0
    assert main(["site", "--results-dir", str(tmp_path)]) == 0


def test_the_site_switches_by_renames_where_there_is_no_atomic_exchange(
        tmp_path, synthetic_test_set, monkeypatch):
    """A system without renameat2 (macOS, old kernels): two renames, the same result."""
    from bench.site import writer
    from tests.conftest import SESSION_CACHE

    monkeypatch.setenv("BENCH_CACHE_DIR", str(SESSION_CACHE))  # the Vega bundle, once
    monkeypatch.setattr(writer, "_exchange", lambda a, b: False)
    results, site = tmp_path / "results", tmp_path / "out" / "site"
    _run(Fixed("a", 30.0), synthetic_test_set, results)
    writer.build(results, site)
    _run(Fixed("b", 50.0), synthetic_test_set, results)
    done = writer.build(results, site)
    assert done.runs == 2 and any(p.name == "b.js" for p in done.files)
    assert all(p.is_file() for p in done.files)
    assert sorted(p.name for p in site.parent.iterdir()) == ["site"]
