"""The built site in a real headless Chromium, over file:// and over `bench view`.

Stored runs: the person and three recorded reference runs (no training), so
the module costs seconds. Every check compares the page with what the CLI
prints or writes for the same runs (leaderboard.json, `bench compare`).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bench import metrics
from bench.reports import format as fmt
from bench.store import RunStore, iter_runs
from tests.browser import Page, launch
from tests.conftest import ROOT, SESSION_CACHE, run_cli

# The Vega bundle and chart templates are cached per session, not per test (see bench.site.assets)
SHARED_ASSETS = {"BENCH_CACHE_DIR": str(SESSION_CACHE)}
RUNS = ["human", "reference:gpt-4o-mini", "reference:llama-3.1-8b-qlora-pricer",
        "reference:gpt-4o-2024-08-06"]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("site-results")
    done = run_cli("run", *RUNS, "--data-dir", str(data_dir), "--results-dir", str(out),
                   "--quiet")
    assert done.returncode == 0, done.stderr
    done = run_cli("leaderboard", "--results-dir", str(out), "--no-charts",
                   "--data-dir", str(data_dir))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def site(results: Path, data_dir: Path) -> Path:
    out = results / "local" / "site"
    done = run_cli("site", "--results-dir", str(results), "--data-dir", str(data_dir),
                   env=SHARED_ASSETS)
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def served(results: Path, data_dir: Path, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[str]:
    """`bench view` on a free port, its own output folder; stopped after the module."""
    output = tmp_path_factory.mktemp("served-site")
    env = {"PYTHONPATH": str(ROOT), **SHARED_ASSETS}
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench", "view", "--results-dir", str(results), "--output",
         str(output), "--data-dir", str(data_dir), "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, **env})
    try:
        url = None
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"at (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url = found.group(1)
                break
        assert url, proc.stderr.read() if proc.stderr else "no address printed"
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with launch() as context:
        yield context


@pytest.fixture(params=["file", "server"])
def base(request: pytest.FixtureRequest, site: Path) -> str:
    if request.param == "file":
        return site.resolve().as_uri() + "/"
    return str(request.getfixturevalue("served"))


@pytest.fixture
def tab(browser: Any) -> Iterator[Page]:
    page = Page(browser)
    yield page
    page.close()
    assert page.errors == [], page.errors  # no console errors on any page a test opened


def board_rows(results: Path) -> list[dict[str, Any]]:
    return json.loads((results / "local" / "leaderboard.json").read_text())["rows"]


def stored(results: Path, name: str) -> dict[int, Any]:
    for store in iter_runs(results):
        if store.run_info().predictor == name:
            return store.records()
    raise AssertionError(f"no run {name}")


def cells(page: Any, selector: str) -> list[str]:
    return page.eval_on_selector_all(selector, "els => els.map(e => e.textContent.trim())")


# -- leaderboard ------------------------------------------------------------------------


def test_leaderboard_has_one_row_per_run_with_the_figures_of_leaderboard_json(
        tab: Page, base: str, results: Path) -> None:
    page = tab.open(base + "index.html")
    rows = board_rows(results)
    assert len(rows) == len(RUNS) == len(list(iter_runs(results)))
    shown = page.eval_on_selector_all("#leaderboard tbody tr", """trs => trs.map(tr => ({
        predictor: tr.dataset.predictor,
        cells: [...tr.children].map(td => td.textContent.trim()),
        mae: tr.querySelector('[data-col=mae]').dataset.value,
        rmsle: tr.querySelector('[data-col=rmsle]').dataset.value,
        hits: tr.querySelector('[data-col=hit_rate]').dataset.value}))""")
    assert [s["predictor"] for s in shown] == [r["predictor"] for r in rows]
    for s, r in zip(shown, rows, strict=True):
        assert float(s["mae"]) == r["mae"] and float(s["rmsle"]) == r["rmsle"]
        assert float(s["hits"]) == r["hit_rate"]
        rank, _, _, answered, mae, ci, vs, _, _, rmsle, hits, _, _ = s["cells"]
        assert rank == str(r["rank"]) and answered == f"{r['answered']}/{r['total']}"
        assert mae == fmt.money(r["mae"])
        lo, hi = r["mae_ci95"]
        assert ci == f"[{fmt.money(lo)}, {fmt.money(hi)}]"
        assert rmsle == fmt.number(r["rmsle"])
        assert hits == fmt.percent(r["hit_rate"])
        if r["vs_leader"] is None:
            assert vs == "leader"
        else:
            p = r["vs_leader"]
            paired = metrics.Paired(p["items"], None, None, p["diff"], tuple(p["diff_ci95"]),
                                    None, None, None)
            assert vs.startswith(fmt.paired_diff(paired) or "?")
            assert vs.endswith("tied") == p["tied"]
    assert page.locator("#mae-chart canvas").count() == 1  # the chart was drawn


def test_leaderboard_sorts_filters_and_its_permalink_reopens_the_state(
        tab: Page, browser: Any, site: Path, results: Path) -> None:
    page = tab.open(site.resolve().as_uri() + "/index.html")
    predictors = lambda: cells(page, "#leaderboard tbody tr td:nth-child(2)")  # noqa: E731
    rows = board_rows(results)
    page.click("button.sort[data-key=rmsle]")
    tab.ready()
    assert predictors() == [r["predictor"] for r in sorted(rows, key=lambda r: r["rmsle"])]
    page.click("button.sort[data-key=rmsle]")  # again: descending
    tab.ready()
    assert predictors() == [r["predictor"] for r in sorted(rows, key=lambda r: -r["rmsle"])]
    page.select_option("#kind-filter", "person")
    tab.ready()
    assert predictors() == ["human"]
    assert "sort=-rmsle" in page.url and "kind=person" in page.url
    again = Page(browser)
    try:
        second = again.open(page.url)
        assert cells(second, "#leaderboard tbody tr td:nth-child(2)") == ["human"]
        assert second.eval_on_selector("#kind-filter", "e => e.value") == "person"
        assert again.errors == []
    finally:
        again.close()


# -- a predictor ------------------------------------------------------------------------


def item_count(page: Any) -> int:
    return int(page.inner_text("#item-count").split(" of ")[0])


def test_predictor_page_lists_every_item_and_its_filters_and_sort_change_what_is_shown(
        tab: Page, base: str, results: Path, data_dir: Path) -> None:
    records = stored(results, "human")
    rows = {json.loads(line)["id"]: json.loads(line)
            for line in (data_dir / "test.jsonl").read_text().splitlines()}
    page = tab.open(base + "predictor.html#p=human")
    assert page.inner_text("#item-count") == f"{len(rows)} of {len(rows)} items"
    seen: set[int] = set()
    while True:  # every item, page by page
        seen |= {int(i) for i in page.eval_on_selector_all(
            "#items tbody tr", "trs => trs.map(t => t.dataset.id)")}
        if page.is_disabled("#next-page"):
            break
        page.click("#next-page")
        tab.ready()
    assert seen == set(rows)

    page.click("button.sort[data-key=error]")  # ascending, then descending
    tab.ready()
    page.click("button.sort[data-key=error]")
    tab.ready()
    errors = {i: abs(r.price - r.truth) for i, r in records.items() if r.price is not None}
    worst = max(errors, key=lambda i: errors[i])
    first = page.locator("#items tbody tr").first
    assert first.get_attribute("data-id") == str(worst)
    assert first.locator("[data-col=error]").inner_text() == fmt.money(errors[worst])

    page.check("#miss-filter")
    tab.ready()
    misses = [i for i, e in errors.items() if metrics.band(e, records[i].truth) != "green"]
    assert item_count(page) == len(misses)
    page.uncheck("#miss-filter")
    page.check("#none-filter")
    tab.ready()
    unanswered = [i for i, r in records.items() if r.price is None]
    unanswered += [i for i in rows if i not in records]
    assert item_count(page) == len(unanswered) >= 1
    reasons = cells(page, "#items tbody td.reply")
    assert all(reasons) and len(reasons) == len(unanswered)
    page.uncheck("#none-filter")
    tab.ready()

    category = "Electronics"
    page.select_option("#cat-filter", category)
    tab.ready()
    assert item_count(page) == sum(1 for r in rows.values() if r.get("category") == category)
    page.fill("#search", "cable")
    page.press("#search", "Enter")
    tab.ready()
    wanted = [i for i, r in rows.items() if r.get("category") == category
              and "cable" in r["title"].lower()]
    assert item_count(page) == len(wanted) >= 1
    assert {int(i) for i in page.eval_on_selector_all(
        "#items tbody tr", "trs => trs.map(t => t.dataset.id)")} == set(wanted)


def test_predictor_permalink_reopens_the_same_filters_sort_and_page(
        tab: Page, browser: Any, site: Path) -> None:
    page = tab.open(site.resolve().as_uri() + "/predictor.html#p=reference:gpt-4o-mini")
    page.select_option("#band-filter", "$50-200")
    tab.ready()
    page.click("button.sort[data-key=truth]")
    tab.ready()
    page.check("#miss-filter")
    tab.ready()
    shown = cells(page, "#items tbody tr td:first-child")
    count = page.inner_text("#item-count")
    again = Page(browser)
    try:
        second = again.open(page.url)
        assert second.inner_text("#item-count") == count
        assert cells(second, "#items tbody tr td:first-child") == shown
        assert second.eval_on_selector("#band-filter", "e => e.value") == "$50-200"
        assert second.is_checked("#miss-filter")
        assert second.locator("h1").inner_text() == "reference:gpt-4o-mini"
        assert again.errors == []
    finally:
        again.close()


def test_predictor_page_shows_the_provenance_of_run_json(tab: Page, site: Path,
                                                         results: Path) -> None:
    page = tab.open(site.resolve().as_uri() + "/predictor.html#p=human")
    table = dict(zip(cells(page, "#provenance td:first-child"),
                     cells(page, "#provenance td:last-child"), strict=True))
    info = next(s.run_info().to_dict() for s in iter_runs(results)
                if s.run_info().predictor == "human")
    assert table["git_commit"] == str(info["git_commit"])
    assert table["versions.numpy"] == info["versions"]["numpy"]
    assert table["fingerprint.sheet_sha256"] == info["fingerprint"]["sheet_sha256"]
    assert page.locator("#scatter-chart canvas").count() == 1


# -- an item ------------------------------------------------------------------------------


def test_item_page_shows_every_guess_best_to_worst(tab: Page, base: str, results: Path,
                                                   data_dir: Path) -> None:
    item = 80
    page = tab.open(base + f"item.html#id={item}")
    truth = next(json.loads(line)["price"] for line in
                 (data_dir / "test.jsonl").read_text().splitlines()
                 if json.loads(line)["id"] == item)
    guesses = {s.run_info().predictor: RunStore(s.dir).records()[item].price
               for s in iter_runs(results)}
    order = sorted(guesses, key=lambda n: (abs(guesses[n] - truth), n))
    shown = page.eval_on_selector_all("#guesses tbody tr",
                                      "trs => trs.map(t => t.dataset.predictor)")
    assert [abs(guesses[n] - truth) for n in shown] == sorted(abs(guesses[n] - truth)
                                                                for n in order)
    assert set(shown) == set(guesses)
    assert fmt.money(truth) in page.inner_text("#summary")
    assert "Longacre" in page.inner_text("#product-text")


# -- compare --------------------------------------------------------------------------------


@pytest.mark.parametrize("a,b", [("human", "reference:gpt-4o-mini"),
                                 ("reference:gpt-4o-mini", "human")])
def test_compare_page_shows_the_paired_interval_of_bench_compare(
        tab: Page, base: str, results: Path, site: Path, a: str, b: str) -> None:
    done = run_cli("compare", a, b, "--results-dir", str(results))
    assert done.returncode == 0, done.stderr
    line = next(x for x in done.stdout.splitlines() if "A - B:" in x)
    figures = re.search(r"A - B: (\S+) per item, 95% paired bootstrap interval \[(\S+), (\S+)\]",
                        line)
    assert figures
    page = tab.open(base + f"compare.html#a={a}&b={b}")
    text = page.inner_text("#paired-diff")
    assert text == (f"{figures.group(1)} per item, 95% paired bootstrap interval "
                    f"[{figures.group(2)}, {figures.group(3)}]")
    verdict = next(x.strip() for x in done.stdout.splitlines()
                   if "is better" in x or x.strip().startswith("tied"))
    assert page.inner_text("#verdict") == verdict
    assert page.locator("#compare-chart canvas").count() == 1
    assert page.locator("#disagree tbody tr").count() == 10
    # The caption is the chart template's own, which says where A's worse items lie.
    specs = json.loads(re.search(r"bench\.put\([^,]+,(.*)\);", (site / "data" / "specs.js")
                                 .read_text(encoding="utf-8")).group(1))
    assert page.inner_text("#compare-caption") == specs["compare"]["description"]
    assert "below the diagonal A missed by more" in specs["compare"]["description"]
