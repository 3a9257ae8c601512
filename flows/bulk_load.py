"""``bulk-load``: one spreadsheet of bookings into Sodtrack, every row answered.

read (local checks) → load (live checks, then the writes; none on a dry run) → results and
rejects files in ``<outbox>/<upload_id>/`` → artifacts (summary, counts by outcome, rows not
created with their message and fix, links to the files).

Final state, named for what happened (the runs list shows the name, the message the counts):

* ``Completed`` when every row was created, updated or already existed (a dry run: every
  row would be created or updated);
* ``Completed`` named **"Rows rejected"** when every row was answered but some were rejected
  (or skipped behind a rejected row): the load did its job, and the rows are work for a
  person (the rejects file). Not a crash: nothing to re-run. The message says both things
  the issue asks for: that every row was accounted for, and how many rows were rejected,
  skipped or failed;
* ``Failed`` when the file could not be loaded at all, when rows wait for a re-run
  (transient failures), or when a result file was not written: a re-run of the same file
  resumes; also, with nothing loaded, when a stored upload on object storage did not arrive
  whole (:class:`~sodtrack.errors.ObjectStoreError`: answers cut short, even after re-reads):
  re-run later, never a load of a shorter file;
* ``Failed`` named ``TimedOut`` past ``SODTRACK_FLOW_TIMEOUT_S`` (the whole run) or
  ``SODTRACK_TASK_TIMEOUT_S`` (the ``load-upload`` task); a re-run resumes the upload.

The state's data (also the flow's return value with ``return_state=True``) holds the same as
fields: ``accounted_for``, ``rejected``, ``skipped_dependency``, ``failed_transient``,
``counts``, ``exit_code`` (the CLI's code for the same outcome), ``files``.

Runs are named ``bulk-load-<country>-<upload id>`` (the watcher's id; the file's name when
run by hand), with ``-dry`` for a dry run (:func:`sodtrack.bulkload.inbox.bulk_load_run_name`: the
watcher finds the run it started by that name). ``dry_run`` is a deployment parameter: an
upload dropped into a ``check/`` folder of the inbox is announced "check only" and its run
is a dry run.

No retries (see ``tasks/load.py``): re-running the flow on the same file resumes the upload.
The first task checks the configuration (settings, base URL, credentials and the token's
country, state database, the results folder): a ``ConfigurationError`` ends the run
``Failed`` with its one line as the message, before the file is read or anything written.
Runs of the same file take turns (lock ``load:<sha256>`` in the state store).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import State, flow, get_run_logger
from prefect.states import Completed, Failed

from sodtrack.bulkload.inbox import bulk_load_run_name
from sodtrack.bulkload.run import EXIT_REJECTED, results_dir
from sodtrack.contract.countries import get_country
from sodtrack.errors import ConfigurationError, ObjectStoreError
from sodtrack.links import PublicLinks
from sodtrack.state import hold_lock
from sodtrack.textsafe import printable
from tasks.load import (
    artifacts_task,
    load_task,
    read_upload_task,
    write_results_task,
)
from tasks.runtime import check_configuration_task, flow_timeout_s, open_state

ROWS_REJECTED = "Rows rejected"
"""The name of the ``Completed`` state of a load whose every row was answered, some
rejected (automations and the runs list filter on it)."""


def _run_name() -> str:
    from prefect.runtime import flow_run

    params = flow_run.parameters
    return bulk_load_run_name(
        params.get("country") or "default",
        params.get("upload_id") or Path(str(params["path"])).name,
        dry_run=bool(params.get("dry_run")),
    )


@flow(name="bulk-load", flow_run_name=_run_name, timeout_seconds=flow_timeout_s())
async def bulk_load(
    path: str,
    country: str | None = None,
    dry_run: bool = False,
    sheet: str | None = None,
    outbox: str | None = None,
    uploaded_by: str = "prefect",
    upload_id: str | None = None,
) -> State[Any]:
    """Load a CSV or XLSX file of bookings (with projects, stages, payments) for a country.

    Args:
        path: the file: a local path the worker can read, or a URL (``s3://…``: the
            watcher's stored upload on object storage; :mod:`sodtrack.objstore`).
        country: ISO code (``cl``); default ``SODTRACK_COUNTRY``.
        dry_run: run every check (catalog, coverage and slot availability, live) and write
            the same results file, creating nothing. Availability can change before the
            real run.
        sheet: the XLSX sheet to read (default: the first visible one with a header row).
        outbox: where results land, in ``<outbox>/<upload_id>/``; default
            ``SODTRACK_OUTBOX``, else ``<file's folder>/../outbox``; a folder or a URL.
        uploaded_by: who the ledger records as the uploader.
        upload_id: the id the inbox watcher gave the file (the ledger's id of its bytes and
            country); results land in that folder. A mismatch (another sheet, a dry run) is
            logged and the results go to the engine's own id folder.
    """
    logger = get_run_logger()
    try:
        settings = await check_configuration_task(
            [country] if country else None, outbox_for=path, outbox=outbox
        )
    except ConfigurationError as exc:  # nothing loaded; no retry fixes a setting
        logger.error("configuration error: %s", exc.line)
        return Failed(message=f"configuration error: {exc.line}")
    code = get_country(country or settings.country).code
    try:
        parsed = read_upload_task(path, code, sheet)
    except ObjectStoreError as exc:  # the stored upload did not arrive whole: nothing loaded
        message = f"nothing loaded, re-run later: {printable(str(exc))}"
        logger.error("%s", message)
        return Failed(message=message)
    # Two runs of one file (a trigger fired twice, a manual re-run) take turns rather than
    # one failing on the ledger's lease.
    store = open_state(settings)
    try:
        async with hold_lock(store, f"load:{parsed.file_sha256}"):
            loading = load_task.with_options(timeout_seconds=settings.task_timeout_s)
            result = await loading(settings, parsed, uploaded_by=uploaded_by, dry_run=dry_run)
    finally:
        store.dispose()
    folder = result.upload_id
    if upload_id and upload_id != result.upload_id:
        logger.warning(
            "the watcher's upload id %s is not this run's %s (dry run, or another sheet): "
            "results go to the run's own folder",
            upload_id,
            result.upload_id,
        )
    out_dir = results_dir(settings, path, folder, outbox=outbox)
    run = write_results_task(parsed, result, str(out_dir))
    data = await artifacts_task(run, PublicLinks.from_settings(settings))
    message = run.headline()
    if run.success:
        logger.info("%s", message)
        return Completed(message=message, data=data)
    if run.exit_code == EXIT_REJECTED and run.accounted_for:
        logger.warning("%s", message)
        return Completed(name=ROWS_REJECTED, message=message, data=data)
    logger.error("%s", message)
    return Failed(message=message, data=data)
