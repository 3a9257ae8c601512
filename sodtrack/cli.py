"""``sodtrack-etl``: everything a user runs, without needing a Prefect server.

The same library work the Prefect flows sequence, from a terminal, with progress bars:
``extract`` (nightly extraction), ``validate`` (re-run the suites on a published version),
``demo`` (the main job end to end against the embedded simulator), ``load``/``template``/
``cancel``/``sample`` (bulk loads; ``sample`` builds a realistic file from the configured API's
live catalog, :mod:`sodtrack.sample`), ``watch`` (the upload inbox; it needs a Prefect server
to announce uploads to: ``PREFECT_API_URL``, from the environment or the active Prefect
profile, with ``PREFECT_API_KEY`` or ``PREFECT_API_AUTH_STRING`` when the server wants them),
``serve`` (the upload page, :mod:`sodtrack.web`; it announces loads to that Prefect API when
there is one, else runs them itself), ``users`` (the page's accounts), ``prefect
secret|schedules|deploy`` (set-up of Prefect, :mod:`tasks.admin`) and ``prefect apply`` (the
automations of ``automations/``: alerts as code, :mod:`tasks.automations`). Heavy imports
(pandas, pyarrow, Great Expectations) happen inside the commands so ``--help`` stays instant.

The CLI is a shell, like ``flows/`` and ``tasks/``: ``watch``, ``serve`` and ``prefect …`` import
the Prefect side (``tasks/watch.py``, ``tasks/admin.py``, ``tasks/automations.py``) inside the
command, so the rest of the library never imports Prefect. What the CLI and the demo share
(console, progress bars, the extraction and the bulk load run and printed) is in
:mod:`sodtrack.terminal`; neither imports the other.

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
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from sodtrack.terminal import (
    console,
    extract_with_progress,
    load_with_progress,
    print_load,
    print_report,
    safe,
)

if TYPE_CHECKING:
    from sodtrack.bulkload.template import CatalogLists
    from sodtrack.settings import Origin, Settings

app = typer.Typer(
    help="The Sodtrack data pipeline: nightly Parquet extraction and spreadsheet bulk loads.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)

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
        from sodtrack.objstore import is_remote

        root: str | Path = (
            settings.warehouse if is_remote(settings.warehouse) else Path(settings.warehouse)
        )
        label = "--warehouse" if warehouse else "SODTRACK_WAREHOUSE"
        return [(root, label)] + [(settings.data_dir(n), label) for n in ("reports", "docs")]

    settings, _ = _configure(
        countries=country, overrides={"warehouse": warehouse}, outputs_of=folders
    )
    countries = country or [settings.country]
    with _configuration_errors():
        report = asyncio.run(
            extract_with_progress(settings, countries, dataset or [], full_refresh)
        )
    print_report(report)
    raise typer.Exit(EXIT_OK if report.success else EXIT_NOT_PUBLISHED)


warehouse_app = typer.Typer(help="The warehouse's Delta Lake tables.", no_args_is_help=True)
app.add_typer(warehouse_app, name="warehouse")


@warehouse_app.command("migrate")
def warehouse_migrate(
    warehouse: Annotated[
        str | None, typer.Option(help="Old-layout warehouse folder (default SODTRACK_WAREHOUSE).")
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(help="Write the tables there instead (e.g. s3://bucket/warehouse)."),
    ] = None,
) -> None:
    """Turn the pre-Delta layout (``current`` link, ``_versions/``) into Delta Lake tables,
    check their row counts, then remove the old versions."""
    from sodtrack.warehouse import Warehouse
    from sodtrack.warehouse.migrate import migrate

    _logging(False)
    settings, _ = _configure(overrides={"warehouse": warehouse}, api=False, state=False)
    target = None
    if to:
        target = Warehouse.from_settings(settings.model_copy(update={"warehouse": to}))
    done = migrate(settings.warehouse, target=target)
    for m in done:
        console.print(f"{m.dataset}: {m.old_version} → {m.table} ({m.rows:,} rows)")
    if not done:
        console.print(f"nothing to migrate in {settings.warehouse} (no dataset with `current`)")


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

    from sodtrack.extract.gate import previous_rows
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
    wh = Warehouse.from_settings(settings)
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
    session = ValidationSession(
        f"validate-{dataset}-{version}",
        docs_dir=docs,
        batch_memory=int(settings.validation_batch_memory),
    )
    data = wh.read_current(dataset)
    snapshot = "snapshot_date" in data.schema.names
    outcome = session.validate(
        dataset,
        published_chunks(data, code),
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
    from sodtrack.bulkload import LeaseHeld, MappingFileError
    from sodtrack.bulkload.run import outbox_root
    from sodtrack.errors import UploadMismatch

    _logging(verbose)

    def folders(settings: Settings) -> list[tuple[str | Path, str]]:
        if out is not None:
            return [(out, "--out")]
        return [(outbox_root(settings, file), "SODTRACK_OUTBOX")]

    settings, _ = _configure(overrides={"country": country}, outputs_of=folders)
    code = settings.country
    mode = "dry run of" if dry_run else "loading"
    console.print(f"[bold]{mode} {safe(file)} for {code}[/bold]")
    try:
        with _configuration_errors():
            run = asyncio.run(
                load_with_progress(
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
        console.print(f"[yellow]{safe(exc)}[/yellow]: run the command again later; it resumes.")
        raise typer.Exit(EXIT_INCOMPLETE) from None
    except MappingFileError as exc:
        console.print(f"[red]nothing loaded:[/red] {safe(exc)}")
        raise typer.Exit(EXIT_UNUSABLE) from None
    except UploadMismatch as exc:
        console.print(f"[red]nothing loaded:[/red] {safe(exc)} (or --new-upload)")
        raise typer.Exit(EXIT_UNUSABLE) from None
    print_load(run)
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
    from sodtrack.bulkload.template import catalog_from_api, catalog_from_warehouse, write_template

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
        from sodtrack.client import country_client

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
    from sodtrack.bulkload import CancelResult, LeaseHeld, cancel_upload
    from sodtrack.bulkload.run import open_ledger
    from sodtrack.client import country_client

    _logging(False)
    settings, origin = _configure(overrides={"country": country}, api=False, url=True, notice=False)
    ledger = open_ledger(settings)
    try:
        record = ledger.get_upload(upload_id)
        if record is None:
            console.print(
                f"[red]no upload {safe(upload_id)} in the ledger "
                f"({safe(_without_password(settings.state_url))})"
                "[/red]"
            )
            raise typer.Exit(EXIT_UNUSABLE)
        code = settings.country if country else record.country
        if code != record.country:
            console.print(
                f"[red]upload {safe(upload_id)} is for {record.country}, not {code}[/red]"
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
            console.print(f"[yellow]{safe(exc)}[/yellow]: run the command again later.")
            raise typer.Exit(EXIT_INCOMPLETE) from None
    finally:
        ledger.close()
    console.print(
        f"upload {safe(upload_id)} ({safe(record.file_name)}, {record.country}): cancelled "
        f"{result.cancelled} booking(s) now, {result.already_cancelled} already cancelled "
        "by an earlier cancel"
    )
    for reference, message in result.failed:
        console.print(f"[red]not cancelled[/red] {safe(reference)}: {safe(message)}")
    console.print(safe(result.note))
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


EXIT_NO_API = 2
"""``watch``: no Prefect API to announce uploads to."""


@app.command()
def watch(
    inbox: Annotated[
        str | None, typer.Option(help="Inbox folder or fsspec URL (default SODTRACK_INBOX).")
    ] = None,
    uploads: Annotated[
        str | None, typer.Option(help="Where uploads are kept (default SODTRACK_UPLOADS).")
    ] = None,
    outbox: Annotated[
        str | None, typer.Option(help="Where results land (default SODTRACK_OUTBOX).")
    ] = None,
    interval: Annotated[float, typer.Option(help="Seconds between polls.")] = 2.0,
    settle: Annotated[
        float, typer.Option(help="Seconds a file must stay unchanged before it is taken.")
    ] = 1.0,
    max_wait: Annotated[
        float,
        typer.Option(
            help="Seconds a stable file that does not look whole (a zip without its "
            "directory, a CSV without a final line end) waits before it is taken anyway."
        ),
    ] = 900.0,
    once: Annotated[
        bool, typer.Option("--once", help="Poll twice (settle apart) and exit: for cron.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Watch the upload inbox: each new spreadsheet is stored under an upload id and a
    ``sodtrack.upload.received`` event starts the ``bulk-load`` deployment on Prefect."""
    from sodtrack.bulkload.inbox import (
        InboxWatcher,
        PrefectEventsEmitter,
        PrefectRunLookup,
        Registry,
    )
    from sodtrack.textsafe import printable

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    overrides: dict[str, Any] = {
        k: v for k, v in (("inbox", inbox), ("uploads", uploads), ("outbox", outbox)) if v
    }
    # Settings, state database and the three folders checked up front (exit 2, one line);
    # the watcher never talks to the Sodtrack API itself, the flows it starts do.
    settings, _ = _configure(
        overrides=overrides,
        api=False,
        outputs_of=lambda s: [
            (s.inbox, "--inbox" if inbox else "SODTRACK_INBOX"),
            (s.uploads, "--uploads" if uploads else "SODTRACK_UPLOADS"),
            (s.outbox, "--outbox" if outbox else "SODTRACK_OUTBOX"),
        ],
    )
    from tasks import watch as prefect_side  # the Prefect side, imported only here

    api_url, api_key, auth_string = prefect_side.prefect_api()
    if not api_url:
        typer.echo(
            "PREFECT_API_URL is not set: the watcher announces uploads to a Prefect server "
            "(e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api)",
            err=True,
        )
        raise typer.Exit(EXIT_NO_API)
    emitter = PrefectEventsEmitter(api_url, api_key=api_key, auth_string=auth_string)
    lookup = PrefectRunLookup(
        api_url, ui_url=prefect_side.prefect_ui_url(), api_key=api_key, auth_string=auth_string
    )
    registry = Registry(settings.state_url)
    watcher = InboxWatcher(
        inbox=settings.inbox,
        uploads=settings.uploads,
        outbox=settings.outbox,
        default_country=settings.country,
        registry=registry,
        emit=emitter,
        lookup=lookup,
        settle_s=settle,
        max_wait_s=max_wait,
        s3_endpoint_url=settings.s3_endpoint_url,
    )
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        if once:
            watcher.poll()
            stop.wait(settle)
            for received in watcher.poll():
                name = printable(received.file_name)  # a newline in a name forges no line
                typer.echo(f"{received.upload_id}\t{received.country}\t{name}")
        else:
            watcher.run(interval_s=interval, stop=stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        emitter.close()
        lookup.close()
        registry.close()


prefect_app = typer.Typer(
    help="Set up Prefect for the pipeline: the secret block, deployments, schedules, alerts.",
    no_args_is_help=True,
)
app.add_typer(prefect_app, name="prefect")

DEFAULT_SECRET_BLOCK = "sodtrack-client-secret"  # noqa: S105 (a block's name, not a secret)
"""The Secret block ``prefect secret`` writes when ``SODTRACK_CLIENT_SECRET_BLOCK`` is unset."""


@prefect_app.command("secret")
def prefect_secret(
    from_env: Annotated[
        bool,
        typer.Option(
            "--from-env",
            help="Read the secret from SODTRACK_CLIENT_SECRET (environment or .env file).",
        ),
    ] = False,
    name: Annotated[
        str | None,
        typer.Option(
            help=f"Block name (default SODTRACK_CLIENT_SECRET_BLOCK, else {DEFAULT_SECRET_BLOCK})."
        ),
    ] = None,
) -> None:
    """Save the client secret into a Prefect Secret block, without a prompt; the value is
    never printed, only where it was read from."""
    if not from_env:
        typer.echo("say where the secret comes from: --from-env", err=True)
        raise typer.Exit(EXIT_CONFIGURATION)
    from sodtrack.errors import ConfigurationError
    from sodtrack.settings import resolve_settings

    try:
        settings, origin = resolve_settings()
    except ConfigurationError as exc:
        raise _configuration_error(exc) from None
    source = origin.source("client_secret")
    if source == "default":
        typer.echo(
            "configuration error: SODTRACK_CLIENT_SECRET is not set (environment or .env): "
            "nothing to save",
            err=True,
        )
        raise typer.Exit(EXIT_CONFIGURATION)
    block = name or settings.client_secret_block or DEFAULT_SECRET_BLOCK
    from tasks import admin  # the Prefect side, imported only here

    admin.save_secret(block, settings.client_secret.get_secret_value())
    typer.echo(f"Secret block {block!r} saved from SODTRACK_CLIENT_SECRET ({source})")
    if settings.client_secret_block != block:
        typer.echo(f"flow runs read it when the worker has SODTRACK_CLIENT_SECRET_BLOCK={block}")


def _apply_schedules() -> None:
    from sodtrack.errors import ConfigurationError
    from sodtrack.settings import resolve_settings
    from tasks import admin

    try:
        settings, _ = resolve_settings()
    except ConfigurationError as exc:
        raise _configuration_error(exc) from None
    countries = settings.served_countries
    for change in admin.apply_schedules(countries):
        state = "on" if change.active else "off"
        typer.echo(f"{change.slug}: {state}{' (changed)' if change.changed else ''}")


@prefect_app.command("schedules")
def prefect_schedules() -> None:
    """Switch on the nightly schedules of the countries served here (SODTRACK_COUNTRIES, else
    SODTRACK_COUNTRY), and every other one off."""
    _apply_schedules()


@prefect_app.command("deploy")
def prefect_deploy() -> None:
    """``prefect --no-prompt deploy --all`` from this checkout (deployments versioned by its git
    revision), then ``prefect schedules``."""
    from tasks import admin

    code = admin.deploy()
    if code:
        raise typer.Exit(code)
    _apply_schedules()


@app.command()
def sample(
    path: Annotated[Path, typer.Argument(help="The file to write (.xlsx or .csv).")],
    country: Annotated[str | None, typer.Option("--country", "-c")] = None,
    rows: Annotated[int, typer.Option(min=1, help="Rows (bookings).")] = 40,
    projects: Annotated[int, typer.Option(min=0, help="Projects among them (2-5 rows each).")] = 4,
    errors: Annotated[
        bool,
        typer.Option(
            "--errors/--no-errors",
            help="Make three rows wrong on purpose (an unknown SKU, a postal code out of "
            "coverage, an overpayment) so the rejects file has something to show.",
        ),
    ] = False,
    seed: Annotated[int, typer.Option(help="Same seed, same catalog: same file.")] = 11,
) -> None:
    """A realistic sample spreadsheet from the live catalog and coverage of the configured API
    (SODTRACK_ENV/SODTRACK_BASE_URL): active services, covered postal codes, free slots."""
    from sodtrack.client import country_client
    from sodtrack.sample import write_sample_file

    _logging(False)
    overrides: dict[str, object] = {"country": country} if country else {}
    settings, _ = _configure(
        countries=[country] if country else None, overrides=overrides, state=False
    )
    code = settings.country

    async def build() -> object:
        async with country_client(settings, code) as client:
            return await write_sample_file(
                client, path, country=code, rows=rows, projects=projects, errors=errors, seed=seed
            )

    with _configuration_errors():
        made = asyncio.run(build())
    typer.echo(str(made))


@prefect_app.command("apply")
def prefect_apply(
    country: Annotated[
        list[str] | None,
        typer.Option(
            "--country",
            "-c",
            help="Country whose nightly deadline alert to apply (repeatable); default "
            "SODTRACK_COUNTRY.",
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="The automation files; default automations/ of the checkout."),
    ] = None,
    prune: Annotated[
        bool,
        typer.Option(help="Delete automations tagged 'sodtrack' that no file declares any more."),
    ] = False,
    render: Annotated[
        Path | None,
        typer.Option(
            help="Also write the resolved automations here, one YAML file each, for "
            "`prefect automation create --from-file`."
        ),
    ] = None,
) -> None:
    """Create or update (by name) the automations declared under ``automations/`` on the
    Prefect server of the active profile (``PREFECT_API_URL``), notifying through the block
    ``SODTRACK_NOTIFY_BLOCK`` (created as a webhook when ``SODTRACK_NOTIFY_WEBHOOK_URL`` is
    set). Idempotent: run it after every change to those files."""
    settings, _ = _configure(api=False, state=False)
    from tasks import automations  # the Prefect side, imported only here
    from tasks import watch as prefect_side

    if not prefect_side.prefect_api()[0]:
        typer.echo(
            "PREFECT_API_URL is not set: the automations are applied to a Prefect server "
            "(e.g. export PREFECT_API_URL=http://127.0.0.1:4200/api)",
            err=True,
        )
        raise typer.Exit(EXIT_NO_API)
    with _configuration_errors():
        done, block = asyncio.run(
            automations.apply(
                settings,
                directory or automations.AUTOMATIONS_DIR,
                country or [settings.country],
                prune=prune,
                render_to=render,
            )
        )
    typer.echo(f"notify block: {block}")
    for applied in done:
        typer.echo(f"{applied.action}\t{applied.id}\t{applied.name}")


users = typer.Typer(
    help="Accounts of the upload page (sodtrack-etl serve), kept in the state database.",
    no_args_is_help=True,
)
app.add_typer(users, name="users")


def _accounts() -> Any:
    from sodtrack.web.accounts import Accounts

    settings, _ = _configure(api=False, url=False, notice=False)
    return Accounts(settings.state_url)


@contextlib.contextmanager
def _account_errors() -> Iterator[None]:
    from sodtrack.errors import AccountError

    try:
        yield
    except AccountError as exc:
        console.print(f"[red]{safe(exc)}[/red]")
        raise typer.Exit(EXIT_UNUSABLE) from None


def _password(password_stdin: bool) -> str:
    if password_stdin:
        import sys

        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="Account name (lower case).")],
    country: Annotated[
        list[str], typer.Option("--country", "-c", help="A country it may load into (repeat).")
    ],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Create an account (asks for its password)."""
    with _account_errors():
        account = _accounts().add(name, _password(password_stdin), country)
    typer.echo(f"account {account.name}: {', '.join(account.countries)}")


@users.command("list")
def users_list() -> None:
    """Every account, its countries and whether it is disabled."""
    for account in _accounts().all():
        state = "disabled" if account.disabled else "enabled"
        typer.echo(f"{account.name}\t{','.join(account.countries)}\t{state}")


@users.command("disable")
def users_disable(name: Annotated[str, typer.Argument()]) -> None:
    """Disable an account: its sessions and API tokens stop working at once."""
    with _account_errors():
        _accounts().disable(name)
    typer.echo(f"account {name}: disabled")


@users.command("passwd")
def users_passwd(
    name: Annotated[str, typer.Argument()],
    country: Annotated[
        list[str] | None,
        typer.Option("--country", "-c", help="Replace its countries with these (repeat)."),
    ] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from stdin.")
    ] = False,
) -> None:
    """Set an account's password (and, with --country, its countries); enables it again."""
    with _account_errors():
        accounts = _accounts()
        accounts.set_password(name, _password(password_stdin))
        if country:
            accounts.set_countries(name, country)
        accounts.enable(name)
    typer.echo(f"account {name}: password set")


@users.command("token")
def users_token(name: Annotated[str, typer.Argument()]) -> None:
    """Make an API token for the account's scripts (printed once: keep it secret)."""
    with _account_errors():
        token = _accounts().new_token(name)
    typer.echo(token)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Default SODTRACK_WEB_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Default SODTRACK_WEB_PORT.")] = None,
    embedded: Annotated[
        bool,
        typer.Option(
            "--embedded",
            help="Run loads in this process even when a Prefect API is configured.",
        ),
    ] = False,
) -> None:
    """The upload page for operations staff: sign in, upload a spreadsheet, check every row,
    load it, download the results. Loads are announced to Prefect (the bulk-load deployment
    runs them) when PREFECT_API_URL is set, else run here. Behind a reverse proxy on another
    host, set SODTRACK_WEB_FORWARDED_ALLOW_IPS to the proxy's address: the sign-in throttle
    then counts each client, not the proxy."""
    import uvicorn

    from sodtrack.bulkload.inbox import PrefectEventsEmitter
    from sodtrack.web.app import create_web_app, proxy_options

    _logging(False)
    settings, _ = _configure(
        api=False,
        outputs_of=lambda s: [(s.uploads, "SODTRACK_UPLOADS"), (s.outbox, "SODTRACK_OUTBOX")],
    )
    emitter = None
    if not embedded:
        from tasks import watch as prefect_side  # the Prefect side, imported only here

        api_url, api_key, auth_string = prefect_side.prefect_api()
        if api_url:
            emitter = PrefectEventsEmitter(api_url, api_key=api_key, auth_string=auth_string)
    where = "announced to Prefect" if emitter else "run by this process"
    bind_host = host or settings.web_host
    bind_port = port or settings.web_port
    typer.echo(f"upload page on http://{bind_host}:{bind_port}/ (loads {where})", err=True)
    trusted = ", ".join(settings.web_forwarded_allow_ips)
    typer.echo(f"X-Forwarded-For believed from: {trusted}", err=True)
    web_app = create_web_app(settings, emit=emitter)
    try:
        # Whose X-Forwarded-For is believed: SODTRACK_WEB_FORWARDED_ALLOW_IPS (the sign-in
        # throttle counts per client address), never uvicorn's own FORWARDED_ALLOW_IPS.
        uvicorn.run(
            web_app,
            host=bind_host,
            port=bind_port,
            log_level="info",
            **proxy_options(settings),
        )
    finally:
        if emitter is not None:
            emitter.close()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
