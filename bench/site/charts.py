"""The site's chart templates: Vega-Lite specs written with Altair.

Each spec reads a named data set (``rows``, ``points``) that the page fills in
from its own data file, so one template serves every predictor and pair. Tooltips
show the page's own money texts (``<field>_text``, written by ``site.js``'s
``money``), so a chart says $37.24 where the table does. The
browser draws them with the Vega libraries that ``vl-convert-python`` bundles
(``assets.vega_bundle``): nothing comes from a network.
"""

from __future__ import annotations

from typing import Any

from bench import kinds

KIND_DOMAIN = list(kinds.KINDS)
KIND_RANGE = [kinds.colour(k) for k in KIND_DOMAIN]  # the PNG charts' colours
# The legend names kinds as the tables do.
KIND_LABELS = "".join(f"datum.label === '{k}' ? '{kinds.label(k)}' : " for k in KIND_DOMAIN) \
    + "datum.label"
COMPARE_TICKS = [0, 10, 30, 100, 300, 1000, 2000]
BAND_DOMAIN = ["green", "orange", "red"]
BAND_RANGE = ["#2e9d4a", "#e8900c", "#d0342c"]


def specs() -> dict[str, dict[str, Any]]:
    """Every template by name: ``mae``, ``scatter``, ``compare``. The compare template's
    ``description`` is the caption the page shows under it (``compare_caption``)."""
    import altair as alt

    compare = _compare(alt)
    compare["description"] = compare_caption(compare)
    return {"mae": _mae(alt), "scatter": _scatter(alt), "compare": compare}


# Which run each field of the compare chart's points belongs to.
RUN_OF_FIELD = {"error_a": "A", "error_b": "B"}


def point_axes(spec: dict[str, Any]) -> tuple[str, str]:
    """(field across, field up) of the layer drawing the ``points`` data set."""
    for layer in spec.get("layer", [spec]):
        if layer.get("data", {}).get("name") == "points":
            encoding = layer["encoding"]
            return encoding["x"]["field"], encoding["y"]["field"]
    raise ValueError("no layer draws the points")


def compare_caption(spec: dict[str, Any]) -> str:
    """The compare chart's words, read from how the chart places its points: a point
    below the diagonal has a smaller value up than across, so the run whose error is
    across missed that item by more."""
    across, up = (RUN_OF_FIELD[f] for f in point_axes(spec))
    return (f"Each point an item both answered: {across}'s error across, {up}'s up; "
            f"below the diagonal {across} missed by more, above it {up} did.")


def _mae(alt: Any) -> dict[str, Any]:
    base = alt.Chart(alt.Data(name="rows")).encode(
        y=alt.Y("predictor:N", sort=alt.EncodingSortField("mae", op="min", order="ascending"),
                title=None, axis=alt.Axis(labelLimit=260)),
    )
    bars = base.mark_bar().encode(
        x=alt.X("mae:Q", title="mean absolute error ($), 95% interval"),
        color=alt.Color("kind:N", scale=alt.Scale(domain=KIND_DOMAIN, range=KIND_RANGE),
                        title="kind", legend=alt.Legend(labelExpr=KIND_LABELS)),
        tooltip=[alt.Tooltip("predictor:N"), alt.Tooltip("mae_text:N", title="MAE"),
                 alt.Tooltip("lo_text:N", title="95% low"),
                 alt.Tooltip("hi_text:N", title="95% high")],
    )
    rules = base.mark_rule(color="#333").encode(x="lo:Q", x2="hi:Q")
    return (bars + rules).properties(
        width="container", autosize=alt.AutoSizeParams(type="fit-x", contains="padding")).to_dict()


def _scatter(alt: Any) -> dict[str, Any]:
    scale = alt.Scale(type="log", domain=[0.5, 5000], clamp=True)
    points = alt.Chart(alt.Data(name="points")).mark_circle(size=40, opacity=0.75).encode(
        x=alt.X("truth:Q", scale=scale, title="true price ($, log)"),
        y=alt.Y("guess:Q", scale=scale, title="guess ($, log)"),
        color=alt.Color("band:N", scale=alt.Scale(domain=BAND_DOMAIN, range=BAND_RANGE),
                        title="error band"),
        tooltip=[alt.Tooltip("title:N", title="product"),
                 alt.Tooltip("truth_text:N", title="truth"),
                 alt.Tooltip("guess_text:N", title="guess"),
                 alt.Tooltip("error_text:N", title="error")],
        href="href:N",
    )
    diagonal = alt.Chart(alt.Data(values=[{"v": 0.5}, {"v": 5000}])).mark_line(
        color="#888", strokeDash=[4, 4]).encode(x="v:Q", y="v:Q")
    return (diagonal + points).properties(width="container", height=420).to_dict()


def _compare(alt: Any) -> dict[str, Any]:
    scale = alt.Scale(type="symlog", domain=[0, 2000], clamp=True)
    ticks = alt.Axis(values=COMPARE_TICKS)  # spread on a symlog axis: no overlapping labels
    points = alt.Chart(alt.Data(name="points")).mark_circle(size=40, opacity=0.75).encode(
        x=alt.X("error_a:Q", scale=scale, title="A's error ($)", axis=ticks),
        y=alt.Y("error_b:Q", scale=scale, title="B's error ($)", axis=ticks),
        color=alt.Color("closer:N", scale=alt.Scale(domain=["A", "B", "equal"],
                                                    range=["#3b6fd4", "#c2512f", "#888"]),
                        title="closer to the truth", legend=alt.Legend(orient="bottom")),
        tooltip=[alt.Tooltip("title:N", title="product"),
                 alt.Tooltip("truth_text:N", title="truth"),
                 alt.Tooltip("guess_a_text:N", title="A's guess"),
                 alt.Tooltip("guess_b_text:N", title="B's guess")],
        href="href:N",
    )
    diagonal = alt.Chart(alt.Data(values=[{"v": 0}, {"v": 2000}])).mark_line(
        color="#888", strokeDash=[4, 4]).encode(x="v:Q", y="v:Q")
    return (diagonal + points).properties(width="container", height=420).to_dict()
