"""Pages of API models → Arrow record batches with the dataset's explicit schema.

Speed matters (a full bookings extraction is ~1M records): each converter builds one Python
list per column with a comprehension over the page, then hands the lists to
``pa.record_batch(..., schema=)`` so Arrow converts each column in C, typed by the schema, never
inferring. Nothing here goes through pandas.

Money: ``Decimal`` values go straight into ``decimal128(18, 2)``. Arrow rescales exactly and
refuses any value that would lose digits (``1.005``), which is the behaviour of
``Decimal.quantize(Decimal("0.01"))`` with ``Inexact`` trapped: a value is stored exactly or the
page is rejected with the offending record named. Floats never appear.

Timestamps: aware ``datetime``s (the models' ``Timestamp``) are converted to UTC by Arrow.
A naive datetime would be taken as UTC wall time; the contract models refuse naive values, so
converters do not re-check each one.

Bulk reads of bookings skip the models: :func:`bookings_decoder` reads each page's JSON
straight into Arrow (:mod:`sodtrack.client.bulk`), with :func:`bookings_batch` as its model
path; :func:`with_extracted_at` completes such a batch.

The converters accept any objects with the models' attributes (``model_construct`` instances,
dataclasses), which is how the benchmark feeds them without validation cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from sodtrack.client.bulk import ArrowPageDecoder
from sodtrack.contract.models import Booking, Category, CoverageZone, Service, Variant
from sodtrack.errors import WarehouseError
from sodtrack.warehouse.schemas import DATASETS, MONEY, TIMESTAMP, DatasetSpec


class ConversionError(WarehouseError, ValueError):
    """A record cannot be stored exactly (e.g. money with more than two decimals)."""


def _constant_ts(value: datetime, n: int) -> pa.Array:
    return pa.repeat(pa.scalar(value, type=TIMESTAMP), n)


def _money(values: list[Decimal], ids: Sequence[str], column: str) -> pa.Array:
    try:
        return pa.array(values, type=MONEY)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        # Find the culprit only on the failure path, to name it in the error.
        for rid, value in zip(ids, values, strict=True):
            try:
                pa.array([value], type=MONEY)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                raise ConversionError(
                    f"{column} of {rid!r} is {value!r}: not exactly representable as "
                    f"{MONEY} ({exc})"
                ) from exc
        raise ConversionError(f"{column}: {exc}") from exc


def _batch(spec: DatasetSpec, columns: list[Any]) -> pa.RecordBatch:
    return pa.record_batch(columns, schema=spec.schema)


def categories_batch(page: Sequence[Category], extracted_at: datetime) -> pa.RecordBatch:
    return _batch(
        DATASETS["categories"],
        [
            [r.id for r in page],
            [r.name for r in page],
            [r.description for r in page],
            [r.parent_id for r in page],
            [r.active for r in page],
            [r.updated_at for r in page],
            _constant_ts(extracted_at, len(page)),
        ],
    )


def services_batch(page: Sequence[Service], extracted_at: datetime) -> pa.RecordBatch:
    ids = [r.id for r in page]
    return _batch(
        DATASETS["services"],
        [
            ids,
            [r.category_id for r in page],
            [r.sku for r in page],
            [r.name for r in page],
            [r.description for r in page],
            [r.duration_minutes for r in page],
            _money([r.base_price for r in page], ids, "base_price"),
            [r.currency for r in page],
            [r.requires_project for r in page],
            [r.active for r in page],
            [r.updated_at for r in page],
            _constant_ts(extracted_at, len(page)),
        ],
    )


def variants_batch(page: Sequence[Variant], extracted_at: datetime) -> pa.RecordBatch:
    ids = [r.id for r in page]
    return _batch(
        DATASETS["variants"],
        [
            ids,
            [r.service_id for r in page],
            [r.sku for r in page],
            [r.name for r in page],
            _money([r.price for r in page], ids, "price"),
            [r.currency for r in page],
            [r.duration_minutes for r in page],
            [r.active for r in page],
            [r.updated_at for r in page],
            _constant_ts(extracted_at, len(page)),
        ],
    )


def coverage_zones_batch(page: Sequence[CoverageZone], extracted_at: datetime) -> pa.RecordBatch:
    return _batch(
        DATASETS["coverage_zones"],
        [
            [r.id for r in page],
            [r.name for r in page],
            [r.region for r in page],
            [r.contractor_count for r in page],
            [len(r.postal_codes) for r in page],
            [len(r.service_ids) for r in page],
            [r.active for r in page],
            [r.updated_at for r in page],
            _constant_ts(extracted_at, len(page)),
        ],
    )


def coverage_postal_codes_batch(
    page: Sequence[CoverageZone], extracted_at: datetime
) -> pa.RecordBatch:
    """Explode zones to one row per (zone, postal code, service), ordered in that nesting.

    A zone with no postal codes or no services contributes no rows (it still appears in
    ``coverage_zones`` with its counts). The cross product is built with list repetition, not
    a Python loop per row: zones × codes × services reaches millions of rows.
    """
    zone_ids: list[str] = []
    codes: list[str] = []
    services: list[str] = []
    active: list[bool] = []
    for z in page:
        n_codes, n_services = len(z.postal_codes), len(z.service_ids)
        n = n_codes * n_services
        if n == 0:
            continue
        zone_ids.extend(itertools.repeat(z.id, n))
        codes.extend(
            itertools.chain.from_iterable(itertools.repeat(c, n_services) for c in z.postal_codes)
        )
        services.extend(z.service_ids * n_codes)
        active.extend(itertools.repeat(z.active, n))
    return _batch(
        DATASETS["coverage_postal_codes"],
        [zone_ids, codes, services, active, _constant_ts(extracted_at, len(zone_ids))],
    )


def bookings_batch(page: Sequence[Booking], extracted_at: datetime) -> pa.RecordBatch:
    """Flatten bookings: ``customer.*`` → ``customer_*``, ``address.*`` → ``address_*``."""
    ids = [r.id for r in page]
    customers = [r.customer for r in page]
    addresses = [r.address for r in page]
    return _batch(
        DATASETS["bookings"],
        [
            ids,
            [r.external_reference for r in page],
            [str(r.status) for r in page],
            [r.service_id for r in page],
            [r.variant_id for r in page],
            [r.zone_id for r in page],
            [r.contractor_id for r in page],
            [r.scheduled_start for r in page],
            [r.scheduled_end for r in page],
            [c.first_name for c in customers],
            [c.last_name for c in customers],
            [c.email for c in customers],
            [c.phone for c in customers],
            [c.document_id for c in customers],
            [a.line1 for a in addresses],
            [a.line2 for a in addresses],
            [a.city for a in addresses],
            [a.region for a in addresses],
            [a.postal_code for a in addresses],
            [a.country for a in addresses],
            [r.notes for r in page],
            _money([r.price for r in page], ids, "price"),
            [r.currency for r in page],
            [r.project_id for r in page],
            [r.stage_id for r in page],
            [r.created_at for r in page],
            [r.updated_at for r in page],
            [r.cancelled_reason for r in page],
            _constant_ts(extracted_at, len(page)),
        ],
    )


BOOKINGS_WIRE_SCHEMA = DATASETS["bookings"].schema.remove(
    DATASETS["bookings"].schema.get_field_index("extracted_at")
)
"""The ``bookings`` columns that come from the API (all but ``extracted_at``)."""


def _bookings_wire_batch(page: Sequence[Booking]) -> pa.RecordBatch:
    batch = bookings_batch(page, datetime.fromtimestamp(0, UTC))
    return batch.drop_columns(["extracted_at"])


def bookings_decoder() -> ArrowPageDecoder[Booking]:
    """Bulk reads of ``GET /bookings``: JSON pages → batches of :data:`BOOKINGS_WIRE_SCHEMA`;
    pages the fast path cannot vouch for go through the models and :func:`bookings_batch`
    (so a price Arrow cannot hold exactly is a :class:`ConversionError`, as ever)."""
    return ArrowPageDecoder(Booking, BOOKINGS_WIRE_SCHEMA, _bookings_wire_batch)


def with_extracted_at(batch: pa.RecordBatch, extracted_at: datetime) -> pa.RecordBatch:
    """A :data:`BOOKINGS_WIRE_SCHEMA` batch with its ``extracted_at`` column appended."""
    return pa.record_batch(
        [*batch.columns, _constant_ts(extracted_at, batch.num_rows)],
        schema=DATASETS["bookings"].schema,
    )


def booking_changes_batch(bookings: pa.RecordBatch, run_id: str) -> pa.RecordBatch:
    """A ``bookings`` batch plus the ``run_id`` column: the ``booking_changes`` shape."""
    spec = DATASETS["booking_changes"]
    columns = [*bookings.columns, pa.repeat(pa.scalar(run_id, pa.string()), bookings.num_rows)]
    return pa.record_batch(columns, schema=spec.schema)


def scheduled_month(batch: pa.RecordBatch | pa.Table) -> pa.Array | pa.ChunkedArray:
    """The ``bookings`` partition key: ``YYYY-MM`` of ``scheduled_start`` in UTC."""
    return pc.strftime(batch.column("scheduled_start"), format="%Y-%m")


Converter = Callable[[Sequence[Any], datetime], pa.RecordBatch]

CONVERTERS: dict[str, Converter] = {
    "categories": categories_batch,
    "services": services_batch,
    "variants": variants_batch,
    "coverage_zones": coverage_zones_batch,
    "coverage_postal_codes": coverage_postal_codes_batch,
    "bookings": bookings_batch,
}
"""Model page → batch, per dataset (``booking_changes`` derives from ``bookings``)."""


def to_batch(dataset: str, page: Sequence[Any], extracted_at: datetime) -> pa.RecordBatch:
    try:
        convert = CONVERTERS[dataset]
    except KeyError:
        raise ValueError(f"no model converter for dataset {dataset!r}") from None
    return convert(page, extracted_at)
