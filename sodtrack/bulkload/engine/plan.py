"""The load plan: which writes an upload needs, in which order, and what depends on what.

Pure: rows in, plan out; no I/O, unit-tested on its own.

Shape
-----
For each project (rows sharing a ``project_reference``), in order of first appearance::

    project            name, customer and address from its *source row* (its first row that
     │                 passed validation; the reader already checked the others agree)
     ├── bookings      one per row, created after the project (carry its id)
     ├── stages        one per distinct ``stage_sequence``, created after the bookings they
     │                 hold (the stage's name from its first row), in sequence order
     └── payments      one per row with a ``payment_reference``, in file order, after the
                       stages (a payment names its row's stage when the row has one)

Rows without a project are *plain bookings*: independent of each other.

Dependencies are explicit (:attr:`Step.requires`), so the engine can tell, for any write it did
not attempt, which parent stopped it (``skipped_dependency`` naming the cause):

* a project booking requires its project;
* a stage requires its project and waits for its bookings to settle; it holds those that
  were created, and is not created when none was (it would be an empty shell);
* a payment requires its project, its own row's booking (money is not registered for a row
  that the operator will fix and upload again) and its stage if the row has one, and waits
  for every other booking of its project to settle (done or rejected, not pending or failed
  transiently): the API checks a payment against the project's *current* total, so paying
  before a booking exists could be refused as an overpayment that is not one.

Rows listed in ``excluded`` (rejected during validation) get no steps at all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from sodtrack.bulkload.engine.ledger import StepKind


class PlanRow(Protocol):
    """What the plan reads from a parsed row (``BookingRow`` satisfies it)."""

    @property
    def external_reference(self) -> str | None: ...
    @property
    def project_reference(self) -> str | None: ...
    @property
    def project_name(self) -> str | None: ...
    @property
    def stage_sequence(self) -> int | None: ...
    @property
    def stage_name(self) -> str | None: ...
    @property
    def payment_reference(self) -> str | None: ...
    @property
    def payment_amount(self) -> Decimal | None: ...
    @property
    def payment_currency(self) -> str | None: ...
    @property
    def payment_method(self) -> str | None: ...
    @property
    def paid_at(self) -> datetime | None: ...


StepRef = tuple[StepKind, str]
"""``(kind, key)``: the ledger's identity of one write."""


def stage_key(project_reference: str, sequence: int) -> str:
    """The ledger key of a stage: stages are unique per ``(project, sequence)``."""
    return f"{project_reference}#{sequence}"


@dataclass(frozen=True, slots=True)
class Step:
    """One write of the plan."""

    kind: StepKind
    key: str
    requires: tuple[StepRef, ...] = ()
    """Steps that must be ``done`` first."""
    waits_for: tuple[StepRef, ...] = ()
    """Steps that must be *settled* first (``done`` or ``rejected``, not pending or failed
    transiently): a stage's bookings (at least one of them done), a payment's sibling
    bookings in the project."""

    @property
    def ref(self) -> StepRef:
        return (self.kind, self.key)


@dataclass(frozen=True, slots=True)
class BookingLoad:
    position: int
    step: Step
    project_reference: str | None = None
    stage_sequence: int | None = None


@dataclass(frozen=True, slots=True)
class StageLoad:
    project_reference: str
    sequence: int
    name: str
    positions: tuple[int, ...]
    """Rows whose bookings the stage holds, in file order."""
    step: Step


@dataclass(frozen=True, slots=True)
class PaymentLoad:
    position: int
    project_reference: str
    payment_reference: str
    amount: Decimal
    currency: str | None
    method: str
    paid_at: datetime
    stage_sequence: int | None
    step: Step


@dataclass(frozen=True, slots=True)
class ProjectLoad:
    reference: str
    name: str
    source_position: int
    """The row the project's name, customer and address are taken from."""
    positions: tuple[int, ...]
    """Every row of the project that gets steps, in file order."""
    step: Step
    bookings: tuple[BookingLoad, ...]
    stages: tuple[StageLoad, ...]
    payments: tuple[PaymentLoad, ...]

    @property
    def booking_refs(self) -> tuple[StepRef, ...]:
        return tuple(b.step.ref for b in self.bookings)


@dataclass(frozen=True, slots=True)
class LoadPlan:
    projects: tuple[ProjectLoad, ...]
    plain: tuple[BookingLoad, ...]
    excluded: frozenset[int] = frozenset()
    by_position: Mapping[int, RowSteps] = field(default_factory=dict)
    """For each planned row, the steps that decide its outcome."""

    def all_steps(self) -> list[Step]:
        """Every step, parents before children."""
        out: list[Step] = []
        for p in self.projects:
            out.append(p.step)
            out.extend(b.step for b in p.bookings)
            out.extend(s.step for s in p.stages)
            out.extend(y.step for y in p.payments)
        out.extend(b.step for b in self.plain)
        return out


@dataclass(frozen=True, slots=True)
class RowSteps:
    """The steps one row's outcome is read from, in dependency order."""

    position: int
    project: StepRef | None
    project_is_own: bool
    """This row is the project's source row: a project failure is *its* failure."""
    booking: StepRef
    stage: StepRef | None
    payment: StepRef | None

    def ordered(self) -> list[tuple[str, StepRef]]:
        out: list[tuple[str, StepRef]] = []
        if self.project is not None:
            out.append(("project", self.project))
        out.append(("booking", self.booking))
        if self.stage is not None:
            out.append(("stage", self.stage))
        if self.payment is not None:
            out.append(("payment", self.payment))
        return out


def build_plan(rows: Sequence[PlanRow], excluded: frozenset[int] = frozenset()) -> LoadPlan:
    """Group rows (by position in ``rows``) into the plan; ``excluded`` rows get no steps.

    Rows are expected to be valid for the fields the plan reads (references present, a
    payment's amount, method and date present when it has a reference): rows that are not
    must be in ``excluded``. A row with a ``stage_sequence`` but no project is planned as a
    plain booking (the reader reports that combination).
    """
    project_order: list[str] = []
    project_rows: dict[str, list[int]] = {}
    plain: list[BookingLoad] = []
    by_position: dict[int, RowSteps] = {}

    for pos, row in enumerate(rows):
        if pos in excluded:
            continue
        ref = row.external_reference
        if not ref:
            raise ValueError(f"row at position {pos} has no external_reference: exclude it")
        if row.project_reference:
            if row.project_reference not in project_rows:
                project_order.append(row.project_reference)
                project_rows[row.project_reference] = []
            project_rows[row.project_reference].append(pos)
        else:
            step = Step("booking", ref)
            plain.append(BookingLoad(pos, step))
            by_position[pos] = RowSteps(pos, None, False, step.ref, None, None)

    projects: list[ProjectLoad] = []
    for pref in project_order:
        positions = project_rows[pref]
        source = positions[0]
        project_step = Step("project", pref)
        name = next((rows[p].project_name for p in positions if rows[p].project_name), None)

        bookings: list[BookingLoad] = []
        for p in positions:
            b_ref = rows[p].external_reference
            assert b_ref is not None
            bookings.append(
                BookingLoad(
                    p,
                    Step("booking", b_ref, requires=(project_step.ref,)),
                    pref,
                    rows[p].stage_sequence,
                )
            )
        booking_of = {b.position: b for b in bookings}

        seq_rows: dict[int, list[int]] = {}
        for p in positions:
            seq = rows[p].stage_sequence
            if seq is not None:
                seq_rows.setdefault(seq, []).append(p)
        stages: list[StageLoad] = []
        for seq in sorted(seq_rows):
            members = tuple(seq_rows[seq])
            names = [n for n in (rows[p].stage_name for p in members) if n]
            stage_name = names[0] if names else f"Stage {seq}"
            stages.append(
                StageLoad(
                    pref,
                    seq,
                    stage_name,
                    members,
                    Step(
                        "stage",
                        stage_key(pref, seq),
                        requires=(project_step.ref,),
                        waits_for=tuple(booking_of[p].step.ref for p in members),
                    ),
                )
            )
        stage_ref = {s.sequence: s.step.ref for s in stages}

        all_bookings = tuple(b.step.ref for b in bookings)
        payments: list[PaymentLoad] = []
        for p in positions:
            row = rows[p]
            if not row.payment_reference:
                continue
            if row.payment_amount is None or row.payment_method is None or row.paid_at is None:
                raise ValueError(f"row at position {p} has an incomplete payment: exclude it")
            own = booking_of[p].step.ref
            requires: list[StepRef] = [project_step.ref, own]
            if row.stage_sequence is not None:
                requires.append(stage_ref[row.stage_sequence])
            siblings = tuple(r for r in all_bookings if r != own)
            payments.append(
                PaymentLoad(
                    p,
                    pref,
                    row.payment_reference,
                    row.payment_amount,
                    row.payment_currency,
                    row.payment_method,
                    row.paid_at,
                    row.stage_sequence,
                    Step(
                        "payment",
                        row.payment_reference,
                        requires=tuple(requires),
                        waits_for=siblings,
                    ),
                )
            )
        payment_of = {y.position: y for y in payments}

        for p in positions:
            seq = rows[p].stage_sequence
            by_position[p] = RowSteps(
                p,
                project_step.ref,
                p == source,
                booking_of[p].step.ref,
                stage_ref[seq] if seq is not None else None,
                payment_of[p].step.ref if p in payment_of else None,
            )
        projects.append(
            ProjectLoad(
                reference=pref,
                name=name or pref,
                source_position=source,
                positions=tuple(positions),
                step=project_step,
                bookings=tuple(bookings),
                stages=tuple(stages),
                payments=tuple(payments),
            )
        )

    return LoadPlan(tuple(projects), tuple(plain), frozenset(excluded), by_position)
