"""Validation before any write: what the reader found, then Sodtrack's catalog, coverage and
slots, then payments against each project's total.

Order, and why:

1. the reader's row errors (:func:`reader_rejection`): nothing to ask Sodtrack about;
2. SKUs → active service / variant; a multi-stage service (``requires_project``) outside a
   project; a start that can never be a slot;
3. postal-code coverage per (postal code, service);
4. optionally slot capacity per (zone, start), rows of the file sharing it in file order;
5. across rows: each project's payments, in file order, against the sum of its bookings'
   prices (variant price, else service base price). A payment that would take the project
   past its total is refused *on its own*: the row's booking is still created and the row
   says which step failed (the operator fixes the amount and uploads the row again; the
   booking is then found existing, the payment created).

Rows rejected in steps 1-4 get no write at all. Only rows whose booking has never been sent
are checked against Sodtrack (a booking sent by an earlier, interrupted run may exist, and its
own place would make its slot look full). Rows whose booking Sodtrack already holds are not
checked as creates but compared with it (:mod:`.compare`); of those, a correction that moves
the booking has its new start checked (:func:`check_moves`: slot shape, and capacity in the
booking's zone when availability is checked) before any ``PATCH``.

A check that cannot be read (a transient failure after the client's retries: see
:mod:`.catalog`) affects only the rows it concerns: they are ``unchecked``, answered
``failed_transient`` with a message naming the check, and checked again by the next run of
the file; the other rows go on and load. An unchecked row's price is unknown, so its
project's payments are not judged in step 5 (the API remains the judge).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sodtrack.bulkload.engine.catalog import (
    Catalog,
    CatalogClient,
    Coverage,
    CoverageMode,
    Resolved,
    SlotDemand,
    check_availability,
    local_text,
    slot_shape_problem,
)
from sodtrack.bulkload.messages import (
    explain_check,
    explain_correction_failed,
    explain_transient,
)
from sodtrack.bulkload.outcomes import Explanation
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.client.errors import RetryableError
from sodtrack.contract.countries import Country
from sodtrack.contract.models import Booking


def row_context(row: BookingRow, country: Country) -> dict[str, Any]:
    """Values the messages quote, in the sheet's terms."""
    return {
        "service": row.service_sku or None,
        "variant": row.variant_sku or "(none)",
        "postal_code": row.postal_code or None,
        "start": local_text(row.scheduled_start, country) if row.scheduled_start else None,
        "amount": country.format_amount(row.payment_amount)
        if row.payment_amount is not None
        else None,
        "currency": row.payment_currency or country.currency,
        "country_currency": country.currency,
        "country": country.code,
        "project": row.project_reference,
        "stage": row.stage_sequence,
        "reference": row.payment_reference or row.external_reference,
    }


def reader_rejection(row: BookingRow) -> Explanation:
    """One explanation for all of a row's reader errors (the code is the first error's)."""
    errors = row.errors
    fields = tuple(dict.fromkeys(e.field for e in errors if e.field))
    if len(errors) == 1:
        e = errors[0]
        return Explanation(str(e.code), "invalid", e.message, e.suggested_fix, fields)
    message = " ".join(f"({i}) {e.message}" for i, e in enumerate(errors, 1))
    fix = " ".join(f"({i}) {e.suggested_fix}" for i, e in enumerate(errors, 1))
    return Explanation(str(errors[0].code), "invalid", message, fix, fields)


@dataclass
class Checked:
    """What the pre-write checks found for the rows they were given."""

    rejected: dict[int, Explanation] = field(default_factory=dict)
    """Rows refused before any write (position → why)."""
    resolved: dict[int, Resolved] = field(default_factory=dict)
    """Rows whose SKUs resolved (position → service, variant, price)."""
    catalog: Catalog | None = None
    """The catalog read for the checks (reused for rows sent by an earlier run)."""
    unchecked: dict[int, Explanation] = field(default_factory=dict)
    """Rows whose checks could not be read (transient): not rejected, not loaded in this
    run, answered ``failed_transient`` (position → why)."""


def unchecked_explanation(what: str, exc: RetryableError) -> Explanation:
    """A row left unchecked: which check could not be read, and the client's reason."""
    return explain_transient(step="validation", reason=f"{what}: {exc.message}")


async def check_rows(
    rows: Sequence[BookingRow],
    positions: Iterable[int],
    country: Country,
    client: CatalogClient,
    *,
    availability: bool,
    coverage_mode: CoverageMode = "auto",
    catalog: Catalog | None = None,
) -> Checked:
    """Steps 2-4 of the module docstring for the rows at ``positions`` (all reader-valid)."""
    todo = sorted(positions)
    out = Checked(catalog=catalog)
    if not todo:
        return out
    if catalog is None:
        wanted = {(rows[p].service_sku, rows[p].variant_sku) for p in todo}
        catalog = out.catalog = await Catalog.load(client, wanted)

    def reject(pos: int, code: str, **extra: Any) -> None:
        out.rejected[pos] = explain_check(code, {**row_context(rows[pos], country), **extra})

    for pos in todo:
        row = rows[pos]
        unreadable = catalog.unreadable(row.service_sku, row.variant_sku)
        if unreadable is not None:
            out.unchecked[pos] = unchecked_explanation(
                f"the variants of service {row.service_sku} could not be read", unreadable
            )
            continue
        resolved = catalog.resolve(row.service_sku, row.variant_sku)
        if isinstance(resolved, str):
            reject(pos, resolved)
            continue
        if resolved.service.requires_project and not row.project_reference:
            reject(pos, "project_required")
            continue
        if row.scheduled_start is None or slot_shape_problem(row.scheduled_start, country):
            reject(pos, "not_a_slot_start")
            continue
        out.resolved[pos] = resolved

    coverage = Coverage(client, coverage_mode)
    pairs = {pos: (rows[pos].postal_code, r.service.id) for pos, r in out.resolved.items()}
    answers = await coverage.resolve(pairs.values())
    for pos, pair in pairs.items():
        failed = coverage.failed.get(pair)
        if failed is not None:
            out.unchecked[pos] = unchecked_explanation(
                f"the coverage of postal code {pair[0]} could not be read", failed
            )
            del out.resolved[pos]
            continue
        if not answers[pair].covered:
            reject(pos, "postal_code_not_covered")
            del out.resolved[pos]

    if availability and out.resolved:
        demands = []
        for pos, r in out.resolved.items():
            start = rows[pos].scheduled_start
            zone_id = answers[pairs[pos]].zone_id
            assert start is not None
            assert zone_id is not None
            demands.append(
                SlotDemand(
                    pos,
                    zone_id,
                    r.service.id,
                    r.variant.id if r.variant else None,
                    rows[pos].postal_code,
                    start,
                )
            )
        slots = await check_availability(client, demands, country)
        for pos, failure in slots.failed.items():
            out.unchecked[pos] = unchecked_explanation(
                "the availability of its slot could not be read", failure
            )
            del out.resolved[pos]
        for verdict in slots.verdicts:
            reject(
                verdict.position,
                verdict.problem,
                zone=answers[pairs[verdict.position]].zone_id,
                capacity=verdict.capacity,
                demand=verdict.demand,
            )
            del out.resolved[verdict.position]
    return out


def check_payments(
    rows: Sequence[BookingRow],
    country: Country,
    *,
    excluded: Iterable[int],
    price_of: Mapping[int, Decimal],
    settled: Mapping[int, str],
) -> dict[int, Explanation]:
    """Payments that would take their project past its total (step 5).

    ``excluded``: rows that get no booking (their price does not count). ``price_of``: the
    booking price of every other row. ``settled``: payments already ``done`` (they count,
    and are never refused now) or ``rejected`` (they do not count). A project with a row of
    unknown price is not judged here (the API remains the judge).
    """
    skip = set(excluded)
    by_project: dict[str, list[int]] = {}
    for pos, row in enumerate(rows):
        if pos not in skip and row.project_reference:
            by_project.setdefault(row.project_reference, []).append(pos)
    refused: dict[int, Explanation] = {}
    for reference, members in by_project.items():
        if any(p not in price_of for p in members):
            continue
        total = sum((price_of[p] for p in members), Decimal(0))
        paid = Decimal(0)
        for pos in members:
            row = rows[pos]
            if row.payment_reference is None or row.payment_amount is None:
                continue
            state = settled.get(pos)
            if state == "rejected":
                continue
            if state != "done" and paid + row.payment_amount > total:
                refused[pos] = explain_check(
                    "overpayment_in_file",
                    {
                        **row_context(row, country),
                        "project": reference,
                        "paid": country.format_amount(paid + row.payment_amount),
                        "total": country.format_amount(total),
                    },
                )
                continue
            paid += row.payment_amount
    return refused


async def check_moves(
    rows: Sequence[BookingRow],
    moves: Mapping[int, Booking],
    country: Country,
    client: CatalogClient,
    *,
    availability: bool,
) -> dict[int, Explanation]:
    """Corrections that move an existing booking to a new start (``moves``: position → the
    booking Sodtrack has): the new start must be a slot start, and (``availability``) a
    slot of the booking's zone with capacity. Refused ones are answered before any PATCH,
    naming the correction; the others go to ``PATCH``, where Sodtrack checks the slot again."""
    refused: dict[int, Explanation] = {}

    def refuse(pos: int, code: str, **extra: Any) -> None:
        row = rows[pos]
        why = explain_check(code, {**row_context(row, country), **extra})
        refused[pos] = explain_correction_failed(
            resource="booking",
            reference=row.external_reference,
            fields="scheduled_start",
            why=why,
        )

    demands = []
    for pos, booking in sorted(moves.items()):
        start = rows[pos].scheduled_start
        if start is None or slot_shape_problem(start, country):
            refuse(pos, "not_a_slot_start")
            continue
        demands.append(
            SlotDemand(
                pos,
                booking.zone_id,
                booking.service_id,
                booking.variant_id,
                booking.address.postal_code,
                start,
            )
        )
    if availability and demands:
        # A window that cannot be read leaves the move to Sodtrack's own check at the PATCH.
        for verdict in (await check_availability(client, demands, country)).verdicts:
            zone = next(d.zone_id for d in demands if d.position == verdict.position)
            refuse(
                verdict.position,
                verdict.problem,
                zone=zone,
                capacity=verdict.capacity,
                demand=verdict.demand,
            )
    return refused
