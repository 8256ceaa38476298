"""A board people share: recorded runs shown as the kind of system they record, with
what is known of them, and the cost of accuracy (the frontier no other run beats)."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bench import kinds, systems
from bench.reports import charts, cost
from bench.reports.collect import collect
from bench.store import iter_runs as iter_stores
from tests.conftest import run_cli

RUNS = ["human", "reference:gpt-4o-mini", "reference:gpt-4o-mini-rag5",
        "reference:word2vec-random-forest", "reference:llama-3.1-8b-qlora-pricer",
        "reference:random-pricer"]


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("share-results")
    done = run_cli("run", *RUNS, "--data-dir", str(data_dir), "--results-dir", str(out),
                   "--quiet")
    assert done.returncode == 0, done.stderr
    done = run_cli("leaderboard", "--results-dir", str(out), "--data-dir", str(data_dir),
                   "--publish")  # the published form: what the committed board shows
    assert done.returncode == 0, done.stderr
    return out


def rows(results: Path) -> dict[str, dict[str, Any]]:
    return {r["predictor"]: r
            for r in json.loads((results / "leaderboard.json").read_text())["rows"]}


# -- kinds ------------------------------------------------------------------------------


def test_every_recorded_run_in_the_data_folder_has_a_system_kind(data_dir: Path) -> None:
    recorded = sorted(p.stem for p in (data_dir / "reference-runs").glob("*.csv"))
    table = systems.table()
    assert recorded and sorted(table) == recorded
    for name, row in table.items():
        assert row["kind"] in kinds.KINDS and row["kind"] != "reference", name
        assert set(systems.KNOWN) <= set(row), name
    sources = (data_dir / "reference-runs" / "SOURCES.md").read_text()
    named = re.findall(r"^\| ([a-z0-9][\w.\-]*) \|", sources, re.M)
    assert sorted(set(named) - {"run"}) == recorded  # the table follows SOURCES.md


def test_each_kind_has_its_own_label_and_colour() -> None:
    assert set(kinds.LABELS) == set(kinds.COLOURS) == set(kinds.KINDS)
    assert len(set(kinds.COLOURS.values())) == len(kinds.KINDS)
    assert len(set(kinds.LABELS.values())) == len(kinds.KINDS)


def test_recorded_runs_carry_the_kind_of_system_they_record(board: Path) -> None:
    by = rows(board)
    expect = {"human": ("person", False), "reference:gpt-4o-mini": ("frontier", True),
              "reference:gpt-4o-mini-rag5": ("rag", True),
              "reference:word2vec-random-forest": ("classic", True),
              "reference:llama-3.1-8b-qlora-pricer": ("fine-tuned-open", True),
              "reference:random-pricer": ("floor", True)}
    assert {p: (r["kind"], r["recorded"]) for p, r in by.items()} == expect
    mini = by["reference:gpt-4o-mini"]
    assert mini["kind_label"] == "frontier API (recorded)"
    assert mini["system"]["organisation"] == "OpenAI"
    assert mini["system"]["model"] == "gpt-4o-mini"
    llama = by["reference:llama-3.1-8b-qlora-pricer"]["system"]
    assert llama["size"] == "8B" and llama["organisation"] == "Meta"
    assert by["human"]["kind_label"] == "person" and by["human"]["system"]["recorded"] is False
    markdown = (board / "LEADERBOARD.md").read_text()
    assert "| `reference:gpt-4o-mini` | frontier API (recorded) |" in markdown


def test_a_recorded_run_missing_from_the_table_keeps_the_reference_kind(board: Path) -> None:
    info = next(e.info for e in collect(board) if e.predictor == "reference:gpt-4o-mini")
    info.predictor = "reference:not-in-the-table"
    assert systems.describe(info) == systems.System("reference", True)


# -- the cost of accuracy ---------------------------------------------------------------


def test_pareto_marks_exactly_the_points_no_other_beats() -> None:
    assert cost.pareto([(1, 5), (2, 4), (2, 6), (0, 9), (3, 3), (3, 4)]) == \
        [True, True, False, True, True, False]
    assert cost.pareto([(1, 1), (1, 1), (None, 0), (0, None)]) == [True, True, False, False]
    assert cost.pareto([]) == []
    rng = random.Random(7)
    for _ in range(200):
        points = [(rng.choice([None, rng.randint(0, 5)]), rng.randint(0, 5)) for _ in range(9)]
        marks = cost.pareto(points)
        for (x, y), on in zip(points, marks, strict=True):
            beaten = x is not None and any(
                bx is not None and bx <= x and by <= y and (bx, by) != (x, y)
                for bx, by in points)
            assert on == (x is not None and not beaten)


def test_cost_table_and_chart_mark_the_runs_no_other_beats(board: Path) -> None:
    by = rows(board)
    assert by["reference:gpt-4o-mini"]["cost_per_1k_usd"] == pytest.approx(0.037)
    assert by["reference:word2vec-random-forest"]["cost_per_1k_usd"] == 0.0
    assert by["human"]["cost_per_1k_usd"] is None  # a person's time: unknown, not $0
    assert by["reference:gpt-4o-mini"]["time_per_item_s"] is None  # a replay's time
    complete = [r for r in by.values() if r["status"] == "complete" and r["mae"] is not None]
    best = {r["predictor"] for r in complete if not any(
        o["cost_per_1k_usd"] is not None and r["cost_per_1k_usd"] is not None
        and o["cost_per_1k_usd"] <= r["cost_per_1k_usd"] and o["mae"] < r["mae"]
        for o in complete)} - {r["predictor"] for r in complete if r["cost_per_1k_usd"] is None}
    assert best == {"reference:word2vec-random-forest", "reference:gpt-4o-mini",
                    "reference:gpt-4o-mini-rag5"}
    markdown = (board / "LEADERBOARD.md").read_text()
    section = markdown.split("### The cost of accuracy", 1)[1]
    bold = set(re.findall(r"^\| \*\*`([^`]+)`\*\* \|.*\| cost", section, re.M))
    assert bold == best
    png = board / "charts" / "pricer-test" / "cost.png"
    assert "(charts/pricer-test/cost.png)" in section
    assert charts.read_png(png).width == 1100


# -- the site, in a real Chromium ------------------------------------------------------


@pytest.fixture(scope="module")
def site(board: Path, data_dir: Path) -> Path:
    from tests.conftest import SESSION_CACHE

    done = run_cli("site", "--results-dir", str(board), "--data-dir", str(data_dir), "--publish",
                   env={"BENCH_CACHE_DIR": str(SESSION_CACHE)})
    assert done.returncode == 0, done.stderr
    return board / "site"


@pytest.fixture(scope="module")
def page(site: Path) -> Any:
    from tests.browser import Page, launch

    with launch() as context:
        tab = Page(context)
        yield tab
        assert tab.errors == [], tab.errors


def shown(page: Any) -> list[str]:
    return page.eval_on_selector_all("#leaderboard tbody tr",
                                     "t => t.map(r => r.dataset.predictor)")


def test_site_filters_by_kind_and_by_recorded_or_run_here(page: Any, site: Path,
                                                          board: Path) -> None:
    tab = page.open(site.resolve().as_uri() + "/index.html")
    by = rows(board)
    assert sorted(shown(tab)) == sorted(by)
    kinds_offered = tab.eval_on_selector_all("#kind-filter option", "o => o.map(x => x.value)")
    assert set(kinds_offered) == {""} | {r["kind"] for r in by.values()}
    tab.select_option("#kind-filter", "frontier")
    page.ready()
    assert shown(tab) == ["reference:gpt-4o-mini"]
    assert "frontier API" in tab.inner_text("#leaderboard tbody td[data-col=kind]")
    assert "recorded" in tab.inner_text("#leaderboard tbody td[data-col=kind] .badge")
    tab.select_option("#kind-filter", "")
    page.ready()
    tab.select_option("#origin-filter", "here")
    page.ready()
    assert shown(tab) == ["human"]
    tab.select_option("#origin-filter", "recorded")
    page.ready()
    assert sorted(shown(tab)) == sorted(p for p, r in by.items() if r["recorded"])
    assert "origin=recorded" in tab.url


def test_site_cost_chart_rings_the_runs_no_other_beats_in_the_kinds_colours(
        page: Any, site: Path, board: Path) -> None:
    tab = page.open(site.resolve().as_uri() + "/index.html")
    by = rows(board)
    dots = tab.eval_on_selector_all("#cost-chart circle", """cs => cs.map(c => ({
        predictor: c.dataset.predictor, frontier: c.dataset.frontier,
        fill: c.getAttribute('fill')}))""")
    known = [r for r in by.values() if r["cost_per_1k_usd"] is not None
             and r["status"] == "complete"]
    assert sorted(d["predictor"] for d in dots) == sorted(r["predictor"] for r in known)
    marks = cost.pareto([(r["cost_per_1k_usd"], r["mae"]) for r in known])
    expected = {r["predictor"] for r, on in zip(known, marks, strict=True) if on}
    assert {d["predictor"] for d in dots if d["frontier"] == "1"} == expected
    assert expected == {"reference:word2vec-random-forest", "reference:gpt-4o-mini",
                        "reference:gpt-4o-mini-rag5"}
    for d in dots:  # the PNG charts' colour of the run's kind
        assert d["fill"] == kinds.colour(by[d["predictor"]]["kind"])
    table = tab.eval_on_selector_all("#cost-table tbody tr[data-frontier='1']",
                                     "t => t.map(r => r.dataset.predictor)")
    assert set(table) == expected


# -- a budget: bench run --max-cost ------------------------------------------------------


def _openai(server: Any, data_dir: Path, results: Path, limit: int, *extra: str) -> Any:
    env = {"OPENAI_BASE_URL": server.openai_url, "OPENAI_API_KEY": "sk-test-budget"}
    return run_cli("run", "openai", "--data-dir", str(data_dir), "--limit", str(limit),
                   "--results-dir", str(results), "--quiet", *extra, env=env, timeout=120)


def test_max_cost_stops_before_spending_counts_the_cache_as_free_and_resumes(
        data_dir: Path, tmp_path: Path) -> None:
    from tests.fake_llm_server import FakeLLMServer

    with FakeLLMServer() as server:
        nothing = _openai(server, data_dir, tmp_path / "r0", 8, "--max-cost", "0")
        assert nothing.returncode == 0, nothing.stderr
        assert server.count == 0
        assert "stopped openai:gpt-4o-mini: --max-cost $0.0000: 8 items not asked" \
            in nothing.stderr
        assert not list((tmp_path / "r0").rglob("predictions.jsonl"))

        warm = _openai(server, data_dir, tmp_path / "r1", 4)  # 4 answers into the cache
        assert warm.returncode == 0, warm.stderr
        sent = server.count
        assert sent == 4

        # A zero budget still takes the 4 cached items (free) and asks nothing.
        part = _openai(server, data_dir, tmp_path / "r2", 8, "--max-cost", "0")
        assert part.returncode == 0, part.stderr
        assert server.count == sent
        assert "4 items not asked" in part.stderr and "rerun with a larger" in part.stderr
        (run_dir,) = (tmp_path / "r2" / "pricer-test").iterdir()
        assert len((run_dir / "predictions.jsonl").read_text().splitlines()) == 4
        run = json.loads((run_dir / "run.json").read_text())
        assert run["status"] == "interrupted" and "--max-cost" in run["reason"]

        # A budget that pays for the rest resumes the same run and completes it.
        rest = _openai(server, data_dir, tmp_path / "r2", 8, "--max-cost", "1")
        assert rest.returncode == 0, rest.stderr
        assert server.count == sent + 4 and "stopped" not in rest.stderr
        run = json.loads((run_dir / "run.json").read_text())
        assert run["status"] == "complete"
        assert len((run_dir / "predictions.jsonl").read_text().splitlines()) == 8
        assert "spent about $0.0" in rest.stdout


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_a_bad_max_cost_is_one_line_and_exit_2(value: str, data_dir: Path,
                                               tmp_path: Path) -> None:
    done = run_cli("run", "constant", "--data-dir", str(data_dir), "--limit", "2",
                   "--results-dir", str(tmp_path), "--quiet", "--max-cost", value)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--max-cost" in done.stderr
    assert "Traceback" not in done.stderr


def test_budget_takes_items_in_order_while_the_estimate_fits_and_charges_what_was_spent(
) -> None:
    from bench.budget import Budget
    from bench.types import Product

    class Paid:
        name = "paid"
        cached = {2}

        def predict(self, products: Any) -> list[Any]:
            return []

        def estimate(self, products: Any) -> dict[str, Any]:
            cost = sum(0.0 if p.id in self.cached else 0.01 for p in products)
            return {"requests": len(products), "cost_usd": cost}

    items = [Product(i, f"item {i}", "", "Price is $", None) for i in range(6)]
    budget = Budget(0.025)
    taken, why = budget.plan(Paid(), items)
    assert [p.id for p in taken] == [0, 1, 2]  # 2 is cached: free; 3 would pass $0.025
    assert why is not None and "3 items not asked" in why
    assert budget.charge({0: 0.012, 1: None, 2: None}) == pytest.approx(0.022)
    assert budget.left == pytest.approx(0.003)
    taken, why = budget.plan(Paid(), items[3:])
    assert taken == [] and "3 items not asked" in (why or "")


# -- bench run --log mlflow ---------------------------------------------------------------


def test_log_mlflow_logs_parameters_figures_items_and_charts_to_a_local_store(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    results = tmp_path / "results"
    done = run_cli("run", "reference:gpt-4o-mini", "human", "--data-dir", str(data_dir),
                   "--results-dir", str(results), "--quiet", "--log", "mlflow",
                   env={"MLFLOW_TRACKING_URI": ""})
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("mlflow: ") == 2
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow's file store, read back
    client = mlflow.MlflowClient(tracking_uri=(results / "mlruns").resolve().as_uri())
    exp = client.get_experiment_by_name("pricer-bench")
    runs = {r.data.params["predictor"]: r for r in client.search_runs([exp.experiment_id])}
    assert set(runs) == {"reference:gpt-4o-mini", "human"}
    stored = {s.run_info().predictor: s for s in iter_stores(results)}
    for name, run in runs.items():
        info = stored[name].run_info()
        assert run.data.params["kind"] == info.kind
        assert run.data.params["fingerprint"] == info.fingerprint_hash
        assert run.data.metrics["mae"] == pytest.approx(info.metrics.mae)
        assert run.data.metrics["hit_rate"] == pytest.approx(info.metrics.hit_rate)
        assert run.data.tags["bench.status"] == "complete"
        assert run.info.status == "FINISHED"
        names = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert names == {"items.csv", "run.json", "scatter.png", "running.png"}
        table = Path(client.download_artifacts(run.info.run_id, "items.csv", str(tmp_path)))
        lines = table.read_text().splitlines()
        assert len(lines) == 1 + len(stored[name].records())


def test_log_mlflow_follows_the_tracking_uri(data_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    elsewhere = (tmp_path / "team-store").resolve().as_uri()
    done = run_cli("run", "human", "--data-dir", str(data_dir), "--results-dir",
                   str(tmp_path / "results"), "--quiet", "--log", "mlflow",
                   env={"MLFLOW_TRACKING_URI": elsewhere, "MLFLOW_ALLOW_FILE_STORE": "true"})
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "results" / "mlruns").exists()
    client = mlflow.MlflowClient(tracking_uri=elsewhere)
    exp = client.get_experiment_by_name("pricer-bench")
    assert [r.data.params["predictor"] for r in client.search_runs([exp.experiment_id])] \
        == ["human"]


def test_log_mlflow_without_mlflow_is_one_line_and_exit_2(data_dir: Path,
                                                         tmp_path: Path) -> None:
    blocker = tmp_path / "no-mlflow" / "mlflow"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('mlflow is not installed')\n")
    from tests.conftest import ROOT

    done = run_cli("run", "human", "--data-dir", str(data_dir), "--results-dir",
                   str(tmp_path / "results"), "--quiet", "--log", "mlflow",
                   env={"PYTHONPATH": f"{blocker.parent}:{ROOT}"})
    assert done.returncode == 2
    assert done.stderr.strip().endswith("pip install 'pricer-bench[mlflow]'")
    assert "Traceback" not in done.stderr and done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "results" / "pricer-test").exists()  # nothing run


# -- published as a page: the screenshot and the Pages workflow --------------------------


def test_screenshot_of_the_leaderboard_page_is_written_fresh(site: Path, tmp_path: Path) -> None:
    pytest.importorskip("playwright")
    from tests.browser import chromium_path

    if chromium_path() is None:
        pytest.skip("no Chromium here")
    out = tmp_path / "shots" / "leaderboard.png"
    out.parent.mkdir()
    out.write_bytes(b"stale")
    from tests.conftest import ROOT

    ran = subprocess.run([sys.executable, "-m", "bench.screenshot", "--site", str(site),
                          "--output", str(out)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert ran.returncode == 0, ran.stderr
    png = charts.read_png(out)  # no longer the stale bytes: a real PNG of the viewport
    assert (png.width, png.height) == (1280, 900)
    assert out.stat().st_mtime >= (site / "index.html").stat().st_mtime
    assert out.stat().st_size > 20_000  # a rendered page, not a blank one
    assert [p.name for p in out.parent.iterdir()] == ["leaderboard.png"]  # no temp left


def test_screenshot_without_a_site_is_one_line_and_exit_2(tmp_path: Path) -> None:
    from tests.conftest import ROOT

    ran = subprocess.run([sys.executable, "-m", "bench.screenshot", "--site",
                          str(tmp_path / "none"), "--output", str(tmp_path / "x.png")],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert ran.returncode == 2 and "run `bench site` first" in ran.stderr
    assert ran.stderr.strip().count("\n") == 0 and not (tmp_path / "x.png").exists()


def test_pages_workflow_publishes_the_committed_site() -> None:
    from tests.conftest import ROOT

    text = (ROOT / ".github" / "workflows" / "pages.yml").read_text()
    assert "actions/upload-pages-artifact" in text and "actions/deploy-pages" in text
    assert "path: results/site" in text
    assert "pages: write" in text and "id-token: write" in text
    make = (ROOT / "Makefile").read_text()
    publish = make.split("\npublish:", 1)[1].split("\n\n", 1)[0]
    assert "bench.screenshot" in publish
    assert publish.index("bench site") < publish.index("bench.screenshot")


def test_site_predictor_page_says_what_is_known_of_a_recorded_system(page: Any, site: Path,
                                                                     board: Path) -> None:
    tab = page.open(site.resolve().as_uri() + "/predictor.html#p=reference%3Agpt-4o-mini")
    system = rows(board)["reference:gpt-4o-mini"]["system"]
    facts = dict(tab.eval_on_selector_all(
        "#system dd[data-fact]", "ds => ds.map(d => [d.dataset.fact, d.textContent])"))
    assert facts["organisation"] == system["organisation"] == "OpenAI"
    assert facts["model"] == system["model"] and facts["source"] == system["source"]
    assert facts["cost_per_1k_usd"] == "$0.0370"
    tab = page.open(site.resolve().as_uri() + "/predictor.html#p=human")
    assert tab.locator("#system").count() == 0  # run here: nothing recorded to describe
    assert tab.evaluate("document.querySelector('#summary').nextSibling.nodeType") == 1  # no text


# -- charts and tables people can read ---------------------------------------------------


def test_site_header_sorts_from_the_whole_cell_and_groups_mark_the_best(
        page: Any, site: Path, board: Path) -> None:
    tab = page.open(site.resolve().as_uri() + "/index.html")
    cell = tab.locator("#leaderboard th.sortable", has=tab.locator("button[data-key=hit_rate]"))
    box = cell.bounding_box()
    button = cell.locator("button").bounding_box()
    assert box and button and box["height"] > 0
    tab.mouse.click(box["x"] + box["width"] - 2, box["y"] + box["height"] - 2)  # not the label
    assert button["x"] + button["width"] < box["x"] + box["width"] - 2 \
        or button["y"] + button["height"] < box["y"] + box["height"] - 2
    page.ready()
    by = rows(board)
    assert shown(tab) == sorted(by, key=lambda p: by[p]["hit_rate"])
    assert shown(tab) != sorted(by, key=lambda p: by[p]["rank"])  # the click did something
    for table in ("#price-bands", "#categories"):
        grid = tab.eval_on_selector_all(f"{table} tbody tr", """trs => trs.map(tr =>
            [...tr.children].slice(1).map(td => [td.textContent, td.dataset.best || '',
                                                  td.getAttribute('style') || '']))""")
        assert grid
        for col in range(len(grid[0])):
            values = [float(r[col][0].strip("$").replace(",", "")) for r in grid
                      if r[col][0] != "-"]
            best = [float(r[col][0].strip("$").replace(",", "")) for r in grid if r[col][1]]
            assert best and set(best) == {min(values)}
            assert all("rgba(208, 52, 44" in r[col][2] for r in grid if r[col][0] != "-")


def test_site_search_filters_as_one_types_and_keeps_the_focus(page: Any, site: Path) -> None:
    tab = page.open(site.resolve().as_uri() + "/predictor.html#p=human")
    total = tab.inner_text("#item-count")
    tab.click("#search")
    tab.keyboard.type("cable")  # no Enter
    tab.wait_for_function("() => !document.querySelector('#item-count').textContent"
                          f".startsWith({total.split(' of ')[0]!r} + ' of')", timeout=5000)
    page.ready()
    count = int(tab.inner_text("#item-count").split(" of ")[0])
    assert 0 < count < int(total.split(" of ")[0])
    assert tab.evaluate("document.activeElement.id") == "search"
    assert tab.eval_on_selector("#search", "e => e.value") == "cable"
    assert "q=cable" in tab.url


def test_compare_chart_ticks_do_not_crowd_and_its_legend_sits_below() -> None:
    pytest.importorskip("altair")
    from bench.site import charts as site_charts

    spec = json.dumps(site_charts.specs()["compare"])
    assert json.dumps(site_charts.COMPARE_TICKS) in spec
    assert '"orient": "bottom"' in spec


# -- a live view ---------------------------------------------------------------------------


def test_bench_view_shows_a_run_in_progress_and_each_new_answer_within_two_seconds(
        page: Any, board: Path, data_dir: Path, tmp_path: Path) -> None:
    import time

    from bench.lock import RunLock
    from bench.store import Record, RunStore
    from bench.types import Prediction
    from tests.conftest import ROOT, SESSION_CACHE

    tab = page  # the module's Chromium tab (one Playwright per thread)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "view", "--results-dir", str(board), "--output",
         str(tmp_path / "served"), "--data-dir", str(data_dir), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "BENCH_CACHE_DIR": str(SESSION_CACHE)})
    store = RunStore.for_run(board, "pricer-test", "live-probe", {"predictor": "live-probe"})
    lock = RunLock(store.dir)
    try:
        assert proc.stdout is not None
        url = None
        for line in proc.stdout:
            if "runs in progress at " in line:
                url = line.split("runs in progress at ", 1)[1].strip()
                break
        assert url, proc.stderr.read() if proc.stderr else "no live address printed"
        view = tab.open(url)
        assert "No run in progress." in view.inner_text("#live")  # finished runs: not live

        lock.acquire()
        store.open()
        store.write_run({"predictor": "live-probe", "test_set": "pricer-test",
                         "kind": "custom", "items": 10, "status": "running"})
        answers = [(0, 100.0, 90.0, None), (1, 50.0, None, "timed out after 5 s"),
                   (2, 20.0, 25.0, None)]
        for done, (i, truth, guess, error) in enumerate(answers, start=1):
            store.append(Record(i, truth, Prediction(guess, error=error)))
            stored = time.monotonic()
            shown = f"#live tr[data-run='{store.dir.name}'][data-done='{done}']"
            view.wait_for_selector(shown, timeout=2000)
            assert time.monotonic() - stored < 2.0
        row = view.inner_text(f"#live tr[data-run='{store.dir.name}']")
        assert "live-probe" in row and "3/10" in row
        assert "$7.50" in row  # errors 10 and 5 on the two answered items
        assert "1: timed out after 5 s" in row
        assert tab.errors == []
    finally:
        store.close()
        lock.release()
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(store.dir, ignore_errors=True)  # the module's board stays as it was
