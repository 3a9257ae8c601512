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

    from sodtrack.client import SodtrackClient
    from sodtrack.extract import RunReport
    from sodtrack.settings import Settings

app = typer.Typer(
    help="The Sodtrack data pipeline: nightly Parquet extraction and spreadsheet bulk loads.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals may hold credentials
)
console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)

EXIT_OK = 0
EXIT_NOT_PUBLISHED = 3
"""``extract``: a family was quarantined (critical validation failure) or failed."""


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
def _progress() -> Iterator[RichProgress]:
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
        TextColumn("records"),
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

    from sodtrack.extract.gate import previous_rows
    from sodtrack.validation import ValidationSession, reference_parameters
    from sodtrack.warehouse import Warehouse

    settings = _settings(country, warehouse)
    wh = Warehouse(settings.warehouse)
    code = settings.country
    version = wh.current_version(dataset)
    if version is None:
        console.print(f"[red]{dataset}: nothing published yet in {settings.warehouse}")
        raise typer.Exit(2)

    def mine(name: str) -> object:
        table = wh.read_current(name).to_table()
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
    snapshot = "snapshot_date" in wh.read_current(dataset).schema.names
    outcome = session.validate(
        dataset,
        mine(dataset),
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
