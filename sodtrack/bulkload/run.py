"""One bulk load end to end, the way ``sodtrack-etl load`` and the ``bulk-load`` flow run it.

    parsed = read(path, "cl")                                   # the file, checked locally
    result = await load(settings, parsed, uploaded_by="ana")    # live checks, then writes
    run = finish(settings, parsed, result)                      # results files, exit code
    run.exit_code, run.files.results_xlsx, run.summary_markdown()

The library underneath is :mod:`sodtrack.bulkload` (reader, engine, ledger, results files);
this module only wires it to the settings (client, ledger URL, outbox) and decides what a
run *means* for a caller: the exit code and the words of the summary. No Prefect here: the
flow's tasks (``tasks/load.py``) call these functions too.

The file and the outbox may be on object storage (:mod:`sodtrack.objstore`): a URL
(``s3://bucket/uploads/<upload_id>/bookings.xlsx``, the watcher's stored upload) is read
through a private local copy, and results for an ``s3://`` outbox are written to a private
temporary folder, then uploaded; :attr:`LoadRun.out_dir` and :meth:`LoadRun.file_paths` are
then URLs, and a file that could not be uploaded counts as not written (exit code ``5``).

Exit codes (the worst class wins, in this order)
------------------------------------------------
``2``  nothing was loaded: the file (or the command) cannot be used as it is: unreadable,
       cut short (``file_truncated``), a required column missing, a column mapped twice, a
       bad mapping file, or a re-run that reads the file into other rows than the first run
       did.
``5``  the upload is incomplete: some rows failed transiently (Sodtrack did not answer in
       time even after the client's retries), or were skipped behind such a row. Re-run the
       same command: it resumes, creates nothing twice, and then ends ``0`` or ``4``. Also
       when another process is loading the same upload right now, and (nothing loaded) when
       a stored upload on object storage did not arrive whole: :func:`read` raises
       :class:`~sodtrack.errors.IncompleteObject` rather than parse a shorter file.
``4``  some rows need a person: ``rejected`` (invalid data, or a conflict such as a slot
       that is taken), or ``skipped_dependency`` behind a rejected row. Nothing waits for a
       re-run. They are in the rejects file with a message and a suggested fix; fix them
       there and upload that file.
``0``  every row was created, updated or already existed (a dry run: every row would be
       created or updated).

A results file that could not be written (a full disk, a permission) turns ``0`` and ``4``
into ``5``: the answer is incomplete, and the re-run (which creates nothing twice) writes it.
The files that were written are still written, and the run names the one that failed
(:attr:`LoadRun.unwritten`).

Counts: every count a run reports (needs a person, to re-run, by outcome) is
:attr:`UploadResult.tally <sodtrack.bulkload.outcomes.UploadResult.tally>`, the one
definition ``summary.json``, the results file, the CLI and the flow's artifacts share.

``skipped_dependency`` has no code of its own: a skipped row is always behind another row's
failure, and what to do about it is that failure's (re-run for a transient one, fix the
data for a rejection), so it takes that class's code.
"""

from __future__ import annotations

import asyncio
import dataclasses
import posixpath
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from sodtrack import objstore
from sodtrack.bulkload import (
    Ledger,
    ParsedUpload,
    ResultFiles,
    RowResult,
    UploadResult,
    read_upload,
    run_upload,
    write_results,
)
from sodtrack.bulkload.engine.load import PhaseProgress
from sodtrack.bulkload.outcomes import SUCCESS
from sodtrack.bulkload.reading.limits import UploadLimits
from sodtrack.client import country_client
from sodtrack.contract.countries import get_country
from sodtrack.settings import Settings
from sodtrack.textsafe import printable

EXIT_OK: Final = 0
EXIT_UNUSABLE: Final = 2
EXIT_REJECTED: Final = 4
EXIT_INCOMPLETE: Final = 5

EXIT_CODES: Final[Mapping[int, str]] = {
    EXIT_OK: "every row was created, updated or already existed (dry run: every row would be "
    "created or updated)",
    EXIT_UNUSABLE: "nothing was loaded: the file or the command cannot be used as it is",
    EXIT_REJECTED: "some rows were rejected (or skipped behind a rejected row): fix them in "
    "the rejects file and upload it",
    EXIT_INCOMPLETE: "the upload is incomplete (transient failures): re-run the same command "
    "to resume",
}
"""Exit code → what it means (the CLI's help, the README and the flow's summary quote it)."""

REJECTED_TABLE_LIMIT: Final = 200
"""Rows shown in a table of rejected rows; the rest are in the rejects file."""


def exit_code_for(result: UploadResult) -> int:
    """The worst class among the rows wins: unusable file, then incomplete, then rejected."""
    if result.upload_errors:
        return EXIT_UNUSABLE
    if any(r.retry_on_rerun for r in result.rows):
        return EXIT_INCOMPLETE
    if any(r.outcome not in SUCCESS for r in result.rows):
        return EXIT_REJECTED
    return EXIT_OK


def open_ledger(settings: Settings) -> Ledger:
    """The load ledger lives in the state store's database (tables ``load_*``)."""
    return Ledger(settings.state_url)


def outbox_root(
    settings: Settings, path: str | Path, outbox: str | Path | None = None
) -> str | Path:
    """Where results land: ``outbox``, else ``SODTRACK_OUTBOX``, else ``<file's folder>/../outbox``
    (an ``inbox/`` beside an ``outbox/``). A ``Path`` for a folder, the URL as a string for
    object storage (``s3://bucket/outbox``: :mod:`sodtrack.objstore`)."""
    chosen = outbox or getattr(settings, "outbox", None)
    if chosen:
        return str(chosen).rstrip("/") if objstore.is_remote(chosen) else Path(chosen)
    if objstore.is_remote(path):
        return posixpath.dirname(posixpath.dirname(str(path))) + "/outbox"
    return Path(path).resolve().parent.parent / "outbox"


def upload_limits(settings: Settings) -> UploadLimits:
    """The ``SODTRACK_UPLOAD_MAX_*`` settings as the reader's :class:`UploadLimits`."""
    return UploadLimits(
        max_file_bytes=int(settings.upload_max_file_bytes),
        max_rows=settings.upload_max_rows,
        max_columns=settings.upload_max_columns,
        max_cells=settings.upload_max_cells,
        max_cell_chars=settings.upload_max_cell_chars,
        max_uncompressed_bytes=int(settings.upload_max_uncompressed_bytes),
        max_compression_ratio=settings.upload_max_compression_ratio,
        max_zip_members=settings.upload_max_zip_members,
    )


def read(
    path: str | Path,
    country: str,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    limits: UploadLimits | None = None,
    endpoint_url: str | None = None,
) -> ParsedUpload:
    """Read and check the file (nothing written to Sodtrack); ``limits`` default to
    :class:`UploadLimits`' defaults. A URL (a stored upload on ``s3://``) is read through a
    private local copy, removed afterwards (:func:`sodtrack.objstore.local_copy`)."""
    code = get_country(country).code
    if not objstore.is_remote(path):
        return read_upload(Path(path), code, sheet=sheet, mapping=mapping, limits=limits)
    cap = int((limits or UploadLimits()).max_file_bytes)
    with objstore.local_copy(str(path), max_bytes=cap, endpoint_url=endpoint_url) as local:
        return read_upload(local, code, sheet=sheet, mapping=mapping, limits=limits)


async def load(
    settings: Settings,
    parsed: ParsedUpload,
    *,
    uploaded_by: str,
    dry_run: bool = False,
    check_availability: bool | None = None,
    progress: PhaseProgress | None = None,
    new_upload: str | None = None,
) -> UploadResult:
    """Check every row live (catalog, coverage and, by default on a dry run only, slot
    availability), then (unless ``dry_run``) create what the file asks for.

    The client retries transient errors itself, and the ledger makes a re-run of the same
    file resume where this one stopped: callers must not retry this call.
    """
    availability = dry_run if check_availability is None else check_availability
    ledger = open_ledger(settings)
    try:
        async with country_client(settings, parsed.country) as client:
            return await run_upload(
                parsed,
                client,
                ledger,
                dry_run=dry_run,
                check_availability=availability,
                uploaded_by=uploaded_by,
                progress=progress,
                new_upload=new_upload,
            )
    finally:
        ledger.close()


@dataclass(frozen=True, slots=True)
class LoadRun:
    """One run of an upload, as a caller reports it."""

    parsed: ParsedUpload
    result: UploadResult
    files: ResultFiles
    out_dir: str | Path
    """The results folder: a ``Path``, or a URL (``s3://…``) the files were uploaded to (then
    :attr:`files` names the local copies they were written from, since removed)."""

    def where(self, path: Path) -> str:
        """Where one of :attr:`files` is for a reader: its path, or its object's URL."""
        return str(objstore.join(self.out_dir, path.name))

    @property
    def upload_id(self) -> str:
        return self.result.upload_id

    @property
    def exit_code(self) -> int:
        code = exit_code_for(self.result)
        if self.unwritten and code in (EXIT_OK, EXIT_REJECTED):
            return EXIT_INCOMPLETE
        return code

    @property
    def unwritten(self) -> dict[str, str]:
        """Result files that could not be written → why (empty when all were)."""
        return dict(self.files.failed)

    @property
    def accounted_for(self) -> bool:
        """Every input row has exactly one answer, and the results file holds every row."""
        rows = self.result.rows
        return [r.position for r in rows] == list(range(len(self.parsed.rows))) and sum(
            self.result.counts.values()
        ) == len(self.parsed.rows)

    @property
    def rows_needing_a_person(self) -> int:
        return self.result.tally.needs_a_person

    @property
    def rows_to_rerun(self) -> int:
        return self.result.tally.retry_on_rerun

    @property
    def success(self) -> bool:
        return self.exit_code == EXIT_OK

    def counts(self) -> dict[str, int]:
        return dict(self.result.counts)

    def headline(self) -> str:
        """One line: what happened to the rows (the flow's final state message)."""
        r = self.result
        total = len(self.parsed.rows)
        if r.upload_errors:
            return (
                f"{r.upload_id}: the file cannot be loaded ({len(r.upload_errors)} file-level "
                f"error(s): {printable(r.upload_errors[0])}); nothing was written"
            )
        done = "would be created or updated" if r.dry_run else "created, updated or already existed"
        parts = ", ".join(f"{n} {o}" for o, n in r.counts.items() if n)
        accounted = (
            f"all {total} rows accounted for"
            if self.accounted_for
            else f"NOT every row accounted for ({sum(r.counts.values())} answers, {total} rows)"
        )
        if self.success:
            return f"{r.upload_id}: {accounted}; every row {done} ({parts})"
        rejected = r.counts.get("rejected", 0)
        skipped = r.counts.get("skipped_dependency", 0)
        failed = r.counts.get("failed_transient", 0)
        what = f"{rejected} rejected, {skipped} skipped, {failed} failed (transient)"
        then = (
            "re-run the same file to resume"
            if self.exit_code == EXIT_INCOMPLETE
            else f"fix {self.rows_needing_a_person} row(s) in the rejects file"
        )
        if self.unwritten:
            then += f"; results file(s) not written: {', '.join(self.unwritten)}"
        return f"{r.upload_id}: {accounted}; {what} ({parts}); {then}"

    def counts_table(self) -> list[dict[str, Any]]:
        """Rows by outcome, zeros included (a table artifact, a CLI table)."""
        total = max(1, len(self.result.rows))
        return [
            {"outcome": o, "rows": n, "share": f"{100 * n / total:.1f}%"}
            for o, n in self.result.counts.items()
        ]

    def problem_rows(self, limit: int = REJECTED_TABLE_LIMIT) -> tuple[list[dict[str, Any]], int]:
        """Rows not created (rejected, skipped, failed), in file order, with their message and
        suggested fix; at most ``limit``, and how many more there are."""
        problems = [r for r in self.result.rows if r.outcome not in SUCCESS]
        shown = [self._problem(r) for r in problems[:limit]]
        return shown, max(0, len(problems) - limit)

    def _problem(self, r: RowResult) -> dict[str, Any]:
        row = self.parsed.rows[r.position] if r.position < len(self.parsed.rows) else None
        return {
            "row": printable(f"{r.sheet}!{r.row_number}" if r.sheet else str(r.row_number)),
            "external_reference": printable(getattr(row, "external_reference", "") or ""),
            "outcome": r.outcome,
            "failed_step": r.failed_step or "",
            "error_code": r.error_code or "",
            "message": printable(r.message or ""),
            "suggested_fix": printable(r.suggested_fix or ""),
            "re-run fixes it": "yes" if r.retry_on_rerun else "no",
        }

    def file_paths(self) -> dict[str, str]:
        """This run's files (``run-N`` names) that were written."""
        f = self.files
        paths = {
            "results_xlsx": f.results_xlsx,
            "results_csv": f.results_csv,
            "rejects_xlsx": f.rejects_xlsx,
            "rejects_csv": f.rejects_csv,
            "summary_json": f.summary_json,
        }
        return {k: self.where(p) for k, p in paths.items() if k not in f.failed}

    def latest_paths(self) -> dict[str, str]:
        """The latest-run copies (stable names) that were written."""
        return {k: self.where(p) for k, p in self.files.latest.items()}

    def summary_markdown(self, limit: int = 20) -> str:
        """The run in plain words: counts, what to do next, notices, files, the first
        problem rows."""
        r = self.result
        total = len(self.parsed.rows)
        mode = "dry run (nothing created)" if r.dry_run else "load"
        lines = [
            f"# Bulk load of `{_md(r.file_name)}` ({r.country}): {mode}",
            "",
            f"* **upload id** `{r.upload_id}`, run {r.run_no}, {total} rows, "
            f"{r.requests} requests, {r.elapsed_s:.1f} s",
            f"* **every row accounted for**: {'yes' if self.accounted_for else '**no**'}",
            f"* **rejected**: {r.counts.get('rejected', 0)} "
            f"(rows needing a person: {self.rows_needing_a_person}; "
            f"rows a re-run will retry: {self.rows_to_rerun})",
            f"* **exit code** {self.exit_code}: {EXIT_CODES[self.exit_code]}",
            "",
            "| outcome | rows |",
            "| --- | ---: |",
            *(f"| {o} | {n} |" for o, n in r.counts.items()),
        ]
        if r.upload_errors:
            lines += ["", "## The file cannot be loaded", ""]
            lines += [f"* {_md(e)}" for e in r.upload_errors]
        if r.notices:
            lines += ["", "## Notices", ""]
            lines += [f"* {_md(n)}" for n in r.notices]
        lines += ["", "## Files", ""]
        lines += [f"* {name}: `{_md(printable(p))}`" for name, p in self.file_paths().items()]
        lines += [
            f"* **not written** {name}: {_md(why)} (re-run the same file to write it)"
            for name, why in self.unwritten.items()
        ]
        problems, more = self.problem_rows(limit)
        if problems:
            lines += [
                "",
                "## Rows not created",
                "",
                "| row | reference | outcome | message | suggested fix |",
                "| --- | --- | --- | --- | --- |",
            ]
            lines += [
                f"| {p['row']} | {_md(p['external_reference'])} | {p['outcome']} | "
                f"{_md(p['message'])} | {_md(p['suggested_fix'])} |"
                for p in problems
            ]
            if more:
                lines += ["", f"… and {more} more: every one is in the rejects/results file."]
        return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return printable(text).replace("|", "\\|")


def finish(
    parsed: ParsedUpload,
    result: UploadResult,
    *,
    out_dir: str | Path,
    endpoint_url: str | None = None,
) -> LoadRun:
    """Write the results, rejects and summary files into ``out_dir``: a folder, or a URL
    (``s3://…``), where they are written into a private temporary folder and uploaded one by
    one; one that fails to upload is in :attr:`LoadRun.unwritten` like a file that failed to
    be written."""
    if not objstore.is_remote(out_dir):
        files = write_results(result, parsed.rows, parsed.columns, Path(out_dir))
        return LoadRun(parsed, result, files, Path(out_dir))
    url = str(out_dir).rstrip("/")
    with tempfile.TemporaryDirectory(prefix="sodtrack-results-") as tmp:  # 0700
        files = write_results(result, parsed.rows, parsed.columns, Path(tmp))
        kinds = {p.name: k for k, p in files.paths().items() if k not in files.failed}
        kinds |= {p.name: f"latest {k}" for k, p in files.latest.items()}
        not_put = objstore.put_files(Path(tmp), kinds, url, endpoint_url=endpoint_url)
    failed = dict(files.failed) | {kinds[name]: why for name, why in not_put.items()}
    latest = {k: p for k, p in files.latest.items() if f"latest {k}" not in failed}
    files = dataclasses.replace(files, failed=failed, latest=latest)
    return LoadRun(parsed, result, files, url)


def results_dir(
    settings: Settings,
    path: str | Path,
    upload_id: str,
    *,
    out: str | Path | None = None,
    outbox: str | Path | None = None,
) -> str | Path:
    """``out`` as given, else ``<outbox>/<upload_id>/`` (a URL string on object storage)."""
    if out:
        return str(out).rstrip("/") if objstore.is_remote(out) else Path(out)
    return objstore.join(outbox_root(settings, path, outbox), upload_id)


async def run_load(
    settings: Settings,
    path: str | Path,
    *,
    country: str | None = None,
    uploaded_by: str,
    dry_run: bool = False,
    sheet: str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    check_availability: bool | None = None,
    out: str | Path | None = None,
    outbox: str | Path | None = None,
    progress: PhaseProgress | None = None,
    new_upload: str | None = None,
) -> LoadRun:
    """read → load → results files, in one call (the CLI, the demo)."""
    code = get_country(country or settings.country).code
    parsed = await asyncio.to_thread(
        read,
        path,
        code,
        sheet=sheet,
        mapping=mapping,
        limits=upload_limits(settings),
        endpoint_url=settings.s3_endpoint_url,
    )
    result = await load(
        settings,
        parsed,
        uploaded_by=uploaded_by,
        dry_run=dry_run,
        check_availability=check_availability,
        progress=progress,
        new_upload=new_upload,
    )
    out_dir = results_dir(settings, path, result.upload_id, out=out, outbox=outbox)
    return await asyncio.to_thread(
        finish, parsed, result, out_dir=out_dir, endpoint_url=settings.s3_endpoint_url
    )


def new_upload_salt() -> str:
    """A salt for ``--new-upload``: the same bytes as a separate upload."""
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + f".{time.time_ns() % 1_000_000:06d}"
