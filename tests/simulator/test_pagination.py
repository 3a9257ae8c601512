"""Both pagination styles, with their exact semantics."""

from __future__ import annotations

from typing import Any

import httpx

from sodtrack.simulator.sim import Simulator

from .helpers import bookable, booking_body, error_of, free_slot, issues, project_body, url


async def test_page_numbered(http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]) -> None:
    default = await http.get(url("list_services"), headers=auth)
    body = default.json()
    total = len(sim.state.shared.services)
    assert body["meta"] == {
        "page": 1,
        "page_size": 100,
        "total_items": total,
        "total_pages": -(-total // 100),
    }
    ids: list[str] = []
    page = 1
    while True:
        response = await http.get(
            url("list_services"), params={"page": page, "page_size": 7}, headers=auth
        )
        data = response.json()["data"]
        if not data:
            break
        ids += [s["id"] for s in data]
        page += 1
    assert ids == sorted(ids)
    assert len(ids) == total
    assert page - 1 == -(-total // 7)  # the page past the end was empty
    for params, field, issue in (
        ({"page": 0}, "page", "out_of_range"),
        ({"page_size": 501}, "page_size", "out_of_range"),
        ({"page_size": 0}, "page_size", "out_of_range"),
        ({"page": "one"}, "page", "invalid_format"),
        ({"active": "yes"}, "active", "invalid_format"),
        ({"colour": "red"}, "colour", "unknown_field"),
        ({"limit": 5}, "limit", "unknown_field"),
    ):
        response = await http.get(url("list_services"), params=params, headers=auth)
        assert response.status_code == 422, params
        assert issues(response) == {(field, issue)}
    biggest = await http.get(url("list_services"), params={"page_size": 500}, headers=auth)
    assert biggest.status_code == 200


async def test_empty_list_has_zero_pages(http: httpx.AsyncClient, auth: dict[str, str]) -> None:
    created = await http.post(url("create_project"), json=project_body(), headers=auth)
    response = await http.get(url("list_payments", project_id=created.json()["id"]), headers=auth)
    assert response.json() == {
        "data": [],
        "meta": {"page": 1, "page_size": 100, "total_items": 0, "total_pages": 0},
    }


async def _walk(
    http: httpx.AsyncClient, auth: dict[str, str], params: dict[str, Any]
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = dict(params)
        if cursor:
            query["cursor"] = cursor
        response = await http.get(url("list_bookings"), params=query, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items


async def test_cursor_walk_is_ordered_and_complete(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    items = await _walk(http, auth, {"limit": 1000})
    keys = [(b["updated_at"], b["id"]) for b in items]
    assert keys == sorted(keys)
    assert len(items) == len(sim.client().bookings)
    first = await http.get(url("list_bookings"), headers=auth)
    assert len(first.json()["data"]) == 200  # default limit
    for limit in (0, 1001):
        response = await http.get(url("list_bookings"), params={"limit": limit}, headers=auth)
        assert issues(response) == {("limit", "out_of_range")}
    pivot = items[-300]["updated_at"]
    count = sum(1 for b in items if b["updated_at"] >= pivot)
    exact = await http.get(
        url("list_bookings"), params={"limit": count, "updated_since": pivot}, headers=auth
    )
    assert len(exact.json()["data"]) == count
    assert exact.json()["next_cursor"] is None  # no empty last page


async def test_updated_since_is_inclusive_and_filters_travel_with_the_cursor(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    items = await _walk(http, auth, {"limit": 1000})
    pivot = items[len(items) // 2]["updated_at"]
    since = await _walk(http, auth, {"updated_since": pivot, "limit": 50})
    assert since[0]["updated_at"] == pivot
    assert len(since) == sum(1 for b in items if b["updated_at"] >= pivot)
    # other offsets are the same instant
    offset = pivot.replace("Z", "+00:00").replace("+00:00", "-00:00")
    same = await http.get(
        url("list_bookings"), params={"updated_since": offset, "limit": 1}, headers=auth
    )
    assert same.json()["data"][0]["updated_at"] == pivot
    naive = await http.get(url("list_bookings"), params={"updated_since": pivot[:-1]}, headers=auth)
    assert issues(naive) == {("updated_since", "invalid_format")}
    unencoded_plus = await http.get(
        url("list_bookings") + "?updated_since=2026-01-01T00:00:00+00:00", headers=auth
    )
    assert unencoded_plus.status_code == 422
    cancelled = await _walk(http, auth, {"status": "cancelled", "limit": 100})
    assert cancelled
    assert all(b["status"] == "cancelled" for b in cancelled)
    page = await http.get(
        url("list_bookings"), params={"status": "cancelled", "limit": 5}, headers=auth
    )
    cursor = page.json()["next_cursor"]
    alone = await http.get(url("list_bookings"), params={"cursor": cursor}, headers=auth)
    assert all(b["status"] == "cancelled" for b in alone.json()["data"])
    same_filters = await http.get(
        url("list_bookings"), params={"cursor": cursor, "status": "cancelled"}, headers=auth
    )
    assert same_filters.json() == alone.json()
    other = await http.get(
        url("list_bookings"), params={"cursor": cursor, "status": "completed"}, headers=auth
    )
    assert other.status_code == 422
    assert error_of(other)["details"][0]["field"] == "cursor"
    garbage = await http.get(url("list_bookings"), params={"cursor": "x!"}, headers=auth)
    assert issues(garbage) == {("cursor", "invalid_format")}


async def test_a_record_updated_during_a_walk_comes_back(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    first = await http.get(url("list_bookings"), params={"limit": 10}, headers=auth)
    seen = first.json()["data"]
    cursor = first.json()["next_cursor"]
    place = bookable(sim)
    start = free_slot(sim, place)
    created = await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    new_id = created.json()["id"]
    # move a booking already returned: it must come again, later, with a later updated_at
    moved = next(b for b in seen if b["status"] in ("scheduled", "confirmed", "completed"))
    await http.patch(
        url("update_booking", booking_id=moved["id"]), json={"notes": "changed"}, headers=auth
    )
    rest: list[dict[str, Any]] = []
    while cursor:
        response = await http.get(
            url("list_bookings"), params={"limit": 500, "cursor": cursor}, headers=auth
        )
        rest += response.json()["data"]
        cursor = response.json()["next_cursor"]
    again = [b for b in rest if b["id"] == moved["id"]]
    assert len(again) == 1
    assert again[0]["updated_at"] > moved["updated_at"]
    assert again[0]["notes"] == "changed"
    assert rest[-1]["id"] == moved["id"]
    assert rest[-2]["id"] == new_id
    everything = {b["id"] for b in seen} | {b["id"] for b in rest}
    assert len(everything) == len(sim.client().bookings)


async def test_project_filter_and_projects_cursor(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    project = next(iter(sim.client().projects.values()))
    response = await http.get(url("list_bookings"), params={"project_id": project.id}, headers=auth)
    assert {b["id"] for b in response.json()["data"]} == set(project.booking_ids)
    projects: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = await http.get(url("list_projects"), params=params, headers=auth)
        projects += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert len(projects) == len(sim.client().projects)
    keys = [(p["updated_at"], p["id"]) for p in projects]
    assert keys == sorted(keys)
