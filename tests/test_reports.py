"""Reports on hand-made runs: markdown snapshot, paired comparison, break-downs,
README markers, ``bench show`` / ``compare`` text and colour. No charts drawn
here (tests/test_reports_charts.py draws them from the reference runs)."""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest

from bench import breakdown, metrics, show
from bench.cli import main
from bench.reports import charts
from bench.reports import publish as leaderboard
from bench.store import Record, RunStore
from bench.types import Prediction

TRUTH = [10.0, 45.0, 60.0, 150.0, 250.0, 400.0, 600.0, 900.0]
RUNS = {  # name -> (kind, guesses, cost, seconds for the whole run)
    "alpha": ("classic", [12, 40, 70, 140, 260, 380, 640, 870], None, 0.004),
    "beta": ("frontier", [11, 50, 55, 160, 240, 420, 580, 950], 0.0123, 4.0),
    "gamma": ("person", [100] * 8, None, 0.0),
    "delta": ("custom", [30, 45, 60, 100, 300, 450, 700, None], 2.5, 16.0),
}


def make_results(root: Path, test_set: str = "tiny",
                 categories: dict[int, str] | None = None) -> Path:
    """A results dir written through the real store, as ``bench run`` would."""
    for name, (kind, guesses, cost, wall) in RUNS.items():
        store = RunStore.for_run(root, test_set, name, {"predictor": name})
        store.open()
        for i, (t, g) in enumerate(zip(TRUTH, guesses, strict=True)):
            store.append(Record(i, t, Prediction(None if g is None else float(g),
                                                 error="no number" if g is None else None)))
        store.close()
        store.write_run({"predictor": name, "test_set": test_set, "kind": kind,
                         "items": len(TRUTH), "data_source": str(root / "gone.jsonl"),
                         "finished_at": "2026-01-01T00:00:00+00:00",
                         "timings": {"last_wall_s": wall, "items_last_run": len(TRUTH)},
                         "totals": {"cost_usd": cost}})
    return root


SNAPSHOT = Path(__file__).parent / "snapshots" / "leaderboard_tiny.md"


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return make_results(tmp_path / "results")


def drawn_paths(results: Path, entries: list[leaderboard.Entry]) -> charts.Drawn:
    """Where the charts would be, without drawing them: links only."""
    return charts.Drawn({(e.test_set, e.predictor): charts.predictor_charts(
        results, e.test_set, e.predictor) for e in entries},
        {"tiny": charts.mae_chart(results, "tiny")})


def test_markdown_snapshot(tiny: Path) -> None:
    entries = leaderboard.collect(tiny)
    text = leaderboard.markdown(entries, drawn_paths(tiny, entries), tiny)
    # Hand-checked figures: beta's errors 1,5,5,10,10,20,20,50 -> $15.12; alpha's
    # 2,5,10,10,10,20,40,30 -> $15.88, +$0.75 against beta on the same items.
    assert text == SNAPSHOT.read_text(encoding="utf-8")


def test_markdown_without_charts_has_no_chart_column(tiny: Path) -> None:
    text = leaderboard.markdown(leaderboard.collect(tiny))
    assert "charts" not in text and ".png" not in text
    assert "| 2 | `alpha` | classic | 8/8 | $15.88 |" in text


def test_tie_marking_comes_from_the_paired_interval(tiny: Path) -> None:
    by_name = {e.predictor: e for e in leaderboard.collect(tiny)}
    assert by_name["beta"].rank == 1 and by_name["beta"].tied_with_leader is None
    assert by_name["alpha"].tied_with_leader is True  # its interval holds 0
    assert by_name["delta"].tied_with_leader is False
    p = by_name["delta"].vs_leader
    assert p is not None and p.items == 7  # delta skipped item 7: compared on the rest
    assert p.diff == pytest.approx(270 / 7 - 71 / 7)  # beta on the same 7 items


def test_paired_interval_on_a_hand_made_case() -> None:
    truth = {i: 100.0 for i in range(6)}
    a = {i: 100.0 + e for i, e in enumerate([10, 10, 10, 10, 10, 10])}  # errors 10
    b = {i: 100.0 - e for i, e in enumerate([0, 0, 0, 20, 20, 20])}  # errors 0 / 20
    p = metrics.paired(truth, a, b)
    # differences a - b: +10 x3, -10 x3: mean 0, the interval straddles it
    assert p.items == 6 and p.diff == pytest.approx(0.0) and p.tied
    assert p.a_wins == pytest.approx(0.5) and p.b_wins == pytest.approx(0.5) and p.ties == 0
    lo, hi = p.diff_ci95
    assert -10 <= lo < 0 < hi <= 10
    # A constant gap has a zero-width interval that excludes 0.
    q = metrics.paired(truth, {i: 130.0 for i in truth}, {i: 105.0 for i in truth})
    assert q.diff == pytest.approx(25.0) and q.diff_ci95 == pytest.approx((25.0, 25.0))
    assert not q.tied and q.b_wins == 1.0
    # Items only one side answered are left out, not counted as $0.
    r = metrics.paired(truth, {**a, 6: 1.0}, {**b, 7: 1.0})
    assert r.items == 6
    # Deterministic: the same seed gives the same interval.
    assert metrics.paired(truth, a, b).diff_ci95 == p.diff_ci95


def test_json_keeps_the_contract_keys_and_adds_breakdowns(tiny: Path) -> None:
    entries = leaderboard.collect(tiny)
    leaderboard.write(tiny, entries)
    rows = json.loads((tiny / "leaderboard.json").read_text())["rows"]
    for row in rows:
        for key in ("predictor", "test_set", "answered", "total", "mae", "mae_ci95", "rmsle",
                    "hit_rate"):
            assert key in row
        assert [g["group"] for g in row["by_price_band"]] == [
            "under $50", "$50-200", "$200-500", "over $500"]
        assert sum(g["items"] for g in row["by_price_band"]) == 8
        assert row["by_category"] is None  # no test rows here: bands only
    alpha = next(r for r in rows if r["predictor"] == "alpha")
    assert alpha["rank"] == 2 and alpha["tied_with_leader"] is True
    assert alpha["vs_leader"]["leader"] == "beta" and alpha["vs_leader"]["tied"] is True
    header = (tiny / "leaderboard.csv").read_text().splitlines()[0].split(",")
    assert {"mae_ci95_lo", "vs_leader_diff", "mae_under_50", "mae_over_500"} <= set(header)
    assert not {"vs_leader", "by_price_band", "mae_ci95"} & set(header)


def test_breakdown_bands_and_categories() -> None:
    assert [breakdown.price_band(p) for p in (0.5, 49.99, 50, 199.99, 200, 500, 999)] == [
        "under $50", "under $50", "$50-200", "$50-200", "$200-500", "over $500", "over $500"]
    truth = {1: 10.0, 2: 300.0, 3: 20.0, 4: 700.0}
    guesses = {1: 20.0, 2: None, 3: 25.0, 4: 100.0}
    bands = breakdown.by_price_band(truth, guesses)
    assert [(g.items, g.answered) for g in bands] == [(2, 2), (0, 0), (1, 0), (1, 1)]
    assert bands[0].mae == pytest.approx(7.5) and bands[0].hit_rate == 1.0
    assert bands[2].mae is None and bands[3].hit_rate == 0.0
    groups = breakdown.by_category(truth, guesses, {1: "Toys", 3: "Toys", 4: "Automotive"})
    assert [(g.name, g.items, g.answered) for g in groups] == [
        ("Toys", 2, 2), ("Automotive", 1, 1), ("(unknown)", 1, 0)]  # unknown last


README = """# My project

Some text that must survive.

<!-- leaderboard:start -->
old table
<!-- leaderboard:end -->

More text after.
"""


def test_update_readme_rewrites_only_the_block(tiny: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    readme = docs / "README.md"
    readme.write_text(README)
    argv = ["leaderboard", "--results-dir", str(tiny), "--no-charts",
            "--publish", "--update-readme", str(readme)]
    assert main(argv) == 0
    text = readme.read_text()
    head, rest = text.split("<!-- leaderboard:start -->\n")
    block, tail = rest.split("<!-- leaderboard:end -->")
    assert head == README.split("<!-- leaderboard:start -->")[0]
    assert tail == "\n\nMore text after.\n"
    assert "old table" not in block and "| 1 | `beta` | frontier API |" in block
    assert "[../results/LEADERBOARD.md](../results/LEADERBOARD.md)" in block
    assert main(argv) == 0 and readme.read_text() == text  # idempotent


def test_update_readme_links_charts_relative_to_the_readme(tiny: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    entries = leaderboard.collect(tiny)
    block = leaderboard.readme_block(entries, tiny, readme, drawn_paths(tiny, entries))
    assert "(results/charts/tiny/mae.png)" in block
    assert "[scatter](results/charts/tiny/alpha-scatter.png)" in block


def test_update_readme_keeps_crlf_and_file_mode(tiny: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    original = README.replace("\n", "\r\n").encode()
    readme.write_bytes(original)
    readme.chmod(0o644)
    assert leaderboard.update_readme(readme, "line one\nline two")
    data = readme.read_bytes()
    assert data.startswith(original.split(b"<!-- leaderboard:start -->")[0])
    assert data.endswith(original.split(b"<!-- leaderboard:end -->")[1])
    assert b"<!-- leaderboard:start -->\r\nline one\r\nline two\r\n<!-- leaderboard:end -->" \
        in data
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare line feed slipped in
    assert readme.stat().st_mode & 0o777 == 0o644
    assert not leaderboard.update_readme(readme, "line one\nline two")  # unchanged


@pytest.mark.parametrize("content", [
    "# no markers at all\n",
    "<!-- leaderboard:start -->\nonly the start\n",
    "<!-- leaderboard:end -->\n<!-- leaderboard:start -->\n",
    "<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n<!-- leaderboard:start -->\n",
])
def test_update_readme_refuses_without_a_marker_pair(tiny: Path, tmp_path: Path, content: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(content)
    code = main(["leaderboard", "--results-dir", str(tiny), "--no-charts",
                 "--publish", "--update-readme", str(readme)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "README.md" in err and "Traceback" not in err
    assert readme.read_text() == content
    assert not (tiny / "LEADERBOARD.md").exists()  # refused before writing anything


def test_update_readme_missing_file(tiny: Path, tmp_path: Path) -> None:
    assert main(["leaderboard", "--results-dir", str(tiny), "--no-charts",
                 "--publish", "--update-readme", str(tmp_path / "nope.md")]) == 2


def test_show_lists_misses_and_hits_by_id_without_test_rows(
        tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "gamma", "--results-dir", str(tiny), "--count", "2"]) == 0
    out = capsys.readouterr().out
    assert "\033[" not in out  # not a terminal: no colour
    worst = out.split("Worst 2 misses\n")[1].split("\n\n")[0].splitlines()
    assert worst[0].startswith("  1: guess    $100.00  truth   $900.00  error    $800.00  #7")
    assert worst[0].endswith("item 7")
    best = out.split("Best 2 hits\n")[1].split("\n\n")[0].splitlines()
    assert "error     $20.00" in best[0] or "error     $40.00" in best[0]
    assert "By true price" in out and "test rows not found here" in out


def test_show_colours_like_the_tester(tiny: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "gamma", "--results-dir", str(tiny), "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert "\033[91m  1: guess    $100.00  truth   $900.00" in out  # a miss in red
    assert "\033[93m" in out and "\033[0m" in out
    assert main(["show", "delta", "--results-dir", str(tiny), "--color", "always"]) == 0
    out = capsys.readouterr().out
    assert "\033[92m" in out and "\033[91m" not in out
    assert "no answer: 1 item(s) #7 (no number)" in out


class FakeTty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_auto_follows_tty_and_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert show.colour_wanted("auto", FakeTty()) is True
    assert show.colour_wanted("auto", io.StringIO()) is False
    assert show.colour_wanted("never", FakeTty()) is False
    monkeypatch.setenv("NO_COLOR", "1")
    assert show.colour_wanted("auto", FakeTty()) is False
    assert show.colour_wanted("always", io.StringIO()) is True


def test_show_and_compare_refuse_unknown_names(tiny: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "alpa", "--results-dir", str(tiny)]) == 2
    assert "did you mean alpha" in capsys.readouterr().err
    assert main(["compare", "alpha", "zeta", "--results-dir", str(tiny)]) == 2
    assert main(["show", "alpha", "--results-dir", str(tiny), "--count", "0"]) == 2


def test_compare_prints_the_paired_figures(tiny: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "alpha", "beta", "--results-dir", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert "alpha (A) vs beta (B) on tiny: 8 items both answered" in out
    assert "A - B: +$0.75 per item, 95% paired bootstrap interval [-$6.88, +$7.63]" in out
    assert "tied: the interval includes 0" in out
    assert main(["compare", "delta", "gamma", "--results-dir", str(tiny)]) == 0
    out = capsys.readouterr().out
    assert "7 items both answered" in out and "delta is better" in out
    assert "not compared: 0 answered by A only, 1 by B only" in out


def test_reports_without_charts_do_not_load_matplotlib(tiny: Path) -> None:
    import subprocess

    probe = (f"import sys\nfrom bench.cli import main\n"
             f"assert main(['leaderboard', '--results-dir', {str(tiny)!r}, '--no-charts']) == 0\n"
             f"assert main(['show', 'alpha', '--results-dir', {str(tiny)!r}]) == 0\n"
             f"assert main(['compare', 'alpha', 'beta', '--results-dir', {str(tiny)!r}]) == 0\n"
             "import bench.reports.charts\n"
             "print('LOADED', sorted(m for m in ('matplotlib', 'torch', 'sklearn') "
             "if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parent.parent)
    assert out.returncode == 0, out.stderr
    assert "LOADED []" in out.stdout
