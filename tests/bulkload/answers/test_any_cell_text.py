"""Item 1 of issue 10: whatever text is in whatever cell, the load answers every row exactly
once and writes results and rejects files that read back (openpyxl, python-calamine, pandas).

Property-based (hypothesis, derandomized, bounded): a clean upload built against the
simulator's live catalog, then arbitrary text (control characters, ESC, NUL, a vertical tab,
formulas, ``;``, quotes, line breaks, non-BMP characters) in random cells of every row, as a
UTF-8 CSV or as an XLSX (control characters stored the way Excel stores them, ``_x000B_``,
which the reader turns back into the character). Each example runs a dry run and a real run
against the in-process simulator with a fresh ledger, then writes the files."""

from __future__ import annotations

import asyncio
import csv
import json
import re
import tempfile
from collections import Counter
from pathlib import Path

import openpyxl
import pandas as pd
import pytest
import python_calamine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from bulkload.helpers import SIM_TODAY, assert_every_row_once, read_rows, sim_client
from sodtrack.bulkload import ParsedUpload, read_upload
from sodtrack.bulkload.answers.results import ResultFiles, write_results
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import small_config

ROWS = 8
CELL_TEXT = st.one_of(
    st.text(
        st.characters(blacklist_categories=["Cs"]),  # a UTF-8 file cannot hold a surrogate
        max_size=24,
    ),
    st.sampled_from(
        ["a\x0bb", "\x1b[31mred\x1b[0m", "nul\x00", "x;=1+1", '=HYPERLINK("http://x")', "\r\n-"]
    ),
)
EDITS = st.lists(
    st.tuples(st.integers(0, ROWS - 1), st.integers(0, 40), CELL_TEXT), min_size=1, max_size=12
)
_XML_ILLEGAL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Starlette, list[dict[str, str]]]:
    """One simulator and one clean upload (the rows every example starts from)."""
    app = create_app(small_config())
    base = tmp_path_factory.mktemp("clean") / "bookings.csv"

    async def build() -> None:
        async with sim_client(app) as client:
            await synthesize_upload(
                client, base, country="cl", rows=ROWS, projects=2, today=SIM_TODAY, seed=11
            )

    asyncio.run(build())
    return app, read_rows(base)


def _write(path: Path, header: list[str], rows: list[list[str]]) -> Path:
    if path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            writer.writerows(rows)
        return path
    wb = openpyxl.Workbook()
    ws = wb.active
    assert ws is not None
    for values in [header, *rows]:  # as Excel stores what XML cannot hold: _xHHHH_
        ws.append([_XML_ILLEGAL.sub(lambda m: f"_x{ord(m.group()):04X}_", v) for v in values])
    wb.save(path)
    return path


def _assert_files(files: ResultFiles, n_rows: int) -> None:
    assert files.complete, files.failed
    with files.results_csv.open(encoding="utf-8-sig", newline="") as fh:
        results = list(csv.DictReader(fh))
    assert len(results) == n_rows
    assert [int(r["row"]) for r in results] == sorted(int(r["row"]) for r in results)
    with files.rejects_csv.open(encoding="utf-8-sig", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == files.rejects
    assert sum(1 for r in results if r["needs_a_person"] == "yes") == files.rejects
    for path, sheet, n in (
        (files.results_xlsx, "Results", n_rows),
        (files.rejects_xlsx, "Rejects", files.rejects),
    ):
        wb = openpyxl.load_workbook(path, read_only=True)
        assert sum(1 for _ in wb[sheet].iter_rows()) == n + 1
        wb.close()
        table = python_calamine.CalamineWorkbook.from_path(str(path))
        assert len(table.get_sheet_by_name(sheet).to_python()) == n + 1
        assert len(pd.read_excel(path, sheet_name=sheet, dtype=str)) == n
    assert len(pd.read_csv(files.results_csv, dtype=str, keep_default_na=False)) == n_rows
    summary = json.loads(files.summary_json.read_text(encoding="utf-8"))
    assert summary["rows"] == n_rows
    assert summary["needs_a_person"] == files.rejects


def test_any_text_in_any_cell_gets_every_row_answered_and_readable_files(
    world: tuple[Starlette, list[dict[str, str]]],
) -> None:
    """Random cells of every row, every cell of the last row, and an extra column (header
    and every cell) hold arbitrary text; the other cells stay valid, so the real run writes
    (checked over the whole corpus: some rows created, some rejected)."""
    app, clean = world
    seen: Counter[str] = Counter()

    @settings(
        derandomize=True,
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        edits=EDITS,
        whole_row=st.lists(CELL_TEXT, min_size=1, max_size=40),
        extra=st.lists(CELL_TEXT, min_size=2, max_size=ROWS + 1),
        suffix=st.sampled_from([".csv", ".xlsx"]),
    )
    def check(
        edits: list[tuple[int, int, str]], whole_row: list[str], extra: list[str], suffix: str
    ) -> None:
        header = [*clean[0], extra[0]]
        rows = [
            [*(r[h] for h in clean[0]), extra[1 + i % (len(extra) - 1)]]
            for i, r in enumerate(clean)
        ]
        for row, column, text in edits:
            rows[row % len(rows)][column % len(header)] = text
        rows[-1] = [whole_row[i % len(whole_row)] for i in range(len(header))]
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            path = _write(tmp / f"bookings{suffix}", header, rows)
            parsed = read_upload(path, "cl")
            ledger = Ledger(f"sqlite:///{tmp / 'state' / 'ledger.db'}")
            try:
                for dry_run in (True, False):
                    result = asyncio.run(_run(app, parsed, ledger, dry_run))
                    assert_every_row_once(result, len(parsed.rows))
                    seen.update(r.outcome for r in result.rows)
                    files = write_results(
                        result,
                        parsed.rows,
                        parsed.columns,
                        tmp / "out" / ("dry" if dry_run else "real"),
                    )
                    _assert_files(files, len(parsed.rows))
            finally:
                ledger.close()

    check()
    assert seen["created"] > 0, seen  # the real runs wrote: not a corpus of rejected files
    assert seen["rejected"] > 0, seen
    assert seen["would_create"] > 0, seen


async def _run(app: Starlette, parsed: ParsedUpload, ledger: Ledger, dry: bool) -> UploadResult:
    async with sim_client(app) as client:
        return await run_upload(parsed, client, ledger, dry_run=dry, uploaded_by="prop")
