"""``python -m bench.screenshot``: a picture of the site's leaderboard page for the README.

Headless Chromium (Debian's ``chromium``, or ``$BENCH_CHROMIUM``) driven by
Playwright opens the built site over ``file://``, waits until the page and its
chart are drawn, and writes a PNG of the first screen. ``make publish`` runs it
after ``bench site``, so the README's picture is of the committed site and
cannot go stale. A missing site, browser or Playwright is one line and exit 2.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.errors import BenchError

SITE = Path("results/site")
OUT = Path("results/leaderboard.png")
SIZE = (1280, 900)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def find_chromium() -> str | None:
    """``$BENCH_CHROMIUM``, else a Chromium on PATH (the browser tests use it too)."""
    explicit = os.environ.get("BENCH_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def chromium() -> str:
    """``find_chromium()``; BenchError when there is none."""
    found = find_chromium()
    if found:
        return found
    raise BenchError("no Chromium found for the screenshot (apt-get install chromium, "
                     "or set BENCH_CHROMIUM)")


def screenshot(site: Path, out: Path, size: tuple[int, int] = SIZE,
               timeout_s: float = 60.0) -> Path:
    """Write ``out``: the leaderboard page of the site in ``site``, its first screen."""
    page_file = site / "index.html"
    if not page_file.is_file():
        raise BenchError("no built site here (run `bench site` first)", page_file)
    try:
        from playwright.sync_api import Error as PlaywrightError
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise BenchError("the screenshot needs Playwright: pip install playwright") from None
    browser = chromium()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    os.close(fd)
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=browser, args=FLAGS, headless=True,
                viewport={"width": size[0], "height": size[1]})
            try:
                page = context.new_page()
                page.goto(page_file.resolve().as_uri())
                page.wait_for_selector("body[data-ready='1'], body[data-ready='error']",
                                       timeout=timeout_s * 1000)
                if page.evaluate("document.body.dataset.ready") != "1":
                    raise BenchError(f"the page did not render: {page.inner_text('main')}",
                                     page_file)
                page.wait_for_function(
                    "() => { const c = document.querySelector('#mae-chart');"
                    " return !c || c.dataset.drawn === '1'; }", timeout=timeout_s * 1000)
                page.screenshot(path=tmp, type="png")
            finally:
                context.close()
        os.replace(tmp, out)
    except PlaywrightError as exc:
        raise BenchError(f"Chromium ({browser}): {str(exc).splitlines()[0]}") from None
    finally:
        shutil.rmtree(profile, ignore_errors=True)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.screenshot", description=__doc__
                                     and __doc__.splitlines()[0])
    parser.add_argument("--site", type=Path, default=SITE, help=f"the built site ({SITE})")
    parser.add_argument("--output", type=Path, default=OUT, help=f"the PNG to write ({OUT})")
    args = parser.parse_args(argv)
    try:
        out = screenshot(args.site, args.output)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
