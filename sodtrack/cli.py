"""``sodtrack-etl``: everything a user runs, without needing a Prefect server.

The same library work the Prefect flows sequence, from a terminal, with progress bars:
``extract`` (nightly extraction), ``validate`` (re-run the suites on a published version),
``demo`` (the main job end to end against the embedded simulator). Heavy imports (pandas,
pyarrow, Great Expectations) happen inside the commands so ``--help`` stays instant.

Every command starts the same way (:func:`_configure`): resolve the settings (environment,
``.env`` file, options), run :func:`sodtrack.preflight.preflight` for what the command
needs (base URL, credentials and the token's country, state database, output folders), and
print on stderr what it talks to and where the credentials came from. A
:class:`~sodtrack.errors.ConfigurationError`, there or later, is one line on stderr
(``configuration error: SODTRACK_ENV: 'staging' is not one of dev, uat, prod``) and exit
``2``, before anything is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Callable, Iterator
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
    from sodtrack.settings import Origin, Settings
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


EXIT_CONFIGURATION = 2
"""Every command: a setting is wrong (``ConfigurationError``); nothing was done."""


def _configuration_error(exc: Exception) -> typer.Exit:
    """Print a ``ConfigurationError`` as its one line; the exit to raise."""
    from sodtrack.errors import ConfigurationError

    line = exc.line if isinstance(exc, ConfigurationError) else str(exc)
    typer.echo(f"configuration error: {line}", err=True)
    return typer.Exit(EXIT_CONFIGURATION)


@contextlib.contextmanager
def _configuration_errors() -> Iterator[None]:
    """A ``ConfigurationError`` raised by the work (not only by the preflight) → exit 2."""
    from sodtrack.errors import ConfigurationError

    try:
        yield
    except ConfigurationError as exc:
        raise _configuration_error(exc) from None


def _configure(
    *,
    countries: list[str] | None = None,
    overrides: dict[str, object] | None = None,
    api: bool = True,
    url: bool | None = None,
    state: bool = True,
    outputs: list[tuple[str | Path, str]] | None = None,
    outputs_of: Callable[[Settings], list[tuple[str | Path, str]]] | None = None,
    notice: bool = True,
) -> tuple[Settings, Origin]:
    """Settings resolved and checked for one command (see the module docstring); prints the
    notice (unless ``notice=False``: :func:`_check_api` prints it later), or the
    configuration error and exits 2."""
    from sodtrack.errors import ConfigurationError
    from sodtrack.preflight import run_preflight
    from sodtrack.settings import resolve_settings

    try:
        settings, origin = resolve_settings(overrides)
        folders = list(outputs or []) + (outputs_of(settings) if outputs_of else [])
        report = run_preflight(
            settings,
            origin,
            countries=countries or [],
            api=api,
            url=url,
            state=state,
            outputs=folders,
        )
    except ConfigurationError as exc:
        raise _configuration_error(exc) from None
    if notice:
        for line in report.notice():
            typer.echo(line, err=True)
    return settings, origin


def _check_api(settings: Settings, origin: Origin, country: str) -> None:
    """The API check for a country known only later (``cancel``: the upload's country;
    ``template``: when the warehouse has no catalog), then the notice."""
    from sodtrack.errors import ConfigurationError
    from sodtrack.preflight import run_preflight

    try:
        report = run_preflight(settings, origin, countries=[country], state=False)
    except ConfigurationError as exc:
        raise _configuration_error(exc) from None
    for line in report.notice():
        typer.echo(line, err=True)


def _safe(text: object) -> str:
    """User-supplied text (file names, headers, cell values in messages) for ``console.print``:
    control characters escaped (:func:`sodtrack.textsafe.printable`), rich markup inert."""
    from rich.markup import escape

    from sodtrack.textsafe import printable

    return escape(printable(text))


def _without_password(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy reads: say nothing of it
        return "the configured state database"


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
    """Extract catalog, coverage and bookings to validated Parquet, publish atomically.

    Exit codes: 0 every dataset published; 3 a family was quarantined or failed; 2 a setting
    is wrong (nothing extracted)."""
    _logging(verbose)

    def folders(settings: Settings) -> list[tuple[str | Path, str]]:
        root = Path(settings.warehouse)
        base = root.parent if root.name == "warehouse" else root
        label = "--warehouse" if warehouse else "SODTRACK_WAREHOUSE"
        return [(root, label), (base / "reports", label), (base / "docs", label)]

    settings, _ = _configure(
        countries=country, overrides={"warehouse": warehouse}, outputs_of=folders
    )
    countries = country or [settings.country]
    with _configuration_errors():
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

    settings, _ = _configure(
        countries=[country] if country else None,
        overrides={"country": country, "warehouse": warehouse},
        api=False,
        state=False,
        outputs=[(docs, "--docs")] if docs else None,
    )
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
column missing, a bad mapping file, bad options), or a setting is wrong (one line naming it:
settings, base URL, credentials, the token's country, state database, results folder);

5  incomplete: some rows failed transiently (or were skipped behind them); run the same
command again, it resumes and creates nothing twice; also when another process is loading
the same upload right now;

4  some rows were rejected (or skipped behind a rejected row): fix them in the rejects file
and upload that file;

0  every row was created, updated or already existed (dry run: every row would be created
or updated)."""


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
    from sodtrack.textsafe import printable

    r = run.result
    console.print(f"upload [bold]{r.upload_id}[/bold] (run {r.run_no}) of {_safe(r.file_name)}")
    counts = r.tally  # the one definition summary.json and the flow's artifacts use
    table = Table(title=f"{counts.rows} rows by outcome")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    for item in run.counts_table():
        table.add_row(item["outcome"], str(item["rows"]))
    console.print(table)
    console.print(
        f"rows needing a person: {counts.needs_a_person}; "
        f"rows a re-run will retry: {counts.retry_on_rerun}"
    )
    for error in r.upload_errors:
        console.print(f"[red]file:[/red] {_safe(error)}")
    for issue in run.parsed.upload_issues:
        if issue.severity != "error":
            console.print(f"[yellow]file:[/yellow] {_safe(issue.message)}")
    for notice in r.notices:
        console.print(f"[yellow]notice:[/yellow] {_safe(notice)}")
    problems, more = run.problem_rows(rows)
    if problems:
        bad = Table(title="rows not created" + (f" (first {rows}; {more} more)" if more else ""))
        for column in ("row", "reference", "outcome", "message", "suggested fix"):
            bad.add_column(column, overflow="fold")
        for p in problems:
            bad.add_row(
                *(
                    _safe(p[k])
                    for k in ("row", "external_reference", "outcome", "message", "suggested_fix")
                )
            )
        console.print(bad)
    console.print(
        f"{r.requests} requests in {r.elapsed_s:.1f} s; every row accounted for: "
        f"{'yes' if run.accounted_for else '[red]NO[/red]'}"
    )
    for kind, why in run.unwritten.items():
        console.print(
            f"[red]not written:[/red] {kind}: {_safe(why)} (re-run the same command to write it)"
        )
    console.print(f"exit code {run.exit_code}: {EXIT_CODES[run.exit_code]}")
    written = run.file_paths()
    typer.echo(f"upload_id: {r.upload_id}")
    typer.echo(f"run: {r.run_no}")
    typer.echo(f"needs_a_person: {counts.needs_a_person}")
    for key, kind in (("results", "results_xlsx"), ("results_csv", "results_csv")):
        if kind in written:
            typer.echo(f"{key}: {printable(written[kind])}")
    if "rejects_xlsx" in written:
        typer.echo(f"rejects: {printable(written['rejects_xlsx'])} ({run.files.rejects} rows)")
    if "rejects_csv" in written:
        typer.echo(f"rejects_csv: {printable(written['rejects_csv'])}")
    if "summary_json" in written:
        typer.echo(f"summary: {printable(written['summary_json'])}")
    for kind, path in run.files.latest.items():
        typer.echo(f"latest_{kind}: {printable(path)}")


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
    from sodtrack.bulkload import outbox_root
    from sodtrack.errors import UploadMismatch
    from sodtrack.loader import LeaseHeld, MappingFileError

    _logging(verbose)

    def folders(settings: Settings) -> list[tuple[str | Path, str]]:
        if out is not None:
            return [(out, "--out")]
        return [(outbox_root(settings, file), "SODTRACK_OUTBOX")]

    settings, _ = _configure(overrides={"country": country}, outputs_of=folders)
    code = settings.country
    mode = "dry run of" if dry_run else "loading"
    console.print(f"[bold]{mode} {_safe(file)} for {code}[/bold]")
    try:
        with _configuration_errors():
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
        console.print(f"[yellow]{_safe(exc)}[/yellow]: run the command again later; it resumes.")
        raise typer.Exit(EXIT_INCOMPLETE) from None
    except MappingFileError as exc:
        console.print(f"[red]nothing loaded:[/red] {_safe(exc)}")
        raise typer.Exit(EXIT_UNUSABLE) from None
    except UploadMismatch as exc:
        console.print(f"[red]nothing loaded:[/red] {_safe(exc)} (or --new-upload)")
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
    settings, origin = _configure(
        overrides={"country": country, "warehouse": warehouse},
        api=False,
        url=source != "warehouse",
        state=False,
        outputs=[(file.parent, "FILE (its folder)")],
        notice=source == "warehouse",
    )
    code = settings.country
    catalog = None if source == "api" else catalog_from_warehouse(settings.warehouse, code)
    if catalog is not None and source == "auto":
        from sodtrack.preflight import run_preflight

        for line in run_preflight(settings, origin, api=False, state=False).notice():
            typer.echo(line, err=True)
    if catalog is None and source == "warehouse":
        console.print(f"[red]no published catalog for {code} in {settings.warehouse}[/red]")
        raise typer.Exit(EXIT_UNUSABLE)
    if catalog is None:
        from sodtrack.bulkload import country_client

        _check_api(settings, origin, code)

        async def live() -> CatalogLists:
            async with country_client(settings, code) as client:
                return await catalog_from_api(client, code)

        with console.status("reading the catalog from the live API…"), _configuration_errors():
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
    settings, origin = _configure(overrides={"country": country}, api=False, url=True, notice=False)
    ledger = open_ledger(settings)
    try:
        record = ledger.get_upload(upload_id)
        if record is None:
            console.print(
                f"[red]no upload {_safe(upload_id)} in the ledger "
                f"({_safe(_without_password(settings.state_url))})"
                "[/red]"
            )
            raise typer.Exit(EXIT_UNUSABLE)
        code = settings.country if country else record.country
        if code != record.country:
            console.print(
                f"[red]upload {_safe(upload_id)} is for {record.country}, not {code}[/red]"
            )
            raise typer.Exit(EXIT_UNUSABLE)
        _check_api(settings, origin, code)

        async def run() -> CancelResult:
            async with country_client(settings, code) as client:
                return await cancel_upload(upload_id, client, ledger, reason=reason)

        try:
            with _configuration_errors():
                result = asyncio.run(run())
        except LeaseHeld as exc:
            console.print(f"[yellow]{_safe(exc)}[/yellow]: run the command again later.")
            raise typer.Exit(EXIT_INCOMPLETE) from None
    finally:
        ledger.close()
    console.print(
        f"upload {_safe(upload_id)} ({_safe(record.file_name)}, {record.country}): cancelled "
        f"{result.cancelled} booking(s) now, {result.already_cancelled} already cancelled "
        "by an earlier cancel"
    )
    for reference, message in result.failed:
        console.print(f"[red]not cancelled[/red] {_safe(reference)}: {_safe(message)}")
    console.print(_safe(result.note))
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
