"""Hidden rows (issue #10, item 11): loaded like the others, each with a warning on the row.

Rows hidden by hand and rows hidden by a filter are both ``<row hidden="1">`` in the sheet's
XML (LibreOffice writes ``hidden="true"``, and ``hidden="false"`` on every other row).
"""

from __future__ import annotations

import random
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from bulkload.sheets import BASE, booking, patch_sheet_xml, write_xlsx
from sodtrack.bulkload import IssueCode, ParsedUpload, read_upload
from sodtrack.bulkload.reading.reader import scan_hidden_rows
from sodtrack.bulkload.reading.rows import BookingRow

HEADER = list(BASE)
SHEET_XML = "xl/worksheets/sheet1.xml"


def rows(count: int) -> list[list[object]]:
    return [[v if v != "" else None for v in booking(i).values()] for i in range(1, count + 1)]


def hidden_warnings(upload_rows: list[BookingRow]) -> dict[int, str]:
    found: dict[int, str] = {}
    for row in upload_rows:
        for issue in row.issues:
            if issue.code == IssueCode.HIDDEN_ROW:
                assert row.row_number not in found, "one warning per hidden row"
                assert issue.severity == "warning"
                found[row.row_number] = issue.message
    return found


def test_hidden_rows_are_loaded_with_a_warning(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", {"S": [HEADER, *rows(8)]}, hidden_rows={"S": [3, 7]})
    upload = read_upload(path, "cl")
    assert [r.row_number for r in upload.rows] == list(range(2, 10))
    assert all(r.is_valid for r in upload.rows)
    warnings = hidden_warnings(upload.rows)
    assert sorted(warnings) == [3, 7]
    assert "Row 7 is hidden in the sheet" in warnings[7]
    assert "filter" not in warnings[7]


def test_rows_hidden_by_a_filter_say_so(tmp_path: Path) -> None:
    path = write_xlsx(
        tmp_path / "b.xlsx",
        {"S": [HEADER, *rows(5)]},
        hidden_rows={"S": [4, 5]},
        auto_filter={"S": "A1:N6"},
    )
    warnings = hidden_warnings(read_upload(path, "cl").rows)
    assert sorted(warnings) == [4, 5]
    assert "hidden in the sheet by its filter" in warnings[4]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (b'<row r="3">', b'<row r="3" hidden="true">'),  # LibreOffice's spelling
        (b'<row r="3">', b"<row r='3' hidden='1'>"),
        (b'<row r="3">', b'<row r="3" customHeight="1" ht="0" hidden = "1" >'),
        (b'<row r="3">', b'<row hidden="1">'),  # no r: numbered by counting
    ],
)
def test_hidden_row_spellings(tmp_path: Path, old: bytes, new: bytes) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", {"S": [HEADER, *rows(3)]})
    patch_sheet_xml(path, SHEET_XML, old, new)
    assert scan_hidden_rows(path, "S") == {3: False}
    assert sorted(hidden_warnings(read_upload(path, "cl").rows)) == [3]


def test_visible_rows_spelled_every_way_are_not_hidden(tmp_path: Path) -> None:
    path = write_xlsx(tmp_path / "b.xlsx", {"S": [HEADER, *rows(3)]})
    # A hidden column is not a hidden row.
    patch_sheet_xml(
        path,
        SHEET_XML,
        b"<sheetData>",
        b'<cols><col min="2" max="2" width="9" hidden="1"/></cols><sheetData>',
    )
    patch_sheet_xml(path, SHEET_XML, b'<row r="2">', b'<row r="2" hidden="false">')
    patch_sheet_xml(path, SHEET_XML, b'<row r="3">', b'<row r="3" hidden="0">')
    patch_sheet_xml(path, SHEET_XML, b'<row r="4">', b'<row r="4" customHidden="1">')
    assert scan_hidden_rows(path, "S") == {}
    assert hidden_warnings(read_upload(path, "cl").rows) == {}


def _big_sheet(path: Path, count: int, hidden: set[int], spelling: bytes) -> None:
    """Replace sheet1's XML by ``count`` one-cell rows (a few MB, so that row tags straddle
    the reader's 1 MiB chunks), the rows in ``hidden`` hidden."""
    parts = [
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b"<sheetData>"
    ]
    for n in range(1, count + 1):
        flag = spelling if n in hidden else b' hidden="false"'
        parts.append(
            b'<row r="%d" spans="1:1" customFormat="false" ht="12.8"%s outlineLevel="0">'
            b'<c r="A%d" t="n"><v>%d</v></c></row>' % (n, flag, n, n)
        )
    parts.append(b"</sheetData></worksheet>")
    with zipfile.ZipFile(path) as source:
        entries = [(i, source.read(i.filename)) for i in source.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info, data in entries:
            target.writestr(info, b"".join(parts) if info.filename == SHEET_XML else data)


@pytest.mark.parametrize("seed", range(6))
def test_generated_hidden_rows_across_chunks(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randint(20_000, 40_000)
    hidden = set(rng.sample(range(1, count + 1), rng.randint(0, 60)))
    path = write_xlsx(tmp_path / "b.xlsx", {"S": [["x"]]})
    spelling = rng.choice([b' hidden="1"', b' hidden="true"', b" hidden='1'"])
    _big_sheet(path, count, hidden, spelling)
    assert scan_hidden_rows(path, "S") == dict.fromkeys(hidden, False)


@dataclass(frozen=True)
class HiddenCase:
    sheets: dict[str, list[list[object]]]
    hidden: set[int]
    with_filter: bool
    loaded: list[int]

    def write(self, path: Path) -> Path:
        return write_xlsx(
            path,
            self.sheets,
            hidden_rows={"S": sorted(self.hidden)},
            auto_filter={"S": f"A1:N{max(self.loaded) + 1}"} if self.with_filter else None,
        )

    def check(self, upload: ParsedUpload) -> None:
        assert [r.row_number for r in upload.rows] == self.loaded
        assert all(r.is_valid for r in upload.rows)
        warnings = hidden_warnings(upload.rows)
        assert sorted(warnings) == sorted(self.hidden & set(self.loaded))
        for message in warnings.values():
            assert ("by its filter" in message) == self.with_filter


def hidden_case(seed: int) -> HiddenCase:
    """Random rows hidden (some blank ones among them), maybe a filter over the table."""
    rng = random.Random(seed)
    count = rng.randint(1, 25)
    body: list[list[object]] = rows(count)
    blank = set(rng.sample(range(count), rng.randint(0, min(3, count - 1))))
    table: list[list[object]] = [list(HEADER)]
    table.extend([] if i in blank else r for i, r in enumerate(body))
    hidden = set(rng.sample(range(2, count + 2), rng.randint(0, count)))
    loaded = [i + 2 for i in range(count) if i not in blank]
    return HiddenCase({"S": table}, hidden, rng.random() < 0.5, loaded)


@pytest.mark.parametrize("seed", range(25))
def test_generated_hidden_row_sets(tmp_path: Path, seed: int) -> None:
    """Every hidden row that holds a booking gets exactly one warning, saying whether a
    filter hides it; no other row gets one; every row is loaded."""
    case = hidden_case(seed)
    case.check(read_upload(case.write(tmp_path / "b.xlsx"), "cl"))
