"""``bench view``: build the site of the local results and serve it on 127.0.0.1.

Like ``inspect view``: one command, then a browser tab. The server only hands
out the built files (standard library ``http.server``, loopback only); the site
itself needs no server, so the same files open from ``file://`` or GitHub Pages.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import webbrowser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from bench.errors import BenchError

HOST = "127.0.0.1"


class _Quiet(SimpleHTTPRequestHandler):
    """Serves the site folder, and the live view of ``results`` when given
    (``/live.html``, ``/live.json``: ``bench.live``); no log line per request."""

    results: Path | None = None

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        path = self.path.split("?", 1)[0]
        if self.results is not None and path in ("/live.json", "/live.html"):
            from bench import live

            if path == "/live.json":
                body = json.dumps(live.snapshot(self.results)).encode()
                kind = "application/json"
            else:
                body, kind = live.PAGE.encode(), "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (stdlib name)
        pass

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a rebuilt site shows at once
        super().end_headers()


def server(site: Path, port: int = 0, results: Path | None = None) -> ThreadingHTTPServer:
    """A server for ``site`` on 127.0.0.1:``port`` (0: a free port), not yet serving;
    with ``results``, also the live view of the runs in progress there."""
    live = type("_Live", (_Quiet,), {"results": results})
    handler = functools.partial(live, directory=str(site))
    try:
        return ThreadingHTTPServer((HOST, port), handler)
    except OSError as exc:
        raise BenchError(f"cannot serve on {HOST}:{port}: {exc.strerror or exc}") from None


def can_open_browser() -> bool:
    """A browser to open: a desktop session (or macOS / Windows) and a known browser."""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY")
                                                 or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def serve(site: Path, port: int, open_browser: bool, results: Path | None = None) -> int:
    """Serve until interrupted; prints the address first (tests read it)."""
    httpd = server(site, port, results)
    url = f"http://{HOST}:{httpd.server_address[1]}/"
    print(f"serving {site} at {url} (Ctrl-C to stop)", flush=True)
    if results is not None:
        print(f"runs in progress at {url}live.html", flush=True)
    if open_browser and can_open_browser():
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print("stopped", flush=True)
    finally:
        httpd.server_close()
    return 0
