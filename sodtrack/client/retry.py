"""The retry policy: exponential backoff with full jitter, ``Retry-After`` as a floor.

This is the client's only retry layer. :class:`RetryPolicy` is a pure object: given the
number of failed attempts so far, the server's ``Retry-After`` (if any) and the seconds
elapsed since the call began, it answers how long to wait before the next attempt, or
``None`` to give up. The caller (``sodtrack.client.core``) sleeps and records; the policy
never does I/O, so it is unit-tested with an injected random source.

Wait for the n-th failure (n = 1, 2, ...)::

    cap    = min(max_delay_s, base_delay_s * 2 ** (n - 1))
    wait   = random() * cap                      # "full jitter" (AWS architecture blog)
    wait   = max(wait, retry_after)              # the server's Retry-After is a floor

and the policy gives up when ``n >= max_attempts`` or when ``elapsed + wait`` would exceed
``budget_s``. A ``Retry-After`` larger than ``max_retry_after_s`` also gives up at once (a
server asking for minutes is better reported than slept through).
"""

from __future__ import annotations

import random as _random
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """When to retry a transient failure, and how long to wait first."""

    max_attempts: int = 6
    """Total attempts of one call (the first included)."""
    base_delay_s: float = 0.25
    max_delay_s: float = 20.0
    budget_s: float = 300.0
    """Upper bound on a call's elapsed time (tries and waits) when deciding to wait again."""
    max_retry_after_s: float = 120.0
    rate_limited_default_s: float = 1.0
    """The floor of the wait after a ``429`` that carries no ``Retry-After`` (a proxy's or a
    gateway's, not the API's own): treated as if it said this many seconds."""
    random: Callable[[], float] = field(default=_random.random, compare=False, repr=False)
    """Uniform source in [0, 1); injected by tests."""

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if (
            self.base_delay_s < 0
            or self.max_delay_s < 0
            or self.budget_s < 0
            or self.rate_limited_default_s < 0
        ):
            raise ValueError("delays and budget must not be negative")

    def backoff_cap(self, attempt: int) -> float:
        """The jitter window after the ``attempt``-th failure (1-based)."""
        exponent = min(max(attempt - 1, 0), 62)
        return min(self.max_delay_s, self.base_delay_s * (2.0**exponent))

    def next_delay(self, attempt: int, retry_after: float | None, elapsed: float) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or ``None`` to give up.

        ``attempt`` counts the failed attempts so far (1 after the first failure),
        ``retry_after`` is the server's ``Retry-After`` in seconds (or ``None``), ``elapsed``
        the seconds since the call's first attempt began.
        """
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None and retry_after > self.max_retry_after_s:
            return None
        delay = self.random() * self.backoff_cap(attempt)
        if retry_after is not None:
            delay = max(delay, retry_after)
        if elapsed + delay > self.budget_s:
            return None
        return delay

    def give_up_reason(self, attempt: int, retry_after: float | None, elapsed: float) -> str:
        """Why :meth:`next_delay` said ``None`` (for the :class:`RetryExhausted` message)."""
        if attempt >= self.max_attempts:
            return f"max_attempts={self.max_attempts} reached"
        if retry_after is not None and retry_after > self.max_retry_after_s:
            return f"Retry-After {retry_after:g}s exceeds {self.max_retry_after_s:g}s"
        return f"wait budget {self.budget_s:g}s exhausted"


def parse_retry_after(value: str | None) -> float | None:
    """``Retry-After`` in seconds (the contract sends whole seconds; HTTP dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds
