"""Merged cells in XLSX uploads (issue #10, item 2): real workbooks merged by openpyxl.

A vertical merge down the project or stage columns means "the same value on every row of the
range": the value is filled down, with a warning naming the range on each filled row. Any
other merge that covers a used column and more than one cell rejects each row it covers,
naming the range; a merged header cell is an upload-level error.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from openpyxl.utils import get_column_letter

from bulkload.sheets import BASE, PROJECT_COLUMNS, booking, patch_sheet_xml, write_xlsx
from sodtrack.bulkload import IssueCode, read_upload
from sodtrack.bulkload.issues import RowIssue
from sodtrack.bulkload.reading.rows import BookingRow

# Project columns first, as people lay out a project sheet: A..D, then the booking's fields.
HEADER: list[str] = [*PROJECT_COLUMNS, *BASE]
FILL_DOWN = set(PROJECT_COLUMNS)


def col(name: str) -> str:
    return str(get_column_letter(HEADER.index(name) + 1))


def cells(row: dict[str, object]) -> list[object]:
    return [row.get(h) if row.get(h) != "" else None for h in HEADER]


def project_rows(
    first: int, count: int, project: str, stage: int | None
) -> list[dict[str, object]]:
    rows = []
    for i in range(count):
        extra: dict[str, object] = {}
        extra["project_reference"] = project
        extra["project_name"] = f"Obra {project}"
        if stage is not None:
            extra["stage_sequence"] = stage
            extra["stage_name"] = f"Etapa {stage}"
        rows.append(booking(first + i, **extra))
    return rows


def codes(issues: list[RowIssue]) -> list[IssueCode]:
    return [i.code for i in issues]


def test_project_and_stage_columns_merged_down_a_project(tmp_path: Path) -> None:
    """The issue's file: A2:A6 (project), B2:B6 (name), C/D merged per stage."""
    rows = [*project_rows(1, 3, "PRJ-1", 1), *project_rows(4, 2, "PRJ-1", 2)]
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Bookings": [HEADER, *(cells(r) for r in rows)]},
        merges={"Bookings": ["A2:A6", "B2:B6", "C2:C4", "D2:D4", "C5:C6", "D5:D6"]},
    )
    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    assert [r.row_number for r in upload.rows] == [2, 3, 4, 5, 6]
    assert all(r.is_valid for r in upload.rows), [r.issues for r in upload.rows]
    assert [r.project_reference for r in upload.rows] == ["PRJ-1"] * 5
    assert [r.project_name for r in upload.rows] == ["Obra PRJ-1"] * 5
    assert [r.stage_sequence for r in upload.rows] == [1, 1, 1, 2, 2]
    assert [r.stage_name for r in upload.rows] == ["Etapa 1"] * 3 + ["Etapa 2"] * 2
    # The top row of each range holds the value itself: no note there.
    assert codes(upload.rows[0].warnings) == []
    third = upload.rows[2]
    notes = {w.field: w for w in third.warnings}
    assert set(notes) == {"project_reference", "project_name", "stage_sequence", "stage_name"}
    assert all(w.code == IssueCode.MERGED_VALUE_FILLED for w in notes.values())
    assert "A2:A6" in notes["project_reference"].message
    assert "C2:C4" in notes["stage_sequence"].message
    assert notes["project_reference"].column == "project_reference"
    # One project with its two stages: nothing left outside it.
    assert list(upload.projects) == ["PRJ-1"]
    assert len(upload.projects["PRJ-1"].rows) == 5


@pytest.mark.parametrize("column", ["customer_last_name", "scheduled_start", "city"])
def test_a_merge_elsewhere_rejects_each_row_it_covers(tmp_path: Path, column: str) -> None:
    rows = [booking(i) for i in range(1, 6)]
    letter = col(column)
    ref = f"{letter}3:{letter}5"
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Bookings": [HEADER, *(cells(r) for r in rows)]},
        merges={"Bookings": [ref]},
    )
    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors
    by_number = {r.row_number: r for r in upload.rows}
    assert by_number[2].is_valid
    assert by_number[6].is_valid
    for number in (3, 4, 5):
        merged = [i for i in by_number[number].errors if i.code == IssueCode.MERGED_CELLS]
        assert len(merged) == 1, by_number[number].issues
        assert f"Cells {ref} are merged" in merged[0].message
        assert merged[0].field == column


def test_a_merge_across_columns_rejects_the_row(tmp_path: Path) -> None:
    rows = [booking(1), booking(2, project_reference="PRJ-1", project_name="PRJ-1")]
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Bookings": [HEADER, *(cells(r) for r in rows)]},
        merges={"Bookings": ["A3:B3", f"{col('address_line1')}2:{col('address_line2')}2"]},
    )
    first, second = read_upload(path, "cl").rows
    assert codes(first.errors) == [IssueCode.MERGED_CELLS]
    assert f"{col('address_line1')}2:{col('address_line2')}2" in first.errors[0].message
    assert codes(second.errors) == [IssueCode.MERGED_CELLS]
    assert "A3:B3" in second.errors[0].message


def test_a_block_merge_over_project_columns_is_rejected(tmp_path: Path) -> None:
    """A2:B4 spans two columns: not a plain fill-down, so every row of it is rejected."""
    rows = project_rows(1, 3, "PRJ-1", None)
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Bookings": [HEADER, *(cells(r) for r in rows)]},
        merges={"Bookings": ["A2:B4"]},
    )
    upload = read_upload(path, "cl")
    assert [codes(r.errors) for r in upload.rows] == [[IssueCode.MERGED_CELLS]] * 3


def test_a_merged_header_cell_is_an_upload_error(tmp_path: Path) -> None:
    header = [*HEADER, "Extra", None]
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Bookings": [header, cells(booking(1))]},
        merges={"Bookings": ["S1:T1"]},
    )
    upload = read_upload(path, "cl")
    assert upload.has_upload_errors
    assert upload.rows == []
    (issue,) = [i for i in upload.upload_issues if i.severity == "error"]
    assert issue.code == IssueCode.MERGED_HEADER
    assert "S1:T1" in issue.message


def test_merges_in_unused_columns_are_harmless(tmp_path: Path) -> None:
    header = [*HEADER, "Extra"]
    rows = [[*cells(booking(i)), "ok" if i == 1 else None] for i in (1, 2, 3)]
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Bookings": [header, *rows]},
        merges={"Bookings": ["S2:S4"]},
    )
    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    assert [r.row_number for r in upload.rows] == [2, 3, 4]
    assert all(r.is_valid and not r.warnings for r in upload.rows)


def test_a_fill_down_never_reaches_blank_rows(tmp_path: Path) -> None:
    rows: list[list[object] | list[None]] = [cells(r) for r in project_rows(1, 2, "PRJ-1", None)]
    rows.append([])  # a blank row inside the merged range stays blank (skipped)
    rows.extend(cells(r) for r in project_rows(3, 1, "PRJ-1", None))
    path = write_xlsx(
        tmp_path / "b.xlsx", {"Bookings": [HEADER, *rows]}, merges={"Bookings": ["A2:A5"]}
    )
    upload = read_upload(path, "cl")
    assert [r.row_number for r in upload.rows] == [2, 3, 5]
    assert upload.skipped_empty_rows == 1
    assert [r.project_reference for r in upload.rows] == ["PRJ-1"] * 3
    assert all(r.is_valid for r in upload.rows)


# -- a generated corpus of merge layouts -------------------------------------------------------


@dataclass
class Layout:
    rows: list[dict[str, object]] = field(default_factory=list)
    merges: list[str] = field(default_factory=list)
    fills: dict[int, dict[str, str]] = field(default_factory=dict)
    """Sheet row -> {field: range} for each value that a fill-down must supply."""
    rejected: dict[int, set[str]] = field(default_factory=dict)
    """Sheet row -> the ranges that must reject it."""
    project_of: dict[int, str | None] = field(default_factory=dict)


_OTHER = ("customer_last_name", "notes", "city", "service_sku", "address_line2")


def generate(seed: int) -> Layout:
    """Projects of 1-5 rows (some with stages) and standalone bookings, in random order; the
    project and stage columns merged down each project's rows at random, and a few merges
    over other columns (vertical or across two columns)."""
    rng = random.Random(seed)
    layout = Layout()
    number = 2  # the header is row 1
    ref = 1
    used_rows: set[int] = set()
    for p in range(rng.randint(1, 4)):
        if rng.random() < 0.5:  # a standalone booking before the project
            layout.rows.append(booking(ref))
            layout.project_of[number] = None
            ref, number = ref + 1, number + 1
        project = f"PRJ-{seed}-{p}"
        stages: list[tuple[int | None, int]] = []
        if rng.random() < 0.6:
            stages = [(s, rng.randint(1, 3)) for s in range(1, rng.randint(1, 3) + 1)]
        else:
            stages = [(None, rng.randint(1, 5))]
        top = number
        for stage, count in stages:
            stage_top = number
            layout.rows.extend(project_rows(ref, count, project, stage))
            for n in range(number, number + count):
                layout.project_of[n] = project
            ref, number = ref + count, number + count
            if stage is not None and count > 1:
                for name in ("stage_sequence", "stage_name"):
                    if rng.random() < 0.7:
                        rng_ref = f"{col(name)}{stage_top}:{col(name)}{number - 1}"
                        layout.merges.append(rng_ref)
                        for n in range(stage_top + 1, number):
                            layout.fills.setdefault(n, {})[name] = rng_ref
        if number - top > 1:
            for name in ("project_reference", "project_name"):
                if rng.random() < 0.8:
                    merged = f"{col(name)}{top}:{col(name)}{number - 1}"
                    layout.merges.append(merged)
                    for n in range(top + 1, number):
                        layout.fills.setdefault(n, {})[name] = merged
        used_rows.update(range(top, number))
    last = number - 1
    # A few merges elsewhere (never overlapping one another: Excel forbids it).
    occupied: set[tuple[int, int]] = set()
    for _ in range(rng.randint(0, 2)):
        name = rng.choice(_OTHER)
        first = rng.randint(2, last)
        end = min(last, first + rng.randint(0, 2))
        c1 = HEADER.index(name)
        c2 = c1 + 1 if first == end or rng.random() < 0.3 else c1
        covered = {(r, c) for r in range(first, end + 1) for c in range(c1, c2 + 1)}
        if c2 >= len(HEADER) or covered & occupied:
            continue
        occupied |= covered
        merged = f"{get_column_letter(c1 + 1)}{first}:{get_column_letter(c2 + 1)}{end}"
        layout.merges.append(merged)
        for n in range(first, end + 1):
            layout.rejected.setdefault(n, set()).add(merged)
    return layout


@pytest.mark.parametrize("seed", range(40))
def test_generated_merge_layouts(tmp_path: Path, seed: int) -> None:
    layout = generate(seed)
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Bookings": [HEADER, *(cells(r) for r in layout.rows)]},
        merges={"Bookings": layout.merges},
    )
    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    assert [r.row_number for r in upload.rows] == list(range(2, 2 + len(layout.rows)))
    for row in upload.rows:
        check_row(row, layout)


def check_row(row: BookingRow, layout: Layout) -> None:
    n = row.row_number
    merged_errors = {i.message for i in row.errors if i.code == IssueCode.MERGED_CELLS}
    expected_ranges = layout.rejected.get(n, set())
    assert len(merged_errors) == len(expected_ranges), (n, row.issues, layout.merges)
    for merged in expected_ranges:
        assert any(merged in m for m in merged_errors), (n, merged, merged_errors)
    if not expected_ranges:
        assert row.is_valid, (n, row.issues, layout.merges)
    # Never a booking outside its project, whatever else happened to the row.
    assert row.project_reference == layout.project_of[n], (n, layout.merges)
    fills = {w.field: w.message for w in row.warnings if w.code == IssueCode.MERGED_VALUE_FILLED}
    expected_fills = layout.fills.get(n, {})
    assert set(fills) == set(expected_fills), (n, fills, expected_fills)
    for name, merged in expected_fills.items():
        assert merged in fills[name]


def test_covered_cells_that_kept_their_own_values_read_as_shown(tmp_path: Path) -> None:
    """LibreOffice can keep the contents of the cells a merge covers (hidden under the
    merged cell). A person sees the top-left value across the range; that is what is read,
    with the note, not the hidden leftovers."""
    rows = project_rows(1, 2, "PRJ-1", None) + project_rows(3, 1, "PRJ-9", None)
    path = write_xlsx(tmp_path / "b.xlsx", {"Bookings": [HEADER, *(cells(r) for r in rows)]})
    patch_sheet_xml(
        path,
        "xl/worksheets/sheet1.xml",
        b"</sheetData>",
        b'</sheetData><mergeCells count="1"><mergeCell ref="A2:A4"/></mergeCells>',
    )
    upload = read_upload(path, "cl")
    assert [r.project_reference for r in upload.rows] == ["PRJ-1"] * 3
    notes = [
        [w.code for w in r.warnings if w.code == IssueCode.MERGED_VALUE_FILLED] for r in upload.rows
    ]
    assert notes == [[], [IssueCode.MERGED_VALUE_FILLED], [IssueCode.MERGED_VALUE_FILLED]]
