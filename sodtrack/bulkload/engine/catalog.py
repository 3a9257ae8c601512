"""Checks against Sodtrack before any write: SKUs, coverage, slots, prices.

* :class:`Catalog`: SKU → active service / variant, read live (``list_services`` once,
  ``list_variants`` only for services whose rows name a variant). Inactive and unknown SKUs
  are told apart, so the message says which. A booking's price is the variant's price, else
  the service's base price (the contract's rule), which lets the engine check payments
  against a project's total before writing.
* :class:`Coverage`: is a postal code covered for a service, and by which zone. Two
  strategies with the same answer: ``check`` asks ``GET /coverage/check`` once per distinct
  ``(postal_code, service)`` pair (cached); ``zones`` reads the active zones once and applies
  the contract's rule (the active zone with the lowest id that offers the service at the
  code serves it). ``auto`` uses ``check`` for a handful of pairs and ``zones`` beyond
  (a 5,000-row file can hold thousands of pairs; the zones list is a page or two).
* :func:`slot_shape_problem`: a start that can never be a slot (not on the hour, outside
  08:00-17:00, a Sunday) is refused locally, with a message that says so, instead of going
  to the API and coming back as a ``slot_unavailable`` conflict.
* :class:`Availability`: optional slot capacity. Capacity belongs to a zone and a slot start,
  so one ``GET /availability`` per (zone, 14-day window) serves every row of that zone; rows
  of the file asking for the same (zone, start) share its capacity, in file order.

Availability is a snapshot: it can change before (or during) the real run; the engine says so.

A read that fails transiently even after the client's retries (:class:`RetryableError`) fails
only what it concerns: a service's variants list the rows naming a variant of that service
(:attr:`Catalog.unavailable`), a coverage check its ``(postal_code, service)`` pair
(:attr:`Coverage.failed`), an availability window the rows of that zone and window
(:attr:`AvailabilityResult.failed`); the checks answer those rows ``failed_transient`` and let
the others go on. Only the services list (every row needs it) and the zones list (in ``zones``
mode, every pair needs it) fail every row they serve. Other errors (credentials, a contract
violation) are not about rows and still stop the checks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal, Protocol, TypeVar

from sodtrack.client.errors import RetryableError
from sodtrack.contract.countries import Country
from sodtrack.contract.limits import (
    AVAILABILITY_MAX_DAYS,
    SLOT_FIRST_HOUR,
    SLOT_LAST_HOUR,
    SLOT_WEEKDAYS,
)
from sodtrack.contract.models import Availability as AvailabilityModel
from sodtrack.contract.models import CoverageCheck, CoverageZone, Service, Variant

T = TypeVar("T")


class CatalogClient(Protocol):
    """The part of :class:`~sodtrack.client.SodtrackClient` the checks use."""

    async def collect_services(
        self, category_id: str | None = None, active: bool | None = None
    ) -> list[Service]: ...
    async def collect_variants(
        self, service_id: str, active: bool | None = None
    ) -> list[Variant]: ...
    async def collect_coverage_zones(self, active: bool | None = None) -> list[CoverageZone]: ...
    async def check_coverage(self, postal_code: str, service_id: str) -> CoverageCheck: ...
    async def get_availability(
        self,
        service_id: str,
        postal_code: str,
        date_from: date,
        date_to: date,
        variant_id: str | None = None,
    ) -> AvailabilityModel: ...


@dataclass(frozen=True, slots=True)
class Resolved:
    """A row's SKUs resolved to the catalog."""

    service: Service
    variant: Variant | None

    @property
    def price(self) -> Decimal:
        return self.variant.price if self.variant is not None else self.service.base_price

    @property
    def currency(self) -> str:
        return self.variant.currency if self.variant is not None else self.service.currency


SkuProblem = Literal[
    "unknown_service_sku", "service_inactive", "unknown_variant_sku", "variant_inactive"
]


async def _each(
    calls: Sequence[Awaitable[T]],
) -> list[T | RetryableError]:
    """Await ``calls`` together; a transient failure is returned in its place, any other
    error propagates (after the others have finished)."""
    answers = await asyncio.gather(*calls, return_exceptions=True)
    out: list[T | RetryableError] = []
    for answer in answers:
        if isinstance(answer, RetryableError):
            out.append(answer)
        elif isinstance(answer, BaseException):
            raise answer
        else:
            out.append(answer)
    return out


@dataclass
class Catalog:
    services_by_sku: dict[str, Service] = field(default_factory=dict)
    variants_by_service: dict[str, dict[str, Variant]] = field(default_factory=dict)
    unavailable: dict[str, RetryableError] = field(default_factory=dict)
    """Service id → why its variants could not be read (a transient failure)."""
    _sku_by_id: dict[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    async def load(
        cls,
        client: CatalogClient,
        wanted: Iterable[tuple[str, str | None]],
        variants_of: Iterable[str] = (),
    ) -> Catalog:
        """Read what the ``(service_sku, variant_sku)`` pairs need, and nothing more; and the
        variants of the services ``variants_of`` names by id (existing bookings' services,
        so that a correction's message names their variant by SKU)."""
        services = await client.collect_services()
        by_sku = {s.sku: s for s in services}
        known = {s.id for s in services}
        need_variants = sorted(
            {by_sku[s].id for s, v in wanted if v is not None and s in by_sku}
            | {sid for sid in variants_of if sid in known}
        )
        lists = await _each([client.collect_variants(sid) for sid in need_variants])
        variants: dict[str, dict[str, Variant]] = {}
        unavailable: dict[str, RetryableError] = {}
        for sid, answer in zip(need_variants, lists, strict=True):
            if isinstance(answer, RetryableError):
                unavailable[sid] = answer
            else:
                variants[sid] = {v.sku: v for v in answer}
        return cls(by_sku, variants, unavailable=unavailable)

    def unreadable(self, service_sku: str, variant_sku: str | None) -> RetryableError | None:
        """Why this pair cannot be resolved now (its service's variants could not be read)."""
        service = self.services_by_sku.get(service_sku)
        if service is None or variant_sku is None:
            return None
        return self.unavailable.get(service.id)

    def service_sku(self, service_id: str) -> str | None:
        """The SKU of a service id (None if the catalog has no such service)."""
        if len(self._sku_by_id) != len(self.services_by_sku):
            self._sku_by_id = {s.id: sku for sku, s in self.services_by_sku.items()}
        return self._sku_by_id.get(service_id)

    def variant_sku(self, service_id: str, variant_id: str) -> str | None:
        """The SKU of a variant id among the variants read for its service."""
        variants = self.variants_by_service.get(service_id, {})
        return next((v.sku for v in variants.values() if v.id == variant_id), None)

    def resolve(self, service_sku: str, variant_sku: str | None) -> Resolved | SkuProblem:
        service = self.services_by_sku.get(service_sku)
        if service is None:
            return "unknown_service_sku"
        if not service.active:
            return "service_inactive"
        if variant_sku is None:
            return Resolved(service, None)
        variant = self.variants_by_service.get(service.id, {}).get(variant_sku)
        if variant is None:
            return "unknown_variant_sku"
        if not variant.active:
            return "variant_inactive"
        return Resolved(service, variant)


CoverageMode = Literal["auto", "check", "zones"]


@dataclass(frozen=True, slots=True)
class CoverageAnswer:
    covered: bool
    zone_id: str | None


class Coverage:
    """Coverage per ``(postal_code, service_id)``, cached (see the module docstring)."""

    AUTO_CHECK_MAX_PAIRS = 40

    def __init__(self, client: CatalogClient, mode: CoverageMode = "auto") -> None:
        self.client = client
        self.mode = mode
        self.cache: dict[tuple[str, str], CoverageAnswer] = {}
        self.failed: dict[tuple[str, str], RetryableError] = {}
        """Pairs whose coverage could not be read (transient); not cached, asked again."""
        self.requests = 0

    async def resolve(
        self, pairs: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], CoverageAnswer]:
        """The answer of every pair that could be read; the others are in :attr:`failed`."""
        pairs = list(pairs)
        todo = sorted(set(pairs) - set(self.cache))
        for pair in todo:
            self.failed.pop(pair, None)
        mode = self.mode
        if mode == "auto":
            mode = "check" if len(todo) <= self.AUTO_CHECK_MAX_PAIRS else "zones"
        if todo and mode == "check":
            answers = await _each([self.client.check_coverage(pc, sid) for pc, sid in todo])
            self.requests += len(todo)
            for pair, ans in zip(todo, answers, strict=True):
                if isinstance(ans, RetryableError):
                    self.failed[pair] = ans
                else:
                    self.cache[pair] = CoverageAnswer(ans.covered, ans.zone_id)
        elif todo:
            self.requests += 1
            try:
                zones = await self.client.collect_coverage_zones(active=True)
            except RetryableError as exc:
                for pair in todo:
                    self.failed[pair] = exc
                return {p: self.cache[p] for p in pairs if p in self.cache}
            # the contract's rule: the active zone with the lowest id (byte order) serving it
            zones = sorted((z for z in zones if z.active), key=lambda z: z.id.encode())
            by_code: dict[str, list[CoverageZone]] = {}
            for z in zones:
                for code in z.postal_codes:
                    by_code.setdefault(code, []).append(z)
            for pc, sid in todo:
                zone = next((z for z in by_code.get(pc, []) if sid in z.service_ids), None)
                self.cache[(pc, sid)] = CoverageAnswer(zone is not None, zone.id if zone else None)
        return {p: self.cache[p] for p in pairs if p in self.cache}


def slot_shape_problem(start: datetime, country: Country) -> bool:
    """True when ``start`` can never be a slot start (minute, hour or weekday wrong)."""
    local = start.astimezone(country.tz)
    return (
        local.minute != 0
        or local.second != 0
        or local.microsecond != 0
        or not SLOT_FIRST_HOUR <= local.hour <= SLOT_LAST_HOUR
        or local.weekday() not in SLOT_WEEKDAYS
    )


@dataclass(frozen=True, slots=True)
class SlotDemand:
    """One row asking for a slot: who, where, when."""

    position: int
    zone_id: str
    service_id: str
    variant_id: str | None
    postal_code: str
    start: datetime


@dataclass(frozen=True, slots=True)
class SlotVerdict:
    position: int
    problem: Literal["outside_booking_window", "no_capacity"]
    capacity: int = 0
    demand: int = 0


@dataclass
class AvailabilityResult:
    verdicts: list[SlotVerdict] = field(default_factory=list)
    failed: dict[int, RetryableError] = field(default_factory=dict)
    """Rows (position) whose window could not be read (transient): not judged."""


async def check_availability(
    client: CatalogClient, demands: list[SlotDemand], country: Country
) -> AvailabilityResult:
    """Rows whose slot is not offered, or whose (zone, start) the file oversubscribes.

    One availability request per (zone, window of at most 14 local days). A start the API
    does not list (too soon, too far ahead) is ``outside_booking_window``; beyond a start's
    capacity, the later rows (file order) are ``no_capacity``. A window that cannot be read
    (a transient failure after the client's retries) leaves its rows unjudged, in ``failed``.
    """
    tz = country.tz
    by_zone: dict[str, list[SlotDemand]] = {}
    for d in demands:
        by_zone.setdefault(d.zone_id, []).append(d)

    requests: list[tuple[str, SlotDemand, date, date]] = []
    for zone_id, items in by_zone.items():
        days = sorted({d.start.astimezone(tz).date() for d in items})
        rep = items[0]
        window_start = prev = days[0]
        for day in days:
            if (day - window_start).days >= AVAILABILITY_MAX_DAYS:
                requests.append((zone_id, rep, window_start, prev))
                window_start = day
            prev = day
        requests.append((zone_id, rep, window_start, days[-1]))

    answers = await _each(
        [
            client.get_availability(rep.service_id, rep.postal_code, d0, d1)
            for _, rep, d0, d1 in requests
        ]
    )
    capacity: dict[tuple[str, datetime], int] = {}
    out = AvailabilityResult()
    for (zone_id, _, d0, d1), ans in zip(requests, answers, strict=True):
        if isinstance(ans, RetryableError):
            for d in by_zone[zone_id]:
                if d0 <= d.start.astimezone(tz).date() <= d1:
                    out.failed[d.position] = ans
            continue
        for slot in ans.data:
            capacity[(zone_id, slot.start.astimezone(UTC))] = slot.capacity

    verdicts = out.verdicts
    used: dict[tuple[str, datetime], int] = {}
    wanted: dict[tuple[str, datetime], int] = {}
    for d in demands:
        key = (d.zone_id, d.start.astimezone(UTC))
        wanted[key] = wanted.get(key, 0) + 1
    for d in sorted(demands, key=lambda d: d.position):
        if d.position in out.failed:
            continue
        key = (d.zone_id, d.start.astimezone(UTC))
        if key not in capacity:
            verdicts.append(SlotVerdict(d.position, "outside_booking_window"))
            continue
        if used.get(key, 0) >= capacity[key]:
            verdicts.append(SlotVerdict(d.position, "no_capacity", capacity[key], wanted[key]))
            continue
        used[key] = used.get(key, 0) + 1
    return out


def local_text(start: datetime, country: Country) -> str:
    """A start as an operator reads it: ``2026-12-03 10:00 (America/Santiago)``."""
    return f"{start.astimezone(country.tz):%Y-%m-%d %H:%M} ({country.time_zone})"
