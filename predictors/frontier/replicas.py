"""Several servers of one model behind one API predictor: ``--param
base_url=URL1,URL2,...`` (vLLM or llama.cpp replicas), so one run drives a fleet.

Each request goes to the live replica with the fewest requests in flight
(ties: in turn, so an idle fleet is used round-robin). An attempt that fails
on one replica with an error worth retrying (a connection error, a timeout,
a 5xx, a 429) is retried on another replica at once, with no backoff; only
when no other replica is live does the usual backoff apply, so a fleet of one
retries exactly as a single server does. A replica whose last
``TAKE_OUT_AFTER`` attempts all failed with a connection error or a 5xx, or
that refused a connection (nothing listens there), is taken out for the rest
of the run, with one warning; the last live replica is never taken out, and a
refused connection there stops the run as it does for a single server. The
replica that answered each item is recorded (``Prediction.served_by``);
which replicas there were, what each answered and which were taken out go
to ``run.json``'s details.

Where an answer was served never enters a cache key or a run's fingerprint:
every replica serves the same model.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.redact import public_url
from predictors.frontier.retry import is_retryable, refused, status_of

TAKE_OUT_AFTER = 3  # failed attempts in a row (connection errors or 5xx)
# What a fleet's answers are keyed and fingerprinted by instead of a URL.
FLEET_ENDPOINT = "replicas"


def split_urls(value: str) -> list[str]:
    """The servers a ``base_url`` names: one URL, or several separated by commas.
    ValueError for an empty entry among several or a server named twice."""
    urls = [part.strip() for part in value.split(",")]
    if len(urls) > 1 and not all(urls):
        raise ValueError(f"base_url lists an empty server: {public_list(urls)!r}")
    seen: set[str] = set()
    for url in urls:
        if public_url(url) in seen:
            raise ValueError(f"base_url names {public_url(url)} twice")
        seen.add(public_url(url))
    return urls


def public_list(urls: list[str]) -> str:
    return ",".join(public_url(u) if u else "" for u in urls)


def replica_fault(exc: BaseException) -> bool:
    """A failure that says something is wrong with the replica itself (it is
    down, hangs or errs), not with the request or the rate: counts towards
    taking it out."""
    status = status_of(exc)
    if status is not None:
        return status >= 500
    return refused(exc) or is_retryable(exc)


@dataclass(eq=False)
class Replica:
    url: str  # as given (may hold credentials: never written anywhere)
    public: str  # what files and messages show
    index: int
    client: Any = None
    in_flight: int = 0
    failed_in_a_row: int = 0
    answered: int = 0
    failed: int = 0
    out: str | None = None  # why it was taken out of the run
    refused: bool = False  # its last attempt found nothing listening


class Fleet:
    """The replicas of one predictor, with the choice of the next one."""

    def __init__(self, urls: list[str], label: str,
                 describe: Callable[[BaseException], str] | None = None):
        if not urls:
            raise ValueError("no server")
        self.replicas = [Replica(u, public_url(u), i) for i, u in enumerate(urls)]
        self.label = label
        # How an error reads in the warning and run.json (the predictor's: keys scrubbed).
        self.describe = describe or (lambda exc: f"{type(exc).__name__}: {exc}")
        self._lock = threading.Lock()
        self._turn = 0

    @property
    def several(self) -> bool:
        return len(self.replicas) > 1

    def live(self) -> list[Replica]:
        return [r for r in self.replicas if r.out is None]

    def acquire(self, avoid: Replica | None = None) -> Replica:
        """The replica for the next attempt (counted in flight until released):
        the least busy live one, other than ``avoid`` where there is another."""
        with self._lock:
            live = self.live()
            choices = [r for r in live if r is not avoid] or live
            n = len(self.replicas)
            best = min(choices, key=lambda r: (r.in_flight, (r.index - self._turn) % n))
            self._turn = (best.index + 1) % n
            best.in_flight += 1
            return best

    def release(self, replica: Replica, error: BaseException | None = None) -> None:
        """The attempt on ``replica`` ended (``error``: how it failed)."""
        warning = None
        with self._lock:
            replica.in_flight -= 1
            replica.refused = error is not None and refused(error)
            if error is None:
                replica.answered += 1
                replica.failed_in_a_row = 0
                return
            if not replica_fault(error):
                return
            replica.failed += 1
            replica.failed_in_a_row += 1
            # Nothing listens there (refused): out at once, not after a few tries.
            if (replica.out is None and len(self.live()) > 1
                    and (replica.failed_in_a_row >= TAKE_OUT_AFTER or refused(error))):
                why = self.describe(error)[:200]
                replica.out = (f"taken out: it refused the connection ({why})"
                               if replica.refused else
                               f"taken out after {replica.failed_in_a_row} failed attempts "
                               f"in a row ({why})")
                left = len(self.live())
                others = "the other replica" if left == 1 else f"the other {left} replicas"
                warning = (f"warning: {self.label}: replica {replica.public} {replica.out}; "
                           f"its items go to {others}")
        if warning:
            print(warning, file=sys.stderr, flush=True)

    def all_refused(self) -> bool:
        """Did every live replica refuse its last connection (nothing is left to ask)?"""
        with self._lock:
            return all(r.refused for r in self.live())

    def another_live(self, replica: Replica | None) -> bool:
        """Is there a live replica other than ``replica`` to retry on at once?"""
        with self._lock:
            return any(r is not replica for r in self.live())

    def details(self) -> dict[str, Any]:
        """For run.json: each replica (by URL), what it answered and failed, and
        whether it was taken out (this invocation of the run)."""
        with self._lock:
            return {"replicas": {
                r.public: {"answered": r.answered, "failed_attempts": r.failed,
                           **({"taken_out": r.out} if r.out else {})} for r in self.replicas}}
