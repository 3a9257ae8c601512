"""The input layer of the spreadsheet bulk loader: a CSV or XLSX file of bookings in, typed and
validated rows out, each with an exact outcome. Pure library: no HTTP, no Prefect.

    upload = read_upload(Path("bookings.xlsx"), "cl", mapping=load_mapping_file(Path("map.yaml")))
    if upload.has_upload_errors: ...            # the file as a whole cannot be loaded
    for row in upload.valid_rows: ...           # BookingRow, typed, ready for the API client
    for row in upload.rejected_rows: row.errors # RowIssue(row_number, field, code, message, ...)
    upload.projects["PRJ-1"].payments           # what the engine needs for its own checks

Modules by concern: :mod:`.reader` (file -> raw rows; :mod:`.cfb` tells a password-protected
XLSX from an old .xls, :mod:`.merges` reads merged cells), :mod:`.headers` (header matching),
:mod:`.values` (pure value parsers and their rules), :mod:`.rows` (raw row -> BookingRow),
:mod:`.crossrow` (file-level checks, project plans), :mod:`.upload` (``read_upload``),
:mod:`.neutralise` (formula-injection guard for the results writer).

The load engine, on top of it (pure library too; it talks to Sodtrack through the client):

    result = await run_upload(upload, client, Ledger(url), uploaded_by="ana", dry_run=False)
    write_results(result, upload.rows, upload.columns, Path("out"))   # results + rejects
    await cancel_upload(result.upload_id, client, ledger)             # undo what it created

Engine modules: :mod:`.ledger` (durable state), :mod:`.plan` (what to write, in which order),
:mod:`.catalog` / :mod:`.checks` (validation against Sodtrack), :mod:`.load` (the writes),
:mod:`.verdicts` / :mod:`.answers` / :mod:`.outcomes` (one answer per row), :mod:`.engine`
(``run_upload``), :mod:`.existing` / :mod:`.compare` (rows Sodtrack already has: corrections),
:mod:`.results` (files), :mod:`.messages` (plain-language errors),
:mod:`.cancel`, :mod:`.synth` (synthetic uploads for demos and benchmarks).
"""

from sodtrack.errors import LeaseHeld
from sodtrack.loader.cancel import CancelResult, cancel_upload
from sodtrack.loader.crossrow import ProjectPlan, StagePlan, plan_projects
from sodtrack.loader.engine import run_upload
from sodtrack.loader.headers import (
    ALIASES,
    CANONICAL_COLUMNS,
    PAYMENT_COLUMNS,
    MappingFileError,
    header_key,
    load_mapping_file,
)
from sodtrack.loader.issues import InvalidValue, IssueCode, Note, RowIssue, Severity, UploadIssue
from sodtrack.loader.ledger import DEFAULT_LEDGER_URL, Ledger, upload_id_for
from sodtrack.loader.neutralise import needs_neutralising, neutralise_formula
from sodtrack.loader.outcomes import OUTCOMES, Outcome, RowResult, UploadResult
from sodtrack.loader.results import ResultFiles, write_results
from sodtrack.loader.rows import INTERPRETED_FIELDS, BookingRow
from sodtrack.loader.upload import ParsedUpload, read_upload
from sodtrack.loader.values import PAYMENT_METHODS, PaymentMethod

__all__ = [
    "ALIASES",
    "CANONICAL_COLUMNS",
    "DEFAULT_LEDGER_URL",
    "INTERPRETED_FIELDS",
    "OUTCOMES",
    "PAYMENT_COLUMNS",
    "PAYMENT_METHODS",
    "BookingRow",
    "CancelResult",
    "InvalidValue",
    "IssueCode",
    "LeaseHeld",
    "Ledger",
    "MappingFileError",
    "Note",
    "Outcome",
    "ParsedUpload",
    "PaymentMethod",
    "ProjectPlan",
    "ResultFiles",
    "RowIssue",
    "RowResult",
    "Severity",
    "StagePlan",
    "UploadIssue",
    "UploadResult",
    "cancel_upload",
    "header_key",
    "load_mapping_file",
    "needs_neutralising",
    "neutralise_formula",
    "plan_projects",
    "read_upload",
    "run_upload",
    "upload_id_for",
    "write_results",
]
