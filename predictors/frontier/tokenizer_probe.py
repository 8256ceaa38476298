"""Ask a served model's own tokenizer, once per run, whether a price's dollars
are one token (``predictors.topk``): the top-k rule then prices every item, or
none, instead of judging each item by its top tokens.

Servers that can be asked, each at its server root (``base_url`` without its
``/v1``), tried in this order:

- vLLM: ``POST /tokenize`` ``{"model", "prompt", "add_special_tokens"}`` ->
  ``{"count", "max_model_len", "tokens": [ids]}``
- llama.cpp's ``llama-server``: ``POST /tokenize`` ``{"content"}`` ->
  ``{"tokens": [ids]}`` (a body without ``content`` gets no tokens)
- llama-cpp-python's server: ``POST /extras/tokenize`` ``{"input", "model"}``
  -> ``{"tokens": [ids]}`` (BOS included)

Only token counts are read (``topk.numbers_whole_by_count``), so ids need no
decoding and a BOS the server adds to every text cancels out. Where none
answers (an OpenAI-compatible server without such an endpoint, or none
reachable), the verdict is unknown and the caller falls back to judging each
item, saying so.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from predictors.frontier.retry import status_of
from predictors.topk import PROBES, numbers_whole_by_count, probe_text

# (url, JSON body) -> the parsed JSON reply; raises the SDK's errors.
Post = Callable[[str, dict[str, Any]], Any]


@dataclass(frozen=True)
class Flavour:
    """One server's tokenize endpoint: where it is and the body it reads."""

    server: str
    path: str
    text_field: str
    extra: tuple[tuple[str, Any], ...] = ()
    sends_model: bool = True

    def body(self, model: str, text: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model} if self.sends_model else {}
        return {**body, self.text_field: text, **dict(self.extra)}


FLAVOURS = (
    Flavour("vLLM", "/tokenize", "prompt", (("add_special_tokens", False),)),
    Flavour("llama.cpp server", "/tokenize", "content", sends_model=False),
    Flavour("llama-cpp-python server", "/extras/tokenize", "input"),
)


def server_root(base_url: str) -> str:
    """Where a server's own endpoints live: its OpenAI ``base_url`` without ``/v1``."""
    root = base_url.rstrip("/")
    return root[: -len("/v1")] if root.endswith("/v1") else root


def token_count(reply: Any) -> int | None:
    """How many tokens a tokenize reply lists; None when it is not an answer."""
    tokens = reply.get("tokens") if isinstance(reply, dict) else None
    return len(tokens) if isinstance(tokens, list) and tokens else None


@dataclass(frozen=True)
class Verdict:
    """What the server's tokenizer said (``numbers_whole`` None: nobody answered)."""

    numbers_whole: bool | None
    server: str | None = None
    asked: str | None = None  # the endpoint that answered (no credentials)
    token_counts: dict[str, int] | None = None
    tried: list[str] = field(default_factory=list)  # what did not answer, and how
    from_cache: bool = False

    def cached(self) -> dict[str, Any]:
        """What the response cache keeps (an answer only)."""
        return {"numbers_whole": self.numbers_whole, "server": self.server,
                "asked": self.asked, "token_counts": self.token_counts}

    @classmethod
    def from_cached(cls, value: dict[str, Any]) -> Verdict:
        return cls(bool(value["numbers_whole"]), value.get("server"), value.get("asked"),
                   value.get("token_counts"), from_cache=True)

    def details(self) -> dict[str, Any]:
        """For run.json: who was asked, what it said, and how items are priced."""
        if self.numbers_whole is None:
            return {"numbers_whole": None, "asked": None, "tried": self.tried,
                    "pricing": "no tokenize endpoint answered: each item is judged by its "
                               "own top tokens (numeric ones all single digits: refused as "
                               "digit split, so prices under $10 get no answer)"}
        out: dict[str, Any] = {"numbers_whole": self.numbers_whole, "asked": self.asked,
                               "server": self.server, "token_counts": self.token_counts}
        if self.from_cache:
            out["from_cache"] = True
        out["pricing"] = ("every item by the top-k rule (single-digit top tokens are "
                          "prices under $10)" if self.numbers_whole else
                          "refused: the tokenizer splits numbers into digits")
        return out


def ask(posts: list[tuple[str, str, Post]], model: str) -> Verdict:
    """Ask each server in turn (``(root URL, its public form, post)``) until one
    tokenize endpoint answers every probe; a server that cannot be reached is
    skipped for the next one."""
    tried: list[str] = []
    for root, public, post in posts:
        for flavour in FLAVOURS:
            where = f"{public}{flavour.path} ({flavour.server})"
            counts: dict[str, int] = {}
            try:
                for number in PROBES:
                    count = token_count(post(root + flavour.path,
                                             flavour.body(model, probe_text(number))))
                    if count is None:
                        break
                    counts[number] = count
            except Exception as exc:  # an HTTP error: not this kind of server
                status = status_of(exc)
                tried.append(f"{where}: HTTP {status}" if status is not None
                             else f"{where}: {type(exc).__name__}")
                if status is None:
                    break  # unreachable: the next server, if any
                continue
            if len(counts) < len(PROBES):
                tried.append(f"{where}: no tokens in the reply")
                continue
            return Verdict(numbers_whole_by_count(counts), flavour.server,
                           f"{public}{flavour.path}", counts)
    return Verdict(None, tried=tried)
