"""Helpers of the simulator's own tests: contract paths, tokens, bookable places, bodies."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from sodtrack.contract.limits import API_PREFIX
from sodtrack.contract.operations import operation
from sodtrack.simulator.clock import US
from sodtrack.simulator.sim import Simulator

SECRET = "sim-secret"


def url(op_id: str, **params: str) -> str:
    """The path of an operation, from the contract's route table."""
    return API_PREFIX + operation(op_id).url(**params)


async def token(
    http: httpx.AsyncClient,
    client_id: str = "sim-client",
    secret: str = SECRET,
    scope: str | None = None,
) -> dict[str, str]:
    body: dict[str, Any] = {"client_id": client_id, "client_secret": secret}
    if scope is not None:
        body["scope"] = scope
    response = await http.post(url("issue_token"), json=body)
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@dataclass
class Place:
    service_id: str
    postal_code: str
    zone_id: str
    contractor_count: int
    price: str
    duration_min: int


def bookable(sim: Simulator, *, requires_project: bool = False, skip: int = 0) -> Place:
    """An active service and a postal code an active zone serves it at."""
    shared = sim.state.shared
    found = 0
    for zone in shared.zones:
        if not zone.active:
            continue
        for sid in sorted(zone.service_ids):
            service = shared.services[sid]
            if not service.active or service.requires_project != requires_project:
                continue
            for code in zone.postal_codes:
                serving = shared.serving_zone(code, sid)
                if serving is zone:
                    if found == skip:
                        return Place(
                            sid,
                            code,
                            zone.id,
                            zone.contractor_count,
                            sim.money(service.price_minor),
                            service.duration_min,
                        )
                    found += 1
                    break
    raise AssertionError("no bookable place in the seeded data")


def free_slot(sim: Simulator, place: Place, days_ahead: int = 2) -> datetime:
    """A slot start ``days_ahead`` local days ahead or later where the zone has full capacity."""
    zone = sim.state.shared.zone_by_id[place.zone_id]
    now_s = sim.clock.now_us() // US
    day = sim.calendar.local_date(now_s) + timedelta(days=days_ahead)
    while True:
        for start in sim.calendar.starts_on(day):
            if sim.state.capacity.used(zone.idx, start) == 0:
                return datetime.fromtimestamp(start, UTC)
        day += timedelta(days=1)


def booking_body(
    place: Place, start: datetime, ref: str = "T-1", **overrides: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_reference": ref,
        "service_id": place.service_id,
        "scheduled_start": start.isoformat(),
        "customer": {
            "first_name": "Ana",
            "last_name": "Rojas",
            "email": "ana@example.com",
            "phone": "+56912345678",
        },
        "address": {
            "line1": "Av. Providencia 1234",
            "city": "Santiago",
            "region": "RM",
            "postal_code": place.postal_code,
            "country": "cl",
        },
    }
    body.update(overrides)
    return body


def project_body(ref: str = "P-1", **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "external_reference": ref,
        "name": "Remodelación cocina",
        "customer": {"first_name": "Ana", "last_name": "Rojas", "email": "ana@example.com"},
        "address": {
            "line1": "Av. Providencia 1234",
            "city": "Santiago",
            "region": "RM",
            "postal_code": "7500000",
            "country": "cl",
        },
    }
    body.update(overrides)
    return body


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error envelope, checked for the contract's fixed shape."""
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, Any] = body["error"]
    assert set(error) == {"code", "message", "details", "existing_id", "request_id"}, error
    assert error["request_id"] == response.headers["X-Request-Id"]
    return error


def issues(response: httpx.Response) -> set[tuple[str, str]]:
    return {(d["field"], d["issue"]) for d in error_of(response)["details"]}
