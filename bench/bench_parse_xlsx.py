"""Benchmark: ``read_upload`` on a 100,000-row XLSX of bookings.

Writes the workbook once with openpyxl's write-only mode (typed cells: true date and time
cells, numeric postal codes that lost their zeros, decimal amounts, a project every 10 rows)
and caches it under /tmp, so reruns only measure the read. Prints wall and CPU time, rows per
second and the process's peak RSS (``resource.getrusage``; on Linux ``ru_maxrss`` is in KiB).
CPU time is printed beside wall time because a shared machine's load can double the latter.

    uv run python bench/bench_parse_xlsx.py [--rows 100000] [--country mx] [--fresh]
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from datetime import date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

from openpyxl import Workbook

from sodtrack.bulkload import read_upload

CACHE_DIR = Path("/tmp/sodtrack-bench")

HEADER = [
    "Referencia externa",
    "SKU servicio",
    "Fecha",
    "Hora",
    "Nombre",
    "Apellido",
    "Correo",
    "Teléfono",
    "CURP",
    "Dirección",
    "Dirección 2",
    "Ciudad",
    "Estado",
    "Código Postal",
    "Notas",
    "Proyecto",
    "Nombre proyecto",
    "Número etapa",
    "Etapa",
    "Referencia pago",
    "Monto",
    "Moneda",
    "Método de pago",
    "Fecha de pago",
]


def _row(i: int) -> list[object]:
    day = date(2026, 12, 1) + timedelta(days=i % 150)
    in_project = i % 10 == 0
    pays = in_project and i % 20 == 0
    return [
        f"OPS-{i:07d}",
        "INST-AC-12000",
        day,
        clock(8 + i % 10, 0),
        "Ana",
        f"Pérez {i % 1000}",
        f"cliente{i}@example.com",
        f"55 {1000_0000 + i:08d}",
        f"PEXA900101HDFRRN{i % 10:02d}",
        f"Av. Insurgentes Sur {i % 3000}",
        None if i % 3 else "Depto 5",
        "Ciudad de México",
        "CDMX",
        6700 if i % 2 else "06700",
        "Llamar antes de llegar" if i % 5 == 0 else None,
        f"PRJ-{i:07d}" if in_project else None,
        f"Remodelación {i}" if in_project else None,
        1 if in_project else None,
        "Demolición" if in_project else None,
        f"PAY-{i:07d}" if pays else None,
        1499.9 if pays else None,
        "MXN" if pays else None,
        "tarjeta" if pays else None,
        datetime(2026, 11, 20, 12, 30) if pays else None,
    ]


def write_workbook(path: Path, rows: int) -> float:
    started = time.perf_counter()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Reservas")
    sheet.append(HEADER)
    for i in range(1, rows + 1):
        sheet.append(_row(i))
    tmp = path.with_suffix(".tmp.xlsx")
    workbook.save(tmp)
    tmp.replace(path)
    return time.perf_counter() - started


def peak_rss_mib() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--country", default="mx")
    parser.add_argument("--fresh", action="store_true", help="rewrite the cached workbook")
    args = parser.parse_args()

    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    path = CACHE_DIR / f"bookings-{args.rows}.xlsx"
    if args.fresh or not path.exists():
        print(f"writing {path} ({args.rows:,} rows) ...", flush=True)
        print(f"  written in {write_workbook(path, args.rows):.1f} s")
    size_mib = path.stat().st_size / (1024 * 1024)
    rss_before = peak_rss_mib()

    started, cpu_started = time.perf_counter(), time.process_time()
    upload = read_upload(path, args.country)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started

    summary = upload.summary()
    print(f"file          {path} ({size_mib:.1f} MiB)")
    print(
        f"rows          {summary['rows']:,} ({summary['valid_rows']:,} valid, "
        f"{summary['rejected_rows']:,} rejected, {summary['row_warnings']:,} warnings)"
    )
    print(f"projects      {len(upload.projects):,}")
    print(
        f"read_upload   {elapsed:.2f} s wall, {cpu:.2f} s CPU "
        f"({summary['rows'] / elapsed:,.0f} rows/s wall)"
    )
    load1, _, _ = os.getloadavg()
    python = sys.version.split()[0]
    print(f"machine       {os.cpu_count()} CPUs, load average {load1:.1f}, Python {python}")
    print(f"peak RSS      {peak_rss_mib():.0f} MiB (before read_upload: {rss_before:.0f} MiB)")
    if upload.upload_issues:
        for issue in upload.upload_issues:
            print(f"upload issue  {issue.severity}: {issue.message}")


if __name__ == "__main__":
    main()
