"""``sodtrack-etl load / template / cancel`` against a loopback simulator, configured through
the environment: exit codes, results files, dry run, cancel, the template's content."""

from __future__ import annotations

import asyncio
import codecs
import csv
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner, Result

from sodtrack import cli
from sodtrack.bulkload import read_upload
from sodtrack.bulkload import run as bulkload
from sodtrack.bulkload.synth import COLUMNS
from sodtrack.bulkload.template import (
    BOOKINGS_SHEET,
    CATALOG_SHEET,
    INSTRUCTIONS_SHEET,
    TEMPLATE_COLUMNS,
)
from sodtrack.cli import app
from sodtrack.client import country_client
from sodtrack.settings import Settings

from .conftest import Sim, clean_file, file_with_rejects

pytestmark = pytest.mark.slow


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def printed(result: Result, key: str) -> str:
    """A ``key: value`` line the command printed on stdout."""
    for line in result.stdout.splitlines():
        if line.startswith(f"{key}: "):
            return line.split(": ", 1)[1]
    raise AssertionError(f"no {key!r} line in:\n{result.output}")


def results_of(result: Result) -> list[dict[str, str]]:
    path = Path(printed(result, "results_csv"))
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def test_exit_codes_are_the_library_s() -> None:
    assert cli.EXIT_OK == bulkload.EXIT_OK == 0
    assert cli.EXIT_UNUSABLE == bulkload.EXIT_UNUSABLE == 2
    assert cli.EXIT_REJECTED == bulkload.EXIT_REJECTED == 4
    assert cli.EXIT_INCOMPLETE == bulkload.EXIT_INCOMPLETE == 5
    help_text = invoke("load", "--help").output
    for code in ("2 ", "4 ", "5 ", "0 "):
        assert code in help_text


def test_clean_file_exits_0_then_a_rerun_creates_nothing(sim: Sim) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.xlsx")
    first = invoke("load", path, "--country", "cl")
    assert first.exit_code == 0, first.output
    upload_id = printed(first, "upload_id")
    assert upload_id.startswith("upl_cl_")
    results = Path(printed(first, "results"))
    assert results.exists()
    assert results.suffix == ".xlsx"
    assert results.parent == sim.outbox / upload_id  # <SODTRACK_OUTBOX>/<upload_id>/
    rows = results_of(first)
    assert len(rows) == 20
    assert {r["outcome"] for r in rows} == {"created"}
    bookings = sim.bookings()
    assert all(bookings[r["input: external_reference"]].id == r["booking_id"] for r in rows)
    writes = sim.writes()

    again = invoke("load", path, "--country", "cl")
    assert again.exit_code == 0, again.output
    assert printed(again, "upload_id") == upload_id
    assert {r["outcome"] for r in results_of(again)} == {"already_existed"}
    assert sim.writes() == writes, "a re-run creates nothing"


def test_rejected_rows_exit_4_with_a_rejects_file(sim: Sim) -> None:
    sample = file_with_rejects(sim.root / "sample.xlsx")
    result = invoke("load", sample.path, "--out", sim.root / "out")
    assert result.exit_code == 4, result.output
    assert "exit code 4" in result.output
    rows = results_of(result)
    assert len(rows) == sample.rows
    rejected = {r["input: external_reference"]: r for r in rows if r["outcome"] == "rejected"}
    assert set(rejected) == set(sample.bad)
    assert all(r["message"] and r["suggested_fix"] for r in rejected.values())
    assert {r["outcome"] for r in rows} == {"created", "rejected"}
    rejects = Path(printed(result, "rejects").split(" (")[0])
    assert rejects.parent == sim.root / "out"
    with rejects.with_suffix(".csv").open(encoding="utf-8-sig", newline="") as fh:
        refs = {r["external_reference"] for r in csv.DictReader(fh)}
    assert refs == set(sample.bad)

    # The same upload through the library the flow's artifacts use: tables are capped and
    # say how many rows they leave out.
    run = asyncio.run(bulkload.run_load(Settings(), sample.path, uploaded_by="t", out=sim.root))
    assert run.upload_id == printed(result, "upload_id")
    shown, more = run.problem_rows(limit=2)
    assert (len(shown), more) == (2, 1)
    assert all(p["message"] and p["suggested_fix"] for p in shown)
    assert "… and 2 more" in run.summary_markdown(limit=1)
    assert run.exit_code == 4
    assert "3 rejected, 0 skipped, 0 failed (transient)" in run.headline()


def test_dry_run_checks_everything_and_creates_nothing(sim: Sim) -> None:
    path = clean_file(sim.root / "bookings.xlsx")
    writes = sim.writes()
    result = invoke("load", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert sim.writes() == writes
    assert printed(result, "upload_id").endswith("-dry")
    assert {r["outcome"] for r in results_of(result)} == {"would_create"}
    assert "availability can change" in " ".join(result.output.split())

    sample = file_with_rejects(sim.root / "sample.xlsx")
    result = invoke("load", sample.path, "--dry-run", "--no-check-availability")
    assert result.exit_code == 4, result.output
    assert sim.writes() == writes
    outcomes = {r["input: external_reference"]: r["outcome"] for r in results_of(result)}
    assert {ref for ref, o in outcomes.items() if o == "rejected"} == set(sample.bad)


def test_a_file_that_cannot_be_loaded_exits_2(sim: Sim) -> None:
    missing_column = sim.root / "no-postal-code.csv"
    with missing_column.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow([c for c in COLUMNS if c != "postal_code"])
        writer.writerow(["REF-1", "SKU", "", "03/12/2026 10:00", "Ana", "Rojas", "a@b.cl"])
    result = invoke("load", missing_column)
    assert result.exit_code == 2, result.output
    assert "postal_code" in result.output
    assert not any(sim.writes().values())

    bad_mapping = sim.root / "map.yaml"
    bad_mapping.write_text("Código: not_a_column\n", encoding="utf-8")
    result = invoke("load", missing_column, "--mapping", bad_mapping)
    assert result.exit_code == 2, result.output
    assert invoke("load", sim.root / "nope.xlsx").exit_code == 2  # click: no such file
    assert invoke("load", missing_column, "--country", "zz").exit_code == 2


def test_transient_failures_exit_5(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    from sodtrack.simulator.app import create_app
    from sodtrack.simulator.testing import serve_in_thread, small_config

    path = clean_file(sim.root / "bookings.xlsx", rows=6, projects=1)
    monkeypatch.setenv("SODTRACK_RETRY_BUDGET_S", "0.5")
    with serve_in_thread(create_app(small_config(fault_rate=1.0))) as down:
        monkeypatch.setenv("SODTRACK_BASE_URL", down)
        result = invoke("load", path)
    assert result.exit_code == 5, result.output
    assert {r["outcome"] for r in results_of(result)} == {"failed_transient"}
    assert all(r["retry_on_rerun"] == "yes" for r in results_of(result))

    monkeypatch.setenv("SODTRACK_BASE_URL", sim.url)  # Sodtrack is back: the re-run resumes
    result = invoke("load", path)
    assert result.exit_code == 0, result.output
    assert {r["outcome"] for r in results_of(result)} == {"created"}


def test_cancel_undoes_what_an_upload_created(sim: Sim) -> None:
    path = clean_file(sim.root / "bookings.xlsx", rows=8, projects=1)
    loaded = invoke("load", path)
    assert loaded.exit_code == 0, loaded.output
    upload_id = printed(loaded, "upload_id")
    refs = [r["input: external_reference"] for r in results_of(loaded)]

    result = invoke("cancel", upload_id)
    assert result.exit_code == 0, result.output
    assert printed(result, "cancelled") == "8"
    bookings = sim.bookings()
    assert {bookings[ref].status for ref in refs} == {"cancelled"}
    assert "cannot be deleted" in " ".join(result.output.split())

    again = invoke("cancel", upload_id, "--country", "cl")
    assert again.exit_code == 0, again.output
    assert printed(again, "cancelled") == "0"
    assert "8 already cancelled" in " ".join(again.output.split())

    assert invoke("cancel", "upl_cl_nosuchupload").exit_code == 2
    assert invoke("cancel", upload_id, "--country", "pe").exit_code == 2


def _check_template(path: Path, services: int, variants: int) -> None:
    wb = load_workbook(path)
    assert wb.sheetnames == [BOOKINGS_SHEET, INSTRUCTIONS_SHEET, CATALOG_SHEET]
    assert wb[CATALOG_SHEET].sheet_state == "hidden"
    ws = wb[BOOKINGS_SHEET]
    header = [c.value for c in ws[1]]
    assert header == list(TEMPLATE_COLUMNS)
    assert all(c.comment is not None and c.comment.text for c in ws[1])
    letter = {name: c.column_letter for name, c in zip(header, ws[1], strict=True)}
    for name in ("postal_code", "customer_phone", "customer_document_id", "external_reference"):
        assert ws.column_dimensions[letter[name]].number_format == "@", name
    assert ws.column_dimensions[letter["scheduled_date"]].number_format == "dd/mm/yyyy"
    assert ws.column_dimensions[letter["scheduled_time"]].number_format == "hh:mm"
    assert ws.column_dimensions[letter["payment_amount"]].number_format == "#,##0"  # CLP
    lists = {str(dv.sqref).split(":")[0][:-1]: dv for dv in ws.data_validations.dataValidation}
    assert lists[letter["service_sku"]].type == "list"
    assert lists[letter["service_sku"]].formula1 == f"catalog!$A$2:$A${services + 1}"
    assert lists[letter["variant_sku"]].formula1 == f"catalog!$G$2:$G${variants + 1}"
    assert lists[letter["payment_method"]].formula1 == '"card,transfer,cash,financing"'
    assert lists[letter["payment_currency"]].formula1 == '"CLP"'
    assert lists[letter["booking_status"]].formula1 == (
        '"scheduled,confirmed,in_progress,completed,cancelled"'
    )
    assert str(lists[letter["service_sku"]].sqref) == f"{letter['service_sku']}2:" + (
        f"{letter['service_sku']}1048576"
    )
    catalog = wb[CATALOG_SHEET]
    skus = [catalog.cell(row=n, column=1).value for n in range(2, services + 2)]
    assert all(skus)
    assert catalog.cell(row=services + 2, column=1).value is None
    text = "\n".join(str(r[0].value or "") for r in wb[INSTRUCTIONS_SHEET].iter_rows())
    for needle in (
        "day first",
        "America/Santiago",
        "CLP has no decimals",
        "stage_sequence",
        "payment_reference",
        "7500000",
        "Exit codes",
        "  4: ",
        "booking_status corrects a booking already in Sodtrack",
        "A new booking always starts scheduled",
    ):
        assert needle in text, needle


def test_template_from_the_live_api_then_filled_and_loaded(sim: Sim) -> None:
    path = sim.root / "template.xlsx"
    result = invoke("template", "--country", "cl", path)
    assert result.exit_code == 0, result.output
    assert "live Sodtrack API" in result.output

    async def active() -> tuple[int, int]:
        async with country_client(Settings(), "cl") as client:
            services = [s for s in await client.collect_services(active=True) if s.active]
            variants = 0
            for s in services:
                variants += sum(v.active for v in await client.collect_variants(s.id, True))
            return len(services), variants

    services, variants = asyncio.run(active())
    _check_template(path, services, variants)

    # A person fills it in (values typed as Excel would store them) and loads it.
    sample = clean_file(sim.root / "sample.xlsx", rows=4, projects=0)
    src = load_workbook(sample).active
    assert src is not None
    source = [
        dict(zip(COLUMNS, (c.value for c in r), strict=True)) for r in src.iter_rows(min_row=2)
    ]
    wb = load_workbook(path)
    ws = wb[BOOKINGS_SHEET]
    for n, row in enumerate(source, start=2):
        for i, name in enumerate(TEMPLATE_COLUMNS, start=1):
            if name == "scheduled_date":
                value = row["scheduled_start"].date()
            elif name == "scheduled_time":
                value = row["scheduled_start"].time()
            else:
                value = row.get(name)
            ws.cell(row=n, column=i, value=value)
    wb.save(path)
    parsed = read_upload(path, "cl")
    assert not parsed.upload_issues
    assert not parsed.unknown_columns
    assert [r.is_valid for r in parsed.rows] == [True] * 4
    loaded = invoke("load", path)
    assert loaded.exit_code == 0, loaded.output


def test_template_from_the_warehouse_catalog(sim: Sim) -> None:
    extracted = invoke("extract", "--dataset", "catalog")
    assert extracted.exit_code == 0, extracted.output
    path = sim.root / "template.xlsx"
    result = invoke("template", path, "--source", "warehouse")
    assert result.exit_code == 0, result.output
    assert "the warehouse at" in " ".join(result.output.split())
    from sodtrack.bulkload.template import catalog_from_warehouse

    catalog = catalog_from_warehouse(str(sim.root / "warehouse"), "cl")
    assert catalog is not None
    assert catalog.services
    assert len({s.sku for s in catalog.services}) == len(catalog.services)
    _check_template(path, len(catalog.services), len(catalog.variants))
    assert invoke("template", sim.root / "t.csv").exit_code == 2


def test_template_from_an_empty_warehouse_is_refused_when_asked(sim: Sim) -> None:
    result = invoke("template", sim.root / "t.xlsx", "--source", "warehouse")
    assert result.exit_code == 2, result.output


def test_a_csv_cut_while_being_copied_exits_2_and_creates_nothing(sim: Sim) -> None:
    # The issue's case: the copy stops inside a project's row, before its project columns;
    # read as it was, that row became a standalone booking and the rest was lost.
    complete = clean_file(sim.root / "bookings.csv", rows=8, projects=2)
    data = complete.read_bytes()
    with complete.open(encoding="utf-8", newline="") as fh:
        header, *records = list(csv.reader(fh))
    project = header.index("project_reference")
    first = next(i for i, r in enumerate(records) if r[project])
    lines = [",".join(header), *(",".join(r) for r in records[:first])]
    partial = "\r\n".join(lines) + "\r\n" + ",".join(records[first][:project])
    cut = sim.root / "copy-in-progress.csv"
    cut.write_bytes(partial.encode("utf-8"))
    assert data.startswith(cut.read_bytes())  # a true prefix of the complete file

    for args in (("--dry-run",), ()):
        result = invoke("load", cut, *args)
        assert result.exit_code == 2, result.output
        assert "cut short" in " ".join(result.output.split())
        assert not any(sim.writes().values())
    assert not set(sim.bookings()) & {r[0] for r in records}

    # The complete file, dropped afterwards, loads whole: the project row in its project.
    result = invoke("load", complete)
    assert result.exit_code == 0, result.output
    rows = results_of(result)
    assert len(rows) == len(records)
    assert {r["outcome"] for r in rows} == {"created"}
    row = next(r for r in rows if r["input: external_reference"] == records[first][0])
    assert row["project_id"]


def test_excel_unicode_text_loads(sim: Sim) -> None:
    # Excel's "Unicode text": UTF-16 LE with a BOM, TAB-separated. It used to be read as
    # CP-1252 with a NUL in every cell, and crashed the results writer.
    source = clean_file(sim.root / "bookings.csv", rows=6, projects=1)
    with source.open(encoding="utf-8", newline="") as fh:
        records = list(csv.reader(fh))
    text = "".join("\t".join(r) + "\r\n" for r in records)
    unicode_text = sim.root / "bookings.txt"
    unicode_text.write_bytes(codecs.BOM_UTF16_LE + text.encode("utf-16-le"))
    result = invoke("load", unicode_text, "--dry-run")
    assert result.exit_code == 0, result.output
    rows = results_of(result)
    assert [r["input: external_reference"] for r in rows] == [r[0] for r in records[1:]]
    assert {r["outcome"] for r in rows} == {"would_create"}
    assert load_workbook(printed(result, "results"), read_only=True).active is not None
