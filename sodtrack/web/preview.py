"""What the page shows of an upload's rows: the sheet in its own layout (its own column names,
its row numbers), every row's verdict with message and suggested fix, interpreted values beside
the originals where they differ, and per-cell marks. Pure: built from the reader's
:class:`ParsedUpload` and the engine's :class:`UploadResult`, saved as JSON beside the upload.

Cell marks come from :func:`cell_marks`: the same marks the results and rejects XLSX files
carry (:func:`sodtrack.bulkload.answers.highlight.highlights`, one definition), or, before
the row has an answer, the cells of the reader's own issues.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from sodtrack.bulkload.answers.highlight import highlights
from sodtrack.bulkload.answers.results import text_of
from sodtrack.bulkload.outcomes import OUTCOMES, RowResult, UploadResult
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.bulkload.reading.upload import ParsedUpload

PREVIEW_ROW_LIMIT: Final = 2000
"""Rows the page lists (every row is counted, and every row is in the results file)."""

_SCHEDULED = ("scheduled_date", "scheduled_time", "scheduled_start")


def _canonical_of(columns: dict[str, str], header: str) -> str | None:
    return columns.get(header)


def cell_marks(
    row: BookingRow, result: RowResult | None, columns: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Original header -> ``{"severity": "error"|"warning", "message": ...}`` for the cells
    at fault in ``row`` (see the module docstring)."""
    if result is not None:
        return {
            header: {
                "severity": "error" if mark.severity == "rejected" else "warning",
                "message": mark.message,
            }
            for header, mark in highlights(result, row, columns).items()
        }
    by_field: dict[str, str] = {}
    for head, canonical in columns.items():
        by_field.setdefault(canonical, head)
    marks: dict[str, dict[str, str]] = {}
    for issue in row.issues:
        header: str | None = issue.column or (by_field.get(issue.field) if issue.field else None)
        if header is None and issue.field == "scheduled_start":
            header = by_field.get("scheduled_date")
        if header is None:
            continue
        previous = marks.get(header)
        if previous is None or (previous["severity"] == "warning" and issue.severity == "error"):
            marks[header] = {"severity": str(issue.severity), "message": issue.message}
    return marks


def _interpreted(row: BookingRow, columns: dict[str, str]) -> dict[str, str]:
    """Original header -> interpreted value, where it reads differently from the cell."""
    values = row.interpreted()
    original = row.original
    out: dict[str, str] = {}
    for header, canonical in columns.items():
        key = "scheduled_start" if canonical in _SCHEDULED else canonical
        if key not in values:
            continue
        shown = text_of(values[key])
        if shown and shown != text_of(original.get(header)).strip():
            out[header] = shown
    return out


def build_preview(
    parsed: ParsedUpload, result: UploadResult, *, limit: int = PREVIEW_ROW_LIMIT
) -> dict[str, Any]:
    """The JSON the page renders (and ``/api/uploads/{id}/rows`` answers)."""
    headers: list[str] = []
    for row in parsed.rows[:1]:
        headers = list(row.original)
    if not headers:
        headers = list(parsed.columns)
    by_position = {r.position: r for r in result.rows}
    rows = []
    for i, row in enumerate(parsed.rows[:limit]):
        res = by_position.get(i)
        original = row.original
        rows.append(
            {
                "row_number": row.row_number,
                "sheet": row.sheet,
                "cells": [text_of(original.get(h)) for h in headers],
                "interpreted": _interpreted(row, parsed.columns),
                "marks": cell_marks(row, res, parsed.columns),
                "outcome": res.outcome if res else "",
                "failed_step": (res.failed_step or "") if res else "",
                "error_code": (res.error_code or "") if res else "",
                "message": (res.message or "") if res else "",
                "suggested_fix": (res.suggested_fix or "") if res else "",
                "warnings": list(res.warnings) if res else [],
            }
        )
    counts = Counter(r.outcome for r in result.rows)
    return {
        "upload_id": result.upload_id,
        "dry_run": result.dry_run,
        "country": result.country,
        "headers": headers,
        "rows": rows,
        "rows_total": len(parsed.rows),
        "rows_shown": len(rows),
        "counts": {o: counts.get(o, 0) for o in OUTCOMES if counts.get(o, 0)},
        "would_load": sum(counts.get(o, 0) for o in ("would_create", "would_update")),
        "upload_errors": list(result.upload_errors),
        "notices": list(result.notices),
    }
