"""Items 8 and 10 of issue 10 through ``sodtrack-etl load`` and the library the flow runs,
against a loopback simulator: one definition of every count (artifact, ``summary.json``, the
results file's column and the CLI agree), every run's answer kept (``run-N`` files beside a
latest copy), and user text printed escaped (no ANSI sequence from a header reaches the
terminal)."""

from __future__ import annotations

import asyncio
import csv
import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sodtrack.bulkload import run as bulkload
from sodtrack.bulkload.engine.ledger import file_sha256, upload_id_for
from sodtrack.cli import app
from sodtrack.settings import Settings
from tasks.load import outcome_data

from .conftest import Sim, clean_file, file_with_rejects

pytestmark = pytest.mark.slow


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def printed(result: Result, key: str) -> str:
    for line in result.stdout.splitlines():
        if line.startswith(f"{key}: "):
            return line.split(": ", 1)[1]
    raise AssertionError(f"no {key!r} line in:\n{result.output}")


def _column_count(path: Path, column: str) -> int:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return sum(1 for r in csv.DictReader(fh) if r[column] == "yes")


def test_every_count_has_one_answer_and_every_run_keeps_its_files(sim: Sim) -> None:
    sample = file_with_rejects(sim.root / "inbox" / "sample.xlsx")
    run = asyncio.run(bulkload.run_load(Settings(), sample.path, uploaded_by="ana"))
    assert run.exit_code == 4
    summary = json.loads(run.files.summary_json.read_text(encoding="utf-8"))
    artifact = outcome_data(run)  # what the flow's final state and artifacts carry
    markdown = run.summary_markdown()  # the summary artifact
    shown = re.search(r"rows needing a person: (\d+)", markdown)
    assert shown is not None
    column = _column_count(run.files.results_csv, "needs_a_person")
    # the issue: the artifact said 3, summary.json 0, the results column was empty
    assert summary["needs_a_person"] == artifact["needs_a_person"] == int(shown.group(1))
    assert summary["needs_a_person"] == column == run.files.rejects == len(sample.bad) == 3
    assert summary["retry_on_rerun"] == artifact["retry_on_rerun"] == 0
    assert summary["outcomes"] == artifact["counts"]
    assert run.files.results_csv.name.endswith(".run-1.results.csv")

    again = invoke("load", sample.path, "--country", "cl")
    assert again.exit_code == 4, again.output
    assert int(printed(again, "needs_a_person")) == 3
    assert "rows needing a person: 3" in again.output
    assert printed(again, "run") == "2"
    second = Path(printed(again, "results_csv"))
    assert second.name.endswith(".run-2.results.csv")
    assert Path(printed(again, "results")).name.endswith(".run-2.results.xlsx")
    assert Path(printed(again, "rejects_csv")).name.endswith(".run-2.rejects.csv")
    # the first run's answer is still there, unchanged; the latest copy is the second's
    assert run.files.results_csv.exists()
    with run.files.results_csv.open(encoding="utf-8-sig", newline="") as fh:
        assert {r["outcome"] for r in csv.DictReader(fh)} == {"created", "rejected"}
    with second.open(encoding="utf-8-sig", newline="") as fh:
        assert {r["outcome"] for r in csv.DictReader(fh)} == {"already_existed", "rejected"}
    latest = Path(printed(again, "latest_results_csv"))
    assert latest.read_bytes() == second.read_bytes()
    assert _column_count(second, "needs_a_person") == 3


def test_escape_sequences_in_a_header_and_a_cell_never_reach_the_terminal(sim: Sim) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.csv", rows=4, projects=1)
    with path.open(encoding="utf-8", newline="") as fh:
        rows = list(csv.reader(fh))
    rows[0].append("\x1b[2J\x1b[31mEVIL\nforged: line")
    for r in rows[1:]:
        r.append("x")
    rows[1][0] = "\x1b]0;pwned\x07REF-1"  # the reference: echoed in the rows-not-created table
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows(rows)
    result = invoke("load", path, "--country", "cl", "--dry-run")
    assert "\x1b" not in result.output
    assert "\x07" not in result.output
    assert "<U+001B>" in result.output  # the text was printed, escaped
    assert "\nforged: line" not in result.output
    assert result.exit_code in (0, 4), result.output


def test_a_results_file_that_cannot_be_written_is_named_and_the_others_are_written(
    sim: Sim, tmp_path: Path
) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.csv", rows=4, projects=1)
    upload_id = upload_id_for(file_sha256(path), "cl")
    out = tmp_path / "out"
    # a folder where this run's rejects XLSX goes: that write fails for a real reason
    (out / f"bookings.{upload_id}.run-1.rejects.xlsx").mkdir(parents=True)
    result = invoke("load", path, "--country", "cl", "--out", out)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert "Traceback" not in result.output
    assert result.exit_code == 5, result.output  # the answer is incomplete: re-run writes it
    assert "not written:" in result.output
    assert "rejects_xlsx" in result.output
    assert printed(result, "upload_id") == upload_id
    for key in ("results", "results_csv", "rejects_csv", "summary"):
        assert Path(printed(result, key)).is_file(), key
    with Path(printed(result, "results_csv")).open(encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["outcome"] for r in rows} == {"created"}  # the bookings were created all the same
    bookings = sim.bookings()
    assert all(bookings[r["input: external_reference"]].id == r["booking_id"] for r in rows)
    again = invoke("load", path, "--country", "cl", "--out", out)  # run 2 writes every file
    assert again.exit_code == 0, again.output
    assert Path(printed(again, "rejects_csv")).is_file()
    assert printed(again, "rejects").endswith(".run-2.rejects.xlsx (0 rows)")
    assert len(list(out.glob("*.run-2.rejects.xlsx"))) == 1
    assert (out / f"bookings.{upload_id}.rejects.xlsx").is_file()  # the latest copy
