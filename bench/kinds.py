"""The kinds of system a run is, with the label tables show and the colour charts draw.

A registered predictor has one of ``KINDS``; a recorded reference run is shown
as the kind of system it records (``bench.systems``), with "recorded" as a mark
of its own. Reports, the PNG charts and the site label and colour kinds from
here, so a new kind is added in one place.
"""

from __future__ import annotations

KINDS = ("person", "floor", "classic", "frontier", "fine-tuned-api", "local-llm",
         "fine-tuned-open", "rag", "ensemble", "reference", "custom")
LABELS = {"person": "person", "floor": "floor", "classic": "classic",
          "frontier": "frontier API", "fine-tuned-api": "fine-tuned API model",
          "local-llm": "local LLM", "fine-tuned-open": "fine-tuned open model",
          "rag": "RAG", "ensemble": "ensemble", "reference": "recorded reference",
          "custom": "custom"}
COLOURS = {"person": "#8c564b", "floor": "#525252", "classic": "#1f77b4",
           "frontier": "#9467bd", "fine-tuned-api": "#e377c2", "local-llm": "#2ca02c",
           "fine-tuned-open": "#00543a", "rag": "#17becf", "ensemble": "#ff7f0e",
           "reference": "#a6a6a6", "custom": "#bcbd22"}
RECORDED = "recorded"  # the mark a recorded run carries beside its kind


def label(kind: str) -> str:
    """How tables name a kind; an unknown kind is shown as it is."""
    return LABELS.get(kind, kind)


def colour(kind: str) -> str:
    """The kind's chart colour; an unknown kind gets the custom one."""
    return COLOURS.get(kind, COLOURS["custom"])
