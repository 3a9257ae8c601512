"""Issue 14 item 5: results and rejects files a person can read.

The answer leads (outcome, message, fix in the first columns), the cells at fault are filled
(red for a rejected row, amber for a warning) with the message as the cell's comment, columns
are sized to their content, the header is frozen, and the rejects file keeps the input columns
exactly as uploaded: fixed and uploaded again as it is, its rows load."""

from __future__ import annotations

import asyncio
import csv
from pathlib import Path

import openpyxl
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from bulkload.helpers import SIM_TODAY, read_rows, sim_client
from sodtrack.bulkload import read_upload
from sodtrack.bulkload.answers.highlight import CellMark, highlights
from sodtrack.bulkload.answers.results import WIDTH_MAX, write_results
from sodtrack.bulkload.engine.checks import reader_rejection
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.issues import IssueCode
from sodtrack.bulkload.messages import explain_api_error, explain_check
from sodtrack.bulkload.outcomes import Explanation, RowResult, UploadResult
from sodtrack.bulkload.reading.headers import ANSWER_COLUMNS
from sodtrack.bulkload.reading.upload import ParsedUpload
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import small_config

RED = "00FFC7CE"
AMBER = "00FFEB9C"
HEADER = [
    "Referencia",
    "SKU",
    "Fecha",
    "Hora",
    "Nombre",
    "Apellido",
    "Correo",
    "Teléfono",
    "Dirección",
    "Comuna",
    "Región",
    "Código Postal",
    "Notas",
]
LINES = [
    # a reader error (the e-mail) and a warning (the phone gets its country code)
    "B-1,SKU-1,2026-12-03,10:00,Ána,Rojas,ana@example,912345678,Av 1,Santiago,RM,7500000,ok",
    # a warning only; created
    "B-2,SKU-1,2026-12-03,11:00,José,Pérez,jose@example.com,912345678,Av 2,Santiago,RM,7500000,",
    # rejected by Sodtrack's coverage: the postal code is at fault
    "B-3,SKU-2,2026-12-03,12:00,Luz,Díaz,luz@example.com,,Av 3,Santiago,RM,7500001,",
    # the slot is taken: the start is at fault, and it was given as a date and a time
    "B-4,SKU-2,2026-12-03,13:00,Eva,Soto,eva@example.com,,Av 4,Santiago,RM,7500000,",
    # skipped behind another row: nothing in it is wrong
    "B-5,SKU-2,2026-12-03,14:00,Ian,Paz,ian@example.com,,Av 5,Santiago,RM,7500000,",
]
NOT_COVERED = explain_check("postal_code_not_covered", {"service": "SKU-2", "postal_code": "x"})
TAKEN = explain_api_error("slot_unavailable", step="booking", context={"service": "SKU-2"})
BEHIND = Explanation("dependency", "dependency", "Project P failed.", "Fix the project first.")


def _parsed(tmp_path: Path) -> ParsedUpload:
    path = tmp_path / "reservas.csv"
    path.write_text(",".join(HEADER) + "\n" + "\n".join(LINES) + "\n", encoding="utf-8")
    parsed = read_upload(path, "cl")
    assert not parsed.upload_issues
    return parsed


def _result(parsed: ParsedUpload) -> UploadResult:
    rows = parsed.rows
    answers = [
        RowResult(0, None, 2, "rejected", "validation", reader_rejection(rows[0])),
        RowResult(1, None, 3, "created", booking_id="bkg_2", steps={"booking": "created"}),
        RowResult(2, None, 4, "rejected", "validation", NOT_COVERED),
        RowResult(3, None, 5, "rejected", "booking", TAKEN, steps={"booking": "rejected"}),
        RowResult(4, None, 6, "skipped_dependency", "project", BEHIND),
    ]
    return UploadResult("upl_cl_readable", "reservas.csv", "cl", False, 1, answers)


def test_highlights_name_the_cells_at_fault_and_the_warnings(tmp_path: Path) -> None:
    parsed = _parsed(tmp_path)
    rows, result = parsed.rows, _result(parsed)
    marks = [highlights(r, rows[r.position], parsed.columns) for r in result.rows]

    email_error = rows[0].errors[0].message
    phone_warning = rows[0].warnings[0].message
    assert rows[0].errors[0].code == IssueCode.INVALID_EMAIL
    assert marks[0] == {
        "Correo": CellMark("rejected", email_error),
        "Teléfono": CellMark("warning", phone_warning),
    }
    assert marks[1] == {"Teléfono": CellMark("warning", rows[1].warnings[0].message)}
    assert marks[2] == {"Código Postal": CellMark("rejected", NOT_COVERED.message)}
    # a start read from a date and a time: both cells
    assert marks[3] == {
        "Fecha": CellMark("rejected", TAKEN.message),
        "Hora": CellMark("rejected", TAKEN.message),
    }
    assert marks[4] == {}
    # the cells named are the code's own (data, not guessed from the message)
    assert (NOT_COVERED.fields, TAKEN.fields) == (("postal_code",), ("scheduled_start",))


def _sheet(path: Path, title: str) -> tuple[Worksheet, list[list[object]]]:
    ws = openpyxl.load_workbook(path)[title]
    assert isinstance(ws, Worksheet)
    return ws, [[c.value for c in row] for row in ws.iter_rows()]


def test_rejects_xlsx_leads_with_the_answer_and_marks_the_cells(tmp_path: Path) -> None:
    parsed = _parsed(tmp_path)
    files = write_results(_result(parsed), parsed.rows, parsed.columns, tmp_path / "out")
    ws, values = _sheet(files.rejects_xlsx, "Rejects")

    header = values[0]
    assert header[:3] == ["sodtrack_outcome", "sodtrack_message", "sodtrack_suggested_fix"]
    assert header[: len(ANSWER_COLUMNS)] == list(ANSWER_COLUMNS)
    assert header[len(ANSWER_COLUMNS) :] == HEADER  # the input's columns, names and order
    assert ws.freeze_panes == "A2"
    # B-1, B-3, B-4, and B-5 behind a permanent failure (a person must act on it too)
    assert [v[0] for v in values[1:]] == ["rejected"] * 3 + ["skipped_dependency"]
    assert values[1][1] == reader_rejection(parsed.rows[0]).message

    col = {h: i + 1 for i, h in enumerate(header)}
    email = ws.cell(row=2, column=col["Correo"])
    assert email.fill.fgColor.rgb == RED
    assert email.comment is not None
    assert email.comment.text == parsed.rows[0].errors[0].message
    phone = ws.cell(row=2, column=col["Teléfono"])
    assert phone.fill.fgColor.rgb == AMBER
    assert phone.comment is not None
    assert "+56" in phone.comment.text
    postal = ws.cell(row=3, column=col["Código Postal"])
    assert postal.fill.fgColor.rgb == RED
    assert postal.comment is not None
    assert postal.comment.text == NOT_COVERED.message
    for name in ("Fecha", "Hora"):
        assert ws.cell(row=4, column=col[name]).fill.fgColor.rgb == RED
    # cells not at fault stay plain
    assert ws.cell(row=3, column=col["Correo"]).fill.fgColor.rgb != RED
    assert ws.cell(row=3, column=col["Correo"]).comment is None
    # the outcome cell of every row to fix is filled too; nothing in the skipped row is wrong
    assert [ws.cell(row=n, column=1).fill.fgColor.rgb for n in range(2, 6)] == [RED] * 4
    assert all(c.comment is None for c in ws[5])

    # sized to the content: the message column is wide (up to the cap), short ones narrow
    width = {h: ws.column_dimensions[get_column_letter(i)].width for h, i in col.items()}
    assert width["sodtrack_message"] == WIDTH_MAX
    assert width["Hora"] < 13 < width["sodtrack_suggested_fix"]
    assert width["Referencia"] == len("Referencia") + 2

    # the CSV has the same layout
    with files.rejects_csv.open(encoding="utf-8-sig", newline="") as fh:
        assert next(csv.reader(fh)) == header


def test_results_xlsx_leads_with_the_answer_and_marks_the_input_cells(tmp_path: Path) -> None:
    parsed = _parsed(tmp_path)
    files = write_results(_result(parsed), parsed.rows, parsed.columns, tmp_path / "out")
    ws, values = _sheet(files.results_xlsx, "Results")
    header = values[0]
    assert header[:3] == ["outcome", "message", "suggested_fix"]
    assert ws.freeze_panes == "A2"
    col = {h: i + 1 for i, h in enumerate(header)}
    created_phone = ws.cell(row=3, column=col["input: Teléfono"])
    assert created_phone.fill.fgColor.rgb == AMBER
    assert created_phone.comment is not None
    assert created_phone.comment.text == parsed.rows[1].warnings[0].message
    assert ws.cell(row=4, column=col["input: Código Postal"]).fill.fgColor.rgb == RED
    # the interpreted value beside it is not the input: not marked
    assert ws.cell(row=4, column=col["read as: postal_code"]).comment is None
    # the skipped row: no cell marked
    assert all(c.comment is None for c in ws[6])


def test_a_fixed_rejects_file_uploads_again_as_it_is_and_its_rows_load(tmp_path: Path) -> None:
    """A real run against the simulator rejects two rows (an e-mail the reader refuses, a
    service SKU Sodtrack does not have); the operator fixes the two marked cells in the rejects
    XLSX and uploads that very file: read with the answer columns ignored (no warning), its
    rows load."""
    app = create_app(small_config())
    clean_path = tmp_path / "clean.csv"

    async def synth() -> None:
        async with sim_client(app) as client:
            await synthesize_upload(
                client, clean_path, country="cl", rows=6, projects=0, today=SIM_TODAY, seed=5
            )

    asyncio.run(synth())
    clean = read_rows(clean_path)
    header = list(clean[0])
    field_of = read_upload(clean_path, "cl").columns
    email_col, sku_col, ref_col = (
        next(h for h in header if field_of.get(h) == f)
        for f in ("customer_email", "service_sku", "external_reference")
    )
    broken = [dict(r) for r in clean]
    broken[1][email_col] = "not-an-email"
    broken[4][sku_col] = "NO-SUCH-SKU"
    upload = tmp_path / "bookings.xlsx"
    wb = openpyxl.Workbook()
    sheet = wb.active
    assert sheet is not None
    sheet.append(header)
    for r in broken:
        sheet.append([r[h] for h in header])
    wb.save(upload)

    async def load(parsed: ParsedUpload, ledger: Ledger) -> UploadResult:
        async with sim_client(app) as client:
            return await run_upload(parsed, client, ledger, uploaded_by="ana")

    ledger = Ledger(f"sqlite:///{tmp_path / 'state' / 'ledger.db'}")
    try:
        parsed = read_upload(upload, "cl")
        first = asyncio.run(load(parsed, ledger))
        assert first.counts["created"] == 4
        assert first.counts["rejected"] == 2
        files = write_results(first, parsed.rows, parsed.columns, tmp_path / "out")
        assert files.rejects == 2

        # the operator fixes the marked cells, in the rejects file itself
        book = openpyxl.load_workbook(files.rejects_xlsx)
        ws = book["Rejects"]
        assert isinstance(ws, Worksheet)
        names = [c.value for c in ws[1]]
        marked = {
            (cell.row, names[cell.column - 1])
            for row in ws.iter_rows(min_row=2)
            for cell in row
            if cell.comment is not None
        }
        assert marked == {(2, email_col), (3, sku_col)}
        ws.cell(row=2, column=names.index(email_col) + 1).value = clean[1][email_col]
        ws.cell(row=3, column=names.index(sku_col) + 1).value = clean[4][sku_col]
        fixed = tmp_path / "bookings.rejects.fixed.xlsx"
        book.save(fixed)

        again = read_upload(fixed, "cl")
        assert again.upload_issues == []  # the answer columns: ignored, not "unknown"
        assert again.ignored_columns == list(ANSWER_COLUMNS)
        assert [r.external_reference for r in again.rows] == [
            broken[1][ref_col],
            broken[4][ref_col],
        ]
        assert all(r.is_valid for r in again.rows)
        second = asyncio.run(load(again, ledger))
        assert second.counts["created"] == 2, second.rows
        assert second.counts["rejected"] == 0
    finally:
        ledger.close()
