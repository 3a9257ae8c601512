"""Results and rejects files: the exact answer for every row, in the sheet's own terms.

Per upload run, under ``out_dir``::

    {stem}.{upload_id}.results.csv    every row, original order, outcome, ids, errors, values
    {stem}.{upload_id}.results.xlsx   the same, plus a "Summary" sheet
    {stem}.{upload_id}.rejects.csv    the rows to fix: input columns as uploaded + the error
    {stem}.{upload_id}.rejects.xlsx   the same in XLSX
    {stem}.{upload_id}.summary.json   counts by outcome, notices, request figures

Results columns: ``sheet``, ``row``, ``outcome``, ``failed_step``, ``needs_a_person``,
``error_code``, ``message``, ``suggested_fix``, ``retry_on_rerun``, the Sodtrack ids
(``project_id``, ``booking_id``, ``stage_id``, ``payment_id``), each step's status
(``project_step`` …), the reader's ``warnings``, then for every field the file carries the
cell(s) as uploaded (``input: <header>``) beside what the loader read (``read as: <field>``),
and last the columns the loader did not use (``input: <header>``).

The rejects file holds the rows whose outcome is ``rejected``, or ``skipped_dependency`` with
a permanent cause: rows a person must fix. Rows waiting on a transient failure are not in it
(re-run the same file). Its columns are the input's, in the input's order, values as the
sheet showed them, then ``sodtrack_row``, ``sodtrack_outcome``, ``sodtrack_error_code``,
``sodtrack_message``, ``sodtrack_suggested_fix``: the reader reports those as unknown
columns and ignores them, so the file can be fixed and uploaded again as it is (stale
``sodtrack_*`` columns from an earlier round are replaced, never doubled).

Spreadsheet safety: every text cell goes through :func:`neutralise_formula` (a leading ``=``,
``+``, ``-``, ``@``… gets a ``'``), in CSV and in XLSX; XLSX cells are written as explicit
strings (never as formulas, never re-typed: postal codes keep their zeros). CSV is UTF-8 with
a BOM so that Excel shows accents right, with CRLF line ends.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.worksheet._write_only import WriteOnlyWorksheet

from sodtrack.loader.neutralise import needs_neutralising, neutralise_formula
from sodtrack.loader.outcomes import RowResult, UploadResult
from sodtrack.loader.rows import INTERPRETED_FIELDS, BookingRow
from sodtrack.loader.values import cell_text

STATUS_COLUMNS: Final = (
    "sheet",
    "row",
    "outcome",
    "failed_step",
    "needs_a_person",
    "error_code",
    "message",
    "suggested_fix",
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
REJECT_COLUMNS: Final = (
    "sodtrack_row",
    "sodtrack_outcome",
    "sodtrack_error_code",
    "sodtrack_message",
    "sodtrack_suggested_fix",
)
# Canonical fields whose input may come from other columns (date + time build the start).
_SOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "scheduled_start": ("scheduled_start", "scheduled_date", "scheduled_time"),
}


@dataclass(frozen=True, slots=True)
class ResultFiles:
    results_csv: Path
    results_xlsx: Path
    rejects_csv: Path
    rejects_xlsx: Path
    summary_json: Path
    rejects: int
    """Rows in the rejects file."""


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


def is_reject(row: RowResult) -> bool:
    """In the rejects file: a person must fix it (not merely re-run the file)."""
    return row.outcome == "rejected" or (
        row.outcome == "skipped_dependency" and not row.retry_on_rerun
    )


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
        inputs = [h for src in _SOURCES.get(fld, (fld,)) for h in by_field.get(src, [])]
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


def _status_cells(r: RowResult) -> list[str]:
    return [
        r.sheet or "",
        str(r.row_number),
        r.outcome,
        r.failed_step or "",
        "yes" if r.needs_a_person else "",
        r.error_code or "",
        r.message or "",
        r.suggested_fix or "",
        "yes" if r.retry_on_rerun else "no",
        r.project_id or "",
        r.booking_id or "",
        r.stage_id or "",
        r.payment_id or "",
        r.steps.get("project", ""),
        r.steps.get("booking", ""),
        r.steps.get("stage", ""),
        r.steps.get("payment", ""),
        " | ".join(r.warnings),
    ]


def result_table(
    result: UploadResult, rows: Sequence[BookingRow], columns: Mapping[str, str]
) -> tuple[list[str], list[list[str]]]:
    """The results file as a header and rows of text (not yet neutralised)."""
    if len(result.rows) != len(rows):
        raise ValueError(f"{len(result.rows)} results for {len(rows)} rows")
    names, sources = _layout(rows, columns)
    out: list[list[str]] = []
    for r in sorted(result.rows, key=lambda r: r.position):
        row = rows[r.position]
        interpreted = row.interpreted()
        values: list[str] = []
        for _name, src in sources:
            if isinstance(src, int):
                cells = row.original_values
                values.append(original_text(cells[src]) if src < len(cells) else "")
            else:
                values.append(text_of(interpreted.get(src)))
        out.append(_status_cells(r) + values)
    return [*STATUS_COLUMNS, *names], out


def rejects_table(
    result: UploadResult, rows: Sequence[BookingRow]
) -> tuple[list[str], list[list[str]]]:
    """The rejects file: input columns as uploaded (stale ``sodtrack_*`` ones dropped)."""
    headers: tuple[str, ...] = rows[0].headers if rows else ()
    keep = [i for i, h in enumerate(headers) if h not in REJECT_COLUMNS]
    out: list[list[str]] = []
    for r in sorted(result.rows, key=lambda r: r.position):
        if not is_reject(r):
            continue
        cells = rows[r.position].original_values
        values = [original_text(cells[i]) if i < len(cells) else "" for i in keep]
        where = f"{r.sheet}!{r.row_number}" if r.sheet else str(r.row_number)
        out.append(
            [*values, where, r.outcome, r.error_code or "", r.message or "", r.suggested_fix or ""]
        )
    return [*(headers[i] for i in keep), *REJECT_COLUMNS], out


def write_csv(path: Path, header: Sequence[str], body: Iterable[Sequence[str]]) -> None:
    """UTF-8 with BOM, CRLF, every cell neutralised."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow([neutralise_formula(h) for h in header])
        for cells in body:
            writer.writerow([neutralise_formula(c) for c in cells])
    tmp.replace(path)  # a reader never sees half a file


def _xlsx_row(ws: WriteOnlyWorksheet, cells: Sequence[str], bold: bool = False) -> list[Any]:
    out: list[Any] = []
    for text in cells:
        cell = WriteOnlyCell(ws, value=neutralise_formula(text) if text else None)
        if text:
            cell.data_type = "s"  # an explicit string: never a formula, never re-typed
            if needs_neutralising(text):
                cell.quotePrefix = True
        if bold:
            cell.font = Font(bold=True)
        out.append(cell)
    return out


def write_xlsx(
    path: Path,
    sheets: Sequence[tuple[str, Sequence[str], Iterable[Sequence[str]]]],
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    for title, header, body in sheets:
        ws = wb.create_sheet(title=title)
        ws.freeze_panes = "A2"
        ws.append(_xlsx_row(ws, header, bold=True))
        for cells in body:
            ws.append(_xlsx_row(ws, cells))
    tmp = path.with_suffix(path.suffix + ".tmp")
    wb.save(tmp)
    tmp.replace(path)


def summary_of(result: UploadResult) -> dict[str, Any]:
    return {
        "upload_id": result.upload_id,
        "file_name": result.file_name,
        "country": result.country,
        "dry_run": result.dry_run,
        "run": result.run_no,
        "status": result.status,
        "rows": len(result.rows),
        "outcomes": result.counts,
        "needs_a_person": sum(1 for r in result.rows if r.needs_a_person),
        "retry_on_rerun": sum(1 for r in result.rows if r.retry_on_rerun),
        "notices": list(result.notices),
        "upload_errors": list(result.upload_errors),
        "requests": result.requests,
        "elapsed_s": round(result.elapsed_s, 3),
    }


def write_results(
    result: UploadResult,
    rows: Sequence[BookingRow],
    columns: Mapping[str, str],
    out_dir: Path,
    *,
    stem: str | None = None,
) -> ResultFiles:
    """Write the results, rejects and summary files of one run; return their paths."""
    base = f"{stem or Path(result.file_name).stem}.{result.upload_id}"
    out_dir = Path(out_dir)
    header, body = result_table(result, rows, columns)
    r_header, r_body = rejects_table(result, rows)
    summary = summary_of(result)
    summary_rows = [[k, text_of(v)] for k, v in summary.items() if not isinstance(v, dict | list)]
    summary_rows += [[f"outcome: {k}", str(v)] for k, v in result.counts.items()]
    summary_rows += [["notice", n] for n in result.notices]
    summary_rows += [["upload error", e] for e in result.upload_errors]

    files = ResultFiles(
        results_csv=out_dir / f"{base}.results.csv",
        results_xlsx=out_dir / f"{base}.results.xlsx",
        rejects_csv=out_dir / f"{base}.rejects.csv",
        rejects_xlsx=out_dir / f"{base}.rejects.xlsx",
        summary_json=out_dir / f"{base}.summary.json",
        rejects=len(r_body),
    )
    write_csv(files.results_csv, header, body)
    write_xlsx(
        files.results_xlsx,
        [("Results", header, body), ("Summary", ["item", "value"], summary_rows)],
    )
    write_csv(files.rejects_csv, r_header, r_body)
    write_xlsx(files.rejects_xlsx, [("Rejects", r_header, r_body)])
    files.summary_json.write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    return files
