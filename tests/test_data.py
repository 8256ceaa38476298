import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from bench import data, prompts
from bench.errors import BenchError
from tests.fake_hub import FakeHub


def _rows(data_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (data_dir / "test.jsonl").read_text().splitlines()]


def test_fixed_test_set_loads_and_matches_manifest(data_dir):
    ts = data.load_test_set(data_dir)
    assert ts.name == "pricer-test" and len(ts) == 251
    assert ts.fingerprint == data.manifest("pricer-test")["fingerprint"]
    first = ts.products()[0]
    assert first.prompt.endswith("Price is $") and first.prompt.startswith(prompts.QUESTION)
    assert "Price is" not in first.description and prompts.QUESTION not in first.description
    assert first.title == first.description.split("\n")[0]
    assert not hasattr(first, "price")


def test_fingerprint_treats_prices_as_figures():
    a = [data.Row(0, "t\n\nPrice is $1.00", 374.41)]
    b = [data.Row(0, "t\n\nPrice is $1.00", 374.410000001)]
    assert data.fingerprint(a) == data.fingerprint(b)
    assert data.fingerprint(a) != data.fingerprint([data.Row(0, "t", 374.42)])
    # the text is content too (#21.1): another text is another test set
    assert data.fingerprint(a) != data.fingerprint([data.Row(0, "other\n\nPrice is $1.00",
                                                             374.41)])


def test_tampered_rows_are_refused(tmp_path, data_dir):
    rows = _rows(data_dir)
    rows[17]["price"] += 1.0
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(BenchError, match="do not match the manifest"):
        data.load_test_set(tmp_path)


def test_missing_row_is_refused(tmp_path, data_dir):
    rows = _rows(data_dir)[:-1]
    (tmp_path / "test.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(BenchError, match="250 rows"):
        data.load_test_set(tmp_path)


def test_other_test_file_gets_its_own_name_and_fingerprint(tmp_path, data_dir):
    rows = _rows(data_dir)[:10]
    path = tmp_path / "mine.jsonl"
    path.write_text("\n".join(json.dumps({"text": r["text"], "price": r["price"]})
                              for r in rows) + "\n")
    ts = data.load_test_set(test_file=path)
    assert ts.name.startswith("mine-") and len(ts) == 10
    assert ts.fingerprint != data.manifest("pricer-test")["fingerprint"]
    assert [p.id for p in ts.products()] == list(range(10))


BAD_FILES = {
    "truncated": ('{"text": "a\\n\\nPrice is $1.00", "price": 1.0}\n{"text": "b', 2,
                  "invalid JSON"),
    "no_price": ('{"text": "a\\n\\nPrice is $1.00"}\n', 1, "missing price"),
    "no_text": ('{"price": 3.0}\n', 1, "'text'"),
    "negative": ('{"text": "a\\n\\nPrice is $1.00", "price": -3}\n', 1, "negative"),
    "non_numeric": ('{"text": "a\\n\\nPrice is $1.00", "price": "cheap"}\n', 1, "not a number"),
    "nan": ('{"text": "a\\n\\nPrice is $1.00", "price": NaN}\n', 1, "not a finite number"),
    "duplicate_ids": ('{"id": 4, "text": "a\\n\\nPrice is $1", "price": 1}\n'
                      '{"id": 4, "text": "b\\n\\nPrice is $1", "price": 2}\n', 2, "duplicate id 4"),
    "empty": ("", None, "empty"),
    "csv": ("text,price\nsomething,3.5\n", 1, "looks like CSV"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_test_files_name_file_and_line(tmp_path, case):
    content, line, message = BAD_FILES[case]
    path = tmp_path / f"{case}.jsonl"
    path.write_text(content)
    with pytest.raises(BenchError, match=message) as info:
        data.load_test_set(test_file=path)
    assert info.value.path == str(path)
    assert info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}:" if line else f"{path}:")


def test_binary_and_non_utf8_files(tmp_path):
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(BenchError, match="binary"):
        data.load_test_set(test_file=binary)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(b'{"text": "ok\\n\\nPrice is $1", "price": 1}\n'
                      b'{"text": "caf\xe9\\n\\nPrice is $1", "price": 1}\n')
    with pytest.raises(BenchError, match="not UTF-8") as info:
        data.load_test_set(test_file=latin)
    assert info.value.line == 2


def test_utf8_byte_order_mark_is_accepted(tmp_path, data_dir):
    """Editors on Windows start a UTF-8 file with a byte-order mark: it is no content."""
    bom = b"\xef\xbb\xbf"
    plain = (data_dir / "test.jsonl").read_bytes()
    (tmp_path / "test.jsonl").write_bytes(bom + plain)
    (tmp_path / "train.jsonl").write_bytes(bom + (data_dir / "train.jsonl").read_bytes())
    ts = data.load_test_set(tmp_path)
    assert ts.fingerprint == data.manifest("pricer-test")["fingerprint"]
    assert ts.rows == data.load_test_set(data_dir).rows
    examples, fp = data.load_train(tmp_path, test_set=ts)
    assert fp == data.load_train(data_dir, test_set=ts)[1] and examples
    other = tmp_path / "mine.jsonl"
    other.write_bytes(bom + b'{"text": "a\\n\\nPrice is $1.00", "price": 2.5}\n')
    assert data.load_test_set(test_file=other).rows[0].price == 2.5


def test_utf16_file_is_named_as_such(tmp_path):
    path = tmp_path / "wide.jsonl"
    path.write_bytes('{"text": "a\\n\\nPrice is $1", "price": 1}\n'.encode("utf-16"))
    with pytest.raises(BenchError, match="UTF-16 text, expected a UTF-8 JSONL file"):
        data.load_test_set(test_file=path)


def test_training_rows_never_include_test_texts(tmp_path, data_dir):
    ts = data.load_test_set(data_dir)
    leak = _rows(data_dir)[5]
    train = (data_dir / "train.jsonl").read_text() + json.dumps(
        {"text": leak["text"], "price": leak["price"]}) + "\n"
    (tmp_path / "train.jsonl").write_text(train)
    examples, _ = data.load_train(tmp_path, test_set=ts)
    clean, _ = data.load_train(data_dir, test_set=ts)
    descriptions = {e.product.description for e in examples}
    assert ts.products()[5].description not in descriptions
    assert len(examples) == len(clean)


def test_train_subsample_is_seeded(data_dir):
    a, fa = data.load_train(data_dir, size=100, seed=1)
    b, fb = data.load_train(data_dir, size=100, seed=1)
    c, fc = data.load_train(data_dir, size=100, seed=2)
    assert [e.price for e in a] == [e.price for e in b] and fa == fb
    assert fa != fc and len(a) == 100


def _parquet(path: Path, rows: list[dict]) -> Path:
    table = pa.table({"text": [r["text"] for r in rows], "price": [r["price"] for r in rows]})
    pq.write_table(table, path)
    return path


def test_hub_download_then_local_cache(tmp_path, data_dir, monkeypatch):
    spec = data.manifest("pricer-test")
    rows = _rows(data_dir)
    extra = [json.loads(line) for line in
             (data_dir / "train.jsonl").read_text().splitlines()[:40]]
    parquet = _parquet(tmp_path / "test.parquet", rows + extra)  # the split is longer than 251
    key = f"datasets/{spec['repo_id']}/resolve/{spec['revision']}/{spec['files'][0]}"
    with FakeHub({key: parquet}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        ts = data.load_test_set()
        assert any("GET" in r for r in hub.requests)
    assert len(ts) == 251 and ts.fingerprint == spec["fingerprint"]
    assert ts.source.startswith("hf://")
    assert [p.prompt for p in ts.products()] == [prompts.test_prompt(r["text"]) for r in rows]
    # The hub is gone now: the local cache answers.
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    again = data.load_test_set()
    assert again.fingerprint == ts.fingerprint and "pricer-test@" in again.source


def test_hub_rows_that_differ_are_refused(tmp_path, data_dir, monkeypatch):
    spec = data.manifest("pricer-test")
    rows = _rows(data_dir)
    rows[0]["price"] = 1.0
    key = f"datasets/{spec['repo_id']}/resolve/{spec['revision']}/{spec['files'][0]}"
    with FakeHub({key: _parquet(tmp_path / "t.parquet", rows)}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(BenchError, match="do not match"):
            data.load_test_set()
    assert not (Path(data.cache_root()) / "data").exists() or not any(
        (Path(data.cache_root()) / "data").iterdir())


def test_unreachable_hub_says_what_to_do(monkeypatch):
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(BenchError, match="--data-dir") as raised:
        data.load_test_set()
    assert "refused" in str(raised.value).lower()  # the real cause, not a generic miss
