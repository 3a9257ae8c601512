"""Merged cells of an XLSX sheet: what each merged range means for the rows it covers.

A spreadsheet stores a merged range's value once, in its top-left cell; the other cells of the
range are empty in the file, though a person sees the value across the whole range. Read
naively, a project reference merged down a project's five rows leaves four rows with no
project: four standalone bookings, silently. So every range (from the sheet, via
:attr:`~sodtrack.bulkload.reading.reader.RawTable.merged_ranges`) is classified once, against the
header row and the columns the loader uses:

- above the header (a title over the table): nothing to do;
- touching the header row: an upload-level error naming the range (``MERGED_HEADER``), as no
  column can be told apart from its neighbour;
- one column wide, down several data rows, in a project or stage column
  (:data:`FILL_DOWN_COLUMNS`): "the same value on every row of the range". The top-left value
  is filled down into each non-blank row of the range, with a warning naming the range on
  every row it was filled into (``MERGED_VALUE_FILLED``);
- any other range covering a column the loader uses: every non-blank row it covers is
  rejected, naming the range (``MERGED_CELLS``), because the value could belong to any of the
  rows, or to any of the columns;
- a range covering only columns the loader does not use (an unknown or ignored column, or
  none): harmless, nothing loaded comes from it.

Rows stream in sheet order, so :class:`MergePlan` applies the ranges with a sweep over the
rows: memory is bounded by the number of ranges, never by their size (a range may span a
million rows).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from sodtrack.bulkload.issues import IssueCode, RowIssue, UploadIssue
from sodtrack.bulkload.reading.headers import column_label

FILL_DOWN_COLUMNS: Final[frozenset[str]] = frozenset(
    {"project_reference", "project_name", "stage_sequence", "stage_name"}
)
"""Columns where a vertical merge means "this value on every row of the range"."""


@dataclass(frozen=True, slots=True)
class MergedRange:
    """A merged range of a sheet: rows 1-based, columns 0-based, bounds included."""

    first_row: int
    first_column: int
    last_row: int
    last_column: int

    @property
    def ref(self) -> str:
        """The range as a spreadsheet shows it, e.g. ``A2:A6``."""
        return (
            f"{column_label(self.first_column, letters=True)}{self.first_row}:"
            f"{column_label(self.last_column, letters=True)}{self.last_row}"
        )


@dataclass(frozen=True, slots=True)
class RowMerges:
    """What the merged ranges do to one row."""

    cells: Sequence[object]
    """The row's cells, with filled-down values in place."""
    filled: dict[int, str]
    """Position -> range ref, for each cell given its value by a fill-down."""
    rejected: dict[int, str]
    """Position -> range ref, for each used cell covered by a rejecting range."""


@dataclass(frozen=True, slots=True)
class _Fill:
    merged: MergedRange
    position: int


@dataclass(frozen=True, slots=True)
class _Reject:
    merged: MergedRange
    positions: tuple[int, ...]


@dataclass(slots=True)
class MergePlan:
    """The merged ranges of one sheet, classified (see the module docstring)."""

    header_issues: list[UploadIssue] = field(default_factory=list)
    _pending: list[tuple[int, int, _Fill | _Reject]] = field(default_factory=list)
    _active: list[tuple[int, int, _Fill | _Reject]] = field(default_factory=list)
    _tops: dict[int, object] = field(default_factory=dict)
    """Key of a fill's range -> its top-left value (once its first row has streamed)."""
    _counter: int = 0

    def __bool__(self) -> bool:
        return bool(self._pending or self._active)

    def apply(self, row_number: int, cells: Sequence[object]) -> RowMerges:
        """The row's cells with merged values filled in, and the ranges that reject it.

        Call for every non-blank data row, in increasing row order.
        """
        pending = self._pending
        while pending and pending[0][0] <= row_number:
            first, key, action = heapq.heappop(pending)
            heapq.heappush(self._active, (action.merged.last_row, key, action))
            if isinstance(action, _Fill) and first < row_number:
                # The range's top row was blank (never streamed): nothing to fill from.
                self._tops[key] = None
        active = self._active
        while active and active[0][0] < row_number:
            _, key, _ = heapq.heappop(active)
            self._tops.pop(key, None)
        filled: dict[int, str] = {}
        rejected: dict[int, str] = {}
        out: list[object] | None = None
        for _, key, action in active:
            if isinstance(action, _Reject):
                for position in action.positions:
                    rejected.setdefault(position, action.merged.ref)
                continue
            position = action.position
            value = cells[position] if position < len(cells) else None
            if action.merged.first_row == row_number:
                self._tops[key] = value
                continue
            top = self._tops.get(key)
            if _blank(top):
                continue
            if out is None:
                out = list(cells)
            while len(out) <= position:
                out.append(None)
            out[position] = top
            filled[position] = action.merged.ref
        return RowMerges(cells if out is None else out, filled, rejected)

    def _add(self, action: _Fill | _Reject) -> None:
        self._counter += 1
        heapq.heappush(self._pending, (action.merged.first_row, self._counter, action))


def plan_merges(
    ranges: Sequence[MergedRange],
    *,
    header_row: int,
    first_column: int,
    positions: Mapping[str, int],
    headers: Sequence[str],
) -> MergePlan:
    """Classify ``ranges`` for a table whose header is ``header_row`` and whose position 0 is
    sheet column ``first_column``; ``positions`` maps each used canonical column to its
    position."""
    plan = MergePlan()
    used = {position: name for name, position in positions.items()}
    for merged in ranges:
        if merged.first_row == merged.last_row and merged.first_column == merged.last_column:
            continue  # a single cell: nothing is hidden
        if merged.last_row < header_row:
            continue
        if merged.first_row <= header_row:
            plan.header_issues.append(
                UploadIssue(
                    IssueCode.MERGED_HEADER,
                    f"Cells {merged.ref} of the header row are merged, so the columns under "
                    "them cannot be told apart.",
                    "Unmerge those cells and give each column its own header.",
                )
            )
            continue
        covered = tuple(
            position
            for position in range(
                merged.first_column - first_column, merged.last_column - first_column + 1
            )
            if position in used
        )
        if not covered:
            continue
        if merged.first_column == merged.last_column and used[covered[0]] in FILL_DOWN_COLUMNS:
            plan._add(_Fill(merged, covered[0]))
        else:
            plan._add(_Reject(merged, covered))
    return plan


def fill_note(row_number: int, field_name: str, ref: str, column: str | None) -> RowIssue:
    """The warning on a row whose ``field_name`` came from a merged range."""
    top = ref.split(":", 1)[0]
    return RowIssue(
        row_number,
        field_name,
        IssueCode.MERGED_VALUE_FILLED,
        f"The {field_name} of this row comes from the merged cells {ref} (the value written "
        f"in {top}).",
        "Nothing to do if every row of the merged cells belongs there; otherwise unmerge the "
        "cells and fill in each row.",
        "warning",
        column,
    )


def merged_cells_issue(row_number: int, field_name: str, ref: str, column: str | None) -> RowIssue:
    """The error on a row covered by a merged range the loader cannot read."""
    return RowIssue(
        row_number,
        field_name,
        IssueCode.MERGED_CELLS,
        f"Cells {ref} are merged, so the loader cannot tell which row (or column) their "
        "value belongs to.",
        "Unmerge the cells and fill in the value on each row (merged cells are read only "
        "in the project and stage columns, down one column).",
        "error",
        column,
    )


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


__all__ = [
    "FILL_DOWN_COLUMNS",
    "MergePlan",
    "MergedRange",
    "RowMerges",
    "fill_note",
    "merged_cells_issue",
    "plan_merges",
]
