"""Tasks of the nightly extraction: one per (country, family), then the report."""

from __future__ import annotations

import shutil
import tempfile
from datetime import timedelta
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.artifacts import acreate_markdown_artifact, acreate_table_artifact

from sodtrack import objstore
from sodtrack.client import country_client
from sodtrack.errors import OutputNotWritable
from sodtrack.extract.families import Family
from sodtrack.extract.report import RunReport
from sodtrack.extract.runner import (
    CountryExtraction,
    ExtractFamily,
    FamilyExtraction,
    References,
)
from sodtrack.links import PublicLinks
from sodtrack.objstore import is_remote
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
    # Data Docs for object storage are built in a private temporary folder, then put there.
    remote_docs = docs_dir if docs_dir and is_remote(docs_dir) else None
    building = tempfile.mkdtemp(prefix="sodtrack-docs-") if remote_docs else docs_dir
    session = ValidationSession(
        f"{cx.run_id}-{family.value}",
        docs_dir=_path(building),
        batch_memory=int(settings.validation_batch_memory),
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
            if docs is not None and remote_docs:
                result.docs_path = put_site(docs.parent, remote_docs, settings.s3_endpoint_url)
            else:
                result.docs_path = str(docs) if docs else None
    finally:
        store.dispose()
        if remote_docs and building:
            shutil.rmtree(building, ignore_errors=True)
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
    from pathlib import Path

    if reports_dir:
        report.write_to(reports_dir if is_remote(reports_dir) else Path(reports_dir),
                        endpoint_url=endpoint_url)  # fmt: skip
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


def put_site(site: Path, docs_url: str, endpoint_url: str | None) -> str:
    """Put a Data Docs site built locally (``<tmp>/<run_id>/…``) at ``<docs_url>/<run_id>/``;
    returns the URL of its ``index.html``. A file that does not go up fails the family's
    task (its data is published; the report says where the docs are not)."""
    target = str(objstore.join(docs_url, site.name))
    failed = objstore.put_tree(site, target, endpoint_url=endpoint_url)
    if failed:
        name, why = next(iter(failed.items()))
        raise OutputNotWritable(
            f"Data Docs not written to {target}: {len(failed)} file(s), e.g. {name}: {why}",
            setting="SODTRACK_WAREHOUSE",
        )
    return f"{target}/index.html"


def _path(value: str | None) -> Any:
    from pathlib import Path

    return Path(value) if value else None
