"""Reading guesses from CSV sheets: a person's, or a recorded published run.

Two formats: the original sheet (``prompt,guess`` rows, no header, matched to
items by prompt text) and ``id,prediction`` with a header. Every defect is one
BenchError naming the file and line.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bench.data import read_amount
from bench.errors import BenchError
from bench.fsutil import read_input
from bench.sheets import write_blank_sheet
from bench.types import Prediction, Product

__all__ = ["file_digest", "read_guesses", "replay", "write_blank_sheet"]


def _normal(prompt: str) -> str:
    return prompt.replace("\r\n", "\n").strip()


def read_guesses(path: Path, products: Iterable[Product]) -> dict[int, float]:
    """Guesses by item id, checked against ``products`` (the test set)."""
    text = _read_text(path)
    by_prompt = {_normal(p.prompt): p.id for p in products}
    ids = set(by_prompt.values())
    reader = csv.reader(io.StringIO(text, newline=""))
    guesses: dict[int, float] = {}
    header_done = False
    by_id = False
    line = 1
    for row in reader:
        start, line = line, reader.line_num + 1
        if not row or all(not cell.strip() for cell in row):
            continue
        if not header_done:
            header_done = True
            if [c.strip().lower() for c in row[:2]] == ["id", "prediction"]:
                by_id = True
                continue
        if len(row) < 2:
            raise BenchError("expected two columns (prompt,guess or id,prediction), found one",
                             path, start)
        key, value = row[0], row[1]
        guess = read_amount(value, "guess", path, start)
        if by_id:
            try:
                item = int(key.strip())
            except ValueError:
                raise BenchError(f"id {key.strip()!r} is not an integer", path, start) from None
            if item not in ids:
                raise BenchError(f"unknown id {item}: not in the test set", path, start)
        else:
            found = by_prompt.get(_normal(key))
            if found is None:
                raise BenchError(f"prompt not in the test set: {_preview(key)!r}", path, start)
            item = found
        if item in guesses and guesses[item] != guess:
            raise BenchError(f"conflicting duplicate for item {item}: "
                             f"{guesses[item]:g} and {guess:g}", path, start)
        guesses[item] = guess
    if not guesses:
        raise BenchError("empty sheet: no guesses", path)
    return guesses


def file_digest(path: Path | None) -> str | None:
    """A short content hash of a sheet (its fingerprint: an edited sheet is a new run)."""
    if path is None or not path.exists():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def replay(guesses: Mapping[int, float], products: Sequence[Product],
           missing: str) -> list[Prediction]:
    """The sheet's guess for each product; ``missing`` as the error where it has none."""
    return [Prediction(price=guesses[p.id]) if p.id in guesses else Prediction.failed(missing)
            for p in products]


def _read_text(path: Path) -> str:
    raw = read_input(path, "CSV")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise BenchError("not UTF-8 text", path, line) from None


def _preview(text: str) -> str:
    flat = " ".join(text.split())
    return flat[:60] + ("..." if len(flat) > 60 else "")
