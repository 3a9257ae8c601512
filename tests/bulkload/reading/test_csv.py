"""CSV input: encodings, delimiters, row numbering, broken files."""

from __future__ import annotations

import hashlib
import random
import tempfile
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bulkload.sheets import (
    BASE,
    BOMS,
    booking,
    csv_bytes,
    csv_cell,
    csv_of,
    csv_text,
    table,
    write_csv,
)
from sodtrack.bulkload import IssueCode, read_upload
from sodtrack.bulkload.reading.reader import TRUNCATED_MESSAGES, detect_delimiter, read_table

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
    # The quote swallows the file to its end: from the bytes alone that is a copy cut inside
    # a quoted value or a quote never closed; the message says both, naming the row.
    assert issue.code == IssueCode.FILE_TRUNCATED
    assert "row 3 (line 3)" in issue.message
    assert "never closed" in issue.message
    assert "still being copied" in issue.suggested_fix
    assert "check row 3" in issue.suggested_fix
    assert upload.has_upload_errors
    assert upload.valid_rows == []


def test_a_quote_inside_a_value_mid_file_is_unreadable_not_truncated(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1), booking(2), booking(3)])
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[2] = lines[2].replace("Av. Providencia 1234", '"Av. Providencia" 1234', 1)
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-8")
    upload = read_upload(path, "cl")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.FILE_UNREADABLE
    assert "Row 3 (line 3)" in issue.message
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


# -- UTF-16/32, TAB, field counts, truncation (issue #10) -------------------------------------

# (codec, BOM?) -> what the reader reports: with a BOM the codec that reads and drops it.
WIDE_ENCODINGS = [
    (codec, bom)
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be")
    for bom in (True, False)
]


def reported(codec: str, bom: bool) -> str:
    if codec == "utf-8":
        return "utf-8-sig" if bom else "utf-8"
    return codec[:6] if bom else codec


@pytest.mark.parametrize(("codec", "bom"), WIDE_ENCODINGS)
def test_unicode_text_as_excel_saves_it(tmp_path: Path, codec: str, bom: bool) -> None:
    # Excel's "Unicode text": UTF-16 LE with a BOM, TAB-separated; and its relatives.
    rows = [spanish_row("OPS-1"), spanish_row("OPS-2", last_name="Muñoz")]
    path = write_csv(
        tmp_path / "b.txt", SPANISH_HEADER, rows, delimiter="\t", encoding=codec, bom=bom
    )
    upload = read_upload(path, "cl")
    assert upload.encoding == reported(codec, bom)
    assert upload.delimiter == "\t"
    assert upload.upload_issues == []
    assert upload.columns["Referencia externa"] == "external_reference"  # no BOM in the name
    assert [r.customer_last_name for r in upload.valid_rows] == ["Peña", "Muñoz"]
    assert upload.rows[0].city == "Ñuñoa"
    assert upload.file_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


# Text a person types (accents, quotes, line breaks, every delimiter) and a few characters
# beyond Latin-1 (outside the BMP too: a surrogate pair in UTF-16). Without a BOM, UTF-16/32
# is recognised from the NUL bytes of Latin text, so those files get the Latin alphabet.
LATIN = "abcXYZ019 -_.:\"'" + "áéíóúñÑüçÁ"
WIDE_CHARS = "€–😀中"
SEPARATORS = ",;\t|\n\r"
CP1252_SAFE = "abcXYZ019 -_.:\"'" + "áéíóúñÑüçÁ"  # no byte 0x80-0xBF: never valid UTF-8


def corpus_encodings() -> list[tuple[str, bool]]:
    return [("utf-8", False), ("utf-8", True), ("cp1252", False), *WIDE_ENCODINGS]


@st.composite
def csv_tables(draw: st.DrawFn) -> tuple[str, bool, str, str, bool, list[str], list[list[str]]]:
    codec, bom = draw(st.sampled_from(corpus_encodings()))
    delimiter = draw(st.sampled_from([",", ";", "\t"]))
    newline = draw(st.sampled_from(["\r\n", "\n"]))
    final_newline = draw(st.booleans())
    width = draw(st.integers(2, 6))
    if codec == "cp1252":
        alphabet = CP1252_SAFE + SEPARATORS
    elif codec.startswith("utf-8") or bom:
        alphabet = LATIN + WIDE_CHARS + SEPARATORS
    else:
        alphabet = LATIN + SEPARATORS
    # Headers hold no delimiter character: the delimiter is judged on the header record.
    name = st.text(
        st.sampled_from([c for c in alphabet if c not in SEPARATORS]), min_size=1, max_size=10
    ).filter(lambda t: bool(t.strip()))
    header = draw(st.lists(name, min_size=width, max_size=width))
    cell = st.text(st.sampled_from(alphabet), max_size=12)
    rows = draw(st.lists(st.lists(cell, min_size=width, max_size=width), max_size=6))
    return codec, bom, delimiter, newline, final_newline, header, rows


@settings(derandomize=True, max_examples=400, deadline=None)
@given(table=csv_tables())
def test_generated_csv_files_read_back_cell_for_cell(
    table: tuple[str, bool, str, str, bool, list[str], list[list[str]]],
) -> None:
    codec, bom, delimiter, newline, final_newline, header, rows = table
    data = csv_bytes(
        header,
        rows,
        delimiter=delimiter,
        encoding=codec,
        newline=newline,
        bom=bom,
        final_newline=final_newline,
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "b.csv"
        path.write_bytes(data)
        # The generated names are no known columns: the first record with a value is taken
        # as the header (test_csv_header_search.py covers finding a real one).
        raw = read_table(path, is_header=lambda cells: any(str(c).strip() for c in cells))
        read_rows = list(raw.rows)
    if codec == "cp1252":
        text = "".join([*header, *(c for r in rows for c in r)])
        assert raw.encoding == ("utf-8" if text.isascii() else "cp1252")
    else:
        assert raw.encoding == reported(codec, bom)
    assert raw.delimiter == delimiter
    assert not [i for i in raw.issues if i.severity == "error"]
    assert raw.header == header
    assert [cells for _, cells in read_rows] == rows
    assert raw.field_counts == {}
    last = len(rows) + 1
    assert raw.unterminated_rows == (set() if final_newline or not rows else {last})


def records_with_notes(rng: random.Random, n: int) -> list[dict[str, object]]:
    """Valid bookings, some with notes spanning lines, quotes, delimiters and accents."""
    notes = ["", "", "llamar antes", 'dice "urgente", piso 3; depto B', "línea 1\nlínea 2"]
    notes += ["a\r\nb\r\nc", "Peña – €"]
    return [booking(i, notes=rng.choice(notes)) for i in range(1, n + 1)]


def physical_lines(text: str) -> int:
    """Lines a text editor shows for a record's text (CRLF, LF or CR end a line)."""
    return text.count("\n") + text.count("\r") - text.count("\r\n") + 1


@pytest.mark.parametrize("seed", range(40))
def test_records_with_missing_or_extra_fields_are_rejected_with_their_line(
    tmp_path: Path, seed: int
) -> None:
    rng = random.Random(seed)
    delimiter = rng.choice([",", ";", "\t"])
    codec, bom = rng.choice([("utf-8", False), ("utf-8", True), ("utf-16-le", True)])
    header, body = table(records_with_notes(rng, rng.randint(3, 12)))
    expected: dict[int, IssueCode] = {}
    for index, row in enumerate(body):
        change = rng.choice(["same", "same", "fewer", "more"])
        if change == "fewer":
            for _ in range(rng.randint(1, 3)):
                del row[rng.randrange(1, len(row))]  # the reference stays: not a blank row
            expected[index + 2] = IssueCode.MISSING_VALUES
        elif change == "more":
            # An empty extra value is no safer than a full one: "Av. X, depto 5" unquoted
            # with empty notes shifts every column and ends in an empty extra field.
            extra = rng.choice(["", "stray", "1.234,5"])
            row.insert(rng.randrange(1, len(row) + 1), extra)
            expected[index + 2] = IssueCode.EXTRA_VALUES
    text = csv_text(header, body, delimiter=delimiter)
    path = tmp_path / "b.csv"
    path.write_bytes((BOMS[codec] if bom else b"") + text.encode(codec))
    # The physical line each record starts on, counted on the records' own text.
    starts: dict[int, tuple[int, int]] = {}
    line = 1 + physical_lines(csv_text(header, [], delimiter=delimiter, final_newline=False))
    for number, row in enumerate(body, start=2):
        span = physical_lines(csv_text(row, [], delimiter=delimiter, final_newline=False))
        starts[number] = (line, line + span - 1)
        line += span

    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors, upload.upload_issues
    assert [r.row_number for r in upload.rows] == list(range(2, len(body) + 2))
    for parsed in upload.rows:
        codes = [i.code for i in parsed.errors]
        if parsed.row_number not in expected:
            assert parsed.is_valid, parsed.issues
            continue
        # First: the results file gives the row the first error's code.
        assert codes[0] == expected[parsed.row_number], (parsed.row_number, parsed.issues)
        issue = parsed.errors[0]
        first, last = starts[parsed.row_number]
        where = f"line {first} " if first == last else f"lines {first}-{last} "
        assert where in issue.message, (issue.message, first, last)
        # Never padded nor cut to the header's width: the cells are the record's own.
        original = parsed.original_values
        assert len(original) == len(body[parsed.row_number - 2])
        assert list(original) == body[parsed.row_number - 2]


def test_blank_trailing_lines_are_fine(tmp_path: Path) -> None:
    path = csv_of(tmp_path / "b.csv", [booking(1), booking(2)])
    path.write_bytes(path.read_bytes() + b"\r\n\r\n,,\r\n")
    upload = read_upload(path, "cl")
    assert upload.upload_issues == []
    assert [r.row_number for r in upload.valid_rows] == [2, 3]
    assert upload.skipped_empty_rows == 3


# The cut corpus: notes (quoted, several lines, accents, beyond Latin-1) in the middle of the
# record and the postal code last, so every kind of cut falls somewhere in each record.
CUT_ENCODINGS = [
    ("utf-8", False),
    ("utf-8", True),
    ("cp1252", False),
    ("utf-16-le", True),
    ("utf-16-be", False),
    ("utf-32-le", False),
    ("utf-32-be", True),
]
CUT_NOTES = ['dice "urgente", piso 3; depto B', "línea 1\r\nlínea 2\r\n€ 30", "", "Peña"]
CUT_COLUMNS = [c for c in BASE if c not in ("notes", "postal_code")]
CUT_COLUMNS[4:4] = ["notes"]
CUT_COLUMNS.append("postal_code")


@dataclass(frozen=True)
class CutFile:
    """A valid CSV file's text and bytes, and where its records and fields lie in them."""

    codec: str
    text: str
    data: bytes
    body: list[list[str]]
    fields: list[list[tuple[int, int, bool]]]
    """Per data record, each field's (start, end, quoted), in characters."""
    boundaries: dict[int, int]
    """Byte offset -> characters before it, for every offset between two characters."""

    def expect(self, cut: int) -> tuple[str, int, str]:
        """What a copy cut after ``cut`` bytes must read as: ``("header", 0, "")`` (nothing to
        load), ``("truncated", 0, reason)`` (a key of ``TRUNCATED_MESSAGES``),
        ``("complete", k, "")`` (the first ``k`` records) or ``("last_cut", k, prefix)``
        (record ``k`` cut inside its last value)."""
        first_record = next(b for b, c in self.boundaries.items() if c == self.fields[0][0][0])
        if cut <= first_record:
            return ("header", 0, "")  # in the BOM or the header: no record to read
        chars = self.boundaries.get(cut)
        if chars is None:
            return ("truncated", 0, "mid_character")
        for k, fields in enumerate(self.fields):
            start, end = fields[0][0], fields[-1][1]
            if chars in (end + 1, end + 2):  # after its CR, or its CR LF
                return ("complete", k + 1, "")
            if start < chars <= end:
                present = [f for f in fields if f[0] <= chars]
                f_start, f_end, quoted = present[-1]
                if quoted and f_start < chars < f_end:
                    # Inside the quotes, unless the text ends on an unpaired quote (the
                    # first of a doubled one): that closes the value, and the record is short.
                    inner = self.text[f_start + 1 : chars]
                    if (len(inner) - len(inner.rstrip('"'))) % 2 == 0:
                        return ("truncated", 0, "open_quote")
                if len(present) < len(fields):
                    return ("truncated", 0, "short_last_record")
                return ("last_cut", k + 1, self.text[f_start:chars])
        raise AssertionError(cut)

    def probes(self, rng: random.Random) -> set[int]:
        """Byte offsets inside every quoted value, and inside characters: some of those
        longer than the encoding's unit (accents in UTF-8, the emoji's surrogate pair in
        UTF-16) and some others (half a UTF-16 unit)."""
        byte_of = {chars: offset for offset, chars in self.boundaries.items()}
        offsets = set()
        for fields in self.fields:
            for start, end, quoted in fields:
                if quoted:
                    offsets |= {byte_of[start + 1], byte_of[(start + end) // 2], byte_of[end - 1]}
        ordered = sorted(self.boundaries)
        sizes = [(a, b - a) for a, b in pairwise(ordered)]
        unit = min(size for _, size in sizes)
        long = sorted(a + size - 1 for a, size in sizes if size > unit)
        short = sorted(a + 1 for a, size in sizes if size > 1)
        offsets |= set(rng.sample(long, min(10, len(long))))
        return offsets | set(rng.sample(short, min(5, len(short))))


def cut_file(codec: str, bom: bool, delimiter: str, records: int) -> CutFile:
    notes = CUT_NOTES if codec == "cp1252" else [*CUT_NOTES, "emoji 😀 fin"]
    body = []
    for i in range(1, records + 1):
        row = booking(i, customer_last_name="Peña", city="Ñuñoa", notes=notes[i % len(notes)])
        row["postal_code"] = f"{7500000 + i}"
        body.append([str(row[c]) for c in CUT_COLUMNS])
    text = csv_text(CUT_COLUMNS, [], delimiter=delimiter)
    fields: list[list[tuple[int, int, bool]]] = []
    for record in body:
        spans, position = [], len(text)
        for value in record:
            piece = csv_cell(value, delimiter)
            spans.append((position, position + len(piece), piece.startswith('"')))
            position += len(piece) + 1  # and its delimiter
        fields.append(spans)
        text += csv_text(record, [], delimiter=delimiter)
    prefix = BOMS[codec] if bom else b""
    boundaries, offset = {}, len(prefix)
    for index, ch in enumerate(text):
        boundaries[offset] = index
        offset += len(ch.encode(codec))
    boundaries[offset] = len(text)
    return CutFile(codec, text, prefix + text.encode(codec), body, fields, boundaries)


def test_the_cut_corpus_knows_its_own_file() -> None:
    # The expectations are computed from the file's layout: check that layout first.
    cut = cut_file("utf-16-le", True, ";", 3)
    assert cut.expect(len(cut.data)) == ("complete", 3, "")
    assert cut.expect(1) == ("header", 0, "")
    first = next(b for b, c in cut.boundaries.items() if c == cut.fields[0][0][0])
    assert cut.expect(first) == ("header", 0, "")  # the header and its line break
    assert cut.expect(first + 1) == ("truncated", 0, "mid_character")  # half a character
    assert cut.expect(first + 2) == ("truncated", 0, "short_last_record")  # one character
    last = cut.fields[-1][-1]
    offset = next(b for b, c in cut.boundaries.items() if c == last[0] + 3)
    assert cut.expect(offset) == ("last_cut", 3, cut.body[-1][-1][:3])
    for k, fields in enumerate(cut.fields):
        assert [cut.text[a:b] for a, b, _ in fields] == [csv_cell(v, ";") for v in cut.body[k]]
        end = fields[-1][1]
        assert cut.text[end : end + 2] == "\r\n"


@pytest.mark.parametrize(("codec", "bom"), CUT_ENCODINGS)
@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_a_file_cut_anywhere_is_refused_or_read_as_the_records_it_holds(
    tmp_path: Path, codec: str, bom: bool, delimiter: str
) -> None:
    cut = cut_file(codec, bom, delimiter, records=5)
    rng = random.Random(f"{codec}{bom}{delimiter}")
    byte_of = {chars: offset for offset, chars in cut.boundaries.items()}
    ends = [byte_of[fields[-1][1]] for fields in cut.fields]
    offsets = {o + d for o in ends for d in range(-5, 10) if 0 <= o + d <= len(cut.data)}
    offsets |= set(rng.sample(range(len(cut.data) + 1), 60)) | cut.probes(rng)
    seen: set[str] = set()
    path = tmp_path / "b.csv"
    for offset in sorted(offsets):
        path.write_bytes(cut.data[:offset])
        upload = read_upload(path, "cl")
        kind, k, detail = cut.expect(offset)
        seen.add(detail if kind == "truncated" else kind)
        codes = [i.code for i in upload.upload_issues]
        read = [list(r.original_values) for r in upload.rows]
        context = (offset, kind, detail, codes, cut.data[max(0, offset - 12) : offset])
        if kind == "header":
            assert upload.has_upload_errors, context
        elif kind == "truncated":
            (issue,) = [i for i in upload.upload_issues if i.code == IssueCode.FILE_TRUNCATED]
            reasons = {detail}
            if codec == "cp1252" and cut.data[offset - 1] >= 0x80:
                # A CP-1252 file whose bytes so far are UTF-8 but for an accented letter at
                # the very end reads as UTF-8 cut inside a character: refused all the same.
                reasons.add("mid_character")
            openings = [TRUNCATED_MESSAGES[r][0].split("{")[0] for r in reasons]  # type: ignore[index]
            assert any(issue.message.startswith(o) for o in openings), (issue.message, context)
            # Nothing padded: whatever was read before the cut is whole records.
            assert read == cut.body[: len(read)], context
        else:
            assert not upload.has_upload_errors, context
            if kind == "complete":
                assert read == cut.body[:k], context
                assert all(
                    i.code != IssueCode.NO_FINAL_LINE_BREAK for r in upload.rows for i in r.issues
                )
            else:
                assert read[:-1] == cut.body[: k - 1], context
                assert read[-1] == [*cut.body[k - 1][:-1], detail], context
                assert IssueCode.NO_FINAL_LINE_BREAK in [i.code for i in upload.rows[-1].warnings]
        assert upload.valid_rows == [] or kind in ("complete", "last_cut"), context
    expected = {"header", "complete", "last_cut", "open_quote", "short_last_record"}
    if codec != "cp1252":
        expected.add("mid_character")
    assert seen == expected


def test_a_cut_inside_a_quoted_last_value(tmp_path: Path) -> None:
    rows = [booking(1), booking(2, notes='dice "hola"\r\nfin')]
    path = csv_of(tmp_path / "b.csv", rows)
    data = path.read_bytes()
    closing = data.rindex(b'"')
    path.write_bytes(data[:closing])  # still inside the quotes: cut short
    upload = read_upload(path, "cl")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.FILE_TRUNCATED
    assert "row 3 (line 3)" in issue.message
    assert upload.valid_rows == []
    path.write_bytes(data[: closing + 1])  # just after the closing quote: the row is whole
    upload = read_upload(path, "cl")
    assert not upload.has_upload_errors
    assert upload.rows[-1].notes == 'dice "hola"\r\nfin'
    assert [i.code for i in upload.rows[-1].warnings] == [IssueCode.NO_FINAL_LINE_BREAK]


def test_utf16_with_a_broken_character_mid_file_is_unreadable(tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "b.txt", SPANISH_HEADER, [spanish_row("OPS-1")], encoding="utf-16-le", bom=True
    )
    data = bytearray(path.read_bytes())
    at = data.index("Peña".encode("utf-16-le"))
    data[at : at + 2] = "\udc00".encode("utf-16-le", "surrogatepass")  # a lone low surrogate
    path.write_bytes(bytes(data))
    upload = read_upload(path, "cl")
    (issue,) = upload.upload_issues
    assert issue.code == IssueCode.FILE_UNREADABLE
    assert "UTF-16" in issue.message


def test_a_file_rewritten_while_it_is_read_is_refused(tmp_path: Path) -> None:
    # The first pass decoded every byte; the second finds bytes that do not decode: the file
    # changed in between (still being written). An answer, not a UnicodeDecodeError.
    rows = [booking(i, notes="ñ" * 40) for i in range(1, 400)]
    path = csv_of(tmp_path / "b.csv", rows)
    data = path.read_bytes()
    raw = read_table(path)
    first = next(raw.rows)
    assert first[0] == 2
    at = len(data) * 3 // 4
    path.write_bytes(data[:at] + b"\xff" + data[at + 1 :])  # in place: the reader sees it
    list(raw.rows)
    assert [i.code for i in raw.issues] == [IssueCode.FILE_TRUNCATED]
    assert "changed while it was being read" in raw.issues[0].message
