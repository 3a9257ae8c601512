"""Data and watermark cannot diverge (issue 10, item 9; issue 13: the watermark in the commit).

The bookings watermark lives in the commits of the Delta tables, beside the data it was
extracted to; the state store keeps locks and run history only, so a warehouse moved, rebuilt
or restored carries its own watermark. What must hold:

* a warehouse with no published bookings of the country is extracted in **full**, whatever
  state database runs beside it;
* a warehouse restored from an older backup reads from that backup's own watermark;
* ``bookings`` never shrinks without the gate blocking it: a critical expectation against the
  published row count quarantines the family, the previous version stays current.

One small simulator of this module's own (its clock does not move during the cases), two
snapshots of (warehouse, state store): ``backup`` after a first full run, ``current`` after
an incremental run a day later; the simulator then moves on another day. Every case builds
its (warehouse, state) pair from those, runs the real extraction, and compares the published
bookings with the simulator's, read independently (DuckDB, the simulator's export).
"""

from __future__ import annotations

import asyncio
import json
import random
import shutil
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from pydantic import SecretStr
from starlette.applications import Starlette

from sodtrack.client import Credentials, SodtrackClient
from sodtrack.contract import models as m
from sodtrack.extract import FamilyRun, RunReport, gate
from sodtrack.extract.report import DatasetRun
from sodtrack.extract.runner import (
    DEFAULT_LOOKBACK,
    plan_bookings_read,
    with_published_references,
)
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import SimulatorTransport
from sodtrack.validation import ValidationSession
from sodtrack.warehouse import DATASETS, Warehouse

from .helpers import (
    COUNTRY,
    Env,
    HookTransport,
    assert_bookings_equal,
    count,
    duck,
    extract_config,
    is_list,
    json_of,
    json_response,
    published_bookings,
    read_sql,
    sim_bookings,
)

SEED = 20261203

# One module fixture (two extractions) shared by every case: one worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("extract-divergence")
WAREHOUSES = ("current", "backup", "none")
"""The warehouse a case starts from: the latest published data, an older copy of it, none."""
STATES = ("current", "backup", "none")
"""The state store a case starts from: the latest, an older copy, none, one whose watermark
is ahead of every published booking (e.g. a state database of another warehouse)."""


@dataclass(frozen=True)
class World:
    app: Starlette
    snapshots: dict[str, Path]
    """``backup`` and ``current``: roots holding ``warehouse/`` and ``state.db``."""
    base: Path


def _bookings_family(report: RunReport) -> FamilyRun:
    (fam,) = [f for f in report.families if f.family == "bookings"]
    return fam


def _newest_published(root: str | Path) -> datetime | None:
    """The newest ``updated_at`` of the published bookings (Delta → DuckDB, not our code)."""
    if not Path(root, "bookings", "_delta_log").exists():
        return None
    with duck() as con:
        sql = f"SELECT max(updated_at) FROM {read_sql(root, 'bookings')} WHERE country = ?"  # noqa: S608
        value = con.execute(sql, [COUNTRY]).fetchall()[0][0]
    return value.astimezone(UTC) if value is not None else None


def _newest_in_simulator(app: Starlette) -> datetime:
    newest: datetime = max(r["updated_at"] for r in sim_bookings(app).values())
    return newest


async def _change_bookings(env: Env, rng: random.Random, n: int) -> list[str]:
    """Change ``n`` scheduled bookings through the API, three hours apart (the small
    simulator's own activity is a few bookings a day): changes for the next run to read."""
    http = httpx.AsyncClient(transport=SimulatorTransport(env.app))
    changed = []
    async with SodtrackClient(
        http,
        base_url="http://sim.test",
        country=COUNTRY,
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        owns_http=True,
    ) as client:
        scheduled = await client.collect_bookings(status=m.BookingStatus.SCHEDULED)
        assert len(scheduled) >= n, "the simulator has too few bookings to change"
        for booking in rng.sample(scheduled, n):
            env.sim.advance(3 * 3600)
            note = f"changed by the divergence test {rng.randrange(10**9)}"
            await client.update_booking(booking.id, m.BookingUpdate(notes=note))
            changed.append(booking.id)
    return changed


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("divergence")
    app = create_app(extract_config(bookings=240))
    env = Env(base / "live", app, max_limit=60)
    first = env.run()
    assert first.success
    snapshots = {"backup": base / "backup"}
    shutil.copytree(env.root, snapshots["backup"], symlinks=True)
    rng = random.Random(SEED)
    env.sim.advance(86400)
    changed = asyncio.run(_change_bookings(env, rng, 2))  # what the backup lacks ...
    second = env.run("bookings")
    assert second.success
    assert _bookings_family(second).watermark_before is not None  # incremental
    # ... and some of it older than the new watermark's lookback: a run from the state's
    # watermark over the backup misses it (the premise of the backup-* cases)
    watermark = env.watermark()
    assert watermark is not None
    now = sim_bookings(app)
    assert any(now[b]["updated_at"] < watermark - DEFAULT_LOOKBACK for b in changed)
    snapshots["current"] = base / "current"
    shutil.copytree(env.root, snapshots["current"], symlinks=True)
    env.sim.advance(86400)
    asyncio.run(_change_bookings(env, rng, 1))  # the world moves on: changes for every case
    return World(app, snapshots, base)


def _compose(world: World, name: str, warehouse: str, state: str, rng: random.Random) -> Env:
    """A root holding the chosen warehouse and state store (copies)."""
    root = world.base / "cases" / name
    root.mkdir(parents=True)
    if warehouse != "none":
        shutil.copytree(world.snapshots[warehouse] / "warehouse", root / "warehouse", symlinks=True)
    if state in ("current", "backup"):
        shutil.copy2(world.snapshots[state] / "state.db", root / "state.db")
    return Env(root, world.app, max_limit=60)


# ---------------------------------------------------------------- the reproduction


def test_a_new_warehouse_with_an_old_state_store_is_extracted_in_full(world: World) -> None:
    """The issue's reproduction: delete the warehouse, keep the state database, run again."""
    rng = random.Random(SEED)
    env = _compose(world, "repro", "none", "current", rng)
    assert env.watermark() is None  # a new warehouse: no commit, no watermark
    assert _newest_published(env.warehouse.root) is None

    report = env.run()

    assert report.success, [(f.family, f.status, f.error) for f in report.families]
    expected = sim_bookings(world.app)
    assert len(expected) >= 240
    assert_bookings_equal(published_bookings(env.warehouse.root), expected)
    fam = _bookings_family(report)
    assert fam.full
    assert fam.watermark_before is None
    written = json.loads(Path(str(report.report_path)).read_text())
    (wfam,) = [f for f in written["families"] if f["family"] == "bookings"]
    assert wfam["full"] is True
    assert wfam["notes"] == fam.notes
    bookings = {d.dataset: d for d in fam.datasets}["bookings"]
    assert bookings.rows_total == len(expected)
    assert env.watermark() == _newest_in_simulator(world.app)


# ---------------------------------------------------------------- the corpus


CASES = [(w, s) for w in WAREHOUSES for s in STATES]


@pytest.mark.parametrize(("warehouse", "state"), CASES, ids=[f"{w}-{s}" for w, s in CASES])
def test_any_warehouse_with_any_state_store_publishes_every_booking(
    world: World, warehouse: str, state: str
) -> None:
    rng = random.Random(f"{SEED}-{warehouse}-{state}")
    env = _compose(world, f"{warehouse}-{state}", warehouse, state, rng)
    stored = env.watermark()  # the warehouse's own, from its commits
    newest = _newest_published(env.warehouse.root)
    before_rows = count(env.warehouse.root, "bookings") if newest is not None else 0
    # The oracle: full without published data; else the watermark the data was extracted
    # to, which is never ahead of the data's newest stamp.
    full = newest is None
    expected_start = None if full else stored
    if stored is not None:
        assert newest is not None
        assert stored <= newest

    report = env.run(*(() if warehouse == "none" else ("bookings",)))

    assert report.success, [(f.family, f.status, f.error) for f in report.families]
    expected = sim_bookings(world.app)
    published = published_bookings(env.warehouse.root)
    assert_bookings_equal(published, expected)
    assert len(published) >= before_rows
    fam = _bookings_family(report)
    assert fam.full is full
    assert fam.watermark_before == (expected_start.isoformat() if expected_start else None)
    assert not fam.notes, fam.notes
    assert {d.dataset: d for d in fam.datasets}["bookings"].rows_total == len(expected)
    assert env.watermark() == _newest_in_simulator(world.app)
    if warehouse != "none":
        return
    # after a forced full run, the next one (nothing changed) is incremental again
    again = env.run("bookings")
    assert again.success
    assert not _bookings_family(again).full
    assert not _bookings_family(again).notes
    assert_bookings_equal(published_bookings(env.warehouse.root), expected)


# ---------------------------------------------------------------- the bookings never shrink


def _current_state(env: Env) -> tuple[str | None, int, datetime | None]:
    return (
        env.warehouse.current_version("bookings"),
        count(env.warehouse.root, "bookings"),
        env.watermark(),
    )


def test_a_full_refresh_that_receives_fewer_bookings_is_quarantined(world: World) -> None:
    """A server that silently answers fewer bookings (a cursor walk announces no total): the
    full refresh would publish a smaller dataset. The published-count floor blocks it."""
    env = _compose(world, "shrink-full", "current", "current", random.Random(SEED))
    before = _current_state(env)
    dropped: list[str] = []

    async def drop_every_third(
        request: httpx.Request, response: httpx.Response, transport: HookTransport
    ) -> httpx.Response:
        if not is_list(request, "bookings") or response.status_code != 200:
            return response
        page = await json_of(response)
        kept: list[dict[str, Any]] = []
        for i, item in enumerate(page["data"]):
            if i % 3 == 0:
                dropped.append(item["id"])
            else:
                kept.append(item)
        return json_response(response, {**page, "data": kept})

    env.hook = drop_every_third
    report = env.run("bookings", full_refresh=True)
    env.hook = None

    assert dropped
    fam = _bookings_family(report)
    assert fam.status == "quarantined", (fam.status, fam.error)
    assert any("published_row_count" in c for c in fam.critical_failures), fam.critical_failures
    assert _current_state(env) == before
    quarantined = Path(env.warehouse.root, "_quarantine", "bookings", f"{report.run_id}-cl")
    data = json.loads((quarantined / "validation_report.json").read_text())
    floor = [
        r
        for r in data["validation"]["bookings"]["results"]
        if "published_row_count" in r["parameters"]
    ]
    assert [r["success"] for r in floor] == [False]
    assert data["validation"]["bookings"]["parameters"]["published_row_count"] == before[1]


def _craft_staging(
    wh: Warehouse, run_id: str, rng: random.Random, *, shrink: bool
) -> tuple[int, int, dict[str, int]]:
    """Stage an incremental ``bookings`` run by hand: one to three published months rewritten
    with some of their rows gone and some new bookings, fewer rows in all than they had when
    ``shrink`` (else as many or more, the boundary included). Returns (removed, added, the
    staged rows per month)."""
    current = wh.read_current("bookings").to_table(filter=pc.field("country") == COUNTRY)
    sizes = Counter(current["scheduled_month"].to_pylist())
    chosen = rng.sample(sorted(sizes), k=min(len(sizes), rng.randint(1, 3)))
    chosen.sort(key=lambda m: -sizes[m])  # the biggest month balances the others, last
    plan: dict[str, tuple[int, int]] = {}
    for month in chosen[1:]:
        plan[month] = (rng.randint(0, min(2, sizes[month])), rng.randint(0, 2))
    balance = sum(a - d for d, a in plan.values())  # added - removed so far
    first = chosen[0]
    if shrink:
        add = rng.randint(0, 2)
        drop = min(sizes[first], max(0, balance + add + 1) + rng.randint(0, 1))
        add = min(add, drop - balance - 1)
    else:
        drop = rng.randint(0, min(2, sizes[first]))
        add = max(0, drop - balance) + rng.randint(0, 2)
    plan[first] = (drop, max(add, 0))
    columns = DATASETS["bookings"].schema.names
    version = wh.current_version("bookings")
    staged: dict[str, int] = {}
    with wh.stage("bookings", run_id, base_version=version) as out:
        for month, (drop, add) in plan.items():
            rows = current.filter(pc.equal(current["scheduled_month"], month)).select(columns)
            keep = sorted(rng.sample(range(rows.num_rows), rows.num_rows - drop))
            kept = rows.take(pa.array(keep, type=pa.int64()))
            extra = rows.take(pa.array([i % rows.num_rows for i in range(add)], pa.int64()))
            for column, prefix in (("id", "bk_crafted"), ("external_reference", "CRAFT")):
                values = pa.array([f"{prefix}-{run_id}-{month}-{i}" for i in range(add)])
                extra = extra.set_column(extra.schema.get_field_index(column), column, values)
            partition = {"country": COUNTRY, "scheduled_month": month}
            out.replace([partition])
            out.write_table(kept, partition)
            out.write_table(extra, partition)
            staged[month] = kept.num_rows + extra.num_rows
        out.finish(finished_at=datetime.now(UTC))
    removed = sum(d for d, _ in plan.values())
    added = sum(a for _, a in plan.values())
    assert (removed > added) is shrink, plan
    return removed, added, staged


SHRINK_CASES = 6


@pytest.mark.parametrize("case", range(SHRINK_CASES))
def test_an_incremental_staging_with_fewer_rows_than_it_replaces_is_quarantined(
    world: World, case: int
) -> None:
    """A crafted warehouse: an incremental staging rewrites a few published months with some
    bookings gone and some new ones. The gate publishes it exactly when the dataset does not
    shrink (new rows >= published rows), else quarantines it and keeps the current version."""
    rng = random.Random(f"{SEED}-shrink-{case}")
    env = _compose(world, f"shrink-{case}", "current", "current", rng)
    wh = env.warehouse
    before = _current_state(env)
    run_id = f"crafted-{case}-{COUNTRY}"
    removed, added, staged = _craft_staging(wh, run_id, rng, shrink=case % 2 == 0)
    published = wh.describe("bookings")
    assert published is not None
    replaced = sum(
        rows
        for key, rows in published.rows_per_partition.items()
        if any(key == f"country={COUNTRY}/scheduled_month={m}" for m in staged)
    )
    assert replaced == sum(staged.values()) + removed - added

    fam = FamilyRun("bookings", COUNTRY, datasets=[DatasetRun("bookings", COUNTRY)])
    references = with_published_references(wh, COUNTRY, {})
    session = ValidationSession(run_id, docs_dir=None)
    outcomes = gate.validate_family(
        fam, wh, session, run_id, references=references, full_refresh=False
    )
    gate.publish_or_quarantine(fam, wh, run_id, outcomes)

    shrinks = removed > added
    floor_failed = [c for c in fam.critical_failures if "published_row_count" in c]
    assert bool(floor_failed) is shrinks, (removed, added, fam.critical_failures)
    if shrinks:
        assert fam.status == "quarantined"
        assert _current_state(env) == before
    else:
        assert fam.status == "published", fam.critical_failures
        assert count(wh.root, "bookings") == before[1] - removed + added >= before[1]
    # the floor the gate used: the published rows of the months the staging replaces
    assert outcomes["bookings"].parameters["published_row_count"] == replaced


# ---------------------------------------------------------------- the read plan, many countries


@pytest.mark.parametrize("case", range(8))
def test_each_countrys_read_plan_follows_its_own_published_bookings(
    world: World, case: int, tmp_path: Path
) -> None:
    """A seeded corpus without extraction: one warehouse shared by three countries, each with
    or without published bookings (and booking changes), each commit with its watermark."""
    rng = random.Random(f"{SEED}-plan-{case}")
    source = (
        Warehouse(str(world.snapshots["current"] / "warehouse"))
        .read_current("bookings")
        .to_table(filter=pc.field("country") == COUNTRY)
        .select(DATASETS["bookings"].schema.names)
    )
    wh = Warehouse(str(tmp_path / "warehouse"), durable=False)
    countries = ("cl", "pe", "mx")
    marks: dict[str, dict[str, datetime]] = {"bookings": {}, "booking_changes": {}}
    for country in countries:
        if rng.random() >= 0.6:
            continue
        rows = source.slice(rng.randrange(source.num_rows // 2), rng.randint(1, 40))
        for dataset in ("bookings", "booking_changes"):
            if dataset == "booking_changes" and rng.random() < 0.3:
                continue  # a run killed between the two commits
            wm = datetime(2026, 6, 1, tzinfo=UTC) + timedelta(hours=rng.randint(0, 500))
            run_id = f"plan-{case}-{dataset}-{country}"
            with wh.stage(dataset, run_id) as out:
                if dataset == "bookings":
                    months = pc.strftime(rows["scheduled_start"], "%Y-%m").to_pylist()
                    for month in sorted(set(months)):
                        mask = pa.array([m == month for m in months])
                        out.write_table(
                            rows.filter(mask), {"country": country, "scheduled_month": month}
                        )
                else:
                    changes = rows.append_column("run_id", pa.array([run_id] * rows.num_rows))
                    out.write_table(changes, {"country": country, "extraction_date": "2026-06-01"})
                out.finish(watermark_after=wm, finished_at=datetime.now(UTC))
            wh.publish(dataset, run_id)
            marks[dataset][country] = wm
    for country in countries:
        plan = plan_bookings_read(wh, country, full_refresh=False)
        data, changes = marks["bookings"].get(country), marks["booking_changes"].get(country)
        if data is None:
            assert (plan.full, plan.watermark) == (True, None), (country, plan)
        elif changes is None:
            assert (plan.full, plan.watermark) == (False, None)  # reads everything, merges
        else:
            assert (plan.full, plan.watermark) == (False, min(data, changes))
        forced = plan_bookings_read(wh, country, full_refresh=True)
        assert (forced.full, forced.watermark, forced.note) == (True, None, None)
