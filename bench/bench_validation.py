"""Benchmark: the bookings suite on 200,000 rows, validated in chunks (one per scheduled month).

Builds a clean bookings table vectorised (typed by the warehouse schema, money as
``decimal128(18, 2)``, UTC timestamps), splits it by ``scheduled_month`` like the staged
partitions, and validates it with ``validate_dataset`` (chunked: per-chunk GX runs,
cross-chunk key uniqueness and row count computed by the runner). Prints the GX import time,
the validation seconds, rows per second, seconds per chunk, the Data Docs build time and the
process's peak RSS (``resource.getrusage``; ``ru_maxrss`` is KiB on Linux).

    uv run python bench/bench_validation.py [--rows 200000] [--batch-rows 100000|0] [--single]
        [--docs] [--country cl]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sodtrack.contract.countries import get_country
from sodtrack.validation import ValidationSession, reference_parameters
from sodtrack.warehouse.schemas import get_spec

SERVICES = 200
VARIANTS = 600
ZONES = 60
STATUSES = ["scheduled", "confirmed", "in_progress", "completed", "cancelled"]


def _strings(prefix: str, numbers: np.ndarray) -> pa.Array:
    return pa.array([f"{prefix}{n:08d}" for n in numbers.tolist()], pa.string())


def bookings_table(rows: int, country: str, seed: int = 7) -> pa.Table:
    c = get_country(country)
    rng = np.random.default_rng(seed)
    idx = np.arange(rows)
    t0 = int(datetime(2026, 1, 5, 11, tzinfo=UTC).timestamp() * 1_000_000)
    hour = 3_600_000_000
    start = t0 + rng.integers(0, 365 * 24, rows) * hour
    duration = rng.choice([60, 90, 120, 180, 240], rows) * 60_000_000
    created = start - rng.integers(2, 90 * 24, rows) * hour
    updated = created + rng.integers(0, 48, rows) * hour
    extracted = int(datetime(2027, 1, 10, 3, tzinfo=UTC).timestamp() * 1_000_000)
    service = rng.integers(0, SERVICES, rows)
    has_variant = rng.random(rows) < 0.6
    variant = rng.integers(0, VARIANTS, rows)
    cents = rng.integers(1_000, 2_000_000, rows) * (1 if c.minor_units else 100)
    prices = [Decimal(int(v)).scaleb(-2) for v in cents.tolist()]
    codes = [c.postal_code_example, c.postal_code_example]
    ts = pa.timestamp("us", tz="UTC")
    columns = {
        "id": _strings("bkg_", idx),
        "external_reference": _strings("OPS-", idx),
        "status": pa.array(np.array(STATUSES)[idx % len(STATUSES)]),
        "service_id": _strings("svc_", service),
        "variant_id": pa.array(
            [f"var_{v:08d}" if h else None for v, h in zip(variant, has_variant, strict=True)]
        ),
        "zone_id": _strings("zone_", rng.integers(0, ZONES, rows)),
        "contractor_id": _strings("ctr_", rng.integers(0, 500, rows)),
        "scheduled_start": pa.array(start, ts),
        "scheduled_end": pa.array(start + duration, ts),
        "customer_first_name": pa.array(["Ana"] * rows),
        "customer_last_name": pa.array(["Rojas"] * rows),
        "customer_email": pa.array([f"c{n}@example.com" for n in idx.tolist()]),
        "customer_phone": pa.array([f"{c.phone_prefix}9{n:08d}" for n in idx.tolist()]),
        "customer_document_id": pa.nulls(rows, pa.string()),
        "address_line1": pa.array(["Av. Providencia 1234"] * rows),
        "address_line2": pa.nulls(rows, pa.string()),
        "address_city": pa.array(["Santiago"] * rows),
        "address_region": pa.array(["RM"] * rows),
        "address_postal_code": pa.array([codes[n % 2] for n in idx.tolist()]),
        "address_country": pa.array([c.code] * rows),
        "notes": pa.nulls(rows, pa.string()),
        "price": pa.array(prices, pa.decimal128(18, 2)),
        "currency": pa.array([c.currency] * rows),
        "project_id": pa.nulls(rows, pa.string()),
        "stage_id": pa.nulls(rows, pa.string()),
        "created_at": pa.array(created, ts),
        "updated_at": pa.array(updated, ts),
        "cancelled_reason": pa.nulls(rows, pa.string()),
        "extracted_at": pa.array(np.full(rows, extracted), ts),
    }
    schema = get_spec("bookings").schema
    table = pa.table([columns[f.name] for f in schema], schema=schema)
    month = pc.strftime(table.column("scheduled_start"), format="%Y-%m")
    return table.append_column("country", pa.array([c.code] * rows)).append_column(
        "scheduled_month", month
    )


def by_month(table: pa.Table) -> list[pa.Table]:
    months = sorted(pc.unique(table.column("scheduled_month")).to_pylist())
    return [table.filter(pc.equal(table.column("scheduled_month"), m)) for m in months]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--country", default="cl")
    parser.add_argument(
        "--batch-rows", type=int, default=100_000, help="rows per GX run (0: one run per chunk)"
    )
    parser.add_argument("--single", action="store_true", help="also validate as one table")
    parser.add_argument("--docs", action="store_true", help="also build Data Docs")
    args = parser.parse_args()

    t = time.perf_counter()
    table = bookings_table(args.rows, args.country)
    chunks = by_month(table)
    built = time.perf_counter() - t
    params = reference_parameters(
        services=[f"svc_{n:08d}" for n in range(SERVICES)],
        variants=[f"var_{n:08d}" for n in range(VARIANTS)],
        zones=[f"zone_{n:08d}" for n in range(ZONES)],
    )
    t = time.perf_counter()
    import great_expectations  # noqa: F401  (import cost reported apart)

    imported = time.perf_counter() - t
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    docs_dir = Path(tempfile.mkdtemp(prefix="sodtrack-bench-docs-")) if args.docs else None
    session = ValidationSession("bench", docs_dir=docs_dir)
    t, cpu = time.perf_counter(), time.process_time()
    outcome = session.validate(
        "bookings",
        iter(chunks),
        country=args.country,
        parameters=params,
        previous_row_count=args.rows,
        batch_rows=args.batch_rows or None,
    )
    seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    print(
        f"rows={outcome.row_count} chunks={outcome.chunks} (months) batches={outcome.batches} "
        f"country={args.country} load={os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    print(f"build table: {built:.2f} s   import great_expectations: {imported:.2f} s")
    print(
        f"validation (chunked, {len(outcome.results)} expectations): {seconds:.2f} s wall, "
        f"{cpu:.2f} s CPU, {outcome.row_count / seconds:,.0f} rows/s, "
        f"{seconds / outcome.batches:.2f} s per GX run"
    )
    print(
        f"success={outcome.success} critical={len(outcome.critical_failures)} "
        f"warnings={len(outcome.warnings)}"
    )
    if args.single:
        t, cpu = time.perf_counter(), time.process_time()
        single = session.validate(
            "bookings",
            table,
            country=args.country,
            parameters=params,
            previous_row_count=args.rows,
            batch_rows=None,
        )
        print(
            f"validation (one table, one GX run): {time.perf_counter() - t:.2f} s wall, "
            f"{time.process_time() - cpu:.2f} s CPU, success={single.success}"
        )
    if docs_dir is not None:
        t = time.perf_counter()
        index = session.build_docs()
        print(f"data docs: {time.perf_counter() - t:.2f} s -> {index}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"peak RSS: {rss_before:.0f} MiB before validating (GX imported, Arrow table of "
        f"{table.nbytes / 2**20:.0f} MiB built), {peak:.0f} MiB at the end"
    )
    return 0 if outcome.success else 1


if __name__ == "__main__":
    sys.exit(main())
