"""The dataset schemas are pinned by golden files (``schemas/arrow/<dataset>.json``)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sodtrack.warehouse.schemas import (
    DATASETS,
    META_DATASET,
    META_RUN_ID,
    META_SCHEMA_VERSION,
    MONEY,
    TIMESTAMP,
    schema_json,
)

GOLDEN = Path(__file__).resolve().parents[2] / "schemas" / "arrow"


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_schema_matches_golden_file(name: str) -> None:
    expected = (GOLDEN / f"{name}.json").read_text(encoding="utf-8")
    assert schema_json(DATASETS[name]) == expected, (
        f"{name} schema changed: bump SCHEMA_VERSION[{name!r}] and regenerate with "
        "`uv run python -m sodtrack.warehouse.schemas schemas/arrow`"
    )


def test_every_golden_file_is_a_dataset() -> None:
    assert {p.stem for p in GOLDEN.glob("*.json")} == set(DATASETS)


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_schema_conventions(name: str) -> None:
    spec = DATASETS[name]
    schema = spec.schema
    assert schema.metadata[META_SCHEMA_VERSION.encode()] == str(spec.version).encode()
    assert schema.metadata[META_DATASET.encode()] == name.encode()
    assert spec.file_schema("r1").metadata[META_RUN_ID.encode()] == b"r1"
    assert not set(spec.partition_keys) & set(schema.names), "partition keys live in paths"
    assert len(set(schema.names)) == len(schema.names)
    for field in schema:
        if field.name == "id" or field.name.endswith("_id") or field.name.endswith("postal_code"):
            assert field.type == pa.string(), field.name
        if field.name.endswith("_at") or field.name.startswith("scheduled_"):
            assert field.type == TIMESTAMP, field.name
        if field.name in ("price", "base_price"):
            assert field.type == MONEY
            assert "currency" in schema.names
    assert "extracted_at" in schema.names


def test_booking_changes_is_bookings_plus_run_id() -> None:
    b, c = DATASETS["bookings"].schema, DATASETS["booking_changes"].schema
    assert c.names == [*b.names, "run_id"]
    assert c.field("run_id").nullable is False
