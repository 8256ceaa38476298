"""The guesses sheet's data format, as the harness writes it: the blank sheet a
person fills in (``prompt,0`` rows, no header, the original experiment's format).

Reading filled-in sheets is the ``human`` and ``reference`` predictors' concern
(``predictors.sheets``); writing the blank one is the CLI's (``bench human export``).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from pathlib import Path

from bench.fsutil import atomic_write_text
from bench.types import Product


def write_blank_sheet(path: Path, products: Iterable[Product]) -> int:
    """The sheet a person fills in: ``prompt,0`` rows, no header. Returns the row count."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, lineterminator="\n")
    count = 0
    for product in products:
        writer.writerow([product.prompt, 0])
        count += 1
    atomic_write_text(path, buffer.getvalue())
    return count
