"""Assembling the answers: the per-row results of a real run and of a dry run, and the rows
as the ledger keeps them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sodtrack.loader.checks import Checked
from sodtrack.loader.ledger import RowRecord, StepRecord
from sodtrack.loader.messages import Explanation
from sodtrack.loader.outcomes import RowResult
from sodtrack.loader.plan import LoadPlan, StepRef
from sodtrack.loader.rows import BookingRow
from sodtrack.loader.verdicts import explanation_of, row_verdict


def real_answers(
    rows: list[BookingRow],
    plan: LoadPlan,
    reader_rejected: Mapping[int, Explanation],
    final: Mapping[StepRef, StepRecord],
    run_no: int,
    warnings: Mapping[int, tuple[str, ...]],
) -> list[RowResult]:
    """One result per row after a load, read from the ledger's final step states."""
    results = []
    for i, row in enumerate(rows):
        if i in reader_rejected:
            results.append(_rejected(i, row, reader_rejected[i], "validation", warnings[i]))
            continue
        steps = plan.by_position.get(i)
        if steps is None:  # refused before any write, in this run or an earlier one
            rec = final[("booking", row.external_reference)]
            phase = "validation" if rec.data.get("phase") == "validation" else "booking"
            results.append(_rejected(i, row, explanation_of(rec), phase, warnings[i]))
            continue
        results.append(
            row_verdict(
                position=i,
                sheet=row.sheet,
                row_number=row.row_number,
                steps=steps,
                states=final,
                run_no=run_no,
                warnings=warnings[i],
            )
        )
    return results


def _rejected(
    i: int, row: BookingRow, why: Explanation, step: str, warnings: tuple[str, ...]
) -> RowResult:
    return RowResult(
        i,
        row.sheet,
        row.row_number,
        "rejected",
        failed_step=step,
        error_code=why.code,
        error_kind=why.kind,
        message=why.message,
        suggested_fix=why.suggested_fix,
        steps={"booking": "rejected"} if step != "validation" else {},
        warnings=warnings,
    )


def dry_answers(
    rows: list[BookingRow],
    plan: LoadPlan,
    reader_rejected: Mapping[int, Explanation],
    checked: Checked,
    states: Mapping[StepRef, StepRecord],
    payment_refused: Mapping[int, Explanation],
    warnings: Mapping[int, tuple[str, ...]],
) -> list[RowResult]:
    out: list[RowResult] = []
    for i, row in enumerate(rows):
        if i in reader_rejected:
            out.append(_rejected(i, row, reader_rejected[i], "validation", warnings[i]))
            continue
        if i in checked.rejected:
            out.append(_rejected(i, row, checked.rejected[i], "validation", warnings[i]))
            continue
        if i in checked.unchecked:
            why = checked.unchecked[i]
            out.append(
                RowResult(
                    i,
                    row.sheet,
                    row.row_number,
                    "failed_transient",
                    failed_step="validation",
                    error_code=why.code,
                    error_kind=why.kind,
                    message=why.message,
                    suggested_fix=why.suggested_fix,
                    retry_on_rerun=True,
                    warnings=warnings[i],
                )
            )
            continue
        rec = states.get(("booking", row.external_reference))
        if rec is not None and rec.state == "rejected":
            out.append(_rejected(i, row, explanation_of(rec), "booking", warnings[i]))
            continue
        if i in payment_refused:
            why = payment_refused[i]
            out.append(
                RowResult(
                    i,
                    row.sheet,
                    row.row_number,
                    "rejected",
                    failed_step="payment",
                    error_code=why.code,
                    error_kind=why.kind,
                    message=why.message,
                    suggested_fix=why.suggested_fix,
                    steps={"booking": "ok", "payment": "rejected"},
                    warnings=warnings[i],
                )
            )
            continue
        steps = plan.by_position[i]
        statuses = {
            label: (
                "existing" if (s := states.get(ref)) is not None and s.state == "done" else "ok"
            )
            for label, ref in steps.ordered()
        }
        exists = all(v == "existing" for v in statuses.values())
        out.append(
            RowResult(
                i,
                row.sheet,
                row.row_number,
                "already_existed" if exists else "would_create",
                booking_id=rec.sodtrack_id if rec is not None and rec.state == "done" else None,
                steps=statuses,  # type: ignore[arg-type]
                warnings=warnings[i],
            )
        )
    return out


def row_record(i: int, row: BookingRow) -> RowRecord:
    return RowRecord(
        position=i,
        sheet=row.sheet,
        row_number=row.row_number,
        external_reference=row.external_reference or None,
        project_reference=row.project_reference,
        stage_sequence=row.stage_sequence,
        payment_reference=row.payment_reference,
        original={k: _jsonable(v) for k, v in row.original.items()},
        interpreted={k: _jsonable(v) for k, v in row.interpreted().items()},
    )


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Decimal):
        return f"{value:f}"
    iso = getattr(value, "isoformat", None)
    return iso() if callable(iso) else str(value)


def outcome_record(r: RowResult) -> RowRecord:
    return RowRecord(
        position=r.position,
        sheet=r.sheet,
        row_number=r.row_number,
        outcome=r.outcome,
        failed_step=r.failed_step,
        error_code=r.error_code,
        error_kind=r.error_kind,
        message=r.message,
        suggested_fix=r.suggested_fix,
        project_id=r.project_id,
        booking_id=r.booking_id,
        stage_id=r.stage_id,
        payment_id=r.payment_id,
    )
