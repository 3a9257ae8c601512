"""Model factories for the warehouse tests (validated models, as the API client yields)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sodtrack.contract.models import Booking, Category, CoverageZone, Service, Variant

T0 = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


def category(i: int, **kw: Any) -> Category:
    data: dict[str, Any] = {
        "id": f"cat_{i:04d}",
        "name": f"Category {i}",
        "description": None if i % 2 else f"desc {i}",
        "parent_id": None if i < 3 else f"cat_{i % 3:04d}",
        "active": i % 5 != 0,
        "updated_at": "2026-11-01T10:00:00.000000Z",
    }
    data.update(kw)
    return Category.model_validate(data)


def service(i: int, **kw: Any) -> Service:
    data: dict[str, Any] = {
        "id": f"svc_{i:04d}",
        "category_id": "cat_0001",
        "sku": f"INST-{i:05d}",
        "name": f"Service {i}",
        "description": None,
        "duration_minutes": 60,
        "base_price": "45990",
        "currency": "CLP",
        "requires_project": False,
        "active": True,
        "updated_at": "2026-11-01T10:00:00.000000Z",
    }
    data.update(kw)
    return Service.model_validate(data)


def variant(i: int, **kw: Any) -> Variant:
    data: dict[str, Any] = {
        "id": f"var_{i:04d}",
        "service_id": "svc_0001",
        "sku": f"VAR-{i:05d}",
        "name": f"Variant {i}",
        "price": "149.90",
        "currency": "PEN",
        "duration_minutes": 90,
        "active": True,
        "updated_at": "2026-11-01T10:00:00.000000Z",
    }
    data.update(kw)
    return Variant.model_validate(data)


def zone(i: int, **kw: Any) -> CoverageZone:
    data: dict[str, Any] = {
        "id": f"zone_{i:04d}",
        "name": f"Zone {i}",
        "region": "RM",
        "postal_codes": ["06700", "06701", "01310"],
        "service_ids": ["svc_0001", "svc_0002"],
        "contractor_count": 3,
        "active": True,
        "updated_at": "2026-11-01T10:00:00.000000Z",
    }
    data.update(kw)
    return CoverageZone.model_validate(data)


def booking(
    i: int | str,
    *,
    start: datetime | None = None,
    updated: datetime | None = None,
    validate: bool = True,
    **kw: Any,
) -> Booking:
    """A booking; ``validate=False`` builds it with ``model_construct`` (fast, for volume)."""
    start = start or T0 + timedelta(days=3)
    updated = updated or T0
    bid = i if isinstance(i, str) else f"bkg_{i:07d}"
    customer = {
        "first_name": "Ana",
        "last_name": "Rojas",
        "email": "ana@example.com",
        "phone": None,
        "document_id": "12.345.678-5",
    }
    address = {
        "line1": "Av. Providencia 1234",
        "line2": None,
        "city": "Santiago",
        "region": "RM",
        "postal_code": "0750000",
        "country": "cl",
    }
    data: dict[str, Any] = {
        "id": bid,
        "external_reference": f"OPS-{bid}",
        "status": "scheduled",
        "service_id": "svc_0001",
        "variant_id": None,
        "zone_id": "zone_0001",
        "contractor_id": "ctr_0001",
        "scheduled_start": start,
        "scheduled_end": start + timedelta(hours=1),
        "customer": customer,
        "address": address,
        "notes": None,
        "price": Decimal("45990"),
        "currency": "CLP",
        "project_id": None,
        "stage_id": None,
        "created_at": T0 - timedelta(days=30),
        "updated_at": updated,
        "cancelled_reason": None,
    }
    data.update(kw)
    if validate:
        return Booking.model_validate(data)
    from sodtrack.contract.models import Address, Customer

    data["customer"] = Customer.model_construct(**data["customer"])
    data["address"] = Address.model_construct(**data["address"])
    return Booking.model_construct(**data)
