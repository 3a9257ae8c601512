"""Helpers to run the client against the simulator (in-process or over loopback).

``VirtualClock`` is the client's clock and sleep in in-process tests: sleeping advances the
client's clock *and* the simulator's (``Simulator.advance``), so that ``Retry-After``, backoff
and the rate limiter's waits take no wall time while the server sees the same time pass
(its token buckets refill, its tokens expire). With several concurrent callers the sleeps
add up rather than overlap, so virtual time runs ahead of what real time would be: the
server's buckets refill *more* than they would, never less.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from sodtrack.client import Credentials, RateLimiter, RetryPolicy, SodtrackClient
from sodtrack.contract import models as m
from sodtrack.simulator.sim import Simulator
from sodtrack.simulator.testing import SimulatorTransport


class VirtualClock:
    def __init__(self, sim: Simulator | None, start: float = 10_000.0) -> None:
        self.sim = sim
        self.now = start
        self.slept = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
        if self.sim is not None:
            self.sim.advance(seconds)

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept += seconds
            self.advance(seconds)
        await asyncio.sleep(0)


def sim_of(app: Starlette) -> Simulator:
    sim = app.state.sim
    assert isinstance(sim, Simulator)
    return sim


def in_process_client(
    app: Starlette,
    *,
    clock: VirtualClock | None = None,
    client_id: str = "sim-client",
    secret: str = "sim-secret",  # noqa: S107 (the simulator's well-known default)
    max_concurrency: int = 8,
    retry: RetryPolicy | None = None,
    token_margin_s: float = 60.0,
) -> tuple[SodtrackClient, VirtualClock]:
    clock = clock or VirtualClock(sim_of(app))
    http = httpx.AsyncClient(transport=SimulatorTransport(app))
    client = SodtrackClient(
        http,
        base_url="http://sim.test",
        country=sim_of(app).config.country,
        credentials=Credentials(client_id, SecretStr(secret)),
        retry=retry or RetryPolicy(max_attempts=12, budget_s=600.0),
        rate_limiter=RateLimiter(clock=clock, sleep=clock.sleep),
        clock=clock,
        sleep=clock.sleep,
        max_concurrency=max_concurrency,
        token_margin_s=token_margin_s,
        owns_http=True,
    )
    return client, clock


@dataclass(frozen=True)
class Slot:
    service_id: str
    postal_code: str
    region: str
    start: Any


async def bookable_slots(
    client: SodtrackClient, n: int, first_day: date, days: int = 14
) -> list[Slot]:
    """At least ``n`` distinct (zone, start) slots with capacity, one service per zone.

    Capacity belongs to the zone and the start, whatever the service: taking one postal code
    and one service per *serving* zone keeps the slots independent.
    """
    services = {
        s.id: s
        for s in await client.collect_services(active=True)
        if s.active and not s.requires_project
    }
    slots: list[Slot] = []
    seen_zones: set[str] = set()
    for zone in await client.collect_coverage_zones(active=True):
        service_id = next((sid for sid in zone.service_ids if sid in services), None)
        if service_id is None:
            continue
        for postal_code in zone.postal_codes[:3]:
            check = await client.check_coverage(postal_code, service_id)
            if check.zone_id == zone.id:
                break
        else:
            continue
        if zone.id in seen_zones:
            continue
        seen_zones.add(zone.id)
        availability = await client.get_availability(
            service_id, postal_code, first_day, first_day + timedelta(days=days - 1)
        )
        for slot in availability.data:
            slots.extend(
                Slot(service_id, postal_code, zone.region, slot.start) for _ in range(slot.capacity)
            )
        if len(slots) >= n:
            break
    return slots


def booking_body(slot: Slot, ref: str, country: str = "cl") -> m.BookingCreate:
    return m.BookingCreate(
        external_reference=ref,
        service_id=slot.service_id,
        scheduled_start=slot.start,
        customer=m.CustomerIn(first_name="Ana", last_name="Rojas", email="ana@example.com"),
        address=m.AddressIn(
            line1="Av. Providencia 1234",
            city="Santiago",
            region=slot.region,
            postal_code=slot.postal_code,
            country=country,
        ),
    )
