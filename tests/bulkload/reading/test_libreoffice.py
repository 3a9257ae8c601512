"""The loader on files made by LibreOffice (issue #10, items 2 and 11).

Workbooks are written by openpyxl, converted by ``soffice --convert-to`` (one run for the
whole batch; see ``tests/libreoffice.py``) and read back: LibreOffice writes shared strings,
styles, ``hidden="true"``/``"false"`` and merged ranges its own way. Each case is checked on
the converted file with the same expectations as on the openpyxl original.
"""

from __future__ import annotations

import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from pathlib import Path

import pytest
from libreoffice import convert

from bulkload.sheets import write_xlsx
from sodtrack.bulkload import IssueCode, ParsedUpload, read_upload
from sodtrack.bulkload.reading.cfb import stream_names

from .test_xlsx import MX_HEADER, mx_row
from .test_xlsx_header_search import title_case
from .test_xlsx_hidden import hidden_case
from .test_xlsx_merged import HEADER as MERGE_HEADER
from .test_xlsx_merged import Layout, cells, check_row, generate, project_rows

# One worker converts the whole batch once (the module fixture), instead of one per worker.
pytestmark = [pytest.mark.libreoffice, pytest.mark.xdist_group("libreoffice")]

MERGE_SEEDS = range(8)
HIDDEN_SEEDS = range(6)
TITLE_SEEDS = range(6)


@dataclass(frozen=True)
class Case:
    source: Path
    country: str
    check: Callable[[ParsedUpload], None]


def _valid_sheet(tmp: Path) -> Path:
    rows = [
        mx_row("OPS-1", 6700, Proyecto="PRJ-1", **{"Nombre proyecto": "Cocina"}),
        mx_row("OPS-2", "06700", Teléfono=5512345678, Fecha=date(2026, 12, 4)),
        mx_row("OPS-3", Hora=time(15, 30), Apellido="Núñez", Ciudad="Mérida"),
    ]
    return write_xlsx(tmp / "valid.xlsx", {"Reservas": [MX_HEADER, *rows]})


def _issue_merges(tmp: Path) -> Path:
    rows = [*project_rows(1, 3, "PRJ-1", 1), *project_rows(4, 2, "PRJ-1", 2)]
    return write_xlsx(
        tmp / "issue_merges.xlsx",
        {"Bookings": [MERGE_HEADER, *(cells(r) for r in rows)]},
        merges={"Bookings": ["A2:A6", "B2:B6", "C2:C4", "D2:D4", "C5:C6", "D5:D6", "H3:H4"]},
    )


def _check_issue_merges(upload: ParsedUpload) -> None:
    assert not upload.has_upload_errors, upload.upload_issues
    assert [r.project_reference for r in upload.rows] == ["PRJ-1"] * 5
    assert [r.stage_sequence for r in upload.rows] == [1, 1, 1, 2, 2]
    by_number = {r.row_number: r for r in upload.rows}
    for n in (2, 5, 6):
        assert by_number[n].is_valid, by_number[n].issues
    for n in (3, 4):  # H3:H4 (customer_first_name) merged: rejected, naming the range
        assert [i.code for i in by_number[n].errors] == [IssueCode.MERGED_CELLS]
        assert "H3:H4" in by_number[n].errors[0].message
    filled = [w for w in by_number[3].warnings if w.code == IssueCode.MERGED_VALUE_FILLED]
    assert {w.field for w in filled} == {
        "project_reference",
        "project_name",
        "stage_sequence",
        "stage_name",
    }
    assert any("A2:A6" in w.message for w in filled)


def _cases(tmp: Path) -> dict[str, Case]:
    cases: dict[str, Case] = {}
    valid = _valid_sheet(tmp)
    original = read_upload(valid, "mx")

    def same_as_original(upload: ParsedUpload) -> None:
        assert not upload.has_upload_errors, upload.upload_issues
        assert all(r.is_valid for r in upload.rows), [r.issues for r in upload.rows]
        assert [r.interpreted() for r in upload.rows] == [r.interpreted() for r in original.rows]
        assert [[i.code for i in r.issues] for r in upload.rows] == [
            [i.code for i in r.issues] for r in original.rows
        ]

    cases["valid"] = Case(valid, "mx", same_as_original)
    cases["issue_merges"] = Case(_issue_merges(tmp), "cl", _check_issue_merges)
    for seed in MERGE_SEEDS:
        layout = generate(seed)
        path = write_xlsx(
            tmp / f"merges_{seed}.xlsx",
            {"Bookings": [MERGE_HEADER, *(cells(r) for r in layout.rows)]},
            merges={"Bookings": layout.merges},
        )

        def check_layout(upload: ParsedUpload, layout: Layout = layout) -> None:
            assert not upload.has_upload_errors, upload.upload_issues
            assert [r.row_number for r in upload.rows] == list(range(2, 2 + len(layout.rows)))
            for row in upload.rows:
                check_row(row, layout)

        cases[f"merges_{seed}"] = Case(path, "cl", check_layout)
    for seed in HIDDEN_SEEDS:
        hidden = hidden_case(seed)
        cases[f"hidden_{seed}"] = Case(
            hidden.write(tmp / f"hidden_{seed}.xlsx"), "cl", hidden.check
        )
    for seed in TITLE_SEEDS:
        title = title_case(seed)
        path = write_xlsx(tmp / f"title_{seed}.xlsx", title.sheets)
        cases[f"title_{seed}"] = Case(path, "cl", title.check)
    return cases


@pytest.fixture(scope="module")
def converted(
    soffice: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[Case, Path]]:
    tmp = tmp_path_factory.mktemp("openpyxl")
    cases = _cases(tmp)
    outputs = convert(
        [c.source for c in cases.values()],
        "xlsx:Calc MS Excel 2007 XML",
        tmp_path_factory.mktemp("libreoffice"),
        soffice=soffice,
    )
    return {name: (case, out) for (name, case), out in zip(cases.items(), outputs, strict=True)}


CASE_NAMES = [
    "valid",
    "issue_merges",
    *(f"merges_{s}" for s in MERGE_SEEDS),
    *(f"hidden_{s}" for s in HIDDEN_SEEDS),
    *(f"title_{s}" for s in TITLE_SEEDS),
]


@pytest.mark.parametrize("name", CASE_NAMES)
def test_libreoffice_made_xlsx(converted: dict[str, tuple[Case, Path]], name: str) -> None:
    case, path = converted[name]
    # The original passes too: the same expectations hold on both files.
    case.check(read_upload(case.source, case.country))
    assert b"LibreOffice" in _app_xml(path)  # really LibreOffice's file
    case.check(read_upload(path, case.country))


def test_libreoffice_hidden_rows_are_spelled_true(converted: dict[str, tuple[Case, Path]]) -> None:
    """Pins why the scan looks for hidden="true": LibreOffice's own spelling."""
    hidden = [n for n in CASE_NAMES if n.startswith("hidden_")]
    sheets = []
    for name in hidden:
        with zipfile.ZipFile(converted[name][1]) as archive:
            sheets.append(archive.read("xl/worksheets/sheet1.xml"))
    assert any(b'hidden="true"' in xml for xml in sheets)
    assert all(b'hidden="1"' not in xml for xml in sheets)


def test_libreoffice_made_xls_is_called_an_old_xls(soffice: str, tmp_path: Path) -> None:
    """A real Compound File from LibreOffice: the directory reader finds its Workbook stream,
    and the answer is the old-.xls one, not the password one."""
    (xls,) = convert([_valid_sheet(tmp_path)], "xls", tmp_path / "out", soffice=soffice)
    assert "Workbook" in stream_names(xls)
    (issue,) = read_upload(xls, "mx").upload_issues
    assert issue.code == IssueCode.UNSUPPORTED_FILE_TYPE


def _app_xml(path: Path) -> bytes:
    with zipfile.ZipFile(path) as archive:
        return archive.read("docProps/app.xml")
