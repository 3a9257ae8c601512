"""Synthetic uploads built against a live catalog: for demos, tests and benchmarks.

:func:`synthesize_upload` reads the catalog and the coverage zones through the client and
writes a realistic file (CSV or XLSX by extension) whose every row should load: active
services and variants, postal codes the serving zone covers, slot starts spread over days,
hours and zones so that no (zone, start) is asked for more than its contractors can serve,
projects of 2-5 bookings in 1-3 stages with payments below each project's total.

The file's columns are those marked ``synth: true`` in ``schemas/bulkload/columns.yaml``
(:mod:`sodtrack.bulkload.columns`): a column the generator cannot fill is marked ``false``
there, and a test checks each marked one is filled on some row.

Starts are placed from ``min_days_ahead`` (past the simulator's seeded bookings, which reach
three weeks ahead) to ``max_days_ahead`` (inside the 180-day horizon), Monday to Saturday,
08:00-17:00 local time.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

from openpyxl import Workbook

from sodtrack.bulkload.columns import SPEC
from sodtrack.bulkload.engine.catalog import CatalogClient
from sodtrack.bulkload.reading.values import PAYMENT_METHODS
from sodtrack.contract.countries import get_country
from sodtrack.contract.limits import SLOT_FIRST_HOUR, SLOT_LAST_HOUR, SLOT_WEEKDAYS
from sodtrack.contract.models import CoverageZone, Service, Variant

COLUMNS: tuple[str, ...] = SPEC.synth_columns
"""The columns a synthetic file has (``synth: true`` in ``schemas/bulkload/columns.yaml``);
:func:`synthesize_upload` fills each of them on some row (checked by a test)."""
_FIRST = ("Ana", "José", "María", "Luis", "Carmen", "Jorge", "Lucía", "Pedro", "Sofía", "Raúl")
_LAST = ("Rojas", "Muñoz", "González", "Pérez", "Díaz", "Silva", "Núñez", "Soto", "Araya")
_STREETS = ("Av. Providencia", "Calle Larga", "Los Aromos", "Pasaje Ñuble", "Av. del Mar")
_STAGES = ("Demolición", "Instalación", "Terminaciones")


@dataclass(frozen=True, slots=True)
class SynthSummary:
    path: Path
    rows: int
    projects: int
    stages: int
    payments: int
    plain: int


@dataclass(frozen=True, slots=True)
class _Offer:
    service: Service
    variants: tuple[Variant, ...]
    zone: CoverageZone
    postal_codes: tuple[str, ...]


async def synthesize_upload(
    client: CatalogClient,
    path: Path,
    *,
    country: str,
    rows: int,
    projects: int,
    seed: int = 7,
    prefix: str = "SYN",
    today: date | None = None,
    min_days_ahead: int = 30,
    max_days_ahead: int = 170,
) -> SynthSummary:
    """Write ``rows`` rows (``projects`` of them grouped 2-5 per project) to ``path``."""
    ctry = get_country(country)
    rng = random.Random(seed)
    services = [s for s in await client.collect_services(active=True) if s.active]
    zones = sorted(
        (z for z in await client.collect_coverage_zones(active=True) if z.active),
        key=lambda z: z.id.encode(),
    )
    by_id = {s.id: s for s in services}
    # The serving zone of (code, service) is the active zone with the lowest id offering it:
    # capacity is counted against that zone, so offers are built from serving zones only.
    serving: dict[tuple[str, str], CoverageZone] = {}
    for z in zones:
        for code in z.postal_codes:
            for sid in z.service_ids:
                serving.setdefault((code, sid), z)
    codes: dict[tuple[str, str], list[str]] = {}
    for (code, sid), z in serving.items():
        if sid in by_id:
            codes.setdefault((z.id, sid), []).append(code)
    zone_by_id = {z.id: z for z in zones}
    sample = rng.sample(sorted(codes), min(len(codes), 400))
    variant_cache: dict[str, tuple[Variant, ...]] = {}
    offers: list[_Offer] = []
    for zid, sid in sample:
        if sid not in variant_cache:
            variant_cache[sid] = ()
        offers.append(_Offer(by_id[sid], (), zone_by_id[zid], tuple(sorted(codes[(zid, sid)]))))
    # variants for a few services (one request each)
    for sid in rng.sample(sorted(variant_cache), min(len(variant_cache), 8)):
        vs = [v for v in await client.collect_variants(sid, active=True) if v.active]
        variant_cache[sid] = tuple(vs)
    offers = [
        _Offer(o.service, variant_cache[o.service.id], o.zone, o.postal_codes) for o in offers
    ]
    plain_offers = [o for o in offers if not o.service.requires_project]
    if not offers or not plain_offers:
        raise RuntimeError("the catalog offers nothing to book")

    today = today or datetime.now(ctry.tz).date()
    days = [
        today + timedelta(days=d)
        for d in range(min_days_ahead, max_days_ahead + 1)
        if (today + timedelta(days=d)).weekday() in SLOT_WEEKDAYS
    ]
    hours = list(range(SLOT_FIRST_HOUR, SLOT_LAST_HOUR + 1))
    used: dict[tuple[str, datetime], int] = {}

    def start_for(o: _Offer) -> datetime:
        for _ in range(1000):
            d = rng.choice(days)
            h = rng.choice(hours)
            start = datetime(d.year, d.month, d.day, h, tzinfo=ctry.tz)
            key = (o.zone.id, start)
            if used.get(key, 0) < max(1, o.zone.contractor_count - 1):
                used[key] = used.get(key, 0) + 1
                return start
        raise RuntimeError("no free slot found")

    def person() -> tuple[str, str, str, str]:
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        email = f"{_ascii(first)}.{_ascii(last)}{rng.randrange(10_000)}@example.com"
        return first, last, email, f"{rng.choice(_STREETS)} {rng.randrange(10, 9999)}"

    def booking(
        o: _Offer, ref: str, customer: tuple[str, str, str, str], code: str
    ) -> dict[str, Any]:
        variant = rng.choice(o.variants) if o.variants and rng.random() < 0.5 else None
        first, last, email, street = customer
        return {
            "external_reference": ref,
            "service_sku": o.service.sku,
            "variant_sku": variant.sku if variant else None,
            "_price": variant.price if variant else o.service.base_price,
            "scheduled_start": start_for(o),
            "customer_first_name": first,
            "customer_last_name": last,
            "customer_email": email,
            "address_line1": street,
            "city": o.zone.name[:40] or "Ciudad",
            "region": o.zone.region or "RM",
            "postal_code": code,
            "notes": rng.choice((None, None, "Llamar antes de llegar", "- frágil, con cuidado")),
        }

    out: list[dict[str, Any]] = []
    n_stages = n_payments = 0
    for p in range(projects):
        size = rng.randint(2, 5)
        o = rng.choice(offers)
        code = rng.choice(o.postal_codes)
        customer = person()
        stage_count = rng.randint(1, min(3, size))
        group = []
        for b in range(size):
            row = booking(o, f"{prefix}-P{p:05d}-B{b}", customer, code)
            seq = min(1 + b * stage_count // size, stage_count)
            row.update(
                project_reference=f"{prefix}-P{p:05d}",
                project_name=f"Proyecto {customer[1]} {p}",
                stage_sequence=seq,
                stage_name=_STAGES[seq - 1],
            )
            group.append(row)
        n_stages += stage_count
        total = sum((r["_price"] for r in group), Decimal(0))
        for k, share in enumerate(
            rng.choice(((), (Decimal("0.3"),), (Decimal("0.3"), Decimal("0.5"))))
        ):
            amount = (total * share).quantize(ctry.quantum, rounding=ROUND_DOWN)
            if amount <= 0:
                continue
            row = group[k]
            row.update(
                payment_reference=f"{prefix}-P{p:05d}-Y{k}",
                payment_amount=amount,
                payment_method=rng.choice(PAYMENT_METHODS),
                paid_at=datetime.combine(today - timedelta(days=k), datetime.min.time()),
            )
            n_payments += 1
        out.extend(group)
    plain_count = max(0, rows - len(out))
    for i in range(plain_count):
        o = rng.choice(plain_offers)
        out.append(
            booking(
                o,
                f"{prefix}-B{i:06d}",
                person(),
                rng.choice(o.postal_codes),
            )
        )
    rng.shuffle(out)  # projects' rows interleave with plain ones, as in real sheets
    _write(path, out, ctry.quantum)
    return SynthSummary(path, len(out), projects, n_stages, n_payments, plain_count)


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _write(path: Path, rows: Sequence[dict[str, Any]], quantum: Decimal) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix.lower() == ".xlsx":
        wb = Workbook(write_only=True)
        ws = wb.create_sheet("Bookings")
        ws.append(list(COLUMNS))
        for r in rows:
            cells: list[Any] = []
            for c in COLUMNS:
                v = r.get(c)
                if isinstance(v, datetime):
                    v = v.replace(tzinfo=None)  # local wall time, as a sheet holds it
                elif isinstance(v, Decimal):
                    v = float(v) if quantum < 1 else int(v)
                cells.append(v)
            ws.append(cells)
        wb.save(path)
        return
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for r in rows:
            values = []
            for c in COLUMNS:
                v = r.get(c)
                if isinstance(v, datetime):
                    v = v.strftime("%Y-%m-%d %H:%M")
                values.append("" if v is None else str(v))
            writer.writerow(values)
