"""``nightly-extract``: catalog, coverage and bookings of one or more countries to Parquet.

Countries run concurrently (one subflow each, serialised per country by a lock in the state
store so two runs for the same country never interleave); within a country the families run
in order, because coverage and bookings are validated against the catalog just staged.

The first task checks the configuration (``check-configuration``: settings, each country's
base URL, credentials and token country, the state database, the warehouse folders): a
``ConfigurationError`` ends the run ``Failed`` with its one line as the message, before
anything is extracted, and without retries.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

from prefect import State, flow, get_run_logger
from prefect.states import Completed, Failed

from sodtrack.contract.countries import get_country
from sodtrack.errors import ConfigurationError
from sodtrack.extract.families import Family, families_for
from sodtrack.extract.report import FamilyRun, RunReport
from sodtrack.extract.runner import (
    CountryExtraction,
    clear_dead_runs,
    merge_client_stats,
    new_run_id,
)
from sodtrack.settings import Settings
from tasks.extract import extract_family_task, report_task
from tasks.runtime import (
    check_configuration_task,
    data_dir,
    open_state,
    open_warehouse,
    state_lock,
)


@flow(name="extract-country", flow_run_name="extract-{country}")
async def extract_country(
    settings: Settings,
    country: str,
    run_id: str,
    families: list[Family],
    full_refresh: bool = False,
    lookback_minutes: float = 10.0,
) -> list[FamilyRun]:
    cx = CountryExtraction(country, f"{run_id}-{country}", datetime.now(UTC))
    store = open_state(settings)
    docs = str(data_dir(settings, "docs"))
    results: list[FamilyRun] = []
    try:
        async with state_lock(store, f"nightly:{country}"):
            clear_dead_runs(open_warehouse(settings), country, cx.run_id)
            for family in families:
                results.append(
                    await extract_family_task(
                        settings,
                        cx,
                        family,
                        full_refresh=full_refresh,
                        lookback_minutes=lookback_minutes,
                        docs_dir=docs,
                    )
                )
    finally:
        store.dispose()
    return results


@flow(name="nightly-extract")
async def nightly(
    countries: list[str] | None = None,
    datasets: list[str] | None = None,
    full_refresh: bool = False,
    warehouse: str | None = None,
    lookback_minutes: float = 10.0,
) -> State[Any]:
    """Extract, validate and publish; the final state says whether everything was published.

    Args:
        countries: ISO codes (``["cl", "pe"]``); default: ``SODTRACK_COUNTRY``.
        datasets: datasets or families (``["bookings"]``); default: all.
        full_refresh: rebuild bookings from nothing (ignores the watermark).
        warehouse: warehouse root; default ``SODTRACK_WAREHOUSE``.
        lookback_minutes: overlap re-read behind the bookings watermark.
    """
    logger = get_run_logger()
    try:
        settings = await check_configuration_task(
            countries, warehouse=warehouse, warehouse_outputs=True
        )
    except ConfigurationError as exc:  # nothing extracted; no retry fixes a setting
        logger.error("configuration error: %s", exc.line)
        return Failed(message=f"configuration error: {exc.line}")
    codes = [get_country(c).code for c in (countries or [settings.country])]
    families = families_for(datasets)
    started = datetime.now(UTC)
    run_id = new_run_id(started)
    report = RunReport(
        run_id=run_id,
        started_at=started.isoformat(),
        countries=codes,
        full_refresh=full_refresh,
        warehouse=settings.warehouse,
    )
    per_country = await asyncio.gather(
        *(
            extract_country(settings, code, run_id, families, full_refresh, lookback_minutes)
            for code in codes
        )
    )
    report.families = [f for runs in per_country for f in runs]
    report.client = merge_client_stats([f.client for f in report.families])
    report.finished_at = datetime.now(UTC).isoformat()
    report.duration_s = round((datetime.now(UTC) - started).total_seconds(), 3)
    result = await report_task(report, str(data_dir(settings, "reports")))
    logger.info("run report: %s", result.get("report_path"))
    if report.success:
        return Completed(message=f"{run_id}: every dataset published", data=result)
    failed = [
        f"{f.country}/{f.family}: {f.status}" for f in report.families if f.status != "published"
    ]
    return Failed(message=f"{run_id}: not published — {', '.join(failed)}", data=result)
