"""Tasks of the nightly extraction: per (country, family) a staging and a check, then the
report."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from sodtrack.client import country_client
from sodtrack.extract.docsite import DocsSite
from sodtrack.extract.families import Family
from sodtrack.extract.report import RunReport
from sodtrack.extract.runner import (
    CountryExtraction,
    FamilyExtraction,
    References,
    StagedFamily,
    check_family,
    stage_family,
)
from sodtrack.links import PublicLinks
from sodtrack.settings import Settings
from sodtrack.validation import ValidationSession
from tasks.runtime import open_warehouse, quiet_libraries, route_library_logs

STAGE_RETRIES = 1
"""A staging that raised (the API gone for longer than the client's own retries, a full
disk) is walked once more after ``STAGE_RETRY_DELAY_S``; it starts from empty stagings, so a
retry never doubles data. A check is not retried: it is deterministic on the staged data."""
STAGE_RETRY_DELAY_S = 30.0


@task(
    name="stage-family",
    retries=STAGE_RETRIES,
    retry_delay_seconds=STAGE_RETRY_DELAY_S,
    task_run_name="stage-{family}-{cx.country}",
)
async def stage_family_task(
    settings: Settings,
    cx: CountryExtraction,
    family: Family,
    *,
    full_refresh: bool,
    lookback_minutes: float,
) -> StagedFamily:
    """Walk one family of one country into the run's staging
    (:func:`~sodtrack.extract.runner.stage_family`, with its own client and stores: it could
    run in another process). The client's counters travel in the result's ``run.client``."""
    quiet_libraries()
    route_library_logs(settings)
    logger = get_run_logger()
    warehouse = open_warehouse(settings)
    async with country_client(settings, cx.country) as client:
        staged = await stage_family(
            family,
            client,
            warehouse,
            cx,
            full_refresh=full_refresh,
            lookback=timedelta(minutes=lookback_minutes),
            progress=_no_progress,
        )
        staged.run.client = client.stats.as_dict()
    for d in staged.run.datasets:
        logger.info(
            "%s/%s: staged — received %d, written %d, %s",
            cx.country,
            d.dataset,
            d.received,
            d.written,
            d.completeness,
        )
    for note in staged.run.notes:
        logger.warning("%s/%s: %s", cx.country, family.value, note)
    return staged


@task(name="check-family", retries=0, task_run_name="check-{staged.family}-{cx.country}")
async def check_family_task(
    settings: Settings,
    cx: CountryExtraction,
    staged: StagedFamily,
    references: References,
    *,
    docs_dir: str | None,
) -> FamilyExtraction:
    """Validate a staged family, publish it or quarantine it
    (:func:`~sodtrack.extract.runner.check_family`, in a thread: the flow's event loop goes
    on walking the next family), with its own validation session and Data Docs.
    ``references``: what the country's previous family returned once checked."""
    quiet_libraries()
    route_library_logs(settings)
    logger = get_run_logger()
    family = staged.family
    warehouse = open_warehouse(settings)
    # Data Docs for object storage are built in a private temporary folder, then put there.
    site = DocsSite(docs_dir or None, endpoint_url=settings.s3_endpoint_url)
    session = ValidationSession(
        f"{cx.run_id}-{family.value}",
        docs_dir=site.build_dir,
        batch_memory=int(settings.validation_batch_memory),
        duck_limits=warehouse.duck_limits,
    )

    def check() -> FamilyExtraction:
        done = check_family(staged, warehouse, session, cx, references)
        if session.outcomes and docs_dir:
            done.run.docs_path = site.keep(session.build_docs())
        return done

    with site:
        done = await asyncio.to_thread(check)
    result = done.run
    for d in result.datasets:
        logger.info(
            "%s/%s: %s — received %d, written %d, %s",
            cx.country,
            d.dataset,
            d.status,
            d.received,
            d.written,
            d.completeness,
        )
    for failure in result.critical_failures:
        logger.error("%s/%s critical: %s", cx.country, family.value, failure)
    for warning in result.warnings:
        logger.warning("%s", warning)
    if result.error:
        logger.error("%s/%s failed: %s", cx.country, family.value, result.error)
    return done


def _no_progress(dataset: str, n: int) -> None:
    return None


@task(name="publish-run-report", retries=0)
async def report_task(
    report: RunReport,
    reports_dir: str | None,
    links: PublicLinks | None = None,
    endpoint_url: str | None = None,
) -> dict[str, Any]:
    """Write the run's JSON report and the artifacts an analyst reads in one look. ``links``
    with a public URL (``SODTRACK_WEB_PUBLIC_URL``): the summary links the report and the
    Data Docs to the upload page, which serves them behind its sign-in; else it shows their
    paths on the worker. ``reports_dir`` may be on object storage (``s3://…/_reports``,
    reached through ``endpoint_url`` when S3-compatible)."""
    if reports_dir:
        report.write_to(reports_dir, endpoint_url=endpoint_url)  # a folder or a URL
    link = links.to if links is not None and links.public else None
    await acreate_markdown_artifact(
        key="nightly-summary",
        markdown=report.summary_markdown(link),
        description="Nightly extraction",
    )
    await acreate_table_artifact(
        key="nightly-counts", table=report.counts_table(), description="Records per dataset"
    )
    return report.to_dict()
