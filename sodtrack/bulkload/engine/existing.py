"""Records Sodtrack already holds under a row's references, and the row's values beside theirs.

Where an existing record is learnt, cheapest first:

1. **the ledger**, across uploads of the same country: a reference an earlier upload created
   or found (a corrected file re-uploaded is another upload: other bytes, other id) has its
   Sodtrack id there; the engine ``GET``\\s the record by id (its *current* state, whatever
   was changed in Sodtrack since) before any check or write;
2. **a dry run** also asks ``GET /bookings?external_reference=`` for every other row it would
   create (it may read, it never writes), and reads each found booking's project; a real
   run asks the same only for the rows its create checks refused (a correction to another
   SKU, or a booking whose own place fills its slot, must be compared, not refused as a
   create);
3. **a real run** learns the rest at the write: the ``409 duplicate_external_reference``
   names the record, which the client reads back (or the reconciliation after an ambiguous
   failure finds it by reference).

Whichever way, the row is then compared with the record by :mod:`.compare`. The value
extractors here (:func:`booking_want`, :func:`booking_have`, …) put both sides in the
canonical fields' terms; they are pure.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from sodtrack.bulkload.engine.catalog import Catalog
from sodtrack.bulkload.engine.compare import Comparison, compare
from sodtrack.bulkload.engine.ledger import StepKind
from sodtrack.bulkload.engine.plan import LoadPlan, StepRef
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.client.errors import ContractViolation, NotFoundError, RetryableError
from sodtrack.contract import models as m


class ExistingClient(Protocol):
    async def get_booking(self, booking_id: str) -> m.Booking: ...
    async def get_project(self, project_id: str) -> m.ProjectDetail: ...
    async def collect_payments(self, project_id: str) -> list[m.Payment]: ...
    async def collect_bookings(
        self,
        updated_since: datetime | None = None,
        status: m.BookingStatus | None = None,
        external_reference: str | None = None,
        project_id: str | None = None,
        *,
        limit: int = ...,
    ) -> list[m.Booking]: ...


class KnownIds(Protocol):
    """What discovery needs of the ledger."""

    def known_ids(self, country: str, kind: StepKind, keys: Iterable[str]) -> dict[str, str]: ...


@dataclass
class Found:
    """Existing records by external reference."""

    bookings: dict[str, m.Booking] = field(default_factory=dict)
    projects: dict[str, m.ProjectDetail] = field(default_factory=dict)
    payments: frozenset[str] = frozenset()
    """Payment references the ledger knows exist (a real run compares them at the write)."""
    payment_records: dict[str, m.Payment] = field(default_factory=dict)
    """A dry run: the payments of the found projects, by reference."""
    unread: set[str] = field(default_factory=set)
    """References whose lookup did not get an answer (transient): a real run learns them at
    the write (the ``409``), a dry run says it could not tell."""

    def merge(self, other: Found) -> None:
        self.bookings.update(other.bookings)
        self.projects.update(other.projects)
        self.payments |= other.payments
        self.payment_records.update(other.payment_records)


async def find_existing(
    rows: list[BookingRow],
    positions: Iterable[int],
    *,
    country: str,
    ledger: KnownIds,
    client: ExistingClient,
    by_reference: bool,
    concurrency: int = 16,
) -> Found:
    """The existing records of the rows at ``positions`` (see the module docstring)."""
    todo = [rows[p] for p in positions]
    refs = sorted({r.external_reference for r in todo})
    project_refs = sorted({r.project_reference for r in todo if r.project_reference})
    payment_refs = sorted({r.payment_reference for r in todo if r.payment_reference})
    booking_ids = ledger.known_ids(country, "booking", refs)
    project_ids = ledger.known_ids(country, "project", project_refs)
    payments = frozenset(ledger.known_ids(country, "payment", payment_refs))
    gate = asyncio.Semaphore(concurrency)
    found = Found(payments=payments)

    async def booking(ref: str) -> None:
        async with gate:
            got: m.Booking | None = None
            try:
                if ref in booking_ids:
                    got = await client.get_booking(booking_ids[ref])
                elif by_reference:
                    listed = await client.collect_bookings(external_reference=ref)
                    got = next((b for b in listed if b.external_reference == ref), None)
            except NotFoundError:
                got = None  # another credential's, or not there: learnt at the write
            except (RetryableError, ContractViolation):
                # Only this row's lookup failed: it falls back to the write's 409.
                found.unread.add(ref)
                return
            if got is not None and got.external_reference == ref:
                found.bookings[ref] = got

    to_read = refs if by_reference else [r for r in refs if r in booking_ids]
    await asyncio.gather(*(booking(r) for r in to_read))
    wanted_projects = set(project_ids.values())
    if by_reference:  # a dry run: the projects of the bookings it found
        wanted_projects |= {b.project_id for b in found.bookings.values() if b.project_id}

    async def project(pid: str) -> None:
        async with gate:
            try:
                got = await client.get_project(pid)
                pays = (
                    await client.collect_payments(got.id)
                    if by_reference and payment_refs and got.external_reference in project_refs
                    else []
                )
            except NotFoundError:
                return
            except (RetryableError, ContractViolation):
                found.unread.add(pid)
                return
            if got.external_reference in project_refs:
                found.projects[got.external_reference] = got
                for pay in pays:
                    found.payment_records[pay.external_reference] = pay

    await asyncio.gather(*(project(pid) for pid in sorted(wanted_projects)))
    return found


# ---------------------------------------------------------------- both sides of a comparison


def _party_want(row: BookingRow) -> dict[str, object]:
    return {
        "customer_first_name": row.customer_first_name,
        "customer_last_name": row.customer_last_name,
        "customer_email": row.customer_email,
        "customer_phone": row.customer_phone,
        "customer_document_id": row.customer_document_id,
        "address_line1": row.address_line1,
        "address_line2": row.address_line2,
        "city": row.city,
        "region": row.region,
        "postal_code": row.postal_code,
    }


def _party_have(customer: m.Customer, address: m.Address) -> dict[str, object]:
    return {
        "customer_first_name": customer.first_name,
        "customer_last_name": customer.last_name,
        "customer_email": customer.email,
        "customer_phone": customer.phone,
        "customer_document_id": customer.document_id,
        "address_line1": address.line1,
        "address_line2": address.line2,
        "city": address.city,
        "region": address.region,
        "postal_code": address.postal_code,
    }


def booking_want(row: BookingRow) -> dict[str, object]:
    """The row's booking fields as the loader would send them (SKUs as written)."""
    return {
        "service_sku": row.service_sku,
        "variant_sku": row.variant_sku,
        "scheduled_start": row.scheduled_start,
        **_party_want(row),
        "notes": row.notes,
        "project_reference": row.project_reference,
        # Compared only when the row gives a status (empty: the sheet says nothing of it).
        **(
            {
                "booking_status": str(row.booking_status),
                "cancellation_reason": row.cancellation_reason,
            }
            if row.booking_status is not None
            else {}
        ),
    }


def booking_have(
    booking: m.Booking,
    catalog: Catalog | None,
    projects: Mapping[str, str],
) -> dict[str, object]:
    """Sodtrack's booking in the same terms: its service and variant as SKUs (the id where
    the catalog does not name it), its project as the reference ``projects`` (id → reference)
    gives it, else its id."""
    service_sku = catalog.service_sku(booking.service_id) if catalog else None
    variant_sku = None
    if booking.variant_id is not None:
        found = catalog.variant_sku(booking.service_id, booking.variant_id) if catalog else None
        variant_sku = found or booking.variant_id
    project = None
    if booking.project_id is not None:
        project = projects.get(booking.project_id, booking.project_id)
    return {
        "service_sku": service_sku or booking.service_id,
        "variant_sku": variant_sku,
        "scheduled_start": booking.scheduled_start,
        **_party_have(booking.customer, booking.address),
        "notes": booking.notes,
        "project_reference": project,
        "booking_status": str(booking.status),
        "cancellation_reason": booking.cancelled_reason,
    }


def project_want(row: BookingRow, name: str) -> dict[str, object]:
    return {"project_name": name, **_party_want(row)}


def project_have(project: m.Project) -> dict[str, object]:
    return {"project_name": project.name, **_party_have(project.customer, project.address)}


def payment_want(
    amount: object, currency: str, method: str, paid_at: object, stage_id: str | None
) -> dict[str, object]:
    return {
        "payment_amount": amount,
        "payment_currency": currency,
        "payment_method": method,
        "paid_at": paid_at,
        "stage_sequence": stage_id,
    }


def payment_have(payment: m.Payment) -> dict[str, object]:
    return {
        "payment_amount": payment.amount,
        "payment_currency": payment.currency,
        "payment_method": str(payment.method),
        "paid_at": payment.paid_at,
        "stage_sequence": payment.stage_id,
    }


def compare_found(
    rows: list[BookingRow], plan: LoadPlan, found: Found, catalog: Catalog | None
) -> dict[StepRef, tuple[str, Comparison]]:
    """What a dry run can tell before writing: each planned step whose record was found,
    with its Sodtrack id and its comparison with the row (bookings, projects, and the stages
    of found projects; payments are compared at the write)."""
    out: dict[StepRef, tuple[str, Comparison]] = {}
    project_refs: dict[str, str] = {}
    for p in plan.projects:
        project = found.projects.get(p.reference)
        if project is None:
            continue
        project_refs[project.id] = p.reference
        want = project_want(rows[p.source_position], p.name)
        out[p.step.ref] = (project.id, compare("project", want, project_have(project)))
        by_sequence = {s.sequence: s for s in project.stages}
        for s in p.stages:
            stage = by_sequence.get(s.sequence)
            if stage is not None:
                c = compare("stage", {"stage_name": s.name}, {"stage_name": stage.name})
                out[s.step.ref] = (stage.id, c)
        for y in p.payments:
            pay = found.payment_records.get(y.payment_reference)
            if pay is None:
                continue
            seq = by_sequence.get(y.stage_sequence) if y.stage_sequence is not None else None
            want_pay = payment_want(
                y.amount, y.currency or pay.currency, y.method, y.paid_at, seq.id if seq else None
            )
            out[y.step.ref] = (pay.id, compare("payment", want_pay, payment_have(pay)))
    for pos, steps in plan.by_position.items():
        row = rows[pos]
        booking = found.bookings.get(row.external_reference)
        if booking is None:
            continue
        have = booking_have(booking, catalog, project_refs)
        out[steps.booking] = (booking.id, compare("booking", booking_want(row), have))
    return out
