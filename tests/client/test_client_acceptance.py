"""Acceptance: the client against the simulator under faults, and across token expiries.

* 500 bookings created under ``fault_rate=0.2``, ``drop_after_commit_rate=0.1`` and a
  10/s rate limit exist exactly once each in the simulator's own export.
* A walk over every booking with 2-second tokens outlives many tokens and returns each
  booking exactly once.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import date, timedelta

import httpx
import pytest
from client_sim import (
    VirtualClock,
    bookable_slots,
    booking_body,
    in_process_client,
    sim_of,
)
from pydantic import SecretStr
from starlette.applications import Starlette

from sodtrack.client import (
    Credentials,
    NeedsAPerson,
    RateLimiter,
    SodtrackClient,
    WriteResult,
)
from sodtrack.contract import models as m
from sodtrack.simulator.app import create_app
from sodtrack.simulator.testing import SimulatorTransport, small_config

SIM_TODAY = date(2026, 6, 10)  # small_config's fixed clock


async def export_bookings(app: object) -> list[dict[str, object]]:
    """The simulator's own records (``/_sim/export/bookings``), not the API's."""
    async with httpx.AsyncClient(transport=SimulatorTransport(app)) as http:  # type: ignore[arg-type]
        response = await http.get("http://sim.test/_sim/export/bookings")
        response.raise_for_status()
    return [json.loads(line) for line in response.text.splitlines() if line]


async def create_all(
    client: SodtrackClient, bodies: list[m.BookingCreate], spares: list[m.BookingCreate]
) -> list[WriteResult[m.Booking]]:
    """Create every body concurrently; a slot taken meanwhile (by the simulated world) is
    replaced by a spare one under the same reference."""
    spare_iter = iter(spares)

    async def one(body: m.BookingCreate) -> WriteResult[m.Booking]:
        while True:
            try:
                return await client.create_booking(body)
            except NeedsAPerson:
                spare = next(spare_iter)
                body = body.model_copy(
                    update={
                        "service_id": spare.service_id,
                        "scheduled_start": spare.scheduled_start,
                        "address": spare.address,
                    }
                )

    return list(await asyncio.gather(*(one(b) for b in bodies)))


async def test_500_bookings_under_faults_exist_exactly_once() -> None:
    n = 500
    # Plan slots on a fault-free twin (same seed, same data), then create under faults.
    twin = create_app(small_config())
    planner, _ = in_process_client(twin)
    async with planner:
        slots = await bookable_slots(planner, n + 60, SIM_TODAY + timedelta(days=2))
    assert len(slots) >= n + 20

    app = create_app(
        small_config(fault_rate=0.2, drop_after_commit_rate=0.1, rate_limit=10.0, burst=20)
    )
    sim = sim_of(app)
    before = {b["id"] for b in await export_bookings(app)}
    client, _clock = in_process_client(app, max_concurrency=8)
    bodies = [booking_body(s, f"ACC-{i:04d}") for i, s in enumerate(slots[:n])]
    spares = [booking_body(s, "unused") for s in slots[n:]]
    async with client:
        results = await create_all(client, bodies, spares)

    # the client's view: one result per reference, each a booking with that reference
    assert len(results) == n
    assert {r.resource.external_reference for r in results} == {
        b.external_reference for b in bodies
    }
    assert len({r.id for r in results}) == n

    # the simulator's own records: exactly n new bookings, one per reference, none twice
    exported = await export_bookings(app)
    new = [b for b in exported if b["id"] not in before]
    refs = Counter(str(b["external_reference"]) for b in new)
    assert len(new) == n
    assert set(refs) == {b.external_reference for b in bodies}
    assert max(refs.values()) == 1
    assert sim.counters_snapshot()["writes"].get("booking") == n

    # the faults really happened, and were absorbed by retries and reconciliation
    stats = client.stats
    counters = sim.counters_snapshot()
    assert counters["faults"] > 50
    assert counters["drops"]["500"] + counters["drops"]["cut"] > 10
    assert stats.reconciliations["create_booking:found"] > 10
    assert sum(r.reconciled for r in results) >= stats.reconciliations["create_booking:found"]
    assert stats.requests[("create_booking", "RemoteProtocolError")] > 0
    assert stats.requests[("create_booking", "503")] > 50
    assert not stats.gave_up
    # the limiter kept 429s to a trickle (virtual time: see client_sim)
    assert stats.rate_limited <= 0.02 * stats.total_requests
    assert stats.limiter_wait_s > 0


async def test_walk_outlives_many_two_second_tokens_with_synchronised_clocks() -> None:
    """Client and server clocks move together: tokens are refreshed before they expire."""
    app = create_app(small_config(token_ttl=2, bookings=3000))
    client, clock = in_process_client(app)
    expected = {str(b["id"]) for b in await export_bookings(app)}
    async with client:
        walk = client.list_bookings(limit=100)
        seen: list[str] = []
        async for page in walk:
            seen.extend(b.id for b in page.items)
            clock.advance(0.7)  # each page "takes" 0.7 s: 30 pages = 21 s = 10+ tokens
    assert client.stats.token_fetches >= 8
    assert client.stats.token_refreshes_on_401 == 0
    # the world moved bookings while we paged; the walk still yields each id, newest last
    assert expected <= set(seen)
    assert len(seen) - len(set(seen)) == walk.superseded


class TickingTransport(httpx.AsyncBaseTransport):
    """Server time passes by ``step_s`` before each request reaches the simulator."""

    def __init__(self, app: Starlette, step_s: float) -> None:
        self.inner = SimulatorTransport(app)
        self.sim = sim_of(app)
        self.step_s = step_s

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sim.advance(self.step_s)
        return await self.inner.handle_async_request(request)


async def test_collect_with_a_frozen_client_clock_recovers_through_401s() -> None:
    """The client's clock stands still (it never thinks its token stale) while the server's
    moves: every expiry is discovered by a 401 and healed by one refresh and one retry."""
    app = create_app(small_config(token_ttl=2, bookings=3000))
    expected = {str(b["id"]) for b in await export_bookings(app)}
    frozen = VirtualClock(None)
    client = SodtrackClient(
        httpx.AsyncClient(transport=TickingTransport(app, 0.7)),
        base_url="http://sim.test",
        country="cl",
        credentials=Credentials("sim-client", SecretStr("sim-secret")),
        clock=frozen,
        sleep=frozen.sleep,
        rate_limiter=RateLimiter(clock=frozen, sleep=frozen.sleep),
        owns_http=True,
    )
    async with client:
        bookings = await client.collect_bookings(limit=100)
    ids = [b.id for b in bookings]
    assert len(ids) == len(set(ids))  # exactly once
    assert expected <= set(ids)
    assert client.stats.token_refreshes_on_401 >= 5
    assert client.stats.token_fetches == client.stats.token_refreshes_on_401 + 1
    assert client.stats.requests[("list_bookings", "401")] == client.stats.token_refreshes_on_401


@pytest.mark.slow
def test_walk_over_loopback_with_two_second_tokens_in_real_time() -> None:
    """Real uvicorn, real clocks, 2-second tokens, a walk that lasts several tokens."""
    from sodtrack.simulator.testing import serve_in_thread

    app = create_app(
        small_config(token_ttl=2, bookings=2000, now=None, latency_ms=60.0, rate_limit=0.0)
    )
    expected = {str(b["id"]) for b in asyncio.run(export_bookings(app))}

    async def walk(base_url: str) -> tuple[list[str], SodtrackClient]:
        async with (
            httpx.AsyncClient() as http,
            SodtrackClient(
                http,
                base_url=base_url,
                country="cl",
                credentials=Credentials("sim-client", SecretStr("sim-secret")),
            ) as client,
        ):
            bookings = await client.collect_bookings(limit=40)  # 50+ pages, 4+ s
            return [b.id for b in bookings], client

    with serve_in_thread(app) as base_url:
        ids, client = asyncio.run(walk(base_url))
    assert len(ids) == len(set(ids))
    assert expected <= set(ids)
    assert client.stats.token_fetches >= 3


@pytest.mark.slow
def test_creates_under_faults_over_loopback_in_real_time() -> None:
    """Real sockets: cut connections are real ``RemoteProtocolError``s, the 10/s limit is
    enforced by a real clock. Fewer bookings than the in-process test, to stay quick."""
    from sodtrack.simulator.testing import serve_in_thread

    n = 60
    twin = create_app(small_config())

    async def plan() -> list[m.BookingCreate]:
        planner, _ = in_process_client(twin)
        async with planner:
            slots = await bookable_slots(planner, n, SIM_TODAY + timedelta(days=2))
        return [booking_body(s, f"NET-{i:03d}") for i, s in enumerate(slots[:n])]

    bodies = asyncio.run(plan())
    app = create_app(  # more drops than the in-process test: some real cuts in 60 writes
        small_config(fault_rate=0.2, drop_after_commit_rate=0.3, rate_limit=10.0, burst=20)
    )

    async def create(base_url: str) -> SodtrackClient:
        async with (
            httpx.AsyncClient(timeout=10.0) as http,
            SodtrackClient(
                http,
                base_url=base_url,
                country="cl",
                credentials=Credentials("sim-client", SecretStr("sim-secret")),
                max_concurrency=8,
            ) as client,
        ):
            results = await create_all(client, bodies, [])
            assert len({r.id for r in results}) == n
            return client

    with serve_in_thread(app) as base_url:
        client = asyncio.run(create(base_url))
    exported = asyncio.run(export_bookings(app))
    refs = Counter(str(b["external_reference"]) for b in exported)
    assert all(refs[b.external_reference] == 1 for b in bodies)
    assert sim_of(app).counters_snapshot()["writes"].get("booking") == n
    stats = client.stats
    assert not stats.gave_up
    # Few 429s, each waited out (nothing gave up). The pacing's own bound (under 2 % of
    # requests) is asserted in virtual time above; here, in real time, the server shares this
    # process's CPU with CI's other workers, and a stalled server thread sees requests that
    # left on time arrive bunched (CI once counted 6 of 114): the bound is looser on purpose.
    assert stats.rate_limited <= max(3, stats.total_requests // 10)
    assert stats.reconciliations["create_booking:found"] > 0
