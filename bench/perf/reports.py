"""Time ``bench leaderboard`` (charts cold and warm, serial and on 2 processes),
``bench show`` and ``bench compare`` on the reference runs.

    python -m bench.perf.reports [--data-dir ../shared/data/pricer] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.cli import main as cli
from bench.reports import charts
from bench.reports import publish as leaderboard


def _quiet(argv: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli(argv) == 0, argv


def _time(label: str, repeat: int, prepare: Callable[[], None], action: Callable[[], None]) -> None:
    times = []
    for _ in range(repeat):
        prepare()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    print(f"{label:<48} median {statistics.median(times):6.2f}s  "
          f"(runs: {', '.join(f'{t:.2f}' for t in times)})")


def main() -> None:
    default = os.environ.get("BENCH_DATA_DIR") or str(
        Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pricer")
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=default)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp) / "results"
        _quiet(["run", "all", "--data-dir", args.data_dir, "--results-dir", str(results),
                "--quiet"])
        entries = leaderboard.collect(results)
        print(f"{len(entries)} runs, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")

        def wipe() -> None:
            shutil.rmtree(results / "charts", ignore_errors=True)

        def nothing() -> None:
            return None

        board = ["leaderboard", "--results-dir", str(results), "--data-dir", args.data_dir]
        _time("collect + score + pair with leader (no writing)", args.repeat, nothing,
              lambda: leaderboard.collect(results))
        _time("leaderboard --no-charts", args.repeat, nothing,
              lambda: _quiet([*board, "--no-charts"]))
        _time("draw all charts, 1 process", args.repeat, wipe,
              lambda: charts.draw_all(results, entries, workers=1))
        _time("draw all charts, 2 processes", args.repeat, wipe,
              lambda: charts.draw_all(results, entries, workers=2))
        _time("leaderboard, charts cold (default)", args.repeat, wipe, lambda: _quiet(board))
        _time("leaderboard, charts current (rerun)", args.repeat, nothing, lambda: _quiet(board))
        _time("show reference:gpt-4o-mini", args.repeat, nothing,
              lambda: _quiet(["show", "reference:gpt-4o-mini", "--results-dir", str(results),
                              "--data-dir", args.data_dir]))
        _time("compare human reference:gpt-4o-mini", args.repeat, nothing,
              lambda: _quiet(["compare", "human", "reference:gpt-4o-mini", "--results-dir",
                              str(results)]))


if __name__ == "__main__":
    main()
