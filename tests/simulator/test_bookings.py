"""Bookings: creation rules 1→6 in order, listing, updates, cancellation, isolation."""

from __future__ import annotations

import itertools
from datetime import timedelta

import httpx

from sodtrack.contract import models as m
from sodtrack.contract.countries import get_country
from sodtrack.contract.models import BOOKING_TRANSITIONS, BookingStatus, booking_status_path
from sodtrack.simulator.sim import Simulator

from .helpers import (
    bookable,
    booking_body,
    error_of,
    free_slot,
    issues,
    project_body,
    token,
    url,
)


async def test_create_returns_the_booking(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    place = bookable(sim)
    start = free_slot(sim, place)
    response = await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    assert response.status_code == 201, response.text
    booking = m.Booking.model_validate(response.json())
    raw = response.json()
    assert booking.status == "scheduled"
    assert booking.scheduled_start == start
    assert booking.scheduled_end - booking.scheduled_start == timedelta(minutes=place.duration_min)
    assert raw["price"] == place.price
    assert raw["currency"] == "CLP"
    assert raw["customer"]["document_id"] is None  # every key present, null where not sent
    assert raw["address"]["line2"] is None
    assert raw["created_at"].endswith("Z")
    assert len(raw["created_at"]) == 27
    assert booking.zone_id == place.zone_id
    fetched = await http.get(url("get_booking", booking_id=booking.id), headers=auth)
    assert fetched.json() == raw
    assert sim.client().count_bookings("T-1") == 1


async def test_rule1_lists_every_issue(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    body = {
        "external_reference": "bad ref!",
        "service_id": "svc_nope",
        "scheduled_start": "2026-06-12T10:00:00",
        "customer": {"first_name": "", "last_name": "Rojas", "email": "nope", "phone": "123"},
        "address": {
            "line1": "x",
            "city": "y",
            "region": "RM",
            "postal_code": "750000",
            "country": "cl",
            "floor": 3,
        },
        "project_id": "prj_nope",
    }
    response = await http.post(url("create_booking"), json=body, headers=auth)
    assert response.status_code == 422
    assert error_of(response)["code"] == "validation_error"
    assert issues(response) == {
        ("external_reference", "invalid_format"),
        ("scheduled_start", "invalid_format"),
        ("customer.first_name", "required"),
        ("address.floor", "unknown_field"),
        ("customer.email", "invalid_format"),
        ("customer.phone", "invalid_format"),
        ("address.postal_code", "invalid_format"),
        ("service_id", "not_found"),
        ("project_id", "not_found"),
    }


async def test_rule1_contact_and_project_rules(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    place = bookable(sim)
    start = free_slot(sim, place)
    body = booking_body(place, start)
    body["customer"] = {"first_name": "Ana", "last_name": "Rojas"}
    response = await http.post(url("create_booking"), json=body, headers=auth)
    assert issues(response) == {("customer.email", "required"), ("customer.phone", "required")}
    project_place = bookable(sim, requires_project=True)
    response = await http.post(
        url("create_booking"), json=booking_body(project_place, start), headers=auth
    )
    assert issues(response) == {("project_id", "required")}
    created = await http.post(url("create_project"), json=project_body(), headers=auth)
    project_id = created.json()["id"]
    await http.patch(
        url("update_project", project_id=project_id), json={"status": "closed"}, headers=auth
    )
    response = await http.post(
        url("create_booking"),
        json=booking_body(project_place, start, project_id=project_id),
        headers=auth,
    )
    assert issues(response) == {("project_id", "project_closed")}


async def test_rule_order_and_precedence(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    shared = sim.state.shared
    place = bookable(sim)
    start = free_slot(sim, place)
    first = await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    existing = first.json()["id"]
    # 1 before 2: an invalid body with a known reference is still a 422
    bad = booking_body(place, start, ref="T-1")
    del bad["service_id"]
    response = await http.post(url("create_booking"), json=bad, headers=auth)
    assert response.status_code == 422
    assert ("service_id", "required") in issues(response)
    # 2 before 3..6: a duplicate wins over an inactive service, a foreign country, no capacity
    inactive = next(s for s in shared.services.values() if not s.active)
    dup = booking_body(place, start - timedelta(days=30), ref="T-1", service_id=inactive.id)
    dup["address"]["country"] = "pe"
    response = await http.post(url("create_booking"), json=dup, headers=auth)
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "duplicate_external_reference"
    assert error["existing_id"] == existing
    # 3: inactive service, before the country (4)
    body = booking_body(place, start, ref="T-2", service_id=inactive.id)
    body["address"]["country"] = "pe"
    response = await http.post(url("create_booking"), json=body, headers=auth)
    assert error_of(response)["code"] == "service_inactive"
    # 3: variant of another service, unknown variant; inactive variant
    other = next(v for v in shared.variants.values() if v.service_id != place.service_id)
    for variant_id in (other.id, "var_nope"):
        body = booking_body(place, start, ref="T-2", variant_id=variant_id)
        response = await http.post(url("create_booking"), json=body, headers=auth)
        assert error_of(response)["code"] == "variant_mismatch"
    # 4: country before coverage (5)
    body = booking_body(place, start, ref="T-2")
    body["address"]["country"] = "pe"
    body["address"]["postal_code"] = "0000001"
    response = await http.post(url("create_booking"), json=body, headers=auth)
    assert response.status_code == 403
    assert error_of(response)["code"] == "country_mismatch"
    # 5: a well-formed code nobody covers, before the slot (6)
    body = booking_body(place, start - timedelta(days=30), ref="T-2")
    body["address"]["postal_code"] = "0000001"
    response = await http.post(url("create_booking"), json=body, headers=auth)
    assert error_of(response)["code"] == "postal_code_not_covered"
    # 6: too soon, too far, off-slot
    now = sim.clock.now()
    for when, issue in (
        (now + timedelta(minutes=30), "out_of_range"),
        (now + timedelta(days=181), "out_of_range"),
        (start + timedelta(minutes=30), "out_of_range"),
    ):
        body = booking_body(place, when, ref="T-2")
        response = await http.post(url("create_booking"), json=body, headers=auth)
        assert error_of(response)["code"] == "slot_unavailable"
        assert issues(response) == {("scheduled_start", issue)}


async def test_capacity_is_consumed_per_zone_and_start(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    place = bookable(sim)
    start = free_slot(sim, place)
    day = start.date().isoformat()
    query = {"service_id": place.service_id, "postal_code": place.postal_code}

    async def capacity() -> int:
        response = await http.get(
            url("get_availability"),
            params={**query, "date_from": day, "date_to": day},
            headers=auth,
        )
        assert response.status_code == 200, response.text
        slot = [
            s
            for s in response.json()["data"]
            if s["start"].startswith(start.strftime("%Y-%m-%dT%H"))
        ]
        return int(slot[0]["capacity"])

    assert await capacity() == place.contractor_count
    contractors = set()
    for i in range(place.contractor_count):
        body = booking_body(place, start, ref=f"CAP-{i}")
        response = await http.post(url("create_booking"), json=body, headers=auth)
        assert response.status_code == 201, response.text
        contractors.add(response.json()["contractor_id"])
        assert await capacity() == place.contractor_count - i - 1
    assert len(contractors) == place.contractor_count
    response = await http.post(
        url("create_booking"), json=booking_body(place, start, ref="CAP-X"), headers=auth
    )
    assert error_of(response)["code"] == "slot_unavailable"
    assert issues(response) == {("scheduled_start", "no_capacity")}
    # cancelling frees the place
    first = sim.client().booking_refs["CAP-0"]
    await http.post(url("cancel_booking", booking_id=first), json={"reason": "x"}, headers=auth)
    assert await capacity() == 1


async def test_patch_transitions(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    place = bookable(sim)
    start = free_slot(sim, place)
    created = await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    bid = created.json()["id"]
    path = url("update_booking", booking_id=bid)
    empty = await http.patch(path, json={}, headers=auth)
    assert empty.status_code == 422
    skip = await http.patch(path, json={"status": "in_progress"}, headers=auth)
    assert error_of(skip)["code"] == "invalid_transition"
    same = await http.patch(path, json={"status": "scheduled"}, headers=auth)
    assert same.status_code == 200
    assert same.json()["updated_at"] == created.json()["updated_at"]
    last = created.json()["updated_at"]
    for status in ("confirmed", "in_progress"):
        response = await http.patch(path, json={"status": status}, headers=auth)
        assert response.status_code == 200
        assert response.json()["status"] == status
        assert response.json()["updated_at"] > last
        last = response.json()["updated_at"]
    moved = await http.patch(
        path, json={"scheduled_start": (start + timedelta(hours=1)).isoformat()}, headers=auth
    )
    assert error_of(moved)["code"] == "invalid_transition"
    done = await http.patch(path, json={"status": "completed"}, headers=auth)
    assert done.json()["status"] == "completed"
    cancel = await http.post(
        url("cancel_booking", booking_id=bid), json={"reason": "late"}, headers=auth
    )
    assert error_of(cancel)["code"] == "invalid_transition"
    back = await http.patch(path, json={"status": "cancelled"}, headers=auth)
    assert error_of(back)["code"] == "invalid_transition"
    notes = await http.patch(path, json={"notes": "gate code 12"}, headers=auth)
    assert notes.json()["notes"] == "gate code 12"


async def test_reschedule_checks_rule6_without_its_own_place(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    place = bookable(sim)
    start = free_slot(sim, place)
    for i in range(place.contractor_count):
        await http.post(
            url("create_booking"), json=booking_body(place, start, ref=f"R-{i}"), headers=auth
        )
    later = start + timedelta(days=7)
    other = await http.post(
        url("create_booking"), json=booking_body(place, later, ref="R-X"), headers=auth
    )
    bid = other.json()["id"]
    path = url("update_booking", booking_id=bid)
    full = await http.patch(path, json={"scheduled_start": start.isoformat()}, headers=auth)
    assert issues(full) == {("scheduled_start", "no_capacity")}
    same = await http.patch(path, json={"scheduled_start": later.isoformat()}, headers=auth)
    assert same.status_code == 200
    local = later.astimezone(get_country("cl").tz) + timedelta(days=1)
    moved = await http.patch(path, json={"scheduled_start": local.isoformat()}, headers=auth)
    assert moved.status_code == 200, moved.text
    assert moved.json()["scheduled_start"] == local.astimezone(start.tzinfo).strftime(
        "%Y-%m-%dT%H:%M:%S.000000Z"
    )


async def test_cancel_is_idempotent_and_lists_the_booking(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    place = bookable(sim)
    start = free_slot(sim, place)
    created = await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    bid = created.json()["id"]
    path = url("cancel_booking", booking_id=bid)
    no_reason = await http.post(path, json={}, headers=auth)
    assert issues(no_reason) == {("reason", "required")}
    first = await http.post(path, json={"reason": "customer"}, headers=auth)
    assert first.json()["status"] == "cancelled"
    assert first.json()["cancelled_reason"] == "customer"
    again = await http.post(path, json={"reason": "again"}, headers=auth)
    assert again.status_code == 200
    assert again.json() == first.json()
    listed = await http.get(
        url("list_bookings"), params={"external_reference": "T-1"}, headers=auth
    )
    assert [b["status"] for b in listed.json()["data"]] == ["cancelled"]
    reuse = await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    assert error_of(reuse)["existing_id"] == bid


async def test_clients_are_isolated(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    other = await token(http, "other-client", "other-secret")
    place = bookable(sim)
    start = free_slot(sim, place)
    mine = await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    # Contractors are shared by all clients: the other client books another slot.
    later = free_slot(sim, place, days_ahead=4)
    theirs = await http.post(url("create_booking"), json=booking_body(place, later), headers=other)
    assert theirs.status_code == 201, theirs.text  # the same reference is free for them
    hidden = await http.get(url("get_booking", booking_id=mine.json()["id"]), headers=other)
    assert hidden.status_code == 404
    listed = await http.get(url("list_bookings"), headers=other)
    assert [b["id"] for b in listed.json()["data"]] == [theirs.json()["id"]]
    catalog = await http.get(url("list_services"), headers=other)
    assert catalog.json()["meta"]["total_items"] == len(sim.state.shared.services)


async def test_status_requests_follow_the_contracts_one_table(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    """Every (current, wanted) pair, each on its own booking: ``PATCH status`` succeeds exactly
    when the status is the current one (a no-op) or ``BOOKING_TRANSITIONS`` allows the move;
    ``POST cancel`` exactly when the table lets the booking be cancelled (or it already is)."""
    place = bookable(sim)
    statuses = list(BookingStatus)
    for n, (current, wanted) in enumerate(itertools.product(statuses, statuses)):
        for how in ("patch", "cancel"):
            ref = f"ST-{n}-{how}"
            created = await http.post(
                url("create_booking"),
                json=booking_body(place, free_slot(sim, place), ref=ref),
                headers=auth,
            )
            bid = created.json()["id"]
            walk = booking_status_path(BookingStatus.SCHEDULED, current)
            assert walk is not None
            for step in walk:
                if step == BookingStatus.CANCELLED:
                    r = await http.post(
                        url("cancel_booking", booking_id=bid), json={"reason": "x"}, headers=auth
                    )
                else:
                    r = await http.patch(
                        url("update_booking", booking_id=bid), json={"status": step}, headers=auth
                    )
                assert r.status_code == 200, r.text
            if how == "patch":
                r = await http.patch(
                    url("update_booking", booking_id=bid), json={"status": wanted}, headers=auth
                )
                ok = wanted == current or wanted in BOOKING_TRANSITIONS[current]
            else:
                r = await http.post(
                    url("cancel_booking", booking_id=bid), json={"reason": "y"}, headers=auth
                )
                ok = current == BookingStatus.CANCELLED or (
                    BookingStatus.CANCELLED in BOOKING_TRANSITIONS[current]
                )
            assert (r.status_code == 200) == ok, (current, wanted, how, r.text)
            if not ok:
                assert error_of(r)["code"] == "invalid_transition"
