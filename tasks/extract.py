"""Tasks of the nightly extraction: one per (country, family), then the report."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from sodtrack.client import country_client
from sodtrack.extract.families import Family
from sodtrack.extract.report import RunReport
from sodtrack.extract.runner import (
    CountryExtraction,
    ExtractFamily,
    FamilyExtraction,
    References,
)
from sodtrack.links import PublicLinks
from sodtrack.settings import Settings
from sodtrack.validation import ValidationSession
from tasks.runtime import open_state, open_warehouse, quiet_libraries, route_library_logs


@task(name="extract-family", retries=0, task_run_name="{family}-{cx.country}")
async def extract_family_task(
    settings: Settings,
    cx: CountryExtraction,
    family: Family,
    references: References,
    *,
    full_refresh: bool,
    lookback_minutes: float,
    docs_dir: str | None,
) -> FamilyExtraction:
    """Stage one family of one country, validate it, publish it or quarantine it
    (:func:`~sodtrack.extract.runner.extract_family`, with its own client, stores and
    validation session: everything it needs comes in its arguments, so it could run in
    another process). ``references``: what the country's previous family returned."""
    quiet_libraries()
    route_library_logs(settings)
    logger = get_run_logger()
    warehouse, store = open_warehouse(settings), open_state(settings)
    session = ValidationSession(
        f"{cx.run_id}-{family.value}",
        docs_dir=_path(docs_dir),
        batch_memory=int(settings.validation_batch_memory),
        duck_limits=warehouse.duck_limits,
    )
    try:
        async with country_client(settings, cx.country) as client:
            step = ExtractFamily(
                client,
                warehouse,
                store,
                session,
                full_refresh=full_refresh,
                lookback=timedelta(minutes=lookback_minutes),
            )
            done = await step(family, cx, references)
            stats = client.stats.as_dict()
        result = done.run
        if session.outcomes and docs_dir:
            docs = session.build_docs()
            result.docs_path = str(docs) if docs else None
    finally:
        store.dispose()
    result.client = stats
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
    for note in result.notes:
        logger.warning("%s/%s: %s", cx.country, family.value, note)
    for failure in result.critical_failures:
        logger.error("%s/%s critical: %s", cx.country, family.value, failure)
    for warning in result.warnings:
        logger.warning("%s", warning)
    if result.error:
        logger.error("%s/%s failed: %s", cx.country, family.value, result.error)
    return done


@task(name="publish-run-report", retries=0)
async def report_task(
    report: RunReport, reports_dir: str | None, links: PublicLinks | None = None
) -> dict[str, Any]:
    """Write the run's JSON report and the artifacts an analyst reads in one look. ``links``
    with a public URL (``SODTRACK_WEB_PUBLIC_URL``): the summary links the report and the
    Data Docs to the upload page, which serves them behind its sign-in; else it shows their
    paths on the worker."""
    from pathlib import Path

    if reports_dir:
        report.write(Path(reports_dir))
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


def _path(value: str | None) -> Any:
    from pathlib import Path

    return Path(value) if value else None
