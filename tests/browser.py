"""A real headless Chromium for the site tests: Debian's ``chromium`` driven by
Playwright (its own browser download is not used). ``launch`` skips the test
with one clear reason when no browser or no Playwright is installed here;
``.ci/run`` installs the browser, so CI runs these tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium_path() -> str | None:
    """``$BENCH_CHROMIUM``, else a system Chromium on PATH."""
    from bench.screenshot import find_chromium

    return find_chromium()


@contextmanager
def launch() -> Iterator[Any]:
    """A browser context with a fresh profile, closed (and its profile removed) after."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("no browser tests: the playwright package is not installed "
                    "(pip install -e .[dev])")
    path = chromium_path()
    if path is None:
        pytest.skip("no browser tests: no Chromium here (apt-get install chromium, "
                    "or set BENCH_CHROMIUM); .ci/run installs it")
    profile = tempfile.mkdtemp(prefix="bench-chromium-")
    try:
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                profile, executable_path=path, args=FLAGS, headless=True,
                viewport={"width": 1280, "height": 900})
            try:
                yield context
            finally:
                context.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


class Page:
    """One tab that records console errors and uncaught exceptions."""

    def __init__(self, context: Any):
        self.page = context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))

    def open(self, url: str) -> Any:
        """Go to ``url`` and wait until the page has rendered from its data."""
        self.page.goto(url)
        return self.ready()

    def ready(self) -> Any:
        self.page.wait_for_selector("body[data-ready='1'], body[data-ready='error']",
                                    timeout=30_000)
        assert self.page.evaluate("document.body.dataset.ready") == "1", \
            self.page.inner_text("main")
        return self.page

    def close(self) -> None:
        self.page.close()
