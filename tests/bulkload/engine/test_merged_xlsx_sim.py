"""Merged project cells, end to end (issue #10, item 2): an XLSX whose project columns are
merged down each project's rows loads every row into its project on the simulator.

Before, the reader saw only each range's top-left cell: all but the first row of a project
became standalone bookings, exit 0, without a word.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

from openpyxl.utils import get_column_letter
from starlette.applications import Starlette

from bulkload.helpers import (
    SIM_TODAY,
    assert_every_row_once,
    assert_matches_store,
    ledger_for,
    sim_client,
    store,
)
from bulkload.sheets import write_xlsx
from sodtrack.bulkload import IssueCode, read_upload
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.simulator.app import create_app
from sodtrack.simulator.config import SimConfig


async def test_merged_project_columns_load_every_row_into_its_project(
    sim_config: SimConfig, tmp_path: Path
) -> None:
    app: Starlette = create_app(sim_config)
    source = tmp_path / "synth.csv"
    async with sim_client(app) as client:
        await synthesize_upload(
            client, source, country="cl", rows=30, projects=5, today=SIM_TODAY, seed=11
        )
    with source.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        body = list(reader)
    # People keep a project's rows together and merge its cells down them.
    project_col = header.index("project_reference")
    name_col = header.index("project_name")
    first_seen: dict[str, int] = {}
    keyed = []
    for i, row in enumerate(body):
        key = row[project_col] or f"standalone {i}"
        keyed.append((first_seen.setdefault(key, i), i, row))
    body = [row for _, _, row in sorted(keyed)]
    merges: list[str] = []
    expected: Counter[str] = Counter()
    start = 0
    while start < len(body):
        project = body[start][project_col]
        end = start
        while end + 1 < len(body) and project and body[end + 1][project_col] == project:
            end += 1
        if project:
            expected[project] = end - start + 1
            if end > start:
                for col in (project_col, name_col):
                    letter = get_column_letter(col + 1)
                    merges.append(f"{letter}{start + 2}:{letter}{end + 2}")
        start = end + 1
    assert merges, "the synthetic upload has projects of several rows"
    cells = [[value or None for value in row] for row in body]
    path = write_xlsx(
        tmp_path / "merged.xlsx", {"Bookings": [header, *cells]}, merges={"Bookings": merges}
    )

    parsed = read_upload(path, "cl")
    assert not parsed.has_upload_errors, parsed.upload_issues
    assert all(r.is_valid for r in parsed.rows), [r.issues for r in parsed.rows if not r.is_valid]
    filled = sum(
        1 for r in parsed.rows for w in r.warnings if w.code == IssueCode.MERGED_VALUE_FILLED
    )
    assert filled == 2 * sum(n - 1 for n in expected.values())
    with ledger_for("sqlite", tmp_path) as ledger:
        assert isinstance(ledger, Ledger)
        async with sim_client(app) as client:
            result = await run_upload(parsed, client, ledger, uploaded_by="ops@example.com")
    assert_every_row_once(result, len(parsed.rows))
    assert result.counts["created"] == len(parsed.rows), result.counts
    assert_matches_store(app, result, parsed.rows)
    # Every booking of a project is in it on the server: none was created standalone.
    st = store(app)
    ours = {r.external_reference for r in parsed.rows}
    by_project = Counter(
        st.projects[b.project_id].external_reference if b.project_id is not None else None
        for b in st.bookings.values()
        if b.external_reference in ours
    )
    standalone = sum(1 for row in body if not row[project_col])
    wanted: Counter[str | None] = Counter(expected)
    wanted[None] = standalone
    assert by_project == wanted
