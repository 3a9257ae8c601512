"""Corrections (issue #10, item 4): a re-uploaded row whose reference Sodtrack already has is
compared field by field with Sodtrack's current record. What the API can change is changed
(``updated``), what it cannot is ``rejected`` naming the fields, and ``already_existed`` means
identical. Against the in-process simulator."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
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
    write_rows,
)
from sodtrack.bulkload import read_upload
from sodtrack.bulkload.answers.results import write_results
from sodtrack.bulkload.engine.cancel import cancel_upload
from sodtrack.bulkload.engine.ledger import Ledger
from sodtrack.bulkload.engine.run import run_upload
from sodtrack.bulkload.outcomes import UploadResult
from sodtrack.bulkload.run import EXIT_OK, EXIT_REJECTED, exit_code_for
from sodtrack.bulkload.synth import synthesize_upload
from sodtrack.client import Credentials, RetryExhausted, SodtrackClient
from sodtrack.client.errors import RejectedError
from sodtrack.contract import models as m

TZ = ZoneInfo("America/Santiago")


async def _load(app: Starlette, ledger: Ledger, path: Path, **kw: Any) -> UploadResult:
    parsed = read_upload(path, "cl")
    assert all(r.is_valid for r in parsed.rows), [r.errors for r in parsed.rows]
    async with sim_client(app) as client:
        result = await run_upload(parsed, client, ledger, uploaded_by="ops", **kw)
    assert_every_row_once(result, len(parsed.rows))
    return result


async def _first_load(
    app: Starlette, ledger: Ledger, tmp_path: Path, rows: int = 12, projects: int = 2
) -> list[dict[str, str]]:
    path = tmp_path / "first.csv"
    async with sim_client(app) as client:
        await synthesize_upload(
            client, path, country="cl", rows=rows, projects=projects, today=SIM_TODAY
        )
    result = await _load(app, ledger, path)
    assert result.counts["created"] == rows, result.counts
    return read_rows(path)


def _writes(app: Starlette) -> dict[str, int]:
    """Records committed by the simulator, by type (tokens are not records)."""
    writes = app.state.sim.counters_snapshot()["writes"]
    return {k: v for k, v in writes.items() if k != "token"}


def _booking(app: Starlette, ref: str) -> dict[str, Any]:
    st = store(app)
    return st.bookings[st.booking_refs[ref]].to_dict()


def _project(app: Starlette, ref: str) -> Any:
    return next(p for p in store(app).projects.values() if p.external_reference == ref)


def _local(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M").replace(tzinfo=TZ)


def _instant(wire: str) -> datetime:
    return datetime.fromisoformat(wire.replace("Z", "+00:00"))


async def _free_start(app: Starlette, row: dict[str, str], taken: set[str]) -> str:
    """Another slot start with capacity for the row's service and postal code (asked live)."""
    async with sim_client(app) as client:
        services = {s.sku: s for s in await client.collect_services()}
        service = services[row["service_sku"]]
        variant_id = None
        if row["variant_sku"]:
            variants = await client.collect_variants(service.id)
            variant_id = next(v.id for v in variants if v.sku == row["variant_sku"])
        day = _local(row["scheduled_start"]).date() + timedelta(days=1)
        slots = await client.get_availability(
            service.id, row["postal_code"], day, day + timedelta(days=6), variant_id
        )
    for slot in slots.data:
        if slot.capacity < 1:
            continue
        text = slot.start.astimezone(TZ).strftime("%Y-%m-%d %H:%M")
        if text != row["scheduled_start"] and text not in taken:
            taken.add(text)
            return text
    raise AssertionError("no free slot in a week")


def _outcomes(result: UploadResult, path: Path) -> dict[str, str]:
    parsed = read_upload(path, "cl")
    return {parsed.rows[r.position].external_reference: r.outcome for r in result.rows}


async def test_identical_reupload_is_already_existed(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """(a) Another file (other bytes: rows reordered) with the same values: nothing changes."""
    rows = await _first_load(app, ledger, tmp_path)
    path = write_rows(tmp_path / "again.csv", list(reversed(rows)))
    writes = _writes(app)
    result = await _load(app, ledger, path)
    assert result.counts["already_existed"] == len(rows), result.counts
    assert result.counts["updated"] == 0
    assert _writes(app) == writes


async def test_patchable_changes_are_applied_then_rerun_is_already_existed(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """(b) Changed start, notes and project name → ``updated``, Sodtrack holds the new values;
    the same corrected upload again → ``already_existed``."""
    rows = await _first_load(app, ledger, tmp_path)
    plain = [r for r in rows if not r["project_reference"]]
    in_project = [r for r in rows if r["project_reference"]]
    new_start = await _free_start(app, plain[0], set())
    plain[0]["scheduled_start"] = new_start
    plain[1]["notes"] = "Llamar antes de llegar"
    pref = in_project[0]["project_reference"]
    for r in in_project:
        if r["project_reference"] == pref:
            r["project_name"] = "Remodelación corregida"
    path = write_rows(tmp_path / "corrected.csv", rows)

    result = await _load(app, ledger, path)
    out = _outcomes(result, path)
    assert out[plain[0]["external_reference"]] == "updated"
    assert out[plain[1]["external_reference"]] == "updated"
    for r in in_project:
        want = "updated" if r["project_reference"] == pref else "already_existed"
        assert out[r["external_reference"]] == want, r["external_reference"]
    for r in plain[2:]:
        assert out[r["external_reference"]] == "already_existed"
    assert result.status == "completed"
    assert exit_code_for(result) == EXIT_OK  # updated counts like created
    parsed = read_upload(path, "cl")
    files = write_results(result, parsed.rows, parsed.columns, tmp_path / "out")
    assert files.rejects == 0
    written = {r["input: external_reference"]: r for r in read_rows(files.results_csv)}
    moved_row = written[plain[0]["external_reference"]]
    assert (moved_row["outcome"], moved_row["booking_step"]) == ("updated", "updated")
    summary = json.loads(files.summary_json.read_text(encoding="utf-8"))
    assert "updated" in json.dumps(summary)

    moved = _booking(app, plain[0]["external_reference"])
    assert _instant(moved["scheduled_start"]) == _local(new_start)
    assert _booking(app, plain[1]["external_reference"])["notes"] == "Llamar antes de llegar"
    assert _project(app, pref).name == "Remodelación corregida"
    assert_no_duplicates(app, [r["external_reference"] for r in rows], [])

    writes = _writes(app)
    again = await _load(app, ledger, path)
    assert again.counts["already_existed"] == len(rows), again.counts
    assert again.requests == 0, again.client_stats  # the ledger knows: nothing to ask
    assert _writes(app) == writes


async def test_unpatchable_changes_are_rejected_naming_the_fields(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """(c) Changed customer name, city, SKU → ``rejected`` naming each field with both values;
    Sodtrack keeps its record as it was."""
    rows = await _first_load(app, ledger, tmp_path)
    plain = [r for r in rows if not r["project_reference"]]
    before = {r["external_reference"]: _booking(app, r["external_reference"]) for r in plain}
    old_name = plain[0]["customer_first_name"]
    plain[0]["customer_first_name"] = old_name + "x"
    plain[0]["city"] = "Otra Ciudad"
    plain[0]["notes"] = "patchable, but not applied: the row is refused whole"
    other_sku = next(r["service_sku"] for r in rows if r["service_sku"] != plain[1]["service_sku"])
    plain[1]["service_sku"] = other_sku
    plain[1]["variant_sku"] = ""
    path = write_rows(tmp_path / "corrected.csv", rows)

    result = await _load(app, ledger, path)
    parsed = read_upload(path, "cl")
    by_ref = {parsed.rows[r.position].external_reference: r for r in result.rows}
    first = by_ref[plain[0]["external_reference"]]
    assert first.outcome == "rejected"
    assert first.failed_step == "booking"
    assert first.error_code == "correction_not_allowed"
    msg = first.message or ""
    assert f"customer_first_name ('{old_name}' there, '{old_name}x' here)" in msg
    assert "city" in msg
    assert first.booking_id == before[plain[0]["external_reference"]]["id"]
    second = by_ref[plain[1]["external_reference"]]
    assert second.outcome == "rejected"
    assert "service_sku" in (second.message or "")
    for r in plain[:2]:
        assert _booking(app, r["external_reference"]) == before[r["external_reference"]]
    assert result.status == "completed_with_errors"
    assert exit_code_for(result) == EXIT_REJECTED
    files = write_results(result, parsed.rows, parsed.columns, tmp_path / "out")
    assert files.rejects == 2
    rejects = read_rows(files.rejects_csv)
    assert {r["external_reference"] for r in rejects} == {
        plain[0]["external_reference"],
        plain[1]["external_reference"],
    }


async def _correct_mixed(
    app: Starlette, rows: list[dict[str, str]]
) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(d) One row per kind of change; returns the rows and the outcome each should get."""
    plain = [r for r in rows if not r["project_reference"]]
    expect = {r["external_reference"]: "already_existed" for r in rows}
    plain[0]["notes"] = "Portón verde"
    expect[plain[0]["external_reference"]] = "updated"
    plain[1]["scheduled_start"] = await _free_start(app, plain[1], set())
    expect[plain[1]["external_reference"]] = "updated"
    plain[2]["customer_last_name"] = "Otro"
    expect[plain[2]["external_reference"]] = "rejected"
    plain[3]["postal_code"] = plain[3]["postal_code"][:-1] + (
        "1" if plain[3]["postal_code"][-1] != "1" else "2"
    )
    plain[3]["notes"] = "and a note"
    expect[plain[3]["external_reference"]] = "rejected"
    return rows, expect


async def test_mixed_corrections_each_row_its_own_answer(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """(d) Identical, patchable and refused rows in one file: each its own outcome, and the
    store holds exactly the applied changes."""
    rows = await _first_load(app, ledger, tmp_path, rows=14, projects=2)
    before = {r["external_reference"]: _booking(app, r["external_reference"]) for r in rows}
    rows, expect = await _correct_mixed(app, rows)
    path = write_rows(tmp_path / "corrected.csv", rows)
    result = await _load(app, ledger, path)
    assert _outcomes(result, path) == expect
    assert result.counts["updated"] == 2
    assert result.counts["rejected"] == 2
    for ref, outcome in expect.items():
        after = _booking(app, ref)
        if outcome != "updated":
            assert after == before[ref], ref
        else:
            assert after["updated_at"] > before[ref]["updated_at"]


async def test_corrections_learnt_from_the_409_without_the_ledger(
    app: Starlette, tmp_path: Path
) -> None:
    """A ledger that never saw the first upload (another state database): the create answers
    409, the client reads the record back, and the comparison decides all the same."""
    with ledger_for("sqlite", tmp_path / "first") as first:
        rows = await _first_load(app, first, tmp_path)
    before = {r["external_reference"]: _booking(app, r["external_reference"]) for r in rows}
    rows, expect = await _correct_mixed(app, rows)
    path = write_rows(tmp_path / "corrected.csv", rows)
    with ledger_for("sqlite", tmp_path / "second") as second:
        result = await _load(app, second, path)
        assert _outcomes(result, path) == expect
        by_ref = {r["external_reference"]: r for r in rows}
        for ref, outcome in expect.items():
            if outcome == "rejected":
                assert _booking(app, ref) == before[ref]
        notes = by_ref[next(k for k, v in expect.items() if v == "updated")]["notes"]
        assert notes in {b["notes"] for b in (_booking(app, k) for k in expect)}
        again = await _load(app, second, path)
        assert again.counts["already_existed"] == len(rows) - 2, again.counts
        assert again.counts["rejected"] == 2
    assert_no_duplicates(app, list(expect), [])


async def test_dry_run_reports_would_update_and_refusals_and_writes_nothing(
    app: Starlette, tmp_path: Path
) -> None:
    """The dry run finds existing records by reference (a fresh ledger knows nothing), says
    ``would_update`` / ``rejected``, and writes nothing; the real run then agrees."""
    with ledger_for("sqlite", tmp_path / "first") as first:
        rows = await _first_load(app, first, tmp_path)
    rows, expect = await _correct_mixed(app, rows)
    path = write_rows(tmp_path / "corrected.csv", rows)
    writes = _writes(app)
    with ledger_for("sqlite", tmp_path / "second") as second:
        dry = await _load(app, second, path, dry_run=True)
        assert _writes(app) == writes
        want_dry = {k: ("would_update" if v == "updated" else v) for k, v in expect.items()}
        assert _outcomes(dry, path) == want_dry
        refused = next(r for r in dry.rows if r.outcome == "rejected")
        assert refused.error_code == "correction_not_allowed"
        real = await _load(app, second, path)
        assert _outcomes(real, path) == expect


async def test_a_cancelled_booking_is_never_the_same(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """A reference whose booking was cancelled in Sodtrack cannot be loaded again under it."""
    rows = await _first_load(app, ledger, tmp_path)
    plain = next(r for r in rows if not r["project_reference"])
    ref = plain["external_reference"]
    async with sim_client(app) as client:
        await client.cancel_booking(_booking(app, ref)["id"], "customer moved")
    path = write_rows(tmp_path / "again.csv", list(reversed(rows)))
    result = await _load(app, ledger, path)
    out = _outcomes(result, path)
    assert out[ref] == "rejected"
    row = next(r for r in result.rows if r.outcome == "rejected")
    assert "cancelled" in (row.message or "")
    assert _booking(app, ref)["status"] == "cancelled"


# ---------------------------------------------------------------- generated corpus

_UNPATCHABLE = (
    "customer_first_name",
    "customer_last_name",
    "customer_email",
    "address_line1",
    "city",
    "region",
    "postal_code",
    "service_sku",
)
_PLAIN_MENU = ("notes", "scheduled_start", *_UNPATCHABLE)
_PROJECT_ROW_MENU = ("notes", "scheduled_start", "service_sku")
_BOOKING_FIELDS: dict[str, Callable[[dict[str, Any]], object]] = {
    "notes": lambda b: b["notes"],
    "scheduled_start": lambda b: _instant(b["scheduled_start"]),
    "customer_first_name": lambda b: b["customer"]["first_name"],
    "customer_last_name": lambda b: b["customer"]["last_name"],
    "customer_email": lambda b: b["customer"]["email"],
    "address_line1": lambda b: b["address"]["line1"],
    "city": lambda b: b["address"]["city"],
    "region": lambda b: b["address"]["region"],
    "postal_code": lambda b: b["address"]["postal_code"],
}


def _sodtrack_view(app: Starlette, ref: str) -> dict[str, object]:
    b = _booking(app, ref)
    return {f: get(b) for f, get in _BOOKING_FIELDS.items()}


def _row_view(row: dict[str, str]) -> dict[str, object]:
    return {
        f: (_local(row[f]) if f == "scheduled_start" else (row[f] or None)) for f in _BOOKING_FIELDS
    }


async def _changed(
    app: Starlette,
    rng: random.Random,
    row: dict[str, str],
    base: dict[str, str],
    field: str,
    skus: list[str],
    taken: set[str],
    n: int,
) -> str:
    old = row[field]
    if field == "notes":
        return f"nota {n}" if old != f"nota {n}" else ""
    if field == "scheduled_start":
        # Asked with Sodtrack's service and postal code (other fields may change too).
        return await _free_start(app, {**base, "scheduled_start": old}, taken)
    if field == "customer_email":
        return f"changed{n}@example.com"
    if field == "postal_code":
        return f"{(int(old) + rng.randint(1, 999)) % 10_000_000:07d}"
    if field == "service_sku":
        return rng.choice([s for s in skus if s != old])
    return old + rng.choice("xyz")


@pytest.mark.parametrize("seed", [7, 2026])
async def test_generated_corrections_over_a_loaded_upload(
    app: Starlette, ledger: Ledger, tmp_path: Path, seed: int
) -> None:
    """Seeded rounds of random field changes over a loaded upload (plain rows: any field;
    project rows: start, notes, SKU, and the project's name). Each round is a new file; each
    row's outcome follows from its set of changed fields (any field the API cannot change →
    ``rejected``; only start/notes/project name → ``updated``; none → ``already_existed``),
    and afterwards Sodtrack holds exactly the accepted values (refused rows untouched). The
    same file again → nothing changes."""
    rng = random.Random(seed)
    rows = await _first_load(app, ledger, tmp_path, rows=16, projects=2)
    skus = sorted({r["service_sku"] for r in rows})
    taken: set[str] = set()
    accepted = {r["external_reference"]: dict(r) for r in rows}
    names = {r["project_reference"]: r["project_name"] for r in rows if r["project_reference"]}
    n = 0
    seen: set[str] = set()
    for round_no in range(3):
        current = [dict(accepted[r["external_reference"]]) for r in rows]
        expect: dict[str, str] = {}
        renamed: set[str] = set()
        for pref in sorted(names):
            # The project's name is the project's: renamed whatever becomes of its rows.
            if rng.random() < 0.5:
                renamed.add(pref)
                names[pref] = f"Proyecto renombrado {round_no}"
        for r in current:
            if r["project_reference"]:
                r["project_name"] = names[r["project_reference"]]
        for r in current:
            menu = _PROJECT_ROW_MENU if r["project_reference"] else _PLAIN_MENU
            fields = rng.sample(menu, k=rng.choice([0, 0, 1, 1, 2, 3]))
            for f in fields:
                n += 1
                r[f] = await _changed(
                    app, rng, r, accepted[r["external_reference"]], f, skus, taken, n
                )
                if f == "service_sku":
                    r["variant_sku"] = ""
            refused = any(f in _UNPATCHABLE for f in fields)
            patched = bool(fields) or r["project_reference"] in renamed
            expect[r["external_reference"]] = (
                "rejected" if refused else "updated" if patched else "already_existed"
            )
        path = write_rows(tmp_path / f"round{round_no}.csv", rng.sample(current, len(current)))
        result = await _load(app, ledger, path)
        assert _outcomes(result, path) == expect, f"seed {seed} round {round_no}"
        seen |= set(expect.values())
        for r in current:
            ref = r["external_reference"]
            if expect[ref] != "rejected":
                accepted[ref] = r
            assert _sodtrack_view(app, ref) == _row_view(accepted[ref]), ref
            if r["project_reference"]:
                assert _project(app, r["project_reference"]).name == names[r["project_reference"]]
        writes = _writes(app)
        again = await _load(app, ledger, path)
        assert again.counts["updated"] == 0
        assert again.counts["rejected"] == sum(v == "rejected" for v in expect.values())
        assert _writes(app) == writes
    assert seen == {"already_existed", "updated", "rejected"}, "the corpus missed a class"
    assert_no_duplicates(app, list(accepted), [])


class _AnswerLost(SodtrackClient):
    """The real client, whose booking PATCH commits and then loses its answer (as a dropped
    connection after the server committed would, once the client's retries ran out)."""

    async def update_booking(self, booking_id: str, body: m.BookingUpdate) -> m.Booking:
        await super().update_booking(booking_id, body)
        raise RetryExhausted(
            operation="update_booking",
            attempts=4,
            seen=["ReadTimeout"],
            waited_s=0.0,
            elapsed_s=0.0,
            reason="answer lost",
        )


async def test_an_update_whose_answer_was_lost_is_settled_by_the_rerun(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """The update step is under the in-flight protocol: a lost answer leaves the row
    ``failed_transient`` (re-run), the ledger keeps the record's id and that it is not ours;
    the re-run reads the record, finds the change applied and answers ``updated``; and
    ``cancel`` leaves the booking alone (this upload did not create it)."""
    rows = await _first_load(app, ledger, tmp_path)
    plain = next(r for r in rows if not r["project_reference"])
    plain["notes"] = "Timbre no funciona"
    path = write_rows(tmp_path / "corrected.csv", rows)
    parsed = read_upload(path, "cl")
    async with _client_of(_AnswerLost, app) as client:
        first = await run_upload(parsed, client, ledger, uploaded_by="ops")
    row = next(r for r in first.rows if r.outcome != "already_existed")
    assert (row.outcome, row.failed_step, row.retry_on_rerun) == (
        "failed_transient",
        "booking",
        True,
    )
    ref = plain["external_reference"]
    step = ledger.get_step(first.upload_id, "booking", ref)
    assert step is not None
    assert step.sodtrack_id == _booking(app, ref)["id"]
    assert step.data.get("existing") is True
    assert _booking(app, ref)["notes"] == "Timbre no funciona"  # it was committed

    again = await _load(app, ledger, path)
    assert _outcomes(again, path)[ref] == "updated"
    assert again.counts["updated"] == 1
    done = ledger.get_step(again.upload_id, "booking", ref)
    assert done is not None
    assert done.state == "done"
    assert not done.created
    async with sim_client(app) as client:
        await cancel_upload(again.upload_id, client, ledger)
    assert _booking(app, ref)["status"] != "cancelled"


async def _fill(app: Starlette, row: dict[str, str], start: str) -> None:
    """Someone else books every contractor of the row's zone at ``start``."""
    async with sim_client(app) as client:
        services = {s.sku: s for s in await client.collect_services()}
        for i in range(50):
            try:
                await client.create_booking(
                    m.BookingCreate(
                        external_reference=f"OTHER-{row['external_reference']}-{i}",
                        service_id=services[row["service_sku"]].id,
                        scheduled_start=_local(start),
                        customer=m.CustomerIn(first_name="X", last_name="Y", email="x@y.cl"),
                        address=m.AddressIn(
                            line1="a",
                            city="c",
                            region="r",
                            postal_code=row["postal_code"],
                            country="cl",
                        ),
                    )
                )
            except RejectedError as exc:
                if exc.code != "slot_unavailable":
                    raise
                return
    raise AssertionError("the slot never filled")


async def test_a_new_start_without_capacity_refuses_the_correction(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """A changed start passes the slot checks again: with availability checked (the dry
    run's default) a full slot is refused before writing; without, Sodtrack's
    ``slot_unavailable`` to the PATCH is the answer (a person decides), with the message; the
    booking keeps its start either way."""
    rows = await _first_load(app, ledger, tmp_path)
    a, b = [r for r in rows if not r["project_reference"]][:2]
    full = await _free_start(app, b, set())
    await _fill(app, b, full)
    b["scheduled_start"] = full
    path = write_rows(tmp_path / "corrected.csv", rows)
    before = _booking(app, b["external_reference"])

    dry = await _load(app, ledger, path, dry_run=True, check_availability=True)
    refused = next(r for r in dry.rows if r.outcome == "rejected")
    assert refused.error_code == "no_capacity"
    assert "changing its scheduled_start was refused" in (refused.message or "")

    result = await _load(app, ledger, path)
    row = next(r for r in result.rows if r.outcome == "rejected")
    assert row.error_code == "slot_unavailable"
    assert row.needs_a_person
    assert "scheduled_start" in (row.message or "")
    assert row.booking_id == before["id"]
    assert _booking(app, b["external_reference"]) == before
    assert _outcomes(result, path)[a["external_reference"]] == "already_existed"


@pytest.mark.parametrize("dry_run", [True, False])
async def test_a_new_start_that_is_never_a_slot_is_refused_before_writing(
    app: Starlette, ledger: Ledger, tmp_path: Path, dry_run: bool
) -> None:
    """A Sunday (or a half hour) is refused by the loader itself, in the dry run and in the
    real run alike, naming the correction; no PATCH is sent."""
    rows = await _first_load(app, ledger, tmp_path)
    b = next(r for r in rows if not r["project_reference"])
    b["scheduled_start"] = "2026-07-05 10:00"  # a Sunday
    path = write_rows(tmp_path / "corrected.csv", rows)
    writes = _writes(app)
    result = await _load(app, ledger, path, dry_run=dry_run)
    row = next(r for r in result.rows if r.outcome == "rejected")
    assert row.error_code == "not_a_slot_start"
    assert (row.message or "").startswith(f"Sodtrack has booking {b['external_reference']}")
    assert _writes(app) == writes


async def test_a_correction_the_create_checks_would_refuse_is_compared_not_refused_as_new(
    app: Starlette, tmp_path: Path
) -> None:
    """Without the ledger's memory, a row whose new SKU the create checks refuse is looked up
    by reference: the answer names the correction (both SKUs), not an unknown SKU."""
    with ledger_for("sqlite", tmp_path / "first") as first:
        rows = await _first_load(app, first, tmp_path)
    plain = next(r for r in rows if not r["project_reference"])
    old_sku = plain["service_sku"]
    plain["service_sku"] = "NO-SUCH-SKU"
    plain["variant_sku"] = ""
    path = write_rows(tmp_path / "corrected.csv", rows)
    with ledger_for("sqlite", tmp_path / "second") as second:
        result = await _load(app, second, path)
    row = next(r for r in result.rows if r.outcome == "rejected")
    assert row.error_code == "correction_not_allowed"
    assert f"service_sku ('{old_sku}' there, 'NO-SUCH-SKU' here)" in (row.message or "")
    assert result.counts["already_existed"] == len(rows) - 1


async def test_stage_names_are_updated_and_payment_changes_refused(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """A stage's new name is PATCHed (``updated``); a payment whose amount or method differs
    from Sodtrack's is refused naming those fields (the booking stays as it was)."""
    rows = await _first_load(app, ledger, tmp_path, rows=14, projects=3)
    staged = next(r for r in rows if r["stage_sequence"])
    key = (staged["project_reference"], staged["stage_sequence"])
    stage_rows = [r for r in rows if (r["project_reference"], r["stage_sequence"]) == key]
    for r in stage_rows:
        r["stage_name"] = "Etapa renombrada"
    paid = next(r for r in rows if r["payment_reference"] and r not in stage_rows)
    old_amount = paid["payment_amount"]
    paid["payment_amount"] = str(int(old_amount) - 1)
    paid["payment_method"] = "cash" if paid["payment_method"] != "cash" else "card"
    path = write_rows(tmp_path / "corrected.csv", rows)
    result = await _load(app, ledger, path)
    out = _outcomes(result, path)
    for r in stage_rows:
        assert out[r["external_reference"]] == "updated"
    stage = next(
        s
        for s in store(app).stages.values()
        if s.sequence == int(staged["stage_sequence"])
        and s.project_id == _project(app, staged["project_reference"]).id
    )
    assert stage.name == "Etapa renombrada"
    refused = next(r for r in result.rows if r.outcome == "rejected")
    assert out[paid["external_reference"]] == "rejected"
    assert refused.failed_step == "payment"
    assert refused.error_code == "correction_not_allowed"
    msg = refused.message or ""
    assert f"payment_amount ('{old_amount}' there, '{int(old_amount) - 1}' here)" in msg
    assert "payment_method" in msg
    pay = next(
        p for p in store(app).payments.values() if p.external_reference == paid["payment_reference"]
    )
    assert pay.wire["amount"] == old_amount


def _client_of(cls: type[SodtrackClient], app: Starlette) -> SodtrackClient:
    base = sim_client(app)
    return cls(
        base._http,  # the same in-process transport
        base_url="http://sim",
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        owns_http=True,
    )


class _FirstReadsTimeOut(SodtrackClient):
    """The real client, whose first two booking reads by id time out (every retry spent)."""

    failures = 2

    async def get_booking(self, booking_id: str) -> m.Booking:
        if self.failures > 0:
            self.failures -= 1
            raise RetryExhausted(
                operation="get_booking",
                attempts=4,
                seen=["503"],
                waited_s=0.0,
                elapsed_s=0.0,
                reason="unavailable",
            )
        return await super().get_booking(booking_id)


async def test_a_lookup_that_fails_concerns_only_its_row(
    app: Starlette, ledger: Ledger, tmp_path: Path
) -> None:
    """Reading an existing record can fail (transiently) for one row: that row falls back to
    the write (the 409 names the record, then the same comparison); the others are not
    affected, and every correction still gets its answer."""
    rows = await _first_load(app, ledger, tmp_path)
    rows, expect = await _correct_mixed(app, rows)
    path = write_rows(tmp_path / "corrected.csv", rows)
    parsed = read_upload(path, "cl")
    async with _client_of(_FirstReadsTimeOut, app) as client:
        result = await run_upload(parsed, client, ledger, uploaded_by="ops")
        assert isinstance(client, _FirstReadsTimeOut)
        assert client.failures == 0
    assert _outcomes(result, path) == expect
