"""The client's injected time: a monotonic clock and an async sleep, so that tests (and the
simulator's virtual time) can drive token expiry, the rate limiter and the retry waits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

MonotonicClock = Callable[[], float]
"""Monotonic seconds (``time.monotonic`` in production)."""
Sleep = Callable[[float], Awaitable[None]]
"""Wait that many seconds (``asyncio.sleep`` in production)."""
