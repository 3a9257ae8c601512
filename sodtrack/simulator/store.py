"""In-memory state of the simulator: shared catalog/coverage/forms and per-client records.

Design:

* Catalog, zones and forms never change after seeding; each record keeps its wire JSON
  pre-rendered (``wire``), so a list page is a byte join.
* Bookings are the bulk (200,000 by default). A ``BookingRec`` holds only what rules need
  (status, zone, start, contractor, price, project/stage, updated_at) plus the booking's wire
  JSON as bytes; a change decodes, edits and re-encodes that one record (writes are rare,
  reads are pages). This keeps 200,000 bookings in a few hundred MB at most.
* Each client has its own ``ClientState`` (isolation), with a ``SortedIndex`` of
  ``(updated_at, id)`` per cursor-listed resource, kept current on every change, so that a
  cursor page is a bisect plus a slice.
* ``Capacity`` maps (zone, slot start) to a bit mask of busy contractors: capacity is the
  zone's contractor count minus the set bits; the lowest free bit is the contractor assigned.
* Money is held in integer minor units; rendering goes through ``Country.format_amount``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from sodtrack.contract.countries import Country
from sodtrack.contract.models import BookingStatus
from sodtrack.simulator.timefmt import ts

ID_WIDTH = 10
"""Zero-padded width of record ids, so that byte order of ids is creation order."""


def make_id(prefix: str, n: int) -> str:
    return f"{prefix}_{n:0{ID_WIDTH}d}"


def pack(obj: Any) -> bytes:
    """JSON bytes of exactly their size, to keep. (``orjson.dumps`` hands back a buffer that
    may hold several KiB of slack: 200,000 of them would waste over a GB.)"""
    return memoryview(orjson.dumps(obj)).tobytes()


def money(country: Country, minor: int) -> str:
    """Integer minor units as the API's money string (``"45990"``, ``"149.90"``)."""
    return country.format_amount(Decimal(minor).scaleb(-country.minor_units))


class MoneyText:
    """:func:`money` for one country, each amount formatted once (the seed and the server
    write the same few prices over and over)."""

    __slots__ = ("_country", "_texts")

    def __init__(self, country: Country) -> None:
        self._country = country
        self._texts: dict[int, str] = {}

    def __call__(self, minor: int) -> str:
        text = self._texts.get(minor)
        if text is None:
            text = self._texts[minor] = money(self._country, minor)
        return text


# ---------------------------------------------------------------- shared, immutable records


@dataclass(slots=True)
class CategoryRec:
    id: str
    parent_id: str | None
    active: bool
    wire: bytes


@dataclass(slots=True)
class ServiceRec:
    id: str
    category_id: str
    active: bool
    requires_project: bool
    duration_min: int
    price_minor: int
    wire: bytes
    variant_ids: list[str] = field(default_factory=list)


@dataclass(slots=True)
class VariantRec:
    id: str
    service_id: str
    active: bool
    duration_min: int
    price_minor: int
    wire: bytes


@dataclass(slots=True)
class ZoneRec:
    id: str
    idx: int
    name: str
    region: str
    cities: tuple[str, ...]
    postal_codes: list[str]
    service_ids: frozenset[str]
    contractor_count: int
    active: bool
    wire: bytes

    def contractor_id(self, k: int) -> str:
        return f"ctr_{self.idx + 1:05d}{k + 1:02d}"


@dataclass(slots=True)
class FormRec:
    id: str
    fields: list[dict[str, Any]]
    wire: bytes


@dataclass(slots=True)
class Shared:
    """Catalog, coverage and forms: seen identically by every client."""

    categories: dict[str, CategoryRec] = field(default_factory=dict)
    services: dict[str, ServiceRec] = field(default_factory=dict)
    variants: dict[str, VariantRec] = field(default_factory=dict)
    zones: list[ZoneRec] = field(default_factory=list)
    zone_by_id: dict[str, ZoneRec] = field(default_factory=dict)
    coverage: dict[str, tuple[int, ...]] = field(default_factory=dict)
    """postal code -> indexes of the zones listing it, ascending (= ascending zone id)."""
    forms: dict[str, FormRec] = field(default_factory=dict)

    def serving_zone(self, postal_code: str, service_id: str) -> ZoneRec | None:
        """The active zone with the lowest id that offers the service at the code."""
        for idx in self.coverage.get(postal_code, ()):
            zone = self.zones[idx]
            if zone.active and service_id in zone.service_ids:
                return zone
        return None


# ---------------------------------------------------------------- per-client records


class BookingRec:
    """One booking: the fields the rules read, and its wire JSON."""

    __slots__ = (
        "contractor",
        "external_reference",
        "id",
        "price",
        "project_id",
        "stage_id",
        "start_s",
        "status",
        "updated_us",
        "wire",
        "zone",
    )

    def __init__(
        self,
        id: str,
        external_reference: str,
        status: str,
        zone: int,
        contractor: int,
        start_s: int,
        price: int,
        project_id: str | None,
        stage_id: str | None,
        updated_us: int,
        wire: bytes,
    ) -> None:
        self.id = id
        self.external_reference = external_reference
        self.status = status
        self.zone = zone
        self.contractor = contractor
        self.start_s = start_s
        self.price = price
        self.project_id = project_id
        self.stage_id = stage_id
        self.updated_us = updated_us
        self.wire = wire

    def to_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(self.wire)
        return result

    @property
    def active(self) -> bool:
        """Holds a contractor (and counts in its project's total): not cancelled."""
        return self.status != BookingStatus.CANCELLED


@dataclass(slots=True)
class ProjectRec:
    id: str
    external_reference: str
    name: str
    customer: dict[str, Any]
    address: dict[str, Any]
    status: str
    total_minor: int
    paid_minor: int
    created_us: int
    updated_us: int
    booking_ids: list[str] = field(default_factory=list)
    stage_ids: list[str] = field(default_factory=list)
    payment_ids: list[str] = field(default_factory=list)
    document_ids: list[str] = field(default_factory=list)
    task_ids: list[str] = field(default_factory=list)

    def wire(self, country: Country) -> dict[str, Any]:
        return {
            "id": self.id,
            "external_reference": self.external_reference,
            "name": self.name,
            "customer": self.customer,
            "address": self.address,
            "status": self.status,
            "currency": country.currency,
            "total_amount": money(country, self.total_minor),
            "paid_amount": money(country, self.paid_minor),
            "created_at": ts(self.created_us),
            "updated_at": ts(self.updated_us),
        }


@dataclass(slots=True)
class StageRec:
    id: str
    project_id: str
    name: str
    sequence: int
    status: str
    booking_ids: list[str]
    created_us: int
    updated_us: int

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "name": self.name,
            "sequence": self.sequence,
            "status": self.status,
            "booking_ids": list(self.booking_ids),
            "created_at": ts(self.created_us),
            "updated_at": ts(self.updated_us),
        }


@dataclass(slots=True)
class TaskRec:
    id: str
    project_id: str
    stage_id: str
    title: str
    status: str
    notes: str | None
    updated_us: int

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "project_id": self.project_id,
            "stage_id": self.stage_id,
            "title": self.title,
            "status": self.status,
            "notes": self.notes,
            "updated_at": ts(self.updated_us),
        }


@dataclass(slots=True)
class PaymentRec:
    id: str
    external_reference: str
    project_id: str
    amount_minor: int
    wire: dict[str, Any]


@dataclass(slots=True)
class DocumentRec:
    id: str
    external_reference: str | None
    project_id: str
    wire: dict[str, Any]


@dataclass(slots=True)
class LeadRec:
    id: str
    external_reference: str | None
    form_id: str
    fields: dict[str, Any]
    source: str | None
    wire: dict[str, Any]


class SortedIndex:
    """``(updated_us, id)`` keys in ascending order: the cursor listings' order."""

    __slots__ = ("keys",)

    def __init__(self, keys: list[tuple[int, str]] | None = None) -> None:
        self.keys: list[tuple[int, str]] = keys if keys is not None else []

    def add(self, updated_us: int, id: str) -> None:
        key = (updated_us, id)
        if not self.keys or self.keys[-1] < key:
            self.keys.append(key)  # the common case: a change is the newest
        else:
            bisect.insort(self.keys, key)

    def move(self, old_us: int, new_us: int, id: str) -> None:
        pos = bisect.bisect_left(self.keys, (old_us, id))
        if pos < len(self.keys) and self.keys[pos] == (old_us, id):
            del self.keys[pos]
        self.add(new_us, id)

    def __len__(self) -> int:
        return len(self.keys)


@dataclass(slots=True)
class ClientState:
    """Everything one client credential owns; nothing here is visible to another client."""

    client_id: str
    bookings: dict[str, BookingRec] = field(default_factory=dict)
    booking_refs: dict[str, str] = field(default_factory=dict)
    booking_index: SortedIndex = field(default_factory=SortedIndex)
    projects: dict[str, ProjectRec] = field(default_factory=dict)
    project_refs: dict[str, str] = field(default_factory=dict)
    project_index: SortedIndex = field(default_factory=SortedIndex)
    stages: dict[str, StageRec] = field(default_factory=dict)
    stage_by_sequence: dict[tuple[str, int], str] = field(default_factory=dict)
    payments: dict[str, PaymentRec] = field(default_factory=dict)
    payment_refs: dict[str, str] = field(default_factory=dict)
    documents: dict[str, DocumentRec] = field(default_factory=dict)
    document_refs: dict[str, str] = field(default_factory=dict)
    tasks: dict[str, TaskRec] = field(default_factory=dict)
    leads: dict[str, LeadRec] = field(default_factory=dict)
    lead_refs: dict[str, str] = field(default_factory=dict)

    # Assertion helpers for tests: they scan the records themselves, not the uniqueness
    # indexes, so that a duplicate would show.
    def count_bookings(self, external_reference: str) -> int:
        return sum(b.external_reference == external_reference for b in self.bookings.values())

    def count_projects(self, external_reference: str) -> int:
        return sum(p.external_reference == external_reference for p in self.projects.values())

    def count_stages(self, project_id: str, sequence: int) -> int:
        return sum(
            s.project_id == project_id and s.sequence == sequence for s in self.stages.values()
        )

    def count_payments(self, external_reference: str) -> int:
        return sum(p.external_reference == external_reference for p in self.payments.values())

    def count_documents(self, external_reference: str) -> int:
        return sum(d.external_reference == external_reference for d in self.documents.values())

    def count_leads(self, external_reference: str) -> int:
        return sum(x.external_reference == external_reference for x in self.leads.values())

    def iter_booking_wires(self) -> Iterator[bytes]:
        """Every booking's wire JSON, ordered by id."""
        for bid in sorted(self.bookings):
            yield self.bookings[bid].wire


class Capacity:
    """Busy contractors per (zone, slot start), as bit masks."""

    __slots__ = ("_busy",)

    _ZONES = 1 << 16

    def __init__(self) -> None:
        self._busy: dict[int, int] = {}

    def _key(self, zone: int, start_s: int) -> int:
        return start_s * self._ZONES + zone

    def used(self, zone: int, start_s: int) -> int:
        return self._busy.get(self._key(zone, start_s), 0).bit_count()

    def free_contractor(self, zone: ZoneRec, start_s: int) -> int | None:
        """The lowest free contractor index at that slot, or None when the slot is full."""
        mask = self._busy.get(self._key(zone.idx, start_s), 0)
        for k in range(zone.contractor_count):
            if not mask >> k & 1:
                return k
        return None

    def take(self, zone: int, start_s: int, contractor: int) -> None:
        key = self._key(zone, start_s)
        self._busy[key] = self._busy.get(key, 0) | (1 << contractor)

    def release(self, zone: int, start_s: int, contractor: int) -> None:
        key = self._key(zone, start_s)
        mask = self._busy.get(key, 0) & ~(1 << contractor)
        if mask:
            self._busy[key] = mask
        else:
            self._busy.pop(key, None)
