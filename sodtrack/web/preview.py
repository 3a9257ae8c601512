"""What the page shows of an upload's rows: the sheet in its own layout (its own column names,
its row numbers), every row's verdict with message and suggested fix, interpreted values beside
the originals where they differ, and per-cell marks. Pure: built from the reader's
:class:`ParsedUpload` and the engine's :class:`UploadResult`, saved as JSON beside the upload.

Cell marks come from :func:`cell_marks`, one function: today it marks the cell of each of the
row's issues (the column the issue names) and, for a row the live checks or the API refused,
the column of the field its error code is about (:data:`FIELD_OF_ERROR`, else the failed
step's field); when ``sodtrack.bulkload.answers`` gains its per-cell severity function,
``cell_marks`` calls it instead and nothing else changes.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Final

from sodtrack.bulkload.answers.results import text_of
from sodtrack.bulkload.outcomes import OUTCOMES, RowResult, UploadResult
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.bulkload.reading.upload import ParsedUpload

PREVIEW_ROW_LIMIT: Final = 2000
"""Rows the page lists (every row is counted, and every row is in the results file)."""

SEVERITY_OF_OUTCOME: Final = {"rejected": "error", "skipped_dependency": "error"}

_SCHEDULED = ("scheduled_date", "scheduled_time", "scheduled_start")

FIELD_OF_ERROR: Final = {
    "unknown_service_sku": "service_sku",
    "service_inactive": "service_sku",
    "project_required": "project_reference",
    "unknown_variant_sku": "variant_sku",
    "variant_inactive": "variant_sku",
    "variant_mismatch": "variant_sku",
    "postal_code_not_covered": "postal_code",
    "not_a_slot_start": "scheduled_start",
    "outside_booking_window": "scheduled_start",
    "slot_unavailable": "scheduled_start",
    "overpayment_in_file": "payment_amount",
}
"""The field a row's API-side error is about (the cell to mark), by error code."""
FIELD_OF_STEP: Final = {
    "payment": "payment_amount",
    "stage": "stage_sequence",
    "project": "project_reference",
}
"""Otherwise, the field of the step that failed."""


def _canonical_of(columns: dict[str, str], header: str) -> str | None:
    return columns.get(header)


def cell_marks(
    row: BookingRow, result: RowResult | None, columns: dict[str, str]
) -> dict[str, dict[str, str]]:
    """Original header -> ``{"severity": "error"|"warning", "message": ...}`` for the cells
    at fault in ``row`` (see the module docstring)."""
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
    if result is not None and result.outcome in SEVERITY_OF_OUTCOME and not marks:
        field = FIELD_OF_ERROR.get(result.error_code or "") or FIELD_OF_STEP.get(
            result.failed_step or ""
        )
        if field in _SCHEDULED:
            field = "scheduled_start" if "scheduled_start" in by_field else "scheduled_date"
        at = by_field.get(field) if field else None
        if at is not None:
            marks[at] = {"severity": "error", "message": result.message or ""}
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
