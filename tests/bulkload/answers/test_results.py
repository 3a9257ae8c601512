"""The results and rejects files: order, every row once, formula neutralisation, round trip."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import openpyxl
import pytest

from sodtrack.bulkload import read_upload
from sodtrack.bulkload.answers.results import write_results
from sodtrack.bulkload.outcomes import Explanation, RowResult, UploadResult

HEADER = (
    "external_reference,service_sku,scheduled_start,customer_first_name,customer_last_name,"
    "customer_email,customer_phone,address_line1,city,region,postal_code,notes,Extra\n"
)


def _csv(tmp_path: Path) -> Path:
    lines = [
        "B-1,SKU-1,2026-12-03 10:00,Ána,Rojas,ana@example.com,+56912345678,Av 1,Santiago,RM,"
        '7500000,=HYPERLINK("http://x"),@SUM(1)\n',
        "B-2,SKU-1,2026-12-03 11:00,José,Pérez,jose@example.com,,Av 2,Santiago,RM,0750000,,\n",
        "B-3,SKU-2,2026-12-03 12:00,Luz,Díaz,luz@example.com,,Av 3,Santiago,RM,7500001,-5 left,\n",
    ]
    path = tmp_path / "bookings.csv"
    path.write_text(HEADER + "".join(lines), encoding="utf-8")
    return path


def _result(upload_id: str = "upl_cl_test") -> UploadResult:
    return UploadResult(
        upload_id=upload_id,
        file_name="bookings.csv",
        country="cl",
        dry_run=False,
        run_no=1,
        rows=[
            # deliberately out of order: the writer sorts by position
            RowResult(
                2,
                None,
                4,
                "rejected",
                failed_step="booking",
                why=Explanation(
                    "slot_unavailable", "conflict", "No contractor is free", "Choose another time"
                ),
                steps={"booking": "rejected"},
            ),
            RowResult(0, None, 2, "created", booking_id="bkg_1", steps={"booking": "created"}),
            RowResult(
                1,
                None,
                3,
                "failed_transient",
                failed_step="booking",
                why=Explanation(
                    "timeout", "transient", "Sodtrack did not answer", "Re-run the same file."
                ),
                retry_on_rerun=True,
            ),
        ],
        notices=("Availability can change before the real run.",),
    )


def test_results_keep_order_every_row_once_and_neutralise(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    files = write_results(_result(), parsed.rows, parsed.columns, tmp_path / "out")

    raw = files.results_csv.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM: Excel reads the accents right
    with files.results_csv.open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert [r["row"] for r in table] == ["2", "3", "4"]
    assert [r["outcome"] for r in table] == ["created", "failed_transient", "rejected"]
    assert table[0]["booking_id"] == "bkg_1"
    assert table[2]["needs_a_person"] == "yes"
    assert table[1]["retry_on_rerun"] == "yes"
    # values as uploaded beside what was read; leading zeros kept; formulas neutralised
    assert table[1]["input: postal_code"] == "0750000"
    assert table[1]["read as: postal_code"] == "0750000"
    assert table[0]["input: notes"] == '\'=HYPERLINK("http://x")'
    assert table[0]["input: Extra"] == "'@SUM(1)"
    assert table[0]["read as: customer_phone"] == "'+56912345678"
    assert table[0]["read as: scheduled_start"] == "2026-12-03T10:00:00-03:00"
    assert table[0]["read as: customer_first_name"] == "Ána"

    wb = openpyxl.load_workbook(files.results_xlsx)
    ws = wb["Results"]
    values = [[c.value for c in row] for row in ws.iter_rows()]
    assert len(values) == 4
    header = values[0]
    notes = header.index("input: notes")
    assert values[1][notes] == '\'=HYPERLINK("http://x")'
    for row in ws.iter_rows():
        for cell in row:
            assert cell.data_type != "f"  # nothing is a formula
    postal = header.index("input: postal_code")
    assert values[2][postal] == "0750000"  # a string, zeros intact
    assert "Summary" in wb.sheetnames

    summary = json.loads(files.summary_json.read_text())
    assert summary["outcomes"]["created"] == 1
    assert summary["rows"] == 3
    assert summary["needs_a_person"] == 1


def test_rejects_hold_only_rows_to_fix_and_can_be_uploaded_again(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    files = write_results(_result(), parsed.rows, parsed.columns, tmp_path / "out")
    assert files.rejects == 1
    with files.rejects_csv.open(encoding="utf-8-sig", newline="") as fh:
        table = list(csv.DictReader(fh))
    assert len(table) == 1
    assert table[0]["external_reference"] == "B-3"
    assert table[0]["notes"] == "'-5 left"
    assert table[0]["sodtrack_row"] == "4"
    assert table[0]["sodtrack_error_code"] == "slot_unavailable"
    # the rejects file reads back as an upload: the error columns are unknown, not errors
    again = read_upload(files.rejects_xlsx, "cl")
    assert not again.has_upload_errors
    assert [r.external_reference for r in again.rows] == ["B-3"]
    assert again.rows[0].postal_code == "7500001"
    # and its own rejects file does not double the sodtrack_* columns
    second = RowResult(0, "Rejects", 2, "rejected", why=Explanation("x", "invalid", "m", ""))
    res = UploadResult("upl_2", "rejects.xlsx", "cl", False, 1, [second])
    files2 = write_results(res, again.rows, again.columns, tmp_path / "out2")
    with files2.rejects_csv.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh))
    assert header.count("sodtrack_message") == 1


def test_a_result_per_row_is_required(tmp_path: Path) -> None:
    parsed = read_upload(_csv(tmp_path), "cl")
    short = UploadResult("u", "f.csv", "cl", False, 1, [RowResult(0, None, 2, "created")])
    with pytest.raises(ValueError, match="1 results for 3 rows"):
        write_results(short, parsed.rows, parsed.columns, tmp_path)
