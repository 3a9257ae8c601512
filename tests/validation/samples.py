"""Small, realistic, clean tables of every dataset (one country), typed by the warehouse schemas.

Rows are plain dicts so that a test can inject one defect and rebuild the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from sodtrack.contract.countries import get_country
from sodtrack.warehouse.schemas import get_spec

Row = dict[str, Any]

T0 = datetime(2026, 11, 20, 13, 0, tzinfo=UTC)
EXTRACTED = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)

SECOND_POSTAL_CODE: dict[str, str] = {
    "cl": "8320000",
    "pe": "15001",
    "co": "050001",
    "mx": "01000",
    "ar": "B1636AAB",
    "br": "20040-020",
    "uy": "11200",
}


def schema(dataset: str) -> pa.Schema:
    """The dataset's schema plus ``country``, every field nullable (so tests can inject nulls
    that the real writer would refuse)."""
    spec = get_spec(dataset)
    fields = [f.with_nullable(True) for f in spec.schema]
    return pa.schema([*fields, pa.field("country", pa.string())])


def table(dataset: str, rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=schema(dataset))


def money(amount: str | int) -> Decimal:
    return Decimal(amount).quantize(Decimal("0.01"))


def clean_rows(country: str = "cl", *, bookings: int = 6) -> dict[str, list[Row]]:
    """One consistent run: every reference resolves, every format is the country's."""
    c = get_country(country)
    codes = [c.postal_code_example, SECOND_POSTAL_CODE[c.code]]
    base: Row = {"extracted_at": EXTRACTED, "country": c.code}
    stamp: Row = {"updated_at": T0 - timedelta(days=30), **base}

    categories: list[Row] = [
        {"id": "cat_001", "name": "Instalaciones", "description": None, "parent_id": None},
        {"id": "cat_002", "name": "Climatización", "description": "Aire", "parent_id": "cat_001"},
        {"id": "cat_003", "name": "Split", "description": None, "parent_id": "cat_002"},
        {"id": "cat_004", "name": "Remodelación", "description": None, "parent_id": None},
    ]
    categories = [{**r, "active": True, **stamp} for r in categories]

    services = [
        ("svc_001", "cat_003", "INST-AC-12000", "Instalación split 12000 BTU", 120, "45990"),
        ("svc_002", "cat_003", "INST-AC-18000", "Instalación split 18000 BTU", 180, "59990"),
        ("svc_003", "cat_004", "REM-BANO", "Remodelación de baño", 480, "890000"),
    ]
    services_rows: list[Row] = [
        {
            "id": sid,
            "category_id": cat,
            "sku": sku,
            "name": name,
            "description": None,
            "duration_minutes": minutes,
            "base_price": money(price),
            "currency": c.currency,
            "requires_project": sid == "svc_003",
            "active": True,
            **stamp,
        }
        for sid, cat, sku, name, minutes, price in services
    ]
    variants = [
        ("var_001", "svc_001", "INST-AC-12000-H", "Altura", "52990", 150),
        ("var_002", "svc_001", "INST-AC-12000-S", "Estándar", "45990", 120),
        ("var_003", "svc_002", "INST-AC-18000-S", "Estándar", "59990", 180),
    ]
    variants_rows: list[Row] = [
        {
            "id": vid,
            "service_id": sid,
            "sku": sku,
            "name": name,
            "price": money(price),
            "currency": c.currency,
            "duration_minutes": minutes,
            "active": vid != "var_003",
            **stamp,
        }
        for vid, sid, sku, name, price, minutes in variants
    ]
    zones = [
        {
            "id": f"zone_00{i}",
            "name": f"Zona {i}",
            "region": "RM",
            "contractor_count": 3 - i,
            "postal_code_count": 1,
            "service_count": 3,
            "active": i == 1,
            **stamp,
        }
        for i in (1, 2)
    ]
    postal_codes = [
        {
            "zone_id": zone["id"],
            "postal_code": code,
            "service_id": svc[0],
            "zone_active": zone["active"],
            **base,
        }
        for zone, code in zip(zones, codes, strict=True)
        for svc in services
    ]
    booking_rows: list[Row] = []
    statuses = ["scheduled", "confirmed", "in_progress", "completed", "cancelled"]
    for i in range(bookings):
        service = services_rows[i % 2]
        variant = variants_rows[i % 2] if service["id"] == "svc_001" else None
        start = T0 + timedelta(days=i, hours=i % 8)
        duration = variant["duration_minutes"] if variant else service["duration_minutes"]
        created = T0 - timedelta(days=10, minutes=i)
        booking_rows.append(
            {
                "id": f"bkg_{i:06d}",
                "external_reference": f"OPS-2026-11-{i:06d}",
                "status": statuses[i % len(statuses)],
                "service_id": service["id"],
                "variant_id": variant["id"] if variant else None,
                "zone_id": "zone_001",
                "contractor_id": f"ctr_{i % 3:03d}",
                "scheduled_start": start,
                "scheduled_end": start + timedelta(minutes=duration),
                "customer_first_name": "Ana",
                "customer_last_name": "Rojas",
                "customer_email": f"ana{i}@example.com" if i % 3 else None,
                "customer_phone": f"{c.phone_prefix}9{i:08d}",
                "customer_document_id": None,
                "address_line1": "Av. Providencia 1234",
                "address_line2": None,
                "address_city": "Santiago",
                "address_region": "RM",
                "address_postal_code": codes[i % 2],
                "address_country": c.code,
                "notes": None,
                "price": variant["price"] if variant else service["base_price"],
                "currency": c.currency,
                "project_id": None,
                "stage_id": None,
                "created_at": created,
                "updated_at": created + timedelta(hours=1),
                "cancelled_reason": "customer" if statuses[i % 5] == "cancelled" else None,
                **base,
            }
        )
    changes = [{**r, "run_id": "run-20261128"} for r in booking_rows]
    return {
        "categories": categories,
        "services": services_rows,
        "variants": variants_rows,
        "coverage_zones": zones,
        "coverage_postal_codes": postal_codes,
        "bookings": booking_rows,
        "booking_changes": changes,
    }


def clean_tables(country: str = "cl", *, bookings: int = 6) -> dict[str, pa.Table]:
    return {
        name: table(name, rows) for name, rows in clean_rows(country, bookings=bookings).items()
    }
