"""``make demo``: the main job end to end on the embedded simulator.

1. start the simulator (real HTTP, uvicorn on a loopback port, seeded data, the contract's
   rate limit of 20 req/s);
2. run the nightly extraction for the country (catalog, coverage, bookings → validated
   Parquet, published atomically) — the same library the Prefect flow runs;
3. advance the simulator's clock a day and run the next night: bookings incremental (only
   the changed ones merged), catalog and coverage read in full, and those whose content did
   not change not validated again ("unchanged, validated in run X"; today's snapshot is
   published all the same);
4. read the data back with DuckDB and print a query an analyst can paste;
5. bulk-load a sample spreadsheet (:func:`write_sample`: ~40 bookings dated from a month
   ahead of today, 4 projects with stages and payments, built against the simulator's live
   catalog and coverage, plus 3 rows that are wrong on purpose: an unknown SKU, a postal
   code the service does not cover, a payment above its project's total) through the same
   code as ``sodtrack-etl load``; show the counts, the results file and its first rows;
6. load the same file again: nothing new is created (``already_existed``);
7. make a ``demo`` account of the upload page (its password printed once) and tell how to
   open the page (``sodtrack-etl serve``) on the simulator.

The sample's rejected rows are the point of step 5, not a failure: the demo exits 0 when the
pipeline works (the load answers every row, rejects exactly the 3 planted rows, and the
re-run creates nothing).
"""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from rich.console import Console

from sodtrack.settings import Settings
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig
from sodtrack.simulator.testing import serve_in_thread

if TYPE_CHECKING:
    from sodtrack.bulkload.engine.catalog import CatalogClient
    from sodtrack.bulkload.run import LoadRun
    from sodtrack.extract import RunReport

SAMPLE_NAME = "sample-bookings.xlsx"
UNKNOWN_SKU = "NO-SUCH-SKU-404"


def run_demo(*, country: str, bookings: int, workdir: Path, console: Console) -> int:
    from sodtrack.terminal import extract_with_progress, print_report

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
            outbox=str(workdir / "outbox"),
        )
        console.rule("Nightly extraction (first run: everything)")
        report = asyncio.run(extract_with_progress(settings, [country], [], False))
        print_report(report)
        if not report.success:
            return 3
        _show_api_floor(report, console)
        console.rule("A day passes in the simulator; the next nightly run")
        httpx.post(f"{url}/_sim/clock/advance", json={"seconds": 86_400}).raise_for_status()
        report = asyncio.run(extract_with_progress(settings, [country], [], False))
        print_report(report)
        if not report.success:
            return 3
        _show_unchanged(report, console)
        _show_api_floor(report, console, "Next nightly run")
        _show_query(warehouse, console)
        code = bulk_load_demo(settings, workdir, console)
    if code == 0:
        show_upload_page(settings, workdir, console)
    return code


def show_upload_page(settings: Settings, workdir: Path, console: Console) -> str:
    """Step 7: make a ``demo`` account (its password printed this once) in the demo's state
    database and tell how to open the upload page on the simulator; returns the password."""
    import secrets

    from sodtrack.web.accounts import Accounts

    password = secrets.token_urlsafe(12)
    accounts = Accounts(settings.state_url)
    try:
        accounts.add("demo", password, [settings.country])
    finally:
        accounts.close()
    root = workdir.resolve()
    console.rule("The upload page for operations staff")
    console.print(
        "Operations staff do the same in a browser. Start the simulator and the page (two "
        "terminals):\n"
        f"  uv run sodtrack-sim serve --country {settings.country} --port 8765\n"
        f"  SODTRACK_BASE_URL=http://127.0.0.1:8765 SODTRACK_COUNTRY={settings.country} "
        f"SODTRACK_STATE_URL=sqlite:///{root / 'state.db'} SODTRACK_UPLOADS={root / 'uploads'} "
        f"SODTRACK_OUTBOX={root / 'outbox'} uv run sodtrack-etl serve\n"
        "then open http://127.0.0.1:8080/ and sign in as [bold]demo[/bold] with the password "
        f"[bold]{password}[/bold] (shown this once; `sodtrack-etl users passwd demo` sets "
        f"another). Upload {root / 'inbox' / SAMPLE_NAME} to see its rows checked before "
        "anything is written.",
        soft_wrap=True,
    )
    return password


def _show_api_floor(report: RunReport, console: Console, run: str = "First nightly run") -> None:
    """A run against its API floor (requests ÷ rate limit, from the run report), or why it
    has none worth showing (its requests fit in the API's burst)."""
    ratio, floor = report.api_floor_ratio, report.api_floor_s
    requests = report.client.get("requests", 0)
    if ratio is None or floor is None:
        note = report.api_floor_note
        if note and note.startswith("not meaningful"):
            console.print(
                f"{run}: {report.duration_s or 0:.1f} s for {requests} requests; API floor {note}."
            )
        return
    console.print(
        f"{run}: {report.duration_s or 0:.1f} s for {requests}"
        f" requests, whose API floor is {floor:.1f} s: [bold]{ratio:.2f}×[/bold] the floor."
    )


def _show_unchanged(report: RunReport, console: Console) -> None:
    """The snapshots the next night did not validate again (same content, same checks), and
    the run whose validation vouches for them."""
    same = [d for d in report.datasets() if d.reason]
    if same:
        console.print(
            "Bookings were read from the watermark; catalog and coverage were read in full, "
            "and the datasets whose content had not changed were not validated again:"
        )
    for d in same:
        console.print(f"  {d.dataset}: {d.reason}")


@dataclass(frozen=True, slots=True)
class Sample:
    path: Path
    rows: int
    projects: int
    bad: dict[str, str]
    """external_reference → what is wrong with it on purpose."""


async def write_sample(
    client: CatalogClient,
    path: Path,
    *,
    country: str,
    rows: int = 40,
    projects: int = 4,
    today: date | None = None,
    seed: int = 11,
) -> Sample:
    """A realistic upload (:func:`~sodtrack.bulkload.synth.synthesize_upload`) with three rows
    made wrong on purpose: an unknown SKU, a postal code out of the service's coverage, and a
    payment above its project's total (the booking of that row is created; the payment is
    refused)."""
    from openpyxl import load_workbook

    from sodtrack.bulkload.synth import synthesize_upload
    from sodtrack.contract.countries import get_country

    ctry = get_country(country)
    summary = await synthesize_upload(
        client,
        path,
        country=ctry.code,
        rows=rows,
        projects=projects,
        seed=seed,
        prefix="DEMO",
        today=today,
    )
    wb = load_workbook(path)
    ws = wb.active
    assert ws is not None
    header = [str(c.value) for c in ws[1]]
    col = {name: i for i, name in enumerate(header)}
    table = [list(r) for r in ws.iter_rows(min_row=2)]

    def value(r: list[Any], name: str) -> Any:
        return r[col[name]].value

    plain = [r for r in table if not value(r, "project_reference")]
    in_project = [r for r in table if value(r, "project_reference")]
    if len(plain) < 2 or not in_project:
        raise RuntimeError("the sample needs two plain rows and a project")
    bad: dict[str, str] = {}

    unknown = plain[0]
    unknown[col["service_sku"]].value = UNKNOWN_SKU
    unknown[col["variant_sku"]].value = None
    bad[str(value(unknown, "external_reference"))] = f"unknown service SKU {UNKNOWN_SKU}"

    services = {s.sku: s for s in await client.collect_services(active=True)}
    zones = await client.collect_coverage_zones(active=True)
    uncovered_row = plain[1]
    service = services[str(value(uncovered_row, "service_sku"))]
    covered = {
        code for z in zones if z.active and service.id in z.service_ids for code in z.postal_codes
    }
    code = _uncovered_code(ctry.postal_code_example, ctry.is_valid_postal_code, covered)
    uncovered_row[col["postal_code"]].value = code
    bad[str(value(uncovered_row, "external_reference"))] = f"postal code {code} not covered"

    project = str(value(in_project[0], "project_reference"))
    members = [r for r in in_project if value(r, "project_reference") == project]
    total = Decimal(0)
    for r in members:
        svc = services[str(value(r, "service_sku"))]
        variant_sku = value(r, "variant_sku")
        price = svc.base_price
        if variant_sku:
            variants = {v.sku: v for v in await client.collect_variants(svc.id)}
            price = variants[str(variant_sku)].price
        total += price
    payer = members[-1]
    over = total * 2
    payer[col["payment_reference"]].value = f"{project}-YOVER"
    payer[col["payment_amount"]].value = float(over) if ctry.minor_units else int(over)
    payer[col["payment_method"]].value = "transfer"
    payer[col["paid_at"]].value = datetime.combine(
        today or datetime.now(ctry.tz).date(), datetime.min.time()
    )
    bad[str(value(payer, "external_reference"))] = (
        f"payment of {ctry.format_amount(over)} {ctry.currency} on a project totalling "
        f"{ctry.format_amount(total)}"
    )
    wb.save(path)
    return Sample(path, summary.rows, summary.projects, bad)


def _uncovered_code(example: str, valid: Callable[[str], bool], covered: set[str]) -> str:
    """A postal code of the country's format (the example's shape, other digits) that no
    zone covers for the service."""
    slots = [i for i, ch in enumerate(example) if ch.isdigit()]
    width = len(slots)
    for n in range(10**width - 1, 0, -7919):
        digits = f"{n:0{width}d}"
        chars = list(example)
        for i, d in zip(slots, digits, strict=True):
            chars[i] = d
        code = "".join(chars)
        if valid(code) and code not in covered:
            return code
    raise RuntimeError("every postal code is covered")


def bulk_load_demo(settings: Settings, workdir: Path, console: Console) -> int:
    """Steps 5 and 6 of the module docstring; 0 when the pipeline behaved."""
    from sodtrack.bulkload.run import EXIT_REJECTED
    from sodtrack.client import country_client
    from sodtrack.terminal import load_with_progress, print_load

    console.rule("Bulk load of a sample spreadsheet")
    path = workdir / "inbox" / SAMPLE_NAME

    async def build() -> Sample:
        async with country_client(settings, settings.country) as client:
            return await write_sample(client, path, country=settings.country)

    sample = asyncio.run(build())
    console.print(
        f"Wrote {sample.path}: {sample.rows} bookings, {sample.projects} projects with stages "
        "and payments, dated from a month ahead. Three rows are wrong on purpose, to show "
        "what the results file says about them:"
    )
    for ref, why in sample.bad.items():
        console.print(f"  {ref}: {why}")

    def load() -> LoadRun:
        return asyncio.run(
            load_with_progress(settings, path, country=settings.country, uploaded_by="demo")
        )

    console.print(f"\n$ sodtrack-etl load {path} --country {settings.country}")
    first = load()
    print_load(first)
    _show_results(first, console)
    rejected = {
        first.parsed.rows[r.position].external_reference
        for r in first.result.rows
        if r.outcome == "rejected"
    }
    console.print(
        f"[bold]Exit code {first.exit_code} is the expected answer here[/bold]: the "
        f"{len(sample.bad)} planted rows were rejected, each with a message and a fix, and "
        "every other row was created."
    )
    console.rule("The same file again: nothing new is created")
    console.print(f"$ sodtrack-etl load {path} --country {settings.country}")
    again = load()
    print_load(again)
    created = again.result.counts.get("created", 0)
    ok = (
        first.exit_code == EXIT_REJECTED
        and first.accounted_for
        and rejected == set(sample.bad)
        and again.upload_id == first.upload_id
        and created == 0
        and again.result.counts.get("already_existed", 0)
        == len(first.parsed.rows) - len(sample.bad)
    )
    if not ok:
        console.print("[red]The bulk load did not behave as expected (see above).[/red]")
        return 1
    console.print(
        f"Nothing new: {again.result.counts['already_existed']} rows already existed, the "
        f"{len(sample.bad)} planted rows are still rejected (rejected is final for an upload: "
        "fix them in the rejects file and upload that file)."
    )
    return 0


def _show_results(run: LoadRun, console: Console, limit: int = 12) -> None:
    """The first rows of the results file as written (row, outcome, booking id, message)."""
    import csv

    from rich.table import Table

    console.print(f"\nResults file: {run.files.results_xlsx} (and .csv beside it)")
    for kind, why in run.unwritten.items():
        console.print(f"[red]not written:[/red] {kind}: {why}")
    if "results_csv" in run.unwritten:
        return
    with run.files.results_csv.open(encoding="utf-8-sig", newline="") as fh:
        records = list(csv.DictReader(fh))
    table = Table(title=f"first {limit} of {len(records)} rows, then every row not created")
    for column in ("row", "outcome", "booking_id", "message"):
        table.add_column(column, overflow="fold")
    shown = records[:limit]
    shown += [r for r in records[limit:] if r["outcome"] != "created"]
    for r in shown:
        table.add_row(r["row"], r["outcome"], r["booking_id"], r["message"])
    console.print(table)


def _show_query(warehouse: Path, console: Console) -> None:
    """Where the tables are, the DuckDB query to paste, its result, and one time-travel read.

    DuckDB reads a Delta table with ``delta_scan`` (its ``delta`` extension, downloaded on
    first use); the demo runs the same query on the table read through ``deltalake`` → Arrow,
    which needs no download."""
    import duckdb
    from deltalake import DeltaTable
    from rich.table import Table

    path = (warehouse / "bookings").as_posix()
    body = (
        "SELECT scheduled_month, status, count(*) AS bookings, sum(price) AS revenue\n"
        "FROM {source}\n"
        "GROUP BY ALL ORDER BY scheduled_month DESC, status LIMIT 12"
    )
    console.rule("Where the data landed (Delta Lake tables)")
    for dataset in sorted(p.name for p in warehouse.iterdir() if not p.name.startswith("_")):
        console.print(f"  {warehouse / dataset}")
    console.print("\nPaste into DuckDB (`duckdb` CLI or Python; INSTALL delta once):\n")
    console.print(body.format(source=f"delta_scan('{path}')"), markup=False, highlight=False)
    table = DeltaTable(path)
    bookings = table.to_pyarrow_table()  # noqa: F841 - DuckDB reads the local name
    rows = duckdb.connect().execute(body.format(source="bookings")).fetchall()
    shown = Table()
    for column in ("scheduled_month", "status", "bookings", "revenue"):
        shown.add_column(column)
    for row in rows:
        shown.add_row(*(str(v) for v in row))
    console.print(shown)
    version = table.version()
    if version > 0:
        previous = DeltaTable(path, version=version - 1)
        console.print(
            f"\nTime travel: version {version} holds {table.to_pyarrow_table().num_rows:,} "
            f"bookings; version {version - 1} (before the incremental run) held "
            f"{previous.to_pyarrow_table().num_rows:,}:"
        )
        console.print(
            f"  DeltaTable('{path}', version={version - 1}).to_pandas()",
            markup=False,
            highlight=False,
        )
