"""What a product reveals, as numbers: shared by every classic predictor.

Two sources for the same facts. Rows from the data directory carry
``Product.details`` (Amazon's attribute table); the hub's rows do not, and
most training rows do not either, but their text often holds the same table
flattened ("Weight 5 pounds, Dimensions 10 x 7.63 x 6.25 inches, ...").
So each fact is read from ``details`` when present and parsed from the text
otherwise, and the model sees one column per fact whichever source filled it.
Missing facts are NaN (trees split on missingness; the linear model never
sees these columns).

This module is pure Python plus numpy: no scikit-learn, cheap to import.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from bench.types import Product

# Facts from the product table, then text statistics. The order is the
# column order of the matrix: append only (a saved model depends on it).
FACTS = (
    "weight_lb",
    "volume_in3",
    "longest_in",
    "rank_top",
    "rank_sub",
    "year_available",
    "has_brand",
)
TEXT_STATS = (
    "chars",
    "words",
    "digits_share",
    "upper_share",
    "title_words",
    "max_volts",
    "max_watts",
    "pack_count",
    "storage_gb",
    "mentions_warranty",
    "mentions_professional",
    "mentions_replacement",
    "mentions_set",
)
NUMERIC_COLUMNS = FACTS + TEXT_STATS
# Later "first available" years are typos. A constant, not today's year: the same
# rows must give the same features on any day.
LATEST_YEAR = 2030

_MONTHS = {m: i for i, m in enumerate(
    ("january", "february", "march", "april", "may", "june", "july", "august",
     "september", "october", "november", "december"), start=1)}
_TO_POUNDS = {"pound": 1.0, "pounds": 1.0, "lb": 1.0, "lbs": 1.0, "ounce": 1 / 16,
              "ounces": 1 / 16, "oz": 1 / 16, "kilogram": 2.20462, "kilograms": 2.20462,
              "kg": 2.20462, "kgs": 2.20462, "gram": 0.00220462, "grams": 0.00220462,
              "g": 0.00220462}
_TO_INCHES = {"inches": 1.0, "inch": 1.0, "in": 1.0, '"': 1.0, "cm": 0.393701,
              "cms": 0.393701, "centimeters": 0.393701, "mm": 0.0393701,
              "millimeters": 0.0393701, "feet": 12.0, "ft": 12.0}

_NUM = r"(\d+(?:,\d{3})*(?:\.\d+)?|\.\d+)"
_WEIGHT_TEXT = re.compile(
    r"\bweight\s*:?\s*" + _NUM + r"\s*(pounds?|lbs?|ounces?|oz|kilograms?|kgs?|grams?|g)\b",
    re.IGNORECASE)
_WEIGHT_ANY = re.compile(_NUM + r"\s*(pounds|lbs|lb|kilograms|kg)\b", re.IGNORECASE)
# "10 x 7.63 x 6.25 inches", '3.2"D x 28.8"W x 17.4"H', "25.1 cms (L) x 20 cms (W) x ..."
_SIDE_SUFFIX = r'\s*(?:"|in|cms?|mm)?\s*\(?[LWHD]?\)?\s*'
_DIMS = re.compile(
    _NUM + _SIDE_SUFFIX + r"[x×]\s*" + _NUM + _SIDE_SUFFIX + r"(?:[x×]\s*" + _NUM + r")?"
    + r'\s*("|inches|inch|in|cms?|centimeters|mm|millimeters|feet|ft)?',
    re.IGNORECASE)
_DIMS_TEXT = re.compile(r"\bdimensions\b[^0-9]{0,30}", re.IGNORECASE)
_RANK_TEXT = re.compile(r"\bRank\b((?:\s+[A-Za-z&',\-]+){1,12})\s+(\d[\d,]*)")
_DATE = re.compile(r"\b(january|february|march|april|may|june|july|august|september|"
                   r"october|november|december)\s+\d{1,2},\s+(\d{4})\b", re.IGNORECASE)
_AVAILABLE = re.compile(r"\bAvailable\s+(\w+\s+\d{1,2},\s+\d{4})")
_BRAND_TEXT = re.compile(r"\bBrand\s*:?\s+([A-Z0-9][\w&'\-]*(?:\s+[A-Z0-9][\w&'\-]*){0,2})")
_VOLTS = re.compile(_NUM + r"\s*(?:v|volts?|vac|vdc)\b", re.IGNORECASE)
_WATTS = re.compile(_NUM + r"\s*(?:w|watts?)\b", re.IGNORECASE)
_PACK = re.compile(r"\b(?:pack of|set of|" + r"pcs?|pieces?|count|pk)\s*(\d{1,4})\b|\b(\d{1,4})"
                   r"\s*(?:-?\s*pack|pcs|pieces|count|pk)\b", re.IGNORECASE)
_STORAGE = re.compile(_NUM + r"\s*(gb|tb)\b", re.IGNORECASE)
_WORDS = {
    "mentions_warranty": re.compile(r"\bwarranty\b", re.IGNORECASE),
    "mentions_professional": re.compile(r"\b(?:professional|commercial|industrial|heavy[- ]duty)\b",
                                        re.IGNORECASE),
    "mentions_replacement": re.compile(r"\b(?:replacement|replaces|compatible with|fits?)\b",
                                       re.IGNORECASE),
    "mentions_set": re.compile(r"\b(?:set|kit|bundle)\b", re.IGNORECASE),
}


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def weight_pounds(details: Mapping[str, Any] | None, text: str) -> float:
    """Item weight in pounds: the table's 'Item Weight', else 'Weight N unit' in the text."""
    for key in ("Item Weight", "Weight", "Package Weight"):
        value = (details or {}).get(key)
        if isinstance(value, str):
            match = re.search(_NUM + r"\s*([A-Za-z]+)", value)
            if match and match.group(2).lower() in _TO_POUNDS:
                return _number(match.group(1)) * _TO_POUNDS[match.group(2).lower()]
    for pattern in (_WEIGHT_TEXT, _WEIGHT_ANY):
        match = pattern.search(text)
        if match:
            return _number(match.group(1)) * _TO_POUNDS[match.group(2).lower().rstrip(".")]
    return math.nan


def dimensions_inches(details: Mapping[str, Any] | None, text: str) -> tuple[float, float]:
    """(volume in cubic inches, longest side in inches) from a 'A x B x C unit' size."""
    candidates: list[str] = []
    for key in ("Product Dimensions", "Item Dimensions LxWxH", "Package Dimensions",
                "Item Dimensions"):
        value = (details or {}).get(key)
        if isinstance(value, str):
            candidates.append(value)
    for match in _DIMS_TEXT.finditer(text):
        candidates.append(text[match.end():match.end() + 80])
    for candidate in candidates:
        found = _DIMS.search(candidate)
        if not found:
            continue
        sides = [_number(s) for s in found.groups()[:3] if s]
        unit = (found.group(4) or "inches").lower()
        factor = _TO_INCHES.get(unit, 1.0)
        sides = [s * factor for s in sides]
        volume = math.prod(sides) if len(sides) == 3 else math.nan
        return volume, max(sides)
    return math.nan, math.nan


def sellers_rank(details: Mapping[str, Any] | None, text: str) -> tuple[float, float]:
    """(top-level rank, best sub-category rank); the text gives only a sub-category rank."""
    ranks = (details or {}).get("Best Sellers Rank")
    if isinstance(ranks, Mapping):
        values = [float(v) for v in ranks.values() if isinstance(v, int | float)]
        if values:
            return max(values), min(values)
    match = _RANK_TEXT.search(text)
    if match:
        return math.nan, _number(match.group(2))
    return math.nan, math.nan


def year_available(details: Mapping[str, Any] | None, text: str) -> float:
    """Fractional year the product was first listed."""
    sources = [str(v) for k, v in (details or {}).items() if "Date First Available" in k]
    match = _AVAILABLE.search(text)
    if match:
        sources.append(match.group(1))
    for source in sources:
        found = _DATE.search(source)
        if found:
            month = _MONTHS[found.group(1).lower()]
            year = int(found.group(2))
            if 1990 <= year <= LATEST_YEAR:
                return year + (month - 1) / 12
    return math.nan


def brand(product: Product) -> str:
    """A brand key: the table's 'Brand' (or 'Manufacturer'), else 'Brand X' in the text,
    else the title's first word (product titles usually lead with the brand)."""
    for key in ("Brand", "Manufacturer"):
        value = (product.details or {}).get(key)
        if isinstance(value, str) and value.strip():
            return _brand_key(value)
    match = _BRAND_TEXT.search(product.description)
    if match:
        return _brand_key(match.group(1))
    words = product.title.split()
    return _brand_key(words[0]) if words else ""


def _brand_key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower().split(",")[0])[:24]


def _max_number(pattern: re.Pattern[str], text: str, cap: float) -> float:
    values = [_number(m.group(1)) for m in pattern.finditer(text)]
    values = [v for v in values if 0 < v <= cap]
    return max(values) if values else math.nan


def _pack_count(text: str) -> float:
    values = [int(a or b) for a, b in _PACK.findall(text)]
    values = [v for v in values if 0 < v <= 5000]
    return float(max(values)) if values else math.nan


def _storage_gb(text: str) -> float:
    values = [_number(n) * (1024 if unit.lower() == "tb" else 1) for n, unit in
              _STORAGE.findall(text)]
    return max(values) if values else math.nan


def numeric_features(product: Product) -> list[float]:
    """One row of ``NUMERIC_COLUMNS`` for a product."""
    text = product.description
    details = product.details if isinstance(product.details, Mapping) else None
    volume, longest = dimensions_inches(details, text)
    rank_top, rank_sub = sellers_rank(details, text)
    has_brand = bool((details or {}).get("Brand")) or bool(_BRAND_TEXT.search(text))
    words = text.split()
    letters = sum(c.isalpha() for c in text) or 1
    row = {
        "weight_lb": weight_pounds(details, text),
        "volume_in3": volume,
        "longest_in": longest,
        "rank_top": rank_top,
        "rank_sub": rank_sub,
        "year_available": year_available(details, text),
        "has_brand": float(has_brand),
        "chars": float(len(text)),
        "words": float(len(words)),
        "digits_share": sum(c.isdigit() for c in text) / max(len(text), 1),
        "upper_share": sum(c.isupper() for c in text) / letters,
        "title_words": float(len(product.title.split())),
        "max_volts": _max_number(_VOLTS, text, 100_000),
        "max_watts": _max_number(_WATTS, text, 100_000),
        "pack_count": _pack_count(text),
        "storage_gb": _storage_gb(text),
    }
    for name, pattern in _WORDS.items():
        row[name] = float(len(pattern.findall(text)))
    return [float(row[c]) for c in NUMERIC_COLUMNS]


def numeric_matrix(products: Sequence[Product]) -> list[list[float]]:
    return [numeric_features(p) for p in products]


def model_text(product: Product) -> str:
    """The text the vectorisers read: the description, plus the category and brand as
    tokens when known (they are words the price depends on, wherever they came from)."""
    parts = [product.description]
    if product.category:
        parts.append(f"category_{product.category.lower()}")
    key = brand(product)
    if key:
        parts.append(f"brandkey_{key}")
    return "\n".join(parts)
