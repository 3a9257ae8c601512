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
from sodtrack.bulkload.outcomes import Explanation, RowResult
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
        why=Explanation("postal_code_not_covered", "invalid", "not covered", "fix it"),
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
    assert steps[("booking", "B2")].why == Explanation(
        "postal_code_not_covered", "invalid", "not covered", "fix it"
    )
    assert steps[("project", "P1")].why is None
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
    answer = RowResult(0, "Sheet1", 2, "created", booking_id="bkg_1", steps={"booking": "created"})
    ledger.save_row_outcomes(uid, [answer])
    stored = ledger.rows(uid)
    assert stored[0].result == answer
    assert stored[0].external_reference == "B1"  # identity untouched
    assert stored[1].result is None
    # the whole answer goes in and comes back: the explanation (with the cells at fault),
    # the steps, the warnings, whether a re-run helps
    refused = RowResult(
        1,
        "Sheet1",
        3,
        "rejected",
        failed_step="validation",
        why=Explanation("invalid_postal_code", "invalid", "bad", "fix", ("postal_code",)),
        steps={"booking": "rejected"},
        retry_on_rerun=False,
        warnings=("Phone: +56 added",),
    )
    transient = RowResult(0, "Sheet1", 2, "failed_transient", retry_on_rerun=True)
    ledger.save_row_outcomes(uid, [transient, refused])
    assert [r.result for r in ledger.rows(uid)] == [transient, refused]


# The ledger's tables as the code before the one-row-answer change created them (no
# ``error_fields_json``, ``steps_json``, ``retry_on_rerun``, ``warnings_json``): a database of
# that code must open, be migrated, and give its rows and steps back.
_OLD_SCHEMA = """
CREATE TABLE load_rows (upload_id VARCHAR(80) NOT NULL, position INTEGER NOT NULL, sheet TEXT,
 row_number INTEGER NOT NULL, external_reference TEXT, project_reference TEXT,
 stage_sequence INTEGER, payment_reference TEXT, outcome VARCHAR(32), failed_step VARCHAR(16),
 error_code TEXT, error_kind VARCHAR(16), message TEXT, suggested_fix TEXT, project_id TEXT,
 booking_id TEXT, stage_id TEXT, payment_id TEXT, original_json TEXT, interpreted_json TEXT,
 updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (upload_id, position));
CREATE TABLE load_steps (upload_id VARCHAR(80) NOT NULL, kind VARCHAR(16) NOT NULL,
 "key" VARCHAR(200) NOT NULL, state VARCHAR(20) NOT NULL, sodtrack_id TEXT,
 created BOOLEAN NOT NULL, done_run INTEGER, error_code TEXT, error_kind VARCHAR(16),
 message TEXT, suggested_fix TEXT, attempts INTEGER NOT NULL, data_json TEXT,
 updated_at VARCHAR(32) NOT NULL, PRIMARY KEY (upload_id, kind, "key"));
CREATE TABLE load_uploads (upload_id VARCHAR(80) NOT NULL, file_sha256 VARCHAR(64) NOT NULL,
 file_name TEXT NOT NULL, country VARCHAR(2) NOT NULL, uploaded_by TEXT NOT NULL,
 created_at VARCHAR(32) NOT NULL, updated_at VARCHAR(32) NOT NULL, status VARCHAR(32) NOT NULL,
 dry_run BOOLEAN NOT NULL, runs INTEGER NOT NULL, row_count INTEGER NOT NULL,
 summary_json TEXT, lease_owner TEXT, lease_until VARCHAR(32), PRIMARY KEY (upload_id));
INSERT INTO load_uploads VALUES ('upl_old', 'ab', 'old.xlsx', 'cl', 'ana', 't', 't',
 'completed_with_errors', 0, 1, 2, '{"created": 1, "rejected": 1}', NULL, NULL);
INSERT INTO load_rows VALUES ('upl_old', 0, 'Sheet1', 2, 'B1', NULL, NULL, NULL, 'created',
 NULL, NULL, NULL, NULL, NULL, NULL, 'bkg_1', NULL, NULL, '{"Ref": "B1"}', '{}', 't');
INSERT INTO load_rows VALUES ('upl_old', 1, 'Sheet1', 3, 'B2', NULL, NULL, NULL, 'rejected',
 'validation', 'postal_code_not_covered', 'invalid', 'not covered', 'fix it', NULL, NULL,
 NULL, NULL, '{"Ref": "B2"}', '{}', 't');
INSERT INTO load_steps VALUES ('upl_old', 'booking', 'B1', 'done', 'bkg_1', 1, 1, NULL, NULL,
 NULL, NULL, 1, '{"price": "10"}', 't');
INSERT INTO load_steps VALUES ('upl_old', 'booking', 'B2', 'rejected', NULL, 0, NULL,
 'postal_code_not_covered', 'invalid', 'not covered', 'fix it', 0, NULL, 't');
"""


def test_a_ledger_database_of_the_previous_schema_opens_and_reads(tmp_path: Path) -> None:
    path = tmp_path / "old-ledger.db"
    engine = sa.create_engine(f"sqlite:///{path}")
    with engine.begin() as conn:
        for statement in _OLD_SCHEMA.split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    engine.dispose()

    led = Ledger(f"sqlite:///{path}")
    try:
        upload = led.get_upload("upl_old")
        assert upload is not None
        assert (upload.status, upload.summary) == (
            "completed_with_errors",
            {"created": 1, "rejected": 1},
        )
        first, second = led.rows("upl_old")
        assert first.result == RowResult(0, "Sheet1", 2, "created", booking_id="bkg_1")
        assert first.original == {"Ref": "B1"}
        assert second.result == RowResult(
            1,
            "Sheet1",
            3,
            "rejected",
            failed_step="validation",
            why=Explanation("postal_code_not_covered", "invalid", "not covered", "fix it"),
        )
        steps = led.steps("upl_old")
        assert steps[("booking", "B1")].why is None
        assert steps[("booking", "B1")].data == {"price": "10"}
        assert steps[("booking", "B2")].why == Explanation(
            "postal_code_not_covered", "invalid", "not covered", "fix it"
        )
        # and the migrated database takes the new answer whole
        answer = RowResult(
            1,
            "Sheet1",
            3,
            "rejected",
            failed_step="validation",
            why=Explanation("x", "invalid", "m", "f", ("postal_code",)),
            steps={"booking": "rejected"},
            warnings=("w",),
        )
        led.save_row_outcomes("upl_old", [answer])
        assert led.rows("upl_old")[1].result == answer
    finally:
        led.close()
