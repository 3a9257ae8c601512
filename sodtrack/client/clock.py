"""The client's injected time: a monotonic clock and an async sleep, so that tests (and the
simulator's virtual time) can drive token expiry, the rate limiter and the retry waits; and
:class:`ServerClock`, the server's time from its ``Date`` headers (extraction stamps)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

MonotonicClock = Callable[[], float]
"""Monotonic seconds (``time.monotonic`` in production)."""
Sleep = Callable[[float], Awaitable[None]]
"""Wait that many seconds (``asyncio.sleep`` in production)."""


class ServerClock:
    """The time of the server, as the ``Date`` headers of its answers tell it.

    Data stamped "extracted at" must not be older than what it holds: a record the server
    updated at its 10:00:00.4 is not extracted at 09:59 because the client's clock is late
    (or the server's, a simulator's, is ahead). :meth:`now` is the local wall clock, unless
    the last ``Date`` seen (plus the time since it arrived) is already past it: then the
    server's time, plus the second the header's resolution drops (the answer was made at
    or after ``Date`` and before ``Date + 1 s``). A server behind us changes nothing.
    """

    def __init__(
        self,
        monotonic: MonotonicClock,
        wall: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._mono = monotonic
        self._wall = wall
        self._date: datetime | None = None
        self._seen_at = 0.0

    def observe(self, date_header: str | None) -> None:
        """Note an answer's ``Date`` (an unreadable or missing one is ignored)."""
        if not date_header:
            return
        try:
            date = parsedate_to_datetime(date_header)
        except (TypeError, ValueError, IndexError):
            return
        if date.tzinfo is None:
            return
        self._date = date.astimezone(UTC)
        self._seen_at = self._mono()

    @property
    def ahead(self) -> bool:
        """Whether the server's clock is known to be ahead of ours (by the last ``Date``)."""
        server = self._server_low()
        return server is not None and server > self._wall()

    def _server_low(self) -> datetime | None:
        if self._date is None:
            return None
        return self._date + timedelta(seconds=self._mono() - self._seen_at)

    def now(self) -> datetime:
        """Now (UTC), never behind the server's clock as last seen (see the class doc)."""
        local = self._wall()
        server = self._server_low()
        if server is None or server <= local:
            return local
        return server + timedelta(seconds=1)
