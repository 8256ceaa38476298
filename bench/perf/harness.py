"""Harness overhead: a cold ``run all`` over the recorded runs, then an identical
rerun (which must make no new predictions), through the real CLI.

    python -m bench.perf.harness --data-dir ../shared/data/pricer
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _timed(args: list[str], env: dict[str, str]) -> tuple[float, str]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True,
                          text=True, env=env)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"bench {' '.join(args)} failed:\n{done.stderr}")
    return elapsed, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", default=os.environ.get("BENCH_DATA_DIR"))
    parser.add_argument("specs", nargs="*", default=["all"])
    args = parser.parse_args()
    if not args.data_dir:
        raise SystemExit("pass --data-dir or set BENCH_DATA_DIR")
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_CACHE_DIR": os.environ.get("BENCH_CACHE_DIR",
                                                               str(Path(tmp) / "cache"))}
        results = str(Path(tmp) / "results")
        common = [*args.specs, "--data-dir", args.data_dir, "--results-dir", results, "--quiet"]
        cold, _ = _timed(["run", *common], env)
        before = sum(len(p.read_text().splitlines())
                     for p in Path(results).rglob("predictions.jsonl"))
        warm, _ = _timed(["run", *common], env)
        after = sum(len(p.read_text().splitlines())
                    for p in Path(results).rglob("predictions.jsonl"))
        board, _ = _timed(["leaderboard", "--results-dir", results], env)
    print(f"bench run {' '.join(args.specs)}: first run {cold:.2f} s ({before} predictions)")
    print(f"identical rerun: {warm:.2f} s, {after - before} new predictions "
          f"({cold / warm:.1f}x faster)")
    print(f"bench leaderboard: {board:.2f} s")


if __name__ == "__main__":
    main()
