"""Benchmark: what the readable XLSX answer (cells filled and commented, columns sized) costs.

Reads an N-row CSV of bookings (every row's phone gets its country code: a warning, an amber
cell with a comment; every 10th row's e-mail is invalid: a rejected row, a red cell) and
writes its results file three ways, each timed in CPU seconds in this one run:

* the CSV (the anchor: 1.00);
* the XLSX of the same table without marks (no fills, no comments; columns still sized);
* the XLSX as it is written now (marks: fills and comments; widths sized to the content).

Figures are ratios to the anchor, so a loaded machine changes them little.

    uv run python bench/bench_results.py [--rows 20000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from sodtrack.bulkload import read_upload
from sodtrack.bulkload.answers.results import Table, result_table, write_csv, write_xlsx
from sodtrack.bulkload.engine.checks import reader_rejection
from sodtrack.bulkload.outcomes import RowResult, UploadResult

HEADER = "Referencia,SKU,Fecha,Hora,Nombre,Apellido,Correo,Teléfono,Dirección,Comuna,Región,CP"


def _csv(path: Path, rows: int) -> Path:
    lines = [HEADER]
    for i in range(rows):
        email = "bad-email" if i % 10 == 0 else f"p{i}@example.com"
        lines.append(
            f"B-{i},SKU-1,2026-12-03,10:00,Ana,Rojas,{email},912345678,Av {i},Santiago,RM,7500000"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _cpu(work: Callable[[], None]) -> float:
    start = time.process_time()
    work()
    return time.process_time() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        parsed = read_upload(_csv(tmp / "bookings.csv", args.rows), "cl")
        assert not parsed.has_upload_errors, parsed.upload_issues
        answers = [
            RowResult(i, None, r.row_number, "created")
            if r.is_valid
            else RowResult(i, None, r.row_number, "rejected", "validation", reader_rejection(r))
            for i, r in enumerate(parsed.rows)
        ]
        result = UploadResult("upl_bench", "bookings.csv", "cl", False, 1, answers)
        table = result_table(result, parsed.rows, parsed.columns)
        plain = Table(table.header, table.body)
        marked = sum(len(m) for m in table.marks)

        anchor = _cpu(lambda: write_csv(tmp / "r.csv", table.header, table.body))
        before = _cpu(lambda: write_xlsx(tmp / "plain.xlsx", [("Results", plain)]))
        now = _cpu(lambda: write_xlsx(tmp / "marked.xlsx", [("Results", table)]))
        size = {p: (tmp / p).stat().st_size for p in ("r.csv", "plain.xlsx", "marked.xlsx")}
    print(f"rows: {args.rows:,}; marked cells: {marked:,}")
    print(f"results CSV (anchor)         1.00  ({anchor:.2f} s CPU, {size['r.csv']:,} bytes)")
    print(f"results XLSX, no marks       {before / anchor:.2f}  ({size['plain.xlsx']:,} bytes)")
    print(f"results XLSX, readable       {now / anchor:.2f}  ({size['marked.xlsx']:,} bytes)")


if __name__ == "__main__":
    main()
