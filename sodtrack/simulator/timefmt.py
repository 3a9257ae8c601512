"""Fast rendering of integer-microsecond timestamps in the API's output format.

``sodtrack.contract.models.format_timestamp`` is the definition; seeding 200,000 bookings
renders ~600,000 timestamps, so this module computes the same text from integers with a
per-day cache (a test keeps the two equal).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sodtrack.contract.models import format_timestamp

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HOURS: dict[int, str] = {}


def ts(us: int) -> str:
    """Same text as ``format_timestamp(from_us(us))``: ``2026-12-03T13:00:00.000000Z``."""
    sec, frac = divmod(us, 1_000_000)
    hour = sec // 3600
    prefix = _HOURS.get(hour)
    if prefix is None:
        prefix = _HOURS[hour] = (_EPOCH + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:")
    rest = sec - hour * 3600
    return f"{prefix}{rest // 60:02d}:{rest % 60:02d}.{frac:06d}Z"


def ts_dt(value: datetime) -> str:
    return format_timestamp(value)
