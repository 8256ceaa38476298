"""Published figures are the same bytes on every x86-64 processor (issue 20, point 5).

The figures are computed with operations that give the same bits at every SIMD
level (``bench.exactmath``, checked here under each level this machine offers),
and the files publish each float to a fixed number of significant digits and
compare rows in that form, so no last-bit difference shows or replaces a timing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench import metrics
from bench.reports import publish as leaderboard
from bench.reports.format import PUBLISHED_DIGITS, published
from tests import simd
from tests.conftest import ROOT
from tests.test_reports import make_results

SCORES = """
import json, numpy as np
from bench import metrics
rng = np.random.default_rng(7)
out = []
for _ in range(40):
    truth = dict(enumerate(np.round(np.exp(rng.uniform(0, 7, 251)), 2).tolist()))
    guesses = {i: round(t * rng.uniform(0.3, 3), 2) for i, t in truth.items()}
    s = metrics.score(truth, guesses, samples=200)
    out.append([s.rmsle.hex(), s.mae.hex(), s.median_error.hex(),
                [v.hex() for v in s.mae_ci95]])
print(json.dumps(out))
"""


def _scores(env: dict[str, str], cwd: Path) -> list:
    done = subprocess.run([sys.executable, "-c", SCORES], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=cwd,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


def test_every_figure_is_the_same_bits_at_every_simd_level(tmp_path):
    plain = _scores({}, tmp_path)
    assert len(plain) == 40
    for label, env in simd.conditions():
        other = _scores(env, tmp_path)
        differ = sum(a != b for a, b in zip(plain, other, strict=True))
        assert other == plain, f"{label}: {differ} of 40 score sets differ"


def _floats(value):
    if isinstance(value, float):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _floats(v)
    elif isinstance(value, list):
        for v in value:
            yield from _floats(v)


def test_published_files_hold_a_fixed_precision(tmp_path):
    results = make_results(tmp_path / "results")
    leaderboard.publish(results, charts=False, public=True)
    document = json.loads((results / "leaderboard.json").read_text())
    floats = list(_floats(document))
    assert floats
    for value in floats:
        assert float(f"{value:.{PUBLISHED_DIGITS}g}") == value
    csv_text = (results / "leaderboard.csv").read_text()
    assert "0000000" not in csv_text and "9999999" not in csv_text
    assert published(0.6035285202343771) == published(0.603528520234377) == 0.603528520234
    assert published({"a": [1 / 3, 2], "b": None, "c": float("inf")}) == \
        {"a": [0.333333333333, 2], "b": None, "c": float("inf")}


def test_a_last_bit_difference_changes_no_published_byte_and_keeps_the_timing(
        tmp_path, monkeypatch):
    """Another processor's RMSLE one unit in the last place away (what numpy's
    dispatched log1p did), and another machine's timing: nothing is rewritten."""
    results = make_results(tmp_path / "results")
    leaderboard.publish(results, charts=False, public=True)
    names = ("LEADERBOARD.md", "leaderboard.json", "leaderboard.csv")
    before = {n: (results / n).read_bytes() for n in names}
    timings = {r["predictor"]: r["seconds_per_item"]
               for r in json.loads(before["leaderboard.json"])["rows"]}
    real_score = metrics.score

    def other_processor(*args, **kwargs):
        s = real_score(*args, **kwargs)
        if s.rmsle is None:
            return s
        return metrics.Scores(**{**s.__dict__, "rmsle": float(np.nextafter(s.rmsle, 9.0))})

    monkeypatch.setattr(metrics, "score", other_processor)
    for run in (results / "tiny").iterdir():
        info = json.loads((run / "run.json").read_text())
        info["timings"] = {**info["timings"], "last_wall_s": 999.0}
        (run / "run.json").write_text(json.dumps(info))
    done = leaderboard.publish(results, charts=False, public=True)
    assert {n: (results / n).read_bytes() for n in names} == before
    assert sorted(p.name for p in done.unchanged) == sorted(names)
    assert {e.predictor: e.seconds_per_item for e in done.entries} == timings
