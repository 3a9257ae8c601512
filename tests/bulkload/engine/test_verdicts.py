"""Row outcomes from step states (pure): the first failing step decides, or created/existing."""

from __future__ import annotations

from sodtrack.bulkload.engine.ledger import StepRecord, StepState
from sodtrack.bulkload.engine.plan import RowSteps, StepRef
from sodtrack.bulkload.engine.verdicts import row_verdict
from sodtrack.bulkload.outcomes import ErrorKind, Explanation, RowResult

P: StepRef = ("project", "P1")
B: StepRef = ("booking", "B1")
S: StepRef = ("stage", "P1#1")
Y: StepRef = ("payment", "Y1")


def rec(
    ref: StepRef,
    state: StepState,
    *,
    error_code: str | None = None,
    error_kind: ErrorKind | None = None,
    message: str | None = None,
    **kw: object,
) -> StepRecord:
    why = None
    if message is not None:
        kind: ErrorKind = error_kind or ("transient" if state == "failed_transient" else "invalid")
        why = Explanation(error_code or state, kind, message, "Re-run the same file.")
    return StepRecord("u", ref[0], ref[1], state, why=why, **kw)  # type: ignore[arg-type]


def done(ref: StepRef, run: int = 2, created: bool = True) -> StepRecord:
    return rec(ref, "done", sodtrack_id=f"id_{ref[0]}", created=created, done_run=run)


def verdict(states: dict[StepRef, StepRecord], own: bool = False, run: int = 2) -> RowResult:
    steps = RowSteps(0, P, own, B, S, Y)
    return row_verdict(position=0, sheet="S", row_number=2, steps=steps, states=states, run_no=run)


def test_all_done_in_this_run_is_created_with_every_id() -> None:
    r = verdict({P: done(P), B: done(B), S: done(S), Y: done(Y)})
    assert r.outcome == "created"
    assert r.payment_id == "id_payment"
    assert r.steps == {
        "project": "created",
        "booking": "created",
        "stage": "created",
        "payment": "created",
    }


def test_done_in_an_earlier_run_or_found_existing_is_already_existed() -> None:
    r = verdict({P: done(P, run=1), B: done(B, created=False), S: done(S, 1), Y: done(Y, 1)})
    assert r.outcome == "already_existed"
    assert r.steps["booking"] == "existing"


def test_a_refused_payment_makes_the_row_rejected_naming_the_step() -> None:
    y = rec(Y, "rejected", error_code="overpayment", error_kind="invalid", message="too much")
    r = verdict({P: done(P), B: done(B), S: done(S), Y: y})
    assert (r.outcome, r.failed_step, r.error_code) == ("rejected", "payment", "overpayment")
    assert r.booking_id == "id_booking"
    assert not r.retry_on_rerun


def test_a_failed_project_is_the_source_rows_failure_and_the_others_dependency() -> None:
    p = rec(P, "failed_transient", error_code="transient", error_kind="transient", message="503")
    states = {P: p, B: rec(B, "skipped", message="dep", data={"retry": True})}
    own = verdict(states, own=True)
    other = verdict(states, own=False)
    assert (own.outcome, own.failed_step) == ("failed_transient", "project")
    assert other.outcome == "skipped_dependency"
    assert "project P1 failed" in (other.message or "")
    assert other.retry_on_rerun


def test_slot_taken_is_a_conflict_and_never_attempted_steps_are_transient() -> None:
    b = rec(B, "rejected", error_code="slot_unavailable", error_kind="conflict", message="taken")
    r = verdict({P: done(P), B: b})
    assert r.needs_a_person
    r = verdict({P: done(P), B: rec(B, "pending")})
    assert (r.outcome, r.error_code, r.retry_on_rerun) == (
        "failed_transient",
        "not_attempted",
        True,
    )


def updated(ref: StepRef, run: int = 2) -> StepRecord:
    return rec(
        ref,
        "done",
        sodtrack_id=f"id_{ref[0]}",
        created=False,
        done_run=run,
        data={"existing": True, "update": ["notes"], "updated_run": run},
    )


def test_a_step_this_run_updated_makes_the_row_updated() -> None:
    r = verdict({P: done(P, 1), B: updated(B), S: done(S, 1), Y: done(Y, 1)})
    assert r.outcome == "updated"
    assert r.steps["booking"] == "updated"
    assert r.booking_id == "id_booking"


def test_created_wins_over_updated_and_a_later_run_says_already_existed() -> None:
    assert verdict({P: updated(P), B: done(B), S: done(S), Y: done(Y)}).outcome == "created"
    later = verdict({P: updated(P, 1), B: done(B, 1), S: done(S, 1), Y: done(Y, 1)}, run=2)
    assert later.outcome == "already_existed"
    assert later.steps["project"] == "existing"


def test_a_refused_correction_after_an_update_elsewhere_is_rejected() -> None:
    b = rec(
        B,
        "rejected",
        sodtrack_id="bkg_1",
        error_code="correction_not_allowed",
        error_kind="invalid",
        message="different city",
    )
    r = verdict({P: updated(P), B: b})
    assert (r.outcome, r.failed_step, r.error_code) == (
        "rejected",
        "booking",
        "correction_not_allowed",
    )
    assert r.booking_id == "bkg_1"
