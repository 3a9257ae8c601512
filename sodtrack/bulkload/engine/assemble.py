"""Assembling the answers: the per-row results of a real run and of a dry run, and the rows
as the ledger keeps them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, tzinfo
from decimal import Decimal

from sodtrack.bulkload.engine.checks import Checked
from sodtrack.bulkload.engine.compare import Comparison, describe
from sodtrack.bulkload.engine.ledger import RowRecord, StepRecord
from sodtrack.bulkload.engine.plan import LoadPlan, RowSteps, StepRef
from sodtrack.bulkload.engine.verdicts import explanation_of, row_verdict
from sodtrack.bulkload.messages import explain_correction_refused, explain_dependency
from sodtrack.bulkload.outcomes import Explanation, Outcome, RowResult, StepStatus
from sodtrack.bulkload.reading.rows import BookingRow


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
        why=why,
        steps={"booking": "rejected"} if step != "validation" else {},
        warnings=warnings,
    )


def _refusal(
    steps: RowSteps, found: Mapping[StepRef, tuple[str, Comparison]], tz: tzinfo
) -> tuple[str, str, Explanation] | None:
    """A dry run's correction refusal for the row: (failed step, Sodtrack id, why)."""
    for label, ref in steps.ordered():
        hit = found.get(ref)
        if hit is None or hit[1].verdict != "refuse":
            continue
        sodtrack_id, c = hit
        why = explain_correction_refused(
            resource=c.resource,
            reference=ref[1],
            sodtrack_id=sodtrack_id,
            differences=describe(c.differences, tz),
            cancelled=c.cancelled,
            fields=c.changed_fields,
        )
        if label == "project" and not steps.project_is_own:
            dep = explain_dependency(
                parent_step="project", parent_key=ref[1], parent=why, own_step="booking"
            )
            return (
                label,
                sodtrack_id,
                replace(dep, kind="dependency"),
            )
        return label, sodtrack_id, why
    return None


def dry_answers(
    rows: list[BookingRow],
    plan: LoadPlan,
    reader_rejected: Mapping[int, Explanation],
    checked: Checked,
    states: Mapping[StepRef, StepRecord],
    payment_refused: Mapping[int, Explanation],
    warnings: Mapping[int, tuple[str, ...]],
    found: Mapping[StepRef, tuple[str, Comparison]] | None = None,
    known_payments: frozenset[str] = frozenset(),
    tz: tzinfo = UTC,
) -> list[RowResult]:
    """A dry run's answers. ``found``: records Sodtrack already holds for planned steps,
    compared with the rows (:func:`sodtrack.bulkload.engine.existing.compare_found`): refused →
    ``rejected``, changes → ``would_update``, identical → counted as existing.
    ``known_payments``: payment references the ledger knows exist."""
    found = found or {}
    out: list[RowResult] = []
    for i, row in enumerate(rows):
        if i in reader_rejected:
            out.append(_rejected(i, row, reader_rejected[i], "validation", warnings[i]))
            continue
        if i in checked.rejected:
            out.append(_rejected(i, row, checked.rejected[i], "validation", warnings[i]))
            continue
        if i in checked.unchecked:
            out.append(
                unchecked(
                    RowResult(i, row.sheet, row.row_number, "would_create", warnings=warnings[i]),
                    checked.unchecked[i],
                )
            )
            continue
        rec = states.get(("booking", row.external_reference))
        if rec is not None and rec.state == "rejected":
            out.append(_rejected(i, row, explanation_of(rec), "booking", warnings[i]))
            continue
        steps = plan.by_position[i]
        refusal = _refusal(steps, found, tz)
        if refusal is not None:
            label, sodtrack_id, why = refusal
            out.append(
                RowResult(
                    i,
                    row.sheet,
                    row.row_number,
                    "skipped_dependency" if why.kind == "dependency" else "rejected",
                    failed_step=label,
                    why=why,
                    booking_id=sodtrack_id if label == "booking" else None,
                    project_id=sodtrack_id if label == "project" else None,
                    steps={label: "rejected"},
                    warnings=warnings[i],
                )
            )
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
                    why=why,
                    steps={"booking": "ok", "payment": "rejected"},
                    warnings=warnings[i],
                )
            )
            continue
        statuses: dict[str, StepStatus] = {
            label: _dry_status(ref, states, found, known_payments) for label, ref in steps.ordered()
        }
        outcome: Outcome = "already_existed"
        if any(v == "ok" for v in statuses.values()):
            outcome = "would_create"
        elif any(v == "would_update" for v in statuses.values()):
            outcome = "would_update"
        booking_id = rec.sodtrack_id if rec is not None and rec.state == "done" else None
        if booking_id is None and steps.booking in found:
            booking_id = found[steps.booking][0]
        out.append(
            RowResult(
                i,
                row.sheet,
                row.row_number,
                outcome,
                booking_id=booking_id,
                steps=statuses,
                warnings=warnings[i],
            )
        )
    return out


def unchecked(r: RowResult, why: Explanation) -> RowResult:
    """A row whose checks before writing could not run (Sodtrack did not answer them):
    ``failed_transient`` at step ``validation``, retried by a re-run. A row already answered
    for good (``already_existed``, ``rejected``) keeps its answer."""
    if r.outcome in ("already_existed", "rejected"):
        return r
    return replace(
        r,
        outcome="failed_transient",
        failed_step="validation",
        why=why,
        retry_on_rerun=True,
    )


def _dry_status(
    ref: StepRef,
    states: Mapping[StepRef, StepRecord],
    found: Mapping[StepRef, tuple[str, Comparison]],
    known_payments: frozenset[str],
) -> StepStatus:
    rec = states.get(ref)
    if rec is not None and rec.state == "done":
        return "existing"
    hit = found.get(ref)
    if hit is not None:
        return "would_update" if hit[1].verdict == "update" else "existing"
    if ref[0] == "payment" and ref[1] in known_payments:
        return "existing"
    return "ok"


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
