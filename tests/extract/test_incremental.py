"""After any sequence of runs with the simulator's clock advanced between them, the published
``bookings`` equal the simulator's bookings exactly; ``booking_changes`` holds every version.

One scenario (a module fixture) records what each run did; the tests check properties of
that history:

0. a full run of every family (the session's ``published`` run, continued from a copy);
1. +6 h (bookings progress), incremental;
2. +2 days, two bookings rescheduled into another month and one cancelled through the API,
   incremental;
3. +3 days, incremental, while a booking already walked is updated *during* the walk (it
   comes back behind the cursor) and the clock moves on mid-walk;
4. +1 day, ``--full-refresh``.

The walks run with small pages (``limit`` capped by the transport), so every run spans
several pages and the lookback overlap re-reads the end of the previous run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from sodtrack.client import Credentials, SodtrackClient
from sodtrack.contract import models as m
from sodtrack.extract import RunReport
from sodtrack.simulator.testing import SimulatorTransport

from .conftest import Published
from .helpers import (
    COUNTRY,
    Env,
    HookTransport,
    assert_bookings_equal,
    is_list,
    json_of,
    json_response,
    published_bookings,
    published_rows,
    sim_bookings,
    wire_row,
)

MID_WALK_NOTES = "changed while the nightly walk was running"

# The modules continuing from the shared first run: one worker, one run (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("extract-published")


@dataclass
class Step:
    name: str
    report: RunReport
    before: dict[str, dict[str, Any]]
    """The simulator's bookings when the run started."""
    after: dict[str, dict[str, Any]]
    """... and when it ended."""
    published: dict[str, dict[str, Any]]
    watermark_before: datetime | None
    watermark_after: datetime | None
    watermarks_while_publishing: list[datetime | None]
    notes: dict[str, Any] = field(default_factory=dict)


def _client(env: Env) -> SodtrackClient:
    http = httpx.AsyncClient(transport=SimulatorTransport(env.app))
    return SodtrackClient(
        http,
        base_url="http://sim.test",
        country=COUNTRY,
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        owns_http=True,
    )


async def _reschedule_and_cancel(env: Env, moves: int) -> dict[str, Any]:
    """Reschedule ``moves`` scheduled bookings into the next month (a free slot found with
    the availability endpoint) and cancel one more, through the API."""
    now = datetime.fromisoformat(env.sim.format_us(env.sim.clock.now_us()))
    first_of_next = (now.replace(day=1) + timedelta(days=32)).replace(day=1)
    moved: dict[str, tuple[str, str]] = {}
    cancelled = None
    async with _client(env) as client:
        candidates = [
            b
            for b in await client.collect_bookings(status=m.BookingStatus.SCHEDULED)
            if b.scheduled_start > now + timedelta(hours=3)
            and b.scheduled_start.astimezone(UTC).month != first_of_next.month
        ]
        for booking in candidates:
            if len(moved) == moves:
                break
            day = first_of_next.date() + timedelta(days=5)
            slots = await client.get_availability(
                booking.service_id,
                booking.address.postal_code,
                day,
                day + timedelta(days=6),
                variant_id=booking.variant_id,
            )
            free = [s for s in slots.data if s.capacity > 0]
            if not free:
                continue
            updated = await client.update_booking(
                booking.id, m.BookingUpdate(scheduled_start=free[0].start)
            )
            old = booking.scheduled_start.astimezone(UTC).strftime("%Y-%m")
            new = updated.scheduled_start.astimezone(UTC).strftime("%Y-%m")
            assert old != new
            moved[booking.id] = (old, new)
        assert len(moved) == moves, "no free slots to reschedule into"
        rest = [b for b in candidates if b.id not in moved]
        cancelled = (await client.cancel_booking(rest[0].id, "Customer moved away")).id
    return {"moved": moved, "cancelled": cancelled}


def _mid_walk_hook(env: Env, seen: dict[str, Any]) -> Any:
    """After the first page of the bookings walk: update a booking that page held (through
    the API, with the walk's own token) and let the world move on half an hour."""

    async def hook(
        request: httpx.Request, response: httpx.Response, transport: HookTransport
    ) -> httpx.Response:
        if seen or not is_list(request, "bookings"):
            return response
        page = await json_of(response)
        assert page["next_cursor"] is not None, "the walk must span several pages"
        target = page["data"][0]
        seen["before"] = target
        patch = httpx.Request(
            "PATCH",
            request.url.copy_with(path=f"/api/v1/bookings/{target['id']}", query=b""),
            headers={"authorization": request.headers["authorization"]},
            json={"notes": MID_WALK_NOTES},
        )
        patched = await transport.inner.handle_async_request(patch)
        assert patched.status_code == 200, (await patched.aread())[:300]
        seen["after"] = await json_of(patched)
        env.sim.advance(1800)
        return json_response(response, page)

    return hook


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, published: Published) -> list[Step]:
    env = published.copy(tmp_path_factory.mktemp("sequence") / "env", max_limit=200)
    watermarks: list[datetime | None] = []

    def on_step(name: str) -> None:
        if name == "publish:checked":  # each dataset's commit is about to be made
            watermarks.append(env.watermark())

    env.on_step = on_step
    steps = [
        Step(
            "full",
            published.report,
            published.sim_before,
            published.sim_after,
            published.bookings,
            None,
            published.watermark,
            published.watermarks_while_publishing,
        )
    ]

    def run(name: str, *datasets: str, full_refresh: bool = False, **notes: Any) -> None:
        watermarks.clear()
        before, wm_before = sim_bookings(env.app), env.watermark()
        report = env.run(*datasets, full_refresh=full_refresh)
        steps.append(
            Step(
                name,
                report,
                before,
                sim_bookings(env.app),
                published_bookings(env.warehouse.root),
                wm_before,
                env.watermark(),
                list(watermarks),
                notes,
            )
        )

    env.sim.advance(6 * 3600)
    run("+6h", "bookings")
    env.sim.advance(2 * 86400)
    changes = asyncio.run(_reschedule_and_cancel(env, moves=2))
    run("+2d, rescheduled and cancelled", "bookings", **changes)
    env.sim.advance(3 * 86400)
    seen: dict[str, Any] = {}
    env.hook, env.max_limit = _mid_walk_hook(env, seen), 5
    run("+3d, updated during the walk", "bookings", mid_walk=seen)
    env.hook, env.max_limit = None, 200
    env.sim.advance(86400)
    run("+1d, full refresh", "bookings", full_refresh=True)
    for step in steps:
        step.notes["root"] = env.warehouse.root
    return steps


def test_every_run_publishes(history: list[Step]) -> None:
    for step in history:
        problems = [(f.family, f.status, f.error) for f in step.report.families]
        assert step.report.success, (step.name, problems)


def test_published_bookings_equal_the_simulator_after_every_run(history: list[Step]) -> None:
    for step in history:
        assert step.after, step.name
        assert_bookings_equal(step.published, step.after)


def test_the_scenario_changed_bookings(history: list[Step]) -> None:
    """The premise: runs saw progressions, arrivals, reschedules, cancellations."""
    first, last = history[0].after, history[-1].after
    assert len(last) > len(first), "new bookings arrived"
    statuses_changed = sum(1 for b, r in first.items() if last[b]["status"] != r["status"])
    assert statuses_changed >= 5
    for step in history[1:4]:
        bookings = {d.dataset: d for d in step.report.datasets()}["bookings"]
        assert bookings.received > 0, step.name
    # The lookback overlap re-reads the end of the previous run: repeats were dropped.
    assert any(
        {d.dataset: d for d in s.report.datasets()}["bookings"].deduplicated > 0
        for s in history[1:4]
    )


def test_rescheduled_bookings_moved_partition(history: list[Step]) -> None:
    step = history[2]
    moved: dict[str, tuple[str, str]] = step.notes["moved"]
    root = history[-1].notes["root"]
    for bid, (old, new) in moved.items():
        assert step.published[bid]["scheduled_start"].astimezone(UTC).strftime("%Y-%m") == new
        rows = published_rows(root, "bookings", f"id = '{bid}'")
        assert [r["scheduled_month"] for r in rows] == [new], old
    cancelled = step.notes["cancelled"]
    assert step.published[cancelled]["status"] == "cancelled"
    assert step.published[cancelled]["cancelled_reason"] == "Customer moved away"


def test_a_record_updated_during_the_walk_keeps_its_newest_version(history: list[Step]) -> None:
    step = history[3]
    seen = step.notes["mid_walk"]
    bid = seen["before"]["id"]
    assert seen["after"]["updated_at"] > seen["before"]["updated_at"]
    assert step.published[bid] == wire_row(seen["after"])
    assert step.published[bid]["notes"] == MID_WALK_NOTES
    bookings = {d.dataset: d for d in step.report.datasets()}["bookings"]
    assert bookings.pages > 2
    # Both versions were received; one row came of them.
    assert bookings.deduplicated >= 1
    versions = published_rows(history[-1].notes["root"], "booking_changes", f"id = '{bid}'")
    stamps = {r["updated_at"] for r in versions if r["run_id"] == step.report.run_id + "-cl"}
    assert {wire_row(seen["before"])["updated_at"], wire_row(seen["after"])["updated_at"]} <= stamps


def test_booking_changes_holds_every_version(history: list[Step]) -> None:
    root = history[-1].notes["root"]
    known: dict[tuple[str, datetime], dict[str, Any]] = {}
    for step in history:
        for snapshot in (step.before, step.after):
            for row in snapshot.values():
                known[(row["id"], row["updated_at"])] = row
    rows = published_rows(root, "booking_changes", f"country = '{COUNTRY}'")
    stored: dict[tuple[str, datetime], dict[str, Any]] = {}
    for row in rows:
        key = (row["id"], row["updated_at"])
        assert key in known, f"{key} was never a version of the booking"
        want = known[key]
        got = {c: row[c] for c in want}
        assert got == want, key
        stored[key] = row
    # every version current at the end of a run was extracted (by that run or an earlier one)
    for step in history:
        for row in step.after.values():
            assert (row["id"], row["updated_at"]) in stored, (step.name, row["id"])
    # each run's versions are under its run id, without exact repeats within a run
    runs = {r["run_id"] for r in rows}
    assert runs == {s.report.run_id + "-cl" for s in history}
    per_run = [(r["run_id"], r["id"], r["updated_at"]) for r in rows]
    assert len(per_run) == len(set(per_run))


def test_the_watermark_advances_only_after_publishing(history: list[Step]) -> None:
    for step in history:
        family = step.report.families[-1]
        assert family.family == "bookings"
        # Until the last of the two commits, the watermark in force had not moved: it moves
        # with the data (the older of the two tables' commits).
        assert step.watermarks_while_publishing, step.name
        assert set(step.watermarks_while_publishing) == {step.watermark_before}, step.name
        newest = max(r["updated_at"] for r in step.after.values())
        assert step.watermark_after == newest, step.name
        assert family.watermark_after == newest.isoformat()
        before = step.watermark_before.isoformat() if step.watermark_before else None
        assert family.watermark_before == (None if step.report.full_refresh else before)


def test_full_refresh_gives_the_same_result(history: list[Step]) -> None:
    incremental, refreshed = history[-2], history[-1]
    assert refreshed.report.full_refresh
    bookings = {d.dataset: d for d in refreshed.report.datasets()}["bookings"]
    assert bookings.received >= len(refreshed.after)  # everything re-read
    assert bookings.rows_total == len(refreshed.after)
    # what changed in between (one day of the world) is all that differs
    same = {
        b: r
        for b, r in incremental.published.items()
        if refreshed.after[b]["updated_at"] == incremental.after[b]["updated_at"]
    }
    assert len(same) > len(refreshed.after) * 0.9
    for bid, row in same.items():
        assert refreshed.published[bid] == row
