"""Results and rejects files: the exact answer for every row, in the sheet's own terms.

Per run of an upload, under ``out_dir`` (``N`` = the run number the ledger gave the run)::

    {stem}.{upload_id}.run-N.results.csv    every row, original order, outcome, ids, errors, values
    {stem}.{upload_id}.run-N.results.xlsx   the same, plus a "Summary" sheet
    {stem}.{upload_id}.run-N.rejects.csv    the rows to fix: the answer, then the input as uploaded
    {stem}.{upload_id}.run-N.rejects.xlsx   the same in XLSX
    {stem}.{upload_id}.run-N.summary.json   the counts (:func:`~sodtrack.bulkload.outcomes.tally`),
                                            notices, request figures

and beside them the same five without ``.run-N``: a copy of the latest run's (stable names to
link to). Every run keeps its own files: a re-run never overwrites an earlier run's answer.
Each file is written to a ``0600`` temporary file and renamed into place (a reader never sees
half a file; folders created ``0700``: see :mod:`sodtrack.private`).

Never a crash after the writes: whatever is in the cells, every file is written. If writing
one fails anyway (a full disk, a permission), the others are still written and
:attr:`ResultFiles.failed` names the one that failed and why; the callers say so.

Results columns: ``outcome``, ``message``, ``suggested_fix`` first (what a person reads), then
``sheet``, ``row``, ``failed_step``, ``needs_a_person``, ``error_code``, ``retry_on_rerun``, the
Sodtrack ids (``project_id``, ``booking_id``, ``stage_id``, ``payment_id``), each step's status
(``project_step`` …), the reader's ``warnings``, then for every field the file carries the
cell(s) as uploaded (``input: <header>``) beside what the loader read (``read as: <field>``),
and last the columns the loader did not use (``input: <header>``). ``needs_a_person`` and
``retry_on_rerun`` are the per-row predicates the summary's counts sum.

The rejects file holds the rows that need a person (``rejected``, or ``skipped_dependency``
with a permanent cause: :func:`~sodtrack.bulkload.outcomes.needs_a_person`). Rows waiting on a
transient failure are not in it (re-run the same file). It leads with the answer,
``sodtrack_outcome``, ``sodtrack_message``, ``sodtrack_suggested_fix``, ``sodtrack_row``,
``sodtrack_error_code`` (:data:`REJECT_COLUMNS`), then the input's columns exactly as uploaded
(same names, same order, values as the sheet showed them). The reader ignores those answer
columns (:data:`~sodtrack.bulkload.reading.headers.ANSWER_COLUMNS`: neither loaded nor
reported), so the file can be fixed and uploaded again as it is (stale answer columns from an
earlier round are replaced, never doubled).

In the XLSX files (:func:`write_xlsx`) the header is bold and frozen, every column is sized to
its longest line (:data:`WIDTH_MIN` to :data:`WIDTH_MAX` characters), and the cells a row's
answer is about (:func:`~.highlight.highlights`, the one definition a page can show too) are
filled, red for a rejected row's cells at fault, amber for the reader's warnings, with the
message as the cell's comment; the outcome cell of a row a person must fix is red. In the
results file the marks are on the ``input: <header>`` cells.

Characters a cell cannot hold (control characters such as a vertical tab or an ESC, lone
surrogates: :func:`sodtrack.textsafe.cell_safe`) are written as visible ``<U+000B>`` text, in
CSV and XLSX alike, with a warning on the row (results: ``warnings``; rejects: appended to
``sodtrack_message``). Re-uploading a rejects file reads ``<U+000B>`` back as those
characters, never as the control character.

Spreadsheet safety: every text cell goes through
:func:`~.neutralise.neutralise_formula` (a leading ``=``, ``+``, ``-``, ``@``…
gets a ``'``); in CSV every field is quoted and every segment after a ``,``, a ``;`` or a line
break that would start a formula is neutralised too (safe for a ``,`` and a ``;`` reader
alike: LibreOffice checks it, tests/bulkload/answers/test_results_libreoffice.py). XLSX
cells are written as explicit strings (never as formulas, never re-typed: postal codes keep
their zeros), and a literal ``_xHHHH_`` in the text is escaped (``_x005F_``) so Excel and
calamine show it as typed. CSV is UTF-8 with a BOM so that Excel shows accents right, with
CRLF line ends.

A cell holds at most 32,767 characters (:data:`CELL_MAX_CHARS`; Excel refuses or cuts longer
text): a longer one (a long value whose control characters became ``<U+XXXX>``, a message
quoting it) is cut there, in CSV and XLSX alike, and ends with a visible ``…[cut: N
characters in all, a cell holds 32,767]``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.comments import Comment
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from sodtrack.bulkload.answers.highlight import SOURCES, CellMark, highlights
from sodtrack.bulkload.neutralise import (
    needs_neutralising,
    neutralise_csv_field,
    neutralise_formula,
)
from sodtrack.bulkload.outcomes import RowResult, UploadResult, needs_a_person
from sodtrack.bulkload.reading.headers import ANSWER_COLUMNS
from sodtrack.bulkload.reading.rows import INTERPRETED_FIELDS, BookingRow
from sodtrack.bulkload.reading.values import cell_text
from sodtrack.private import atomic_binary, atomic_text, copy_private, private_dir
from sodtrack.textsafe import cell_safe, printable, unsafe_chars

STATUS_COLUMNS: Final = (
    "outcome",
    "message",
    "suggested_fix",
    "sheet",
    "row",
    "failed_step",
    "needs_a_person",
    "error_code",
    "retry_on_rerun",
    "project_id",
    "booking_id",
    "stage_id",
    "payment_id",
    "project_step",
    "booking_step",
    "stage_step",
    "payment_step",
    "warnings",
)
REJECT_COLUMNS: Final = ANSWER_COLUMNS
"""The rejects file's leading columns (the reader ignores them when the file comes back:
:data:`~sodtrack.bulkload.reading.headers.ANSWER_COLUMNS`)."""
CELL_MAX_CHARS: Final = 32_767
"""What a spreadsheet cell holds (Excel's limit, in UTF-16 code units): longer text (a long
value whose control characters grew to ``<U+XXXX>``, a message quoting it) is cut, saying so
in the cell."""
STEM_BYTES: Final = 120
"""The most of the upload's file name a results file name keeps (the rest are ids, suffixes)."""
_OOXML_ESCAPE: Final = re.compile(r"_(x[0-9A-Fa-f]{4}_)")
_PARTIAL_ESCAPE: Final = re.compile(r"<(?:U(?:\+[0-9A-F]{0,6})?)?\Z")
"""The start of a ``<U+XXXX>`` escape at the end of a text cut short."""
FILE_KINDS: Final = ("results_csv", "results_xlsx", "rejects_csv", "rejects_xlsx", "summary_json")
_SUFFIXES: Final[Mapping[str, str]] = {
    "results_csv": "results.csv",
    "results_xlsx": "results.xlsx",
    "rejects_csv": "rejects.csv",
    "rejects_xlsx": "rejects.xlsx",
    "summary_json": "summary.json",
}


@dataclass(frozen=True, slots=True)
class ResultFiles:
    """The files of one run (``run-N`` names), the latest-run copies, and what failed."""

    results_csv: Path
    results_xlsx: Path
    rejects_csv: Path
    rejects_xlsx: Path
    summary_json: Path
    rejects: int
    """Rows in the rejects file."""
    latest: Mapping[str, Path] = field(default_factory=dict)
    """The stable copies of the latest run, by kind (``results_xlsx`` …)."""
    failed: Mapping[str, str] = field(default_factory=dict)
    """What could not be written → why: a kind (``results_xlsx`` …), ``latest <kind>`` (the
    latest-run copy), or ``folder`` (``out_dir`` itself)."""

    def paths(self) -> dict[str, Path]:
        return {kind: getattr(self, kind) for kind in FILE_KINDS}

    @property
    def complete(self) -> bool:
        return not self.failed


def result_file_names(
    stem: str, upload_id: str, run_no: int
) -> tuple[dict[str, str], dict[str, str]]:
    """The names of a run's files and of the latest copies, by kind (a long ``stem`` is cut
    so that every name stays within a filesystem's 255 bytes)."""
    while len(stem.encode("utf-8", "surrogateescape")) > STEM_BYTES:
        stem = stem[:-1]
    base = f"{stem}.{upload_id}"
    run = {k: f"{base}.run-{run_no}.{sfx}" for k, sfx in _SUFFIXES.items()}
    latest = {k: f"{base}.{sfx}" for k, sfx in _SUFFIXES.items()}
    return run, latest


def text_of(value: object) -> str:
    """A value as the results file shows it (interpreted values: ISO dates, plain decimals)."""
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def original_text(value: object) -> str:
    """A cell as uploaded, as the sheet showed it."""
    return "" if value is None else cell_text(value)


is_reject = needs_a_person
"""In the rejects file: a person must fix it (not merely re-run the file)."""


def _escaped_warning(names: Sequence[str], chars: Sequence[str]) -> str:
    shown = ", ".join(f"U+{ord(c):04X}" for c in chars[:8]) + (" …" if len(chars) > 8 else "")
    where = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
    return (
        f"{where}: holds characters a spreadsheet cannot show ({shown}); written as visible "
        f"<U+XXXX> text, e.g. {cell_safe(chars[0])}"
    )


def _safe_row(names: Sequence[str], cells: Sequence[str]) -> tuple[list[str], str | None]:
    """The cells with what a cell cannot hold escaped, and a warning naming where (or None)."""
    out: list[str] = []
    where: list[str] = []
    chars: list[str] = []
    for name, text in zip(names, cells, strict=True):
        bad = unsafe_chars(text)
        if bad:
            where.append(cell_safe(name))
            chars.extend(c for c in bad if c not in chars)
            text = cell_safe(text)
        out.append(text)
    return out, (_escaped_warning(where, chars) if where else None)


def _layout(
    rows: Sequence[BookingRow], columns: Mapping[str, str]
) -> tuple[list[str], list[tuple[str, int | str]]]:
    """Header and cell sources of the value part: ``(header, source)`` with source an input
    column index (int) or an interpreted field name (str)."""
    headers: tuple[str, ...] = rows[0].headers if rows else tuple(columns)
    index = {h: i for i, h in enumerate(headers)}
    by_field: dict[str, list[str]] = {}
    for header, canonical in columns.items():
        by_field.setdefault(canonical, []).append(header)
    used: set[str] = set()
    names: list[str] = []
    sources: list[tuple[str, int | str]] = []
    for fld in INTERPRETED_FIELDS:
        inputs = [h for src in SOURCES.get(fld, (fld,)) for h in by_field.get(src, [])]
        if not inputs:
            continue
        for h in sorted(inputs, key=lambda h: index.get(h, 1 << 30)):
            if h in index:
                names.append(f"input: {h}")
                sources.append((h, index[h]))
                used.add(h)
        names.append(f"read as: {fld}")
        sources.append((fld, fld))
    for h in headers:
        if h not in used:
            names.append(f"input: {h}")
            sources.append((h, index[h]))
    return names, sources


def _status_cells(r: RowResult, extra_warning: str | None = None) -> list[str]:
    warnings = [*r.warnings, *([extra_warning] if extra_warning else [])]
    return [
        r.outcome,
        r.message or "",
        r.suggested_fix or "",
        r.sheet or "",
        str(r.row_number),
        r.failed_step or "",
        "yes" if r.needs_a_person else "",
        r.error_code or "",
        "yes" if r.retry_on_rerun else "no",
        r.project_id or "",
        r.booking_id or "",
        r.stage_id or "",
        r.payment_id or "",
        r.steps.get("project", ""),
        r.steps.get("booking", ""),
        r.steps.get("stage", ""),
        r.steps.get("payment", ""),
        " | ".join(warnings),
    ]


@dataclass(frozen=True, slots=True)
class Table:
    """One sheet of a results file: its header, its rows of text and, per row, the marked
    cells (column index → :class:`~.highlight.CellMark`)."""

    header: list[str]
    body: list[list[str]]
    marks: list[dict[int, CellMark]] = field(default_factory=list)


_NEEDS_A_PERSON: Final = CellMark("rejected", "")
"""The outcome cell of a row a person must fix (filled, no comment: the message is beside)."""


def _marks(
    r: RowResult, row: BookingRow, columns: Mapping[str, str], index: Mapping[str, int]
) -> dict[int, CellMark]:
    marks = {index[h]: m for h, m in highlights(r, row, columns).items() if h in index}
    if r.needs_a_person:
        marks[0] = _NEEDS_A_PERSON
    return marks


def result_table(
    result: UploadResult, rows: Sequence[BookingRow], columns: Mapping[str, str]
) -> Table:
    """The results file: its header and rows of text (not yet neutralised; characters a cell
    cannot hold already escaped, with a warning on the row) and the marked cells."""
    if len(result.rows) != len(rows):
        raise ValueError(f"{len(result.rows)} results for {len(rows)} rows")
    names, sources = _layout(rows, columns)
    index = {
        src: len(STATUS_COLUMNS) + i
        for i, (name, (src, _)) in enumerate(zip(names, sources, strict=True))
        if name.startswith("input: ")
    }
    out: list[list[str]] = []
    marks: list[dict[int, CellMark]] = []
    for r in sorted(result.rows, key=lambda r: r.position):
        row = rows[r.position]
        interpreted = row.interpreted()
        values: list[str] = []
        for _name, (_, src) in zip(names, sources, strict=True):
            if isinstance(src, int):
                cells = row.original_values
                values.append(original_text(cells[src]) if src < len(cells) else "")
            else:
                values.append(text_of(interpreted.get(src)))
        values, warning = _safe_row(names, values)
        status, status_warning = _safe_row(STATUS_COLUMNS, _status_cells(r, warning))
        if status_warning and not warning:  # only the message held such a character
            status, _ = _safe_row(STATUS_COLUMNS, _status_cells(r, status_warning))
        out.append(status + values)
        marks.append(_marks(r, row, columns, index))
    return Table([cell_safe(h) for h in (*STATUS_COLUMNS, *names)], out, marks)


def rejects_table(
    result: UploadResult, rows: Sequence[BookingRow], columns: Mapping[str, str] | None = None
) -> Table:
    """The rejects file: the answer first (:data:`REJECT_COLUMNS`), then the input columns
    exactly as uploaded, same names, same order (stale answer columns of an earlier round
    dropped), and the marked cells."""
    headers: tuple[str, ...] = rows[0].headers if rows else ()
    keep = [i for i, h in enumerate(headers) if h not in REJECT_COLUMNS]
    names = [headers[i] for i in keep]
    index = {h: len(REJECT_COLUMNS) + i for i, h in enumerate(names)}
    out: list[list[str]] = []
    marks: list[dict[int, CellMark]] = []
    for r in sorted(result.rows, key=lambda r: r.position):
        if not is_reject(r):
            continue
        cells = rows[r.position].original_values
        values = [original_text(cells[i]) if i < len(cells) else "" for i in keep]
        values, warning = _safe_row(names, values)
        where = f"{r.sheet}!{r.row_number}" if r.sheet else str(r.row_number)
        message = r.message or ""
        if warning:
            message = f"{message} (note: {warning})" if message else f"note: {warning}"
        lead = [r.outcome, message, r.suggested_fix or "", where, r.error_code or ""]
        out.append([*(cell_safe(t) for t in lead), *values])
        marks.append(_marks(r, rows[r.position], columns or {}, index))
    return Table([*REJECT_COLUMNS, *(cell_safe(h) for h in names)], out, marks)


def write_csv(path: Path, header: Sequence[str], body: Iterable[Sequence[str]]) -> None:
    """UTF-8 with BOM, CRLF, every field quoted, escaped (:func:`~sodtrack.textsafe.cell_safe`),
    neutralised for ``,`` and ``;`` readers and cut to what a cell holds (:func:`fit_cell`);
    atomic, ``0600``."""
    with atomic_text(path, encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
        writer.writerow([fit_cell(neutralise_csv_field(cell_safe(h))) for h in header])
        for cells in body:
            writer.writerow([fit_cell(neutralise_csv_field(cell_safe(c))) for c in cells])


def _xlsx_text(text: str) -> str:
    """Cell text as OOXML stores it: escaped, neutralised, cut to what a cell holds, a
    literal ``_xHHHH_`` kept literal."""
    return _OOXML_ESCAPE.sub(r"_x005F_\1", fit_cell(neutralise_formula(cell_safe(text))))


def _units(text: str) -> int:
    """Length in UTF-16 code units, as Excel counts it (a character beyond the BMP is two)."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def fit_cell(text: str) -> str:
    """``text`` if a spreadsheet cell holds it (:data:`CELL_MAX_CHARS`), else its start and a
    visible note that it was cut (never inside a ``<U+XXXX>`` escape)."""
    if len(text) <= CELL_MAX_CHARS // 2:  # the common case, without counting
        return text
    units = _units(text)
    if units <= CELL_MAX_CHARS:
        return text
    note = f" …[cut: {units:,} characters in all, a cell holds {CELL_MAX_CHARS:,}]"
    room = CELL_MAX_CHARS - len(note)
    end = 0
    used = 0
    for end, ch in enumerate(text):  # noqa: B007
        used += 2 if ord(ch) > 0xFFFF else 1
        if used > room:
            break
    head = text[:end]
    partial = _PARTIAL_ESCAPE.search(head, max(0, len(head) - 12))
    if partial is not None:
        head = head[: partial.start()]
    return head + note


_FILLS: Final[Mapping[str, tuple[PatternFill, Font]]] = {
    "rejected": (PatternFill("solid", fgColor="FFC7CE"), Font(color="9C0006")),
    "warning": (PatternFill("solid", fgColor="FFEB9C"), Font(color="9C5700")),
}
"""Red for a rejected row's cells at fault, amber for a warning (Excel's own two)."""
WIDTH_MIN: Final = 8
WIDTH_MAX: Final = 60
"""Column widths (in characters): sized to the longest line in the column, within these."""
COMMENT_AUTHOR: Final = "Sodtrack"


def _comment(message: str) -> Comment:
    text = _OOXML_ESCAPE.sub(r"_x005F_\1", fit_cell(cell_safe(message)))
    lines = sum(1 + len(line) // 48 for line in text.splitlines() or [""])
    return Comment(text, COMMENT_AUTHOR, height=min(20 + 15 * lines, 400), width=320)


def _xlsx_row(
    ws: WriteOnlyWorksheet,
    cells: Sequence[str],
    bold: bool = False,
    marks: Mapping[int, CellMark] | None = None,
) -> list[Any]:
    out: list[Any] = []
    for i, text in enumerate(cells):
        cell = WriteOnlyCell(ws, value=_xlsx_text(text) if text else None)
        if text:
            cell.data_type = "s"  # an explicit string: never a formula, never re-typed
            if needs_neutralising(text):
                cell.quotePrefix = True
        if bold:
            cell.font = Font(bold=True)
        mark = marks.get(i) if marks else None
        if mark is not None:
            cell.fill, cell.font = _FILLS[mark.severity]
            if mark.message:
                cell.comment = _comment(mark.message)
        out.append(cell)
    return out


def column_widths(header: Sequence[str], body: Iterable[Sequence[str]]) -> list[int]:
    """Each column's width: its longest line (header included), within
    [:data:`WIDTH_MIN`, :data:`WIDTH_MAX`]."""
    widths = [len(h) for h in header]
    for cells in body:
        for i, text in enumerate(cells):
            if i < len(widths) and text:
                longest = (
                    max(len(line) for line in text.splitlines()) if "\n" in text else len(text)
                )
                if longest > widths[i]:
                    widths[i] = longest
            elif i >= len(widths):
                widths.append(len(text))
    return [min(max(w + 2, WIDTH_MIN), WIDTH_MAX) for w in widths]


def write_xlsx(path: Path, sheets: Sequence[tuple[str, Table]]) -> None:
    """An XLSX workbook of text cells, one sheet per ``(title, table)``: header bold and
    frozen, columns sized to their content, marked cells filled with their message as a
    comment; atomic, ``0600``."""
    with atomic_binary(path) as fh:  # first: a path that cannot be written leaves no workbook
        wb = Workbook(write_only=True)
        for title, table in sheets:
            ws = wb.create_sheet(title=title)
            ws.freeze_panes = "A2"
            for i, width in enumerate(column_widths(table.header, table.body), 1):
                ws.column_dimensions[get_column_letter(i)].width = width
            ws.append(_xlsx_row(ws, table.header, bold=True))
            for n, cells in enumerate(table.body):
                ws.append(_xlsx_row(ws, cells, marks=table.marks[n] if table.marks else None))
        wb.save(fh)


def _json_safe(value: Any) -> Any:
    if isinstance(value, str):
        return cell_safe(value)
    if isinstance(value, Mapping):
        return {_json_safe(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def summary_of(result: UploadResult) -> dict[str, Any]:
    """``summary.json``: the run and its counts (:attr:`UploadResult.tally`, the one
    definition), text escaped as in the other files."""
    counts = result.tally
    data: dict[str, Any] = _json_safe(
        {
            "upload_id": result.upload_id,
            "file_name": result.file_name,
            "country": result.country,
            "dry_run": result.dry_run,
            "run": result.run_no,
            "status": result.status,
            "rows": counts.rows,
            "outcomes": dict(counts.outcomes),
            "needs_a_person": counts.needs_a_person,
            "retry_on_rerun": counts.retry_on_rerun,
            "conflicts": counts.conflicts,
            "notices": list(result.notices),
            "upload_errors": list(result.upload_errors),
            "requests": result.requests,
            "elapsed_s": round(result.elapsed_s, 3),
        }
    )
    return data


def _write_json(path: Path, data: Mapping[str, Any]) -> None:
    with atomic_text(path, encoding="utf-8") as fh:
        fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def write_results(
    result: UploadResult,
    rows: Sequence[BookingRow],
    columns: Mapping[str, str],
    out_dir: Path,
    *,
    stem: str | None = None,
) -> ResultFiles:
    """Write the results, rejects and summary files of one run (``run-N`` names), then the
    latest-run copies; return their paths and what could not be written.

    Never raises for one file: each is written on its own, a failure is recorded in
    :attr:`ResultFiles.failed` and the others are still written."""
    out_dir = Path(out_dir)
    run_names, latest_names = result_file_names(
        stem or Path(result.file_name).stem, result.upload_id, result.run_no
    )
    results = result_table(result, rows, columns)
    rejects = rejects_table(result, rows, columns)
    summary = summary_of(result)
    summary_rows = [[k, text_of(v)] for k, v in summary.items() if not isinstance(v, dict | list)]
    summary_rows += [[f"outcome: {k}", str(v)] for k, v in summary["outcomes"].items()]
    summary_rows += [["notice", n] for n in summary["notices"]]
    summary_rows += [["upload error", e] for e in summary["upload_errors"]]

    paths = {kind: out_dir / name for kind, name in run_names.items()}
    writers: dict[str, Callable[[Path], None]] = {
        "results_csv": lambda p: write_csv(p, results.header, results.body),
        "results_xlsx": lambda p: write_xlsx(
            p, [("Results", results), ("Summary", Table(["item", "value"], summary_rows))]
        ),
        "rejects_csv": lambda p: write_csv(p, rejects.header, rejects.body),
        "rejects_xlsx": lambda p: write_xlsx(p, [("Rejects", rejects)]),
        "summary_json": lambda p: _write_json(p, summary),
    }
    failed: dict[str, str] = {}
    try:
        private_dir(out_dir)
    except OSError as exc:
        failed["folder"] = _why(exc)
    latest: dict[str, Path] = {}
    for kind, write in writers.items():
        try:
            write(paths[kind])
        except Exception as exc:  # one file failing must not cost the others (see above)
            failed[kind] = _why(exc)
            continue
        try:
            copy_private(paths[kind], out_dir / latest_names[kind])
            latest[kind] = out_dir / latest_names[kind]
        except OSError as exc:
            failed[f"latest {kind}"] = _why(exc)
    return ResultFiles(
        **{k: paths[k] for k in FILE_KINDS},
        rejects=len(rejects.body),
        latest=latest,
        failed=failed,
    )


def _why(exc: BaseException) -> str:
    return printable(f"{type(exc).__name__}: {exc}")
