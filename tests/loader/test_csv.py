"""CSV input: encodings, delimiters, row numbering, broken files."""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sodtrack.loader import IssueCode, read_upload
from sodtrack.loader.reader import detect_delimiter

from .sheets import booking, csv_of, write_csv

SPANISH_HEADER = [
    "Referencia externa",
    "SKU Servicio",
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
]


def spanish_row(ref: str, last_name: str = "Peña") -> list[object]:
    return [
        ref,
        "INST-AC-12000",
        "03/12/2026",
        "10:00",
        "María José",
        last_name,
        "mj@example.com",
        "+56912345678",
        "Av. Ñuñoa 1234",
        "Ñuñoa",
        "RM",
        "7750000",
    ]


@pytest.mark.parametrize(
    ("encoding", "reported"),
    [("utf-8", "utf-8"), ("utf-8-sig", "utf-8-sig"), ("cp1252", "cp1252")],
)
def test_encodings(tmp_path: Path, encoding: str, reported: str) -> None:
    path = write_csv(tmp_path / "b.csv", SPANISH_HEADER, [spanish_row("OPS-1")], encoding=encoding)
    upload = read_upload(path, "cl")
    assert upload.encoding == reported
    assert upload.columns["Código Postal"] == "postal_code"  # accented header matched
    assert upload.columns["Referencia externa"] == "external_reference"  # BOM not in the name
    (row,) = upload.rows
    assert row.is_valid, row.issues
    assert row.customer_last_name == "Peña"
    assert row.city == "Ñuñoa"
    assert row.original["Teléfono"] == "+56912345678"
    fallback = [i for i in upload.upload_issues if i.code == IssueCode.ENCODING_FALLBACK]
    assert bool(fallback) == (encoding == "cp1252")
    assert all(i.severity == "warning" for i in upload.upload_issues)


def test_cp1252_only_characters(tmp_path: Path) -> None:
    # '€' and '–' exist in CP-1252 but not in Latin-1; a BOM-less UTF-8 read must fail first.
    path = write_csv(
        tmp_path / "b.csv",
        [*SPANISH_HEADER, "Notas"],
        [[*spanish_row("OPS-1"), "Precio en € – confirmar"]],
        encoding="cp1252",
    )
    (row,) = read_upload(path, "cl").rows
    assert row.notes == "Precio en € – confirmar"


def test_latin1_fallback_when_not_even_cp1252(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "b.csv", SPANISH_HEADER, [spanish_row("OPS-1")], encoding="cp1252")
    path.write_bytes(path.read_bytes().replace(b"RM", b"R\x81M"))  # 0x81 is undefined in CP-1252
    upload = read_upload(path, "cl")
    assert upload.encoding == "latin-1"
    assert upload.rows[0].region == "R\x81M"


def test_double_encoded_text_is_flagged(tmp_path: Path) -> None:
    mangled = "Peña".encode().decode("latin-1")  # 'PeÃ±a'
    path = write_csv(tmp_path / "b.csv", SPANISH_HEADER, [spanish_row("OPS-1", mangled)])
    upload = read_upload(path, "cl")
    assert IssueCode.POSSIBLE_MOJIBAKE in [i.code for i in upload.upload_issues]


def test_semicolon_with_decimal_commas(tmp_path: Path) -> None:
    rows = [
        booking(
            1,
            project_reference="PRJ-1",
            project_name="Baño",
            payment_reference="PAY-1",
            payment_amount="1.234,50",
            payment_method="transferencia",
            paid_at="01/12/2026",
        ),
    ]
    path = csv_of(tmp_path / "b.csv", rows, delimiter=";")
    upload = read_upload(path, "pe")
    assert upload.delimiter == ";"
    (row,) = upload.rows
    assert row.payment_amount == Decimal("1234.50")
    assert row.payment_currency == "PEN"
    assert row.payment_method == "transfer"


def test_comma_delimiter_with_quoted_commas(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1, address_line1="Av. Providencia 1234, depto 5")])
    upload = read_upload(path, "cl")
    assert upload.delimiter == ","
    assert upload.rows[0].address_line1 == "Av. Providencia 1234, depto 5"


def test_tab_delimiter(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.tsv", [booking(1)], delimiter="\t")
    upload = read_upload(path, "cl")
    assert upload.delimiter == "\t"
    assert upload.rows[0].is_valid


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1,5;2,5;3\n", ";"),
        ('"x;y",b,c\n1,2,3\n', ","),  # delimiters inside quotes do not count
        ('a;"b,c,d";e\n1;2;3\n', ";"),
        ("a\tb\tc\n", "\t"),
        ("only\n1\n", ","),
        ("a,b;c\n1,2;3\n4,5;6\n", ","),  # tie: both split every row alike, comma first
        ("a;b,c\n1;2\n3;4\n", ";"),  # tie broken by the data rows
        ('"multi\nline";b\n1;2\n', ";"),
    ],
)
def test_detect_delimiter(sample: str, expected: str) -> None:
    assert detect_delimiter(sample) == expected


def test_empty_rows_are_skipped_but_numbers_stay_real(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    csv_of(path, [booking(1), booking(2)])
    lines = path.read_text(encoding="utf-8").splitlines()
    # header (1), row (2), blank (3), only delimiters (4), row (5)
    path.write_text(
        "\r\n".join([lines[0], lines[1], "", ",,,,", lines[2]]) + "\r\n", encoding="utf-8"
    )
    upload = read_upload(path, "cl")
    assert [r.row_number for r in upload.rows] == [2, 5]
    assert upload.skipped_empty_rows == 2


def test_a_quoted_line_break_is_one_row(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1, notes="line one\nline two"), booking(2)])
    upload = read_upload(path, "cl")
    assert [r.row_number for r in upload.rows] == [2, 3]
    assert upload.rows[0].notes == "line one\nline two"


def test_leading_blank_lines_before_the_header(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1)])
    path.write_text("\r\n\r\n" + path.read_text(encoding="utf-8"), encoding="utf-8")
    upload = read_upload(path, "cl")
    assert upload.header_row_number == 3
    assert upload.rows[0].row_number == 4


def test_a_row_with_more_values_than_headers_is_rejected(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1), booking(2)])
    text = path.read_text(encoding="utf-8").rstrip("\r\n") + ",stray\r\n"
    path.write_text(text, encoding="utf-8")
    upload = read_upload(path, "cl")
    assert upload.rows[0].is_valid
    assert [i.code for i in upload.rows[1].errors] == [IssueCode.EXTRA_VALUES]
    assert upload.rows[1].original["(column 15)"] == "stray"


def test_values_under_an_unnamed_column_are_reported(tmp_path: Path) -> None:
    rows = [booking(1), booking(2)]
    path = tmp_path / "b.csv"
    csv_of(path, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[0] += ","
    lines[1] += ","
    lines[2] += ",something"
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    upload = read_upload(path, "cl")
    (issue,) = [i for i in upload.upload_issues if i.code == IssueCode.UNNAMED_COLUMN]
    assert "row 3" in issue.message
    assert "Column 15" in issue.message
    assert upload.rows[1].original["(column 15)"] == "something"


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_bytes(b"")
    upload = read_upload(path, "cl")
    assert [i.code for i in upload.upload_issues] == [IssueCode.EMPTY_FILE]
    assert upload.has_upload_errors
    assert upload.rows == []
    assert upload.file_sha256 == hashlib.sha256(b"").hexdigest()


def test_header_only(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1)])
    path.write_text(path.read_text(encoding="utf-8").splitlines()[0], encoding="utf-8")
    upload = read_upload(path, "cl")
    assert [i.code for i in upload.upload_issues] == [IssueCode.NO_ROWS]


def test_legacy_xls_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "old.xls"
    path.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 512)
    upload = read_upload(path, "cl")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.UNSUPPORTED_FILE_TYPE
    assert ".xlsx" in issue.suggested_fix


def test_values_are_kept_as_text_in_original(tmp_path: Path) -> None:
    path = csv_of(
        tmp_path / "b.csv",
        [booking(1, postal_code="0750000", scheduled_start="2026-12-03T10:00")],
    )
    (row,) = read_upload(path, "cl").rows
    assert row.original["postal_code"] == "0750000"
    assert row.postal_code == "0750000"
    assert row.scheduled_start == datetime.fromisoformat("2026-12-03T10:00-03:00")


def test_an_unclosed_quote_stops_the_upload_instead_of_losing_rows(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1), booking(2), booking(3)])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("Av. Providencia", '"Av. Providencia', 1)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    upload = read_upload(path, "cl")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.FILE_UNREADABLE
    assert "Row 3" in issue.message
    assert upload.has_upload_errors
    assert upload.valid_rows == []


def test_rows_fused_by_stray_quotes_are_rejected(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1), booking(2), booking(3), booking(4)])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("Av. Providencia", '"Av. Providencia', 1)
    lines[3] = lines[3].replace("Providencia,RM", 'Providencia",RM', 1)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    upload = read_upload(path, "cl")
    assert [r.row_number for r in upload.rows] == [2, 3, 4]
    assert IssueCode.MERGED_ROWS in [i.code for i in upload.rows[1].errors]
    assert upload.rows[0].is_valid
    assert upload.rows[2].is_valid


def test_a_nul_byte_is_reported_on_its_row(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1)])
    path.write_bytes(path.read_bytes().replace(b"Rojas", b"Ro\x00jas"))
    (row,) = read_upload(path, "cl").rows
    assert [(i.code, i.field) for i in row.errors] == [
        (IssueCode.INVALID_TEXT, "customer_last_name")
    ]
