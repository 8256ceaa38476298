"""Loading and verifying data: the fixed test set, any other test file, training rows.

Sources, in order: an explicit data directory (``--data-dir`` /
``BENCH_DATA_DIR``), the local cache, a download of the split's parquet file
from the Hugging Face hub at the manifest's pinned revision. Rows must match
the manifest's fingerprint (a hash of ids and prices) or they are refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import hub, prompts
from bench.digest import canonical_json
from bench.errors import BenchError
from bench.fsutil import atomic_write_text, read_input
from bench.types import MAX_PRICE, Example, Product, price_problem


def _manifest_dir() -> Path:
    """``$BENCH_MANIFEST_DIR``, else the checkout's ``datasets/``, else where a
    (non-editable) install put them: ``<prefix>/share/pricer-bench/datasets``."""
    if os.environ.get("BENCH_MANIFEST_DIR"):
        return Path(os.environ["BENCH_MANIFEST_DIR"])
    checkout = Path(__file__).resolve().parent.parent / "datasets"
    if checkout.is_dir():
        return checkout
    return Path(sysconfig.get_path("data")) / "share" / "pricer-bench" / "datasets"


MANIFEST_DIR = _manifest_dir()
DEFAULT_TEST = "pricer-test"
DEFAULT_TRAIN = "pricer-train"
NO_DATA_HINT = "pass --data-dir DIR or set BENCH_DATA_DIR (a folder with test.jsonl, train.jsonl)"


@dataclass(frozen=True)
class Row:
    """A verified data row: the truth price stays here, never in a Product."""

    id: int
    text: str
    price: float
    title: str | None = None
    category: str | None = None
    details: dict[str, Any] | None = None
    line: int | None = field(default=None, compare=False, repr=False)  # in its file

    @property
    def has_extras(self) -> bool:
        """Does it carry fields the hub's rows do not (title, category, details)?"""
        return (self.title, self.category, self.details) != (None, None, None)

    def product(self) -> Product:
        desc = prompts.description(self.text)
        return Product(
            id=self.id,
            title=prompts.title(desc),
            description=desc,
            prompt=prompts.test_prompt(self.text),
            category=self.category,
            details=self.details,
        )


@dataclass
class TestSet:
    """A named, fingerprinted list of rows; predictors get ``products()`` only."""

    name: str
    rows: list[Row]
    fingerprint: str
    source: str
    manifest: dict[str, Any] | None = None
    _by_id: dict[int, Row] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._by_id = {r.id: r for r in self.rows}

    def products(self) -> list[Product]:
        return [r.product() for r in self.rows]

    def truth(self) -> dict[int, float]:
        return {r.id: r.price for r in self.rows}

    def known_as(self, fingerprint: str | None) -> bool:
        """Is ``fingerprint`` (a run's record of its data) this test set? The fixed
        benchmark also answers to the fingerprints its manifest had before (of the same
        ids and prices: runs stored by older versions keep their rows)."""
        previous = (self.manifest or {}).get("previous_fingerprints") or []
        return not fingerprint or fingerprint == self.fingerprint or fingerprint in previous

    def row(self, item_id: int) -> Row | None:
        return self._by_id.get(item_id)

    def __len__(self) -> int:
        return len(self.rows)


def _core(row: Row) -> bytes:
    """What both sources carry: the id, the whole text, the price as a figure in cents."""
    return canonical_json([row.id, row.text, f"{row.price:.2f}"]).encode()


def _extras(row: Row) -> bytes:
    """What a data folder adds: the title, category and details (as parsed)."""
    return canonical_json([row.id, row.title, row.category, row.details]).encode()


def _hash(parts: Iterable[bytes]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part + b"\n")
    return "sha256:" + digest.hexdigest()


def fingerprint(rows: Iterable[Row]) -> str:
    """sha256 of everything in the rows a predictor is shown, and of the truth: per
    row the id, the text (the prompt, title and description are cut from it), the
    price as a figure in cents, and the title, category and details when present."""
    return _hash(_core(r) + (b"\t" + _extras(r) if r.has_extras else b"") for r in rows)


def row_digest(part: bytes) -> str:
    """A row's short digest in a manifest (16 hex digits), to name the row that differs."""
    return hashlib.sha256(part).hexdigest()[:16]


def manifest_entries(rows: list[Row]) -> dict[str, Any]:
    """What a test-set manifest records of ``rows`` (to write one: see datasets/)."""
    return {
        "count": len(rows),
        "fingerprint": fingerprint(Row(r.id, r.text, r.price) for r in rows),
        "extras_fingerprint": _hash(_extras(r) for r in rows),
        "row_digests": {"text_price": [row_digest(_core(r)) for r in rows],
                        "extras": [row_digest(_extras(r)) for r in rows]},
    }


def manifest(name: str) -> dict[str, Any]:
    path = MANIFEST_DIR / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise BenchError(f"no dataset manifest {name!r}", path) from None


def default_data_dir(explicit: str | Path | None = None) -> Path | None:
    value = explicit if explicit is not None else os.environ.get("BENCH_DATA_DIR")
    if not value:
        return None
    path = Path(value).expanduser()
    if not path.is_dir():
        raise BenchError("data directory does not exist", path)
    return path


def cache_root() -> Path:
    return Path(os.environ.get("BENCH_CACHE_DIR", Path.home() / ".cache" / "pricer-bench"))


# -- parsing -----------------------------------------------------------------


def read_jsonl(path: Path, *, need_id: bool = False, ignore_ids: bool = False) -> list[Row]:
    """Parse and check a data file; any defect is one BenchError naming the line.

    Rows without an ``id`` are numbered by position; ``ignore_ids`` numbers all
    rows so (training files merge sources whose ids mean nothing here).
    """
    raw = read_input(path, "JSONL")
    rows: list[Row] = []
    seen: set[int] = set()
    for number, line in _lines(path, raw):
        if not line.strip():
            continue
        rows.append(_parse_row(path, number, line, len(rows), need_id, ignore_ids, seen))
    if not rows:
        raise BenchError("empty file: no rows", path)
    return rows


def _lines(path: Path, raw: bytes) -> Iterator[tuple[int, str]]:
    for number, chunk in enumerate(raw.split(b"\n"), start=1):
        try:
            yield number, chunk.decode("utf-8")
        except UnicodeDecodeError:
            raise BenchError("not UTF-8 text", path, number) from None


def _parse_row(path: Path, number: int, line: str, index: int, need_id: bool,
               ignore_ids: bool, seen: set[int]) -> Row:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as exc:
        hint = " (this looks like CSV; expected JSON Lines)" if "," in line and \
            not line.lstrip().startswith(("{", "[")) else ""
        raise BenchError(f"invalid JSON: {exc.msg}{hint}", path, number) from None
    if not isinstance(obj, dict):
        raise BenchError("expected a JSON object per line", path, number)
    text = obj.get("text")
    if not isinstance(text, str) or not text.strip():
        raise BenchError("missing or empty 'text'", path, number)
    if prompts.PRICE_PREFIX not in text:
        raise BenchError(f"'text' has no {prompts.PRICE_PREFIX!r} line", path, number)
    price = read_amount(obj.get("price"), "price", path, number)
    item_id = index if ignore_ids else obj.get("id", None if need_id else index)
    if isinstance(item_id, bool) or not isinstance(item_id, int):
        if need_id:
            raise BenchError("missing or non-integer 'id'", path, number)
        raise BenchError(f"'id' must be an integer, not {item_id!r}", path, number)
    if item_id in seen:
        raise BenchError(f"duplicate id {item_id}", path, number)
    seen.add(item_id)
    details = obj.get("details")
    if isinstance(details, str):
        try:
            details = json.loads(details)
        except json.JSONDecodeError:
            details = None
    category = obj.get("category")
    title = obj.get("title")
    return Row(
        id=item_id, text=text, price=price,
        title=title if isinstance(title, str) else None,
        category=category if isinstance(category, str) else None,
        details=details if isinstance(details, dict) else None,
        line=number,
    )


def read_amount(value: Any, what: str, path: Path, line: int) -> float:
    """A dollar amount from a file (a JSON number, or text such as "$1,234.50"):
    finite, not negative and at most ``MAX_PRICE``, else one error naming the file
    and line."""
    if value is None:
        raise BenchError(f"missing {what}", path, line)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BenchError(f"{what} {value!r} is not a number", path, line)
    shown = value.strip() if isinstance(value, str) else value
    try:
        amount = float(shown.replace("$", "").replace(",", "") if isinstance(shown, str)
                       else shown)
    except ValueError:
        raise BenchError(f"{what} {shown!r} is not a number", path, line) from None
    if not math.isfinite(amount):
        raise BenchError(f"{what} {shown!r} is not a finite number", path, line)
    if amount < 0:
        raise BenchError(f"{what} {shown!r} is negative", path, line)
    if amount > MAX_PRICE:
        raise BenchError(f"{what} {shown!r} is above the ${MAX_PRICE:,.0f} limit", path, line)
    return amount


def write_jsonl(path: Path, rows: Iterable[Row]) -> None:
    lines = []
    for r in rows:
        obj: dict[str, Any] = {"id": r.id, "text": r.text, "price": r.price}
        if r.category is not None:
            obj["category"] = r.category
        lines.append(json.dumps(obj, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")


# -- the test set ------------------------------------------------------------


def load_test_set(
    data_dir: str | Path | None = None,
    test_file: str | Path | None = None,
    *,
    name: str = DEFAULT_TEST,
    download: bool = True,
) -> TestSet:
    """The fixed benchmark (verified against its manifest), or ``test_file``."""
    if test_file is not None:
        path = Path(test_file)
        rows = read_jsonl(path)
        fp = fingerprint(rows)  # its identity is its content, never its name
        stem = path.stem.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return TestSet(f"{stem}-{fp[7:15]}", rows, fp, source=str(path))
    spec = manifest(name)
    directory = default_data_dir(data_dir)
    if directory is not None:
        path = directory / spec["data_dir_file"]
        rows = _select(read_jsonl(path, need_id=True), spec)
        return _verified(spec, rows, str(path))
    cached = _cache_file(spec)
    if cached.exists():
        return _verified(spec, _select(read_jsonl(cached, need_id=True), spec), str(cached))
    if not download:
        raise BenchError(f"test set {name!r} is not cached and downloading is off; "
                         f"{NO_DATA_HINT}")
    rows = _select(hub_rows(spec), spec)
    test_set = _verified(spec, rows, f"hf://{spec['repo_id']}@{spec['revision']}")
    write_jsonl(cached, rows)
    return test_set


def _select(rows: list[Row], spec: dict[str, Any]) -> list[Row]:
    first, last = spec["rows"]
    return sorted((r for r in rows if first <= r.id <= last), key=lambda r: r.id)


def _verified(spec: dict[str, Any], rows: list[Row], source: str) -> TestSet:
    """The rows as the benchmark, or BenchError naming the file and the first row that
    differs from the manifest. The test set's fingerprint is the manifest's: the
    benchmark's identity, the same from the hub or a data folder."""
    fp = fingerprint(Row(r.id, r.text, r.price) for r in rows)
    if len(rows) != spec["count"]:
        raise BenchError(
            f"rows do not match the manifest {spec['name']!r} "
            f"({len(rows)} rows, fingerprint {fp[:19]}..., expected {spec['count']} rows, "
            f"{spec['fingerprint'][:19]}...): refusing to score on different data", source)
    digests = spec.get("row_digests") or {}
    extras = any(r.has_extras for r in rows)
    checks = [("text_price", _core, "its text or price")]
    if extras:
        checks.append(("extras", _extras, "its title, category or details"))
    for index, row in enumerate(rows):  # the first row that differs, in file order
        for key, part, what in checks:
            expected = digests.get(key) or []
            if index >= len(expected) or row_digest(part(row)) != expected[index]:
                _differs(spec, source, row, what)
    extras_fp = _hash(_extras(r) for r in rows)
    if fp != spec["fingerprint"] or (extras and extras_fp != spec.get("extras_fingerprint")):
        raise BenchError(f"rows do not match the manifest {spec['name']!r} (fingerprint "
                         f"{fp[:19]}..., expected {spec['fingerprint'][:19]}...): refusing to "
                         "score on different data", source)
    return TestSet(spec["name"], rows, spec["fingerprint"], source=source, manifest=spec)


def _differs(spec: dict[str, Any], source: str, row: Row, what: str) -> None:
    where = f"row id {row.id}" if row.line is not None else f"row {row.id}"
    raise BenchError(f"rows do not match the manifest {spec['name']!r}: {where} differs "
                     f"({what}); refusing to score on different data", source, row.line)


def _cache_file(spec: dict[str, Any]) -> Path:
    return cache_root() / "data" / f"{spec['name']}@{spec['revision']}.jsonl"


def _root_cause(exc: BaseException) -> str:
    """The innermost error of a chain: "Name or service not known", not the
    hub client's generic "cannot find the requested files"."""
    while (inner := exc.__cause__ or exc.__context__) is not None:
        exc = inner
    return f"{type(exc).__name__}: {exc}"


def cannot_fetch(name: str) -> str | None:
    """Why the rows of dataset ``name`` cannot be had without a data folder
    (not in the local cache, and the hub cannot be reached), or None. Cheap:
    one short connection attempt, remembered for the process."""
    spec = manifest(name)
    if _cache_file(spec).exists():
        return None
    why = hub.unreachable()
    return None if why is None else f"no data folder, and {why}: {NO_DATA_HINT}"


def hub_rows(spec: dict[str, Any]) -> list[Row]:
    """Download the split's parquet files from the hub (``HF_ENDPOINT`` honoured).

    When the hub cannot be reached, only the hub client's local copy is tried,
    and the failure is one line at once (no retries against a network that is
    not there)."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - a core dependency
        raise BenchError(f"huggingface_hub is not installed; {NO_DATA_HINT}") from None
    import pyarrow.parquet as pq

    offline = hub.unreachable()
    rows: list[Row] = []
    for filename in spec["files"]:
        try:
            local = hf_hub_download(
                repo_id=spec["repo_id"], repo_type=spec.get("repo_type", "dataset"),
                filename=filename, revision=spec["revision"], cache_dir=cache_root() / "hub",
                endpoint=os.environ.get("HF_ENDPOINT") or None,
                token=os.environ.get("HF_TOKEN") or None,
                local_files_only=offline is not None,
            )
        except Exception as exc:
            if offline is not None:
                raise BenchError(f"no data folder, and {offline}: {NO_DATA_HINT}") from None
            raise BenchError(
                f"could not download {filename} from {spec['repo_id']} "
                f"({_root_cause(exc)}); {NO_DATA_HINT}") from None
        table = pq.read_table(local, columns=["text", "price"])
        for text, price in zip(table.column("text").to_pylist(),
                               table.column("price").to_pylist(), strict=True):
            if not isinstance(text, str) or not text.strip():
                raise BenchError(f"row {len(rows)}: no text", local)
            problem = price_problem(price)
            if problem is not None:
                raise BenchError(f"row {len(rows)}: {problem}", local)
            rows.append(Row(id=len(rows), text=text, price=float(price)))
    return rows


# -- training data -----------------------------------------------------------


def load_train(
    data_dir: str | Path | None = None,
    *,
    test_set: TestSet | None = None,
    include_extra: bool = False,
    size: int | None = None,
    seed: int = 42,
) -> tuple[list[Example], str]:
    """Training examples and their fingerprint (of their content: texts, prices,
    and the data folder's extra fields).

    Rows whose product text equals a test row's text are dropped, so no
    predictor ever trains on the benchmark.
    """
    spec = manifest(DEFAULT_TRAIN)
    directory = default_data_dir(data_dir)
    if directory is not None:
        rows = read_jsonl(directory / spec["data_dir_file"], ignore_ids=True)
        extra = directory / spec["extra_file"]
        if include_extra and extra.exists():
            offset = len(rows)
            rows += [Row(r.id + offset, r.text, r.price, r.title, r.category, r.details)
                     for r in read_jsonl(extra, ignore_ids=True)]
    else:
        cached = _cache_file(spec)
        if cached.exists():
            rows = read_jsonl(cached, ignore_ids=True)
        else:
            rows = hub_rows(spec)
            write_jsonl(cached, rows)
    if test_set is not None:
        banned = {prompts.description(r.text) for r in test_set.rows}
        rows = [r for r in rows if prompts.description(r.text) not in banned]
    rows = _dedupe(rows)
    if size is not None and size < len(rows):
        rows = sorted(random.Random(seed).sample(rows, size), key=lambda r: r.id)
    return [Example(r.product(), r.price) for r in rows], fingerprint(rows)


def _dedupe(rows: list[Row]) -> list[Row]:
    """Drop repeated products (the pool merges overlapping published files)."""
    seen: set[tuple[str, float]] = set()
    out = []
    for r in rows:
        key = (prompts.description(r.text), round(r.price, 2))
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out
