"""Client-side rate limiting: one token bucket shared by every concurrent call.

The server limits each credential with a token bucket and reports it on every response
(``X-RateLimit-Limit`` = bucket size, ``X-RateLimit-Remaining`` = whole tokens left,
``X-RateLimit-Reset`` = whole seconds until full, rounded up). The client keeps a mirror of
that bucket and takes one token before each request, so that a steady run provokes (almost)
no ``429``.

:class:`TokenBucket` is the pure core (every method takes ``now``); :class:`RateLimiter`
wraps it for asyncio with an injected clock and sleep.

How the mirror follows the server:

* **Unknown until told.** Before the first response with rate-limit headers (and without a
  configured rate) the bucket does not limit: the API may have no limit at all (the
  simulator with the limit off), and the first few concurrent requests are bounded by the
  client's concurrency anyway.
* **Size** is ``X-RateLimit-Limit``.
* **Level** is set from each response to ``Remaining - in_flight``, where ``in_flight`` is
  the number of other requests sent and not yet answered (the server may not have counted
  them yet). This syncs down when someone else spends the same credential and syncs up when
  our refill estimate was too low; counting the in-flight requests again keeps the error on
  the safe side.
* **Refill rate** is estimated conservatively. Since ``Reset = ceil(deficit / rate)`` and the
  true level lies in ``[Remaining, Remaining + 1)``, every response with a deficit gives a
  lower bound ``rate > (Limit - Remaining - 1) / Reset``; the estimate is the largest lower
  bound seen, so it approaches the true rate from below as the bucket drains (which is when
  it matters) and never overshoots it. Until there is a bound (a bucket of size 1 never gives
  one) the rate is ``min(contract default, Limit / Reset)``. A configured rate
  (``Settings.rate_limit_per_s``) replaces the estimate.
* **A 429** empties the mirror: the server just said its bucket is empty.

Waiters queue FIFO behind an :class:`asyncio.Lock`; only the head of the queue sleeps.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass

from sodtrack.client.clock import MonotonicClock, Sleep
from sodtrack.contract.limits import (
    HEADER_RATE_LIMIT,
    HEADER_RATE_REMAINING,
    HEADER_RATE_RESET,
    RATE_LIMIT_BURST,
    RATE_LIMIT_PER_S,
)

_EPSILON = 1e-9


@dataclass(frozen=True, slots=True)
class RateLimitHeaders:
    """The three ``X-RateLimit-*`` values of one response."""

    limit: int
    remaining: int
    reset_s: float

    @classmethod
    def parse(cls, headers: Mapping[str, str]) -> RateLimitHeaders | None:
        """The headers if all three are present and numeric, else ``None``."""
        try:
            limit = int(headers[HEADER_RATE_LIMIT])
            remaining = int(headers[HEADER_RATE_REMAINING])
            reset_s = float(headers[HEADER_RATE_RESET])
        except (KeyError, ValueError):
            return None
        if limit <= 0 or remaining < 0 or reset_s < 0 or not math.isfinite(reset_s):
            return None
        return cls(limit, remaining, reset_s)


class TokenBucket:
    """The pure core of the limiter: a token bucket driven by ``now`` arguments."""

    def __init__(
        self,
        *,
        rate: float | None = None,
        capacity: float | None = None,
        now: float = 0.0,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive")
        self.configured_rate = rate
        self.rate_estimate: float | None = None
        """Largest lower bound of the server's refill rate seen so far."""
        self.capacity: float | None = capacity
        if rate is not None and capacity is None:
            self.capacity = float(max(RATE_LIMIT_BURST, 1))
        self.tokens: float = self.capacity if self.capacity is not None else 0.0
        self.last = now
        self.observations = 0
        self.last_reset_s: float | None = None

    @property
    def active(self) -> bool:
        """Whether the bucket limits at all (a rate is configured or headers were seen)."""
        return self.capacity is not None

    @property
    def rate(self) -> float:
        """The refill rate in use: configured, else estimated, else the contract's default."""
        if self.configured_rate is not None:
            return self.configured_rate
        if self.rate_estimate is not None:
            return self.rate_estimate
        if self.capacity is not None and self.last_reset_s is not None:
            # No lower bound yet (a bucket of 1 never yields one): size over time-to-full.
            return min(RATE_LIMIT_PER_S, self.capacity / max(self.last_reset_s, 1.0))
        return RATE_LIMIT_PER_S

    def _refill(self, now: float) -> None:
        if self.capacity is None:
            return
        if now > self.last:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = max(self.last, now)

    def try_acquire(self, now: float) -> float:
        """Take one token and return 0.0, or return the seconds until one is available."""
        if self.capacity is None:
            return 0.0
        self._refill(now)
        if self.tokens >= 1.0 - _EPSILON:  # float refills may stop a hair short of 1.0
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate

    def observe(self, now: float, headers: RateLimitHeaders, in_flight: int = 0) -> None:
        """Fold one response's ``X-RateLimit-*`` into the mirror (see the module docstring)."""
        self._refill(now)
        self.observations += 1
        self.capacity = float(headers.limit)
        self.last_reset_s = headers.reset_s
        deficit = headers.limit - headers.remaining - 1
        if deficit > 0 and headers.reset_s > 0:
            bound = deficit / headers.reset_s
            if self.rate_estimate is None or bound > self.rate_estimate:
                self.rate_estimate = bound
        self.tokens = min(self.capacity, float(headers.remaining - max(in_flight, 0)))

    def on_rate_limited(self, now: float) -> None:
        """A 429: the server's bucket is empty."""
        self._refill(now)
        if self.capacity is None:
            self.capacity = float(max(RATE_LIMIT_BURST, 1))
        self.tokens = min(self.tokens, 0.0)


class RateLimiter:
    """The asyncio face of :class:`TokenBucket`, shared by all calls of a client."""

    def __init__(
        self,
        rate: float | None = None,
        *,
        capacity: float | None = None,
        clock: MonotonicClock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.clock = clock
        self.sleep = sleep
        self.bucket = TokenBucket(rate=rate, capacity=capacity, now=clock())
        self._lock = asyncio.Lock()

    def __repr__(self) -> str:
        b = self.bucket
        return (
            f"RateLimiter(active={b.active}, rate={b.rate:.2f}/s, "
            f"capacity={b.capacity}, tokens={b.tokens:.2f})"
        )

    async def acquire(self) -> float:
        """Wait for a token; return the seconds waited (by the injected clock)."""
        start = self.clock()
        if not self._lock.locked() and self.bucket.try_acquire(start) == 0.0:
            return 0.0
        async with self._lock:
            while True:
                delay = self.bucket.try_acquire(self.clock())
                if delay <= 0.0:
                    break
                await self.sleep(delay)
        return max(self.clock() - start, 0.0)

    def observe(self, headers: Mapping[str, str], in_flight: int = 0) -> None:
        parsed = RateLimitHeaders.parse(headers)
        if parsed is not None:
            self.bucket.observe(self.clock(), parsed, in_flight)

    def on_rate_limited(self) -> None:
        self.bucket.on_rate_limited(self.clock())
