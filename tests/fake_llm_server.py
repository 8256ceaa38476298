"""A real HTTP server on loopback that speaks just enough of the OpenAI and
Anthropic wire formats for the official SDKs: ``/v1/chat/completions``,
``/v1/completions`` (with ``logprobs``) and ``/v1/messages``.

It records every request (path, headers, JSON body), counts requests in flight
(so tests can see real overlap), simulates latency, and injects faults per
request: ``429`` (with ``Retry-After``), ``500``, ``401`` (echoing the
credential it got, as careless servers do), ``400prefill``, ``hang`` (no reply until the
client gives up), ``truncated`` (a 200 whose JSON body is cut in half),
``nonumber`` (a valid reply without a price). Used by the tests and by
``python -m bench.perf.frontier``; standard library only.

``tokenize`` serves one server's tokenize endpoint (``TOKENIZE_FLAVOURS``:
vLLM's ``/tokenize``, llama.cpp's ``/tokenize``, llama-cpp-python's
``/extras/tokenize``, each with its own request and reply shape) over a small
tokenizer that keeps numbers up to 999 whole or, with ``split_digits``, splits
them into digits; None: no such endpoint (404, as OpenAI's API).
``serial`` answers one request at a time (as a server with one slot does).
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# (prompt text, attempt number starting at 1) -> fault name or None.
FaultPlan = Callable[[str, int], str | None]
FAULTS = ("429", "500", "401", "400prefill", "hang", "truncated", "nonumber")
TOKENIZE_FLAVOURS = ("vllm", "llama.cpp", "llama-cpp-python")
_WHOLE = re.compile(r"\d{1,3}|[A-Za-z]+|\S")
_SPLIT = re.compile(r"\d|[A-Za-z]+|\S")
BOS_ID = 1


def default_price(text: str) -> float:
    """A deterministic price per prompt, so tests can predict the answer."""
    digest = int(hashlib.sha256(text.encode()).hexdigest()[:8], 16)
    return float(10 + digest % 990)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeLLMServer:
    latency: float = 0.0
    fault_plan: FaultPlan | None = None
    fail_rate: float = 0.0  # random 429/500 on this share of requests (seeded)
    retry_after: str = "0"
    hang_s: float = 5.0
    price: Callable[[str], float] = default_price
    # For /v1/completions: the top next tokens and their probabilities.
    top_tokens: Callable[[str], list[tuple[str, float]]] | None = None
    tokenize: str | None = None  # one of TOKENIZE_FLAVOURS, or no endpoint
    split_digits: bool = False  # its tokenizer splits numbers into digits
    serial: bool = False  # one request at a time
    seed: int = 0
    requests: list[Recorded] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    max_in_flight: int = 0

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._attempts: Counter[str] = Counter()
        self._rng = random.Random(self.seed)
        self._stop = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._one_at_a_time = threading.Lock()
        self._vocabulary: dict[str, int] = {}
        if self.tokenize not in (None, *TOKENIZE_FLAVOURS):
            raise ValueError(f"tokenize must be one of {TOKENIZE_FLAVOURS} or None")

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> FakeLLMServer:
        server = self

        class Handler(_Handler):
            fake = server

        self._httpd = _Server(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return self._httpd.server_address[1]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.requests)

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.statuses.clear()
            self._attempts.clear()
            self.max_in_flight = 0

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": len(self.requests), "max_in_flight": self.max_in_flight,
                    "statuses": dict(self.statuses)}

    # -- request handling (called from handler threads) --------------------------

    def _enter(self, rec: Recorded) -> str | None:
        key = prompt_text(rec.body)
        with self._lock:
            self.requests.append(rec)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)
            self._attempts[key] += 1
            attempt = self._attempts[key]
            roll = self._rng.random()
        if self.fault_plan is not None:
            fault = self.fault_plan(key, attempt)
            if fault:
                return fault
        if roll < self.fail_rate:
            return "429" if roll < self.fail_rate / 2 else "500"
        return None

    def token_ids(self, text: str) -> list[int]:
        """The ids of ``text`` under this server's small tokenizer (no BOS)."""
        pattern = _SPLIT if self.split_digits else _WHOLE
        with self._lock:
            return [self._vocabulary.setdefault(piece, 2 + len(self._vocabulary))
                    for piece in pattern.findall(text)]

    def tokenize_reply(self, path: str, body: dict[str, Any]) -> tuple[int, Any] | None:
        """(status, JSON) for a tokenize request in this server's flavour; None
        for a path it does not serve."""
        flavour = self.tokenize
        if flavour == "vllm" and path == "/tokenize":
            if not isinstance(body.get("prompt"), str):  # vLLM validates the body
                return 400, {"object": "error", "message": "prompt: Field required",
                             "type": "BadRequestError", "code": 400}
            ids = ([BOS_ID] if body.get("add_special_tokens", True) else []) \
                + self.token_ids(body["prompt"])
            return 200, {"count": len(ids), "max_model_len": 8192, "tokens": ids}
        if flavour == "llama.cpp" and path == "/tokenize":
            content = body.get("content")  # llama-server: no content, no tokens
            ids = self.token_ids(content) if isinstance(content, str) else []
            if body.get("add_special"):
                ids = [BOS_ID, *ids]
            return 200, {"tokens": ids}
        if flavour == "llama-cpp-python" and path == "/extras/tokenize":
            if not isinstance(body.get("input"), str):  # FastAPI validation
                return 422, {"detail": [{"loc": ["body", "input"], "msg": "Field required",
                                         "type": "missing"}]}
            return 200, {"tokens": [BOS_ID, *self.token_ids(body["input"])]}
        return None

    def _leave(self, status: int) -> None:
        with self._lock:
            self._in_flight -= 1
            self.statuses[status] += 1


def prompt_text(body: dict[str, Any]) -> str:
    """The item's text in any of the three request shapes (for fault plans)."""
    if "prompt" in body:
        return str(body["prompt"])
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list):
                return "".join(part.get("text", "") for part in content)
            return str(content)
    return ""


def _usage_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops simultaneous connects from a
    # 16-thread client, which then wait a 1 s SYN retransmit.
    request_queue_size = 128


class _Handler(BaseHTTPRequestHandler):
    fake: FakeLLMServer
    protocol_version = "HTTP/1.1"
    # Buffer the reply and send headers and body in one write: two small writes
    # meet the client's delayed ACK (Nagle) and stall each request by ~40 ms.
    wbufsize = -1

    def log_message(self, format: str, *args: Any) -> None:  # silence stderr
        pass

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", 0))
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = {}
        rec = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
        fake = self.fake
        if fake.serial:
            with fake._one_at_a_time:
                self._answer(rec)
        else:
            self._answer(rec)

    def _answer(self, rec: Recorded) -> None:
        fake = self.fake
        fault = fake._enter(rec)
        status = 200
        try:
            tokenized = fake.tokenize_reply(self.path.split("?")[0], rec.body)
            if tokenized is not None and fault is None:
                status = tokenized[0]
                self._json(*tokenized)
                return
            if fake.latency:
                time.sleep(fake.latency)
            if fault == "hang":
                fake._stop.wait(fake.hang_s)
                status = 0
                self.close_connection = True
                return
            if fault == "429":
                status = 429
                self._json(429, {"error": {"message": "rate limited", "type": "rate_limit"}},
                           {"Retry-After": fake.retry_after})
                return
            if fault == "401":
                status = 401
                credential = rec.headers.get("authorization") or rec.headers.get("x-api-key")
                self._json(401, {"error": {"message": f"Incorrect API key provided: {credential}",
                                           "type": "invalid_request_error"}})
                return
            if fault == "400prefill":
                status = 400
                self._json(400, {"type": "error", "error": {
                    "type": "invalid_request_error",
                    "message": "This model does not support assistant message prefill."}})
                return
            if fault == "500":
                status = 500
                self._json(500, {"error": {"message": "boom", "type": "server_error"}})
                return
            reply = self._reply(rec, nonumber=fault == "nonumber")
            if reply is None:
                status = 404
                self._json(404, {"error": {"message": f"no route {self.path}"}})
                return
            if fault == "truncated":
                data = json.dumps(reply).encode()
                self._send(200, data[: len(data) // 2])
                return
            self._json(200, reply)
        except (BrokenPipeError, ConnectionResetError):
            status = 0
        finally:
            fake._leave(status)

    def _reply(self, rec: Recorded, *, nonumber: bool) -> dict[str, Any] | None:
        body, fake = rec.body, self.fake
        text = prompt_text(body)
        model = body.get("model", "fake")
        answer = "sorry, I cannot tell" if nonumber else f"{fake.price(text):,.2f}"
        prompt_tokens = _usage_tokens(json.dumps(body.get("messages", body.get("prompt", ""))))
        path = self.path.split("?")[0]
        if path.endswith("/chat/completions"):
            return {
                "id": "chatcmpl-fake", "object": "chat.completion", "created": 0, "model": model,
                "choices": [{"index": 0, "finish_reason": "length", "logprobs": None,
                             "message": {"role": "assistant", "content": answer}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 3,
                          "total_tokens": prompt_tokens + 3},
            }
        if path.endswith("/messages"):
            return {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": answer}],
                "stop_reason": "max_tokens", "stop_sequence": None,
                "usage": {"input_tokens": prompt_tokens, "output_tokens": 3},
            }
        if path.endswith("/completions"):
            top = ([("sorry", 0.9), (" I", 0.1)] if nonumber else
                   fake.top_tokens(text) if fake.top_tokens else
                   [(str(int(fake.price(text))), 1.0)])
            k = int(body.get("logprobs") or 0)
            top_logprobs = [{tok: math.log(p) for tok, p in top[:k]}] if k else None
            first = top[0]
            return {
                "id": "cmpl-fake", "object": "text_completion", "created": 0, "model": model,
                "choices": [{"index": 0, "text": first[0], "finish_reason": "length",
                             "logprobs": {"tokens": [first[0]],
                                          "token_logprobs": [math.log(first[1])],
                                          "top_logprobs": top_logprobs, "text_offset": [0]}}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1,
                          "total_tokens": prompt_tokens + 1},
            }
        return None

    def _json(self, status: int, obj: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), headers)

    def _send(self, status: int, data: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()
