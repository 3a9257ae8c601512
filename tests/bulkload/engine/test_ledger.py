"""The ledger's resume semantics on SQLite (and PostgreSQL when one is configured)."""

from __future__ import annotations

import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bulkload.helpers import ledger_for
from sodtrack.bulkload.engine.ledger import (
    DEFAULT_LEDGER_URL,
    Ledger,
    RowRecord,
    upload_id_for,
    uploads_table,
)
from sodtrack.errors import LeaseHeld, UploadMismatch


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    with ledger_for(request.param, tmp_path) as led:
        yield led


def _begin(led: Ledger, upload_id: str, **kw: object) -> tuple[int, bool, str]:
    run = led.begin_upload(
        upload_id=upload_id,
        file_sha256="ab" * 32,
        file_name="bookings.xlsx",
        country="cl",
        uploaded_by="ana@example.com",
        dry_run=False,
        row_count=2,
        **kw,  # type: ignore[arg-type]
    )
    return run.run_no, run.resumed, run.owner


def _set_lease_owner(led: Ledger, upload_id: str, owner: str) -> None:
    with led.engine.begin() as conn:
        conn.execute(
            sa.update(uploads_table)
            .where(uploads_table.c.upload_id == upload_id)
            .values(lease_owner=owner)
        )


def test_upload_id_is_stable_per_file_and_country() -> None:
    sha = "0f" * 32
    assert upload_id_for(sha, "cl") == upload_id_for(sha.upper(), "CL")
    assert upload_id_for(sha, "cl") != upload_id_for(sha, "pe")
    assert upload_id_for(sha, "cl", dry_run=True).endswith("-dry")
    assert upload_id_for(sha, "cl", salt="again") != upload_id_for(sha, "cl")
    assert upload_id_for(sha, "cl", sheet="Marzo") != upload_id_for(sha, "cl")


def test_default_url_creates_its_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    led = Ledger(DEFAULT_LEDGER_URL)
    assert (tmp_path / "data" / "state" / "ledger.db").exists()
    with led.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    led.close()


def test_rerun_resumes_the_same_upload_and_counts_runs(ledger: Ledger) -> None:
    uid = f"upl_test_{uuid.uuid4().hex[:8]}"
    run1, resumed1, owner1 = _begin(ledger, uid)
    assert (run1, resumed1) == (1, False)
    ledger.finish_upload(uid, status="completed", summary={"created": 2}, owner=owner1)
    run2, resumed2, _ = _begin(ledger, uid)
    assert (run2, resumed2) == (2, True)
    rec = ledger.get_upload(uid)
    assert rec is not None
    assert (rec.runs, rec.status, rec.uploaded_by) == (2, "running", "ana@example.com")


def test_a_file_read_into_other_rows_is_not_mixed_into_its_upload(ledger: Ledger) -> None:
    uid = f"upl_test_{uuid.uuid4().hex[:8]}"
    _begin(ledger, uid)  # 2 rows
    ledger.finish_upload(uid, status="completed", summary={}, owner=None)
    with pytest.raises(UploadMismatch, match="start a new upload"):
        ledger.begin_upload(
            upload_id=uid,
            file_sha256="ab" * 32,
            file_name="bookings.xlsx",
            country="cl",
            uploaded_by="x",
            dry_run=False,
            row_count=3,
        )


def test_lease_refuses_a_second_live_worker(ledger: Ledger) -> None:
    uid = f"upl_test_{uuid.uuid4().hex[:8]}"
    _begin(ledger, uid)
    # a lease held by a live process on another host: refused unless taken over
    _set_lease_owner(ledger, uid, "elsewhere:1:x")
    with pytest.raises(LeaseHeld):
        _begin(ledger, uid)
    assert _begin(ledger, uid, take_over=True)[0] == 2


def test_lease_of_a_dead_local_process_is_taken_over(ledger: Ledger) -> None:
    uid = f"upl_test_{uuid.uuid4().hex[:8]}"
    _begin(ledger, uid)
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    _set_lease_owner(ledger, uid, f"{socket.gethostname()}:{dead.stdout.strip()}:x")
    assert _begin(ledger, uid)[1] is True


def test_step_lifecycle_survives_a_new_ledger_object(ledger: Ledger, tmp_path: Path) -> None:
    uid = f"upl_test_{uuid.uuid4().hex[:8]}"
    _begin(ledger, uid)
    ledger.ensure_steps(uid, [("project", "P1"), ("booking", "B1"), ("booking", "B2")])
    ledger.ensure_steps(uid, [("booking", "B1")])  # idempotent
    ledger.mark_in_flight(uid, "project", "P1")
    ledger.mark_done(uid, "project", "P1", sodtrack_id="prj_1", created=True, run_no=1)
    ledger.mark_in_flight(uid, "booking", "B1")  # "killed" here
    ledger.mark_failed(
        uid,
        "booking",
        "B2",
        state="rejected",
        error_code="postal_code_not_covered",
        error_kind="invalid",
        message="not covered",
        suggested_fix="fix it",
    )
    # a new process opens the same ledger
    again = Ledger(ledger.engine.url.render_as_string(hide_password=False))
    steps = again.steps(uid)
    assert steps[("project", "P1")].state == "done"
    assert steps[("project", "P1")].sodtrack_id == "prj_1"
    assert steps[("project", "P1")].created is True
    assert steps[("project", "P1")].done_run == 1
    assert steps[("booking", "B1")].state == "in_flight"
    assert steps[("booking", "B1")].attempts == 1
    assert steps[("booking", "B2")].state == "rejected"
    assert steps[("booking", "B2")].error_code == "postal_code_not_covered"
    again.mark_done(
        uid, "booking", "B1", sodtrack_id="bkg_1", created=True, run_no=2, data={"price": "1"}
    )
    b1 = again.get_step(uid, "booking", "B1")
    assert b1 is not None
    assert (b1.data, b1.done_run) == ({"price": "1"}, 2)
    assert set(again.steps(uid, "booking")) == {("booking", "B1"), ("booking", "B2")}
    again.close()


def test_rows_recorded_once_and_outcomes_overwritten(ledger: Ledger) -> None:
    uid = f"upl_test_{uuid.uuid4().hex[:8]}"
    _begin(ledger, uid)
    recs = [
        RowRecord(0, "Sheet1", 2, "B1", original={"Código": "0123"}, interpreted={"a": 1}),
        RowRecord(1, "Sheet1", 3, "B2"),
    ]
    ledger.record_rows(uid, recs)
    ledger.record_rows(uid, recs)
    stored = ledger.rows(uid)
    assert [r.position for r in stored] == [0, 1]
    assert stored[0].original == {"Código": "0123"}
    ledger.save_row_outcomes(
        uid, [RowRecord(0, "Sheet1", 2, outcome="created", booking_id="bkg_1")]
    )
    stored = ledger.rows(uid)
    assert (stored[0].outcome, stored[0].booking_id) == ("created", "bkg_1")
    assert stored[0].external_reference == "B1"  # identity untouched
    assert stored[1].outcome is None
