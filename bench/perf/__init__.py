"""Benchmark scripts: `python -m bench.perf.<name>` prints figures (never timed tests)."""
