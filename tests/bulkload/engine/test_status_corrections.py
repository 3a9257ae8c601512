"""Corrections of a booking's status and cancellation (issue #10, item 4): the optional
``booking_status`` / ``cancellation_reason`` columns against the record Sodtrack holds.

A move forward is ``updated`` (one ``PATCH`` per step of the contract's graph, so several
steps are several requests), a cancellation goes through ``POST /bookings/{id}/cancel`` with
the row's reason, a move the graph has no way for is ``rejected`` naming both values, and
the same file again is ``already_existed``. A new booking asking for a status other than
scheduled is refused (nothing is created only to be moved on). Against the in-process
simulator."""

from __future__ import annotations

import csv
import itertools
import random
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from pydantic import SecretStr
from starlette.applications import Starlette

from bulkload.helpers import (
    SIM_TODAY,
    assert_every_row_once,
    assert_no_duplicates,
    ledger_for,
    read_rows,
    sim_client,
    store,
)
from sodtrack.bulkload import read_upload
from sodtrack.bulkload.answers.results import write_results
from sodtrack.bulkload.engine.cancel import cancel_upload
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.synth import COLUMNS, synthesize_upload
from sodtrack.client import Credentials, RetryExhausted, SodtrackClient
from sodtrack.contract import models as m
from sodtrack.contract.models import BookingStatus, booking_status_path

S = BookingStatus
STATUS_COLUMNS = (*COLUMNS, "booking_status", "cancellation_reason")


def _write(path: Path, rows: Iterable[Mapping[str, Any]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=STATUS_COLUMNS, extrasaction="ignore")
        w.writeheader()
        for r in rows:
            w.writerow({k: "" if v is None else v for k, v in r.items()})
    return path


async def _load(
    app: Starlette, ledger: Ledger, path: Path, client: SodtrackClient | None = None, **kw: Any
) -> UploadResult:
    parsed = read_upload(path, "cl")
    async with client or sim_client(app) as c:
        result = await run_upload(parsed, c, ledger, uploaded_by="ops", **kw)
    assert_every_row_once(result, len(parsed.rows))
    return result


async def _first_load(
    app: Starlette, ledger: Ledger, tmp_path: Path, rows: int = 8
) -> list[dict[str, str]]:
    """A loaded upload of plain bookings (every one ``scheduled`` in Sodtrack)."""
    path = tmp_path / "first.csv"
    async with sim_client(app) as client:
        await synthesize_upload(client, path, country="cl", rows=rows, projects=0, today=SIM_TODAY)
    result = await _load(app, ledger, path)
    assert result.counts["created"] == rows, result.counts
    return read_rows(path)


def _rec(app: Starlette, ref: str) -> dict[str, Any]:
    st = store(app)
    return st.bookings[st.booking_refs[ref]].to_dict()


def _booking_writes(app: Starlette) -> int:
    return int(app.state.sim.counters_snapshot()["writes"].get("booking", 0))


def _by_ref(result: UploadResult, path: Path) -> dict[str, Any]:
    parsed = read_upload(path, "cl")
    return {parsed.rows[r.position].external_reference: r for r in result.rows}


async def _set_status(app: Starlette, ref: str, status: S, reason: str = "set by hand") -> None:
    """Someone moves the booking on in Sodtrack (through the API, along the graph)."""
    rec = _rec(app, ref)
    path = booking_status_path(rec["status"], status)
    assert path is not None
    async with sim_client(app) as client:
        for step in path:
            if step == S.CANCELLED:
                await client.cancel_booking(rec["id"], reason)
            else:
                await client.update_booking(rec["id"], m.BookingUpdate(status=step))
    assert _rec(app, ref)["status"] == status


async def test_forward_one_step_then_rerun_is_already_existed(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    rows = await _first_load(app, ledger, tmp_path)
    ref = rows[0]["external_reference"]
    rows[0]["booking_status"] = "confirmada"
    path = _write(tmp_path / "status.csv", rows)
    before = _booking_writes(app)
    result = await _load(app, ledger, path)
    out = _by_ref(result, path)
    assert out[ref].outcome == "updated"
    assert all(r.outcome == "already_existed" for k, r in out.items() if k != ref)
    assert _rec(app, ref)["status"] == "confirmed"
    assert _booking_writes(app) == before + 1
    again = await _load(app, ledger, path)
    assert again.counts["already_existed"] == len(rows), again.counts
    assert _booking_writes(app) == before + 1
    # A fresh ledger (another state database) finds it by the 409 and says the same.
    with ledger_for("sqlite", tmp_path / "other") as other:
        third = await _load(app, other, path)
    assert third.counts["already_existed"] == len(rows), third.counts
    assert _booking_writes(app) == before + 1


async def test_forward_several_steps_is_one_patch_per_step(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    rows = await _first_load(app, ledger, tmp_path)
    ref = rows[1]["external_reference"]
    rows[1]["booking_status"] = "concluída"
    rows[1]["notes"] = "Trabajo terminado"
    path = _write(tmp_path / "status.csv", rows)
    before = _booking_writes(app)
    result = await _load(app, ledger, path)
    assert _by_ref(result, path)[ref].outcome == "updated"
    rec = _rec(app, ref)
    assert (rec["status"], rec["notes"]) == ("completed", "Trabajo terminado")
    assert _booking_writes(app) == before + 4  # notes, confirmed, in_progress, completed


async def test_cancel_with_reason_uses_the_cancel_endpoint(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    rows = await _first_load(app, ledger, tmp_path)
    ref = rows[2]["external_reference"]
    rows[2]["booking_status"] = "Cancelada"
    rows[2]["cancellation_reason"] = "El cliente se mudó"
    path = _write(tmp_path / "status.csv", rows)
    result = await _load(app, ledger, path)
    assert _by_ref(result, path)[ref].outcome == "updated"
    rec = _rec(app, ref)
    assert (rec["status"], rec["cancelled_reason"]) == ("cancelled", "El cliente se mudó")
    parsed = read_upload(path, "cl")
    files = write_results(result, parsed.rows, parsed.columns, tmp_path / "out")
    assert not files.failed
    written = {r["input: external_reference"]: r for r in read_rows(files.results_csv)}
    assert written[ref]["outcome"] == "updated"
    assert written[ref]["read as: booking_status"] == "cancelled"
    sheet = load_workbook(files.results_xlsx, read_only=True).active
    assert sheet is not None
    cells = [c.value for c in next(sheet.iter_rows(max_row=1))]
    assert "read as: booking_status" in cells
    writes = _booking_writes(app)
    again = await _load(app, ledger, path)
    assert again.counts["already_existed"] == len(rows)
    assert _booking_writes(app) == writes


async def test_cancel_without_reason_is_a_row_error(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    rows = await _first_load(app, ledger, tmp_path)
    ref = rows[0]["external_reference"]
    rows[0]["booking_status"] = "cancelled"
    path = _write(tmp_path / "status.csv", rows)
    before = _rec(app, ref)
    result = await _load(app, ledger, path)
    row = _by_ref(result, path)[ref]
    assert row.outcome == "rejected"
    assert row.error_code == "cancellation_reason_required"
    assert _rec(app, ref) == before


@pytest.mark.parametrize(
    ("there", "here", "shown"),
    [
        (S.CONFIRMED, "programada", "'confirmed' there, 'scheduled' here"),
        (S.COMPLETED, "cancelada", "'completed' there, 'cancelled' here"),
        (S.CANCELLED, "confirmada", "'cancelled' there, 'confirmed' here"),
    ],
)
async def test_impossible_moves_are_rejected_naming_both_values(
    app: Starlette, ledger: Ledger, tmp_path: Path, there: S, here: str, shown: str
) -> None:
    rows = await _first_load(app, ledger, tmp_path)
    ref = rows[0]["external_reference"]
    await _set_status(app, ref, there)
    rows[0]["booking_status"] = here
    if here == "cancelada":
        rows[0]["cancellation_reason"] = "ya no"
    path = _write(tmp_path / "status.csv", rows)
    before = _rec(app, ref)
    result = await _load(app, ledger, path)
    row = _by_ref(result, path)[ref]
    assert (row.outcome, row.error_code) == ("rejected", "correction_not_allowed")
    message = row.message or ""
    assert f"booking_status ({shown})" in message
    assert "only moves forward" in message
    assert _rec(app, ref) == before


async def test_a_cancelled_booking_and_a_row_saying_so_are_identical(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """Cancelled in Sodtrack: a row saying cancelled with the same reason is
    ``already_existed``; another reason is refused naming it (the first reason stays); a row
    with no status is refused as before (a reference is never reused)."""
    rows = await _first_load(app, ledger, tmp_path)
    a, b, c = (r["external_reference"] for r in rows[:3])
    for ref in (a, b, c):
        await _set_status(app, ref, S.CANCELLED, "lluvia")
    rows[0].update(booking_status="cancelada", cancellation_reason="lluvia")
    rows[1].update(booking_status="cancelada", cancellation_reason="otra razón")
    path = _write(tmp_path / "status.csv", rows)
    writes = _booking_writes(app)
    out = _by_ref(await _load(app, ledger, path), path)
    assert out[a].outcome == "already_existed"
    assert out[b].outcome == "rejected"
    assert "cancellation_reason ('lluvia' there, 'otra razón' here)" in (out[b].message or "")
    assert out[c].outcome == "rejected"
    assert "cancelled" in (out[c].message or "")
    assert _booking_writes(app) == writes


@pytest.mark.parametrize("status", ["confirmada", "completed", "cancelled"])
async def test_a_new_booking_with_a_status_is_refused(
    app: Starlette, ledger: Ledger, tmp_path: Path, status: str
) -> None:
    """Decided: a new booking starts scheduled; nothing is created only to be moved on."""
    path = tmp_path / "new.csv"
    async with sim_client(app) as client:
        await synthesize_upload(client, path, country="cl", rows=3, projects=0, today=SIM_TODAY)
    rows = read_rows(path)
    rows[0]["booking_status"] = status
    rows[0]["cancellation_reason"] = "x" if status == "cancelled" else ""
    rows[1]["booking_status"] = "programada"
    path = _write(tmp_path / "new_status.csv", rows)
    for dry_run in (True, False):
        result = await _load(app, ledger, path, dry_run=dry_run)
        out = _by_ref(result, path)
        refused = out[rows[0]["external_reference"]]
        assert (refused.outcome, refused.error_code) == ("rejected", "status_of_new_booking")
        assert "new booking always starts scheduled" in (refused.message or "")
        created = "would_create" if dry_run else "created"
        assert out[rows[1]["external_reference"]].outcome == created
    assert store(app).count_bookings(rows[0]["external_reference"]) == 0
    assert _rec(app, rows[1]["external_reference"])["status"] == "scheduled"


async def test_dry_run_says_would_update_and_writes_nothing(app: Starlette, tmp_path: Path) -> None:
    with ledger_for("sqlite", tmp_path / "first") as first:
        rows = await _first_load(app, first, tmp_path)
    rows[0]["booking_status"] = "en curso"
    rows[1]["booking_status"] = "cancelada"
    rows[1]["cancellation_reason"] = "duplicada"
    path = _write(tmp_path / "status.csv", rows)
    await _set_status(app, rows[2]["external_reference"], S.CONFIRMED)
    rows[2]["booking_status"] = "scheduled"
    path = _write(tmp_path / "status.csv", rows)
    writes = _booking_writes(app)
    with ledger_for("sqlite", tmp_path / "second") as second:
        dry = await _load(app, second, path, dry_run=True)
        assert _booking_writes(app) == writes
        out = _by_ref(dry, path)
        assert out[rows[0]["external_reference"]].outcome == "would_update"
        assert out[rows[1]["external_reference"]].outcome == "would_update"
        assert out[rows[2]["external_reference"]].outcome == "rejected"
        real = _by_ref(await _load(app, second, path), path)
    assert {k: r.outcome for k, r in real.items()} == {
        k: ("updated" if r.outcome == "would_update" else r.outcome) for k, r in out.items()
    }
    assert _rec(app, rows[0]["external_reference"])["status"] == "in_progress"


class _SecondStepLost(SodtrackClient):
    """The real client, whose second status PATCH commits and then loses its answer."""

    status_patches = 0

    async def update_booking(self, booking_id: str, body: m.BookingUpdate) -> m.Booking:
        got = await super().update_booking(booking_id, body)
        if body.status is not None:
            self.status_patches += 1
            if self.status_patches == 2:
                raise RetryExhausted(
                    operation="update_booking",
                    attempts=4,
                    seen=["ReadTimeout"],
                    waited_s=0.0,
                    elapsed_s=0.0,
                    reason="answer lost",
                )
        return got


async def test_a_lost_answer_between_two_steps_is_resumed_by_the_rerun(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """scheduled → completed is three PATCHes; the second's answer is lost: the row is
    ``failed_transient`` with the booking left in_progress; the re-run reads it there and
    walks the last step (``updated``); ``cancel`` leaves the booking alone (not created by
    this upload); the run after that is ``already_existed``."""
    rows = await _first_load(app, ledger, tmp_path)
    ref = rows[0]["external_reference"]
    rows[0]["booking_status"] = "completed"
    path = _write(tmp_path / "status.csv", rows)
    base = sim_client(app)
    lossy = _SecondStepLost(
        base._http,
        base_url="http://sim",
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        owns_http=True,
    )
    first = await _load(app, ledger, path, client=lossy)
    row = _by_ref(first, path)[ref]
    assert (row.outcome, row.retry_on_rerun) == ("failed_transient", True)
    assert _rec(app, ref)["status"] == "in_progress"
    step = ledger.get_step(first.upload_id, "booking", ref)
    assert step is not None
    assert step.state != "done"
    assert step.data.get("existing") is True
    writes = _booking_writes(app)
    again = await _load(app, ledger, path)
    assert _by_ref(again, path)[ref].outcome == "updated"
    assert _rec(app, ref)["status"] == "completed"
    assert _booking_writes(app) == writes + 1
    async with sim_client(app) as client:
        await cancel_upload(again.upload_id, client, ledger)
    assert _rec(app, ref)["status"] == "completed"
    third = await _load(app, ledger, path)
    assert third.counts["already_existed"] == len(rows)


async def test_cancel_upload_leaves_alone_bookings_only_updated(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    rows = await _first_load(app, ledger, tmp_path)
    ref = rows[0]["external_reference"]
    rows[0]["booking_status"] = "confirmed"
    path = _write(tmp_path / "status.csv", rows)
    result = await _load(app, ledger, path)
    assert result.counts["updated"] == 1
    async with sim_client(app) as client:
        await cancel_upload(result.upload_id, client, ledger)
    assert _rec(app, ref)["status"] == "confirmed"


_SHEET: tuple[str | None, ...] = (None, *S)
"""What a row may ask for: nothing (an empty cell), or each status."""


def _expected(there: S, here: str | None) -> tuple[str, S]:
    """The outcome of a row asking ``here`` of a booking ``there``, and the status after."""
    if here is None:
        return ("rejected" if there == S.CANCELLED else "already_existed"), there
    path = booking_status_path(there, here)
    if path is None:
        return "rejected", there
    return ("already_existed" if path == () else "updated"), S(here)


@pytest.mark.parametrize("seed", [10, 2026])
async def test_generated_status_pairs(
    app: Starlette, ledger: Ledger, tmp_path: Path, seed: int
) -> None:
    """Every (status in Sodtrack, status in the sheet) pair, 5 × 6, each on its own booking
    (assigned by a seeded shuffle, written in random spellings of three languages): the
    outcome and the store's final status follow from the contract's graph; the same file
    again changes nothing and updates nothing."""
    rng = random.Random(seed)
    pairs = list(itertools.product(S, _SHEET))
    rng.shuffle(pairs)
    rows = await _first_load(app, ledger, tmp_path, rows=len(pairs))
    spellings = {
        S.SCHEDULED: ("scheduled", "programada", "Agendada"),
        S.CONFIRMED: ("confirmed", "Confirmada", "CONFIRMADO"),
        S.IN_PROGRESS: ("in_progress", "en curso", "Em andamento"),
        S.COMPLETED: ("completed", "completada", "concluída"),
        S.CANCELLED: ("cancelled", "Cancelada", "canceled"),
    }
    expect: dict[str, tuple[str, S]] = {}
    for row, (there, here) in zip(rows, pairs, strict=True):
        ref = row["external_reference"]
        await _set_status(app, ref, there, "motivo")
        if here is not None:
            row["booking_status"] = rng.choice(spellings[S(here)])
            if here == S.CANCELLED:
                row["cancellation_reason"] = "motivo"
        expect[ref] = _expected(there, here)
    path = _write(tmp_path / "pairs.csv", rng.sample(rows, len(rows)))
    result = await _load(app, ledger, path)
    out = _by_ref(result, path)
    got = {ref: (out[ref].outcome, S(_rec(app, ref)["status"])) for ref in expect}
    assert got == expect
    assert {o for o, _ in expect.values()} == {"updated", "already_existed", "rejected"}
    writes = _booking_writes(app)
    again = await _load(app, ledger, path)
    assert again.counts["updated"] == 0
    assert again.counts["rejected"] == sum(o == "rejected" for o, _ in expect.values())
    assert _booking_writes(app) == writes
    assert_no_duplicates(app, list(expect), [])
