"""``read_upload``: a file in, a :class:`ParsedUpload` out, with an outcome for every row.

The pipeline, each step in its own module:

1. :mod:`~.reader`: bytes -> header + raw rows (encoding, delimiter, sheet);
2. :mod:`~.headers`: header -> canonical columns (aliases, mapping file);
   :mod:`~.merges`: an XLSX sheet's merged ranges, classified against them;
3. :mod:`~.rows`: each raw row -> :class:`BookingRow` with its own checks
   (merged project/stage values filled down first, with a note);
4. :mod:`~.crossrow`: checks across rows, then the per-project plan.

Before step 1, :func:`~.limits.check_upload` refuses a file over the upload
limits (size, rows, columns, cells, cell length, ZIP bombs) without parsing it: an upload-level
error like any unreadable file.

Nothing is written anywhere and nothing is fetched: this is the validation that happens
before any write. Problems with the *file* (unreadable, a required column missing, a column
mapped twice) are upload-level errors, and then no row is interpreted (``rows`` is empty):
every row would fail the same way, and the operator has one thing to fix. A problem the
caller caused (an unknown country, a mapping naming a column that does not exist) raises.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sodtrack.bulkload.issues import IssueCode, RowIssue, UploadIssue
from sodtrack.bulkload.reading.crossrow import ProjectPlan, check_across_rows, plan_projects
from sodtrack.bulkload.reading.headers import column_label, looks_like_header, match_headers
from sodtrack.bulkload.reading.limits import UploadLimits, check_upload
from sodtrack.bulkload.reading.merges import fill_note, plan_merges
from sodtrack.bulkload.reading.reader import (
    FileType,
    RecordShape,
    UnreadableFile,
    file_sha256,
    read_table,
)
from sodtrack.bulkload.reading.rows import BookingRow, RowContext, build_row
from sodtrack.bulkload.reading.values import is_blank
from sodtrack.contract.countries import Country, get_country


@dataclass(frozen=True, slots=True)
class ParsedUpload:
    """Everything the loader learnt from one file, ready for a dry run or a load."""

    source_path: Path
    file_sha256: str
    """SHA-256 of the file's bytes: identifies the upload (e.g. for the engine's ledger)."""
    country: str
    file_type: FileType | None
    sheet: str | None
    """The sheet read (XLSX), None for CSV."""
    sheet_names: tuple[str, ...]
    encoding: str | None
    """The codec that read a CSV: ``utf-8``, ``utf-8-sig``/``utf-16``/``utf-32`` (with a BOM),
    ``utf-16-le``/``-be``, ``utf-32-le``/``-be``, ``cp1252`` or ``latin-1``; None for XLSX."""
    delimiter: str | None
    header_row_number: int | None
    columns: dict[str, str]
    """Original header -> canonical column, for every column the loader uses."""
    unknown_columns: list[str]
    """Headers the loader does not know (reported as warnings; values kept in ``original``)."""
    ignored_columns: list[str]
    """Headers the mapping deliberately ignores."""
    upload_issues: list[UploadIssue]
    rows: list[BookingRow]
    """Every non-empty row after the header, in file order."""
    projects: dict[str, ProjectPlan] = field(default_factory=dict)
    """Per project reference: its rows, stages and payments (see :func:`plan_projects`)."""
    skipped_empty_rows: int = 0

    @property
    def has_upload_errors(self) -> bool:
        return any(issue.severity == "error" for issue in self.upload_issues)

    @property
    def valid_rows(self) -> list[BookingRow]:
        """Rows that may be written (none when the upload itself has errors)."""
        if self.has_upload_errors:
            return []
        return [row for row in self.rows if row.is_valid]

    @property
    def rejected_rows(self) -> list[BookingRow]:
        return [row for row in self.rows if not row.is_valid]

    @property
    def row_issues(self) -> list[RowIssue]:
        return [issue for row in self.rows for issue in row.issues]

    def summary(self) -> dict[str, int]:
        """Counts for a report: rows, valid, rejected, warnings, upload errors."""
        valid = sum(1 for row in self.rows if row.is_valid)
        return {
            "rows": len(self.rows),
            "valid_rows": valid if not self.has_upload_errors else 0,
            "rejected_rows": len(self.rows) - valid,
            "row_errors": sum(len(row.errors) for row in self.rows),
            "row_warnings": sum(len(row.warnings) for row in self.rows),
            "upload_errors": sum(1 for i in self.upload_issues if i.severity == "error"),
            "upload_warnings": sum(1 for i in self.upload_issues if i.severity == "warning"),
            "skipped_empty_rows": self.skipped_empty_rows,
        }


def read_upload(
    path: Path,
    country: str,
    *,
    sheet: str | None = None,
    mapping: Mapping[str, str | None] | None = None,
    decimal_separator: str | None = None,
    limits: UploadLimits | None = None,
) -> ParsedUpload:
    """Read a CSV or XLSX upload of bookings for ``country`` and validate every row.

    ``sheet`` names the XLSX sheet (default: the first visible one with a header row).
    ``mapping`` maps the file's own headers to canonical columns (see
    :func:`load_mapping_file`); ``None`` values ignore a column. ``decimal_separator``
    (``"."`` or ``","``), when the upload declares it, removes the one ambiguous amount
    shape (see :mod:`sodtrack.bulkload.reading.values`). ``limits``
    bound the file before it is parsed (default: :class:`UploadLimits`' defaults).
    """
    if decimal_separator not in (None, ".", ","):
        raise ValueError(f"decimal_separator must be '.' or ',', not {decimal_separator!r}")
    country_info = get_country(country)
    path = Path(path)
    # A big upload creates millions of small acyclic objects; the cyclic collector would
    # rescan them over and over (a third of the run time at 100,000 rows). Nothing here
    # makes cycles, so pause it for the duration.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _read_upload(
            path, country_info, sheet, mapping, decimal_separator, limits or UploadLimits()
        )
    finally:
        if collecting:
            gc.enable()


def hidden_row_note(row_number: int, *, by_filter: bool) -> RowIssue:
    """The warning on a row the sheet hides: it is loaded, but nobody may have seen it."""
    how = "hidden in the sheet by its filter" if by_filter else "hidden in the sheet"
    return RowIssue(
        row_number,
        None,
        IssueCode.HIDDEN_ROW,
        f"Row {row_number} is {how}; it was loaded like the others, though whoever checked "
        "the sheet may not have seen it.",
        "Check that the row is meant to be loaded (unhide it, or clear the filter, to see "
        "it); if not, delete it from the sheet rather than hiding it.",
        "warning",
    )


def _read_upload(
    path: Path,
    country_info: Country,
    sheet: str | None,
    mapping: Mapping[str, str | None] | None,
    decimal_separator: str | None,
    limits: UploadLimits,
) -> ParsedUpload:
    try:
        check_upload(path, limits, sheet=sheet)
        table = read_table(
            path, sheet=sheet, is_header=lambda cells: looks_like_header(cells, mapping)
        )
    except UnreadableFile as exc:
        return ParsedUpload(
            source_path=path,
            file_sha256=file_sha256(path),
            country=country_info.code,
            file_type=None,
            sheet=sheet,
            sheet_names=(),
            encoding=None,
            delimiter=None,
            header_row_number=None,
            columns={},
            unknown_columns=[],
            ignored_columns=[],
            upload_issues=[exc.issue],
            rows=[],
        )

    letters = table.file_type == "xlsx"
    match = match_headers(
        table.header, mapping, first_column=table.first_column, spreadsheet_letters=letters
    )
    upload_issues = list(table.issues) + list(match.issues)

    def result(rows: list[BookingRow], skipped: int) -> ParsedUpload:
        return ParsedUpload(
            source_path=path,
            file_sha256=table.file_sha256,
            country=country_info.code,
            file_type=table.file_type,
            sheet=table.sheet,
            sheet_names=table.sheet_names,
            encoding=table.encoding,
            delimiter=table.delimiter,
            header_row_number=table.header_row_number,
            columns=match.columns,
            unknown_columns=match.unknown_columns,
            ignored_columns=match.ignored_columns,
            upload_issues=upload_issues,
            rows=rows,
            projects=plan_projects(rows),
            skipped_empty_rows=skipped,
        )

    merges = plan_merges(
        table.merged_ranges,
        header_row=table.header_row_number,
        first_column=table.first_column,
        positions=match.positions,
        headers=match.headers,
    )
    upload_issues.extend(merges.header_issues)
    if match.has_errors or merges.header_issues:
        close = getattr(table.rows, "close", None)
        if close is not None:
            close()
        return result([], 0)

    ctx = RowContext(
        country=country_info,
        tz=country_info.tz,
        sheet=table.sheet,
        headers=match.headers,
        positions=match.positions,
        cell_problems=table.cell_problems,
        decimal_separator=decimal_separator,
    )
    width = len(match.headers)
    csv_file = table.file_type == "csv"
    canonical_at = {position: name for name, position in match.positions.items()}
    hidden_rows = table.hidden_rows
    unnamed = match.unnamed_positions
    unnamed_first_row: dict[int, int] = {}
    rows: list[BookingRow] = []
    skipped = 0
    for row_number, cells in table.rows:
        if all(is_blank(cell) for cell in cells):
            skipped += 1
            continue
        filled: dict[int, str] = {}
        if merges:
            merged = merges.apply(row_number, cells)
            cells, filled = merged.cells, merged.filled
            row = build_row(row_number, cells, ctx, merged.rejected)
        else:
            row = build_row(row_number, cells, ctx)
        for position, ref in filled.items():
            name = canonical_at[position]
            row.issues.append(fill_note(row_number, name, ref, ctx.column(name)))
        for position in unnamed:
            if (
                position not in unnamed_first_row
                and position < len(cells)
                and not is_blank(cells[position])
            ):
                unnamed_first_row[position] = row_number
        if hidden_rows and row_number in hidden_rows:
            row.issues.append(hidden_row_note(row_number, by_filter=hidden_rows[row_number]))
        if row_number in table.merged_rows:
            row.issues.append(
                RowIssue(
                    row_number,
                    None,
                    IssueCode.MERGED_ROWS,
                    "A value in this row spans several lines and holds many separators: stray "
                    "quote characters have probably fused several rows into one.",
                    'Check this row for a quote character (") that should not be there, or '
                    "export the file again.",
                )
            )
        if csv_file:
            shape = table.field_counts.get(row_number)
            if shape is not None:  # the cause of any field error: first, its code the row's
                row.issues.insert(0, _field_count_issue(row_number, shape))
            if row_number in table.unterminated_rows:
                row.issues.append(
                    RowIssue(
                        row_number,
                        None,
                        IssueCode.NO_FINAL_LINE_BREAK,
                        "This is the file's last row and no line break follows it: if the "
                        "file was still being copied, its last value may be cut short.",
                        "Check the row's last value; to avoid the question, save the file "
                        "with a line break at the end (Excel and LibreOffice do).",
                        "warning",
                    )
                )
        elif len(cells) > width and any(not is_blank(c) for c in cells[width:]):
            row.issues.append(
                RowIssue(
                    row_number,
                    None,
                    IssueCode.EXTRA_VALUES,
                    f"The row has {len(cells)} values but the header has only {width} "
                    "columns, so the row's columns cannot be trusted to line up.",
                    "Check the row for a stray delimiter (a comma or semicolon inside a value "
                    "needs quotes), or add the missing header.",
                )
            )
        rows.append(row)

    # Reading may have stopped on a broken record: the reader appended the issue.
    upload_issues.extend(i for i in table.issues if i not in upload_issues)
    for position, first_row in sorted(unnamed_first_row.items()):
        label = column_label(table.first_column + position, letters=letters)
        upload_issues.append(
            UploadIssue(
                IssueCode.UNNAMED_COLUMN,
                f"Column {label} has no header but holds values (first in row {first_row}); "
                "they will not be loaded.",
                "Give the column a header the loader knows, or delete it.",
                "warning",
                column=match.headers[position],
            )
        )
    if not rows:
        upload_issues.append(
            UploadIssue(
                IssueCode.NO_ROWS,
                "The file has a header but no bookings below it.",
                "Add one row per booking under the header.",
            )
        )
    canonical_to_header = {canonical: header for header, canonical in match.columns.items()}
    check_across_rows(rows, canonical_to_header)
    return result(rows, skipped)


def _field_count_issue(row_number: int, shape: RecordShape) -> RowIssue:
    """A CSV record with more or fewer values than the header: its columns cannot be trusted
    to line up, so it is rejected whole (never padded nor cut to the header's width)."""
    where = f"This row ({shape.lines} of the file as a text editor shows it)"
    if shape.fields > shape.expected:
        return RowIssue(
            row_number,
            None,
            IssueCode.EXTRA_VALUES,
            f"{where} has {shape.fields} values but the header has only {shape.expected} "
            "columns, so the row's columns cannot be trusted to line up.",
            "Check the row for a stray delimiter (a comma or semicolon inside a value needs "
            "quotes), or add the missing header.",
        )
    return RowIssue(
        row_number,
        None,
        IssueCode.MISSING_VALUES,
        f"{where} has {shape.fields} values but the header has {shape.expected} columns, so "
        "the row's columns cannot be trusted to line up.",
        "Check the row for a missing delimiter or a line break inside a value without "
        "quotes, then export the file again.",
    )
