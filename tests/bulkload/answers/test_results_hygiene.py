"""The results writer under hostile cell content, formula neutralisation for ``,`` and ``;``
readers, owner-only modes, per-run files, and one file failing without costing the others.

Real files: a CSV read by the real reader, files written by the real writer, read back by
openpyxl, python-calamine and pandas. The corpora are generated (hypothesis, derandomized)."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import openpyxl
import pandas as pd
import python_calamine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodtrack.bulkload import read_upload
from sodtrack.bulkload.answers.results import (
    CELL_MAX_CHARS,
    ResultFiles,
    fit_cell,
    original_text,
    write_csv,
    write_results,
)
from sodtrack.bulkload.neutralise import FORMULA_TRIGGERS, neutralise_csv_field
from sodtrack.bulkload.outcomes import ErrorKind, Explanation, RowResult, UploadResult
from sodtrack.bulkload.reading.rows import BookingRow
from sodtrack.textsafe import cell_safe

from .test_results import _csv, _result

CELL_TEXT = st.one_of(
    st.text(max_size=30),
    st.text(st.characters(categories=["Cs", "Cc", "Cf", "Zl", "Zp", "Sm"]), max_size=12),
    st.sampled_from(["\ud800", "a\udfffb", "\x0b", "\x1b[31m", "_x0041_", "x;=1", "\x00"]),
)
HYPOTHESIS = settings(
    derandomize=True,
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@contextmanager
def _tmp() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _rows_with(rows: list[BookingRow], texts: list[str]) -> list[BookingRow]:
    """The rows with ``texts`` in their cells, cycling (every cell of every row)."""
    out: list[BookingRow] = []
    k = 0
    for row in rows:
        cells: list[object] = []
        for _ in row.original_values:
            cells.append(texts[k % len(texts)])
            k += 1
        out.append(replace(row, original_values=tuple(cells)))
    return out


def _formula(cell: str) -> bool:
    """A spreadsheet could run the cell (a blank one, a tab and a line break, cannot)."""
    return bool(cell.strip()) and cell[0] in FORMULA_TRIGGERS


def _lines(text: str) -> str:
    """XML reads a carriage return as a line feed: compare line breaks as such."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _csv_table(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.reader(fh))


def _calamine(path: Path, sheet: str) -> list[list[object]]:
    wb = python_calamine.CalamineWorkbook.from_path(str(path))
    return [list(row) for row in wb.get_sheet_by_name(sheet).to_python()]


def _assert_readable(files: ResultFiles, n_rows: int, n_rejects: int) -> None:
    """Every file exists and reads back, with every row, in openpyxl, calamine and pandas."""
    assert files.complete, files.failed
    for kind, path in files.paths().items():
        assert path.exists(), kind
    assert len(_csv_table(files.results_csv)) == n_rows + 1
    assert len(_csv_table(files.rejects_csv)) == n_rejects + 1
    assert len(pd.read_csv(files.results_csv, dtype=str, keep_default_na=False)) == n_rows
    wb = openpyxl.load_workbook(files.results_xlsx, read_only=True)
    assert sum(1 for _ in wb["Results"].iter_rows()) == n_rows + 1
    wb.close()
    assert len(_calamine(files.results_xlsx, "Results")) == n_rows + 1
    assert len(_calamine(files.rejects_xlsx, "Rejects")) == n_rejects + 1
    assert len(pd.read_excel(files.results_xlsx, sheet_name="Results", dtype=str)) == n_rows
    json.loads(files.summary_json.read_text(encoding="utf-8"))


def test_a_vertical_tab_esc_and_nul_are_written_escaped_with_a_warning(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    rows = list(parsed.rows)
    rows[2] = replace(
        rows[2],
        original_values=tuple(
            "a\x0bb" if i == 11 else "\x1b[31mred\x00" if i == 12 else v
            for i, v in enumerate(rows[2].original_values)
        ),
    )
    files = write_results(_result(), rows, parsed.columns, tmp_path / "out")
    _assert_readable(files, 3, 1)
    table = {
        r["row"]: r for r in csv.DictReader(io.StringIO(files.results_csv.read_text("utf-8-sig")))
    }
    assert table["4"]["input: notes"] == "a<U+000B>b"
    assert table["4"]["input: Extra"] == "<U+001B>[31mred<U+0000>"
    assert "input: notes" in table["4"]["warnings"]
    assert "U+000B" in table["4"]["warnings"]
    assert table["2"]["warnings"] == ""
    # the same text in the XLSX (Excel shows it as typed)
    results = _calamine(files.results_xlsx, "Results")
    header = [str(h) for h in results[0]]
    assert results[3][header.index("input: notes")] == "a<U+000B>b"
    # the rejects file: escaped too, the note in the message; it reads back as an upload
    rejects = list(csv.DictReader(io.StringIO(files.rejects_csv.read_text("utf-8-sig"))))
    assert rejects[0]["notes"] == "a<U+000B>b"
    assert "U+000B" in rejects[0]["sodtrack_message"]
    again = read_upload(files.rejects_xlsx, "cl")
    assert not again.has_upload_errors
    assert again.rows[0].notes == "a<U+000B>b"


@HYPOTHESIS
@given(st.lists(CELL_TEXT, min_size=1, max_size=20), CELL_TEXT)
def test_any_text_in_any_cell_writes_every_file(texts: list[str], message: str) -> None:
    """Arbitrary text (controls, surrogates, formulas, ``_xHHHH_``) in every cell and in the
    messages: every file is written, reads back, and every cell reads back as the escaped,
    neutralised text (CSV and calamine)."""
    with _tmp() as tmp:
        parsed = read_upload(_csv(tmp), "cl")
        rows = _rows_with(list(parsed.rows), texts)
        base = _result()
        result = replace(
            base,
            rows=[
                replace(
                    r,
                    why=Explanation(
                        r.error_code or "",
                        r.error_kind or "invalid",
                        message,
                        r.suggested_fix or "",
                    ),
                    warnings=(message,),
                )
                for r in base.rows
            ],
            notices=(message,),
            file_name=f"b{message[:5]}.csv".replace("/", "_").replace("\x00", ""),
        )
        files = write_results(result, rows, parsed.columns, tmp / "out", stem="bookings")
        _assert_readable(files, 3, 1)
        table = _csv_table(files.results_csv)
        header = table[0]
        xlsx = _calamine(files.results_xlsx, "Results")
        for row, csv_cells, xlsx_cells in zip(rows, table[1:], xlsx[1:], strict=True):
            for i, h in enumerate(row.headers):
                col = header.index(f"input: {h}")
                original = original_text(row.original_values[i])
                assert csv_cells[col] == neutralise_csv_field(cell_safe(original))
                got = xlsx_cells[col]
                want = cell_safe(original)
                want = "'" + want if want[:1] in FORMULA_TRIGGERS else want
                assert _lines(str(got)) == _lines(want)
            if any(cell_safe(original_text(v)) != original_text(v) for v in row.original_values):
                assert "<U+" in csv_cells[header.index("warnings")]


@HYPOTHESIS
@given(
    st.text(alphabet=st.sampled_from("ab 1;,=+-@\t\r\n\"'x"), max_size=20),
    st.sampled_from(sorted(FORMULA_TRIGGERS)),
)
def test_csv_fields_never_start_a_formula_for_a_comma_or_semicolon_reader(
    text: str, trigger: str
) -> None:
    """``x;=1+1`` and its kind: read by a ``,`` reader, a ``;`` reader, or one splitting on
    the delimiter and on line breaks without honouring quotes, no cell starts a formula.

    A ``;`` reader does not honour the quotes of a ``,`` file's fields that follow a ``,``
    (LibreOffice: a quote opens a value only at the start of one), so a line break inside
    such a field ends its record there and the text after it starts a new record's first
    cell (found by tests/bulkload/answers/test_results_libreoffice.py)."""
    value = f"{text}{trigger}1+1"
    with _tmp() as tmp:
        path = tmp / "r.csv"
        write_csv(path, ["h", value], [[value, f"x;{value}", f"y,{value}", text]])
        raw = path.read_bytes().decode("utf-8-sig")
    for delimiter in ",;":
        for cell in _cells_as_spreadsheets_read(raw, delimiter):
            assert not _formula(cell), (delimiter, cell)
        for segment in re.split(f"[{delimiter}\r\n]", raw):  # a reader ignoring quotes
            assert not _formula(segment), (delimiter, segment)


def _cells_as_spreadsheets_read(raw: str, delimiter: str) -> list[str]:
    """Cells as Excel and LibreOffice split a CSV: a ``"`` toggles quoting (``""`` inside
    quotes is one ``"``), a delimiter or a line break outside quotes ends the cell."""
    cells: list[str] = []
    cell: list[str] = []
    quoted = False
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == '"':
            if quoted and raw[i + 1 : i + 2] == '"':
                cell.append('"')
                i += 1
            else:
                quoted = not quoted
        elif not quoted and (ch == delimiter or ch in "\r\n"):
            cells.append("".join(cell))
            cell = []
        else:
            cell.append(ch)
        i += 1
    cells.append("".join(cell))
    return cells


def test_the_issue_s_example_is_quoted_and_neutralised(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    rows = _rows_with(list(parsed.rows), ["x;=1+1"])
    files = write_results(_result(), rows, parsed.columns, tmp_path / "out")
    raw = files.results_csv.read_text(encoding="utf-8-sig")
    assert '"x;\'=1+1"' in raw
    assert "x;=1+1" not in raw


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_files_and_folders_are_created_owner_only(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: without care, files would be 0644
    try:
        parsed = read_upload(_csv(tmp_path), "cl")
        out = tmp_path / "outbox" / "upl_cl_test"
        files = write_results(_result(), parsed.rows, parsed.columns, out)
    finally:
        os.umask(old)
    assert _mode(out) == 0o700
    assert _mode(out.parent) == 0o700
    for path in [*files.paths().values(), *files.latest.values()]:
        assert _mode(path) == 0o600, path
    assert not list(out.glob("*.tmp"))
    assert not list(out.glob(".*"))


def test_each_run_keeps_its_files_beside_a_latest_copy(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    out = tmp_path / "out"
    first = write_results(_result(), parsed.rows, parsed.columns, out)
    second_result = replace(
        _result(), run_no=2, rows=[replace(r, outcome="already_existed") for r in _result().rows]
    )
    second = write_results(second_result, parsed.rows, parsed.columns, out)
    assert first.results_csv.name == "bookings.upl_cl_test.run-1.results.csv"
    assert second.results_csv.name == "bookings.upl_cl_test.run-2.results.csv"
    assert first.results_csv.exists()
    assert second.results_csv.exists()
    header, *body = _csv_table(first.results_csv)
    assert {r[header.index("outcome")] for r in body} == {
        "created",
        "failed_transient",
        "rejected",
    }
    latest = second.latest["results_csv"]
    assert latest.name == "bookings.upl_cl_test.results.csv"
    assert latest.read_bytes() == second.results_csv.read_bytes()
    assert json.loads(second.latest["summary_json"].read_text())["run"] == 2
    assert len(list(out.iterdir())) == 15  # 5 kinds x (run 1, run 2, latest)


def test_one_file_failing_does_not_cost_the_others(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    out = tmp_path / "out"
    # a folder where the rejects XLSX should go: that write fails, for a real reason
    (out / "bookings.upl_cl_test.run-1.rejects.xlsx").mkdir(parents=True)
    files = write_results(_result(), parsed.rows, parsed.columns, out)
    assert set(files.failed) == {"rejects_xlsx"}
    assert "IsADirectoryError" in files.failed["rejects_xlsx"]
    for kind in ("results_csv", "results_xlsx", "rejects_csv", "summary_json"):
        assert files.paths()[kind].is_file(), kind
        assert kind in files.latest
    assert not list(out.glob(".*.tmp"))


def test_an_unwritable_folder_is_reported_not_raised(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    files = write_results(_result(), parsed.rows, parsed.columns, blocker / "out")
    assert {"folder", *files.paths()} <= set(files.failed) | {"folder"}
    assert set(files.paths()) <= set(files.failed)


def _why(kind: ErrorKind, message: str = "") -> Explanation:
    return Explanation("", kind, message, "")


def test_counts_have_one_definition(tmp_path: Path) -> None:
    """summary.json, the results column and the tally agree on a mixed run (rejected for the
    data and for a conflict, skipped behind each cause, failed transiently, created)."""
    parsed = read_upload(_csv(tmp_path), "cl")
    rows = [*parsed.rows, *parsed.rows[:3]]
    rows = [replace(r, row_number=i + 2) for i, r in enumerate(rows)]
    results = [
        RowResult(0, None, 2, "created", booking_id="bkg_1"),
        RowResult(1, None, 3, "rejected", why=_why("invalid", "bad")),
        RowResult(2, None, 4, "rejected", why=_why("conflict", "slot taken")),
        RowResult(3, None, 5, "skipped_dependency", why=_why("dependency")),
        RowResult(4, None, 6, "skipped_dependency", why=_why("dependency"), retry_on_rerun=True),
        RowResult(5, None, 7, "failed_transient", why=_why("transient"), retry_on_rerun=True),
    ]
    result = UploadResult("upl_cl_mix", "bookings.csv", "cl", False, 1, results)
    files = write_results(result, rows, parsed.columns, tmp_path / "out")
    summary = json.loads(files.summary_json.read_text())
    table = list(csv.DictReader(io.StringIO(files.results_csv.read_text("utf-8-sig"))))
    column = sum(1 for r in table if r["needs_a_person"] == "yes")
    rerun = sum(1 for r in table if r["retry_on_rerun"] == "yes")
    assert summary["needs_a_person"] == column == result.tally.needs_a_person == 3
    assert summary["needs_a_person"] == files.rejects
    assert summary["retry_on_rerun"] == rerun == result.tally.retry_on_rerun == 2
    assert summary["conflicts"] == 1
    assert summary["outcomes"] == result.counts


def test_a_long_file_name_still_gives_writable_result_names(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    result = replace(_result(), file_name="é" * 200 + ".csv")  # 400 bytes of name
    files = write_results(result, parsed.rows, parsed.columns, tmp_path / "out")
    assert files.complete, files.failed
    assert all(len(p.name.encode()) <= 255 for p in files.paths().values())


@HYPOTHESIS
@given(
    st.integers(CELL_MAX_CHARS // 2 - 10, CELL_MAX_CHARS * 2),
    st.text(st.sampled_from("a;=\U0001f389\x01\x0b"), min_size=1, max_size=12),
)
def test_a_cell_is_cut_to_what_a_spreadsheet_holds_saying_so(length: int, unit: str) -> None:
    """Excel counts UTF-16 code units (an emoji is two) and holds 32,767 in a cell; the text
    is cut after control characters became ``<U+XXXX>``, never inside one."""
    text = cell_safe((unit * (length // len(unit) + 1))[:length])
    fitted = fit_cell(text)
    units = len(text.encode("utf-16-le")) // 2
    if units <= CELL_MAX_CHARS:
        assert fitted == text
        return
    assert len(fitted.encode("utf-16-le")) // 2 <= CELL_MAX_CHARS
    head, note = fitted.split(" …[cut: ", 1)
    assert text.startswith(head)
    assert note == f"{units:,} characters in all, a cell holds {CELL_MAX_CHARS:,}]"
    assert len(head) > CELL_MAX_CHARS // 2 - 100
    last = head.rfind("<U+")
    assert last == -1 or ">" in head[last:]  # never cut inside an escape
