"""Model pages → record batches: exact money, UTC timestamps, nulls, column order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from sodtrack.contract.models import Booking
from sodtrack.warehouse.convert import (
    ConversionError,
    booking_changes_batch,
    bookings_batch,
    categories_batch,
    coverage_postal_codes_batch,
    coverage_zones_batch,
    scheduled_month,
    services_batch,
    to_batch,
    variants_batch,
)
from sodtrack.warehouse.schemas import DATASETS

from .factories import T0, booking, category, service, variant, zone

EXTRACTED = datetime(2026, 11, 28, 4, 0, tzinfo=UTC)


def test_every_batch_has_exactly_the_dataset_schema() -> None:
    batches = {
        "categories": categories_batch([category(i) for i in range(4)], EXTRACTED),
        "services": services_batch([service(1)], EXTRACTED),
        "variants": variants_batch([variant(1)], EXTRACTED),
        "coverage_zones": coverage_zones_batch([zone(1)], EXTRACTED),
        "coverage_postal_codes": coverage_postal_codes_batch([zone(1)], EXTRACTED),
        "bookings": bookings_batch([booking(1)], EXTRACTED),
    }
    batches["booking_changes"] = booking_changes_batch(batches["bookings"], "run-1")
    assert set(batches) == set(DATASETS)
    for name, batch in batches.items():
        assert batch.schema.equals(DATASETS[name].schema, check_metadata=True), name
        assert batch.schema.names == DATASETS[name].schema.names


def test_money_is_exact_decimal_never_float() -> None:
    clp = services_batch([service(1, base_price="45990")], EXTRACTED)
    pen = variants_batch([variant(1, price="149.90"), variant(2, price="0.01")], EXTRACTED)
    big = services_batch([service(2, base_price="9999999999999999.99", currency="COP")], EXTRACTED)
    assert clp.column("base_price").type == pa.decimal128(18, 2)
    assert clp.column("base_price").to_pylist() == [Decimal("45990.00")]
    assert pen.column("price").to_pylist() == [Decimal("149.90"), Decimal("0.01")]
    assert big.column("base_price").to_pylist() == [Decimal("9999999999999999.99")]


def test_money_with_more_than_two_decimals_is_refused_naming_the_record() -> None:
    with pytest.raises(ConversionError, match=r"var_0002.*1\.005"):
        variants_batch([variant(1), variant(2, price="1.005")], EXTRACTED)


def test_timestamps_are_utc_microseconds() -> None:
    santiago = timezone(timedelta(hours=-3))
    b = booking(
        1,
        start=datetime(2026, 12, 3, 10, 0, 0, 123456, tzinfo=santiago),
        updated=datetime(2026, 11, 28, 3, 0, 0, 1, tzinfo=UTC),
    )
    batch = bookings_batch([b], EXTRACTED)
    assert batch.schema.field("scheduled_start").type == pa.timestamp("us", tz="UTC")
    start = batch.column("scheduled_start")[0].as_py()
    assert start == datetime(2026, 12, 3, 13, 0, 0, 123456, tzinfo=UTC)
    assert batch.column("updated_at")[0].as_py().microsecond == 1
    assert batch.column("extracted_at").to_pylist() == [EXTRACTED]


def test_nested_booking_fields_are_flattened_with_nulls() -> None:
    b = booking(
        "bkg_x",
        variant_id="var_0001",
        notes=None,
        customer={
            "first_name": "Ana",
            "last_name": "Rojas",
            "email": None,
            "phone": "+56912345678",
            "document_id": None,
        },
        address={
            "line1": "Calle 1",
            "line2": "Depto 5",
            "city": "Ciudad de México",
            "region": "CDMX",
            "postal_code": "06700",
            "country": "mx",
        },
    )
    row = bookings_batch([b], EXTRACTED).to_pylist()[0]
    assert row["customer_email"] is None
    assert row["customer_phone"] == "+56912345678"
    assert row["customer_document_id"] is None
    assert row["address_line2"] == "Depto 5"
    assert row["address_postal_code"] == "06700"  # leading zero kept: a string
    assert row["variant_id"] == "var_0001"
    assert row["status"] == "scheduled"
    assert row["notes"] is None


def test_categories_nulls_and_order() -> None:
    rows = categories_batch([category(1), category(2), category(5)], EXTRACTED).to_pylist()
    assert [r["id"] for r in rows] == ["cat_0001", "cat_0002", "cat_0005"]
    assert rows[0]["description"] is None
    assert rows[1]["description"] == "desc 2"
    assert rows[0]["parent_id"] is None
    assert rows[2]["parent_id"] == "cat_0002"
    assert rows[2]["active"] is False


def test_coverage_zones_and_postal_code_explosion() -> None:
    zones = [
        zone(1),
        zone(2, postal_codes=[], service_ids=["svc_0001"]),
        zone(3, postal_codes=["01310-100"], service_ids=["svc_0009"], active=False),
    ]
    z = coverage_zones_batch(zones, EXTRACTED).to_pylist()
    assert [(r["postal_code_count"], r["service_count"]) for r in z] == [(3, 2), (0, 1), (1, 1)]
    pc = coverage_postal_codes_batch(zones, EXTRACTED).to_pylist()
    assert [(r["zone_id"], r["postal_code"], r["service_id"]) for r in pc] == [
        ("zone_0001", "06700", "svc_0001"),
        ("zone_0001", "06700", "svc_0002"),
        ("zone_0001", "06701", "svc_0001"),
        ("zone_0001", "06701", "svc_0002"),
        ("zone_0001", "01310", "svc_0001"),
        ("zone_0001", "01310", "svc_0002"),
        ("zone_0003", "01310-100", "svc_0009"),
    ]
    assert pc[-1]["zone_active"] is False


def test_empty_pages_give_empty_batches_with_the_schema() -> None:
    for name in ("categories", "services", "variants", "coverage_zones", "bookings"):
        batch = to_batch(name, [], EXTRACTED)
        assert batch.num_rows == 0
        assert batch.schema.equals(DATASETS[name].schema)


def test_booking_changes_and_scheduled_month() -> None:
    late_local = datetime(2026, 11, 30, 22, 0, tzinfo=timezone(timedelta(hours=-3)))
    batch = bookings_batch([booking(1, start=late_local), booking(2, start=T0)], EXTRACTED)
    # 22:00 on 30 November in Santiago is December in UTC: the partition key is UTC.
    assert scheduled_month(batch).to_pylist() == ["2026-12", "2026-11"]
    changes = booking_changes_batch(batch, "run-7")
    assert changes.column("run_id").to_pylist() == ["run-7", "run-7"]


def test_model_construct_objects_convert_the_same() -> None:
    a = bookings_batch([booking(1)], EXTRACTED)
    b = bookings_batch([booking(1, validate=False)], EXTRACTED)
    assert a.equals(b)
    assert isinstance(booking(1), Booking)
