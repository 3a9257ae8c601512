"""The slot calendar of a country: where a booking may start.

Slots start every hour from ``SLOT_FIRST_HOUR`` to ``SLOT_LAST_HOUR`` local time on the
``SLOT_WEEKDAYS`` (``sodtrack.contract.limits``). Starts are held as integer epoch seconds;
each local date's starts are computed once (through ``zoneinfo``, so daylight-saving changes
are right) and cached.
"""

from __future__ import annotations

import bisect
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sodtrack.contract.limits import SLOT_FIRST_HOUR, SLOT_LAST_HOUR, SLOT_WEEKDAYS


class SlotCalendar:
    def __init__(self, time_zone: ZoneInfo) -> None:
        self.tz = time_zone
        self._days: dict[int, list[int]] = {}
        self._flat: list[int] = []

    def prepare(self, from_s: int, to_s: int) -> None:
        """Precompute every slot start in [from_s, to_s] into one sorted list, so that
        ``next_start`` inside that window is a single bisect (seeding's hot path)."""
        day = self.local_date(from_s)
        last = self.local_date(to_s)
        flat: list[int] = []
        while day <= last:
            flat.extend(self.starts_on(day))
            day += timedelta(days=1)
        self._flat = flat

    def local_date(self, epoch_s: int) -> date:
        return datetime.fromtimestamp(epoch_s, UTC).astimezone(self.tz).date()

    def starts_on(self, day: date) -> list[int]:
        """Slot starts (epoch seconds, ascending) of a local calendar date."""
        key = day.toordinal()
        starts = self._days.get(key)
        if starts is None:
            starts = []
            if day.weekday() in SLOT_WEEKDAYS:
                for hour in range(SLOT_FIRST_HOUR, SLOT_LAST_HOUR + 1):
                    local = datetime(day.year, day.month, day.day, hour, tzinfo=self.tz)
                    starts.append(int(local.timestamp()))
            self._days[key] = starts
        return starts

    def is_slot_start(self, epoch_s: int) -> bool:
        return epoch_s in self.starts_on(self.local_date(epoch_s))

    def next_start(self, epoch_s: int) -> int:
        """The first slot start at or after ``epoch_s``."""
        flat = self._flat
        if flat and flat[0] <= epoch_s:
            pos = bisect.bisect_left(flat, epoch_s)
            if pos < len(flat):
                return flat[pos]
        day = self.local_date(epoch_s)
        while True:
            starts = self.starts_on(day)
            pos = bisect.bisect_left(starts, epoch_s)
            if pos < len(starts):
                return starts[pos]
            day += timedelta(days=1)
