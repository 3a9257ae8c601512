"""Corrections: a row against the record Sodtrack already holds under its reference. Pure.

A re-uploaded row whose reference exists is compared field by field with Sodtrack's *current*
record (the engine GETs it). The fields, what each is compared as, and whether the API can
change it afterwards are data: :data:`FIELDS`, one table.

======== ======================== ========== ==========================================
resource field (sheet column)     compared   the API can change it
======== ======================== ========== ==========================================
booking  scheduled_start          instant    yes: ``PATCH /bookings/{id}`` (slot checked
                                             again: a ``slot_unavailable`` refuses it)
booking  notes                    text       yes: ``PATCH /bookings/{id}``
booking  booking_status           status     along the contract's graph only
                                             (:data:`~sodtrack.contract.models.BOOKING_TRANSITIONS`):
                                             forward, one ``PATCH`` per step, or
                                             ``POST /bookings/{id}/cancel`` with the row's
                                             ``cancellation_reason``; backwards or out of
                                             completed/cancelled: no
booking  cancellation_reason      text       no (compared only when both are cancelled: the
                                             first reason stays)
booking  service_sku, variant_sku id         no (the row's SKUs resolved to catalog ids)
booking  customer_*, address_*,   text       no
         city, region, postal_code
booking  project_reference        id         no (a booking joins a project at creation)
project  project_name             text       yes: ``PATCH /projects/{id}``
project  customer_*, address_*…   text       no
stage    stage_name               text       yes: ``PATCH /projects/{id}/stages/{id}``
payment  payment_amount           money      no
payment  payment_currency,        text       no
         payment_method
payment  paid_at                  instant    no
payment  stage_sequence           id         no (the stage the payment names)
======== ======================== ========== ==========================================

A booking's status is compared only when the row gives one (an empty ``booking_status``
says nothing about it: Sodtrack moves bookings on by itself). Whether a different status is
a change the API can make depends on both values: :func:`~sodtrack.contract.models.
booking_status_path` walks the contract's one table; no walk (``confirmed`` back to
``scheduled``, ``completed`` to ``cancelled``) is a refusal naming both values and why. A
booking Sodtrack holds *cancelled*, against a row without a status, is never "the same" as
the row, and its reference cannot be reused: that is a refusal of its own
(:attr:`Comparison.cancelled`); against a row saying ``cancelled`` it is the same (then the
reasons are compared too).

Normalisation is the loader's: values are compared as the loader interpreted them (what it
would send), text with surrounding blanks dropped and empty equal to missing, timestamps as
instants (any offset), money as :class:`~decimal.Decimal` (``"45990"`` equals ``45990.00``),
ids exactly. Verdicts:

* every field equal → ``identical`` (the row is ``already_existed``);
* only fields the API can change differ → ``update`` with the PATCH body (absolute values,
  so sending it twice is harmless);
* any field it cannot change differs → ``refuse`` naming *every* differing field with both
  values (nothing is applied, not even the patchable ones: a row is taken whole or not at
  all).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal, InvalidOperation
from typing import Final, Literal

from sodtrack.contract.models import BookingStatus, booking_status_path

Resource = Literal["booking", "project", "stage", "payment"]
Kind = Literal["text", "instant", "money", "id", "status"]
Verdict = Literal["identical", "update", "refuse"]


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One comparable field: the sheet's column, how it compares, where a PATCH puts it."""

    resource: Resource
    field: str
    """The canonical column name (what the message names)."""
    kind: Kind
    patch: str | None = None
    """The PATCH body field that changes it; ``None``: the API cannot change it."""

    @property
    def patchable(self) -> bool:
        return self.patch is not None


_PARTY: Final[tuple[tuple[str, Kind], ...]] = (
    ("customer_first_name", "text"),
    ("customer_last_name", "text"),
    ("customer_email", "text"),
    ("customer_phone", "text"),
    ("customer_document_id", "text"),
    ("address_line1", "text"),
    ("address_line2", "text"),
    ("city", "text"),
    ("region", "text"),
    ("postal_code", "text"),
)

FIELDS: Final[tuple[FieldRule, ...]] = (
    FieldRule("booking", "service_sku", "id"),
    FieldRule("booking", "variant_sku", "id"),
    FieldRule("booking", "scheduled_start", "instant", patch="scheduled_start"),
    *(FieldRule("booking", f, k) for f, k in _PARTY),
    FieldRule("booking", "notes", "text", patch="notes"),
    FieldRule("booking", "booking_status", "status", patch="status"),
    FieldRule("booking", "cancellation_reason", "text"),
    FieldRule("booking", "project_reference", "id"),
    FieldRule("project", "project_name", "text", patch="name"),
    *(FieldRule("project", f, k) for f, k in _PARTY),
    FieldRule("stage", "stage_name", "text", patch="name"),
    FieldRule("payment", "payment_amount", "money"),
    FieldRule("payment", "payment_currency", "text"),
    FieldRule("payment", "payment_method", "text"),
    FieldRule("payment", "paid_at", "instant"),
    FieldRule("payment", "stage_sequence", "id"),
)
"""Every comparable field of every resource, in the order messages list them."""


STATUS_FIELD: Final = "booking_status"
REASON_FIELD: Final = "cancellation_reason"


def rules_for(resource: Resource) -> tuple[FieldRule, ...]:
    return tuple(r for r in FIELDS if r.resource == resource)


def patchable_fields(resource: Resource) -> tuple[str, ...]:
    return tuple(r.field for r in rules_for(resource) if r.patchable)


@dataclass(frozen=True, slots=True)
class Difference:
    field: str
    there: object
    """Sodtrack's value (normalised)."""
    here: object
    """The row's value (normalised)."""
    patchable: bool
    patch: str | None = None


@dataclass(frozen=True, slots=True)
class Comparison:
    """A row against one existing record."""

    resource: Resource
    differences: tuple[Difference, ...] = ()
    cancelled: bool = False
    """The existing record is a cancelled booking (its reference cannot be used again)."""

    @property
    def verdict(self) -> Verdict:
        if self.cancelled or any(not d.patchable for d in self.differences):
            return "refuse"
        return "update" if self.differences else "identical"

    @property
    def refused(self) -> tuple[Difference, ...]:
        return tuple(d for d in self.differences if not d.patchable)

    @property
    def changed_fields(self) -> tuple[str, ...]:
        return tuple(d.field for d in self.differences)

    @property
    def status_refused(self) -> Difference | None:
        """A status the contract's graph cannot reach from Sodtrack's (the refusal says why)."""
        return next(
            (d for d in self.differences if d.field == STATUS_FIELD and not d.patchable), None
        )

    @property
    def status_move(self) -> tuple[BookingStatus, BookingStatus] | None:
        """``(Sodtrack's status, the row's)`` when the update moves the status (walked one
        step at a time by the caller, after the :meth:`patch_body`)."""
        if self.verdict != "update":
            return None
        d = next((d for d in self.differences if d.field == STATUS_FIELD), None)
        if d is None:
            return None
        return BookingStatus(str(d.there)), BookingStatus(str(d.here))

    def patch_body(self) -> dict[str, object]:
        """The PATCH body that applies every patchable difference but the status (absolute
        values), ``{}`` when none."""
        if self.verdict != "update":
            return {}
        return {
            d.patch: d.here
            for d in self.differences
            if d.patch is not None and d.field != STATUS_FIELD
        }


def normalise(kind: Kind, value: object) -> object:
    """A value as compared (see the module docstring). Pure, total: never raises."""
    if value is None:
        return None
    if kind == "text":
        text = str(value).strip()
        return text or None
    if kind == "instant":
        if isinstance(value, datetime):
            if value.tzinfo is None:
                return value  # naive: never equal to an aware instant (never sent anyway)
            return value.astimezone(UTC)
        text = str(value).strip()
        if not text:
            return None
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return text
        return parsed.astimezone(UTC) if parsed.tzinfo is not None else parsed
    if kind == "money":
        if isinstance(value, Decimal):
            return value.normalize() if value.is_finite() else value
        try:
            d = Decimal(str(value).strip())
        except InvalidOperation:
            return str(value)
        return d.normalize() if d.is_finite() else d
    if kind == "status":
        text = str(value).strip()
        return text or None
    text = str(value)
    return text or None


def compare(
    resource: Resource, want: Mapping[str, object], have: Mapping[str, object]
) -> Comparison:
    """The row's values (``want``) against Sodtrack's (``have``), by :data:`FIELDS`.

    Both map canonical field names to values; a field missing from ``want`` is not compared
    (the sheet has no such column, or the engine has no way to know the row's value).
    ``have["booking_status"] == "cancelled"`` marks a cancelled booking.
    """
    diffs: list[Difference] = []
    already_cancelled = resource == "booking" and have.get(STATUS_FIELD) == BookingStatus.CANCELLED
    for rule in rules_for(resource):
        if rule.field not in want:
            continue
        if rule.field == REASON_FIELD and not already_cancelled:
            continue  # a reason is applied by the cancellation itself
        here = normalise(rule.kind, want[rule.field])
        there = normalise(rule.kind, have.get(rule.field))
        if here == there:
            continue
        if rule.kind == "status":
            path = booking_status_path(str(there), str(here)) if there and here else None
            diffs.append(Difference(rule.field, there, here, path is not None, rule.patch))
        else:
            diffs.append(Difference(rule.field, there, here, rule.patchable, rule.patch))
    # Without a status of its own, a row is never "the same" as a cancelled booking.
    cancelled = already_cancelled and STATUS_FIELD not in want
    return Comparison(resource, tuple(diffs), cancelled)


def shown(value: object, tz: tzinfo | None = None) -> str:
    """A normalised value as a message quotes it."""
    if value is None:
        return "empty"
    if isinstance(value, datetime):
        local = value.astimezone(tz) if tz is not None and value.tzinfo is not None else value
        return local.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, Decimal):
        return f"{value:f}"
    return str(value)


def describe(diffs: tuple[Difference, ...], tz: tzinfo | None = None) -> str:
    """``customer_first_name ('Ana' there, 'Anna' here) and city ('X' there, 'Y' here)``."""
    parts = [f"{d.field} ('{shown(d.there, tz)}' there, '{shown(d.here, tz)}' here)" for d in diffs]
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
