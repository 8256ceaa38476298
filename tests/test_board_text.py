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
