"""How reports write numbers: dollars, percentages, seconds, paired differences.

Plain functions of plain values; a missing figure is ``-`` everywhere. Every
figure is rounded by one rule (``fixed``), the same as the site's.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_EVEN, Context, Decimal
from typing import Any

from bench.metrics import Paired


def fixed(value: float, places: int, commas: bool = False) -> str:
    """``value`` with ``places`` decimals, by the one rounding rule of every figure the
    harness prints (the site's ``fixed`` in ``bench/site/static/site.js`` is the same):
    the number's shortest decimal form (``repr``, the digits JavaScript's ``String``
    shows too), rounded half to even. So $37.235 is $37.24 and $15.125 is $15.12
    everywhere (Python's own ``f"{37.235:.2f}"`` gives 37.23: it rounds the binary
    value, 37.2349999...; the browser's ``Intl.NumberFormat`` gives $15.13: it rounds
    half up). A minus sign only when the rounded value is not zero."""
    if not math.isfinite(value):
        return "nan" if math.isnan(value) else ("-inf" if value < 0 else "inf")
    exact = Decimal(repr(abs(value)))
    rounded = exact.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN,
                             context=_WIDE)
    text = f"{rounded:,.{places}f}" if commas else f"{rounded:.{places}f}"
    return f"-{text}" if value < 0 and rounded != 0 else text


_WIDE = Context(prec=400)  # room for every digit of any finite float


def money(value: float | None) -> str:
    if value is None:
        return "-"
    text = fixed(value, 2, commas=True)
    return f"-${text[1:]}" if text.startswith("-") else f"${text}"


def signed_money(value: float) -> str:
    text = fixed(value, 2, commas=True)
    return f"-${text[1:]}" if text.startswith("-") else f"+${text}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{fixed(value * 100, 1)}%"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else fixed(value, digits)


def cost(value: float | None) -> str:
    """API runs cost cents: keep four decimals under a dollar."""
    if value is None:
        return "-"
    return f"${fixed(value, 4, commas=True)}" if 0 < value < 1 else money(value)


def per_item(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "<0.01s" if seconds < 0.01 else f"{fixed(seconds, 2, commas=True)}s"


def paired_diff(p: Paired) -> str | None:
    """``+$12.34 [+$5.00, +$20.00]``: the paired difference and its 95% interval."""
    if p.diff is None or p.diff_ci95 is None:
        return None
    lo, hi = p.diff_ci95
    return f"{signed_money(p.diff)} [{signed_money(lo)}, {signed_money(hi)}]"


def p_value(p: float | None) -> str:
    """``0.012``; ``<0.001`` below a thousandth; by ``fixed``'s one rounding rule
    (the site's ``pValue`` is the same)."""
    if p is None:
        return "-"
    if p < 0.001:
        return "<0.001"
    return fixed(p, 3)


# Significant digits of every float in leaderboard.json and .csv: far more than any
# figure means, and few enough that no last-bit difference between machines shows.
PUBLISHED_DIGITS = 12


def published(value: Any) -> Any:
    """``value`` as the published files hold it: each finite float rounded to
    ``PUBLISHED_DIGITS`` significant digits (in lists and dicts too); the rest as is.
    Rows are compared in this form, so a difference below it is no change."""
    if isinstance(value, float):
        return float(f"{value:.{PUBLISHED_DIGITS}g}") if math.isfinite(value) else value
    if isinstance(value, dict):
        return {k: published(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [published(v) for v in value]
    return value
