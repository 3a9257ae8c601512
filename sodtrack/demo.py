"""``make demo``: the main job end to end on the embedded simulator.

1. start the simulator (real HTTP, uvicorn on a loopback port, seeded data, the contract's
   rate limit of 20 req/s);
2. run the nightly extraction for the country (catalog, coverage, bookings → validated
   Parquet, published atomically) — the same library the Prefect flow runs;
3. advance the simulator's clock a day and run again: an incremental run that merges only
   the changed bookings;
4. read the data back with DuckDB and print a query an analyst can paste.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

import httpx
from rich.console import Console

from sodtrack.settings import Settings
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.testing import serve_in_thread


def run_demo(*, country: str, bookings: int, workdir: Path, console: Console) -> int:
    from sodtrack.cli import _print_report, _run_extract

    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    warehouse = workdir / "warehouse"
    console.rule("[bold]Sodtrack pipeline demo")
    console.print(f"Seeding the simulator: country {country}, {bookings:,} bookings…")
    started = time.monotonic()
    app = create_app(SimConfig(country=country, bookings=bookings))
    console.print(f"  seeded in {time.monotonic() - started:.1f} s")
    with serve_in_thread(app) as url:
        console.print(f"Simulator listening on {url} (rate limit 20 req/s, burst 40)")
        settings = Settings(
            country=country,
            base_url=url,
            warehouse=str(warehouse),
            state_url=f"sqlite:///{(workdir / 'state.db').resolve()}",
        )
        console.rule("Nightly extraction (first run: everything)")
        report = asyncio.run(_run_extract(settings, [country], [], False))
        _print_report(report)
        if not report.success:
            return 3
        console.rule("A day passes in the simulator; incremental run")
        httpx.post(f"{url}/_sim/clock/advance", json={"seconds": 86_400}).raise_for_status()
        report = asyncio.run(_run_extract(settings, [country], ["bookings"], False))
        _print_report(report)
        if not report.success:
            return 3
    _show_query(warehouse, console)
    return 0


def _show_query(warehouse: Path, console: Console) -> None:
    import duckdb

    path = (warehouse / "bookings" / "current").as_posix()
    query = (
        "SELECT scheduled_month, status, count(*) AS bookings, sum(price) AS revenue\n"
        f"FROM read_parquet('{path}/**/*.parquet', hive_partitioning = true)\n"
        "GROUP BY ALL ORDER BY scheduled_month DESC, status LIMIT 12"
    )
    console.rule("Where the data landed")
    for dataset in sorted(p.name for p in warehouse.iterdir() if not p.name.startswith("_")):
        console.print(f"  {warehouse / dataset / 'current'}")
    console.print("\nPaste into DuckDB (`duckdb` CLI or Python):\n")
    console.print(query, markup=False, highlight=False)
    rows = duckdb.connect().execute(query).fetchall()
    from rich.table import Table

    table = Table()
    for column in ("scheduled_month", "status", "bookings", "revenue"):
        table.add_column(column)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console.print(table)
