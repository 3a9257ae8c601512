"""The /_sim/ controls, the background world, determinism, and injected faults."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import orjson
import pytest

from sodtrack.simulator.app import create_app
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.testing import SimulatorTransport, serve_in_thread, small_config

from .helpers import bookable, booking_body, error_of, free_slot, token, url


async def test_advance_moves_the_world(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    before = {b.id: (b.status, b.updated_us) for b in sim.client().bookings.values()}
    last = max(b.updated_us for b in sim.client().bookings.values())
    response = await http.post("/_sim/clock/advance", json={"seconds": 3 * 86_400})
    assert response.status_code == 200
    assert response.json()["now"] == "2026-06-13T16:00:00.000000Z"
    assert response.json()["changes"] > 0
    after = sim.client().bookings
    changed = [
        b for b in after.values() if b.id in before and before[b.id] != (b.status, b.updated_us)
    ]
    assert changed
    order = ["scheduled", "confirmed", "in_progress", "completed"]
    for b in changed:
        old_status = before[b.id][0]
        assert b.updated_us > before[b.id][1]
        assert b.updated_us > last  # every change is newer than anything before
        if b.status != "cancelled":
            assert order.index(b.status) > order.index(old_status)
    arrivals = [b for b in after.values() if b.id not in before]
    assert arrivals  # new bookings keep coming in
    # the API shows the same, and an incremental walk picks up exactly the changes
    auth = await token(http)  # three days later: the old token has long expired
    since = await http.get(
        url("list_bookings"),
        params={"limit": 1000, "updated_since": "2026-06-10T16:00:00.000001Z"},
        headers=auth,
    )
    assert {b["id"] for b in since.json()["data"]} == {b.id for b in changed} | {
        b.id for b in arrivals
    }
    bad = await http.post("/_sim/clock/advance", json={"seconds": -1})
    assert bad.status_code == 422


async def test_counters_reset_and_export(
    http: httpx.AsyncClient, sim: Simulator, auth: dict[str, str]
) -> None:
    place = bookable(sim)
    start = free_slot(sim, place)
    await http.post(url("create_booking"), json=booking_body(place, start), headers=auth)
    await http.get(url("get_booking", booking_id="bkg_nope"), headers=auth)
    counters = (await http.get("/_sim/counters")).json()
    assert counters["requests"]["POST /api/v1/bookings"] == {"201": 1}
    assert counters["requests"]["GET /api/v1/bookings/{booking_id}"] == {"404": 1}
    assert counters["writes"]["booking"] == 1
    exported = await http.get("/_sim/export/bookings", params={"client_id": "sim-client"})
    lines = [orjson.loads(line) for line in exported.content.splitlines()]
    assert len(lines) == len(sim.client().bookings)
    assert [b["id"] for b in lines] == sorted(b["id"] for b in lines)
    one = await http.get(url("get_booking", booking_id=lines[0]["id"]), headers=auth)
    assert one.json() == lines[0]
    other = await http.get("/_sim/export/bookings", params={"client_id": "other-client"})
    assert other.content == b""
    unknown = await http.get("/_sim/export/bookings", params={"client_id": "nobody"})
    assert unknown.status_code == 404
    reset = await http.post("/_sim/reset")
    assert reset.status_code == 200
    assert sim.client().count_bookings("T-1") == 0
    assert (await http.get("/_sim/counters")).json()["writes"] == {}
    fresh = create_app(small_config()).state.sim
    assert list(fresh.export_bookings()) == list(sim.export_bookings())


def test_same_seed_same_data_other_seed_other_data() -> None:
    a = create_app(small_config()).state.sim
    b = create_app(small_config()).state.sim
    c = create_app(small_config(seed=7)).state.sim
    assert b"".join(a.export_bookings()) == b"".join(b.export_bookings())
    assert [z.wire for z in a.state.shared.zones] == [z.wire for z in b.state.shared.zones]
    assert b"".join(a.export_bookings()) != b"".join(c.export_bookings())
    statuses = Counter(x.status for x in a.client().bookings.values())
    assert set(statuses) >= {"completed", "cancelled", "scheduled", "confirmed"}


async def test_fault_rate_answers_503() -> None:
    app = create_app(small_config(fault_rate=1.0))
    async with httpx.AsyncClient(transport=SimulatorTransport(app), base_url="http://sim") as http:
        response = await http.post(
            url("issue_token"), json={"client_id": "sim-client", "client_secret": "sim-secret"}
        )
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert error_of(response)["code"] == "unavailable"
    assert app.state.sim.counters.faults == 1
    assert app.state.sim.counters.writes == {}


async def test_drops_after_commit_in_process() -> None:
    app = create_app(small_config(drop_after_commit_rate=1.0))
    sim: Simulator = app.state.sim
    place = bookable(sim)
    async with httpx.AsyncClient(transport=SimulatorTransport(app), base_url="http://sim") as http:
        auth = await token(http)  # token requests are not writes: never dropped
        outcomes: Counter[str] = Counter()
        for i in range(12):
            start = free_slot(sim, place, days_ahead=2 + i)
            try:
                response = await http.post(
                    url("create_booking"),
                    json=booking_body(place, start, ref=f"D-{i}"),
                    headers=auth,
                )
                assert response.status_code == 500
                assert error_of(response)["code"] == "internal_error"
                outcomes["500"] += 1
            except httpx.RemoteProtocolError:
                outcomes["cut"] += 1
            assert sim.client().count_bookings(f"D-{i}") == 1  # committed either way
        retry = await http.post(
            url("create_booking"), json=booking_body(place, start, ref="D-0"), headers=auth
        )
        assert retry.status_code == 409  # a failed 409 is not a write: answered as is
    assert outcomes["500"] > 0
    assert outcomes["cut"] > 0
    assert sim.counters.drops["500"] == outcomes["500"]
    assert sim.counters.drops["cut"] == outcomes["cut"]


@pytest.mark.slow
def test_cut_off_over_a_real_socket() -> None:
    app = create_app(small_config(drop_after_commit_rate=1.0, seed=3))
    sim: Simulator = app.state.sim
    place = bookable(sim)
    seen: Counter[str] = Counter()
    with serve_in_thread(app) as base_url, httpx.Client(base_url=base_url) as http:
        auth = {
            "Authorization": "Bearer "
            + http.post(
                url("issue_token"), json={"client_id": "sim-client", "client_secret": "sim-secret"}
            ).json()["access_token"]
        }
        for i in range(10):
            start = free_slot(sim, place, days_ahead=2 + i)
            try:
                response = http.post(
                    url("create_booking"),
                    json=booking_body(place, start, ref=f"S-{i}"),
                    headers=auth,
                )
                assert response.status_code == 500
                seen["500"] += 1
            except httpx.RemoteProtocolError:
                seen["cut"] += 1
            assert sim.client().count_bookings(f"S-{i}") == 1
        # the server is still fine afterwards
        assert http.get(url("list_forms"), headers=auth).status_code == 200
    assert seen["cut"] > 0


@pytest.mark.slow
async def test_real_uvicorn_serves_concurrent_clients(sim_server: str) -> None:
    async with httpx.AsyncClient(base_url=sim_server) as http:
        auth = await token(http)
        pages = await asyncio.gather(
            *(http.get(url("list_bookings"), params={"limit": 100}, headers=auth) for _ in range(8))
        )
    assert {p.status_code for p in pages} == {200}
    assert len({p.content for p in pages}) == 1
