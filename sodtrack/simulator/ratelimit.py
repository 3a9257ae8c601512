"""Token-bucket rate limiting per client credential.

A bucket holds at most ``burst`` tokens and refills at ``rate`` per second (measured on the
clock's ``monotonic``). Each request takes one token; a request that finds less than one
token is answered 429 and takes nothing. Headers, as the contract defines them:

* ``X-RateLimit-Limit``: the bucket size;
* ``X-RateLimit-Remaining``: whole tokens left after this request;
* ``X-RateLimit-Reset``: whole seconds until the bucket is full again, rounded up;
* ``Retry-After`` (429 only): whole seconds until one token is back, at least 1.

``rate == 0`` turns limiting off; responses then say the bucket is always full.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sodtrack.contract.limits import (
    HEADER_RATE_LIMIT,
    HEADER_RATE_REMAINING,
    HEADER_RATE_RESET,
    HEADER_RETRY_AFTER,
)


@dataclass(slots=True)
class Decision:
    allowed: bool
    limit: int
    remaining: int
    reset_s: int
    retry_after_s: int = 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        result = [
            (HEADER_RATE_LIMIT.lower().encode(), str(self.limit).encode()),
            (HEADER_RATE_REMAINING.lower().encode(), str(self.remaining).encode()),
            (HEADER_RATE_RESET.lower().encode(), str(self.reset_s).encode()),
        ]
        if not self.allowed:
            result.append((HEADER_RETRY_AFTER.lower().encode(), str(self.retry_after_s).encode()))
        return result


class RateLimiter:
    def __init__(self, rate: float, burst: int, monotonic: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._now = monotonic
        self._buckets: dict[str, tuple[float, float]] = {}
        """key -> (tokens, at)"""

    def reset(self) -> None:
        self._buckets.clear()

    def take(self, key: str) -> Decision:
        if self.rate <= 0:
            return Decision(True, self.burst, self.burst, 0)
        now = self._now()
        tokens, at = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + max(0.0, now - at) * self.rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            retry = max(1, math.ceil((1.0 - tokens) / self.rate - 1e-9))
            return Decision(False, self.burst, 0, self._reset(tokens), retry)
        tokens -= 1.0
        self._buckets[key] = (tokens, now)
        return Decision(True, self.burst, math.floor(tokens + 1e-9), self._reset(tokens))

    def _reset(self, tokens: float) -> int:
        return max(0, math.ceil((self.burst - tokens) / self.rate - 1e-9))
