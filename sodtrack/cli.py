"""``sodtrack-etl``: everything a user runs, without needing a Prefect server.

The same library work the Prefect flows sequence, from a terminal, with progress bars:
``extract`` (nightly extraction), ``validate`` (re-run the suites on a published version),
``demo`` (the main job end to end against the embedded simulator). Heavy imports (pandas,
pyarrow, Great Expectations) happen inside the commands so ``--help`` stays instant.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from sodtrack.watch import watch

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from sodtrack.bulkload import LoadRun
    from sodtrack.client import SodtrackClient
    from sodtrack.extract import RunReport
    from sodtrack.settings import Settings
    from sodtrack.template import CatalogLists

app = typer.Typer(
    help="The Sodtrack data pipeline: nightly Parquet extraction and spreadsheet bulk loads.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

EXIT_OK = 0
EXIT_NOT_PUBLISHED = 3
"""``extract``: a family was quarantined (critical validation failure) or failed."""
EXIT_UNUSABLE = 2
"""``load``: nothing was loaded (the file or the command cannot be used); see ``bulkload``."""
EXIT_REJECTED = 4
"""``load``: some rows were rejected (or skipped behind a rejected row)."""
EXIT_INCOMPLETE = 5
"""``load``: some rows wait for a re-run (transient failures); ``cancel``: not all cancelled."""


def _settings(country: str | None = None, warehouse: str | None = None) -> Settings:
    from sodtrack.settings import Settings

    overrides: dict[str, str] = {}
    if country:
        overrides["country"] = country
    if warehouse:
        overrides["warehouse"] = warehouse
    return Settings(**overrides)  # type: ignore[arg-type]


def _logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in ("httpx", "httpcore", "great_expectations"):
        logging.getLogger(name).setLevel(logging.WARNING)


@contextlib.contextmanager
def _progress(unit: str = "records") -> Iterator[RichProgress]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn(unit),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        yield progress


async def _run_extract(
    settings: Settings,
    countries: list[str],
    datasets: list[str],
    full_refresh: bool,
) -> RunReport:
    from sodtrack.client import SodtrackClient
    from sodtrack.extract import ExtractionOptions, run_extraction
    from sodtrack.state import StateStore
    from sodtrack.warehouse import Warehouse

    root = Path(settings.warehouse)
    base = root.parent if root.name == "warehouse" else root
    options = ExtractionOptions(
        countries=tuple(countries),
        datasets=tuple(datasets),
        full_refresh=full_refresh,
        docs_dir=base / "docs",
        reports_dir=base / "reports",
    )

    @contextlib.asynccontextmanager
    async def factory(country: str) -> AsyncIterator[SodtrackClient]:
        client = SodtrackClient.from_settings(settings.model_copy(update={"country": country}))
        async with client:
            yield client

    store = StateStore(settings.state_url)
    try:
        with _progress() as bars:
            tasks: dict[str, object] = {}

            def progress(dataset: str, n: int) -> None:
                if dataset not in tasks:
                    tasks[dataset] = bars.add_task(dataset, total=None)
                bars.advance(tasks[dataset], n)  # type: ignore[arg-type]

            return await run_extraction(
                options,
                warehouse=Warehouse(settings.warehouse),
                store=store,
                client_factory=factory,
                progress=progress,
            )
    finally:
        store.dispose()


def _print_report(report: RunReport) -> None:
    from rich.markdown import Markdown

    console.print(Markdown(report.summary_markdown()))
    from rich.table import Table

    table = Table(title="records per dataset")
    rows = report.counts_table()
    for column in (
        "country",
        "dataset",
        "status",
        "expected",
        "received",
        "deduplicated",
        "written",
        "rows_total",
    ):
        table.add_column(
            column, justify="right" if column not in ("country", "dataset", "status") else "left"
        )
    for row in rows:
        table.add_row(
            *(
                "" if row[c] is None else str(row[c])
                for c in (
                    "country",
                    "dataset",
                    "status",
                    "expected",
                    "received",
                    "deduplicated",
                    "written",
                    "rows_total",
                )
            )
        )
    console.print(table)


@app.command()
def extract(
    country: Annotated[
        list[str] | None,
        typer.Option(
            "--country", "-c", help="Country code (repeatable); default SODTRACK_COUNTRY."
        ),
    ] = None,
    dataset: Annotated[
        list[str] | None,
        typer.Option("--dataset", "-d", help="Dataset or family (repeatable); default all."),
    ] = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Rebuild bookings from nothing.")
    ] = False,
    warehouse: Annotated[
        str | None,
        typer.Option(help="Warehouse root (default SODTRACK_WAREHOUSE or data/warehouse)."),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Extract catalog, coverage and bookings to validated Parquet, publish atomically."""
    _logging(verbose)
    settings = _settings(warehouse=warehouse)
    countries = country or [settings.country]
    report = asyncio.run(_run_extract(settings, countries, dataset or [], full_refresh))
    _print_report(report)
    raise typer.Exit(EXIT_OK if report.success else EXIT_NOT_PUBLISHED)


@app.command()
def validate(
    dataset: Annotated[str, typer.Argument(help="Dataset to validate, e.g. bookings.")],
    country: Annotated[str | None, typer.Option("--country", "-c")] = None,
    warehouse: Annotated[str | None, typer.Option()] = None,
    docs: Annotated[Path | None, typer.Option(help="Build Data Docs under this folder.")] = None,
) -> None:
    """Re-run a dataset's suite on its published (current) version."""
    _logging(False)
    import pyarrow.compute as pc

    from sodtrack.extract.gate import CHUNK_ROWS, previous_rows
    from sodtrack.validation import ValidationSession, reference_parameters
    from sodtrack.warehouse import Warehouse
    from sodtrack.warehouse.chunks import published_chunks

    settings = _settings(country, warehouse)
    wh = Warehouse(settings.warehouse)
    code = settings.country
    version = wh.current_version(dataset)
    if version is None:
        console.print(f"[red]{dataset}: nothing published yet in {settings.warehouse}")
        raise typer.Exit(2)

    def mine(name: str) -> object:
        """A reference dataset's ids for this country (its latest snapshot)."""
        table = wh.read_current(name).to_table(columns=["id", "country", "snapshot_date"])
        table = table.filter(pc.equal(table["country"], code))
        if "snapshot_date" in table.column_names and table.num_rows:
            latest = pc.max(table["snapshot_date"])
            table = table.filter(pc.equal(table["snapshot_date"], latest))
        return table

    refs: dict[str, object] = {}
    for name, key in (
        ("categories", "categories"),
        ("services", "services"),
        ("variants", "variants"),
        ("coverage_zones", "zones"),
    ):
        if wh.current_version(name) is not None:
            refs.update(reference_parameters(**{key: mine(name)}))  # type: ignore[arg-type]
    session = ValidationSession(f"validate-{dataset}-{version}", docs_dir=docs)
    data = wh.read_current(dataset)
    snapshot = "snapshot_date" in data.schema.names
    outcome = session.validate(
        dataset,
        published_chunks(data, code, CHUNK_ROWS),
        country=code,
        parameters=refs,
        previous_row_count=None if snapshot else previous_rows(wh, dataset, code),
    )
    console.print(outcome.summary())
    for failure in outcome.critical_failures:
        console.print(f"[red]critical[/red] {failure.label}")
    for warning in outcome.warnings:
        console.print(f"[yellow]warning[/yellow] {warning.label}")
    if docs:
        console.print(f"Data Docs: {session.build_docs()}")
    raise typer.Exit(0 if outcome.success else EXIT_NOT_PUBLISHED)


# ---------------------------------------------------------------- bulk load


LOAD_EXIT_HELP = """Exit codes (when several apply, the first in this order wins):

2  nothing was loaded: the file or the command cannot be used (unreadable file, a required
column missing, a bad mapping file, bad options);

5  incomplete: some rows failed transiently (or were skipped behind them); run the same
command again, it resumes and creates nothing twice; also when another process is loading
the same upload right now;

4  some rows were rejected (or skipped behind a rejected row): fix them in the rejects file
and upload that file;

0  every row was created or already existed (dry run: every row would be created)."""


def _country_code(country: str | None) -> str:
    """The country asked for (else ``SODTRACK_COUNTRY``); an unknown one exits 2."""
    from sodtrack.contract.countries import get_country

    try:
        return get_country(country or _settings().country).code
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_UNUSABLE) from None


def _default_uploader() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "cli"


async def _run_load(
    settings: Settings,
    path: Path,
    *,
    country: str,
    uploaded_by: str,
    dry_run: bool = False,
    sheet: str | None = None,
    mapping: Path | None = None,
    check_availability: bool | None = None,
    out: Path | None = None,
    new_upload: bool = False,
) -> LoadRun:
    """``sodtrack-etl load`` without the printing: read, check, load, results files; a rich
    progress bar while the engine works (the demo runs this too)."""
    from sodtrack.bulkload import new_upload_salt, run_load
    from sodtrack.loader import load_mapping_file

    columns = load_mapping_file(mapping) if mapping else None
    with _progress("") as bars:
        tasks: dict[str, TaskID] = {}
        labels = {"validate": "checking rows", "load": "writing projects and bookings"}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in tasks:
                tasks[phase] = bars.add_task(labels.get(phase, phase), total=total or None)
            bars.update(tasks[phase], completed=done, total=total or None)

        return await run_load(
            settings,
            path,
            country=country,
            uploaded_by=uploaded_by,
            dry_run=dry_run,
            sheet=sheet,
            mapping=columns,
            check_availability=check_availability,
            out=out,
            progress=progress,
            new_upload=new_upload_salt() if new_upload else None,
        )


def _print_load(run: LoadRun, rows: int = 10) -> None:
    """Counts by outcome, notices, the first rows not created, the files, the verdict."""
    from rich.table import Table

    from sodtrack.bulkload import EXIT_CODES

    r = run.result
    console.print(f"upload [bold]{r.upload_id}[/bold] (run {r.run_no}) of {r.file_name}")
    table = Table(title=f"{len(run.parsed.rows)} rows by outcome")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for item in run.counts_table():
        table.add_row(item["outcome"], str(item["rows"]))
    console.print(table)
    for error in r.upload_errors:
        console.print(f"[red]file:[/red] {error}")
    for issue in run.parsed.upload_issues:
        if issue.severity != "error":
            console.print(f"[yellow]file:[/yellow] {issue.message}")
    for notice in r.notices:
        console.print(f"[yellow]notice:[/yellow] {notice}")
    problems, more = run.problem_rows(rows)
    if problems:
        bad = Table(title="rows not created" + (f" (first {rows}; {more} more)" if more else ""))
        for column in ("row", "reference", "outcome", "message", "suggested fix"):
            bad.add_column(column, overflow="fold")
        for p in problems:
            bad.add_row(
                p["row"], p["external_reference"], p["outcome"], p["message"], p["suggested_fix"]
            )
        console.print(bad)
    console.print(
        f"{r.requests} requests in {r.elapsed_s:.1f} s; every row accounted for: "
        f"{'yes' if run.accounted_for else '[red]NO[/red]'}"
    )
    console.print(f"exit code {run.exit_code}: {EXIT_CODES[run.exit_code]}")
    typer.echo(f"upload_id: {r.upload_id}")
    typer.echo(f"results: {run.files.results_xlsx}")
    typer.echo(f"results_csv: {run.files.results_csv}")
    typer.echo(f"rejects: {run.files.rejects_xlsx} ({run.files.rejects} rows)")


@app.command(epilog=LOAD_EXIT_HELP)
def load(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV or XLSX file of bookings."
        ),
    ],
    country: Annotated[
        str | None, typer.Option("--country", "-c", help="Default SODTRACK_COUNTRY.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Run every check (catalog, coverage, slot availability, live) and write the "
            "same results file; create nothing. Availability can change before the real run.",
        ),
    ] = False,
    sheet: Annotated[
        str | None,
        typer.Option(help="XLSX sheet to read (default: the first one with a header row)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for the results files (default: <SODTRACK_OUTBOX>/<upload_id>/)."
        ),
    ] = None,
    mapping: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="YAML mapping of your headers to the loader's columns.",
        ),
    ] = None,
    check_availability: Annotated[
        bool | None,
        typer.Option(
            "--check-availability/--no-check-availability",
            help="Check slot capacity before writing (default: on for --dry-run only).",
            show_default=False,
        ),
    ] = None,
    uploaded_by: Annotated[
        str | None,
        typer.Option(help="Who the ledger records as the uploader (default: your user name)."),
    ] = None,
    new_upload: Annotated[
        bool,
        typer.Option(
            "--new-upload",
            help="Load the same bytes as a separate upload (default: a re-run resumes).",
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Load a spreadsheet of bookings (projects, stages, payments) into Sodtrack.

    Every row gets exactly one outcome in the results file (CSV and XLSX); rows to fix are in
    the rejects file. Loading the same file again resumes it and creates nothing twice.
    """
    from sodtrack.loader import LeaseHeld, MappingFileError

    _logging(verbose)
    code = _country_code(country)
    settings = _settings(code)
    mode = "dry run of" if dry_run else "loading"
    console.print(f"[bold]{mode} {file} for {code}[/bold]")
    try:
        run = asyncio.run(
            _run_load(
                settings,
                file,
                country=code,
                uploaded_by=uploaded_by or _default_uploader(),
                dry_run=dry_run,
                sheet=sheet,
                mapping=mapping,
                check_availability=check_availability,
                out=out,
                new_upload=new_upload,
            )
        )
    except LeaseHeld as exc:
        console.print(f"[yellow]{exc}[/yellow]: run the command again later; it resumes.")
        raise typer.Exit(EXIT_INCOMPLETE) from None
    except MappingFileError as exc:
        console.print(f"[red]nothing loaded:[/red] {exc}")
        raise typer.Exit(EXIT_UNUSABLE) from None
    except ValueError as exc:
        if not str(exc).startswith("upload "):  # the ledger refusing a re-run; else a bug
            raise
        console.print(f"[red]nothing loaded:[/red] {exc} (or --new-upload)")
        raise typer.Exit(EXIT_UNUSABLE) from None
    _print_load(run)
    raise typer.Exit(run.exit_code)


@app.command()
def template(
    file: Annotated[Path, typer.Argument(help="The .xlsx file to write.")],
    country: Annotated[
        str | None, typer.Option("--country", "-c", help="Default SODTRACK_COUNTRY.")
    ] = None,
    warehouse: Annotated[
        str | None,
        typer.Option(help="Warehouse root with the catalog (default SODTRACK_WAREHOUSE)."),
    ] = None,
    source: Annotated[
        str,
        typer.Option(
            help="Where the SKU lists come from: auto (the warehouse's latest catalog, else "
            "the live API), warehouse, or api."
        ),
    ] = "auto",
) -> None:
    """Write an XLSX template for a country: the headers (with notes), text-formatted postal
    codes and phones, drop-down lists of active service and variant SKUs, an instructions
    sheet."""
    from sodtrack.template import catalog_from_api, catalog_from_warehouse, write_template

    _logging(False)
    if file.suffix.lower() != ".xlsx":
        console.print("[red]the template is an .xlsx file[/red]")
        raise typer.Exit(EXIT_UNUSABLE)
    if source not in ("auto", "warehouse", "api"):
        console.print("[red]--source is auto, warehouse or api[/red]")
        raise typer.Exit(EXIT_UNUSABLE)
    code = _country_code(country)
    settings = _settings(code, warehouse)
    catalog = None if source == "api" else catalog_from_warehouse(settings.warehouse, code)
    if catalog is None and source == "warehouse":
        console.print(f"[red]no published catalog for {code} in {settings.warehouse}[/red]")
        raise typer.Exit(EXIT_UNUSABLE)
    if catalog is None:
        from sodtrack.bulkload import country_client

        async def live() -> CatalogLists:
            async with country_client(settings, code) as client:
                return await catalog_from_api(client, code)

        with console.status("reading the catalog from the live API…"):
            catalog = asyncio.run(live())
    write_template(file, code, catalog)
    console.print(
        f"{len(catalog.services)} services and {len(catalog.variants)} variants from "
        f"{catalog.source}"
    )
    typer.echo(f"template: {file}")


@app.command()
def cancel(
    upload_id: Annotated[str, typer.Argument(help="The upload id a load printed.")],
    country: Annotated[
        str | None,
        typer.Option("--country", "-c", help="Default: the upload's country in the ledger."),
    ] = None,
    reason: Annotated[
        str | None, typer.Option(help="Cancellation reason sent to Sodtrack.")
    ] = None,
) -> None:
    """Cancel the bookings an upload created (recorded in the ledger); safe to run again.

    Exit codes: 0 every booking the upload created is cancelled; 2 no such upload; 5 some
    could not be cancelled (listed; running the command again retries them).
    """
    from sodtrack.bulkload import country_client, open_ledger
    from sodtrack.loader import CancelResult, LeaseHeld, cancel_upload

    _logging(False)
    settings = _settings()
    ledger = open_ledger(settings)
    try:
        record = ledger.get_upload(upload_id)
        if record is None:
            console.print(f"[red]no upload {upload_id} in the ledger ({settings.state_url})[/red]")
            raise typer.Exit(EXIT_UNUSABLE)
        code = _country_code(country) if country else record.country
        if code != record.country:
            console.print(f"[red]upload {upload_id} is for {record.country}, not {code}[/red]")
            raise typer.Exit(EXIT_UNUSABLE)

        async def run() -> CancelResult:
            async with country_client(settings, code) as client:
                return await cancel_upload(upload_id, client, ledger, reason=reason)

        try:
            result = asyncio.run(run())
        except LeaseHeld as exc:
            console.print(f"[yellow]{exc}[/yellow]: run the command again later.")
            raise typer.Exit(EXIT_INCOMPLETE) from None
    finally:
        ledger.close()
    console.print(
        f"upload {upload_id} ({record.file_name}, {record.country}): cancelled "
        f"{result.cancelled} booking(s) now, {result.already_cancelled} already cancelled "
        "by an earlier cancel"
    )
    for reference, message in result.failed:
        console.print(f"[red]not cancelled[/red] {reference}: {message}")
    console.print(result.note)
    typer.echo(f"cancelled: {result.cancelled}")
    raise typer.Exit(EXIT_OK if result.complete else EXIT_INCOMPLETE)


@app.command()
def demo(
    country: Annotated[str, typer.Option("--country", "-c")] = "cl",
    bookings: Annotated[int, typer.Option(help="Bookings the simulator seeds.")] = 200_000,
    workdir: Annotated[Path, typer.Option(help="Where the demo's data lands.")] = Path("data/demo"),
) -> None:
    """The main job end to end on the embedded simulator: nightly extraction (and, once the
    loader lands, a bulk load of a sample spreadsheet)."""
    from sodtrack.demo import run_demo

    _logging(False)
    raise typer.Exit(run_demo(country=country, bookings=bookings, workdir=workdir, console=console))


app.command()(watch)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
