"""A loopback stand-in for the Hugging Face hub's file endpoint.

It answers ``HEAD``/``GET /datasets/{repo}/resolve/{revision}/{path}`` with the
headers ``huggingface_hub`` reads (X-Repo-Commit, ETag, Content-Length), so
``hf_hub_download`` runs its real code path against files on disk.
"""

from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class FakeHub:
    def __init__(self, files: dict[str, Path]):
        self.files = files  # "datasets/{repo}/resolve/{rev}/{path}" -> local file
        self.requests: list[str] = []
        # A commit per content, as the hub has: different files, different snapshot.
        digest = hashlib.sha1()
        for key in sorted(files):
            digest.update(key.encode() + files[key].read_bytes())
        self.commit = digest.hexdigest()
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self, body: bool) -> None:
                hub.requests.append(f"{self.command} {self.path}")
                local = hub.files.get(self.path.split("?")[0].lstrip("/"))
                if local is None:
                    self.send_response(404)
                    self.send_header("X-Error-Code", "EntryNotFound")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                data = local.read_bytes()
                self.send_response(200)
                self.send_header("X-Repo-Commit", hub.commit)
                self.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_HEAD(self) -> None:  # noqa: N802
                self._serve(body=False)

            def do_GET(self) -> None:  # noqa: N802
                self._serve(body=True)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeHub:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
