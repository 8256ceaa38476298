"""Charts and the published leaderboard from the real reference runs: every
chart renders, is a real PNG of a sensible size, is linked, and reruns leave
the bytes alone."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from bench.reports import charts
from tests.conftest import run_cli


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, str]:
    results = tmp_path_factory.mktemp("results")
    ran = run_cli("run", "all", "--data-dir", str(data_dir), "--results-dir", str(results),
                  "--quiet", env={"OPENAI_API_KEY": "", "ANTHROPIC_API_KEY": ""})
    assert ran.returncode == 0, ran.stderr
    board = run_cli("leaderboard", "--publish", "--results-dir", str(results), "--data-dir",
                    str(data_dir))
    assert board.returncode == 0, board.stderr
    return results, board.stdout


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.suffix != ".jsonl"
            and p.name != "run.json"}


def test_every_chart_renders_as_a_real_png(published: tuple[Path, str]) -> None:
    results, stdout = published
    rows = json.loads((results / "leaderboard.json").read_text())["rows"]
    assert len(rows) >= 23
    assert f"charts: {2 * len(rows) + 2} drawn, 0 unchanged" in stdout  # + MAE and cost
    for row in rows:
        for kind, (width, height) in (("scatter", (600, 620)), ("running", (700, 420))):
            path = results / row["charts"][kind]
            info = charts.read_png(path)
            assert (info.width, info.height) == (width, height), path
            assert 15_000 < path.stat().st_size < 400_000, path
            assert "Software" not in info.text and charts.DIGEST_KEY in info.text
    mae = charts.read_png(results / "charts" / "pricer-test" / "mae.png")
    assert mae.width == 800 and mae.height == round(100 * (1.3 + 0.3 * len(rows)))


def test_leaderboard_links_resolve_and_rows_are_marked(published: tuple[Path, str]) -> None:
    results, _ = published
    markdown = (results / "LEADERBOARD.md").read_text()
    links = re.findall(r"\]\(([^)]+\.png)\)", markdown)
    count = len(json.loads((results / "leaderboard.json").read_text())["rows"])
    assert count >= 23 and len(links) == 2 * count + 2  # + the MAE and the cost chart
    assert all(not Path(link).is_absolute() and (results / link).is_file() for link in links)
    assert ("| 1 | `reference:llama-3.1-8b-qlora-pricer` | fine-tuned open model (recorded) "
            "| 250/251 |") in markdown
    assert "| `human` | person | 250/251 | $126.55 |" in markdown
    rows = {r["predictor"]: r for r in json.loads((results / "leaderboard.json").read_text())
            ["rows"]}
    leader = rows["reference:llama-3.1-8b-qlora-pricer"]
    assert leader["rank"] == 1 and leader["tied_with_leader"] is None
    human = rows["human"]
    assert human["tied_with_leader"] is False and human["vs_leader"]["diff"] > 0
    # Paired on the same 250 items: the difference of the two MAEs.
    assert human["vs_leader"]["diff"] == pytest.approx(human["mae"] - leader["mae"])
    bands = {g["group"]: g for g in leader["by_price_band"]}
    assert sum(g["items"] for g in bands.values()) == 251
    assert bands["under $50"]["mae"] < bands["over $500"]["mae"]
    categories = {g["group"]: g["items"] for g in leader["by_category"]}
    assert categories["Automotive"] == 96 and sum(categories.values()) == 251
    assert "### Mean absolute error by category" in markdown


def test_rerun_keeps_every_byte(published: tuple[Path, str]) -> None:
    results, _ = published
    charts_count = 2 * len(json.loads((results / "leaderboard.json").read_text())["rows"]) + 2
    before = _digests(results)
    again = run_cli("leaderboard", "--publish", "--results-dir", str(results))
    assert again.returncode == 0, again.stderr
    assert f"charts: 0 drawn, {charts_count} unchanged" in again.stdout
    assert _digests(results) == before
    # A chart drawn afresh in another process comes out byte for byte the same.
    scatter = results / "charts" / "pricer-test" / "human-scatter.png"
    scatter.unlink()
    (results / "charts" / "pricer-test" / "gone-scatter.png").write_bytes(b"stale")
    third = run_cli("leaderboard", "--publish", "--results-dir", str(results))
    assert f"charts: 1 drawn, {charts_count - 1} unchanged, 1 stale removed" in third.stdout, \
        third.stdout
    assert _digests(results) == before


def test_show_names_items_by_title(published: tuple[Path, str], data_dir: Path) -> None:
    results, _ = published
    shown = run_cli("show", "reference:gpt-4o-mini", "--results-dir", str(results),
                    "--data-dir", str(data_dir), "--count", "3")
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "\033[" not in out
    assert "  1: guess  $1,600.00  truth   $370.71  error  $1,229.29  #108  Set 2 Heavy Duty" in out
    rows = json.loads((results / "leaderboard.json").read_text())["rows"]
    rank = next(r["rank"] for r in rows if r["predictor"] == "reference:gpt-4o-mini")
    assert f"rank {rank} of {len(rows)}; vs #1 reference:llama-3.1-8b-qlora-pricer: +$32.91" \
        in out
    assert "| Automotive " in out
    compared = run_cli("compare", "human", "reference:human", "--results-dir", str(results))
    assert compared.returncode == 0 and "tied: the interval includes 0" in compared.stdout
    assert "equal on 100.0%" in compared.stdout


def test_charts_of_degenerate_runs(tmp_path: Path) -> None:
    """No answer, one answer, a bar without interval: still valid pictures."""
    assert charts.draw_scatter(tmp_path / "empty.png", "none", [], [], "no answers")
    assert charts.draw_running(tmp_path / "one.png", "one", [12.0])
    assert charts.draw_scatter(tmp_path / "edge.png", "edge", [10.0, 900.0], [0.0, 9000.0])
    assert charts.draw_mae(tmp_path / "bar.png", "t", [charts.Bar("only", "custom", 5.0,
                                                                   None, False)])
    for name in ("empty", "one", "edge", "bar"):
        assert charts.read_png(tmp_path / f"{name}.png").width > 100
    assert not charts.draw_running(tmp_path / "one.png", "one", [12.0])  # current: skipped
    with pytest.raises(ValueError):
        (tmp_path / "fake.png").write_bytes(b"GIF89a")
        charts.read_png(tmp_path / "fake.png")
