"""The input layer of the spreadsheet bulk loader: a CSV or XLSX file of bookings in, typed and
validated rows out, each with an exact outcome. Pure library: no HTTP, no Prefect.

    upload = read_upload(Path("bookings.xlsx"), "cl", mapping=load_mapping_file(Path("map.yaml")))
    if upload.has_upload_errors: ...            # the file as a whole cannot be loaded
    for row in upload.valid_rows: ...           # BookingRow, typed, ready for the API client
    for row in upload.rejected_rows: row.errors # RowIssue(row_number, field, code, message, ...)
    upload.projects["PRJ-1"].payments           # what the engine needs for its own checks

Modules by concern: :mod:`.reader` (file -> raw rows), :mod:`.headers` (header matching),
:mod:`.values` (pure value parsers and their rules), :mod:`.rows` (raw row -> BookingRow),
:mod:`.crossrow` (file-level checks, project plans), :mod:`.upload` (``read_upload``),
:mod:`.neutralise` (formula-injection guard for the results writer).
"""

from sodtrack.loader.crossrow import ProjectPlan, StagePlan, plan_projects
from sodtrack.loader.headers import (
    ALIASES,
    CANONICAL_COLUMNS,
    PAYMENT_COLUMNS,
    MappingFileError,
    header_key,
    load_mapping_file,
)
from sodtrack.loader.issues import InvalidValue, IssueCode, Note, RowIssue, Severity, UploadIssue
from sodtrack.loader.neutralise import needs_neutralising, neutralise_formula
from sodtrack.loader.rows import INTERPRETED_FIELDS, BookingRow
from sodtrack.loader.upload import ParsedUpload, read_upload
from sodtrack.loader.values import PAYMENT_METHODS, PaymentMethod

__all__ = [
    "ALIASES",
    "CANONICAL_COLUMNS",
    "INTERPRETED_FIELDS",
    "PAYMENT_COLUMNS",
    "PAYMENT_METHODS",
    "BookingRow",
    "InvalidValue",
    "IssueCode",
    "MappingFileError",
    "Note",
    "ParsedUpload",
    "PaymentMethod",
    "ProjectPlan",
    "RowIssue",
    "Severity",
    "StagePlan",
    "UploadIssue",
    "header_key",
    "load_mapping_file",
    "needs_neutralising",
    "neutralise_formula",
    "plan_projects",
    "read_upload",
]
