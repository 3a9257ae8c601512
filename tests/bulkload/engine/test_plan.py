"""The load plan is pure: grouping, order and explicit dependencies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from sodtrack.bulkload.engine.plan import build_plan, stage_key

PAID = datetime(2026, 12, 1, 12, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    external_reference: str | None
    project_reference: str | None = None
    project_name: str | None = None
    stage_sequence: int | None = None
    stage_name: str | None = None
    payment_reference: str | None = None
    payment_amount: Decimal | None = None
    payment_currency: str | None = None
    payment_method: str | None = None
    paid_at: datetime | None = None


def pay(ref: str, amount: str = "100") -> dict[str, object]:
    return {
        "payment_reference": ref,
        "payment_amount": Decimal(amount),
        "payment_currency": "CLP",
        "payment_method": "card",
        "paid_at": PAID,
    }


def test_plain_bookings_have_no_dependencies() -> None:
    plan = build_plan([Row("B1"), Row("B2")])
    assert plan.projects == ()
    assert [b.step.ref for b in plan.plain] == [("booking", "B1"), ("booking", "B2")]
    assert all(b.step.requires == () for b in plan.plain)
    assert plan.by_position[1].ordered() == [("booking", ("booking", "B2"))]


def test_project_groups_bookings_stages_payments_in_order() -> None:
    rows = [
        Row("B1", "P1", "Kitchen", 2, "Install", **pay("Y1")),  # type: ignore[arg-type]
        Row("X1"),
        Row("B2", "P1", None, 1, "Demolition"),
        Row("B3", "P1", None, 2, None, **pay("Y2", "50")),  # type: ignore[arg-type]
        Row("B4", "P1"),
    ]
    plan = build_plan(rows)
    (project,) = plan.projects
    assert project.reference == "P1"
    assert project.name == "Kitchen"
    assert project.source_position == 0
    assert project.positions == (0, 2, 3, 4)
    assert [b.step.key for b in project.bookings] == ["B1", "B2", "B3", "B4"]
    assert all(b.step.requires == (("project", "P1"),) for b in project.bookings)
    # stages in sequence order, each holding its rows, named from its first named row
    assert [(s.sequence, s.name, s.positions) for s in project.stages] == [
        (1, "Demolition", (2,)),
        (2, "Install", (0, 3)),
    ]
    assert project.stages[1].step.key == stage_key("P1", 2)
    assert project.stages[1].step.requires == (("project", "P1"),)
    assert project.stages[1].step.waits_for == (("booking", "B1"), ("booking", "B3"))
    # payments in file order, depending on project, own booking, own stage, every booking
    assert [y.payment_reference for y in project.payments] == ["Y1", "Y2"]
    y1 = project.payments[0]
    assert y1.step.requires == (("project", "P1"), ("booking", "B1"), ("stage", "P1#2"))
    assert y1.step.waits_for == (("booking", "B2"), ("booking", "B3"), ("booking", "B4"))
    assert [b.step.key for b in plan.plain] == ["X1"]
    steps = plan.by_position[3]
    assert steps.project_is_own is False
    assert [label for label, _ in steps.ordered()] == ["project", "booking", "stage", "payment"]
    assert plan.by_position[0].project_is_own is True


def test_excluded_rows_get_no_steps_and_move_the_source_row() -> None:
    rows = [Row("B1", "P1", "Kitchen"), Row("B2", "P1", "Kitchen"), Row("B3")]
    plan = build_plan(rows, excluded=frozenset({0, 2}))
    (project,) = plan.projects
    assert project.source_position == 1
    assert project.positions == (1,)
    assert plan.plain == ()
    assert set(plan.by_position) == {1}
    assert plan.excluded == frozenset({0, 2})


def test_all_steps_lists_parents_before_children() -> None:
    rows = [
        Row("B1", "P1", "K", 1, "S", **pay("Y1")),  # type: ignore[arg-type]
        Row("B2"),
    ]
    kinds = [s.kind for s in build_plan(rows).all_steps()]
    assert kinds == ["project", "booking", "stage", "payment", "booking"]


def test_rows_the_plan_cannot_use_must_be_excluded() -> None:
    with pytest.raises(ValueError, match="external_reference"):
        build_plan([Row(None)])
    bad_payment = Row("B1", "P1", "K", payment_reference="Y1")
    with pytest.raises(ValueError, match="incomplete payment"):
        build_plan([bad_payment])
