"""Figures people can trust from stored runs: the right run per row (#3), incomplete
and failed runs marked (#5), damaged files skipped with one line (#11), published
files left alone when nothing but a timing changed (#1), and results dirs that are
files or read-only (#12). Function predictors and synthetic run folders only."""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
from pathlib import Path

import pytest

import tests.plugins.toy_predictors  # noqa: F401  (registers slow-pricer, flaky-pricer)
from bench import registry, runner
from bench.cli import main
from bench.records import read_run
from bench.reports import publish as leaderboard
from bench.reports.collect import collect
from bench.store import RunStore
from bench.types import capabilities
from tests.conftest import ROOT


def _run(test_set, results: Path, params: dict[str, str] | None = None, **kw) -> RunStore:
    params = {"delay": "0", **(params or {})}
    predictor = registry.build("slow-pricer", params)
    return runner.run_predictor(predictor, test_set, results, spec="slow-pricer",
                                params=params, progress=False, **kw).store


def _rows(results: Path) -> dict[str, dict]:
    return {e.predictor: e.row() for e in collect(results)}


# -- 3: the leaderboard shows the right run --------------------------------------


def test_runs_with_different_parameters_are_different_rows_named_by_what_differs(
        tmp_path, synthetic_test_set):
    for delay in ("0", "0.0001", "0.0002"):  # all within one second
        _run(synthetic_test_set, tmp_path, {"delay": delay})
    rows = _rows(tmp_path)
    assert sorted(rows) == ["slow-pricer (delay=0)", "slow-pricer (delay=0.0001)",
                            "slow-pricer (delay=0.0002)"]
    assert all(r["params"] == {"delay": r["predictor"][19:-1]} for r in rows.values())


def test_a_lone_run_keeps_its_plain_name(tmp_path, synthetic_test_set):
    _run(synthetic_test_set, tmp_path, {"delay": "0"})
    assert list(_rows(tmp_path)) == ["slow-pricer"]


def test_the_latest_run_of_one_identity_wins_even_within_one_second(tmp_path,
                                                                   synthetic_test_set):
    old = _run(synthetic_test_set, tmp_path).dir
    info = json.loads((old / "run.json").read_text())
    # The same predictor and parameters, another fingerprint (a newer version of it),
    # finished in the same second but later: its folder sorts after the old one's.
    new = old.parent / (old.name[:-1] + "z")
    shutil.copytree(old, new)
    lines = [json.loads(x) for x in (new / "predictions.jsonl").read_text().splitlines()]
    (new / "predictions.jsonl").write_text(
        "".join(json.dumps({**x, "price": 1.0}) + "\n" for x in lines))
    (new / "run.json").write_text(json.dumps({**info, "finished_ns": info["finished_ns"] + 1}))
    (entry,) = collect(tmp_path)
    assert entry.store.dir == new and entry.scores.answered == len(lines)
    assert {r.price for r in entry.records.values()} == {1.0}
    # and the other way round: the older stamp loses whatever the folder names say
    (new / "run.json").write_text(json.dumps({**info, "finished_ns": info["finished_ns"] - 1}))
    (entry,) = collect(tmp_path)
    assert entry.store.dir == old


# -- 5: incomplete and failed runs are marked ------------------------------------


@pytest.mark.parametrize(("status", "mark"), [("interrupted", "incomplete"),
                                              ("running", "incomplete"),
                                              ("failed", "failed")])
def test_killed_or_failed_runs_are_marked_everywhere(tmp_path, synthetic_test_set, capsys,
                                                     status, mark):
    store = _run(synthetic_test_set, tmp_path)
    info = json.loads(store.run_path.read_text())
    store.run_path.write_text(json.dumps({**info, "status": status}))
    readme = tmp_path / "README.md"
    readme.write_text("x\n<!-- leaderboard:start -->\n<!-- leaderboard:end -->\n")
    leaderboard.publish(tmp_path, charts=False, readme=readme, public=True)
    (row,) = json.loads((tmp_path / "leaderboard.json").read_text())["rows"]
    assert row["status"] == mark
    assert f"`slow-pricer` **{mark}**" in (tmp_path / "LEADERBOARD.md").read_text()
    assert f"`slow-pricer` **{mark}**" in readme.read_text()
    assert main(["show", "slow-pricer", "--results-dir", str(tmp_path)]) == 0
    assert f"{mark.upper()} run" in capsys.readouterr().out


def test_a_run_with_fewer_items_stored_than_the_test_set_is_incomplete(tmp_path,
                                                                      synthetic_test_set):
    _run(synthetic_test_set, tmp_path, limit=5)
    (row,) = _rows(tmp_path).values()
    assert row["status"] == "partial" and row["total"] == len(synthetic_test_set)
    _run(synthetic_test_set, tmp_path)  # the rest: complete now
    (row,) = _rows(tmp_path).values()
    assert row["status"] == "complete"


# -- 11: wrong-shaped lines and run.json ------------------------------------------

BAD_LINES = ['{"foo": 1}', '{"id": 3, "price": "abc", "truth": 10.0}', "[1, 2]", '"text"',
             '{"id": "x", "price": 1.0}', '{"id": 4, "price": 1.0, "truth": {"a": 1}}',
             "not json at all"]


@pytest.mark.parametrize("bad", BAD_LINES)
def test_a_wrong_shaped_line_is_named_skipped_and_asked_again(tmp_path, synthetic_test_set,
                                                              capsys, bad):
    store = _run(synthetic_test_set, tmp_path)
    lines = store.predictions_path.read_text().splitlines()
    lines[3] = bad  # the fourth item's answer is lost
    store.predictions_path.write_text("\n".join(lines) + "\n")
    capsys.readouterr()
    assert len(store.records()) == len(lines) - 1
    err = capsys.readouterr().err
    assert f"{store.predictions_path}:4" in err and err.count("\n") == 1
    assert main(["score", "--results-dir", str(tmp_path)]) == 0
    assert main(["leaderboard", "--no-charts", "--results-dir", str(tmp_path)]) == 0
    (row,) = json.loads((tmp_path / "local" / "leaderboard.json").read_text())["rows"]
    assert row["answered"] == len(lines) - 1 and row["status"] == "incomplete"
    _run(synthetic_test_set, tmp_path)  # re-asks only the lost item; the bad line stays
    assert len(store.predictions_path.read_text().splitlines()) == len(lines) + 1
    assert len(store.records()) == len(lines)
    assert _rows(tmp_path)["slow-pricer"]["status"] == "complete"


@pytest.mark.parametrize("damage", ['{"predictor": "slow-pr', "[1, 2]", '{"predictor": 5}',
                                    '{"foo": 1}', "", None])
def test_a_damaged_run_json_is_named_and_the_next_run_rewrites_it(tmp_path,
                                                                  synthetic_test_set, capsys,
                                                                  damage):
    good = _run(synthetic_test_set, tmp_path, {"delay": "0"})
    other = _run(synthetic_test_set, tmp_path / "other", {"delay": "0"})
    shutil.copytree(other.dir.parent, tmp_path / "second-set")
    damaged = RunStore(tmp_path / "second-set" / other.dir.name)
    if damage is None:  # killed before run.json was written
        damaged.run_path.unlink()
    else:
        damaged.run_path.write_text(damage)
    capsys.readouterr()
    assert [e.store.dir for e in collect(tmp_path)] == [good.dir]  # the board still builds
    assert str(damaged.run_path) in capsys.readouterr().err
    assert main(["leaderboard", "--no-charts", "--results-dir", str(tmp_path)]) == 0
    # `bench run` on that folder rewrites run.json from what is stored, asking nothing
    store = _run(synthetic_test_set, tmp_path / "other")
    if damage is None:
        store.run_path.unlink()
    else:
        store.run_path.write_text(damage)
    before = store.predictions_path.read_text()
    _run(synthetic_test_set, tmp_path / "other")
    assert store.predictions_path.read_text() == before
    info = read_run(store.run_path)
    assert info is not None and info.predictor == "slow-pricer" and info.status == "complete"
    assert info.metrics is not None and info.metrics.answered == len(synthetic_test_set)


# -- 1: the published files change only when their content does ---------------------


def test_a_rerun_with_the_same_answers_leaves_the_published_files_alone(tmp_path,
                                                                        synthetic_test_set):
    store = _run(synthetic_test_set, tmp_path)
    leaderboard.publish(tmp_path, charts=False, public=True)
    published = {n: (tmp_path / n).read_bytes() for n in ("LEADERBOARD.md",
                                                          "leaderboard.json",
                                                          "leaderboard.csv")}
    stamps = {n: (tmp_path / n).stat().st_mtime_ns for n in published}
    # A fresh clone runs again: the same answers, another machine's timings and folder.
    info = json.loads(store.run_path.read_text())
    info["timings"] = {**info["timings"], "last_predict_s": 123.456, "items_last_run": 12}
    store.run_path.write_text(json.dumps(info))
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path, moved)
    for where in (tmp_path, moved):
        done = leaderboard.publish(where, charts=False, public=True)
        assert {n: (where / n).read_bytes() for n in published} == published
        assert sorted(p.name for p in done.unchanged) == sorted(published)
    assert {n: (tmp_path / n).stat().st_mtime_ns for n in published} == stamps  # not rewritten
    # New answers are new content: the timing measured with them is published too.
    lines = [json.loads(x) for x in store.predictions_path.read_text().splitlines()]
    store.predictions_path.write_text(
        "".join(json.dumps({**x, "price": 1.0}) + "\n" for x in lines))
    leaderboard.publish(tmp_path, charts=False, public=True)
    (row,) = json.loads((tmp_path / "leaderboard.json").read_text())["rows"]
    assert row["mae"] != json.loads(published["leaderboard.json"])["rows"][0]["mae"]
    assert row["seconds_per_item"] == pytest.approx(123.456 / 12)


# -- 12: results dirs that are files or read-only ----------------------------------


@pytest.mark.parametrize("command", [["run", "slow-pricer", "--param", "delay=0"],
                                     ["leaderboard"], ["score"], ["show", "x"]])
def test_a_results_dir_that_is_a_file_is_one_line(tmp_path, capsys, command,
                                                  synthetic_test_set):
    path = tmp_path / "results"
    path.write_text("not a folder")
    argv = [*command, "--results-dir", str(path)]
    if command[0] == "run":
        argv += ["--test", synthetic_test_set.source]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and str(path) in err
    assert "not a folder" in err


def _read_only(path: Path) -> None:
    for p in [path, *path.rglob("*")]:
        mode = p.stat().st_mode
        p.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    if os.access(path, os.W_OK):
        pytest.skip("running as root: permissions do not make a folder read-only here")


def test_score_and_the_board_work_or_say_one_line_on_a_read_only_folder(
        tmp_path, synthetic_test_set, capsys):
    store = _run(synthetic_test_set, tmp_path)
    before = store.run_path.read_bytes()
    _read_only(tmp_path)
    try:
        assert main(["score", "--results-dir", str(tmp_path)]) == 0
        assert "slow-pricer" in capsys.readouterr().out
        assert store.run_path.read_bytes() == before
        assert main(["leaderboard", "--no-charts", "--results-dir", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "read-only" in err
    finally:
        for p in [tmp_path, *tmp_path.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)


def test_score_leaves_a_current_run_alone_and_prints_when_it_cannot_write(
        tmp_path, synthetic_test_set, capsys, monkeypatch):
    store = _run(synthetic_test_set, tmp_path)
    before, stamp = store.run_path.read_bytes(), store.run_path.stat().st_mtime_ns
    assert main(["score", "--results-dir", str(tmp_path)]) == 0
    assert store.run_path.read_bytes() == before and store.run_path.stat().st_mtime_ns == stamp
    # Stale figures on a folder that refuses writes (a read-only mount: EROFS):
    info = json.loads(before)
    info["metrics"]["mae"] = 999.0
    store.run_path.write_text(json.dumps(info))
    stale = store.run_path.read_bytes()

    def refuse(self, info):
        raise OSError(errno.EROFS, "Read-only file system", str(self.run_path))

    monkeypatch.setattr(RunStore, "write_run", refuse)
    capsys.readouterr()
    assert main(["score", "--results-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert "slow-pricer" in out and "999" not in out
    assert "read-only" in err and err.count("\n") == 1
    assert store.run_path.read_bytes() == stale


def test_show_takes_a_row_name_or_a_plain_name_when_it_is_one_row(tmp_path,
                                                                  synthetic_test_set, capsys):
    for delay in ("0", "0.0001"):
        _run(synthetic_test_set, tmp_path, {"delay": delay})
    assert main(["show", "slow-pricer (delay=0.0001)", "--results-dir", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("slow-pricer (delay=0.0001) on ")
    assert main(["show", "slow-pricer", "--results-dir", str(tmp_path)]) == 2
    assert "'slow-pricer (delay=0)'" in capsys.readouterr().err


def test_an_informational_field_of_another_type_keeps_the_answer(tmp_path,
                                                                 synthetic_test_set, capsys):
    store = _run(synthetic_test_set, tmp_path)
    lines = [json.loads(x) for x in store.predictions_path.read_text().splitlines()]
    lines[0]["raw"] = ["12", "13"]  # a paid answer is not asked again for its raw text
    store.predictions_path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    records = store.records()
    assert len(records) == len(lines) and records[lines[0]["id"]].raw == '["12", "13"]'
    assert capsys.readouterr().err == ""


def test_the_published_run_folders_are_what_this_code_computes(data_dir, tmp_path):
    """`make run` in a fresh clone must leave `git status` clean: every
    published row that runs here maps to the folder this code would write. A
    change to a predictor's fingerprint (parameters, its code digest, its
    data digest) moves its folder, and the committed board must be
    regenerated with it; this test says so before a newcomer's clone does."""
    from bench.context import Context
    from bench.runner import fingerprint_of

    rows = json.loads((ROOT / "results" / "leaderboard.json").read_text())["rows"]
    ctx = Context(data_dir=data_dir, cache_dir=tmp_path / "cache")
    checked = []
    for row in rows:
        spec = row["predictor"].split(" (")[0]
        try:
            predictor = registry.build(spec, {k: str(v) for k, v in row["params"].items()}, ctx)
        except Exception:  # not buildable here (a missing extra): nothing to compare
            continue
        if capabilities(predictor).unavailable() is not None:
            continue
        store = RunStore.for_run(tmp_path, row["test_set"], predictor.name,
                                 fingerprint_of(predictor, spec))
        assert f"{row['test_set']}/{store.dir.name}" == row["run_dir"], spec
        checked.append(spec)
    assert {"human", "constant", "linear", "random-forest", "xgboost"} <= set(checked), checked
