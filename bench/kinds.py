"""The kinds of predictor, with the label tables show and the colour charts draw.

Every registered predictor has one of ``KINDS``; reports label and colour it
from here, so a new kind is added in one place.
"""

from __future__ import annotations

KINDS = ("person", "classic", "frontier", "local-llm", "reference", "ensemble", "custom")
LABELS = {"person": "person", "classic": "classic", "frontier": "frontier API",
          "local-llm": "local LLM", "reference": "recorded reference", "ensemble": "ensemble",
          "custom": "custom"}
COLOURS = {"person": "#8c564b", "classic": "#1f77b4", "frontier": "#9467bd",
           "local-llm": "#2ca02c", "reference": "#7f7f7f", "ensemble": "#ff7f0e",
           "custom": "#bcbd22"}


def label(kind: str) -> str:
    """How tables name a kind; an unknown kind is shown as it is."""
    return LABELS.get(kind, kind)


def colour(kind: str) -> str:
    """The kind's chart colour; an unknown kind gets the custom one."""
    return COLOURS.get(kind, COLOURS["custom"])
