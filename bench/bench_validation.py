"""Benchmark: validation throughput, as the nightly gate runs it, against a bare DuckDB scan.

Builds a seeded dataset (default: ``coverage_postal_codes`` at demo size, 2,742,166 rows;
``--dataset bookings`` for the bookings suite), writes it as staged Parquet (hive
``country=/snapshot_date=`` or ``scheduled_month=`` folders, 128k-row groups like the
staging writer), then in one run:

* the anchor: a bare DuckDB scan of the same Parquet reading every column
  (``count(*)``, ``min``/``max`` of each), in rows/s;
* ours: ``ValidationSession.validate`` over the staged files read file by file
  (``sodtrack.warehouse.chunks.iter_chunks``, what ``gate.staged_chunks`` does): GX on the
  per-row expectations in memory-budgeted batches, the whole-dataset ones in one DuckDB pass;
  rows/s, the ratio to the anchor, where the time went (GX runs, DuckDB queries, the rest:
  reading, decoding and collecting), batches and peak RSS;
* with ``--compare``: the same with the old fixed 100,000-row batches, and with
  ``pandas.ArrowDtype`` for every column instead of the default conversion.

``--calibrate`` measures the peak-RSS growth of one GX run over ``--rows`` rows as a
multiple of the batch's Arrow size (what ``batching.PANDAS_EXPANSION`` states).

    uv run python bench/bench_validation.py [--dataset coverage_postal_codes] [--rows N]
        [--budget-mib 256] [--compare] [--calibrate] [--docs]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from sodtrack.contract.countries import get_country
from sodtrack.validation import ValidationSession, reference_parameters
from sodtrack.validation.batching import DEFAULT_BATCH_MEMORY, release_memory
from sodtrack.warehouse.chunks import iter_chunks
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


POSTAL_CODES_PER_ZONE = 5_000
DEMO_COVERAGE_ROWS = 2_742_166


def coverage_table(rows: int, country: str) -> pa.Table:
    """``rows`` unique (zone, postal code, service) triples, every reference resolving."""
    c = get_country(country)
    idx = np.arange(rows)
    zone = idx % ZONES
    code = 7_500_000 + (idx // ZONES) % POSTAL_CODES_PER_ZONE
    service = idx // (ZONES * POSTAL_CODES_PER_ZONE)
    if service.max(initial=0) >= SERVICES:
        raise SystemExit(f"--rows too large: at most {ZONES * POSTAL_CODES_PER_ZONE * SERVICES}")
    zone_ids = np.array([f"zone_{n:08d}" for n in range(ZONES)], dtype=object)
    service_ids = np.array([f"svc_{n:08d}" for n in range(SERVICES)], dtype=object)
    extracted = int(datetime(2027, 1, 10, 3, tzinfo=UTC).timestamp() * 1_000_000)
    columns = {
        "zone_id": pa.array(zone_ids[zone], pa.string()),
        "postal_code": pc.cast(pa.array(code), pa.string()),
        "service_id": pa.array(service_ids[service], pa.string()),
        "zone_active": pa.array(np.ones(rows, dtype=bool)),
        "extracted_at": pa.array(np.full(rows, extracted), pa.timestamp("us", tz="UTC")),
    }
    schema = get_spec("coverage_postal_codes").schema
    table = pa.table([columns[f.name] for f in schema], schema=schema)
    return table.append_column("country", pa.array([c.code] * rows)).append_column(
        "snapshot_date", pa.array(["2027-01-10"] * rows)
    )


def write_staged(table: pa.Table, root: Path, partition: str) -> ds.FileSystemDataset:
    part = ds.partitioning(
        pa.schema([("country", pa.string()), (partition, pa.string())]), flavor="hive"
    )
    ds.write_dataset(
        table,
        root,
        format="parquet",
        partitioning=part,
        max_rows_per_group=128 * 1024,
        max_rows_per_file=4 * 128 * 1024,
        file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
    )
    return ds.dataset(root, format="parquet", partitioning=part)


def duckdb_scan(root: Path, columns: list[str]) -> float:
    """Seconds for a bare DuckDB scan reading every column of the staged files."""
    import duckdb

    aggregates = ", ".join(f"min({c}), max({c})" for c in columns)
    sql = f"SELECT count(*), {aggregates} FROM read_parquet('{root}/**/*.parquet')"  # noqa: S608
    with duckdb.connect(config={"threads": 2}) as con:
        t, cpu = time.perf_counter(), time.process_time()
        con.execute(sql).fetchall()
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
        print(f"anchor CPU: {cpu:.2f} s ({rows_of(root) / cpu:,.0f} rows per CPU-second)")
        return seconds


def rows_of(root: Path) -> int:
    return int(ds.dataset(root, format="parquet").count_rows())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "--dataset", default="coverage_postal_codes", choices=["coverage_postal_codes", "bookings"]
    )
    parser.add_argument("--rows", type=int, default=None, help="default: demo size")
    parser.add_argument("--country", default="cl")
    parser.add_argument("--budget-mib", type=int, default=DEFAULT_BATCH_MEMORY >> 20)
    parser.add_argument("--compare", action="store_true", help="also 100k batches, ArrowDtype")
    parser.add_argument("--calibrate", action="store_true", help="RSS per row of one GX run")
    parser.add_argument("--docs", action="store_true", help="also build Data Docs")
    args = parser.parse_args()
    coverage = args.dataset == "coverage_postal_codes"
    rows = args.rows or (DEMO_COVERAGE_ROWS if coverage else 200_000)

    t = time.perf_counter()
    if coverage:
        table, partition = coverage_table(rows, args.country), "snapshot_date"
    else:
        table, partition = bookings_table(rows, args.country), "scheduled_month"
    built = time.perf_counter() - t
    params = reference_parameters(
        services=[f"svc_{n:08d}" for n in range(SERVICES)],
        variants=[f"var_{n:08d}" for n in range(VARIANTS)],
        zones=[f"zone_{n:08d}" for n in range(ZONES)],
    )
    t = time.perf_counter()
    import great_expectations  # noqa: F401  (import cost reported apart)

    imported = time.perf_counter() - t
    work = Path(tempfile.mkdtemp(prefix="sodtrack-bench-validation-"))
    try:
        staged = write_staged(table, work / "staged", partition)
        columns = [n for n in table.column_names if n not in ("country", partition)]
        arrow_mib = table.nbytes / 2**20
        if args.calibrate:
            return calibrate(table, args.dataset, args.country, params)
        del table
        print(
            f"{args.dataset}: rows={rows:,} ({arrow_mib:.0f} MiB in Arrow) country={args.country} "
            f"load={os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        )
        print(f"build table: {built:.2f} s   import great_expectations: {imported:.2f} s")
        scan = duckdb_scan(work / "staged", columns)
        print(
            f"anchor, bare DuckDB scan of the staged Parquet: {scan:.2f} s, "
            f"{rows / scan:,.0f} rows/s"
        )
        docs_dir = work / "docs" if args.docs else None
        session = ValidationSession("bench", docs_dir=docs_dir, batch_memory=args.budget_mib << 20)
        runs: list[tuple[str, int | None, bool]] = [(f"budget {args.budget_mib} MiB", None, False)]
        if args.compare:
            runs += [("fixed 100,000-row batches", 100_000, False),
                     (f"budget {args.budget_mib} MiB, ArrowDtype", None, True)]  # fmt: skip
        ok = True
        for label, batch_rows, arrow in runs:
            session.arrow_dtypes = arrow
            release_memory()
            t, cpu = time.perf_counter(), time.process_time()
            outcome = session.validate(
                args.dataset,
                iter_chunks(staged),
                country=args.country,
                parameters=params,
                previous_row_count=rows,
                batch_rows=batch_rows,
            )
            seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
            ok = ok and outcome.success
            rest = seconds - outcome.gx_seconds - outcome.whole_dataset_seconds
            print(
                f"ours ({label}): {seconds:.2f} s wall, {cpu:.2f} s CPU, "
                f"{outcome.row_count / seconds:,.0f} rows/s = {scan / seconds:.3f} x the anchor "
                f"({outcome.row_count / cpu:,.0f} rows per CPU-second); "
                f"{outcome.batches} GX runs ({outcome.gx_seconds:.2f} s), whole-dataset "
                f"DuckDB queries {outcome.whole_dataset_seconds:.2f} s, reading + collecting "
                f"{rest:.2f} s; success={outcome.success} "
                f"critical={len(outcome.critical_failures)} warnings={len(outcome.warnings)}; "
                f"peak RSS so far {_peak_mib():.0f} MiB"
            )
        if docs_dir is not None:
            t = time.perf_counter()
            index = session.build_docs()
            print(f"data docs: {time.perf_counter() - t:.2f} s -> {index}")
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def calibrate(table: pa.Table, dataset: str, country: str, params: dict[str, Any]) -> int:
    """Peak-RSS growth of one GX run as a multiple of the batch's Arrow bytes."""
    session = ValidationSession("calibrate")
    small = table.slice(0, 1_000)
    session.validate(dataset, small, country=country, parameters=params, batch_rows=1_000)
    release_memory()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    current = psutil.Process().memory_info().rss
    session.validate(dataset, table, country=country, parameters=params, batch_rows=table.num_rows)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    grown = peak - max(current, 0)
    print(
        f"calibrate {dataset}: {table.num_rows:,} rows, Arrow {table.nbytes / 2**20:.0f} MiB, "
        f"peak RSS grew {grown / 2**20:.0f} MiB during one GX run (from {current / 2**20:.0f} "
        f"MiB; earlier peak {before / 2**20:.0f} MiB) = {grown / table.nbytes:.2f} x the Arrow size"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
