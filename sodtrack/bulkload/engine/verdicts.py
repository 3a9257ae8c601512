"""Row outcomes from step states: the one place that decides what a row's answer is. Pure.

A row's steps, in dependency order, are: its project (shared by the project's rows), its
booking, its stage (shared by the rows of one ``stage_sequence``) and its payment. The rule:

* all done → ``created`` if any of them was created by *this* run, else ``updated`` if this
  run changed any of them (a correction, :mod:`.compare`), else ``already_existed``;
* otherwise the *first* step in that order that is not done decides, and is named in
  ``failed_step``:

  - the project failed: for the row the project was built from, the project's own state
    (``rejected`` / ``failed_transient``); for the project's other rows
    ``skipped_dependency`` naming the project and its cause;
  - ``rejected`` → ``rejected`` (``error_kind`` ``conflict`` when a person must decide);
  - ``failed_transient`` (or never attempted) → ``failed_transient``;
  - ``skipped`` → ``skipped_dependency`` with the step's recorded cause.

So a row whose booking was created but whose payment was refused is ``rejected`` with
``failed_step=payment`` and its ``booking_id`` filled: exact, and ready to re-upload (the
booking is then found existing, only the payment is created).

``retry_on_rerun`` is true when re-running the same file can change the answer: a transient
failure, or a dependency on one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from sodtrack.bulkload.engine.ledger import StepRecord
from sodtrack.bulkload.engine.plan import RowSteps, StepRef
from sodtrack.bulkload.messages import explain_dependency
from sodtrack.bulkload.outcomes import Explanation, Outcome, RowResult, StepStatus

_STATUS: Mapping[str, StepStatus] = {
    "rejected": "rejected",
    "failed_transient": "failed_transient",
    "skipped": "skipped",
    "pending": "not_attempted",
    "in_flight": "not_attempted",
}


def explanation_of(rec: StepRecord) -> Explanation:
    """Why the step is not done: its recorded explanation, else a generic one."""
    if rec.why is not None:
        return rec.why
    return Explanation(
        rec.state,
        "transient" if rec.state == "failed_transient" else "invalid",
        f"The {rec.kind} {rec.key} was not completed.",
        "Re-run the same file.",
    )


def retries(rec: StepRecord) -> bool:
    """Whether re-running the same file can complete this step."""
    if rec.state in ("failed_transient", "pending", "in_flight"):
        return True
    if rec.state == "skipped":
        return bool(rec.data.get("retry", False))
    return False


def step_status(rec: StepRecord, run_no: int) -> StepStatus:
    if rec.state == "done":
        if rec.done_run == run_no and rec.created:
            return "created"
        if rec.data.get("updated_run") == run_no:
            return "updated"
        return "existing"
    return _STATUS[rec.state]


def row_verdict(
    *,
    position: int,
    sheet: str | None,
    row_number: int,
    steps: RowSteps,
    states: Mapping[StepRef, StepRecord],
    run_no: int,
    warnings: tuple[str, ...] = (),
) -> RowResult:
    """The answer for one planned row (see the module docstring)."""
    ids: dict[str, str | None] = {}
    statuses: dict[str, StepStatus] = {}
    first: tuple[str, StepRecord] | None = None
    for label, ref in steps.ordered():
        rec = states.get(ref) or StepRecord(upload_id="", kind=ref[0], key=ref[1], state="pending")
        if rec.state == "done":
            ids[label] = rec.sodtrack_id
            statuses[label] = step_status(rec, run_no)
        else:
            ids.setdefault(label, rec.sodtrack_id)
            statuses[label] = step_status(rec, run_no)
            if first is None:
                first = (label, rec)
    done_as: Outcome = "already_existed"
    if any(s == "created" for s in statuses.values()):
        done_as = "created"
    elif any(s == "updated" for s in statuses.values()):
        done_as = "updated"
    base = RowResult(
        position=position,
        sheet=sheet,
        row_number=row_number,
        outcome=done_as,
        project_id=ids.get("project"),
        booking_id=ids.get("booking"),
        stage_id=ids.get("stage"),
        payment_id=ids.get("payment"),
        steps=statuses,
        warnings=warnings,
    )
    if first is None:
        return base

    label, rec = first
    why = explanation_of(rec)
    if label == "project" and not steps.project_is_own and rec.state != "skipped":
        dep = explain_dependency(
            parent_step="project", parent_key=rec.key, parent=why, own_step="booking"
        )
        return replace(
            base,
            outcome="skipped_dependency",
            failed_step="project",
            why=replace(dep, kind="dependency"),
            retry_on_rerun=retries(rec),
        )
    outcome: Outcome
    if rec.state == "rejected":
        outcome = "rejected"
    elif rec.state == "skipped":
        outcome = "skipped_dependency"
    else:
        outcome = "failed_transient"
    if rec.state in ("pending", "in_flight") and rec.why is None:
        why = Explanation(
            "not_attempted",
            "transient",
            f"The {label} was not attempted in this run.",
            "Re-run the same file.",
        )
    return replace(
        base,
        outcome=outcome,
        failed_step=_failed_step(label, rec),
        why=replace(why, kind="dependency") if rec.state == "skipped" else why,
        retry_on_rerun=retries(rec),
    )


def _failed_step(label: str, rec: StepRecord) -> str:
    """A booking held back because its checks could not be read (``failed_transient`` with
    ``phase=validation``) failed before any write: step ``validation``. (A payment refused by
    the checks keeps ``payment``: its booking was written.)"""
    held_back = rec.state == "failed_transient" and rec.data.get("phase") == "validation"
    return "validation" if label == "booking" and held_back else label
