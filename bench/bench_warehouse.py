"""Benchmark of the bookings path: pages of models → changes log → merge → publish.

Each size runs in its own process (peak RSS is per process): an initial load of N bookings,
then an incremental run touching 5% of them (a third rescheduled to another month, a tenth
seen twice during the walk) plus 1% new ones. Records are ``Booking.model_construct``
instances in pages of 1,000, generated lazily, so the benchmark holds one page at a time like
the real client; generation time is reported apart from ours.

    uv run python bench/bench_warehouse.py                 # 200k and 1M, compared
    uv run python bench/bench_warehouse.py --sizes 50000   # quick look
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

PAGE = 1000
MONTHS = 24
BASE = datetime(2025, 1, 1, tzinfo=UTC)


def _rss_mib() -> float:
    # ru_maxrss is in KiB on Linux: the peak of this process so far.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _pages(ids: Iterator[int], updated: datetime, shift_every: int = 0) -> Iterator[list[Any]]:
    from sodtrack.contract.models import Address, Booking, BookingStatus, Customer

    prices = [Decimal(p) for p in ("45990", "149.90", "89990", "1200.50", "0.99")]
    statuses = list(BookingStatus)
    page: list[Any] = []
    for n, i in enumerate(ids):
        month = i % MONTHS + (7 if shift_every and n % shift_every == 0 else 0)
        start = BASE + timedelta(days=30.4 * month + i % 28, hours=8 + i % 10)
        page.append(
            Booking.model_construct(
                id=f"bkg_{i:09d}",
                external_reference=f"OPS-{i:09d}",
                status=statuses[i % len(statuses)],
                service_id=f"svc_{i % 300:04d}",
                variant_id=None if i % 3 else f"var_{i % 900:04d}",
                zone_id=f"zone_{i % 40:03d}",
                contractor_id=f"ctr_{i % 500:04d}",
                scheduled_start=start,
                scheduled_end=start + timedelta(hours=2),
                customer=Customer.model_construct(
                    first_name="Ana",
                    last_name=f"Rojas {i % 1000}",
                    email=f"c{i}@example.com",
                    phone=None if i % 2 else "+56912345678",
                    document_id=None,
                ),
                address=Address.model_construct(
                    line1=f"Av. Providencia {i % 5000}",
                    line2=None,
                    city="Santiago",
                    region="RM",
                    postal_code=f"{7500000 + i % 9999:07d}",
                    country="cl",
                ),
                notes=None if i % 4 else "Call before arriving",
                price=prices[i % len(prices)],
                currency="CLP",
                project_id=None,
                stage_id=None,
                created_at=BASE,
                updated_at=updated + timedelta(microseconds=n),
                cancelled_reason=None,
            )
        )
        if len(page) == PAGE:
            yield page
            page = []
    if page:
        yield page


def _run(wh: Any, run_id: str, pages: Iterator[list[Any]], at: datetime) -> dict[str, Any]:
    from sodtrack.warehouse.bookings import BookingsRun

    nightly = BookingsRun(wh, "cl", run_id, extracted_at=at, memory_limit="256MB", threads=2)
    gen = convert = 0.0
    t = time.perf_counter()
    while True:
        try:
            page = next(pages)
        except StopIteration:
            break
        t1 = time.perf_counter()
        gen += t1 - t
        nightly.add_page(page)
        t = time.perf_counter()
        convert += t - t1
    rss_stream = _rss_mib()
    t0 = time.perf_counter()
    result = nightly.finish()
    merge = time.perf_counter() - t0
    t0 = time.perf_counter()
    wh.publish("bookings", run_id)
    wh.publish("booking_changes", run_id)
    publish = time.perf_counter() - t0
    ours = convert + merge + publish
    return {
        "received": result.received,
        "written": result.rows_written,
        "bookings_total": result.bookings_total,
        "partitions_touched": len(result.partitions_touched),
        "moved": result.moved_ids,
        "gen_s": round(gen, 2),
        "convert_stream_s": round(convert, 2),
        "merge_s": round(merge, 2),
        "publish_s": round(publish, 2),
        "records_per_s": round(result.received / ours) if ours else 0,
        "rss_after_stream_mib": round(rss_stream),
        "peak_rss_mib": round(_rss_mib()),
    }


def child(n: int, root: Path) -> dict[str, Any]:
    from sodtrack.warehouse import Warehouse

    rss_imports = _rss_mib()
    wh = Warehouse(root, durable=True)
    initial = _run(wh, "initial", _pages(iter(range(n)), BASE + timedelta(days=800)), BASE)
    changed = n // 20
    ids = [*range(0, n, n // changed)][:changed]
    ids += ids[: changed // 10]  # seen twice during the cursor walk
    ids += range(n, n + n // 100)  # new bookings
    incremental = _run(
        wh,
        "incremental",
        _pages(iter(ids), BASE + timedelta(days=801), shift_every=3),
        BASE + timedelta(days=801),
    )
    size = sum(f.stat().st_size for f in root.rglob("*.parquet")) / 2**20
    return {
        "n": n,
        "rss_after_imports_mib": round(rss_imports),
        "initial": initial,
        "incremental": incremental,
        "warehouse_mib_on_disk": round(size),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.root)))
        return
    results = []
    for n in args.sizes:
        root = Path(tempfile.mkdtemp(prefix="bench-warehouse-"))
        try:
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(n), "--root", str(root / "wh")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
        finally:
            shutil.rmtree(root, ignore_errors=True)
        results.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{'run':<24}{'records':>10}{'rec/s':>10}{'convert':>9}{'merge':>8}{'publish':>9}"
          f"{'peak RSS':>10}")  # fmt: skip
    for r in results:
        for phase in ("initial", "incremental"):
            p = r[phase]
            print(
                f"{r['n']:>9,} {phase:<14}{p['received']:>10,}{p['records_per_s']:>10,}"
                f"{p['convert_stream_s']:>8}s{p['merge_s']:>7}s{p['publish_s']:>8}s"
                f"{p['peak_rss_mib']:>7} MiB"
            )
    for r in results:
        print(
            f"n={r['n']:,}: RSS after imports {r['rss_after_imports_mib']} MiB, "
            f"after streaming {r['initial']['rss_after_stream_mib']} MiB, "
            f"peak {r['incremental']['peak_rss_mib']} MiB; "
            f"on disk {r['warehouse_mib_on_disk']} MiB; "
            f"model generation (not ours) {r['initial']['gen_s']}s"
        )
    if len(results) >= 2:
        small, big = results[0], results[-1]
        growth = big["incremental"]["peak_rss_mib"] / small["incremental"]["peak_rss_mib"]
        print(
            f"records x{big['n'] / small['n']:.1f} -> peak RSS x{growth:.2f} "
            "(bounded: does not grow with the number of bookings)"
        )
    print(json.dumps(results, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
