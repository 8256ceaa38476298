"""`bench site` without a browser: deterministic files, the figures of the
reporting layer, stale files pruned, clear errors, lazy imports, the server."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bench import metrics, view
from bench.cli import main
from bench.reports import publish as leaderboard
from bench.site import pages, source
from bench.site.writer import build
from tests.conftest import ROOT, SESSION_CACHE
from tests.test_reports import make_results


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("BENCH_CACHE_DIR", str(SESSION_CACHE))  # the Vega bundle, once
    return make_results(tmp_path / "results")


def data(site: Path, rel: str) -> Any:
    text = (site / rel).read_text(encoding="utf-8")
    prefix = f'bench.put("{rel}",'
    assert text.startswith(prefix) and text.endswith(");\n")
    return json.loads(text[len(prefix):-3])


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_runs_give_the_same_bytes_and_nothing_is_rewritten(tiny: Path,
                                                                 tmp_path: Path) -> None:
    first = build(tiny, tmp_path / "a")
    second = build(tiny, tmp_path / "b")
    assert snapshot(tmp_path / "a") == snapshot(tmp_path / "b")
    again = build(tiny, tmp_path / "a")
    assert first.written == len(first.files) and again.written == 0 and again.removed == 0
    assert {p.name for p in second.files} >= {"index.html", "predictor.html", "item.html",
                                              "compare.html", "vega.js", "site.js"}


def test_leaderboard_data_are_the_rows_of_leaderboard_json(tiny: Path, tmp_path: Path) -> None:
    assert main(["leaderboard", "--results-dir", str(tiny), "--no-charts"]) == 0
    rows = json.loads((tiny / "local" / "leaderboard.json").read_text())["rows"]
    build(tiny, tmp_path / "site")
    shown = data(tmp_path / "site", "data/tiny/leaderboard.js")["rows"]
    assert len(shown) == len(rows) == 4
    for s, r in zip(shown, rows, strict=True):
        assert s.pop("slug")
        r.pop("run_dir")
        assert s == r


def test_every_pair_is_the_paired_comparison_of_bench_compare(tiny: Path,
                                                             tmp_path: Path) -> None:
    build(tiny, tmp_path / "site")
    entries = {e.predictor: e for e in leaderboard.collect(tiny)}
    listing = data(tmp_path / "site", "data/tiny/items.js")
    for name, slug in zip(listing["predictors"], listing["slugs"], strict=True):
        page = data(tmp_path / "site", f"data/tiny/p/{slug}.js")
        assert set(page["pairs"]) == set(entries) - {name}
        for other, got in page["pairs"].items():
            a, b = entries[name], entries[other]
            want = metrics.paired({**a.truth, **b.truth}, a.answers, b.answers).as_dict()
            assert got["items"] == want["items"] and got["tied"] == want["tied"]
            for key in ("diff", "mae_a", "mae_b", "a_wins", "b_wins"):
                assert got[key] == pytest.approx(want[key], abs=1e-9)
            assert got["diff_ci95"] == pytest.approx(want["diff_ci95"], abs=1e-9)


def test_predictor_data_hold_every_item_with_its_band_and_reason(tiny: Path,
                                                                tmp_path: Path) -> None:
    build(tiny, tmp_path / "site")
    listing = data(tmp_path / "site", "data/tiny/items.js")
    delta = data(tmp_path / "site", "data/tiny/p/delta.js")
    assert listing["id"] == list(range(8))
    assert listing["title"][0] == "item 0"  # the test rows are gone: items named by id
    assert delta["guess"][-1] is None and delta["reason"][-1] == "no number"
    assert delta["band"][0] == "g" and delta["error"][0] == 20.0  # 30 for 10: < $40
    assert delta["provenance"]["kind"] == "custom"
    chunk = data(tmp_path / "site", "data/tiny/text/0.js")
    assert len(chunk["guess"]) == 8 and len(chunk["guess"][0]) == 4


def test_a_run_removed_takes_its_page_data_with_it(tiny: Path, tmp_path: Path) -> None:
    site = tmp_path / "site"
    build(tiny, site)
    (site / "notes.txt").write_text("mine")  # not the site's: never deleted
    assert (site / "data/tiny/p/gamma.js").exists()
    shutil.rmtree(next((tiny / "tiny").glob("gamma-*")))
    done = build(tiny, site)
    assert not (site / "data/tiny/p/gamma.js").exists() and done.removed == 1
    assert (site / "notes.txt").read_text() == "mine"


def test_slugs_are_unique_and_file_safe() -> None:
    assert pages.slugs(["a:b", "a_b", "A_B", "x/y"]) == {
        "a:b": "a_b", "a_b": "a_b-2", "A_B": "A_B-3", "x/y": "x_y"}


def test_reversed_pair_is_the_pair_computed_the_other_way() -> None:
    truth = {i: float(10 + 7 * i) for i in range(40)}
    a = {i: t * (1.3 if i % 3 else 0.8) for i, t in truth.items()}
    b = {i: t + (25 if i % 2 else -5) for i, t in truth.items()}
    ra = source.Run("a", "t", "custom", {}, {}, a, {}, {}, {}, {}, truth)
    rb = source.Run("b", "t", "custom", {}, {}, b, {}, {}, {}, {}, truth)
    table = source.pair_table([ra, rb])
    want = metrics.paired(truth, b, a).as_dict()
    got = table[("b", "a")]
    assert got["diff_ci95"] == pytest.approx(want["diff_ci95"], abs=1e-9)
    assert got["a_wins"] == want["a_wins"] and got["diff"] == pytest.approx(want["diff"])


def test_site_without_runs_is_one_clear_line(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "--results-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "no stored runs: run `bench run` first" in err and len(err.splitlines()) == 1
    assert main(["view", "--results-dir", str(tmp_path), "--port", "70000"]) == 2
    assert "--port must be 0..65535" in capsys.readouterr().err


def test_cli_writes_the_site_into_the_results_dir(tiny: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["site", "--results-dir", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert "site of 4 runs (tiny)" in out and (tiny / "local" / "site" / "index.html").exists()


def test_view_server_hands_out_the_built_files_on_loopback(tiny: Path, tmp_path: Path) -> None:
    build(tiny, tmp_path / "site")
    httpd = view.server(tmp_path / "site", 0)
    assert httpd.server_address[0] == "127.0.0.1"
    import threading

    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/"
        with urllib.request.urlopen(url + "index.html", timeout=10) as reply:
            assert b'data-page="leaderboard"' in reply.read()
        with urllib.request.urlopen(url + "data/tiny/leaderboard.js", timeout=10) as reply:
            assert reply.read().startswith(b'bench.put("data/tiny/leaderboard.js"')
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_leaderboard_and_list_do_not_import_the_site(tiny: Path) -> None:
    code = ("import sys; from bench.cli import main; "
            f"main(['leaderboard', '--results-dir', {str(tiny)!r}, '--no-charts']); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('altair', 'vl_convert', 'playwright') or m.startswith('bench.site')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_pairs_split_over_forked_workers_equal_those_of_one_process() -> None:
    truth = {i: float(5 + 11 * i) for i in range(60)}
    runs = []
    for k in range(21):  # 210 pairs: over source.PARALLEL_FROM
        guesses = {i: None if (i + k) % 17 == 0 else t * (1 + ((i * k) % 7 - 3) / 10)
                   for i, t in truth.items()}
        runs.append(source.Run(f"r{k}", "t", "custom", {}, {}, guesses, {}, {}, {}, {}, truth))
    assert len(runs) * (len(runs) - 1) // 2 >= source.PARALLEL_FROM
    forked = source.PairTable(runs, workers=2)
    assert forked._pool is not None  # the workers did start
    assert forked.result() == source.PairTable(runs, workers=1).result()


def test_a_damaged_run_folder_does_not_break_the_site(tiny: Path, tmp_path: Path) -> None:
    broken = next((tiny / "tiny").glob("beta-*"))
    (broken / "run.json").write_text("{ torn")
    with (next((tiny / "tiny").glob("alpha-*")) / "predictions.jsonl").open("a") as handle:
        handle.write('{"id": 99, "pri')  # a torn last line, as a killed run leaves it
    # delta answered 7 of 8: ranked under an 85% rule, so the runs are in MAE order
    done = build(tiny, tmp_path / "site", min_answered=0.85)
    assert done.runs == 3
    assert data(tmp_path / "site", "data/tiny/items.js")["predictors"] == ["alpha", "delta",
                                                                          "gamma"]


def test_a_folder_that_is_not_a_site_is_left_alone(tiny: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    mine = tmp_path / "project"
    (mine / "data").mkdir(parents=True)
    (mine / "data" / "keep.csv").write_text("a,b\n")
    assert main(["site", "--results-dir", str(tiny), "--output", str(mine)]) == 2
    assert "not a site that `bench site` wrote" in capsys.readouterr().err
    assert (mine / "data" / "keep.csv").read_text() == "a,b\n"
    assert not (mine / "index.html").exists()
