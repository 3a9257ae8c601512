"""API → staging, one family at a time. Pages stream into Parquet row groups as they come.

Each function walks the API through the client, converts pages to Arrow batches with the
dataset's explicit schema, writes them to the warehouse staging of this run, and returns a
:class:`DatasetRun` per dataset with its counts. Nothing here publishes: the gate does.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel

from sodtrack.client import PageNumberWalk, SodtrackClient
from sodtrack.contract.countries import get_country
from sodtrack.contract.models import Service
from sodtrack.extract.report import DatasetRun
from sodtrack.warehouse import Warehouse
from sodtrack.warehouse.bookings import BookingsRun, MergeResult
from sodtrack.warehouse.convert import (
    bookings_decoder,
    categories_batch,
    coverage_postal_codes_batch,
    coverage_zones_batch,
    services_batch,
    variants_batch,
    with_extracted_at,
)
from sodtrack.warehouse.duck import DuckLimits
from sodtrack.warehouse.writer import StagingWriter

M = TypeVar("M", bound=BaseModel)
Progress = Callable[[str, int], None]
"""``progress(dataset, records_just_received)``: drives progress bars and artifacts."""

VARIANT_WALKS_IN_FLIGHT = 8
"""Variant lists are one walk per service: this many run at once, within the rate limit."""


def _noop(dataset: str, n: int) -> None:
    return None


def snapshot_partition(country: str, extracted_at: datetime) -> dict[str, str]:
    """Snapshots are dated by the country's local calendar: a Chilean analyst's 28 November
    is the run that started at 02:00 in Santiago, whatever the UTC date was."""
    local = extracted_at.astimezone(get_country(country).tz).date()
    return {"country": country, "snapshot_date": local.isoformat()}


def _completeness(run: DatasetRun) -> None:
    if run.expected is None:
        return
    run.completeness = "complete" if run.expected == run.received else "incomplete"


async def _walk_into(
    walk: PageNumberWalk[M],
    run: DatasetRun,
    sink: Callable[[Sequence[M]], None],
    progress: Progress,
) -> None:
    async for page in walk:
        run.pages += 1
        run.received += page.received
        if page.items:
            sink(page.items)
        progress(run.dataset, page.received)
    done = walk.completeness
    if done is not None:
        run.expected = (run.expected or 0) + done.expected


def _finish(writer: StagingWriter, run: DatasetRun, extracted_at: datetime) -> None:
    info = writer.finish(
        stats={"received": run.received, "expected": run.expected, "pages": run.pages},
        finished_at=extracted_at,
    )
    run.written = info.total_rows
    run.deduplicated = run.received - run.written
    _completeness(run)


async def stage_catalog(
    client: SodtrackClient,
    warehouse: Warehouse,
    country: str,
    run_id: str,
    extracted_at: datetime,
    progress: Progress = _noop,
) -> list[DatasetRun]:
    """Categories, services and every service's variants (active and inactive alike).

    Rows are stamped ``extracted_at`` on receipt by the server's clock when it is ahead of
    ours (``client.now()``), as bookings are; the snapshot's date stays the run's
    (``extracted_at``, in the country's calendar), one partition per run."""
    part = snapshot_partition(country, extracted_at)
    runs = [DatasetRun(name, country) for name in ("categories", "services", "variants")]
    cat_run, svc_run, var_run = runs

    started = time.monotonic()
    with warehouse.stage("categories", run_id) as out:
        await _walk_into(
            client.list_categories(),
            cat_run,
            lambda page: out.write(categories_batch(page, client.now()), part),
            progress,
        )
        out.touch(part)
        _finish(out, cat_run, extracted_at)
    cat_run.seconds = time.monotonic() - started

    started = time.monotonic()
    services: list[Service] = []

    def keep_services(page: Sequence[Service]) -> None:
        services.extend(page)  # a few hundred: the variant walks need their ids
        svc_out.write(services_batch(page, client.now()), part)

    with warehouse.stage("services", run_id) as svc_out:
        await _walk_into(client.list_services(), svc_run, keep_services, progress)
        svc_out.touch(part)
        _finish(svc_out, svc_run, extracted_at)
    svc_run.seconds = time.monotonic() - started

    started = time.monotonic()
    with warehouse.stage("variants", run_id) as var_out:
        var_out.touch(part)
        gate = asyncio.Semaphore(VARIANT_WALKS_IN_FLIGHT)

        async def one(service: Service) -> None:
            async with gate:
                await _walk_into(
                    client.list_variants(service.id),
                    var_run,
                    lambda page: var_out.write(variants_batch(page, client.now()), part),
                    progress,
                )

        await asyncio.gather(*(one(s) for s in services))
        _finish(var_out, var_run, extracted_at)
    var_run.seconds = time.monotonic() - started
    return runs


async def stage_coverage(
    client: SodtrackClient,
    warehouse: Warehouse,
    country: str,
    run_id: str,
    extracted_at: datetime,
    progress: Progress = _noop,
) -> list[DatasetRun]:
    """Coverage zones, and their zone × postal code × service rows."""
    part = snapshot_partition(country, extracted_at)
    zone_run = DatasetRun("coverage_zones", country)
    pc_run = DatasetRun("coverage_postal_codes", country)
    started = time.monotonic()
    with (
        warehouse.stage("coverage_zones", run_id) as zones_out,
        warehouse.stage("coverage_postal_codes", run_id) as pcs_out,
    ):
        zones_out.touch(part)
        pcs_out.touch(part)

        def sink(page: Sequence[Any]) -> None:
            received = client.now()  # by the server's clock when it is ahead (as bookings)
            zones_out.write(coverage_zones_batch(page, received), part)
            for zone in page:  # one zone at a time: a page's matrix can be millions of rows
                batch = coverage_postal_codes_batch([zone], received)
                pc_run.received += batch.num_rows
                pcs_out.write(batch, part)

        await _walk_into(client.list_coverage_zones(), zone_run, sink, progress)
        _finish(zones_out, zone_run, extracted_at)
        # Rows derived from the zones: as complete as the zones are.
        pc_run.pages = zone_run.pages
        info = pcs_out.finish(stats={"derived_from": "coverage_zones"}, finished_at=extracted_at)
        pc_run.written = info.total_rows
        pc_run.deduplicated = pc_run.received - pc_run.written
        pc_run.completeness = zone_run.completeness
    zone_run.seconds = pc_run.seconds = time.monotonic() - started
    return [zone_run, pc_run]


async def stage_bookings(
    client: SodtrackClient,
    warehouse: Warehouse,
    country: str,
    run_id: str,
    extracted_at: datetime,
    *,
    updated_since: datetime | None,
    watermark_before: datetime | None,
    full_refresh: bool,
    progress: Progress = _noop,
    duck_limits: DuckLimits | None = None,
) -> tuple[list[DatasetRun], MergeResult]:
    """Changes since the watermark (with its lookback) → ``booking_changes`` and the merged
    ``bookings`` partitions they touch.

    The walk is a bulk read (``list_bookings_arrow``: each page's JSON straight to an Arrow
    batch, checked as the models would) and is not de-duplicated by the client: a million
    ids held in a dict would make memory grow with the data. Repeats are dropped out of core
    by the merge. Each page's ``extracted_at`` is its time of receipt, by the server's clock
    when that is ahead of ours (``client.now()``, from the ``Date`` headers).
    """
    started = time.monotonic()
    changes_run = DatasetRun("booking_changes", country)
    bookings_run = DatasetRun("bookings", country)
    run = BookingsRun(warehouse, country, run_id, extracted_at=extracted_at, limits=duck_limits)
    try:
        async with client.list_bookings_arrow(bookings_decoder(), updated_since) as walk:
            async for page in walk:
                changes_run.pages += 1
                changes_run.received += page.received
                # Stamped on receipt by the server's clock when it is ahead of ours: a
                # booking is never "extracted before it was updated".
                run.add_batch(with_extracted_at(page.batch, client.now()))
                progress("bookings", page.received)
        result = run.finish(watermark_before=watermark_before, full_refresh=full_refresh)
    except BaseException:
        run.abort()
        raise
    changes_run.written = result.changes_written
    changes_run.deduplicated = result.exact_repeats
    bookings_run.pages = changes_run.pages
    bookings_run.received = result.received
    bookings_run.deduplicated = result.deduplicated
    bookings_run.written = result.rows_written
    bookings_run.rows_total = result.bookings_total
    changes_run.seconds = bookings_run.seconds = time.monotonic() - started
    return [bookings_run, changes_run], result
