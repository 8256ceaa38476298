"""Time ``bench site`` and the built pages in headless Chromium.

    python -m bench.perf.site [--results-dir results] [--data-dir ../shared/data/pricer]
                              [--runs 50] [--items 2000] [--repeat 3]

1. Build time for the stored runs in ``--results-dir`` (``bench run all`` makes
   27 runs x 251 items; target < 5 s), with the Vega bundle and chart templates
   cached (as after the first build on a machine) and, once, without them.
2. The leaderboard page interactive in headless Chromium (target < 1 s): the
   browser's own navigation timings (domInteractive, DOMContentLoaded, load)
   and the site's ``bench:ready`` mark (table rendered, chart drawn).
3. Scale: synthetic runs (``--runs`` x ``--items``, real product texts from the
   training pool) in a temporary folder; build time (target < 30 s), the data
   each page loads, and the predictor page's load and filter/sort/page times.
   The predictor page stays responsive because each page loads only its own
   data files and the table shows 100 rows a page (filters and sorts run over
   the in-memory columns; the DOM never holds more than a page).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import places
from bench.data import load_test_set
from bench.site.writer import build
from bench.store import Record, RunStore, iter_runs
from bench.types import Prediction

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


CPU: list[float] = []  # CPU seconds of each timed build, this process and its workers


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _timed_build(results: Path, output: Path, data_dir: Path | None) -> float:
    """Wall seconds of a build into an empty folder (its CPU seconds go to ``CPU``)."""
    shutil.rmtree(output, ignore_errors=True)
    cpu, started = _cpu(), time.perf_counter()
    build(results, output, data_dir)
    CPU.append(_cpu() - cpu)
    return time.perf_counter() - started


def _report(label: str, times: list[float], target: str) -> None:
    cpu = CPU[-len(times):]
    print(f"{label}: median {statistics.median(times):.2f}s wall (runs: "
          f"{', '.join(f'{t:.2f}' for t in times)}), {statistics.median(cpu):.2f}s CPU "
          f"(all processes); target {target}")


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def synthetic(root: Path, data_dir: Path, runs: int, items: int, seed: int = 7) -> Path:
    """``runs`` stored runs on a test file of ``items`` real products (training pool)."""
    pool = [json.loads(line) for line in
            (data_dir / "train.jsonl").read_text(encoding="utf-8").splitlines()]
    pool += [json.loads(line) for line in
             (data_dir / "train-extra.jsonl").read_text(encoding="utf-8").splitlines()]
    rng = random.Random(seed)
    chosen = rng.sample(pool, items)
    root.mkdir(parents=True, exist_ok=True)
    test_file = root / "synthetic.jsonl"
    with test_file.open("w", encoding="utf-8") as handle:
        for n, row in enumerate(chosen):
            row = {k: v for k, v in row.items() if k in ("text", "price", "title", "category")}
            handle.write(json.dumps({"id": n, **row}) + "\n")
    test_set = load_test_set(None, test_file, download=False)
    results = root / "results"
    kinds = ["classic", "frontier", "local-llm", "reference", "custom"]
    for r in range(runs):
        name = f"synthetic-{r:02d}"
        spread = 0.15 + 0.05 * r
        store = RunStore.for_run(results, test_set.name, name, {"predictor": name})
        store.open()
        for row in test_set.rows:
            if rng.random() < 0.01:
                store.append(Record(row.id, row.price, Prediction(
                    None, raw="I cannot tell.", error="no number in the reply")))
                continue
            guess = round(max(0.5, row.price * rng.lognormvariate(0.0, spread)), 2)
            store.append(Record(row.id, row.price, Prediction(
                guess, raw=f"${guess:,.2f}", latency_s=0.2, input_tokens=180, output_tokens=4,
                cost_usd=0.00003)))
        store.close()
        store.write_run({"predictor": name, "test_set": test_set.name,
                         "kind": kinds[r % len(kinds)], "items": len(test_set.rows),
                         "data_source": str(test_file),
                         "data_fingerprint": test_set.fingerprint,
                         "finished_at": "2026-01-01T00:00:00+00:00",
                         "params": {"spread": spread}, "model": f"model-{r}",
                         "timings": {"last_wall_s": 40.0, "items_last_run": items},
                         "totals": {"cost_usd": 0.00003 * items}})
    return results


class Browser:
    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self.profile = tempfile.mkdtemp(prefix="bench-perf-chromium-")
        self.manager = sync_playwright()
        self.p = self.manager.__enter__()
        path = os.environ.get("BENCH_CHROMIUM") or shutil.which("chromium") or "chromium"
        self.context = self.p.chromium.launch_persistent_context(
            self.profile, executable_path=path, args=FLAGS, headless=True,
            viewport={"width": 1280, "height": 900})

    def open(self, url: str) -> Any:
        page = self.context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.goto(url)
        page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        if errors:
            raise RuntimeError(f"{url}: {errors}")
        return page

    def timings(self, page: Any) -> dict[str, float]:
        return page.evaluate("""() => {
            const n = performance.getEntriesByType('navigation')[0];
            const mark = (name) => {
                const m = performance.getEntriesByName(name)[0];
                return m ? m.startTime : null;
            };
            return {dom_interactive: n.domInteractive, dom_content_loaded:
                    n.domContentLoadedEventEnd, "bench:interactive": mark('bench:interactive'),
                    "bench:ready (charts drawn)": mark('bench:ready')};
        }""")

    def action_ms(self, page: Any, action: str) -> float:
        """Milliseconds from an action to the page rendered again (the site's own flag)."""
        return page.evaluate("""async (action) => {
            const t0 = performance.now();
            eval(action);
            while (document.body.dataset.ready !== '1')
                await new Promise(r => setTimeout(r, 0));
            return performance.now() - t0;
        }""", action)

    def close(self) -> None:
        self.context.close()
        self.manager.__exit__(None, None, None)
        shutil.rmtree(self.profile, ignore_errors=True)


def _median(values: list[float]) -> str:
    runs = ", ".join(f"{v:.0f}" for v in values)
    return f"median {statistics.median(values):7.1f}  (runs: {runs})"


def main() -> None:
    default_data = os.environ.get("BENCH_DATA_DIR") or str(
        Path(__file__).resolve().parents[2].parent / "shared" / "data" / "pricer")
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results-dir", type=Path, default=places.default_results_dir())
    parser.add_argument("--data-dir", type=Path, default=Path(default_data))
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--items", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f} (wall times on a loaded "
          "machine: compare CPU seconds with the number of CPUs)")
    stored = list(iter_runs(args.results_dir))
    if not stored:
        raise SystemExit(f"no stored runs in {args.results_dir}: run `bench run all` first")
    with tempfile.TemporaryDirectory() as tmp:
        tmp_path = Path(tmp)
        out = tmp_path / "site"
        build(args.results_dir, out, args.data_dir)  # warms the asset cache
        times = [_timed_build(args.results_dir, out, args.data_dir) for _ in range(args.repeat)]
        _report(f"1. build, {len(stored)} stored runs, assets cached", times, "< 5 s")
        saved = os.environ.get("BENCH_CACHE_DIR")
        os.environ["BENCH_CACHE_DIR"] = str(tmp_path / "empty-cache")
        try:
            cold = _timed_build(args.results_dir, tmp_path / "cold", args.data_dir)
        finally:
            if saved is None:
                os.environ.pop("BENCH_CACHE_DIR")
            else:
                os.environ["BENCH_CACHE_DIR"] = saved
        print(f"   first build on a machine (Vega bundle + templates made): {cold:.2f}s")
        print(f"   site size: {_size(out) / 1e6:.2f} MB in {sum(1 for _ in out.rglob('*.*'))} "
              f"files (assets/vega.js {(out / 'assets/vega.js').stat().st_size / 1e6:.2f} MB)")

        browser = Browser()
        try:
            marks: dict[str, list[float]] = {}
            for _ in range(max(args.repeat, 5)):
                page = browser.open((out / "index.html").resolve().as_uri())
                for key, value in browser.timings(page).items():
                    marks.setdefault(key, []).append(value)
                page.close()
            print("2. leaderboard page in headless Chromium, ms from navigation start:")
            for key, values in marks.items():
                print(f"   {key:<20} {_median(values)}")
            print("   target: interactive < 1000 ms")

            results = synthetic(tmp_path / "scale", args.data_dir, args.runs, args.items)
            scale_out = tmp_path / "scale-site"
            times = [_timed_build(results, scale_out, None) for _ in range(args.repeat)]
            _report(f"3. scale, {args.runs} runs x {args.items} items, build", times, "< 30 s")
            ts = next((scale_out / "data").glob("synthetic*"))
            one = next((ts / "p").glob("*.js"))
            listing = (ts / "items.js").stat().st_size
            print(f"   site {_size(scale_out) / 1e6:.1f} MB; a predictor page loads "
                  f"{(one.stat().st_size + listing) / 1e6:.2f} MB (its file + the item list), "
                  f"an item page {((ts / 'text/0.js').stat().st_size + listing) / 1e6:.2f} MB")
            url = (scale_out / "predictor.html").resolve().as_uri() + "#p=synthetic-10"
            loads, actions = [], {"misses filter": [], "sort by error": [], "next page": [],
                                  "text search": []}
            for _ in range(args.repeat):
                page = browser.open(url)
                loads.append(browser.timings(page)["bench:ready (charts drawn)"])
                actions["misses filter"].append(browser.action_ms(
                    page, "document.getElementById('miss-filter').click()"))
                actions["sort by error"].append(browser.action_ms(
                    page, "document.querySelector('button.sort[data-key=error]').click()"))
                actions["next page"].append(browser.action_ms(
                    page, "document.getElementById('next-page').click()"))
                actions["text search"].append(browser.action_ms(page, """(() => {
                    const s = document.getElementById('search'); s.value = 'steel';
                    s.dispatchEvent(new Event('change')); })()"""))
                page.close()
            print(f"   predictor page ready (table + chart of {args.items} items), ms: "
                  f"{_median(loads)}")
            for label, values in actions.items():
                print(f"   {label:<14} to re-rendered, ms: {_median(values)}")
        finally:
            browser.close()


if __name__ == "__main__":
    main()
