"""Upload limits: hostile and oversized files refused before any parser sees them.

Every workbook here is a real file: hand-built ZIPs (``bombs``) for what no spreadsheet
program writes, openpyxl workbooks for the ones right under a limit. The same files through a
subprocess of ``sodtrack-etl load`` are in ``tests/bulkload/run/test_limits_cli.py``.
"""

from __future__ import annotations

import random
import struct
import zipfile
import zlib
from dataclasses import replace
from pathlib import Path

import pytest
import python_calamine

from bulkload import bombs
from bulkload.sheets import booking, table, write_csv, write_xlsx
from sodtrack.bulkload import IssueCode, read_upload
from sodtrack.bulkload.reading.limits import (
    LIMITS,
    RATIO_FLOOR,
    HostileFile,
    LimitExceeded,
    LimitName,
    UploadLimits,
    _aligned,
    _SheetScan,
    check_upload,
    column_letters,
    column_number,
)
from sodtrack.bulkload.run import upload_limits
from sodtrack.settings import Settings

SMALL = UploadLimits(
    max_file_bytes=1 << 20,
    max_rows=40,
    max_columns=12,
    max_cells=40 * 12 * 2,
    max_cell_chars=300,
    max_uncompressed_bytes=8 << 20,
    max_compression_ratio=50,
    max_zip_members=30,
)


def refusal(path: Path, limits: UploadLimits = SMALL) -> LimitExceeded:
    with pytest.raises(LimitExceeded) as caught:
        check_upload(path, limits)
    return caught.value


def refused_by(path: Path, limits: UploadLimits = SMALL) -> LimitName:
    """The limit ``read_upload`` names, through the ordinary upload-issue path."""
    parsed = read_upload(path, "cl", limits=limits)
    assert parsed.rows == []
    errors = [i for i in parsed.upload_issues if i.severity == "error"]
    assert len(errors) == 1, errors
    assert errors[0].code == IssueCode.LIMIT_EXCEEDED, errors[0]
    named = [name for name, spec in LIMITS.items() if spec.setting in errors[0].message]
    assert len(named) >= 1, errors[0].message
    assert named[0] == refusal(path, limits).limit
    return named[0]


# -- the bombs of the issue ------------------------------------------------------------------


@pytest.mark.parametrize("dimension", [True, False])
def test_a_cell_at_xfd1048576_is_refused_not_allocated(tmp_path: Path, dimension: bool) -> None:
    path = bombs.xfd_cell(tmp_path / "xfd.xlsx", dimension=dimension)
    assert path.stat().st_size < 5_000
    assert refused_by(path, UploadLimits()) == "max_rows"
    message = read_upload(path, "cl").upload_issues[0].message
    assert "1,048,575 rows" in message
    assert "SODTRACK_UPLOAD_MAX_ROWS" in message


def test_a_huge_reference_in_a_single_cell_is_refused(tmp_path: Path) -> None:
    # The row says 1, the cell says row 99,999,999: calamine goes by the cell.
    body = bombs.row(1, [bombs.cell("A1"), bombs.cell("B99999999")])
    path = bombs.workbook(tmp_path / "ref.xlsx", bombs.sheet_xml(body, dimension="A1:B1"))
    assert refused_by(path, UploadLimits()) == "max_rows"
    body = bombs.row(1, [bombs.cell("A1"), bombs.cell("XFD1")])
    path = bombs.workbook(tmp_path / "col.xlsx", bombs.sheet_xml(body, dimension="A1:B1"))
    assert refused_by(path, UploadLimits()) == "max_columns"
    body = bombs.row(1, [bombs.cell("A1"), bombs.cell("A" + "9" * 40)])
    path = bombs.workbook(tmp_path / "digits.xlsx", bombs.sheet_xml(body))
    assert refused_by(path, UploadLimits()) == "max_rows"


def test_a_dimension_that_lies_does_not_hide_the_body(tmp_path: Path) -> None:
    path = bombs.dense(tmp_path / "lies.xlsx", rows=60, columns=5, dimension="A1:E10")
    assert refused_by(path) == "max_rows"


def test_a_dense_sheet_over_the_row_and_cell_limits(tmp_path: Path) -> None:
    assert refused_by(bombs.dense(tmp_path / "rows.xlsx", rows=45, columns=3)) == "max_rows"
    wide = replace(SMALL, max_cells=30 * 12 - 1)
    assert refused_by(bombs.dense(tmp_path / "cells.xlsx", rows=30, columns=12), wide) == (
        "max_cells"
    )
    assert refused_by(bombs.dense(tmp_path / "cols.xlsx", rows=3, columns=13)) == "max_columns"


def test_a_declared_gigabyte_of_zeros_is_refused_from_the_directory(tmp_path: Path) -> None:
    path = bombs.deflate_bomb(tmp_path / "bomb.xlsx", 1 << 30)
    assert path.stat().st_size < 2 << 20
    assert refused_by(path, UploadLimits()) == "max_uncompressed_bytes"


def test_a_part_over_the_compression_ratio(tmp_path: Path) -> None:
    size = 2 * RATIO_FLOOR
    path = bombs.deflate_bomb(tmp_path / "ratio.xlsx", size)
    assert refused_by(path, UploadLimits()) == "max_compression_ratio"
    info = zipfile.ZipFile(path).getinfo(bombs.SHEET)
    ratio = info.file_size / info.compress_size
    # Right at the ratio the directory passes; 2 MiB of NUL bytes is then one text node
    # longer than any cell.
    at_ratio = replace(UploadLimits(), max_compression_ratio=ratio)
    assert refusal(path, at_ratio).limit == "max_cell_chars"


def test_a_part_that_expands_beyond_its_declared_size(tmp_path: Path) -> None:
    # 1 GiB of zeros declared as 20 MiB: 20:1 passes the ratio, the inflater stops it.
    path = bombs.lying_size_bomb(tmp_path / "lying.xlsx", declared=20 << 20, real=1 << 30)
    with pytest.raises(HostileFile) as caught:
        check_upload(path, UploadLimits())
    assert "more than the 20.0 MiB it declares" in caught.value.issue.message
    parsed = read_upload(path, "cl")
    assert [i.code for i in parsed.upload_issues] == [IssueCode.FILE_UNREADABLE]
    # The same lie in the sheet itself: its megabyte of NUL bytes is refused as it streams.
    sheet = bombs.lying_size_bomb(tmp_path / "sheet.xlsx", 20 << 20, 1 << 30, part="x.xml")
    with pytest.raises(HostileFile):
        check_upload(sheet, UploadLimits())


def test_shared_strings_are_bounded(tmp_path: Path) -> None:
    assert refused_by(bombs.huge_shared_string(tmp_path / "long.xlsx", 301)) == "max_cell_chars"
    check_upload(bombs.huge_shared_string(tmp_path / "ok.xlsx", 300), SMALL)
    few = replace(SMALL, max_cells=100)
    assert refused_by(bombs.many_shared_strings(tmp_path / "many.xlsx", 101), few) == "max_cells"
    check_upload(bombs.many_shared_strings(tmp_path / "enough.xlsx", 100), few)
    # A shared string of 40,000 characters against the default (Excel's) limit.
    path = bombs.huge_shared_string(tmp_path / "excel.xlsx", 40_000)
    assert refused_by(path, UploadLimits()) == "max_cell_chars"


def test_a_long_inline_string_and_entities(tmp_path: Path) -> None:
    long_cell = bombs.cell("A1", "z" * 301)
    path = bombs.workbook(tmp_path / "inline.xlsx", bombs.sheet_xml(bombs.row(1, [long_cell])))
    assert refused_by(path) == "max_cell_chars"
    # 300 characters written as entities take 1,500 bytes: counted as characters, accepted.
    amps = bombs.cell("A1", "&amp;" * 300)
    check_upload(
        bombs.workbook(tmp_path / "amp.xlsx", bombs.sheet_xml(bombs.row(1, [amps]))), SMALL
    )


def test_too_many_parts_even_when_the_end_record_understates_them(tmp_path: Path) -> None:
    path = bombs.many_members(tmp_path / "members.xlsx", 40)
    assert refused_by(path) == "max_zip_members"
    data = bytearray(path.read_bytes())
    at = data.rfind(b"PK\x05\x06")
    struct.pack_into("<2H", data, at + 8, 5, 5)  # "5 entries"
    path.write_bytes(bytes(data))
    assert refusal(path).limit == "max_zip_members"


@pytest.mark.parametrize("cut", [22, 200, 2_000])
def test_a_workbook_cut_short_is_refused_unmeasured_never_parsed(tmp_path: Path, cut: int) -> None:
    header, rows = table([booking(i) for i in range(1, 40)])
    path = write_xlsx(tmp_path / "cut.xlsx", {"Bookings": [header, *rows]})
    path.write_bytes(path.read_bytes()[:-cut])
    with pytest.raises(HostileFile) as caught:
        check_upload(path, UploadLimits())
    assert "cannot be opened" in caught.value.issue.message
    (issue,) = read_upload(path, "cl").upload_issues
    assert issue.code == IssueCode.FILE_UNREADABLE


def test_a_file_over_the_size_limit_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 300_000)
    assert refused_by(path, replace(UploadLimits(), max_file_bytes=1 << 20)) == "max_file_bytes"


# -- CSV ---------------------------------------------------------------------------------------


def test_csv_over_each_limit(tmp_path: Path) -> None:
    header, rows = table([booking(i) for i in range(1, 4)])
    limits = replace(SMALL, max_columns=len(header))
    long_cell = write_csv(tmp_path / "long.csv", header, [[*rows[0][:-1], "n" * 301]])
    assert refused_by(long_cell, limits) == "max_cell_chars"
    wide = write_csv(tmp_path / "wide.csv", [*header, "extra"], rows)
    assert refused_by(wide, limits) == "max_columns"
    many = write_csv(tmp_path / "many.csv", header, [rows[0]] * 41)
    assert refused_by(many, limits) == "max_rows"
    # A single line of 50 MB without a newline is never read whole: refused at the cap.
    line = tmp_path / "line.csv"
    line.write_bytes(b"a," * (4 << 20))
    assert refused_by(line, replace(SMALL, max_file_bytes=16 << 20)) == "max_columns"
    # Over the csv module's own field limit (131,072): refused as too long, not skipped.
    huge = tmp_path / "huge.csv"
    huge.write_text('a,b\n1,"' + "h" * 200_000 + '"\n2,3\n', encoding="utf-8")
    assert refused_by(huge, replace(SMALL, max_cell_chars=300_000)) == "max_cell_chars"
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(("\ufeff" + "a\tb\r\n" + "x\t" + "y" * 301 + "\r\n").encode("utf-16-le"))
    assert refusal(utf16).limit == "max_cell_chars"


# -- right under every limit -------------------------------------------------------------------


def _measured(path: Path, rows: int, columns: int, longest: int) -> UploadLimits:
    """Limits equal to what ``path`` holds: the file must pass them exactly."""
    limits = UploadLimits(
        max_file_bytes=path.stat().st_size,
        max_rows=rows,
        max_columns=columns,
        max_cells=(rows + 1) * columns,
        max_cell_chars=longest,
    )
    if path.suffix == ".xlsx":
        infos = zipfile.ZipFile(path).infolist()
        limits = replace(
            limits,
            max_uncompressed_bytes=sum(i.file_size for i in infos),
            max_zip_members=len(infos),
        )
    return limits


@pytest.mark.parametrize("suffix", [".xlsx", ".csv"])
def test_a_file_right_under_each_limit_is_accepted_and_one_less_refuses_it(
    tmp_path: Path, suffix: str
) -> None:
    rows = [booking(i, notes="n" * (120 if i == 7 else 10)) for i in range(1, 31)]
    header, body = table(rows)
    path = tmp_path / f"under{suffix}"
    if suffix == ".csv":
        write_csv(path, header, body)
    else:
        write_xlsx(path, {"Bookings": [header, *body]})
    limits = _measured(path, rows=30, columns=len(header), longest=120)
    parsed = read_upload(path, "cl", limits=limits)
    assert not parsed.has_upload_errors, parsed.upload_issues
    assert len(parsed.rows) == 30
    assert all(r.is_valid for r in parsed.rows)
    names: list[LimitName] = ["max_file_bytes", "max_rows", "max_columns", "max_cell_chars"]
    names += ["max_cells"] if suffix == ".xlsx" else []
    names += ["max_uncompressed_bytes", "max_zip_members"] if suffix == ".xlsx" else []
    for name in names:
        tighter = replace(limits, **{name: getattr(limits, name) - 1})
        assert refused_by(path, tighter) == name


# -- a seeded corpus of hostile sheets -------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_seeded_corpus_of_hostile_sheets(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    path, expected = bombs.corpus_variant(rng, tmp_path / f"v{seed}.xlsx", rows=40, columns=12)
    limits = replace(SMALL, max_cells=10**9)
    assert refused_by(path, limits) == expected


def _calamine_bounds(path: Path) -> tuple[int, int]:
    workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    sheet = workbook.get_sheet_by_name("Bookings")
    start = sheet.start or (0, 0)
    return start[0] + sheet.height, start[1] + sheet.width


@pytest.mark.parametrize("seed", range(30))
def test_the_scan_measures_what_calamine_allocates(tmp_path: Path, seed: int) -> None:
    """Valid sheets with and without ``r`` on rows and cells, prefixed or not: the bounds
    the pre-check computes are calamine's own (its last row and column)."""
    rng = random.Random(1000 + seed)
    prefix = rng.choice(["", "x"])
    body: list[bytes] = []
    current = 0
    for _ in range(rng.randint(1, 25)):
        explicit_row = rng.random() < 0.7
        current += rng.choice([1, 1, 1, 2, 7]) if explicit_row else 1
        column = 0
        cells: list[bytes] = []
        for _ in range(rng.randint(1, 9)):
            explicit = rng.random() < 0.8
            column += rng.choice([1, 1, 3]) if explicit else 1
            ref = f"{column_letters(column)}{current}" if explicit else None
            cells.append(bombs.cell(ref, prefix=prefix))
        body.append(bombs.row(current if explicit_row else None, cells, prefix=prefix))
    path = bombs.workbook(tmp_path / "valid.xlsx", bombs.sheet_xml(body, prefix=prefix))
    scan = _SheetScan(UploadLimits(), "sheet")
    with zipfile.ZipFile(path) as archive:
        xml = archive.read(bombs.SHEET)
    for data in _aligned(_rechunk(xml, rng), 1 << 20, UploadLimits()):
        scan.feed(data)
    assert (scan.last_row, scan.last_column) == _calamine_bounds(path)


def _rechunk(data: bytes, rng: random.Random) -> list[bytes]:
    """``data`` cut at random places (tags and references cut in two)."""
    out: list[bytes] = []
    i = 0
    while i < len(data):
        step = rng.randint(1, 300)
        out.append(data[i : i + step])
        i += step
    return out


# -- settings and units ------------------------------------------------------------------------


def test_the_settings_raise_the_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    assert upload_limits(Settings()) == UploadLimits()
    monkeypatch.setenv("SODTRACK_UPLOAD_MAX_FILE_BYTES", "1KiB")
    monkeypatch.setenv("SODTRACK_UPLOAD_MAX_ROWS", "7")
    monkeypatch.setenv("SODTRACK_UPLOAD_MAX_COMPRESSION_RATIO", "12.5")
    limits = upload_limits(Settings())
    assert (limits.max_file_bytes, limits.max_rows, limits.max_compression_ratio) == (
        1024,
        7,
        12.5,
    )
    for spec in LIMITS.values():
        field = spec.setting.removeprefix("SODTRACK_").lower()
        assert field in Settings.model_fields, spec.setting
    env_example = (Path(__file__).parents[3] / ".env.example").read_text(encoding="utf-8")
    assert all(f"{spec.setting}=" in env_example for spec in LIMITS.values())
    with pytest.raises(ValueError, match="max_rows"):
        UploadLimits(max_rows=0)


def test_column_letters_round_trip() -> None:
    for n in (1, 26, 27, 52, 200, 702, 703, 16384):
        assert column_number(column_letters(n)) == n
    assert column_letters(16384) == "XFD"


def test_deflate_bomb_builder_is_a_valid_stream() -> None:
    raw = bombs.zeros_deflate((3 << 20) + 5)
    assert zlib.decompress(raw, -15) == bytes((3 << 20) + 5)


# -- seeded corpora of container and CSV bombs -----------------------------------------------

ZIP_KINDS = ("declared", "ratio", "lying", "members", "strings_long", "strings_many")


@pytest.mark.parametrize("seed", range(30))
def test_seeded_corpus_of_zip_bombs(tmp_path: Path, seed: int) -> None:
    rng = random.Random(5000 + seed)
    kind = ZIP_KINDS[seed % len(ZIP_KINDS)]
    path = tmp_path / f"{kind}.xlsx"
    sheet = bombs.sheet_xml(bombs.row(1, [bombs.cell("A1")]))
    expected: LimitName
    if kind == "declared":
        size = rng.randint(SMALL.max_uncompressed_bytes + 1, 2 << 30)
        bombs.workbook(path, sheet, extra=[bombs.Member("xl/media/z.bin", b"", size)])
        expected = "max_uncompressed_bytes"
    elif kind == "ratio":
        size = rng.randint(RATIO_FLOOR + 1, SMALL.max_uncompressed_bytes // 2)
        part = rng.choice(["xl/styles.xml", "xl/media/image1.png", "docProps/app.xml"])
        bombs.workbook(path, sheet, extra=[bombs.Member(part, bombs.zeros_deflate(size), size)])
        expected = "max_compression_ratio"
    elif kind == "lying":
        declared = rng.randint(RATIO_FLOOR + 1, 7 << 20)
        real = rng.choice([256 << 20, 512 << 20])
        part = rng.choice(["xl/styles.xml", "xl/media/image1.png", "docProps/app.xml"])
        bombs.lying_size_bomb(path, declared, real, part=part)
        with pytest.raises(HostileFile):
            check_upload(path, SMALL)
        return
    elif kind == "members":
        bombs.many_members(path, rng.randint(SMALL.max_zip_members, 300))
        if rng.random() < 0.5:  # an end record that understates the count
            data = bytearray(path.read_bytes())
            struct.pack_into("<2H", data, data.rfind(b"PK\x05\x06") + 8, 3, 3)
            path.write_bytes(bytes(data))
        expected = "max_zip_members"
    elif kind == "strings_long":
        chars = rng.randint(SMALL.max_cell_chars + 1, 5_000)
        text = rng.choice(["y", "&amp;", "ñ", "&#x1F600;"]) * chars
        body = bombs.row(1, [b'<c r="A1" t="s"><v>0</v></c>'])
        strings = bombs.strings_xml(["short", text][:: rng.choice([1, -1])])
        bombs.workbook(path, bombs.sheet_xml(body), strings=strings)
        expected = "max_cell_chars"
    else:
        count = rng.randint(SMALL.max_cells + 1, SMALL.max_cells + 500)
        bombs.many_shared_strings(path, count)
        expected = "max_cells"
    assert refused_by(path) == expected


CSV_KINDS = ("rows", "columns", "cell", "quoted_cell", "size")
WORDS = ("José", "Peña", "Ñandú", "Providencia", "7500000", "a b c", "x;y", "12,5")


def _csv_value(rng: random.Random, delimiter: str) -> str:
    value = rng.choice(WORDS)
    if delimiter in value or '"' in value:
        return '"' + value.replace('"', '""') + '"'
    return value


@pytest.mark.parametrize("seed", range(30))
def test_seeded_corpus_of_csv_bombs(tmp_path: Path, seed: int) -> None:
    rng = random.Random(7000 + seed)
    kind = CSV_KINDS[seed % len(CSV_KINDS)]
    delimiter = rng.choice([",", ";", "\t", "|"])
    encoding = rng.choice(["utf-8", "utf-8-sig", "utf-16", "cp1252"])
    width = rng.randint(2, SMALL.max_columns)
    lines = [delimiter.join(f"col{i}" for i in range(width))]
    count = rng.randint(SMALL.max_rows + 1, 120) if kind == "rows" else rng.randint(1, 40)
    for _ in range(count):
        lines.append(delimiter.join(_csv_value(rng, delimiter) for _ in range(width)))
    at = rng.randint(1, len(lines) - 1)
    cells = lines[at].split(delimiter) if kind in ("cell", "quoted_cell") else []
    expected: LimitName = "max_rows"
    if kind == "columns":
        extra = rng.randint(SMALL.max_columns + 1, 60)
        lines[at] = delimiter.join(_csv_value(rng, delimiter) for _ in range(extra))
        expected = "max_columns"
    elif kind == "cell":
        cells[rng.randrange(len(cells))] = "Ñ" * rng.randint(SMALL.max_cell_chars + 10, 2_000)
        lines[at] = delimiter.join(cells)
        expected = "max_cell_chars"
    elif kind == "quoted_cell":
        long = (f"línea{delimiter}\r\n" * 200)[: rng.randint(SMALL.max_cell_chars + 10, 1_500)]
        cells[0] = '"' + long + '"'
        lines[at] = delimiter.join(cells)
        expected = "max_cell_chars"
    elif kind == "size":
        lines.append("z" * (SMALL.max_file_bytes + 1))
        expected = "max_file_bytes"
    path = tmp_path / f"{kind}.csv"
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode(encoding))
    assert refused_by(path) == expected
