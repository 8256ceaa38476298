"""Retries with exponential backoff and jitter, Retry-After, and a shared
requests-per-minute cap.

The SDKs' own retries are switched off (``max_retries=0``) so these are the
only ones: one policy for both providers, testable against a loopback server.
Errors are classified by duck typing (``status_code``, class names), so this
module never imports an SDK.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar

T = TypeVar("T")

# 408 timeout, 409 lock conflict, 425 too early, 429 rate limit, 5xx (incl.
# Anthropic's 529 overloaded): worth another try. Other 4xx are our mistake.
RETRYABLE_STATUS = frozenset({408, 409, 425, 429})
# The SDKs' transport failures (both define these names; timeouts subclass
# the connection error).
_TRANSPORT_ERRORS = frozenset({"APITimeoutError", "APIConnectionError"})
# Failures that will fail the same way for every item: stop asking.
FATAL_STATUS = frozenset({401, 403, 404})


def status_of(exc: BaseException) -> int | None:
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def refused(exc: BaseException) -> bool:
    """Whether the connection was refused (nothing listens at that address):
    not a passing fault, so never retried, and every later item would meet it too."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, ConnectionRefusedError):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def is_retryable(exc: BaseException) -> bool:
    if refused(exc):
        return False
    status = status_of(exc)
    if status is not None:
        return status in RETRYABLE_STATUS or status >= 500
    if any(cls.__name__ in _TRANSPORT_ERRORS for cls in type(exc).__mro__):
        return True
    # A 200 whose JSON body was cut off (a proxy dropped the connection) is
    # transient too; so are plain socket timeouts and resets.
    return isinstance(exc, json.JSONDecodeError | TimeoutError | ConnectionError)


def is_fatal(exc: BaseException) -> bool:
    """Bad key, no access, unknown model or route, a refused connection: every
    later item would fail too."""
    return status_of(exc) in FATAL_STATUS or refused(exc)


def retry_after(exc: BaseException, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait (``retry-after-ms``, ``Retry-After``
    as seconds or an HTTP date), or None."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    current = datetime.now(UTC).timestamp() if now is None else now
    return max(0.0, when.timestamp() - current)


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra attempts after the first; waits double from
    ``backoff`` seconds up to ``max_backoff``, with jitter (half fixed, half
    random) so threads that failed together do not retry together. A server's
    Retry-After wins over the computed wait, up to ``max_retry_after``."""

    max_retries: int = 6
    backoff: float = 1.0
    max_backoff: float = 60.0
    max_retry_after: float = 120.0
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def delay(self, attempt: int, server_wait: float | None = None) -> float:
        if server_wait is not None:
            return min(server_wait, self.max_retry_after)
        ceiling = min(self.max_backoff, self.backoff * (2**attempt))
        return ceiling / 2 + self.rng.uniform(0, ceiling / 2)


class TokenBucket:
    """A requests-per-minute cap shared by all threads of one predictor.

    Holds at most ``burst`` tokens, refilled at ``rpm / 60`` per second; each
    request takes one, waiting (outside the lock's critical work) when empty.
    """

    def __init__(self, rpm: float, burst: float = 1.0,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if rpm <= 0:
            raise ValueError(f"rpm must be positive, not {rpm}")
        self.rate = rpm / 60.0
        self.capacity = max(1.0, burst)
        self._tokens = self.capacity
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.capacity, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)


@dataclass
class Outcome:
    """What one item's calls came to: the value, or the last error."""

    value: Any = None
    error: BaseException | None = None
    attempts: int = 0


def call_with_retries(
    send: Callable[[], T],
    policy: RetryPolicy,
    limiter: TokenBucket | None = None,
    sleep: Callable[[float], None] = time.sleep,
    retry_now: Callable[[BaseException], bool] | None = None,
) -> Outcome:
    """Call ``send`` until it succeeds, fails for good, or retries run out.

    Never raises for an exception ``send`` raises: the caller gets it in
    ``Outcome.error`` and records a no-answer. ``retry_now(exc)`` True skips
    the wait before the next attempt (it goes to another server).
    """
    attempt = 0
    while True:
        if limiter is not None:
            limiter.acquire()
        try:
            return Outcome(value=send(), attempts=attempt + 1)
        except Exception as exc:
            elsewhere = retry_now is not None and retry_now(exc)
            # A refused connection is never retried on the same server, but
            # another live replica may still answer (``retry_now``).
            if (not (is_retryable(exc) or (refused(exc) and elsewhere))
                    or attempt >= policy.max_retries):
                return Outcome(error=exc, attempts=attempt + 1)
            if not elsewhere:
                sleep(policy.delay(attempt, retry_after(exc)))
            attempt += 1
