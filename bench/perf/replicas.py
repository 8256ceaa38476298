"""Throughput with one replica and with two: ``python -m bench.perf.replicas``.

Two loopback servers (tests/fake_llm_server.py) each answer ONE request at a
time after a fixed latency (``serial``, as a server with one slot), so a
server's throughput is 1 / latency whatever the client's concurrency. The same
items run through ``python -m bench run openai`` at ``--concurrency 8`` with
``base_url`` naming the first server, then both (each run with a fresh cache
and results folder), alternating, ``--tries`` times. Prints the median run's
predict time, items per second, what each server answered, and the ratio
(ideal: 2). No pass/fail exit.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.perf.frontier import ROOT, fake_server_class
from bench.records import read_run


def _cli_run(base_url: str, data_dir: Path, work: Path, concurrency: int,
             limit: int) -> dict[str, Any]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-perf-not-a-real-key",
           "BENCH_CACHE_DIR": str(work / "cache"),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("OPENAI_BASE_URL", None)
    args = [sys.executable, "-m", "bench", "run", "openai", "--param", f"base_url={base_url}",
            "--data-dir", str(data_dir), "--results-dir", str(work / "results"),
            "--concurrency", str(concurrency), "--limit", str(limit), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"bench run failed ({proc.returncode}):\n{proc.stderr}")
    lines = [json.loads(line) for path in (work / "results").rglob("predictions.jsonl")
             for line in path.read_text().splitlines()]
    (run,) = [read_run(path) for path in (work / "results").rglob("run.json")]
    predict_s = run.timings.last_predict_s if run and run.timings else None
    served: dict[str, int] = {}
    for line in lines:
        served[line.get("served_by") or base_url] = served.get(
            line.get("served_by") or base_url, 0) + 1
    return {"wall_s": wall, "predict_s": predict_s or float("nan"), "items": len(lines),
            "answered": sum(line["price"] is not None for line in lines), "served": served}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=Path(
        os.environ.get("BENCH_DATA_DIR", ROOT.parent / "shared" / "data" / "pricer")))
    parser.add_argument("--latency", type=float, default=0.1,
                        help="seconds per request, one request at a time per server")
    parser.add_argument("--limit", type=int, default=60, help="items (default 60)")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--tries", type=int, default=3,
                        help="runs of each, alternating; the median is shown (a shared "
                             "machine is noisy)")
    args = parser.parse_args(argv)
    server = fake_server_class()

    def median(rows: list[dict[str, Any]]) -> dict[str, Any]:
        return sorted(rows, key=lambda row: row["predict_s"])[len(rows) // 2]

    ones, twos = [], []
    with tempfile.TemporaryDirectory(prefix="perf-replicas-") as tmp, \
            server(latency=args.latency, serial=True) as first, \
            server(latency=args.latency, serial=True) as second:
        work = Path(tmp)
        for i in range(max(1, args.tries)):
            ones.append(_cli_run(first.openai_url, args.data_dir, work / f"one-{i}",
                                 args.concurrency, args.limit))
            twos.append(_cli_run(f"{first.openai_url},{second.openai_url}", args.data_dir,
                                 work / f"two-{i}", args.concurrency, args.limit))
        in_flight = max(first.max_in_flight, second.max_in_flight)
    one, two = median(ones), median(twos)

    print(f"openai through `python -m bench run`, loopback servers answering one request at "
          f"a time after {args.latency * 1000:.0f} ms, --concurrency {args.concurrency}, "
          f"{one['items']} items, median of {len(ones)} runs each")
    print(f"{'base_url':<12}{'predict':>9}{'items/s':>9}{'ideal':>8}{'answered':>10}  served by")
    for label, row, n in (("1 replica", one, 1), ("2 replicas", two, 2)):
        rate = row["items"] / row["predict_s"]
        ideal = row["items"] * args.latency / n
        served = ", ".join(f"{url}: {count}" for url, count in sorted(row["served"].items()))
        print(f"{label:<12}{row['predict_s']:>8.2f}s{rate:>9.1f}{ideal:>7.2f}s"
              f"{row['answered']:>6}/{row['items']}  {served}")
    print(f"throughput 2 replicas vs 1: {one['predict_s'] / two['predict_s']:.2f}x by predict "
          f"time (ideal 2x), {one['wall_s'] / two['wall_s']:.2f}x by CLI wall time; "
          f"at most {in_flight} request in flight per server")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
