"""Which cells of a row its answer is about: one pure function, :func:`highlights`, that the
results and rejects XLSX files use to fill cells (red for a rejected row's cells at fault,
amber for the reader's warnings, the message as the cell's comment) and that a page showing
the same rows can use to show the same marks.

Where the marks come from:

* a **warning** of the reader (a value it changed and that deserves a look: a phone given its
  country code, a date read day-first) marks the cell it is about, on any row;
* a **rejected** row marks the cells at fault: the reader's own errors each at its cell with
  its own message; an error found later (the checks before writing, Sodtrack's answer) at
  the columns its :class:`~sodtrack.bulkload.outcomes.Explanation` names (``fields``: a
  postal code Sodtrack does not cover, a slot that is taken, the values a correction may not
  change) with the row's message.

A row skipped behind another one, or waiting for a re-run, marks no cell: nothing in it is
wrong. A cell marked both ways shows the rejection (it is what must be fixed). Columns are
the input's headers as :class:`~sodtrack.bulkload.reading.rows.BookingRow` names them
(``row.headers``); a field read from several columns (a start given as a date and a time)
marks each of them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final, Literal

from sodtrack.bulkload.outcomes import RowResult
from sodtrack.bulkload.reading.rows import BookingRow

Mark = Literal["rejected", "warning"]

SOURCES: Final[Mapping[str, tuple[str, ...]]] = {
    "scheduled_start": ("scheduled_start", "scheduled_date", "scheduled_time"),
}
"""Canonical fields whose input may come from other columns (date + time build the start)."""


@dataclass(frozen=True, slots=True)
class CellMark:
    """How one input cell is marked: ``rejected`` (red) or ``warning`` (amber), and why."""

    severity: Mark
    message: str


def headers_by_field(columns: Mapping[str, str]) -> dict[str, list[str]]:
    """Canonical field → the input headers it was read from (``columns``: header → field, as
    :attr:`~sodtrack.bulkload.reading.upload.ParsedUpload.columns` gives it), the columns of
    :data:`SOURCES` included."""
    direct: dict[str, list[str]] = {}
    for header, canonical in columns.items():
        direct.setdefault(canonical, []).append(header)
    out = dict(direct)
    for fld, sources in SOURCES.items():
        out[fld] = [h for src in sources for h in direct.get(src, [])]
    return out


def highlights(
    result: RowResult, row: BookingRow, columns: Mapping[str, str]
) -> dict[str, CellMark]:
    """Input header → its mark, for the cells of ``row`` its answer ``result`` is about (see
    the module docstring). Headers not in ``row.headers`` are never returned."""
    present = set(row.headers)
    by_field = headers_by_field(columns)
    marks: dict[str, CellMark] = {}

    def cells(column: str | None, fld: str | None) -> list[str]:
        if column is not None and column in present:
            return [column]
        return [h for h in by_field.get(fld or "", []) if h in present]

    def put(headers: Iterable[str], mark: CellMark) -> None:
        for h in headers:
            had = marks.get(h)
            if had is None or (had.severity == "warning" and mark.severity == "rejected"):
                marks[h] = mark
            elif had.severity == mark.severity and mark.message not in had.message:
                marks[h] = CellMark(mark.severity, f"{had.message}\n{mark.message}")

    for w in row.warnings:
        put(cells(w.column, w.field), CellMark("warning", w.message))
    if result.outcome == "rejected" and result.why is not None:
        if not row.is_valid:  # the reader's own errors, each at its cell
            for e in row.errors:
                put(cells(e.column, e.field), CellMark("rejected", e.message))
        else:
            for fld in result.why.fields:
                put(cells(None, fld), CellMark("rejected", result.why.message))
    return marks
