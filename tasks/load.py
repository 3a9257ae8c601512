"""Tasks of the bulk load: thin wrappers over :mod:`sodtrack.bulkload.run` (the same code the
``sodtrack-etl load`` command runs), plus the artifacts operations read.

Retries: none at task level, on purpose. The client already retries transient errors (429,
5xx, timeouts) with backoff inside its budget, and the load ledger makes a re-run of the same
file resume where a run stopped, creating nothing twice; a task retry would only repeat the
client's work, or re-run a load that ended with rows to fix (which no retry fixes). Re-run the
flow (or the command) instead: that is the retry.

``publish-load-artifacts`` also emits ``sodtrack.upload.rows-rejected`` when a real load left
rows for a person to fix (:func:`tasks.signals.announce_rejected_rows`: the upload alert).

Tasks take and return the library's objects (a parsed upload can hold 100,000 rows), so none
of them caches or hashes its inputs (``NO_CACHE``).
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, Final

from prefect import get_run_logger, task
from prefect.artifacts import (
    acreate_link_artifact,
    acreate_markdown_artifact,
    acreate_progress_artifact,
    acreate_table_artifact,
    aupdate_progress_artifact,
)
from prefect.cache_policies import NO_CACHE

from sodtrack.bulkload import ParsedUpload, UploadResult
from sodtrack.bulkload import run as bulkload
from sodtrack.bulkload.run import REJECTED_TABLE_LIMIT, LoadRun
from sodtrack.links import PublicLinks
from sodtrack.objstore import is_remote
from sodtrack.settings import Settings
from sodtrack.textsafe import printable
from tasks.runtime import quiet_libraries, route_library_logs
from tasks.signals import announce_rejected_rows

SUMMARY_KEY: Final = "bulk-load-summary"
COUNTS_KEY: Final = "bulk-load-counts"
REJECTED_KEY: Final = "bulk-load-rejected-rows"
RESULTS_LINK_KEY: Final = "bulk-load-results"
REJECTS_LINK_KEY: Final = "bulk-load-rejects"
RECEIPT_LINK_KEY: Final = "bulk-load-receipt"
RECEIPT: Final = "receipt.json"
"""The inbox watcher's receipt in ``<outbox>/<upload_id>/`` (:mod:`sodtrack.bulkload.inbox`)."""
PROGRESS_EVERY_S: Final = 1.0
"""How often the progress artifact is updated while rows complete (at most)."""
VALIDATE_SHARE: Final = 5.0
"""Percent of the progress bar the checks before any write take."""


@task(name="read-upload", retries=0, cache_policy=NO_CACHE)
def read_upload_task(path: str, country: str, sheet: str | None = None) -> ParsedUpload:
    """Read the file and check every row locally (formats, required fields, across rows)."""
    logger = get_run_logger()
    settings = Settings()
    parsed = bulkload.read(
        path,
        country,
        sheet=sheet,
        limits=bulkload.upload_limits(settings),
        endpoint_url=settings.s3_endpoint_url,
    )
    summary = parsed.summary()
    logger.info(
        "%s (%s): %d rows, %d rejected by the local checks, %d warnings",
        printable(parsed.source_path.name),
        printable(parsed.sheet or parsed.file_type),
        summary["rows"],
        summary["rejected_rows"],
        summary["row_warnings"],
    )
    for issue in parsed.upload_issues:
        log = logger.error if issue.severity == "error" else logger.warning
        log("file: %s %s", printable(issue.message), printable(issue.suggested_fix))
    return parsed


def progress_percent(phase: str, done: int, total: int) -> float:
    """Engine progress (``validate``, then ``load``, in units of work) as 0-100."""
    share = done / total if total else 1.0
    if phase == "validate":
        return VALIDATE_SHARE * share
    return VALIDATE_SHARE + (100.0 - VALIDATE_SHARE) * share


@task(name="load-upload", retries=0, cache_policy=NO_CACHE)
async def load_task(
    settings: Settings,
    parsed: ParsedUpload,
    *,
    uploaded_by: str,
    dry_run: bool,
    check_availability: bool | None = None,
) -> UploadResult:
    """Live checks, then the writes (none on a dry run); a progress artifact follows the rows.

    The engine reports progress synchronously from its event loop; a small pump publishes
    the latest figure at most once a second, so a 100,000-row file does not send 100,000
    API calls to Prefect.
    """
    quiet_libraries()
    route_library_logs(settings)
    logger = get_run_logger()
    what = "Dry run of" if dry_run else "Loading"
    artifact_id = await acreate_progress_artifact(
        progress=0.0, description=f"{what} {parsed.source_path.name}: {len(parsed.rows)} rows"
    )
    latest = {"value": 0.0, "sent": -1.0}

    def progress(phase: str, done: int, total: int) -> None:
        latest["value"] = progress_percent(phase, done, total)

    async def pump() -> None:
        while True:
            await asyncio.sleep(PROGRESS_EVERY_S)
            value = latest["value"]
            if value != latest["sent"]:
                try:
                    await aupdate_progress_artifact(artifact_id=artifact_id, progress=value)
                    latest["sent"] = value
                except Exception as exc:  # progress is a courtesy: never fail a load for it
                    logger.warning("progress artifact not updated: %s", exc)

    pumping = asyncio.create_task(pump())
    try:
        result = await bulkload.load(
            settings,
            parsed,
            uploaded_by=uploaded_by,
            dry_run=dry_run,
            check_availability=check_availability,
            progress=progress,
        )
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
    await aupdate_progress_artifact(artifact_id=artifact_id, progress=100.0)
    logger.info(
        "upload %s run %d: %s (%d requests, %.1f s)",
        result.upload_id,
        result.run_no,
        ", ".join(f"{n} {o}" for o, n in result.counts.items() if n),
        result.requests,
        result.elapsed_s,
    )
    for notice in result.notices:
        logger.warning("%s", printable(notice))
    return result


@task(name="write-results", retries=0, cache_policy=NO_CACHE)
def write_results_task(parsed: ParsedUpload, result: UploadResult, out_dir: str) -> LoadRun:
    """The results (CSV, XLSX), rejects (CSV, XLSX) and summary (JSON) files, into a folder
    or onto object storage (``out_dir`` a URL)."""
    run = bulkload.finish(parsed, result, out_dir=out_dir, endpoint_url=Settings().s3_endpoint_url)
    logger = get_run_logger()
    for kind, path in run.file_paths().items():
        logger.info("%s: %s", kind, printable(path))
    for kind, why in run.unwritten.items():
        logger.error("%s not written: %s (re-run the same file to write it)", kind, why)
    return run


@task(name="publish-load-artifacts", retries=0, cache_policy=NO_CACHE)
async def artifacts_task(run: LoadRun, links: PublicLinks | None = None) -> dict[str, Any]:
    """What operations read on the flow run: a markdown summary, counts by outcome, the rows
    not created with their message and suggested fix (at most
    :data:`~sodtrack.bulkload.run.REJECTED_TABLE_LIMIT`, saying how many more), and links to the
    results and rejects files and to the watcher's ``receipt.json`` (when the upload came
    through the inbox). ``links``: the upload page's URLs when ``SODTRACK_WEB_PUBLIC_URL`` is
    set (:mod:`sodtrack.links`); none, or unset: ``file://`` paths on the worker."""
    r = run.result
    _link = (links or PublicLinks(None, reports=Path(), docs=Path(), outbox=Path())).to
    label = f"{printable(r.file_name)} ({r.country}), upload {r.upload_id}"
    await acreate_markdown_artifact(
        key=SUMMARY_KEY, markdown=run.summary_markdown(), description=f"Bulk load of {label}"
    )
    await acreate_table_artifact(
        key=COUNTS_KEY, table=run.counts_table(), description=f"Rows by outcome: {label}"
    )
    problems, more = run.problem_rows(REJECTED_TABLE_LIMIT)
    shown = f"{len(problems)} rows not created" + (
        f" (the first {len(problems)}; {more} more are in the rejects/results file)" if more else ""
    )
    await acreate_table_artifact(
        key=REJECTED_KEY,
        table=problems
        or [
            {
                "row": "",
                "outcome": "",
                "message": "every row was created, updated or already existed",
            }
        ],
        description=f"{shown}: {label}",
    )
    written = run.file_paths()
    if "results_xlsx" in written:
        await acreate_link_artifact(
            key=RESULTS_LINK_KEY,
            link=_link(written["results_xlsx"]),
            link_text=printable(run.files.results_xlsx.name),
            description=f"Results file of run {r.run_no} (every row, its outcome and ids; "
            f"CSV beside it): {label}",
        )
    if "rejects_xlsx" in written:
        await acreate_link_artifact(
            key=REJECTS_LINK_KEY,
            link=_link(written["rejects_xlsx"]),
            link_text=printable(run.files.rejects_xlsx.name),
            description=f"Rejects file of run {r.run_no} ({run.files.rejects} rows to fix and "
            f"upload again): {label}",
        )
    receipt = None if is_remote(run.out_dir) else Path(run.out_dir) / RECEIPT
    if receipt is not None and receipt.is_file():
        await acreate_link_artifact(
            key=RECEIPT_LINK_KEY,
            link=_link(receipt),
            link_text=RECEIPT,
            description=f"What the inbox watcher received and the run it started: {label}",
        )
    outcome = outcome_data(run)
    announce_rejected_rows(outcome)  # the upload alert's event (tasks/signals.py)
    return outcome


def outcome_data(run: LoadRun) -> dict[str, Any]:
    """What the flow's final state carries (and returns): counts, verdicts, file paths."""
    r = run.result
    return {
        "upload_id": r.upload_id,
        "file_name": r.file_name,
        "country": r.country,
        "dry_run": r.dry_run,
        "run": r.run_no,
        "status": r.status,
        "rows": len(run.parsed.rows),
        "counts": run.counts(),
        "accounted_for": run.accounted_for,
        "rejected": r.counts.get("rejected", 0),
        "skipped_dependency": r.counts.get("skipped_dependency", 0),
        "failed_transient": r.counts.get("failed_transient", 0),
        "needs_a_person": run.rows_needing_a_person,  # one definition: UploadResult.tally
        "retry_on_rerun": run.rows_to_rerun,
        "exit_code": run.exit_code,
        "upload_errors": list(r.upload_errors),
        "notices": list(r.notices),
        "files": run.file_paths(),
        "unwritten": run.unwritten,
        "out_dir": str(run.out_dir),
    }
