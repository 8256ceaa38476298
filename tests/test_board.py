"""A board no one can game or shake (#20): who may be ranked (1), one status for
every view (2), a sheet's path is not its name (3), and a user's runs and looks
never write the published board (6). Real runs of the person's sheet and of
recorded reference runs on the real test set, through the CLI and the API."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import bench
from bench import cli, metrics
from bench.cli import main
from bench.records import RunInfo
from bench.reports import format as fmt
from bench.reports import publish as leaderboard
from tests.conftest import ROOT, run_cli
from tests.test_reports import make_results

LEADER = "reference:llama-3.1-8b-qlora-pricer"
OTHER = "reference:gpt-4o-mini"


def _truth(data_dir: Path) -> dict[int, float]:
    rows = [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]
    return {r["id"]: r["price"] for r in rows}


def _sheet(path: Path, guesses: dict[int, float]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("id,prediction\n" + "".join(f"{i},{g}\n" for i, g in guesses.items()))
    return path


def _cli(*args: str) -> int:
    return main([*args])


def _rows(board: Path) -> list[dict]:
    return json.loads((board / "leaderboard.json").read_text())["rows"]


@pytest.fixture
def recorded(tmp_path: Path, data_dir: Path) -> Path:
    """A results folder with two recorded reference runs (no training, seconds)."""
    results = tmp_path / "results"
    assert _cli("run", LEADER, OTHER, "--data-dir", str(data_dir), "--results-dir",
                str(results), "--quiet") == 0
    return results


# -- 1: only a run asked every item, answering enough of them, is ranked ------------


def test_a_three_guess_sheet_is_listed_not_ranked_and_never_leads(
        recorded: Path, data_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truth = _truth(data_dir)
    perfect = _sheet(tmp_path / "three.csv", {i: truth[i] for i in sorted(truth)[:3]})
    assert _cli("run", "human", "--param", f"csv={perfect}", "--data-dir", str(data_dir),
                "--results-dir", str(recorded), "--quiet") == 0
    assert _cli("leaderboard", "--no-charts", "--results-dir", str(recorded),
                "--data-dir", str(data_dir)) == 0
    board = recorded / "local"
    document = json.loads((board / "leaderboard.json").read_text())
    assert document["ranking"]["min_answered"] == 0.95
    rows = {r["predictor"]: r for r in document["rows"]}
    assert [r["predictor"] for r in document["rows"]] == [LEADER, OTHER, "human"]
    human = rows["human"]
    assert human["mae"] == 0.0 and human["status"] == "complete"  # perfect, on 3 items
    assert human["ranked"] is False and human["rank"] is None
    assert human["not_ranked"] == "answered 3/251 (under 95%)"
    for key in ("predictor", "test_set", "answered", "total", "mae", "mae_ci95", "rmsle",
                "hit_rate", "status", "params", "run_dir"):
        assert key in human
    assert rows[LEADER]["rank"] == 1 and rows[LEADER]["ranked"] is True
    vs = rows[OTHER]["vs_leader"]
    assert vs["leader"] == LEADER and human["vs_leader"]["leader"] == LEADER  # the best ranked
    assert 0 < vs["p_value"] < 0.001 and vs["p_holm"] == vs["p_value"]  # one comparison
    assert vs["verdict"] == "worse"
    assert human["vs_leader"]["p_holm"] is None and human["vs_leader"]["verdict"] is None
    markdown = (board / "LEADERBOARD.md").read_text()
    assert f"| 1 | `{LEADER}` |" in markdown and "Not ranked (1):" in markdown
    assert "| answered 3/251 (under 95%) | `human` | person | 3/251 | $0.00 |" in markdown
    csv_header = (board / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert {"ranked", "not_ranked", "vs_leader_p", "vs_leader_p_holm"} <= set(csv_header)
    capsys.readouterr()
    assert _cli("show", "human", "--results-dir", str(recorded)) == 0
    out = capsys.readouterr().out
    assert "not ranked: answered 3/251 (under 95%); vs #1 " + LEADER in out
    frame = bench.leaderboard(recorded)
    assert frame.attrs["min_answered"] == 0.95
    assert list(frame["predictor"]) == [LEADER, OTHER, "human"]
    assert list(frame["ranked"]) == [True, True, False]
    # The minimum share is settable, and recorded: at 1% the sheet leads.
    assert _cli("leaderboard", "--no-charts", "--results-dir", str(recorded),
                "--min-answered", "1%") == 0
    document = json.loads((board / "leaderboard.json").read_text())
    assert document["ranking"]["min_answered"] == 0.01
    assert document["rows"][0]["predictor"] == "human" and document["rows"][0]["rank"] == 1
    low = bench.leaderboard(recorded, min_answered=0.01)
    assert low.iloc[0]["predictor"] == "human" and low.attrs["min_answered"] == 0.01
    capsys.readouterr()
    with pytest.raises(SystemExit) as refused:
        _cli("leaderboard", "--results-dir", str(recorded), "--min-answered", "2")
    assert refused.value.code == 2 and "--min-answered" in capsys.readouterr().err
    with pytest.raises(bench.BenchError, match="from 0 to 1"):
        bench.leaderboard(recorded, min_answered=1.5)


def test_the_sign_flip_p_value_is_exact_for_few_items_and_deterministic() -> None:
    truth = {i: 100.0 for i in range(8)}
    worse = {i: 110.0 + i for i in truth}  # A misses by more on every item
    better = {i: 101.0 for i in truth}
    p = metrics.paired(truth, worse, better)
    assert p.p_value == pytest.approx(2 / 256)  # all + or all -: 2 of 2^8 patterns
    assert metrics.paired(truth, better, worse).p_value == p.p_value  # two-sided
    same = metrics.paired(truth, better, better)
    assert same.p_value == 1.0
    # Many items: random patterns with a fixed seed, in item-id order whatever the
    # order the answers were stored in; never 0.
    big = {i: 50.0 + i for i in range(200)}
    a = {i: t + (3.0 if i % 3 else -1.0) for i, t in big.items()}
    b = {i: t + 2.0 for i, t in big.items()}
    first = metrics.paired(big, a, b).p_value
    shuffled = metrics.paired(dict(reversed(list(big.items()))), dict(reversed(list(a.items()))),
                              b).p_value
    assert first == shuffled and 0 < first < 1
    assert metrics.paired(big, b, b).p_value == 1.0


def test_holm_adjusts_step_down_and_keeps_the_order() -> None:
    adjusted = metrics.holm([0.04, 0.01, None, 0.03])
    assert adjusted == pytest.approx([0.06, 0.03, None, 0.06])  # 3x, then 2x (raised), 1x
    assert metrics.holm([]) == [] and metrics.holm([0.9, 0.8]) == [1.0, 1.0]
    assert metrics.holm([0.5, 0.01]) == pytest.approx([0.5, 0.02])


def test_with_many_comparisons_a_lucky_interval_is_not_a_verdict(tmp_path: Path) -> None:
    """The tiny board: gamma's 8 losses in 8 are significant after the correction;
    alpha is tied; delta (7 of 8 answered) is outside the family."""
    entries = leaderboard.collect(make_results(tmp_path / "results"))
    by_name = {e.predictor: e for e in entries}
    gamma, alpha, delta = by_name["gamma"], by_name["alpha"], by_name["delta"]
    assert gamma.vs_leader is not None and gamma.vs_leader.p_value == pytest.approx(2 / 256)
    assert gamma.p_holm == pytest.approx(2 * 2 / 256) and gamma.verdict == "worse"
    assert alpha.verdict == "not significant" and alpha.p_holm == pytest.approx(0.75)
    assert delta.not_ranked == "answered 7/8 (under 95%)" and delta.rank is None
    assert delta.vs_leader is not None and delta.p_holm is None and delta.verdict is None
    # delta's interval excludes 0, yet its p-value (uncorrected) is above 5%
    assert not delta.vs_leader.tied and delta.vs_leader.p_value > 0.05


# -- 2: one status, everywhere ----------------------------------------------------------


@pytest.mark.parametrize(("run", "asked", "expected"), [
    ({"status": "complete"}, 10, "complete"),
    ({"status": "complete", "limit": 4}, 4, "partial"),
    ({"status": "complete", "limit": 4}, 10, "complete"),  # a full run after a --limit one
    ({"status": "complete"}, 9, "incomplete"),  # an answer lost
    ({"status": "interrupted", "limit": 4}, 2, "incomplete"),
    ({"status": "running"}, 10, "incomplete"),
    ({"status": "failed", "reason": "boom"}, 3, "failed"),
])
def test_one_definition_of_status(run: dict, asked: int, expected: str) -> None:
    from bench import standing

    assert standing.run_status(RunInfo(**run), asked, 10) == expected


def test_a_limit_run_is_partial_in_every_view(recorded: Path, data_dir: Path, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli("run", "human", "--limit", "40", "--data-dir", str(data_dir),
                "--results-dir", str(recorded), "--quiet") == 0
    capsys.readouterr()
    assert _cli("show", "human", "--results-dir", str(recorded)) == 0
    out = capsys.readouterr().out
    assert "PARTIAL run (asked only part of the test set (--limit); asked 40/251 items)" in out
    assert "status complete" not in out and "INCOMPLETE" not in out
    assert "not ranked: --limit 40: asked 40/251" in out
    row = next(r for r in bench.leaderboard(recorded).to_dict("records")
               if r["predictor"] == "human")
    assert row["status"] == "partial" and row["not_ranked"] == "--limit 40: asked 40/251"
    assert _cli("leaderboard", "--no-charts", "--results-dir", str(recorded)) == 0
    assert "| --limit 40: asked 40/251 | `human` **partial** |" in \
        (recorded / "local" / "LEADERBOARD.md").read_text()
    site = tmp_path / "site"
    assert _cli("site", "--results-dir", str(recorded), "--output", str(site)) == 0
    text = (site / "data" / "pricer-test" / "leaderboard.js").read_text()
    shown = json.loads(text[text.index(",") + 1: text.rindex(")")])
    assert shown["min_answered"] == 0.95
    assert [(r["predictor"], r["status"], r["ranked"]) for r in shown["rows"]] == [
        (LEADER, "complete", True), (OTHER, "complete", True), ("human", "partial", False)]
    script = (site / "assets" / "site.js").read_text()
    assert "r.not_ranked" in script and "r.status" in script  # the page reads both


def test_the_site_marks_runs_not_ranked(tmp_path: Path) -> None:
    from bench.site.writer import build
    from tests.browser import Page, launch

    results = make_results(tmp_path / "results")
    build(results, tmp_path / "site")
    with launch() as context:
        page = Page(context)
        try:
            tab = page.open((tmp_path / "site").resolve().as_uri() + "/index.html")
            rows = tab.eval_on_selector_all("#leaderboard tbody tr", """trs => trs.map(tr =>
                [...tr.children].map(td => td.textContent.trim()))""")
            assert [r[1] for r in rows] == ["beta", "alpha", "gamma", "delta"]
            assert [r[0] for r in rows] == ["1", "2", "3", "not ranked"]
            assert rows[2][8] == "worse" and rows[1][8] == "not significant"
            assert rows[2][7] == "0.008" and rows[3][8] == "-"
            # delta's exact p-value is 16/256 = 0.0625: one rounding rule (half to even)
            # in the page and the files
            assert rows[3][7] == fmt.p_value(16 / 256) == "0.062"
            assert "delta: answered 7/8 (under 95%)" in tab.inner_text("#not-ranked")
            assert page.errors == []
        finally:
            page.close()


# -- 3: a sheet's path is not its name ---------------------------------------------------


def test_a_sheet_is_named_by_its_file_not_its_folder(recorded: Path, data_dir: Path,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    truth = _truth(data_dir)
    deep = tmp_path / "home" / "someone" / "sheets"
    good = _sheet(deep / "good.csv", {i: round(t * 1.1, 2) for i, t in truth.items()})
    for extra in ([], ["--param", f"csv={good}"]):
        assert _cli("run", "human", *extra, "--data-dir", str(data_dir), "--results-dir",
                    str(recorded), "--quiet") == 0
    names = {e.predictor for e in leaderboard.collect(recorded)}
    assert {"human", "human (csv=good.csv)"} <= names, names
    assert _cli("leaderboard", "--results-dir", str(recorded), "--data-dir", str(data_dir)) == 0
    board = recorded / "local"
    rows = {r["predictor"]: r for r in _rows(board)}
    assert {"human", "human (csv=good.csv)"} <= set(rows)
    assert rows["human (csv=good.csv)"]["params"] == {"csv": str(good)}  # in full
    charts = [p.name for p in (board / "charts" / "pricer-test").glob("*.png")]
    # named by the short row name (its cleaning is lossy, so a stable digest follows it)
    assert [n for n in charts if n.startswith("human_csv_good.csv-")
            and n.endswith("-scatter.png") and len(n) < 60]
    assert not [n for n in charts + list(rows) if "someone" in n or "sheets" in n]
    capsys.readouterr()
    assert _cli("show", "human (csv=good.csv)", "--results-dir", str(recorded)) == 0
    assert f"parameters: csv={good}" in capsys.readouterr().out
    # Two sheets of one name in different folders: each row a name of its own.
    other = _sheet(tmp_path / "elsewhere" / "good.csv",
                   {i: round(t * 0.9, 2) for i, t in truth.items()})
    assert _cli("run", "human", "--param", f"csv={other}", "--data-dir", str(data_dir),
                "--results-dir", str(recorded), "--quiet") == 0
    names = [e.predictor for e in leaderboard.collect(recorded) if e.name == "human"]
    assert len(names) == len(set(names)) == 3
    assert sum(bool(re.fullmatch(r"human \(csv=good\.csv, #[0-9a-f]{6}\)", n))
               for n in names) == 2


# -- 6: a user's runs and looks never write the published board -----------------------


PUBLISHED = ("LEADERBOARD.md", "leaderboard.json", "leaderboard.csv", "charts", "site")
RESULTS_ENV = "BENCH_RESULTS_DIR"


def _published(results: Path) -> dict[str, tuple[bytes, int]]:
    out = {}
    for part in PUBLISHED:
        path = results / part
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            out[str(f.relative_to(results))] = (f.read_bytes(), f.stat().st_mtime_ns)
    return out


def test_runs_leaderboards_sites_and_views_leave_the_published_board_alone(
        recorded: Path, data_dir: Path, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    results = recorded
    assert _cli("leaderboard", "--publish", "--results-dir", str(results), "--data-dir",
                str(data_dir)) == 0
    assert _cli("site", "--publish", "--results-dir", str(results), "--data-dir",
                str(data_dir)) == 0
    before = _published(results)
    assert {"LEADERBOARD.md", "leaderboard.json", "site/index.html"} <= set(before)
    # two runs x (scatter, running), mae.png and cost.png
    assert sum(name.startswith("charts/") for name in before) == 6
    # A user's scratch runs and looks
    assert _cli("run", "human", "--limit", "5", "--data-dir", str(data_dir),
                "--results-dir", str(results), "--quiet") == 0
    assert _cli("leaderboard", "--results-dir", str(results), "--data-dir", str(data_dir)) == 0
    assert _cli("site", "--results-dir", str(results), "--data-dir", str(data_dir)) == 0
    served = subprocess.Popen(
        [sys.executable, "-m", "bench", "view", "--results-dir", str(results), "--data-dir",
         str(data_dir), "--port", "0", "--no-browser"], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert served.stdout is not None
        built = served.stdout.readline()
        assert f"in {results / 'local' / 'site'}/" in built
        line = served.stdout.readline()
        assert f"serving {results / 'local' / 'site'} at http://127.0.0.1:" in line, \
            line + (served.stderr.read() if served.poll() is not None and served.stderr else "")
    finally:
        served.terminate()
        served.wait(timeout=30)
    assert _published(results) == before
    assert "human (partial)" not in (results / "LEADERBOARD.md").read_text()
    local = [r["predictor"] for r in _rows(results / "local")]
    assert "human" in local and (results / "local" / "site" / "index.html").exists()
    assert (results / "local" / "charts" / "pricer-test" / "human-scatter.png").exists()
    # Naming the published site as the output, or asking for the README block, needs --publish
    capsys.readouterr()
    assert _cli("site", "--results-dir", str(results), "--output", str(results / "site")) == 2
    err = capsys.readouterr().err
    assert "published board" in err and len(err.splitlines()) == 1
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n")
    assert _cli("leaderboard", "--results-dir", str(results), "--update-readme",
                str(readme)) == 2
    assert "--publish" in capsys.readouterr().err
    assert _published(results) == before


def test_make_run_writes_the_working_board_and_only_make_publish_the_published_one() -> None:
    def commands(target: str) -> list[str]:
        done = subprocess.run(["make", "-n", target, "BIN=bin"], cwd=ROOT, text=True,
                              capture_output=True, check=True)
        return [line for line in done.stdout.splitlines()
                if re.search(r"bench (leaderboard|site|view)", line)]

    assert commands("run") and not [c for c in commands("run") if "--publish" in c]
    published = [c for c in commands("publish") if "--publish" in c]
    assert any("bench leaderboard" in c and "--update-readme" in c for c in published)
    assert any("bench site" in c for c in published)


def test_the_cli_and_the_api_default_to_one_results_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.api import results_path

    monkeypatch.delenv(RESULTS_ENV, raising=False)
    monkeypatch.chdir(ROOT / "docs")  # where the quickstart notebook runs
    assert results_path().resolve() == ROOT / "results"
    assert cli.parse(["leaderboard"]).results_dir == results_path() == ROOT / "results"
    outside = tmp_path / "work"
    outside.mkdir()
    monkeypatch.chdir(outside)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    expected = tmp_path / "data" / "pricer-bench" / "results"
    assert cli.parse(["run", "human"]).results_dir == results_path() == expected
    monkeypatch.setenv(RESULTS_ENV, str(tmp_path / "mine"))
    assert cli.parse(["show", "x"]).results_dir == results_path() == tmp_path / "mine"
    assert cli.parse(["show", "x", "--results-dir", "here"]).results_dir == Path("here")


def test_a_notebook_elsewhere_finds_what_the_cli_stored(tmp_path: Path, data_dir: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "BENCH_DATA_DIR": str(data_dir)}
    monkeypatch.delenv(RESULTS_ENV, raising=False)
    here, there = tmp_path / "shell", tmp_path / "notebooks" / "deep"
    here.mkdir()
    there.mkdir(parents=True)
    ran = run_cli("run", OTHER, LEADER, "--quiet", env=env, cwd=here)
    assert ran.returncode == 0, ran.stderr
    code = ("import bench; c = bench.compare('reference:gpt-4o-mini', "
            "'reference:llama-3.1-8b-qlora-pricer'); print(c.better)")
    done = subprocess.run([sys.executable, "-c", code], cwd=there, text=True,
                          capture_output=True, env={**os.environ, **env,
                                                    "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == LEADER
    assert list((tmp_path / "data" / "pricer-bench" / "results").glob("*/*/run.json"))
