"""The simulator's clock: wall or fixed, always advanceable, injectable in tests.

Two time sources live here:

* ``now_us()``: the API's "server now" (token ``iat``/``exp``, booking lead time, timestamps),
  in integer microseconds since the epoch. Fixed clocks only move by ``advance``.
* ``monotonic()``: what the rate limiter measures elapsed time with. By default it is the
  process's monotonic clock plus everything advanced, so a fixed ``now`` does not starve the
  token buckets, and advancing the clock refills them. ``Clock.manual`` freezes it too, for
  tests that want exact ``X-RateLimit-*`` figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

US = 1_000_000


def parse_rfc3339(text: str) -> datetime:
    """An aware datetime from RFC 3339 text; a timestamp without offset is refused."""
    value = datetime.fromisoformat(text.replace("z", "Z"))
    if value.tzinfo is None:
        raise ValueError(f"timestamp without offset: {text!r}")
    return value


def to_us(value: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (exact, no float rounding)."""
    delta = value - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * US + delta.microseconds


def from_us(us: int) -> datetime:
    return datetime.fromtimestamp(us // US, UTC).replace(microsecond=us % US)


class Clock:
    """Server time. ``start=None`` follows the wall clock; otherwise time stands still at
    ``start`` until ``advance`` is called."""

    def __init__(
        self,
        start: datetime | None = None,
        *,
        monotonic: Callable[[], float] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._start_us = to_us(start) if start is not None else None
        self._wall = wall
        self._mono = monotonic or time.monotonic
        self._offset_us = 0

    @classmethod
    def from_config(cls, now: str | None) -> Clock:
        return cls(parse_rfc3339(now) if now else None)

    @classmethod
    def manual(cls, start: datetime) -> Clock:
        """A fully manual clock: both server time and the rate limiter's time move only by
        ``advance`` (exact rate-limit and expiry tests)."""
        return cls(start, monotonic=lambda: 0.0)

    @property
    def fixed(self) -> bool:
        return self._start_us is not None

    def now_us(self) -> int:
        if self._start_us is not None:
            return self._start_us + self._offset_us
        return int(self._wall() * US) + self._offset_us

    def now(self) -> datetime:
        return from_us(self.now_us())

    def monotonic(self) -> float:
        return self._mono() + self._offset_us / US

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        self._offset_us += round(seconds * US)

    def reset(self) -> None:
        """Back to the configured start (``/_sim/reset``)."""
        self._offset_us = 0
