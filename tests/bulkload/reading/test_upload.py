"""``read_upload`` end to end: what a ParsedUpload carries, and what the library promises."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from bulkload.sheets import booking, csv_of, write_csv, write_xlsx
from sodtrack.bulkload import CANONICAL_COLUMNS, IssueCode, load_mapping_file, read_upload


def test_parsed_upload_fields(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1), booking(2, customer_phone="9 1234 5678")])
    upload = read_upload(path, "CL")
    assert upload.source_path == path
    assert upload.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert upload.country == "cl"
    assert upload.file_type == "csv"
    assert upload.sheet is None
    assert upload.encoding == "utf-8"
    assert upload.delimiter == ","
    assert upload.header_row_number == 1
    assert upload.columns == {name: name for name in booking(1)}
    assert upload.unknown_columns == []
    assert upload.upload_issues == []
    assert [r.row_number for r in upload.valid_rows] == [2, 3]
    assert upload.summary() == {
        "rows": 2,
        "valid_rows": 2,
        "rejected_rows": 0,
        "row_errors": 0,
        "row_warnings": 1,
        "upload_errors": 0,
        "upload_warnings": 0,
        "skipped_empty_rows": 0,
    }
    assert [i.code for i in upload.row_issues] == [IssueCode.PHONE_NORMALISED]


def test_mapping_file_end_to_end(tmp_path: Path) -> None:
    mapping_path = tmp_path / "mapping.yaml"
    mapping_path.write_text(
        "Nro Orden: external_reference\nVendedor: null\nCP: postal_code\n", encoding="utf-8"
    )
    rows = [booking(1, Vendedor="Juan", Sucursal="Centro")]
    rows[0]["Nro Orden"] = rows[0].pop("external_reference")
    rows[0]["CP"] = rows[0].pop("postal_code")
    path = csv_of(tmp_path / "b.csv", rows)
    upload = read_upload(path, "cl", mapping=load_mapping_file(mapping_path))
    assert upload.columns["Nro Orden"] == "external_reference"
    assert upload.ignored_columns == ["Vendedor"]
    assert upload.unknown_columns == ["Sucursal"]
    assert [(i.code, i.severity) for i in upload.upload_issues] == [
        (IssueCode.UNKNOWN_COLUMN, "warning")
    ]
    (row,) = upload.rows
    assert row.is_valid
    assert row.external_reference == "OPS-1"
    assert row.original["Sucursal"] == "Centro"
    assert row.original["Vendedor"] == "Juan"


def test_upload_errors_stop_before_rows(tmp_path: Path) -> None:
    rows = [booking(1)]
    del rows[0]["city"]
    upload = read_upload(csv_of(tmp_path / "b.csv", rows), "cl")
    assert upload.has_upload_errors
    assert [(i.code, i.column) for i in upload.upload_issues] == [
        (IssueCode.MISSING_COLUMN, "city")
    ]
    assert upload.rows == []
    assert upload.valid_rows == []


def test_declared_decimal_separator(tmp_path: Path) -> None:
    row = booking(
        1,
        project_reference="P",
        project_name="Cocina",
        payment_reference="PAY-1",
        payment_amount="1.234",
        payment_method="card",
        paid_at="01/12/2026",
        postal_code="15074",
        customer_phone="+51987654321",
    )
    path = csv_of(tmp_path / "b.csv", [row], delimiter=";")
    ambiguous = read_upload(path, "pe")
    assert [i.code for i in ambiguous.rows[0].errors] == [IssueCode.AMBIGUOUS_AMOUNT]
    declared = read_upload(path, "pe", decimal_separator=",")
    assert declared.rows[0].payment_amount == Decimal("1234.00")


def test_caller_mistakes_raise(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1)])
    with pytest.raises(ValueError, match="unknown country"):
        read_upload(path, "xx")
    with pytest.raises(ValueError, match="decimal_separator"):
        read_upload(path, "cl", decimal_separator=";")
    with pytest.raises(FileNotFoundError):
        read_upload(tmp_path / "missing.csv", "cl")


def test_csv_and_xlsx_agree(tmp_path: Path) -> None:
    rows = [booking(1), booking(2, postal_code="7500000", notes="Llamar antes")]
    header = list(rows[0])
    body = [[r[h] for h in header] for r in rows]
    from_csv = read_upload(write_csv(tmp_path / "b.csv", header, body), "cl")
    from_xlsx = read_upload(write_xlsx(tmp_path / "b.xlsx", {"Hoja1": [header, *body]}), "cl")
    assert [r.interpreted() for r in from_csv.rows] == [r.interpreted() for r in from_xlsx.rows]
    assert [r.row_number for r in from_xlsx.rows] == [2, 3]
    assert from_xlsx.rows[0].sheet == "Hoja1"


def test_canonical_columns_are_the_documented_ones() -> None:
    assert set(CANONICAL_COLUMNS) >= {
        "external_reference",
        "service_sku",
        "variant_sku",
        "scheduled_start",
        "scheduled_date",
        "scheduled_time",
        "customer_first_name",
        "customer_last_name",
        "customer_email",
        "customer_phone",
        "customer_document_id",
        "address_line1",
        "address_line2",
        "city",
        "region",
        "postal_code",
        "notes",
        "project_reference",
        "project_name",
        "stage_sequence",
        "stage_name",
        "payment_reference",
        "payment_amount",
        "payment_currency",
        "payment_method",
        "paid_at",
    }


def test_the_library_never_imports_prefect() -> None:
    code = (
        "import sys, sodtrack.bulkload.reading.upload, sodtrack.bulkload;"
        "assert not any(m == 'prefect' or m.startswith('prefect.') for m in sys.modules)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
