"""run.json and predictions.jsonl: the typed records read and write the files as they
always were; old, foreign or damaged files never crash a reader"""

from __future__ import annotations

import json
from pathlib import Path

from bench.cli import main
from bench.metrics import Scores
from bench.records import VERSION, RunInfo, Seeds, Timings, Totals, read_run, write_run
from bench.reports import publish as leaderboard
from bench.store import Record, RunStore
from bench.types import Prediction

ROOT = Path(__file__).resolve().parent.parent

# A run.json as the runner wrote it before the typed record existed (no version).
WRITTEN = {
    "predictor": "xgboost", "spec": "xgboost", "kind": "classic", "params": {},
    "fingerprint": {"predictor": "xgboost", "spec": "xgboost"},
    "fingerprint_hash": "0123456789", "test_set": "pricer-test",
    "data_fingerprint": "sha256:abc", "data_source": "/data/test.jsonl", "items": 251,
    "seeds": {"bootstrap": 42, "predictor": None}, "versions": {"python": "3.12.0"},
    "git_commit": None, "created_at": "2026-01-01T00:00:00+00:00",
    "timings": {"last_wall_s": 3.5, "last_prepare_s": 1.0, "last_predict_s": 2.5,
                "predict_s_total": 2.5, "items_last_run": 251},
    "status": "complete", "started_at": "2026-01-01T00:00:01+00:00",
    "finished_at": "2026-01-01T00:00:05+00:00",
    "totals": {"answered": 250, "errors": 1, "total": 251, "input_tokens": None,
               "output_tokens": None, "cost_usd": None, "mean_latency_s": 0.01},
    "metrics": {"answered": 250, "total": 251, "mae": 88.5, "mae_ci95": [76.0, 102.0],
                "rmsle": 0.6, "hit_rate": 0.44, "orange_rate": 0.2, "median_error": 40.0,
                "coverage": 0.996},
    "limit": None,
}


def test_an_unversioned_file_reads_as_version_1_and_writes_back_the_same_keys(tmp_path):
    info = RunInfo.from_dict(WRITTEN)
    assert info.version == VERSION == 1
    assert info.timings == Timings(3.5, 1.0, 2.5, 2.5, 251)
    assert info.totals == Totals(250, 1, 251, None, None, None, 0.01)
    assert info.seeds == Seeds(42, None, has_predictor=True)
    assert isinstance(info.metrics, Scores) and info.metrics.mae_ci95 == (76.0, 102.0)
    assert info.seconds_per_item == 2.5 / 251
    path = tmp_path / "run.json"
    write_run(path, info)
    written = json.loads(path.read_text())
    assert written == {"version": 1, **WRITTEN}
    assert list(written) == ["version", *WRITTEN]  # the same order as ever


def test_absent_stays_absent_and_unknown_keys_survive(tmp_path):
    partial = {"predictor": "p", "test_set": "t", "timings": {"last_wall_s": 1.0},
               "seeds": {"bootstrap": 42}, "from_the_future": {"x": [1, 2]}, "version": 3}
    info = RunInfo.from_dict(partial)
    assert info.version == 3 and info.extra == {"from_the_future": {"x": [1, 2]}}
    assert info.to_dict() == partial
    assert info.seconds_per_item is None  # no item count: no figure


def test_damaged_run_json_reads_as_none(tmp_path):
    path = tmp_path / "run.json"
    assert read_run(path) is None  # missing
    for data in (b'{"predictor": "p", "test_se', b"[1, 2]", b'"text"', b"\xff\xfe{}",
                 b'{"predictor": 5}', b'{"timings": [1]}', b'{"items": "many"}',
                 b'{"metrics": {"mae": 1.0}}', b'{"totals": {"cost_usd": "free"}}'):
        path.write_bytes(data)
        assert read_run(path) is None, data


def test_reports_skip_a_damaged_run(tmp_path):
    results = tmp_path / "results"
    for name, text in (("good", None), ("torn", '{"predictor": "torn", "te')):
        store = RunStore.for_run(results, "tiny", name, {"predictor": name})
        store.open()
        store.append(Record(0, 10.0, Prediction(12.0)))
        store.close()
        if text is None:
            store.write_run(RunInfo(predictor=name, test_set="tiny", items=1))
        else:
            store.run_path.write_text(text)
    assert [e.predictor for e in leaderboard.collect(results)] == ["good"]
    assert main(["score", "--results-dir", str(results), "--data-dir", str(tmp_path)]) == 0
    assert read_run(next((results / "tiny").glob("good-*/run.json"))).metrics.mae == 2.0


def test_record_line_keeps_its_format():
    record = Record(7, 99.5, Prediction(100.0, raw="100", latency_s=0.5, input_tokens=10,
                                        output_tokens=2, cost_usd=0.001))
    line = record.line()
    assert list(json.loads(line)) == ["id", "price", "error", "truth", "raw", "latency_s",
                                      "input_tokens", "output_tokens", "cost_usd"]
    assert Record.from_line(json.loads(line)) == record
    assert record.price == 100.0 and record.error is None
