"""In-process limits: per-key token buckets, per-key concurrency caps, and a throttle on failed authentication.

They hold state in this process only (one ``pluralign serve`` process is one service); several server processes
behind one address would each enforce their own limits. All are used from the event loop thread, so no locks.
A refusal is a 429 with ``Retry-After`` and a JSON error that says which limit applied.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import contextmanager

from pluralign.service.errors import ApiError

_MAX_KEYS = 100_000  # buckets idle long enough to be full again are dropped beyond this many keys


class RateLimiter:
    """A token bucket per key: ``rate`` tokens a second, at most ``burst`` banked. ``rate <= 0`` disables it."""

    def __init__(self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic):
        self.rate, self.burst, self.clock = rate, max(burst, 1.0), clock
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, time of last update)

    @property
    def enabled(self) -> bool:
        return self.rate > 0

    def _tokens(self, key: str, now: float) -> float:
        tokens, last = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - last) * self.rate)

    def try_take(self, key: str, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0.0 if taken, else the seconds until they would be available."""
        if not self.enabled:
            return 0.0
        now = self.clock()
        tokens = self._tokens(key, now)
        cost = min(cost, self.burst)  # a request larger than the burst waits for a full bucket, never forever
        if tokens >= cost:
            self._buckets[key] = (tokens - cost, now)
            self._prune(now)
            return 0.0
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate

    def _prune(self, now: float) -> None:
        if len(self._buckets) > _MAX_KEYS:
            full = self.burst / self.rate
            self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < full}


class ConcurrencyLimiter:
    """At most ``limit`` requests in flight per key (``limit <= 0`` disables it)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._in_flight: dict[str, int] = {}

    @contextmanager
    def hold(self, key: str, what: str):
        n = self._in_flight.get(key, 0)
        if self.limit > 0 and n >= self.limit:
            raise ApiError(429, "too_many_requests", f"{what}: at most {self.limit} requests in flight per user; "
                           "wait for one to finish", headers={"Retry-After": "1"})
        self._in_flight[key] = n + 1
        try:
            yield
        finally:
            left = self._in_flight[key] - 1
            if left:
                self._in_flight[key] = left
            else:
                del self._in_flight[key]


def too_many(what: str, wait_s: float) -> ApiError:
    return ApiError(429, "too_many_requests", f"{what}: rate limit exceeded; retry in {wait_s:.1f} s",
                    headers={"Retry-After": str(max(1, math.ceil(wait_s)))})


class AuthFailureThrottle:
    """Slows down credential guessing: each client address may fail authentication ``burst`` times, then
    ``per_s`` times a second. A throttled address gets 429 before its credential is even checked, so guessing
    stops paying; addresses that authenticate correctly are never charged. ``per_s <= 0`` disables it.
    """

    def __init__(self, per_s: float, burst: float, *, clock: Callable[[], float] = time.monotonic):
        self._bucket = RateLimiter(per_s, burst, clock=clock)

    def check(self, client: str) -> None:
        """429 if ``client`` has no failures left to spend (spends nothing)."""
        if not self._bucket.enabled or client not in self._bucket._buckets:  # never failed: nothing to look up
            return
        now = self._bucket.clock()
        tokens = self._bucket._tokens(client, now)
        if tokens < 1.0:
            raise too_many("authentication failures from this address", (1.0 - tokens) / self._bucket.rate)

    def failed(self, client: str) -> None:
        self._bucket.try_take(client, 1.0)
