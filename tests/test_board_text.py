"""What the board says, in every place it says it (issue 20 points 7-9, issue 21 point 11):
one rounding rule for figures in Python and in the browser, captions that agree with
the data, and user-supplied names and titles that cannot break a table, a page, a
spreadsheet or a terminal."""

from __future__ import annotations

import random

import pytest

from bench.reports import format as fmt
from tests.browser import launch
from tests.conftest import ROOT

SITE_JS = ROOT / "bench" / "site" / "static" / "site.js"

# Half cents (and half tenths of a percent) whose binary value lies below, above or on
# the half: every one a case where two common rounding rules disagree.
HALVES = [37.235, 15.125, 1.005, 2.675, 0.125, 0.005, 0.015, 0.025, -0.005, -37.235,
          -15.125, 1234567.895, 0.5, 2.5, 9.995, 99.995, 123456789.125, 0.375, 0.0625,
          0.00125, 4.4445, 0.00005]
ODD = [0.0, -0.0, 1e21, 1.5e-7, 0.0001, 5e-324, 1.7976931348623157e308, 1e16, 123.0,
       0.1 + 0.2, 1 / 3, -2 / 3, 250 / 251, 0.708, 46.664880000000004]


def _values() -> list[float]:
    rng = random.Random(20)
    cents = [rng.randrange(0, 10**7) / 1000 for _ in range(400)]  # many half cents
    eighths = [rng.randrange(0, 10**5) / 8 for _ in range(200)]  # exact binary halves
    return HALVES + ODD + cents + eighths + [-v for v in cents[:50]]


FUNCTIONS = {"money": fmt.money, "signedMoney": fmt.signed_money, "percent": fmt.percent,
             "number": fmt.number, "cost": fmt.cost, "perItem": fmt.per_item}


def test_half_cents_round_half_to_even_on_the_decimal_value():
    assert fmt.money(37.235) == "$37.24"  # 37.2349999... in binary: the decimal decides
    assert fmt.money(15.125) == "$15.12"  # an exact half: to even
    assert fmt.money(15.135) == "$15.14"
    assert fmt.money(1.005) == "$1.00" and fmt.money(1.015) == "$1.02"
    assert fmt.money(1234567.895) == "$1,234,567.90"
    assert fmt.money(-0.004) == "$0.00" and fmt.money(-2.5) == "-$2.50"
    assert fmt.signed_money(-0.001) == "+$0.00" and fmt.signed_money(-3.125) == "-$3.12"
    assert fmt.percent(0.0625) == "6.2%" and fmt.percent(0.0675) == "6.8%"
    assert fmt.cost(0.00125) == "$0.0012" and fmt.per_item(2.675) == "2.68s"
    assert fmt.number(0.125) == "0.12" and fmt.number(0.135) == "0.14"


def test_the_site_prints_every_figure_as_the_markdown_does():
    """site.js's formatting run in a real Chromium, value by value, against Python's."""
    values = _values()
    with launch() as context:
        page = context.new_page()
        page.set_content("<!doctype html><html><body></body></html>")
        page.add_script_tag(path=str(SITE_JS))
        shown = page.evaluate(
            "([names, values]) => Object.fromEntries(names.map((n) => "
            "[n, values.map((v) => window.bench.format[n](v))]))",
            [list(FUNCTIONS), values])
        page.close()
    for name, python in FUNCTIONS.items():
        expected = [python(v) for v in values]
        wrong = [(v, a, b) for v, a, b in zip(values, shown[name], expected, strict=True)
                 if a != b]
        assert not wrong, f"{name}: browser vs markdown {wrong[:5]}"
    assert shown["money"][:2] == ["$37.24", "$15.12"]


def test_chart_tooltips_show_the_pages_money_texts():
    """Vega's own number format rounds otherwise ($15.13 for 15.125): every money
    tooltip shows a text the page wrote with ``money``."""
    import json as _json

    from bench.site import charts

    text = _json.dumps(charts.specs())
    assert '"format"' not in text
    assert "mae_text" in text and "truth_text" in text and "guess_a_text" in text
    assert "withMoney" in SITE_JS.read_text(encoding="utf-8")


@pytest.mark.parametrize("value", HALVES)
def test_fixed_rounds_the_shortest_decimal_form(value):
    from decimal import ROUND_HALF_EVEN, Decimal

    expected = Decimal(repr(abs(value))).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert fmt.fixed(abs(value), 2, commas=True) == f"{expected:,.2f}"


# -- 20.8: the compare chart's caption agrees with where its points lie -----------------


def test_the_compare_caption_says_who_missed_by_more_where_the_chart_puts_the_points():
    from bench.site import charts

    spec = charts.specs()["compare"]
    caption = spec["description"]
    across, up = charts.point_axes(spec)
    diagonal = next(layer for layer in spec["layer"] if "values" in layer.get("data", {}))
    assert diagonal["encoding"]["x"]["field"] == diagonal["encoding"]["y"]["field"]  # y = x
    # A known pair where A is clearly worse: A missed every item by $100 or more, B by $5.
    points = [{"error_a": 100.0 + 10 * i, "error_b": 5.0} for i in range(10)]
    assert all(p[up] < p[across] for p in points)  # so every point lies below the diagonal
    assert "below the diagonal A missed by more" in caption
    assert "above it B did" in caption
    assert "A's error across, B's up" in caption
    # The page shows the template's own words, never a copy that could drift.
    assert "diagonal" not in SITE_JS.read_text(encoding="utf-8")


# -- 20.9 and 21.11: user text in every file and terminal the harness writes ------------

HOSTILE = "a|b\nc <img src=x onerror=alert(1)> `d` *e* <!-- leaderboard:end --> \x1b]0;pwned\x07"
FORMULAS = ["=HYPERLINK(\"http://x\",\"y\")", "+1+2", "-3+4", "@SUM(A1)"]


def _hostile_results(tmp_path):
    """Runs stored through the real store under hostile names, scored on a test file
    whose titles and categories carry the same text."""
    import json as _json

    from bench.data import load_test_set
    from bench.store import Record, RunStore
    from bench.types import Prediction
    from tests.conftest import write_synthetic_test_file

    path = write_synthetic_test_file(tmp_path / "hostile|<b>.jsonl")
    lines = [_json.loads(x) for x in path.read_text().splitlines()]
    for n, row in enumerate(lines):
        row["category"] = f"{HOSTILE} {n % 3}"
        row["title"] = f"{HOSTILE} {n}"
    path.write_text("".join(_json.dumps(x) + "\n" for x in lines))
    test_set = load_test_set(test_file=path)
    results = tmp_path / "results"
    for k, name in enumerate([HOSTILE.replace("\n", " ").replace("\x1b", "").replace("\x07", ""),
                              "a/b", "a b", *FORMULAS]):
        store = RunStore.for_run(results, test_set.name, name, {"predictor": name})
        store.open()
        for row in test_set.rows:
            store.append(Record(row.id, row.price, Prediction(row.price * (1.1 + k / 10))))
        store.close()
        store.write_run({"predictor": name, "test_set": test_set.name, "kind": "custom",
                         "items": len(test_set.rows), "data_source": str(path),
                         "test_fingerprint": test_set.fingerprint,
                         "finished_at": "2026-01-01T00:00:00+00:00",
                         "timings": {"last_wall_s": 1.0, "items_last_run": 12}})
    return results, test_set


def _rendered_tables(markdown_text: str) -> list[list[list[str]]]:
    """Each table as rows of cells, as a GFM renderer (markdown-it) parses them."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(markdown_text)
    tables, row = [], None
    for t in tokens:
        if t.type == "table_open":
            tables.append([])
        elif t.type == "tr_open":
            row = []
        elif t.type == "inline" and row is not None:
            row.append(t.content)
        elif t.type == "tr_close":
            tables[-1].append(row)
            row = None
    return tables


def test_user_text_cannot_break_a_leaderboard_table_or_carry_html(tmp_path):
    from markdown_it import MarkdownIt

    from bench.reports import publish as leaderboard

    results, _ = _hostile_results(tmp_path)
    done = leaderboard.publish(results, charts=False, public=True)
    assert not done.without_categories  # the categories were found: their table is there
    text = (results / "LEADERBOARD.md").read_text(encoding="utf-8")
    tables = _rendered_tables(text)
    assert len(tables) == 3  # ranking, price bands, categories
    for table in tables:
        assert len({len(r) for r in table}) == 1, table[0]  # every row as wide as the header
    assert len(tables[0]) == 1 + 7 and len(tables[2][0]) == 1 + 3  # 7 runs, 3 categories
    html = MarkdownIt("commonmark").enable("table").render(text)
    assert "<img" not in html and "<!--" not in html and "\x1b" not in text
    assert "onerror" in html  # shown as text, not dropped


def test_a_name_holding_the_readme_marker_leaves_the_readme_updatable(tmp_path):
    from bench.reports import publish as leaderboard

    results, _ = _hostile_results(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# x\n\n<!-- leaderboard:start -->\nold\n<!-- leaderboard:end -->\n")
    for _ in range(2):  # the second update used to refuse: two end markers
        leaderboard.publish(results, charts=False, readme=readme, public=True)
        text = readme.read_text()
        assert text.count("<!-- leaderboard:end -->") == 1
        assert text.count("<!-- leaderboard:start -->") == 1


def test_leaderboard_csv_holds_no_live_formula(tmp_path):
    import csv

    from bench.reports import publish as leaderboard

    results, _ = _hostile_results(tmp_path)
    leaderboard.publish(results, charts=False, public=True)
    with (results / "leaderboard.csv").open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    names = {r["predictor"] for r in rows}
    assert {"'" + f for f in FORMULAS} <= names
    for row in rows:
        for value in row.values():
            if value and value[0] in "=+-@\t\r":
                float(value)  # only numbers may start so (a negative figure)


def test_two_names_that_clean_alike_get_two_chart_files(tmp_path):
    from bench.reports.layout import chart_dir, predictor_charts

    paths = {name: predictor_charts(tmp_path, "t", name).scatter
             for name in ("a/b", "a b", "a_b", "a:b", "A:b", "a--b", "a:b--x")}
    assert len(set(paths.values())) == len(paths)
    assert len({str(p).lower() for p in paths.values()}) == len(paths)  # case-blind disks
    # Published names keep their file names.
    for name, stem in (("reference:gpt-4o-mini", "reference_gpt-4o-mini"),
                       ("xgboost", "xgboost")):
        assert predictor_charts(tmp_path, "t", name).scatter.name == f"{stem}-scatter.png"
    assert chart_dir(tmp_path, "pricer-test").name == "pricer-test"


def test_bench_show_and_compare_print_escape_codes_as_text(tmp_path, capsys):
    from bench.cli import main

    results, _ = _hostile_results(tmp_path)
    assert main(["show", "a/b", "--results-dir", str(results), "--color", "never"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;pwned\\x07" in out  # the title, shown with its escapes written out
    assert main(["compare", "a/b", "a b", "--results-dir", str(results)]) == 0
    assert "\x1b" not in capsys.readouterr().out


def test_names_with_control_characters_are_refused_at_registration():
    from bench import registry
    from bench.errors import BenchError

    for bad in ("two\nlines", "title\x1b]0;x\x07", "tab\there", " padded", "rtl\u202ename"):
        with pytest.raises(BenchError) as caught:
            registry.price_predictor(bad)(lambda product: 1.0)
        assert "\n" not in str(caught.value) and "\x1b" not in str(caught.value)
        assert bad not in registry.entries()


def test_a_name_holding_the_variant_colon_is_refused_at_registration():
    """``bench run NAME:VARIANT`` splits at the first colon, so a registered
    ``end<!-- leaderboard:end -->`` could never be run ("unknown predictor
    'end<!-- leaderboard'"): refused when registered, saying why."""
    from bench import registry
    from bench.errors import BenchError

    for bad in ("end<!-- leaderboard:end -->", "mine:v3"):
        with pytest.raises(BenchError, match="colon") as caught:
            registry.price_predictor(bad)(lambda product: 1.0)
        assert "NAME:VARIANT" in str(caught.value)
        assert bad not in registry.entries()


def test_a_plugin_name_with_a_line_break_cannot_split_bench_list(tmp_path):
    from bench import tables

    table = tables.render([["one\ntwo", "x\x1b[2Jy"]], ["predictor", "what"])
    assert len(table.splitlines()) == 3 and "\x1b" not in table
