"""``nightly-extract``: catalog, coverage and bookings of one or more countries to Parquet.

Countries run concurrently (one subflow each, serialised per country by a lock in the state
store so two runs for the same country never interleave); within a country the families are
checked in order, because coverage and bookings are validated against the catalog just
staged (or the published one, when the new one was not published), while the next family is
already being walked.

The flow only sequences: each country is the library's orchestrator
(:func:`sodtrack.extract.runner.extract_country`: lock, cleanup of dead runs, families
pipelined) with two tasks per family as its steps: ``stage-family`` (walk and stage; retried
once, from empty stagings) and ``check-family`` (validate, publish or quarantine, in a thread;
not retried). The references one family's check returns are given to the next check as an
argument, never through shared state.

Run hygiene: each run is named after what it does, ``nightly-cl-2026-12-03`` (the countries
and the date of its scheduled start in the country's own time zone); a run longer than
``SODTRACK_FLOW_TIMEOUT_S`` ends ``TimedOut``, and so does a country's extraction (the
``extract-country`` subflow) longer than ``SODTRACK_TASK_TIMEOUT_S``.

Two guards keep one country's extractions one at a time, and both are held:

* the Prefect **global concurrency limit** ``sodtrack-nightly-<country>`` (limit 1, created
  by the first run that needs it): a second Prefect run of the country waits for a slot, and
  the UI shows it waiting (taken first, released at the end of the country's subflow);
* the state store's **lock** ``nightly:<country>`` (taken next, by the library's
  orchestrator): it also serialises ``sodtrack-etl extract`` runs from a terminal, which
  Prefect does not see.

Between Prefect runs the limit wins (the second run never reaches the lock); against a
command-line run the lock does. Either wait ends after six hours (``LOCK_TIMEOUT_S``).
After each family, the shell announces its datasets (:mod:`tasks.signals`): a
``sodtrack.dataset.published`` event and an asset materialisation per dataset published, a
``sodtrack.dataset.quarantined`` event per dataset quarantined; after a country whose
families were all published, ``sodtrack.nightly.completed`` (what the deadline alerts
expect).

The first task checks the configuration (``check-configuration``: settings, each country's
base URL, credentials and token country, the state database, the warehouse folders): a
``ConfigurationError`` ends the run ``Failed`` with its one line as the message, before
anything is extracted, and without retries.
"""

from __future__ import annotations

import asyncio
import importlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from prefect import State, flow, get_run_logger
from prefect.concurrency.asyncio import concurrency
from prefect.states import Completed, Failed

from sodtrack.contract.countries import get_country
from sodtrack.errors import ConfigurationError
from sodtrack.extract import runner
from sodtrack.extract.families import Family, families_for
from sodtrack.extract.report import FamilyRun
from sodtrack.links import PublicLinks
from sodtrack.settings import Settings
from tasks.extract import check_family_task, report_task, stage_family_task
from tasks.runtime import (
    check_configuration_task,
    ensure_country_limit,
    flow_timeout_s,
    open_state,
    open_warehouse,
)
from tasks.signals import announce_country, announce_family

LOCK_TIMEOUT_S = 6 * 3600.0
"""How long a country's subflow waits for another run of the country to finish."""


def nightly_run_name(countries: list[str] | None, scheduled: datetime, default: str) -> str:
    """``nightly-cl-2026-12-03``: the countries, and the scheduled day in the (first)
    country's time zone (02:00 in Santiago is still the 3rd there, whatever UTC says)."""
    codes = [get_country(c).code for c in (countries or [default])]
    day = scheduled.astimezone(get_country(codes[0]).tz).date()
    return f"nightly-{'-'.join(codes)}-{day.isoformat()}"


def _nightly_name() -> str:
    from prefect.runtime import flow_run

    from sodtrack.errors import ConfigurationError
    from sodtrack.settings import resolve_settings

    try:
        default = resolve_settings()[0].country
    except ConfigurationError:  # check-configuration fails the run and says why
        default = "cl"
    scheduled = flow_run.scheduled_start_time or datetime.now(UTC)
    return nightly_run_name(flow_run.parameters.get("countries"), scheduled, default)


@dataclass(frozen=True, slots=True)
class TaskSteps:
    """The library's two phases of a family as this flow's tasks (``stage-family``, then
    ``check-family``, which announces what it published or quarantined)."""

    settings: Settings
    full_refresh: bool
    lookback_minutes: float
    docs_dir: str

    async def stage(self, family: Family, cx: runner.CountryExtraction) -> runner.StagedFamily:
        try:
            return await stage_family_task(
                self.settings,
                cx,
                family,
                full_refresh=self.full_refresh,
                lookback_minutes=self.lookback_minutes,
            )
        except Exception as exc:  # retries spent: the family fails, the others go on
            return runner.staging_failed(family, cx, exc)

    async def warm_up(self) -> None:
        """The check tasks make their own contexts; the import is the process's, done once."""
        await asyncio.to_thread(importlib.import_module, "great_expectations")

    async def check(
        self,
        staged: runner.StagedFamily,
        cx: runner.CountryExtraction,
        references: runner.References,
    ) -> runner.FamilyExtraction:
        done = await check_family_task(
            self.settings, cx, staged, references, docs_dir=self.docs_dir
        )
        announce_family(self.settings, done.run, cx.run_id)  # events and assets
        return done


@flow(name="extract-country", flow_run_name="extract-{country}-{run_id}")
async def extract_country(
    settings: Settings,
    country: str,
    run_id: str,
    families: list[Family],
    full_refresh: bool = False,
    lookback_minutes: float = 10.0,
) -> list[FamilyRun]:
    cx = runner.CountryExtraction(country, f"{run_id}-{country}", datetime.now(UTC))
    steps = TaskSteps(
        settings, full_refresh, lookback_minutes, str(settings.output_location("docs"))
    )
    limit = await ensure_country_limit(country)
    store = open_state(settings)
    try:
        async with concurrency(limit, occupy=1, timeout_seconds=LOCK_TIMEOUT_S):
            runs = await runner.extract_country(
                cx,
                families,
                steps,
                warehouse=open_warehouse(settings),
                store=store,
                lock_timeout_s=LOCK_TIMEOUT_S,
            )
    finally:
        store.dispose()
    announce_country(country, runs, cx.run_id)
    return runs


@flow(name="nightly-extract", flow_run_name=_nightly_name, timeout_seconds=flow_timeout_s())
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
    run_id = runner.new_run_id(started)
    report = runner.start_report(
        run_id, started, codes, full_refresh=full_refresh, warehouse=settings.warehouse
    )
    country_flow = extract_country.with_options(timeout_seconds=settings.task_timeout_s)
    per_country = await asyncio.gather(
        *(
            country_flow(settings, code, run_id, families, full_refresh, lookback_minutes)
            for code in codes
        )
    )
    runs = [f for country_runs in per_country for f in country_runs]
    finished = datetime.now(UTC)
    runner.finish_report(
        report,
        runs,
        [{**f.client, "country": f.country} for f in runs if f.client],
        finished_at=finished,
        duration_s=(finished - started).total_seconds(),
    )
    result = await report_task(
        report,
        str(settings.output_location("reports")),
        PublicLinks.from_settings(settings),
        settings.s3_endpoint_url,
    )
    logger.info("run report: %s", result.get("report_path"))
    if report.success:
        return Completed(message=f"{run_id}: every dataset published", data=result)
    failed = [
        f"{f.country}/{f.family}: {f.status}" for f in report.families if f.status != "published"
    ]
    return Failed(message=f"{run_id}: not published — {', '.join(failed)}", data=result)
