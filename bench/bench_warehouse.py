"""Benchmark of the bookings path: pages of models → changes log → merge → publish.

Each size runs in its own process (peak RSS is per process): an initial load of N bookings,
then an incremental run touching 5% of them (a third rescheduled to another month, a tenth
seen twice during the walk) plus 1% new ones. Records are ``Booking.model_construct``
instances in pages of 1,000, generated lazily, so the benchmark holds one page at a time like
the real client; generation time is reported apart from ours.

    uv run python bench/bench_warehouse.py                 # 200k and 1M, compared
    uv run python bench/bench_warehouse.py --sizes 50000   # quick look
    uv run python bench/bench_warehouse.py --storage s3    # on moto's S3 server (loopback)
    uv run python bench/bench_warehouse.py --merge         # + a Delta MERGE of the same changes

Every dataset is a Delta table (issue 13). ``--merge`` applies the incremental run's changes a
second time as a Delta ``MERGE`` (``when_matched_update_all`` where the incoming row is not
older, ``when_not_matched_insert_all``), for comparison with the replace-where of the touched
months that ``publish`` does. With ``--storage s3`` the moto server's request log is counted:
object-store requests per run.

Figures of the layout before Delta (``current`` symlink + hard links), measured with this
script at commit e53eb57 on this 2-vCPU machine shared with other jobs (so slow; compare the
ratios), ``python bench/bench_warehouse.py --sizes 200000 1000000``::

    run                        records     rec/s  convert   merge  publish  peak RSS
      200,000 initial          200,000    12,056    11.5s   4.89s    0.19s    472 MiB
      200,000 incremental       13,000     4,559    0.28s   2.36s    0.21s    472 MiB
    1,000,000 initial        1,000,000     3,209  132.48s 179.02s    0.18s    527 MiB
    1,000,000 incremental       65,000     4,126     2.7s  12.82s    0.24s    527 MiB

Delta tables, local disk, same machine (also shared), ``--sizes 200000 1000000 --merge``::

    run                        records     rec/s  convert   merge  publish  peak RSS
      200,000 initial          200,000     6,178   19.28s  10.83s    2.27s    585 MiB
      200,000 incremental       13,000     3,834    0.27s   1.72s    1.39s    586 MiB
    1,000,000 initial        1,000,000    10,501   39.43s  43.78s   12.02s   1204 MiB
    1,000,000 incremental       65,000    10,212    0.59s   2.95s    2.83s   1204 MiB
    n=200,000:   Delta MERGE of the same changes 1.42s (+1.54s to prepare the source);
                 replace-where (merge + publish) 3.11s
    n=1,000,000: Delta MERGE of the same changes 5.56s (+4.44s to prepare the source);
                 replace-where (merge + publish) 5.78s
    records x5.0 -> peak RSS x2.05

Delta tables on moto's S3 server (loopback), ``--sizes 200000 --storage s3 --merge``::

      200,000 initial          200,000    34,962    1.94s   1.96s    1.81s    590 MiB
      200,000 incremental       13,000     5,130    0.08s   1.48s    0.98s    592 MiB
    n=200,000: Delta MERGE of the same changes 0.92s (+0.53s to prepare the source);
               replace-where (merge + publish) 2.46s
    n=200,000: S3 requests per run {'initial': 68, 'incremental': 174, 'merge': 112}

and ``--sizes 1000000 --storage s3`` (a quieter moment of the machine)::

    1,000,000 initial        1,000,000    58,130     8.6s   5.78s    2.82s   1248 MiB
    1,000,000 incremental       65,000    20,957    0.29s   1.67s    1.14s   1248 MiB
    n=1,000,000: S3 requests per run {'initial': 71, 'incremental': 200}

(incremental: the base month files are downloaded for the DuckDB merge, then one commit;
requests counted from moto's request log between the bench's marks.)

Read: the publish is now a real write (delta-rs rewrites the staged rows into the table:
2.3 s at 200k, 12 s at 1M initial; the old publish only linked files, 0.2 s); the
incremental publish is 1.4-2.8 s. Peak RSS grows with the initial load (1.2 GiB at 1M, where
the old layout stayed at ~0.5 GiB): not bounded yet. The cause, measured later (a standalone
``write_deltalake`` of a RecordBatchReader, 23 columns): its writer holds what it writes,
unpartitioned too and whatever ``WriterProperties``/``target_file_size`` (100k rows 486 MiB,
400k 981 MiB, 800k 1,691 MiB peak, against 261 MiB just draining the reader). ``publish`` now
commits the staged files themselves (add/remove actions, no rewrite); the figures above are
from before that change and were not re-run here (see docs/benchmarks.md for the run's
figures after it). The two tables were
measured in different runs under different load from other jobs: compare within a table.
MERGE and replace-where cost the same at 1M (5.6 s vs 5.8 s, and MERGE's source
preparation comes on top), so the replace-where of the touched months stays: it keeps the
bounded DuckDB merge, its stale-version guard and the changes log in one pass.
"""

from __future__ import annotations

import argparse
import json
import os
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


def _mark(label: str) -> None:
    """A request the S3 server logs: splits its request log per run (``--storage s3``)."""
    import os

    import httpx

    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        httpx.get(f"{endpoint}/moto-api/", params={"bench-mark": label})


def _merge_run(wh: Any, pages: Iterator[list[Any]], at: datetime) -> dict[str, Any]:
    """The same changes as a Delta MERGE on (country, id): the alternative to replace-where."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from sodtrack.warehouse.convert import bookings_batch, scheduled_month

    t0 = time.perf_counter()
    batches = [bookings_batch(page, at) for page in pages]
    source = pa.Table.from_batches(batches)
    source = source.append_column("country", pa.array(["cl"] * source.num_rows))
    source = source.append_column("scheduled_month", scheduled_month(source))
    # newest version per id (the walk may return an id twice)
    order = pc.sort_indices(source, [("id", "ascending"), ("updated_at", "descending")])
    source = source.take(order)
    ids = source["id"].to_pylist()
    keep = [i == 0 or ids[i] != ids[i - 1] for i in range(len(ids))]
    source = source.filter(pa.array(keep))
    prepared = time.perf_counter() - t0
    t0 = time.perf_counter()
    dt = DeltaTable(wh.table_uri("bookings"), storage_options=wh.storage_options or None)
    metrics = (
        dt.merge(
            source,
            predicate="t.country = s.country AND t.id = s.id",
            source_alias="s",
            target_alias="t",
        )
        .when_matched_update_all(predicate="s.updated_at >= t.updated_at")
        .when_not_matched_insert_all()
        .execute()
    )
    return {
        "received": source.num_rows,
        "prepare_s": round(prepared, 2),
        "merge_commit_s": round(time.perf_counter() - t0, 2),
        "files_added": metrics.get("num_target_files_added"),
        "files_removed": metrics.get("num_target_files_removed"),
        "peak_rss_mib": round(_rss_mib()),
    }


def _run(wh: Any, run_id: str, pages: Iterator[list[Any]], at: datetime) -> dict[str, Any]:
    from sodtrack.warehouse.bookings import BookingsRun

    nightly = BookingsRun(wh, "cl", run_id, extracted_at=at)
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


def child(n: int, root: str, merge: bool = False) -> dict[str, Any]:
    from sodtrack.warehouse import Warehouse

    rss_imports = _rss_mib()
    wh = Warehouse(root, scratch=Path(tempfile.mkdtemp(prefix="bench-scratch-")), durable=True)
    _mark("initial-start")
    initial = _run(wh, "initial", _pages(iter(range(n)), BASE + timedelta(days=800)), BASE)
    _mark("initial-end")
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
    _mark("incremental-end")
    out: dict[str, Any] = {
        "n": n,
        "rss_after_imports_mib": round(rss_imports),
        "initial": initial,
        "incremental": incremental,
    }
    if merge:
        out["merge"] = _merge_run(
            wh,
            _pages(iter(ids), BASE + timedelta(days=802), shift_every=3),
            BASE + timedelta(days=802),
        )
        _mark("merge-end")
    if "://" not in root:
        size = sum(f.stat().st_size for f in Path(root).rglob("*.parquet")) / 2**20
        out["warehouse_mib_on_disk"] = round(size)
    return out


def _requests_per_run(log: str) -> dict[str, int]:
    """Requests in the S3 server's log between the bench's marks (marks excluded)."""
    counts: dict[str, int] = {}
    phase = None
    for line in log.splitlines():
        if "bench-mark=" in line:
            label = line.split("bench-mark=", 1)[1].split()[0].split("&")[0]
            phase = {"initial-start": "initial", "initial-end": "incremental"}.get(label, "merge")
            if label == "incremental-end":
                phase = "merge"
            continue
        if phase is not None and '"' in line and " HTTP/1.1" in line:
            counts[phase] = counts.get(phase, 0) + 1
    return counts


def _start_s3(root: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """moto's standalone server on loopback, its request log in ``root/s3.log``."""
    import socket

    import boto3  # type: ignore[import-untyped]
    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (root / "s3.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=log,
    )
    endpoint = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            httpx.get(f"{endpoint}/moto-api/", timeout=1)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    env.update(
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto accepts any
        AWS_REGION="us-east-1",
        AWS_ENDPOINT_URL=endpoint,
        AWS_ALLOW_HTTP="true",
    )
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="bench",
        aws_secret_access_key="bench",  # noqa: S106
        region_name="us-east-1",
    ).create_bucket(Bucket="bench-warehouse")
    return server, "s3://bench-warehouse/wh"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--storage", choices=["local", "s3"], default="local")
    parser.add_argument("--merge", action="store_true", help="also time a Delta MERGE")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.root, args.merge)))
        return
    results = []
    for n in args.sizes:
        root = Path(tempfile.mkdtemp(prefix="bench-warehouse-"))
        env = dict(os.environ)
        server = None
        target = str(root / "wh")
        try:
            if args.storage == "s3":
                server, target = _start_s3(root, env)
            cmd = [sys.executable, __file__, "--child", str(n), "--root", target]
            out = subprocess.run(
                [*cmd, *(["--merge"] if args.merge else [])],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
        finally:
            if server is not None:
                server.terminate()
                server.wait()
            log = (root / "s3.log").read_text() if (root / "s3.log").exists() else ""
            shutil.rmtree(root, ignore_errors=True)
        result = json.loads(out.strip().splitlines()[-1])
        if log:
            result["s3_requests"] = _requests_per_run(log)
        results.append(result)
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
        if "merge" in r:
            m, inc = r["merge"], r["incremental"]
            print(
                f"n={r['n']:,}: Delta MERGE of the same changes {m['merge_commit_s']}s "
                f"(+{m['prepare_s']}s to prepare the source), peak {m['peak_rss_mib']} MiB; "
                f"replace-where (merge + publish) {inc['merge_s'] + inc['publish_s']:.2f}s"
            )
        if "s3_requests" in r:
            print(f"n={r['n']:,}: S3 requests per run {r['s3_requests']}")
    for r in results:
        print(
            f"n={r['n']:,}: RSS after imports {r['rss_after_imports_mib']} MiB, "
            f"after streaming {r['initial']['rss_after_stream_mib']} MiB, "
            f"peak {r['incremental']['peak_rss_mib']} MiB; "
            f"on disk {r.get('warehouse_mib_on_disk', '-')} MiB; "
            f"model generation (not ours) {r['initial']['gen_s']}s"
        )
    if len(results) >= 2:
        small, big = results[0], results[-1]
        growth = big["incremental"]["peak_rss_mib"] / small["incremental"]["peak_rss_mib"]
        print(f"records x{big['n'] / small['n']:.1f} -> peak RSS x{growth:.2f}")
    print(json.dumps(results, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()
