"""The terminal side shared by the CLI (:mod:`sodtrack.cli`) and the demo (:mod:`sodtrack.demo`):
the stderr console, text made safe for it, progress bars, and the extraction and bulk load run
with progress bars and printed. Neither the CLI nor the demo imports the other.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress as RichProgress
    from rich.progress import TaskID

    from sodtrack.bulkload.run import LoadRun
    from sodtrack.client import SodtrackClient
    from sodtrack.extract import RunReport
    from sodtrack.settings import Settings

console = Console(stderr=True, width=None if sys.stderr.isatty() else 120)


def safe(text: object) -> str:
    """User-supplied text (file names, headers, cell values in messages) for ``console.print``:
    control characters escaped (:func:`sodtrack.textsafe.printable`), rich markup inert."""
    from rich.markup import escape

    from sodtrack.textsafe import printable

    return escape(printable(text))


@contextlib.contextmanager
def progress_bars(unit: str = "records") -> Iterator[RichProgress]:
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


async def extract_with_progress(
    settings: Settings,
    countries: list[str],
    datasets: list[str],
    full_refresh: bool,
) -> RunReport:
    from sodtrack.client import country_client
    from sodtrack.extract import ExtractionOptions, run_extraction
    from sodtrack.state import StateStore
    from sodtrack.warehouse import Warehouse

    options = ExtractionOptions(
        countries=tuple(countries),
        datasets=tuple(datasets),
        full_refresh=full_refresh,
        docs_dir=settings.output_location("docs"),
        reports_dir=settings.output_location("reports"),
        s3_endpoint_url=settings.s3_endpoint_url,
        validation_batch_memory=int(settings.validation_batch_memory),
    )

    def factory(country: str) -> SodtrackClient:
        return country_client(settings, country)

    store = StateStore(settings.state_url)
    try:
        with progress_bars() as bars:
            tasks: dict[str, object] = {}

            def progress(dataset: str, n: int) -> None:
                if dataset not in tasks:
                    tasks[dataset] = bars.add_task(dataset, total=None)
                bars.advance(tasks[dataset], n)  # type: ignore[arg-type]

            return await run_extraction(
                options,
                warehouse=Warehouse.from_settings(settings),
                store=store,
                client_factory=factory,
                progress=progress,
            )
    finally:
        store.dispose()


REPORT_COLUMNS = (
    "country",
    "dataset",
    "status",
    "expected",
    "received",
    "deduplicated",
    "written",
    "rows_total",
)
"""The columns of the extraction's "records per dataset" table, in order."""
_TEXT_COLUMNS = ("country", "dataset", "status")


def print_report(report: RunReport) -> None:
    from rich.markdown import Markdown
    from rich.table import Table

    console.print(Markdown(report.summary_markdown()))
    table = Table(title="records per dataset")
    for column in REPORT_COLUMNS:
        table.add_column(column, justify="left" if column in _TEXT_COLUMNS else "right")
    for row in report.counts_table():
        table.add_row(*("" if row[c] is None else str(row[c]) for c in REPORT_COLUMNS))
    console.print(table)


async def load_with_progress(
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
    from sodtrack.bulkload import load_mapping_file
    from sodtrack.bulkload.run import new_upload_salt, run_load

    columns = load_mapping_file(mapping) if mapping else None
    with progress_bars("") as bars:
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


def print_load(run: LoadRun, rows: int = 10) -> None:
    """Counts by outcome, notices, the first rows not created, the files, the verdict."""
    from rich.table import Table

    from sodtrack.bulkload.run import EXIT_CODES
    from sodtrack.textsafe import printable

    r = run.result
    console.print(f"upload [bold]{r.upload_id}[/bold] (run {r.run_no}) of {safe(r.file_name)}")
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
        console.print(f"[red]file:[/red] {safe(error)}")
    for issue in run.parsed.upload_issues:
        if issue.severity != "error":
            console.print(f"[yellow]file:[/yellow] {safe(issue.message)}")
    for notice in r.notices:
        console.print(f"[yellow]notice:[/yellow] {safe(notice)}")
    problems, more = run.problem_rows(rows)
    if problems:
        bad = Table(title="rows not created" + (f" (first {rows}; {more} more)" if more else ""))
        for column in ("row", "reference", "outcome", "message", "suggested fix"):
            bad.add_column(column, overflow="fold")
        for p in problems:
            bad.add_row(
                *(
                    safe(p[k])
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
            f"[red]not written:[/red] {kind}: {safe(why)} (re-run the same command to write it)"
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
    for kind, path in run.latest_paths().items():
        typer.echo(f"latest_{kind}: {printable(path)}")
