"""How reports write numbers: dollars, percentages, seconds, paired differences.

Plain functions of plain values; a missing figure is ``-`` everywhere.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from bench.metrics import Paired


def money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.2f}"


def signed_money(value: float) -> str:
    return f"{'-' if value < 0 else '+'}${abs(value):,.2f}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def number(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def cost(value: float | None) -> str:
    """API runs cost cents: keep four decimals under a dollar."""
    if value is None:
        return "-"
    return f"${value:,.4f}" if 0 < value < 1 else money(value)


def per_item(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return "<0.01s" if seconds < 0.01 else f"{seconds:,.2f}s"


def paired_diff(p: Paired) -> str | None:
    """``+$12.34 [+$5.00, +$20.00]``: the paired difference and its 95% interval."""
    if p.diff is None or p.diff_ci95 is None:
        return None
    lo, hi = p.diff_ci95
    return f"{signed_money(p.diff)} [{signed_money(lo)}, {signed_money(hi)}]"


def p_value(p: float | None) -> str:
    """``0.012``; ``<0.001`` below a thousandth. Halves round up from the float's exact
    value (an exact test gives 0.0625), as the site's ``toFixed(3)`` does."""
    if p is None:
        return "-"
    if p < 0.001:
        return "<0.001"
    return str(Decimal(p).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP))
