"""Projects, stages, payments, documents and tasks."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from sodtrack.contract.limits import DOCUMENT_MAX_BYTES, STAGE_CHECKLIST
from sodtrack.simulator.sim import Simulator

from .helpers import bookable, booking_body, error_of, free_slot, issues, project_body, url

PDF = b"%PDF-1.7\n%fake but well-started\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


async def _project_with_bookings(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str], n: int = 3
) -> tuple[str, list[dict[str, Any]]]:
    created = await http.post(url("create_project"), json=project_body("PWB-1"), headers=auth)
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    bookings = []
    for i in range(n):
        place = bookable(sim, requires_project=True, skip=i)
        start = free_slot(sim, place, days_ahead=2 + i)
        body = booking_body(place, start, ref=f"PB-{i}", project_id=project_id)
        response = await http.post(url("create_booking"), json=body, headers=auth)
        assert response.status_code == 201, response.text
        bookings.append(response.json())
    return project_id, bookings


async def test_project_totals_follow_bookings(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    created = await http.post(url("create_project"), json=project_body(), headers=auth)
    body = created.json()
    assert body["status"] == "open"
    assert body["currency"] == "CLP"
    assert body["total_amount"] == "0"
    assert body["paid_amount"] == "0"
    dup = await http.post(url("create_project"), json=project_body(name="Other"), headers=auth)
    assert dup.status_code == 409
    assert error_of(dup)["existing_id"] == body["id"]
    project_id, bookings = await _project_with_bookings(http, sim, auth)
    detail = await http.get(url("get_project", project_id=project_id), headers=auth)
    total = sum(int(b["price"]) for b in bookings)
    assert detail.json()["total_amount"] == str(total)
    assert detail.json()["stages"] == []
    await http.post(
        url("cancel_booking", booking_id=bookings[0]["id"]), json={"reason": "x"}, headers=auth
    )
    detail = await http.get(url("get_project", project_id=project_id), headers=auth)
    assert detail.json()["total_amount"] == str(total - int(bookings[0]["price"]))
    renamed = await http.patch(
        url("update_project", project_id=project_id), json={"name": "New"}, headers=auth
    )
    assert renamed.json()["name"] == "New"
    assert renamed.json()["updated_at"] > detail.json()["updated_at"]
    empty = await http.patch(url("update_project", project_id=project_id), json={}, headers=auth)
    assert empty.status_code == 422
    missing = await http.get(url("get_project", project_id="prj_nope"), headers=auth)
    assert missing.status_code == 404


async def test_stage_rules_in_order(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    project_id, bookings = await _project_with_bookings(http, sim, auth)
    ids = [b["id"] for b in bookings]
    path = url("create_stage", project_id=project_id)
    stage = await http.post(
        path, json={"name": "Demo", "sequence": 1, "booking_ids": ids[:1]}, headers=auth
    )
    assert stage.status_code == 201, stage.text
    stage_id = stage.json()["id"]
    assert stage.json()["status"] == "pending"
    assert stage.json()["booking_ids"] == ids[:1]
    # the booking's stage_id follows, with a later updated_at
    booking = await http.get(url("get_booking", booking_id=ids[0]), headers=auth)
    assert booking.json()["stage_id"] == stage_id
    assert booking.json()["updated_at"] > bookings[0]["updated_at"]
    # checklist
    tasks = await http.get(url("list_tasks", project_id=project_id), headers=auth)
    assert [t["title"] for t in tasks.json()["data"]] == list(STAGE_CHECKLIST)
    assert {t["status"] for t in tasks.json()["data"]} == {"todo"}
    # 409 duplicate_stage first, whatever the bookings say
    dup = await http.post(
        path, json={"name": "x", "sequence": 1, "booking_ids": ["bkg_x"]}, headers=auth
    )
    assert error_of(dup)["code"] == "duplicate_stage"
    assert error_of(dup)["existing_id"] == stage_id
    # then not_in_project / booking_cancelled, all listed
    foreign = next(iter(sim.client().bookings))
    await http.post(url("cancel_booking", booking_id=ids[2]), json={"reason": "x"}, headers=auth)
    bad = await http.post(
        path,
        json={"name": "x", "sequence": 2, "booking_ids": [foreign, ids[2], ids[0]]},
        headers=auth,
    )
    assert issues(bad) == {
        ("booking_ids[0]", "not_in_project"),
        ("booking_ids[1]", "booking_cancelled"),
    }
    # then booking_already_staged, naming the holder
    held = await http.post(
        path, json={"name": "x", "sequence": 2, "booking_ids": [ids[0]]}, headers=auth
    )
    assert held.status_code == 409
    assert error_of(held)["code"] == "booking_already_staged"
    assert error_of(held)["existing_id"] == stage_id
    # PATCH replaces the set with the same checks
    stage_path = url("update_stage", project_id=project_id, stage_id=stage_id)
    moved = await http.patch(
        stage_path, json={"booking_ids": [ids[1]], "status": "active"}, headers=auth
    )
    assert moved.json()["booking_ids"] == [ids[1]]
    assert moved.json()["status"] == "active"
    left = await http.get(url("get_booking", booking_id=ids[0]), headers=auth)
    assert left.json()["stage_id"] is None
    detail = await http.get(url("get_project", project_id=project_id), headers=auth)
    assert [s["id"] for s in detail.json()["stages"]] == [stage_id]
    assert sim.client().count_stages(project_id, 1) == 1


async def test_payments_checks_in_order(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    project_id, bookings = await _project_with_bookings(http, sim, auth, n=1)
    total = int(bookings[0]["price"])
    path = url("create_payment", project_id=project_id)

    def pay(ref: str, amount: Any, **extra: Any) -> dict[str, Any]:
        return {
            "external_reference": ref,
            "amount": amount,
            "currency": "CLP",
            "method": "card",
            "paid_at": "2026-06-10T09:00:00-04:00",
            **extra,
        }

    shape = await http.post(path, json=pay("P 1", 100, method="cheque"), headers=auth)
    assert issues(shape) == {
        ("external_reference", "invalid_format"),
        ("amount", "invalid_type"),
        ("method", "invalid_format"),
    }
    first = await http.post(path, json=pay("PAY-1", "1000"), headers=auth)
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == "1000"
    assert first.json()["paid_at"] == "2026-06-10T13:00:00.000000Z"
    # 409 before currency
    dup = await http.post(path, json=pay("PAY-1", "1", currency="USD"), headers=auth)
    assert error_of(dup)["existing_id"] == first.json()["id"]
    # currency before minor units
    wrong = await http.post(path, json=pay("PAY-2", "1.50", currency="USD"), headers=auth)
    assert error_of(wrong)["code"] == "currency_mismatch"
    # minor units, > 0
    for amount in ("1.50", "0", "-5"):
        response = await http.post(path, json=pay("PAY-2", amount), headers=auth)
        assert error_of(response)["code"] == "validation_error", amount
    # stage belongs
    stage = await http.post(path, json=pay("PAY-2", "10", stage_id="stg_nope"), headers=auth)
    assert issues(stage) == {("stage_id", "not_found")}
    # overpayment last
    over = await http.post(path, json=pay("PAY-2", str(total)), headers=auth)
    assert error_of(over)["code"] == "overpayment"
    rest = await http.post(path, json=pay("PAY-2", str(total - 1000)), headers=auth)
    assert rest.status_code == 201
    detail = await http.get(url("get_project", project_id=project_id), headers=auth)
    assert detail.json()["paid_amount"] == str(total)
    listed = await http.get(url("list_payments", project_id=project_id), headers=auth)
    assert [p["external_reference"] for p in listed.json()["data"]] == ["PAY-1", "PAY-2"]
    assert sim.client().count_payments("PAY-1") == 1


async def test_documents(http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]) -> None:
    project_id, _ = await _project_with_bookings(http, sim, auth, n=0)
    path = url("upload_document", project_id=project_id)
    created = await http.post(
        path,
        files={"file": ("quote.pdf", PDF, "application/pdf")},
        data={"kind": "quote", "external_reference": "DOC-1"},
        headers=auth,
    )
    assert created.status_code == 201, created.text
    doc = created.json()
    assert doc["sha256"] == hashlib.sha256(PDF).hexdigest()
    assert doc["size_bytes"] == len(PDF)
    assert doc["kind"] == "quote"
    assert doc["filename"] == "quote.pdf"
    assert doc["stage_id"] is None
    again = await http.post(
        path, files={"file": ("x.png", PNG)}, data={"external_reference": "DOC-1"}, headers=auth
    )
    assert again.status_code == 409
    assert error_of(again)["existing_id"] == doc["id"]
    text = await http.post(path, files={"file": ("a.txt", b"hello")}, headers=auth)
    assert issues(text) == {("file", "invalid_format")}
    plain = await http.post(path, files={"file": ("a.png", PNG)}, headers=auth)
    assert plain.json()["kind"] == "other"
    assert plain.json()["external_reference"] is None
    odd = await http.post(
        path, files={"file": ("a.png", PNG)}, data={"kind": "selfie", "colour": "x"}, headers=auth
    )
    assert issues(odd) == {("kind", "invalid_format"), ("colour", "unknown_field")}
    none = await http.post(path, files={"kind": (None, "photo")}, headers=auth)
    assert issues(none) == {("file", "required")}
    big = await http.post(
        path, files={"file": ("big.pdf", b"%PDF-" + b"0" * DOCUMENT_MAX_BYTES)}, headers=auth
    )
    assert big.status_code == 413
    assert error_of(big)["code"] == "payload_too_large"
    for wrong in ({"json": {"file": "x"}}, {"data": {"kind": "photo"}}):
        response = await http.post(path, headers=auth, **wrong)  # type: ignore[arg-type]
        assert error_of(response)["code"] == "malformed_request"
    listed = await http.get(url("list_documents", project_id=project_id), headers=auth)
    assert listed.json()["meta"]["total_items"] == 2


async def test_tasks(http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]) -> None:
    project_id, _ = await _project_with_bookings(http, sim, auth, n=0)
    stage_path = url("create_stage", project_id=project_id)
    one = await http.post(stage_path, json={"name": "A", "sequence": 1}, headers=auth)
    two = await http.post(stage_path, json={"name": "B", "sequence": 2}, headers=auth)
    all_tasks = await http.get(url("list_tasks", project_id=project_id), headers=auth)
    assert all_tasks.json()["meta"]["total_items"] == 8
    only_two = await http.get(
        url("list_tasks", project_id=project_id),
        params={"stage_id": two.json()["id"]},
        headers=auth,
    )
    assert {t["stage_id"] for t in only_two.json()["data"]} == {two.json()["id"]}
    task = only_two.json()["data"][0]
    path = url("update_task", project_id=project_id, task_id=task["id"])
    done = await http.patch(path, json={"status": "done", "notes": "ok"}, headers=auth)
    assert done.json()["status"] == "done"
    assert done.json()["updated_at"] > task["updated_at"]
    since = await http.get(
        url("list_tasks", project_id=project_id),
        params={"updated_since": done.json()["updated_at"]},
        headers=auth,
    )
    assert [t["id"] for t in since.json()["data"]] == [task["id"]]  # inclusive
    bad = await http.patch(path, json={"status": "blocked"}, headers=auth)
    assert issues(bad) == {("status", "invalid_format")}
    empty = await http.patch(path, json={}, headers=auth)
    assert empty.status_code == 422
    cleared = await http.patch(path, json={"notes": None}, headers=auth)
    assert cleared.json()["notes"] is None
    assert one.status_code == 201
    missing = await http.patch(
        url("update_task", project_id=project_id, task_id="tsk_nope"),
        json={"status": "done"},
        headers=auth,
    )
    assert missing.status_code == 404


async def test_projects_payments_documents_leads_are_per_client(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    from .helpers import token

    other = await token(http, "other-client", "other-secret")
    project_id, bookings = await _project_with_bookings(http, sim, auth, n=1)
    for response in (
        await http.get(url("get_project", project_id=project_id), headers=other),
        await http.get(url("list_payments", project_id=project_id), headers=other),
        await http.get(url("list_documents", project_id=project_id), headers=other),
        await http.get(url("list_tasks", project_id=project_id), headers=other),
    ):
        assert response.status_code == 404
    theirs = await http.post(url("create_project"), json=project_body("PWB-1"), headers=other)
    assert theirs.status_code == 201  # references are unique per client
    listed = await http.get(url("list_projects"), headers=other)
    assert [p["id"] for p in listed.json()["data"]] == [theirs.json()["id"]]
    place = bookable(sim, requires_project=True)
    start = free_slot(sim, place, days_ahead=9)
    foreign = booking_body(place, start, ref="X-1", project_id=project_id)
    response = await http.post(url("create_booking"), json=foreign, headers=other)
    assert issues(response) == {("project_id", "not_found")}
    lead = {"fields": {"name": "Ana", "phone": "+56912345678"}, "external_reference": "L-9"}
    mine = await http.post(url("submit_lead", form_id="frm_00002"), json=lead, headers=auth)
    again = await http.post(url("submit_lead", form_id="frm_00002"), json=lead, headers=other)
    assert mine.status_code == 201
    assert again.status_code == 201
    assert bookings
