"""Where the header row is (issue #10, item 11): titles above it, instructions sheets first.

Without a sheet name, the first visible sheet with a header row is read; the header row is
the first of the sheet's top :data:`HEADER_SEARCH_ROWS` rows naming enough known columns;
row numbers stay the sheet's own. When none is found, the message says where it looked.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkload.sheets import BASE, SPANISH, booking, write_xlsx
from sodtrack.bulkload import IssueCode, ParsedUpload, read_upload
from sodtrack.bulkload.reading.headers import (
    HEADER_MIN_COLUMNS,
    known_column_count,
    looks_like_header,
)
from sodtrack.bulkload.reading.reader import HEADER_SEARCH_ROWS

HEADER = list(BASE)

TITLES: list[list[object]] = [
    ["Reservas de diciembre"],
    ["Cliente: Constructora Andes", None, None, "Fecha: 2026-12-01"],
    [],
    ["Complete una fila por reserva. Columnas: external_reference, service_sku, city"],
    [None, None, "Versión 3"],
    ["Total", 12, None, 45000],
]
INSTRUCTIONS: list[list[object]] = [
    ["Instrucciones"],
    ["1. Llene la hoja Reservas, una fila por reserva."],
    ["2. Las columnas obligatorias son: referencia externa, SKU, fecha, nombre..."],
    ["Referencia externa: su código único"],
]


def data_rows(header: list[str], count: int) -> list[list[object]]:
    rows = []
    for i in range(1, count + 1):
        values = list(booking(i).values())
        rows.append([v if v != "" else None for v in values][: len(header)])
    return rows


def test_looks_like_header_uses_the_alias_data() -> None:
    assert known_column_count(SPANISH) == len(SPANISH)
    assert looks_like_header(HEADER)
    assert not looks_like_header(["Reservas de diciembre"])
    assert not looks_like_header(["Ana", "Rojas", "Providencia", "RM", 7500000])
    # Headers the operator's mapping names count too.
    assert not looks_like_header(["Ref", "Producto", "Cuándo"])
    mapping = {"Ref": "external_reference", "Producto": "service_sku", "Cuándo": None}
    assert looks_like_header(["Ref", "Producto", "Cuándo"], mapping)
    assert HEADER_MIN_COLUMNS == 3


def test_a_title_row_above_the_header(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Reservas": [["Reservas de diciembre"], [], SPANISH, *data_rows(SPANISH, 2)]},
        merges={"Reservas": ["A1:F1"]},
    )
    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    assert upload.header_row_number == 3
    assert [r.row_number for r in upload.rows] == [4, 5]
    assert all(r.is_valid for r in upload.rows)


def test_an_instructions_sheet_first(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"Instructions": INSTRUCTIONS, "Bookings": [HEADER, *data_rows(HEADER, 3)]},
    )
    upload = read_upload(path, "cl")
    assert upload.sheet == "Bookings"
    assert not upload.has_upload_errors
    assert [r.row_number for r in upload.rows] == [2, 3, 4]


def test_no_header_anywhere_says_where_it_looked(tmp_path: Path) -> None:
    not_a_header = ["Código", "Cliente", "Monto"]
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {
            "Instructions": INSTRUCTIONS,
            "Vacía": [],
            "Bookings": [not_a_header, ["A-1", "Ana", 100]],
        },
    )
    upload = read_upload(path, "cl")
    assert upload.rows == []
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.HEADER_NOT_FOUND
    assert "looked at rows 1-20 of sheets 'Instructions', 'Bookings'" in issue.message
    # Not ten "missing column" errors.
    assert IssueCode.MISSING_COLUMN not in [i.code for i in upload.upload_issues]


def test_a_header_below_the_search_rows_is_not_found(tmp_path: Path) -> None:
    titles: list[list[object]] = [[f"línea {i}"] for i in range(HEADER_SEARCH_ROWS)]
    path = write_xlsx(tmp_path / "b.xlsx", {"S": [*titles, HEADER, *data_rows(HEADER, 1)]})
    (issue,) = read_upload(path, "cl").upload_issues
    assert issue.code == IssueCode.HEADER_NOT_FOUND
    assert f"rows 1-{HEADER_SEARCH_ROWS} of sheet 'S'" in issue.message


def test_a_header_missing_columns_still_lists_them(tmp_path: Path) -> None:
    """A real header (enough known columns) that lacks required ones: named as before."""
    header = [h for h in HEADER if h not in ("city", "region")]
    path = write_xlsx(tmp_path / "b.xlsx", {"S": [["Título"], header, ["x"] * len(header)]})
    upload = read_upload(path, "cl")
    assert upload.header_row_number == 2
    missing = {i.column for i in upload.upload_issues if i.code == IssueCode.MISSING_COLUMN}
    assert missing == {"city", "region"}


def test_a_mapped_header_below_a_title(tmp_path: Path) -> None:
    """The search counts the upload's mapping: headers only the mapping knows are found."""
    header = [f"Campo {i}" for i in range(1, len(HEADER) + 1)]
    mapping: dict[str, str | None] = dict(zip(header, HEADER, strict=True))
    path = write_xlsx(tmp_path / "b.xlsx", {"S": [["Pedidos"], [], header, *data_rows(header, 2)]})
    (issue,) = read_upload(path, "cl").upload_issues
    assert issue.code == IssueCode.HEADER_NOT_FOUND
    upload = read_upload(path, "cl", mapping=mapping)
    assert not upload.has_upload_errors, upload.upload_issues
    assert upload.header_row_number == 3
    assert [r.external_reference for r in upload.rows] == ["OPS-1", "OPS-2"]


@dataclass(frozen=True)
class TitleCase:
    sheets: dict[str, list[list[object]]]
    offset: int
    count: int

    def check(self, upload: ParsedUpload) -> None:
        offset, count = self.offset, self.count
        assert upload.sheet == "Reservas"
        assert not upload.has_upload_errors, upload.upload_issues
        assert upload.header_row_number == offset + 1
        assert [r.row_number for r in upload.rows] == list(range(offset + 2, offset + 2 + count))
        assert all(r.is_valid for r in upload.rows), [r.issues for r in upload.rows]
        expected = [f"OPS-{i}" for i in range(1, count + 1)]
        assert [r.external_reference for r in upload.rows] == expected


def title_case(seed: int) -> TitleCase:
    """0-19 rows of titles/blank/notes above the header, 0-2 sheets of instructions before
    the bookings sheet, canonical or Spanish headers, maybe shifted right by a column."""
    rng = random.Random(seed)
    offset = rng.randint(0, HEADER_SEARCH_ROWS - 1)
    header = rng.choice([HEADER, SPANISH])
    shift = rng.choice([0, 0, 1])
    above = [rng.choice(TITLES) for _ in range(offset)]
    count = rng.randint(1, 4)
    table: list[list[object]] = [list(header), *data_rows(header, count)]
    sheets: dict[str, list[list[object]]] = {}
    for i in range(rng.randint(0, 2)):
        sheets[f"Léame {i}"] = [list(r) for r in rng.sample(INSTRUCTIONS, rng.randint(1, 4))]
    pad: list[object] = [None] * shift
    sheets["Reservas"] = [*above, *([*pad, *r] for r in table)]
    if rng.random() < 0.3:
        sheets["Otra"] = [list(HEADER), *data_rows(HEADER, 1)]  # a later sheet is not read
    return TitleCase(sheets, offset, count)


@pytest.mark.parametrize("seed", range(30))
def test_generated_title_offsets_and_instruction_sheets(tmp_path: Path, seed: int) -> None:
    """The right sheet, the sheet's own row numbers, every row valid."""
    case = title_case(seed)
    case.check(read_upload(write_xlsx(tmp_path / "b.xlsx", case.sheets), "cl"))
