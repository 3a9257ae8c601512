"""The engine against the simulator (in-process): happy path, re-runs, dry run, rejections,
dependencies, cancel."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette

from bulkload.helpers import (
    SIM_TODAY,
    assert_every_row_once,
    assert_matches_store,
    assert_no_duplicates,
    ledger_for,
    read_rows,
    sim_client,
    store,
    write_rows,
)
from sodtrack.bulkload import BookingRow, read_upload
from sodtrack.bulkload.answers.results import write_results
from sodtrack.bulkload.engine.cancel import cancel_upload
from sodtrack.bulkload.engine.catalog import Coverage
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import RetryExhausted, SodtrackClient
from sodtrack.client.errors import RejectedError
from sodtrack.contract import models as m


@pytest.fixture(params=["sqlite", "postgres"])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """The happy path runs on both back ends (PostgreSQL when configured)."""
    with ledger_for(request.param, tmp_path) as led:
        yield led


async def _synth(app: Starlette, path: Path, rows: int = 40, projects: int = 6) -> Path:
    async with sim_client(app) as client:
        await synthesize_upload(
            client, path, country="cl", rows=rows, projects=projects, today=SIM_TODAY
        )
    return path


def _writes(app: Starlette) -> dict[str, int]:
    """Records committed by the simulator, by type (tokens are not records)."""
    writes = app.state.sim.counters_snapshot()["writes"]
    return {k: v for k, v in writes.items() if k != "token"}


async def test_happy_path_then_rerun_creates_nothing_new(
    app: Starlette, any_ledger: Ledger, tmp_path: Path
) -> None:
    ledger = any_ledger
    path = await _synth(app, tmp_path / "bookings.csv")
    parsed = read_upload(path, "cl")
    assert all(r.is_valid for r in parsed.rows)
    progress: list[tuple[str, int, int]] = []
    async with sim_client(app) as client:
        result = await run_upload(
            parsed,
            client,
            ledger,
            uploaded_by="ops@example.com",
            check_availability=True,
            progress=lambda *a: progress.append(a),
        )
    assert_every_row_once(result, len(parsed.rows))
    assert result.counts["created"] == len(parsed.rows), result.counts
    assert result.status == "completed"
    assert_matches_store(app, result, parsed.rows)
    assert progress[-1][0] == "load"
    assert progress[-1][1] == progress[-1][2]
    with_project = [r for r in result.rows if parsed.rows[r.position].project_reference]
    assert with_project
    assert all(r.project_id and r.stage_id for r in with_project)
    writes = _writes(app)

    async with sim_client(app) as client:
        again = await run_upload(parsed, client, ledger, uploaded_by="ops@example.com")
    assert again.upload_id == result.upload_id
    assert again.run_no == 2
    assert again.counts["already_existed"] == len(parsed.rows)
    assert again.requests == 0  # the ledger knows: nothing to ask
    assert _writes(app) == writes
    rec = ledger.get_upload(result.upload_id)
    assert rec is not None
    assert rec.runs == 2
    assert rec.summary["already_existed"] == len(parsed.rows)
    assert [r.result for r in ledger.rows(result.upload_id)] == list(again.rows)

    files = write_results(again, parsed.rows, parsed.columns, tmp_path / "out")
    assert files.rejects == 0
    assert len(read_rows(files.results_csv)) == len(parsed.rows)


async def test_dry_run_creates_nothing_and_says_availability_may_change(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    path = await _synth(app, tmp_path / "bookings.csv", rows=20, projects=3)
    parsed = read_upload(path, "cl")
    before = _writes(app)
    async with sim_client(app) as client:
        result = await run_upload(
            parsed, client, ledger, dry_run=True, check_availability=True, uploaded_by="ops"
        )
    assert _writes(app) == before
    assert result.dry_run
    assert result.upload_id.endswith("-dry")
    assert result.counts["would_create"] == len(parsed.rows)
    assert any("availability can change" in n for n in result.notices)
    assert result.requests > 0  # coverage and availability were asked live
    # the real run afterwards is a separate upload and loads everything
    async with sim_client(app) as client:
        real = await run_upload(parsed, client, ledger, uploaded_by="ops")
    assert real.counts["created"] == len(parsed.rows)
    # a dry run after the real run reports what exists
    async with sim_client(app) as client:
        dry2 = await run_upload(parsed, client, ledger, dry_run=True, uploaded_by="ops")
    assert dry2.counts["already_existed"] == len(parsed.rows)


async def _bad_rows(app: Starlette, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A file with one row per rejection reason, plus good rows; returns refs by reason."""
    src = read_rows(await _synth(app, tmp_path / "src.csv", rows=30, projects=4))
    plain = [r for r in src if not r["project_reference"]]
    projects: dict[str, list[dict[str, str]]] = {}
    for r in src:
        if r["project_reference"]:
            projects.setdefault(r["project_reference"], []).append(r)
    async with sim_client(app) as client:
        zones = await client.collect_coverage_zones()
    all_codes = {c for z in zones for c in z.postal_codes}
    uncovered = next(f"{n:07d}" for n in range(1_000_000, 9_999_999) if f"{n:07d}" not in all_codes)

    refs: dict[str, str] = {}
    bad_sku = dict(plain[0], service_sku="NO-SUCH-SKU")
    refs["unknown_service_sku"] = bad_sku["external_reference"]
    not_covered = dict(plain[1], postal_code=uncovered)
    refs["postal_code_not_covered"] = not_covered["external_reference"]
    half_hour = dict(plain[2], scheduled_start=plain[2]["scheduled_start"][:-2] + "30")
    refs["not_a_slot_start"] = half_hour["external_reference"]
    taken = dict(plain[3])
    refs["slot_taken"] = taken["external_reference"]
    # overpayment: the project's first payment row pays far more than the project's total
    pref, prow = next(iter(projects.items()))
    over = dict(prow[0])
    over.update(
        payment_reference=f"{pref}-OVER",
        payment_amount="999999999",
        payment_method="card",
        paid_at="2026-06-01",
    )
    refs["overpayment_in_file"] = over["external_reference"]
    rows = [bad_sku, not_covered, half_hour, taken, over, *prow[1:], *plain[4:]]
    return write_rows(tmp_path / "bad.csv", rows), refs


async def _fill_slot(app: Starlette, row: BookingRow) -> None:
    """Book every contractor of the row's zone at the row's start (someone else did)."""
    async with sim_client(app) as client:
        services = {s.sku: s for s in await client.collect_services()}
        for i in range(50):
            try:
                await client.create_booking(
                    m.BookingCreate(
                        external_reference=f"OTHER-{row.external_reference}-{i}",
                        service_id=services[row.service_sku].id,
                        scheduled_start=row.scheduled_start,  # type: ignore[arg-type]
                        customer=m.CustomerIn(first_name="X", last_name="Y", email="x@y.cl"),
                        address=m.AddressIn(
                            line1="a",
                            city="c",
                            region="r",
                            postal_code=row.postal_code,
                            country="cl",
                        ),
                    )
                )
            except RejectedError as exc:
                if exc.code != "slot_unavailable":
                    raise
                return
    raise AssertionError("the slot never filled")


@pytest.mark.parametrize("availability", [True, False])
async def test_rejections_are_explained_and_nothing_is_written_for_them(
    app: Starlette, ledger: Ledger, tmp_path: Path, availability: bool
) -> None:
    path, refs = await _bad_rows(app, tmp_path)
    parsed = read_upload(path, "cl")
    by_ref = {r.external_reference: i for i, r in enumerate(parsed.rows)}
    await _fill_slot(app, parsed.rows[by_ref[refs["slot_taken"]]])
    async with sim_client(app) as client:
        result = await run_upload(
            parsed, client, ledger, uploaded_by="ops", check_availability=availability
        )
    assert_every_row_once(result, len(parsed.rows))
    assert_matches_store(app, result, parsed.rows)
    res = {k: result.rows[by_ref[v]] for k, v in refs.items()}

    sku = res["unknown_service_sku"]
    assert (sku.outcome, sku.failed_step, sku.error_code) == (
        "rejected",
        "validation",
        "unknown_service_sku",
    )
    assert "NO-SUCH-SKU" in (sku.message or "")

    cov = res["postal_code_not_covered"]
    assert cov.error_code == "postal_code_not_covered"
    assert "has no active contractor zone" in (cov.message or "")
    assert cov.suggested_fix == "Check the postal code, or choose a service that is offered there."

    assert res["not_a_slot_start"].error_code == "not_a_slot_start"

    slot = res["slot_taken"]
    assert slot.outcome == "rejected"
    assert slot.needs_a_person
    assert slot.error_code == ("no_capacity" if availability else "slot_unavailable")
    assert slot.failed_step == ("validation" if availability else "booking")
    assert not slot.retry_on_rerun

    over = res["overpayment_in_file"]
    assert (over.outcome, over.failed_step, over.error_code) == (
        "rejected",
        "payment",
        "overpayment_in_file",
    )
    assert over.booking_id is not None  # the booking was created, only the payment refused
    assert (
        store(app).count_payments(
            parsed.rows[by_ref[refs["overpayment_in_file"]]].payment_reference or ""
        )
        == 0
    )

    for key in ("unknown_service_sku", "postal_code_not_covered", "not_a_slot_start", "slot_taken"):
        assert store(app).count_bookings(refs[key]) == 0

    # rejections are final for this upload: a re-run does not retry them
    async with sim_client(app) as client:
        again = await run_upload(parsed, client, ledger, uploaded_by="ops")
    assert [r.outcome for r in again.rows if r.outcome == "rejected"] == [
        r.outcome for r in result.rows if r.outcome == "rejected"
    ]
    assert again.rows[by_ref[refs["slot_taken"]]].error_code == slot.error_code

    files = write_results(result, parsed.rows, parsed.columns, tmp_path / "out")
    rejects = read_rows(files.rejects_csv)
    assert {r["external_reference"] for r in rejects} == set(refs.values())


class _FailingProjects:
    """The real client, except that creating some projects fails."""

    def __init__(self, inner: SodtrackClient, fail: dict[str, Exception]) -> None:
        self.inner = inner
        self.fail = fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create_project(self, body: m.ProjectCreate) -> Any:
        exc = self.fail.get(body.external_reference)
        if exc is not None:
            raise exc
        return await self.inner.create_project(body)


async def test_a_failed_project_skips_its_rows_naming_the_cause(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    path = await _synth(app, tmp_path / "bookings.csv", rows=30, projects=4)
    parsed = read_upload(path, "cl")
    refs = sorted({r.project_reference for r in parsed.rows if r.project_reference})
    rejected_ref, transient_ref = refs[0], refs[1]
    fail: dict[str, Exception] = {
        rejected_ref: RejectedError(
            status=422,
            code="validation_error",
            message="Invalid request",
            details=[m.ErrorDetail(field="name", issue="invalid_format")],
            operation="create_project",
        ),
        transient_ref: RetryExhausted(
            operation="create_project",
            attempts=6,
            seen=["503"] * 6,
            waited_s=10,
            elapsed_s=11,
            reason="max_attempts=6 reached",
        ),
    }
    async with sim_client(app) as inner:
        result = await run_upload(parsed, _FailingProjects(inner, fail), ledger, uploaded_by="ops")  # type: ignore[arg-type]
    assert_every_row_once(result, len(parsed.rows))
    for ref, retry in ((rejected_ref, False), (transient_ref, True)):
        rows = [r for r in result.rows if parsed.rows[r.position].project_reference == ref]
        first, *others = rows
        assert first.failed_step == "project"
        assert first.outcome == ("rejected" if not retry else "failed_transient")
        assert others
        for r in others:
            assert r.outcome == "skipped_dependency"
            assert r.failed_step == "project"
            assert f"project {ref} failed" in (r.message or "")
            assert r.retry_on_rerun is retry
        assert store(app).count_projects(ref) == 0
    assert result.status == "incomplete"

    # the transient one completes on the next run; the rejected one stays rejected
    async with sim_client(app) as client:
        again = await run_upload(parsed, client, ledger, uploaded_by="ops")
    for r in again.rows:
        pref = parsed.rows[r.position].project_reference
        if pref == transient_ref:
            assert r.outcome == "created"
        elif pref == rejected_ref:
            assert r.outcome in ("rejected", "skipped_dependency")
        else:
            assert r.outcome == "already_existed"
    assert_no_duplicates(app, [r.external_reference for r in parsed.rows], [])


async def test_cancel_cancels_only_what_the_upload_created_and_is_idempotent(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    path = await _synth(app, tmp_path / "bookings.csv", rows=12, projects=2)
    parsed = read_upload(path, "cl")
    # one booking exists before the upload: found, not created, so never cancelled
    async with sim_client(app) as client:
        first = await run_upload(
            replace(parsed, rows=parsed.rows[:1], projects={}),
            client,
            ledger,
            uploaded_by="someone else",
            new_upload="an earlier upload",
        )
        result = await run_upload(parsed, client, ledger, uploaded_by="ops")
        assert first.counts["created"] == 1
        assert result.rows[0].outcome == "already_existed"
        done = await cancel_upload(result.upload_id, client, ledger)
        assert done.cancelled == len(parsed.rows) - 1
        assert done.complete
        again = await cancel_upload(result.upload_id, client, ledger)
        assert (again.cancelled, again.already_cancelled) == (0, len(parsed.rows) - 1)
    st = store(app)
    statuses = {b.external_reference: b.status for b in st.bookings.values()}
    assert statuses[parsed.rows[0].external_reference] == "scheduled"
    assert all(statuses[r.external_reference] == "cancelled" for r in parsed.rows[1:])
    rec = ledger.get_upload(result.upload_id)
    assert rec is not None
    assert rec.status == "cancelled"
    cancel_steps = ledger.steps(result.upload_id, "cancel")
    assert len(cancel_steps) == len(parsed.rows) - 1


class _Killed(Exception):
    pass


class _DiesAfterCommit:
    """The real client, but the process "dies" right after the n-th create reached Sodtrack:
    the write is committed, the ledger still says ``in_flight`` (what ``kill -9`` leaves)."""

    def __init__(self, inner: SodtrackClient, after: int) -> None:
        self.inner = inner
        self.left = after

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if not name.startswith("create_"):
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            result = await attr(*args, **kwargs)
            self.left -= 1
            if self.left <= 0:
                raise _Killed  # not an ApiError: nothing records the answer
            return result

        return call


async def test_a_write_committed_but_not_recorded_is_reconciled_not_repeated(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    path = await _synth(app, tmp_path / "bookings.csv", rows=20, projects=3)
    parsed = read_upload(path, "cl")
    async with sim_client(app) as inner:
        with pytest.raises(BaseExceptionGroup):
            await run_upload(parsed, _DiesAfterCommit(inner, 12), ledger, uploaded_by="ops")  # type: ignore[arg-type]
    upload_id = ledger.list_uploads()[0].upload_id
    in_flight = [s for s in ledger.steps(upload_id).values() if s.state == "in_flight"]
    assert in_flight, "the simulated kill left steps in flight"
    async with sim_client(app) as client:
        result = await run_upload(parsed, client, ledger, uploaded_by="ops")
    assert_every_row_once(result, len(parsed.rows))
    assert {r.outcome for r in result.rows} <= {"created", "already_existed"}
    assert_no_duplicates(
        app,
        [r.external_reference for r in parsed.rows],
        [r.payment_reference for r in parsed.rows if r.payment_reference],
    )
    assert_matches_store(app, result, parsed.rows)
    steps = ledger.steps(upload_id)
    for s in in_flight:
        after = steps[(s.kind, s.key)]
        assert after.state == "done"
        assert after.created  # sent by this upload: counted as created (cancel undoes it)


class _FailingBookings:
    """The real client, except that creating some bookings fails transiently."""

    def __init__(self, inner: SodtrackClient, refs: set[str]) -> None:
        self.inner = inner
        self.refs = refs

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def create_booking(self, body: m.BookingCreate) -> Any:
        if body.external_reference in self.refs:
            raise RetryExhausted(
                operation="create_booking",
                attempts=6,
                seen=["503"] * 6,
                waited_s=1,
                elapsed_s=1,
                reason="max_attempts=6 reached",
            )
        return await self.inner.create_booking(body)


async def test_a_stage_waiting_on_a_transient_booking_is_completed_by_the_next_run(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    path = await _synth(app, tmp_path / "bookings.csv", rows=30, projects=5)
    parsed = read_upload(path, "cl")
    # a stage with two bookings or more; one of them fails transiently in the first run
    groups: dict[tuple[str, int], list[int]] = {}
    for i, r in enumerate(parsed.rows):
        if r.project_reference and r.stage_sequence is not None:
            groups.setdefault((r.project_reference, r.stage_sequence), []).append(i)
    key, members = next((k, v) for k, v in groups.items() if len(v) >= 2)
    failing = parsed.rows[members[-1]].external_reference
    async with sim_client(app) as inner:
        first = await run_upload(
            parsed, _FailingBookings(inner, {failing}), ledger, uploaded_by="o"
        )
    failed_row = first.rows[members[-1]]
    assert (failed_row.outcome, failed_row.failed_step) == ("failed_transient", "booking")
    assert failed_row.retry_on_rerun
    others = [first.rows[i] for i in members[:-1]]
    for res in others:  # booked and staged; a row's payment waits (checked below)
        assert res.booking_id
        assert res.stage_id
        paying = parsed.rows[res.position].payment_reference is not None
        assert res.outcome == ("skipped_dependency" if paying else "created")
    stage_id = others[0].stage_id
    assert stage_id is not None
    assert len(store(app).stages[stage_id].booking_ids) == len(members) - 1
    # the project's payments wait for every booking of the project to settle
    pays = [
        first.rows[i]
        for i, r in enumerate(parsed.rows)
        if r.project_reference == key[0] and r.payment_reference and i != members[-1]
    ]
    for p in pays:
        assert p.outcome == "skipped_dependency"
        assert failing in (p.message or "")
        assert p.retry_on_rerun

    async with sim_client(app) as client:
        second = await run_upload(parsed, client, ledger, uploaded_by="o")
    assert second.rows[members[-1]].outcome == "created"
    assert second.rows[members[-1]].stage_id == stage_id
    for i in members[:-1]:
        paying = parsed.rows[i].payment_reference is not None
        assert second.rows[i].outcome == ("created" if paying else "already_existed")
    assert len(store(app).stages[stage_id].booking_ids) == len(members)
    assert {r.outcome for r in second.rows} <= {"created", "already_existed"}
    assert_no_duplicates(
        app,
        [r.external_reference for r in parsed.rows],
        [r.payment_reference for r in parsed.rows if r.payment_reference],
    )
    assert_matches_store(app, second, parsed.rows)


class _CatalogDown:
    """The real client, except that the catalog cannot be read."""

    def __init__(self, inner: SodtrackClient) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def collect_services(self, *args: Any, **kwargs: Any) -> Any:
        raise RetryExhausted(
            operation="list_services",
            attempts=6,
            seen=["503"] * 6,
            waited_s=1,
            elapsed_s=1,
            reason="max_attempts=6 reached",
        )


async def test_checks_that_cannot_run_write_nothing_and_answer_every_row(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    path = await _synth(app, tmp_path / "bookings.csv", rows=15, projects=2)
    parsed = read_upload(path, "cl")
    before = _writes(app)
    async with sim_client(app) as inner:
        result = await run_upload(parsed, _CatalogDown(inner), ledger, uploaded_by="o")  # type: ignore[arg-type]
    assert _writes(app) == before
    assert_every_row_once(result, len(parsed.rows))
    assert {(r.outcome, r.failed_step, r.retry_on_rerun) for r in result.rows} == {
        ("failed_transient", "validation", True)
    }
    assert any("nothing was written" in n for n in result.notices)
    async with sim_client(app) as client:
        again = await run_upload(parsed, client, ledger, uploaded_by="o")
    assert again.counts["created"] == len(parsed.rows)


async def test_coverage_by_zones_list_answers_like_the_check_endpoint(app: Starlette) -> None:
    async with sim_client(app) as client:
        zones = await client.collect_coverage_zones()
        services = [s.id for s in await client.collect_services()][:6]
        codes = [*sorted({c for z in zones for c in z.postal_codes})[:10], "9999999"]
        pairs = [(c, s) for c in codes for s in services]
        by_check = await Coverage(client, "check").resolve(pairs)
        by_zones = await Coverage(client, "zones").resolve(pairs)
    assert by_check == by_zones
    assert any(a.covered for a in by_check.values())
    assert any(not a.covered for a in by_check.values())
