"""The spreadsheet bulk load: a CSV or XLSX file of bookings in, every row created in Sodtrack
(or explained) out, with an exact answer per row. Pure library: no Prefect (the flow's tasks in
``tasks/load.py`` and the CLI call it).

    upload = read_upload(Path("bookings.xlsx"), "cl", mapping=load_mapping_file(Path("map.yaml")))
    if upload.has_upload_errors: ...            # the file as a whole cannot be loaded
    for row in upload.valid_rows: ...           # BookingRow, typed, ready for the API client
    result = await run_upload(upload, client, Ledger(url), uploaded_by="ana", dry_run=False)
    write_results(result, upload.rows, upload.columns, Path("out"))   # results + rejects
    await cancel_upload(result.upload_id, client, ledger)             # undo what it created

The package, one folder per concern, in layers: a module imports from its own layer and the
layers above it, never from one below (``tests/test_imports.py`` holds this table as data and
checks it):

=====  ====================  ======================================================================
layer  modules               what they hold
=====  ====================  ======================================================================
0      ``columns``           the sheet's columns, declared once in ``schemas/bulkload/columns.yaml``
                             (name, type, required-ness, aliases per language, template help,
                             example), validated at import; every part below derives its tables
                             from it.
0      ``issues``,           the vocabulary every part shares: typed issues (codes, severities),
       ``outcomes``,         the outcome of a row (``RowResult``, holding one ``Explanation``) and
       ``messages``,         of an upload (``UploadResult``), the plain-language messages and fixes,
       ``neutralise``        the formula-injection guard.
1      ``reading/``          file -> typed rows: ``limits`` (refuse hostile files before parsing),
                             ``reader`` (CSV dialects, XLSX; ``cfb`` tells encrypted XLSX from
                             .xls, ``merges`` reads merged cells), ``headers`` (header matching),
                             ``values`` (pure cell parsers), ``rows`` (raw row -> ``BookingRow``),
                             ``crossrow`` (checks across rows, project plans), ``upload``
                             (``read_upload``).
2      ``engine/``           rows -> writes in Sodtrack: ``plan`` (what to write, in which order),
                             ``ledger`` (durable per-row state), ``catalog`` / ``checks``
                             (validation against Sodtrack), ``existing`` / ``compare`` (rows
                             Sodtrack already holds: corrections), ``load`` (the writes),
                             ``verdicts`` and ``assemble`` (one answer per row, of a run or a dry
                             run), ``run`` (``run_upload``), ``cancel`` (undo an upload).
3      ``answers/``          what an operator reads: ``highlight`` (the cells a row's answer is
                             about), ``results`` (results and rejects files).
4      ``run``               one bulk load end to end as ``sodtrack-etl load`` and the
                             ``bulk-load`` flow run it: settings wired in, exit code and summary.
5      ``inbox/``,           the watched folder (completeness, the SQL registry of received
       ``template``,         uploads, the ``sodtrack.upload.received`` events, the watcher); the
       ``synth``             blank XLSX template of a country (from the live catalog); synthetic
                             uploads for demos, tests and benchmarks.
=====  ====================  ======================================================================
"""

from sodtrack.bulkload.answers.highlight import CellMark, highlights
from sodtrack.bulkload.answers.results import ResultFiles, write_results
from sodtrack.bulkload.engine.cancel import CancelResult, cancel_upload
from sodtrack.bulkload.engine.ledger import DEFAULT_LEDGER_URL, Ledger, upload_id_for
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.issues import (
    InvalidValue,
    IssueCode,
    IssueSeverity,
    Note,
    RowIssue,
    UploadIssue,
)
from sodtrack.bulkload.neutralise import needs_neutralising, neutralise_formula
from sodtrack.bulkload.outcomes import OUTCOMES, Explanation, Outcome, RowResult, UploadResult
from sodtrack.bulkload.reading.crossrow import ProjectPlan, StagePlan, plan_projects
from sodtrack.bulkload.reading.headers import (
    ALIASES,
    CANONICAL_COLUMNS,
    PAYMENT_COLUMNS,
    MappingFileError,
    header_key,
    load_mapping_file,
)
from sodtrack.bulkload.reading.rows import INTERPRETED_FIELDS, BookingRow
from sodtrack.bulkload.reading.upload import ParsedUpload, read_upload
from sodtrack.bulkload.reading.values import PAYMENT_METHODS
from sodtrack.errors import LeaseHeld

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
    "CellMark",
    "Explanation",
    "InvalidValue",
    "IssueCode",
    "IssueSeverity",
    "LeaseHeld",
    "Ledger",
    "MappingFileError",
    "Note",
    "Outcome",
    "ParsedUpload",
    "ProjectPlan",
    "ResultFiles",
    "RowIssue",
    "RowResult",
    "StagePlan",
    "UploadIssue",
    "UploadResult",
    "cancel_upload",
    "header_key",
    "highlights",
    "load_mapping_file",
    "needs_neutralising",
    "neutralise_formula",
    "plan_projects",
    "read_upload",
    "run_upload",
    "upload_id_for",
    "write_results",
]
