"""XLSX input: real workbooks written by openpyxl, typed cells read as such."""

from __future__ import annotations

from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook

from bulkload.sheets import patch_sheet_xml, write_xlsx
from sodtrack.bulkload import IssueCode, read_upload
from sodtrack.bulkload.reading.reader import read_xlsx, scan_cell_problems

MX_HEADER = [
    "Referencia externa",
    "SKU servicio",
    "Fecha",
    "Hora",
    "Nombre",
    "Apellido",
    "Correo",
    "Teléfono",
    "Dirección",
    "Ciudad",
    "Estado",
    "Código Postal",
    "Proyecto",
    "Nombre proyecto",
    "Monto",
    "Referencia pago",
    "Método de pago",
    "Fecha de pago",
]


def mx_row(ref: str, postal: object = "06700", **overrides: object) -> list[object]:
    row: dict[str, object] = {
        "Referencia externa": ref,
        "SKU servicio": "INST-AC-12000",
        "Fecha": date(2026, 12, 3),
        "Hora": time(10, 0),
        "Nombre": "Ana",
        "Apellido": "Pérez",
        "Correo": "ana@example.com",
        "Teléfono": "+525512345678",
        "Dirección": "Av. Insurgentes Sur 1234",
        "Ciudad": "Ciudad de México",
        "Estado": "CDMX",
        "Código Postal": postal,
        "Proyecto": None,
        "Nombre proyecto": None,
        "Monto": None,
        "Referencia pago": None,
        "Método de pago": None,
        "Fecha de pago": None,
    }
    row.update(overrides)
    return [row[h] for h in MX_HEADER]


def test_typed_cells(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {
            "Reservas": [
                MX_HEADER,
                mx_row(
                    "OPS-1",
                    6700,
                    Proyecto="PRJ-1",
                    **{
                        "Nombre proyecto": "Cocina",
                        "Monto": 1499.9,
                        "Referencia pago": "PAY-1",
                        "Método de pago": "tarjeta",
                        "Fecha de pago": datetime(2026, 11, 20, 12, 30),
                    },
                ),
                mx_row("OPS-2", "06700", Teléfono=5512345678),
            ]
        },
    )
    upload = read_upload(path, "mx")
    assert upload.file_type == "xlsx"
    assert upload.sheet == "Reservas"
    assert upload.encoding is None
    assert upload.delimiter is None
    first, second = upload.rows
    assert first.is_valid, first.issues
    assert second.is_valid, second.issues

    # Originals keep the cell types: dates as dates, numbers as numbers.
    assert first.original["Fecha"] == date(2026, 12, 3)
    assert first.original["Hora"] == time(10, 0)
    assert first.original["Código Postal"] == 6700
    assert type(first.original["Código Postal"]) is int
    assert first.original["Monto"] == 1499.9
    assert first.original["Fecha de pago"] == datetime(2026, 11, 20, 12, 30)

    tz = first.scheduled_start.tzinfo if first.scheduled_start else None
    assert first.scheduled_start == datetime(2026, 12, 3, 10, 0, tzinfo=tz)
    assert str(tz) == "America/Mexico_City"
    assert first.paid_at == datetime(2026, 11, 20, 12, 30, tzinfo=tz)
    assert first.payment_amount == Decimal("1499.90")

    # The numeric postal code lost its zero: restored, with a warning. The text one is kept.
    assert first.postal_code == "06700"
    assert [(w.code, w.field) for w in first.warnings] == [
        (IssueCode.POSTAL_CODE_RESTORED, "postal_code")
    ]
    assert first.warnings[0].column == "Código Postal"
    assert second.postal_code == "06700"
    assert second.original["Código Postal"] == "06700"
    assert second.customer_phone == "+525512345678"
    assert [w.code for w in second.warnings] == [IssueCode.PHONE_NORMALISED]


def test_named_sheet_and_non_first_sheet(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {
            "Instrucciones": [["Llene la hoja Reservas"]],
            "Reservas": [MX_HEADER, mx_row("OPS-1")],
            "Otra": [MX_HEADER, mx_row("OPS-9"), mx_row("OPS-10")],
        },
    )
    upload = read_upload(path, "mx", sheet="Reservas")
    assert upload.sheet == "Reservas"
    assert upload.sheet_names == ("Instrucciones", "Reservas", "Otra")
    assert [(r.sheet, r.external_reference) for r in upload.rows] == [("Reservas", "OPS-1")]
    assert [r.external_reference for r in read_upload(path, "mx", sheet="otra ").rows] == [
        "OPS-9",
        "OPS-10",
    ]
    # Without a name, the first sheet with a header row is read (not the instructions).
    default = read_upload(path, "mx")
    assert default.sheet == "Reservas"
    assert not default.has_upload_errors
    assert [r.external_reference for r in default.rows] == ["OPS-1"]
    # Named, the instructions sheet has no header row: the message says where it looked.
    (issue,) = read_upload(path, "mx", sheet="Instrucciones").upload_issues
    assert issue.code == IssueCode.HEADER_NOT_FOUND
    assert "rows 1-20 of sheet 'Instrucciones'" in issue.message


def test_unknown_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", {"Reservas": [MX_HEADER, mx_row("OPS-1")]})
    upload = read_upload(path, "mx", sheet="Bookings")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.SHEET_NOT_FOUND
    assert "'Reservas'" in issue.message


def test_hidden_first_sheet_is_skipped_by_default(tmp_path: Path) -> None:
    workbook = Workbook()
    hidden = workbook.active
    assert hidden is not None
    hidden.title = "Listas"
    hidden.sheet_state = "hidden"
    visible = workbook.create_sheet("Reservas")
    visible.append(MX_HEADER)
    visible.append(mx_row("OPS-1"))
    path = tmp_path / "b.xlsx"
    workbook.save(path)
    assert read_upload(path, "mx").sheet == "Reservas"


def test_empty_rows_skipped_with_real_row_numbers(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Reservas": [MX_HEADER, mx_row("OPS-1"), [], [None, "  "], mx_row("OPS-2"), []]},
    )
    upload = read_upload(path, "mx")
    assert [r.row_number for r in upload.rows] == [2, 5]
    assert upload.skipped_empty_rows == 2


def test_sheet_not_starting_at_a1(tmp_path: Path) -> None:
    # Two blank rows and a blank column A: the header is at B3, data rows at 4 and 6.
    rows: list[list[object]] = [
        [],
        [],
        [None, *MX_HEADER],
        [None, *mx_row("OPS-1")],
        [],
        [None, *mx_row("OPS-2")],
    ]
    path = write_xlsx(tmp_path / "b.xlsx", {"Reservas": rows})
    upload = read_upload(path, "mx")
    assert upload.header_row_number == 3
    assert [r.row_number for r in upload.rows] == [4, 6]
    assert all(r.is_valid for r in upload.rows)


def test_excel_serial_numbers_and_time_fractions(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Reservas": [MX_HEADER, mx_row("OPS-1", Fecha=46359, Hora=0.625)]},
    )
    (row,) = read_upload(path, "mx").rows
    assert row.is_valid
    assert row.scheduled_start is not None
    assert row.scheduled_start.replace(tzinfo=None) == datetime(2026, 12, 3, 15, 0)
    assert [w.code for w in row.warnings] == [IssueCode.NUMBER_AS_TEXT]


def test_datetime_cells_in_one_column(tmp_path: Path) -> None:
    header = [
        "external_reference",
        "service_sku",
        "scheduled_start",
        "customer_first_name",
        "customer_last_name",
        "customer_phone",
        "address_line1",
        "city",
        "region",
        "postal_code",
    ]
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {
            "S": [
                header,
                [
                    "A-1",
                    "SKU",
                    datetime(2026, 12, 3, 10, 0),
                    "Ana",
                    "Paz",
                    "+525512345678",
                    "Calle 1",
                    "CDMX",
                    "CDMX",
                    "06700",
                ],
                [
                    "A-2",
                    "SKU",
                    date(2026, 12, 3),
                    "Ana",
                    "Paz",
                    "+525512345678",
                    "Calle 1",
                    "CDMX",
                    "CDMX",
                    "06700",
                ],
            ]
        },
    )
    first, second = read_upload(path, "mx").rows
    assert first.is_valid
    assert [(i.code, i.field) for i in second.errors] == [
        (IssueCode.MISSING_TIME, "scheduled_start")
    ]


def test_formula_without_cached_value_is_reported(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {
            "Reservas": [
                MX_HEADER,
                mx_row("OPS-1", Apellido="=UPPER(E2)"),
                mx_row("OPS-2"),
            ]
        },
    )
    upload = read_upload(path, "mx")
    first, second = upload.rows
    (issue,) = first.errors
    assert issue.code == IssueCode.FORMULA_NOT_CALCULATED
    assert issue.field == "customer_last_name"
    assert issue.column == "Apellido"
    assert "F2" in issue.message
    assert "=UPPER(E2)" in issue.message
    assert "recalculate" in issue.suggested_fix
    assert second.is_valid


def test_formula_with_a_cached_value_uses_the_value(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Reservas": [MX_HEADER, mx_row("OPS-1", Apellido="=UPPER(E2)")]},
    )
    # What Excel would have saved: the formula and its last result.
    patch_sheet_xml(
        path,
        "xl/worksheets/sheet1.xml",
        b"<f>UPPER(E2)</f><v />",
        b"<f>UPPER(E2)</f><v>ANA</v>",
    )
    assert scan_cell_problems(path, "Reservas") == {}
    (row,) = read_upload(path, "mx").rows
    assert row.is_valid, row.issues
    assert row.customer_last_name == "ANA"


def test_error_values_are_reported(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Reservas": [MX_HEADER, mx_row("OPS-1", Apellido="=1/0")]},
    )
    patch_sheet_xml(
        path,
        "xl/worksheets/sheet1.xml",
        b'<c r="F2"><f>1/0</f><v /></c>',
        b'<c r="F2" t="e"><f>1/0</f><v>#DIV/0!</v></c>',
    )
    (row,) = read_upload(path, "mx").rows
    (issue,) = row.errors
    assert issue.code == IssueCode.FORMULA_ERROR
    assert "#DIV/0!" in issue.message


def test_formula_in_an_unmapped_column_is_harmless(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Reservas": [[*MX_HEADER, "Total"], [*mx_row("OPS-1"), "=1+1"]]},
    )
    upload = read_upload(path, "mx")
    assert upload.unknown_columns == ["Total"]
    assert upload.rows[0].is_valid


def test_text_cells_that_look_like_formulas_stay_text(tmp_path: Path) -> None:
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(MX_HEADER)
    sheet.append(mx_row("OPS-1"))
    sheet["F2"].value = "=cmd"
    sheet["F2"].data_type = "s"  # a string cell, not a formula
    path = tmp_path / "b.xlsx"
    workbook.save(path)
    (row,) = read_upload(path, "mx").rows
    assert row.customer_last_name == "=cmd"


def test_read_xlsx_pins_calamines_row_numbering(tmp_path: Path) -> None:
    """calamine starts iter_rows at sheet row 1 but at the first used column: pin it."""
    path = write_xlsx(
        tmp_path / "b.xlsx", {"S": [[], [None, None, "h1", "h2"], [None, None, 1, 2]]}
    )
    table = read_xlsx(path, is_header=lambda cells: any(c != "" for c in cells))
    assert table.header_row_number == 2
    assert table.first_column == 2
    assert table.header == ["h1", "h2"]
    assert list(table.rows) == [(3, [1, 2])]


def test_corrupt_workbook(tmp_path: Path) -> None:
    path = tmp_path / "b.xlsx"
    path.write_bytes(b"PK\x03\x04" + b"not really a zip" * 10)
    upload = read_upload(path, "mx")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.FILE_UNREADABLE


@pytest.mark.parametrize("rows", [[], [[], []]])
def test_empty_sheet(tmp_path: Path, rows: list[list[object]]) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", {"Vacía": rows})
    (issue,) = read_upload(path, "mx").upload_issues
    assert issue.code == IssueCode.EMPTY_FILE
