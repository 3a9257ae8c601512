"""Issue #10, item 1: the results and rejects files are readable by LibreOffice.

A real load (the in-process simulator, a fresh ledger) of an upload whose cells hold a seeded
corpus of hostile text: control characters, lone surrogates (put into the parsed rows: no
UTF-8 file can carry one), formula-looking text, ``;`` and ``,``, very long text, accents and
emoji. Then LibreOffice itself (``soffice --headless``, see ``tests/libreoffice.py``):

* converts the results and rejects XLSX to CSV (the export shows a formula cell's computed
  value): every row is there, cell for cell as openpyxl reads the XLSX, with its outcome and
  reference; the ``=1+1`` cell comes back as text, never ``2``;
* opens the results and rejects CSV as a ``,`` reader (``--infilter=CSV:44,34,76,1``) and the
  results CSV as a ``;`` reader (``CSV:59,34,76,1``), saving XLSX: no cell is a formula.

The formula checks cannot pass vacuously: a canary CSV with an unneutralised ``=1+1`` (and
``x;=1+1`` for the ``;`` reader) goes through the same conversion and must come out as a
formula.
"""

from __future__ import annotations

import asyncio
import csv
import random
from dataclasses import dataclass, replace
from pathlib import Path

import openpyxl
import pytest
import python_calamine
from libreoffice import convert
from starlette.applications import Starlette

from bulkload.helpers import SIM_TODAY, assert_every_row_once, read_rows, sim_client
from sodtrack.bulkload import ParsedUpload, read_upload
from sodtrack.bulkload.answers.results import CELL_MAX_CHARS, ResultFiles, write_results
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import small_config

pytestmark = [pytest.mark.libreoffice, pytest.mark.xdist_group("libreoffice")]

ROWS = 12
SEED = 2026
EXTRA = "sello interno"
CSV_EXPORT = "csv:Text - txt - csv (StarCalc):44,34,76,1"
COMMA_READER = "CSV:44,34,76,1"
SEMICOLON_READER = "CSV:59,34,76,1"

HOSTILE = [
    "=1+1",
    "x;=1+1",
    "a,=1+1",
    "+1+1",
    "-1+1",
    "@SUM(1;2)",
    "\t=1+1",
    "\r=1+1",
    '=HYPERLINK("http://example.com","x")',
    'x,"=1+1',
    "x; =1+1",
    "＝1+1",
    "'=1+1",
    "a\x0bb",
    "\x1b[31mred\x1b[0m",
    "nul\x00end",
    "del\x7f c1\x85",
    "Ñuñoa, São Paulo; ação",
    "🎉 東京 Ω≈",
    "semi;colon,comma|pipe\ttab",
    "line\nbreak\r\nand more",
    "_x000B_ literal",
    '"quoted" and ""doubled""',
]
SURROGATES = ["sur\ud800rogate", "\udfff", "a\udbff\udc00b"]  # lone, and a pair as code units


def corpus(rng: random.Random, n: int) -> list[str]:
    """``n`` hostile texts: each fixed one, random mixes, and three very long ones, those at
    positions 0, 1 and 3 (the first row's extra column and notes, the second's extra column:
    cells every row has)."""
    texts = list(HOSTILE)
    while len(texts) < n:
        texts.append("".join(rng.choice(HOSTILE) for _ in range(rng.randint(2, 4))))
    rng.shuffle(texts)
    texts[0] = "ñ" * 6_000 + ";=1+1"  # long, a formula after a delimiter at its end
    texts[1] = "=" + "\x0b" * 3_000 + "x" * 3_000  # a control character grows to 8 characters
    # Past a cell's 32,767 characters once escaped (so is the message that quotes it).
    texts[3] = "\x01" * 4_500 + "🎉" * 100  # (a vertical tab: whitespace, stripped)
    return texts[:n]


@dataclass(frozen=True)
class Loaded:
    result: UploadResult
    files: ResultFiles
    expected: dict[str, tuple[str, str]]
    """Row number -> (outcome, reference as uploaded)."""


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Loaded:
    """One real load of the hostile upload, its results and rejects files written."""
    app = create_app(small_config())
    tmp = tmp_path_factory.mktemp("hostile")
    clean_path = tmp / "clean.csv"

    async def build() -> None:
        async with sim_client(app) as client:
            await synthesize_upload(
                client, clean_path, country="cl", rows=ROWS, projects=2, today=SIM_TODAY, seed=5
            )

    asyncio.run(build())
    clean = read_rows(clean_path)
    rng = random.Random(SEED)
    texts = corpus(rng, 3 * len(clean))
    header = [*clean[0], EXTRA]
    rows = []
    for i, row in enumerate(clean):
        values = {**row, EXTRA: texts[3 * i]}
        values["notes"] = texts[3 * i + 1]
        if i % 3 == 2:  # some rows rejected for their name, the others created
            values["customer_first_name"] = texts[3 * i + 2]
        rows.append([values[h] for h in header])
    path = tmp / "bookings.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    parsed = read_upload(path, "cl")
    assert not parsed.has_upload_errors, parsed.upload_issues
    ledger = Ledger(f"sqlite:///{tmp / 'state' / 'ledger.db'}")
    try:
        result = asyncio.run(_run(app, parsed, ledger))
    finally:
        ledger.close()
    assert_every_row_once(result, len(parsed.rows))
    outcomes = {r.outcome for r in result.rows}
    assert {"created", "rejected"} <= outcomes, outcomes
    extra = header.index(EXTRA)
    hostile_rows = [
        _with_cell(row, extra, SURROGATES[k % len(SURROGATES)]) if k % 2 == 0 else row
        for k, row in enumerate(parsed.rows)
    ]
    files = write_results(result, hostile_rows, parsed.columns, tmp / "out")
    assert files.complete, files.failed
    assert files.rejects > 0
    at_ref = header.index("external_reference")
    refs = {r.row_number: str(r.original_values[at_ref]) for r in parsed.rows}
    expected = {str(r.row_number): (str(r.outcome), refs[r.row_number]) for r in result.rows}
    return Loaded(result, files, expected)


async def _run(app: Starlette, parsed: ParsedUpload, ledger: Ledger) -> UploadResult:
    async with sim_client(app) as client:
        return await run_upload(parsed, client, ledger, dry_run=False, uploaded_by="lo")


def _with_cell(row: BookingRow, index: int, text: str) -> BookingRow:
    cells = list(row.original_values)
    cells[index] = text
    return replace(row, original_values=tuple(cells))


def _norm(value: object) -> str:
    """A cell as text, line breaks compared as such (XML reads a CR as a LF)."""
    text = "" if value is None else str(value)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _sheet(path: Path) -> list[list[str]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        ws = wb.worksheets[0]
        return [[_norm(c) for c in row] for row in ws.iter_rows(values_only=True)]
    finally:
        wb.close()


def _calamine(path: Path) -> list[list[str]]:
    """The first sheet as Excel shows it (calamine reads ``_x005F_x000B_`` as the typed
    ``_x000B_``, as Excel and LibreOffice do; openpyxl leaves it escaped)."""
    workbook = python_calamine.CalamineWorkbook.from_path(str(path))
    try:
        sheet = workbook.get_sheet_by_index(0).to_python()
    finally:
        workbook.close()
    return [[_norm(c) for c in row] for row in sheet]


def _typed(path: Path) -> list[list[object]]:
    wb = openpyxl.load_workbook(path, read_only=True)
    try:
        return [
            ["" if c is None else c for c in row]
            for row in wb.worksheets[0].iter_rows(values_only=True)
        ]
    finally:
        wb.close()


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return [[_norm(c) for c in row] for row in csv.reader(fh)]


def _same_table(got: list[list[str]], want: list[list[str]]) -> None:
    assert len(got) == len(want)
    for number, (a, b) in enumerate(zip(got, want, strict=True), start=1):
        assert len(a) == len(b), number
        diffs = [(k, x, y) for k, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        assert not diffs, (number, diffs)


def _answers(
    table: list[list[str]], row: str, outcome: str, ref: str
) -> dict[str, tuple[str, str]]:
    head = table[0]
    at_row, at_outcome, at_ref = head.index(row), head.index(outcome), head.index(ref)
    return {
        _number(line[at_row]): (line[at_outcome], line[at_ref]) for line in table[1:] if any(line)
    }


def _number(text: str) -> str:
    """LibreOffice reads the CSV's ``"12"`` as the number 12 (``12`` or ``12.0`` back)."""
    return str(int(float(text)))


def _formula_cells(path: Path) -> list[str]:
    wb = openpyxl.load_workbook(path)  # not data_only: a formula cell keeps its formula
    try:
        return [
            f"{ws.title}!{cell.coordinate}: {cell.value!r}"
            for ws in wb.worksheets
            for row in ws.iter_rows()
            for cell in row
            if cell.data_type == "f"
        ]
    finally:
        wb.close()


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_no_cell_is_longer_than_a_spreadsheet_cell_holds(loaded: Loaded) -> None:
    files = loaded.files
    tables = [_csv(files.results_csv), _csv(files.rejects_csv)]
    tables += [_calamine(files.results_xlsx), _calamine(files.rejects_xlsx)]
    longest = max(_units(c) for table in tables for line in table for c in line)
    assert longest <= CELL_MAX_CHARS
    cut = [c for line in tables[0] for c in line if "…[cut: " in c]
    assert cut, "the corpus has a value past the limit: it is cut, saying so"


def test_libreoffice_exports_the_xlsx_files_cell_for_cell(
    loaded: Loaded, tmp_path: Path, soffice: str
) -> None:
    result, files, expected = loaded.result, loaded.files, loaded.expected
    results_csv, rejects_csv = convert(
        [files.results_xlsx, files.rejects_xlsx], CSV_EXPORT, tmp_path / "lo", soffice=soffice
    )
    exported = _csv(results_csv)
    # Cell for cell what openpyxl reads: no text turned into a formula's value, nothing cut.
    _same_table(exported, _calamine(files.results_xlsx))
    assert len(exported) == len(result.rows) + 1
    assert _answers(exported, "row", "outcome", "input: external_reference") == expected
    rejects = _csv(rejects_csv)
    _same_table(rejects, _calamine(files.rejects_xlsx))
    assert len(rejects) == files.rejects + 1
    answers = _answers(rejects, "sodtrack_row", "sodtrack_outcome", "external_reference")
    assert answers == {k: v for k, v in expected.items() if k in answers}
    assert {v[0] for v in answers.values()} <= {"rejected", "skipped_dependency"}
    # The uploaded "=1+1" is shown as text, never as its value 2.
    cells = {c for line in exported for c in line}
    assert "'=1+1" in cells
    assert "2" not in {line[exported[0].index(f"input: {EXTRA}")] for line in exported}


def _canary(path: Path, lines: list[str]) -> Path:
    path.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf-8"))
    return path


def test_libreoffice_opens_the_csv_files_without_a_formula(
    loaded: Loaded, tmp_path: Path, soffice: str
) -> None:
    result, files, expected = loaded.result, loaded.files, loaded.expected
    canaries = tmp_path / "canary"
    canaries.mkdir()
    comma_canary = _canary(canaries / "comma.csv", ['"ref","x"', '"C-1","=1+1"'])
    semi_canary = _canary(canaries / "semi.csv", ['"ref";"x"', "x;=1+1"])

    # A "," reader: both files, every field one cell.
    results_x, rejects_x, canary_x = convert(
        [files.results_csv, files.rejects_csv, comma_canary],
        "xlsx",
        tmp_path / "comma",
        soffice=soffice,
        infilter=COMMA_READER,
    )
    assert _formula_cells(canary_x) == ["comma!B2: '=1+1'"]  # the check is live
    assert _formula_cells(results_x) == []
    assert _formula_cells(rejects_x) == []
    table = _sheet(results_x)
    assert len(table) == len(result.rows) + 1
    assert _answers(table, "row", "outcome", "input: external_reference") == expected
    # Text as written (LibreOffice turns number- and date-like text into numbers and dates:
    # those cells are not compared).
    written = _csv(files.results_csv)
    typed = _typed(results_x)
    assert [len(line) for line in typed] == [len(line) for line in written]
    texts = 0
    for number, (got, want) in enumerate(zip(typed, written, strict=True), start=1):
        for k, (a, b) in enumerate(zip(got, want, strict=True)):
            if isinstance(a, str):
                texts += 1
                assert _norm(a) == b, (number, k)
    assert texts > len(written) * len(written[0]) // 2
    rejects = _sheet(rejects_x)
    assert len(rejects) == files.rejects + 1
    answers = _answers(rejects, "sodtrack_row", "sodtrack_outcome", "external_reference")
    assert answers == {k: v for k, v in expected.items() if k in answers}
    assert len(answers) == files.rejects

    # A ";" reader (Excel and LibreOffice in Chile): quoted fields hold their ",", and what
    # splits on ";" inside a field does not start a formula.
    results_s, canary_s = convert(
        [files.results_csv, semi_canary],
        "xlsx",
        tmp_path / "semicolon",
        soffice=soffice,
        infilter=SEMICOLON_READER,
    )
    assert _formula_cells(canary_s) == ["semi!B2: '=1+1'"]  # the check is live
    assert _formula_cells(results_s) == []
    assert len(_sheet(results_s)) >= len(result.rows) + 1
