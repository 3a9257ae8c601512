"""``extracted_at`` is never before ``updated_at``, even when the server's clock is ahead.

The demo moves the simulator's clock a day past the wall clock; bookings the simulator
updated "today" then carry an ``updated_at`` in our future. Stamped with our clock, they were
"extracted before they were updated" and the suites' warning fired. The client now reads the
server's time from the ``Date`` headers (``ServerClock``) and stamps pages with it when it is
ahead.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from sodtrack.client.clock import ServerClock
from sodtrack.contract.countries import get_country
from sodtrack.simulator.app import create_app

from .helpers import Env, extract_config, published_rows

WALL = datetime(2026, 12, 3, 12, 0, 0, 250_000, tzinfo=UTC)


class Times:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = WALL

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += timedelta(seconds=seconds)


def clock_of(times: Times) -> ServerClock:
    return ServerClock(lambda: times.mono, lambda: times.wall)


def test_without_a_date_header_it_is_our_clock() -> None:
    times = Times()
    clock = clock_of(times)
    clock.observe(None)
    clock.observe("not a date")
    clock.observe("Wed, 10 Jun 2026 16:00:00")  # no zone: not an HTTP date
    assert clock.now() == WALL
    assert not clock.ahead


def test_a_server_behind_or_level_changes_nothing() -> None:
    times = Times()
    clock = clock_of(times)
    clock.observe(format_datetime(WALL - timedelta(hours=3), usegmt=True))
    assert clock.now() == WALL
    clock.observe(format_datetime(WALL.replace(microsecond=0), usegmt=True))
    times.advance(0.5)
    assert clock.now() == times.wall
    assert not clock.ahead


def test_a_server_ahead_gives_its_time_plus_the_headers_resolution() -> None:
    times = Times()
    clock = clock_of(times)
    server = WALL.replace(microsecond=0) + timedelta(days=1)
    clock.observe(format_datetime(server, usegmt=True))
    assert clock.ahead
    assert clock.now() == server + timedelta(seconds=1)
    times.advance(2.5)  # time passes on both sides
    assert clock.now() == server + timedelta(seconds=3.5)


def test_bookings_of_a_server_a_day_ahead_are_not_extracted_before_their_update(
    tmp_path: Path,
) -> None:
    ahead = datetime.now(UTC) + timedelta(days=1)
    app = create_app(extract_config(now=ahead.isoformat(), rate_limit=0.0))
    env = Env(tmp_path, app)
    report = env.run()
    assert report.success
    rows = published_rows(env.warehouse.root, "bookings")
    assert rows
    newest = max(r["updated_at"] for r in rows)
    assert newest > datetime.now(UTC)  # the data is in our future: the case in point
    late = [r["id"] for r in rows if r["extracted_at"] < r["updated_at"]]
    assert late == []
    changes = published_rows(env.warehouse.root, "booking_changes")
    assert [r["id"] for r in changes if r["extracted_at"] < r["updated_at"]] == []
    assert not [w for w in report.warnings if "extracted_at" in w]


def test_catalog_and_coverage_of_a_server_a_day_ahead_are_stamped_by_its_clock(
    tmp_path: Path,
) -> None:
    """Snapshot rows are stamped on receipt like bookings: never before the server's time
    (a server a day ahead gave rows ``extracted_at`` a day before their own server's now)."""
    ahead = datetime.now(UTC) + timedelta(days=1)
    app = create_app(extract_config(now=ahead.isoformat(), rate_limit=0.0))
    env = Env(tmp_path, app)
    tz = get_country("cl").tz
    days = {datetime.now(tz).date().isoformat()}
    report = env.run("catalog", "coverage")
    days.add(datetime.now(tz).date().isoformat())
    assert report.success
    for dataset in (
        "categories",
        "services",
        "variants",
        "coverage_zones",
        "coverage_postal_codes",
    ):
        rows = published_rows(env.warehouse.root, dataset)
        assert rows, dataset
        stamps = {r["extracted_at"] for r in rows}
        assert min(stamps) >= ahead - timedelta(seconds=1), (dataset, min(stamps), ahead)
        assert max(stamps) <= ahead + timedelta(minutes=5), dataset
        # the snapshot is still the run's day by our calendar (what analysts query by)
        (day,) = {str(r["snapshot_date"]) for r in rows}
        assert day in days, (dataset, day, days)
