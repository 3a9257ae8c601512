"""Where a CSV's header is (issue #10, item 11): title lines above it, as for XLSX.

The header is the first of the top :data:`HEADER_SEARCH_ROWS` records naming enough known
columns; the delimiter is not spoilt by a title line (one cell, or one holding another
delimiter); row numbers stay the file's own records; the field-count checks (records
shorter or longer than the header, a cut last record) are relative to the found header.
When no header is found, ``header_not_found`` says which lines were looked at.

The corpus: 0..19 title records of random text (some with delimiters, quotes, line breaks
inside a quoted value, empty lines) x every encoding the reader knows x every delimiter.
"""

from __future__ import annotations

import csv
import io
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkload.sheets import BASE, BOMS, SPANISH, booking, csv_cell
from sodtrack.bulkload import IssueCode, ParsedUpload, read_upload
from sodtrack.bulkload.reading.reader import DELIMITERS, HEADER_SEARCH_ROWS, detect_delimiter

HEADER = list(BASE)
assert len(SPANISH) == len(HEADER)

# (codec, byte-order mark): every encoding detect_encoding reads.
ENCODINGS: list[tuple[str, bool]] = [
    ("utf-8", False),
    ("utf-8", True),
    ("cp1252", False),
    ("utf-16-le", True),
    ("utf-16-le", False),
    ("utf-16-be", True),
    ("utf-32-le", True),
    ("utf-32-be", False),
]
SEEDS_PER_CASE = 3

WORDS = [
    "Reservas",
    "diciembre",
    "Constructora",
    "Andes",
    "Versión",
    "hoja",
    "generado",
    "por",
    "Ñuñoa",
    "São",
    "Paulo",
    "año",
    "2026",
    "12.500,50",
    "Total:",
    "señor",
    "ação",
]
WIDE_ONLY = ["🎉", "東京", "Ω≈"]
"""Characters outside Latin-1: only in titles of UTF-8 files or files with a BOM."""


def _text(rng: random.Random, words: list[str], delimiters: str) -> str:
    """Random words, sometimes joined by a delimiter character (any, the file's included:
    the cell is then quoted) or holding a quoted word."""
    parts = [rng.choice(words) for _ in range(rng.randint(1, 6))]
    text = ""
    for part in parts:
        glue = rng.choice([" ", " ", " ", ", ", "; ", "|", "\t", ": "]) if text else ""
        text += glue + part
    if rng.random() < 0.25:
        text += f' "{rng.choice(words)}"'
    if rng.random() < 0.1:
        text += "\n" + rng.choice(words)  # a line break inside a (quoted) value
    return text


def title_record(rng: random.Random, delimiter: str, words: list[str]) -> str:
    """One record above the header, as a spreadsheet program would write it."""
    kind = rng.randrange(6)
    if kind == 0:
        return ""  # an empty line
    if kind == 1:
        return delimiter * rng.randint(1, 20)  # a row of empty cells
    if kind == 2:  # a literal quote inside an unquoted value, other delimiters in it
        others = [d for d in DELIMITERS if d != delimiter]
        return f'{rng.choice(words)} {rng.choice(others)} "{rng.choice(words)}" {rng.choice(words)}'
    if kind == 3:  # several cells, some empty: "Cliente: X",,,"Fecha: ..."
        cells = [rng.choice(["", _text(rng, words, delimiter)]) for _ in range(rng.randint(2, 8))]
        cells[0] = cells[0] or rng.choice(words)
        return delimiter.join(csv_cell(c, delimiter) for c in cells)
    if kind == 4:  # a sentence that mentions columns but is not a header
        return csv_cell(
            "Complete una fila por reserva; columnas: external_reference, service_sku, city",
            delimiter,
        )
    return csv_cell(_text(rng, words, delimiter), delimiter)


@dataclass
class TitledCsv:
    path: Path
    titles: int
    """Records above the header (the header is record ``titles + 1``)."""
    title_lines: int
    """Physical lines they take (a quoted value may hold line breaks)."""
    delimiter: str
    encoding: str


def write_titled_csv(
    path: Path,
    rng: random.Random,
    *,
    delimiter: str,
    encoding: str,
    bom: bool,
    titles: int,
    header: list[str],
    rows: list[list[str]],
    final_newline: bool = True,
) -> TitledCsv:
    # CP-1252 cannot hold them; a BOM-less UTF-16/32 file is told by where the NUL bytes of
    # its first (Latin) characters fall, which a title of such characters would hide.
    unicode_marked = encoding == "utf-8" or bom
    words = WORDS + (WIDE_ONLY if unicode_marked else [])
    records = [title_record(rng, delimiter, words) for _ in range(titles)]
    lines = [
        *records,
        delimiter.join(csv_cell(h, delimiter) for h in header),
        *(delimiter.join(csv_cell(v, delimiter) for v in row) for row in rows),
    ]
    newline = rng.choice(["\r\n", "\n"])
    text = newline.join(lines) + (newline if final_newline else "")
    path.write_bytes((BOMS[encoding] if bom else b"") + text.encode(encoding))
    title_lines = sum(r.count("\n") + 1 for r in records)
    return TitledCsv(path, titles, title_lines, delimiter, encoding)


def booking_cells(i: int) -> list[str]:
    return [str(v) for v in booking(i).values()]


def _case_id(case: tuple[tuple[str, bool], str, int]) -> str:
    (encoding, bom), delimiter, seed = case
    return f"{encoding}{'-bom' if bom else ''}-{delimiter.encode('unicode_escape').decode()}-{seed}"


CASES = [
    (encoding, delimiter, seed)
    for encoding in ENCODINGS
    for delimiter in DELIMITERS
    for seed in range(SEEDS_PER_CASE)
]


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_title_lines_above_the_header(
    tmp_path: Path, case: tuple[tuple[str, bool], str, int]
) -> None:
    (encoding, bom), delimiter, seed = case
    rng = random.Random(f"{encoding}{bom}{delimiter}{seed}")
    titles = rng.randint(0, HEADER_SEARCH_ROWS - 1)
    header = rng.choice([HEADER, SPANISH])
    rows = [booking_cells(1), booking_cells(2), [*booking_cells(3), "stray"], booking_cells(4)]
    rows.append(booking_cells(5)[:-2])  # fewer values than the found header
    rows.append(booking_cells(6))
    made = write_titled_csv(
        tmp_path / "b.csv",
        rng,
        delimiter=delimiter,
        encoding=encoding,
        bom=bom,
        titles=titles,
        header=header,
        rows=rows,
    )
    upload = read_upload(made.path, "cl")

    errors = [i for i in upload.upload_issues if i.severity == "error"]
    assert errors == [], errors
    assert upload.delimiter == delimiter
    assert upload.header_row_number == titles + 1
    first = titles + 2
    assert [r.row_number for r in upload.rows] == list(range(first, first + 6))
    assert [r.external_reference for r in upload.rows] == [f"OPS-{i}" for i in range(1, 7)]
    codes = [[i.code for i in r.errors] for r in upload.rows]
    assert codes[:4] == [[], [], [IssueCode.EXTRA_VALUES], []]
    assert codes[4][0] == IssueCode.MISSING_VALUES  # then its missing required values
    assert codes[5] == []
    # The messages name the file's own physical line.
    extra = upload.rows[2].errors[0]
    assert f"line {made.title_lines + 4}" in extra.message, extra.message


@pytest.mark.parametrize("seed", range(16))
def test_a_cut_last_record_is_still_a_truncated_file(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    encoding, bom = rng.choice(ENCODINGS)
    delimiter = rng.choice(DELIMITERS)
    made = write_titled_csv(
        tmp_path / "b.csv",
        rng,
        delimiter=delimiter,
        encoding=encoding,
        bom=bom,
        titles=rng.randint(1, HEADER_SEARCH_ROWS - 1),
        header=HEADER,
        rows=[booking_cells(1), booking_cells(2)[:5]],
        final_newline=False,
    )
    upload = read_upload(made.path, "cl")
    (issue,) = [i for i in upload.upload_issues if i.severity == "error"]
    assert issue.code == IssueCode.FILE_TRUNCATED
    cut_row, cut_line = made.titles + 3, made.title_lines + 3
    assert f"middle of row {cut_row} (line {cut_line})" in issue.message, issue.message
    assert "5 of the header's 14 values" in issue.message
    # The whole record before it is read; the cut one is not padded into a row.
    assert [r.external_reference for r in upload.rows] == ["OPS-1"]


@pytest.mark.parametrize("seed", range(12))
def test_no_header_in_the_first_records_says_where_it_looked(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    encoding, bom = rng.choice(ENCODINGS)
    delimiter = rng.choice(DELIMITERS)
    made = write_titled_csv(
        tmp_path / "b.csv",
        rng,
        delimiter=delimiter,
        encoding=encoding,
        bom=bom,
        titles=rng.randint(HEADER_SEARCH_ROWS, HEADER_SEARCH_ROWS + 5),
        header=HEADER,
        rows=[booking_cells(1)],
    )
    upload = read_upload(made.path, "cl")
    assert upload.rows == []
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.HEADER_NOT_FOUND
    # Lines as a text editor numbers them: a quoted line break makes a record two lines.
    # With no header in sight the delimiter is a guess (the titles' own may win), and the
    # lines counted are those of 20 records as that delimiter splits them.
    text = made.path.read_bytes().decode(encoding).lstrip("\ufeff")
    guessed = detect_delimiter(text)
    lines = _lines_of_first_records(text, guessed, HEADER_SEARCH_ROWS)
    assert lines >= HEADER_SEARCH_ROWS
    assert f"looked at lines 1-{lines} of the file" in issue.message
    assert IssueCode.MISSING_COLUMN not in [i.code for i in upload.upload_issues]


def _lines_of_first_records(text: str, delimiter: str, count: int) -> int:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    for _ in range(count):
        next(reader)
    return reader.line_num


def test_only_title_lines_and_no_header(tmp_path: Path) -> None:
    path = tmp_path / "b.csv"
    path.write_text("Reservas de diciembre\r\n\r\nCódigo,Cliente,Monto\r\nA-1,Ana,100\r\n")
    upload = read_upload(path, "cl")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.HEADER_NOT_FOUND
    assert "looked at lines 1-4 of the file" in issue.message


def test_a_mapped_header_below_a_title(tmp_path: Path) -> None:
    own = ["Ref", "Producto", "Cuándo", *HEADER[3:]]
    mapping: dict[str, str | None] = {
        "Ref": "external_reference",
        "Producto": "service_sku",
        "Cuándo": "scheduled_start",
    }
    rng = random.Random(1)
    made = write_titled_csv(
        tmp_path / "b.csv",
        rng,
        delimiter=";",
        encoding="utf-8",
        bom=False,
        titles=2,
        header=own,
        rows=[booking_cells(1)],
    )
    upload: ParsedUpload = read_upload(made.path, "cl", mapping=mapping)
    assert upload.header_row_number == 3
    assert upload.rows[0].is_valid, upload.rows[0].issues


@pytest.mark.parametrize(
    ("sample", "expected"),
    [
        # A one-cell title, then a ';' table.
        ("Reservas de diciembre\n" + ";".join(HEADER) + "\n" + ";".join(HEADER) + "\n", ";"),
        # A title holding commas above a ';' table whose values have decimal commas.
        (
            "Cliente: Andes, Fecha: 2026-12-01, Total: 1,5\n"
            + ";".join(HEADER)
            + "\n"
            + ";".join(["1,5"] * len(HEADER))
            + "\n",
            ";",
        ),
        # A title naming columns with commas above a tab-separated table.
        (
            "Columnas: external_reference, service_sku, city, region\n" + "\t".join(HEADER) + "\n",
            "\t",
        ),
    ],
)
def test_a_title_line_does_not_decide_the_delimiter(sample: str, expected: str) -> None:
    assert detect_delimiter(sample) == expected
