"""The bookings merge against a brute-force in-memory reference, on random histories."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodtrack.contract.models import Booking
from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.bookings import WORK_ROW_GROUP_ROWS, BookingsRun

from .factories import booking
from .helpers import delta_rows

BASE = datetime(2026, 1, 1, tzinfo=UTC)
# Starts straddling month ends in UTC (and one late local evening that is next month in UTC).
STARTS = [
    datetime(2026, 1, 31, 23, 30, tzinfo=UTC),
    datetime(2026, 2, 1, 0, 0, tzinfo=UTC),
    datetime(2026, 2, 14, 10, 0, tzinfo=UTC),
    datetime(2026, 3, 31, 22, 0, tzinfo=UTC),
    datetime(2026, 4, 1, 1, 0, tzinfo=UTC),
]


@dataclass(frozen=True)
class Rec:
    id: int
    minute: int
    start: int


records = st.builds(
    Rec,
    id=st.integers(0, 12),
    minute=st.integers(0, 6),  # few values: ties on updated_at happen
    start=st.integers(0, len(STARTS) - 1),
)
runs = st.lists(
    st.tuples(st.lists(records, max_size=18), st.booleans()),  # (records, full_refresh)
    min_size=1,
    max_size=4,
)


def _model(rec: Rec, run: int, pos: int) -> Booking:
    return booking(
        rec.id,
        start=STARTS[rec.start],
        updated=BASE + timedelta(minutes=rec.minute),
        notes=f"run{run}-pos{pos}",  # tells which of several equal versions won
        validate=False,
    )


def _published(wh: Warehouse, dataset: str, cols: str) -> list[tuple[Any, ...]]:
    return delta_rows(wh, dataset, cols)


def _check_history(
    root: Path, history: list[tuple[list[Rec], bool]], row_group_rows: int = WORK_ROW_GROUP_ROWS
) -> None:
    wh = Warehouse(root, durable=False)
    state: dict[str, tuple[datetime, str, datetime]] = {}  # id -> (updated_at, notes, start)
    log: list[tuple[str, datetime, str, str]] = []
    for run, (recs, full) in enumerate(history):
        run_id = f"run-{run}"
        models = [_model(r, run, pos) for pos, r in enumerate(recs)]
        nightly = BookingsRun(
            wh,
            "cl",
            run_id,
            extracted_at=BASE + timedelta(days=run),
            row_group_rows=row_group_rows,
        )
        for start in range(0, len(models), 5):  # pages of 5
            nightly.add_page(models[start : start + 5])
        result = nightly.finish(full_refresh=full)
        wh.publish("bookings", run_id)
        wh.publish("booking_changes", run_id)

        # brute force: newest wins, ties to the later arrival; full refresh starts over
        if full:
            state = {}
        seen: dict[tuple[str, datetime], str] = {}
        for m in models:
            assert m.notes is not None
            old = state.get(m.id)
            if old is None or m.updated_at >= old[0]:
                state[m.id] = (m.updated_at, m.notes, m.scheduled_start)
            seen[(m.id, m.updated_at)] = m.notes  # exact repeats: last one kept
        log += [(i, u, n, run_id) for (i, u), n in seen.items()]

        rows = _published(wh, "bookings", "id, updated_at, notes, scheduled_start, scheduled_month")
        assert [r[:4] for r in rows] == sorted((i, *v) for i, v in state.items())
        for r in rows:  # every booking sits in the month of its scheduled_start, in UTC
            assert r[4] == r[3].astimezone(UTC).strftime("%Y-%m")
        assert len({r[0] for r in rows}) == len(rows)
        changes = _published(wh, "booking_changes", "id, updated_at, notes, run_id")
        assert changes == sorted(log)

        assert result.received == len(models)
        assert result.distinct_ids == len({m.id for m in models})
        assert result.changes_written == len(seen)
        assert result.exact_repeats == len(models) - len(seen)
        assert result.bookings_total == len(state)
        version = wh.describe("bookings")
        assert version is not None
        assert version.total_rows == len(state)
        assert wh.history("bookings", 1)[0]["stats"]["bookings_total"] == len(state)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=runs, row_group_rows=st.sampled_from([2, 5, WORK_ROW_GROUP_ROWS]))
def test_merge_matches_brute_force(
    tmp_path_factory: pytest.TempPathFactory, history: Any, row_group_rows: int
) -> None:
    """Also with a work file of many tiny row groups: the changes log and the winners are
    read from it row group by row group."""
    _check_history(tmp_path_factory.mktemp("merge") / "wh", history, row_group_rows)


def test_reschedule_across_months_moves_the_booking_and_drops_emptied_month(
    tmp_path: Path,
) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False)
    t1 = BASE + timedelta(hours=1)
    first = BookingsRun(wh, "cl", "run-1", extracted_at=BASE)
    first.add_page([booking(1, start=STARTS[0], updated=BASE), booking(2, start=STARTS[2])])
    r1 = first.finish()
    assert r1.partitions_touched == (
        "country=cl/scheduled_month=2026-01",
        "country=cl/scheduled_month=2026-02",
    )
    wh.publish("bookings", "run-1")
    second = BookingsRun(wh, "cl", "run-2", extracted_at=t1)
    # booking 1 rescheduled from January to April, seen twice during the cursor walk
    second.add_page([booking(1, start=STARTS[3], updated=t1)])
    second.add_page([booking(1, start=STARTS[4], updated=t1 + timedelta(minutes=1))])
    r2 = second.finish(watermark_before=BASE)
    assert r2.partitions_touched == (
        "country=cl/scheduled_month=2026-01",
        "country=cl/scheduled_month=2026-04",
    )
    assert r2.partitions_removed == ("country=cl/scheduled_month=2026-01",)
    assert (r2.moved_ids, r2.new_ids, r2.superseded, r2.deduplicated) == (1, 0, 1, 1)
    assert r2.watermark_after == t1 + timedelta(minutes=1)
    m = wh.publish("bookings", "run-2")
    assert m.rows_per_partition == {
        "country=cl/scheduled_month=2026-02": 1,
        "country=cl/scheduled_month=2026-04": 1,
    }
    commit = wh.history("bookings", 1)[0]
    assert "country=cl/scheduled_month=2026-01" in commit["replaced"]
    # the watermark never moves back: the newer of run-1's and run-2's
    first = wh.history("bookings")[-1]["watermark_after"]
    assert commit["watermark_after"] == max(first, (t1 + timedelta(minutes=1)).isoformat())
    assert commit["stats"]["moved_ids"] == 1
    # the February file was carried over, not rewritten: the same file in both versions
    before, after = wh.table("bookings", 0), wh.table("bookings")
    assert before is not None
    assert after is not None
    feb = {u for u in after.file_uris() if "scheduled_month=2026-02" in u}
    assert len(feb) == 1
    assert feb <= set(before.file_uris())


def test_a_replayed_older_version_does_not_win(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False)
    new, old = BASE + timedelta(hours=2), BASE + timedelta(hours=1)
    run = BookingsRun(wh, "cl", "run-1", extracted_at=BASE)
    run.add_page([booking(1, start=STARTS[2], updated=new, notes="new")])
    run.finish()
    wh.publish("bookings", "run-1")
    replay = BookingsRun(wh, "cl", "run-2", extracted_at=BASE)
    replay.add_page([booking(1, start=STARTS[0], updated=old, notes="old")])
    result = replay.finish()
    assert result.stale_ignored == 1
    assert result.partitions_touched == ()
    wh.publish("bookings", "run-2")
    assert _published(wh, "bookings", "notes, scheduled_month") == [("new", "2026-02")]


def test_full_refresh_rebuilds_only_its_country(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False)
    for country, run_id in (("cl", "a"), ("pe", "b")):
        run = BookingsRun(wh, country, run_id, extracted_at=BASE)
        run.add_page([booking(f"{country}_{i}", start=STARTS[i]) for i in range(4)])
        run.finish()
        wh.publish("bookings", run_id)
    run = BookingsRun(wh, "cl", "c", extracted_at=BASE + timedelta(days=1))
    run.add_page([booking("cl_9", start=STARTS[4])])
    result = run.finish(full_refresh=True)
    assert result.full_refresh
    assert result.new_ids == 1
    assert result.bookings_total == 1
    m = wh.publish("bookings", "c")
    assert sorted(r[0] for r in _published(wh, "bookings", "id")) == [
        "cl_9",
        "pe_0",
        "pe_1",
        "pe_2",
        "pe_3",
    ]
    assert not any(
        k.startswith("country=cl/") and k != "country=cl/scheduled_month=2026-04"
        for k in m.rows_per_partition
    )
    assert wh.history("bookings", 1)[0]["replace_scope"] == {"country": "cl"}


def test_empty_run_still_stages_and_publishes(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False)
    result = BookingsRun(wh, "cl", "run-1", extracted_at=BASE).finish()
    assert (result.received, result.watermark_after, result.partitions_touched) == (0, None, ())
    assert wh.publish("bookings", "run-1").total_rows == 0
    # an empty partition holds no file in a Delta table: nothing to count
    assert wh.publish("booking_changes", "run-1").rows_per_partition == {}
    assert wh.current_version("booking_changes") == "0"


async def test_consume_async_pages(tmp_path: Path) -> None:
    wh = Warehouse(tmp_path / "wh", durable=False)

    async def pages() -> Any:
        for i in range(3):
            yield [booking(i), booking(i + 10)]

    run = BookingsRun(wh, "cl", "run-1", extracted_at=BASE)
    await run.consume(pages())
    later = BASE + timedelta(minutes=7)
    run.add_page([booking(99)], received_at=later)  # extracted_at = when the page came
    assert run.finish().distinct_ids == 7
    wh.publish("bookings", "run-1")
    rows = dict(_published(wh, "bookings", "id, extracted_at"))
    assert rows[booking(99).id] == later
    assert rows[booking(1).id] == BASE


@pytest.mark.parametrize("seed", range(4))
def test_the_changes_log_keeps_arrival_order(tmp_path: Path, seed: int) -> None:
    """The staged changes log is in arrival order, exact repeats dropped (the last received
    kept), across the work file's row groups: DuckDB keeps no insertion order, the log's
    order comes from the work file (a seeded corpus of repeats and ties)."""
    import random

    import pyarrow.parquet as pq

    rng = random.Random(seed)
    recs = [
        Rec(rng.randrange(40), rng.randrange(4), rng.randrange(len(STARTS))) for _ in range(300)
    ]
    models = [_model(r, 0, pos) for pos, r in enumerate(recs)]
    wh = Warehouse(tmp_path / "wh", durable=False)
    run = BookingsRun(wh, "cl", "run-0", extracted_at=BASE, row_group_rows=7)
    for start in range(0, len(models), 11):
        run.add_page(models[start : start + 11])
    run.finish()
    last_of: dict[tuple[str, datetime], int] = {}
    for pos, m in enumerate(models):
        last_of[(m.id, m.updated_at)] = pos
    expected = [m.notes for pos, m in enumerate(models) if last_of[(m.id, m.updated_at)] == pos]
    staged = [
        note
        for path in wh.staged_files("booking_changes", "run-0")
        for note in pq.read_table(path, columns=["notes"]).column("notes").to_pylist()
    ]
    assert len(expected) < len(models)  # the corpus has exact repeats
    assert staged == expected
