"""Explicit, versioned Arrow schemas of every warehouse dataset.

Analysts read these datasets with DuckDB, pandas or polars and no helper of ours, so the
schema *is* the interface. Rules every schema here follows:

* stable column order (new columns are appended, never inserted);
* ids and postal codes are strings (postal codes such as ``06700`` or ``01310-100`` must keep
  their zeros and dashes);
* money is ``decimal128(18, 2)`` with a ``currency`` column beside it. Two places hold every
  currency in scope (CLP has none: ``45990`` is stored as ``45990.00``); the ``currency``
  column says how many of them are meaningful;
* timestamps are ``timestamp("us", tz="UTC")``: the API answers in UTC with six fractional
  digits, so nothing is lost;
* nullability is explicit and enforced by the writers (a null in a non-nullable column is an
  error, not a silent file);
* partition columns are hive path keys (``country=cl/snapshot_date=2026-11-28``) and are *not*
  stored in the files; every partition value is a string.

Each dataset carries ``SCHEMA_VERSION`` in its schema metadata, and every file also names its
dataset and run (``sodtrack.schema_version``, ``sodtrack.dataset``, ``sodtrack.run_id``).
Golden renderings live in ``schemas/arrow/<dataset>.json``; a test compares them, so a change
of a schema is a deliberate, reviewed change with a version bump.

``bookings`` is partitioned by ``scheduled_month``: the ``YYYY-MM`` of ``scheduled_start``
**in UTC**. UTC rather than the country's local time because the key is then a pure function
of the stored column, needs no time-zone database and never moves when tz rules change; the
price is that a booking at 22:00 on 30 November in Santiago (UTC-3) sits in the ``2026-12``
partition. Analysts who want local months filter on ``scheduled_start`` itself.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pyarrow as pa

MONEY = pa.decimal128(18, 2)
"""Money: 16 integer digits (COP and CLP amounts are large) and 2 fractional ones."""
TIMESTAMP = pa.timestamp("us", tz="UTC")

META_SCHEMA_VERSION = "sodtrack.schema_version"
META_DATASET = "sodtrack.dataset"
META_RUN_ID = "sodtrack.run_id"


class DatasetKind(StrEnum):
    """How a run changes a dataset; decides what ``publish`` replaces."""

    SNAPSHOT = "snapshot"
    """A run replaces its own (country, snapshot_date) partitions wholesale."""
    MERGED = "merged"
    """A run replaces the partitions it touched with merged content (bookings)."""
    LOG = "log"
    """A run adds its own files to a partition; other runs' files stay (booking_changes)."""


def _f(name: str, type_: pa.DataType, nullable: bool = False) -> pa.Field:
    return pa.field(name, type_, nullable=nullable)


_CATEGORIES = [
    _f("id", pa.string()),
    _f("name", pa.string()),
    _f("description", pa.string(), True),
    _f("parent_id", pa.string(), True),
    _f("active", pa.bool_()),
    _f("updated_at", TIMESTAMP),
    _f("extracted_at", TIMESTAMP),
]

_SERVICES = [
    _f("id", pa.string()),
    _f("category_id", pa.string()),
    _f("sku", pa.string()),
    _f("name", pa.string()),
    _f("description", pa.string(), True),
    _f("duration_minutes", pa.int32()),
    _f("base_price", MONEY),
    _f("currency", pa.string()),
    _f("requires_project", pa.bool_()),
    _f("active", pa.bool_()),
    _f("updated_at", TIMESTAMP),
    _f("extracted_at", TIMESTAMP),
]

_VARIANTS = [
    _f("id", pa.string()),
    _f("service_id", pa.string()),
    _f("sku", pa.string()),
    _f("name", pa.string()),
    _f("price", MONEY),
    _f("currency", pa.string()),
    _f("duration_minutes", pa.int32()),
    _f("active", pa.bool_()),
    _f("updated_at", TIMESTAMP),
    _f("extracted_at", TIMESTAMP),
]

_COVERAGE_ZONES = [
    _f("id", pa.string()),
    _f("name", pa.string()),
    _f("region", pa.string()),
    _f("contractor_count", pa.int32()),
    _f("postal_code_count", pa.int32()),
    _f("service_count", pa.int32()),
    _f("active", pa.bool_()),
    _f("updated_at", TIMESTAMP),
    _f("extracted_at", TIMESTAMP),
]

_COVERAGE_POSTAL_CODES = [
    _f("zone_id", pa.string()),
    _f("postal_code", pa.string()),
    _f("service_id", pa.string()),
    _f("zone_active", pa.bool_()),
    _f("extracted_at", TIMESTAMP),
]

_BOOKINGS = [
    _f("id", pa.string()),
    _f("external_reference", pa.string()),
    _f("status", pa.string()),
    _f("service_id", pa.string()),
    _f("variant_id", pa.string(), True),
    _f("zone_id", pa.string()),
    _f("contractor_id", pa.string()),
    _f("scheduled_start", TIMESTAMP),
    _f("scheduled_end", TIMESTAMP),
    _f("customer_first_name", pa.string()),
    _f("customer_last_name", pa.string()),
    _f("customer_email", pa.string(), True),
    _f("customer_phone", pa.string(), True),
    _f("customer_document_id", pa.string(), True),
    _f("address_line1", pa.string()),
    _f("address_line2", pa.string(), True),
    _f("address_city", pa.string()),
    _f("address_region", pa.string()),
    _f("address_postal_code", pa.string()),
    _f("address_country", pa.string()),
    _f("notes", pa.string(), True),
    _f("price", MONEY),
    _f("currency", pa.string()),
    _f("project_id", pa.string(), True),
    _f("stage_id", pa.string(), True),
    _f("created_at", TIMESTAMP),
    _f("updated_at", TIMESTAMP),
    _f("cancelled_reason", pa.string(), True),
    _f("extracted_at", TIMESTAMP),
]

_BOOKING_CHANGES = [*_BOOKINGS, _f("run_id", pa.string())]


@dataclass(frozen=True, slots=True)
class DatasetSpec:
    """One dataset: its schema (with version metadata), partition keys and kind."""

    name: str
    version: int
    fields: tuple[pa.Field, ...]
    partition_keys: tuple[str, ...]
    kind: DatasetKind
    description: str

    @property
    def schema(self) -> pa.Schema:
        """The file schema, with ``sodtrack.schema_version`` and ``sodtrack.dataset``."""
        return pa.schema(
            list(self.fields),
            metadata={META_SCHEMA_VERSION: str(self.version), META_DATASET: self.name},
        )

    @property
    def partition_schema(self) -> pa.Schema:
        """Hive partition keys, all strings: pass it to ``pyarrow.dataset`` to skip inference."""
        return pa.schema([pa.field(k, pa.string(), nullable=False) for k in self.partition_keys])

    def file_schema(self, run_id: str) -> pa.Schema:
        """The schema written into one file: the dataset schema plus the run that wrote it."""
        return self.schema.with_metadata(
            {
                META_SCHEMA_VERSION: str(self.version),
                META_DATASET: self.name,
                META_RUN_ID: run_id,
            }
        )


def _spec(
    name: str, fields: list[pa.Field], keys: tuple[str, ...], kind: DatasetKind, doc: str
) -> DatasetSpec:
    return DatasetSpec(name, SCHEMA_VERSION[name], tuple(fields), keys, kind, doc)


SCHEMA_VERSION: dict[str, int] = {
    "categories": 1,
    "services": 1,
    "variants": 1,
    "coverage_zones": 1,
    "coverage_postal_codes": 1,
    "bookings": 1,
    "booking_changes": 1,
}
"""Bump a dataset's version with any change of its fields (and regenerate the golden file)."""

_SNAPSHOT_KEYS = ("country", "snapshot_date")

DATASETS: dict[str, DatasetSpec] = {
    s.name: s
    for s in (
        _spec("categories", _CATEGORIES, _SNAPSHOT_KEYS, DatasetKind.SNAPSHOT, "Catalog tree."),
        _spec("services", _SERVICES, _SNAPSHOT_KEYS, DatasetKind.SNAPSHOT, "Catalog services."),
        _spec("variants", _VARIANTS, _SNAPSHOT_KEYS, DatasetKind.SNAPSHOT, "Service variants."),
        _spec(
            "coverage_zones",
            _COVERAGE_ZONES,
            _SNAPSHOT_KEYS,
            DatasetKind.SNAPSHOT,
            "Coverage zones; list fields are summarised as counts.",
        ),
        _spec(
            "coverage_postal_codes",
            _COVERAGE_POSTAL_CODES,
            _SNAPSHOT_KEYS,
            DatasetKind.SNAPSHOT,
            "One row per zone x postal code x service the zone offers.",
        ),
        _spec(
            "bookings",
            _BOOKINGS,
            ("country", "scheduled_month"),
            DatasetKind.MERGED,
            "Latest version of every booking; scheduled_month is YYYY-MM of "
            "scheduled_start in UTC.",
        ),
        _spec(
            "booking_changes",
            _BOOKING_CHANGES,
            ("country", "extraction_date"),
            DatasetKind.LOG,
            "Every version of a booking as extracted, with the run that saw it.",
        ),
    )
}


def get_spec(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except KeyError:
        raise ValueError(
            f"unknown dataset {dataset!r}: expected one of {sorted(DATASETS)}"
        ) from None


def schema_json(spec: DatasetSpec) -> str:
    """The stable golden rendering of a dataset schema (what ``schemas/arrow/*.json`` holds).

    One field per line, so that a schema change reads as a one-line diff in review.
    """
    head = {
        "dataset": spec.name,
        "schema_version": spec.version,
        "kind": str(spec.kind),
        "partition_keys": list(spec.partition_keys),
    }
    lines = [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    fields = [
        "    " + json.dumps({"name": f.name, "type": str(f.type), "nullable": f.nullable})
        for f in spec.fields
    ]
    return "{\n" + "\n".join(lines) + '\n  "fields": [\n' + ",\n".join(fields) + "\n  ]\n}\n"


def write_golden(directory: Path) -> list[Path]:
    """Regenerate the golden files (``python -m sodtrack.warehouse.schemas schemas/arrow``)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for spec in DATASETS.values():
        path = directory / f"{spec.name}.json"
        path.write_text(schema_json(spec), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for p in write_golden(Path(sys.argv[1] if len(sys.argv) > 1 else "schemas/arrow")):
        print(p)
